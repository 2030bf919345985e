"""A runner that answers garbage fails its step with a message naming it; hm survives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fixture_path, run_hm


def test_malformed_step_result_fails_the_step_naming_the_plugin(tmp_path: Path) -> None:
    ir = tmp_path / "p.json"
    ir.write_text(
        json.dumps(
            {
                "version": "0",
                "slug": "bad",
                "steps": [
                    {"kind": "command", "key": "broken", "cmd": "x", "runner": "bad-result"},
                    {"kind": "command", "key": "after", "cmd": "x", "runner": "bad-result", "builds_in": "broken"},
                ],
            }
        )
    )
    env = {"HM_PLUGIN_PATH": str(fixture_path("bad-result-runner"))}
    result = run_hm("run", "--file", str(ir), "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 5
    events = [json.loads(line) for line in result.stdout.splitlines()]
    finished = {e["step_key"]: e for e in events if e["kind"] == "step_finished"}
    assert finished["broken"]["status"] == "error"
    assert "bad-result-runner" in finished["broken"]["message"]
    assert "malformed StepResult" in finished["broken"]["message"]
    assert finished["after"]["status"] == "skipped"
    assert events[-1]["kind"] == "build_finished" and events[-1]["exit_code"] == 5
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("isolate", [[], ["--isolate"]], ids=["in-process", "isolated"])
def test_a_success_with_no_output_says_the_plugin_returned_nothing(tmp_path: Path, isolate: list[str]) -> None:
    # It used to read "Input data was truncated", msgspec's words for empty input.
    ir = tmp_path / "p.json"
    step = {"kind": "command", "key": "hollow", "cmd": "empty", "runner": "bad-result"}
    ir.write_text(json.dumps({"version": "0", "slug": "bad", "steps": [step]}))
    env = {"HM_PLUGIN_PATH": str(fixture_path("bad-result-runner"))}
    result = run_hm("run", "--file", str(ir), "--format", "json", *isolate, cwd=tmp_path, env=env)
    assert result.returncode == 5
    events = [json.loads(line) for line in result.stdout.splitlines()]
    (done,) = [e for e in events if e["kind"] == "step_finished"]
    assert done["status"] == "error"
    assert "execute_step returned HM_OK with no output (a StepResult was expected)" in done["message"]
    assert "bad-result-runner" in done["message"]
    assert "truncated" not in done["message"]
