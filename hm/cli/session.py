"""Per-invocation state shared by the commands: options, project, plugin registry.

The registry is built lazily and once, so a command that needs no plugin reads
no manifest, and one that does reads each (cached) manifest once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hm.runtime import Registry

Format = Literal["human", "json"]


@dataclass
class Session:
    verbose: bool = False
    project_dir: Path | None = None
    #: Kill what plugins left running when hm exits (off for plugin verbs and extensions).
    reap_leftovers: bool = True
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def project_root(self) -> Path:
        from hm.pipeline.sources import find_project_root

        return find_project_root(self.project_dir or Path.cwd())

    @property
    def registry(self) -> Registry:
        """Every plugin found, with the isolation ``.hm/config.toml`` and ``HM_ISOLATE`` ask for.

        :raises ConfigError: the config file or ``HM_ISOLATE`` is malformed (exit 3).
        """
        if self._registry is None:
            from hm.runtime import IsolationPolicy, Registry

            root = self.project_root
            policy = IsolationPolicy.from_environment(root)
            self._registry = Registry.discover(root, policy=policy)
        return self._registry

    def configure_logging(self) -> None:
        level = logging.DEBUG if self.verbose else logging.WARNING
        logging.basicConfig(level=level, format="hm: %(levelname)s %(name)s: %(message)s")
        if os.environ.get("HM_LOG"):
            logging.getLogger("hm").setLevel(os.environ["HM_LOG"].upper())


#: The session of this process; the root callback fills it in.
SESSION = Session()
