"""A step's output reaches ``--format json`` in the order the runner made it, and
while the step still runs: in process hm gathers emit_step_log calls in C before
Python sees them, a worker batches them into frames; neither may reorder stdout,
stderr, write_stdout and plugin events, or hold a quiet step's line back."""

from __future__ import annotations

import json
import select
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from run_helpers import Project, finished, popen_hm, stop_process

ORDER = ["log-order-runner"]
MODES = [pytest.param("in-process", id="in-process"), pytest.param("isolated", id="isolated")]


def _isolation(mode: str) -> dict[str, str]:
    return {"HM_ISOLATE": "all"} if mode == "isolated" else {"HM_ISOLATE": "none"}


@pytest.mark.parametrize("mode", MODES)
def test_stdout_stderr_writes_and_events_keep_the_order_the_runner_made_them(tmp_path: Path, mode: str) -> None:
    count = 300
    project = Project(tmp_path).pipeline(f'step("mix", "mix {count}", runner="logorder")')
    result, evs = project.run_json(plugins=ORDER, env=_isolation(mode))
    assert result.returncode == 0, result.stderr
    seen: list[tuple[str, Any]] = []
    for e in evs:
        if e["kind"] == "step_log" and e["step_key"] == "mix":
            seen.append((e["stream"], e["line"]))
        elif e["kind"] == "plugin_event" and e["name"] == "tick":
            seen.append(("event", e["data"]["i"]))
    expected: list[tuple[str, Any]] = []
    for i in range(count):
        expected += [("stdout", f"out {i}"), ("stderr", f"err {i}"), ("stdout", f"direct {i}"), ("event", i)]
    assert seen == expected
    kinds = [e["kind"] for e in evs if e.get("step_key") == "mix"]
    assert kinds[-1] == "step_finished", "every line and event precedes the step's end"


@pytest.mark.parametrize("mode", MODES)
def test_a_line_reaches_the_output_while_its_step_still_runs(tmp_path: Path, mode: str) -> None:
    Project(tmp_path).pipeline('step("quiet", "wait", runner="logorder")')
    proc = popen_hm(tmp_path, "--format", "json", plugins=ORDER, env=_isolation(mode))
    try:
        assert proc.stdout is not None
        seen: list[dict[str, Any]] = []
        buffered = b""
        deadline = time.monotonic() + 30
        # The step only ends when hm cancels it: a line held back until the call
        # returns would never show up here.
        while not any(e["kind"] == "step_log" and e["line"] == "waiting" for e in seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no step_log while the step ran; events so far: {[e['kind'] for e in seen]}"
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = proc.stdout.read1(65536)  # type: ignore[attr-defined]
            assert chunk, "hm closed its output before the step's line"
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            seen += [json.loads(line) for line in lines if line.strip()]
        assert not any(e["kind"] == "step_finished" for e in seen)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        evs = seen + [json.loads(line) for line in (buffered + rest).splitlines() if line.strip()]
        assert proc.returncode == 130
        assert finished(evs)["quiet"]["status"] == "cancelled"
        assert evs[-1]["kind"] == "build_finished"
    finally:
        stop_process(proc)


@pytest.mark.parametrize("mode", MODES)
def test_a_hook_subscribed_to_step_log_gets_every_line_in_order(tmp_path: Path, mode: str) -> None:
    # Lines are gathered in C (in process) or in frames (worker) before Python
    # sees them; a hook that asked for step_log must still get each one, once,
    # in the order --format json shows them.
    record = tmp_path / "lines.txt"
    count = 2000
    project = Project(tmp_path / "p").pipeline(
        f"""
        step("mix", "mix {count // 4}", runner="logorder")
        step("sh", "i=0; while [ $i -lt {count} ]; do echo line $i; i=$((i+1)); done")
        """
    )
    env = {**_isolation(mode), "HM_LOG_HOOK_FILE": str(record)}
    result, evs = project.run_json(plugins=[*ORDER, "log-hook"], env=env)
    assert result.returncode == 0, result.stderr
    shown = [f"{e['step_key']} {e['stream']} {e['line']}" for e in evs if e["kind"] == "step_log"]
    heard = record.read_text().splitlines()
    assert len(shown) == count // 4 * 3 + count
    for key in ("mix", "sh"):
        assert [h for h in heard if h.startswith(f"{key} ")] == [s for s in shown if s.startswith(f"{key} ")]
