//! Lifecycle hooks: `HookEvent` (a phase and a `BuildEvent`) in, `HookOutcome` out.

use std::collections::BTreeMap;

use super::codec::{Encode, Fields, FromValue, MapBuilder, string_enum};
use super::manifest::Phase;
use crate::context::Stream;
use crate::msgpack::{DecodeError, Value, Writer};

/// Input of `on_hook_event`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HookEvent {
    /// The phase of the hook capability this call is for.
    pub phase: Phase,
    /// The build event.
    pub event: BuildEvent,
}

impl HookEvent {
    /// A hook event.
    pub fn new(phase: Phase, event: BuildEvent) -> Self {
        HookEvent { phase, event }
    }
}

impl FromValue for HookEvent {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(HookEvent { phase: f.required("phase")?, event: f.required("event")? })
    }
}

impl Encode for HookEvent {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new().field("phase", &self.phase).field("event", &self.event).finish(w);
    }
}

/// Output of `on_hook_event`. `Abort` is honoured only in the `before` phase.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HookOutcome {
    /// `kind: "continue"` (the default): let the build go on.
    #[default]
    Continue,
    /// `kind: "abort"`: stop the build; hm shows the reason.
    Abort {
        /// Why the build must stop.
        reason: Option<String>,
    },
}

impl HookOutcome {
    /// [`HookOutcome::Abort`] with a reason.
    pub fn abort(reason: impl Into<String>) -> Self {
        HookOutcome::Abort { reason: Some(reason.into()) }
    }
}

impl FromValue for HookOutcome {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        let kind: String = f.or("kind", "continue".to_owned())?;
        let reason: Option<String> = f.optional("reason")?;
        match kind.as_str() {
            "continue" => Ok(HookOutcome::Continue),
            "abort" => Ok(HookOutcome::Abort { reason }),
            other => Err(DecodeError::schema(format!(
                "expected one of [\"continue\", \"abort\"], found {other:?}"
            ))
            .within("kind")),
        }
    }
}

impl Encode for HookOutcome {
    fn encode(&self, w: &mut Writer) {
        let mut m = MapBuilder::new();
        if let HookOutcome::Abort { reason } = self {
            m.field("kind", "abort").field_some("reason", reason);
        }
        m.finish(w);
    }
}

string_enum! {
    /// How a step ended, as `step_finished` reports it.
    #[non_exhaustive]
    pub enum StepFinishedStatus {
        /// `"succeeded"`.
        Succeeded = "succeeded",
        /// `"failed"`.
        Failed = "failed",
        /// `"timed_out"`.
        TimedOut = "timed_out",
        /// `"cancelled"`.
        Cancelled = "cancelled",
        /// `"skipped"`: an earlier step failed.
        Skipped = "skipped",
        /// `"error"`: hm or the plugin could not run it.
        Error = "error",
    }
    other:
        /// A status this version of the crate does not know (sent by a newer hm).
        Other
}

string_enum! {
    /// What the step cache did for a step, as `step_finished` reports it.
    #[non_exhaustive]
    pub enum CacheOutcome {
        /// `"hit"`: restored from the cache; the step did not run.
        Hit = "hit",
        /// `"miss"`: looked up, not found (or not usable), and not stored.
        Miss = "miss",
        /// `"stored"`: run, then stored in the cache.
        Stored = "stored",
    }
    other:
        /// An outcome this version of the crate does not know (sent by a newer hm).
        Other
}

string_enum! {
    /// How a build ended, as `build_finished` reports it.
    #[non_exhaustive]
    pub enum BuildStatus {
        /// `"succeeded"`.
        Succeeded = "succeeded",
        /// `"failed"`.
        Failed = "failed",
        /// `"cancelled"`.
        Cancelled = "cancelled",
        /// `"aborted"`: a `before` hook aborted it.
        Aborted = "aborted",
        /// `"error"`.
        Error = "error",
    }
    other:
        /// A status this version of the crate does not know (sent by a newer hm).
        Other
}

impl FromValue for Stream {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let s = String::from_value(v)?;
        match s.as_str() {
            "stdout" => Ok(Stream::Stdout),
            "stderr" => Ok(Stream::Stderr),
            _ => Err(DecodeError::schema(format!("expected \"stdout\" or \"stderr\", found {s:?}"))),
        }
    }
}

impl Encode for Stream {
    fn encode(&self, w: &mut Writer) {
        w.write_str(self.as_str());
    }
}

