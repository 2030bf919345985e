"""The code base stays ruff-clean (the project's standard), checked like any other behaviour."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    # The ruff of this interpreter's environment: `.venv/bin/python -m pytest` runs it
    # even though .venv/bin is not on PATH.
    if importlib.util.find_spec("ruff") is None:
        pytest.skip(f"ruff is not installed for {sys.executable} (pip install -e '.[test]' installs it)")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "hm", "hm_plugin_sdk", "tests", "bench", "build.py", "setup.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
