"""The plan: stages split by waits, chains from ``builds_in``, forks, and its text form."""

from __future__ import annotations

import pytest

from hm.errors import PipelineError
from hm.pipeline import (
    CachePolicy,
    Chain,
    CommandStep,
    Pipeline,
    Plan,
    Stage,
    WaitStep,
    build_plan,
    describe_plan,
    validate,
)


def cmd(key: str, command: str = "true", **fields: object) -> CommandStep:
    return CommandStep(key=key, cmd=command, **fields)  # type: ignore[arg-type]


def plan_of(*steps: CommandStep | WaitStep, slug: str = "ci") -> Plan:
    pipeline = Pipeline(slug=slug, steps=list(steps))
    return build_plan(pipeline)


def shape(plan: Plan) -> list[list[tuple[str, list[str], str | None]]]:
    """Per stage, per chain: (id, step keys, parent_step)."""
    return [[(c.id, [s.key for s in c.steps], c.parent_step) for c in stage.chains] for stage in plan.stages]


def test_independent_steps_are_parallel_chains_of_one_stage() -> None:
    a, b = cmd("a"), cmd("b")
    plan = plan_of(a, b)
    assert plan == Plan(
        slug="ci",
        stages=(
            Stage(
                chains=(Chain(id="a", steps=(a,), parent_step=None), Chain(id="b", steps=(b,), parent_step=None)),
                wait_before=None,
            ),
        ),
    )


def test_waits_split_stages_and_are_kept_as_wait_before() -> None:
    gate = WaitStep(key="gate", continue_on_failure=True)
    bare = WaitStep()
    plan = plan_of(cmd("a"), gate, cmd("b"), cmd("c"), bare, cmd("d"))
    assert shape(plan) == [[("a", ["a"], None)], [("b", ["b"], None), ("c", ["c"], None)], [("d", ["d"], None)]]
    assert [s.wait_before for s in plan.stages] == [None, gate, bare]


def test_a_leading_wait_drops_the_empty_first_stage_only() -> None:
    lead = WaitStep(key="lead")
    plan = plan_of(lead, cmd("a"))
    assert shape(plan) == [[("a", ["a"], None)]]
    assert plan.stages[0].wait_before is lead


def test_trailing_and_doubled_waits_keep_their_empty_stages() -> None:
    w1, w2, w3 = WaitStep(key="w1"), WaitStep(key="w2"), WaitStep(key="w3")
    plan = plan_of(cmd("a"), w1, w2, cmd("b"), w3)
    assert shape(plan) == [[("a", ["a"], None)], [], [("b", ["b"], None)], []]
    assert [s.wait_before for s in plan.stages] == [None, w1, w2, w3]


def test_builds_in_links_form_one_chain_in_dependency_order_whatever_the_file_order() -> None:
    plan = plan_of(cmd("test", builds_in="build"), cmd("deploy", builds_in="test"), cmd("build"))
    assert shape(plan) == [[("build", ["build", "test", "deploy"], None)]]


def test_at_a_fork_every_dependent_starts_its_own_chain_from_the_fork_step() -> None:
    plan = plan_of(
        cmd("deps"),
        cmd("build", builds_in="deps"),
        cmd("unit", builds_in="build"),
        cmd("unit-report", builds_in="unit"),
        cmd("e2e", builds_in="build"),
        cmd("lint"),
    )
    # Preorder: a chain right after the chain holding its parent step, siblings in file order.
    assert shape(plan) == [
        [
            ("deps", ["deps", "build"], None),
            ("unit", ["unit", "unit-report"], "build"),
            ("e2e", ["e2e"], "build"),
            ("lint", ["lint"], None),
        ]
    ]


def test_nested_forks_are_listed_in_preorder() -> None:
    plan = plan_of(
        cmd("r"),
        cmd("x", builds_in="r"),
        cmd("y", builds_in="r"),
        cmd("x1", builds_in="x"),
        cmd("x2", builds_in="x"),
        cmd("y1", builds_in="y"),
    )
    assert shape(plan) == [
        [
            ("r", ["r"], None),
            ("x", ["x"], "r"),
            ("x1", ["x1"], "x"),
            ("x2", ["x2"], "x"),
            ("y", ["y", "y1"], "r"),
        ]
    ]


def test_builds_in_an_earlier_stage_starts_a_chain_with_that_parent() -> None:
    plan = plan_of(
        cmd("build"),
        cmd("test", builds_in="build"),
        WaitStep(),
        cmd("pkg", builds_in="build"),
        cmd("sign", builds_in="pkg"),
        cmd("docs"),
        WaitStep(),
        cmd("upload", builds_in="sign"),
    )
    assert shape(plan) == [
        [("build", ["build", "test"], None)],
        [("pkg", ["pkg", "sign"], "build"), ("docs", ["docs"], None)],
        [("upload", ["upload"], "sign")],
    ]


def test_a_step_with_one_same_stage_child_and_later_dependents_is_no_fork() -> None:
    plan = plan_of(cmd("a"), cmd("b", builds_in="a"), WaitStep(), cmd("c", builds_in="a"))
    assert shape(plan) == [[("a", ["a", "b"], None)], [("c", ["c"], "a")]]


