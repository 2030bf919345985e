"""Pipeline IR v0: the data a pipeline is, and its JSON form.

Every way of writing a pipeline (the Python DSL, an IR JSON file) ends up as a
:class:`Pipeline`. The structs are strict on purpose: unknown fields are errors so a
typo such as ``timeout_secs`` is reported instead of silently ignored, and the
structs are frozen so the plan and the scheduler can share them without copying.

Compatibility rule (as for the plugin protocol): within IR version ``"0"`` new
optional fields may be added; nothing is renamed or repurposed.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec

from hm.errors import PipelineError

__all__ = [
    "IR_VERSION",
    "CachePolicy",
    "CommandStep",
    "Pipeline",
    "Step",
    "WaitStep",
    "pipeline_from_json",
    "pipeline_json_schema",
    "pipeline_to_json",
]

#: The only IR version this hm reads and writes.
IR_VERSION: Final = "0"


class _IRStruct(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Shared options: strict and immutable (subclasses inherit both).

    ``kw_only`` is not inherited by msgspec, so each struct sets it.
    """


def _doc(text: str) -> msgspec.Meta:
    """A field's description in the JSON Schema (``hm schema pipeline``); no constraint:
    :mod:`hm.pipeline.validate` checks values, with messages that say what to do."""
    return msgspec.Meta(description=text)


class CachePolicy(_IRStruct, kw_only=True, frozen=True):
    """How a step uses the step cache (:mod:`hm.run.step_cache`).

    :param policy: ``"none"`` (default), ``"read"`` (restore a stored result, never
        store) or ``"read_write"`` (restore, or run and store).
    :param key: a string of the user's mixed into the cache key (change it to
        start afresh, or to name what the key cannot see); ``None``: nothing.
    """

    policy: Annotated[
        Literal["none", "read", "read_write"],
        _doc("none (default); read: restore a stored result, never store; read_write: restore, or run and store"),
    ] = "none"
    key: Annotated[
        str | None,
        _doc("mixed into the cache key (hm derives the rest): change it to start afresh; null: nothing"),
    ] = None


class CommandStep(_IRStruct, kw_only=True, frozen=True, tag="command", tag_field="kind"):
    """A step that runs ``cmd`` on a runner.

    ``runner=None`` means the default runner (the one a plugin declares as default).
    ``builds_in`` names the step whose workspace snapshot this step starts from.
    """

    key: Annotated[str, _doc("unique in the pipeline; letters, digits, '_', '.' and '-'")]
    label: Annotated[str | None, _doc("a human name for the step, shown by --dry-run and passed to the runner")] = None
    cmd: Annotated[str, _doc("the command; the runner decides how to run it (shell: /bin/sh -c)")]
    env: Annotated[dict[str, str], _doc("environment variables for this step, over the pipeline's env")] = {}
    image: Annotated[str | None, _doc("an image for runners that use one; null: the pipeline's default_image")] = None
    runner: Annotated[str | None, _doc("the runner's name; null: the default runner")] = None
    runner_args: Annotated[dict[str, Any], _doc("options for the runner (JSON data), e.g. kill_grace_seconds")] = {}
    timeout_seconds: Annotated[float | None, _doc("seconds (> 0) before the step is stopped, exit 124")] = None
    cache: Annotated[CachePolicy | None, _doc("how the step uses the cache")] = None
    builds_in: Annotated[str | None, _doc("key of the step whose workspace this step starts from")] = None
    artifacts: Annotated[
        list[str],
        _doc("glob patterns (relative to the workspace) of files kept in the run record when the step succeeds"),
    ] = []
    artifacts_required: Annotated[bool, _doc("a pattern that matches no file fails the step (else: a warning)")] = False


class WaitStep(_IRStruct, kw_only=True, frozen=True, tag="wait", tag_field="kind"):
    """A barrier: steps after it start only when every step before it has finished.

    With ``continue_on_failure=False`` a failure before the barrier stops the build here.
    """

    key: Annotated[str | None, _doc("optional name of the barrier, shown by --dry-run")] = None
    continue_on_failure: Annotated[bool, _doc("run the steps after it even if a step before it failed")] = False


Step: TypeAlias = CommandStep | WaitStep


