"""Turning a plugin's raw output chunks into lines.

A runner passes bytes as they come (``emit_step_log``): a chunk may end in the
middle of a line or even of a UTF-8 sequence. The splitter keeps the unfinished
tail of each stream and hands out complete lines, decoded with replacement
characters so output that is not UTF-8 never breaks the host. A tail longer than
``max_line`` is cut into a line of its own so memory stays bounded whatever a
step prints.
"""

from __future__ import annotations

MAX_LINE_BYTES = 64 * 1024


class LineSplitter:
    __slots__ = ("_max", "_pending")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._pending = b""
        self._max = max_line

    def feed(self, data: bytes) -> list[str]:
        """Complete lines in ``pending + data`` (without their ``\\n``)."""
        if self._pending:
            data = self._pending + data
        end = data.rfind(b"\n")
        if end < 0:
            lines: list[str] = []
        else:
            # One decode for all the complete lines, then a split: a newline byte is
            # never part of a UTF-8 sequence, so this equals decoding line by line,
            # at a tenth of the cost per line.
            lines = data[:end].decode("utf-8", "replace").split("\n")
            data = data[end + 1 :]
        # Runners hand over up to 128 KiB at a time (batched): cut it, not just once.
        while len(data) > self._max:
            lines.append(data[: self._max].decode("utf-8", "replace"))
            data = data[self._max :]
        self._pending = data
        return lines

    def flush(self) -> list[str]:
        """The unfinished last line, if any (the step ended without a newline)."""
        if not self._pending:
            return []
        line, self._pending = self._pending, b""
        return [line.decode("utf-8", "replace")]
