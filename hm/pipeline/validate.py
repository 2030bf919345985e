"""Semantic checks of a pipeline against the loaded runners, before anything runs.

The IR decoder already guarantees types; this module checks what types cannot:
keys, commands, timeouts, runners and ``builds_in`` links. All problems are
collected and reported together, one per line, so a user fixes a file in one pass.

``builds_in`` rules (the plan in :mod:`hm.pipeline.graph` relies on them):

- it names a *command* step of the same pipeline, not itself, without cycles;
- the target is in the same stage (between the same wait barriers) or an earlier
  one. Same stage, any order in the file: the plan orders the chain. An earlier
  stage: its snapshot exists once the barrier passed. A *later* stage is an error:
  the wait between them would wait for this step, which would wait for the target
  behind the wait, a deadlock.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from typing import Final

from hm.errors import PipelineError
from hm.pipeline.ir import CommandStep, Pipeline, WaitStep
from hm.pipeline.routing import CONTAINER_RUNNER, RunnerInfo, route, step_image
from hm.pipeline.runner_args import check_runner_args

__all__ = ["KEY_PATTERN", "PipelineValidationError", "validate"]

#: Step keys and slugs: safe in paths, env var values, log prefixes and shell args.
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]+")

_PLUGIN_LIST_HINT: Final = "`hm plugin list` shows the loaded plugins and the runners they provide"


class PipelineValidationError(PipelineError):
    """A pipeline failed validation. ``problems`` holds one sentence per problem."""

    def __init__(self, problems: list[str], *, slug: str, source: str, hint: str) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"pipeline '{slug}' has {count}:\n{lines}", where=source, hint=hint)


def validate(
    pipeline: Pipeline,
    *,
    runners: Collection[str],
    default_runner: str | None,
    source: str,
    runner_info: Mapping[str, RunnerInfo] | None = None,
) -> None:
    """Check ``pipeline``; raise one :class:`PipelineValidationError` listing every problem.

    :param runners: runner names the loaded plugins provide.
    :param default_runner: the runner used when a step sets none, or ``None`` if no
        plugin provides a default.
    :param source: the pipeline's file, used as the error's ``where``.
    :param runner_info: what the runners' manifests say (images, runner_args), and
        runners hm knows of but cannot use; a runner missing here runs no images
        and checks its own runner_args.
    """
    checker = _Checker(pipeline, runners, default_runner, runner_info or {})
    problems, hints = checker.run()
    if problems:
        hint = "; ".join(dict.fromkeys(hints)) or "fix these and run `hm run --dry-run` to check"
        raise PipelineValidationError(problems, slug=pipeline.slug, source=source, hint=hint)


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
        self.problems: list[str] = []
        self.hints: list[str] = []
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

    def add(self, problem: str, *hints: str) -> None:
        self.problems.append(problem)
        self.hints.extend(h for h in hints if h)

    def run(self) -> tuple[list[str], list[str]]:
        p = self.pipeline
        if not KEY_PATTERN.fullmatch(p.slug):
            self.add(f"slug {p.slug!r} must match [A-Za-z0-9_.-]+", "pick a slug usable as `hm run SLUG`")
        self.check_env("the pipeline", p.env)
        if not any(isinstance(s, CommandStep) for s in p.steps):
            self.add("it has no command steps", 'add at least one step, e.g. step("build", "make")')
        for index, step in enumerate(p.steps):
            self.check_key(index, step)
            if isinstance(step, CommandStep):
                self.check_command(index, step)
        self.check_cycles()
        return self.problems, self.hints

    def check_key(self, index: int, step: CommandStep | WaitStep) -> None:
        if step.key is None:
            return
        if not KEY_PATTERN.fullmatch(step.key):
            self.add(
                f"{_name(index, step)}: key {step.key!r} must match [A-Za-z0-9_.-]+",
                "use letters, digits, '_', '.' and '-' in step keys",
            )
        first = self.position[step.key]
        if first != index:
            self.add(
                f"step key '{step.key}' is used twice: steps[{first}] and steps[{index}]",
                "give every step a unique key",
            )

    def check_command(self, index: int, step: CommandStep) -> None:
        name = _name(index, step)
        if not step.cmd.strip():
            self.add(f"{name}: `cmd` is empty", "give the step a command to run")
        elif "\0" in step.cmd:
            self.add(f"{name}: `cmd` contains a NUL byte", "a command is text; remove the NUL (\\x00)")
        self.check_env(name, step.env)
        timeout = step.timeout_seconds
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            self.add(
                f"{name}: timeout_seconds must be a positive number of seconds, got {timeout}",
                "omit timeout_seconds for no timeout",
            )
        self.check_runner(name, step)
        if step.builds_in is not None:
            self.check_builds_in(index, name, step.builds_in)

    def check_env(self, name: str, env: Mapping[str, str]) -> None:
        """Names a process environment can hold: non-empty, no '=', no NUL; values without NUL."""
        for key, value in env.items():
            if not key or "=" in key or "\0" in key:
                self.add(
                    f"{name}: environment variable name {key!r} is not valid",
                    "an environment variable name is non-empty and has no '=' or NUL",
                )
            elif "\0" in value:
                self.add(f"{name}: environment variable {key} holds a NUL byte", "remove the NUL (\\x00)")

    def check_runner(self, name: str, step: CommandStep) -> None:
        available = ", ".join(sorted(self.runners)) or "none"
        image = step_image(step, self.pipeline)
        runner = route(step, self.pipeline, self.default_runner)
        if runner is None:
            self.add(
                f"{name}: sets no runner and no loaded plugin provides a default runner "
                f"(available runners: {available})",
                "set `runner` on the step or install a plugin with a default runner",
                _PLUGIN_LIST_HINT,
            )
            return
        if runner not in self.runners:
            info = self.runner_info.get(runner)
            if info is not None and info.unavailable is not None:
                why = f"has image '{image}', so it runs on" if step.runner is None else "names"
                self.add(f"{name}: {why} runner '{runner}', which is unavailable: {info.unavailable}", info.hint or "")
                return
            if step.runner is None:  # routed to the container runner by its image
                self.add(
                    f"{name}: has image '{image}', so it runs on runner '{CONTAINER_RUNNER}', which no loaded "
                    f"plugin provides (available runners: {available})",
                    _PLUGIN_LIST_HINT,
                )
                return
            close = difflib.get_close_matches(step.runner, list(self.runners), n=1)
            guess = f"; did you mean '{close[0]}'?" if close else ""
            self.add(
                f"{name}: runner '{step.runner}' is not provided by any loaded plugin "
                f"(available runners: {available}){guess}",
                _PLUGIN_LIST_HINT,
            )
            return
        info = self.runner_info.get(runner, RunnerInfo())
        if image and not info.images:
            source = "image" if step.image else "the pipeline's default_image"
            self.add(
                f"{name}: runner '{runner}' cannot run images, but the step has {source} '{image}'",
                f"leave `runner` unset to run the step in its image on the '{CONTAINER_RUNNER}' runner, "
                "or remove the image to run it on this machine",
            )
        if info.runner_args is not None:
            for problem, hint in check_runner_args(runner, step.runner_args, info.runner_args, plugin=info.plugin):
                self.add(f"{name}: {problem}", hint)

    def check_builds_in(self, index: int, name: str, target: str) -> None:
        steps = self.pipeline.steps
        where = self.position.get(target)
        if where is None:
            commands = [s.key for s in steps if isinstance(s, CommandStep)]
            close = difflib.get_close_matches(target, commands, n=1)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            self.add(f"{name}: builds_in '{target}' is not a step of this pipeline{guess}")
        elif isinstance(steps[where], WaitStep):
            self.add(f"{name}: builds_in '{target}' names a wait step, not a command step")
        elif self.stage_of[where] > self.stage_of[index]:
            self.add(
                f"{name}: builds_in '{target}' (steps[{where}]), which runs after a wait that "
                f"this step must finish before",
                "a step can build in a step of its own stage or an earlier one: "
                "move it after the wait, or remove the wait",
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
                )
            done.update(path)
