"""What hm and its plugin authors share: the ABI constants, the message schemas and
the C headers (``hm_plugin_sdk/include``). The Rust crate lives in ``hm_plugin_sdk/rust``."""

from __future__ import annotations

from hm_plugin_sdk import protocol
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
