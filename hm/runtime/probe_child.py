"""Loading a plugin library in a throwaway process: both ends of that exchange.

Loading a library runs its code (constructors, ``hm_load_plugin``, ``manifest``),
and a library that aborts, faults or hangs there must take down a child process,
not hm. :func:`probe` runs ``python -m hm.runtime.probe_child PATH``; the child
(:func:`main`) loads the library with the real loader
(:func:`~hm.runtime.plugin.open_plugin`), so it passes exactly when hm itself could
load it, and reports on its original stdout with exactly one JSON line::

    {"ok": true, "manifest": {...}, "abi": [major, minor]}
    {"ok": false, "error": {"what": "...", "hint": "...", "plugin": "..." | null}}

Exit status 0 means a report was written. Anything else the parent sees (a
signal, a timeout, no line, a line that is not such a document) means the library
is refused. Before the library is opened the child points file descriptor 1 at
stderr and writes the report to a private duplicate of the original stdout, so a
plugin that prints while loading cannot garble the report. This is robustness, not
a sandbox: the library runs with the user's rights, here as everywhere.

:meth:`Registry.discover <hm.runtime.registry.Registry.discover>` reads every
library that is not in the manifest cache this way.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from hm.child_process import stop_child
from hm.errors import HmError, PluginLoadError
from hm.runtime.manifest import validate_manifest
from hm.runtime.manifest_cache import Outcome
from hm_plugin_sdk.protocol import PluginManifest

__all__ = ["HM_ROOT", "PROBE_TIMEOUT", "ProbeResult", "main", "output_tail", "probe"]

log = logging.getLogger("hm.probe")

#: Seconds a library gets to load and answer ``manifest`` in the child.
PROBE_TIMEOUT = 30.0
#: The directory holding the ``hm`` package, so the child imports this same hm.
HM_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_INTERNAL = 70


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a child process found. ``definitive`` is False for a timeout or a garbled
    report, which may not happen again, so they are not cached. A crash is cached:
    loading the same file again would run the same crashing code."""

    outcome: Outcome
    definitive: bool


def probe(path: Path, *, shown_as: str | None = None, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Load ``path`` with the real loader in a child process and return its manifest or error.

    Never raises for a bad library: the problem is in ``outcome.error``, a
    :class:`PluginLoadError` about ``shown_as`` (default: ``path``).
    """
    shown = shown_as or str(path)

    def refused(what: str, hint: str, *, definitive: bool = False) -> ProbeResult:
        return ProbeResult(Outcome(error=PluginLoadError(what, path=shown, hint=hint)), definitive=definitive)

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [HM_ROOT, env.get("PYTHONPATH")]))
    # -P: never put the current directory on sys.path; it may hold another hm checkout.
    cmd = [sys.executable, "-P", "-m", "hm.runtime.probe_child", str(path)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=os.name == "posix",  # one killpg also ends anything the library started
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_child(proc)
        return refused(
            f"did not finish loading within {timeout:g} s and was stopped",
            "hm_load_plugin and manifest must return promptly; report this to the plugin's author",
        )
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C): leave no child behind
            stop_child(proc)
    log.debug("probe of %s: exit status %s; stderr:\n%s", shown, proc.returncode, err.decode(errors="replace"))
    tail = output_tail(err)
    said = f" (its last output: {tail})" if tail else ""
    if proc.returncode < 0:
        signum = -proc.returncode
        try:
            signame = f" {signal.Signals(signum).name}"
        except ValueError:
            signame = ""
        return refused(
            f"crashed while loading (signal {signum}{signame})",
            f"the library aborts or faults in its initialisation, hm_load_plugin or manifest{said}; "
            "report this to the plugin's author",
            definitive=True,
        )
    report = _parse_report(out) if proc.returncode == 0 else None
    if report is None:
        return refused(
            f"its validation process exited with code {proc.returncode} without a valid report",
            f"run again with --verbose, or load it with `python -m hm.runtime.probe_child {path}`{said}",
        )
    if not report["ok"]:
        error = report["error"]
        what = _rename(str(error.get("what") or "cannot be loaded"), path, shown)
        hint = error.get("hint")
        plugin = error.get("plugin")
        return ProbeResult(
            Outcome(
                error=PluginLoadError(
                    what,
                    path=shown,
                    plugin=plugin if isinstance(plugin, str) else None,
                    hint=_rename(str(hint), path, shown) if hint else None,
                )
            ),
            definitive=True,
        )
    try:
        manifest = msgspec.convert(report["manifest"], PluginManifest)
        validate_manifest(manifest, path=shown)  # pure Python: re-checked here, not taken on trust
        major, minor = (int(v) for v in report["abi"])
    except PluginLoadError as exc:
        return ProbeResult(Outcome(error=exc), definitive=True)
    except (msgspec.ValidationError, TypeError, ValueError):
        return refused(
            "its validation process reported a manifest that does not match the schema",
            "this is a bug in hm; run again with --verbose and report it",
        )
    return ProbeResult(Outcome(manifest=manifest, abi=(major, minor)), definitive=True)


def _rename(text: str, path: Path, shown: str) -> str:
    """``text`` with the probed file's path (as given and as resolved) spelled ``shown``."""
    for spelling in sorted({str(path.resolve()), str(path)}, key=len, reverse=True):
        text = text.replace(spelling, shown)
    return text


def _parse_report(out: bytes) -> dict[str, Any] | None:
    lines = out.decode(errors="replace").strip().splitlines()
    if len(lines) != 1:
        return None
    try:
        doc = json.loads(lines[0])
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
        return None
    if doc["ok"] and ("manifest" in doc and "abi" in doc):
        return doc
    if not doc["ok"] and isinstance(doc.get("error"), dict):
        return doc
    return None


def output_tail(err: bytes, lines: int = 3, chars: int = 400) -> str:
    text = " | ".join(line.strip() for line in err.decode(errors="replace").splitlines()[-lines:] if line.strip())
    return text[-chars:]


# -- the child side -----------------------------------------------------------------


def _private_stdout() -> int:
    """Duplicate fd 1 for the report and send everything else written to fd 1 to stderr."""
    sys.stdout.flush()
    report_fd = os.dup(1)
    os.dup2(2, 1)
    return report_fd


def _report(fd: int, doc: dict[str, object]) -> None:
    data = (json.dumps(doc, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> int:
    """The child: load ``argv[0]`` and report. Returns the exit status."""
    if len(argv) != 1:
        print("usage: python -m hm.runtime.probe_child LIBRARY", file=sys.stderr)
        return 2
    report_fd = _private_stdout()
    try:
        from hm.runtime.plugin import open_plugin

        try:
            plugin = open_plugin(Path(argv[0]))
        except HmError as err:
            plugin_name = getattr(err, "plugin", None)
            _report(report_fd, {"ok": False, "error": {"what": err.what, "hint": err.hint, "plugin": plugin_name}})
            return 0
        major, minor = plugin.transport.abi
        _report(report_fd, {"ok": True, "manifest": msgspec.to_builtins(plugin.manifest), "abi": [major, minor]})
        return 0
    except Exception:
        traceback.print_exc()
        return _INTERNAL
    finally:
        os.close(report_fd)


if __name__ == "__main__":
    # os._exit: the library is never unloaded (DESIGN.md), and its destructors or
    # threads get no say in the exit status once the report is written.
    status = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(status)
