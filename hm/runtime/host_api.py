"""The in-process host-API tables' Python side: one ``@ffi.def_extern`` per C function.

Every loaded plugin has its own table (a bridge *slot*), and each callback gets
the slot it was called through. A callback looks up its call handle, refuses a
handle that belongs to another plugin's call (``HM_ERR_DENIED``), converts C
arguments to Python values and hands them to :mod:`hm.runtime.host_calls`, the
one implementation every transport shares. Nothing raises into C: cffi's
``onerror`` is a last net for anything that escapes (e.g. KeyboardInterrupt
between lines).
"""

from __future__ import annotations

import logging
from typing import Any

from hm.runtime import host_calls
from hm.runtime._ffi import ffi, lib
from hm.runtime.calls import CALLS, CallContext
from hm.runtime.host_services import HostStatus
from hm_plugin_sdk.abi import Status, Stream

log = logging.getLogger("hm.runtime")

_OK = int(Status.OK)
_STALE = int(Status.ERR_STALE_CALL)
_DENIED = int(Status.ERR_DENIED)
_INVALID = int(Status.ERR_INVALID_ARGUMENT)
_CANCELLED = int(Status.CANCELLED)
_live = CALLS.live
_STREAMS = (Stream.STDOUT, Stream.STDOUT, Stream.STDERR)  # indexed by the stream number (1, 2)


def _on_error(exception: type[BaseException] | None, exc_value: BaseException | None, tb: Any) -> int:
    log.error("host-API callback failed: %r", exc_value)
    return int(Status.ERR_INTERNAL)


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _ctx(slot: int, call: int) -> CallContext:
    ctx = _live.get(call)
    if ctx is None:
        raise _Refused(_STALE)
    if ctx.owner != slot:
        log.warning(
            "a plugin in bridge slot %d used the call handle of %s (%s) and was refused", slot, ctx.plugin, ctx.path
        )
        raise _Refused(_DENIED)
    return ctx


def _bytes(ptr: Any, length: int) -> bytes:
    return ffi.buffer(ptr, length)[:] if length else b""


def _hand_over(data: bytes, out: Any) -> int:
    """Copy ``data`` into host-malloc'd memory the plugin frees with ``host->free``."""
    return int(lib.hm_bridge_host_copy(data, len(data), out))


@ffi.def_extern(onerror=_on_error)
def hm_py_log(slot: int, call: int, level: int, msg: Any, msg_len: int) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if msg == ffi.NULL and msg_len:
        return _INVALID
    return host_calls.log_message(ctx, level, _bytes(msg, msg_len))[0]


@ffi.def_extern(onerror=_on_error)
def hm_py_kv_get(slot: int, call: int, scope: int, key: Any, key_len: int, out: Any) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if out == ffi.NULL or (key == ffi.NULL and key_len):
        return _INVALID
    status, value = host_calls.kv_get(ctx, scope, _bytes(key, key_len))
    return _hand_over(value, out) if status == _OK else status


@ffi.def_extern(onerror=_on_error)
def hm_py_kv_set(slot: int, call: int, scope: int, key: Any, key_len: int, value: Any, value_len: int) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if (key == ffi.NULL and key_len) or (value == ffi.NULL and value_len):
        return _INVALID
    return host_calls.kv_set(ctx, scope, _bytes(key, key_len), _bytes(value, value_len))[0]


@ffi.def_extern(onerror=_on_error)
def hm_py_kv_compare_and_swap(
    slot: int,
    call: int,
    scope: int,
    key: Any,
    key_len: int,
    has_expected: int,
    expected: Any,
    expected_len: int,
    value: Any,
    value_len: int,
) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if (key == ffi.NULL and key_len) or (value == ffi.NULL and value_len):
        return _INVALID
    old = _bytes(expected, expected_len) if has_expected else None
    return host_calls.kv_compare_and_swap(ctx, scope, _bytes(key, key_len), old, _bytes(value, value_len))[0]


@ffi.def_extern(onerror=_on_error)
def hm_py_session_output(slot: int, call: int, data: Any, data_len: int) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if data == ffi.NULL and data_len:
        return _INVALID
    return host_calls.session_output(ctx, _bytes(data, data_len))[0]


@ffi.def_extern(onerror=_on_error)
def hm_py_emit_event(slot: int, call: int, msg: Any, msg_len: int) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if msg == ffi.NULL and msg_len:
        return _INVALID
    return host_calls.emit_event(ctx, _bytes(msg, msg_len))[0]


@ffi.def_extern(onerror=_on_error)
def hm_py_emit_step_log(slot: int, call: int, stream: int, data: Any, data_len: int) -> int:
    # The hottest callback (one per chunk of step output): no detour through host_calls.
    ctx = _live.get(call)
    if ctx is None:
        return _STALE
    if ctx.owner != slot:
        try:
            _ctx(slot, call)  # logs the refusal
        except _Refused as r:
            return r.status
    if (stream != 1 and stream != 2) or (data == ffi.NULL and data_len):
        return _INVALID
    try:
        ctx.services.step_log(ctx, _STREAMS[stream], ffi.buffer(data, data_len)[:] if data_len else b"")
    except HostStatus as exc:
        return int(exc.status)
    except Exception as exc:
        return host_calls.status_of(exc)
    return _OK


@ffi.def_extern(onerror=_on_error)
def hm_py_should_cancel(slot: int, call: int) -> int:
    ctx = _live.get(call)
    if ctx is None:
        return _STALE
    if ctx.owner != slot:
        try:
            _ctx(slot, call)
        except _Refused as r:
            return r.status
    try:
        return _CANCELLED if ctx.services.should_cancel(ctx) else _OK
    except Exception as exc:
        return host_calls.status_of(exc)


@ffi.def_extern(onerror=_on_error)
def hm_py_write_stdout(slot: int, call: int, data: Any, data_len: int) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if data == ffi.NULL and data_len:
        return _INVALID
    return host_calls.write_stdout(ctx, _bytes(data, data_len))[0]


@ffi.def_extern(onerror=_on_error)
def hm_py_write_stderr(slot: int, call: int, data: Any, data_len: int) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if data == ffi.NULL and data_len:
        return _INVALID
    return host_calls.write_stderr(ctx, _bytes(data, data_len))[0]


@ffi.def_extern(onerror=_on_error)
def hm_py_archive_read(slot: int, call: int, offset: int, buf: Any, cap: int, out_read: Any) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if out_read == ffi.NULL or (buf == ffi.NULL and cap):
        return _INVALID
    status, chunk = host_calls.archive_read(ctx, offset, cap)
    if status != _OK:
        return status
    if chunk:
        ffi.memmove(buf, chunk, len(chunk))
    out_read[0] = len(chunk)
    return _OK


@ffi.def_extern(onerror=_on_error)
def hm_py_archive_total_size(slot: int, call: int, out_size: Any) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if out_size == ffi.NULL:
        return _INVALID
    status, size = host_calls.archive_size(ctx)
    if status == _OK:
        out_size[0] = size
    return status


@ffi.def_extern(onerror=_on_error)
def hm_py_fs_read_config(slot: int, call: int, path: Any, path_len: int, out: Any) -> int:
    try:
        ctx = _ctx(slot, call)
    except _Refused as r:
        return r.status
    if out == ffi.NULL or (path == ffi.NULL and path_len):
        return _INVALID
    status, data = host_calls.read_config(ctx, _bytes(path, path_len))
    return _hand_over(data, out) if status == _OK else status
