"""hm type-checks clean (mypy, configured in pyproject.toml), run with this
interpreter so the README's test command runs it whatever is on PATH."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_error_in_hm() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip(f"mypy is not installed for {sys.executable} (pip install -e '.[test]' installs it)")
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
