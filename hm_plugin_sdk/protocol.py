"""The msgpack messages that cross the plugin boundary, defined once.

Every payload a plugin receives or returns is one of these structs encoded as
msgpack: a map with snake_case string keys; tagged unions carry a ``"kind"``
field. Decoders ignore unknown fields so that a minor release can add optional
fields; nothing is renamed or repurposed within a major version.

docs/plugin-authors.md documents each field for C and Rust authors.

Who sends what::

    vtable.manifest        -> PluginManifest
    vtable.execute_step    ExecutorInput   -> StepResult
    vtable.on_hook_event   HookEvent       -> HookOutcome
    vtable.run_subcommand  SubcommandInput -> ExitInfo
    vtable.session_open    SessionSpec     -> ExitInfo      (since ABI 1.1)
    any failing call       -> PluginError   (status HM_ERR_FAILED)
    host.emit_event        PluginEvent
"""

from __future__ import annotations

from typing import Any, Literal, Union

import msgspec

__all__ = [
    "BUILD_EVENT_KINDS",
    "ArgSpec",
    "Artifact",
    "BuildEvent",
    "BuildFinished",
    "BuildStarted",
    "Capability",
    "ChainFailed",
    "ExecutorInput",
    "ExitInfo",
    "HookEvent",
    "HookOutcome",
    "LifecycleHookCapability",
    "PluginError",
    "PluginEvent",
    "PluginEventEmitted",
    "PluginManifest",
    "RunnerArgSpec",
    "SessionSpec",
    "StepExecutorCapability",
    "StepFinished",
    "StepLog",
    "StepQueued",
    "StepResult",
    "StepSpec",
    "StepStarted",
    "SubcommandCapability",
    "SubcommandInput",
    "event_kind",
]


class _Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every message: keyword-only, defaults left out of the encoding."""


# --------------------------------------------------------------------------
# Manifest


class RunnerArgSpec(_Message, kw_only=True):
    """One key of ``runner_args`` a runner accepts; hm checks a pipeline against it before a run starts."""

    name: str
    #: The value types accepted: ``"string"``, ``"int"``, ``"number"`` (int or float), ``"bool"``.
    types: list[Literal["string", "int", "number", "bool"]]
    #: For a string: the only values allowed (empty: any).
    choices: list[str] = []
    #: For a string: a regular expression (Python ``re`` syntax) the whole value must match.
    pattern: Union[str, None] = None
    #: One line for messages and ``hm plugin info``.
    help: str = ""


class StepExecutorCapability(_Message, kw_only=True, tag="step_executor", tag_field="kind"):
    """Runs pipeline steps whose ``runner`` is one of ``runners``."""

    runners: list[str]
    #: Run steps that name no runner. At most one plugin may claim it.
    default: bool = False
    #: Can run a step in a container image (the step's ``image`` or the pipeline's
    #: ``default_image``). hm refuses a step with an image on a runner without it.
    images: bool = False
    #: The ``runner_args`` keys this runner takes. hm refuses other keys and wrong
    #: types before a run starts; ``None`` (the default) leaves checking to the runner.
    runner_args: Union[list[RunnerArgSpec], None] = None
    #: The runner resolves a step's image to the id of the image it runs
    #: (``StepResult.image_id``), and answers an ``ExecutorInput`` with
    #: ``resolve_only`` without running anything. hm's step cache keys a step with
    #: an image on that id; on a runner without it such a step runs uncached.
    #: Added in hm 0.1 (ABI 1.0, optional).
    resolves_images: bool = False
    #: The runner opens interactive sessions into a step's environment: its vtable
    #: has the ``session_*`` entries (``hm shell``, ``hm run --debug``).
    #: Since ABI 1.1 (optional).
    sessions: bool = False


class LifecycleHookCapability(_Message, kw_only=True, tag="lifecycle_hook", tag_field="kind"):
    """Receives build events. ``before`` hooks may abort the build; ``after`` hooks observe."""

    phase: Literal["before", "after"]
    #: Build event kinds to receive (see BUILD_EVENT_KINDS); empty means all but ``step_log``.
    events: list[str] = []
    #: How long one call may take before the host gives up on it.
    timeout_ms: int = 5000


class ArgSpec(_Message, kw_only=True):
    """One argument of a subcommand; hm parses and validates it before calling the plugin."""

    name: str
    kind: Literal["positional", "option", "flag"] = "positional"
    type: Literal["string", "int", "bool"] = "string"
    required: bool = False
    default: Union[str, int, bool, None] = None
    help: str = ""


class SubcommandCapability(_Message, kw_only=True, tag="subcommand", tag_field="kind"):
    """Adds ``hm <verb...>`` to the command line."""

    #: The verb path, e.g. ``["db", "migrate"]`` for ``hm db migrate``.
    verb: list[str]
    summary: str = ""
    args: list[ArgSpec] = []


Capability = Union[StepExecutorCapability, LifecycleHookCapability, SubcommandCapability]


class PluginManifest(_Message, kw_only=True):
    """What a plugin is and offers; returned by ``vtable.manifest``."""

    name: str
    #: A semantic version, e.g. ``"1.2.0"``.
    version: str
    capabilities: list[Capability]
    description: str = ""
    #: A semver range this plugin needs, e.g. ``">=0.1.0,<1.0.0"``.
    requires_hm: Union[str, None] = None


# --------------------------------------------------------------------------
# Errors and plugin events


class PluginError(_Message, kw_only=True):
    """A failed call's output (status ``HM_ERR_FAILED``)."""

    #: Stable snake_case identifier, e.g. ``"image_not_found"``.
    code: str
    message: str
    title: Union[str, None] = None
    suggestion: Union[str, None] = None
    retryable: bool = False
    retry_commands: list[str] = []
    doc_url: Union[str, None] = None