def test_the_plan_is_deterministic_and_keeps_the_step_objects() -> None:
    steps = [cmd(f"s{i}", builds_in=f"s{i // 2}" if i else None) for i in range(15)]
    first = plan_of(*steps)
    assert all(plan_of(*steps) == first for _ in range(5))
    planned = [s for c in first.stages[0].chains for s in c.steps]
    assert sorted(planned, key=lambda s: int(s.key[1:])) == steps
    assert all(any(p is s for s in steps) for p in planned)
    # No chain is listed before the chain holding its parent step.
    seen: set[str] = set()
    for chain in first.stages[0].chains:
        assert chain.parent_step is None or chain.parent_step in seen
        seen.update(s.key for s in chain.steps)


def test_a_long_linear_chain_is_planned_without_recursion() -> None:
    steps = [cmd("s0"), *(cmd(f"s{i}", builds_in=f"s{i - 1}") for i in range(1, 5000))]
    plan = plan_of(*steps)
    assert len(plan.stages[0].chains) == 1
    assert len(plan.stages[0].chains[0].steps) == 5000


def test_deeply_nested_forks_are_planned() -> None:
    # A "comb": every spine step is a fork (the next spine step and a leaf build in it).
    depth = 1100
    steps = [cmd("s0")]
    for i in range(1, depth):
        steps += [cmd(f"s{i}", builds_in=f"s{i - 1}"), cmd(f"leaf{i}", builds_in=f"s{i - 1}")]
    pipeline = Pipeline(slug="comb", steps=steps)
    validate(pipeline, runners=["shell"], default_runner="shell", source="comb.json")
    plan = build_plan(pipeline)
    assert sum(len(c.steps) for c in plan.stages[0].chains) == len(steps)


def test_planning_an_unvalidated_pipeline_raises_instead_of_a_broken_plan() -> None:
    with pytest.raises(PipelineError) as info:
        plan_of(cmd("a", builds_in="late"), WaitStep(), cmd("late"))
    assert info.value.what == "step 'a' builds_in 'late', which is not a command step of this or an earlier stage"
    assert info.value.where == "pipeline 'ci'"
    assert info.value.hint == "validate the pipeline before planning it"

    with pytest.raises(PipelineError) as info:
        plan_of(cmd("a", builds_in="ghost"))
    assert "builds_in 'ghost'" in info.value.what

    with pytest.raises(PipelineError) as info:
        plan_of(cmd("ok"), cmd("a", builds_in="b"), cmd("b", builds_in="a"))
    assert info.value.what == "steps a, b form a builds_in cycle"


# --- describe_plan ---------------------------------------------------------------------


def test_describe_plan_shows_stages_chains_runners_and_step_details() -> None:
    plan = plan_of(
        cmd("deps", "npm ci", label="Install"),
        cmd("build", "make\nmake install", builds_in="deps", image="node:20", timeout_seconds=90),
        cmd("unit", "make test", builds_in="build", cache=CachePolicy(policy="read")),
        cmd("e2e", "  make e2e  ", builds_in="build", runner="docker", cache=CachePolicy(policy="none")),
        cmd("lint", "ruff", timeout_seconds=1.5),
        WaitStep(key="gate", continue_on_failure=True),
        cmd("pkg", "make pkg", builds_in="build", cache=CachePolicy(policy="read_write", key="k")),
        WaitStep(),
    )
    text = describe_plan(plan, lambda step: step.runner or "shell")
    assert text == "\n".join(
        [
            "pipeline 'ci': 6 command steps in 3 stages",
            "(chains of a stage run in parallel; the steps of a chain run in order)",
            "stage 1",
            "  chain 'deps' starts from a fresh workspace",
            "    deps  'Install'  runner: shell  $ npm ci",
            "    build  runner: shell  builds in: deps  image: node:20  timeout: 90s  $ make …",
            "  chain 'unit' starts from the snapshot of 'build'",
            "    unit  runner: shell  builds in: build  cache: read  $ make test",
            "  chain 'e2e' starts from the snapshot of 'build'",
            "    e2e  runner: docker  builds in: build  $ make e2e",
            "  chain 'lint' starts from a fresh workspace",
            "    lint  runner: shell  timeout: 1.5s  $ ruff",
            "wait 'gate': continues even if a step before it failed",
            "stage 2",
            "  chain 'pkg' starts from the snapshot of 'build'",
            "    pkg  runner: shell  builds in: build  cache: read_write  $ make pkg",
            "wait: the build stops here if a step before it failed",
            "stage 3",
            "  (no steps)",
        ]
    )


def test_describe_plan_singular_words_and_the_runner_resolver_is_used() -> None:
    seen: list[str] = []

    def resolve(step: CommandStep) -> str:
        seen.append(step.key)
        return "the-default"

    text = describe_plan(plan_of(cmd("only", "echo hi")), resolve)
    assert text.splitlines()[0] == "pipeline 'ci': 1 command step in 1 stage"
    assert text.splitlines()[-1] == "    only  runner: the-default  $ echo hi"
    assert seen == ["only"]
