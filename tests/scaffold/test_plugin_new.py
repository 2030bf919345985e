"""``hm plugin new`` projects build with their one documented command, pass
``hm plugin check`` as generated, and do what their template says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SUFFIX, run_hm

CAPABILITIES = ["executor", "hook", "subcommand"]


def build(lang: str, project: Path, name: str, target: Path) -> Path:
    if lang == "c":
        subprocess.run(["make", "CFLAGS=-std=c11 -O2 -Wall -Wextra -Werror"], cwd=project, check=True)
        return project / f"{name}{SUFFIX}"
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    # One target dir for all generated crates: the SDK compiles once.
    env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
    subprocess.run(["cargo", "build", "--release", "--offline", "--quiet"], cwd=project, check=True, env=env)
    return target / "release" / f"lib{name.replace('-', '_')}{SUFFIX}"


@pytest.fixture(scope="module")
def cargo_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cargo-target")


@pytest.mark.parametrize("lang", ["c", "rust"])
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_generated_plugin_builds_passes_check_and_works(
    lang: str, capability: str, tmp_path: Path, cargo_target: Path
) -> None:
    name = f"gen-{capability}"
    created = run_hm("plugin", "new", name, "--lang", lang, "--capability", capability, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    project = tmp_path / name
    assert "build:" in created.stdout
    library = build(lang, project, name, cargo_target)

    check = run_hm("plugin", "check", str(library), "--format", "json")
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["passed"] is True

    env = {"HM_PLUGIN_PATH": str(library)}
    if capability == "subcommand":
        result = run_hm(name, "Ada", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "hello, Ada"
        return
    ir = tmp_path / "p.json"
    runner = name if capability == "executor" else "shell"
    ir.write_text(
        json.dumps({"slug": "g", "steps": [{"kind": "command", "key": "a", "cmd": "true", "runner": runner}]})
    )
    result = run_hm("run", "--file", str(ir), "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    if capability == "executor":
        assert f'"line":"{name}: true"' in result.stdout


def test_a_bad_name_or_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    bad = run_hm("plugin", "new", "Bad_Name", "--lang", "c", cwd=tmp_path)
    assert bad.returncode == 2 and "not a valid plugin name" in bad.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    busy = run_hm("plugin", "new", "taken", "--lang", "c", cwd=tmp_path)
    assert busy.returncode == 2 and "already exists and is not empty" in busy.stderr
    assert (tmp_path / "taken" / "file").read_text() == "x"
