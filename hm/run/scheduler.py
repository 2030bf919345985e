"""Running a plan's stages and chains on anyio, with plugin calls on worker threads.

* Stages run in order. A stage behind a ``wait`` starts only if nothing failed
  before it, unless the wait says ``continue_on_failure``.
* Chains of a stage run concurrently, at most ``parallelism`` steps at a time. A
  chain that starts from another step's snapshot waits for that step; if it did
  not succeed, the chain is skipped.
* Fail-fast (default): the first failing chain stops its stage: running steps are
  told to cancel through ``should_cancel`` and nothing new starts. The wait after
  the stage then decides: without ``continue_on_failure`` the build ends there.
  ``keep_going`` lets independent chains of the stage finish.
* Ctrl-C and a hook's abort stop the whole build.
* A step's ``timeout_seconds`` is enforced through ``should_cancel`` and by a
  watchdog that asks the step to stop when its deadline passes, even if its
  runner never polls. A runner that still has not returned ``kill_grace()``
  seconds after it was asked to stop is given up on: an isolated
  one's worker is stopped by its transport, an in-process one's thread is
  abandoned (it cannot be interrupted; hm still exits), and the step ends
  ``timed_out`` or ``cancelled``.
* A runner whose process crashed ends its step as an ``error`` naming the
  plugin, the step and the signal; the rest of the run goes on.
* Each call runs in a worker thread: cffi releases the GIL, so steps really run
  in parallel.
* With before hooks, the scheduler waits for them (``bus.settle``) after a step
  is queued and after it started, so a hook's abort keeps the step from running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from hm.errors import HmError, PluginCallAbandoned
from hm.pipeline.graph import Chain, Plan
from hm.pipeline.ir import CommandStep, Pipeline
from hm.run.artifacts import collect as collect_artifacts
from hm.run.events import EventBus, now_ts
from hm.run.services import RunServices, StepState
from hm.run.step_cache import CacheTicket, StepCache
from hm.run.workspaces import Workspaces
from hm.runtime import Plugin, kill_grace
from hm_plugin_sdk.protocol import (
    Artifact,
    ChainFailed,
    ExecutorInput,
    StepFinished,
    StepQueued,
    StepResult,
    StepSpec,
    StepStarted,
)

#: How often the watchdog looks at running steps.
_WATCH_SECONDS = 0.1
#: Extra time before an isolated runner's thread is abandoned: its transport
#: normally gives up first, and stops its worker.
_ISOLATED_SLACK = 2.0


@dataclass
class StepOutcome:
    key: str
    status: str
    exit_code: int | None = None
    duration_ms: int = 0
    message: str | None = None
    tail: list[str] = field(default_factory=list)
    error: HmError | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    #: What the step cache did (``step_finished.cache``), and the image id the runner reported.
    cache: str | None = None
    image_id: str | None = None
    #: What the runner kept for a session into this step (``StepResult.session_target``, ABI 1.1).
    session_target: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class StepRunner:
    """The runner name and loaded plugin that execute a step."""

    runner: str
    plugin: Plugin


class Scheduler:
    def __init__(
        self,
        *,
        plan: Plan,
        pipeline: Pipeline,
        executors: dict[str, StepRunner],
        services: RunServices,
        bus: EventBus,
        workspaces: Workspaces,
        parallelism: int,
        keep_going: bool,
        artifacts_dir: Callable[[str], Path | None] | None = None,
        warn: Callable[[str], None] | None = None,
        cache: StepCache | None = None,
    ) -> None:
        self.plan = plan
        self.cache = cache
        #: Where a step's artifacts are kept (the run record), or None without one.
        self._artifacts_dir = artifacts_dir or (lambda _key: None)
        self._warn = warn or (lambda _text: None)
        self.pipeline = pipeline
        self.executors = executors
        self.services = services
        self.bus = bus
        self.workspaces = workspaces
        self.keep_going = keep_going
        self.outcomes: dict[str, StepOutcome] = {}
        #: The input of every step that failed or timed out, by key.
        self.failed_inputs: dict[str, ExecutorInput] = {}
        self._slots = anyio.CapacityLimiter(parallelism)
        self._threads = anyio.CapacityLimiter(parallelism)
        self._done: dict[str, anyio.Event] = {}
        #: Running steps' calls, for the watchdog: key -> (state, scope, isolated).
        self._running: dict[str, tuple[StepState, anyio.CancelScope, bool]] = {}
        #: Why the whole build stops (hook abort, Ctrl-C, a failure before a wait).
        self.stop_reason: str | None = None
        #: Why the current stage stops (fail-fast); cleared at each stage.
        self._stage_stop: str | None = None

    # -- control ------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Stop the build: start nothing new and cancel what runs (hook abort, Ctrl-C)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._cancel_running()

    def _fail_fast(self, reason: str) -> None:
        if self._stage_stop is None:
            self._stage_stop = reason
        self._cancel_running()

    def _cancel_running(self) -> None:
        for key, state in self.services.steps.items():
            if key not in self.outcomes:
                state.cancel.set()

    def _halted(self) -> str | None:
        if self.services.cancelled.is_set():
            return self.stop_reason or "the build was cancelled"
        return self.stop_reason or self._stage_stop

    @property
    def any_failed(self) -> bool:
        return any(not o.ok for o in self.outcomes.values() if o.status != "skipped")

    # -- running ------------------------------------------------------------------
    async def run(self) -> dict[str, StepOutcome]:
        for chain in (c for stage in self.plan.stages for c in stage.chains):
            for step in chain.steps:
                self._done[step.key] = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            await self._run_stages()
            tg.cancel_scope.cancel()
        return self.outcomes

    async def _settle(self) -> None:
        """Let the before hooks see what was emitted (their abort is decided then)."""
        if self.bus.gated:
            await anyio.to_thread.run_sync(self.bus.settle)

    async def _watch(self) -> None:
        """Ask overdue steps to stop, and give up on calls that do not."""
        while True:
            await anyio.sleep(_WATCH_SECONDS)
            now = time.monotonic()
            for state, scope, isolated in list(self._running.values()):
                if state.stop_at is None and (state.should_stop() or self.services.cancelled.is_set()):
                    state.stop_at = now
                grace = kill_grace() + (_ISOLATED_SLACK if isolated else 0)
                if state.stop_at is not None and now - state.stop_at >= grace:
                    scope.cancel()

    async def _run_stages(self) -> None:
        for stage in self.plan.stages:
            self._stage_stop = None
            wait = stage.wait_before
            if wait is not None and self.any_failed and not wait.continue_on_failure and self.stop_reason is None:
                self.stop_reason = "a step failed before a wait (set continue_on_failure on the wait to go on)"
            halted = self._halted()
            if halted is not None:
                self._skip_stage(stage.chains, halted)
                continue
            async with anyio.create_task_group() as tg:
                for chain in stage.chains:
                    tg.start_soon(self._run_chain, chain)

    def skip_all(self, reason: str) -> None:
        """Mark every step skipped (the build was aborted before it started)."""
        for stage in self.plan.stages:
            self._skip_stage(stage.chains, reason)

    def _skip_stage(self, chains: tuple[Chain, ...], why: str) -> None:
        for chain in chains:
            for step in chain.steps:
                self._skip(step, why)

    def _skip(self, step: CommandStep, why: str) -> None:
        if step.key in self.outcomes:
            return
        outcome = StepOutcome(step.key, "skipped", message=why)
        self.outcomes[step.key] = outcome
        done = self._done.get(step.key)  # absent when the build stops before it starts
        if done is not None:
            done.set()
        self.bus.emit(
            StepFinished(run_id=self.services.run_id, ts=now_ts(), step_key=step.key, status="skipped", message=why)
        )

    async def _run_chain(self, chain: Chain) -> None:
        base = chain.parent_step
        if base is not None:
            await self._done[base].wait()
            parent = self.outcomes[base]
            if not parent.ok:
                for step in chain.steps:
                    self._skip(step, f"it builds in '{base}', which {parent.status}")
                return
        for i, step in enumerate(chain.steps):
            halted = self._halted()
            if halted is not None:
                for rest in chain.steps[i:]:
                    self._skip(rest, halted)
                return
            self.bus.emit(StepQueued(run_id=self.services.run_id, ts=now_ts(), step_key=step.key))
            await self._settle()
            async with self._slots:
                outcome = await self._run_step(step, base)
            if not outcome.ok:
                for rest in chain.steps[i + 1 :]:
                    self._skip(rest, f"'{step.key}' {outcome.status} earlier in its chain")
                self.bus.emit(
                    ChainFailed(
                        run_id=self.services.run_id,
                        ts=now_ts(),
                        chain=chain.id,
                        step_key=step.key,
                        reason=outcome.message or outcome.status,
                        exit_code=outcome.exit_code,
                    )
                )
                if not self.keep_going and outcome.status != "cancelled":
                    self._fail_fast(f"'{step.key}' {outcome.status} (fail-fast; --keep-going lets other chains finish)")
                return
            base = step.key

    async def _run_step(self, step: CommandStep, base: str | None) -> StepOutcome:
        halted = self._halted()
        if halted is not None:
            self._skip(step, halted)
            return self.outcomes[step.key]
        executor = self.executors[step.key]
        workspace = self.workspaces.take(step.key)
        inp = ExecutorInput(
            run_id=self.services.run_id,
            step=StepSpec(
                key=step.key,
                cmd=step.cmd,
                label=step.label,
                image=step.image or self.pipeline.default_image,
                runner=executor.runner,
                runner_args=dict(step.runner_args),
                timeout_seconds=step.timeout_seconds,
            ),
            env={**self.pipeline.env, **step.env},
            workspace=str(workspace),
            base_workspace=str(self.workspaces.path(base)) if base else None,
            project_root=str(self.services.project_root or ""),
        )
        state = self.services.start_step(step.key, step.timeout_seconds)
        self.bus.emit(
            StepStarted(
                run_id=self.services.run_id,
                ts=now_ts(),
                step_key=step.key,
                runner=executor.runner,
                plugin=executor.plugin.name,
            )
        )
        await self._settle()
        started = time.monotonic()
        halted = self._halted()
        ticket: CacheTicket | None = None
        if halted is not None:  # a before hook aborted the build on this step
            outcome = StepOutcome(step.key, "skipped", message=halted)
        else:
            ticket = await self._cache_before(step, inp, executor, base, state)
            if ticket is not None and ticket.hit:
                outcome = StepOutcome(step.key, "succeeded", exit_code=0, message=ticket.message)
            else:
                outcome = await self._call(executor.plugin, inp, step, state)
        self.services.finish_step(step.key)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        if state.timed_out and outcome.status in ("cancelled", "failed"):
            outcome.status = "timed_out"
            outcome.exit_code = 124  # timeout(1)'s code; 130 would read as Ctrl-C
            outcome.message = f"timed out after {step.timeout_seconds:g} s"
        if outcome.ok and step.artifacts:  # before the cache: a missing artifact fails the step
            await self._keep_artifacts(step, workspace, outcome)
        outcome.cache = await self._cache_after(ticket, outcome, workspace, executor, state)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)  # storing it is part of the step
        outcome.tail = list(state.tail)
        if outcome.status in ("failed", "timed_out"):  # its workspace may be kept for `hm shell` (hm.run.kept)
            self.failed_inputs[step.key] = inp
        self.outcomes[step.key] = outcome
        self._done[step.key].set()
        self.bus.emit(
            StepFinished(
                run_id=self.services.run_id,
                ts=now_ts(),
                step_key=step.key,
                status=outcome.status,  # type: ignore[arg-type]
                exit_code=outcome.exit_code,
                duration_ms=outcome.duration_ms,
                message=outcome.message,
                artifacts=outcome.artifacts,
                cache=outcome.cache,  # type: ignore[arg-type]
            )
        )
        return outcome

    async def _keep_artifacts(self, step: CommandStep, workspace: Path, outcome: StepOutcome) -> None:
        """Copy the step's artifacts into the run record (off the loop: files may be large)."""
        dest = self._artifacts_dir(step.key)
        if dest is None:
            self._warn(f"step '{step.key}': its artifacts were not kept: the run has no record")
            return
        try:
            outcome.artifacts, empty = await anyio.to_thread.run_sync(
                collect_artifacts, workspace, list(step.artifacts), dest
            )
        except OSError as exc:
            self._warn(f"step '{step.key}': its artifacts could not be kept ({exc.strerror or exc}); the run goes on")
            return
        for pattern in empty:
            if step.artifacts_required:
                outcome.status, outcome.exit_code = "failed", outcome.exit_code or 1
                outcome.message = f"its artifact pattern {pattern!r} matched no file"
            else:
                self._warn(f"step '{step.key}': artifact pattern {pattern!r} matched no file")

    # -- the step cache (hm.run.step_cache): one call before a step, one after ------
    async def _cache_before(
        self, step: CommandStep, inp: ExecutorInput, executor: StepRunner, base: str | None, state: StepState
    ) -> CacheTicket | None:
        """Look the step up; a hit has restored its workspace and replayed its log.

        It may call the runner (to resolve an image), so the watchdog watches it as it does a step.
        """
        if self.cache is None or step.cache is None:
            return None
        before = partial(
            self.cache.before, step, inp, runner=executor.runner, plugin=executor.plugin, base=base, state=state
        )
        scope = anyio.CancelScope()
        self._running[step.key] = (state, scope, executor.plugin.isolation == "process")
        try:
            with scope:
                return await anyio.to_thread.run_sync(before, abandon_on_cancel=True, limiter=self._threads)
        finally:
            del self._running[step.key]
        return None  # given up on: the step runs, and sees that it was asked to stop

    async def _cache_after(
        self, ticket: CacheTicket | None, outcome: StepOutcome, workspace: Path, executor: StepRunner, state: StepState
    ) -> str | None:
        """Store the step if it should be; returns ``step_finished.cache``."""
        if self.cache is None or ticket is None:
            return None
        after = partial(
            self.cache.after,
            ticket,
            status=outcome.status,
            workspace=workspace,
            state=state,
            runner=executor.runner,
            plugin=executor.plugin,
            image_id=outcome.image_id,
            duration_ms=outcome.duration_ms,
            run_id=self.services.run_id,
        )
        return await anyio.to_thread.run_sync(after, limiter=self._threads)

    async def _call(self, plugin: Plugin, inp: ExecutorInput, step: CommandStep, state: StepState) -> StepOutcome:
        result: StepResult | None = None
        scope = anyio.CancelScope()
        self._running[step.key] = (state, scope, plugin.isolation == "process")
        try:
            with scope:
                result = await anyio.to_thread.run_sync(
                    plugin.execute_step, inp, self.services, abandon_on_cancel=True, limiter=self._threads
                )
        except PluginCallAbandoned as exc:
            return self._given_up(step, state, exc.what)
        except HmError as exc:
            return StepOutcome(step.key, "error", message=exc.one_line(), error=exc)
        finally:
            del self._running[step.key]
        if result is None:
            return self._given_up(
                step, state, f"{plugin.name} did not stop within {kill_grace():g} s; its thread was abandoned"
            )
        message = result.message
        if result.exit_code < 0 or result.exit_code > 255:
            return StepOutcome(
                step.key,
                "error",
                message=f"plugin {plugin.name} ({plugin.path}): execute_step returned exit code "
                f"{result.exit_code}, outside 0-255; report this to the plugin's author",
            )
        # A runner that says "succeeded" with a non-zero exit code is believed on the code.
        status = "failed" if result.status == "succeeded" and result.exit_code != 0 else result.status
        if status == "failed" and not message:
            message = f"exited with code {result.exit_code}"
        return StepOutcome(
            step.key,
            status,
            exit_code=result.exit_code,
            message=message,
            image_id=result.image_id,
            session_target=result.session_target,
        )

    def _given_up(self, step: CommandStep, state: StepState, why: str) -> StepOutcome:
        """The outcome of a step whose runner did not stop when asked."""
        if state.timed_out:
            return StepOutcome(
                step.key, "timed_out", exit_code=124, message=f"timed out after {step.timeout_seconds:g} s; {why}"
            )
        return StepOutcome(step.key, "cancelled", message=why)
