"""Which runner a step goes to, and what validation knows about each runner.

One rule, used by validation, ``--dry-run`` and the run itself so that all three
agree: a step that names a ``runner`` goes there; one that has an image (its own
``image`` or the pipeline's ``default_image``) and names no runner goes to the
bundled ``container`` runner; any other step goes to the default runner.

:class:`RunnerInfo` is what a runner's manifest says that validation needs
(whether it runs images, which ``runner_args`` it takes), or, for a runner hm
knows of but could not build, why it is unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from hm.pipeline.ir import CommandStep, Pipeline
from hm_plugin_sdk.protocol import RunnerArgSpec

__all__ = ["CONTAINER_RUNNER", "RunnerInfo", "route", "step_image"]

#: The runner that steps with an image and no runner go to (plugins/container).
CONTAINER_RUNNER: Final = "container"


@dataclass(frozen=True, slots=True)
class RunnerInfo:
    """What validation knows about one runner.

    :param images: the runner can run a step in an image.
    :param runner_args: the ``runner_args`` it takes, or ``None`` when it checks its own.
    :param unavailable: why a runner hm knows of cannot be used (e.g. it was not built),
        with ``hint`` saying what to do; ``None`` for a runner that is there.
    :param plugin: the name of the plugin that provides it, for messages.
    """

    images: bool = False
    runner_args: tuple[RunnerArgSpec, ...] | None = None
    unavailable: str | None = None
    hint: str | None = None
    plugin: str | None = None


def step_image(step: CommandStep, pipeline: Pipeline) -> str | None:
    """The image a step runs in: its own, else the pipeline's default, else none."""
    return step.image or pipeline.default_image


def route(step: CommandStep, pipeline: Pipeline, default_runner: str | None) -> str | None:
    """The runner ``step`` runs on (``None``: it names none and there is no default)."""
    if step.runner is not None:
        return step.runner
    if step_image(step, pipeline):
        return CONTAINER_RUNNER
    return default_runner