/// A build event: what hooks receive and `--format json` prints, tagged by `"kind"`.
///
/// Each known kind wraps a struct of the same name as in `protocol.py`. A kind
/// this crate does not know (added by a newer hm) decodes to
/// [`BuildEvent::Other`] instead of failing, so a hook keeps working.
///
/// ```
/// use hm_plugin_sdk::{BuildEvent, Message};
///
/// let e = BuildEvent::from_msgpack(b"\x83\xa4kind\xa3new\xa6run_id\xa1r\xa2ts\xa1t").unwrap();
/// assert_eq!(e.kind(), "new");
/// assert_eq!(e.run_id(), "r");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BuildEvent {
    /// `build_started`.
    BuildStarted(BuildStarted),
    /// `step_queued`.
    StepQueued(StepQueued),
    /// `step_started`.
    StepStarted(StepStarted),
    /// `step_log` (hooks get it only when they list it in `events`).
    StepLog(StepLog),
    /// `step_finished`.
    StepFinished(StepFinished),
    /// `chain_failed`.
    ChainFailed(ChainFailed),
    /// `build_finished`.
    BuildFinished(BuildFinished),
    /// `plugin_event`: a plugin called `emit_event`.
    PluginEvent(PluginEventEmitted),
    /// A kind this crate does not know.
    Other {
        /// The `kind` tag.
        kind: String,
        /// Every other field as sent (including `run_id` and `ts`).
        fields: BTreeMap<String, Value>,
    },
}

impl BuildEvent {
    /// The `kind` tag, e.g. `"build_started"`.
    pub fn kind(&self) -> &str {
        match self {
            BuildEvent::BuildStarted(_) => "build_started",
            BuildEvent::StepQueued(_) => "step_queued",
            BuildEvent::StepStarted(_) => "step_started",
            BuildEvent::StepLog(_) => "step_log",
            BuildEvent::StepFinished(_) => "step_finished",
            BuildEvent::ChainFailed(_) => "chain_failed",
            BuildEvent::BuildFinished(_) => "build_finished",
            BuildEvent::PluginEvent(_) => "plugin_event",
            BuildEvent::Other { kind, .. } => kind,
        }
    }

    /// The run the event belongs to (`""` if an unknown kind lacks it).
    pub fn run_id(&self) -> &str {
        self.common().0
    }

    /// The event's RFC 3339 UTC timestamp (`""` if an unknown kind lacks it).
    pub fn ts(&self) -> &str {
        self.common().1
    }

    /// The step the event is about, for kinds that have one.
    pub fn step_key(&self) -> Option<&str> {
        match self {
            BuildEvent::StepQueued(e) => Some(&e.step_key),
            BuildEvent::StepStarted(e) => Some(&e.step_key),
            BuildEvent::StepLog(e) => Some(&e.step_key),
            BuildEvent::StepFinished(e) => Some(&e.step_key),
            BuildEvent::ChainFailed(e) => Some(&e.step_key),
            BuildEvent::PluginEvent(e) => e.step_key.as_deref(),
            BuildEvent::Other { fields, .. } => fields.get("step_key").and_then(Value::as_str),
            BuildEvent::BuildStarted(_) | BuildEvent::BuildFinished(_) => None,
        }
    }

    fn common(&self) -> (&str, &str) {
        match self {
            BuildEvent::BuildStarted(e) => (&e.run_id, &e.ts),
            BuildEvent::StepQueued(e) => (&e.run_id, &e.ts),
            BuildEvent::StepStarted(e) => (&e.run_id, &e.ts),
            BuildEvent::StepLog(e) => (&e.run_id, &e.ts),
            BuildEvent::StepFinished(e) => (&e.run_id, &e.ts),
            BuildEvent::ChainFailed(e) => (&e.run_id, &e.ts),
            BuildEvent::BuildFinished(e) => (&e.run_id, &e.ts),
            BuildEvent::PluginEvent(e) => (&e.run_id, &e.ts),
            BuildEvent::Other { fields, .. } => (
                fields.get("run_id").and_then(Value::as_str).unwrap_or(""),
                fields.get("ts").and_then(Value::as_str).unwrap_or(""),
            ),
        }
    }
}

