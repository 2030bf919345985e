"""The plugin runtime: finding plugins, loading them, and calling them.

Everything outside this package reaches plugins through the names below, never
through a module of it, and never touches cffi (``tests/test_layers.py`` checks
both). Names are imported on first use, so ``hm --help`` pays for none of them.

Internals, by job: ``discovery`` (where libraries are), ``probe`` and
``manifest_cache`` (reading manifests safely and once), ``registry`` (who claims
what), ``transport`` (the seam), ``inprocess``/``loader``/``host_api`` (a library
in hm's process), ``worker``/``worker_protocol`` (a library in a worker),
``stdio``/``stdio_protocol``/``stdio_descriptor`` (an executable speaking
JSON-RPC), ``host_calls``/``host_services`` (what a plugin can ask of hm), ``sessions``
(interactive sessions, ABI 1.1), ``calls``
(handles), ``limits``, ``isolation``, ``install``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CONFIG_FILE",
    "ISOLATIONS",
    "KILL_GRACE_SECONDS",
    "STDIO_PROTOCOL",
    "WORKER_EXE",
    "CallContext",
    "HostServices",
    "HostStatus",
    "InstallResult",
    "Isolation",
    "IsolationPolicy",
    "Note",
    "Op",
    "Plugin",
    "PluginFile",
    "PluginKvStore",
    "PluginRecord",
    "Registry",
    "RemoveResult",
    "Request",
    "Session",
    "SessionServices",
    "Transport",
    "UnavailablePlugin",
    "VtableFacts",
    "check_vtable",
    "exit_expected",
    "find_library",
    "folder_label",
    "install_plugin",
    "is_descriptor",
    "kill_grace",
    "live_calls",
    "open_plugin",
    "open_transport",
    "plugin_suffix",
    "probe",
    "read_descriptor",
    "read_project_config",
    "remove_plugin",
    "serve_event",
    "serve_note",
    "serve_request",
    "session_error",
    "set_call_observer",
    "set_last_words",
    "shutdown_workers",
    "supports_sessions",
    "translate",
    "unavailable_bundled",
]

_WHERE = {
    "live_calls": "loader",
    "exit_expected": "loader",
    "check_vtable": "vtable_check",
    "VtableFacts": "vtable_check",
    "open_transport": "transport",
    "unavailable_bundled": "unavailable",
    "UnavailablePlugin": "unavailable",
    "ISOLATIONS": "transport",
    "Isolation": "transport",
    "Op": "transport",
    "Transport": "transport",
    "KILL_GRACE_SECONDS": "worker",
    "WORKER_EXE": "worker",
    "kill_grace": "worker",
    "set_last_words": "loader",
    "shutdown_workers": "worker",
    "CallContext": "calls",
    "HostServices": "host_services",
    "HostStatus": "host_services",
    "InstallResult": "install",
    "PluginFile": "install",
    "RemoveResult": "install",
    "folder_label": "install",
    "install_plugin": "install",
    "remove_plugin": "install",
    "IsolationPolicy": "isolation",
    "CONFIG_FILE": "isolation",
    "read_project_config": "isolation",
    "Plugin": "plugin",
    "set_call_observer": "plugin",
    "open_plugin": "plugin",
    "translate": "plugin",
    "PluginKvStore": "kv_store",
    "PluginRecord": "registry",
    "Registry": "registry",
    "plugin_suffix": "discovery",
    "is_descriptor": "stdio_descriptor",
    "read_descriptor": "stdio_descriptor",
    "STDIO_PROTOCOL": "stdio_protocol",
    "probe": "probe",
    "Session": "sessions",
    "SessionServices": "sessions",
    "session_error": "sessions",
    "supports_sessions": "sessions",
    "Note": "relay",
    "Request": "relay",
    "find_library": "relay",
    "serve_event": "relay",
    "serve_note": "relay",
    "serve_request": "relay",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hm.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hm.runtime.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from hm.runtime.calls import CallContext
    from hm.runtime.discovery import plugin_suffix
    from hm.runtime.host_services import HostServices, HostStatus
    from hm.runtime.install import (
        InstallResult,
        PluginFile,
        RemoveResult,
        folder_label,
        install_plugin,
        remove_plugin,
    )
    from hm.runtime.isolation import CONFIG_FILE, IsolationPolicy, read_project_config
    from hm.runtime.kv_store import PluginKvStore
    from hm.runtime.loader import exit_expected, live_calls, set_last_words
    from hm.runtime.plugin import Plugin, open_plugin, set_call_observer, translate
    from hm.runtime.probe import probe
    from hm.runtime.registry import PluginRecord, Registry
    from hm.runtime.relay import Note, Request, find_library, serve_event, serve_note, serve_request
    from hm.runtime.sessions import Session, SessionServices, session_error, supports_sessions
    from hm.runtime.stdio_descriptor import is_descriptor, read_descriptor
    from hm.runtime.stdio_protocol import STDIO_PROTOCOL
    from hm.runtime.transport import ISOLATIONS, Isolation, Op, Transport, open_transport
    from hm.runtime.unavailable import UnavailablePlugin, unavailable_bundled
    from hm.runtime.vtable_check import VtableFacts, check_vtable
    from hm.runtime.worker import KILL_GRACE_SECONDS, WORKER_EXE, kill_grace, shutdown_workers
