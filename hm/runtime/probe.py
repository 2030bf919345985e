"""Reading a library's manifest without running its code in hm: the probe.

Loading a library runs its code (constructors, ``hm_load_plugin``, ``manifest``),
and a library that aborts, faults or hangs there must take down a worker, not
hm. :func:`probe` loads it in an ``hm-worker`` with the real loader checks and
returns its manifest and ABI version, or why it cannot be used. Discovery
(:meth:`Registry.discover <hm.runtime.registry.Registry.discover>`) probes every
library that is not in the manifest cache, and ``hm plugin install`` probes a
file before it installs it.

A probe is bounded: the worker gets ``PROBE_TIMEOUT`` seconds to load the
library and answer ``manifest``. A crash or a hang is a verdict like any other
and is cached (keyed by the file's size, mtime and hash), so the next command
does not wait for the same library again. This is robustness, not a sandbox:
the library runs with the user's rights, here as everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hm.errors import PluginLoadError
from hm.runtime.manifest_cache import Outcome
from hm.runtime.plugin import open_plugin
from hm.runtime.stdio_descriptor import is_descriptor
from hm.runtime.worker import worker_exe

__all__ = ["PROBE_TIMEOUT", "ProbeResult", "probe"]

log = logging.getLogger("hm.probe")

#: Seconds a library gets to load and answer ``manifest`` when it is probed.
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the probe found. ``definitive`` says the verdict may be cached: it is
    False only when hm itself could not run the probe (e.g. its worker is missing)."""

    outcome: Outcome
    definitive: bool


def probe(path: Path, *, shown_as: str | None = None, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Load ``path`` in a worker and return its manifest or why it cannot be loaded.

    Never raises for a bad library: the problem is in ``outcome.error``, a
    :class:`PluginLoadError` about ``shown_as`` (default: ``path``).
    """
    shown = shown_as or str(path)
    try:
        plugin = open_plugin(
            path, isolation="process", manifest_timeout=timeout, load_timeout=timeout, stderr_level=logging.DEBUG
        )
    except PluginLoadError as err:
        log.debug("probe of %s: %s", shown, err.one_line())
        # A stdio plugin whose program is missing may work once it is installed,
        # with the descriptor unchanged: that verdict is not kept.
        definitive = worker_exe().exists() and not (is_descriptor(path) and err.stage == "open")
        return ProbeResult(Outcome(error=_renamed(err, path, shown)), definitive=definitive)
    try:
        return ProbeResult(Outcome(manifest=plugin.manifest, abi=plugin.transport.abi), definitive=True)
    finally:
        plugin.transport.close()


def _renamed(err: PluginLoadError, path: Path, shown: str) -> PluginLoadError:
    """``err`` about ``shown`` instead of the probed file's own path."""
    if shown == str(path):
        return err

    def swap(text: str | None) -> str | None:
        if text is None:
            return None
        for spelling in sorted({str(path.resolve()), str(path.absolute()), str(path)}, key=len, reverse=True):
            text = text.replace(spelling, shown)
        return text

    renamed = PluginLoadError(swap(err.what) or err.what, path=shown, plugin=err.plugin, hint=swap(err.hint))
    renamed.stage = err.stage
    return renamed
