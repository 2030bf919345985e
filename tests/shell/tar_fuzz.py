"""Build and run the fuzz target of the shell runner's tar extractor (``tests/c/tar_extract_fuzz.c``).

The test suite runs a bounded number of inputs (``tests/shell/test_tar_fuzz.py``).
To fuzz for longer, run this file::

    python tests/shell/tar_fuzz.py                          # 20000 mutated inputs, any C compiler
    python tests/shell/tar_fuzz.py --runs 2000000 --seed 7  # longer; another sequence
    python tests/shell/tar_fuzz.py --libfuzzer --seconds 3600   # coverage-guided, needs clang

A broken invariant or a sanitizer report stops the run with a non-zero status; the
input that caused it is ``last-input.tar`` in the directory it prints, and
``tar_fuzz -runs=0 that/last-input.tar`` replays it. Keep the corpus directory
(``--corpus DIR``) between libFuzzer runs to build on what it found.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = ROOT / "plugins" / "shell"
C_TESTS = ROOT / "tests" / "c"
INCLUDE = ROOT / "hm_plugin_sdk" / "include"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]


def compiler() -> list[str]:
    """The C compiler build.py uses: $CC, else Python's, else cc."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def compile_with_shell_sources(
    main: Path, out: Path, *, cc: list[str] | None = None, flags: list[str] | None = None
) -> list[str]:
    """Compile ``main`` with every ``plugins/shell/*.c``; with sanitizers when the compiler has them.

    :returns: the sanitizer flags used (empty when they are not available).
    """
    base = ["-std=c11", "-g", "-O1", "-Wall", "-Wextra", f"-I{INCLUDE}", f"-I{SHELL}", f"-I{C_TESTS}"]
    sources = [str(main), *sorted(str(p) for p in SHELL.glob("*.c"))]
    errors = ""
    for sanitize in (SANITIZE, []):
        done = subprocess.run(
            [*(cc or compiler()), *base, *sanitize, *(flags or []), *sources, "-o", str(out), "-lpthread"],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            return sanitize
        errors = done.stderr
    raise RuntimeError(f"cannot compile {main.name}:\n{errors}")


def _tar(
    members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int, global_headers: dict[str, str] | None = None
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=global_headers) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, size, link, mode
    return info


def _pax_record(key: str, value: str) -> bytes:
    """One ``LEN key=value\\n`` record; LEN counts itself."""
    body = f" {key}={value}\n".encode()
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def _raw_pax_entry(records: list[tuple[str, str]], name: bytes, typeflag: bytes, data: bytes) -> bytes:
    """A hand-made 'x' header with ``records``, then an entry: for PAX keys tarfile never writes."""
    pax = b"".join(_pax_record(k, v) for k, v in records)

    def header(hname: bytes, htype: bytes, size: int) -> bytes:
        h = bytearray(512)
        h[0 : len(hname)] = hname
        h[100:108] = b"0000644\x00"
        h[108:116] = h[116:124] = b"0000000\x00"
        h[124:136] = b"%011o\x00" % size
        h[136:148] = b"00000000000\x00"
        h[156:157] = htype
        h[257:265] = b"ustar\x0000"
        h[148:156] = b" " * 8
        h[148:156] = b"%06o\x00 " % sum(h)
        return bytes(h)

    def padded(b: bytes) -> bytes:
        return b + b"\x00" * (-len(b) % 512)

    return header(b"PaxHeader", b"x", len(pax)) + padded(pax) + header(name, typeflag, len(data)) + padded(data)


def write_seeds(folder: Path) -> list[Path]:
    """A small corpus: every entry type and header format the extractor reads."""
    folder.mkdir(parents=True, exist_ok=True)
    body = b"hello\n" * 100
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        (_info("d", tarfile.DIRTYPE, mode=0o555), None),
        (_info("d/f", size=len(body)), body),
        (_info("d/l", tarfile.SYMTYPE, link="f"), None),
        (_info("h", tarfile.LNKTYPE, link="d/f"), None),
        (_info("n" * 120 + "/" + "m" * 120, size=3), b"abc"),
        (_info("fifo", tarfile.FIFOTYPE), None),
        (_info("dev", tarfile.CHRTYPE), None),
    ]
    long_target = "t" * 150
    pax_rich = [
        (_info("s", tarfile.SYMTYPE, link=long_target), None),  # linkpath record
        (_info("m", size=2), b"mm"),
    ]
    pax_rich[1][0].pax_headers = {"mtime": "1700000000.123456789", "comment": "c"}
    seeds = {
        "pax.tar": _tar(entries, tarfile.PAX_FORMAT),
        "pax-records.tar": _tar(pax_rich, tarfile.PAX_FORMAT, global_headers={"comment": "global"})
        + _raw_pax_entry(
            [("path", "dir/by-pax"), ("size", "4"), ("mtime", "-1.5"), ("uname", "u"), ("linkpath", "x")],
            b"ignored",
            b"0",
            b"data",
        )
        + b"\x00" * 1024,
        "gnu.tar": _tar(entries, tarfile.GNU_FORMAT),
        "ustar.tar": _tar(entries[:4], tarfile.USTAR_FORMAT),
        "escape.tar": _tar(
            [
                (_info("link", tarfile.SYMTYPE, link="../outside"), None),
                (_info("link/x", size=1), b"x"),
                (_info("../outside/y", size=1), b"y"),
                (_info("hl", tarfile.LNKTYPE, link="../outside/secret"), None),
            ],
            tarfile.PAX_FORMAT,
        ),
    }
    paths = []
    for name, data in seeds.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def run_standalone(runs: int, seed: int, work: Path) -> subprocess.CompletedProcess[str]:
    """Build the standalone fuzzer (sanitizers when available) and run ``runs`` mutated inputs."""
    exe = work / "tar_fuzz"
    compile_with_shell_sources(C_TESTS / "tar_extract_fuzz.c", exe)
    corpus = work / "corpus"
    write_seeds(corpus)
    return subprocess.run(
        [str(exe), f"-runs={runs}", f"-seed={seed}", str(corpus)],
        capture_output=True,
        text=True,
        env={**os.environ, "HM_TAR_FUZZ_DIR": str(work / "fuzz")},
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20000, help="mutated inputs (standalone)")
    parser.add_argument("--seed", type=int, default=1, help="the mutation sequence (standalone)")
    parser.add_argument("--libfuzzer", action="store_true", help="build with clang -fsanitize=fuzzer instead")
    parser.add_argument("--seconds", type=int, default=600, help="how long libFuzzer runs")
    parser.add_argument("--corpus", type=Path, help="libFuzzer's corpus directory (kept between runs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hm-tar-fuzz-"))
    if not args.libfuzzer:
        done = run_standalone(args.runs, args.seed, work)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if done.returncode == 0:
            shutil.rmtree(work, ignore_errors=True)  # kept on failure: it holds last-input.tar
        return done.returncode
    clang = shutil.which("clang")
    if clang is None:
        print("tar_fuzz.py: --libfuzzer needs clang on PATH", file=sys.stderr)
        return 2
    exe = work / "tar_fuzz"
    compile_with_shell_sources(
        C_TESTS / "tar_extract_fuzz.c", exe, cc=[clang], flags=["-DHM_LIBFUZZER", "-fsanitize=fuzzer"]
    )
    corpus = args.corpus or work / "corpus"
    write_seeds(corpus)
    env = {**os.environ, "HM_TAR_FUZZ_DIR": str(work / "fuzz")}
    return subprocess.run([str(exe), f"-max_total_time={args.seconds}", str(corpus)], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
