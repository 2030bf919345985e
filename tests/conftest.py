"""Shared test set-up: real compiled fixtures, and an isolated hm home per test.

Fixture plugins are C (and Rust) libraries from ``fixtures/``, compiled by the
repository's own ``build.py`` into ``build/fixtures`` (only when their sources
changed), then loaded through the real loader.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_build_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("hm_build", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


BUILD = _load_build_module()
FIXTURES = BUILD.FIXTURES_OUT
SUFFIX = BUILD.plugin_suffix()


@pytest.fixture(scope="session", autouse=True)
def compiled_fixtures() -> Path:
    BUILD.build_fixtures(only_stale=True)
    return FIXTURES


def fixture_path(name: str) -> Path:
    """The compiled library of ``fixtures/<name>``."""
    path = FIXTURES / f"{name}{SUFFIX}"
    assert path.exists(), f"fixture {name} was not built"
    return path


@pytest.fixture(autouse=True)
def hm_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HM_HOME and no inherited plugin path."""
    home = tmp_path_factory.mktemp("hm-home")
    monkeypatch.setenv("HM_HOME", str(home))
    monkeypatch.delenv("HM_PLUGIN_PATH", raising=False)
    for key in list(os.environ):
        if key.startswith(("HM_EXT_", "HM_FIXTURE_", "HM_RECORDING_", "HM_RUST_")):
            monkeypatch.delenv(key)
    return home


def run_hm(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``hm`` command line in a child process."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("NO_COLOR", "1")
    full_env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "hm", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        input=input.decode() if input is not None else None,
        timeout=timeout,
    )
