"""Plugins that are executables speaking JSON-RPC 2.0 over stdio: the host side of
docs/stdio-protocol.md.

:class:`StdioProcess` is one plugin process. It *is* a
:class:`~hm.runtime.worker.WorkerProcess` with another wire: the supervision is
shared (leader/follower reading, concurrent calls by id, cancel and the grace
period, death and its cause, stderr mirrored into hm's log, stopping in steps),
and this class only swaps msgpack frames for lines of JSON-RPC: its ``_send``
turns the worker's CALL / CANCEL / SHUTDOWN into requests and notifications,
its ``_dispatch`` reads answers, host-API requests and notifications.
:class:`StdioTransport` is the :class:`~hm.runtime.transport.Transport` over it.

Capability payloads cross the seam as msgpack (the schemas are the same
``msgspec.Struct``\\ s); they are converted to JSON and back here, so nothing
above the runtime knows a plugin is not native.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec

from hm import __version__, child_process, paths
from hm.errors import PluginLoadError
from hm.runtime import host_calls
from hm.runtime.calls import CallContext
from hm.runtime.stdio_descriptor import Descriptor, read_descriptor, stem_of
from hm.runtime.stdio_protocol import (
    OP_METHODS,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    RpcCode,
    b64decode,
    b64encode,
    encode,
    take_lines,
)
from hm.runtime.vtable_check import VtableFacts
from hm.runtime.worker import WorkerProcess, WorkerTransport, _Broken
from hm.runtime.worker_protocol import FrameError, Msg
from hm.safe_text import printable
from hm_plugin_sdk.abi import Status

#: hm-guard (hm/_native/guard/main.c), built next to hm-worker.
GUARD_EXE = Path(__file__).resolve().parent.parent / "_native" / "hm-guard"

__all__ = ["StdioProcess", "StdioTransport"]

log = logging.getLogger("hm.plugin")

#: Every capability: which ones a plugin serves is what its manifest says (a
#: method it does not know is answered "method not found", i.e. unsupported).
_ALL_OFFERS = 7
#: The folder holding hm_plugin_sdk (site-packages, or the checkout).
_SDK_PARENT = Path(__file__).resolve().parent.parent.parent
_mp_encode = msgspec.msgpack.Encoder().encode
_mp_decode = msgspec.msgpack.Decoder().decode
_FAILED = int(Status.ERR_FAILED)
_INVALID = int(Status.ERR_INVALID_ARGUMENT)
_STATUS_NAMES = {int(s): s.name for s in Status}
_STREAMS = {1: 1, 2: 2, "stdout": 1, "stderr": 2}


class _BadParams(Exception):
    """A host-API request or notification with params of the wrong shape."""


def _param_bytes(params: dict[str, Any], key: str) -> bytes:
    """``params[key]`` as bytes: base64, or ``text`` (UTF-8) where the method allows it."""
    try:
        return b64decode(params[key])
    except KeyError:
        raise _BadParams(f"no {key!r}") from None
    except ValueError as exc:
        raise _BadParams(f"{key!r} is {exc}") from None


def _data_or_text(params: dict[str, Any]) -> bytes:
    text = params.get("text")
    if isinstance(text, str):
        return text.encode("utf-8")
    return _param_bytes(params, "data")


def _int(params: dict[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if type(value) is not int:
        raise _BadParams(f"{key!r} must be an integer")
    return value


class StdioProcess(WorkerProcess):
    """One process of a stdio plugin."""

    STOPPED = "its process was stopped"
    #: A Python plugin answers a no-op call in ~50 us, past the worker's 30 us:
    #: looking a little longer saves the wake-up from poll() (tens of us on a
    #: virtual CPU), and costs at most this much CPU per wait.
    SPIN = 100e-6

    def __init__(self, descriptor: Descriptor, *, name: str | None = None, stderr_level: int = logging.WARNING) -> None:
        # Named after its descriptor until its manifest names it (the convention).
        super().__init__(str(descriptor.path), name=name or stem_of(descriptor.path), stderr_level=stderr_level)
        self.descriptor = descriptor
        #: hm's end of hm-guard's lifeline (-1 without one): closed once the process is gone.
        self._lifeline = -1
        self._scanned = 0
        self._ids = itertools.count(1)
        #: The highest id given out (an answer to a higher one is a protocol error).
        self._last_id = 0
        #: Messages read together with the answer to initialize.
        self._pending_lines: list[dict[str, Any]] = []

    def next_id(self) -> int:
        """A fresh request id (small integers: JSON numbers past 2**53 are not
        exact in every language). ``next`` on a count is atomic under the GIL."""
        call_id = next(self._ids)
        self._last_id = max(self._last_id, call_id)
        return call_id

    def _release(self) -> None:
        super()._release()
        if self._lifeline >= 0:  # only now: the watcher would cut a graceful stop short
            os.close(self._lifeline)
            self._lifeline = -1

    # -- start-up ---------------------------------------------------------------------
    def start(self, timeout: float) -> VtableFacts:
        """Start the process and exchange ``initialize`` within ``timeout`` seconds.

        :raises PluginLoadError: the command is missing or not executable, or the
            process exits, breaks the protocol, speaks another major version or
            does not answer in time.
        """
        d = self.descriptor
        if d.protocol[0] != PROTOCOL_MAJOR:  # refused before anything runs, as the ABI major is
            raise self._load_error(
                f"its descriptor says it speaks stdio protocol {d.protocol[0]}.{d.protocol[1]}, "
                f"this hm speaks {PROTOCOL_MAJOR}.x",
                f"use a version of the plugin written for protocol {PROTOCOL_MAJOR}.x",
                stage="header",
            )
        argv = d.argv()
        env = {**os.environ, **d.env, "HM_PLUGIN_DIR": str(d.folder)}
        # The Python helper (hm_plugin_sdk.stdio) is importable by any python3.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (env.get("PYTHONPATH"), sdk_path())))
        # Through hm-guard, which execs the command in its own place: the
        # process is the plugin, and it dies with hm even if it ignores the end
        # of its stdin (hm-guard's watcher kills it when the lifeline closes).
        lifeline_r, lifeline_w = os.pipe() if GUARD_EXE.exists() else (-1, -1)
        cmd = [str(GUARD_EXE), str(lifeline_r), *argv] if lifeline_r >= 0 else argv
        try:
            self.proc = child_process.spawn(
                cmd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(lifeline_r,) if lifeline_r >= 0 else (),
            )
        except OSError as exc:
            if lifeline_w >= 0:
                os.close(lifeline_w)
            raise d.error(
                f"its command {argv[0]!r} cannot be started: {exc.strerror}", "check `command` in the descriptor"
            ) from None
        finally:
            if lifeline_r >= 0:
                os.close(lifeline_r)
        self._lifeline = lifeline_w
        self._attach()
        self._send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": _initialize_params()})
        answer = self._handshake_answer(time.monotonic() + timeout, timeout)
        if "error" in answer:
            self.kill()
            err = answer.get("error")
            message = err.get("message") if isinstance(err, dict) else err
            raise self._load_error(
                f"refused initialize: {printable(str(message))[:300]}",
                "hm speaks stdio protocol "
                f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}; update the plugin or ask its author why it refuses",
                stage="refused",
            )
        result = answer.get("result")
        version = result.get("protocol_version") if isinstance(result, dict) else None
        try:
            major, minor = (int(part) for part in str(version).split("."))
        except ValueError:
            self.kill()
            raise self._load_error(
                f"answered initialize without a protocol_version (got {printable(repr(result))[:200]})",
                'the result must be {"protocol_version": "MAJOR.MINOR"}; see docs/stdio-protocol.md',
                stage="header",
            ) from None
        if major != PROTOCOL_MAJOR:
            self.kill()
            raise self._load_error(
                f"speaks stdio protocol {major}.{minor} while this hm speaks {PROTOCOL_MAJOR}.x",
                f"use a version of the plugin written for protocol {PROTOCOL_MAJOR}.x, or an hm that speaks {major}.x",
                stage="header",
            )
        self.facts = VtableFacts(0, major, minor, 0, _ALL_OFFERS)
        return self.facts

    def _load_error(self, what: str, hint: str, *, stage: str) -> PluginLoadError:
        plugin = self.name or stem_of(self.descriptor.path)  # named after the plugin by convention
        return PluginLoadError(what, path=self.path, plugin=plugin, hint=hint, stage=stage)

    def _handshake_answer(self, deadline: float, timeout: float) -> dict[str, Any]:
        """The plugin's answer to ``initialize``, which must be its first message."""
        assert self._poll is not None
        while True:
            try:
                messages = self._take_messages()
            except FrameError as exc:
                self.kill()
                raise self._load_error(
                    f"broke the protocol while starting: {exc}",
                    "a plugin writes only JSON-RPC messages on stdout, one per line; diagnostics go to stderr",
                    stage="header",
                ) from None
            if messages:
                first = messages[0]
                if first.get("id") != 0 or "method" in first:
                    self.kill()
                    raise self._load_error(
                        f"sent {printable(repr(first))[:200]} before answering initialize",
                        "the first message a plugin sends must be its answer to initialize; see docs/stdio-protocol.md",
                        stage="header",
                    )
                if len(messages) > 1:
                    self._pending_lines = messages[1:]
                return first
            left = deadline - time.monotonic()
            if left <= 0 or not self._poll.poll(left * 1000):
                if time.monotonic() < deadline:
                    continue
                self.kill()
                raise self._load_error(
                    f"did not answer initialize within {timeout:g} s and was stopped",
                    "a plugin must answer initialize at once; report this to the plugin's author",
                    stage="hung",
                )
            try:
                data = os.read(self._rfd, 1 << 20)
            except OSError:
                data = b""
            if not data:
                cause = self._reap()
                raise self._load_error(
                    f"{cause} while starting{self._said()}",
                    "run its command by hand to see why; report this to the plugin's author",
                    stage="crashed",
                )
            self._buf += data

    # -- the wire ---------------------------------------------------------------------
    def _take_messages(self) -> list[Any]:
        messages, self._scanned = take_lines(self._buf, self._scanned)
        if self._pending_lines:
            messages, self._pending_lines = [*self._pending_lines, *messages], []
        return messages

    def _send(self, message: list[Any] | dict[str, Any]) -> None:
        if isinstance(message, list):  # the worker's vocabulary, from the shared supervision
            kind = message[0]
            if kind == Msg.CALL:
                _, call_id, op, payload = message
                params = _mp_decode(payload) if payload else {}
                message = {"jsonrpc": "2.0", "id": call_id, "method": OP_METHODS[op], "params": params}
            elif kind == Msg.CANCEL:
                message = {"jsonrpc": "2.0", "method": "$/cancel", "params": {"id": message[1]}}
            elif kind == Msg.SHUTDOWN:
                message = {"jsonrpc": "2.0", "id": self.next_id(), "method": "shutdown"}
            else:
                raise AssertionError(f"no stdio form for worker message {kind}")
        self._write(encode(message))

    def _dispatch(self, message: dict[str, Any]) -> None:  # type: ignore[override]
        try:
            self._dispatch_one(message)
        except (TypeError, ValueError, OverflowError, KeyError) as exc:
            raise _Broken(f"a malformed message: {printable(str(exc))[:200]}") from None

    def _dispatch_one(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:
            self._answer(message)
            return
        if not isinstance(method, str):
            raise _Broken(f"a message whose method is {printable(repr(method))[:80]}")
        params = message.get("params")
        if not isinstance(params, dict):
            params = {}
        req_id = message.get("id")
        call = params.get("call")
        q = self._pending.get(call) if type(call) is int else None
        if q is None:
            if req_id is not None:
                log.warning("%s: a %s request that names no running call was refused", self.label, method)
                self._reply_status(req_id, int(Status.ERR_STALE_CALL))
            else:
                log.debug("%s: dropped a %s notification for a call that is not running", self.label, method)
            return
        try:
            if req_id is None:
                self._notify(method, q.ctx, params)
            else:
                self._request(req_id, method, q.ctx, params)
        except _BadParams as exc:
            log.warning(
                "%s: its %s %s was refused: %s",
                self.label,
                method,
                "notification" if req_id is None else "request",
                exc,
            )
            if req_id is not None:
                self._send(
                    {
                        "jsonrpc": "2.0",
                        "id": req_id,
                        "error": {"code": RpcCode.INVALID_PARAMS, "message": str(exc)},
                    }
                )

    def _answer(self, message: dict[str, Any]) -> None:
        """A response to one of hm's requests."""
        call_id = message.get("id")
        q = self._pending.pop(call_id, None) if type(call_id) is int else None
        if q is None:
            if call_id in self._abandoned or self.retired:
                return
            if type(call_id) is int and 0 < call_id <= self._last_id:
                return  # the answer to shutdown, or to a call that already failed
            raise _Broken(f"an answer to id {printable(repr(call_id))[:40]}, which is no request hm made")
        if "result" in message:
            q.status, q.data = 0, _mp_encode(message["result"])
        else:
            q.status, q.data = _error_status(message.get("error"))
        q.done = True
        q.set_wake()
        if self.retired and not self._pending:
            self.kill("it was given up on")

    def _reply(self, req_id: Any, status: int, result: Any = None) -> None:
        if status == 0:
            self._send({"jsonrpc": "2.0", "id": req_id, "result": result})
        else:
            self._reply_status(req_id, status)

    def _reply_status(self, req_id: Any, status: int) -> None:
        name = _STATUS_NAMES.get(status, str(status))
        self._send(
            {"jsonrpc": "2.0", "id": req_id, "error": {"code": status, "message": name, "data": {"status": name}}}
        )

    def _request(self, req_id: Any, method: str, ctx: CallContext, p: dict[str, Any]) -> None:
        if method == "kv_get":
            status, value = host_calls.kv_get(ctx, _int(p, "scope", 0), _param_bytes(p, "key"))
            self._reply(req_id, status, {"value": b64encode(value)} if status == 0 else None)
        elif method == "kv_set":
            key, value = _param_bytes(p, "key"), _param_bytes(p, "value")
            self._reply(req_id, host_calls.kv_set(ctx, _int(p, "scope", 0), key, value)[0])
        elif method == "emit_event":
            event = p.get("event")
            if not isinstance(event, dict):
                raise _BadParams("'event' must be a PluginEvent object")
            self._reply(req_id, host_calls.emit_event(ctx, _mp_encode(event))[0])
        elif method == "should_cancel":
            status, _ = host_calls.should_cancel(ctx)
            self._reply(req_id, 0, {"cancelled": status == Status.CANCELLED})
        elif method == "archive_read":
            status, data = host_calls.archive_read(ctx, _int(p, "offset"), _int(p, "cap"))
            self._reply(req_id, status, {"data": b64encode(data)} if status == 0 else None)
        elif method == "archive_total_size":
            status, size = host_calls.archive_size(ctx)
            self._reply(req_id, status, {"size": size} if status == 0 else None)
        elif method == "fs_read_config":
            path = p.get("path")
            if not isinstance(path, str):
                raise _BadParams("'path' must be a string")
            status, data = host_calls.read_config(ctx, path.encode("utf-8"))
            self._reply(req_id, status, {"data": b64encode(data)} if status == 0 else None)
        else:
            self._send(
                {
                    "jsonrpc": "2.0",
                    "id": req_id,
                    "error": {"code": RpcCode.METHOD_NOT_FOUND, "message": f"hm has no method {method!r}"},
                }
            )

    def _notify(self, method: str, ctx: CallContext, p: dict[str, Any]) -> None:
        if method == "emit_step_log":
            stream = _STREAMS.get(p.get("stream", 1))
            if stream is None:
                raise _BadParams('\'stream\' must be 1, 2, "stdout" or "stderr"')
            host_calls.step_log(ctx, stream, _data_or_text(p))
        elif method == "log":
            message = p.get("message")
            if not isinstance(message, str):
                raise _BadParams("'message' must be a string")
            host_calls.log_message(ctx, _int(p, "level", 20), message.encode("utf-8"))
        elif method == "write_stdout":
            host_calls.write_stdout(ctx, _data_or_text(p))
        elif method == "write_stderr":
            host_calls.write_stderr(ctx, _data_or_text(p))
        else:
            log.debug("%s: ignored the unknown notification %s", self.label, printable(method)[:80])

    def _broken(self, what: str) -> None:
        log.error("%s: it broke the stdio protocol (%s); stopping it", self.label, what)
        self.kill(f"it broke the stdio protocol ({what})")
        self._on_death()


def sdk_path() -> str:
    """A folder holding only ``hm_plugin_sdk`` (a link to hm's), for a plugin's
    ``PYTHONPATH``: putting hm's whole site-packages there would shadow the
    packages of the plugin's own Python with hm's. Falls back to that folder
    where links cannot be made."""
    real = _SDK_PARENT / "hm_plugin_sdk"
    folder = paths.cache_dir() / "stdio-sdk"
    link = folder / "hm_plugin_sdk"
    try:
        if link.resolve() != real:
            folder.mkdir(parents=True, exist_ok=True)
            fresh = folder / f".hm_plugin_sdk.{os.getpid()}"
            fresh.unlink(missing_ok=True)
            fresh.symlink_to(real, target_is_directory=True)
            os.replace(fresh, link)  # atomic: another hm may be doing the same
        return str(folder)
    except OSError:
        return str(_SDK_PARENT)


def _initialize_params() -> dict[str, Any]:
    return {"protocol_version": f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}", "host": "hm", "host_version": __version__}


def _error_status(error: Any) -> tuple[int, bytes]:
    """A JSON-RPC error as the ``(status, msgpack PluginError)`` of the seam."""
    if not isinstance(error, dict):
        return _FAILED, _mp_encode({"code": "malformed_error", "message": f"an error that is not an object: {error!r}"})
    code = error.get("code")
    if code == RpcCode.METHOD_NOT_FOUND:
        return int(Status.ERR_UNSUPPORTED), b""
    data = error.get("data")
    if isinstance(data, dict) and "code" in data and "message" in data:
        return _FAILED, _mp_encode(data)
    message = error.get("message")
    return _FAILED, _mp_encode({"code": f"jsonrpc_{code}", "message": str(message)})


class StdioTransport(WorkerTransport):
    """The transport of a stdio plugin: one process, started when first needed,
    replaced after it died or was given up on."""

    kind = "stdio"

    def __init__(self, descriptor: Descriptor, *, load_timeout: float = 10.0, stderr_level: int = logging.WARNING):
        super().__init__(str(descriptor.path), load_timeout=load_timeout, stderr_level=stderr_level)
        self.descriptor = descriptor

    def _new_process(self) -> WorkerProcess:
        return StdioProcess(self.descriptor, name=self._name, stderr_level=self._options["stderr_level"])

    def manifest(self, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]:
        worker = self._current()
        return worker.call(_next_id(worker), 0, b"", ctx, timeout=timeout)

    def call(self, op: int, payload: bytes, ctx: CallContext, *, timeout: float | None = None) -> tuple[int, bytes]:
        worker = self._current()
        return worker.call(_next_id(worker), int(op), payload, ctx, timeout=timeout)


def _next_id(worker: WorkerProcess) -> int:
    assert isinstance(worker, StdioProcess)
    return worker.next_id()


def open_stdio(path: Path, *, load_timeout: float = 10.0, stderr_level: int = logging.WARNING) -> StdioTransport:
    """Read the descriptor at ``path`` and start its plugin.

    :raises PluginLoadError: the descriptor is malformed or the plugin cannot start.
    """
    transport = StdioTransport(read_descriptor(path.absolute()), load_timeout=load_timeout, stderr_level=stderr_level)
    try:
        transport.open()
    except BaseException:
        transport.kill()
        transport.close()
        raise
    return transport