impl FromValue for BuildEvent {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        let kind: String = f.required("kind")?;
        let known = |f: &mut Fields| -> Result<(String, String), DecodeError> {
            Ok((f.required("run_id")?, f.required("ts")?))
        };
        let e = match kind.as_str() {
            "build_started" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::BuildStarted(BuildStarted {
                    run_id,
                    ts,
                    pipeline: f.required("pipeline")?,
                    steps: f.required("steps")?,
                    project_root: f.or_default("project_root")?,
                })
            }
            "step_queued" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::StepQueued(StepQueued { run_id, ts, step_key: f.required("step_key")? })
            }
            "step_started" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::StepStarted(StepStarted {
                    run_id,
                    ts,
                    step_key: f.required("step_key")?,
                    runner: f.required("runner")?,
                    plugin: f.required("plugin")?,
                })
            }
            "step_log" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::StepLog(StepLog {
                    run_id,
                    ts,
                    step_key: f.required("step_key")?,
                    stream: f.required("stream")?,
                    line: f.required("line")?,
                    replayed: f.or("replayed", false)?,
                })
            }
            "step_finished" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::StepFinished(StepFinished {
                    run_id,
                    ts,
                    step_key: f.required("step_key")?,
                    status: f.required("status")?,
                    exit_code: f.optional("exit_code")?,
                    duration_ms: f.or("duration_ms", 0)?,
                    message: f.optional("message")?,
                    cache: f.optional("cache")?,
                })
            }
            "chain_failed" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::ChainFailed(ChainFailed {
                    run_id,
                    ts,
                    chain: f.required("chain")?,
                    step_key: f.required("step_key")?,
                    reason: f.required("reason")?,
                    exit_code: f.optional("exit_code")?,
                })
            }
            "build_finished" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::BuildFinished(BuildFinished {
                    run_id,
                    ts,
                    status: f.required("status")?,
                    exit_code: f.required("exit_code")?,
                    duration_ms: f.or("duration_ms", 0)?,
                    message: f.optional("message")?,
                })
            }
            "plugin_event" => {
                let (run_id, ts) = known(&mut f)?;
                BuildEvent::PluginEvent(PluginEventEmitted {
                    run_id,
                    ts,
                    plugin: f.required("plugin")?,
                    name: f.required("name")?,
                    data: f.or_default("data")?,
                    step_key: f.optional("step_key")?,
                })
            }
            _ => return Ok(BuildEvent::Other { kind, fields: f.into_rest() }),
        };
        Ok(e)
    }
}

impl Encode for BuildEvent {
    /// Every field is written, `None` as nil: build events have a fixed shape.
    fn encode(&self, w: &mut Writer) {
        let mut m = MapBuilder::new();
        m.field("kind", self.kind());
        match self {
            BuildEvent::Other { fields, .. } => {
                for (k, v) in fields {
                    m.field(k, v);
                }
            }
            _ => {
                let (run_id, ts) = self.common();
                m.field("run_id", run_id).field("ts", ts);
            }
        }
        match self {
            BuildEvent::BuildStarted(e) => {
                m.field("pipeline", &e.pipeline).field("steps", &e.steps).field("project_root", &e.project_root);
            }
            BuildEvent::StepQueued(e) => {
                m.field("step_key", &e.step_key);
            }
            BuildEvent::StepStarted(e) => {
                m.field("step_key", &e.step_key).field("runner", &e.runner).field("plugin", &e.plugin);
            }
            BuildEvent::StepLog(e) => {
                m.field("step_key", &e.step_key)
                    .field("stream", &e.stream)
                    .field("line", &e.line)
                    .field("replayed", &e.replayed);
            }
            BuildEvent::StepFinished(e) => {
                m.field("step_key", &e.step_key)
                    .field("status", &e.status)
                    .field("exit_code", &e.exit_code)
                    .field("duration_ms", &e.duration_ms)
                    .field("message", &e.message)
                    .field("cache", &e.cache);
            }
            BuildEvent::ChainFailed(e) => {
                m.field("chain", &e.chain)
                    .field("step_key", &e.step_key)
                    .field("reason", &e.reason)
                    .field("exit_code", &e.exit_code);
            }
            BuildEvent::BuildFinished(e) => {
                m.field("status", &e.status)
                    .field("exit_code", &e.exit_code)
                    .field("duration_ms", &e.duration_ms)
                    .field("message", &e.message);
            }
            BuildEvent::PluginEvent(e) => {
                m.field("plugin", &e.plugin)
                    .field("name", &e.name)
                    .field("data", &e.data)
                    .field("step_key", &e.step_key);
            }
            BuildEvent::Other { .. } => {}
        }
        m.finish(w);
    }
}

/// `build_started`: the run begins.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildStarted {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The pipeline's slug.
    pub pipeline: String,
    /// How many steps it has.
    pub steps: u64,
    /// The project's root directory. Default `""`.
    pub project_root: String,
}

impl BuildStarted {
    /// The event with the required fields.
    pub fn new(run_id: impl Into<String>, ts: impl Into<String>, pipeline: impl Into<String>, steps: u64) -> Self {
        BuildStarted { run_id: run_id.into(), ts: ts.into(), pipeline: pipeline.into(), steps, project_root: String::new() }
    }
}

/// `step_queued`: a step waits for a free slot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepQueued {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The step.
    pub step_key: String,
}

