"""Stdio plugins that misbehave (fixtures/stdio/bad): each fault is one line
naming the plugin and its descriptor, the rest of the run goes on, the JSON
stream ends with ``build_finished``, the exit code is truthful, and nothing of
the run is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_hm
from stdio_helpers import RunTrace, descriptor, events, stdio_env, write_pipeline

#: fixture -> what `hm plugin list` says about it
AT_START = {
    "exit-on-start": "exited with status 3 while starting (its last output: misbehave: cannot start, no configuration)",
    "garbage-on-start": "broke the protocol while starting: a line on stdout that is not JSON: "
    "'Hello from a plugin that prints on stdout'",
    "hang-on-start": "did not answer initialize within 5 s and was stopped",
    "hang-on-manifest": "did not answer manifest within 5 s; its process was stopped",
    "wrong-version": "speaks stdio protocol 2.0 while this hm speaks 1.x",
    "future": "its descriptor says it speaks stdio protocol 2.0, this hm speaks 1.x",
    "missing-command": "its command './does-not-exist' does not exist",
    "not-executable": "its command './not-executable.sh' is not executable",
    "not-on-path": "its command 'hm-no-such-interpreter' is not on PATH",
}


def test_plugins_that_cannot_start_are_listed_broken_with_one_line_each(tmp_path: Path) -> None:
    trace = RunTrace(tmp_path)
    result = run_hm("plugin", "list", env={**stdio_env(*AT_START), **trace.env})
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    for name, what in AT_START.items():
        (line,) = [w for w in warnings if f"/{name}.plugin.toml" in w]
        assert line.startswith(f"warning: plugin {name} ({descriptor(name)}): {what}"), line
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert {r[0] for r in rows if "broken" in r} >= set(AT_START) - {"garbage-on-start"}
    trace.assert_clean()


#: step -> (fixture, cmd, what its step_finished message says)
IN_A_CALL = {
    "segv": ("crash", "segv", "crashed with SIGSEGV in execute_step of step 'segv'"),
    "exit": (
        "crash",
        "exit3",
        "exited with status 3 in execute_step of step 'exit' (its last output: misbehave: giving up)",
    ),
    "garbage": (
        "garbage",
        "x",
        "was stopped by hm because it broke the stdio protocol (a line on stdout that is not JSON: "
        "'this is not JSON') in execute_step of step 'garbage'",
    ),
    "unknown": (
        "unknown-id",
        "x",
        "was stopped by hm because it broke the stdio protocol (an answer to id 100",  # 1000 past the call's id
    ),
    "huge": ("huge-line", "x", "broke the stdio protocol (a line longer than 67108864 bytes (64 MiB) on stdout)"),
}


def test_faults_in_a_call_fail_that_step_only(tmp_path: Path) -> None:
    body = 'step("slow", "sleep 1; echo finished")\n' + "".join(
        f"step({key!r}, {cmd!r}, runner={fixture!r})\n" for key, (fixture, cmd, _) in IN_A_CALL.items()
    )
    body += 'step("b64", "x", runner="bad-base64")\nstep("again", "ok", runner="crash")\n'
    root = write_pipeline(tmp_path / "p", body)
    trace = RunTrace(tmp_path)
    plugins = sorted({f for f, _, _ in IN_A_CALL.values()} | {"bad-base64"})
    result = run_hm("run", "--format", "json", "--keep-going", cwd=root, env={**stdio_env(*plugins), **trace.env})
    assert result.returncode == 5, result.stderr
    evs = events(result.stdout)
    done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
    assert done["slow"]["status"] == "succeeded"
    for key, (fixture, _, what) in IN_A_CALL.items():
        assert done[key]["status"] == "error", key
        assert done[key]["message"].startswith(f"plugin {fixture} ({descriptor(fixture)}): "), key
        assert what in done[key]["message"], key
    # invalid base64 refuses that one notification and request, and the step goes on
    assert done["b64"]["status"] == "succeeded"
    b64_lines = [e["line"] for e in evs if e["kind"] == "step_log" and e["step_key"] == "b64"]
    assert b64_lines == ["kv_set answered -32602: 'key' is not valid base64: '%%%'"]
    label = f"bad-base64 ({descriptor('bad-base64')})"
    assert f"{label}: its emit_step_log notification was refused: 'data' is not valid base64: 'not base64!'" in (
        result.stderr
    )
    # a plugin process that died is replaced for the next call
    assert done["again"]["status"] == "succeeded"
    assert evs[-1]["kind"] == "build_finished" and evs[-1]["exit_code"] == 5
    assert "Traceback" not in result.stderr
    trace.assert_clean()


@pytest.mark.parametrize("fmt", ["json", "human"])
def test_a_plugin_that_never_answers_is_stopped_after_the_grace_period(fmt: str, tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("h", "x", runner="hang", timeout_seconds=1)\nstep("s", "echo ok")')
    trace = RunTrace(tmp_path)
    env = {**stdio_env("hang", extra={"HM_KILL_GRACE_SECONDS": "1"}), **trace.env}
    result = run_hm("run", "--format", fmt, "--keep-going", cwd=root, env=env)
    assert result.returncode == 1, result.stderr
    text = result.stdout + result.stderr
    assert "did not stop execute_step of step 'h' within 1 s of being asked to; its process was stopped" in text
    if fmt == "json":
        evs = events(result.stdout)
        done = {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}
        assert done["h"]["status"] == "timed_out" and done["s"]["status"] == "succeeded"
        assert evs[-1]["kind"] == "build_finished"
    trace.assert_clean()


def test_a_stray_print_goes_to_the_log_not_the_protocol(tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("p", "print", runner="py-all")')
    result = run_hm("run", "--format", "json", cwd=root, env=stdio_env("py-all"))
    assert result.returncode == 0, result.stderr
    assert [e["line"] for e in events(result.stdout) if e["kind"] == "step_log"] == ["printed"]
    assert "py-all: a stray print from py-all" in result.stderr


@pytest.mark.parametrize(
    ("spec", "cause"),
    [("before:exit:step_started", "exited with status 3"), ("before:hang:step_started", "did not answer")],
    ids=["crash", "hang"],
)
def test_a_before_hook_that_crashes_or_hangs_fails_closed(spec: str, cause: str, tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'a = step("a", "echo a")\nstep("b", "echo b", builds_in=a)')
    trace = RunTrace(tmp_path)
    env = {**stdio_env("hooky", extra={"HM_STDIO_HOOK": spec, "HM_KILL_GRACE_SECONDS": "1"}), **trace.env}
    result = run_hm("run", "--format", "json", cwd=root, env=env)
    assert result.returncode == 6, result.stderr
    evs = events(result.stdout)
    last = evs[-1]
    assert last["kind"] == "build_finished" and last["status"] == "aborted"
    assert f"plugin hooky ({descriptor('hooky')}): {cause}" in last["message"]
    assert "fail closed" in last["message"] and cause in last["message"]
    assert {e["step_key"]: e["status"] for e in evs if e["kind"] == "step_finished"} == {"a": "skipped", "b": "skipped"}
    trace.assert_clean()


def test_an_after_hook_that_crashes_is_a_warning_and_the_run_succeeds(tmp_path: Path) -> None:
    root = write_pipeline(tmp_path / "p", 'step("a", "echo a")')
    trace = RunTrace(tmp_path)
    env = {**stdio_env("hooky", extra={"HM_STDIO_HOOK": "after:exit:build_finished"}), **trace.env}
    result = run_hm("run", "--format", "json", cwd=root, env=env)
    assert result.returncode == 0, result.stderr
    assert events(result.stdout)[-1]["kind"] == "build_finished"
    (line,) = [line for line in result.stderr.splitlines() if "hooky" in line and "exited with status 3" in line]
    assert str(descriptor("hooky")) in line
    trace.assert_clean()
