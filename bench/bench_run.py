"""End-to-end ``hm run`` benchmarks (issue 3), each against a baseline measured in the same run.

1. host overhead per step: 1,000 no-op steps on the noop-executor fixture with
   ``--format json`` to /dev/null, minus the same run with 1 step (process start,
   plugin loading), divided by 999. Target: <= 1 ms per step.
2. log throughput: one shell step printing 1,000,000 lines of 100 bytes (~100 MB)
   through ``emit_step_log`` into ``--format json`` on /dev/null, against the same
   command run by ``sh`` straight to /dev/null. Target: >= 200k lines/s.
3. parallelism: two CPU-bound shell steps with ``-j 2`` against ``-j 1``.
   Target: wall-time ratio <= 0.6.

    python bench/bench_run.py [--repeats N] [--only overhead|logs|parallel]

Medians of N runs are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
NOOP = ROOT / "build" / "fixtures" / f"noop-executor{SUFFIX}"
LINES = 1_000_000
PRINT_CMD = "awk 'BEGIN { for (i = 0; i < " + str(LINES) + '; i++) printf "%099d\\n", i }\''
CPU_CMD = "i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done"


def write_ir(directory: Path, name: str, steps: list[dict]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"version": "0", "slug": name, "steps": steps}))
    return path


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(cmd, stdout=devnull, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, check=True)
    return time.perf_counter() - start


def hm(*args: str) -> list[str]:
    return [sys.executable, "-m", "hm", *args]


def median_of(repeats: int, fn) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(fn() for _ in range(repeats))


def bench_overhead(tmp: Path, repeats: int) -> None:
    if not NOOP.exists():
        sys.exit(f"{NOOP} is missing: run `python build.py fixtures` first")
    env = {"HM_PLUGIN_PATH": str(NOOP), "HM_HOME": str(tmp / "home")}
    steps = [{"kind": "command", "key": f"s{i}", "cmd": "x", "runner": "noop"} for i in range(1000)]
    many = write_ir(tmp, "many", steps)
    one = write_ir(tmp, "one", [{"kind": "command", "key": "s0", "cmd": "x", "runner": "noop"}])
    t_one = median_of(repeats, lambda: timed(hm("run", "--file", str(one), "--format", "json"), env))
    t_many = median_of(repeats, lambda: timed(hm("run", "--file", str(many), "--format", "json"), env))
    per_step_ms = (t_many - t_one) / 999 * 1000
    print(f"[overhead] 1 step: {t_one:.3f} s   1000 steps: {t_many:.3f} s   (medians of {repeats})")
    verdict = "met" if per_step_ms <= 1 else "NOT met"
    print(f"[overhead] host overhead per step: {per_step_ms:.3f} ms   target <= 1 ms: {verdict}")


def bench_logs(tmp: Path, repeats: int) -> None:
    env = {"HM_HOME": str(tmp / "home")}
    ir = write_ir(tmp, "logs", [{"kind": "command", "key": "print", "cmd": PRINT_CMD}])
    t_raw = median_of(repeats, lambda: timed(["sh", "-c", PRINT_CMD]))
    t_hm = median_of(repeats, lambda: timed(hm("run", "--file", str(ir), "--format", "json"), env))
    mb = LINES * 100 / 1e6
    print(f"[logs] sh alone: {t_raw:.3f} s   through hm: {t_hm:.3f} s   ratio {t_hm / t_raw:.1f}x  (medians)")
    rate = LINES / t_hm
    verdict = "met" if rate >= 200_000 else "NOT met"
    print(f"[logs] {rate:,.0f} lines/s, {mb / t_hm:.1f} MB/s of output   target >= 200k lines/s: {verdict}")


def bench_parallel(tmp: Path, repeats: int) -> None:
    env = {"HM_HOME": str(tmp / "home")}
    ir = write_ir(tmp, "cpu", [{"kind": "command", "key": k, "cmd": CPU_CMD} for k in ("a", "b")])
    t1 = median_of(repeats, lambda: timed(hm("run", "--file", str(ir), "--format", "json", "-j", "1"), env))
    t2 = median_of(repeats, lambda: timed(hm("run", "--file", str(ir), "--format", "json", "-j", "2"), env))
    verdict = "met" if t2 / t1 <= 0.6 else "NOT met"
    print(f"[parallel] -j 1: {t1:.3f} s   -j 2: {t2:.3f} s   ratio {t2 / t1:.2f}   target <= 0.6: {verdict}")
    print(f"[parallel] (this machine has {os.cpu_count()} CPUs)")


def main() -> int:
    parser = argparse.ArgumentParser(description="hm run benchmarks")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["overhead", "logs", "parallel"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "overhead"):
            bench_overhead(tmp, args.repeats)
        if args.only in (None, "logs"):
            bench_logs(tmp, args.repeats)
        if args.only in (None, "parallel"):
            bench_parallel(tmp, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