class PluginEvent(_Message, kw_only=True):
    """A custom event a plugin publishes with ``host.emit_event``."""

    name: str
    data: dict[str, Any] = {}


# --------------------------------------------------------------------------
# Step execution


class StepSpec(_Message, kw_only=True):
    """The pipeline step to run, as written in the pipeline."""

    key: str
    cmd: str
    label: Union[str, None] = None
    image: Union[str, None] = None
    runner: Union[str, None] = None
    runner_args: dict[str, Any] = {}
    timeout_seconds: Union[float, None] = None


class ExecutorInput(_Message, kw_only=True):
    """Input of ``execute_step``."""

    run_id: str
    step: StepSpec
    #: The step's environment: pipeline env overlaid with step env.
    env: dict[str, str] = {}
    #: Absolute path of an empty directory that is this step's workspace.
    workspace: str
    #: Absolute path of the workspace this step starts from (the step it builds in);
    #: ``None`` means start from the run's workspace archive (``host.archive_read``).
    base_workspace: Union[str, None] = None
    project_root: str = ""
    #: Run nothing: only resolve the step's image and answer with a ``StepResult``
    #: whose ``image_id`` is set (exit code 0), or fail as the step would (e.g.
    #: ``image_not_found``). The workspace is left alone. hm sends it only to
    #: runners whose capability says ``resolves_images``. Added in hm 0.1 (ABI 1.0, optional).
    resolve_only: bool = False


class StepResult(_Message, kw_only=True):
    """Output of ``execute_step``."""

    exit_code: int
    status: Literal["succeeded", "failed", "timed_out", "cancelled"] = "succeeded"
    message: Union[str, None] = None
    #: The id of the image the step ran in (or, for ``resolve_only``, would run
    #: in), as the engine names it, e.g. ``"sha256:…"``; ``None`` for a step
    #: without an image. Added in hm 0.1 (ABI 1.0, optional).
    image_id: Union[str, None] = None
    #: What the runner kept of the step for a later session (``SessionSpec.target``),
    #: e.g. the id of the container it left standing; ``None``: the workspace is
    #: all there is. Since ABI 1.1 (optional).
    session_target: Union[str, None] = None


# --------------------------------------------------------------------------
# Interactive sessions (since ABI 1.1)


class SessionSpec(_Message, kw_only=True):
    """Input of ``session_open``: a terminal session into a step's environment.

    Since ABI 1.1. The session's output goes through ``host.session_output``;
    the success output is an :class:`ExitInfo` with the exit code of the
    session's process.
    """

    #: The run the step belongs to (``hm runs``).
    run_id: str
    #: The step as it ran.
    step: StepSpec
    #: Absolute path of the step's kept workspace: the session's working directory.
    workspace: str
    #: The step's environment, as it ran; the runner adds ``TERM``.
    env: dict[str, str] = {}
    #: The step's image, for a runner that runs steps in containers.
    image: Union[str, None] = None
    #: The command to run on the terminal; empty: an interactive shell.
    argv: list[str] = []
    #: The user's terminal size.
    rows: int = 24
    cols: int = 80
    #: ``StepResult.session_target`` of the step (e.g. its kept container).
    target: Union[str, None] = None
    project_root: str = ""


