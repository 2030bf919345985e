"""Loading one plugin library into hm's own process, and checking it before use.

Order matters: nothing in the vtable is called until the library was opened with
``RTLD_NOW | RTLD_LOCAL``, ``hm_load_plugin`` returned a table, and the table's
header passed :func:`~hm.runtime.vtable_check.check_vtable`. Libraries are never
closed (see DESIGN.md), so a path is loaded at most once per process.

Each library gets its own bridge *slot*: its own host-API table, through which
every host call it makes is attributed to it (see ``host_api``). The first load
also installs the bridge's last words: a fatal signal or an ``exit()`` inside a
plugin call is named on stderr (and ends the ``--format json`` stream) before
the process dies.
"""

from __future__ import annotations

import atexit
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hm.errors import PluginLoadError
from hm.runtime import host_api  # noqa: F401  (attaches the host-API callbacks before any plugin runs)
from hm.runtime._ffi import ffi, lib
from hm.runtime.vtable_check import VtableFacts, check_vtable, load_refusal

__all__ = ["NativeLibrary", "load_library"]


@dataclass(frozen=True, slots=True)
class NativeLibrary:
    """A loaded, header-checked plugin: its vtable and instance pointers."""

    path: str
    vtable: Any
    instance: Any
    facts: VtableFacts
    #: The bridge slot whose host table the plugin got.
    slot: int

    @property
    def abi_major(self) -> int:
        return self.facts.abi_major

    @property
    def abi_minor(self) -> int:
        return self.facts.abi_minor

    @property
    def offers(self) -> int:
        return self.facts.offers


_loaded: dict[str, tuple[tuple[int, int], NativeLibrary]] = {}
_lock = threading.Lock()
_next_slot = 0
#: Labels handed to the bridge for crash messages; kept alive for its pointers.
_labels: list[bytes] = []


def load_library(path: Path) -> NativeLibrary:
    """Open ``path`` (once per process) and check its ABI header.

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
        native = _open_and_check(key)
        _loaded[key] = (identity, native)
        return native


def label_for(slot: int, label: str, path: str) -> bytes:
    """Tell the bridge the plugin in ``slot`` is ``label``; returns the bytes to pass
    to calls (kept alive here, as the bridge borrows them)."""
    data = label.encode("utf-8", "replace")
    _labels.append(data)
    lib.hm_bridge_note_plugin(slot, data, path.encode("utf-8", "surrogateescape"))
    return data


def set_last_words(run_id: str | None) -> None:
    """What the bridge prints on stdout if an in-process plugin takes hm down during
    run ``run_id``: a ``build_finished`` event, so a ``--format json`` stream still
    ends with one. ``None`` stops it. Nothing to do when no plugin is in process."""
    if not _loaded:
        return
    if run_id is None:
        lib.hm_bridge_set_last_words(ffi.NULL, ffi.NULL, ffi.NULL)
        return
    head = f'{{"kind":"build_finished","run_id":{json.dumps(run_id)},"ts":"'.encode()
    lib.hm_bridge_set_last_words(head, b'","status":"error","exit_code":', b'"}\n')


def exit_expected() -> None:
    """hm is about to exit on purpose: its own exit() is not a plugin's."""
    if _loaded:
        lib.hm_bridge_exit_expected()


def live_calls() -> int:
    """In-process calls still running (a runner abandoned after a timeout)."""
    from hm.runtime.calls import CALLS

    return len(CALLS)


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


def _open_and_check(path: str) -> NativeLibrary:
    global _next_slot
    if not Path(path).is_file():
        raise PluginLoadError("file not found", path=path, hint="check the path, or run `hm plugin list`")
    if _next_slot >= int(lib.hm_bridge_slots()):
        raise PluginLoadError(
            f"more than {int(lib.hm_bridge_slots())} plugins are loaded into this hm process",
            path=path,
            hint='run some plugins isolated: `hm run --isolate`, or `isolation = "process"` in .hm/config.toml',
        )
    lib.hm_bridge_install_last_words()
    entry = ffi.new("void **")
    err = ffi.new("char[]", 1024)
    rc = lib.hm_bridge_open(path.encode(), entry, err, len(err))
    if rc == 1:
        raise load_refusal("open", ffi.string(err).decode(errors="replace"), path)
    if rc == 2:
        raise load_refusal("entry", "", path)
    slot = _next_slot
    _next_slot += 1
    label = label_for(slot, path, path)
    instance = ffi.new("void **")
    vtable = lib.hm_bridge_load(entry[0], slot, label, instance)
    if vtable == ffi.NULL:
        raise load_refusal("refused", "", path)
    header = vtable.header
    size = int(header.struct_size)
    sized = size >= int(lib.hm_bridge_vtable_min_size())
    facts = VtableFacts(
        struct_size=size,
        abi_major=int(header.abi_major),
        abi_minor=int(header.abi_minor),
        missing=int(lib.hm_bridge_vtable_missing(vtable)) if sized else 0,
        offers=int(lib.hm_bridge_vtable_offers(vtable)) if sized else 0,
    )
    check_vtable(facts, path)
    return NativeLibrary(path=path, vtable=vtable, instance=instance[0], facts=facts, slot=slot)
