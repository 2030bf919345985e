"""``hm shell`` on a real PTY: a failed step's kept workspace, its env, resize,
Ctrl-C and the exit code, through the bundled shell runner's forkpty sessions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_hm
from pty_helpers import Terminal
from run_helpers import Project, no_traceback

FAILING = """
step("ok", "echo fine")
step("bad", "echo data > made.txt; exit 3")
"""


@pytest.fixture
def failed_run(tmp_path: Path) -> Project:
    project = Project(tmp_path / "p").pipeline(FAILING, env={"GREETING": "hello"})
    # --keep-going: `ok` runs to its end even when `bad` fails first (no fail-fast cancel)
    result = project.run("--keep-going")
    assert result.returncode == 1, result.stderr
    return project


@pytest.fixture
def term(failed_run: Project) -> Iterator[Terminal]:
    t = Terminal(["shell", "bad"], cwd=failed_run.root)
    t.expect("$ ")  # the session's prompt (PS1)
    yield t
    t.kill()


def test_a_typed_command_runs_in_the_steps_workspace_with_its_env(term: Terminal) -> None:
    term.type("cat made.txt; echo got-$GREETING\r")
    term.expect("data")
    term.expect("got-hello")
    term.type("exit 0\r")
    assert term.wait() == 0


def test_resizing_the_terminal_resizes_the_session(term: Terminal) -> None:
    term.type("stty size\r")
    term.expect("30 100")
    term.resize(41, 133)
    term.type("stty size\r")
    term.expect("41 133")
    term.type("exit\r")
    assert term.wait() == 0


def test_ctrl_c_stops_the_foreground_command_not_the_session(term: Terminal) -> None:
    term.type("echo sleeping-$GREETING; sleep 30; echo not-interrupted\r")
    term.expect("sleeping-hello")  # printed by the command, so `sleep` is starting now
    time.sleep(0.3)
    term.type(b"\x03")
    term.type("echo still-$GREETING\r")
    term.expect("still-hello", timeout=10)
    assert "not-interrupted" not in term.seen.decode(errors="replace")
    term.type("exit 0\r")
    assert term.wait() == 0


def test_the_sessions_exit_code_becomes_hms(term: Terminal) -> None:
    term.type("exit 4\r")
    assert term.wait() == 4


def test_a_command_after_dashes_runs_instead_of_a_shell(failed_run: Project) -> None:
    t = Terminal(["shell", "bad", "--", "sh", "-c", "cat made.txt; exit 7"], cwd=failed_run.root)
    try:
        assert t.wait() == 7
        assert "data" in t.seen.decode()
    finally:
        t.kill()


def test_an_unknown_step_key_is_a_clear_error(failed_run: Project) -> None:
    result = run_hm("shell", "nope", cwd=failed_run.root)
    assert result.returncode == 2
    assert "has no step 'nope' (its steps: ok, bad)" in result.stderr
    no_traceback(result)


def test_a_step_that_succeeded_kept_no_workspace(failed_run: Project) -> None:
    result = run_hm("shell", "ok", cwd=failed_run.root)
    assert result.returncode == 2
    assert "step 'ok' of run" in result.stderr and "succeeded" in result.stderr
    assert "only the workspaces of failed steps" in result.stderr


def test_a_pruned_workspace_is_a_clear_error(failed_run: Project) -> None:
    pruned = run_hm("runs", "prune", "--workspaces", cwd=failed_run.root)
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted the kept workspaces of 1 run" in pruned.stdout
    result = run_hm("shell", "bad", cwd=failed_run.root)
    assert result.returncode == 2
    assert "the workspace of step 'bad'" in result.stderr and "was pruned" in result.stderr
    assert "HM_KEEP_FAILED_WORKSPACES" in result.stderr
    no_traceback(result)


def test_only_the_last_n_runs_keep_failed_workspaces(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(FAILING)
    ids = []
    for _ in range(3):
        result = project.run(env={"HM_KEEP_FAILED_WORKSPACES": "2"})
        assert result.returncode == 1
        ids.append(result.stderr.split("hm logs ")[1].split("`")[0])
    oldest = run_hm("shell", "bad", "--run", ids[0], cwd=project.root)
    assert "was pruned" in oldest.stderr
    for newer in ids[1:]:
        ok = run_hm("shell", "bad", "--run", newer, "--", "true", cwd=project.root)
        assert ok.returncode == 0, ok.stderr


def test_a_runner_without_sessions_is_named(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline("step('f', 'x', runner='freestyle')")
    assert project.run(plugins=["freestyle-runner"]).returncode == 1
    result = run_hm("shell", "f", cwd=project.root, env={"HM_PLUGIN_PATH": str(_fixture("freestyle-runner"))})
    assert result.returncode == 5, result.stderr
    assert "runner 'freestyle' cannot open interactive sessions" in result.stderr
    no_traceback(result)


def test_run_debug_without_a_terminal_skips_with_a_note(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(FAILING)
    result = project.run("--debug")
    assert result.returncode == 1
    assert "--debug: stdin is not a terminal, so no session was opened" in result.stderr
    assert "`hm shell bad --run " in result.stderr


def test_run_debug_on_a_terminal_opens_the_first_failed_step(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(FAILING, env={"GREETING": "hello"})
    t = Terminal(["run", "--debug"], cwd=project.root)
    try:
        t.expect("opening a session in step 'bad'")
        t.type("echo dbg-$GREETING; cat made.txt\r")
        t.expect("dbg-hello")
        t.expect("data")
        t.type("exit 9\r")
        t.expect("the session ended with exit code 9")
        assert t.wait() == 1  # the run's code: the build failed
    finally:
        t.kill()


def _fixture(name: str) -> Path:
    from conftest import fixture_path

    return fixture_path(name)


def test_run_debug_with_json_output_opens_no_session(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(FAILING)
    result, evs = project.run_json("--debug")
    assert result.returncode == 1
    assert evs[-1]["kind"] == "build_finished"  # stdout stayed the event stream
    assert "--debug: not with --format json" in result.stderr
