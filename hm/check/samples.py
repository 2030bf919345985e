"""Realistic sample calls for every declared capability, and the world they run in.

A check calls a plugin the way a run or a command line would: an executor gets an
``ExecutorInput`` for a ``true`` step in an empty workspace of its own, with a
run's services (step logs, cancellation, BUILD/STEP key-value scopes, a workspace
archive of a tiny project whose ``.hm/`` exists); a hook gets a ``HookEvent`` for
each build event kind it subscribes to; a subcommand gets a ``SubcommandInput``
with every argument filled from its default or a sample of its type, and the
services of a command line (no run: step logs, BUILD/STEP scopes and the archive
answer ``HM_ERR_UNAVAILABLE``). Everything lives in a scratch directory; the
plugin-scope key-value store is a scratch one too, so checking a plugin never
touches the user's stored values.
"""

from __future__ import annotations

import os
import shlex
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hm_plugin_sdk.protocol import (
    BUILD_EVENT_KINDS,
    ArgSpec,
    BuildEvent,
    BuildFinished,
    BuildStarted,
    ChainFailed,
    ExecutorInput,
    ExitInfo,
    HookEvent,
    HookOutcome,
    LifecycleHookCapability,
    PluginEventEmitted,
    PluginManifest,
    StepExecutorCapability,
    StepFinished,
    StepLog,
    StepQueued,
    StepResult,
    StepSpec,
    StepStarted,
    SubcommandCapability,
    SubcommandInput,
)

from hm.run.archive import WorkspaceArchive
from hm.run.events import EventBus, now_ts
from hm.run.services import RunServices
from hm.runtime.host_services import HostServices
from hm.runtime.kv_store import PluginKvStore
from hm.runtime.transport import Op

__all__ = ["SAMPLE_CMD", "Sample", "Scratch", "capability_label", "samples_for", "wanted_events"]

#: The command of the sample step: a shell runner runs it and exits 0.
SAMPLE_CMD = "true"


def capability_label(cap: object) -> str:
    """A capability as the report names its check: ``step_executor:noop``, ``subcommand:db migrate``."""
    if isinstance(cap, StepExecutorCapability):
        return f"step_executor:{','.join(cap.runners)}"
    if isinstance(cap, LifecycleHookCapability):
        return f"lifecycle_hook:{cap.phase}"
    if isinstance(cap, SubcommandCapability):
        return f"subcommand:{' '.join(cap.verb)}"
    return type(cap).__name__


def wanted_events(cap: LifecycleHookCapability) -> tuple[list[str], list[str]]:
    """The build event kinds a hook subscribes to, and the names it lists that hm never sends."""
    if not cap.events:
        return [k for k in BUILD_EVENT_KINDS if k != "step_log"], []
    return [k for k in cap.events if k in BUILD_EVENT_KINDS], [k for k in cap.events if k not in BUILD_EVENT_KINDS]


