"""What isolation costs: a no-op capability call through a worker process, and
step logs through a worker to ``--format json``, against baselines measured in
the same run.

Calls (medians of R repeats of N calls each):
  raw cffi      the bridge's no-op C function (the floor of any call from Python)
  in-process    the full host path into the noop-executor fixture's hook
  worker        the same call through ``hm-worker`` (``--isolate``)
  pipe floor    one small write and read through ``cat``: a round trip between
                two processes with no work at all

Logs: ``hm run --format json`` of one step whose runner emits 1,000,000 lines
(one emit_step_log each; the crashy-runner fixture's ``flood``), in process and
isolated, stdout to /dev/null; lines per second of the whole command.

Targets (issue 8): an isolated call <= 30 us; >= 300k lines/s through a worker.

    python bench/bench_isolation.py [--calls N] [--repeats R] [--lines L]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from hm.runtime import HostServices, open_plugin  # noqa: E402
from hm.runtime._ffi import ffi, lib  # noqa: E402
from hm_plugin_sdk.protocol import BuildStarted, HookEvent  # noqa: E402

SUFFIX = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
FIXTURES = ROOT / "build" / "fixtures"


def per_call_us(fn, calls: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(min(calls, 2000)):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def pipe_floor(calls: int, repeats: int) -> float:
    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert cat.stdin is not None and cat.stdout is not None
    w, r = cat.stdin.fileno(), cat.stdout.fileno()
    message = b"x" * 48

    def once() -> None:
        os.write(w, message)
        got = 0
        while got < len(message):
            got += len(os.read(r, 4096))

    try:
        return per_call_us(once, calls, repeats)
    finally:
        cat.stdin.close()
        cat.wait()


def log_rate(lines: int, isolate: bool, repeats: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".hm").mkdir()
        (project / ".hm" / "pipeline.py").write_text(
            "from hm.dsl import pipeline, step\n\n\n@pipeline('b')\ndef p():\n"
            f"    step('flood', 'flood {lines}', runner='crashy')\n"
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HM_PLUGIN_PATH": str(FIXTURES / f"crashy-runner{SUFFIX}"),
            "HM_HOME": str(project / "home"),
        }
        cmd = [sys.executable, "-m", "hm", "run", "--format", "json", *(["--isolate"] if isolate else [])]
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)
            rates.append(lines / (time.perf_counter() - start))
        return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    fixture = FIXTURES / f"noop-executor{SUFFIX}"
    if not fixture.exists():
        print(f"{fixture} is missing: run `python build.py fixtures` first", file=sys.stderr)
        return 2

    services = HostServices()
    event = HookEvent(
        phase="after", event=BuildStarted(run_id="r", ts="2026-01-01T00:00:00.000Z", pipeline="p", steps=1)
    )
    payload = msgspec.msgpack.encode(event)
    out = ffi.new("hm_buf_t *")
    in_process = open_plugin(fixture)
    worker = open_plugin(fixture, isolation="process")

    raw_us = per_call_us(lambda: lib.hm_bridge_noop(payload, len(payload), out), args.calls, args.repeats)
    inproc_us = per_call_us(lambda: in_process.on_hook_event(event, services), args.calls, args.repeats)
    worker_us = per_call_us(lambda: worker.on_hook_event(event, services), args.calls, args.repeats)
    floor_us = pipe_floor(args.calls, args.repeats)
    worker.transport.close()

    print(f"raw cffi no-op call        median {raw_us:8.2f} us")
    print(f"in-process capability call median {inproc_us:8.2f} us  ({inproc_us / raw_us:.1f}x raw)")
    print(f"pipe round trip via cat    median {floor_us:8.2f} us")
    print(
        f"worker capability call     median {worker_us:8.2f} us  ({worker_us / inproc_us:.1f}x in-process, "
        f"{worker_us / floor_us:.2f}x the pipe floor)   target <= 30 us: {'met' if worker_us <= 30 else 'NOT met'}"
    )
    for isolate in (False, True):
        rate = log_rate(args.lines, isolate, max(3, args.repeats // 3))
        where = "through a worker" if isolate else "in process      "
        target = f"   target >= 300k: {'met' if rate >= 300_000 else 'NOT met'}" if isolate else ""
        print(f"step logs {where} median {rate / 1000:8.0f}k lines/s (whole command, {args.lines} lines){target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
