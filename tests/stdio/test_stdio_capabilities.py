"""Every capability and every host function through the real ``hm``, for the
Python fixture (written with hm_plugin_sdk.stdio) and the Node one (no helper):
what a user sees in the event stream, on the terminal and in the hook's file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_hm
from stdio_helpers import RunTrace, events, stdio_env, write_pipeline

PLUGINS = ["py-all", "node-all"]


@pytest.mark.parametrize("name", PLUGINS)
def test_a_runner_reaches_every_host_function_of_a_step(name: str, tmp_path: Path) -> None:
    root = write_pipeline(
        tmp_path / "p",
        f"""
step("echo", "echo hello there", runner={name!r})
step("err", "stderr to stderr", runner={name!r})
step("kv", "kv v1", runner={name!r})
step("event", "event", runner={name!r})
step("config", "config {name}.txt", runner={name!r})
step("log", "log a warning line", runner={name!r})
step("base", "echo data > f.txt")
step("archive", "archive", runner={name!r}, builds_in="base")
""",
    )
    (root / ".hm" / f"{name}.txt").write_text("cfg-value\n")
    hook_file = tmp_path / "hook.txt"
    trace = RunTrace(tmp_path)
    env = {**stdio_env(name, extra={"HM_FIXTURE_HOOK_FILE": str(hook_file)}), **trace.env}
    result = run_hm("run", "--format", "json", cwd=root, env=env)
    assert result.returncode == 0, result.stderr
    evs = events(result.stdout)
    lines = {(e["step_key"], e["stream"]): e["line"] for e in evs if e["kind"] == "step_log"}
    assert lines[("echo", "stdout")] == "hello there"
    assert lines[("err", "stderr")] == "to stderr"
    absent = "None" if name == "py-all" else "ERR_NOT_FOUND"
    assert lines[("kv", "stdout")] == f"kv v1 {absent}"
    assert lines[("config", "stdout")] == "config cfg-value"
    assert lines[("archive", "stdout")].startswith("archive ") and lines[("archive", "stdout")].endswith("read 512")
    (event,) = [e for e in evs if e["kind"] == "plugin_event"]
    assert event["plugin"] == name and event["name"] == f"{name}.seen" and event["step_key"] == "event"
    started = {e["step_key"]: e for e in evs if e["kind"] == "step_started"}
    assert started["echo"]["plugin"] == name
    assert all(e["status"] == "succeeded" for e in evs if e["kind"] == "step_finished")
    assert f"{name} [log]: a warning line" in result.stderr
    assert evs[-1]["kind"] == "build_finished" and evs[-1]["exit_code"] == 0
    assert "build_finished" in hook_file.read_text()
    trace.assert_clean()


@pytest.mark.parametrize("name", PLUGINS)
def test_a_subcommand_writes_to_the_terminal_and_keeps_plugin_state(name: str, tmp_path: Path) -> None:
    trace = RunTrace(tmp_path)
    env = {**stdio_env(name), **trace.env}
    first = run_hm(name, "bob", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("hello bob count=1\n")
    assert "to stderr" in first.stderr
    second = run_hm(name, "bob", env=env, cwd=tmp_path)
    assert second.stdout.startswith("hello bob count=2\n")
    missing = run_hm(name, env=env, cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    trace.assert_clean()


@pytest.mark.parametrize("name", PLUGINS)
def test_a_failure_is_the_plugins_error_and_a_cancel_reaches_it(name: str, tmp_path: Path) -> None:
    root = write_pipeline(
        tmp_path / "p",
        f"""
step("fail", "fail now", runner={name!r})
step("wait", "wait-cancel", runner={name!r}, timeout_seconds=1)
""",
    )
    trace = RunTrace(tmp_path)
    result = run_hm("run", "--format", "json", "--keep-going", cwd=root, env={**stdio_env(name), **trace.env})
    assert result.returncode == 5, result.stderr
    evs = events(result.stdout)
    done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
    assert done["fail"]["status"] == "error"
    assert f"asked to fail: now [{name.replace('-', '_')}_failed]" in done["fail"]["message"]
    assert done["wait"]["status"] == "timed_out"
    assert evs[-1]["kind"] == "build_finished"
    trace.assert_clean()


def test_hm_plugin_info_json_of_both() -> None:
    result = run_hm("plugin", "list", "--format", "json", env=stdio_env(*PLUGINS))
    doc = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    for name in PLUGINS:
        kinds = [c["kind"] for c in doc[name]["manifest"]["capabilities"]]
        assert kinds == ["step_executor", "lifecycle_hook", "subcommand"]
        assert doc[name]["kind"] == "stdio" and doc[name]["status"] == "ok"
