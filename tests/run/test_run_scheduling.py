"""Scheduling a run: wait barriers, fail-fast and --keep-going, parallelism, timeouts."""

from __future__ import annotations

import re
import time
from pathlib import Path

from run_helpers import Project, by_key, finished, logs, no_traceback, wait_gone


def statuses(evs: list[dict]) -> dict[str, str]:  # type: ignore[type-arg]
    return {k: e["status"] for k, e in finished(evs).items()}


# -- wait barriers -------------------------------------------------------------


def test_a_failure_before_a_wait_skips_what_follows(tmp_path: Path) -> None:
    marker = tmp_path / "after-wait-ran"
    project = Project(tmp_path / "p").pipeline(
        f"""
        step("fails", "exit 1")
        step("fine", "true")
        wait()
        step("after", "touch {marker}")
        """
    )
    result, evs = project.run_json("--keep-going")
    assert result.returncode == 1
    assert not marker.exists()
    done = finished(evs)
    assert done["fails"]["status"] == "failed"
    assert done["fine"]["status"] == "succeeded"
    assert done["after"]["status"] == "skipped"
    assert done["after"]["message"], "a skipped step must say why"
    assert "after" not in by_key(evs, "step_started")
    assert evs[-1]["status"] == "failed"


def test_a_wait_with_continue_on_failure_lets_later_steps_run(tmp_path: Path) -> None:
    marker = tmp_path / "after-wait-ran"
    project = Project(tmp_path / "p").pipeline(
        f"""
        step("fails", "exit 1")
        wait(continue_on_failure=True)
        step("after", "touch {marker}")
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 1, "the build still failed"
    assert marker.exists()
    assert statuses(evs) == {"fails": "failed", "after": "succeeded"}


def test_a_step_building_in_a_failed_step_across_a_continuing_wait_is_skipped(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        a = step("a", "exit 1")
        wait(continue_on_failure=True)
        step("child", "true", builds_in=a)
        step("independent", "true")
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 1
    done = finished(evs)
    assert done["independent"]["status"] == "succeeded"
    assert done["child"]["status"] == "skipped"
    assert "'a'" in done["child"]["message"]


def test_steps_after_a_wait_start_only_when_everything_before_it_finished(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("slow", "sleep 0.3")
        step("quick", "true")
        wait()
        step("later", "true")
        """
    )
    result, evs = project.run_json("-j", "4")
    assert result.returncode == 0
    index = {(e["kind"], e.get("step_key")): i for i, e in enumerate(evs)}
    assert index[("step_finished", "slow")] < index[("step_started", "later")]
    assert index[("step_finished", "quick")] < index[("step_started", "later")]


