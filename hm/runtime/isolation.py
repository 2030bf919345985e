"""Which plugins run isolated, in a worker process, and which in hm's own process.

The choice is the user's, from the strongest to the weakest source:

1. ``hm run --isolate``: every plugin;
2. ``HM_ISOLATE``: ``1`` (or ``all``) isolates every plugin, ``0`` none, and a
   comma-separated list of plugin names isolates those;
3. the project's ``.hm/config.toml``::

       [plugins.shell]
       isolation = "process"      # or "in-process"

4. the default: in process (fastest; a crash there is named, not contained).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hm.errors import ConfigError
from hm.runtime.transport import ISOLATIONS, Isolation

__all__ = ["CONFIG_FILE", "IsolationPolicy", "read_project_config"]

#: The project's configuration file, relative to the project root.
CONFIG_FILE = Path(".hm") / "config.toml"
_DOCS = "see the README, 'Isolation'"


@dataclass(frozen=True)
class IsolationPolicy:
    """Answers :meth:`for_plugin`; built by :meth:`from_environment`."""

    everything: bool = False
    plugins: Mapping[str, Isolation] = field(default_factory=dict)
    #: Where each choice came from, for ``hm plugin list/info``.
    sources: Mapping[str, str] = field(default_factory=dict)

    def for_plugin(self, name: str) -> Isolation:
        if self.everything:
            return "process"
        return self.plugins.get(name, "in-process")

    def source(self, name: str) -> str:
        if self.everything:
            return self.sources.get("*", "--isolate")
        return self.sources.get(name, "default")

    def isolating_everything(self, why: str = "--isolate") -> IsolationPolicy:
        return IsolationPolicy(True, self.plugins, {**self.sources, "*": why})

    @classmethod
    def from_environment(cls, project_root: Path | None, env: Mapping[str, str] | None = None) -> IsolationPolicy:
        """The policy of ``.hm/config.toml`` (if any) overridden by ``HM_ISOLATE``.

        :raises ConfigError: the config file or ``HM_ISOLATE`` is malformed (exit 3).
        """
        env = os.environ if env is None else env
        plugins: dict[str, Isolation] = {}
        sources: dict[str, str] = {}
        if project_root is not None:
            config_path = project_root / CONFIG_FILE
            for name, isolation in _config_isolation(read_project_config(project_root), config_path).items():
                plugins[name] = isolation
                sources[name] = str(CONFIG_FILE)
        value = env.get("HM_ISOLATE", "").strip()
        if value.lower() in ("1", "all", "true", "yes", "process"):
            return cls(True, plugins, {**sources, "*": "HM_ISOLATE"})
        if value.lower() in ("", "0", "false", "no", "none"):
            return cls(False, plugins, sources)
        for name in filter(None, (part.strip() for part in value.split(","))):
            if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", name):
                raise ConfigError(
                    f"HM_ISOLATE names {name!r}, which is not a plugin name",
                    where="HM_ISOLATE",
                    hint="set it to 1 (every plugin), 0 (none) or plugin names separated by commas",
                )
            plugins[name] = "process"
            sources[name] = "HM_ISOLATE"
        return cls(False, plugins, sources)


def read_project_config(project_root: Path) -> dict[str, Any]:
    """The parsed ``.hm/config.toml``, or ``{}`` when the project has none.

    :raises ConfigError: it is not valid TOML (``where`` is ``file:line``).
    """
    path = project_root / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read: {exc}", where=str(path), hint="check the file's permissions") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(
            f"is not valid TOML: {what}", where=where, hint="fix the file (https://toml.io), " + _DOCS
        ) from None


def _config_isolation(config: dict[str, Any], path: Path) -> dict[str, Isolation]:
    plugins = config.get("plugins", {})
    if not isinstance(plugins, dict):
        raise ConfigError("`plugins` must be a table of [plugins.NAME] sections", where=str(path), hint=_DOCS)
    chosen: dict[str, Isolation] = {}
    for name, section in plugins.items():
        if not isinstance(section, dict):
            raise ConfigError(f"[plugins.{name}] must be a table", where=str(path), hint=_DOCS)
        unknown = sorted(set(section) - {"isolation"})
        if unknown:
            raise ConfigError(
                f"[plugins.{name}] has unknown setting(s) {', '.join(unknown)}",
                where=str(path),
                hint=f"the only setting is `isolation`; {_DOCS}",
            )
        if "isolation" in section:
            value = section["isolation"]
            if value not in ISOLATIONS:
                raise ConfigError(
                    f"[plugins.{name}] isolation = {value!r} is not one of {', '.join(map(repr, ISOLATIONS))}",
                    where=str(path),
                    hint=_DOCS,
                )
            chosen[name] = value
    return chosen
