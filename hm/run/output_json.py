"""``--format json``: one build event per line on stdout, and nothing else there.

Lines are written through one buffered binary stream: step logs may arrive at
hundreds of thousands of lines a second, so they are flushed once per chunk of
runner output (``flush``), not line by line; every other event is flushed at
once so a reader sees progress live. The events' JSON Schema ships as
``hm/schemas/events.schema.json``.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

import msgspec

from hm.safe_text import printable
from hm_plugin_sdk.protocol import BuildEvent, StepLog


class JsonLinesSink:
    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._out = stream or sys.stdout.buffer
        encoder = msgspec.json.Encoder()
        self._encode = encoder.encode
        self._encode_lines = encoder.encode_lines
        self._closed = False

    def __call__(self, event: BuildEvent) -> None:
        if self._closed:
            return
        try:
            self._out.write(self._encode(event) + b"\n")
            if type(event) is not StepLog:
                self._out.flush()
        except BrokenPipeError:
            self._reader_gone()

    def logs(self, events: list[StepLog]) -> None:
        """A chunk's step_log events, in one write."""
        if self._closed:
            return
        try:
            self._out.write(self._encode_lines(events))
        except BrokenPipeError:
            self._reader_gone()

    def flush(self) -> None:
        if self._closed:
            return
        try:
            self._out.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        """The reader closed the pipe (``| head``): stop writing; the run itself goes on."""
        self._closed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._out.fileno())  # so the interpreter's final flush cannot fail
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def warning(self, text: str) -> None:
        try:
            sys.stderr.write(f"warning: {printable(text)}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # the terminal is gone (SIGHUP): stdout still carries the events

    def final(self, event: BuildEvent) -> None:
        """Write ``event`` at once, without the bus (the emergency exit): what is
        buffered first, then the line, straight to the file descriptor."""
        line = self._encode(event) + b"\n"
        try:
            self._out.flush()
        except (OSError, ValueError):
            pass
        try:
            os.write(self._out.fileno(), line)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self.flush()
