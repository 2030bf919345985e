"""The manifest cache: listing unchanged plugins runs no plugin code.

Each library's outcome (its manifest and ABI version, or why it could not be
loaded) is stored under its path, keyed by size, mtime and SHA-256 of its
content, plus hm's own version (a new hm may validate differently). A hit needs
all of them to match; anything else reloads the library. The file is JSON,
rewritten atomically, and a corrupt or foreign file is simply ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from hm import __version__, paths
from hm.errors import PluginLoadError
from hm_plugin_sdk.abi import ABI_MAJOR, ABI_MINOR
from hm_plugin_sdk.protocol import PluginManifest

_FORMAT = 2  # 2: manifests may carry StepExecutorCapability.images and .runner_args
_STAMP = f"hm {__version__} abi {ABI_MAJOR}.{ABI_MINOR}"


@dataclass(frozen=True, slots=True)
class FileKey:
    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> FileKey:
        st = path.stat()
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return cls(st.st_size, st.st_mtime_ns, digest.hexdigest())


@dataclass(frozen=True, slots=True)
class Outcome:
    """What loading one library gave: a manifest and ABI version, or an error."""

    manifest: PluginManifest | None = None
    abi: tuple[int, int] | None = None
    error: PluginLoadError | None = None


class ManifestCache:
    def __init__(self, file: Path | None = None) -> None:
        self.file = file or paths.cache_dir() / "manifests.json"
        self._entries: dict[str, dict[str, Any]] = self._read()
        self._dirty = False

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("stamp") != _STAMP:
            return {}
        entries = doc.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, path: Path, key: FileKey) -> Outcome | None:
        entry = self._entries.get(str(path))
        if not entry or entry.get("key") != [key.size, key.mtime_ns, key.sha256]:
            return None
        try:
            if "error" in entry:
                err = entry["error"]
                return Outcome(
                    error=PluginLoadError(err["what"], path=str(path), plugin=err.get("plugin"), hint=err.get("hint"))
                )
            manifest = msgspec.convert(entry["manifest"], PluginManifest)
            return Outcome(manifest=manifest, abi=(int(entry["abi"][0]), int(entry["abi"][1])))
        except (KeyError, TypeError, IndexError, ValueError, msgspec.ValidationError):
            return None

    def put(self, path: Path, key: FileKey, outcome: Outcome) -> None:
        entry: dict[str, Any] = {"key": [key.size, key.mtime_ns, key.sha256]}
        if outcome.error is not None:
            entry["error"] = {"what": outcome.error.what, "hint": outcome.error.hint, "plugin": outcome.error.plugin}
        else:
            entry["manifest"] = msgspec.to_builtins(outcome.manifest)
            entry["abi"] = list(outcome.abi or (0, 0))
        self._entries[str(path)] = entry
        self._dirty = True

    def save(self) -> None:
        """Write the cache if it changed. Failing to write a cache is never an error."""
        if not self._dirty:
            return
        doc = {"format": _FORMAT, "stamp": _STAMP, "entries": self._entries}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".manifests-")
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, self.file)
            self._dirty = False
        except OSError:
            pass
