"""Choosing isolation: ``--isolate``, ``HM_ISOLATE`` and ``.hm/config.toml``, as
``hm plugin list/info`` and a real run show it; a malformed config is exit 3 with
file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fixture_path, run_hm
from iso_helpers import events, hm_env


def project(root: Path, config: str | None = None) -> Path:
    (root / ".hm").mkdir(parents=True, exist_ok=True)
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n@pipeline('t')\ndef p():\n    step('x', 'segv', runner='crashy')\n"
    )
    if config is not None:
        (root / ".hm" / "config.toml").write_text(config)
    return root


def isolation_of(root: Path, name: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    result = run_hm("plugin", "list", "--format", "json", cwd=root, env=hm_env(["crashy-runner"], env))
    assert result.returncode == 0, result.stderr
    (rec,) = [p for p in json.loads(result.stdout)["plugins"] if p["name"] == name]
    return rec["isolation"], rec["isolation_from"]


def test_in_process_is_the_default(tmp_path: Path) -> None:
    assert isolation_of(project(tmp_path / "p"), "crashy-runner") == ("in-process", "default")


def test_the_project_config_isolates_one_plugin_and_a_run_survives_its_crash(tmp_path: Path) -> None:
    root = project(tmp_path / "p", '[plugins.crashy-runner]\nisolation = "process"\n')
    assert isolation_of(root, "crashy-runner") == ("process", ".hm/config.toml")
    assert isolation_of(root, "shell") == ("in-process", "default")
    result = run_hm("run", "--format", "json", cwd=root, env=hm_env(["crashy-runner"]))
    assert result.returncode == 5  # contained: an error of the step, not a dead hm
    assert events(result.stdout)[-1]["kind"] == "build_finished"
    info = run_hm("plugin", "info", "crashy-runner", cwd=root, env=hm_env(["crashy-runner"]))
    assert "isolation: process (from .hm/config.toml)" in info.stdout


@pytest.mark.parametrize(
    ("value", "expected"), [("1", "process"), ("crashy-runner", "process"), ("shell", "in-process")]
)
def test_hm_isolate_chooses_all_or_named_plugins(value: str, expected: str, tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    assert isolation_of(root, "crashy-runner", {"HM_ISOLATE": value})[0] == expected


@pytest.mark.parametrize(
    ("config", "where", "what"),
    [
        ('[plugins.shell\nisolation = "process"\n', ".hm/config.toml:1", "is not valid TOML"),
        ('[plugins.shell]\nisolation = "sandbox"\n', ".hm/config.toml", "isolation = 'sandbox' is not one of"),
        ("[plugins.shell]\nisolate = true\n", ".hm/config.toml", "unknown setting(s) isolate"),
    ],
)
def test_a_malformed_config_is_exit_3_naming_the_file(config: str, where: str, what: str, tmp_path: Path) -> None:
    root = project(tmp_path / "p", config)
    result = run_hm("run", cwd=root, env=hm_env(["crashy-runner"]))
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {root / where}") and what in line
    assert "Traceback" not in result.stderr


def test_a_bad_hm_isolate_value_is_exit_3(tmp_path: Path) -> None:
    result = run_hm("run", cwd=project(tmp_path / "p"), env=hm_env(["crashy-runner"], {"HM_ISOLATE": "Not A Name"}))
    assert result.returncode == 3
    assert "HM_ISOLATE" in result.stderr


def test_the_isolate_flag_needs_no_config(tmp_path: Path) -> None:
    result = run_hm("run", "--isolate", "--format", "json", cwd=project(tmp_path / "p"), env=hm_env(["crashy-runner"]))
    assert result.returncode == 5
    (done,) = [e for e in events(result.stdout) if e["kind"] == "step_finished"]
    assert f"plugin crashy-runner ({fixture_path('crashy-runner')}): crashed with SIGSEGV" in done["message"]
