"""The Dask task that runs one step on a worker (the worker side of ``hm run --cluster``).

:func:`run_step` loads the step's plugin on the worker (the uploaded library, or
one the worker has with the same name and content hash; the ABI check runs
here), prepares a workspace from the chain's snapshot or the run's archive, and
calls ``execute_step`` with :class:`WorkerServices`, which carry the host API to
the client (``hm.cluster.wire``). It returns the workspace as a tar (the chain's
snapshot, which Dask moves to the next step's worker) or None when no step needs it.

A step whose worker died mid-step is not run again: Dask reschedules a task whose
worker was lost, and the new attempt finds the first one's worker in the
scheduler's metadata and ends with a ``worker_lost`` error naming it. A step's
streamed logs and side effects cannot be taken back, so a silent rerun would lie.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from hm.cluster import wire
from hm.runtime import CallContext, HostServices, HostStatus, Note, Request
from hm_plugin_sdk.abi import KvScope, Status, Stream
from hm_plugin_sdk.protocol import ExecutorInput, PluginEvent

__all__ = ["LoadFailed", "WorkerServices", "extract_snapshot", "load_plugin", "run_step", "snapshot"]

#: How often a running step's worker looks whether its task was cancelled.
CANCEL_POLL_SECONDS = 0.1
#: How long a host-API request waits for the client's answer.
REPLY_TIMEOUT_SECONDS = 30.0

_encode = msgspec.msgpack.Encoder().encode
_input = msgspec.msgpack.Decoder(ExecutorInput)
_plugins: dict[tuple[str, str], Any] = {}
_plugins_lock = threading.Lock()


class WorkerServices(HostServices):
    """The host API of a step on a worker: logs, events and KV go to the client;
    ``should_cancel`` and the archive are answered here."""

    def __init__(self, client: Any, worker: Any, topic: str, token: str, archive: bytes | None) -> None:
        super().__init__()
        self._client = client
        self._worker = worker
        self._topic = topic
        self._token = token
        self._archive = archive or b""
        self.cancelled = threading.Event()
        self._requests = 0
        self._request_lock = threading.Lock()
        self._replies: Any = None

    def close(self) -> None:
        """Release the attempt's reply Queue (refcounted on the scheduler)."""
        if self._replies is not None:
            self._replies.close()
            self._replies = None

    def send(self, code: int, *args: Any) -> None:
        self._worker.log_event(self._topic, [self._token, code, *args])

    def _ask(self, fn: int, *args: Any) -> Any:
        """One request, answered by the client; raises HostStatus on a non-OK status."""
        from distributed import Queue

        with self._request_lock:  # one at a time: answers come back on one queue, in order
            self._requests += 1
            if self._replies is None:
                self._replies = Queue(wire.reply_queue(self._token), client=self._client)
            self.send(wire.REQUEST, self._requests, fn, *args)
            try:
                _req, status, value = self._replies.get(timeout=REPLY_TIMEOUT_SECONDS)
            except Exception as exc:  # timeout, or the scheduler is gone
                raise HostStatus(Status.ERR_IO) from exc
        if status != 0:
            raise HostStatus(Status(status))
        return value

    # -- one-way calls ---------------------------------------------------------------
    def log(self, ctx: CallContext, level: int, message: str) -> None:
        self.send(int(Note.LOG), level, message.encode())

    def step_log(self, ctx: CallContext, stream: Stream, data: bytes) -> None:
        self.send(int(Note.STEP_LOG), int(stream), bytes(data))

    def emit_event(self, ctx: CallContext, event: PluginEvent) -> None:
        self.send(wire.EVENT, _encode(event))

    def write_stdout(self, ctx: CallContext, data: bytes) -> None:
        self.send(int(Note.STDOUT), bytes(data))

    def write_stderr(self, ctx: CallContext, data: bytes) -> None:
        self.send(int(Note.STDERR), bytes(data))

    def should_cancel(self, ctx: CallContext) -> bool:
        return self.cancelled.is_set()

    # -- requests ----------------------------------------------------------------------
    def kv_get(self, ctx: CallContext, scope: KvScope, key: bytes) -> bytes | None:
        try:
            value = self._ask(int(Request.KV_GET), int(scope), key)
        except HostStatus as exc:
            if exc.status is Status.ERR_NOT_FOUND:
                return None
            raise
        return bytes(value)

    def kv_set(self, ctx: CallContext, scope: KvScope, key: bytes, value: bytes) -> None:
        self._ask(int(Request.KV_SET), int(scope), key, value)

    def read_config(self, ctx: CallContext, rel_path: str) -> bytes:
        return bytes(self._ask(int(Request.FS_READ_CONFIG), rel_path.encode()))

    # -- the run's archive, moved to this worker once -----------------------------------
    def archive_size(self, ctx: CallContext) -> int:
        return len(self._archive)

    def archive_read(self, ctx: CallContext, offset: int, size: int) -> bytes:
        return self._archive[offset : offset + size]