class Pipeline(_IRStruct, kw_only=True, frozen=True):
    """One pipeline: a slug, pipeline-wide env and image, and its steps in order."""

    version: Annotated[Literal["0"], _doc("the IR version; this hm reads and writes 0")] = IR_VERSION
    slug: Annotated[str, _doc("the pipeline's name (hm run SLUG); letters, digits, '_', '.' and '-'")]
    env: Annotated[dict[str, str], _doc("environment variables for every step")] = {}
    default_image: Annotated[str | None, _doc("image for steps that set none")] = None
    steps: Annotated[list[Step], _doc("command and wait steps, in order; waits split them into stages")]


# msgspec appends " - at `$.steps[2].cmd`" to validation errors; the path is the
# most useful part for a user, so it becomes the `where`.
_AT_PATH = re.compile(r"^(?P<what>.*?) - at `(?P<path>\$[^`]*)`$", re.DOTALL)
_AT_BYTE = re.compile(r"\(byte (?P<byte>\d+)\)$")
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<field>[^`]+)`")
_STEP_PATH = re.compile(r"^\$\.steps\[(?P<index>\d+)\](?P<rest>.*)$")

_SCHEMA_HINT = "the IR v0 fields are described in docs/pipelines.md; `hm schema pipeline` prints the JSON Schema"


def pipeline_from_json(data: bytes, *, source: str) -> Pipeline:
    """Decode and type-check IR JSON.

    :param source: what the bytes came from (a path), used in error messages.
    :raises PipelineError: malformed JSON (``where`` is ``source:line:col``) or a value
        that does not fit the schema (``where`` is ``source`` plus msgspec's path).
    """
    try:
        return msgspec.json.decode(data, type=Pipeline)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc), data, source) from exc
    except msgspec.DecodeError as exc:
        raise _decode_error(str(exc), data, source) from exc


def pipeline_to_json(pipeline: Pipeline) -> bytes:
    """Encode a pipeline as compact IR JSON (every field present, ``kind`` first)."""
    return msgspec.json.encode(pipeline)


def pipeline_json_schema() -> dict[str, Any]:
    """The JSON Schema of IR v0, for documentation and editors."""
    return msgspec.json.schema(Pipeline)


def _decode_error(message: str, data: bytes, source: str) -> PipelineError:
    where = source
    match = _AT_BYTE.search(message)
    if match:
        offset = int(match["byte"])
        line = data.count(b"\n", 0, offset) + 1
        col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        where = f"{source}:{line}:{col}"
        message = message[: match.start()].rstrip()
    return PipelineError(
        f"not valid JSON: {message}",
        where=where,
        hint="fix the JSON syntax (an IR file is one JSON object with `slug` and `steps`)",
    )


def _validation_error(message: str, data: bytes, source: str) -> PipelineError:
    match = _AT_PATH.match(message)
    what, path = (match["what"], match["path"]) if match else (message, "$")
    hint = _SCHEMA_HINT
    field = _UNKNOWN_FIELD.search(what)
    if field:
        allowed = _fields_at(path, data)
        if allowed:
            close = difflib.get_close_matches(field["field"], allowed, n=1)
            guess = f"did you mean `{close[0]}`? " if close else ""
            hint = f"{guess}allowed fields here: {', '.join(allowed)}"
    elif path == "$.version":
        hint = f'this hm reads pipeline IR version "{IR_VERSION}"; regenerate the file or upgrade hm'
    elif path.endswith(".kind"):
        hint = 'a step\'s `kind` is "command" or "wait"'
    return PipelineError(f"invalid pipeline IR: {what}", where=f"{source} at {path}", hint=hint)


def _fields_at(path: str, data: bytes) -> list[str]:
    """The field names allowed at ``path`` (``$``, ``$.steps[N]``, ``$.steps[N].cache``)."""
    if path == "$":
        return list(Pipeline.__struct_fields__)
    match = _STEP_PATH.match(path)
    if not match:
        return []
    if match["rest"] == ".cache":
        return list(CachePolicy.__struct_fields__)
    if match["rest"]:
        return []
    # The step's kind decides which struct applies; re-read the raw JSON to learn it.
    try:
        raw = msgspec.json.decode(data)
        kind = raw["steps"][int(match["index"])].get("kind")
    except (msgspec.DecodeError, LookupError, TypeError, AttributeError):
        return []
    struct = {"command": CommandStep, "wait": WaitStep}.get(kind)
    return ["kind", *struct.__struct_fields__] if struct else []
