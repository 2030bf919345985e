"""Lifecycle hooks during ``hm run`` (the recording-hook fixture), hook abort,
and Ctrl-C (SIGINT to a running ``hm run``)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from run_helpers import (
    Project,
    by_key,
    events,
    finished,
    kill_pid,
    no_traceback,
    popen_hm,
    process_gone,
    stop_process,
    wait_for_file,
    wait_gone,
)

HOOK = ["recording-hook"]


def recorded(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]  # type: ignore[misc]


# -- hooks -----------------------------------------------------------------------


def test_hooks_see_every_event_before_and_after_in_order_but_not_step_log(tmp_path: Path) -> None:
    record = tmp_path / "hook.log"
    project = Project(tmp_path / "p").pipeline(
        """
        a = step("a", "echo one; echo two >&2")
        step("b", "exit 1", builds_in=a)
        step("c", "true", builds_in="b")
        """
    )
    result, evs = project.run_json(plugins=HOOK, env={"HM_RECORDING_HOOK_FILE": str(record)})
    assert result.returncode == 1, result.stderr
    assert any(e["kind"] == "step_log" for e in evs)
    seen = recorded(record)
    # Each phase sees every event in output order; an event reaches the after hook
    # only once the before hook has seen it (after hooks run on their own thread,
    # so they may lag behind the next before call).
    kinds_out = [e["kind"] for e in evs if e["kind"] != "step_log"]
    assert [kind for phase, kind in seen if phase == "before"] == kinds_out
    assert [kind for phase, kind in seen if phase == "after"] == kinds_out
    position = {("before", 0): -1}
    for index, (phase, kind) in enumerate(seen):
        nth = sum(1 for p, k in seen[:index] if (p, k) == (phase, kind))
        position[(phase, kind, nth)] = index  # type: ignore[index]
        if phase == "after":
            assert position[("before", kind, nth)] < index  # type: ignore[index]
    kinds = {kind for _, kind in seen}
    assert {
        "build_started",
        "step_queued",
        "step_started",
        "step_finished",
        "chain_failed",
        "build_finished",
    } <= kinds
    assert "step_log" not in kinds


def test_a_before_hook_abort_stops_the_build_with_exit_6(tmp_path: Path) -> None:
    marker = tmp_path / "step-ran"
    record = tmp_path / "hook.log"
    project = Project(tmp_path / "p").pipeline(f'step("a", "touch {marker}")\nstep("b", "true")')
    env = {"HM_RECORDING_HOOK_ABORT": "the branch is frozen", "HM_RECORDING_HOOK_FILE": str(record)}
    result, evs = project.run_json(plugins=HOOK, env=env)
    no_traceback(result)
    assert result.returncode == 6, result.stderr
    assert not marker.exists()
    assert not by_key(evs, "step_started")
    assert evs[-1]["kind"] == "build_finished" and evs[-1]["status"] == "aborted"
    assert "recording-hook" in evs[-1]["message"] and "the branch is frozen" in evs[-1]["message"]
    assert {e["status"] for e in finished(evs).values()} <= {"skipped"}
    assert ("after", "build_finished") in recorded(record)

    human = project.run(plugins=HOOK, env=env)
    assert human.returncode == 6
    assert "recording-hook" in human.stderr and "the branch is frozen" in human.stderr
    no_traceback(human)


# -- Ctrl-C ----------------------------------------------------------------------


def _sleeper(tmp_path: Path, cmd: str = "exec sleep 30", **step_args: object) -> tuple[Project, Path]:
    pid_file = tmp_path / "step.pid"
    extra = "".join(f", {k}={v!r}" for k, v in step_args.items())
    project = Project(tmp_path / "p").pipeline(
        f"""
        s = step("sleepy", "echo $$ > {pid_file}; {cmd}"{extra})
        step("never", "true", builds_in=s)
        """
    )
    return project, pid_file


def test_ctrl_c_once_cancels_running_steps_and_exits_130(tmp_path: Path) -> None:
    project, pid_file = _sleeper(tmp_path)
    record = tmp_path / "hook.log"
    proc = popen_hm(project.root, plugins=HOOK, env={"HM_RECORDING_HOOK_FILE": str(record)})
    pid = None
    try:
        pid = int(wait_for_file(pid_file))
        assert not process_gone(pid)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        took = time.monotonic() - sent
        text = err.decode()
        assert proc.returncode == 130, text
        assert took < 8, f"hm took {took:.1f} s to stop after Ctrl-C"
        assert wait_gone(pid, 5), "the step's process is still running after hm exited"
        assert "build cancelled" in text
        assert "Traceback" not in text
        # Hooks see the end of a cancelled build.
        seen = recorded(record)
        # both hooks saw the end (each phase in order; the after hook may lag behind)
        assert [kind for phase, kind in seen if phase == "before"][-1] == "build_finished"
        assert [kind for phase, kind in seen if phase == "after"][-1] == "build_finished"
    finally:
        stop_process(proc)
        if pid is not None:
            kill_pid(pid)


def test_ctrl_c_in_json_reports_the_step_cancelled(tmp_path: Path) -> None:
    project, pid_file = _sleeper(tmp_path)
    proc = popen_hm(project.root, "--format", "json")
    pid = None
    try:
        pid = int(wait_for_file(pid_file))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 130
        evs = events(out.decode())
        done = finished(evs)
        assert done["sleepy"]["status"] == "cancelled"
        assert done["never"]["status"] == "skipped"
        assert evs[-1]["kind"] == "build_finished"
        assert evs[-1]["status"] == "cancelled" and evs[-1]["exit_code"] == 130
        assert wait_gone(pid, 5)
    finally:
        stop_process(proc)
        if pid is not None:
            kill_pid(pid)


def test_ctrl_c_twice_exits_130_at_once(tmp_path: Path) -> None:
    # The step ignores SIGTERM and has a long kill grace, so one Ctrl-C alone
    # would leave hm waiting for it.
    project, pid_file = _sleeper(tmp_path, cmd="trap '' TERM; exec sleep 30", runner_args={"kill_grace_seconds": 60})
    proc = popen_hm(project.root)
    pid = None
    try:
        pid = int(wait_for_file(pid_file))
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None, "hm exited before the step stopped"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        took = time.monotonic() - sent
        assert proc.returncode == 130
        assert took < 5, f"the second Ctrl-C took {took:.1f} s"
    finally:
        stop_process(proc)
        if pid is not None:
            kill_pid(pid)
