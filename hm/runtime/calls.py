"""Call handles: the ``hm_call_t`` every host-API function receives.

A handle names one running call into a plugin. It maps to a :class:`CallContext`
(which plugin, which step, which services) while the call runs and is removed the
moment it returns, so a plugin thread that keeps using it gets
``HM_ERR_STALE_CALL`` instead of touching a finished step.

Handles are random 64-bit numbers from the operating system's CSPRNG, so a plugin
cannot guess the handle of another plugin's call; a plugin that learns one anyway
is refused by the binding checks (the bridge's slots in process, the worker's
connection across a process).
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from hm.runtime.host_services import HostServices

_BATCH = 512
_unpack = struct.Struct(f"<{_BATCH}Q").unpack


class CallContext(NamedTuple):
    """Who a host-API call is attributed to.

    One is made per plugin call; the hot path builds it with ``tuple.__new__``,
    which skips the Python-level ``__new__`` a NamedTuple has.
    """

    plugin: str
    path: str
    op: str
    services: HostServices
    step_key: str | None = None
    #: The bridge slot of the plugin the call went to (in process); -1 elsewhere.
    owner: int = -1


class HandleSource:
    """Unguessable handles, drawn from ``os.urandom`` in batches (one system call per
    512 handles). ``list.pop`` is atomic under the GIL, so threads share one pool."""

    __slots__ = ("_pool",)

    def __init__(self) -> None:
        self._pool: list[int] = []

    def take(self) -> int:
        try:
            return self._pool.pop()
        except IndexError:
            pool = [h for h in _unpack(os.urandom(8 * _BATCH)) if h]  # 0 is never a handle
            self._pool = pool
            return pool.pop()


#: Handles for every transport of this process.
HANDLES = HandleSource()


class CallTable:
    """Live call handles of in-process calls. dict operations are atomic under the
    GIL, so no lock is needed on this hot path (one open/close per plugin call)."""

    __slots__ = ("live", "take")

    def __init__(self) -> None:
        #: Public so a transport's hot path can open and close handles inline.
        self.live: dict[int, CallContext] = {}
        self.take = HANDLES.take

    def open(self, ctx: CallContext) -> int:
        handle = self.take()
        self.live[handle] = ctx
        return handle

    def close(self, handle: int) -> None:
        self.live.pop(handle, None)

    def get(self, handle: int) -> CallContext | None:
        return self.live.get(handle)

    def __len__(self) -> int:
        return len(self.live)


#: The process-wide table the in-process host-API callbacks consult.
CALLS = CallTable()
