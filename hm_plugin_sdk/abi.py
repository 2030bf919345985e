"""ABI constants of ``hm_plugin.h``, mirrored for the Python host.

The header is the source of truth; ``tests/sdk/test_abi_constants.py`` parses it
and fails when a number here disagrees.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Final

ABI_MAJOR: Final = 1
ABI_MINOR: Final = 0
ENTRY_SYMBOL: Final = "hm_load_plugin"

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
