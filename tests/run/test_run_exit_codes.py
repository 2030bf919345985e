"""Each documented exit code of ``hm run``, reached the way a user would, with a
message that says what and where, and never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import fixture_path, run_hm
from run_helpers import Project, finished, hm_env, no_traceback


def assert_stdout_has_no_text(stdout: str) -> None:
    """In --format json, stdout carries JSON lines or nothing."""
    for line in stdout.splitlines():
        json.loads(line)


# -- 2: usage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--parallelism", "0"], "--parallelism"),
        (["--format", "xml"], "--format"),
        (["--no-such-option"], "--no-such-option"),
    ],
)
def test_a_bad_option_exits_2_and_names_it(tmp_path: Path, args: list[str], mentions: str) -> None:
    marker = tmp_path / "ran"
    project = Project(tmp_path / "p").pipeline(f'step("s", "touch {marker}")')
    result = project.run(*args)
    assert result.returncode == 2, result.stderr
    assert mentions in result.stderr
    assert "hm run --help" in result.stderr
    assert not marker.exists()
    no_traceback(result)


# -- 3: the pipeline cannot be run -----------------------------------------------


def test_a_builds_in_cycle_exits_3_and_names_the_cycle(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("first", "true")
        step("a", "true", builds_in="c")
        step("b", "true", builds_in="a")
        step("c", "true", builds_in="b")
        """
    )
    result = project.run()
    assert result.returncode == 3
    match = re.search(r"cycle: ([\w.-]+(?: -> [\w.-]+)+)", result.stderr)
    assert match, result.stderr
    names = match.group(1).split(" -> ")
    assert names[0] == names[-1] and sorted(names[:-1]) == ["a", "b", "c"]
    assert "first" not in match.group(1)
    no_traceback(result)


