"""Write an hm plugin in Python: the helper for the stdio protocol (docs/stdio-protocol.md).

Standard library only, so any ``python3`` runs it (hm puts this package on the
plugin's ``PYTHONPATH``). A whole plugin::

    from hm_plugin_sdk.stdio import Call, Plugin

    plugin = Plugin("hello", "0.1.0", description="says hello")

    @plugin.runner("hello", default=False)
    def run(inp: dict, call: Call) -> dict:
        call.emit_step_log(f"hello from {inp['step']['key']}\\n")
        return {"exit_code": 0}

    @plugin.subcommand(["hello"], summary="greet", args=[{"name": "who", "required": True}])
    def hello(inp: dict, call: Call) -> dict:
        call.write_stdout(f"hello {inp['args']['who']}\\n")
        return {"exit_code": 0}

    if __name__ == "__main__":
        plugin.serve()

Messages are the JSON forms of the schemas in :mod:`hm_plugin_sdk.protocol`
(plain dicts here). A handler raises :class:`Failure` to fail with a
``PluginError``; any other exception fails the call as ``exception`` and its
traceback goes to stderr, which hm writes to its log. ``print`` goes to stderr
too: stdout belongs to the protocol.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["PROTOCOL_VERSION", "Call", "Failure", "HostError", "Plugin"]

PROTOCOL_VERSION = "1.0"
Handler = Callable[[dict[str, Any], "Call"], dict[str, Any]]
_SCOPES = {"plugin": 0, "build": 1, "step": 2}
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
#: Step output is sent in batches of at most this many bytes, and at the latest
#: this many seconds after it was written (or before any other message).
_BATCH_BYTES = 1 << 16
_BATCH_DELAY = 0.002


class Failure(Exception):
    """Raise in a handler to fail the call with a ``PluginError``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        title: str | None = None,
        suggestion: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message, "retryable": retryable}
        if title is not None:
            self.error["title"] = title
        if suggestion is not None:
            self.error["suggestion"] = suggestion


class HostError(Exception):
    """A host-API function answered a status other than OK (``status`` is its name,
    e.g. ``ERR_UNAVAILABLE``; ``code`` its number)."""

    def __init__(self, code: int, status: str) -> None:
        super().__init__(f"{status} ({code})")
        self.code = code
        self.status = status