# --------------------------------------------------------------------------
# Build events (what hooks receive and ``--format json`` prints)


class _Event(msgspec.Struct, kw_only=True, tag_field="kind"):
    """Base of build events. Every field is always encoded so JSON readers see a fixed shape."""

    run_id: str
    #: RFC 3339 UTC timestamp with milliseconds.
    ts: str


class BuildStarted(_Event, kw_only=True, tag="build_started"):
    pipeline: str
    steps: int
    project_root: str = ""


class StepQueued(_Event, kw_only=True, tag="step_queued"):
    step_key: str


class StepStarted(_Event, kw_only=True, tag="step_started"):
    step_key: str
    runner: str
    plugin: str


class StepLog(_Event, kw_only=True, tag="step_log"):
    step_key: str
    stream: Literal["stdout", "stderr"]
    line: str
    #: The line was not printed now: it is the recorded log of a step restored
    #: from the step cache, replayed. Added in hm 0.1 (ABI 1.0, optional).
    replayed: bool = False


class Artifact(_Message, kw_only=True):
    """A file a step declared as an artifact, as kept in the run record."""

    #: Relative to the step's workspace, with ``/`` separators.
    path: str
    size: int
    sha256: str


class StepFinished(_Event, kw_only=True, tag="step_finished"):
    step_key: str
    status: Literal["succeeded", "failed", "timed_out", "cancelled", "skipped", "error"]
    exit_code: Union[int, None] = None
    duration_ms: int = 0
    message: Union[str, None] = None
    #: The step's artifacts kept in the run record (empty when it declared none).
    artifacts: list[Artifact] = []
    #: What the step cache did: ``"hit"`` (restored, not run), ``"miss"`` (looked
    #: up, not found or not usable, and not stored), ``"stored"`` (run, then
    #: stored); ``None`` for a step without a cache policy. Added in hm 0.1 (ABI 1.0, optional).
    cache: Union[Literal["hit", "miss", "stored"], None] = None


class ChainFailed(_Event, kw_only=True, tag="chain_failed"):
    chain: str
    step_key: str
    reason: str
    #: The failed step's exit code (124 for a timeout); ``None`` when it has none,
    #: e.g. its runner failed before the command ran. Added in hm 0.1 (ABI 1.0, optional).
    exit_code: Union[int, None] = None


class BuildFinished(_Event, kw_only=True, tag="build_finished"):
    status: Literal["succeeded", "failed", "cancelled", "aborted", "error"]
    exit_code: int
    duration_ms: int = 0
    message: Union[str, None] = None


class PluginEventEmitted(_Event, kw_only=True, tag="plugin_event"):
    plugin: str
    name: str
    data: dict[str, Any] = {}
    step_key: Union[str, None] = None


BuildEvent = Union[
    BuildStarted,
    StepQueued,
    StepStarted,
    StepLog,
    StepFinished,
    ChainFailed,
    BuildFinished,
    PluginEventEmitted,
]

BUILD_EVENT_KINDS: tuple[str, ...] = (
    "build_started",
    "step_queued",
    "step_started",
    "step_log",
    "step_finished",
    "chain_failed",
    "build_finished",
    "plugin_event",
)


class HookEvent(_Message, kw_only=True):
    """Input of ``on_hook_event``."""

    phase: Literal["before", "after"]
    event: BuildEvent


class HookOutcome(_Message, kw_only=True):
    """Output of ``on_hook_event``. ``abort`` is honoured only in the ``before`` phase."""

    kind: Literal["continue", "abort"] = "continue"
    reason: Union[str, None] = None


# --------------------------------------------------------------------------
# Subcommands


class SubcommandInput(_Message, kw_only=True):
    """Input of ``run_subcommand``: arguments already parsed and typed by hm."""

    verb_path: list[str]
    args: dict[str, Union[str, int, bool, None]] = {}
    env: dict[str, str] = {}


class ExitInfo(_Message, kw_only=True):
    """Output of ``run_subcommand``: hm prints ``message`` and exits with ``exit_code``."""

    exit_code: int = 0
    message: Union[str, None] = None


def event_kind(event: BuildEvent) -> str:
    """The ``kind`` tag of a build event (msgspec keeps tags out of the attributes)."""
    return event.__struct_config__.tag  # type: ignore[return-value]
