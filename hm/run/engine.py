"""One run of a pipeline, start to finish: load the plugins it needs, wire the
event bus to hooks and output, drive the scheduler, handle signals, and map the
result to an exit code.

A run always ends with ``build_finished`` and an exit code that tells the truth,
and leaves no process or directory behind:

* Ctrl-C, SIGTERM or SIGHUP once: every running call sees ``should_cancel``,
  nothing new starts, hooks see the end, the summary says cancelled (exit 130,
  143 or 129);
* any of them a second time: everything the run started is killed, its
  directory removed, a last ``build_finished`` written, and hm exits at once;
* a call that never returns is given up on after a grace period (the
  scheduler), and hm still exits (``hm.cli.finish``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from hm import child_process
from hm.cache import CacheConfig
from hm.errors import ExitCode
from hm.pipeline.graph import Plan, build_plan
from hm.pipeline.ir import CommandStep, Pipeline, pipeline_to_json
from hm.pipeline.routing import route
from hm.run.archive import WorkspaceArchive
from hm.run.events import EventBus, now_ts
from hm.run.hooks import Abort, Hook, HookDispatcher
from hm.run.kept import KeptStep, keep_failed, keep_failed_runs, prune_kept
from hm.run.records import RunRecorder, RunStore, keep_runs
from hm.run.run_dir import RunDirectory, remove_tree
from hm.run.scheduler import Scheduler, StepOutcome, StepRunner
from hm.run.services import RunServices
from hm.run.step_cache import StepCache
from hm.run.workspaces import Workspaces
from hm.runtime import Registry, set_last_words
from hm_plugin_sdk.protocol import BuildEvent, BuildFinished, BuildStarted, LifecycleHookCapability

if TYPE_CHECKING:
    from hm.cluster.connect import ClusterSpec

__all__ = ["RunOptions", "RunResult", "Sink", "command_steps", "remove_tree", "run_pipeline"]

#: The signals that stop a run, and the exit code each gives it.
STOP_SIGNALS: dict[int, int] = {signal.SIGINT: int(ExitCode.CANCELLED)}
if hasattr(signal, "SIGTERM"):
    STOP_SIGNALS[signal.SIGTERM] = 128 + signal.SIGTERM
if hasattr(signal, "SIGHUP"):
    STOP_SIGNALS[signal.SIGHUP] = 128 + signal.SIGHUP


class Sink(Protocol):
    def __call__(self, event: BuildEvent) -> None: ...

    def warning(self, text: str) -> None: ...

    def close(self) -> None: ...

    def final(self, event: BuildFinished) -> None:
        """Write ``event`` at once, bypassing the bus (an emergency exit)."""


@dataclass(frozen=True)
class RunOptions:
    project_root: Path
    parallelism: int
    keep_going: bool = False
    #: Keep the per-step workspaces after the run (``HM_KEEP_WORKSPACES=1``).
    keep_workspaces: bool = False
    #: ``--format json``: an in-process crash then still ends the stream.
    json_events: bool = False
    #: Keep a run record (events, full logs, artifacts) under hm's state directory.
    record: bool = True
    #: ``--cluster``: run the steps as tasks on this Dask cluster (``hm.cluster``).
    cluster: ClusterSpec | None = None


@dataclass
class RunResult:
    run_id: str
    exit_code: ExitCode | int
    finished: BuildFinished
    outcomes: list[StepOutcome]
    #: The run record's folder (None when it could not be written).
    record_dir: Path | None = None
    #: The step workspaces' folder, when HM_KEEP_WORKSPACES kept it.
    kept_workspaces: Path | None = None
    #: Keys of the failed steps whose workspaces the record kept for `hm shell` (hm.run.kept).
    kept_failed: list[str] = field(default_factory=list)


def command_steps(pipeline: Pipeline) -> list[CommandStep]:
    return [s for s in pipeline.steps if isinstance(s, CommandStep)]


def resolve_executors(pipeline: Pipeline, registry: Registry) -> dict[str, StepRunner]:
    """Load the plugin of every step's runner before anything runs (load errors: exit 4)."""
    executors: dict[str, StepRunner] = {}
    for step in command_steps(pipeline):
        runner, rec = registry.executor_for(route(step, pipeline, registry.default_runner))
        executors[step.key] = StepRunner(runner, registry.load(rec))
    return executors


def load_hooks(registry: Registry) -> list[Hook]:
    hooks = []
    for rec, cap in registry.hooks():
        assert isinstance(cap, LifecycleHookCapability)
        hooks.append(Hook(registry.load(rec), cap))
    return hooks


@dataclass
class _Stop:
    """Which signal stopped the run, if one did."""

    signum: int | None = None
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def exit_code(self) -> int:
        return STOP_SIGNALS.get(self.signum or signal.SIGINT, int(ExitCode.CANCELLED))


