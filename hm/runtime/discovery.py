"""Where plugins are looked for, in order of precedence.

A plugin is a native library (``*.so``) or a stdio plugin's descriptor
(``NAME.plugin.toml``, see :mod:`~hm.runtime.stdio_descriptor`), either directly
in a plugin folder or in a plugin directory one level below it
(``plugins/NAME/NAME.plugin.toml``, next to its script).

1. the project's ``.hm/plugins/``
2. each entry of ``HM_PLUGIN_PATH`` (directories or files, ``os.pathsep``-separated)
3. the user plugin folder (``$HM_HOME/plugins`` or the platform's data dir)
4. Python packages declaring an ``hm.plugins`` entry point
5. the plugins bundled with hm

When two libraries have the same manifest name, the earlier one shadows the later,
so a project can pin its own build of a bundled plugin.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hm import paths
from hm.runtime.stdio_descriptor import DESCRIPTOR_SUFFIX

Origin = Literal["project", "env", "user", "package", "bundled"]

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled_plugins"


def plugin_suffix() -> str:
    if sys.platform == "darwin":
        return ".dylib"
    if sys.platform == "win32":
        return ".dll"
    return ".so"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that may be a plugin, and where it was found."""

    path: Path
    origin: Origin


def _is_plugin_file(p: Path, suffix: str) -> bool:
    return (p.suffix == suffix or p.name.endswith(DESCRIPTOR_SUFFIX)) and p.is_file()


def _scan(directory: Path, origin: Origin) -> list[Candidate]:
    if not directory.is_dir():
        return []
    suffix = plugin_suffix()
    found = []
    for p in sorted(directory.iterdir()):
        if _is_plugin_file(p, suffix):
            found.append(Candidate(p.absolute(), origin))
        elif p.is_dir() and not p.name.startswith("."):
            # a plugin directory: its descriptor (a library there is its own business)
            try:
                found += [
                    Candidate(d.absolute(), origin) for d in sorted(p.glob(f"*{DESCRIPTOR_SUFFIX}")) if d.is_file()
                ]
            except OSError:
                continue
    return found


def _env_path(origin: Origin = "env") -> list[Candidate]:
    found: list[Candidate] = []
    for entry in filter(None, os.environ.get("HM_PLUGIN_PATH", "").split(os.pathsep)):
        p = Path(entry).expanduser()
        found.extend([Candidate(p.absolute(), origin)] if p.is_file() else _scan(p, origin))
    return found


def _entry_points() -> list[Candidate]:
    """The libraries Python packages declare (see :func:`_scan_entry_points`).

    Importing :mod:`importlib.metadata` costs ~15 ms, a tenth of ``hm --help``, so
    the answer is kept in hm's cache dir under a key of what it depends on: the
    import path, and every ``entry_points.txt`` of a distribution on it (its
    mtime and size). Installing, upgrading or removing a package changes the key.
    """
    key = _entry_point_key()
    cache = paths.cache_dir() / "entry-points.json"
    try:
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return [Candidate(Path(p), "package") for p in stored["found"] if os.path.isfile(p)]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    found = _scan_entry_points()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".entry-points-")
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, "found": [str(c.path) for c in found]}, f)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only cache only costs the scan next time
    return found


def _entry_point_key() -> list[object]:
    key: list[object] = [sys.version]
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names = sorted(e.name for e in it if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        if not names:
            # Left out: `python -m hm` puts the working directory on the path, and
            # every project directory would otherwise be a key of its own.
            continue
        stats: list[object] = [entry]
        for name in names:
            try:
                st = os.stat(os.path.join(entry or ".", name, "entry_points.txt"))
                stats.append([name, st.st_mtime_ns, st.st_size])
            except OSError:
                stats.append([name, None])
        key.append(stats)
    return key


def _scan_entry_points() -> list[Candidate]:
    """``hm.plugins`` entry points name a library as ``package.folder:stem``: the file
    ``<stem><platform suffix>`` in the folder of that dotted path, e.g.
    ``hm_example_plugin.lib:example`` is ``hm_example_plugin/lib/example.so`` on
    Linux. The top-level package is located with ``find_spec``, which reads the
    import path but does not import (run) it; the rest of the path is folders.
    """
    from importlib import metadata
    from importlib.util import find_spec

    found: list[Candidate] = []
    for ep in metadata.entry_points(group="hm.plugins"):
        module, _, rel = ep.value.partition(":")
        top = module.split(".")[0]
        spec = find_spec(top) if top else None
        if spec is None or not spec.submodule_search_locations:
            continue
        base = Path(next(iter(spec.submodule_search_locations))).joinpath(*module.split(".")[1:])
        path = base / rel.strip()
        if not path.suffix:
            path = path.with_name(path.name + plugin_suffix())
        if path.is_file():
            found.append(Candidate(path, "package"))
    return found


def discover(project_root: Path | None) -> list[Candidate]:
    """Every candidate library, highest precedence first, each path once."""
    ordered: list[Candidate] = []
    if project_root is not None:
        ordered += _scan(paths.project_plugin_dir(project_root), "project")
    ordered += _env_path()
    ordered += _scan(paths.user_plugin_dir(), "user")
    ordered += _entry_points()
    ordered += _scan(BUNDLED_DIR, "bundled")
    seen: set[Path] = set()
    unique = []
    for c in ordered:
        key = c.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique
