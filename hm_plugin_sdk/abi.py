"""ABI constants of ``hm_plugin.h``, mirrored for the Python host.

The header is the source of truth; ``tests/sdk/test_abi_constants.py`` parses it
and fails when a number here disagrees.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Final

ABI_MAJOR: Final = 1
ABI_MINOR: Final = 1
ENTRY_SYMBOL: Final = "hm_load_plugin"

#: The host-API table's entries after ``header``, in order, each with the ABI minor
#: that added it (``hm_host_api_t``). ``tests/sdk/test_c_header.py`` checks it
#: against the header. A table cut to minor N ends after the last entry of N.
HOST_API_ENTRIES: Final[tuple[tuple[str, int], ...]] = (
    ("host_data", 0),
    ("log", 0),
    ("kv_get", 0),
    ("kv_set", 0),
    ("emit_event", 0),
    ("emit_step_log", 0),
    ("should_cancel", 0),
    ("write_stdout", 0),
    ("write_stderr", 0),
    ("archive_read", 0),
    ("archive_total_size", 0),
    ("fs_read_config", 0),
    ("free", 0),
    ("kv_compare_and_swap", 1),
    ("session_output", 1),
)

#: The plugin vtable's entries after ``header``, with the minor that added each.
VTABLE_ENTRIES: Final[tuple[tuple[str, int], ...]] = (
    ("manifest", 0),
    ("execute_step", 0),
    ("on_hook_event", 0),
    ("run_subcommand", 0),
    ("free", 0),
    ("destroy", 0),
    ("session_open", 1),
    ("session_write", 1),
    ("session_resize", 1),
    ("session_signal", 1),
    ("session_close", 1),
)


def host_table_size(minor: int) -> int:
    """``struct_size`` of ``hm_host_api_t`` as ABI ``1.minor`` laid it out on this
    platform: the header, then one pointer per entry up to that minor's last."""
    import struct

    n = sum(1 for _name, since in HOST_API_ENTRIES if since <= minor)
    return struct.calcsize("III" + "P" * n)


#: The directory holding ``hm_plugin.h`` and ``hm_msgpack.h``, for compiling plugins.
INCLUDE_DIR: Final = Path(__file__).resolve().parent / "include"


class Status(enum.IntEnum):
    """``hm_status_t`` values (``HM_OK``, ``HM_ERR_*``, ``HM_CANCELLED``)."""

    OK = 0
    ERR_FAILED = 1
    ERR_UNSUPPORTED = 2
    ERR_INVALID_ARGUMENT = 3
    ERR_NOT_FOUND = 4
    ERR_STALE_CALL = 5
    ERR_DENIED = 6
    ERR_IO = 7
    CANCELLED = 8
    ERR_UNAVAILABLE = 9
    ERR_NO_MEMORY = 10
    ERR_INTERNAL = 11
    #: Since 1.1: ``kv_compare_and_swap`` found another value.
    ERR_CONFLICT = 12


class LogLevel(enum.IntEnum):
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40


class Stream(enum.IntEnum):
    STDOUT = 1
    STDERR = 2


class KvScope(enum.IntEnum):
    PLUGIN = 0
    BUILD = 1
    STEP = 2


class Signal(enum.IntEnum):
    """``HM_SIGNAL_*`` of ``session_signal`` (since 1.1); hm's numbers, not the platform's."""

    INTERRUPT = 1
    TERMINATE = 2
    KILL = 3
    HANGUP = 4
