"""The only module that imports the compiled cffi bridge; everything else in hm
reaches native code through the runtime's typed wrappers."""

from __future__ import annotations

try:
    from hm._hm_bridge import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "hm's native bridge (hm._hm_bridge) is not built; reinstall hm with "
        "`pip install .` or run `python build.py bridge` in a source checkout"
    ) from exc

__all__ = ["ffi", "lib"]
