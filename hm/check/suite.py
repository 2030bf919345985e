"""The parent side of ``hm plugin check``: which checks run, in which order, each in
its own child process, and how a child that crashes, hangs or babbles is judged.

Order: ``load``, ``header``, ``manifest`` (each needs the one before; when one
fails, everything after it is skipped with the reason), then one check per declared
capability, ``free``, ``threads`` and ``older-host``. Those last ones only need the
manifest, so they run side by side; the report keeps the order above.

A child (``python -m hm.check.checks CHECK PATH``, see :mod:`hm.check.checks`) that
ends by a signal is a failed check that says "crashed" and which signal; one that
outlives the timeout is stopped (its whole process group) and fails; one that exits
without exactly one valid report line fails with its exit code and its last words.
hm itself never runs plugin code here, so it cannot crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from hm.child_process import stop_child
from hm.runtime.probe_child import HM_ROOT, output_tail
from hm_plugin_sdk.protocol import PluginManifest

__all__ = ["DEFAULT_TIMEOUT", "STAGE_MARKER", "CheckResult", "SuiteReport", "run_suite"]

#: Prefix of the lines a check process writes to stderr before it runs plugin code
#: (:func:`hm.check.checks.stage`), so a crash or a hang can say what was running.
STAGE_MARKER = "hm-check: "
#: Seconds one check's child process may run before it is stopped.
DEFAULT_TIMEOUT = 30.0
Status = Literal["passed", "failed", "skipped"]

#: glibc's heap checks for the ``free`` check: abort on heap misuse (3), and fill
#: freed and fresh memory with a pattern so use-after-free shows. glibc >= 2.34 only
#: honours MALLOC_CHECK_ with its debug library preloaded.
_HEAP_CHECK_ENV = {"MALLOC_CHECK_": "3", "MALLOC_PERTURB_": "165"}
_MALLOC_DEBUG_LIBS = (
    "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0",
    "/usr/lib/aarch64-linux-gnu/libc_malloc_debug.so.0",
    "/usr/lib64/libc_malloc_debug.so.0",
    "/lib64/libc_malloc_debug.so.0",
    "/usr/lib/libc_malloc_debug.so.0",
)

_OLDER_HOST_HINT = (
    "before calling a host function the plugin must check HM_TABLE_HAS(host, hm_host_api_t, field) and that "
    "the entry is not NULL (the Rust SDK's PluginContext does both); an older hm's table ends earlier"
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report."""

    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(slots=True)
