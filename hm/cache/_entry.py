"""One cache entry: what a stored step left (its workspace's nodes, its log) and
where it came from, and the file format that carries it.

An entry file is ``hm-step-cache-entry 1`` and a newline, the SHA-256 (hex) of
the body and a newline, then the body: the :class:`Entry` as msgpack. The digest
is checked on every read, so a torn write (a crash, a full disk) or a flipped
bit is found and the entry discarded, never used.

The log is a blob of its own: msgpack ``[[stream, line], ...]`` with stream
``0`` for stdout and ``1`` for stderr.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from hm.cache._tree import FileNode

__all__ = ["CorruptEntry", "Entry", "decode_entry", "decode_log", "encode_entry", "encode_log"]

_MAGIC: Final = b"hm-step-cache-entry 1\n"
_STREAMS: Final = ("stdout", "stderr")


class Entry(msgspec.Struct, kw_only=True, frozen=True):
    """A stored step. ``files`` are in path order; their contents are blobs."""

    key: str
    #: When it was stored (RFC 3339, UTC).
    created: str
    #: The run that stored it, the pipeline and the step.
    run_id: str
    pipeline: str
    step_key: str
    runner: str
    plugin: str
    plugin_version: str
    image: str | None = None
    image_id: str | None = None
    #: How long the step took when it ran.
    duration_ms: int = 0
    #: :func:`hm.cache._tree.tree_digest` of ``files``.
    tree: str
    files: list[FileNode]
    #: The log blob's digest and its number of lines.
    log: str
    log_lines: int = 0
    #: Bytes of file content and log, each blob counted once per entry.
    size: int = 0

    def blobs(self) -> set[str]:
        """The digests of every blob the entry needs."""
        found = {n.digest for n in self.files if n.kind == "f"}
        found.add(self.log)
        return found


class CorruptEntry(Exception):
    """An entry or blob whose bytes do not match its digest (or do not decode)."""


def encode_entry(entry: Entry) -> bytes:
    body = msgspec.msgpack.encode(entry)
    return _MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def decode_entry(data: bytes) -> Entry:
    """:raises CorruptEntry: bad header, digest mismatch, or a body that is not an entry."""
    if not data.startswith(_MAGIC):
        raise CorruptEntry("not a cache entry (bad header)")
    rest = data[len(_MAGIC) :]
    digest, sep, body = rest.partition(b"\n")
    if not sep or len(digest) != 64:
        raise CorruptEntry("truncated header")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise CorruptEntry("its digest does not match its content")
    try:
        return msgspec.msgpack.decode(body, type=Entry)
    except msgspec.DecodeError as exc:
        raise CorruptEntry(f"it does not decode: {exc}") from None


def encode_log(lines: list[tuple[int, str]]) -> bytes:
    return msgspec.msgpack.encode(lines)


def decode_log(data: bytes) -> list[tuple[str, str]]:
    """``(stream name, line)`` pairs. :raises CorruptEntry: not a log."""
    try:
        raw = msgspec.msgpack.decode(data, type=list[tuple[int, str]])
    except msgspec.DecodeError as exc:
        raise CorruptEntry(f"its log does not decode: {exc}") from None
    try:
        return [(_STREAMS[stream], line) for stream, line in raw]
    except IndexError:
        raise CorruptEntry("its log names an unknown stream") from None
