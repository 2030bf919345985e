"""The host API's behaviour, written once for every transport.

Each function takes the :class:`~hm.runtime.calls.CallContext` of the call it
serves and plain Python values, checks its arguments, forwards to the call's
:class:`~hm.runtime.host_services.HostServices`, and returns ``(status, value)``.
The in-process callbacks (``host_api``) and the worker connection (``worker``)
are thin adapters around these, so a plugin sees the same answers wherever it
runs. Nothing here raises: every exception becomes a status code.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from hm.runtime.calls import CallContext
from hm.runtime.host_services import HostStatus
from hm.runtime.limits import MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES, MAX_MESSAGE_BYTES, MAX_NESTING, nesting_depth
from hm_plugin_sdk.abi import KvScope, LogLevel, Status, Stream
from hm_plugin_sdk.protocol import PluginEvent

__all__ = [
    "archive_read",
    "archive_size",
    "emit_event",
    "guarded",
    "kv_compare_and_swap",
    "kv_get",
    "kv_set",
    "log_message",
    "read_config",
    "session_output",
    "should_cancel",
    "step_log",
    "write_stderr",
    "write_stdout",
]

log = logging.getLogger("hm.runtime")

OK = int(Status.OK)
_INVALID = int(Status.ERR_INVALID_ARGUMENT)
_F = TypeVar("_F", bound=Callable[..., Any])
Answer = tuple[int, Any]


def status_of(exc: BaseException) -> int:
    """The status a host function returns for an exception raised while serving it."""
    if isinstance(exc, HostStatus):
        return int(exc.status)
    if isinstance(exc, (OSError, sqlite3.Error)):
        log.warning("host-API I/O error: %s", exc)
        return int(Status.ERR_IO)
    if isinstance(exc, MemoryError):
        return int(Status.ERR_NO_MEMORY)
    log.error("host-API function failed: %r", exc, exc_info=exc)
    return int(Status.ERR_INTERNAL)


def guarded(fn: _F) -> _F:
    """Turn any exception of ``fn`` into ``(status, None)``."""

    def wrapper(*args: Any) -> Answer:
        try:
            return fn(*args)
        except Exception as exc:
            return status_of(exc), None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper  # type: ignore[return-value]


def _scope(value: int) -> KvScope:
    try:
        return KvScope(value)
    except ValueError:
        raise HostStatus(Status.ERR_INVALID_ARGUMENT) from None


def _refuse_ext(code: int, data: memoryview) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed in a PluginEvent")


_event_decoder = msgspec.msgpack.Decoder(PluginEvent, ext_hook=_refuse_ext)


@guarded
def log_message(ctx: CallContext, level: int, msg: bytes) -> Answer:
    text = msg[:MAX_MESSAGE_BYTES].decode("utf-8", "replace")
    ctx.services.log(ctx, level if level in LogLevel._value2member_map_ else int(LogLevel.INFO), text)
    return OK, None


@guarded
def kv_get(ctx: CallContext, scope: int, key: bytes) -> Answer:
    if len(key) > MAX_KV_KEY_BYTES:
        return _INVALID, None
    value = ctx.services.kv_get(ctx, _scope(scope), key)
    if value is None:
        return int(Status.ERR_NOT_FOUND), None
    return OK, value


@guarded
def kv_set(ctx: CallContext, scope: int, key: bytes, value: bytes) -> Answer:
    if len(key) > MAX_KV_KEY_BYTES or len(value) > MAX_KV_VALUE_BYTES:
        return _INVALID, None
    ctx.services.kv_set(ctx, _scope(scope), key, value)
    return OK, None


@guarded
def kv_compare_and_swap(ctx: CallContext, scope: int, key: bytes, expected: bytes | None, value: bytes) -> Answer:
    """Since 1.1: ``value`` under ``key`` if the stored value is ``expected``
    (``None``: absent); CONFLICT when it is not, and nothing is written."""
    too_big = expected is not None and len(expected) > MAX_KV_VALUE_BYTES
    if len(key) > MAX_KV_KEY_BYTES or len(value) > MAX_KV_VALUE_BYTES or too_big:
        return _INVALID, None
    swapped = ctx.services.kv_compare_and_swap(ctx, _scope(scope), key, expected, value)
    return (OK if swapped else int(Status.ERR_CONFLICT)), None


@guarded
def session_output(ctx: CallContext, data: bytes) -> Answer:
    """Since 1.1: terminal output of the session a ``session_open`` call runs."""
    if ctx.op != "session_open":
        return int(Status.ERR_UNAVAILABLE), None
    ctx.services.session_output(ctx, data)
    return OK, None


@guarded
def emit_event(ctx: CallContext, msg: bytes) -> Answer:
    """A PluginEvent: refused (INVALID_ARGUMENT) when it is not one, is too large,
    nests deeper than MAX_NESTING or carries msgpack extension types."""
    if len(msg) > MAX_MESSAGE_BYTES:
        return _INVALID, None
    try:
        event = _event_decoder.decode(msg)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError):
        return _INVALID, None
    if nesting_depth(event.data) > MAX_NESTING:
        return _INVALID, None
    ctx.services.emit_event(ctx, event)
    return OK, None


@guarded
def step_log(ctx: CallContext, stream: int, data: bytes) -> Answer:
    if stream not in (1, 2):
        return _INVALID, None
    ctx.services.step_log(ctx, Stream(stream), data)
    return OK, None


@guarded
def should_cancel(ctx: CallContext) -> Answer:
    return (int(Status.CANCELLED) if ctx.services.should_cancel(ctx) else OK), None


@guarded
def write_stdout(ctx: CallContext, data: bytes) -> Answer:
    ctx.services.write_stdout(ctx, data)
    return OK, None


@guarded
def write_stderr(ctx: CallContext, data: bytes) -> Answer:
    ctx.services.write_stderr(ctx, data)
    return OK, None


@guarded
def archive_read(ctx: CallContext, offset: int, cap: int) -> Answer:
    if offset < 0 or cap < 0:
        return _INVALID, None
    return OK, ctx.services.archive_read(ctx, offset, min(cap, MAX_MESSAGE_BYTES))


@guarded
def archive_size(ctx: CallContext) -> Answer:
    return OK, ctx.services.archive_size(ctx)


@guarded
def read_config(ctx: CallContext, path: bytes) -> Answer:
    try:
        rel = path.decode("utf-8")
    except UnicodeDecodeError:
        return _INVALID, None
    return OK, ctx.services.read_config(ctx, rel)
