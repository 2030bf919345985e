"""One run of a pipeline, start to finish: load the plugins it needs, wire the
event bus to hooks and output, drive the scheduler, handle Ctrl-C, and map the
result to an exit code.

Ctrl-C once: every running call sees ``should_cancel``, nothing new starts, hooks
see the end, the summary says cancelled (exit 130). Twice: exit 130 at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from hm.errors import ExitCode
from hm.pipeline.graph import Plan, build_plan
from hm.pipeline.ir import CommandStep, Pipeline
from hm.pipeline.routing import route
from hm.run.archive import WorkspaceArchive
from hm.run.events import EventBus, now_ts
from hm.run.hooks import Abort, Hook, HookDispatcher
from hm.run.scheduler import Scheduler, StepOutcome, StepRunner
from hm.run.services import RunServices
from hm.runtime.registry import Registry
from hm_plugin_sdk.protocol import BuildEvent, BuildFinished, BuildStarted, LifecycleHookCapability


class Sink(Protocol):
    def __call__(self, event: BuildEvent) -> None: ...

    def warning(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    project_root: Path
    parallelism: int
    keep_going: bool = False
    #: Keep the per-step workspaces after the run (``HM_KEEP_WORKSPACES=1``).
    keep_workspaces: bool = False


@dataclass
class RunResult:
    run_id: str
    exit_code: ExitCode
    finished: BuildFinished
    outcomes: list[StepOutcome]


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


def run_pipeline(pipeline: Pipeline, registry: Registry, options: RunOptions, sink: Sink) -> RunResult:
    executors = resolve_executors(pipeline, registry)
    hooks = load_hooks(registry)
    plan = build_plan(pipeline)
    run_id = uuid.uuid4().hex[:12]
    run_dir = Path(tempfile.mkdtemp(prefix=f"hm-run-{run_id}-"))
    bus = EventBus()
    archive = WorkspaceArchive(options.project_root, run_dir)
    services = RunServices(run_id=run_id, bus=bus, project_root=options.project_root, archive=archive)
    scheduler = Scheduler(
        plan=plan,
        pipeline=pipeline,
        executors=executors,
        services=services,
        bus=bus,
        run_dir=run_dir,
        parallelism=max(1, options.parallelism),
        keep_going=options.keep_going,
    )

    def on_abort(abort: Abort) -> None:
        scheduler.stop(f"aborted by hook {abort.hook}: {abort.reason}")

    dispatcher = HookDispatcher(hooks, services, on_abort=on_abort, on_warning=sink.warning)
    if not dispatcher.empty:
        bus.before.append(dispatcher.before)
        bus.after.append(dispatcher.after)
    bus.sinks.append(sink)

    started = time.monotonic()
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
        if dispatcher.aborted is None:
            try:
                anyio.run(_run_with_signals, scheduler, services, sink)
            except BaseExceptionGroup as group:
                raise _first_leaf(group) from None
        else:
            scheduler.skip_all(f"aborted by hook {dispatcher.aborted.hook}: {dispatcher.aborted.reason}")
        outcomes = _in_plan_order(plan, scheduler.outcomes)
        code, status, message = _verdict(outcomes, services, dispatcher)
        finished = BuildFinished(
            run_id=run_id,
            ts=now_ts(),
            status=status,  # type: ignore[arg-type]
            exit_code=int(code),
            duration_ms=int((time.monotonic() - started) * 1000),
            message=message,
        )
        bus.emit(finished)
        return RunResult(run_id, code, finished, outcomes)
    finally:
        dispatcher.close()
        archive.close()
        sink.close()
        if not options.keep_workspaces:
            remove_tree(run_dir)


def remove_tree(path: Path) -> None:
    """Delete a run directory, even where a step left read-only directories (mode 0555).

    Refuses anything but an ``hm-run-*`` directory: this deletes recursively.
    """
    if not path.name.startswith("hm-run-") or not path.is_absolute():
        raise ValueError(f"refusing to delete {path!s}: not a run directory")

    def make_writable_and_retry(func, failed: str, _exc: object) -> None:  # type: ignore[no-untyped-def]
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
            func(failed)
        except OSError:
            pass  # best effort: a leftover temporary directory is not worth failing a run

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable_and_retry)
    else:
        shutil.rmtree(path, onerror=lambda f, p, e: make_writable_and_retry(f, p, e[1]))


async def _run_with_signals(scheduler: Scheduler, services: RunServices, sink: Sink) -> None:
    async with anyio.create_task_group() as tg:
        if _can_watch_signals():
            tg.start_soon(_watch_interrupts, scheduler, services, sink)
        await scheduler.run()
        tg.cancel_scope.cancel()


def _first_leaf(group: BaseExceptionGroup) -> BaseException:  # type: ignore[type-arg]
    """Task groups wrap errors; the user should see the error itself."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _can_watch_signals() -> bool:
    return threading.current_thread() is threading.main_thread() and sys.platform != "win32"


async def _watch_interrupts(scheduler: Scheduler, services: RunServices, sink: Sink) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                sink.warning("cancelling: running steps are asked to stop; press Ctrl-C again to exit at once")
                services.cancelled.set()
                scheduler.stop("cancelled by the user")
            else:
                sink.close()
                os._exit(int(ExitCode.CANCELLED))


def _in_plan_order(plan: Plan, outcomes: dict[str, StepOutcome]) -> list[StepOutcome]:
    ordered = []
    for stage in plan.stages:
        for chain in stage.chains:
            for step in chain.steps:
                ordered.append(outcomes.get(step.key) or StepOutcome(step.key, "skipped"))
    return ordered


def _verdict(
    outcomes: list[StepOutcome], services: RunServices, hooks: HookDispatcher
) -> tuple[ExitCode, str, str | None]:
    if hooks.aborted is not None:
        return ExitCode.HOOK_ABORTED, "aborted", f"hook {hooks.aborted.hook} aborted the build: {hooks.aborted.reason}"
    if services.cancelled.is_set():
        return ExitCode.CANCELLED, "cancelled", "cancelled by the user"
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
