"""Validation: every problem of a pipeline is found and reported together, in words
that name the step (key and position) and say what to do."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from hm.errors import ExitCode, PipelineError
from hm.pipeline import CommandStep, Origin, Pipeline, PipelineValidationError, WaitStep, validate

PLUGIN_LIST_HINT = "`hm plugin list` shows the loaded plugins and the runners they provide"


def cmd(key: str, command: str = "true", **fields: object) -> CommandStep:
    return CommandStep(key=key, cmd=command, **fields)  # type: ignore[arg-type]


def problems_of(
    steps: list[CommandStep | WaitStep],
    *,
    runners: Collection[str] = ("shell",),
    default_runner: str | None = "shell",
    slug: str = "ci",
) -> PipelineValidationError:
    with pytest.raises(PipelineValidationError) as info:
        validate(Pipeline(slug=slug, steps=steps), runners=runners, default_runner=default_runner, source=".hm/ci.py")
    return info.value


def test_a_valid_pipeline_passes() -> None:
    steps: list[CommandStep | WaitStep] = [
        cmd("deps"),
        cmd("build", builds_in="deps", runner="docker", timeout_seconds=0.5),
        cmd("test", builds_in="build"),
        WaitStep(key="gate", continue_on_failure=True),
        cmd("pkg", builds_in="build"),
        cmd("v1.2_x-Y"),
    ]
    validate(Pipeline(slug="my-ci_1.0", steps=steps), runners=["shell", "docker"], default_runner="shell", source="s")


def test_the_error_lists_every_problem_with_slug_source_and_exit_code() -> None:
    err = problems_of(
        [
            cmd("a"),
            cmd("b", " \n "),
            cmd("a", builds_in="nothing"),
            WaitStep(),
            cmd("c d", timeout_seconds=0, runner="shel"),
        ]
    )
    assert err.problems == (
        "step 'b' (steps[1]): `cmd` is empty",
        "step key 'a' is used twice: steps[0] and steps[2]",
        "step 'a' (steps[2]): builds_in 'nothing' is not a step of this pipeline",
        "step 'c d' (steps[4]): key 'c d' must match [A-Za-z0-9_.-]+",
        "step 'c d' (steps[4]): timeout_seconds must be a positive number of seconds, got 0",
        "step 'c d' (steps[4]): runner 'shel' is not provided by any loaded plugin "
        "(available runners: shell); did you mean 'shell'?",
    )
    assert err.what.splitlines() == [
        "pipeline 'ci' has 6 problems:",
        *(f"  - {p}" for p in err.problems),
    ]
    assert err.where == ".hm/ci.py"
    # Hints are collected once each, in order of the problems.
    assert err.hint == (
        "give the step a command to run; give every step a unique key; "
        "use letters, digits, '_', '.' and '-' in step keys; omit timeout_seconds for no timeout; " + PLUGIN_LIST_HINT
    )
    assert isinstance(err, PipelineError)
    assert err.exit_code == ExitCode.PIPELINE_INVALID


def test_one_problem_is_singular_and_without_hints_gets_the_dry_run_hint() -> None:
    err = problems_of([cmd("a", builds_in="b")])
    # One problem is one line: no list, and the pipeline is named once.
    assert err.what == "pipeline 'ci' has 1 problem: step 'a' (steps[0]): builds_in 'b' is not a step of this pipeline"
    assert err.where == ".hm/ci.py"
    assert err.hint == "fix it and run `hm run --dry-run` to check"


def test_a_duplicate_key_names_both_positions_each_time() -> None:
    err = problems_of([cmd("x"), WaitStep(key="w"), cmd("x"), cmd("w"), cmd("x")])
    assert err.problems == (
        "step key 'x' is used twice: steps[0] and steps[2]",
        "step key 'w' is used twice: steps[1] and steps[3]",
        "step key 'x' is used twice: steps[0] and steps[4]",
    )


@pytest.mark.parametrize("command", ["", "   ", "\n\t"])
def test_an_empty_command_is_a_problem(command: str) -> None:
    assert problems_of([cmd("a", command)]).problems == ("step 'a' (steps[0]): `cmd` is empty",)


@pytest.mark.parametrize(
    ("timeout", "shown"),
    [(0.0, "0.0"), (-1.5, "-1.5"), (float("nan"), "nan"), (float("inf"), "inf")],
)
def test_a_timeout_must_be_positive_and_finite(timeout: float, shown: str) -> None:
    err = problems_of([cmd("a", timeout_seconds=timeout)])
    assert err.problems == (f"step 'a' (steps[0]): timeout_seconds must be a positive number of seconds, got {shown}",)
    assert err.hint == "omit timeout_seconds for no timeout"


@pytest.mark.parametrize("key", ["has space", "", "a/b", "ünï", "a;rm"])
def test_a_bad_key_format_is_reported(key: str) -> None:
    err = problems_of([cmd(key)])
    assert err.problems == (f"step {key!r} (steps[0]): key {key!r} must match [A-Za-z0-9_.-]+",)


def test_a_bad_wait_key_and_a_bad_slug_are_reported() -> None:
    err = problems_of([cmd("a"), WaitStep(key="no good")], slug="my ci")
    assert err.problems == (
        "slug 'my ci' must match [A-Za-z0-9_.-]+",
        "wait 'no good' (steps[1]): key 'no good' must match [A-Za-z0-9_.-]+",
    )
    assert err.hint is not None and err.hint.startswith("pick a slug usable as `hm run SLUG`")


def test_a_pipeline_without_command_steps_is_refused() -> None:
    for steps in ([], [WaitStep()]):
        err = problems_of(steps)
        assert err.problems == ("it has no command steps",)
        assert err.hint == 'add at least one step, e.g. step("build", "make")'


def test_an_unknown_builds_in_suggests_the_closest_command_step() -> None:
    err = problems_of([cmd("build"), cmd("test", builds_in="biuld")])
    assert err.problems == (
        "step 'test' (steps[1]): builds_in 'biuld' is not a step of this pipeline (did you mean 'build'?)",
    )


def test_builds_in_a_wait_step_is_refused() -> None:
    err = problems_of([cmd("a"), WaitStep(key="gate"), cmd("b", builds_in="gate")])
    assert err.problems == ("step 'b' (steps[2]): builds_in 'gate' names a wait step, not a command step",)


def test_builds_in_a_step_of_a_later_stage_is_a_deadlock() -> None:
    err = problems_of([cmd("a", builds_in="late"), WaitStep(), cmd("late")])
    assert err.problems == (
        "step 'a' (steps[0]): builds_in 'late' (steps[2]), which runs after a wait that this step must finish before",
    )
    assert err.hint == (
        "a step can build in a step of its own stage or an earlier one: move it after the wait, or remove the wait"
    )


def test_builds_in_the_same_stage_in_any_order_or_an_earlier_stage_is_fine() -> None:
    steps: list[CommandStep | WaitStep] = [
        cmd("test", builds_in="build"),
        cmd("build"),
        WaitStep(),
        WaitStep(),
        cmd("pkg", builds_in="test"),
    ]
    validate(Pipeline(slug="ci", steps=steps), runners=["shell"], default_runner="shell", source="s")


def test_a_cycle_is_named_from_its_first_step_back_to_itself() -> None:
    err = problems_of([cmd("a", builds_in="b"), cmd("b", builds_in="a")])
    assert err.problems == ("builds_in cycle: a -> b -> a",)
    assert err.hint == "a chain must start at a step without builds_in; remove one link of the cycle"


def test_every_cycle_is_reported_once_and_a_tail_into_it_is_not_part_of_it() -> None:
    err = problems_of(
        [
            cmd("root"),
            cmd("tail", builds_in="c"),
            cmd("c", builds_in="d"),
            cmd("d", builds_in="e"),
            cmd("e", builds_in="c"),
            cmd("self", builds_in="self"),
        ]
    )
    assert err.problems == ("builds_in cycle: c -> d -> e -> c", "builds_in cycle: self -> self")


def test_an_unknown_runner_lists_the_available_ones_sorted() -> None:
    err = problems_of([cmd("a", runner="docker")], runners={"shell", "k8s", "ssh"})
    assert err.problems == (
        "step 'a' (steps[0]): runner 'docker' is not provided by any loaded plugin "
        "(available runners: k8s, shell, ssh)",
    )
    assert err.hint == PLUGIN_LIST_HINT


def test_an_unknown_runner_with_no_runners_loaded_says_none() -> None:
    err = problems_of([cmd("a", runner="shell")], runners=(), default_runner=None)
    assert err.problems == (
        "step 'a' (steps[0]): runner 'shell' is not provided by any loaded plugin (available runners: none)",
    )


def test_a_step_without_runner_needs_a_default_runner() -> None:
    err = problems_of([cmd("a"), cmd("b", runner="ssh")], runners=["ssh"], default_runner=None)
    assert err.problems == (
        "step 'a' (steps[0]): sets no runner and no loaded plugin provides a default runner (available runners: ssh)",
    )
    assert err.hint == ("set `runner` on the step or install a plugin with a default runner; " + PLUGIN_LIST_HINT)


# --- locations -------------------------------------------------------------------------


def located(steps: list[CommandStep | WaitStep], origin: Origin, **kw: object) -> PipelineValidationError:
    with pytest.raises(PipelineValidationError) as info:
        validate(Pipeline(slug="ci", steps=steps), runners=["shell"], default_runner="shell", source=origin, **kw)  # type: ignore[arg-type]
    return info.value


def test_one_problem_is_located_at_the_line_of_its_step() -> None:
    origin = Origin(".hm/pipeline.py", 3, (".hm/pipeline.py:5", ".hm/_helpers.py:2"))
    err = located([cmd("a"), cmd("b", runner="nope")], origin)
    assert err.where == ".hm/_helpers.py:2"
    assert err.one_line().startswith(
        ".hm/_helpers.py:2: pipeline 'ci' has 1 problem: step 'b' (steps[1]): runner 'nope' is not provided"
    )
    assert err.locations == (".hm/_helpers.py:2",)


def test_several_problems_are_listed_under_the_pipeline_each_at_its_line() -> None:
    origin = Origin(".hm/pipeline.py", 3, (".hm/pipeline.py:5", ".hm/pipeline.py:6"))
    err = located([cmd("a", runner="nope"), cmd("b", "")], origin)
    assert err.where == ".hm/pipeline.py:3"
    assert err.what.splitlines() == [
        "pipeline 'ci' has 2 problems:",
        "  - .hm/pipeline.py:5: step 'a' (steps[0]): runner 'nope' is not provided by any loaded plugin "
        "(available runners: shell)",
        "  - .hm/pipeline.py:6: step 'b' (steps[1]): `cmd` is empty",
    ]


def test_a_problem_of_the_whole_pipeline_is_located_at_the_decorator() -> None:
    err = located([WaitStep()], Origin(".hm/pipeline.py", 3, (".hm/pipeline.py:5",)))
    assert (err.where, err.what) == (".hm/pipeline.py:3", "pipeline 'ci' has 1 problem: it has no command steps")


def test_ir_json_problems_are_located_by_file_and_step_index() -> None:
    err = located([cmd("a", runner="nope")], Origin("ci.json"))
    assert err.where == "ci.json"
    assert err.what.startswith("pipeline 'ci' has 1 problem: step 'a' (steps[0]): runner 'nope'")


# --- environment variable names --------------------------------------------------------


def warnings_of(step_env: dict[str, str], pipeline_env: dict[str, str] | None = None) -> list[str]:
    pipeline = Pipeline(slug="ci", env=pipeline_env or {}, steps=[cmd("a", env=step_env)])
    found = validate(pipeline, runners=["shell"], default_runner="shell", source=Origin("p.py", 1, ("p.py:4",)))
    return [w.one_line() for w in found]


@pytest.mark.parametrize("name", ["MY VAR", "ÄX", "1A", "my-var", "a.b"])
def test_an_env_name_no_shell_can_expand_is_accepted_with_a_warning(name: str) -> None:
    (line,) = warnings_of({name: "1"})
    assert line.startswith(f"p.py:4: pipeline 'ci', step 'a' (steps[0]): environment variable name {name!r} ")
    assert "is not a shell variable name" in line and "dash" in line
    assert "see 'Environment variables' in docs/pipelines.md" in line


def test_the_warning_suggests_a_shell_name() -> None:
    assert "rename it to 'MY_VAR'" in warnings_of({"MY VAR": "1"})[0]
    assert "rename it to '_1A'" in warnings_of({"1A": "1"})[0]


def test_a_pipeline_env_name_is_warned_at_the_pipeline() -> None:
    (line,) = warnings_of({}, {"BAD NAME": "1"})
    assert line.startswith("p.py:1: pipeline 'ci', the pipeline: environment variable name 'BAD NAME' ")


@pytest.mark.parametrize("name", ["PATH", "_x1", "lower_case", "A1_"])
def test_shell_names_give_no_warning(name: str) -> None:
    assert warnings_of({name: "1"}) == []


@pytest.mark.parametrize("key", [".", ".."])
def test_a_key_that_names_a_folder_itself_or_its_parent_is_refused(key: str) -> None:
    err = problems_of([cmd(key)])
    assert err.problems == (
        f"step {key!r} (steps[0]): key {key!r} cannot be used, it names a folder's parent or itself",
    )