def run_pipeline(pipeline: Pipeline, registry: Registry, options: RunOptions, sink: Sink) -> RunResult:
    executors = resolve_executors(pipeline, registry)
    hooks = load_hooks(registry)
    plan = build_plan(pipeline)
    cache_config = _cache_config(pipeline, options)
    run_id = uuid.uuid4().hex[:12]
    closers = _attach_cluster(pipeline, plan, executors, options, run_id)  # before anything needs cleaning up
    run_dir = RunDirectory(run_id)
    bus = EventBus()
    archive = WorkspaceArchive(options.project_root, run_dir.path)
    services = RunServices(run_id=run_id, bus=bus, project_root=options.project_root, archive=archive)
    recorder = (
        RunRecorder(
            run_id,
            project_root=options.project_root,
            pipeline_json=pipeline_to_json(pipeline),
            plan=[[[step.key for step in chain.steps] for chain in stage.chains] for stage in plan.stages],
            warn=sink.warning,
        )
        if options.record
        else None
    )
    cache = StepCache(cache_config, services, pipeline=pipeline.slug, warn=sink.warning) if cache_config else None
    workspaces = Workspaces(run_dir.path, [step.key for stage in plan.stages for c in stage.chains for step in c.steps])
    scheduler = Scheduler(
        plan=plan,
        pipeline=pipeline,
        executors=executors,
        services=services,
        bus=bus,
        workspaces=workspaces,
        parallelism=max(1, options.parallelism),
        keep_going=options.keep_going,
        artifacts_dir=recorder.artifacts_dir if recorder is not None else None,
        warn=sink.warning,
        cache=cache,
    )

    def on_abort(abort: Abort) -> None:
        scheduler.stop(f"aborted by hook {abort.hook}: {abort.reason}")

    dispatcher = HookDispatcher(hooks, services, on_abort=on_abort, on_warning=sink.warning)
    bus.sinks.append(sink)
    closers += _trace(bus)
    if recorder is not None:
        bus.sinks.append(recorder)
    bus.attach_hooks(dispatcher)
    if options.json_events:
        set_last_words(run_id)

    started = time.monotonic()
    stop = _Stop()

    def emergency() -> None:
        """The second signal: kill everything of the run, remove its directory, go."""
        child_process.kill_descendants()
        try:
            workspaces.close()
            if options.keep_workspaces:
                run_dir.keep()
            else:
                run_dir.remove()
        except OSError:
            pass
        finished = BuildFinished(
            run_id=run_id,
            ts=now_ts(),
            status="cancelled",
            exit_code=stop.exit_code,
            duration_ms=int((time.monotonic() - started) * 1000),
            message=f"stopped at once by a second {child_process.signal_name(stop.signum or signal.SIGINT)}",
        )
        try:
            sink.final(finished)
        except Exception:  # the terminal may be gone (SIGHUP): the exit code still tells
            pass
        os._exit(stop.exit_code)

    def on_signal(signum: int, _frame: Any) -> None:
        with stop.lock:
            stop.count += 1
            first = stop.count == 1
            if first:
                stop.signum = signum
        if not first:
            emergency()
        name = child_process.signal_name(signum)
        _say(f"warning: {name}: cancelling; running steps are asked to stop; press Ctrl-C again to exit at once\n")
        services.cancelled.set()
        scheduler.stop("cancelled by the user" if signum == signal.SIGINT else f"stopped by {name}")

    restore = _catch_signals(on_signal)
    try:
        bus.emit(
            BuildStarted(
                run_id=run_id,
                ts=now_ts(),
                pipeline=pipeline.slug,
                steps=len(command_steps(pipeline)),
                project_root=str(options.project_root),
            )
        )
        bus.settle()
        if dispatcher.aborted is None:
            try:
                anyio.run(scheduler.run)
            except BaseExceptionGroup as group:
                raise _first_leaf(group) from None
            finally:
                workspaces.close()
        else:
            scheduler.skip_all(f"aborted by hook {dispatcher.aborted.hook}: {dispatcher.aborted.reason}")
        outcomes = _in_plan_order(plan, scheduler.outcomes)
        code, status, message = _verdict(outcomes, services, dispatcher, stop)
        finished = BuildFinished(
            run_id=run_id,
            ts=now_ts(),
            status=status,  # type: ignore[arg-type]
            exit_code=int(code),
            duration_ms=int((time.monotonic() - started) * 1000),
            message=message,
        )
        bus.emit(finished)
        record_dir = recorder.dir if recorder is not None and recorder.artifacts_dir("") is not None else None
        kept = workspaces.root if options.keep_workspaces else None
        kept_failed = []
        if record_dir is not None and not options.keep_workspaces:
            kept_failed = _keep_failed(record_dir, workspaces.root, scheduler, executors, outcomes)
        return RunResult(run_id, code, finished, outcomes, record_dir, kept, kept_failed)
    finally:
        bus.close()
        dispatcher.close()
        for close in closers:
            close()
        archive.close()
        sink.close()
        if recorder is not None:
            recorder.close()
            RunStore(options.project_root).prune(keep_runs())
            prune_kept(RunStore(options.project_root), keep_failed_runs())
        if options.json_events:
            set_last_words(None)
        workspaces.close()
        if options.keep_workspaces:
            run_dir.keep()
        else:
            run_dir.remove()
        restore()


