"""The Rust SDK's own gates, run by the README's test command: ``cargo test --offline``
(unit, integration and doc tests) and ``cargo clippy --offline -- -D warnings``.

Skipped, with the reason shown in pytest's summary, only when cargo is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import ROOT

CRATE = ROOT / "hm_plugin_sdk" / "rust"
# Its own target folder: the fixtures' release builds (build/cargo-target) stay untouched.
TARGET = ROOT / "build" / "cargo-sdk"

pytestmark = pytest.mark.skipif(
    shutil.which("cargo") is None, reason="cargo is not installed: the Rust SDK is not checked"
)


def cargo(command: str, *args: str, after: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``cargo COMMAND ARGS --offline --target-dir … [-- AFTER]`` in the crate."""
    tail = ["--", *after] if after else []
    return subprocess.run(
        ["cargo", command, *args, "--offline", "--target-dir", str(TARGET), *tail],
        cwd=CRATE,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_cargo_test_passes_and_runs_the_sdk_tests() -> None:
    done = cargo("test")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    results = re.findall(r"test result: ok\. (\d+) passed; (\d+) failed", done.stdout)
    assert results, done.stdout
    assert all(int(failed) == 0 for _, failed in results)
    # Unit, integration and doc tests: a number that only goes down if tests vanish.
    assert sum(int(passed) for passed, _ in results) >= 50


def test_cargo_clippy_has_no_warnings() -> None:
    if subprocess.run(["cargo", "clippy", "--version"], capture_output=True).returncode != 0:
        pytest.fail("cargo is installed but clippy is not: `rustup component add clippy`")
    done = cargo("clippy", "--all-targets", after=("-D", "warnings"))
    assert done.returncode == 0, done.stderr[-8000:]
