"""Realistic sample inputs for every capability, the calls that send them, and the
verdict on each answer. Used by the check child (:mod:`hm.check.checks`).

A :class:`Sandbox` is what a plugin sees during a real run, made small: a temporary
project with a ``.hm/`` directory (so ``fs_read_config`` and the workspace archive
work), :class:`~hm.run.services.RunServices` for steps and hooks,
:class:`~hm.runtime.host_services.HostServices` for subcommands, an empty workspace
per step and a private plugin-scope KV store (the user's is never touched).

Calls go through the plugin's transport (a worker, see :mod:`hm.check.checks`),
so the suite sees the raw ``(status, bytes)`` answer, each call bounded by the
check's deadline; :func:`judge` then gives the verdict with the runtime's own
translator (:func:`~hm.runtime.plugin.translate`).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from hm.errors import PluginCallError
from hm.run.archive import WorkspaceArchive
from hm.run.events import EventBus, now_ts
from hm.run.services import RunServices
from hm.runtime import HostServices, Op, Plugin, PluginKvStore, translate
from hm_plugin_sdk.abi import Status
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
    PluginError,
    PluginEventEmitted,
    PluginManifest,
    StepFinished,
    StepLog,
    StepQueued,
    StepResult,
    StepSpec,
    StepStarted,
    SubcommandCapability,
    SubcommandInput,
)

if TYPE_CHECKING:
    from hm.check.checks import Target

__all__ = ["Answer", "Call", "Sandbox", "judge", "sample_args", "status_name"]

_encode = msgspec.msgpack.Encoder().encode
_error_decoder = msgspec.msgpack.Decoder(PluginError)
#: The key of the sample step; numbered copies (``check-2``…) when several run at once.
STEP_KEY = "check"
#: A plugin error ``code`` the SDKs use for a panic caught at the boundary.
PANIC_CODE = "panic"
_SAMPLE_VALUES: dict[str, str | int | bool] = {"string": "sample", "int": 1, "bool": True}


def status_name(status: int) -> str:
    """``HM_ERR_FAILED``, ``HM_OK``… or the number when the code is unknown."""
    try:
        return f"HM_{Status(status).name}"
    except ValueError:
        return f"unknown status {status}"


@dataclass(frozen=True, slots=True)
class Answer:
    """The verdict on one capability call.

    ``kind`` is ``ok`` (the success message decoded), ``error`` (HM_ERR_FAILED with
    a well-formed PluginError: a failure the plugin reports properly) or ``bad``
    (anything else: a malformed message, another status, an error report that does
    not decode). ``text`` says what came back, for details and failure messages.
    """

    kind: Literal["ok", "error", "bad"]
    value: Any
    text: str

    @property
    def panicked(self) -> bool:
        return self.kind == "error" and self.value.code == PANIC_CODE

    def comparable(self) -> Any:
        """A plain value to compare answers of repeated calls."""
        return (self.kind, msgspec.to_builtins(self.value) if self.kind != "bad" else self.text)


def judge(status: int, data: bytes, out_type: type, *, plugin: Plugin, op: str) -> Answer:
    """Classify ``(status, data)`` returned for a call whose success message is ``out_type``."""
    if status == Status.ERR_FAILED and data:
        try:
            err = _error_decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        else:
            return Answer("error", err, f"HM_ERR_FAILED with PluginError [{err.code}] {err.message!r}")
    try:
        value: Any = translate(status, data, out_type, plugin=plugin.name, path=plugin.path, op=op)
    except PluginCallError as exc:
        return Answer("bad", None, f"{status_name(status)}: {exc.what}")
    return Answer("ok", value, f"{out_type.__name__} {msgspec.json.encode(value).decode()}")


@dataclass(frozen=True, slots=True)
class Call:
    """One capability call the suite makes: a label for messages, and how to make it."""

    label: str
    op: Op
    message: Any
    out_type: type
    step_key: str | None = None


def sample_args(cap: SubcommandCapability) -> dict[str, str | int | bool | None]:
    """Arguments as hm's parser would pass them: defaults, else a sample value for a
    required argument, else what click gives an absent one (False for a flag, None)."""
    args: dict[str, str | int | bool | None] = {}
    for arg in cap.args:
        args[arg.name] = _sample_value(arg)
    return args


def _sample_value(arg: ArgSpec) -> str | int | bool | None:
    if arg.default is not None:
        return arg.default
    if arg.kind == "flag":
        return False
    if arg.required:
        return _SAMPLE_VALUES[arg.type]
    return None


def command_line(cap: SubcommandCapability, args: dict[str, str | int | bool | None]) -> str:
    """``hm db migrate NAME --times 1`` as a user would type the sample call."""
    words = ["hm", *cap.verb]
    for arg in cap.args:
        value = args.get(arg.name)
        if arg.kind == "positional" and value is not None:
            words.append(str(value))
        elif arg.kind == "option" and value is not None:
            words += [f"--{arg.name}", str(value)]
        elif arg.kind == "flag" and value:
            words.append(f"--{arg.name}")
    return " ".join(words)


def _sample_event(kind: str, run_id: str, root: Path) -> BuildEvent:
    common: dict[str, Any] = {"run_id": run_id, "ts": now_ts()}
    step = {**common, "step_key": STEP_KEY}
    events: dict[str, BuildEvent] = {
        "build_started": BuildStarted(**common, pipeline=".hm/pipeline.py", steps=1, project_root=str(root)),
        "step_queued": StepQueued(**step),
        "step_started": StepStarted(**step, runner="sample", plugin="sample"),
        "step_log": StepLog(**step, stream="stdout", line="hello from hm plugin check"),
        "step_finished": StepFinished(**step, status="succeeded", exit_code=0, duration_ms=12),
        "chain_failed": ChainFailed(**step, chain=STEP_KEY, reason=f"step {STEP_KEY} failed"),
        "build_finished": BuildFinished(**common, status="succeeded", exit_code=0, duration_ms=34),
        "plugin_event": PluginEventEmitted(**step, plugin="sample", name="sample", data={"answer": 42}),
    }
    return events[kind]


def subscribed_kinds(cap: LifecycleHookCapability) -> tuple[list[str], list[str]]:
    """``(kinds hm sends this hook, kinds it names that hm does not know)``.

    An empty ``events`` list means every kind but ``step_log`` (protocol.py)."""
    if not cap.events:
        return [k for k in BUILD_EVENT_KINDS if k != "step_log"], []
    return [k for k in BUILD_EVENT_KINDS if k in cap.events], [k for k in cap.events if k not in BUILD_EVENT_KINDS]


class Sandbox:
    """A tiny project, services and workspaces for sample calls; a context manager
    that removes everything it made."""

    def __init__(self, plugin: Plugin | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="hm-check-")
        base = Path(self._tmp.name)
        self.root = base / "project"
        (self.root / ".hm").mkdir(parents=True)
        (self.root / ".hm" / "config.toml").write_text("# read by `hm plugin check` through fs_read_config\n")
        (self.root / "README.md").write_text("A sample project made by `hm plugin check`.\n")
        (base / "scratch").mkdir()
        self._workspaces = base / "workspaces"
        self._workspaces.mkdir()
        self.run_id = "check-run"
        self.kv = PluginKvStore(base / "kv.sqlite3")
        self.bus = EventBus()
        self.archive = WorkspaceArchive(self.root, base / "scratch")
        self.run_services = RunServices(
            run_id=self.run_id, bus=self.bus, project_root=self.root, archive=self.archive, kv=self.kv
        )
        self.cli_services = HostServices(project_root=self.root, kv=self.kv)
        self.plugin = plugin
        #: Bounds every call (set by Target.open).
        self.target: Target | None = None
        self._numbers = count(1)
        self._log_lines: dict[str, int] = {}
        self._log_lock = threading.Lock()
        self.bus.sinks.append(self._count_log)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.archive.close()
        self._tmp.cleanup()

    def _count_log(self, event: BuildEvent) -> None:
        if isinstance(event, StepLog):
            with self._log_lock:
                self._log_lines[event.step_key] = self._log_lines.get(event.step_key, 0) + 1

    def log_lines(self, step_key: str) -> int:
        with self._log_lock:
            return self._log_lines.get(step_key, 0)

    # -- the calls ------------------------------------------------------------------
    def executor_call(self, runner: str, *, unique: bool = False) -> Call:
        """A step with ``cmd`` ``true`` in a fresh, empty workspace; ``base_workspace``
        None (start from the archive). ``unique`` numbers the step key, for calls that
        run at the same time."""
        n = next(self._numbers)
        key = f"{STEP_KEY}-{n}" if unique else STEP_KEY
        workspace = self._workspaces / f"ws-{n}"
        workspace.mkdir()
        inp = ExecutorInput(
            run_id=self.run_id,
            step=StepSpec(key=key, cmd="true", label="plugin check sample step", runner=runner),
            env={"HM_CHECK": "1", "PATH": os.environ.get("PATH", "")},
            workspace=str(workspace),
            base_workspace=None,
            project_root=str(self.root),
        )
        return Call(f"runner {runner}", Op.EXECUTE_STEP, inp, StepResult, key)

    def hook_calls(self, cap: LifecycleHookCapability) -> list[Call]:
        kinds, _unknown = subscribed_kinds(cap)
        calls = []
        for kind in kinds:
            event = _sample_event(kind, self.run_id, self.root)
            calls.append(
                Call(
                    f"{cap.phase} hook, {kind}",
                    Op.ON_HOOK_EVENT,
                    HookEvent(phase=cap.phase, event=event),
                    HookOutcome,
                    getattr(event, "step_key", None),
                )
            )
        return calls

    def subcommand_call(self, cap: SubcommandCapability) -> Call:
        args = sample_args(cap)
        inp = SubcommandInput(verb_path=list(cap.verb), args=args, env=dict(os.environ))
        return Call(f"`{command_line(cap, args)}`", Op.RUN_SUBCOMMAND, inp, ExitInfo)

    def calls_for(self, manifest: PluginManifest, *, subcommands: bool, unique: bool = False) -> list[Call]:
        """One sample call per runner, per subscribed hook event and (if asked) per verb."""
        calls: list[Call] = []
        for cap in manifest.capabilities:
            if isinstance(cap, LifecycleHookCapability):
                calls += self.hook_calls(cap)
            elif isinstance(cap, SubcommandCapability):
                if subcommands:
                    calls.append(self.subcommand_call(cap))
            else:
                calls += [self.executor_call(r, unique=unique) for r in cap.runners]
        return calls

    def fresh(self, call: Call, *, unique: bool = False) -> Call:
        """The same call again; an executor call gets a new workspace (and step key)."""
        if call.op is Op.EXECUTE_STEP:
            return self.executor_call(call.message.step.runner, unique=unique)
        return call

    def make(self, call: Call) -> tuple[Answer, float]:
        """Make ``call`` through the plugin's transport: ``(verdict, seconds)``."""
        plugin = self.plugin
        assert plugin is not None, "Sandbox.make needs a plugin"
        op_name = {Op.EXECUTE_STEP: "execute_step", Op.ON_HOOK_EVENT: "on_hook_event"}.get(call.op, "run_subcommand")
        if call.op is Op.RUN_SUBCOMMAND:
            services: HostServices = self.cli_services
        else:
            services = self.run_services
        if call.op is Op.EXECUTE_STEP and call.step_key is not None:
            self.run_services.start_step(call.step_key, None)
        ctx = plugin.context(op_name, services, call.step_key)
        timeout = self.target.remaining() if self.target is not None else None
        started = time.monotonic()
        status, data = plugin.transport.call(int(call.op), _encode(call.message), ctx, timeout=timeout)
        took = time.monotonic() - started
        if call.op is Op.EXECUTE_STEP and call.step_key is not None:
            self.run_services.finish_step(call.step_key)
        return judge(status, data, call.out_type, plugin=plugin, op=op_name), took

    def manifest_answer(self) -> Answer:
        """Call ``manifest`` again; ``ok`` carries the decoded PluginManifest."""
        plugin = self.plugin
        assert plugin is not None, "Sandbox.manifest_answer needs a plugin"
        ctx = plugin.context("manifest", self.cli_services)
        timeout = self.target.remaining() if self.target is not None else None
        status, data = plugin.transport.manifest(ctx, timeout=timeout)
        if status != Status.OK:
            return Answer("bad", None, f"{status_name(status)} from manifest")
        try:
            value = msgspec.msgpack.decode(data, type=PluginManifest)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return Answer("bad", None, f"a manifest that does not decode: {exc}")
        return Answer("ok", value, "PluginManifest")
