"""Where hm keeps its files: user plugins, persistent state, caches.

``HM_HOME`` puts all of them under one directory (tests and CI use it);
otherwise the platform's conventional data, state and cache directories are used.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def _home() -> Path | None:
    value = os.environ.get("HM_HOME")
    return Path(value).expanduser() if value else None


def user_plugin_dir() -> Path:
    """Plugins installed with ``hm plugin install`` (without ``--project``)."""
    home = _home()
    return home / "plugins" if home else Path(platformdirs.user_data_dir("hm")) / "plugins"


def state_dir() -> Path:
    """Persistent state: the plugin-scope key-value store."""
    home = _home()
    return home / "state" if home else Path(platformdirs.user_state_dir("hm"))


def runs_dir() -> Path:
    """Run records (events, full step logs, artifacts): under the state directory,
    one folder per project."""
    return state_dir() / "runs"


def cache_dir() -> Path:
    """Disposable caches: the manifest cache."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir("hm"))


def work_dir() -> Path:
    """Where runs make their step workspaces (each run a folder of its own, gone at
    its end): ``HM_WORK_DIR``, else the cache directory's ``work/``.

    Not the system's temporary folder: a build's workspaces can be large, and /tmp
    is often a small RAM-backed file system (and on some machines slow to create
    folders in)."""
    value = os.environ.get("HM_WORK_DIR")
    return Path(value).expanduser() if value else cache_dir() / "work"


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir("hm"))


def project_plugin_dir(project_root: Path) -> Path:
    return project_root / ".hm" / "plugins"
