"""Helpers shared by the ``hm run`` tests: a project on disk, the real CLI in a
child process, and the JSON event stream parsed back.

Not a conftest (basenames must be unique across the repository); test modules
import it directly (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conftest import ROOT, fixture_path, run_hm


def hm_env(plugins: Iterable[str] = (), extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child ``hm``: this checkout importable from any cwd, and
    ``HM_PLUGIN_PATH`` listing the named compiled fixtures (and nothing else)."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {
        "PYTHONPATH": pythonpath,
        "HM_PLUGIN_PATH": os.pathsep.join(str(fixture_path(name)) for name in plugins),
        "NO_COLOR": "1",
    }
    env.update(extra or {})
    return env


class Project:
    """A project directory with ``.hm/pipeline.py`` written with the DSL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / ".hm").mkdir(parents=True, exist_ok=True)

    def pipeline(self, body: str, *, slug: str = "t", env: dict[str, str] | None = None) -> Project:
        """Write ``.hm/pipeline.py`` whose ``@pipeline`` function body is ``body``.

        The body starts on line 6 of the file (imports, two blank lines, decorator, def).
        """
        args = f"{slug!r}" + (f", env={env!r}" if env else "")
        text = (
            "from hm.dsl import pipeline, step, wait\n\n\n"
            f"@pipeline({args})\n"
            "def p():\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
        )
        (self.root / ".hm" / "pipeline.py").write_text(text)
        return self

    def run(
        self,
        *args: str,
        plugins: Iterable[str] = (),
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """``hm run ARGS`` in the project directory."""
        return run_hm("run", *args, cwd=self.root, env=hm_env(plugins, env), timeout=timeout)

    def run_json(self, *args: str, **kw: Any) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
        """``hm run --format json ARGS``, and its events."""
        result = self.run("--format", "json", *args, **kw)
        return result, events(result.stdout)


def events(stdout: str) -> list[dict[str, Any]]:
    """Every line of ``--format json`` output, parsed (fails on a line that is not JSON)."""
    parsed = []
    for number, line in enumerate(stdout.splitlines(), 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout line {number} is not JSON: {line!r} ({exc})") from None
    return parsed


def finished(evs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """step key -> its step_finished event."""
    return {e["step_key"]: e for e in evs if e["kind"] == "step_finished"}


def by_key(evs: list[dict[str, Any]], kind: str) -> dict[str, list[dict[str, Any]]]:
    """step key -> its events of ``kind``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in evs:
        if e["kind"] == kind:
            out.setdefault(e["step_key"], []).append(e)
    return out


def logs(evs: list[dict[str, Any]], key: str, stream: str | None = None) -> list[str]:
    """The output lines of step ``key`` (optionally of one stream), in order."""
    return [
        e["line"]
        for e in evs
        if e["kind"] == "step_log" and e["step_key"] == key and (stream is None or e["stream"] == stream)
    ]


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        assert "Traceback" not in text, f"a traceback on {name}:\n{text}"
        assert "internal error" not in text, f"an internal error on {name}:\n{text}"


def popen_hm(
    project: Path,
    *args: str,
    plugins: Iterable[str] = (),
    env: dict[str, str] | None = None,
    stdin: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """``hm run ARGS`` started in the background (pipes on stdout and stderr)."""
    full = {**os.environ, **hm_env(plugins, env), "COLUMNS": "200"}
    # A user's shell does not set it; with it, Python never buffers stdout and a
    # missing flush would go unnoticed.
    full.pop("PYTHONUNBUFFERED", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hm", "run", *args],
        cwd=project,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=stdin,
    )


def wait_for_file(path: Path, timeout: float = 20.0) -> str:
    """The contents of ``path`` once it exists and is not empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text().strip()
            if text:
                return text
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear within {timeout} s")


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return any(line.split()[1:2] == ["Z"] for line in status.splitlines() if line.startswith("State:"))


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.05)
    return process_gone(pid)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Clean-up for a test that failed half-way: kill the ``hm`` it started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def kill_pid(pid: int) -> None:
    """Clean-up of a step process a test deliberately left running."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
