"""What hm requires of a plugin's vtable before it calls anything in it.

The same rules apply wherever the library was loaded (in hm's process or in a
worker): the ABI major is hm's, ``struct_size`` covers the ABI 1.0 layout,
``manifest``, ``free`` and ``destroy`` are set, and every capability the manifest
declares has its entry (a step executor whose ``execute_step`` is NULL would fail
every step; a ``before`` hook without ``on_hook_event`` would abort every build).
"""

from __future__ import annotations

from dataclasses import dataclass

from hm.errors import PluginLoadError
from hm_plugin_sdk.abi import ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL
from hm_plugin_sdk.protocol import (
    LifecycleHookCapability,
    PluginManifest,
    StepExecutorCapability,
    SubcommandCapability,
)

__all__ = ["MIN_VTABLE_SIZE", "VtableFacts", "check_capabilities", "check_vtable", "load_refusal"]

REBUILD = f"rebuild it against the hm_plugin.h shipped with this hm (ABI {ABI_MAJOR}.{ABI_MINOR})"

#: sizeof the ABI 1.0 vtable (through ``destroy``) on this platform: a header
#: and six pointers.
MIN_VTABLE_SIZE = 16 + 6 * 8 if __import__("struct").calcsize("P") == 8 else 12 + 6 * 4

#: Bits of ``VtableFacts.offers`` and the capability each entry serves.
OFFER_BITS = {"execute_step": 1, "on_hook_event": 2, "run_subcommand": 4, "session_open": 8}
_ENTRY_OF = {
    StepExecutorCapability: "execute_step",
    LifecycleHookCapability: "on_hook_event",
    SubcommandCapability: "run_subcommand",
}


@dataclass(frozen=True, slots=True)
class VtableFacts:
    """A vtable's header and which entries are set, as the loader read them."""

    struct_size: int
    abi_major: int
    abi_minor: int
    #: Bits: 1 manifest, 2 free, 4 destroy are NULL.
    missing: int
    #: Bits: 1 execute_step, 2 on_hook_event, 4 run_subcommand are set.
    offers: int


def load_refusal(stage: str, detail: str, path: str) -> PluginLoadError:
    """The error for a library that could not be opened (``open``), exports no
    entry point (``entry``) or whose entry point returned NULL (``refused``)."""
    if stage == "open":
        return PluginLoadError(
            f"cannot be opened as a shared library: {detail}",
            path=path,
            stage="open",
            hint="make sure it was built for this platform and that its dependencies are installed",
        )
    if stage == "entry":
        return PluginLoadError(
            f"does not export `{ENTRY_SYMBOL}`, so it is not an hm plugin",
            path=path,
            stage="entry",
            hint="export it with HM_EXPORT from hm_plugin.h, or remove the file from the plugin folder",
        )
    return PluginLoadError(
        f"`{ENTRY_SYMBOL}` returned NULL: the plugin refused to load",
        path=path,
        stage="refused",
        hint=f"a plugin refuses a host whose ABI major differs from its own (this hm speaks {ABI_MAJOR}.x); "
        "rebuild it against the hm_plugin.h shipped with this hm, or ask its author why it refuses",
    )


def check_vtable(facts: VtableFacts, path: str) -> None:
    """:raises PluginLoadError: (stage ``header``) naming what is wrong."""
    major, minor, size = facts.abi_major, facts.abi_minor, facts.struct_size
    if major != ABI_MAJOR:
        raise PluginLoadError(
            f"built for ABI {major}.{minor} while this hm speaks {ABI_MAJOR}.x", path=path, hint=REBUILD, stage="header"
        )
    if size < MIN_VTABLE_SIZE:
        raise PluginLoadError(
            f"its vtable declares struct_size {size} bytes, smaller than the {MIN_VTABLE_SIZE} bytes of ABI "
            f"{ABI_MAJOR}.0 (claims {major}.{minor})",
            path=path,
            hint=f"{REBUILD}; set struct_size to sizeof(hm_plugin_vtable_t)",
            stage="header",
        )
    if facts.missing:
        names = [n for bit, n in ((1, "manifest"), (2, "free"), (4, "destroy")) if facts.missing & bit]
        raise PluginLoadError(
            f"its vtable has no {', '.join(names)} function (required)",
            path=path,
            hint="fill every required entry of hm_plugin_vtable_t",
            stage="header",
        )


def check_capabilities(manifest: PluginManifest, offers: int, path: str) -> None:
    """Every declared capability has its vtable entry.

    :raises PluginLoadError: (stage ``manifest``) naming each capability and entry.
    """
    missing = []
    for cap in manifest.capabilities:
        entry = _ENTRY_OF[type(cap)]
        if not offers & OFFER_BITS[entry]:
            missing.append(f"it declares {cap.__struct_config__.tag} but its vtable's {entry} is NULL")
        if isinstance(cap, StepExecutorCapability) and cap.sessions and not offers & OFFER_BITS["session_open"]:
            missing.append(
                "it declares sessions but its vtable lacks session_open, session_write, session_resize, "
                "session_signal or session_close (ABI 1.1)"
            )
    if missing:
        raise PluginLoadError(
            "; ".join(dict.fromkeys(missing)),
            path=path,
            plugin=manifest.name,
            hint="set the vtable entry of every capability the manifest lists, or drop the capability",
            stage="manifest",
        )
