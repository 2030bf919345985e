"""The Python DSL users write pipelines with, in ``.hm/*.py``.

Example::

    from hm.dsl import pipeline, step, wait

    @pipeline("ci", env={"X": "1"})
    def ci():
        build = step("build", "make", label="Build")
        step("test", "make test", builds_in=build)
        wait()
        step("lint", "ruff check .", runner="shell", timeout_seconds=60)

``@pipeline`` only *registers* the function; hm calls it later, in a separate
render process (see :mod:`hm.pipeline.render`), so importing a pipeline file has
no effect beyond registration. :func:`step` and :func:`wait` append to the
pipeline being rendered, so they work in helper functions called from a
``@pipeline`` function, and fail clearly anywhere else.

Arguments are type-checked when :func:`step` is called, so a mistake is reported
at the line that made it rather than later in the IR.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from hm.errors import PipelineError
from hm.pipeline.ir import CachePolicy, CommandStep, Pipeline, WaitStep

__all__ = ["CachePolicy", "PipelineDef", "pipeline", "step", "wait"]

_OUTSIDE_HINT = (
    'call it inside a function decorated with @pipeline("slug"); hm calls that function to render the pipeline'
)


@dataclass
class _Builder:
    slug: str
    steps: list[CommandStep | WaitStep] = field(default_factory=list)
    # key -> "file:line" of the call that defined it, to point at both duplicates.
    defined_at: dict[str, str] = field(default_factory=dict)
    # "file:line" of the call that added steps[i]: validation errors name that line.
    lines: list[str] = field(default_factory=list)


_current: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar("hm_dsl_builder", default=None)
_registry: list[PipelineDef] = []


@dataclass(frozen=True)
class PipelineDef:
    """A registered ``@pipeline`` function. :meth:`render` calls it and returns the IR."""

    slug: str
    env: dict[str, str]
    default_image: str | None
    fn: Callable[[], object]
    #: "file:line" of the decorated function, used when an error has no better location.
    defined_at: str

    def render(self) -> Pipeline:
        """Call the pipeline function and collect the steps it declares."""
        return self.render_located()[0]

    def render_located(self) -> tuple[Pipeline, list[str]]:
        """:meth:`render`, plus the ``file:line`` of the call that declared each step."""
        builder = _Builder(self.slug)
        token = _current.set(builder)
        try:
            self.fn()
        finally:
            _current.reset(token)
        pipeline = Pipeline(slug=self.slug, env=self.env, default_image=self.default_image, steps=builder.steps)
        return pipeline, builder.lines


def pipeline(
    slug: str,
    *,
    env: Mapping[str, str] | None = None,
    default_image: str | None = None,
) -> Callable[[Callable[[], object]], PipelineDef]:
    """Register the decorated function as the pipeline ``slug`` (run it with ``hm run SLUG``).

    :param env: environment variables for every step.
    :param default_image: image for steps that set none.
    """
    where = _caller()
    if callable(slug):
        raise PipelineError(
            "@pipeline needs a slug",
            where=where,
            hint='write @pipeline("ci") above the function, not @pipeline',
        )
    args = _convert(
        {"slug": slug, "env": {} if env is None else env, "default_image": default_image},
        _PipelineArgs,
        "@pipeline",
        where,
    )

    def register(fn: Callable[[], object]) -> PipelineDef:
        for other in _registry:
            if other.slug == args.slug:
                raise PipelineError(
                    f"pipeline '{args.slug}' is already defined at {other.defined_at}",
                    where=where,
                    hint="give each pipeline a unique slug",
                )
        definition = PipelineDef(args.slug, args.env, args.default_image, fn, where)
        _registry.append(definition)
        return definition

    return register


def step(
    key: str,
    cmd: str,
    *,
    label: str | None = None,
    env: Mapping[str, str] | None = None,
    image: str | None = None,
    runner: str | None = None,
    runner_args: Mapping[str, Any] | None = None,
    timeout_seconds: float | None = None,
    cache: CachePolicy | Literal["none", "read", "read_write"] | None = None,
    builds_in: str | None = None,
    artifacts: Sequence[str] | None = None,
    artifacts_required: bool = False,
) -> str:
    """Add a command step; return its handle (the key) for another step's ``builds_in``.

    :param runner: runner name; ``None`` uses the default runner.
    :param cache: a :class:`CachePolicy` or just its policy name.
    :param builds_in: handle or key of the step whose snapshot this step starts from.
    :param artifacts: glob patterns (relative to the workspace) of files kept in the
        run record when the step succeeds, e.g. ``["dist/**", "report.xml"]``.
    :param artifacts_required: a pattern that matches nothing fails the step
        (otherwise it is a warning).
    """
    where = _caller()
    builder = _builder(f"step({key!r})", where)
    args: dict[str, Any] = {
        "key": key,
        "label": label,
        "cmd": cmd,
        # Passed as given: msgspec checks the type and names the argument on error.
        "env": {} if env is None else env,
        "image": image,
        "runner": runner,
        "runner_args": {} if runner_args is None else runner_args,
        "timeout_seconds": timeout_seconds,
        # A bare policy name is shorthand for CachePolicy(policy=name); _convert checks it.
        "cache": {"policy": cache} if isinstance(cache, str) else msgspec.to_builtins(cache),
        "builds_in": builds_in,
        # A lone string would be taken letter by letter: let _convert refuse it.
        "artifacts": [] if artifacts is None else artifacts if isinstance(artifacts, str) else list(artifacts),
        "artifacts_required": artifacts_required,
    }
    new = _convert(args, CommandStep, f"step({key!r})", where)
    try:
        msgspec.json.encode(new.runner_args)
    except TypeError as exc:
        raise PipelineError(
            f"step({key!r}): runner_args must be JSON data: {exc}",
            where=where,
            hint="use only str, int, float, bool, None, lists and str-keyed dicts in runner_args",
        ) from None
    _add(builder, new, where)
    return new.key


def wait(key: str | None = None, *, continue_on_failure: bool = False) -> None:
    """Add a barrier: later steps start when every earlier step has finished.

    :param continue_on_failure: run the steps after it even if an earlier step failed.
    """
    where = _caller()
    builder = _builder("wait()", where)
    _add(
        builder,
        _convert({"key": key, "continue_on_failure": continue_on_failure}, WaitStep, "wait()", where),
        where,
    )


class _PipelineArgs(msgspec.Struct, kw_only=True):
    slug: str
    env: dict[str, str]
    default_image: str | None


def _caller() -> str:
    # Two frames up: past this helper and the DSL function, to the user's call.
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _builder(call: str, where: str) -> _Builder:
    builder = _current.get()
    if builder is None:
        raise PipelineError(f"{call} was called outside a @pipeline function", where=where, hint=_OUTSIDE_HINT)
    return builder


def _convert(args: dict[str, Any], into: type[Any], call: str, where: str) -> Any:
    try:
        return msgspec.convert(args, into)
    except msgspec.ValidationError as exc:
        what, _, location = str(exc).partition(" - at ")
        # msgspec says "at `$.env[...]`" or, for a bad mapping key, "at `key` in `$.env`".
        if location.startswith("`key` in "):
            what, location = f"a key: {what}", location[len("`key` in ") :]
        argument = location.removeprefix("`$.").rstrip("`") or "arguments"
        raise PipelineError(
            f"{call}: argument `{argument}`: {what}",
            where=where,
            hint=f"see {call.split('(')[0].lstrip('@')}() in docs/pipelines.md for the arguments and their types",
        ) from None


def _add(builder: _Builder, new: CommandStep | WaitStep, where: str) -> None:
    if new.key is not None:
        first = builder.defined_at.get(new.key)
        if first is not None:
            raise PipelineError(
                f"step key '{new.key}' is already used in pipeline '{builder.slug}' at {first}",
                where=where,
                hint="give every step a unique key",
            )
        builder.defined_at[new.key] = where
    builder.steps.append(new)
    builder.lines.append(where)


def _take_registered() -> list[PipelineDef]:
    """Hand the registered pipelines to the renderer and forget them."""
    taken = list(_registry)
    _registry.clear()
    return taken
