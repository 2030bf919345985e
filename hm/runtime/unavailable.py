"""Bundled plugins that the build left out, and why.

``build.py`` skips a bundled plugin whose system libraries are missing (its
``build.toml``; the container runner needs libcurl and jansson) and writes
``<name>.unavailable.json`` next to the bundled libraries instead. This module
reads those files, so that ``hm plugin list`` shows the plugin as unavailable
and a pipeline that needs one of its runners says which packages to install,
rather than "no plugin provides runner 'container'".

Reading them runs no plugin code; a file that cannot be read is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hm.runtime.discovery import BUNDLED_DIR

__all__ = ["UNAVAILABLE_SUFFIX", "UnavailablePlugin", "unavailable_bundled"]

#: The marker's suffix; build.py writes the same (its UNAVAILABLE_SUFFIX).
UNAVAILABLE_SUFFIX = ".unavailable.json"


@dataclass(frozen=True, slots=True)
class UnavailablePlugin:
    """A bundled plugin that was not built: its name, the runners it would provide, why."""

    name: str
    runners: tuple[str, ...]
    reason: str
    packages: tuple[str, ...]
    path: Path

    @property
    def what(self) -> str:
        return f"hm was installed without the bundled {self.name} plugin ({self.reason})"

    @property
    def hint(self) -> str:
        packages = " ".join(self.packages)
        return (
            f"install {packages} (Debian/Ubuntu: `apt-get install {packages}`), then reinstall hm "
            f"(`pip install --force-reinstall --no-deps hm`, or `pip install -e .` in a checkout) to build it"
        )


def unavailable_bundled(directory: Path = BUNDLED_DIR) -> list[UnavailablePlugin]:
    """Every bundled plugin the build skipped, by name."""
    found: list[UnavailablePlugin] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob(f"*{UNAVAILABLE_SUFFIX}")):
        try:
            doc = json.loads(path.read_text())
            found.append(
                UnavailablePlugin(
                    name=str(doc["name"]),
                    runners=tuple(str(r) for r in doc.get("runners", [])),
                    reason=str(doc.get("reason", "its build requirements are missing")),
                    packages=tuple(str(p) for p in doc.get("debian_packages", [])),
                    path=path,
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a marker is a courtesy; a broken one must not break hm
    return found
