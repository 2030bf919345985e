"""Ctrl-C, SIGTERM, SIGHUP and SIGKILL reaching ``hm run``: each ends the run
with the documented exit code and leaves no process (a step that ignores TERM
and INT included) and no run directory behind."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from iso_helpers import RunTrace, events, hm_env

#: A step that ignores the polite signals, so only a kill ends it.
STUBBORN = "trap '' TERM INT HUP; echo started; sleep 60; echo never"


def project(root: Path, *, runner: str | None = None) -> Path:
    (root / ".hm").mkdir(parents=True, exist_ok=True)
    extra = f", runner={runner!r}" if runner else ""
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n@pipeline('t')\ndef p():\n"
        f"    step('stubborn', {STUBBORN!r}, runner_args={{'kill_grace_seconds': 1}}{extra})\n"
        f"    step('other', 'sleep 60')\n"
    )
    return root


def start(root: Path, trace: RunTrace, *args: str, session: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, **hm_env(), **trace.env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "hm", "run", "--format", "json", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=session,
    )


def wait_for_output(proc: subprocess.Popen[bytes], text: bytes, timeout: float = 30) -> bytes:
    """Read hm's stdout until ``text`` appeared; returns what was read."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} did not appear; got {seen!r}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"hm exited before {text!r}: {seen!r}"
            seen += chunk
    return seen


def finish(proc: subprocess.Popen[bytes], seen: bytes, timeout: float = 20) -> tuple[int, list[dict], str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, events((seen + out).decode()), err.decode()


@pytest.mark.parametrize(
    ("signals", "code"),
    [
        ((signal.SIGINT, signal.SIGINT), 130),
        ((signal.SIGTERM, signal.SIGTERM), 143),
        ((signal.SIGINT, signal.SIGTERM), 130),
    ],
    ids=["ctrl-c-twice", "sigterm-twice", "ctrl-c-then-sigterm"],
)
@pytest.mark.parametrize("isolate", [[], ["--isolate"]], ids=["in-process", "isolated"])
def test_a_second_signal_kills_everything_and_exits_at_once(
    signals: tuple[int, int], code: int, isolate: list[str], tmp_path: Path
) -> None:
    trace = RunTrace(tmp_path)
    proc = start(project(tmp_path / "p"), trace, *isolate)
    try:
        seen = wait_for_output(proc, b'"line":"started"')
        proc.send_signal(signals[0])
        time.sleep(0.3)
        proc.send_signal(signals[1])
        started = time.monotonic()
        returncode, evs, err = finish(proc, seen)
        assert time.monotonic() - started < 5
        assert returncode == code, err
        assert evs[-1]["kind"] == "build_finished" and evs[-1]["status"] == "cancelled"
        assert "Traceback" not in err
        trace.assert_clean()
    finally:
        proc.kill()
        trace.kill_leftovers()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_one_signal_cancels_the_run_gracefully(sig: int, code: int, tmp_path: Path) -> None:
    trace = RunTrace(tmp_path)
    proc = start(project(tmp_path / "p"), trace)
    try:
        seen = wait_for_output(proc, b'"line":"started"')
        proc.send_signal(sig)
        returncode, evs, err = finish(proc, seen)
        assert returncode == code, err
        done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
        assert done["stubborn"]["status"] == "cancelled"  # killed after its kill_grace_seconds
        assert evs[-1]["kind"] == "build_finished" and evs[-1]["status"] == "cancelled"
        assert evs[-1]["exit_code"] == code
        trace.assert_clean()
    finally:
        proc.kill()
        trace.kill_leftovers()


@pytest.mark.parametrize("isolate", [[], ["--isolate"]], ids=["in-process", "isolated"])
@pytest.mark.parametrize("whole_group", [False, True], ids=["hm", "its-process-group"])
def test_sigkill_of_hm_leaves_no_step_worker_or_directory(
    isolate: list[str], whole_group: bool, tmp_path: Path
) -> None:
    trace = RunTrace(tmp_path)
    proc = start(project(tmp_path / "p"), trace, *isolate, session=True)
    try:
        wait_for_output(proc, b'"line":"started"')
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)  # a CI job's timeout
        else:
            proc.kill()
        proc.wait(timeout=10)
        trace.assert_clean()
    finally:
        proc.kill()
        proc.communicate()
        trace.kill_leftovers()


@pytest.mark.parametrize("isolate", [[], ["--isolate"]], ids=["in-process", "isolated"])
def test_one_ctrl_c_ends_a_run_whose_plugin_hangs_within_the_grace(isolate: list[str], tmp_path: Path) -> None:
    # The step never polls should_cancel: after HM_KILL_GRACE_SECONDS hm gives up
    # on it (kills its worker, or abandons its thread) and still ends the run.
    root = tmp_path / "p"
    (root / ".hm").mkdir(parents=True)
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n@pipeline('t')\ndef p():\n    step('stuck', 'hang', runner='crashy')\n"
    )
    trace = RunTrace(tmp_path)
    trace.env.update(HM_PLUGIN_PATH=str(FIXTURES / "crashy-runner.so"), HM_KILL_GRACE_SECONDS="1")
    proc = start(root, trace, *isolate)
    try:
        seen = wait_for_output(proc, b'"kind":"step_started"')
        time.sleep(0.3)  # inside execute_step by now
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        returncode, evs, err = finish(proc, seen)
        assert time.monotonic() - sent < 10, "hm did not end within the grace and its slack"
        assert returncode == 130, err
        (done,) = [e for e in evs if e["kind"] == "step_finished"]
        assert done["status"] == "cancelled"
        assert evs[-1]["kind"] == "build_finished" and evs[-1]["exit_code"] == 130
        assert "Traceback" not in err
        trace.assert_clean()
    finally:
        proc.kill()
        trace.kill_leftovers()
