"""Call handles: the ``hm_call_t`` every host-API function receives.

A handle names one running call into a plugin. It maps to a :class:`CallContext`
(which plugin, which step, which services) while the call runs and is removed the
moment it returns, so a plugin thread that keeps using it gets
``HM_ERR_STALE_CALL`` instead of touching a finished step. Handles are never reused.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from hm.runtime.host_services import HostServices


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


class CallTable:
    """Live call handles. dict operations and ``next()`` on a count are atomic under
    the GIL, so no lock is needed on this hot path (one open/close per plugin call)."""

    __slots__ = ("ids", "live")

    def __init__(self) -> None:
        #: Public so a transport's hot path can open and close handles inline.
        self.live: dict[int, CallContext] = {}
        self.ids = itertools.count(1)

    def open(self, ctx: CallContext) -> int:
        handle = next(self.ids)
        self.live[handle] = ctx
        return handle

    def close(self, handle: int) -> None:
        self.live.pop(handle, None)

    def get(self, handle: int) -> CallContext | None:
        return self.live.get(handle)

    def __len__(self) -> int:
        return len(self.live)


#: The process-wide table the host-API callbacks consult.
CALLS = CallTable()
