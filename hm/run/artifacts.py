"""A step's artifacts: the files its ``artifacts`` patterns match in its workspace
once it succeeded, copied into the run record and named (path, size, SHA-256) in
its ``step_finished`` event.

Patterns are relative POSIX globs (``dist/**``, ``report.xml``, ``*.whl``); a
pattern that matches a directory takes every file beneath it. Only regular files
are taken, symlinks are never followed, and nothing outside the workspace is
reached.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from hm_plugin_sdk.protocol import Artifact

__all__ = ["collect", "copy_out"]


def _files(workspace: Path, pattern: str) -> list[Path]:
    found: list[Path] = []
    for match in sorted(workspace.glob(pattern)):
        try:
            mode = match.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode):
            found.append(match)
        elif stat.S_ISDIR(mode):
            for folder, dirs, names in os.walk(match):  # os.walk does not follow symlinks
                dirs.sort()
                for name in sorted(names):
                    path = Path(folder) / name
                    if stat.S_ISREG(path.lstat().st_mode):
                        found.append(path)
    return found


def collect(workspace: Path, patterns: list[str], dest: Path) -> tuple[list[Artifact], list[str]]:
    """Copy what ``patterns`` match in ``workspace`` to ``dest``.

    :returns: the artifacts stored, and the patterns that matched no file.
    :raises OSError: the copy failed (a full disk); the caller warns and goes on.
    """
    root = workspace.resolve()
    taken: dict[str, Path] = {}
    empty = []
    for pattern in patterns:
        files = [p for p in _files(workspace, pattern) if p.resolve().is_relative_to(root)]
        if not files:
            empty.append(pattern)
        for path in files:
            taken.setdefault(path.relative_to(workspace).as_posix(), path)
    stored = []
    for rel, path in sorted(taken.items()):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(path, "rb") as src, open(target, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        stored.append(Artifact(path=rel, size=target.stat().st_size, sha256=digest.hexdigest()))
    return stored, empty


def copy_out(record_dir: Path, to: Path) -> list[Path]:
    """Copy a run's artifacts (``artifacts/KEY/…`` of its record) to ``to/KEY/…``."""
    source = record_dir / "artifacts"
    copied: list[Path] = []
    if not source.is_dir():
        return copied
    for folder, _dirs, names in os.walk(source):
        for name in names:
            path = Path(folder) / name
            target = to / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(target)
    return sorted(copied)
