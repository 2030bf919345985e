"""Plugin subcommands as real commands: parsing, validation, routing, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BUILD, FIXTURES, ROOT, SUFFIX, fixture_path, run_hm


def env_with(*names: str, **extra: str) -> dict[str, str]:
    return {"HM_PLUGIN_PATH": ":".join(str(fixture_path(n)) for n in names), **extra}


def test_failing_subcommand_exit_code_and_message_pass_through() -> None:
    result = run_hm("fail", "--reason", "on purpose", env=env_with("failing-subcommand"))
    assert result.returncode == 7
    assert result.stderr.strip() == "failing-subcommand failed: on purpose"


def test_option_default_reaches_the_plugin() -> None:
    result = run_hm("fail", env=env_with("failing-subcommand"))
    assert result.returncode == 7
    assert "failing-subcommand failed: it was told to" in result.stderr


def test_typed_arguments_are_parsed_and_nested_verbs_route(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    env = env_with("typed-subcommand", HM_FIXTURE_CALL_LOG=str(log))
    result = run_hm("math", "add", "2", "3", "--label", "sum", "--times", "4", "--negate", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sum: -20"
    assert log.read_text() == "math add\n"


def test_bad_int_or_missing_required_argument_is_a_usage_error_and_the_plugin_is_not_called(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    env = env_with("typed-subcommand", HM_FIXTURE_CALL_LOG=str(log))
    bad_int = run_hm("math", "add", "2", "x", "--label", "s", env=env)
    missing_positional = run_hm("math", "add", "2", "--label", "s", env=env)
    missing_option = run_hm("math", "add", "2", "3", env=env)
    assert [r.returncode for r in (bad_int, missing_positional, missing_option)] == [2, 2, 2]
    assert "'x' is not a valid integer" in bad_int.stderr
    assert "error: hm math add: missing argument 'B'" in missing_positional.stderr
    assert "error: hm math add: missing option '--label'" in missing_option.stderr
    assert not log.exists(), "the plugin was called with invalid arguments"


def test_builtin_commands_win_and_the_claim_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    env = env_with("typed-subcommand", HM_FIXTURE_CALL_LOG=str(log))
    help_text = run_hm("--help", env=env).stdout
    assert "claims `hm run`, a built-in command; it is ignored" in help_text
    result = run_hm("run", "--dry-run", cwd=tmp_path, env=env)  # hm's own run: no pipeline here
    assert result.returncode == 3
    assert not log.exists()


def test_plugin_verbs_appear_in_help() -> None:
    result = run_hm("--help", env={"HM_PLUGIN_PATH": str(FIXTURES)})
    assert "Plugin commands:" in result.stdout
    assert "Always fails with exit code 7 [plugin failing-subcommand]" in result.stdout
    sub = run_hm("math", "add", "--help", env=env_with("typed-subcommand"))
    assert "Usage: hm math add [OPTIONS] A B" in sub.stdout
    assert "--times INTEGER" in sub.stdout


def test_help_runs_no_plugin_code_when_manifests_are_cached(tmp_path: Path) -> None:
    log = tmp_path / "loads.log"
    env = env_with("typed-subcommand", "failing-subcommand", HM_FIXTURE_LOAD_LOG=str(log))
    run_hm("--help", env=env)
    first = sorted(log.read_text().split())
    run_hm("--help", env=env)
    assert sorted(log.read_text().split()) == first == ["failing-subcommand", "typed-subcommand"]


def test_host_fn_probe_reports_every_host_function_working(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "probe.txt").write_text("hi")
    result = run_hm("probe", "host", cwd=tmp_path, env=env_with("host-fn-probe"))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("host_fn ")]
    assert len(lines) == 17 and all(ln.endswith(" ok") for ln in lines)
    assert "host-fn-probe: 17/17 host functions behaved" in result.stdout


def test_shell_completion_offers_plugin_verbs() -> None:
    env = {**env_with("typed-subcommand"), "_HM_COMPLETE": "complete_bash", "COMP_WORDS": "hm ma", "COMP_CWORD": "1"}
    result = run_hm(env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["math"]


def test_a_default_of_the_wrong_type_refuses_the_manifest_naming_the_argument(tmp_path: Path) -> None:
    # typed-subcommand rebuilt with `--times` (an int option) defaulting to the string "one".
    src = tmp_path / "src" / "bad-default"
    shutil.copytree(ROOT / "fixtures" / "typed-subcommand", src)
    shutil.copytree(ROOT / "fixtures" / "common", tmp_path / "src" / "common")
    c_file = src / "typed_subcommand.c"
    text = c_file.read_text()
    assert text.count("hm_mp_write_int(&w, 1);") == 1
    c_file.write_text(text.replace("hm_mp_write_int(&w, 1);", 'hm_mp_write_cstr(&w, "one");'))
    lib = BUILD.compile_c_plugin(src, tmp_path / "out" / f"bad-default{SUFFIX}")
    env = {"HM_PLUGIN_PATH": str(lib)}

    listed = run_hm("plugin", "list", "--format", "json", env=env)
    (rec,) = [p for p in json.loads(listed.stdout)["plugins"] if p["path"] == str(lib)]
    assert rec["status"] == "broken"
    assert "argument 'times' of 'math add' is an int option, but its default 'one' is a string" in rec["error"]["what"]
    # Not a usage error as if the user had typed "one": the command does not exist.
    called = run_hm("math", "add", "1", "2", "--label", "s", env=env)
    assert called.returncode == 2
    assert "unknown command 'math'" in called.stderr


def test_a_verb_a_built_in_shadows_is_marked_in_list_info_and_check() -> None:
    env = {"HM_PLUGIN_PATH": str(fixture_path("typed-subcommand"))}
    listing = run_hm("plugin", "list", env=env)
    assert "command `hm run` (shadowed by a built-in command: never offered)" in listing.stdout
    info = run_hm("plugin", "info", "typed-subcommand", env=env)
    assert "command `hm run` (shadowed by a built-in command: never offered)" in info.stdout
    check = run_hm("plugin", "check", str(fixture_path("typed-subcommand")), "--format", "json")
    (run_check,) = [c for c in json.loads(check.stdout)["checks"] if c["name"] == "subcommand:run"]
    assert "`hm run` is a built-in command, so hm never offers `hm run`" in run_check["detail"]


@pytest.mark.parametrize("code", [256, 300, -1])
def test_a_subcommand_exit_code_outside_0_255_is_a_plugin_fault_not_a_false_success(code: int) -> None:
    # An exit status is one byte: 256 used to make `hm math add` exit 0, 300 exit 44.
    env = env_with("typed-subcommand", HM_FIXTURE_EXIT_CODE=str(code))
    result = run_hm("math", "add", "1", "2", "--label", "s", env=env)
    assert result.returncode == 5, result.stderr
    assert f"run_subcommand returned exit code {code}, outside 0-255" in result.stderr
    assert "typed-subcommand" in result.stderr
    assert "Traceback" not in result.stderr
