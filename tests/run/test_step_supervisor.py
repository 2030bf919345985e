"""The shell runner's step supervisors come from one small server process per
hm process (plugins/shell/supervisor): if that server dies, the steps it
started end with it and the next step gets a new one."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from run_helpers import Project, events, finished, popen_hm, stop_process, wait_gone


def _parent_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def test_a_killed_supervisor_server_ends_its_steps_and_the_next_step_gets_a_new_one(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    project = Project(tmp_path / "p").pipeline(
        f"""
        step("victim", "echo $$ > {marks}/shell; echo $PPID > {marks}/supervisor; sleep 60")
        wait(continue_on_failure=True)
        step("after", "echo fine")
        """
    )
    proc = popen_hm(project.root, "--format", "json")
    try:
        deadline = time.monotonic() + 30
        while not (marks / "supervisor").exists() or not (marks / "supervisor").read_text().strip():
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        shell = int((marks / "shell").read_text())
        supervisor = int((marks / "supervisor").read_text())
        server = _parent_of(supervisor)
        assert server != proc.pid and _parent_of(server) == proc.pid
        os.kill(server, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    evs = events(out.decode())
    done = finished(evs)
    assert done["victim"]["status"] == "failed"
    assert done["after"]["status"] == "succeeded"
    assert evs[-1]["kind"] == "build_finished" and evs[-1]["exit_code"] == 1
    assert wait_gone(shell, 5), "the step's shell outlived its supervisor's server"


def test_a_command_too_long_for_exec_is_a_clear_spawn_error(tmp_path: Path) -> None:
    # It travels to the server whole; execve then refuses it (one argument <= 128 KiB on Linux).
    project = Project(tmp_path / "p").pipeline(f'step("big", "echo {"x" * 200_000}")\nstep("small", "echo ok")')
    result, evs = project.run_json("--keep-going")
    done = finished(evs)
    assert done["big"]["status"] == "error"
    assert "Argument list too long (command of 200005 bytes)" in done["big"]["message"]
    assert "put a long script in a file" in done["big"]["message"]
    assert done["small"]["status"] == "succeeded"
    assert result.returncode != 0
