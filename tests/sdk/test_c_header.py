"""The C SDK: the header compiles cleanly as C99, C11 and C++17, agrees with the
Python constants, and the msgpack helpers pass their C test suite."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hm_plugin_sdk import abi

INCLUDE = abi.INCLUDE_DIR
ROOT = INCLUDE.parent.parent
STRICT = ["-Wall", "-Wextra", "-Werror", "-pedantic"]

USE_EVERYTHING = r"""
#include "hm_plugin.h"
#include "hm_msgpack.h"
#include "hm_protocol.h"
static hm_status_t manifest(void *i, hm_call_t c, hm_buf_t *o) {
    (void)i; (void)c; o->ptr = 0; o->len = 0; return HM_OK;
}
static void release(void *i, uint8_t *p, size_t n) { (void)i; (void)p; (void)n; }
static void destroy(void *i) { (void)i; }
static const hm_plugin_vtable_t VT = {
    {sizeof(hm_plugin_vtable_t), HM_ABI_MAJOR, HM_ABI_MINOR}, manifest, 0, 0, 0, release, destroy,
    0, 0, 0, 0, 0};
HM_EXPORT const hm_plugin_vtable_t *hm_load_plugin(const hm_host_api_t *host, void **inst) {
    *inst = 0;
    if (host->header.abi_major != HM_ABI_MAJOR || !HM_TABLE_HAS(host, hm_host_api_t, free)) return 0;
    return &VT;
}
"""


def compile_ok(compiler: str, std: str, source: str, tmp_path: Path, lang: str) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    src = tmp_path / f"t.{lang}"
    src.write_text(source)
    result = subprocess.run(
        [compiler, f"-std={std}", *STRICT, f"-I{INCLUDE}", "-c", str(src), "-o", str(tmp_path / "t.o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("std", ["c99", "c11"])
def test_headers_compile_warning_free_as_c(std: str, tmp_path: Path) -> None:
    compile_ok("cc", std, USE_EVERYTHING, tmp_path, "c")


def test_headers_compile_warning_free_as_cpp17(tmp_path: Path) -> None:
    compile_ok("c++", "c++17", USE_EVERYTHING, tmp_path, "cpp")


def header_defines() -> dict[str, int]:
    text = (INCLUDE / "hm_plugin.h").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"^#define (HM_\w+) (-?\d+)\s*$", text, re.M)}


def group(defines: dict[str, int], prefix: str) -> dict[str, int]:
    return {k: v for k, v in defines.items() if k.startswith(prefix)}


def test_python_constants_match_the_header() -> None:
    defines = header_defines()
    assert defines["HM_ABI_MAJOR"] == abi.ABI_MAJOR
    assert defines["HM_ABI_MINOR"] == abi.ABI_MINOR
    statuses = {k: v for k, v in defines.items() if k.startswith(("HM_ERR_", "HM_OK", "HM_CANCELLED"))}
    assert statuses == {f"HM_{s.name}": s.value for s in abi.Status}
    assert group(defines, "HM_LOG_") == {f"HM_LOG_{x.name}": x.value for x in abi.LogLevel}
    assert group(defines, "HM_STREAM_") == {f"HM_STREAM_{x.name}": x.value for x in abi.Stream}
    assert group(defines, "HM_KV_SCOPE_") == {f"HM_KV_SCOPE_{x.name}": x.value for x in abi.KvScope}
    assert group(defines, "HM_SIGNAL_") == {f"HM_SIGNAL_{x.name}": x.value for x in abi.Signal}
    assert f'#define HM_ENTRY_SYMBOL "{abi.ENTRY_SYMBOL}"' in (INCLUDE / "hm_plugin.h").read_text()


@pytest.mark.parametrize(("compiler", "std"), [("cc", "c99"), ("cc", "c11"), ("c++", "c++17")])
def test_msgpack_helpers_pass_their_c_suite(compiler: str, std: str, tmp_path: Path) -> None:
    source = ROOT / "tests" / "c" / "test_msgpack.c"
    exe = tmp_path / "test_msgpack"
    lang = ["-x", "c++"] if compiler == "c++" else []
    build = subprocess.run(
        [compiler, *lang, f"-std={std}", *STRICT, "-O1", f"-I{INCLUDE}", str(source), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all" in run.stdout and "passed" in run.stdout


def _entries(struct: str) -> list[tuple[str, int]]:
    """The fields of ``struct`` after its header, each with the minor of the
    "Since 1.N" sentence in its comment (or of the section it is in)."""
    text = (INCLUDE / "hm_plugin.h").read_text()
    body = text[text.index(f"typedef struct {struct} {{") :]
    body = body[: body.index("\n}")]
    found, since, comment = [], 0, ""
    for line in body.splitlines()[2:]:
        stripped = line.strip()
        if stripped.startswith(("/*", "*")):
            comment += stripped
            continue
        m = re.match(r".*?\(\*(\w+)\)\(|\s*void \*(\w+);", line)
        if m:
            name = m[1] or m[2]
            tag = re.findall(r"Since 1\.(\d+)", comment)
            since = int(tag[-1]) if tag else since
            found.append((name, since))
            comment = ""
    return found


def test_table_layouts_in_abi_py_match_the_header() -> None:
    assert _entries("hm_host_api") == [(n, 0 if n == "host_data" else s) for n, s in abi.HOST_API_ENTRIES]
    assert _entries("hm_plugin_vtable") == list(abi.VTABLE_ENTRIES)
    # ABI 1.0's host table: a header, host_data and 12 functions (the kept 1.0 header agrees)
    assert abi.host_table_size(0) == 16 + 13 * 8
    old = (ROOT / "tests" / "sdk" / "abi-1.0" / "hm_plugin.h").read_text()
    assert "#define HM_ABI_MINOR 0" in old and "kv_compare_and_swap" not in old


def test_every_entry_added_after_1_0_says_since_with_a_thread_tag() -> None:
    text = (INCLUDE / "hm_plugin.h").read_text()
    for name in (
        "kv_compare_and_swap",
        "session_output",
        "session_open",
        "session_write",
        "session_resize",
        "session_signal",
        "session_close",
    ):
        at = text.index(f"(*{name})")
        comment = text[text.rindex("/*", 0, at) : at]
        assert "Since 1.1" in comment, name
        assert re.search(r"\[(any|call|load)-thread\]", comment), name


@pytest.mark.parametrize(("compiler", "std"), [("cc", "c99"), ("cc", "c11"), ("c++", "c++17")])
def test_protocol_helpers_pass_their_c_suite(compiler: str, std: str, tmp_path: Path) -> None:
    """hm_protocol.h: what each encoder writes, its decoder reads back."""
    source = ROOT / "tests" / "c" / "test_protocol.c"
    exe = tmp_path / "test_protocol"
    lang = ["-x", "c++"] if compiler == "c++" else []
    build = subprocess.run(
        [compiler, *lang, f"-std={std}", *STRICT, "-O1", f"-I{INCLUDE}", str(source), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("protocol: all ") and run.stdout.strip().endswith("checks passed")
