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
        parts = data.split(b"\n")
        pending = parts.pop()
        # Runners hand over up to a MiB at a time (batched): cut it, not just once.
        while len(pending) > self._max:
            parts.append(pending[: self._max])
            pending = pending[self._max :]
        self._pending = pending
        return [p.decode("utf-8", "replace") for p in parts]

    def flush(self) -> list[str]:
        """The unfinished last line, if any (the step ended without a newline)."""
        if not self._pending:
            return []
        line, self._pending = self._pending, b""
        return [line.decode("utf-8", "replace")]
