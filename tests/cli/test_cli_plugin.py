"""``hm version``, ``hm plugin list`` and ``hm plugin info`` as a user runs them."""

from __future__ import annotations

import json

from conftest import FIXTURES, run_hm

ALL = {"HM_PLUGIN_PATH": str(FIXTURES)}


def test_plugin_list_shows_good_and_broken_plugins_without_a_traceback() -> None:
    result = run_hm("plugin", "list", env=ALL)
    assert result.returncode == 0
    assert "Traceback" not in result.stdout + result.stderr
    rows = {
        line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip() and not line.startswith(" ")
    }
    assert "ok" in rows["noop-executor"] and "runner noop" in rows["noop-executor"]
    assert "broken" in rows["bad-abi-version"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    (abi_line,) = [w for w in warnings if "bad-abi-version" in w]
    assert str(FIXTURES / "bad-abi-version.so") in abi_line
    assert "built for ABI 9999.0 while this hm speaks 1.x" in abi_line
    assert "rebuild it against the hm_plugin.h shipped with this hm" in abi_line
    assert any("runner 'dup' is claimed by conflict-runner-a" in w for w in warnings)


def test_plugin_list_json_is_one_document_with_every_plugin() -> None:
    result = run_hm("plugin", "list", "--format", "json", env=ALL)
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    by_name = {p["name"]: p for p in doc["plugins"]}
    assert by_name["noop-executor"]["status"] == "ok"
    assert by_name["noop-executor"]["abi"] == "1.1"
    assert by_name["newer-minor"]["abi"] == "1.2"
    assert by_name["broken-no-entry"]["status"] == "broken"
    assert "hm_load_plugin" in by_name["broken-no-entry"]["error"]["what"]
    assert doc["conflicts"][0]["error"] == "PluginConflictError"


def test_plugin_info_shows_path_abi_and_capabilities() -> None:
    result = run_hm("plugin", "info", "failing-subcommand", env=ALL)
    assert result.returncode == 0, result.stderr
    assert str(FIXTURES / "failing-subcommand.so") in result.stdout
    assert "abi:       1.1" in result.stdout
    assert "command `hm fail`" in result.stdout
    assert "reason (option, string" in result.stdout


def test_plugin_info_json() -> None:
    doc = json.loads(run_hm("plugin", "info", "recording-hook", "--format", "json", env=ALL).stdout)
    kinds = [(c["kind"], c["phase"]) for c in doc["manifest"]["capabilities"]]
    assert kinds == [("lifecycle_hook", "before"), ("lifecycle_hook", "after")]


def test_plugin_info_on_a_broken_plugin_explains_and_exits_4() -> None:
    result = run_hm("plugin", "info", "bad-abi-version", env=ALL)
    assert result.returncode == 4
    assert "built for ABI 9999.0" in result.stdout


def test_plugin_info_unknown_name_is_a_usage_error() -> None:
    result = run_hm("plugin", "info", "nope", env=ALL)
    assert result.returncode == 2
    assert result.stderr.startswith("error: hm plugin info: no plugin named 'nope'")
    assert "Traceback" not in result.stderr


def test_version_reports_abi_and_plugin_count() -> None:
    result = run_hm("version", "--format", "json", env={"HM_PLUGIN_PATH": str(FIXTURES / "noop-executor.so")})
    doc = json.loads(result.stdout)
    assert doc["abi"] == "1.1"
    assert doc["plugins"] >= 1


def test_bad_option_is_a_usage_error() -> None:
    result = run_hm("plugin", "list", "--format", "xml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_traceback_of_an_error() -> None:
    quiet = run_hm("plugin", "info", "nope")
    loud = run_hm("--verbose", "plugin", "info", "nope")
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
