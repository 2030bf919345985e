"""A wheel that ships a plugin and declares it under ``hm.plugins`` is found by hm
in the virtual environment it is installed into, without hm importing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "examples" / "python-package"


def make_venv(venv: Path) -> Path:
    """A venv that sees hm from the environment running the tests; no plugin package yet."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # hm and its dependencies come from the environment running the tests; the
    # example package is installed into the new venv by pip, as a user would.
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], str(ROOT)}
    (site / "_hm_outer.pth").write_text("\n".join(sorted(outer)) + "\n")
    return python


def pip(python: Path, *args: str, cwd: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            *args,
        ],
        check=True,
        cwd=cwd,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


INSTALL = ("install", "--no-deps", "--no-build-isolation", "--quiet", "--no-cache-dir", str(PACKAGE))


@pytest.fixture(scope="module")
def venv_with_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    python = make_venv(venv)
    pip(python, *INSTALL, cwd=tmp_path_factory.mktemp("pkg"))
    return venv


def hm_in(
    venv: Path, *args: str, cwd: Path | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HM_PLUGIN_PATH"}
    if home is not None:
        env["HM_HOME"] = str(home)
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "hm", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_plugin_from_an_installed_wheel_is_listed(venv_with_package: Path) -> None:
    result = hm_in(venv_with_package, "plugin", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    example = plugins["example"]
    assert example["origin"] == "package"
    assert example["status"] == "ok"
    assert example["path"].endswith(os.path.join("hm_example_plugin", "lib", "example.so"))


def test_its_runner_runs_a_step(venv_with_package: Path, tmp_path: Path) -> None:
    ir = tmp_path / "p.json"
    step = {"kind": "command", "key": "hello", "cmd": "from a wheel", "runner": "example"}
    ir.write_text(json.dumps({"version": "0", "slug": "e", "steps": [step]}))
    result = hm_in(venv_with_package, "run", "--file", str(ir), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert any(e["kind"] == "step_log" and e["line"] == "example plugin ran: from a wheel" for e in lines)


def test_the_package_itself_is_never_imported(venv_with_package: Path) -> None:
    # Its __init__ raises ImportError: listing would fail loudly if hm imported it.
    probe = subprocess.run(
        [str(venv_with_package / "bin" / "python"), "-c", "import hm_example_plugin"], capture_output=True, text=True
    )
    assert "hm must not import it" in probe.stderr


def listed(venv: Path, home: Path) -> dict[str, dict[str, str]]:
    result = hm_in(venv, "plugin", "list", "--format", "json", home=home)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)["plugins"]}


def test_installing_and_removing_the_package_is_seen_at_once(tmp_path: Path) -> None:
    # hm keeps what it found among entry points in its cache dir: an install or a
    # removal since must still show on the next command.
    python = make_venv(tmp_path / "venv")
    home = tmp_path / "home"
    assert "example" not in listed(tmp_path / "venv", home)
    pip(python, *INSTALL, cwd=tmp_path)
    assert listed(tmp_path / "venv", home)["example"]["origin"] == "package"
    pip(python, "uninstall", "--yes", "--quiet", "hm-example-plugin", cwd=tmp_path)
    assert "example" not in listed(tmp_path / "venv", home)
