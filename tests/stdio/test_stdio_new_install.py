"""``hm plugin new --lang python`` makes a stdio plugin that passes ``hm plugin
check`` as generated and works; ``hm plugin install`` takes its directory (or an
archive of it) and ``hm plugin remove`` takes it away."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from conftest import run_hm
from stdio_helpers import stdio_env, write_pipeline


@pytest.mark.parametrize("capability", ["executor", "hook", "subcommand"])
def test_a_new_python_plugin_passes_check_as_generated(capability: str, tmp_path: Path) -> None:
    name = f"gen-{capability}"
    made = run_hm("plugin", "new", name, "--lang", "python", "--capability", capability, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"check:  hm plugin check {tmp_path / name / (name + '.plugin.toml')}" in made.stdout
    assert "build:" not in made.stdout
    assert len((tmp_path / name / "plugin.py").read_text().splitlines()) < 40
    checked = run_hm("plugin", "check", str(tmp_path / name / f"{name}.plugin.toml"), env=stdio_env(), timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "PASSED" in checked.stdout


def test_install_run_upgrade_and_remove_a_plugin_directory(tmp_path: Path) -> None:
    env = stdio_env()
    assert run_hm("plugin", "new", "greeter", "--lang", "python", cwd=tmp_path).returncode == 0
    source = tmp_path / "greeter"
    installed = run_hm("plugin", "install", str(source), env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.startswith("installed greeter 0.1.0 into the user plugin folder")
    listed = json.loads(run_hm("plugin", "list", "--format", "json", env=env).stdout)
    (rec,) = [p for p in listed["plugins"] if p["name"] == "greeter"]
    assert rec["kind"] == "stdio" and rec["origin"] == "user" and rec["path"].endswith("/greeter/greeter.plugin.toml")

    root = write_pipeline(tmp_path / "p", 'step("g", "make it", runner="greeter")')
    ran = run_hm("run", "--format", "json", cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    logs = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [e["line"] for e in logs if e["kind"] == "step_log"] == ["greeter runs g: make it"]

    again = run_hm("plugin", "install", str(source), env=env)
    assert "is already installed" in again.stdout
    script = source / "plugin.py"
    script.write_text(script.read_text().replace('"0.1.0"', '"0.2.0"'))
    archive = tmp_path / "greeter.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="greeter")
    upgraded = run_hm("plugin", "install", str(archive), env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith("upgraded greeter 0.1.0 → 0.2.0")

    removed = run_hm("plugin", "remove", "greeter", env=env)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith("removed greeter 0.2.0 from the user plugin folder")
    listed = json.loads(run_hm("plugin", "list", "--format", "json", env=env).stdout)
    assert "greeter" not in {p["name"] for p in listed["plugins"]}


def test_installing_a_directory_that_is_not_a_plugin_installs_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_hm("plugin", "install", str(tmp_path / "empty"), env=stdio_env())
    assert result.returncode == 2
    assert "holds no NAME.plugin.toml" in result.stderr and "nothing was installed" in result.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "broken.plugin.toml").write_text(
        'command = ["python3", "-c", "import sys; sys.exit(4)"]\nprotocol = "1.0"\n'
    )
    result = run_hm("plugin", "install", str(broken), env=stdio_env())
    assert result.returncode == 4
    assert "exited with status 4 while starting" in result.stderr and "nothing was installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_archive_is_pinned_like_a_library_and_a_zip_works_too(tmp_path: Path) -> None:
    import hashlib
    import zipfile

    env = stdio_env()
    assert run_hm("plugin", "new", "zipped", "--lang", "python", cwd=tmp_path).returncode == 0
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in (tmp_path / "zipped").iterdir():
            z.write(path, path.name)  # the directory's contents, without the directory
    wrong = run_hm("plugin", "install", str(archive), "--pin", "0" * 64, env=env)
    assert wrong.returncode == 2 and "does not match --pin" in wrong.stderr
    pin = hashlib.sha256(archive.read_bytes()).hexdigest()
    right = run_hm("plugin", "install", str(archive), "--pin", pin, env=env)
    assert right.returncode == 0, right.stderr
    assert right.stdout.startswith("installed zipped 0.1.0 into the user plugin folder")
    folder = run_hm("plugin", "install", str(tmp_path / "zipped"), "--pin", pin, env=env)
    assert folder.returncode == 2 and "--pin applies to a file or an https URL" in folder.stderr