def test_an_unknown_runner_exits_3_and_lists_the_available_ones(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("s", "true", runner="freestlye")')
    result = project.run(plugins=["freestyle-runner", "noop-executor"])
    assert result.returncode == 3
    err = result.stderr
    assert "freestlye" in err
    for runner in ("shell", "freestyle", "noop"):
        assert runner in err.split("freestlye", 1)[1], err
    assert "did you mean 'freestyle'" in err
    no_traceback(result)


def test_duplicate_keys_in_the_dsl_exit_3_with_both_lines(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("twice", "true")
        step("twice", "false")
        """
    )
    result = project.run()
    assert result.returncode == 3
    assert "twice" in result.stderr
    # The body starts on line 6 of the generated file.
    assert ".hm/pipeline.py:7" in result.stderr and "pipeline.py:6" in result.stderr, result.stderr
    no_traceback(result)


def test_duplicate_keys_in_an_ir_file_exit_3(tmp_path: Path) -> None:
    ir = tmp_path / "pipe.json"
    ir.write_text(
        json.dumps(
            {
                "slug": "ir",
                "steps": [
                    {"kind": "command", "key": "x", "cmd": "true"},
                    {"kind": "command", "key": "x", "cmd": "false"},
                ],
            }
        )
    )
    result = run_hm("run", "--file", str(ir), cwd=tmp_path, env=hm_env())
    assert result.returncode == 3
    assert "'x' is used twice" in result.stderr
    assert "steps[0]" in result.stderr and "steps[1]" in result.stderr
    no_traceback(result)


def test_a_syntax_error_in_the_pipeline_file_exits_3_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n@pipeline('ci')\ndef ci()\n    step('a', 'true')\n"
    )
    for fmt in ("human", "json"):
        result = run_hm("run", "--format", fmt, cwd=tmp_path, env=hm_env())
        assert result.returncode == 3
        assert ".hm/pipeline.py:4" in result.stderr, result.stderr
        assert "SyntaxError" in result.stderr
        assert_stdout_has_no_text(result.stdout)
        no_traceback(result)


def test_an_exception_in_the_pipeline_file_exits_3_with_its_line(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("a", "true")
        raise RuntimeError("no pipeline today")
        """
    )
    result = project.run()
    assert result.returncode == 3
    assert "no pipeline today" in result.stderr
    assert ".hm/pipeline.py:7" in result.stderr, result.stderr
    no_traceback(result)


def test_a_project_without_pipelines_says_how_to_write_one(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    result = run_hm("run", cwd=tmp_path, env=hm_env())
    assert result.returncode == 3
    assert "@pipeline" in result.stderr and ".hm/pipeline.py" in result.stderr
    no_traceback(result)


def test_several_pipelines_are_listed_with_how_to_choose(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n"
        "@pipeline('alpha')\ndef a():\n    step('a', 'echo in-alpha')\n\n"
        "@pipeline('beta')\ndef b():\n    step('b', 'echo in-beta')\n"
    )
    result = run_hm("run", cwd=tmp_path, env=hm_env())
    assert result.returncode == 3
    assert "alpha" in result.stderr and "beta" in result.stderr
    assert "hm run" in result.stderr
    chosen = run_hm("run", "beta", "--format", "json", cwd=tmp_path, env=hm_env())
    assert chosen.returncode == 0, chosen.stderr
    assert '"in-beta"' in chosen.stdout and "in-alpha" not in chosen.stdout
    unknown = run_hm("run", "gamma", cwd=tmp_path, env=hm_env())
    assert unknown.returncode == 3
    assert "gamma" in unknown.stderr and "alpha" in unknown.stderr


def test_a_pipeline_given_as_ir_json_runs(tmp_path: Path) -> None:
    ir = tmp_path / "pipe.json"
    ir.write_text(
        json.dumps(
            {
                "version": "0",
                "slug": "from-ir",
                "env": {"WHO": "ir"},
                "steps": [
                    {"kind": "command", "key": "a", "cmd": "echo hello $WHO > f"},
                    {"kind": "wait"},
                    {"kind": "command", "key": "b", "cmd": "cat f", "builds_in": "a"},
                ],
            }
        )
    )
    result = run_hm("-C", str(tmp_path), "run", "--file", str(ir), "--format", "json", env=hm_env())
    assert result.returncode == 0, result.stderr
    lines = [json.loads(s) for s in result.stdout.splitlines()]
    assert lines[0]["pipeline"] == "from-ir"
    assert [e["line"] for e in lines if e["kind"] == "step_log"] == ["hello ir"]


def test_an_ir_file_with_a_typo_in_a_field_exits_3(tmp_path: Path) -> None:
    ir = tmp_path / "pipe.json"
    ir.write_text(
        json.dumps({"slug": "x", "steps": [{"kind": "command", "key": "a", "cmd": "true", "timeout_secs": 3}]})
    )
    result = run_hm("run", "--file", str(ir), cwd=tmp_path, env=hm_env())
    assert result.returncode == 3
    assert "timeout_secs" in result.stderr and "timeout_seconds" in result.stderr
    no_traceback(result)


@pytest.mark.parametrize("step_args", ['env={"BAD=NAME": "x"}', 'env={"": "x"}'])
def test_an_invalid_environment_variable_name_is_a_pipeline_error(tmp_path: Path, step_args: str) -> None:
    marker = tmp_path / "ran"
    project = Project(tmp_path / "p").pipeline(
        f"""
        step("first", "touch {marker}")
        step("bad-env", "true", {step_args})
        """
    )
    result = project.run()
    no_traceback(result)
    assert result.returncode == 3, result.stderr
    assert "bad-env" in result.stderr
    assert not marker.exists(), "steps ran although the pipeline cannot run"


def test_a_nul_byte_in_a_command_is_a_pipeline_error(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    project = Project(tmp_path / "p").pipeline(
        f"""
        step("first", "touch {marker}")
        step("nul", "echo a\\x00b")
        """
    )
    result = project.run()
    no_traceback(result)
    assert result.returncode == 3, result.stderr
    assert "nul" in result.stderr and "NUL" in result.stderr
    assert "bug in the host" not in result.stderr
    assert not marker.exists(), "steps ran although the pipeline cannot run"


# -- 4: plugin load --------------------------------------------------------------


def test_a_runner_claimed_by_two_plugins_exits_4_naming_both_paths(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    project = Project(tmp_path / "p").pipeline(f'step("s", "touch {marker}", runner="dup")')
    result = project.run(plugins=["conflict-runner-a", "conflict-runner-b"])
    no_traceback(result)
    assert not marker.exists()
    assert str(fixture_path("conflict-runner-a")) in result.stderr
    assert str(fixture_path("conflict-runner-b")) in result.stderr
    assert result.returncode == 4, result.stderr


def test_a_conflict_on_a_runner_the_pipeline_does_not_use_does_not_stop_it(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("s", "echo fine")')
    result = project.run(plugins=["conflict-runner-a", "conflict-runner-b"])
    assert result.returncode == 0, result.stderr


def test_a_broken_plugin_on_the_path_is_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("s", "echo still-runs")')
    result = project.run(plugins=["bad-abi-version", "broken-no-entry"])
    assert result.returncode == 0, result.stderr
    assert "still-runs" in result.stderr
    assert "warning" in result.stderr
    assert str(fixture_path("bad-abi-version")) in result.stderr
    assert "9999" in result.stderr
    no_traceback(result)


def test_a_plugin_that_crashes_reading_its_manifest_does_not_take_the_run_down(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("s", "echo still-runs")')
    result = project.run(plugins=["broken-crash-on-manifest"], env={"HM_FIXTURE_CRASH": "1"})
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert str(fixture_path("broken-crash-on-manifest")) in result.stderr


# -- 5: plugin runtime error -----------------------------------------------------


def test_a_plugin_error_from_the_runner_exits_5_naming_the_plugin(tmp_path: Path) -> None:
    # The shell runner refuses a negative kill grace with a PluginError
    # (code invalid_input): a capability call that failed, not a failed command.
    project = Project(tmp_path).pipeline(
        """
        step("fails", "exit 1")
        step("bad-args", "true", runner_args={"kill_grace_seconds": -1})
        """
    )
    # A plugin error outranks a plain step failure.
    result, evs = project.run_json("--keep-going")
    assert result.returncode == 5, result.stderr
    assert {k: e["status"] for k, e in finished(evs).items()} == {"fails": "failed", "bad-args": "error"}
    done = finished(evs)["bad-args"]
    assert done["status"] == "error"
    assert "shell" in done["message"] and "kill_grace_seconds" in done["message"]
    assert evs[-1]["status"] == "error" and evs[-1]["exit_code"] == 5

    human = project.run("--keep-going")
    assert human.returncode == 5
    assert "plugin shell" in human.stderr and "kill_grace_seconds" in human.stderr
    no_traceback(human)


def test_a_runner_that_reports_failure_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("words", "one two three", runner="freestyle")')
    result, evs = project.run_json(plugins=["freestyle-runner"])
    assert result.returncode == 1
    done = finished(evs)["words"]
    assert done["status"] == "failed" and done["exit_code"] == 3
    assert done["message"] == "freestyle-runner: 3 words"
