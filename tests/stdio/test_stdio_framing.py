"""The stdio protocol's framing (hm.runtime.stdio_protocol.take_lines): lines
split across reads, blank lines and CRLF, and the named errors for what is not
a message."""

from __future__ import annotations

import pytest

from hm.runtime.stdio_protocol import MAX_LINE, b64decode, take_lines
from hm.runtime.worker_protocol import FrameError


def test_lines_arriving_in_pieces_are_decoded_once_complete() -> None:
    buf = bytearray(b'{"id":1,"result":{}}\n{"id":2,')
    messages, scanned = take_lines(buf)
    assert messages == [{"id": 1, "result": {}}]
    assert bytes(buf) == b'{"id":2,' and scanned == len(buf)
    buf += b'"result":null}\r\n\n   \n{"method":"log"'
    messages, scanned = take_lines(buf, scanned)
    assert messages == [{"id": 2, "result": None}]
    assert bytes(buf) == b'{"method":"log"' and scanned == len(buf)


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (b"Hello world\n", "a line on stdout that is not JSON: 'Hello world'"),
        (b"[1, 2]\n", "a line on stdout that is not a JSON-RPC message object: '[1, 2]'"),
        (b'"text"\n', "not a JSON-RPC message object"),
    ],
)
def test_what_is_not_a_message_is_named(line: bytes, what: str) -> None:
    with pytest.raises(FrameError, match=what.replace("[", r"\[").replace("]", r"\]")):
        take_lines(bytearray(line))


def test_an_endless_line_is_refused_before_it_is_complete() -> None:
    buf = bytearray(b"x" * (MAX_LINE + 1))
    with pytest.raises(FrameError, match="a line longer than 67108864 bytes"):
        take_lines(buf)


def test_base64_is_strict() -> None:
    assert b64decode("aGk=") == b"hi"
    for bad in ("aGk", "not base64!", 3):
        with pytest.raises(ValueError):
            b64decode(bad)