def _keep_failed(
    record_dir: Path,
    root: Path,
    scheduler: Scheduler,
    executors: dict[str, StepRunner],
    outcomes: list[StepOutcome],
) -> list[str]:
    """Move the failed steps' workspaces into the record, for `hm shell` (hm.run.kept)."""
    by_key = {o.key: o for o in outcomes}
    failed = [
        KeptStep(
            run_id=inp.run_id,
            step=inp.step,
            env=inp.env,
            runner=executors[key].runner,
            plugin=executors[key].plugin.name,
            status=by_key[key].status,
            exit_code=by_key[key].exit_code,
            session_target=by_key[key].session_target,
            project_root=inp.project_root,
        )
        for key, inp in scheduler.failed_inputs.items()
        if key in by_key
    ]
    return keep_failed(record_dir, root, failed)


def _attach_cluster(
    pipeline: Pipeline, plan: Plan, executors: dict[str, StepRunner], options: RunOptions, run_id: str
) -> list[Callable[[], None]]:
    """With ``--cluster``, route the steps to it; returns what ends that, in order."""
    if options.cluster is None:
        return []
    from hm.cluster import attach

    fetch = [
        s.key
        for s in command_steps(pipeline)
        if options.keep_workspaces or s.artifacts or (s.cache is not None and s.cache.policy != "none")
    ]
    cluster, remote = attach(
        options.cluster, run_id, plan, executors, parallelism=max(1, options.parallelism), fetch=fetch
    )
    return [remote.close, cluster.close]


def _trace(bus: EventBus) -> list[Callable[[], None]]:
    """With the ``OTEL_*`` variables set, the run's events become spans (``hm.telemetry``)."""
    from hm import telemetry

    if not telemetry.enabled():
        return []
    from hm.telemetry.run_spans import RunSpans

    spans = RunSpans()
    bus.sinks.append(spans)
    return [spans.close]


def _cache_config(pipeline: Pipeline, options: RunOptions) -> CacheConfig | None:
    """The step cache's settings, read only when a step has a cache policy (a bad one: exit 3)."""
    if not any(s.cache is not None and s.cache.policy != "none" for s in command_steps(pipeline)):
        return None
    return CacheConfig.from_environment(options.project_root)


def _say(text: str) -> None:
    """A line on stderr from a signal handler: unbuffered, and never an error."""
    try:
        os.write(2, text.encode(errors="replace"))
    except OSError:
        pass


def _catch_signals(handler: Callable[[int, Any], None]) -> Callable[[], None]:
    """Install ``handler`` for the stop signals; returns what restores the old ones."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    """Task groups wrap errors; the user should see the error itself."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _in_plan_order(plan: Plan, outcomes: dict[str, StepOutcome]) -> list[StepOutcome]:
    ordered = []
    for stage in plan.stages:
        for chain in stage.chains:
            for step in chain.steps:
                ordered.append(outcomes.get(step.key) or StepOutcome(step.key, "skipped"))
    return ordered


def _verdict(
    outcomes: list[StepOutcome], services: RunServices, hooks: HookDispatcher, stop: _Stop
) -> tuple[ExitCode | int, str, str | None]:
    if hooks.aborted is not None:
        return ExitCode.HOOK_ABORTED, "aborted", f"hook {hooks.aborted.hook} aborted the build: {hooks.aborted.reason}"
    if services.cancelled.is_set():
        signum = stop.signum or signal.SIGINT
        why = "cancelled by the user" if signum == signal.SIGINT else f"stopped by {child_process.signal_name(signum)}"
        return stop.exit_code, "cancelled", why
    bad = [o for o in outcomes if o.status in ("failed", "timed_out", "error")]
    if not bad:
        # Nobody asked these to stop: a runner that says "cancelled" on its own failed.
        bad = [o for o in outcomes if o.status == "cancelled"]
    errors = [o for o in bad if o.status == "error"]
    if errors:
        return ExitCode.PLUGIN_RUNTIME, "error", f"'{errors[0].key}': {errors[0].message}"
    if bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return ExitCode.STEP_FAILED, "failed", f"'{first.key}' {first.status}: {first.message}{more}"
    return ExitCode.OK, "succeeded", None
