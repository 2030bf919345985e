"""Host-API messages that arrive from outside hm's process tree (a Dask worker's step).

The cluster sends the worker transport's messages (``Note`` one-way calls,
``Request`` calls that need an answer) over the network; they are served here by
the same code that serves an ``hm-worker``'s, so a plugin sees the same answers
wherever it runs. :func:`find_library` finds a library by content hash among
the ones this machine's hm can discover (a worker that was not sent one).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hm.runtime import host_calls
from hm.runtime.calls import CallContext
from hm.runtime.discovery import discover
from hm.runtime.worker import _NOTES, _serve_request
from hm.runtime.worker_protocol import Note, Request
from hm_plugin_sdk.abi import Status

__all__ = ["Note", "Request", "find_library", "serve_event", "serve_note", "serve_request"]


def serve_note(ctx: CallContext, code: int, args: list[Any]) -> int:
    """Serve a one-way call (``Note``); returns its status (nobody waits for it)."""
    serve = _NOTES.get(code)
    if serve is None:
        return int(Status.ERR_UNSUPPORTED)
    return serve(ctx, *args)[0]


def serve_event(ctx: CallContext, msg: bytes) -> int:
    """Serve ``emit_event`` sent one-way (its sender already checked it)."""
    return host_calls.emit_event(ctx, bytes(msg))[0]


def serve_request(ctx: CallContext, fn: int, args: list[Any]) -> tuple[int, Any]:
    """Serve a ``Request``; returns ``(status, value)``."""
    try:
        return _serve_request(ctx, int(fn), list(args))
    except (TypeError, ValueError):
        return int(Status.ERR_INVALID_ARGUMENT), None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_library(sha: str) -> Path | None:
    """A plugin library this machine's hm discovers whose sha256 is ``sha``."""
    for cand in discover(None):
        try:
            if cand.path.is_file() and sha256_file(cand.path) == sha:
                return cand.path
        except OSError:
            continue
    return None
