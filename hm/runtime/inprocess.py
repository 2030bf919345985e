"""The in-process transport: a library loaded into hm, called through the bridge.

Fastest, and trusted: the plugin is code in hm's address space. A crash there
cannot be contained, but it is named (the bridge's last words, see ``loader``).
The GIL is released during each call, so steps run in parallel threads.
"""

from __future__ import annotations

import threading
from typing import Any

from hm.runtime._ffi import ffi, lib
from hm.runtime.calls import CALLS, CallContext
from hm.runtime.loader import NativeLibrary, label_for

__all__ = ["InProcessTransport"]

_SCRATCH_BYTES = 64 * 1024


class _ThreadBuffers(threading.local):
    """Per-thread output buffers, so concurrent steps never share one."""

    def __init__(self) -> None:
        scratch = ffi.new("char[]", _SCRATCH_BYTES)
        #: (scratch, status, big) in one attribute: one thread-local lookup per call.
        self.bufs = (scratch, ffi.new("hm_status_t *"), ffi.new("hm_buf_t *"))


_buffers = _ThreadBuffers()
_live, _take = CALLS.live, CALLS.take


class InProcessTransport:
    """Calls a :class:`NativeLibrary` directly."""

    __slots__ = ("_inst", "_label", "_lib", "_vt", "owner")

    kind = "in-process"

    def __init__(self, native: NativeLibrary) -> None:
        self._lib = native
        self._vt = native.vtable
        self._inst = native.instance
        self._label = native.path.encode("utf-8", "replace")  # the loader told the bridge
        #: The bridge slot: host calls through another slot's table are refused.
        self.owner = native.slot

    @property
    def path(self) -> str:
        return self._lib.path

    @property
    def abi(self) -> tuple[int, int]:
        return (self._lib.abi_major, self._lib.abi_minor)

    @property
    def facts(self) -> Any:
        return self._lib.facts

    def set_name(self, name: str) -> None:
        """Name the plugin in crash messages once its manifest is known."""
        self._label = label_for(self._lib.slot, f"{name} ({self._lib.path})", self._lib.path)

    def offers(self, op: int) -> bool:
        return bool(self._lib.offers & (1 << (int(op) - 1)))

    def manifest(self, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]:
        out = ffi.new("hm_buf_t *")
        handle = CALLS.open(ctx)
        try:
            status = lib.hm_bridge_manifest(self._vt, self._inst, handle, out, self._label)
        finally:
            CALLS.close(handle)
        return status, self._take(out)

    def call(self, op: int, payload: bytes, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]:
        # Hot path: `op` is a plain int (cffi converts an IntEnum argument slowly) and
        # the output is copied with ffi.unpack, the cheapest copy cffi offers.
        scratch, status, big = _buffers.bufs
        handle = _take()
        _live[handle] = ctx
        step = ctx.step_key
        try:
            size = lib.hm_bridge_invoke(
                self._vt,
                self._inst,
                self.owner,
                op,
                handle,
                payload,
                len(payload),
                scratch,
                _SCRATCH_BYTES,
                status,
                big,
                self._label,
                step.encode() if step else b"",
            )
        finally:
            del _live[handle]
        if size <= _SCRATCH_BYTES:
            return status[0], ffi.unpack(scratch, size)
        return status[0], self._take(big)

    def session_open(self, handle: int, payload: bytes, ctx: CallContext) -> tuple[int, bytes]:
        """Run ``session_open`` (ABI 1.1) under ``handle``, chosen by the caller because
        it also names the session in :meth:`session_control`. Blocks until the session ends."""
        scratch, status, big = _buffers.bufs
        _live[handle] = ctx
        try:
            size = lib.hm_bridge_invoke(
                self._vt,
                self._inst,
                self.owner,
                4,  # HM_BRIDGE_OP_SESSION_OPEN
                handle,
                payload,
                len(payload),
                scratch,
                _SCRATCH_BYTES,
                status,
                big,
                self._label,
                (ctx.step_key or "").encode(),
            )
        finally:
            del _live[handle]
        if size <= _SCRATCH_BYTES:
            return status[0], ffi.unpack(scratch, size)
        return status[0], self._take(big)

    def session_control(self, handle: int, what: int, data: bytes, a: int, b: int) -> int:
        """``session_write/resize/signal/close`` (``HM_BRIDGE_SESSION_*``) of a running session."""
        return int(lib.hm_bridge_session_ctl(self._vt, self._inst, what, handle, data, len(data), a, b))

    def _take(self, out: Any) -> bytes:
        """Copy the plugin's output and release it through the plugin's own ``free``."""
        if out.ptr == ffi.NULL:
            return b""
        try:
            return ffi.buffer(out.ptr, out.len)[:]
        finally:
            lib.hm_bridge_release(self._vt, self._inst, out)

    def close(self) -> None:
        """Nothing to do: a library in process stays loaded until hm exits."""

    def kill(self) -> None:
        """Nothing can be stopped in process."""