class SuiteReport:
    """Every check's result, in order, and which plugin it was (once the manifest read)."""

    path: str
    plugin: str | None = None
    version: str | None = None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check failed (skipped checks are allowed)."""
        return all(c.status != "failed" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "plugin": self.plugin,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True, slots=True)
class _Planned:
    name: str
    arg: str
    hint: str = ""


def run_suite(path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> SuiteReport:
    """Run every check on the library at ``path`` and return the report.

    Never raises for a bad library: every problem is a failed check.
    """
    shown = str(path)
    report = SuiteReport(path=shown)
    runner = _ChildRunner(path, timeout)
    for step in ("load", "header", "manifest"):
        result, data = runner.run(_Planned(step, step))
        report.checks.append(result)
        if result.status == "failed":
            why = {"load": "the library does not load", "header": "hm refuses its header"}.get(
                step, "its manifest is not valid"
            )
            for later in _AFTER[_AFTER.index(step) + 1 :]:
                report.checks.append(CheckResult(later, "skipped", f"skipped: {why}"))
            return report
    manifest = _manifest_from(data)
    if manifest is None:  # the child said "passed" without the manifest: a bug in the check
        report.checks[-1] = CheckResult("manifest", "failed", "the manifest check reported no manifest (a bug in hm)")
        return report
    report.plugin, report.version = manifest.name, manifest.version
    planned = [_Planned(_capability_name(c), f"capability:{i}") for i, c in enumerate(manifest.capabilities)]
    planned += [_Planned("free", "free"), _Planned("threads", "threads")]
    planned.append(_Planned("older-host", "older-host", _OLDER_HOST_HINT))
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(runner.run, planned))
    report.checks += [result for result, _data in results]
    return report


#: The fixed checks, in order; capability checks go between manifest and free.
_AFTER = ("load", "header", "manifest", "capabilities", "free", "threads", "older-host")


def _capability_name(cap: Any) -> str:
    kind = cap.__struct_config__.tag
    if kind == "step_executor":
        return f"step_executor:{','.join(cap.runners)}"
    if kind == "lifecycle_hook":
        return f"lifecycle_hook:{cap.phase}"
    return f"subcommand:{' '.join(cap.verb)}"


def _manifest_from(data: dict[str, Any]) -> PluginManifest | None:
    try:
        return msgspec.convert(data.get("manifest"), PluginManifest)
    except (msgspec.ValidationError, TypeError):
        return None


class _ChildRunner:
    """Runs one check in a child and turns whatever happens into a CheckResult."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [HM_ROOT, env.get("PYTHONPATH")]))
        # A Rust plugin's panic message is enough for the report; symbolising a
        # backtrace per panic would make the repeated-call checks crawl.
        env["RUST_BACKTRACE"] = "0"
        self.env = env

    def _env_for(self, check: str) -> dict[str, str]:
        if check != "free":
            return self.env
        env = {**self.env, **_HEAP_CHECK_ENV}
        debug = next((p for p in _MALLOC_DEBUG_LIBS if Path(p).exists()), None)
        if debug is not None and sys.platform.startswith("linux"):
            env["LD_PRELOAD"] = " ".join(filter(None, [debug, env.get("LD_PRELOAD")]))
        return env

    def run(self, planned: _Planned) -> tuple[CheckResult, dict[str, Any]]:
        name = planned.name

        def fail(detail: str) -> tuple[CheckResult, dict[str, Any]]:
            return CheckResult(name, "failed", detail), {}

        cmd = [sys.executable, "-P", "-m", "hm.check.checks", planned.arg, str(self.path)]  # -P: ignore cwd
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env_for(planned.arg),
            start_new_session=os.name == "posix",  # one killpg also ends what the plugin started
        )
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            doing = _stage(stop_child(proc))
            return fail(
                f"hung{doing}: expected the check to finish within {self.timeout:g} s, but a call into the "
                "plugin did not return, so the check was stopped"
            )
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C): leave no child behind
                stop_child(proc)
        doing = _stage(err)
        tail = output_tail(b"\n".join(line for line in err.splitlines() if not line.startswith(_MARKER_BYTES)))
        said = f" (its last output: {tail})" if tail else ""
        if proc.returncode < 0:
            signum = -proc.returncode
            try:
                signame = f" {signal.Signals(signum).name}"
            except ValueError:
                signame = ""
            hint = f"; {planned.hint}" if planned.hint else ""
            return fail(
                f"crashed (signal {signum}{signame}){doing}: expected the plugin to answer every call, "
                f"but it took the check process down{said}{hint}"
            )
        doc = _parse(out) if proc.returncode == 0 else None
        if doc is None:
            return fail(f"its check process exited with code {proc.returncode} without a valid report{said}")
        return CheckResult(name, doc["status"], doc["detail"]), doc["data"]


_MARKER_BYTES = STAGE_MARKER.encode()


def _stage(err: bytes) -> str:
    """`` while <what>`` from the last stage line of a check's stderr, or ``""``."""
    stages = [line for line in err.splitlines() if line.startswith(_MARKER_BYTES)]
    if not stages:
        return ""
    return f" while {stages[-1][len(_MARKER_BYTES) :].decode(errors='replace').strip()}"


def _parse(out: bytes) -> dict[str, Any] | None:
    """The one report line, or None when it is missing or malformed."""
    lines = out.decode(errors="replace").strip().splitlines()
    if len(lines) != 1:
        return None
    try:
        doc = json.loads(lines[0])
    except ValueError:
        return None
    if (
        not isinstance(doc, dict)
        or doc.get("status") not in ("passed", "failed")
        or not isinstance(doc.get("detail"), str)
        or not isinstance(doc.get("data"), dict)
    ):
        return None
    return doc
