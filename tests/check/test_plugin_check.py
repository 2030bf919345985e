"""``hm plugin check PATH`` on real fixture plugins, as a user runs it.

Every check runs in a child process, so these tests also prove that a plugin that
crashes, panics or answers garbage fails a check while hm exits normally.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import SUFFIX, fixture_path, run_hm

FIXED_CHECKS = ["load", "header", "manifest"]
TAIL_CHECKS = ["free", "threads", "older-host", "host-1.0"]


@cache
def _check_json(fixture: str, env: tuple[tuple[str, str], ...] = ()) -> tuple[int, dict[str, Any], str]:
    """``(exit code, JSON report, stderr)``; each fixture is checked once per session."""
    result = run_hm("plugin", "check", str(fixture_path(fixture)), "--format", "json", env=dict(env))
    assert "Traceback" not in result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in doc["checks"]}


@pytest.mark.parametrize(
    ("fixture", "capability_checks"),
    [
        ("noop-executor", ["step_executor:noop", "lifecycle_hook:after"]),
        ("failing-subcommand", ["subcommand:fail"]),
        ("recording-hook", ["lifecycle_hook:before", "lifecycle_hook:after"]),
        ("freestyle-runner", ["step_executor:freestyle"]),
        ("newer-minor", ["step_executor:newer"]),
        ("rust-executor", ["step_executor:rust"]),
    ],
)
def test_conforming_plugins_pass_every_check(fixture: str, capability_checks: list[str]) -> None:
    code, doc, _ = _check_json(fixture)
    assert [c["name"] for c in doc["checks"]] == [*FIXED_CHECKS, *capability_checks, *TAIL_CHECKS]
    failed = [c for c in doc["checks"] if c["status"] != "passed"]
    assert failed == []
    assert doc["passed"] is True
    assert doc["plugin"] == fixture
    assert code == 0


def test_json_report_has_the_documented_shape() -> None:
    _, doc, _ = _check_json("noop-executor")
    assert set(doc) == {"path", "plugin", "passed", "checks"}
    assert doc["path"] == str(fixture_path("noop-executor"))
    for check in doc["checks"]:
        assert set(check) == {"name", "status", "detail"}
        assert check["status"] in {"passed", "failed", "skipped"}
        assert check["detail"]


def test_sample_calls_are_described_with_what_came_back() -> None:
    checks = _by_name(_check_json("failing-subcommand")[1])
    # The subcommand really ran, with the default of its --reason option.
    assert "`hm fail --reason it was told to`" in checks["subcommand:fail"]["detail"]
    assert "ExitInfo exit 7 (failing-subcommand failed: it was told to)" in checks["subcommand:fail"]["detail"]
    freestyle = _by_name(_check_json("freestyle-runner")[1])["step_executor:freestyle"]["detail"]
    assert "StepResult exit 1" in freestyle and "2 log lines" in freestyle
    newer = _by_name(_check_json("newer-minor")[1])
    assert "ABI 1.2" in newer["header"]["detail"]
    assert "struct_size 32" in newer["older-host"]["detail"]


def test_human_output_has_one_line_per_check_and_a_verdict() -> None:
    result = run_hm("plugin", "check", str(fixture_path("noop-executor")))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("Checking noop-executor 1.0.0")
    names = [*FIXED_CHECKS, "step_executor:noop", "lifecycle_hook:after", *TAIL_CHECKS]
    assert len(lines) == len(names) + 2
    for line, name in zip(lines[1:-1], names, strict=True):
        assert line.startswith(f"✓ {name}: "), line
    assert lines[-1] == "PASSED: all 9 checks passed"


def test_bad_abi_version_fails_at_header_and_skips_the_rest() -> None:
    code, doc, _ = _check_json("bad-abi-version")
    checks = _by_name(doc)
    assert checks["load"]["status"] == "passed"
    assert checks["header"]["status"] == "failed"
    assert "9999" in checks["header"]["detail"]
    assert "expected ABI 1.x" in checks["header"]["detail"]
    later = [c for c in doc["checks"] if c["name"] not in ("load", "header")]
    assert later and all(c["status"] == "skipped" for c in later)
    assert all("hm refuses its header" in c["detail"] for c in later)
    assert doc["passed"] is False
    assert code == 1


def test_small_vtable_fails_at_header() -> None:
    code, doc, _ = _check_json("broken-small-table")
    checks = _by_name(doc)
    assert checks["header"]["status"] == "failed"
    assert "struct_size 48" in checks["header"]["detail"]
    assert code == 1


def test_library_without_the_entry_symbol_fails_at_load() -> None:
    code, doc, _ = _check_json("broken-no-entry")
    load, *rest = doc["checks"]
    assert load["name"] == "load" and load["status"] == "failed"
    assert "hm_load_plugin" in load["detail"]
    assert all(c["status"] == "skipped" for c in rest)
    assert doc["plugin"] is None
    assert code == 1


def test_entry_that_returns_null_fails_at_load() -> None:
    code, doc, _ = _check_json("broken-entry-null")
    load = _by_name(doc)["load"]
    assert load["status"] == "failed"
    assert "returned NULL" in load["detail"]
    assert code == 1


def test_manifest_without_a_name_fails_at_manifest() -> None:
    code, doc, _ = _check_json("broken-manifest-no-name")
    checks = _by_name(doc)
    assert [checks[n]["status"] for n in FIXED_CHECKS] == ["passed", "passed", "failed"]
    assert "missing required field `name`" in checks["manifest"]["detail"]
    assert checks["free"]["status"] == "skipped"
    assert code == 1


def test_malformed_step_result_fails_the_executor_check_only() -> None:
    code, doc, _ = _check_json("bad-result-runner")
    checks = _by_name(doc)
    executor = checks["step_executor:bad-result"]
    assert executor["status"] == "failed"
    assert "malformed StepResult" in executor["detail"]
    assert "expected HM_OK with a StepResult or HM_ERR_FAILED with a PluginError" in executor["detail"]
    assert [c["name"] for c in doc["checks"] if c["status"] == "failed"] == ["step_executor:bad-result"]
    assert "left out" in checks["free"]["detail"]
    assert code == 1


def test_a_crash_is_a_failed_check_not_a_crashed_hm() -> None:
    code, doc, stderr = _check_json("broken-crash-on-manifest", (("HM_FIXTURE_CRASH", "1"),))
    checks = _by_name(doc)
    assert checks["load"]["status"] == "passed"
    assert checks["manifest"]["status"] == "failed"
    assert "crashed" in checks["manifest"]["detail"]
    assert "SIGABRT" in checks["manifest"]["detail"]
    assert checks["free"]["status"] == "skipped"
    assert code == 1
    assert stderr == ""


def test_rust_panic_fails_with_the_panic_message() -> None:
    code, doc, _ = _check_json("rust-panic")
    checks = _by_name(doc)
    for name in ("step_executor:panic", "subcommand:rust panic"):
        assert checks[name]["status"] == "failed"
        assert "deliberate panic for testing" in checks[name]["detail"]
        assert "panicked" in checks[name]["detail"]
    assert checks["manifest"]["status"] == "passed"
    assert code == 1


def test_missing_file_is_a_usage_error() -> None:
    result = run_hm("plugin", "check", "/nonexistent/plugin.so")
    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert result.stdout == ""


def test_a_relative_path_with_dot_slash_is_checked_where_it_is(tmp_path: Path) -> None:
    # What `hm plugin new` tells authors to run. `./` must survive until dlopen(): without a
    # slash, dlopen() searches the library path instead of the current directory.
    shutil.copy(fixture_path("noop-executor"), tmp_path / f"demo{SUFFIX}")
    result = run_hm("plugin", "check", f"./demo{SUFFIX}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cannot open shared object file" not in result.stdout
    assert result.stdout.splitlines()[0] == f"Checking noop-executor 1.0.0 ({tmp_path / f'demo{SUFFIX}'})"
    assert result.stdout.rstrip().endswith("PASSED: all 9 checks passed")


def test_a_manifest_that_changes_between_calls_fails_the_threads_check() -> None:
    code, doc, _ = _check_json("fickle-manifest")
    checks = _by_name(doc)
    assert checks["manifest"]["status"] == "passed"
    assert checks["threads"]["status"] == "failed"
    assert "expected the same PluginManifest on every call" in checks["threads"]["detail"]
    assert code == 1
