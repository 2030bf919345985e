"""Interactive sessions (ABI 1.1): a terminal into a step's environment, run by
its runner's ``session_open`` and steered by ``session_write/resize/signal/close``.

A :class:`Session` runs ``session_open`` on a thread of its own (the call lasts
as long as the session) with a call handle chosen up front, because that handle
is also how the four control entries name the session. Its output lands in an
:class:`OutputRing` (bounded, 1 MiB by default, as omniview's session manager
keeps one) and goes on to whoever is attached; a terminal that attaches later
gets the ring replayed first, so nothing it missed is lost within the bound.

Sessions run in hm's own process: the worker protocol carries no session
messages (a worker's table answers ``session_output`` with UNAVAILABLE).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import msgspec

from hm.errors import PluginCallError, PluginLoadError
from hm.runtime.calls import CALLS, HANDLES, CallContext
from hm.runtime.host_services import HostServices
from hm.runtime.plugin import Plugin, translate
from hm.runtime.transport import Op
from hm_plugin_sdk.abi import Signal, Status
from hm_plugin_sdk.protocol import ExitInfo, SessionSpec, StepExecutorCapability

__all__ = ["RING_BYTES", "OutputRing", "Session", "SessionServices", "supports_sessions"]

#: Bytes of a session's output kept for replay on attach.
RING_BYTES = 1 << 20
#: How long keystrokes sent before the runner registered the session are retried.
STARTUP_SECONDS = 5.0
_STALE = int(Status.ERR_STALE_CALL)

_WRITE, _RESIZE, _SIGNAL, _CLOSE = 1, 2, 3, 4  # HM_BRIDGE_SESSION_*
_encode = msgspec.msgpack.Encoder().encode


class OutputRing:
    """The last ``capacity`` bytes of a session's output, and the sink attached to it.

    ``append`` and ``attach`` share one lock, so an attaching sink gets the
    replay and then every later chunk, none twice and none lost in between.
    """

    def __init__(self, capacity: int = RING_BYTES) -> None:
        self.capacity = capacity
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._sink: Callable[[bytes], None] | None = None
        #: Bytes that fell out of the ring (shown as a note on replay).
        self.dropped = 0

    def append(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size > self.capacity:
                head = self._chunks[0]
                excess = self._size - self.capacity
                if len(head) <= excess:
                    self._chunks.popleft()
                    self._size -= len(head)
                    self.dropped += len(head)
                else:
                    self._chunks[0] = head[excess:]
                    self._size -= excess
                    self.dropped += excess
            sink = self._sink
            if sink is not None:
                sink(data)

    def snapshot(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def attach(self, sink: Callable[[bytes], None] | None) -> None:
        """Send the ring's contents to ``sink`` now, then every new chunk (``None``: detach)."""
        with self._lock:
            self._sink = sink
            if sink is not None and self._chunks:
                sink(b"".join(self._chunks))


class SessionServices(HostServices):
    """Host API of a ``session_open`` call: its output goes into the session's ring."""

    def __init__(self, ring: OutputRing, cancel: threading.Event, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.ring = ring
        self.cancel = cancel

    def session_output(self, ctx: CallContext, data: bytes) -> None:
        self.ring.append(data)

    def should_cancel(self, ctx: CallContext) -> bool:
        return self.cancel.is_set()


def supports_sessions(plugin: Plugin, runner: str) -> bool:
    """Whether ``plugin`` says it opens sessions for ``runner`` and its vtable has them."""
    caps = [c for c in plugin.manifest.capabilities if isinstance(c, StepExecutorCapability) and runner in c.runners]
    return any(c.sessions for c in caps) and plugin.transport.offers(Op.SESSION_OPEN)


class Session:
    """One session of ``plugin`` (loaded in process) described by ``spec``."""

    def __init__(self, plugin: Plugin, spec: SessionSpec, *, ring: OutputRing | None = None) -> None:
        transport = plugin.transport
        if not hasattr(transport, "session_open"):
            raise PluginLoadError(
                "runs isolated in a worker process, and sessions run only in hm's own process",
                path=plugin.path,
                plugin=plugin.name,
                hint='drop `isolation = "process"` for this plugin in .hm/config.toml to open sessions',
            )
        self.plugin = plugin
        self.spec = spec
        self.ring = ring or OutputRing()
        self._cancel = threading.Event()
        self._services = SessionServices(self.ring, self._cancel)
        self.handle = HANDLES.take()
        self._result: ExitInfo | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hm-session-{spec.step.key}", daemon=True)

    def start(self) -> Session:
        self._thread.start()
        return self

    def _run(self) -> None:
        plugin = self.plugin
        ctx = plugin.context("session_open", self._services, self.spec.step.key)
        try:
            status, data = plugin.transport.session_open(self.handle, _encode(self.spec), ctx)  # type: ignore[attr-defined]
            self._result = translate(status, data, ExitInfo, plugin=plugin.name, path=plugin.path, op="session_open")
        except BaseException as exc:  # handed to wait(): a thread must not die with it
            self._error = exc
        finally:
            self._done.set()

    # -- steering it ---------------------------------------------------------------
    def _control(self, what: int, data: bytes = b"", a: int = 0, b: int = 0) -> int:
        if self._done.is_set() or self.handle not in CALLS.live:
            return int(Status.ERR_STALE_CALL)
        return int(self.plugin.transport.session_control(self.handle, what, data, a, b))  # type: ignore[attr-defined]

    def write(self, data: bytes) -> int:
        """Send keystrokes. Until the runner has registered the session (just after
        its forkpty) it answers STALE_CALL; keys typed that early are retried for
        up to STARTUP_SECONDS instead of being lost."""
        status = self._control(_WRITE, data)
        deadline = time.monotonic() + STARTUP_SECONDS
        while status == _STALE and not self._done.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
            status = self._control(_WRITE, data)
        return status

    def resize(self, rows: int, cols: int) -> int:
        return self._control(_RESIZE, b"", rows, cols)

    def signal(self, sig: Signal) -> int:
        return self._control(_SIGNAL, b"", int(sig))

    def close(self) -> None:
        """Ask the runner to end the session (it hangs it up); also stops a runner
        that only polls should_cancel."""
        self._cancel.set()
        self._control(_CLOSE)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> ExitInfo:
        """The session's ExitInfo once it ended.

        :raises PluginCallError: the runner failed to open or run it.
        :raises TimeoutError: it did not end within ``timeout`` seconds.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"the session did not end within {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def session_error(plugin: Plugin, runner: str) -> PluginCallError:
    """The error for a runner that cannot open sessions, naming it."""
    return PluginCallError(
        f"runner '{runner}' cannot open interactive sessions (its plugin does not offer session_open, ABI 1.1)",
        path=plugin.path,
        plugin=plugin.name,
        code="sessions_unsupported",
        hint="sessions need a runner that declares `sessions` in its manifest, such as the bundled `shell` runner",
    )
