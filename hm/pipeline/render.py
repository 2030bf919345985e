"""Turn pipeline files into IR: DSL files through a render process, IR JSON directly.

A DSL file is arbitrary Python, so it is run in a child process
(:mod:`hm.pipeline._render_child`) with a time limit: an infinite loop, a crash in
native code, ``os._exit`` or stray output cannot take the host down or corrupt
its state. Every way the child can fail becomes a :class:`PipelineError` that
says where.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import msgspec

import hm
from hm.child_process import forget, signal_name, spawn, stop_child
from hm.errors import PipelineError
from hm.pipeline.ir import Pipeline, pipeline_from_json
from hm.pipeline.origin import Origin

__all__ = ["RENDER_TIMEOUT_SECONDS", "load_ir_file", "load_ir_file_located", "render_file", "render_file_located"]

#: How long a DSL file may take to render before it is killed.
RENDER_TIMEOUT_SECONDS: Final = 30.0

_STDERR_TAIL_LINES: Final = 15


class _ChildError(msgspec.Struct):
    what: str
    file: str
    line: int | None = None
    hint: str | None = None


class _ChildOrigin(msgspec.Struct):
    line: int | None = None
    steps: list[tuple[str, int]] = []


class _Reply(msgspec.Struct, forbid_unknown_fields=True):
    pipelines: list[msgspec.Raw] | None = None
    origins: list[_ChildOrigin] | None = None
    error: _ChildError | None = None


def render_file(path: Path, *, cwd: Path | None = None, timeout: float = RENDER_TIMEOUT_SECONDS) -> list[Pipeline]:
    """Render every ``@pipeline`` of a DSL file, in a separate Python process.

    See :func:`render_file_located`, which also says where each pipeline and step was written.
    """
    return [p for p, _ in render_file_located(path, cwd=cwd, timeout=timeout)]


def render_file_located(
    path: Path, *, cwd: Path | None = None, timeout: float = RENDER_TIMEOUT_SECONDS
) -> list[tuple[Pipeline, Origin]]:
    """Render every ``@pipeline`` of a DSL file, in a separate Python process, with its origin.

    :param cwd: the render process's working directory (the project root, so the
        file can read project files by relative path); ``None`` keeps the host's.
    :param timeout: seconds before the render process is killed.
    :raises PipelineError: the file failed (``where`` is its ``file:line``), or the
        render process timed out, crashed or replied with garbage.
    """
    shown = _display(path, cwd)
    # A tracked child in its own session: a timeout, Ctrl-C or an emergency exit also
    # kills what the file spawned (a grandchild holding the pipes would keep us waiting).
    proc = spawn(
        # -P: the project directory (cwd) must not shadow the hm package.
        [sys.executable, "-P", "-m", "hm.pipeline._render_child", str(Path(path).resolve())],
        cwd=cwd,
        env=_child_env(),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        forget(proc)
    except subprocess.TimeoutExpired:
        stop_child(proc)
        raise PipelineError(
            f"rendering took longer than {timeout:g} s and was stopped",
            where=shown,
            hint="a pipeline file should only declare steps; move slow work into the steps",
        ) from None
    return _read_reply(out, err, proc.returncode, shown, cwd)


def load_ir_file(path: Path, *, cwd: Path | None = None) -> Pipeline:
    """Read an IR JSON file (one pipeline object).

    :raises PipelineError: unreadable file, malformed JSON or a schema mismatch.
    """
    return load_ir_file_located(path, cwd=cwd)[0]


def load_ir_file_located(path: Path, *, cwd: Path | None = None) -> tuple[Pipeline, Origin]:
    """:func:`load_ir_file`, plus the file as shown to the user (IR has no lines)."""
    shown = _display(path, cwd)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PipelineError(
            f"cannot read the pipeline file: {exc.strerror}",
            where=shown,
            hint="check the path and its permissions",
        ) from None
    return pipeline_from_json(data, source=shown), Origin(shown)


def _read_reply(out: bytes, err: bytes, returncode: int, shown: str, cwd: Path | None) -> list[tuple[Pipeline, Origin]]:
    stderr = err.decode("utf-8", "replace")
    if returncode != 0:
        how = f"was killed by signal {signal_name(-returncode)}" if returncode < 0 else f"exited with code {returncode}"
        raise PipelineError(
            f"the render process {how}{_tail(stderr)}",
            where=shown,
            hint="something the file runs while rendering (native code, os.abort, a signal) "
            "killed the Python process; remove it from the pipeline file",
        )
    try:
        reply = msgspec.json.decode(out, type=_Reply)
    except (msgspec.DecodeError, msgspec.ValidationError):
        got = f"{out[:200]!r}" if out else "nothing"
        raise PipelineError(
            f"the render process printed {got} instead of its JSON reply{_tail(stderr)}",
            where=shown,
            hint="the file may end the process early (os._exit); otherwise report an hm bug",
        ) from None
    if reply.error is not None:
        e = reply.error
        file = _display(Path(e.file), cwd)
        raise PipelineError(e.what, where=f"{file}:{e.line}" if e.line else file, hint=e.hint)
    # Output of a successful render is the user's own (print debugging): pass it on.
    if stderr:
        sys.stderr.write(stderr)
    raws = reply.pipelines or []
    origins = reply.origins or []
    return [
        (
            pipeline_from_json(bytes(raw), source=f"{shown} (pipeline #{i})"),
            _origin(origins[i - 1] if i <= len(origins) else None, shown, cwd),
        )
        for i, raw in enumerate(raws, 1)
    ]


def _origin(child: _ChildOrigin | None, shown: str, cwd: Path | None) -> Origin:
    if child is None:
        return Origin(shown)
    steps = tuple(f"{_display(Path(file), cwd)}:{line}" for file, line in child.steps)
    return Origin(shown, child.line, steps)


def _child_env() -> dict[str, str]:
    # The child must import this very hm (also when it runs from a source checkout,
    # not installed), whatever the project's cwd holds.
    env = dict(os.environ)
    hm_root = str(Path(hm.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (hm_root, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


def _tail(stderr: str) -> str:
    lines = stderr.strip().splitlines()[-_STDERR_TAIL_LINES:]
    return ("; its last output:\n" + "\n".join(f"  {line}" for line in lines)) if lines else ""


def _display(path: Path, cwd: Path | None) -> str:
    """``path`` relative to ``cwd`` (or the host's cwd) when inside it, else absolute."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(base.resolve()))
    except ValueError:
        return str(resolved)
