"""The user's terminal, attached to an interactive session (``hm shell``, ``hm run --debug``).

While attached the terminal is in raw mode, so every key (Ctrl-C and Ctrl-Z
included) is a byte for the session, whose own terminal turns it into a signal
for its foreground job: hm itself gets no SIGINT. SIGWINCH becomes a resize
of the session's terminal. The session's output goes to stdout as it comes;
what it printed before the terminal attached is replayed from its ring first.
On any exit the terminal's modes and the signal handlers are restored.

With a stdin that is not a terminal, the bytes are forwarded as they are read
(no raw mode, no resize) and hm still exits with the session's code.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import sys
import termios
import tty
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hm.runtime import Session

__all__ = ["attach", "terminal_size"]

_POLL_SECONDS = 0.05


def terminal_size(fd: int) -> tuple[int, int]:
    """``(rows, cols)`` of the terminal on ``fd``, or 24x80 when it is not one."""
    try:
        rows, cols = struct.unpack("hhhh", fcntl_ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    except OSError:
        return 24, 80
    return (rows or 24), (cols or 80)


def fcntl_ioctl(fd: int, request: int, arg: bytes) -> bytes:
    import fcntl

    return fcntl.ioctl(fd, request, arg)


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        except OSError:
            return  # the terminal went away: the session still ends normally
        view = view[n:]


def attach(session: Session, *, stdin_fd: int | None = None, stdout_fd: int | None = None) -> int:
    """Connect the terminal to ``session`` until it ends; returns its exit code.

    :raises PluginCallError: the runner could not open or run the session.
    """
    fd_in = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    fd_out = sys.stdout.fileno() if stdout_fd is None else stdout_fd
    is_tty = os.isatty(fd_in)
    session.ring.attach(lambda data: _write_all(fd_out, data))
    old_handlers: dict[int, Any] = {}

    def on_winch(_sig: int, _frame: Any) -> None:
        rows, cols = terminal_size(fd_in)
        session.resize(rows, cols)

    if is_tty:
        old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
    # raw mode turns Ctrl-C into a byte; without a terminal a SIGINT still goes to the session
    old_handlers[signal.SIGINT] = signal.signal(signal.SIGINT, lambda *_: session.write(b"\x03"))
    # hm asked to stop (or its terminal closed): end the session, then restore the terminal
    for stop in (signal.SIGTERM, signal.SIGHUP):
        old_handlers[stop] = signal.signal(stop, lambda *_: session.close())
    try:
        with _raw(fd_in) if is_tty else contextlib.nullcontext():
            _pump(session, fd_in)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        session.ring.attach(None)
    return int(session.wait().exit_code)


def _pump(session: Session, fd_in: int) -> None:
    """Forward input until the session ends (or input ends: then close it)."""
    reading = True
    while not session.done:
        if not reading:
            select.select([], [], [], _POLL_SECONDS)
            continue
        try:
            ready, _, _ = select.select([fd_in], [], [], _POLL_SECONDS)
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            data = os.read(fd_in, 4096)
        except OSError:
            data = b""
        if not data:  # end of input: the session cannot get more, so it ends
            reading = False
            session.write(b"\x04")  # EOF for the session's shell, as Ctrl-D would be
            continue
        session.write(data)
