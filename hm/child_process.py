"""Every helper process hm starts (plugin workers, the pipeline render child, the
run reaper): one way to spawn it, to say how it ended, and to stop it.

Each child runs in a session of its own, so one ``killpg`` reaches everything it
spawned, a grandchild cannot keep hm waiting on a pipe, and a Ctrl-C at the
terminal reaches hm only (hm then stops its children deliberately). Live
children are tracked, so hm's emergency exits (a second Ctrl-C, SIGTERM, SIGHUP)
can kill them all before hm goes: :func:`kill_all`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO

__all__ = [
    "describe_exit",
    "kill_all",
    "kill_descendants",
    "output_tail",
    "signal_name",
    "spawn",
    "stop_child",
    "terminate_child",
]

_live: set[subprocess.Popen[bytes]] = set()
_lock = threading.Lock()


def spawn(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.PIPE,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a tracked child in its own session (``close_fds`` on: it inherits no
    descriptor of hm's but the three it is given, and ``pass_fds``)."""
    proc = subprocess.Popen(
        list(cmd),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=env,
        cwd=cwd,
        close_fds=True,
        pass_fds=tuple(pass_fds),
        start_new_session=os.name == "posix",
    )
    with _lock:
        _live.add(proc)
    return proc


def forget(proc: subprocess.Popen[bytes]) -> None:
    """Stop tracking a child that was reaped."""
    with _lock:
        _live.discard(proc)


def _killpg(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        else:
            proc.kill()
    except OSError:
        pass


def stop_child(proc: subprocess.Popen[bytes]) -> bytes:
    """Kill a child (its whole process group) and return what it wrote to stderr so far
    (when its stderr is a pipe nobody else reads)."""
    _killpg(proc, signal.SIGKILL)
    try:
        # communicate() again returns everything read so far, an earlier attempt's too.
        return proc.communicate(timeout=5)[1] or b""
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return b""
    finally:
        if proc.poll() is not None:
            forget(proc)


def terminate_child(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the child's group, wait up to ``grace`` seconds, then SIGKILL it; reap it."""
    if proc.poll() is None:
        _killpg(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _killpg(proc, signal.SIGKILL)  # also whatever it left in its group
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return
    forget(proc)


def kill_all() -> None:
    """SIGKILL every tracked child's process group and reap them (emergency exits)."""
    with _lock:
        procs = list(_live)
    for proc in procs:
        _killpg(proc, signal.SIGKILL)
    deadline = time.monotonic() + 2
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        forget(proc)


def kill_descendants() -> None:
    """SIGKILL every process descended from hm, and each one's process group
    (a step's group holds what it left in the background), then the tracked
    children. For emergency exits: nothing of the run may outlive hm."""
    me, my_group = os.getpid(), os.getpgrp() if os.name == "posix" else 0
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _pgid) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = list(children.get(me, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    groups = {table[pid][1] for pid in found if pid in table} - {my_group, 0}
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    kill_all()


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process, from /proc (Linux);
    empty elsewhere."""
    table: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 3:
            table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def signal_name(signum: int) -> str:
    """``SIGSEGV`` for 11; ``signal 99`` for a number with no name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_exit(returncode: int) -> str:
    """How a child ended, for messages: ``crashed with SIGSEGV`` or ``exited with status 3``."""
    if returncode < 0:
        return f"crashed with {signal_name(-returncode)}"
    return f"exited with status {returncode}"


def output_tail(err: bytes, lines: int = 3, chars: int = 400) -> str:
    """The last few non-empty lines of a child's stderr, joined with `` | ``."""
    text = " | ".join(line.strip() for line in err.decode(errors="replace").splitlines()[-lines:] if line.strip())
    return text[-chars:]
