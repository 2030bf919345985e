"""``hm run --cluster`` benchmarks (issue 13), each against a local run measured in the same session.

1. CPU-bound steps: 40 steps of ~0.5 s CPU each (an awk loop, calibrated here) on
   ``--cluster local:2 -j 2`` against a local ``-j 2``. The cluster's time
   includes starting and closing its LocalCluster. Target: wall-time ratio <= 1.15.
   Also on a cluster started beforehand (``tcp://``), as a shared cluster is used.
2. Dispatch overhead per step: 201 vs 1 no-op steps (noop-executor) with ``-j 1``,
   ``(T(201) - T(1)) / 200``, locally and on ``--cluster local:2`` (its start-up
   is in both terms, so it cancels).
3. Log throughput: one step printing 1,000,000 lines of 100 bytes on
   ``--cluster local:2`` into ``--format json`` on /dev/null, minus the time of a
   one-step cluster run that prints nothing. Target: >= 100k lines/s.
4. A chain's snapshot moved as task data vs the chain pinned to the worker that
   holds it (``HM_CLUSTER_CHAINS=move|pin``).
5. The worker -> client channel: Dask structured events vs a ``distributed.Queue``.

    python -m bench.cluster [--repeats N] [--only cpu|dispatch|logs|chain|channels]

:func:`run` returns the rows (medians of N runs); ``__main__`` prints them.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
NOOP = ROOT / "build" / "fixtures" / f"noop-executor{SUFFIX}"
LINES = 1_000_000
PRINT_CMD = "awk 'BEGIN { for (i = 0; i < " + str(LINES) + '; i++) printf "%099d\\n", i }\''
CPU_STEPS = 40
CPU_SECONDS = 0.5


def _cpu_cmd(n: int) -> str:
    return f"awk 'BEGIN {{ for (i = 0; i < {n}; i++) s += i }}'"


def _ir(directory: Path, name: str, steps: list[dict[str, Any]]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"version": "0", "slug": name, "steps": steps}))
    return path


def _timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(
            [sys.executable, "-m", "hm", "run", *args],
            stdout=devnull,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            check=True,
        )
    return time.perf_counter() - start


def _median(repeats: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeats))


def _calibrate() -> int:
    """Loop iterations that take about CPU_SECONDS of CPU here."""
    n = 4_000_000
    start = time.perf_counter()
    subprocess.run(["sh", "-c", _cpu_cmd(n)], check=True)
    took = time.perf_counter() - start
    return int(n * CPU_SECONDS / took)


def bench_cpu(tmp: Path, env: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    cmd = _cpu_cmd(_calibrate())
    ir = _ir(tmp, "cpu", [{"kind": "command", "key": f"s{i}", "cmd": cmd} for i in range(CPU_STEPS)])
    args = ["--file", str(ir), "--format", "json", "-j", "2"]
    # Interleaved (local, local:2, running cluster; again…): on a shared machine the load
    # drifts, and runs of one kind in a row would each see a different machine.
    times: dict[str, list[float]] = {"local": [], "cluster": [], "running": []}
    for _ in range(repeats):
        times["local"].append(_timed(args, env))
        times["cluster"].append(_timed([*args, "--cluster", "local:2"], env))
        times["running"].append(_on_running_cluster(args, env))
    local, cluster, running = (statistics.median(times[k]) for k in ("local", "cluster", "running"))
    ratio = cluster / local
    pair_ratios = [c / lo for c, lo in zip(times["cluster"], times["local"], strict=True)]
    pairs = " ".join(f"{r:.2f}" for r in pair_ratios)
    what = f"{CPU_STEPS} x {CPU_SECONDS} s CPU"
    return [
        _row("cpu", f"{what}, local -j 2", local, "s"),
        _row("cpu", f"{what}, --cluster local:2 -j 2", cluster, "s"),
        _row("cpu", "wall ratio cluster/local", ratio, "x", "<= 1.15", ratio <= 1.15),
        _row("cpu", f"{what}, --cluster tcp:// (2 workers started before)", running, "s"),
        _row("cpu", "wall ratio running cluster/local", running / local, "x"),
        _row("cpu", f"cluster/local of each interleaved pair ({pairs})", min(pair_ratios), "x, the lowest"),
    ]


def _on_running_cluster(args: list[str], env: dict[str, str]) -> float:
    """``hm run ARGS --cluster tcp://…`` on a 2-worker cluster started (not timed) here."""
    import logging

    from distributed import LocalCluster

    options: dict[str, Any] = {"host": "127.0.0.1", "dashboard_address": None, "memory_limit": 0}
    with LocalCluster(n_workers=2, threads_per_worker=1, silence_logs=logging.ERROR, **options) as cluster:
        return _timed([*args, "--cluster", cluster.scheduler_address], env)


