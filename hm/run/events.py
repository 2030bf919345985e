"""The event bus of one run: ordering, fan-out to sinks, and timestamps.

Events come from many threads (one per running step). Output sinks get them under
one lock, so they see one total order. Hooks are called outside that lock: a hook
may itself call host functions that publish events (``emit_event``), and must not
wait on a lock its own dispatch holds. A ``before`` hook still sees an event
before any output sink does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from hm_plugin_sdk.protocol import BuildEvent

Sink = Callable[[BuildEvent], None]


def now_ts() -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-21T22:04:59.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        #: Called first with each event (``before`` hooks); may record an abort, never raises.
        self.before: list[Sink] = []
        #: Output: called under the bus lock, in one total order.
        self.sinks: list[Sink] = []
        #: Called last (``after`` hooks).
        self.after: list[Sink] = []

    def emit(self, event: BuildEvent) -> None:
        for hook in self.before:
            hook(event)
        with self._lock:
            for sink in self.sinks:
                sink(event)
        for hook in self.after:
            hook(event)

    def flush(self) -> None:
        """Push buffered output to its reader (after a chunk of step output)."""
        with self._lock:
            for sink in self.sinks:
                flush = getattr(sink, "flush", None)
                if flush is not None:
                    flush()
