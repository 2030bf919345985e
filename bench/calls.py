"""One no-op capability call (issue 10), against a raw cffi call in the same run,
with the cost of each layer of the host path itemised.

The plugin is the noop-executor fixture, whose ``on_hook_event`` answers
``{kind: "continue"}`` without work. Each line adds one layer to the one above it:

  raw cffi       the bridge's no-op C function, same argument shape (bytes in,
                 a buffer out): the floor of any call from Python
  + plugin       ``hm_bridge_invoke`` into the plugin's vtable with a fixed handle:
                 the trampoline, the plugin's own msgpack encode, malloc and free
  + handle       the transport's call: a fresh call handle and its context
  + messages     the whole ``Plugin.on_hook_event``: msgspec encode and decode
  worker         the same call through ``hm-worker`` (``--isolate``), against the
                 pipe floor: one small write and read through ``cat``

Targets: the full in-process call <= 3x raw cffi (issue 10); the worker call
<= 30 us (issue 8).

    python -m bench.calls [--calls N] [--repeats R]
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

from bench.harness import Row, cli, fixture, median


def per_call_us(fn: Callable[[], object], calls: int, repeats: int) -> float:
    for _ in range(min(calls, 2000)):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return median(samples)


def pipe_floor_us(calls: int, repeats: int) -> float:
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


def rows(calls: int = 20_000, repeats: int = 9) -> list[Row]:
    import msgspec

    from hm.runtime import HostServices, open_plugin
    from hm.runtime._ffi import ffi, lib
    from hm.runtime.calls import CALLS
    from hm.runtime.transport import Op
    from hm_plugin_sdk.protocol import BuildStarted, HookEvent

    path = fixture("noop-executor")
    services = HostServices()
    event = HookEvent(
        phase="after", event=BuildStarted(run_id="r", ts="2026-01-01T00:00:00.000Z", pipeline="p", steps=1)
    )
    payload = msgspec.msgpack.encode(event)
    out = ffi.new("hm_buf_t *")
    plugin = open_plugin(path)
    transport = plugin.transport
    ctx = plugin.context("on_hook_event", services)
    op = int(Op.ON_HOOK_EVENT)

    vt, inst, slot = transport._vt, transport._inst, transport.owner  # type: ignore[attr-defined]
    label = transport._label  # type: ignore[attr-defined]
    scratch, status, big = ffi.new("char[]", 65536), ffi.new("hm_status_t *"), ffi.new("hm_buf_t *")
    handle = CALLS.open(ctx)

    def bridge() -> None:
        lib.hm_bridge_invoke(vt, inst, slot, op, handle, payload, len(payload), scratch, 65536, status, big, label, b"")

    layers = [
        ("raw cffi no-op call", lambda: lib.hm_bridge_noop(payload, len(payload), out)),
        ("  + plugin (trampoline, plugin's encode/free)", bridge),
        ("  + call handle and context", lambda: transport.call(op, payload, ctx)),
        ("  + msgspec encode/decode = in-process call", lambda: plugin.on_hook_event(event, services)),
    ]
    times = [per_call_us(fn, calls, repeats) for _, fn in layers]
    CALLS.close(handle)
    raw = times[0]
    out_rows = [Row(layers[0][0], raw, "us")]
    for (name, _), t, before in zip(layers[1:], times[1:], times[:-1], strict=True):
        out_rows.append(Row(f"{name} (+{t - before:.2f})", t, "us", "raw", raw))
    full = times[-1]
    out_rows[-1].target, out_rows[-1].met = "<= 3x", full <= 3 * raw

    worker = open_plugin(path, isolation="process")
    try:
        worker_us = per_call_us(lambda: worker.on_hook_event(event, services), calls, repeats)
    finally:
        worker.transport.close()
    floor = pipe_floor_us(calls, repeats)
    out_rows.append(
        Row("worker call (--isolate)", worker_us, "us", "pipe via cat", floor, target="<= 30 us", met=worker_us <= 30)
    )
    return out_rows


def main() -> int:
    return cli(rows, __doc__, calls=20_000, repeats=9)


if __name__ == "__main__":
    raise SystemExit(main())
