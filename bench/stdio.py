"""What a stdio plugin costs (issue 12), against baselines measured in the same run.

Calls (medians of R repeats of N calls each), all ``on_hook_event`` of one
``build_started`` that the plugin answers ``continue`` without doing anything:
  in-process    the noop-executor fixture, loaded into hm
  worker        the same library in ``hm-worker`` (``--isolate``)
  stdio         the py-all fixture: Python, written with hm_plugin_sdk.stdio,
                JSON-RPC over its stdin and stdout
  pipe floor    one small write and read through ``cat``: a round trip between
                two processes with no work at all (what the machine's
                scheduler costs; on a busy VM it dominates both process calls)

Logs: ``hm run --format json`` of one step whose stdio runner (py-all,
``lines L``) emits L lines through ``emit_step_log``, stdout to /dev/null; lines
per second of the whole command, against the same number of lines from the
native crashy-runner fixture in process.

Targets (issue 12): a stdio call <= 100 us; >= 100k lines/s from a stdio plugin.

    python -m bench.stdio [--calls N] [--repeats R] [--lines L]

:func:`rows` returns the measurements for a suite (``python -m bench``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import FIXTURES, ROOT, SUFFIX, Row, cli, fixture

STDIO_FIXTURE = ROOT / "fixtures" / "stdio" / "py-all" / "py-all.plugin.toml"


def per_call_us(fns: list[Callable[[], object]], calls: int, repeats: int) -> list[float]:
    """The median µs per call of each of ``fns``, sampled in turns (one batch of
    ``calls`` of each per round), so a shared machine's load drifting during the
    run weighs on every baseline alike."""
    for fn in fns:
        for _ in range(min(calls, 1000)):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, mine in zip(fns, samples, strict=True):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            mine.append((time.perf_counter() - start) / calls * 1e6)
    return [statistics.median(mine) for mine in samples]


class _PipeFloor:
    """One small write and read through ``cat``, the floor of a call to another process."""

    def __init__(self) -> None:
        self.cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert self.cat.stdin is not None and self.cat.stdout is not None
        self.w, self.r = self.cat.stdin.fileno(), self.cat.stdout.fileno()
        self.message = b"x" * 200  # about the size of a no-op call's JSON-RPC line

    def __call__(self) -> None:
        os.write(self.w, self.message)
        got = 0
        while got < len(self.message):
            got += len(os.read(self.r, 4096))

    def close(self) -> None:
        assert self.cat.stdin is not None
        self.cat.stdin.close()
        self.cat.wait()


def log_rate(lines: int, repeats: int, *, stdio: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".hm").mkdir()
        runner, cmd, plugin = (
            ("py-all", f"lines {lines}", STDIO_FIXTURE)
            if stdio
            else ("crashy", f"flood {lines}", FIXTURES / f"crashy-runner{SUFFIX}")
        )
        (project / ".hm" / "pipeline.py").write_text(
            "from hm.dsl import pipeline, step\n\n\n@pipeline('b')\ndef p():\n"
            f"    step('flood', {cmd!r}, runner={runner!r})\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HM_PLUGIN_PATH": str(plugin), "HM_HOME": str(project / "home")}
        command = [sys.executable, "-m", "hm", "run", "--format", "json"]
        subprocess.run(command, cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)  # fills the cache
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(command, cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)
            rates.append(lines / (time.perf_counter() - start))
        return statistics.median(rates)


def rows(calls: int = 5000, repeats: int = 7, lines: int = 500_000) -> list[Row]:
    """The table's rows: call medians in µs, log rates in lines/s."""
    from hm.runtime import HostServices, open_plugin
    from hm_plugin_sdk.protocol import BuildStarted, HookEvent

    services = HostServices()
    event = HookEvent(
        phase="after", event=BuildStarted(run_id="r", ts="2026-01-01T00:00:00.000Z", pipeline="p", steps=1)
    )
    native = fixture("noop-executor")
    in_process = open_plugin(native)
    worker = open_plugin(native, isolation="process")
    stdio = open_plugin(STDIO_FIXTURE)
    try:
        floor = _PipeFloor()
        inproc_us, floor_us, worker_us, stdio_us = per_call_us(
            [
                lambda: in_process.on_hook_event(event, services),
                floor,
                lambda: worker.on_hook_event(event, services),
                lambda: stdio.on_hook_event(event, services),
            ],
            calls,
            repeats,
        )
        floor.close()
    finally:
        worker.transport.close()
        stdio.transport.close()
    log_repeats = max(3, repeats // 2)
    native_rate = log_rate(lines, log_repeats, stdio=False)
    stdio_rate = log_rate(lines, log_repeats, stdio=True)
    return [
        Row(
            "stdio no-op call, Python helper",
            stdio_us,
            "us",
            "worker",
            worker_us,
            target="<= 100 us",
            met=stdio_us <= 100,
        ),
        Row("  (in process; pipe round trip via cat)", inproc_us, "us", "cat", floor_us),
        Row(
            "step logs from a stdio plugin",
            stdio_rate,
            "lines/s",
            "native in process",
            native_rate,
            target=">= 100k lines/s",
            met=stdio_rate >= 100_000,
        ),
    ]


def main() -> int:
    return cli(rows, __doc__, calls=5000, repeats=7, lines=500_000)


if __name__ == "__main__":
    raise SystemExit(main())
