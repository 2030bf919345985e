"""``hm NAME ARGS…`` for a NAME that is neither built in nor a plugin verb: run the
executable ``hm-NAME``, as git, kubectl, gh and cargo do.

Found first in hm's bundled extension folder, then on ``PATH``. The arguments
after NAME are passed verbatim; stdin, stdout and stderr are the user's; its exit
code is hm's. Context travels in two variables (every inherited ``HM_EXT_*`` is
removed first, so a parent's values never leak through):

* ``HM_EXT_API_VERSION`` — an integer, raised only on a breaking change (fields
  are added to the context without raising it).
* ``HM_EXT_CONTEXT`` — JSON: ``hm_version``, ``config_dir``, ``state_dir``,
  ``plugin_dir``, ``project_root``, ``non_interactive``, ``format``, ``verbose``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from hm import __version__, paths

EXT_API_VERSION = 1
PREFIX = "hm-"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled_extensions"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _search_dirs() -> list[Path]:
    return [BUNDLED_DIR, *(Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p)]


def find_extension(name: str) -> Path | None:
    """The ``hm-NAME`` executable that ``hm NAME`` runs, or None."""
    if not name or name.startswith("-") or os.sep in name:
        return None
    for directory in _search_dirs():
        candidate = directory / f"{PREFIX}{name}"
        if _is_executable(candidate):
            return candidate
    return None


def list_extensions() -> dict[str, Path]:
    """Every extension name that ``hm --help`` can offer, first match wins; nothing is run."""
    found: dict[str, Path] = {}
    for directory in _search_dirs():
        # Only names with the prefix are sorted: /usr/bin holds thousands of entries,
        # and sorting them as Paths cost ~30 ms of every `hm --help`.
        try:
            with os.scandir(directory) as it:
                names = sorted(e.name for e in it if e.name.startswith(PREFIX) and len(e.name) > len(PREFIX))
        except OSError:
            continue
        for name in names:
            entry = directory / name
            if name[len(PREFIX) :] not in found and (sys.platform == "win32" or _is_executable(entry)):
                found[name[len(PREFIX) :]] = entry
    return found


def context(*, project_root: Path | None, fmt: str, verbose: bool) -> dict[str, object]:
    return {
        "hm_version": __version__,
        "config_dir": str(paths.config_dir()),
        "state_dir": str(paths.state_dir()),
        "plugin_dir": str(paths.user_plugin_dir()),
        "project_root": str(project_root) if project_root else None,
        "non_interactive": not sys.stdin.isatty() or bool(os.environ.get("CI")),
        "format": fmt,
        "verbose": verbose,
    }


def run_extension(path: Path, args: list[str], ctx: dict[str, object]) -> int:
    """Run an extension with the user's stdio and return its exit code (128+N for signal N)."""
    from hm.cli.session import SESSION

    SESSION.reap_leftovers = False  # an extension may start what outlives it, on purpose
    env = {k: v for k, v in os.environ.items() if not k.startswith("HM_EXT_")}
    env["HM_EXT_API_VERSION"] = str(EXT_API_VERSION)
    env["HM_EXT_CONTEXT"] = json.dumps(ctx)
    from hm import telemetry

    name = path.name.removeprefix(PREFIX)
    with telemetry.span(f"hm {name}", {"hm.extension": name, "hm.extension.path": str(path)}) as span:
        if span is not None:  # the extension may continue the trace (W3C's TRACEPARENT convention)
            env["TRACEPARENT"] = telemetry.carrier().get("traceparent", "")
        # The extension shares our terminal: Ctrl-C reaches it directly; hm just waits for it.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = subprocess.call([str(path), *args], env=env)
        finally:
            signal.signal(signal.SIGINT, previous)
        code = 128 - code if code < 0 else code
        if span is not None:
            span.set_attribute("hm.exit_code", code)
    return code
