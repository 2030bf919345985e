"""``hm plugin check``'s plan: which checks run, in which order, each against a
worker process of its own, and how a plugin that crashes or hangs is judged.

Order: ``load``, ``header``, ``manifest`` (each needs the one before; when one
fails, everything after it is skipped with the reason), then one check per declared
capability, ``free``, ``threads`` and ``older-host``. Those last ones only need the
manifest, so they run side by side; the report keeps the order above.

Every check loads the library in a fresh ``hm-worker`` (:class:`~hm.check.checks.Target`):
``free``'s runs with glibc's heap checks on, ``older-host``'s hands the plugin an
ABI 1.0 host table cut after ``log``. A worker that dies (a signal, ``exit()``) is
a failed check that says "crashed", with what and what the check was doing; one
that does not answer within the check's timeout is stopped and the check fails as
hung. hm itself never runs plugin code here, so it cannot crash.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from hm.check.checks import CHECKS, OLDER_HOST_SIZE, Target, Verdict
from hm.check.stdio_checks import NOT_APPLICABLE, STDIO_CHECKS
from hm.errors import PluginCallAbandoned, PluginCrashed, PluginLoadError
from hm_plugin_sdk.abi import ABI_MAJOR, ABI_MINOR, host_table_size
from hm_plugin_sdk.protocol import PluginManifest

__all__ = ["DEFAULT_TIMEOUT", "CheckResult", "SuiteReport", "run_suite"]

#: Seconds one check may run before it is stopped.
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
    from hm.runtime import is_descriptor

    shown = str(path)
    report = SuiteReport(path=shown)
    path = path.absolute()
    stdio = is_descriptor(path)
    runner = _CheckRunner(path, timeout, stdio=stdio)
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
    if manifest is None:  # the check said "passed" without the manifest: a bug in the check
        report.checks[-1] = CheckResult("manifest", "failed", "the manifest check reported no manifest (a bug in hm)")
        return report
    report.plugin, report.version = manifest.name, manifest.version
    planned = [_Planned(_capability_name(c), f"capability:{i}") for i, c in enumerate(manifest.capabilities)]
    planned += [_Planned("free", "free"), _Planned("threads", "threads")]
    planned.append(_Planned("older-host", "older-host", _OLDER_HOST_HINT))
    # every older minor's whole table ("growth is proven, not promised")
    planned += [_Planned(f"host-{ABI_MAJOR}.{m}", f"host-minor:{m}", _OLDER_HOST_HINT) for m in range(ABI_MINOR)]
    # an older minor's host table is a native library's concern, like older-host
    not_applicable = {
        **NOT_APPLICABLE,
        **{p.name: NOT_APPLICABLE["older-host"] for p in planned if p.name.startswith("host-")},
    }
    skipped = {p.name: not_applicable[p.name] for p in planned if stdio and p.name in not_applicable}
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hm-check") as pool:
        results = list(pool.map(runner.run, [p for p in planned if p.name not in skipped]))
    ran = iter(result for result, _data in results)
    report.checks += [
        CheckResult(p.name, "skipped", skipped[p.name]) if p.name in skipped else next(ran) for p in planned
    ]
    return report


#: The fixed checks, in order; capability checks go between manifest and free.
_AFTER = (
    "load",
    "header",
    "manifest",
    "capabilities",
    "free",
    "threads",
    "older-host",
    *(f"host-{ABI_MAJOR}.{m}" for m in range(ABI_MINOR)),
)


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


class _CheckRunner:
    """Runs one check against its own workers and turns whatever happens into a CheckResult."""

    def __init__(self, path: Path, timeout: float, *, stdio: bool = False) -> None:
        self.path = path
        self.timeout = timeout
        #: A stdio plugin: its own load and header checks (hm.check.stdio_checks).
        self.checks = {**CHECKS, **STDIO_CHECKS} if stdio else CHECKS
        #: What runs the plugin, for messages: a stdio plugin is its own process.
        self.process = "process" if stdio else "worker process"
        # A Rust plugin's panic message is enough for the report; symbolising a
        # backtrace per panic would make the repeated-call checks crawl.
        self.env = {**os.environ, "RUST_BACKTRACE": "0"}

    def _options(self, check: str, arg: str = "") -> dict[str, Any]:
        # what the plugin prints goes into the check's detail, not onto the terminal
        quiet = {"stderr_level": logging.DEBUG}
        if check == "older-host":
            return {"env": self.env, "host_size": OLDER_HOST_SIZE, "host_minor": 0, **quiet}
        if check == "host-minor":
            minor = int(arg)
            return {"env": self.env, "host_size": host_table_size(minor), "host_minor": minor, **quiet}
        if check != "free":
            return {"env": self.env, **quiet}
        env = {**self.env, **_HEAP_CHECK_ENV}
        debug = next((p for p in _MALLOC_DEBUG_LIBS if Path(p).exists()), None)
        if debug is not None and sys.platform.startswith("linux"):
            env["LD_PRELOAD"] = " ".join(filter(None, [debug, env.get("LD_PRELOAD")]))
        return {"env": env, **quiet}

    def run(self, planned: _Planned) -> tuple[CheckResult, dict[str, Any]]:
        name, _, arg = planned.arg.partition(":")
        target = Target(
            self.path, arg or None, deadline=time.monotonic() + self.timeout, options=self._options(name, arg)
        )
        hint = f"; {planned.hint}" if planned.hint else ""
        try:
            verdict = self.checks[name](target)
        except PluginCrashed as exc:
            verdict = Verdict(
                "failed",
                f"{_crash(exc.what)} while {target.doing}: expected the plugin to answer "
                f"every call, but it took its {self.process} down{hint}",
            )
        except PluginCallAbandoned:
            verdict = self._hung(target)
        except PluginLoadError as err:
            if err.stage == "crashed":
                verdict = Verdict(
                    "failed",
                    f"{_crash(err.what)} while {target.doing}: expected the plugin to "
                    f"answer every call, but it took its {self.process} down{hint}",
                )
            elif err.stage == "hung":
                verdict = self._hung(target)
            else:  # it loaded for the manifest check, but not now
                detail = f"{err.what}; {err.hint}" if err.hint else err.what
                verdict = Verdict("failed", f"expected the plugin to load as it did for the manifest check; {detail}")
        finally:
            target.close()
        return CheckResult(planned.name, verdict.status, verdict.detail), verdict.data  # type: ignore[arg-type]

    def _hung(self, target: Target) -> Verdict:
        return Verdict(
            "failed",
            f"hung while {target.doing}: expected the check to finish within {self.timeout:g} s, but a call into "
            f"the plugin did not return, so its {self.process} was stopped",
        )


def _crash(what: str) -> str:
    """``crashed with SIGSEGV`` (and the plugin's last output) from a crash message."""
    head, sep, rest = what.partition(" in ")
    tail = rest[rest.find(" (its last output:") :] if "(its last output:" in rest else ""
    return f"{head}{tail}" if sep else what
