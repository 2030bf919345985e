"""The stdio protocol's vocabulary and framing (docs/stdio-protocol.md).

JSON-RPC 2.0, one message per line (UTF-8 JSON, ``\\n``-terminated, as MCP's
stdio transport). This module names the methods and error codes and splits a
byte buffer into messages; :mod:`hm.runtime.stdio` owns the pipes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import msgspec

from hm.runtime.limits import MAX_MESSAGE_BYTES
from hm.runtime.worker_protocol import FrameError

__all__ = [
    "HOST_NOTIFICATIONS",
    "HOST_REQUESTS",
    "MAX_LINE",
    "OP_METHODS",
    "PROTOCOL_MAJOR",
    "PROTOCOL_MINOR",
    "STDIO_PROTOCOL",
    "RpcCode",
    "b64decode",
    "b64encode",
    "encode",
    "take_lines",
]

PROTOCOL_MAJOR: Final = 1
PROTOCOL_MINOR: Final = 0
#: ``(major, minor)``, for messages outside the runtime.
STDIO_PROTOCOL: Final = (PROTOCOL_MAJOR, PROTOCOL_MINOR)
#: The longest line either side may send, newline excluded.
MAX_LINE: Final = MAX_MESSAGE_BYTES

#: hm→plugin methods by the transport's op codes (0 is manifest).
OP_METHODS: Final = {0: "manifest", 1: "execute_step", 2: "on_hook_event", 3: "run_subcommand"}
#: plugin→hm requests (answered) and notifications (one-way): every host-API function.
HOST_REQUESTS: Final = frozenset(
    {"kv_get", "kv_set", "emit_event", "should_cancel", "archive_read", "archive_total_size", "fs_read_config"}
)
HOST_NOTIFICATIONS: Final = frozenset({"log", "emit_step_log", "write_stdout", "write_stderr"})


class RpcCode:
    """JSON-RPC error codes hm sends or understands. A host-API function that
    answers a non-OK ``hm_status_t`` answers an error whose code is that status
    (1..11), so the codes below never collide with it."""

    PARSE_ERROR: Final = -32700
    INVALID_REQUEST: Final = -32600
    METHOD_NOT_FOUND: Final = -32601
    INVALID_PARAMS: Final = -32602
    INTERNAL_ERROR: Final = -32603
    #: A capability failed; ``data`` is its PluginError.
    PLUGIN_ERROR: Final = -32000
    #: The call was cancelled (the answer to a call hm gave up on, if any).
    CANCELLED: Final = -32800


_encoder = msgspec.json.Encoder()
_decode = msgspec.json.decode


def encode(message: dict[str, Any]) -> bytes:
    """One line: the JSON of ``message`` and its newline."""
    return _encoder.encode(message) + b"\n"


def _excerpt(raw: bytes | memoryview) -> str:
    text = bytes(raw[:60]).decode("utf-8", "replace")
    return repr(text + ("…" if len(raw) > 60 else ""))


def take_lines(buf: bytearray, scanned: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Decode the complete lines at the start of ``buf`` and remove them from it.

    ``scanned`` is how many bytes at the start of ``buf`` are known to hold no
    newline (what the previous call returned), so a long line arriving in many
    reads is searched once, not once per read. Returns the messages and the new
    ``scanned``. Blank lines are skipped.

    :raises FrameError: a line that is not a JSON object, or longer than MAX_LINE
        (also while it is still incomplete: hm never holds more than that).
    """
    messages: list[dict[str, Any]] = []
    pos = 0
    find = buf.find
    with memoryview(buf) as view:
        end = find(b"\n", scanned)
        while end >= 0:
            if end - pos > MAX_LINE:
                raise FrameError(f"a line of {end - pos} bytes on stdout, more than {MAX_LINE} bytes (64 MiB)")
            with view[pos:end] as line:
                pos = end + 1
                try:
                    message = _decode(line)
                except (msgspec.DecodeError, RecursionError):
                    if not bytes(line).strip():
                        end = find(b"\n", pos)
                        continue
                    raise FrameError(f"a line on stdout that is not JSON: {_excerpt(line)}") from None
                if type(message) is not dict:
                    raise FrameError(f"a line on stdout that is not a JSON-RPC message object: {_excerpt(line)}")
            messages.append(message)
            end = find(b"\n", pos)
    left = len(buf) - pos
    if left > MAX_LINE:
        raise FrameError(f"a line longer than {MAX_LINE} bytes (64 MiB) on stdout")
    if pos:
        del buf[:pos]
    return messages, left


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object) -> bytes:
    """Strict base64 (RFC 4648 alphabet, padding required).

    :raises ValueError: ``text`` is not a string of valid base64.
    """
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not valid base64: {text[:40]!r}") from None