def snapshot(directory: Path) -> bytes:
    """``directory`` as an uncompressed tar (a chain's workspace, as data)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(directory)):
            tar.add(directory / name, arcname=name)
    return buf.getvalue()


def extract_snapshot(data: bytes, directory: Path) -> None:
    """Unpack a :func:`snapshot` into ``directory`` (the tar filter refuses paths
    that would leave it)."""
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(directory, filter="tar")


def _plugin_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"hm-cluster-plugins-{os.getuid()}"


class LoadFailed(Exception):
    """The step's plugin is not on this worker or does not load here; ``error`` is the
    END message's error (``kind`` ``missing`` or ``load``, ``what`` naming the worker)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("what"))
        self.error = error


def load_plugin(spec: dict[str, Any], blob: bytes | None, worker: str) -> Any:
    """The step's plugin on this worker, loaded once per (content hash, isolation)."""
    from hm.errors import PluginLoadError
    from hm.runtime import exit_expected, find_library, open_plugin

    sha, name, isolation = spec["plugin_sha"], spec["plugin"], spec["isolation"]
    with _plugins_lock:
        plugin = _plugins.get((sha, isolation))
        if plugin is not None:
            return plugin
        # This machine's own copy first: a plugin may need files next to it (the
        # shell runner's hm-step-supervisor), which an uploaded library lacks.
        found = find_library(sha)
        if found is not None:
            path = found
        elif blob is not None:
            path = _plugin_dir() / sha / spec["plugin_file"]
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}")
                tmp.write_bytes(blob)
                os.replace(tmp, path)  # atomic: another worker process may race us
        else:
            raise LoadFailed(
                {
                    "kind": "missing",
                    "what": f"worker {worker} has no plugin {name} with sha256 {sha[:12]}…",
                    "hint": f"install the same build of {name} on every worker, "
                    "or let hm upload it (unset HM_CLUSTER_UPLOAD)",
                }
            )
        try:
            plugin = open_plugin(path, isolation=isolation)
        except PluginLoadError as exc:
            raise LoadFailed(
                {"kind": "load", "what": f"on worker {worker}: {exc.what}", "hint": exc.hint, "stage": exc.stage}
            ) from None
        if plugin.name != name:
            raise LoadFailed(
                {"kind": "load", "what": f"on worker {worker}: the library is plugin {plugin.name}, not {name}"}
            )
        if not _plugins:
            # This process (a Dask worker) exits when its cluster closes: that exit is
            # not a plugin's, which the bridge would otherwise report.
            atexit.register(exit_expected)
        _plugins[(sha, isolation)] = plugin
        return plugin


