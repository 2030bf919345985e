"""How bytes reach a plugin: the transport seam, and the one place that picks a transport.

Everything above the runtime sees a :class:`Transport` (manifest, call, close,
kill) and never names a transport class; :func:`open_transport` picks one from
the plugin's kind and its isolation:

* ``in-process`` — :class:`~hm.runtime.inprocess.InProcessTransport`: the library
  loaded into hm with cffi (the default; fastest; trusted);
* ``process`` — :class:`~hm.runtime.worker.WorkerTransport`: the same library in
  an ``hm-worker`` process, so a crash, ``exit()`` or hang fails the call, not hm;
* ``stdio`` — :class:`~hm.runtime.stdio.StdioTransport`: a ``NAME.plugin.toml``
  descriptor's executable, in any language, speaking JSON-RPC 2.0 over its stdin
  and stdout. It is isolated by nature, so ``isolation`` does not apply to it.
"""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # annotations only: `hm --help` loads this module and needs neither
    from hm.runtime.calls import CallContext
    from hm.runtime.vtable_check import VtableFacts

__all__ = ["ISOLATIONS", "Isolation", "Op", "Transport", "open_transport"]

Isolation = Literal["in-process", "process"]
ISOLATIONS: tuple[Isolation, ...] = ("in-process", "process")


class Op(enum.IntEnum):
    """Capability entries of the vtable (``HM_BRIDGE_OP_*`` and the worker's ops)."""

    EXECUTE_STEP = 1
    ON_HOOK_EVENT = 2
    RUN_SUBCOMMAND = 3
    #: Since ABI 1.1; in process only (sessions never run in a worker).
    SESSION_OPEN = 4


class Transport(Protocol):
    """Raw access to one plugin: msgpack bytes in, ``(status, bytes)`` out."""

    #: ``"in-process"``, ``"process"`` or ``"stdio"``.
    kind: str
    #: The bridge slot calls must carry in :attr:`CallContext.owner` (-1: none).
    owner: int

    @property
    def path(self) -> str: ...

    @property
    def abi(self) -> tuple[int, int]:
        """The ``(major, minor)`` the plugin was built against."""
        ...

    @property
    def facts(self) -> VtableFacts | None: ...

    def set_name(self, name: str) -> None:
        """The plugin's manifest name, for messages, once it is known."""

    def offers(self, op: int) -> bool:
        """Whether the vtable entry of ``op`` (an :class:`Op` value) is set."""
        ...

    def manifest(self, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]: ...

    def call(self, op: int, payload: bytes, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]:
        """Run capability ``op`` with a fresh call handle. ``timeout`` bounds the call
        where the transport can stop it (a worker); in process it is ignored."""
        ...

    def close(self) -> None:
        """Orderly end (a worker's plugin gets ``destroy``)."""

    def kill(self) -> None:
        """Stop at once whatever can be stopped."""


def open_transport(
    path: Path,
    isolation: Isolation = "in-process",
    *,
    env: dict[str, str] | None = None,
    host_size: int = 0,
    host_minor: int = 0,
    load_timeout: float = 10.0,
    check_header: bool = True,
    stderr_level: int = logging.WARNING,
) -> Transport:
    """Load the library at ``path`` with the transport ``isolation`` names.

    ``env``, ``host_size``/``host_minor`` (a host table cut to an older layout),
    ``load_timeout``, ``check_header`` (False: return a worker whose header the
    caller will judge) and ``stderr_level`` (the log level of the lines the plugin
    writes to stderr) apply to a worker only.

    :raises PluginLoadError: the library cannot be loaded or its header is wrong.
    """
    if path.name.endswith(".plugin.toml"):
        from hm.runtime.stdio import open_stdio

        return open_stdio(path, load_timeout=load_timeout, stderr_level=stderr_level)
    if isolation == "process":
        from hm.runtime.vtable_check import check_vtable
        from hm.runtime.worker import WorkerTransport

        worker = WorkerTransport(
            str(path.absolute()),
            env=env,
            host_size=host_size,
            host_minor=host_minor,
            load_timeout=load_timeout,
            stderr_level=stderr_level,
        )
        try:
            facts = worker.open()
            if check_header:
                check_vtable(facts, worker.path)
        except BaseException:
            worker.kill()
            worker.close()
            raise
        return worker
    from hm.runtime.inprocess import InProcessTransport
    from hm.runtime.loader import load_library

    return InProcessTransport(load_library(path))
