"""The plan: a validated pipeline arranged into stages and chains (data only, no execution).

Model:

- **Stage** — the command steps between two wait barriers. A stage starts when the
  stage before it finished and its ``wait_before`` allows it (a failure before a
  wait without ``continue_on_failure`` stops the build there). Every wait starts a
  stage, so a trailing or doubled wait gives a stage with no chains: the barrier
  still means something (it may stop the build). Only an empty first stage with no
  wait (the pipeline begins with a wait) is dropped.
- **Chain** — steps of one stage that run one after another, each building in the
  previous one's snapshot. ``builds_in`` links form a tree, not a list: a step two
  others build in is a *fork*. At a fork the chain ends and every dependent starts
  its own chain with ``parent_step`` set to the fork step, so no branch is favoured
  and all branches start the same way (from the snapshot). A chain also starts
  when its first step builds in a step of an earlier stage (``parent_step`` is that
  step) or builds in nothing (``parent_step is None``: a fresh workspace).
- A chain with a ``parent_step`` can start only once that step finished
  successfully; if it failed or was skipped, the chain is skipped. Chains of a
  stage otherwise run in parallel up to ``--parallelism``.

Order is deterministic: chains of a stage are listed in preorder of the tree (a
chain comes after the chain holding its parent step, siblings in file order), so a
scheduler walking the list never meets a chain before the chain it depends on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hm.errors import PipelineError
from hm.pipeline.ir import CommandStep, Pipeline, WaitStep

__all__ = ["Chain", "Plan", "Stage", "build_plan", "describe_plan"]


@dataclass(frozen=True, slots=True)
class Chain:
    """Steps run in order, each from the previous one's snapshot.

    :param id: the first step's key.
    :param parent_step: key of the step whose snapshot the first step starts from
        (same or earlier stage), or ``None`` for a fresh workspace.
    """

    id: str
    steps: tuple[CommandStep, ...]
    parent_step: str | None


@dataclass(frozen=True, slots=True)
class Stage:
    """Chains that may run in parallel, after the barrier ``wait_before`` (``None`` at first)."""

    chains: tuple[Chain, ...]
    wait_before: WaitStep | None


@dataclass(frozen=True, slots=True)
class Plan:
    """A pipeline's stages in order."""

    slug: str
    stages: tuple[Stage, ...]


def build_plan(pipeline: Pipeline) -> Plan:
    """Arrange a pipeline into stages and chains.

    Expects a pipeline that passed :func:`hm.pipeline.validate`; ``builds_in``
    problems it still meets (unknown target, later stage, cycle) raise
    :class:`PipelineError` rather than producing a plan that cannot run.
    """
    groups: list[tuple[WaitStep | None, list[CommandStep]]] = [(None, [])]
    for step in pipeline.steps:
        if isinstance(step, WaitStep):
            groups.append((step, []))
        else:
            groups[-1][1].append(step)
    if not groups[0][1] and len(groups) > 1:
        groups.pop(0)

    stage_of = {s.key: i for i, (_, steps) in enumerate(groups) for s in steps}
    stages = tuple(
        Stage(chains=_chains(pipeline.slug, i, steps, stage_of), wait_before=wait)
        for i, (wait, steps) in enumerate(groups)
    )
    return Plan(slug=pipeline.slug, stages=stages)


def _chains(slug: str, stage: int, steps: list[CommandStep], stage_of: dict[str, int]) -> tuple[Chain, ...]:
    children: dict[str, list[CommandStep]] = {s.key: [] for s in steps}
    roots: list[CommandStep] = []
    for step in steps:
        target = step.builds_in
        if target is None:
            roots.append(step)
            continue
        target_stage = stage_of.get(target)
        if target_stage is None or target_stage > stage:
            raise PipelineError(
                f"step '{step.key}' builds_in '{target}', which is not a command step of this or an earlier stage",
                where=f"pipeline '{slug}'",
                hint="validate the pipeline before planning it",
            )
        if target_stage < stage:
            roots.append(step)
        else:
            children[target].append(step)

    chains: list[Chain] = []

    # Preorder over the fork tree with an explicit stack: forks may nest thousands deep.
    stack = list(reversed(roots))
    while stack:
        first = stack.pop()
        run = [first]
        while len(children[run[-1].key]) == 1:
            run.append(children[run[-1].key][0])
        chains.append(Chain(id=first.key, steps=tuple(run), parent_step=first.builds_in))
        # The run stopped at a leaf or at a fork; each branch of a fork is its own chain.
        stack.extend(reversed(children[run[-1].key]))

    planned = sum(len(c.steps) for c in chains)
    if planned != len(steps):
        seen = {s.key for c in chains for s in c.steps}
        stuck = ", ".join(s.key for s in steps if s.key not in seen)
        raise PipelineError(
            f"steps {stuck} form a builds_in cycle",
            where=f"pipeline '{slug}'",
            hint="validate the pipeline before planning it",
        )
    return tuple(chains)


def describe_plan(
    plan: Plan,
    resolve_runner: Callable[[CommandStep], str],
    resolve_image: Callable[[CommandStep], str | None] | None = None,
) -> str:
    """Readable text of a plan, for ``hm run --dry-run``.

    :param resolve_runner: the runner a step will run on (its own or the default).
    :param resolve_image: the image a step will run in (its own or the pipeline's
        default); without it, the step's own.
    """
    image_of = resolve_image or (lambda step: step.image)
    n_steps = sum(len(c.steps) for stage in plan.stages for c in stage.chains)
    steps_word = "step" if n_steps == 1 else "steps"
    stages_word = "stage" if len(plan.stages) == 1 else "stages"
    header = f"pipeline '{plan.slug}': {n_steps} command {steps_word} in {len(plan.stages)}"
    lines = [
        f"{header} {stages_word}",
        "(chains of a stage run in parallel; the steps of a chain run in order)",
    ]
    for number, stage in enumerate(plan.stages, start=1):
        if stage.wait_before is not None:
            lines.append(_describe_wait(stage.wait_before))
        lines.append(f"stage {number}")
        if not stage.chains:
            lines.append("  (no steps)")
        for chain in stage.chains:
            start = f"from the snapshot of '{chain.parent_step}'" if chain.parent_step else "from a fresh workspace"
            lines.append(f"  chain '{chain.id}' starts {start}")
            lines.extend(f"    {_describe_step(step, resolve_runner, image_of)}" for step in chain.steps)
    return "\n".join(lines)


def _describe_wait(wait: WaitStep) -> str:
    name = f"wait '{wait.key}'" if wait.key else "wait"
    if wait.continue_on_failure:
        return f"{name}: continues even if a step before it failed"
    return f"{name}: the build stops here if a step before it failed"


def _describe_step(
    step: CommandStep,
    resolve_runner: Callable[[CommandStep], str],
    image_of: Callable[[CommandStep], str | None],
) -> str:
    parts = [step.key]
    if step.label:
        parts.append(repr(step.label))
    parts.append(f"runner: {resolve_runner(step)}")
    if step.builds_in:
        parts.append(f"builds in: {step.builds_in}")
    image = image_of(step)
    if image:
        parts.append(f"image: {image}")
    if step.timeout_seconds is not None:
        parts.append(f"timeout: {step.timeout_seconds:g}s")
    if step.cache is not None and step.cache.policy != "none":
        parts.append(f"cache: {step.cache.policy}")
    first, _, more = step.cmd.strip().partition("\n")
    parts.append(f"$ {first}" + (" …" if more else ""))
    return "  ".join(parts)