impl StepQueued {
    /// The event.
    pub fn new(run_id: impl Into<String>, ts: impl Into<String>, step_key: impl Into<String>) -> Self {
        StepQueued { run_id: run_id.into(), ts: ts.into(), step_key: step_key.into() }
    }
}

/// `step_started`: a step was handed to its executor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepStarted {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The step.
    pub step_key: String,
    /// The runner name.
    pub runner: String,
    /// The executing plugin's name.
    pub plugin: String,
}

impl StepStarted {
    /// The event.
    pub fn new(
        run_id: impl Into<String>,
        ts: impl Into<String>,
        step_key: impl Into<String>,
        runner: impl Into<String>,
        plugin: impl Into<String>,
    ) -> Self {
        StepStarted {
            run_id: run_id.into(),
            ts: ts.into(),
            step_key: step_key.into(),
            runner: runner.into(),
            plugin: plugin.into(),
        }
    }
}

/// `step_log`: one line of a step's output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepLog {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The step.
    pub step_key: String,
    /// Which stream.
    pub stream: Stream,
    /// The line, without its newline.
    pub line: String,
    /// The line is the recorded log of a step restored from the step cache,
    /// replayed, not printed now. Default `false` (and from hosts before it was added).
    pub replayed: bool,
}

impl StepLog {
    /// The event.
    pub fn new(
        run_id: impl Into<String>,
        ts: impl Into<String>,
        step_key: impl Into<String>,
        stream: Stream,
        line: impl Into<String>,
    ) -> Self {
        StepLog {
            run_id: run_id.into(),
            ts: ts.into(),
            step_key: step_key.into(),
            stream,
            line: line.into(),
            replayed: false,
        }
    }
}

/// `step_finished`: a step ended (or was skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepFinished {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The step.
    pub step_key: String,
    /// How it ended.
    pub status: StepFinishedStatus,
    /// Its exit code, when it ran.
    pub exit_code: Option<i64>,
    /// How long it ran. Default 0.
    pub duration_ms: u64,
    /// A line about the result.
    pub message: Option<String>,
    /// What the step cache did; `None` for a step without a cache policy (and from
    /// hosts before it was added).
    pub cache: Option<CacheOutcome>,
}

impl StepFinished {
    /// The event with the required fields.
    pub fn new(
        run_id: impl Into<String>,
        ts: impl Into<String>,
        step_key: impl Into<String>,
        status: StepFinishedStatus,
    ) -> Self {
        StepFinished {
            run_id: run_id.into(),
            ts: ts.into(),
            step_key: step_key.into(),
            status,
            exit_code: None,
            duration_ms: 0,
            message: None,
            cache: None,
        }
    }
}

/// `chain_failed`: a chain of steps stopped at a failed step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainFailed {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The chain's name.
    pub chain: String,
    /// The step that failed.
    pub step_key: String,
    /// Why.
    pub reason: String,
    /// The failed step's exit code (124 for a timeout); `None` when it has none, e.g.
    /// its runner failed before the command ran, or the host predates the field.
    pub exit_code: Option<i64>,
}

impl ChainFailed {
    /// The event.
    pub fn new(
        run_id: impl Into<String>,
        ts: impl Into<String>,
        chain: impl Into<String>,
        step_key: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ChainFailed {
            run_id: run_id.into(),
            ts: ts.into(),
            chain: chain.into(),
            step_key: step_key.into(),
            reason: reason.into(),
            exit_code: None,
        }
    }
}

/// `build_finished`: the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildFinished {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// How it ended.
    pub status: BuildStatus,
    /// hm's exit code for the run.
    pub exit_code: i64,
    /// How long it ran. Default 0.
    pub duration_ms: u64,
    /// A line about the result.
    pub message: Option<String>,
}

impl BuildFinished {
    /// The event with the required fields.
    pub fn new(run_id: impl Into<String>, ts: impl Into<String>, status: BuildStatus, exit_code: i64) -> Self {
        BuildFinished { run_id: run_id.into(), ts: ts.into(), status, exit_code, duration_ms: 0, message: None }
    }
}

/// `plugin_event`: a plugin published a [`PluginEvent`](crate::PluginEvent).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PluginEventEmitted {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The plugin that published it.
    pub plugin: String,
    /// The event's name.
    pub name: String,
    /// The event's data. Default empty.
    pub data: BTreeMap<String, Value>,
    /// The step it was published from, if any.
    pub step_key: Option<String>,
}

impl PluginEventEmitted {
    /// The event with the required fields.
    pub fn new(
        run_id: impl Into<String>,
        ts: impl Into<String>,
        plugin: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        PluginEventEmitted {
            run_id: run_id.into(),
            ts: ts.into(),
            plugin: plugin.into(),
            name: name.into(),
            data: BTreeMap::new(),
            step_key: None,
        }
    }
}
