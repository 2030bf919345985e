//! Step execution: `ExecutorInput` (with its `StepSpec`) in, `StepResult` out.

use std::collections::BTreeMap;

use super::codec::{Encode, Fields, FromValue, MapBuilder, string_enum};
use crate::msgpack::{DecodeError, Value, Writer};

/// The pipeline step to run, as written in the pipeline.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StepSpec {
    /// The step's key, unique in the pipeline.
    pub key: String,
    /// The command to run (what it means is up to the runner).
    pub cmd: String,
    /// A human label. Default none.
    pub label: Option<String>,
    /// The container image, if the pipeline names one. Default none.
    pub image: Option<String>,
    /// The runner name the step resolved to. Default none.
    pub runner: Option<String>,
    /// Runner-specific arguments from the pipeline (any msgpack values). Default empty.
    pub runner_args: BTreeMap<String, Value>,
    /// The step's time limit in seconds (hm enforces it with `should_cancel`). Default none.
    pub timeout_seconds: Option<f64>,
}

impl StepSpec {
    /// A step with only its key and command.
    pub fn new(key: impl Into<String>, cmd: impl Into<String>) -> Self {
        StepSpec {
            key: key.into(),
            cmd: cmd.into(),
            label: None,
            image: None,
            runner: None,
            runner_args: BTreeMap::new(),
            timeout_seconds: None,
        }
    }
}

impl FromValue for StepSpec {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(StepSpec {
            key: f.required("key")?,
            cmd: f.required("cmd")?,
            label: f.optional("label")?,
            image: f.optional("image")?,
            runner: f.optional("runner")?,
            runner_args: f.or_default("runner_args")?,
            timeout_seconds: f.optional("timeout_seconds")?,
        })
    }
}

impl Encode for StepSpec {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("key", &self.key)
            .field("cmd", &self.cmd)
            .field_some("label", &self.label)
            .field_some("image", &self.image)
            .field_some("runner", &self.runner)
            .field_unless(self.runner_args.is_empty(), "runner_args", &self.runner_args)
            .field_some("timeout_seconds", &self.timeout_seconds)
            .finish(w);
    }
}

/// Input of `execute_step`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecutorInput {
    /// The run's id.
    pub run_id: String,
    /// The step to run.
    pub step: StepSpec,
    /// The step's environment: pipeline env overlaid with step env. Default empty.
    pub env: BTreeMap<String, String>,
    /// Absolute path of an empty directory that is this step's workspace.
    pub workspace: String,
    /// Absolute path of the workspace this step starts from (the step it builds in);
    /// `None` (the default) means start from the run's workspace archive
    /// ([`PluginContext::archive_read`](crate::PluginContext::archive_read)).
    pub base_workspace: Option<String>,
    /// The project's root directory. Default `""`.
    pub project_root: String,
    /// Run nothing: only resolve the step's image and answer with a [`StepResult`]
    /// whose `image_id` is set (or fail as the step would). Sent only to runners whose
    /// capability says `resolves_images`. Default `false`.
    pub resolve_only: bool,
}

impl ExecutorInput {
    /// An input with the required fields only.
    pub fn new(run_id: impl Into<String>, step: StepSpec, workspace: impl Into<String>) -> Self {
        ExecutorInput {
            run_id: run_id.into(),
            step,
            env: BTreeMap::new(),
            workspace: workspace.into(),
            base_workspace: None,
            project_root: String::new(),
            resolve_only: false,
        }
    }
}

impl FromValue for ExecutorInput {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(ExecutorInput {
            run_id: f.required("run_id")?,
            step: f.required("step")?,
            env: f.or_default("env")?,
            workspace: f.required("workspace")?,
            base_workspace: f.optional("base_workspace")?,
            project_root: f.or_default("project_root")?,
            resolve_only: f.or("resolve_only", false)?,
        })
    }
}

impl Encode for ExecutorInput {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("run_id", &self.run_id)
            .field("step", &self.step)
            .field_unless(self.env.is_empty(), "env", &self.env)
            .field("workspace", &self.workspace)
            .field_some("base_workspace", &self.base_workspace)
            .field_unless(self.project_root.is_empty(), "project_root", &self.project_root)
            .field_unless(!self.resolve_only, "resolve_only", &self.resolve_only)
            .finish(w);
    }
}

string_enum! {
    /// How a step ended, as the executor reports it.
    pub enum StepStatus {
        /// `"succeeded"` (the default).
        Succeeded = "succeeded",
        /// `"failed"`.
        Failed = "failed",
        /// `"timed_out"`.
        TimedOut = "timed_out",
        /// `"cancelled"`: the executor stopped because `should_cancel` said so.
        Cancelled = "cancelled",
    }
}

/// Output of `execute_step`.
///
/// ```
/// use hm_plugin_sdk::{StepResult, StepStatus};
///
/// assert_eq!(StepResult::success().status, StepStatus::Succeeded);
/// assert_eq!(StepResult::exit(2).status, StepStatus::Failed);
/// assert_eq!(StepResult::cancelled().exit_code, 130);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepResult {
    /// The step's exit code.
    pub exit_code: i64,
    /// How it ended. Default succeeded.
    pub status: StepStatus,
    /// A line shown with the result. Default none.
    pub message: Option<String>,
    /// The id of the image the step ran in (or, for `resolve_only`, would run in),
    /// e.g. `"sha256:…"`. Default none: a step without an image.
    pub image_id: Option<String>,
}

impl StepResult {
    /// Exit code 0, succeeded.
    pub fn success() -> Self {
        Self::exit(0)
    }

    /// `exit_code`, with status succeeded when it is 0 and failed otherwise.
    pub fn exit(exit_code: i64) -> Self {
        let status = if exit_code == 0 { StepStatus::Succeeded } else { StepStatus::Failed };
        StepResult { exit_code, status, message: None, image_id: None }
    }

    /// Exit code 130 (the shell's code for an interrupt), status cancelled.
    pub fn cancelled() -> Self {
        StepResult { exit_code: 130, status: StepStatus::Cancelled, message: None, image_id: None }
    }

    /// Exit code 124 (the code of `timeout(1)`), status timed out.
    pub fn timed_out() -> Self {
        StepResult { exit_code: 124, status: StepStatus::TimedOut, message: None, image_id: None }
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StepStatus) -> Self {
        self.status = status;
        self
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the id of the image the step ran in.
    pub fn with_image_id(mut self, image_id: impl Into<String>) -> Self {
        self.image_id = Some(image_id.into());
        self
    }
}

impl FromValue for StepResult {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(StepResult {
            exit_code: f.required("exit_code")?,
            status: f.or("status", StepStatus::Succeeded)?,
            message: f.optional("message")?,
            image_id: f.optional("image_id")?,
        })
    }
}

impl Encode for StepResult {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("exit_code", &self.exit_code)
            .field_unless(self.status == StepStatus::Succeeded, "status", &self.status)
            .field_some("message", &self.message)
            .field_some("image_id", &self.image_id)
            .finish(w);
    }
}