def test_a_step_can_build_in_a_step_before_a_wait(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        a = step("compile", "echo object > a.o")
        wait()
        step("link", "cat a.o", builds_in=a)
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    assert logs(evs, "link") == ["object"]


# -- fail-fast and --keep-going ------------------------------------------------


def _two_chains(tmp_path: Path, sleep: float) -> tuple[Project, Path, Path]:
    first = tmp_path / "slow-finished"
    second = tmp_path / "slow-child-ran"
    project = Project(tmp_path / "p").pipeline(
        f"""
        step("broken", "exit 4")
        slow = step("slow", "sleep {sleep}; touch {first}")
        step("slow-child", "touch {second}", builds_in=slow)
        """
    )
    return project, first, second


def test_fail_fast_stops_independent_chains(tmp_path: Path) -> None:
    project, first, second = _two_chains(tmp_path, 3)
    result, evs = project.run_json("-j", "2")
    assert result.returncode == 1
    assert not first.exists() and not second.exists()
    st = statuses(evs)
    assert st["broken"] == "failed"
    assert st["slow"] in ("cancelled", "skipped"), st
    assert st["slow-child"] == "skipped"
    message = finished(evs)["slow-child"]["message"]
    assert message and ("slow" in message or "fail" in message), message
    assert evs[-1]["status"] == "failed" and evs[-1]["exit_code"] == 1
    assert "broken" in evs[-1]["message"]
    # Cancelling happens at once, not after the slow step's sleep.
    assert evs[-1]["duration_ms"] < 2500


def test_fail_fast_reports_skipped_steps_in_the_human_summary(tmp_path: Path) -> None:
    project, _, _ = _two_chains(tmp_path, 3)
    result = project.run("-j", "2")
    assert result.returncode == 1
    assert re.search(r"slow-child\s+skipped", result.stderr), result.stderr
    assert re.search(r"broken\s+failed", result.stderr), result.stderr
    assert "build failed" in result.stderr
    no_traceback(result)


def test_keep_going_lets_independent_chains_finish(tmp_path: Path) -> None:
    project, first, second = _two_chains(tmp_path, 0.3)
    result, evs = project.run_json("-j", "2", "--keep-going")
    assert result.returncode == 1, "a failed step still fails the build"
    assert first.exists() and second.exists()
    assert statuses(evs) == {"broken": "failed", "slow": "succeeded", "slow-child": "succeeded"}
    assert evs[-1]["status"] == "failed"


def test_a_failed_step_skips_the_rest_of_its_chain_even_with_keep_going(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        a = step("a", "exit 1")
        b = step("b", "true", builds_in=a)
        step("c", "true", builds_in=b)
        step("d", "true", builds_in=a)
        """
    )
    result, evs = project.run_json("--keep-going")
    assert result.returncode == 1
    done = finished(evs)
    for key in ("b", "c", "d"):
        assert done[key]["status"] == "skipped"
        assert done[key]["message"]
    assert "a" in done["b"]["message"]
    assert set(by_key(evs, "step_started")) == {"a"}
    assert len([e for e in evs if e["kind"] == "chain_failed"]) >= 1


# -- parallelism ---------------------------------------------------------------


def _sleepers(tmp_path: Path) -> Project:
    return Project(tmp_path).pipeline(
        """
        step("s1", "sleep 1")
        step("s2", "sleep 1")
        """
    )


def test_independent_chains_run_in_parallel(tmp_path: Path) -> None:
    result, evs = _sleepers(tmp_path).run_json("-j", "2")
    assert result.returncode == 0
    assert evs[-1]["duration_ms"] < 1800, "two 1 s steps with -j 2 did not overlap"
    index = {(e["kind"], e.get("step_key")): i for i, e in enumerate(evs)}
    assert index[("step_started", "s2")] < index[("step_finished", "s1")]


def test_parallelism_one_runs_one_step_at_a_time(tmp_path: Path) -> None:
    result, evs = _sleepers(tmp_path).run_json("--parallelism", "1")
    assert result.returncode == 0
    assert evs[-1]["duration_ms"] >= 2000
    running = 0
    for e in evs:
        if e["kind"] == "step_started":
            running += 1
            assert running == 1, "two steps ran at once with --parallelism 1"
        elif e["kind"] == "step_finished":
            running -= 1


def test_output_of_parallel_steps_is_attributed_to_the_right_step(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("left", "seq 20000 | sed s/^/L/")
        step("right", "seq 20000 | sed s/^/R/ >&2")
        step("words", "alpha beta gamma delta", runner="freestyle")
        """
    )
    result, evs = project.run_json("-j", "3", "--keep-going", plugins=["freestyle-runner"])
    assert result.returncode == 1  # freestyle fails a cmd that is not "ok"
    assert logs(evs, "left", "stdout") == [f"L{i}" for i in range(1, 20001)]
    assert logs(evs, "right", "stderr") == [f"R{i}" for i in range(1, 20001)]
    assert logs(evs, "left", "stderr") == [] and logs(evs, "right", "stdout") == []
    # freestyle-runner sends each line in pieces; the host joins them.
    assert logs(evs, "words", "stdout") == ["alpha", "beta", "gamma", "delta"]
    assert logs(evs, "words", "stderr") == ["freestyle-runner: 4 words"]


# -- timeouts ------------------------------------------------------------------


def test_timeouts_and_signals_are_reported_per_step(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("slow", "echo started; sleep 10", timeout_seconds=0.5)
        step("fast", "echo done", timeout_seconds=30)
        step("killed", "kill -9 $$")
        """
    )
    started = time.monotonic()
    result, evs = project.run_json("--keep-going")
    took = time.monotonic() - started
    assert result.returncode == 1
    done = finished(evs)
    assert done["slow"]["status"] == "timed_out"
    assert "0.5" in done["slow"]["message"]
    assert done["slow"]["exit_code"] == 124, "timeout(1)'s code; 130 would read as Ctrl-C"
    assert logs(evs, "slow") == ["started"]
    assert done["fast"]["status"] == "succeeded", "a timeout stopped a step that finished in time"
    assert done["killed"]["status"] == "failed" and done["killed"]["exit_code"] == 137
    assert "SIGKILL" in done["killed"]["message"]
    assert evs[-1]["status"] == "failed"
    assert took < 8, f"the timed-out step took {took:.1f} s to stop"


def test_a_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    project = Project(tmp_path / "p").pipeline(
        f'step("group", "sleep 30 & echo $! > {pid_file}; wait", timeout_seconds=0.5)'
    )
    result, evs = project.run_json()
    assert result.returncode == 1
    assert finished(evs)["group"]["status"] == "timed_out"
    pid = int(pid_file.read_text())
    assert wait_gone(pid, 5), "a process the step started in the background outlived its timeout"


def test_a_step_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("stubborn", "trap '' TERM; sleep 20", timeout_seconds=0.5, runner_args={"kill_grace_seconds": 0.5})
        """
    )
    started = time.monotonic()
    result, evs = project.run_json()
    assert result.returncode == 1
    assert finished(evs)["stubborn"]["status"] == "timed_out"
    assert time.monotonic() - started < 10