def _row(
    bench: str, what: str, value: float, unit: str, target: str | None = None, met: bool | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = {"bench": bench, "what": what, "value": value, "unit": unit}
    if target is not None:
        row.update(target=target, met=met)
    return row


def bench_dispatch(tmp: Path, env: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    if not NOOP.exists():
        sys.exit(f"{NOOP} is missing: run `python build.py fixtures` first")
    env = {**env, "HM_PLUGIN_PATH": str(NOOP)}
    many = _ir(tmp, "many", [{"kind": "command", "key": f"s{i}", "cmd": "x", "runner": "noop"} for i in range(201)])
    one = _ir(tmp, "one", [{"kind": "command", "key": "s0", "cmd": "x", "runner": "noop"}])
    rows = []
    for where, extra in (("local", []), ("--cluster local:2", ["--cluster", "local:2"])):
        base = ["--format", "json", "-j", "1", *extra]
        t_one = _median(repeats, lambda base=base: _timed(["--file", str(one), *base], env))  # type: ignore[misc]
        t_many = _median(repeats, lambda base=base: _timed(["--file", str(many), *base], env))  # type: ignore[misc]
        rows.append(_row("dispatch", f"per-step overhead, {where}", (t_many - t_one) / 200 * 1000, "ms"))
    return rows


def bench_logs(tmp: Path, env: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    ir = _ir(tmp, "logs", [{"kind": "command", "key": "print", "cmd": PRINT_CMD}])
    empty = _ir(tmp, "empty", [{"kind": "command", "key": "print", "cmd": "true"}])
    args = ["--format", "json", "--cluster", "local:2"]
    t_print = _median(repeats, lambda: _timed(["--file", str(ir), *args], env))
    t_empty = _median(repeats, lambda: _timed(["--file", str(empty), *args], env))
    rate = LINES / (t_print - t_empty)
    return [
        _row("logs", "1M lines on --cluster local:2 (with start-up)", t_print, "s"),
        _row("logs", "a one-step run on --cluster local:2", t_empty, "s"),
        _row("logs", "log throughput to --format json", rate, "lines/s", ">= 100000", rate >= 100_000),
    ]


def bench_chain(tmp: Path, env: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    """A chain of 11 steps over a 30 MB workspace, its snapshot moved as task data
    (Dask places the step, usually where the data is) vs pinned to the worker holding it."""
    steps: list[dict[str, Any]] = [{"kind": "command", "key": "s0", "cmd": "head -c 30000000 /dev/urandom > blob"}]
    steps += [
        {"kind": "command", "key": f"s{i}", "cmd": "wc -c < blob", "builds_in": f"s{i - 1}"} for i in range(1, 12)
    ]
    steps.append({"kind": "command", "key": "busy", "cmd": "sleep 2"})  # the other worker is not idle
    ir = _ir(tmp, "chain", steps)
    rows = []
    args = ["--file", str(ir), "--format", "json", "-j", "2", "--cluster", "local:2"]
    for mode in ("move", "pin"):
        chosen = {**env, "HM_CLUSTER_CHAINS": mode}
        t = _median(repeats, lambda chosen=chosen: _timed(args, chosen))  # type: ignore[misc]
        rows.append(_row("chain", f"11-step chain, 30 MB workspace, HM_CLUSTER_CHAINS={mode}", t, "s"))
    return rows


def bench_channels(tmp: Path, env: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    """Worker -> client messages of 100 lines each: structured events (what hm uses)
    vs a distributed.Queue. (Pub/Sub left dask.distributed in 2025.)"""
    import logging

    from distributed import Client, LocalCluster

    rows = []
    options: dict[str, Any] = {"host": "127.0.0.1", "dashboard_address": None, "memory_limit": 0}
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, silence_logs=logging.ERROR, **options) as cluster,
        Client(cluster) as client,
    ):
        for name, fn in (("structured events", _channel_events), ("distributed.Queue", _channel_queue)):
            took = _median(repeats, lambda fn=fn: fn(client))  # type: ignore[misc]
            rows.append(_row("channels", f"{name}, 100-line messages", _MSGS * 100 / took, "lines/s"))
    return rows


_MSGS = 2000
_CHUNK = b"x" * 100 * 100


def _send_events(n: int) -> None:
    from distributed import get_worker

    worker = get_worker()
    for i in range(n):
        worker.log_event("hm-bench", [i, _CHUNK])
    worker.log_event("hm-bench", [-1, b""])


def _channel_events(client: Any) -> float:
    import threading

    done = threading.Event()
    client.subscribe_topic("hm-bench", lambda event: event[1][0] == -1 and done.set())
    start = time.perf_counter()
    client.submit(_send_events, _MSGS, pure=False)
    done.wait(120)
    took = time.perf_counter() - start
    client.unsubscribe_topic("hm-bench")
    return took


def _send_queue(n: int) -> None:
    from distributed import Queue, get_client

    queue = Queue("hm-bench", client=get_client())
    for i in range(n):
        queue.put([i, _CHUNK])
    queue.put([-1, b""])


def _channel_queue(client: Any) -> float:
    from distributed import Queue

    queue = Queue("hm-bench", client=client)
    start = time.perf_counter()
    client.submit(_send_queue, _MSGS, pure=False)
    while queue.get(timeout=120)[0] != -1:
        pass
    return time.perf_counter() - start


BENCHES = {
    "cpu": bench_cpu,
    "dispatch": bench_dispatch,
    "logs": bench_logs,
    "chain": bench_chain,
    "channels": bench_channels,
}


def run(repeats: int = 3, only: str | None = None) -> list[dict[str, Any]]:
    """Every benchmark's rows (medians of ``repeats`` runs)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hm-bench-cluster-") as tmp:
        env = {"HM_HOME": str(Path(tmp) / "home"), "PYTHONPATH": str(ROOT)}
        for name, bench in BENCHES.items():
            if only in (None, name):
                rows += bench(Path(tmp), env, repeats)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=sorted(BENCHES))
    args = parser.parse_args()
    for row in run(args.repeats, args.only):
        target = f"   target {row['target']}: {'met' if row['met'] else 'NOT met'}" if "target" in row else ""
        print(f"[{row['bench']}] {row['what']}: {row['value']:.3f} {row['unit']}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
