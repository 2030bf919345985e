"""The cost of one no-op capability call through the whole host path, against a raw cffi call.

Full path: encode a HookEvent with msgspec, open a call handle, call the plugin's
``on_hook_event`` through the bridge trampoline (GIL released), copy and release its
output through the plugin's ``free``, decode the HookOutcome. Plugin: the
noop-executor fixture, whose hook returns ``{kind: "continue"}`` without work.

Baseline, measured in the same run: a raw cffi call of the bridge's no-op C function
with the same argument shape (bytes in, hm_buf_t out).

Target (issue 2): the full path within 5x the raw call.

    python bench/bench_call_path.py [--calls N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from hm.runtime._ffi import ffi, lib  # noqa: E402
from hm.runtime.host_services import HostServices  # noqa: E402
from hm.runtime.plugin import open_plugin  # noqa: E402
from hm_plugin_sdk.protocol import BuildStarted, HookEvent  # noqa: E402


def per_call_ns(fn, calls: int, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    suffix = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
    fixture = ROOT / "build" / "fixtures" / f"noop-executor{suffix}"
    if not fixture.exists():
        print(f"{fixture} is missing: run `python build.py fixtures` first", file=sys.stderr)
        return 2
    plugin = open_plugin(fixture)
    services = HostServices()
    started = BuildStarted(run_id="r", ts="2026-01-01T00:00:00.000Z", pipeline="p", steps=1)
    event = HookEvent(phase="after", event=started)
    payload = msgspec.msgpack.encode(event)
    out = ffi.new("hm_buf_t *")

    def raw() -> None:
        lib.hm_bridge_noop(payload, len(payload), out)

    def full() -> None:
        plugin.on_hook_event(event, services)

    for fn in (raw, full):  # warm up
        per_call_ns(fn, 2_000, 1)
    raw_ns = statistics.median(per_call_ns(raw, args.calls, args.repeats))
    full_ns = statistics.median(per_call_ns(full, args.calls, args.repeats))
    ratio = full_ns / raw_ns
    print(f"raw cffi no-op call      median {raw_ns:8.0f} ns")
    print(f"full capability call     median {full_ns:8.0f} ns  (encode, call handle, vtable, free, decode)")
    print(f"ratio full/raw           {ratio:8.2f}x   target <= 5x: {'met' if ratio <= 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
