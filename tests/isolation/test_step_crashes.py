"""A runner that crashes, exits or hangs, run isolated (``--isolate``) and in
process, through the real ``hm run``: hm survives an isolated crash and says
which plugin, call, step and signal; the other chains finish; the JSON stream
ends with ``build_finished``; nothing of the run is left. In process, hm cannot
survive, but it names the plugin and never exits 0."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import fixture_path, run_hm
from iso_helpers import RunTrace, events, hm_env

CRASHY = ["crashy-runner"]
#: cmd of the crashy step -> how the message says it ended
ENDINGS = {
    "segv": "crashed with SIGSEGV",
    "abort": "crashed with SIGABRT",
    "exit0": "called exit(0)",
    "exit3": "called exit(3)",
    "thread-segv": "crashed with SIGSEGV",
}


def write_pipeline(root: Path, body: str) -> Path:
    (root / ".hm").mkdir(parents=True, exist_ok=True)
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step, wait\n\n\n@pipeline('t')\ndef p():\n"
        + "".join(f"    {line}\n" for line in body.strip().splitlines())
    )
    return root


def hm_run(root: Path, *args: str, trace: RunTrace, plugins: list[str], env: dict[str, str] | None = None):
    result = run_hm("run", "--format", "json", *args, cwd=root, env={**hm_env(plugins, env), **trace.env})
    return result, events(result.stdout)


@pytest.mark.parametrize("cmd", list(ENDINGS))
def test_an_isolated_crash_fails_its_step_and_the_other_chain_finishes(cmd: str, tmp_path: Path) -> None:
    root = write_pipeline(
        tmp_path / "p", f'step("slow", "sleep 1; echo finished")\nstep("bad", {cmd!r}, runner="crashy")'
    )
    trace = RunTrace(tmp_path)
    result, evs = hm_run(root, "--isolate", "--keep-going", trace=trace, plugins=CRASHY)
    assert result.returncode == 5, result.stderr
    done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
    assert done["slow"]["status"] == "succeeded"
    assert [e["line"] for e in evs if e["kind"] == "step_log" and e["step_key"] == "slow"] == ["finished"]
    bad = done["bad"]
    assert bad["status"] == "error"
    path = str(fixture_path("crashy-runner"))
    assert f"plugin crashy-runner ({path}): {ENDINGS[cmd]} in execute_step of step 'bad'" in bad["message"]
    assert evs[-1]["kind"] == "build_finished"
    assert evs[-1]["exit_code"] == 5 and evs[-1]["status"] == "error"
    assert "Traceback" not in result.stderr
    trace.assert_clean()


def test_a_crash_fails_fast_by_default_and_the_next_call_gets_a_fresh_worker(tmp_path: Path) -> None:
    root = write_pipeline(
        tmp_path / "p",
        'a = step("first", "segv", runner="crashy")\n'
        "wait(continue_on_failure=True)\n"
        'step("second", "ok", runner="crashy")',
    )
    trace = RunTrace(tmp_path)
    result, evs = hm_run(root, "--isolate", trace=trace, plugins=CRASHY)
    done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
    assert done["first"]["status"] == "error"
    assert done["second"]["status"] == "succeeded"  # a new worker served it
    assert result.returncode == 5
    trace.assert_clean()


@pytest.mark.parametrize("cmd", ["segv", "abort", "exit0", "exit3"])
def test_an_in_process_crash_is_named_ends_the_stream_and_never_exits_0(cmd: str, tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", f'step("slow", "sleep 30")\nstep("bad", {cmd!r}, runner="crashy")')
    trace = RunTrace(tmp_path)
    result, evs = hm_run(root, trace=trace, plugins=CRASHY)
    assert result.returncode != 0
    path = str(fixture_path("crashy-runner"))
    said = f"hm: plugin crashy-runner ({path}) {ENDINGS[cmd]} in execute_step of step bad; run with --isolate"
    assert said in result.stderr
    last = evs[-1]
    assert last["kind"] == "build_finished" and last["status"] == "error"
    assert ENDINGS[cmd] in last["message"]
    if cmd.startswith("exit"):
        assert result.returncode == last["exit_code"] == 5
    # the shell step's supervisor ends `sleep 30`; the reaper removes the run directory
    trace.assert_clean()


def test_an_isolated_hang_is_timed_out_and_its_worker_stopped(tmp_path: Path) -> None:
    root = write_pipeline(
        tmp_path / "p",
        'step("stuck", "hang", runner="crashy", timeout_seconds=1)\n'
        'step("busy", "spin", runner="crashy", timeout_seconds=1)\n'
        'step("fine", "echo fine")',
    )
    trace = RunTrace(tmp_path)
    started = time.monotonic()
    result, evs = hm_run(
        root, "--isolate", "--keep-going", trace=trace, plugins=CRASHY, env={"HM_KILL_GRACE_SECONDS": "1"}
    )
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
    for key in ("stuck", "busy"):
        assert done[key]["status"] == "timed_out"
        assert done[key]["exit_code"] == 124
        assert "did not stop execute_step" in done[key]["message"]
    assert done["fine"]["status"] == "succeeded"
    assert evs[-1]["kind"] == "build_finished"
    assert took < 20
    trace.assert_clean()


def test_an_in_process_hang_is_abandoned_and_hm_still_exits(tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("stuck", "hang", runner="crashy", timeout_seconds=1)')
    trace = RunTrace(tmp_path)
    started = time.monotonic()
    result, evs = hm_run(root, trace=trace, plugins=CRASHY, env={"HM_KILL_GRACE_SECONDS": "1"})
    assert time.monotonic() - started < 20  # before, the abandoned thread kept hm alive forever
    assert result.returncode == 1
    (done,) = [e for e in evs if e["kind"] == "step_finished"]
    assert done["status"] == "timed_out" and "abandoned" in done["message"]
    assert evs[-1]["kind"] == "build_finished"
    trace.assert_clean()


def test_a_log_flood_through_a_worker_arrives_whole_and_in_order(tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("flood", "flood 200000", runner="crashy")')
    trace = RunTrace(tmp_path)
    result, evs = hm_run(root, "--isolate", trace=trace, plugins=CRASHY)
    assert result.returncode == 0, result.stderr
    lines = [e["line"] for e in evs if e["kind"] == "step_log"]
    assert len(lines) == 200001
    assert lines[:-1] == ["x" * 99] * 200000 and lines[-1] == "crashy-runner ran its step"
    trace.assert_clean()


def test_a_plugin_that_prints_on_stdout_cannot_garble_the_protocol_or_the_events(tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("chatty", "print", runner="crashy")')
    trace = RunTrace(tmp_path)
    result, _evs = hm_run(root, "--isolate", trace=trace, plugins=CRASHY)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        json.loads(line)
    assert "a stray line on stdout from crashy-runner" in result.stderr
    assert "a stray line on stderr from crashy-runner" in result.stderr
    trace.assert_clean()


@pytest.mark.parametrize("isolate", [[], ["--isolate"]], ids=["in-process", "isolated"])
def test_an_exit_code_outside_0_255_is_a_plugin_fault(isolate: list[str], tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("odd", "code 256", runner="crashy")')
    trace = RunTrace(tmp_path)
    result, evs = hm_run(root, *isolate, trace=trace, plugins=CRASHY)
    assert result.returncode == 5
    (done,) = [e for e in evs if e["kind"] == "step_finished"]
    assert done["status"] == "error" and "exit code 256, outside 0-255" in done["message"]
