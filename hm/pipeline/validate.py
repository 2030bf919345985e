"""Semantic checks of a pipeline against the loaded runners, before anything runs.

The IR decoder already guarantees types; this module checks what types cannot:
keys, commands, timeouts, runners, ``cache.key`` and ``builds_in`` links. All problems are
collected and reported together, one per line, so a user fixes a file in one pass.

``builds_in`` rules (the plan in :mod:`hm.pipeline.graph` relies on them):

- it names a *command* step of the same pipeline, not itself, without cycles;
- the target is in the same stage (between the same wait barriers) or an earlier
  one. Same stage, any order in the file: the plan orders the chain. An earlier
  stage: its snapshot exists once the barrier passed. A *later* stage is an error:
  the wait between them would wait for this step, which would wait for the target
  behind the wait, a deadlock.

Problems are located: with the :class:`~hm.pipeline.origin.Origin` the renderer
reports, each one names the ``file:line`` of the ``step()`` call it is about.

Environment variable names (documented in docs/pipelines.md, "Environment
variables"): a name the process environment cannot hold (empty, with ``=`` or a
NUL) is a problem. Any other name is accepted, as POSIX allows, but a name that
is not a shell identifier (``[A-Za-z_][A-Za-z0-9_]*``: a space, ``-``, a
non-ASCII letter, a leading digit) gets a :class:`ValidationWarning`: no shell
can expand it, and dash (``/bin/sh`` on Debian) even drops it from the
environment of what it runs; a runner that runs programs directly passes it on.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from hm.errors import PipelineError
from hm.pipeline.ir import CommandStep, Pipeline, WaitStep
from hm.pipeline.origin import Origin
from hm.pipeline.routing import CONTAINER_RUNNER, RunnerInfo, route, step_image
from hm.pipeline.runner_args import check_runner_args

__all__ = ["KEY_PATTERN", "SHELL_NAME_PATTERN", "PipelineValidationError", "ValidationWarning", "validate"]

#: Step keys and slugs: safe in paths, env var values, log prefixes and shell args.
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]+")
#: Environment variable names a POSIX shell can expand; others get a warning.
SHELL_NAME_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Longest ``cache.key`` accepted.
MAX_CACHE_KEY: Final = 256

_PLUGIN_LIST_HINT: Final = "`hm plugin list` shows the loaded plugins and the runners they provide"


class PipelineValidationError(PipelineError):
    """A pipeline failed validation.

    ``problems`` holds one sentence per problem; ``locations[i]`` is the ``file:line``
    of the step ``problems[i]`` is about, or ``None`` (IR JSON, or a problem of the
    whole pipeline). One problem is one line, located at its step; several are
    listed below a header located at the pipeline.
    """

    def __init__(
        self,
        problems: list[str],
        *,
        slug: str,
        source: str,
        hint: str,
        locations: Sequence[str | None] = (),
    ) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.locations: tuple[str | None, ...] = tuple(locations) or (None,) * len(problems)
        if len(problems) == 1:
            what = f"pipeline '{slug}' has 1 problem: {problems[0]}"
            where = self.locations[0] or source
        else:
            lines = "\n".join(
                f"  - {loc}: {p}" if loc else f"  - {p}" for p, loc in zip(problems, self.locations, strict=True)
            )
            what = f"pipeline '{slug}' has {len(problems)} problems:\n{lines}"
            where = source
        super().__init__(what, where=where, hint=hint)


@dataclass(frozen=True, slots=True)
class ValidationWarning:
    """Something that will run, but probably not as meant; shown as a ``warning:`` line."""

    what: str
    where: str
    hint: str | None = None

    def one_line(self) -> str:
        """``where: what; hint``, like :meth:`hm.errors.HmError.one_line`."""
        text = f"{self.where}: {self.what}"
        return f"{text}; {self.hint}" if self.hint else text


def validate(
    pipeline: Pipeline,
    *,
    runners: Collection[str],
    default_runner: str | None,
    source: str | Origin,
    runner_info: Mapping[str, RunnerInfo] | None = None,
) -> list[ValidationWarning]:
    """Check ``pipeline``; raise one :class:`PipelineValidationError` listing every problem.

    :param runners: runner names the loaded plugins provide.
    :param default_runner: the runner used when a step sets none, or ``None`` if no
        plugin provides a default.
    :param source: where the pipeline was written (:func:`~hm.pipeline.select_located`
        gives it), or just its file; used as the error's ``where``.
    :param runner_info: what the runners' manifests say (images, runner_args), and
        runners hm knows of but cannot use; a runner missing here runs no images
        and checks its own runner_args.
    :returns: the warnings of a pipeline that has no problems (see the module docstring).
    """
    origin = source if isinstance(source, Origin) else Origin(source)
    checker = _Checker(pipeline, runners, default_runner, runner_info or {})
    problems, hints, warnings = checker.run()
    if problems:
        them = "it" if len(problems) == 1 else "them"
        hint = "; ".join(dict.fromkeys(hints)) or f"fix {them} and run `hm run --dry-run` to check"
        raise PipelineValidationError(
            [text for text, _ in problems],
            slug=pipeline.slug,
            source=origin.where,
            hint=hint,
            locations=[origin.of_step(index) if index is not None else None for _, index in problems],
        )
    return [
        ValidationWarning(
            f"pipeline '{pipeline.slug}', {text}",
            where=(origin.of_step(index) if index is not None else None) or origin.where,
            hint=hint,
        )
        for text, hint, index in warnings
    ]


def _name(index: int, step: CommandStep | WaitStep) -> str:
    if isinstance(step, WaitStep):
        return f"wait '{step.key}' (steps[{index}])" if step.key else f"wait (steps[{index}])"
    return f"step '{step.key}' (steps[{index}])"


class _Checker:
    def __init__(
        self,
        pipeline: Pipeline,
        runners: Collection[str],
        default_runner: str | None,
        runner_info: Mapping[str, RunnerInfo],
    ) -> None:
        self.pipeline = pipeline
        self.runners = runners
        self.default_runner = default_runner
        self.runner_info = runner_info
        # (sentence, index of the step it is about, or None for the whole pipeline)
        self.problems: list[tuple[str, int | None]] = []
        self.hints: list[str] = []
        self.warnings: list[tuple[str, str, int | None]] = []
        # First position of each key; later duplicates are reported, not indexed.
        self.position: dict[str, int] = {}
        self.stage_of: list[int] = []
        stage = 0
        for index, step in enumerate(pipeline.steps):
            if isinstance(step, WaitStep):
                stage += 1
            self.stage_of.append(stage)
            if step.key is not None:
                self.position.setdefault(step.key, index)

    def add(self, problem: str, *hints: str, at: int | None = None) -> None:
        """Record a problem; ``at`` is the index of the step it is about."""
        self.problems.append((problem, at))
        self.hints.extend(h for h in hints if h)

    def run(self) -> tuple[list[tuple[str, int | None]], list[str], list[tuple[str, str, int | None]]]:
        p = self.pipeline
        if not KEY_PATTERN.fullmatch(p.slug):
            self.add(f"slug {p.slug!r} must match [A-Za-z0-9_.-]+", "pick a slug usable as `hm run SLUG`")
        self.check_env("the pipeline", p.env, None)
        if not any(isinstance(s, CommandStep) for s in p.steps):
            self.add("it has no command steps", 'add at least one step, e.g. step("build", "make")')
        for index, step in enumerate(p.steps):
            self.check_key(index, step)
            if isinstance(step, CommandStep):
                self.check_command(index, step)
        self.check_cycles()
        return self.problems, self.hints, self.warnings

    def check_key(self, index: int, step: CommandStep | WaitStep) -> None:
        if step.key is None:
            return
        if not KEY_PATTERN.fullmatch(step.key):
            self.add(
                f"{_name(index, step)}: key {step.key!r} must match [A-Za-z0-9_.-]+",
                "use letters, digits, '_', '.' and '-' in step keys",
                at=index,
            )
        elif step.key in (".", ".."):
            # a key names the step's workspace, log and artifact folders
            self.add(
                f"{_name(index, step)}: key {step.key!r} cannot be used, it names a folder's parent or itself",
                "use letters, digits, '_', '.' and '-' in step keys",
                at=index,
            )
        first = self.position[step.key]
        if first != index:
            self.add(
                f"step key '{step.key}' is used twice: steps[{first}] and steps[{index}]",
                "give every step a unique key",
                at=index,
            )

    def check_command(self, index: int, step: CommandStep) -> None:
        name = _name(index, step)
        if not step.cmd.strip():
            self.add(f"{name}: `cmd` is empty", "give the step a command to run", at=index)
        elif "\0" in step.cmd:
            self.add(f"{name}: `cmd` contains a NUL byte", "a command is text; remove the NUL (\\x00)", at=index)
        self.check_env(name, step.env, index)
        timeout = step.timeout_seconds
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            self.add(
                f"{name}: timeout_seconds must be a positive number of seconds, got {timeout}",
                "omit timeout_seconds for no timeout",
                at=index,
            )
        self.check_runner(index, name, step)
        self.check_cache(index, name, step)
        if step.builds_in is not None:
            self.check_builds_in(index, name, step.builds_in)
        for pattern in step.artifacts:
            parts = pattern.split("/")
            if not pattern or pattern.startswith("/") or "\0" in pattern or ".." in parts:
                self.add(
                    f"{name}: artifact pattern {pattern!r} must be a relative path pattern inside the workspace",
                    "write artifact patterns relative to the step's workspace, without '..', e.g. 'dist/**'",
                    at=index,
                )

    def check_env(self, name: str, env: Mapping[str, str], index: int | None) -> None:
        """Names a process environment can hold: non-empty, no '=', no NUL; values without NUL.
        A name the shell cannot expand is a warning (see the module docstring)."""
        for key, value in env.items():
            if not key or "=" in key or "\0" in key:
                self.add(
                    f"{name}: environment variable name {key!r} is not valid",
                    "an environment variable name is non-empty and has no '=' or NUL",
                    at=index,
                )
            elif "\0" in value:
                self.add(f"{name}: environment variable {key} holds a NUL byte", "remove the NUL (\\x00)", at=index)
            elif not SHELL_NAME_PATTERN.fullmatch(key):
                self.warnings.append(
                    (
                        f"{name}: environment variable name {key!r} is not a shell variable name: "
                        "no shell can expand it, and some /bin/sh (dash, on Debian and Ubuntu) drop it "
                        "from the environment of the commands they run",
                        f"rename it to {_shell_name(key)!r} (letters, digits and '_', not starting with a digit); "
                        "see 'Environment variables' in docs/pipelines.md",
                        index,
                    )
                )

    def check_runner(self, index: int, name: str, step: CommandStep) -> None:
        available = ", ".join(sorted(self.runners)) or "none"
        image = step_image(step, self.pipeline)
        runner = route(step, self.pipeline, self.default_runner)
        if runner is None:
            self.add(
                f"{name}: sets no runner and no loaded plugin provides a default runner "
                f"(available runners: {available})",
                "set `runner` on the step or install a plugin with a default runner",
                _PLUGIN_LIST_HINT,
                at=index,
            )
            return
        if runner not in self.runners:
            info = self.runner_info.get(runner)
            if info is not None and info.unavailable is not None:
                why = f"has image '{image}', so it runs on" if step.runner is None else "names"
                self.add(
                    f"{name}: {why} runner '{runner}', which is unavailable: {info.unavailable}",
                    info.hint or "",
                    at=index,
                )
                return
            if step.runner is None:  # routed to the container runner by its image
                self.add(
                    f"{name}: has image '{image}', so it runs on runner '{CONTAINER_RUNNER}', which no loaded "
                    f"plugin provides (available runners: {available})",
                    _PLUGIN_LIST_HINT,
                    at=index,
                )
                return
            close = difflib.get_close_matches(step.runner, list(self.runners), n=1)
            guess = f"; did you mean '{close[0]}'?" if close else ""
            self.add(
                f"{name}: runner '{step.runner}' is not provided by any loaded plugin "
                f"(available runners: {available}){guess}",
                _PLUGIN_LIST_HINT,
                at=index,
            )
            return
        info = self.runner_info.get(runner, RunnerInfo())
        if image and not info.images:
            source = "image" if step.image else "the pipeline's default_image"
            self.add(
                f"{name}: runner '{runner}' cannot run images, but the step has {source} '{image}'",
                f"leave `runner` unset to run the step in its image on the '{CONTAINER_RUNNER}' runner, "
                "or remove the image to run it on this machine",
                at=index,
            )
        if info.runner_args is not None:
            for problem, hint in check_runner_args(runner, step.runner_args, info.runner_args, plugin=info.plugin):
                self.add(f"{name}: {problem}", hint, at=index)

    def check_cache(self, index: int, name: str, step: CommandStep) -> None:
        """``cache.key`` is a short line of text (the rest of the key hm derives itself)."""
        key = step.cache.key if step.cache is not None else None
        if key is None:
            return
        hint = "give cache.key a short text such as 'v2', or leave it out (null): hm derives the key itself"
        if not key.strip():
            self.add(f"{name}: cache.key is empty", hint, at=index)
        elif any(ord(c) < 32 or ord(c) == 127 for c in key):
            self.add(f"{name}: cache.key contains a control character ({key!r})", hint, at=index)
        elif len(key) > MAX_CACHE_KEY:
            self.add(f"{name}: cache.key is {len(key)} characters long, more than {MAX_CACHE_KEY}", hint, at=index)

    def check_builds_in(self, index: int, name: str, target: str) -> None:
        steps = self.pipeline.steps
        where = self.position.get(target)
        if where is None:
            commands = [s.key for s in steps if isinstance(s, CommandStep)]
            close = difflib.get_close_matches(target, commands, n=1)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            self.add(f"{name}: builds_in '{target}' is not a step of this pipeline{guess}", at=index)
        elif isinstance(steps[where], WaitStep):
            self.add(f"{name}: builds_in '{target}' names a wait step, not a command step", at=index)
        elif self.stage_of[where] > self.stage_of[index]:
            self.add(
                f"{name}: builds_in '{target}' (steps[{where}]), which runs after a wait that "
                f"this step must finish before",
                "a step can build in a step of its own stage or an earlier one: "
                "move it after the wait, or remove the wait",
                at=index,
            )

    def check_cycles(self) -> None:
        steps = self.pipeline.steps
        parent: dict[str, str] = {}
        for step in steps:
            if isinstance(step, CommandStep) and step.builds_in is not None:
                target = self.position.get(step.builds_in)
                if target is not None and isinstance(steps[target], CommandStep):
                    parent.setdefault(step.key, step.builds_in)
        # Each step has at most one parent, so every cycle is found by walking up
        # from each step; `done` makes the whole walk linear.
        done: set[str] = set()
        for step in steps:
            if not isinstance(step, CommandStep) or step.key in done:
                continue
            path: list[str] = []
            on_path: dict[str, int] = {}
            key: str | None = step.key
            while key is not None and key not in done and key not in on_path:
                on_path[key] = len(path)
                path.append(key)
                key = parent.get(key)
            if key is not None and key in on_path:
                cycle = path[on_path[key] :]
                self.add(
                    f"builds_in cycle: {' -> '.join([*cycle, cycle[0]])}",
                    "a chain must start at a step without builds_in; remove one link of the cycle",
                    at=self.position[cycle[0]],
                )
            done.update(path)


def _shell_name(name: str) -> str:
    """A shell-usable spelling of ``name``, for the warning's hint."""
    fixed = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"_{fixed}" if fixed[0].isdigit() else fixed
