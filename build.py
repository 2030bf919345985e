"""Build the native parts of hm.

Two jobs, both driven from here so ``pip install .`` and a developer use the same code:

* ``ffibuilder`` — the cffi out-of-line (API mode) builder of the host bridge
  ``hm._hm_bridge``; ``setup.py`` names it in ``cffi_modules``.
* ``hm-worker`` — the executable that runs one native plugin in a process of its
  own (``hm/_native/worker/``, see docs/worker-protocol.md), built next to the
  bridge as ``hm/_native/hm-worker``;
* a small compiler driver for plugins: every directory under ``plugins/`` becomes a
  bundled plugin in ``hm/bundled_plugins/``; every directory under ``fixtures/``
  becomes a test fixture in ``build/fixtures/``. A directory with ``Cargo.toml``
  is built with ``cargo --offline``; otherwise its ``*.c`` files are compiled with
  the system C compiler against ``hm_plugin_sdk/include``.

Usage::

    python build.py              # bridge in place + worker + bundled plugins + fixtures
    python build.py worker       # the worker executable only
    python build.py plugins      # bundled plugins only
    python build.py fixtures     # fixtures only
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
INCLUDE = ROOT / "hm_plugin_sdk" / "include"
NATIVE = ROOT / "hm" / "_native"
BUNDLED_OUT = ROOT / "hm" / "bundled_plugins"
FIXTURES_OUT = ROOT / "build" / "fixtures"
WORKER_SRC = NATIVE / "worker"
WORKER_NAME = "hm-worker"


def plugin_suffix() -> str:
    """The platform's shared-library suffix: ``.so``, ``.dylib`` or ``.dll``."""
    if sys.platform == "darwin":
        return ".dylib"
    if sys.platform == "win32":
        return ".dll"
    return ".so"


def _make_ffibuilder() -> FFI:
    builder = FFI()
    builder.cdef((NATIVE / "bridge.cdef.h").read_text())
    builder.set_source(
        "hm._hm_bridge",
        (NATIVE / "bridge.c").read_text(),
        include_dirs=[str(INCLUDE)],
        libraries=[] if sys.platform == "win32" else ["dl"],
    )
    return builder


ffibuilder = _make_ffibuilder()


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def compile_c_plugin(src_dir: Path, out: Path) -> Path:
    """Compile the C sources of ``src_dir`` into the shared library ``out``."""
    sources = sorted(str(p) for p in src_dir.glob("*.c"))
    if not sources:
        raise SystemExit(f"build.py: {src_dir} has no .c files and no Cargo.toml")
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-fPIC", "-shared", "-fvisibility=hidden"]
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    extra = src_dir / "cflags.txt"
    extra_flags = shlex.split(extra.read_text()) if extra.exists() else []
    tmp = out.with_name(out.name + ".tmp")
    cmd = [*_compiler(), *flags, f"-I{INCLUDE}", *sources, "-o", str(tmp), *extra_flags, "-lpthread"]
    subprocess.run(cmd, check=True)
    os.replace(tmp, out)  # atomic: a half-written library is never picked up
    return out


def compile_rust_plugin(src_dir: Path, out: Path) -> Path:
    """Build the cdylib crate in ``src_dir`` offline and copy it to ``out``."""
    target_dir = ROOT / "build" / "cargo-target"
    subprocess.run(
        ["cargo", "build", "--offline", "--release", "--quiet", "--target-dir", str(target_dir)],
        cwd=src_dir,
        check=True,
    )
    name = _cargo_lib_name(src_dir / "Cargo.toml")
    prefix = "" if sys.platform == "win32" else "lib"
    built = target_dir / "release" / f"{prefix}{name}{plugin_suffix()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    shutil.copyfile(built, tmp)
    os.replace(tmp, out)
    return out


def _cargo_lib_name(cargo_toml: Path) -> str:
    import tomllib

    data = tomllib.loads(cargo_toml.read_text())
    name = data.get("lib", {}).get("name") or data["package"]["name"]
    return str(name).replace("-", "_")


def _is_fresh(out: Path, src_dir: Path) -> bool:
    """True when ``out`` is newer than every source it is built from (and the SDK)."""
    if not out.exists():
        return False
    inputs = [p for p in src_dir.rglob("*") if p.is_file() and "target" not in p.parts]
    inputs += list(INCLUDE.glob("*.h")) + [p for p in (src_dir.parent / "common").glob("*") if p.is_file()]
    if (src_dir / "Cargo.toml").exists():
        inputs += [p for p in (ROOT / "hm_plugin_sdk" / "rust").rglob("*") if p.is_file() and "target" not in p.parts]
    newest = max((p.stat().st_mtime_ns for p in inputs), default=0)
    return out.stat().st_mtime_ns >= newest


def compile_tree(src_root: Path, out_dir: Path, *, only_stale: bool = False) -> list[Path]:
    """Build every plugin directory under ``src_root`` into ``out_dir/<dir name><suffix>``.

    ``only_stale`` skips a plugin whose library is newer than its sources.
    """
    built: list[Path] = []
    if not src_root.is_dir():
        return built
    for src_dir in sorted(p for p in src_root.iterdir() if p.is_dir()):
        out = out_dir / f"{src_dir.name}{plugin_suffix()}"
        if only_stale and _is_fresh(out, src_dir):
            built.append(out)
            continue
        if (src_dir / "Cargo.toml").exists():
            built.append(compile_rust_plugin(src_dir, out))
        elif any(src_dir.glob("*.c")):
            built.append(compile_c_plugin(src_dir, out))
    return built


def build_bundled(out_dir: Path = BUNDLED_OUT) -> list[Path]:
    return compile_tree(ROOT / "plugins", out_dir)


def build_fixtures(out_dir: Path = FIXTURES_OUT, *, only_stale: bool = False) -> list[Path]:
    return compile_tree(ROOT / "fixtures", out_dir, only_stale=only_stale)


def build_worker(out_dir: Path = NATIVE) -> Path:
    """Compile ``hm-worker`` into ``out_dir`` (POSIX only: it is a pipe-and-dlopen program)."""
    out = out_dir / WORKER_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p) for p in WORKER_SRC.glob("*.c"))
    flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"]
    libs = ["-lpthread"] + ([] if sys.platform == "darwin" else ["-ldl"])
    tmp = out.with_name(out.name + ".tmp")
    subprocess.run([*_compiler(), *flags, f"-I{INCLUDE}", *sources, "-o", str(tmp), *libs], check=True)
    os.replace(tmp, out)  # atomic: a half-written worker is never started
    return out


def build_bridge_inplace() -> Path:
    """Compile ``hm._hm_bridge`` next to the sources (what an editable install does)."""
    tmp = ROOT / "build" / "cffi"
    built = Path(ffibuilder.compile(tmpdir=str(tmp), verbose=False))
    dest = ROOT / "hm" / built.name
    shutil.copyfile(built, dest)
    return dest


def main(argv: list[str]) -> int:
    what = argv[1:] or ["bridge", "worker", "plugins", "fixtures"]
    for job in what:
        if job == "bridge":
            print(f"bridge: {build_bridge_inplace()}")
        elif job == "worker":
            print(f"worker: {build_worker()}")
        elif job == "plugins":
            for p in build_bundled():
                print(f"plugin: {p}")
        elif job == "fixtures":
            for p in build_fixtures():
                print(f"fixture: {p}")
        else:
            print(f"build.py: unknown job {job!r}; use bridge, worker, plugins or fixtures", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
