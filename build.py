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
  the system C compiler against ``hm_plugin_sdk/include``. A directory with a
  ``build.toml`` names system libraries it needs (see "Plugins with
  requirements" below): where they are missing it is skipped, not failed.

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
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
INCLUDE = ROOT / "hm_plugin_sdk" / "include"
NATIVE = ROOT / "hm" / "_native"
BUNDLED_OUT = ROOT / "hm" / "bundled_plugins"
FIXTURES_OUT = ROOT / "build" / "fixtures"
WORKER_SRC = NATIVE / "worker"
WORKER_NAME = "hm-worker"
GUARD_NAME = "hm-guard"


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
        include_dirs=[str(INCLUDE), str(NATIVE)],
        libraries=[] if sys.platform == "win32" else ["dl"],
    )
    return builder


ffibuilder = _make_ffibuilder()


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def compile_c_plugin(
    src_dir: Path, out: Path, *, extra_sources: Sequence[Path] = (), extra_flags: Sequence[str] = ()
) -> Path:
    """Compile the C sources of ``src_dir`` (plus ``extra_sources``) into the shared library ``out``."""
    sources = sorted(str(p) for p in src_dir.glob("*.c")) + [str(p) for p in extra_sources]
    if not sources:
        raise SystemExit(f"build.py: {src_dir} has no .c files and no Cargo.toml")
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-fPIC", "-shared", "-fvisibility=hidden"]
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    extra = src_dir / "cflags.txt"
    extra_flags = [*extra_flags, *(shlex.split(extra.read_text()) if extra.exists() else [])]
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
        elif (src_dir / BUILD_SPEC).exists():
            built.extend(compile_plugin_with_requirements(src_dir, out))
        elif any(src_dir.glob("*.c")):
            built.append(compile_c_plugin(src_dir, out))
    return built


# ---------------------------------------------------------------------------
# Plugins with requirements (plugins/<name>/build.toml)
#
# A plugin that needs system libraries (the container runner: libcurl and
# jansson) says so in build.toml: ``pkg-config`` modules, ``headers`` a test
# program must compile with, the ``debian-packages`` that provide them, the
# ``runners`` it would claim, and ``shared-sources`` from other plugin folders.
# Where the libraries are present it is built like any C plugin, with the
# modules' flags. Where they are not, ``pip install .`` still succeeds: the
# library is not built, and ``<name>.unavailable.json`` next to the bundled
# plugins tells hm why (hm/runtime/unavailable.py reads it), so that
# ``hm plugin list`` and a pipeline that needs the runner can say what to
# install.

BUILD_SPEC = "build.toml"
UNAVAILABLE_SUFFIX = ".unavailable.json"


def compile_plugin_with_requirements(src_dir: Path, out: Path) -> list[Path]:
    """Build the plugin of ``src_dir`` into ``out`` if its requirements are met.

    :returns: ``[out]``, or ``[]`` when it was skipped (the marker file says why).
    """
    import json
    import tomllib

    spec = tomllib.loads((src_dir / BUILD_SPEC).read_text())
    marker = out.with_name(src_dir.name + UNAVAILABLE_SUFFIX)
    shared = [(src_dir / rel).resolve() for rel in spec.get("shared-sources", [])]
    flags, problem = _requirement_flags(spec.get("pkg-config", []), spec.get("headers", []))
    if problem is not None:
        packages = spec.get("debian-packages", [])
        out.unlink(missing_ok=True)  # a library from an earlier build would not tell the truth
        out.parent.mkdir(parents=True, exist_ok=True)
        record = {"format": 1, "name": src_dir.name, "runners": spec.get("runners", []), "reason": problem}
        record["debian_packages"] = packages
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, marker)
        print(
            f"build.py: not building plugins/{src_dir.name}: {problem}; "
            f"install {' '.join(packages)} (Debian/Ubuntu) and build again",
            file=sys.stderr,
        )
        return []
    marker.unlink(missing_ok=True)
    includes = sorted({f"-I{p.parent}" for p in shared})
    return [compile_c_plugin(src_dir, out, extra_sources=shared, extra_flags=[*includes, *flags])]


def _requirement_flags(modules: list[str], headers: list[str]) -> tuple[list[str], str | None]:
    """Compiler and linker flags for ``modules``, or why they cannot be had.

    pkg-config (``$PKG_CONFIG`` if set, as autoconf does) gives the flags; a test
    program that includes ``headers`` and links proves them, since a ``.pc`` file
    can outlive its headers.
    """
    if not modules:
        return [], None
    pkg_config = os.environ.get("PKG_CONFIG") or "pkg-config"
    if shutil.which(pkg_config) is None:
        return [], f"{pkg_config} is not installed, so {', '.join(modules)} cannot be found"
    missing = [m for m in modules if subprocess.run([pkg_config, "--exists", m], check=False).returncode != 0]
    if missing:
        return [], f"pkg-config finds no {', '.join(missing)}"
    found = subprocess.run([pkg_config, "--cflags", "--libs", *modules], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        return [], f"pkg-config --cflags --libs {' '.join(modules)} failed: {found.stderr.strip()}"
    flags = shlex.split(found.stdout)
    with tempfile.TemporaryDirectory(prefix="hm-build-") as tmp:
        test = Path(tmp) / "requirements.c"
        test.write_text("".join(f"#include <{h}>\n" for h in headers) + "int main(void) { return 0; }\n")
        compiled = subprocess.run(
            [*_compiler(), str(test), "-o", str(Path(tmp) / "a.out"), *flags],
            capture_output=True,
            text=True,
            check=False,
        )
    if compiled.returncode != 0:
        first = next((line for line in compiled.stderr.splitlines() if "error" in line), compiled.stderr.strip())
        return [], f"a test program with {', '.join(headers) or 'them'} does not build: {first.strip()}"
    return flags, None


def build_bundled(out_dir: Path = BUNDLED_OUT) -> list[Path]:
    built = compile_tree(ROOT / "plugins", out_dir)
    return [*built, build_program(ROOT / "plugins" / "shell" / "supervisor", out_dir / SUPERVISOR_NAME)]


#: The shell runner's per-step supervisor, a program next to the runner's library
#: (plugins/shell/supervisor/main.c says why it is not a fork of the host).
SUPERVISOR_NAME = "hm-step-supervisor"


def build_program(src_dir: Path, out: Path, libs: Sequence[str] = ()) -> Path:
    """Compile the C sources of ``src_dir`` into the executable ``out``."""
    sources = sorted(str(p) for p in src_dir.glob("*.c"))
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"]
    tmp = out.with_name(out.name + ".tmp")
    subprocess.run([*_compiler(), *flags, f"-I{INCLUDE}", *sources, "-o", str(tmp), *libs], check=True)
    os.replace(tmp, out)  # atomic: a half-written program is never started
    return out


def build_fixtures(out_dir: Path = FIXTURES_OUT, *, only_stale: bool = False) -> list[Path]:
    return compile_tree(ROOT / "fixtures", out_dir, only_stale=only_stale)


def build_worker(out_dir: Path = NATIVE) -> Path:
    """Compile ``hm-worker`` into ``out_dir`` (POSIX only: it is a pipe-and-dlopen program)."""
    libs = ["-lpthread"] + ([] if sys.platform == "darwin" else ["-ldl"])
    build_program(NATIVE / "guard", out_dir / GUARD_NAME)  # starts stdio plugins (hm/runtime/stdio.py)
    return build_program(WORKER_SRC, out_dir / WORKER_NAME, libs)


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
