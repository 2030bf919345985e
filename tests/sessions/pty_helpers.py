"""Driving ``hm`` on a real pseudo-terminal (stdlib ``pty``), as a user's terminal would.

Not a conftest (basenames must be unique across the repository); tests import it
directly. Puts tests/run on ``sys.path`` for the ``hm run`` helpers.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run"))

from run_helpers import hm_env


class Terminal:
    """``hm ARGS`` as the foreground process of a new PTY of ``rows`` x ``cols``."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path,
        plugins: tuple[str, ...] = (),
        rows: int = 30,
        cols: int = 100,
        env: dict[str, str] | None = None,
    ):
        env = {**os.environ, **hm_env(plugins), "TERM": "xterm", "PS1": "$ ", **(env or {})}
        env.pop("PYTHONUNBUFFERED", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: hm on the PTY (its controlling terminal)
            try:
                os.chdir(cwd)
                os.execve(sys.executable, [sys.executable, "-m", "hm", *args], env)
            finally:
                os._exit(127)
        self.resize(rows, cols)
        self.seen = b""
        self.status: int | None = None

    def resize(self, rows: int, cols: int) -> None:
        """What a terminal emulator does when its window changes: TIOCSWINSZ (the
        kernel then sends SIGWINCH to the terminal's foreground job: hm)."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text: str | bytes) -> None:
        os.write(self.fd, text.encode() if isinstance(text, str) else text)

    def expect(self, needle: str, timeout: float = 15.0) -> str:
        """Read until ``needle`` appears in what was printed since the last match."""
        want = needle.encode()
        deadline = time.monotonic() + timeout
        while want not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{needle!r} did not appear within {timeout} s; the terminal showed:\n{self.seen!r}"
                )
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: hm exited and the PTY closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"hm exited before {needle!r} appeared; it showed:\n{self.seen!r}")
                self.seen += chunk
        at = self.seen.index(want) + len(want)
        shown, self.seen = self.seen[:at], self.seen[at:]
        return shown.decode(errors="replace")

    def wait(self, timeout: float = 20.0) -> int:
        """hm's exit code (its output is drained meanwhile, so it never blocks on a full PTY)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)
                self._drain()
                return self.status
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                self._drain()
        self.kill()
        raise AssertionError(f"hm did not exit within {timeout} s; it showed:\n{self.seen!r}")

    def _drain(self) -> None:
        try:
            while select.select([self.fd], [], [], 0)[0]:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.seen += chunk
        except OSError:
            pass

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass
