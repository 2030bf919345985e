"""The host API as a step executor sees it during ``hm run`` (host-fn-probe's
``probe`` runner), the build/step KV scopes, ``--dry-run``, and the published
JSON Schema of the events checked against real output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from run_helpers import ROOT, Project, by_key, finished, logs, no_traceback

from hm.run.archive import WorkspaceArchive
from hm.run.events import EventBus
from hm.run.services import RunServices
from hm.runtime.calls import CallContext
from hm.runtime.host_services import HostStatus
from hm_plugin_sdk.abi import KvScope

PROBE = ["host-fn-probe"]
HOST_FN_LINE = re.compile(r"host_fn (\S+) (-?\d+) (ok|FAIL)")
IN_STEP_PROBES = {
    "log",
    "kv_set",
    "kv_get",
    "kv_get_missing",
    "kv_set_build",
    "kv_get_build",
    "kv_set_step",
    "kv_get_step",
    "emit_event",
    "emit_step_log",
    "should_cancel",
    "write_stdout",
    "write_stderr",
    "archive_total_size",
    "archive_read",
    "fs_read_config",
    "fs_read_config_escape",
    "stale_call",
    "free",
}


def probe_report(lines: list[str]) -> dict[str, str]:
    report = {}
    for line in lines:
        match = HOST_FN_LINE.fullmatch(line)
        if match:
            report[match[1]] = match[3]
    return report


def test_every_host_function_behaves_inside_a_step(tmp_path: Path) -> None:
    (tmp_path / "project-file.txt").write_text("in the archive\n")
    project = Project(tmp_path).pipeline('step("probe", "unused", runner="probe")')
    (tmp_path / ".hm" / "probe.txt").write_text("hello-config\n")
    result, evs = project.run_json(plugins=PROBE)
    assert result.returncode == 0, result.stdout + result.stderr
    out = logs(evs, "probe", "stdout")
    report = probe_report(out)
    assert IN_STEP_PROBES <= set(report), IN_STEP_PROBES - set(report)
    failed = [name for name, verdict in report.items() if verdict != "ok"]
    assert not failed, [line for line in out if "FAIL" in line]
    assert "config probe.txt hello-config" in out
    assert logs(evs, "probe", "stderr") == ["probe: emit_step_log"]
    done = finished(evs)["probe"]
    assert done["status"] == "succeeded"
    assert done["message"] == f"host-fn-probe: {len(report)}/{len(report)} host functions behaved"
    (event,) = [e for e in evs if e["kind"] == "plugin_event"]
    assert event["plugin"] == "host-fn-probe" and event["name"] == "probe"
    assert event["data"] == {"ok": True} and event["step_key"] == "probe"


def test_host_calls_of_parallel_steps_are_attributed_to_their_own_step(tmp_path: Path) -> None:
    keys = [f"p{i}" for i in range(6)]
    body = "\n".join(f'step("{k}", "x", runner="probe")' for k in keys)
    project = Project(tmp_path).pipeline(body)
    result, evs = project.run_json("-j", "6", plugins=PROBE)
    assert result.returncode == 0, result.stdout + result.stderr
    for key in keys:
        report = probe_report(logs(evs, key, "stdout"))
        assert IN_STEP_PROBES <= set(report), key
        assert set(report.values()) == {"ok"}, key
    assert sorted(e["step_key"] for e in evs if e["kind"] == "plugin_event") == keys


def test_probe_and_shell_steps_mix_in_one_pipeline(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        a = step("make", "echo made > m.txt")
        step("probe", "x", runner="probe", builds_in=a)
        step("other", "cat m.txt", builds_in=a)
        """
    )
    result, evs = project.run_json(plugins=PROBE)
    assert result.returncode == 0, result.stdout + result.stderr
    started = {k: v[0] for k, v in by_key(evs, "step_started").items()}
    assert (started["probe"]["runner"], started["probe"]["plugin"]) == ("probe", "host-fn-probe")
    assert (started["make"]["runner"], started["make"]["plugin"]) == ("shell", "shell")
    assert logs(evs, "other") == ["made"]


def test_a_plugin_event_is_shown_in_the_human_output(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("probe", "x", runner="probe")')
    result = project.run(plugins=PROBE)
    assert result.returncode == 0, result.stderr
    assert "host-fn-probe:probe" in result.stderr
    no_traceback(result)


# -- KV scopes (direct: no fixture reports what another step stored) -------------------


def _services(tmp_path: Path, run_id: str) -> RunServices:
    scratch = tmp_path / f"scratch-{run_id}"
    scratch.mkdir()
    return RunServices(
        run_id=run_id, bus=EventBus(), project_root=tmp_path, archive=WorkspaceArchive(tmp_path, scratch)
    )


def _ctx(services: RunServices, plugin: str, step: str | None) -> CallContext:
    return CallContext(plugin, f"/plugins/{plugin}.so", "execute_step", services, step)


def test_kv_build_and_step_scopes_are_isolated_per_run_step_and_plugin(tmp_path: Path) -> None:
    run1 = _services(tmp_path, "run1")
    a, b = _ctx(run1, "p", "a"), _ctx(run1, "p", "b")
    other_plugin = _ctx(run1, "q", "a")
    run1.kv_set(a, KvScope.STEP, b"k", b"step-a")
    run1.kv_set(a, KvScope.BUILD, b"k", b"build")
    run1.kv_set(a, KvScope.PLUGIN, b"k", b"persistent")
    assert run1.kv_get(a, KvScope.STEP, b"k") == b"step-a"
    assert run1.kv_get(b, KvScope.STEP, b"k") is None, "a step sees another step's STEP scope"
    assert run1.kv_get(b, KvScope.BUILD, b"k") == b"build", "BUILD scope is shared by the run's steps"
    assert run1.kv_get(other_plugin, KvScope.BUILD, b"k") is None, "BUILD scope leaks across plugins"
    assert run1.kv_get(other_plugin, KvScope.PLUGIN, b"k") is None, "PLUGIN scope leaks across plugins"

    run2 = _services(tmp_path, "run2")
    a2 = _ctx(run2, "p", "a")
    assert run2.kv_get(a2, KvScope.BUILD, b"k") is None, "BUILD scope outlived its run"
    assert run2.kv_get(a2, KvScope.STEP, b"k") is None, "STEP scope outlived its run"
    assert run2.kv_get(a2, KvScope.PLUGIN, b"k") == b"persistent", "PLUGIN scope did not persist"

    # A call that serves no step (a hook) has no STEP scope.
    with pytest.raises(HostStatus):
        run1.kv_set(_ctx(run1, "p", None), KvScope.STEP, b"k", b"v")
    run1.archive.close()
    run2.archive.close()


# -- --dry-run -----------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    project = Project(tmp_path / "p").pipeline(
        f"""
        a = step("compile", "touch {marker}")
        step("test", "touch {marker}", builds_in=a)
        step("words", "one two", runner="freestyle")
        wait(continue_on_failure=True)
        step("report", "touch {marker}", timeout_seconds=5)
        """
    )
    record = tmp_path / "hook.log"
    result = project.run(
        "--dry-run", plugins=["freestyle-runner", "recording-hook"], env={"HM_RECORDING_HOOK_FILE": str(record)}
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert not marker.exists()
    assert not record.exists(), "hooks were called on a dry run"
    assert "chain 'compile'" in out and "chain 'words'" in out and "chain 'report'" in out
    assert re.search(r"compile .*runner: shell", out), out
    assert re.search(r"test .*runner: shell.*builds in: compile", out), out
    assert re.search(r"words .*runner: freestyle", out), out
    assert "wait" in out and "stage 2" in out
    no_traceback(result)


def test_dry_run_still_validates(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("s", "true", runner="nope")')
    result = project.run("--dry-run")
    assert result.returncode == 3
    assert "nope" in result.stderr


# -- the events JSON Schema ------------------------------------------------------------


def test_real_json_output_validates_against_the_published_schema(tmp_path: Path) -> None:
    schema_path = ROOT / "hm" / "schemas" / "events.schema.json"
    if not schema_path.exists():
        pytest.skip(f"{schema_path} does not exist yet (another engineer is adding it)")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    project = Project(tmp_path).pipeline(
        r"""
        a = step("ok", "echo out; echo err >&2; printf '\\377 bytes\\n'")
        step("probe", "x", runner="probe", builds_in=a)
        step("fails", "exit 7")
        step("after-fail", "true", builds_in="fails")
        step("slow", "sleep 5", timeout_seconds=0.3)
        wait(continue_on_failure=True)
        step("last", "true")
        """
    )
    result, evs = project.run_json("--keep-going", plugins=PROBE)
    assert result.returncode == 1, result.stderr
    kinds = {e["kind"] for e in evs}
    assert {
        "build_started",
        "step_queued",
        "step_started",
        "step_log",
        "step_finished",
        "chain_failed",
        "plugin_event",
        "build_finished",
    } <= kinds
    statuses = {e["status"] for e in finished(evs).values()}
    assert {"succeeded", "failed", "skipped", "timed_out"} <= statuses
    for number, event in enumerate(evs, 1):
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, f"event {number} {event} does not match the schema: {errors[0].message}"