class _Wire:
    """Writes messages to the protocol channel; batches step output."""

    def __init__(self, fd: int) -> None:
        self._out = os.fdopen(fd, "wb", buffering=0)
        self._lock = threading.Lock()
        self._log_key: tuple[int, int] | None = None
        self._log_parts: list[bytes] = []
        self._log_size = 0
        self._due = threading.Event()
        threading.Thread(target=self._flusher, name="hm-step-log", daemon=True).start()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            self._flush_logs()
            self._out.write(line)

    def step_log(self, call: int, stream: int, data: bytes) -> None:
        with self._lock:
            if self._log_key != (call, stream):
                self._flush_logs()
                self._log_key = (call, stream)
            self._log_parts.append(data)
            self._log_size += len(data)
            if self._log_size >= _BATCH_BYTES:
                self._flush_logs()
            elif not self._due.is_set():
                self._due.set()

    def flush(self) -> None:
        with self._lock:
            self._flush_logs()

    def _flush_logs(self) -> None:
        if not self._log_parts or self._log_key is None:
            return
        data = b"".join(self._log_parts)
        self._log_parts, self._log_size = [], 0
        call, stream = self._log_key
        params: dict[str, Any] = {"call": call, "stream": stream}
        try:
            params["text"] = data.decode("utf-8")
        except UnicodeDecodeError:
            params["data"] = base64.b64encode(data).decode("ascii")
        message = {"jsonrpc": "2.0", "method": "emit_step_log", "params": params}
        self._out.write(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n")

    def _flusher(self) -> None:
        while True:
            self._due.wait()
            time.sleep(_BATCH_DELAY)
            self._due.clear()
            self.flush()


class Call:
    """One call from hm, and the host API it may use while it runs."""

    __slots__ = ("_plugin", "cancelled", "id")

    def __init__(self, plugin: Plugin, call_id: int) -> None:
        self._plugin = plugin
        self.id = call_id
        #: True once hm sent ``$/cancel`` for this call (a plain flag: an Event per
        #: call would cost more than a no-op call's handler).
        self.cancelled = False

    # -- notifications (one-way) ------------------------------------------------------
    def log(self, message: str, level: str | int = "info") -> None:
        """A line in hm's log, attributed to this plugin (and step)."""
        lvl = _LEVELS.get(level, 20) if isinstance(level, str) else int(level)
        self._notify("log", {"level": lvl, "message": message})

    def emit_step_log(self, data: str | bytes, stream: str = "stdout") -> None:
        """Output of the step this ``execute_step`` runs (lines may span calls)."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._plugin._wire.step_log(self.id, 2 if stream == "stderr" else 1, raw)

    def write_stdout(self, data: str | bytes) -> None:
        """Write to the user's terminal (subcommands)."""
        self._notify("write_stdout", _bytes_param(data))

    def write_stderr(self, data: str | bytes) -> None:
        self._notify("write_stderr", _bytes_param(data))

    # -- requests ---------------------------------------------------------------------
    def kv_get(self, key: str | bytes, scope: str = "plugin") -> bytes | None:
        """The value stored under ``key``, or None."""
        try:
            result = self._request("kv_get", {"scope": _SCOPES[scope], "key": _b64(key)})
        except HostError as exc:
            if exc.status == "ERR_NOT_FOUND":
                return None
            raise
        return base64.b64decode(result["value"])

    def kv_set(self, key: str | bytes, value: str | bytes, scope: str = "plugin") -> None:
        self._request("kv_set", {"scope": _SCOPES[scope], "key": _b64(key), "value": _b64(value)})

    def emit_event(self, name: str, data: dict[str, Any] | None = None) -> None:
        """A ``plugin_event`` in the run's event stream."""
        self._request("emit_event", {"event": {"name": name, "data": data or {}}})

    def should_cancel(self) -> bool:
        """Whether hm wants this call to stop (a ``$/cancel`` came, or hm says so)."""
        if self.cancelled:
            return True
        return bool(self._request("should_cancel", {})["cancelled"])

    def archive_total_size(self) -> int:
        """The size of the workspace archive of the step (``base_workspace``)."""
        return int(self._request("archive_total_size", {})["size"])

    def archive_read(self, offset: int, cap: int) -> bytes:
        return base64.b64decode(self._request("archive_read", {"offset": offset, "cap": cap})["data"])

    def fs_read_config(self, path: str) -> bytes | None:
        """``.hm/<path>`` of the project, or None when there is no such file."""
        try:
            return base64.b64decode(self._request("fs_read_config", {"path": path})["data"])
        except HostError as exc:
            if exc.status == "ERR_NOT_FOUND":
                return None
            raise

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        self._plugin._wire.send({"jsonrpc": "2.0", "method": method, "params": {"call": self.id, **params}})

    def _request(self, method: str, params: dict[str, Any]) -> Any:
        return self._plugin._request(method, {"call": self.id, **params})


def _b64(value: str | bytes) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


def _bytes_param(data: str | bytes) -> dict[str, str]:
    return {"text": data} if isinstance(data, str) else {"data": _b64(data)}


class Plugin:
    """A plugin: its manifest, its handlers, and :meth:`serve`."""

    def __init__(self, name: str, version: str, *, description: str = "") -> None:
        self.manifest: dict[str, Any] = {"name": name, "version": version, "capabilities": []}
        if description:
            self.manifest["description"] = description
        self._handlers: dict[str, Handler] = {}
        self._calls: dict[int, Call] = {}
        self._replies: dict[int, Future[Any]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._wire: _Wire

    # -- declaring capabilities -------------------------------------------------------
    def runner(self, *runners: str, default: bool = False, **extra: Any) -> Callable[[Handler], Handler]:
        """Register the ``execute_step`` handler: ``fn(ExecutorInput, call) -> StepResult``."""
        cap = {"kind": "step_executor", "runners": list(runners), "default": default, **extra}
        return self._capability(cap, "execute_step")

    def hook(
        self, phase: str, *, events: list[str] | None = None, timeout_ms: int = 5000
    ) -> Callable[[Handler], Handler]:
        """Register the ``on_hook_event`` handler: ``fn(HookEvent, call) -> HookOutcome``."""
        cap = {"kind": "lifecycle_hook", "phase": phase, "events": events or [], "timeout_ms": timeout_ms}
        return self._capability(cap, "on_hook_event")

    def subcommand(
        self, verb: list[str], *, summary: str = "", args: list[dict[str, Any]] | None = None
    ) -> Callable[[Handler], Handler]:
        """Register the ``run_subcommand`` handler: ``fn(SubcommandInput, call) -> ExitInfo``."""
        cap = {"kind": "subcommand", "verb": list(verb), "summary": summary, "args": args or []}
        return self._capability(cap, "run_subcommand")

    def _capability(self, cap: dict[str, Any], method: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            if method in self._handlers:
                raise ValueError(f"{method} has a handler already (one per plugin)")
            self.manifest["capabilities"].append(cap)
            self._handlers[method] = fn
            return fn

        return register

    # -- serving ----------------------------------------------------------------------
    def serve(self) -> None:
        """Answer hm until it closes stdin. stdout becomes the protocol's alone:
        ``print`` and ``sys.stdout`` write to stderr from here on.

        Reading is leader/follower: one thread reads a line; when it is a call,
        the next idle thread takes over reading and this one runs the handler
        at once (no hand-off to another thread, which would cost more than the
        call), so calls run concurrently and a ``$/cancel`` or the answer to a
        host-API request is read while handlers run."""
        protocol_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._wire = _Wire(protocol_fd)
        self._stdin = os.fdopen(os.dup(0), "rb")
        self._read_lock = threading.Lock()
        self._idle = 0
        self._follow()

    def _follow(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            with self._read_lock:
                with self._lock:
                    self._idle -= 1
                line = self._stdin.readline()
            if not line:
                self._wire.flush()
                os._exit(0)  # hm is gone or done: calls still running end with the process
            if line.strip():
                self._handle(line)

    def _handle(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            print(f"hm_plugin_sdk: not JSON from hm: {line[:80]!r}", file=sys.stderr)
            return
        method = message.get("method")
        if method is None:
            self._on_reply(message)
        elif method == "$/cancel":
            call = self._calls.get((message.get("params") or {}).get("id"))
            if call is not None:
                call.cancelled = True
        elif method == "initialize":
            self._on_initialize(message)
        elif method == "shutdown":
            self._wire.send({"jsonrpc": "2.0", "id": message.get("id"), "result": None})
        elif "id" in message:
            call = Call(self, message["id"])
            self._calls[call.id] = call
            with self._lock:
                spare = self._idle > 0
            if not spare:  # someone must read while this thread runs the handler
                threading.Thread(target=self._follow, name="hm-call", daemon=True).start()
            self._run(call, method, message.get("params") or {})

    def _on_initialize(self, message: dict[str, Any]) -> None:
        host = str((message.get("params") or {}).get("protocol_version", "0.0"))
        if host.split(".")[0] != PROTOCOL_VERSION.split(".")[0]:
            error = {"code": -32002, "message": f"this plugin speaks protocol {PROTOCOL_VERSION}, hm speaks {host}"}
            self._wire.send({"jsonrpc": "2.0", "id": message.get("id"), "error": error})
            return
        self._wire.send({"jsonrpc": "2.0", "id": message.get("id"), "result": {"protocol_version": PROTOCOL_VERSION}})

    def _run(self, call: Call, method: str, params: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": call.id}
        try:
            if method == "manifest":
                reply["result"] = self.manifest
            elif method in self._handlers:
                reply["result"] = self._handlers[method](params, call)
            else:
                reply["error"] = {"code": -32601, "message": f"this plugin has no method {method!r}"}
        except Failure as exc:
            reply["error"] = {"code": -32000, "message": exc.error["message"], "data": exc.error}
        except SystemExit as exc:  # sys.exit() in a handler ends the plugin, as exit() ends a native one
            self._wire.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        except Exception as exc:
            traceback.print_exc()
            data = {"code": "exception", "message": f"{type(exc).__name__}: {exc}"}
            reply["error"] = {"code": -32000, "message": data["message"], "data": data}
        finally:
            self._calls.pop(call.id, None)
        self._wire.send(reply)

    def _request(self, method: str, params: dict[str, Any]) -> Any:
        future: Future[Any] = Future()
        with self._lock:
            self._next += 1
            req_id = self._next
            self._replies[req_id] = future
        self._wire.send({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
        return future.result()

    def _on_reply(self, message: dict[str, Any]) -> None:
        future = self._replies.pop(message.get("id"), None)  # type: ignore[arg-type]
        if future is None:
            return
        error = message.get("error")
        if error is not None:
            future.set_exception(HostError(int(error.get("code", 0)), str(error.get("message", ""))))
        else:
            future.set_result(message.get("result"))
