"""One process per stdio plugin per hm process, started when first needed,
stopped in steps when hm ends (shutdown, end of stdin, SIGTERM, SIGKILL), and
never outliving hm, not even its SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_hm
from stdio_helpers import RunTrace, events, stdio_env, write_pipeline


def test_parallel_steps_share_one_process_started_when_needed(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    body = "".join(f'step("s{i}", "echo {i}", runner="py-all")\n' for i in range(6))
    root = write_pipeline(tmp_path / "p", body + 'step("shell", "echo only shell")')
    trace = RunTrace(tmp_path)
    env = {**stdio_env("py-all", extra={"HM_FIXTURE_STARTS": str(starts)}), **trace.env}
    assert run_hm("plugin", "list", env=env).returncode == 0  # the probe: one process, then gone
    assert len(starts.read_text().split()) == 1
    result = run_hm("run", "--format", "json", "--parallelism", "6", cwd=root, env=env)
    assert result.returncode == 0, result.stderr
    assert len(starts.read_text().split()) == 2, "one process for the whole run"
    lines = sorted(e["line"] for e in events(result.stdout) if e["kind"] == "step_log")
    assert lines == ["0", "1", "2", "3", "4", "5", "only shell"]
    # listing again reads the cache: no process
    assert run_hm("plugin", "list", env=env).returncode == 0
    assert len(starts.read_text().split()) == 2
    trace.assert_clean()


def test_a_plugin_that_ignores_shutdown_and_sigterm_is_killed_when_hm_ends(tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("s", "ok", runner="stubborn")')
    trace = RunTrace(tmp_path)
    started = time.monotonic()
    result = run_hm("run", "--format", "json", cwd=root, env={**stdio_env("stubborn"), **trace.env})
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    assert events(result.stdout)[-1]["kind"] == "build_finished"
    trace.assert_clean()


def _start(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hm", "run", "--format", "json"],
        cwd=root,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_for(proc: subprocess.Popen[bytes], needle: bytes, timeout: float = 30) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while needle not in seen:
        assert time.monotonic() < deadline, seen
        chunk = proc.stdout.read()
        if chunk:
            seen += chunk
        else:
            time.sleep(0.02)
    return seen


def test_sigkill_of_hm_leaves_no_plugin_process(tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("h", "hang", runner="py-all")')
    trace = RunTrace(tmp_path)
    proc = _start(root, {**stdio_env("py-all"), **trace.env})
    try:
        _wait_for(proc, b'"line":"started"')
        proc.kill()
        proc.wait(timeout=10)
        trace.assert_clean()
    finally:
        proc.kill()
        proc.communicate()
        trace.kill_leftovers()


def test_ctrl_c_cancels_a_stdio_step_and_ends_the_stream(tmp_path: Path) -> None:
    body = 'step("w", "wait-cancel", runner="py-all")\nstep("h", "hang", runner="py-all")'
    root = write_pipeline(tmp_path / "p", body)
    trace = RunTrace(tmp_path)
    proc = _start(root, {**stdio_env("py-all", extra={"HM_KILL_GRACE_SECONDS": "1"}), **trace.env})
    try:
        seen = _wait_for(proc, b'"line":"started"')
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        evs = events((seen + out).decode())
        assert proc.returncode == 130, err.decode()
        done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
        assert done["w"]["status"] == "cancelled"
        assert evs[-1]["kind"] == "build_finished" and evs[-1]["status"] == "cancelled"
        assert b"Traceback" not in err
        trace.assert_clean()
    finally:
        proc.kill()
        trace.kill_leftovers()


def test_sigkill_of_hm_ends_a_plugin_that_ignores_its_stdin_and_sigterm(tmp_path: Path) -> None:
    # The hang fixture never reads stdin again once a step started, and ignores
    # SIGTERM: only hm-guard's watcher, seeing hm's lifeline close, can end it.
    root = write_pipeline(tmp_path / "p", 'step("h", "x", runner="hang")')
    trace = RunTrace(tmp_path)
    proc = _start(root, {**stdio_env("hang"), **trace.env})
    try:
        _wait_for(proc, b'"kind":"step_started"')
        time.sleep(0.5)  # inside execute_step
        proc.kill()
        proc.wait(timeout=10)
        trace.assert_clean()
    finally:
        proc.kill()
        proc.communicate()
        trace.kill_leftovers()
