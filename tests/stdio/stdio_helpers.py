"""What the stdio tests share: the fixtures' descriptors and a project to run in.

Not a conftest (basenames must be unique across the repository); test modules
import it directly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "isolation"))
sys.path.insert(0, str(ROOT / "tests" / "run"))

from iso_helpers import RunTrace, events

__all__ = ["STDIO", "RunTrace", "descriptor", "events", "stdio_env", "write_pipeline"]

STDIO = ROOT / "fixtures" / "stdio"


def descriptor(name: str) -> Path:
    """``fixtures/stdio/<name>/<name>.plugin.toml``, or ``fixtures/stdio/bad/<name>.plugin.toml``."""
    for path in (STDIO / name / f"{name}.plugin.toml", STDIO / "bad" / f"{name}.plugin.toml"):
        if path.exists():
            return path
    raise AssertionError(f"no stdio fixture {name}")


def stdio_env(*names: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child ``hm`` that finds exactly these stdio fixtures."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {
        "PYTHONPATH": pythonpath,
        "HM_PLUGIN_PATH": os.pathsep.join(str(descriptor(n)) for n in names),
        "NO_COLOR": "1",
    }
    env.update(extra or {})
    return env


def write_pipeline(root: Path, body: str) -> Path:
    (root / ".hm").mkdir(parents=True, exist_ok=True)
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step, wait\n\n\n@pipeline('t')\ndef p():\n"
        + "".join(f"    {line}\n" for line in body.strip().splitlines())
    )
    return root
