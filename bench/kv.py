"""Atomic KV (ABI 1.1): what ``kv_compare_and_swap`` costs, and that counting with
it stays exact under contention where ``kv_get`` + ``kv_set`` loses updates.

Printed, for the PLUGIN scope's SQLite store (:class:`hm.runtime.kv_store.PluginKvStore`,
WAL, one connection per thread):

- ``set`` and ``cas``: operations per second of ``set`` and of an uncontended
  ``compare_and_swap`` (its ``BEGIN IMMEDIATE`` transaction), one thread;
- ``contended``: P processes x T threads each adding 1 to one key N times, with
  get + compare-and-swap + retry: the final count (must be P*T*N), the retries and
  the increments per second; then the same with get + set, whose final count shows
  the lost updates the issue reported.

    python -m bench.kv [--ops N] [--procs P] [--threads T]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hm.runtime.kv_store import PluginKvStore  # noqa: E402


def _bump(db: str, n: int, threads: int, atomic: bool, retries: multiprocessing.Value) -> None:  # type: ignore[type-arg]
    store = PluginKvStore(Path(db))

    def work() -> None:
        lost = 0
        for _ in range(n):
            while True:
                old = store.get("bench", b"n")
                new = str(int(old or b"0") + 1).encode()
                if not atomic:
                    store.set("bench", b"n", new)
                    break
                if store.compare_and_swap("bench", b"n", old, new):
                    break
                lost += 1
        with retries.get_lock():
            retries.value += lost

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def contended(db: Path, procs: int, threads: int, n: int, atomic: bool) -> tuple[int, int, float]:
    retries = multiprocessing.Value("i", 0)
    started = time.perf_counter()
    ps = [multiprocessing.Process(target=_bump, args=(str(db), n, threads, atomic, retries)) for _ in range(procs)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    took = time.perf_counter() - started
    final = int(PluginKvStore(db).get("bench", b"n") or b"0")
    return final, int(retries.value), took


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--increments", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hm-bench-kv-") as tmp:
        store = PluginKvStore(Path(tmp) / "one.sqlite3")
        started = time.perf_counter()
        for i in range(args.ops):
            store.set("bench", b"k", str(i).encode())
        set_rate = args.ops / (time.perf_counter() - started)
        old: bytes | None = store.get("bench", b"k")
        started = time.perf_counter()
        for i in range(args.ops):
            new = str(i).encode()
            assert store.compare_and_swap("bench", b"k", old, new)
            old = new
        cas_rate = args.ops / (time.perf_counter() - started)
        print(f"set        {set_rate:8.0f} ops/s (one thread)")
        print(f"cas        {cas_rate:8.0f} ops/s (one thread, uncontended): {cas_rate / set_rate:.2f}x set's rate")
        want = args.procs * args.threads * args.increments
        for atomic in (True, False):
            db = Path(tmp) / f"contended-{atomic}.sqlite3"
            final, retries, took = contended(db, args.procs, args.threads, args.increments, atomic)
            how = "get + cas " if atomic else "get + set "
            print(
                f"contended  {how}: {args.procs} procs x {args.threads} threads x {args.increments}: "
                f"count {final} of {want} ({want - final} lost), {retries} retries, {want / took:.0f} increments/s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
