//! Interactive sessions (ABI 1.1): `SessionSpec` in, `ExitInfo` out.

use std::collections::BTreeMap;

use super::codec::{Encode, Fields, FromValue, MapBuilder};
use super::step::StepSpec;
use crate::msgpack::{DecodeError, Value, Writer};

/// Input of `session_open`: a terminal session into a step's environment. Since ABI 1.1.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionSpec {
    /// The run the step belongs to.
    pub run_id: String,
    /// The step as it ran.
    pub step: StepSpec,
    /// Absolute path of the step's kept workspace: the session's working directory.
    pub workspace: String,
    /// The step's environment as it ran (add `TERM`). Default empty.
    pub env: BTreeMap<String, String>,
    /// The step's image, for runners that run steps in containers. Default none.
    pub image: Option<String>,
    /// The command to run on the terminal; empty (the default): an interactive shell.
    pub argv: Vec<String>,
    /// The user's terminal size. Default 24 x 80.
    pub rows: u16,
    /// See `rows`.
    pub cols: u16,
    /// `StepResult.session_target` of the step (what the runner kept). Default none.
    pub target: Option<String>,
    /// The project's root directory. Default `""`.
    pub project_root: String,
}

impl SessionSpec {
    /// A spec with the required fields only.
    pub fn new(run_id: impl Into<String>, step: StepSpec, workspace: impl Into<String>) -> Self {
        SessionSpec {
            run_id: run_id.into(),
            step,
            workspace: workspace.into(),
            env: BTreeMap::new(),
            image: None,
            argv: Vec::new(),
            rows: 24,
            cols: 80,
            target: None,
            project_root: String::new(),
        }
    }
}

impl FromValue for SessionSpec {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        let rows: u64 = f.or("rows", 24)?;
        let cols: u64 = f.or("cols", 80)?;
        Ok(SessionSpec {
            run_id: f.required("run_id")?,
            step: f.required("step")?,
            workspace: f.required("workspace")?,
            env: f.or_default("env")?,
            image: f.optional("image")?,
            argv: f.or_default("argv")?,
            rows: u16::try_from(rows).unwrap_or(u16::MAX),
            cols: u16::try_from(cols).unwrap_or(u16::MAX),
            target: f.optional("target")?,
            project_root: f.or_default("project_root")?,
        })
    }
}

impl Encode for SessionSpec {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("run_id", &self.run_id)
            .field("step", &self.step)
            .field("workspace", &self.workspace)
            .field_unless(self.env.is_empty(), "env", &self.env)
            .field_some("image", &self.image)
            .field_unless(self.argv.is_empty(), "argv", &self.argv)
            .field("rows", &u64::from(self.rows))
            .field("cols", &u64::from(self.cols))
            .field_some("target", &self.target)
            .field_unless(self.project_root.is_empty(), "project_root", &self.project_root)
            .finish(w);
    }
}
