"""Where the step cache lives and how big it may grow.

The first of these that is set wins:

* size: ``HM_CACHE_MAX_SIZE``, then ``max_size`` under ``[cache]`` in the
  project's ``.hm/config.toml``, then 5 GiB;
* place: ``HM_CACHE_DIR``, then ``steps/`` in hm's cache directory
  (:func:`hm.paths.cache_dir`; under ``HM_HOME`` when that is set).

A size is a number of bytes (``1000000``) or a number with a unit: ``500M``,
``5GiB``, ``1.5g``; ``b``, ``k``, ``m``, ``g`` and ``t``, with or without ``b``
or ``ib`` after them, are powers of 1024 (as the container runner reads
``runner_args.memory``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hm import paths
from hm.errors import ConfigError
from hm.runtime import CONFIG_FILE, read_project_config

__all__ = ["DEFAULT_MAX_SIZE", "CacheConfig", "format_size", "parse_size"]

#: The bound when nothing sets one: 5 GiB.
DEFAULT_MAX_SIZE: Final = 5 * 1024**3

_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[bkmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS: Final = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DOCS: Final = "see 'The step cache' in the README"
_SETTINGS: Final = ("max_size",)


def parse_size(value: object) -> int | None:
    """Bytes from ``1000``, ``"500M"``, ``"5GiB"``, ``"1.5g"``; ``None`` if it is not a size > 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        return None
    size = int(float(match["number"]) * _UNITS[match["unit"].lower()])
    return size if size > 0 else None


def format_size(size: int) -> str:
    """``1.2 GiB``, ``340 KiB``, ``12 B``: for listings and messages."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The cache's directory and bound, and where each came from (for ``hm cache list``)."""

    dir: Path
    max_size: int
    max_size_from: str = "default"

    @classmethod
    def from_environment(cls, project_root: Path | None, env: Mapping[str, str] | None = None) -> CacheConfig:
        """Read ``HM_CACHE_DIR``, ``HM_CACHE_MAX_SIZE`` and the project's ``[cache]`` table.

        :raises ConfigError: a size that is not one, or an unknown ``[cache]`` setting (exit 3).
        """
        env = os.environ if env is None else env
        where = env.get("HM_CACHE_DIR", "").strip()
        directory = Path(where).expanduser() if where else paths.cache_dir() / "steps"
        max_size, source = DEFAULT_MAX_SIZE, "default"
        if project_root is not None:
            table = _cache_table(read_project_config(project_root), project_root / CONFIG_FILE)
            if "max_size" in table:
                max_size = _size(table["max_size"], f"{project_root / CONFIG_FILE}: [cache] max_size")
                source = str(CONFIG_FILE)
        if env.get("HM_CACHE_MAX_SIZE", "").strip():
            max_size, source = _size(env["HM_CACHE_MAX_SIZE"], "HM_CACHE_MAX_SIZE"), "HM_CACHE_MAX_SIZE"
        return cls(directory, max_size, source)


def _cache_table(config: dict[str, Any], path: Path) -> dict[str, Any]:
    table = config.get("cache", {})
    if not isinstance(table, dict):
        raise ConfigError("`cache` must be a table ([cache])", where=str(path), hint=_DOCS)
    unknown = sorted(set(table) - set(_SETTINGS))
    if unknown:
        raise ConfigError(
            f"[cache] has unknown setting(s) {', '.join(unknown)}",
            where=str(path),
            hint=f"the only setting is `max_size`; {_DOCS}",
        )
    return table


def _size(value: object, where: str) -> int:
    size = parse_size(value)
    if size is None:
        raise ConfigError(
            f"{value!r} is not a size",
            where=where,
            hint='give bytes (1000000) or a number with a unit, e.g. "500M" or "5GiB" (powers of 1024)',
        )
    return size