class Scratch:
    """A throwaway project, workspaces and key-value store, and the services over them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "project"
        (self.project / ".hm").mkdir(parents=True, exist_ok=True)
        (self.project / "README.txt").write_text("A scratch project made by `hm plugin check`.\n")
        self._workspaces = root / "workspaces"
        self._workspaces.mkdir(exist_ok=True)
        (root / "tmp").mkdir(exist_ok=True)
        kv = PluginKvStore(root / "state" / "kv.sqlite3")
        self.run_id = f"hm-check-{uuid.uuid4().hex[:12]}"
        bus = EventBus()
        bus.sinks.append(self._count)
        self.log_lines = 0
        self._lock = threading.Lock()
        #: A run's services: what execute_step and hooks get.
        self.run = RunServices(
            run_id=self.run_id,
            bus=bus,
            project_root=self.project,
            archive=WorkspaceArchive(self.project, root / "tmp"),
            kv=kv,
        )
        #: A command line's services: what run_subcommand gets.
        self.command = HostServices(project_root=self.project, kv=kv)

    def _count(self, event: BuildEvent) -> None:
        if isinstance(event, StepLog):
            with self._lock:
                self.log_lines += 1

    def workspace(self, name: str) -> Path:
        path = self._workspaces / name
        path.mkdir()
        return path


@dataclass(frozen=True, slots=True)
class Sample:
    """One kind of call: ``build(n)`` makes the ``n``-th input (fresh step key and
    workspace for an executor) and the step key the call is attributed to."""

    #: What is being called, for the report: ``runner noop``, ``before build_started``.
    label: str
    op: Op
    op_name: str
    out_type: type
    services: HostServices
    build: Callable[[int], tuple[Any, str | None]]
    #: The capability's limit on one call (hooks), in milliseconds.
    timeout_ms: int | None = None
    #: Called with the step key once the call returned (an executor's step is finished).
    done: Callable[[str], None] | None = None


def samples_for(cap: object, scratch: Scratch) -> list[Sample]:
    """Every sample call of one declared capability."""
    if isinstance(cap, StepExecutorCapability):
        return [_executor_sample(runner, scratch) for runner in cap.runners]
    if isinstance(cap, LifecycleHookCapability):
        kinds, _ = wanted_events(cap)
        return [_hook_sample(cap, kind, scratch) for kind in kinds]
    if isinstance(cap, SubcommandCapability):
        return [_subcommand_sample(cap, scratch)]
    return []


def all_samples(manifest: PluginManifest, scratch: Scratch) -> list[tuple[object, list[Sample]]]:
    """Every declared capability with its sample calls, in manifest order."""
    return [(cap, samples_for(cap, scratch)) for cap in manifest.capabilities]


# -- step executors -------------------------------------------------------------------


def _executor_sample(runner: str, scratch: Scratch) -> Sample:
    services = scratch.run

    def build(n: int) -> tuple[ExecutorInput, str]:
        key = f"check-{runner}-{n}"
        workspace = scratch.workspace(key)
        services.start_step(key, None)
        inp = ExecutorInput(
            run_id=scratch.run_id,
            step=StepSpec(key=key, cmd=SAMPLE_CMD, label="hm plugin check sample step", runner=runner),
            env={"HM_PLUGIN_CHECK": "1"},
            workspace=str(workspace),
            base_workspace=None,
            project_root=str(scratch.project),
        )
        return inp, key

    return Sample(
        label=f"runner {runner}",
        op=Op.EXECUTE_STEP,
        op_name="execute_step",
        out_type=StepResult,
        services=services,
        build=build,
        done=services.finish_step,
    )


# -- lifecycle hooks ----------------------------------------------------------------------


def _event(kind: str, run_id: str, step_key: str, project: Path) -> BuildEvent:
    ts = now_ts()
    events: dict[str, Callable[[], BuildEvent]] = {
        "build_started": lambda: BuildStarted(
            run_id=run_id, ts=ts, pipeline="hm-plugin-check", steps=1, project_root=str(project)
        ),
        "step_queued": lambda: StepQueued(run_id=run_id, ts=ts, step_key=step_key),
        "step_started": lambda: StepStarted(
            run_id=run_id, ts=ts, step_key=step_key, runner="check", plugin="hm-plugin-check"
        ),
        "step_log": lambda: StepLog(
            run_id=run_id, ts=ts, step_key=step_key, stream="stdout", line="a line of sample output"
        ),
        "step_finished": lambda: StepFinished(
            run_id=run_id, ts=ts, step_key=step_key, status="succeeded", exit_code=0, duration_ms=12
        ),
        "chain_failed": lambda: ChainFailed(
            run_id=run_id, ts=ts, chain=step_key, step_key=step_key, reason="a sample failure"
        ),
        "build_finished": lambda: BuildFinished(run_id=run_id, ts=ts, status="succeeded", exit_code=0, duration_ms=34),
        "plugin_event": lambda: PluginEventEmitted(
            run_id=run_id, ts=ts, plugin="hm-plugin-check", name="sample", data={"n": 1}, step_key=step_key
        ),
    }
    return events[kind]()


def _hook_sample(cap: LifecycleHookCapability, kind: str, scratch: Scratch) -> Sample:
    def build(n: int) -> tuple[HookEvent, str | None]:
        event = _event(kind, scratch.run_id, f"check-step-{n}", scratch.project)
        return HookEvent(phase=cap.phase, event=event), getattr(event, "step_key", None)

    return Sample(
        label=f"{cap.phase} {kind}",
        op=Op.ON_HOOK_EVENT,
        op_name="on_hook_event",
        out_type=HookOutcome,
        services=scratch.run,
        build=build,
        timeout_ms=cap.timeout_ms,
    )


# -- subcommands ------------------------------------------------------------------------------

_SAMPLE_VALUES: dict[str, str | int | bool] = {"string": "sample", "int": 1, "bool": False}


def sample_args(cap: SubcommandCapability) -> dict[str, str | int | bool | None]:
    """Each argument's default, or a sample value of its type (what hm would pass)."""
    args: dict[str, str | int | bool | None] = {}
    for arg in cap.args:
        if arg.kind == "flag":
            args[arg.name] = bool(arg.default)
        else:
            args[arg.name] = arg.default if arg.default is not None else _SAMPLE_VALUES[arg.type]
    return args


def command_line(cap: SubcommandCapability, args: dict[str, Any]) -> str:
    """``hm db migrate --to 3`` for the report: how a user would type the sample call."""
    words = ["hm", *cap.verb]
    by_name: dict[str, ArgSpec] = {a.name: a for a in cap.args}
    for name, value in args.items():
        spec = by_name[name]
        if spec.kind == "positional":
            words.append(str(value))
        elif spec.kind == "flag":
            words.append(f"--{name}" if value else f"--no-{name}")
        else:
            words += [f"--{name}", str(value)]
    return shlex.join(words)


def _subcommand_sample(cap: SubcommandCapability, scratch: Scratch) -> Sample:
    args = sample_args(cap)

    def build(n: int) -> tuple[SubcommandInput, None]:
        return SubcommandInput(verb_path=list(cap.verb), args=dict(args), env=dict(os.environ)), None

    return Sample(
        label=f"`{command_line(cap, args)}`",
        op=Op.RUN_SUBCOMMAND,
        op_name="run_subcommand",
        out_type=ExitInfo,
        services=scratch.command,
        build=build,
    )
