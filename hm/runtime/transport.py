"""How bytes reach a plugin. Callers above this layer see only :class:`Transport`.

:class:`InProcessTransport` calls the vtable of a library loaded in this process
through the bridge's C trampolines (the GIL is released during the call). A
transport to a worker process would implement the same methods, carrying the
host-API callbacks back over its channel; nothing above it would change.
"""

from __future__ import annotations

import enum
import threading
from typing import Protocol

from hm.runtime._ffi import ffi, lib
from hm.runtime.calls import CALLS, CallContext
from hm.runtime.loader import NativeLibrary


class Op(enum.IntEnum):
    """Capability entries of the vtable (``HM_BRIDGE_OP_*``)."""

    EXECUTE_STEP = 1
    ON_HOOK_EVENT = 2
    RUN_SUBCOMMAND = 3


_SCRATCH_BYTES = 64 * 1024


class _ThreadBuffers(threading.local):
    """Per-thread output buffers, so concurrent steps never share one."""

    def __init__(self) -> None:
        scratch = ffi.new("char[]", _SCRATCH_BYTES)
        #: (scratch, status, big) in one attribute: one thread-local lookup per call.
        self.bufs = (scratch, ffi.new("hm_status_t *"), ffi.new("hm_buf_t *"))


_buffers = _ThreadBuffers()
_live, _ids = CALLS.live, CALLS.ids


class Transport(Protocol):
    """Raw access to one plugin: msgpack bytes in, ``(status, bytes)`` out."""

    @property
    def path(self) -> str: ...

    @property
    def abi(self) -> tuple[int, int]:
        """The ``(major, minor)`` the plugin was built against."""
        ...

    def manifest(self, ctx: CallContext) -> tuple[int, bytes]: ...

    def call(self, op: int, payload: bytes, ctx: CallContext) -> tuple[int, bytes]:
        """Run capability ``op`` (an :class:`Op` value) with a fresh call handle."""
        ...

    def offers(self, op: Op) -> bool: ...


class InProcessTransport:
    """Calls a :class:`NativeLibrary` directly."""

    __slots__ = ("_inst", "_lib", "_vt")

    def __init__(self, native: NativeLibrary) -> None:
        self._lib = native
        self._vt = native.vtable
        self._inst = native.instance

    @property
    def path(self) -> str:
        return self._lib.path

    @property
    def abi(self) -> tuple[int, int]:
        return (self._lib.abi_major, self._lib.abi_minor)

    def offers(self, op: Op) -> bool:
        return bool(self._lib.offers & (1 << (int(op) - 1)))

    def manifest(self, ctx: CallContext) -> tuple[int, bytes]:
        out = ffi.new("hm_buf_t *")
        handle = CALLS.open(ctx)
        try:
            status = lib.hm_bridge_manifest(self._vt, self._inst, handle, out)
        finally:
            CALLS.close(handle)
        return status, self._take(out)

    def call(self, op: int, payload: bytes, ctx: CallContext) -> tuple[int, bytes]:
        # Hot path: `op` is a plain int (cffi converts an IntEnum argument slowly) and
        # the output is copied with ffi.unpack, the cheapest copy cffi offers.
        scratch, status, big = _buffers.bufs
        handle = next(_ids)
        _live[handle] = ctx
        try:
            size = lib.hm_bridge_invoke(
                self._vt, self._inst, op, handle, payload, len(payload), scratch, _SCRATCH_BYTES, status, big
            )
        finally:
            del _live[handle]
        if size <= _SCRATCH_BYTES:
            return status[0], ffi.unpack(scratch, size)
        return status[0], self._take(big)

    def _take(self, out: object) -> bytes:
        """Copy the plugin's output and release it through the plugin's own ``free``."""
        if out.ptr == ffi.NULL:  # type: ignore[attr-defined]
            return b""
        try:
            return ffi.buffer(out.ptr, out.len)[:]  # type: ignore[attr-defined]
        finally:
            lib.hm_bridge_release(self._vt, self._inst, out)
