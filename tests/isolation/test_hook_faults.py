"""Hooks that hang or crash: a hung after hook starves no other hook, a before
hook that crashes or hangs fails closed with its name and cause, and hm always
ends (in process and isolated)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import fixture_path, run_hm
from iso_helpers import RunTrace, events, hm_env


def project(root: Path) -> Path:
    (root / ".hm").mkdir(parents=True, exist_ok=True)
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n@pipeline('t')\ndef p():\n"
        "    a = step('a', 'echo a')\n    step('b', 'echo b', builds_in=a)\n"
    )
    return root


def run(tmp_path: Path, isolate: list[str], plugins: list[str], env: dict[str, str]):
    trace = RunTrace(tmp_path)
    started = time.monotonic()
    result = run_hm(
        "run", "--format", "json", *isolate, cwd=project(tmp_path / "p"), env={**hm_env(plugins), **trace.env, **env}
    )
    return result, events(result.stdout), time.monotonic() - started, trace


@pytest.mark.parametrize("isolate", [[], ["--isolate"]], ids=["in-process", "isolated"])
def test_a_hung_after_hook_starves_no_other_hook(isolate: list[str], tmp_path: Path) -> None:
    record = tmp_path / "record.log"
    result, evs, took, trace = run(
        tmp_path,
        isolate,
        ["recording-hook", "crashy-hook"],
        {"HM_CRASHY_HOOK": "after:hang:build_started", "HM_RECORDING_HOOK_FILE": str(record)},
    )
    assert result.returncode == 0, result.stderr
    kinds = [e["kind"] for e in evs if e["kind"] != "step_log"]
    seen = record.read_text().splitlines()
    assert [line.split()[1] for line in seen if line.startswith("before ")] == kinds
    assert [line.split()[1] for line in seen if line.startswith("after ")] == kinds
    warnings = [line for line in result.stderr.splitlines() if "crashy-hook" in line]
    assert warnings and "did not answer" in warnings[0] and "build_started" in warnings[0]
    assert took < 15
    trace.assert_clean()


@pytest.mark.parametrize(
    ("spec", "cause", "isolate"),
    [
        ("before:segv:step_started", "crashed with SIGSEGV", ["--isolate"]),
        ("before:hang:step_started", "did not answer", ["--isolate"]),
        # in process a crash takes hm with it (test_step_crashes); a hang does not
        ("before:hang:step_started", "did not answer", []),
    ],
    ids=["isolated-crash", "isolated-hang", "in-process-hang"],
)
def test_a_before_hook_that_crashes_or_hangs_fails_closed(
    spec: str, cause: str, isolate: list[str], tmp_path: Path
) -> None:
    result, evs, took, trace = run(tmp_path, isolate, ["crashy-hook"], {"HM_CRASHY_HOOK": spec})
    assert result.returncode == 6, result.stderr
    last = evs[-1]
    assert last["kind"] == "build_finished" and last["status"] == "aborted"
    assert "crashy-hook" in last["message"] and "fail closed" in last["message"] and cause in last["message"]
    done = {e["step_key"]: e["status"] for e in evs if e["kind"] == "step_finished"}
    assert done == {"a": "skipped", "b": "skipped"}  # the gate held: no step ran
    assert took < 15
    trace.assert_clean()


def test_a_crash_in_an_isolated_hook_is_named_with_its_path(tmp_path: Path) -> None:
    # build_finished: the last event, so no other call of the plugin shares the dying worker
    spec = {"HM_CRASHY_HOOK": "after:abort:build_finished"}
    result, _evs, _, trace = run(tmp_path, ["--isolate"], ["crashy-hook"], spec)
    assert result.returncode == 0, result.stderr  # an after hook only observes
    path = str(fixture_path("crashy-hook"))
    assert f"hook crashy-hook ({path}): build_finished: plugin crashy-hook ({path}): crashed with SIGABRT in " in (
        result.stderr
    )
    trace.assert_clean()
