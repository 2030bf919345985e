"""Native plugins in a worker process: the host side of docs/worker-protocol.md.

:class:`WorkerProcess` is one ``hm-worker`` serving one library: start and
handshake, concurrent calls, the host-API requests those calls make, cancel,
and what happens when the process dies or hangs. :class:`WorkerTransport` is the
:class:`~hm.runtime.transport.Transport` over it: it starts the worker lazily,
and replaces a worker that crashed or was given up on.

Reading is **leader/follower**, as in the worker itself: there is no reader
thread. A caller sends its CALL, and whichever waiting caller holds the read
lock reads frames and dispatches them (results to their callers, requests and
notifications to the call's services) until its own result arrives; then it
wakes another waiting caller to take over. A lone call therefore costs one
write, one poll and one read, with no thread hop. Every waiting caller wakes at
least every ``TICK`` seconds to ask its services whether the call should stop
(Ctrl-C, fail-fast, a step's timeout) and sends CANCEL; a call still running
``kill_grace()`` seconds later is abandoned and its worker *retired*: it takes no
new call and is killed as soon as it serves no other one.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hm import child_process
from hm.errors import PluginCallAbandoned, PluginCallError, PluginCrashed, PluginLoadError, PluginOutputTooLarge
from hm.runtime import host_calls
from hm.runtime.calls import HANDLES, CallContext
from hm.runtime.limits import MAX_MESSAGE_BYTES
from hm.runtime.vtable_check import VtableFacts, load_refusal
from hm.runtime.worker_protocol import (
    OP_MANIFEST,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    FrameError,
    LoadCode,
    Msg,
    Note,
    Request,
    frame,
    take_frames,
)
from hm.safe_text import printable
from hm_plugin_sdk.abi import Status

__all__ = [
    "KILL_GRACE_SECONDS",
    "WORKER_EXE",
    "WorkerProcess",
    "WorkerTransport",
    "kill_grace",
    "shutdown_workers",
    "worker_exe",
]

log = logging.getLogger("hm.plugin")

#: The worker executable, built with hm (build.py).
WORKER_EXE = Path(__file__).resolve().parent.parent / "_native" / "hm-worker"
#: How long a stopped call may keep running before hm gives up on it
#: (``HM_KILL_GRACE_SECONDS`` overrides it; see :func:`kill_grace`).
KILL_GRACE_SECONDS = 15.0
#: How often a waiting caller checks whether its call should stop.
TICK = 0.05
#: How long a caller looks for the worker's answer before it sleeps in poll().
SPIN = 30e-6
#: Seconds the worker gets to say hello (it is a small C program).
HELLO_TIMEOUT = 10.0
_READ_CHUNK = 1 << 20
_OP_NAMES = {0: "manifest", 1: "execute_step", 2: "on_hook_event", 3: "run_subcommand"}
_DENIED = int(Status.ERR_DENIED)
_INVALID = int(Status.ERR_INVALID_ARGUMENT)


def worker_exe() -> Path:
    """The executable that serves a plugin: WORKER_EXE, or ``HM_WORKER_EXE`` (for
    testing hm against a worker that misbehaves)."""
    override = os.environ.get("HM_WORKER_EXE")
    return Path(override) if override else WORKER_EXE


def kill_grace() -> float:
    """Seconds between asking a call to stop and giving up on it: KILL_GRACE_SECONDS,
    or ``HM_KILL_GRACE_SECONDS`` when set to a positive number."""
    value = os.environ.get("HM_KILL_GRACE_SECONDS")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0
        if seconds > 0:
            return seconds
    return KILL_GRACE_SECONDS


class _Pending:
    """One call in flight, and how it ended."""

    __slots__ = ("cancel_at", "ctx", "data", "done", "error", "op", "status", "timeout", "wake")

    def __init__(self, ctx: CallContext, op: int) -> None:
        self.ctx = ctx
        self.op = op
        self.done = False
        self.status = 0
        self.data = b""
        self.error: PluginCallError | None = None
        #: Made by the caller only when it has to wait for another leader.
        self.wake: threading.Event | None = None
        self.cancel_at: float | None = None
        self.timeout: float | None = None

    def set_wake(self) -> None:
        wake = self.wake
        if wake is not None:
            wake.set()


class _Broken(Exception):
    """The worker broke the protocol."""


def _serve_request(ctx: CallContext, fn: int, args: list[Any]) -> tuple[int, Any]:
    if fn == Request.KV_GET:
        scope, key = args
        return host_calls.kv_get(ctx, int(scope), bytes(key))
    if fn == Request.KV_SET:
        scope, key, value = args
        return host_calls.kv_set(ctx, int(scope), bytes(key), bytes(value))
    if fn == Request.EMIT_EVENT:
        return host_calls.emit_event(ctx, bytes(args[0]))
    if fn == Request.ARCHIVE_READ:
        offset, cap = args
        return host_calls.archive_read(ctx, int(offset), int(cap))
    if fn == Request.ARCHIVE_SIZE:
        return host_calls.archive_size(ctx)
    if fn == Request.FS_READ_CONFIG:
        return host_calls.read_config(ctx, bytes(args[0]))
    if fn == Request.KV_CAS:
        scope, key, expected, value = args
        old = None if expected is None else bytes(expected)
        return host_calls.kv_compare_and_swap(ctx, int(scope), bytes(key), old, bytes(value))
    return int(Status.ERR_UNSUPPORTED), None


_NOTES: dict[int, Callable[..., tuple[int, Any]]] = {
    Note.LOG: lambda ctx, level, msg: host_calls.log_message(ctx, int(level), bytes(msg)),
    Note.STEP_LOG: lambda ctx, stream, data: host_calls.step_log(ctx, int(stream), bytes(data)),
    Note.STDOUT: lambda ctx, data: host_calls.write_stdout(ctx, bytes(data)),
    Note.STDERR: lambda ctx, data: host_calls.write_stderr(ctx, bytes(data)),
}


class WorkerProcess:
    """One ``hm-worker`` process and the library it loaded."""

    #: How messages say that hm stopped the process.
    STOPPED = "its worker was stopped"
    #: How long a caller looks for an answer before it sleeps (see _read_soon).
    SPIN = SPIN

    def __init__(
        self,
        path: str,
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        host_size: int = 0,
        host_minor: int = 0,
        stderr_level: int = logging.WARNING,
    ) -> None:
        self.path = path
        #: The plugin's name once its manifest is known (for messages and logs).
        self.name = name
        self._stderr_level = stderr_level
        self._env = env
        self._host = (host_size, host_minor)
        self.proc: subprocess.Popen[bytes] | None = None
        self.facts: VtableFacts | None = None
        self.retired = False
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        #: Calls given up on: their late answers are expected, not a fault.
        self._abandoned: set[int] = set()
        self._buf = bytearray()
        self._dead = False
        self._stopped_by_hm: str | None = None
        self._exit_note: str | None = None
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._stderr_thread: threading.Thread | None = None
        self._stderr_stop = threading.Event()
        self._poll: select.poll | None = None
        self._rfd = -1
        self._wfd = -1

    # -- start-up ---------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.name} ({self.path})" if self.name else self.path

    @property
    def alive(self) -> bool:
        return self.proc is not None and not self._dead

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float) -> VtableFacts:
        """Start the worker, handshake, and load the library within ``timeout`` seconds.

        :raises PluginLoadError: the library cannot be loaded, the worker crashed or
            hung while loading it, or it speaks another protocol.
        """
        exe = worker_exe()
        if not exe.exists():
            raise PluginLoadError(
                f"hm's worker executable {exe} is missing, so the plugin cannot run isolated",
                path=self.path,
                hint="reinstall hm (`pip install .` builds it), or run the plugin in process",
            )
        self.proc = child_process.spawn(
            [str(exe)], env=self._env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._attach()
        started = time.monotonic()
        hello = self._handshake_frame(Msg.HELLO, started + min(timeout, HELLO_TIMEOUT), "starting")
        if len(hello) < 4 or hello[1] != "hm-worker" or hello[2] != PROTOCOL_MAJOR:
            self.kill()
            spoken = f"{hello[2]}.{hello[3]}" if len(hello) >= 4 else "an unknown version"
            raise PluginLoadError(
                f"its worker speaks protocol {spoken}, this hm speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}",
                path=self.path,
                hint="reinstall hm: its worker executable does not match it",
            )
        self._send([Msg.LOAD, self.path, self._host[0], self._host[1]])
        loaded = self._handshake_frame(Msg.LOADED, started + timeout, "loading")
        try:
            _, code, detail, size, major, minor, missing, offers = loaded
        except ValueError:
            self.kill()
            raise self._protocol_load_error("a LOADED message of the wrong shape") from None
        if code != LoadCode.LOADED:
            self.kill()
            stage = {LoadCode.OPEN_FAILED: "open", LoadCode.NO_ENTRY: "entry"}.get(code, "refused")
            raise load_refusal(stage, printable(str(detail)), self.path)
        self.facts = VtableFacts(int(size), int(major), int(minor), int(missing), int(offers))
        return self.facts

    def _attach(self) -> None:
        """Take over the pipes of the process just spawned (and mirror its stderr)."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self._wfd = self.proc.stdin.fileno()
        self._rfd = self.proc.stdout.fileno()
        os.set_blocking(self._rfd, False)  # reads are waited for with poll() (see _read_soon)
        self._poll = select.poll()
        self._poll.register(self._rfd, select.POLLIN)
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="hm-worker-stderr", daemon=True)
        self._stderr_thread.start()

    def _handshake_frame(self, want: Msg, deadline: float, doing: str) -> list[Any]:
        """The next frame during start-up, which must be of type ``want``."""
        assert self._poll is not None
        limit = round(deadline - time.monotonic(), 1)
        while True:
            try:
                messages = take_frames(self._buf)
            except FrameError as exc:
                self.kill()
                raise self._protocol_load_error(str(exc)) from None
            if messages:
                message = messages[0]
                if message[0] != want or len(messages) > 1:
                    self.kill()
                    raise self._protocol_load_error(f"message type {message[0]} while {doing}")
                return message
            left = deadline - time.monotonic()
            if left <= 0 or not self._poll.poll(left * 1000):
                if time.monotonic() < deadline:
                    continue
                self.kill()
                raise PluginLoadError(
                    f"did not finish {doing} within {limit:g} s and was stopped",
                    path=self.path,
                    stage="hung",
                    hint="hm_load_plugin and manifest must return promptly; report this to the plugin's author "
                    "(hm will not load this file again until it changes; `hm plugin check PATH` tries at once)",
                )
            data = os.read(self._rfd, _READ_CHUNK)
            if not data:
                cause = self._reap()
                raise PluginLoadError(
                    f"{cause} while {doing}{self._said()}",
                    path=self.path,
                    stage="crashed",
                    hint="the library aborts or faults in its initialisation or hm_load_plugin; "
                    "report this to the plugin's author",
                )
            self._buf += data

    def _protocol_load_error(self, what: str) -> PluginLoadError:
        return PluginLoadError(
            f"its worker broke the protocol: {what}",
            path=self.path,
            hint="this is a bug in hm's worker; run again with --verbose and report it",
        )

    # -- calls ------------------------------------------------------------------------
    def call(
        self, handle: int, op: int, payload: bytes, ctx: CallContext, *, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """Run ``op`` in the worker and wait for its answer.

        :param timeout: give up after this many seconds (the worker is retired).
        :raises PluginCrashed: the worker died during the call.
        :raises PluginCallAbandoned: it was asked to stop and did not, or timed out.
        """
        p = _Pending(ctx, op)
        p.timeout = timeout
        if self._dead:
            raise self._crash_error(p, "was no longer running")
        self._pending[handle] = p
        self._send([Msg.CALL, handle, op, payload])
        deadline = time.monotonic() + timeout if timeout is not None else None
        rlock = self._rlock
        while not p.done:
            if rlock.acquire(blocking=False):
                try:
                    self._lead(p)
                finally:
                    rlock.release()
                if not p.done:
                    self._stop_if_asked(p, handle, deadline)
                self._pass_lead()
            else:
                wake = p.wake
                if wake is None:
                    p.wake = threading.Event()
                    continue  # look at the lock once more: a leader may have left meanwhile
                wake.wait(TICK)
                wake.clear()
                if not p.done:
                    self._stop_if_asked(p, handle, deadline)
        if p.error is not None:
            raise p.error
        return p.status, p.data

    def _pass_lead(self) -> None:
        """Wake one waiting caller to read in our place."""
        for q in list(self._pending.values()):
            if not q.done:
                q.set_wake()
                return

    def _stop_if_asked(self, p: _Pending, handle: int, deadline: float | None) -> None:
        now = time.monotonic()
        op = _OP_NAMES.get(p.op, str(p.op))
        if deadline is not None and now >= deadline:
            self._abandon(handle)
            raise PluginCallAbandoned(
                f"did not answer {op} within {p.timeout or 0:g} s; {self.STOPPED}",
                path=self.path,
                plugin=self.name,
                op=op,
                step_key=p.ctx.step_key,
                reason="timed_out",
                hint="a plugin must answer promptly; report this to the plugin's author "
                "(hm will not load this file again until it changes; `hm plugin check PATH` tries at once)"
                if p.op == OP_MANIFEST
                else "a plugin must answer promptly; report this to the plugin's author",
            )
        if p.cancel_at is None:
            try:
                stop = p.ctx.services.should_cancel(p.ctx)
            except Exception:
                stop = False
            if stop:
                p.cancel_at = now
                self._send([Msg.CANCEL, handle])
        elif now - p.cancel_at >= kill_grace():
            self._abandon(handle)
            step = f" of step '{p.ctx.step_key}'" if p.ctx.step_key else ""
            raise PluginCallAbandoned(
                f"did not stop {op}{step} within {kill_grace():g} s of being asked to; {self.STOPPED}",
                path=self.path,
                plugin=self.name,
                op=op,
                step_key=p.ctx.step_key,
                reason="cancelled",
                hint="a plugin must poll should_cancel and return when it says so; report this to the plugin's author",
            )

    def _abandon(self, handle: int) -> None:
        self._pending.pop(handle, None)
        self._abandoned.add(handle)
        self.retire()

    def retire(self) -> None:
        """Take no new calls; stop the process once no call is in it."""
        self.retired = True
        if not self._pending:
            self.kill("it was given up on")

    # -- reading (the leader) ----------------------------------------------------------
    def _take_messages(self) -> list[Any]:
        """The complete messages at the start of the read buffer (the stdio
        transport reads lines of JSON instead of frames)."""
        return take_frames(self._buf)

    def _lead(self, p: _Pending) -> None:
        """Read and dispatch until ``p`` is answered or TICK passed without it."""
        assert self._poll is not None
        started = time.monotonic()
        while not p.done and not self._dead:
            try:
                messages = self._take_messages()
                for message in messages:
                    self._dispatch(message)
            except (FrameError, _Broken) as exc:
                self._broken(str(exc))
                return
            if messages:
                if time.monotonic() - started >= TICK:
                    return
                continue
            data = self._read_soon()
            if data is None and not self._poll.poll(TICK * 1000):
                # a process the plugin forked may hold our pipe open after the
                # worker died, so end of file alone is not enough to notice
                if self.proc is not None and self.proc.poll() is not None:
                    self._on_death()
                return
            if data is None:
                try:
                    data = os.read(self._rfd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
            if not data:
                self._on_death()
                return
            self._buf += data

    def _read_soon(self) -> bytes | None:
        """What the worker sends within SPIN seconds, or None. An answer usually
        comes within microseconds; sleeping in poll() for it would add a wake-up,
        which costs tens of microseconds on an idle virtual CPU."""
        deadline = time.perf_counter() + self.SPIN
        read, fd = os.read, self._rfd
        while True:
            try:
                return read(fd, _READ_CHUNK)
            except BlockingIOError:
                if time.perf_counter() >= deadline:
                    return None
            except OSError:
                return b""

    def _dispatch(self, message: list[Any]) -> None:
        kind = message[0]
        try:
            if kind == Msg.RESULT:
                handle, status, data = message[1], message[2], message[3]
                q = self._pending.pop(handle, None)
                if q is not None:
                    q.status, q.data = int(status), bytes(data)
                    if len(message) >= 5:  # too large for a frame: only its size came
                        q.error = PluginOutputTooLarge(
                            f"{_OP_NAMES.get(q.op, q.op)} returned {message[4]} bytes, more than the "
                            f"{MAX_MESSAGE_BYTES} bytes a message may have",
                            path=self.path,
                            plugin=self.name,
                            size=int(message[4]),
                            hint="this is a bug in the plugin; report it to its author",
                        )
                    q.done = True
                    q.set_wake()
                elif handle not in self._abandoned:
                    log.warning("%s: its worker answered a call hm did not make; the answer was ignored", self.label)
                if self.retired and not self._pending:
                    self.kill("it was given up on")
            elif kind == Msg.NOTIFY:
                handle, fn = message[1], message[2]
                q = self._pending.get(handle)
                if q is None:
                    log.debug("%s: dropped a notification for a call that is not running", self.label)
                    return
                serve = _NOTES.get(fn)
                if serve is not None:
                    serve(q.ctx, *message[3:])
            elif kind == Msg.REQUEST:
                req, handle, fn = message[1], message[2], message[3]
                q = self._pending.get(handle)
                if q is None:
                    log.warning("%s: a host-API request with a handle that is not its call was refused", self.label)
                    self._send([Msg.REPLY, req, _DENIED, None])
                    return
                try:
                    status, value = _serve_request(q.ctx, int(fn), list(message[4:]))
                except (TypeError, ValueError):
                    status, value = _INVALID, None
                self._send([Msg.REPLY, req, status, value if status == 0 else None])
            else:
                raise _Broken(f"message type {kind} from the worker")
        except (TypeError, ValueError) as exc:
            raise _Broken(f"a malformed message of type {kind}: {exc}") from None

    def _broken(self, what: str) -> None:
        log.error("%s: its worker broke the protocol (%s); stopping it", self.label, what)
        self.kill(f"it broke the worker protocol ({what})")
        self._on_death()

    # -- writing ----------------------------------------------------------------------
    def _send(self, message: list[Any]) -> None:
        self._write(frame(message))

    def _write(self, data: bytes) -> None:
        """Write one whole message to the process (a subclass's wire format, too)."""
        with self._wlock:
            if self._dead:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._wfd, view) :]
            except OSError:
                pass  # it died: the reader sees end of file and reports why

    # -- death ------------------------------------------------------------------------
    def _reap(self) -> str:
        """Wait for the process after its output ended; the cause, for messages."""
        assert self.proc is not None
        self._dead = True
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        self._release()
        if self._stopped_by_hm is not None:
            return f"was stopped by hm because {self._stopped_by_hm}"
        if self._exit_note is not None:
            return self._exit_note
        if code < 0:
            return f"crashed with {child_process.signal_name(-code)}"
        return f"exited with status {code}"

    def _on_death(self) -> None:
        if self.proc is None or (self._dead and not self._pending):
            return
        cause = self._reap()
        for q in list(self._pending.values()):
            q.error = self._crash_error(q, cause)
            q.done = True
            q.set_wake()
        self._pending.clear()

    def _crash_error(self, p: _Pending, cause: str) -> PluginCrashed:
        op = _OP_NAMES.get(p.op, str(p.op))
        step = f" of step '{p.ctx.step_key}'" if p.ctx.step_key else ""
        signal = cause.removeprefix("crashed with ") if cause.startswith("crashed with ") else None
        status = self.proc.returncode if self.proc is not None and signal is None else None
        return PluginCrashed(
            f"{cause} in {op}{step}{self._said()}",
            path=self.path,
            plugin=self.name,
            op=op,
            step_key=p.ctx.step_key,
            signal=signal,
            status=status,
            hint="it ran isolated, so only this call failed; report this to the plugin's author",
        )

    def _said(self) -> str:
        tail = [line for line in self._stderr_tail if not line.startswith("hm-worker: the plugin called exit(")]
        if not tail:
            return ""
        text = " | ".join(printable(line.strip()) for line in tail[-3:] if line.strip())
        return f" (its last output: {text[-400:]})" if text else ""

    def _read_stderr(self) -> None:
        """Mirror the worker's stderr line by line, until the worker is reaped.

        Raw reads with a timeout, not ``readline``: a process the plugin left
        behind may hold the pipe open for ever, and closing a buffered reader that
        another thread blocks in would hang hm."""
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        pending = b""
        while not self._stderr_stop.is_set():
            if not poller.poll(200):
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._stderr_line(raw)
            if len(pending) > 65536:  # a line without end: show it in parts
                self._stderr_line(pending)
                pending = b""
        if pending:
            self._stderr_line(pending)

    def _stderr_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace")
        if line.startswith("hm-worker: the plugin called exit("):
            self._exit_note = line.removeprefix("hm-worker: the plugin ")
        self._stderr_tail.append(line)
        log.log(self._stderr_level, "%s: %s", self.name or self.path, printable(line))

    def _release(self) -> None:
        """After the process ended: stop tracking it and close its pipes."""
        assert self.proc is not None
        child_process.forget(self.proc)
        if self._stderr_thread is not None and self._stderr_thread is not threading.current_thread():
            self._stderr_thread.join(timeout=0.5)  # what the worker wrote before it died
            self._stderr_stop.set()
            self._stderr_thread.join(timeout=1)
        with self._wlock:
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass

    def kill(self, why: str | None = None) -> None:
        """SIGKILL the worker's process group. A waiting caller then sees it die; with
        none, the process is reaped here."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if why is not None and self._stopped_by_hm is None:
            self._stopped_by_hm = why
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        if not self._pending and self._rlock.acquire(blocking=False):
            try:
                if not self._dead:
                    self._dead = True
                    try:
                        self.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        return
                    self._release()
            finally:
                self._rlock.release()

    def shutdown(self, grace: float = 1.0) -> None:
        """Orderly end: SHUTDOWN (the plugin's ``destroy``), then close, then stop."""
        if self.proc is None:
            return
        if self.proc.poll() is None and not self._pending:
            self._send([Msg.SHUTDOWN])
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        already = self._dead
        self._dead = True
        try:  # let it leave by itself: it ends what its plugin started on the way out
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child_process.terminate_child(self.proc, grace)
        if not already:
            self._release()


class WorkerTransport:
    """The transport of a plugin that runs isolated: calls go to an ``hm-worker``."""

    kind = "process"
    owner = -1

    def __init__(
        self,
        path: str,
        *,
        env: dict[str, str] | None = None,
        host_size: int = 0,
        host_minor: int = 0,
        load_timeout: float = 10.0,
        stderr_level: int = logging.WARNING,
    ) -> None:
        self._path = path
        self._options: dict[str, Any] = {
            "env": env,
            "host_size": host_size,
            "host_minor": host_minor,
            "stderr_level": stderr_level,
        }
        self._load_timeout = load_timeout
        self._lock = threading.Lock()
        self._name: str | None = None
        self._worker: WorkerProcess | None = None
        self._retired: list[WorkerProcess] = []
        self.facts: VtableFacts | None = None
        _transports.add(self)

    def open(self) -> VtableFacts:
        """Start the first worker and load the library in it.

        :raises PluginLoadError: it cannot be loaded.
        """
        worker = self._new_process()
        self.facts = worker.start(self._load_timeout)
        self._worker = worker
        return self.facts

    def _new_process(self) -> WorkerProcess:
        """A process not yet started (the stdio transport makes another kind)."""
        return WorkerProcess(self._path, name=self._name, **self._options)

    @property
    def path(self) -> str:
        return self._path

    @property
    def abi(self) -> tuple[int, int]:
        assert self.facts is not None
        return (self.facts.abi_major, self.facts.abi_minor)

    @property
    def pids(self) -> list[int]:
        """Process ids of this plugin's live workers (for tests and diagnostics)."""
        workers = [w for w in (self._worker, *self._retired) if w is not None and w.alive]
        return [w.pid for w in workers if w.pid is not None]

    def set_name(self, name: str) -> None:
        self._name = name
        if self._worker is not None:
            self._worker.name = name

    def offers(self, op: int) -> bool:
        return bool(self.facts is not None and self.facts.offers & (1 << (int(op) - 1)))

    def _current(self) -> WorkerProcess:
        with self._lock:
            worker = self._worker
            if worker is not None and worker.alive and not worker.retired:
                return worker
            if worker is not None:
                self._retired = [w for w in (*self._retired, worker) if w.alive]
            fresh = self._new_process()
            try:
                facts = fresh.start(self._load_timeout)
            except PluginLoadError as exc:
                raise PluginCallError(
                    f"its worker could not be restarted: {exc.what}",
                    path=self._path,
                    plugin=self._name,
                    code="worker_start",
                    hint=exc.hint,
                ) from None
            if self.facts is not None and facts != self.facts:
                fresh.kill()
                raise PluginCallError(
                    "changed on disk while hm was running (its restarted worker loaded a different vtable)",
                    path=self._path,
                    plugin=self._name,
                    code="changed",
                    hint="run the command again",
                )
            self._worker = fresh
            return fresh

    def manifest(self, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]:
        return self._current().call(HANDLES.take(), OP_MANIFEST, b"", ctx, timeout=timeout)

    def call(self, op: int, payload: bytes, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]:
        return self._current().call(HANDLES.take(), int(op), payload, ctx, timeout=timeout)

    def close(self) -> None:
        """Stop every worker of this plugin (orderly, briefly)."""
        with self._lock:
            workers = [w for w in (self._worker, *self._retired) if w is not None]
            self._worker = None
            self._retired = []
        for w in workers:
            w.shutdown()
        _transports.discard(self)

    def kill(self) -> None:
        """Stop every worker of this plugin at once."""
        for w in [w for w in (self._worker, *self._retired) if w is not None]:
            w.kill("hm is stopping")


_transports: set[WorkerTransport] = set()


def shutdown_workers() -> None:
    """Orderly end of every worker of this process (hm calls it before it exits)."""
    for transport in list(_transports):
        transport.close()
