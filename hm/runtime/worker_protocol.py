"""The worker protocol's vocabulary and framing (docs/worker-protocol.md).

Message types, operation and function codes, and the two halves of framing: a
frame is a 4-byte little-endian length and a msgpack array. Nothing here does
I/O; :mod:`hm.runtime.worker` owns the pipes.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

from hm.runtime.limits import MAX_MESSAGE_BYTES

PROTOCOL_MAJOR: Final = 1
PROTOCOL_MINOR: Final = 0
MAX_FRAME: Final = MAX_MESSAGE_BYTES


class Msg(enum.IntEnum):
    HELLO = 0
    LOAD = 1
    LOADED = 2
    CALL = 3
    RESULT = 4
    CANCEL = 5
    REQUEST = 6
    REPLY = 7
    NOTIFY = 8
    SHUTDOWN = 9


#: CALL operations: the ``Op`` values of the transport seam, plus manifest.
OP_MANIFEST: Final = 0


class Request(enum.IntEnum):
    KV_GET = 1
    KV_SET = 2
    EMIT_EVENT = 3
    ARCHIVE_READ = 4
    ARCHIVE_SIZE = 5
    FS_READ_CONFIG = 6
    #: Since ABI 1.1: ``[scope, key, expected (bin, or nil: absent), value]``.
    KV_CAS = 7


class Note(enum.IntEnum):
    LOG = 1
    STEP_LOG = 2
    STDOUT = 3
    STDERR = 4


class LoadCode(enum.IntEnum):
    LOADED = 0
    OPEN_FAILED = 1
    NO_ENTRY = 2
    REFUSED = 3


_encode = msgspec.msgpack.Encoder().encode


def frame(message: list[object]) -> bytes:
    """One frame: length prefix and the msgpack array."""
    body = _encode(message)
    return len(body).to_bytes(4, "little") + body


class FrameError(Exception):
    """The peer broke the protocol: a frame length of 0 or over MAX_FRAME, or a
    frame that is not a msgpack array starting with a message type."""


_decode = msgspec.msgpack.Decoder().decode


def take_frames(buf: bytearray) -> list[list[object]]:
    """Decode the complete frames at the start of ``buf`` and remove them from it.

    :raises FrameError: see the class.
    """
    messages: list[list[object]] = []
    pos, end = 0, len(buf)
    with memoryview(buf) as view:
        while end - pos >= 4:
            n = int.from_bytes(view[pos : pos + 4], "little")
            if n == 0 or n > MAX_FRAME:
                raise FrameError(f"a frame of {n} bytes (the limit is {MAX_FRAME})")
            if end - pos - 4 < n:
                break
            try:
                message = _decode(view[pos + 4 : pos + 4 + n])
            except (msgspec.DecodeError, RecursionError) as exc:
                raise FrameError(f"a frame that is not msgpack ({exc})") from None
            if not isinstance(message, list) or not message or not isinstance(message[0], int):
                raise FrameError("a frame that is not an array starting with a message type")
            messages.append(message)
            pos += 4 + n
    if pos:
        del buf[:pos]
    return messages
