"""Running part of a pipeline: the steps asked for, and the chain prefix each
builds on (``hm run --step KEY``, ``hm run --rerun-failed``).

A selected step needs the workspace its ``builds_in`` step leaves, so the steps
it builds on, transitively, run too. Wait barriers stay between the steps that
remain; a barrier with nothing left before or after it goes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import msgspec

from hm.errors import UsageError
from hm.pipeline.ir import CommandStep, Pipeline, Step, WaitStep

__all__ = ["select_steps"]


def select_steps(pipeline: Pipeline, keys: Iterable[str], *, where: str = "hm run --step") -> Pipeline:
    """``pipeline`` cut down to ``keys`` and what they build on.

    :raises UsageError: a key that is not a command step of the pipeline (exit 2).
    """
    commands = {s.key: s for s in pipeline.steps if isinstance(s, CommandStep)}
    wanted = list(dict.fromkeys(keys))
    for key in wanted:
        if key not in commands:
            close = difflib.get_close_matches(key, list(commands), n=1)
            guess = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(
                f"pipeline '{pipeline.slug}' has no step {key!r}{guess}",
                where=where,
                hint="`hm pipelines` lists each pipeline's steps",
            )
    keep: set[str] = set()
    for key in wanted:
        current: str | None = key
        while current is not None and current not in keep and current in commands:
            keep.add(current)
            current = commands[current].builds_in
    steps: list[Step] = []
    for step in pipeline.steps:
        if isinstance(step, WaitStep):
            if steps and not isinstance(steps[-1], WaitStep):
                steps.append(step)
        elif step.key in keep:
            steps.append(step)
    while steps and isinstance(steps[-1], WaitStep):
        steps.pop()
    return msgspec.structs.replace(pipeline, steps=steps)
