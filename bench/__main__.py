"""``python -m bench``: every benchmark of the host in one table, each against a
baseline measured in the same run, with its target and whether it is met.

    python -m bench [--quick] [--only steps,logs,startup,calls,stdio]

``--quick`` takes fewer repeats and smaller sizes (for a look, not for numbers to
quote). The container and cache benchmarks need Podman and take minutes; they run
on their own: ``python -m bench.container`` and ``python -m bench.cache``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from bench import calls, logs, startup, stdio, steps
from bench.harness import Row, print_table

SUITES: dict[str, tuple[Callable[[bool], list[Row]], str]] = {
    "steps": (lambda q: steps.rows(repeats=3 if q else 5, steps=200 if q else 1000), "per-step cost"),
    "logs": (lambda q: logs.rows(repeats=3 if q else 5, lines=200_000 if q else 1_000_000), "step output"),
    "startup": (lambda q: startup.rows(repeats=5 if q else 11), "start-up"),
    "calls": (lambda q: calls.rows(calls=5_000 if q else 20_000, repeats=5 if q else 9), "the call path"),
    "stdio": (
        lambda q: stdio.rows(calls=1_000 if q else 5_000, repeats=3 if q else 7, lines=100_000 if q else 500_000),
        "stdio plugins",
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    parser.add_argument("--only", default=",".join(SUITES), help=f"comma-separated, of: {', '.join(SUITES)}")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    table: list[Row] = []
    for name in names:
        run, what = SUITES[name]
        print(f"measuring {what}...", file=sys.stderr, flush=True)
        table.extend(run(args.quick))
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; medians")
    print_table(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