def _watch_cancel(worker: Any, task: Any, services: WorkerServices, done: threading.Event) -> None:
    """Turn the step's ``should_cancel`` true once nobody wants its task: the client
    cancelled it (Ctrl-C, fail-fast, a timeout) or died. Dask then marks the running
    task cancelled on this worker; looking costs no message."""
    while not done.wait(CANCEL_POLL_SECONDS):
        if getattr(worker.state.tasks.get(task), "state", None) in (None, "cancelled", "released", "forgotten"):
            services.cancelled.set()
            return


def run_step(
    spec: dict[str, Any], plugin_blob: bytes | None, archive: bytes | None, base: bytes | None
) -> bytes | None:
    """Run one step on this worker (a Dask task); see the module's docstring."""
    from distributed import get_client, get_worker

    worker = get_worker()
    client = get_client()
    me = worker.address
    token, run_id = spec["token"], spec["run_id"]
    services = WorkerServices(client, worker, spec["topic"], token, archive)
    services.send(wire.START, me, os.getpid())
    first = client.get_metadata(wire.attempt_key(run_id, token), default=None)
    if first is not None:
        services.send(
            wire.END,
            None,
            {
                "kind": "lost",
                "what": f"its worker {first} died while it ran (hm does not run a step twice)",
                "hint": "see that worker's log for why it died, then run the pipeline again",
                "worker": first,
            },
        )
        return None
    client.set_metadata(wire.attempt_key(run_id, token), me)
    with _traced(spec, me):
        return _attempt(spec, plugin_blob, archive, base, services, worker)


@contextlib.contextmanager
def _traced(spec: dict[str, Any], worker: str) -> Iterator[None]:
    """The attempt's span, the child of the client's step span (when the run is traced)."""
    if "trace" not in spec:
        yield
        return
    for name, value in spec.get("otel", {}).items():
        os.environ.setdefault(name, value)  # this worker exports where the client does, unless told otherwise
    from hm import telemetry

    if telemetry.tracer() is None:
        yield
        return
    from opentelemetry import context as otel_context

    token = otel_context.attach(telemetry.from_carrier(spec["trace"]))
    try:
        attrs = {"hm.step": spec["step"], "hm.worker": worker, "hm.plugin": spec["plugin"]}
        with telemetry.span(f"step {spec['step']} on {worker}", attrs):
            yield
    finally:
        otel_context.detach(token)
        telemetry.flush()


def _attempt(
    spec: dict[str, Any],
    plugin_blob: bytes | None,
    archive: bytes | None,
    base: bytes | None,
    services: WorkerServices,
    worker: Any,
) -> bytes | None:
    me = worker.address
    scratch = Path(tempfile.mkdtemp(prefix=f"hm-step-{spec['step']}-"))
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch_cancel,
        args=(worker, worker.get_current_task(), services, done),
        daemon=True,
    )
    watcher.start()
    try:
        try:
            plugin = load_plugin(spec, plugin_blob, me)
        except LoadFailed as exc:
            services.send(wire.END, None, exc.error)
            return None
        inp = _input.decode(spec["input"])
        workspace = scratch / "ws"
        workspace.mkdir()
        base_dir = None
        if base is not None:
            base_dir = scratch / "base"
            extract_snapshot(base, base_dir)
        inp = msgspec.structs.replace(
            inp, workspace=str(workspace), base_workspace=str(base_dir) if base_dir is not None else None
        )
        from hm.errors import HmError

        started = time.monotonic()
        try:
            result = plugin.execute_step(inp, services)
        except HmError as exc:
            services.send(
                wire.END,
                None,
                {
                    "kind": "call",
                    "what": f"on worker {me}: {exc.what}",
                    "hint": exc.hint,
                    "code": getattr(exc, "code", None),
                },
            )
            return None
        snap = snapshot(workspace) if spec["snapshot"] else None
        services.send(wire.END, _encode(result), {"worker": me, "ms": int((time.monotonic() - started) * 1000)})
        return snap
    finally:
        done.set()
        services.close()
        shutil.rmtree(scratch, ignore_errors=True)
