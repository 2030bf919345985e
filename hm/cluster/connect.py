"""Choosing and opening a run's Dask cluster: ``tcp://HOST:PORT``, ``local:N`` or ``HM_CLUSTER``.

``local:N`` starts a ``LocalCluster`` of N worker processes on loopback for the
run and closes it at the end (its processes are children of hm, so a second
Ctrl-C's ``kill_descendants`` takes them too). Dask is imported here, never by
``hm --help``: it is an optional dependency (``pip install 'hm[cluster]'``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from hm.errors import ClusterError

__all__ = ["CONNECT_TIMEOUT_SECONDS", "Cluster", "ClusterSpec", "open_cluster", "parse_cluster"]

#: How long hm tries to reach a scheduler before it gives up (``HM_CLUSTER_TIMEOUT``).
CONNECT_TIMEOUT_SECONDS = 3.0
_INSTALL = "install it with `pip install 'hm[cluster]'`"
_FORMS = "give tcp://HOST:PORT (a running dask scheduler) or local:N (N worker processes on this machine)"


@dataclass(frozen=True)
class ClusterSpec:
    """Where steps run: a scheduler's ``address``, or ``local_workers`` processes here."""

    address: str | None = None
    local_workers: int | None = None

    def __str__(self) -> str:
        return self.address or f"local:{self.local_workers}"


def parse_cluster(value: str) -> ClusterSpec:
    """Read ``--cluster``/``HM_CLUSTER``.

    :raises ClusterError: the value is neither form (exit 2).
    """
    value = value.strip()
    match = re.fullmatch(r"local:(\d+)", value)
    if match:
        n = int(match.group(1))
        if not 1 <= n <= 256:
            raise ClusterError(f"local:{n} asks for {n} workers; give 1 to 256", hint=_FORMS)
        return ClusterSpec(local_workers=n)
    if re.fullmatch(r"(tcp|tls|ws|wss|inproc)://[^\s/]+", value):
        return ClusterSpec(address=value)
    raise ClusterError(f"{value!r} is not a cluster address", address=value, hint=_FORMS)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(
            f"running on a cluster needs dask.distributed, which is not installed ({exc.name})", hint=_INSTALL
        ) from None
    return distributed


def _quiet_dask() -> int:
    """Silence Dask's own log lines (and their tracebacks): hm reports what goes wrong
    in its own words, on the step it happened to. ``--verbose`` shows its warnings."""
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    level = logging.WARNING if verbose else logging.CRITICAL + 1
    families = ("distributed", "bokeh", "tornado")
    # Dask's logging config gives some children levels of their own (distributed.client…).
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in families]
    for name in (*families, *names):
        logging.getLogger(name).setLevel(level)
    return level


class Cluster:
    """A connected ``distributed.Client``, and the LocalCluster it owns, if any."""

    def __init__(self, spec: ClusterSpec, client: Any, local: Any | None) -> None:
        self.spec = spec
        self.client = client
        self._local = local

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def worker_count(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def close(self) -> None:
        """Disconnect; a LocalCluster's workers and scheduler are stopped and gone on return."""
        try:
            self.client.close(timeout=10)
        except Exception:  # already broken: the cluster below is closed all the same
            pass
        if self._local is not None:
            try:
                self._local.close(timeout=20)
            except Exception:
                pass
            self._local = None


def open_cluster(spec: ClusterSpec, *, threads_per_worker: int = 1) -> Cluster:
    """Connect to ``spec`` (starting a LocalCluster for ``local:N``).

    :raises ClusterError: dask is not installed, or the scheduler cannot be reached
        within ``HM_CLUSTER_TIMEOUT`` seconds (the message names the address).
    """
    distributed = _import_distributed()
    timeout = float(os.environ.get("HM_CLUSTER_TIMEOUT") or CONNECT_TIMEOUT_SECONDS)
    if spec.local_workers is not None:
        level = _quiet_dask()
        import dask

        # fork, not Dask's default spawn: a worker starts in 0.2 s instead of 1.3-2 s here
        # (it inherits the imported modules) and stops in 0.01 s instead of 0.3-0.7 s.
        # DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=spawn chooses spawn again.
        if "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD" not in os.environ and sys.platform == "linux":
            dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
        # The cluster shares this machine with the steps: no sampling profiler in every
        # worker thread (every 10 ms by default), no system monitor twice a second, and
        # the event loops' blocked-loop check once a second, not 50 times (an idle
        # local:2 cost 0.17 s less CPU over 8 s).
        dask.config.set(
            {
                "distributed.worker.profile.enabled": False,
                "distributed.admin.system-monitor.interval": "5s",
                "distributed.admin.tick.interval": "1s",
            }
        )
        try:
            local = distributed.LocalCluster(
                n_workers=spec.local_workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                worker_dashboard_address=None,
                silence_logs=level,
                memory_limit=0,
                preload=["hm.cluster.worker_setup"],
            )
        except Exception as exc:
            raise ClusterError(f"could not start a local cluster of {spec.local_workers} workers: {exc}") from None
        try:
            client = distributed.Client(local, timeout=timeout)
        except BaseException:
            local.close()
            raise
        return Cluster(spec, client, local)
    _quiet_dask()
    try:
        client = distributed.Client(spec.address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot reach the dask scheduler at {spec.address} within {timeout:g} s ({type(exc).__name__})",
            address=spec.address,
            hint="check that `dask scheduler` runs there and the port is open, or try --cluster local:2",
        ) from None
    return Cluster(spec, client, None)
