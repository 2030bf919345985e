"""The render process: import one DSL pipeline file and print its pipelines as IR JSON.

Run by :mod:`hm.pipeline.render` as ``python -m hm.pipeline._render_child PATH`` with
the project root as working directory. It prints exactly one JSON document on
stdout and exits 0::

    {"pipelines": [<IR>, ...], "origins": [{"line": N, "steps": [[FILE, LINE], ...]}, ...]}
    {"error": {"what": ..., "file": ..., "line": ..., "hint": ...}}

``origins[i]`` locates ``pipelines[i]``: the line of its ``@pipeline`` decorator and,
for each of its steps, the file and line of the ``step()`` / ``wait()`` call.

Anything else (a crash, a non-zero exit, other output) is treated by the host as
the render process failing. What the pipeline file prints goes to stderr: fd 1 is
pointed at stderr before the file is imported, so even native code or a
subprocess cannot corrupt the reply.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import msgspec

from hm import dsl
from hm.errors import HmError

_MODULE_NAME = "__hm_pipeline__"


def main(argv: list[str]) -> None:
    """Render ``argv[1]`` and write the reply to the original stdout, then exit 0."""
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    path = Path(argv[1]).resolve()
    try:
        pipelines, origins = _render(path)
        reply: dict[str, Any] = {"pipelines": pipelines, "origins": origins}
    except BaseException as exc:
        reply = {"error": _describe(exc, path)}
    try:
        data = msgspec.json.encode(reply)
    except TypeError as exc:
        data = msgspec.json.encode(
            {"error": {"what": f"cannot encode the rendered pipeline: {exc}", "file": str(path)}}
        )
    with os.fdopen(reply_fd, "wb") as out:
        out.write(data)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: threads or atexit handlers left by the pipeline file
    # must not keep the process (and the host waiting on it) alive.
    os._exit(0)


# The function of the pipeline being rendered: its line locates errors that have no
# frame in the file (e.g. the function was declared with required parameters).
_rendering: dsl.PipelineDef | None = None


def _render(path: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    global _rendering
    # A pipeline file must not litter .hm/ with __pycache__.
    sys.dont_write_bytecode = True
    # Like `python FILE`: the file's directory comes first, so `.hm/_helpers.py` imports.
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    pipelines = []
    origins = []
    for definition in dsl._take_registered():
        _rendering = definition
        pipeline, lines = definition.render_located()
        pipelines.append(pipeline)
        origins.append({"line": _line_of(definition.defined_at), "steps": [_file_line(w) for w in lines]})
    _rendering = None
    return pipelines, origins


def _file_line(where: str) -> list[Any]:
    file, _, line = where.rpartition(":")
    return [file, int(line)]


def _line_of(where: str) -> int:
    return int(where.rpartition(":")[2])


def _describe(exc: BaseException, path: Path) -> dict[str, Any]:
    if isinstance(exc, SyntaxError):
        # The bad syntax may be in a module the pipeline file imports: point there.
        return {
            "what": f"{type(exc).__name__}: {exc.msg}",
            "file": exc.filename or str(path),
            "line": exc.lineno,
            "hint": "fix the syntax; the file must be valid Python",
        }
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if _same_file(f.filename, path)]
    line: int | None = ours[-1].lineno if ours else None
    if line is None and _rendering is not None:
        line = _line_of(_rendering.defined_at)
    if isinstance(exc, HmError):
        what, hint = exc.what, exc.hint
    elif isinstance(exc, SystemExit):
        what = f"the pipeline file called sys.exit({exc.code!r})"
        hint = "a pipeline file must not exit: hm imports it to render its pipelines"
    else:
        what = f"{type(exc).__name__}: {exc}"
        hint = "fix the error at this line (hm imports pipeline files in a separate process)"
        inner = frames[-1] if frames else None
        if inner is not None and (not ours or inner is not ours[-1]):
            hint = f"raised at {inner.filename}:{inner.lineno} in {inner.name}; {hint}"
    return {"what": what, "file": str(path), "line": line, "hint": hint}


def _same_file(filename: str, path: Path) -> bool:
    try:
        return Path(filename).resolve() == path
    except OSError:
        return False


if __name__ == "__main__":
    main(sys.argv)
