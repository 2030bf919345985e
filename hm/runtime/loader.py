"""Loading one plugin library in this process, and checking it before use.

Order matters: nothing in the vtable is called until the library was opened with
``RTLD_NOW | RTLD_LOCAL``, ``hm_load_plugin`` returned a table, the table's ABI
major matches and its size covers the 1.0 layout. Libraries are never closed
(see DESIGN.md), so a path is loaded at most once per process.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hm.errors import PluginLoadError
from hm.runtime._ffi import ffi, lib
from hm.runtime.host_api import host_api
from hm_plugin_sdk.abi import ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL

_REBUILD = f"rebuild it against the hm_plugin.h shipped with this hm (ABI {ABI_MAJOR}.{ABI_MINOR})"


@dataclass(frozen=True, slots=True)
class NativeLibrary:
    """A loaded, header-checked plugin: its vtable and instance pointers."""

    path: str
    vtable: Any
    instance: Any
    abi_major: int
    abi_minor: int
    #: Bits: 1 execute_step, 2 on_hook_event, 4 run_subcommand (non-NULL entries).
    offers: int


_loaded: dict[str, tuple[tuple[int, int], NativeLibrary]] = {}
_lock = threading.Lock()


def load_library(path: Path, *, host_size: int | None = None) -> NativeLibrary:
    """Open ``path`` (once per process) and check its ABI header.

    :param host_size: ``None`` (the default) hands ``hm_load_plugin`` the real host
        table. A number hands it a copy that claims an older layout: ``struct_size``
        is ``host_size``, ``abi_minor`` 0 and every field past ``host_size`` is NULL
        (``hm_bridge_host_api_as``). ``hm plugin check`` uses it, in a process of its
        own, to test that a plugin honours ``struct_size``. It matters only on the
        first load of ``path`` in a process.
    :raises PluginLoadError: with the path, what is wrong and what to do.
    """
    key = str(path.resolve())
    try:
        st = Path(key).stat()
        identity = (st.st_dev, st.st_ino)
    except OSError:
        identity = (0, 0)
    with _lock:
        if key in _loaded:
            loaded_identity, native = _loaded[key]
            if loaded_identity != identity:
                # dlopen would hand back the old mapping for this path: a new file
                # needs a new process (libraries are never unloaded).
                raise PluginLoadError(
                    "was replaced on disk after this process loaded it",
                    path=key,
                    hint="run the command again to use the new library",
                )
            return native
        native = _open_and_check(key, host_api() if host_size is None else lib.hm_bridge_host_api_as(host_size, 0))
        _loaded[key] = (identity, native)
        return native


@atexit.register
def _destroy_instances() -> None:
    """Give every loaded instance its ``destroy`` call, unless a call is still running
    (a runner abandoned after a timeout may be inside it)."""
    from hm.runtime.calls import CALLS

    if len(CALLS):
        return
    with _lock:
        for _, native in _loaded.values():
            lib.hm_bridge_destroy(native.vtable, native.instance)
        _loaded.clear()


def _open_and_check(path: str, host: Any) -> NativeLibrary:
    if not Path(path).is_file():
        raise PluginLoadError("file not found", path=path, hint="check the path, or run `hm plugin list`")
    entry = ffi.new("void **")
    err = ffi.new("char[]", 1024)
    rc = lib.hm_bridge_open(path.encode(), entry, err, len(err))
    if rc == 1:
        reason = ffi.string(err).decode(errors="replace")
        raise PluginLoadError(
            f"cannot be opened as a shared library: {reason}",
            path=path,
            stage="open",
            hint="make sure it was built for this platform and that its dependencies are installed",
        )
    if rc == 2:
        raise PluginLoadError(
            f"does not export `{ENTRY_SYMBOL}`, so it is not an hm plugin",
            path=path,
            stage="entry",
            hint="export it with HM_EXPORT from hm_plugin.h, or remove the file from the plugin folder",
        )
    instance = ffi.new("void **")
    vtable = lib.hm_bridge_load(entry[0], host, instance)
    if vtable == ffi.NULL:
        raise PluginLoadError(
            f"`{ENTRY_SYMBOL}` returned NULL: the plugin refused to load",
            path=path,
            stage="refused",
            hint=f"a plugin refuses a host whose ABI major differs from its own (this hm speaks {ABI_MAJOR}.x); "
            "rebuild it against the hm_plugin.h shipped with this hm, or ask its author why it refuses",
        )
    header = vtable.header
    major, minor, size = int(header.abi_major), int(header.abi_minor), int(header.struct_size)
    if major != ABI_MAJOR:
        raise PluginLoadError(
            f"built for ABI {major}.{minor} while this hm speaks {ABI_MAJOR}.x",
            path=path,
            hint=_REBUILD,
        )
    minimum = int(lib.hm_bridge_vtable_min_size())
    if size < minimum:
        raise PluginLoadError(
            f"its vtable declares struct_size {size} bytes, smaller than the {minimum} bytes of ABI "
            f"{ABI_MAJOR}.0 (claims {major}.{minor})",
            path=path,
            hint=f"{_REBUILD}; set struct_size to sizeof(hm_plugin_vtable_t)",
        )
    missing = int(lib.hm_bridge_vtable_missing(vtable))
    if missing:
        names = [n for bit, n in ((1, "manifest"), (2, "free"), (4, "destroy")) if missing & bit]
        raise PluginLoadError(
            f"its vtable has no {', '.join(names)} function (required)",
            path=path,
            hint="fill every required entry of hm_plugin_vtable_t",
        )
    return NativeLibrary(
        path=path,
        vtable=vtable,
        instance=instance[0],
        abi_major=major,
        abi_minor=minor,
        offers=int(lib.hm_bridge_vtable_offers(vtable)),
    )
