"""``hm plugin check`` on a stdio plugin (``NAME.plugin.toml``): the checks that
differ from a library's.

``load`` starts the descriptor's command and exchanges ``initialize``;
``header`` is the protocol version it answered. ``manifest``, the capability
checks and ``threads`` (concurrent calls into the one process) are the
library's; ``free`` and ``older-host`` do not apply (no memory crosses the
protocol, and a plugin learns hm's protocol version from ``initialize``), so
they are skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Callable

from hm.check.checks import Target, Verdict, failed, passed
from hm.errors import PluginLoadError

__all__ = ["NOT_APPLICABLE", "STDIO_CHECKS"]

#: Checks of a library that a stdio plugin skips, and why.
NOT_APPLICABLE = {
    "free": "not applicable to a stdio plugin: no memory crosses the protocol",
    "older-host": "not applicable to a stdio plugin: it learns hm's protocol version from initialize",
}


def _detail(err: PluginLoadError) -> str:
    return f"{err.what}; {err.hint}" if err.hint else err.what


def check_stdio_load(t: Target) -> Verdict:
    """The command starts and answers ``initialize`` with a protocol version."""
    try:
        facts = t.facts()
    except PluginLoadError as err:
        return failed(f"expected its command to start and answer initialize; {_detail(err)}")
    return passed(f"its command started and answered initialize (protocol {facts.abi_major}.{facts.abi_minor})")


def check_stdio_header(t: Target) -> Verdict:
    """The protocol major it answered is hm's (load refuses any other, so this
    restates what load found)."""
    from hm.runtime import STDIO_PROTOCOL

    facts = t.facts()
    major, minor = STDIO_PROTOCOL
    return passed(f"speaks stdio protocol {facts.abi_major}.{facts.abi_minor} (hm speaks {major}.{minor})")


STDIO_CHECKS: dict[str, Callable[[Target], Verdict]] = {"load": check_stdio_load, "header": check_stdio_header}
