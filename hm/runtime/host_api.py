"""The host-API table's Python side: one ``@ffi.def_extern`` per C function.

Each callback looks up its call handle, forwards to the call's
:class:`~hm.runtime.host_services.HostServices` and returns an ``hm_status_t``.
Nothing raises into C: a :class:`HostStatus` becomes its code, an unexpected
exception is logged and becomes ``HM_ERR_INTERNAL``. cffi's ``onerror`` is a
second net for anything that escapes (e.g. KeyboardInterrupt between lines).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from hm.runtime._ffi import ffi, lib
from hm.runtime.calls import CALLS, CallContext
from hm.runtime.host_services import HostStatus
from hm_plugin_sdk.abi import KvScope, LogLevel, Status, Stream
from hm_plugin_sdk.protocol import PluginEvent

log = logging.getLogger("hm.runtime")

_OK = int(Status.OK)
_STALE = int(Status.ERR_STALE_CALL)
_INVALID = int(Status.ERR_INVALID_ARGUMENT)
_F = TypeVar("_F", bound=Callable[..., int])


def _on_error(exception: type[BaseException] | None, exc_value: BaseException | None, tb: Any) -> int:
    log.error("host-API callback failed: %r", exc_value)
    return int(Status.ERR_INTERNAL)


def _guard(fn: _F) -> _F:
    """Turn exceptions into status codes; the stale-handle check is done by each callback."""

    def wrapper(*args: Any) -> int:
        try:
            return fn(*args)
        except HostStatus as exc:
            return int(exc.status)
        except (OSError, sqlite3.Error):
            log.exception("host-API I/O error")
            return int(Status.ERR_IO)
        except MemoryError:
            return int(Status.ERR_NO_MEMORY)
        except Exception:
            log.exception("host-API callback failed")
            return int(Status.ERR_INTERNAL)

    wrapper.__name__ = fn.__name__
    return wrapper  # type: ignore[return-value]


def _bytes(ptr: Any, length: int) -> bytes:
    return ffi.buffer(ptr, length)[:] if length else b""


def _ctx(call: int) -> CallContext:
    ctx = CALLS.get(call)
    if ctx is None:
        raise HostStatus(Status.ERR_STALE_CALL)
    return ctx


def _hand_over(data: bytes, out: Any) -> int:
    """Copy ``data`` into host-malloc'd memory the plugin frees with ``host->free``."""
    if out == ffi.NULL:
        return _INVALID
    return int(lib.hm_bridge_host_copy(data, len(data), out))


def _scope(value: int) -> KvScope:
    try:
        return KvScope(value)
    except ValueError:
        raise HostStatus(Status.ERR_INVALID_ARGUMENT) from None


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_log(call: int, level: int, msg: Any, msg_len: int) -> int:
    ctx = _ctx(call)
    text = _bytes(msg, msg_len).decode("utf-8", "replace")
    ctx.services.log(ctx, level if level in LogLevel._value2member_map_ else int(LogLevel.INFO), text)
    return _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_kv_get(call: int, scope: int, key: Any, key_len: int, out: Any) -> int:
    ctx = _ctx(call)
    if out == ffi.NULL:
        return _INVALID
    value = ctx.services.kv_get(ctx, _scope(scope), _bytes(key, key_len))
    if value is None:
        return int(Status.ERR_NOT_FOUND)
    return _hand_over(value, out)


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_kv_set(call: int, scope: int, key: Any, key_len: int, value: Any, value_len: int) -> int:
    ctx = _ctx(call)
    ctx.services.kv_set(ctx, _scope(scope), _bytes(key, key_len), _bytes(value, value_len))
    return _OK


_event_decoder = msgspec.msgpack.Decoder(PluginEvent)


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_emit_event(call: int, msg: Any, msg_len: int) -> int:
    ctx = _ctx(call)
    try:
        event = _event_decoder.decode(_bytes(msg, msg_len))
    except msgspec.DecodeError:
        return _INVALID
    ctx.services.emit_event(ctx, event)
    return _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_emit_step_log(call: int, stream: int, data: Any, data_len: int) -> int:
    ctx = _ctx(call)
    if stream not in (1, 2):
        return _INVALID
    ctx.services.step_log(ctx, Stream(stream), _bytes(data, data_len))
    return _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_should_cancel(call: int) -> int:
    ctx = CALLS.get(call)
    if ctx is None:
        return _STALE
    return int(Status.CANCELLED) if ctx.services.should_cancel(ctx) else _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_write_stdout(call: int, data: Any, data_len: int) -> int:
    ctx = _ctx(call)
    ctx.services.write_stdout(ctx, _bytes(data, data_len))
    return _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_write_stderr(call: int, data: Any, data_len: int) -> int:
    ctx = _ctx(call)
    ctx.services.write_stderr(ctx, _bytes(data, data_len))
    return _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_archive_read(call: int, offset: int, buf: Any, cap: int, out_read: Any) -> int:
    ctx = _ctx(call)
    if out_read == ffi.NULL or (buf == ffi.NULL and cap):
        return _INVALID
    chunk = ctx.services.archive_read(ctx, offset, cap)
    if chunk:
        ffi.memmove(buf, chunk, len(chunk))
    out_read[0] = len(chunk)
    return _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_archive_total_size(call: int, out_size: Any) -> int:
    ctx = _ctx(call)
    if out_size == ffi.NULL:
        return _INVALID
    out_size[0] = ctx.services.archive_size(ctx)
    return _OK


@ffi.def_extern(onerror=_on_error)
@_guard
def hm_py_fs_read_config(call: int, path: Any, path_len: int, out: Any) -> int:
    ctx = _ctx(call)
    try:
        rel = _bytes(path, path_len).decode("utf-8")
    except UnicodeDecodeError:
        return _INVALID
    return _hand_over(ctx.services.read_config(ctx, rel), out)


def host_api() -> Any:
    """The host table handed to every plugin (``const hm_host_api_t *``)."""
    return lib.hm_bridge_host_api()

