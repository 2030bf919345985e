"""The layers of DESIGN.md, read from the code's own import statements (its AST,
not its text): only ``hm.runtime`` touches native code (cffi, ctypes, the
compiled bridge), and everything else reaches the runtime through its facade
``hm.runtime``, never through one of its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import hm.runtime

ROOT = Path(__file__).resolve().parent.parent
NATIVE = {"cffi", "ctypes", "_cffi_backend", "hm._hm_bridge", "hm.runtime._ffi"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, ``from X import Y`` as ``X`` and ``X.Y``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def outside_the_runtime() -> list[Path]:
    return [p for p in (ROOT / "hm").rglob("*.py") if p.relative_to(ROOT).parts[:2] != ("hm", "runtime")]


def test_only_the_runtime_touches_native_code() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in outside_the_runtime()
        for line, module in imports(path)
        if module in NATIVE or module.split(".")[0] in {"cffi", "ctypes"}
    ]
    assert offenders == []


def test_the_runtime_is_reached_through_its_facade_only() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in outside_the_runtime()
        for line, module in imports(path)
        if module.startswith("hm.runtime.") and module.removeprefix("hm.runtime.") not in hm.runtime.__all__
    ]
    assert offenders == []


def test_every_facade_name_resolves() -> None:
    for name in hm.runtime.__all__:
        assert getattr(hm.runtime, name) is not None, name


def test_the_check_finds_a_ctypes_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import ctypes.util as u\n    from hm.runtime.worker import WorkerProcess\n")
    modules = [m for _, m in imports(sample)]
    assert "ctypes.util" in modules and "hm.runtime.worker.WorkerProcess" in modules
