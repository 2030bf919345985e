"""``pip install .`` where libcurl or jansson headers are missing: the install succeeds
without the container runner, and hm says it is unavailable and what to install.

The checkout's tracked files are copied and installed into a fresh virtual
environment, with ``PKG_CONFIG`` pointing at ``false`` so that build.py finds neither
library (what a machine without the -dev packages looks like to it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def venv_without_container_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    )
    for rel in filter(None, tracked):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    venv = tmp_path_factory.mktemp("venv")
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
    # hm's dependencies come from the environment running the tests (no index needed).
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_hm_outer.pth").write_text("\n".join(sorted(outer)) + "\n")
    env = {**os.environ, "PKG_CONFIG": shutil.which("false") or "/bin/false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-build-isolation",
         "--quiet", "--no-cache-dir", str(src)],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    return venv


def _hm(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HM_PLUGIN_PATH", "PYTHONPATH")}
    env.update(NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [str(venv / "bin" / "python"), "-P", "-m", "hm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_install_succeeds_and_plugin_list_says_what_to_install(
    venv_without_container_runner: Path, tmp_path: Path
) -> None:
    result = _hm(venv_without_container_runner, "plugin", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "unavailable" in rows["container"] and "runner container" in rows["container"]
    assert " ok " in rows["shell"]  # the rest of hm is there
    assert "hm was installed without the bundled container plugin (pkg-config finds no libcurl, jansson)" in (
        result.stderr
    )
    assert "apt-get install libcurl4-openssl-dev libjansson-dev pkg-config" in result.stderr


def test_a_step_with_an_image_says_the_runner_is_unavailable(
    venv_without_container_runner: Path, tmp_path: Path
) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n"
        "@pipeline('t')\n"
        "def p():\n"
        "    step('plain', 'touch ran')\n"
        "    step('boxed', 'make', image='debian:12')\n"
    )
    result = _hm(venv_without_container_runner, "run", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "step 'boxed' (steps[1]): has image 'debian:12', so it runs on runner 'container', which is unavailable: "
        "hm was installed without the bundled container plugin" in result.stderr
    )
    assert "apt-get install libcurl4-openssl-dev libjansson-dev pkg-config" in result.stderr
    assert not (tmp_path / "ran").exists()  # refused before anything ran
