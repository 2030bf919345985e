"""Host-API behaviour during a run: step logs, cancellation, timeouts, the build
and step KV scopes, plugin events and the workspace archive.

Everything a plugin thread touches here is attributed through its call context
(plugin, step key) and guarded for concurrent steps.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Literal

from hm.run.archive import WorkspaceArchive
from hm.run.events import EventBus, now_ts
from hm.run.log_lines import LineSplitter
from hm.runtime import CallContext, HostServices, HostStatus, PluginKvStore
from hm_plugin_sdk.abi import KvScope, Status, Stream
from hm_plugin_sdk.protocol import PluginEvent, PluginEventEmitted, StepLog

#: Lines of each step's output kept for the summary; older lines are dropped.
TAIL_LINES = 40
#: Most bytes of output a step's recording keeps (:attr:`StepState.record`); past
#: it the recording is dropped, and the step is not stored in the cache.
RECORD_MAX_BYTES = 64 << 20
_STREAMS: dict[Stream, Literal["stdout", "stderr"]] = {Stream.STDOUT: "stdout", Stream.STDERR: "stderr"}


class StepState:
    """What the host tracks for one running step."""

    def __init__(self, key: str, timeout_seconds: float | None) -> None:
        self.key = key
        self.cancel = threading.Event()
        self.deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        self.timed_out = False
        #: When something first asked the step to stop (the scheduler's watchdog).
        self.stop_at: float | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.splitters = {Stream.STDOUT: LineSplitter(), Stream.STDERR: LineSplitter()}
        self.lines = 0
        self.lock = threading.Lock()
        #: Every line, as ``(0 stdout | 1 stderr, line)``, while the step cache
        #: records the step (``None``: not recording); see :data:`RECORD_MAX_BYTES`.
        self.record: list[tuple[int, str]] | None = None
        self.record_bytes = 0
        self.record_overflowed = False

    def should_stop(self) -> bool:
        """Whether the step was asked to stop; marks it timed out once its deadline passed."""
        if self.deadline is not None and not self.timed_out and time.monotonic() >= self.deadline:
            self.timed_out = True
            self.cancel.set()
        return self.cancel.is_set()


class RunServices(HostServices):
    def __init__(
        self,
        *,
        run_id: str,
        bus: EventBus,
        project_root: Path,
        archive: WorkspaceArchive,
        kv: PluginKvStore | None = None,
    ) -> None:
        super().__init__(project_root=project_root, kv=kv)
        self.run_id = run_id
        self.bus = bus
        self.archive = archive
        self.cancelled = threading.Event()
        self.steps: dict[str, StepState] = {}
        self._mem_kv: dict[tuple[str, str, str, bytes], bytes] = {}
        self._kv_lock = threading.Lock()

    # -- steps ----------------------------------------------------------------
    def start_step(self, key: str, timeout_seconds: float | None) -> StepState:
        state = StepState(key, timeout_seconds)
        self.steps[key] = state
        return state

    def finish_step(self, key: str) -> None:
        """Flush unfinished lines once the runner returned."""
        state = self.steps[key]
        with state.lock:
            for stream, splitter in state.splitters.items():
                lines = splitter.flush()
                if lines:
                    self._lines(state, stream, lines, now_ts())

    def should_cancel(self, ctx: CallContext) -> bool:
        if self.cancelled.is_set():
            return True
        state = self.steps.get(ctx.step_key) if ctx.step_key else None
        if state is None:
            return False
        return state.should_stop()

    def step_log(self, ctx: CallContext, stream: Stream, data: bytes) -> None:
        state = self.steps.get(ctx.step_key) if ctx.step_key and ctx.op == "execute_step" else None
        if state is None:  # only the call that executes a step writes its log
            raise HostStatus(Status.ERR_UNAVAILABLE)
        with state.lock:  # a runner may emit from several threads of its own
            lines = state.splitters[stream].feed(data)
            if lines:
                # one timestamp per chunk: formatting it per line costs more than the line
                self._lines(state, stream, lines, now_ts())
                # Per chunk, not per line: a reader sees output as the step makes it,
                # and a million-line step still costs one flush per runner read.
                self.bus.flush()

    def _lines(self, state: StepState, stream: Stream, lines: list[str], ts: str) -> None:
        state.tail.extend(lines)
        state.lines += len(lines)
        if state.record is not None:
            code = 0 if stream is Stream.STDOUT else 1
            state.record.extend([(code, line) for line in lines])
            state.record_bytes += sum(map(len, lines)) + 8 * len(lines)
            if state.record_bytes > RECORD_MAX_BYTES:
                state.record, state.record_overflowed = None, True
        run_id, key, name = self.run_id, state.key, _STREAMS[stream]
        self.bus.emit_logs([StepLog(run_id=run_id, ts=ts, step_key=key, stream=name, line=line) for line in lines])

    def replay_log(self, key: str, lines: list[tuple[str, str]]) -> None:
        """Emit a cached step's recorded log as ``step_log`` events marked ``replayed``."""
        state = self.steps[key]
        with state.lock:
            for start in range(0, len(lines), 4096):
                chunk = lines[start : start + 4096]
                state.tail.extend(line for _, line in chunk)
                state.lines += len(chunk)
                ts = now_ts()
                self.bus.emit_logs(
                    [
                        StepLog(run_id=self.run_id, ts=ts, step_key=key, stream=stream, line=line, replayed=True)  # type: ignore[arg-type]
                        for stream, line in chunk
                    ]
                )
                self.bus.flush()

    # -- events and KV ----------------------------------------------------------
    def emit_event(self, ctx: CallContext, event: PluginEvent) -> None:
        self.bus.emit(
            PluginEventEmitted(
                run_id=self.run_id,
                ts=now_ts(),
                plugin=ctx.plugin,
                name=event.name,
                data=event.data,
                step_key=ctx.step_key,
            ),
            from_hook=ctx.op == "on_hook_event",
        )

    def _mem_key(self, ctx: CallContext, scope: KvScope, key: bytes) -> tuple[str, str, str, bytes]:
        if scope is KvScope.STEP:
            if ctx.step_key is None:
                raise HostStatus(Status.ERR_UNAVAILABLE)
            return (ctx.plugin, "step", ctx.step_key, key)
        return (ctx.plugin, "build", "", key)

    def kv_get(self, ctx: CallContext, scope: KvScope, key: bytes) -> bytes | None:
        if scope is KvScope.PLUGIN:
            return super().kv_get(ctx, scope, key)
        with self._kv_lock:
            return self._mem_kv.get(self._mem_key(ctx, scope, key))

    def kv_set(self, ctx: CallContext, scope: KvScope, key: bytes, value: bytes) -> None:
        if scope is KvScope.PLUGIN:
            super().kv_set(ctx, scope, key, value)
            return
        with self._kv_lock:
            self._mem_kv[self._mem_key(ctx, scope, key)] = value

    def kv_compare_and_swap(
        self, ctx: CallContext, scope: KvScope, key: bytes, expected: bytes | None, value: bytes
    ) -> bool:
        if scope is KvScope.PLUGIN:
            return super().kv_compare_and_swap(ctx, scope, key, expected, value)
        with self._kv_lock:  # the same lock as kv_get/kv_set: compare and write are one step
            mem_key = self._mem_key(ctx, scope, key)
            if self._mem_kv.get(mem_key) != expected:
                return False
            self._mem_kv[mem_key] = value
            return True

    # -- archive ----------------------------------------------------------------
    def archive_size(self, ctx: CallContext) -> int:
        self._only_in_steps(ctx)
        return self.archive.size()

    def archive_read(self, ctx: CallContext, offset: int, size: int) -> bytes:
        self._only_in_steps(ctx)
        return self.archive.read(offset, size)

    @staticmethod
    def _only_in_steps(ctx: CallContext) -> None:
        """The archive is the input of steps (hm_plugin.h): hooks and others get UNAVAILABLE."""
        if ctx.op != "execute_step":
            raise HostStatus(Status.ERR_UNAVAILABLE)

    # -- terminal -----------------------------------------------------------------
    def write_stdout(self, ctx: CallContext, data: bytes) -> None:
        # stdout belongs to `--format json` during a run: route it into the step log.
        self._write_as_log(ctx, Stream.STDOUT, data)

    def write_stderr(self, ctx: CallContext, data: bytes) -> None:
        self._write_as_log(ctx, Stream.STDERR, data)

    def _write_as_log(self, ctx: CallContext, stream: Stream, data: bytes) -> None:
        if ctx.op == "execute_step" and ctx.step_key in self.steps:
            self.step_log(ctx, stream, data)
        else:
            super().write_stderr(ctx, data)
