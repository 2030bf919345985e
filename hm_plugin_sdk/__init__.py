"""What hm and its plugin authors share: the ABI constants, the message schemas and
the C headers (``hm_plugin_sdk/include``). The Rust crate lives in ``hm_plugin_sdk/rust``;
``hm_plugin_sdk.stdio`` is the helper for plugins written in Python.

``protocol`` (which needs msgspec) is imported on first use, so the stdio helper
runs on any ``python3`` with nothing installed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hm_plugin_sdk.abi import (
    ABI_MAJOR,
    ABI_MINOR,
    ENTRY_SYMBOL,
    INCLUDE_DIR,
    KvScope,
    LogLevel,
    Signal,
    Status,
    Stream,
)

__all__ = [
    "ABI_MAJOR",
    "ABI_MINOR",
    "ENTRY_SYMBOL",
    "INCLUDE_DIR",
    "KvScope",
    "LogLevel",
    "Signal",
    "Status",
    "Stream",
    "protocol",
]


def __getattr__(name: str) -> Any:
    if name == "protocol":
        import importlib

        return importlib.import_module("hm_plugin_sdk.protocol")
    raise AttributeError(f"module 'hm_plugin_sdk' has no attribute {name!r}")


if TYPE_CHECKING:
    from hm_plugin_sdk import protocol
