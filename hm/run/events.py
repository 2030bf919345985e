"""The event bus of one run: ordering, fan-out to output and hooks, and timestamps.

Events come from many threads (the scheduler's loop, every running step). Output
sinks see them under one lock, in one total order. Hooks never run on the thread
that emits (the scheduler's loop, or a step holding its log lock):

* with ``before`` hooks, every event goes through one ordered queue served by
  the *gate* thread, which shows it to the before hooks (each call bounded by
  its hook's timeout), then to the output, then hands it to the after hooks.
  The emitter does not wait; where a decision depends on the before hooks (is
  the build still on before a step starts?) it waits with :meth:`settle`;
* without them, an event goes to the output at once and is queued for the
  after hooks, each of which has its own thread (:mod:`hm.run.hooks`).

Events a hook publishes while it handles an event (``from_hook``) reach the
output but not the hooks, so two hooks cannot feed each other forever.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from hm_plugin_sdk.protocol import BuildEvent, StepLog

if TYPE_CHECKING:
    from hm.run.hooks import HookDispatcher

Sink = Callable[[BuildEvent], None]
_STOP = object()


#: The last stamp made, and its second's text: ``(milliseconds, text)``. Every
#: event and log chunk is stamped, and ``datetime.isoformat`` costs ~1.2 us a call;
#: within one millisecond (or one second) the answer is reused. A tuple is
#: replaced whole, so threads never see half of one.
_last_ms: tuple[int, str] = (-1, "")
_last_second: tuple[int, str] = (-1, "")


def now_ts() -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-21T22:04:59.123Z``."""
    global _last_ms, _last_second
    ms = time.time_ns() // 1_000_000
    last = _last_ms
    if last[0] == ms:
        return last[1]
    second, frac = divmod(ms, 1000)
    prefix = _last_second
    if prefix[0] != second:
        prefix = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _last_second = prefix
    text = f"{prefix[1]}.{frac:03d}Z"
    _last_ms = (ms, text)
    return text


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        #: Output: called under the bus lock, in one total order.
        self.sinks: list[Sink] = []
        self._hooks: HookDispatcher | None = None
        self._gate: queue.SimpleQueue[object] | None = None
        self._gate_thread: threading.Thread | None = None

    def attach_hooks(self, hooks: HookDispatcher) -> None:
        """Route events through ``hooks`` (before emitting anything)."""
        if hooks.empty:
            return
        self._hooks = hooks
        if hooks.has_before:
            self._gate = queue.SimpleQueue()
            self._gate_thread = threading.Thread(target=self._serve_gate, name="hm-hook-gate", daemon=True)
            self._gate_thread.start()

    @property
    def gated(self) -> bool:
        """True when before hooks see every event first (:meth:`settle` then waits)."""
        return self._gate is not None

    def emit(self, event: BuildEvent, *, from_hook: bool = False) -> None:
        gate = self._gate
        if gate is not None:
            gate.put((event, from_hook))
            return
        with self._lock:
            for sink in self.sinks:
                sink(event)
        hooks = self._hooks
        if hooks is not None and not from_hook:
            hooks.after(event)

    def emit_logs(self, events: list[StepLog]) -> None:
        """Emit a chunk's ``step_log`` events: one lock and one call per sink for all
        of them (a sink with a ``logs`` method gets the list)."""
        hooks = self._hooks
        if self._gate is not None or (hooks is not None and hooks.wants_step_log):
            for event in events:
                self.emit(event)
            return
        with self._lock:
            for sink in self.sinks:
                many = getattr(sink, "logs", None)
                if many is not None:
                    many(events)
                else:
                    for event in events:
                        sink(event)

    def settle(self) -> None:
        """Return once every event emitted so far went past the before hooks
        (at once without them)."""
        gate = self._gate
        if gate is None:
            return
        done = threading.Event()
        gate.put(done)
        done.wait()

    def flush(self) -> None:
        """Push buffered output to its reader (after a chunk of step output)."""
        if self._gate is not None:
            return  # the gate flushes whenever it has caught up
        self._flush_sinks()

    def _flush_sinks(self) -> None:
        with self._lock:
            for sink in self.sinks:
                flush = getattr(sink, "flush", None)
                if flush is not None:
                    flush()

    def _serve_gate(self) -> None:
        gate, hooks = self._gate, self._hooks
        assert gate is not None and hooks is not None
        while True:
            item = gate.get()
            if item is _STOP:
                self._flush_sinks()
                return
            if isinstance(item, threading.Event):
                self._flush_sinks()
                item.set()
                continue
            event, from_hook = cast("tuple[BuildEvent, bool]", item)
            if not from_hook:
                hooks.before(event)
            with self._lock:
                for sink in self.sinks:
                    sink(event)
            if not from_hook:
                hooks.after(event)
            if gate.empty():
                self._flush_sinks()

    def close(self) -> None:
        """Deliver what is queued, then stop the gate (hooks are closed by their owner)."""
        gate, thread = self._gate, self._gate_thread
        if gate is not None and thread is not None:
            gate.put(_STOP)
            thread.join()
            self._gate = None
        self._flush_sinks()
