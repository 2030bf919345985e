//! Subcommands: `SubcommandInput` (arguments parsed and typed by hm) in, `ExitInfo` out.

use std::collections::BTreeMap;

use super::codec::{Encode, Fields, FromValue, MapBuilder};
use crate::msgpack::{DecodeError, Value, Writer};

/// The value of a subcommand argument: what hm parsed for an [`ArgSpec`](crate::ArgSpec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    /// A `string` argument.
    Str(String),
    /// An `int` argument.
    Int(i64),
    /// A `bool` argument (flags).
    Bool(bool),
    /// Not given and without a default.
    Nil,
}

impl ArgValue {
    /// The string, if this is [`ArgValue::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ArgValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is [`ArgValue::Int`].
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            ArgValue::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The boolean, if this is [`ArgValue::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            ArgValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl From<&str> for ArgValue {
    fn from(s: &str) -> Self {
        ArgValue::Str(s.to_owned())
    }
}
impl From<String> for ArgValue {
    fn from(s: String) -> Self {
        ArgValue::Str(s)
    }
}
impl From<i64> for ArgValue {
    fn from(i: i64) -> Self {
        ArgValue::Int(i)
    }
}
impl From<bool> for ArgValue {
    fn from(b: bool) -> Self {
        ArgValue::Bool(b)
    }
}

impl FromValue for ArgValue {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Str(s) => Ok(ArgValue::Str(s)),
            Value::Bool(b) => Ok(ArgValue::Bool(b)),
            Value::Nil => Ok(ArgValue::Nil),
            Value::Int(i) => Ok(ArgValue::Int(i)),
            other => Err(DecodeError::expected("str, int, bool or nil", &other)),
        }
    }
}

impl Encode for ArgValue {
    fn encode(&self, w: &mut Writer) {
        match self {
            ArgValue::Str(s) => w.write_str(s),
            ArgValue::Int(i) => w.write_int(*i),
            ArgValue::Bool(b) => w.write_bool(*b),
            ArgValue::Nil => w.write_nil(),
        }
    }
}

/// Input of `run_subcommand`: arguments already parsed and typed by hm.
///
/// ```
/// use hm_plugin_sdk::{ArgValue, SubcommandInput};
///
/// let input = SubcommandInput::new(["db", "migrate"]).with_arg("steps", 3i64);
/// assert_eq!(input.int("steps"), Some(3));
/// assert_eq!(input.str("missing"), None);
/// assert!(!input.flag("dry-run"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubcommandInput {
    /// The verb path that was invoked, e.g. `["db", "migrate"]`.
    pub verb_path: Vec<String>,
    /// Every declared argument by name, with its parsed value or default. Default empty.
    pub args: BTreeMap<String, ArgValue>,
    /// The user's environment. Default empty.
    pub env: BTreeMap<String, String>,
}

impl SubcommandInput {
    /// An input with no arguments.
    pub fn new<S: Into<String>>(verb_path: impl IntoIterator<Item = S>) -> Self {
        SubcommandInput {
            verb_path: verb_path.into_iter().map(Into::into).collect(),
            args: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }

    /// Adds an argument value.
    pub fn with_arg(mut self, name: impl Into<String>, value: impl Into<ArgValue>) -> Self {
        self.args.insert(name.into(), value.into());
        self
    }

    /// The string argument `name`, if given.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(ArgValue::as_str)
    }

    /// The int argument `name`, if given.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.args.get(name).and_then(ArgValue::as_int)
    }

    /// The bool argument `name`; `false` if absent or nil.
    pub fn flag(&self, name: &str) -> bool {
        self.args.get(name).and_then(ArgValue::as_bool).unwrap_or(false)
    }
}

impl FromValue for SubcommandInput {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(SubcommandInput {
            verb_path: f.required("verb_path")?,
            args: f.or_default("args")?,
            env: f.or_default("env")?,
        })
    }
}

impl Encode for SubcommandInput {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("verb_path", &self.verb_path)
            .field_unless(self.args.is_empty(), "args", &self.args)
            .field_unless(self.env.is_empty(), "env", &self.env)
            .finish(w);
    }
}

/// Output of `run_subcommand`: hm prints `message` and exits with `exit_code`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExitInfo {
    /// hm's exit code. Default 0.
    pub exit_code: i64,
    /// Printed by hm. Default none.
    pub message: Option<String>,
}

impl ExitInfo {
    /// Exit code 0 and no message.
    pub fn success() -> Self {
        ExitInfo::default()
    }

    /// An exit code and no message.
    pub fn exit(exit_code: i64) -> Self {
        ExitInfo { exit_code, message: None }
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

impl FromValue for ExitInfo {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(ExitInfo { exit_code: f.or("exit_code", 0)?, message: f.optional("message")? })
    }
}

impl Encode for ExitInfo {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field_unless(self.exit_code == 0, "exit_code", &self.exit_code)
            .field_some("message", &self.message)
            .finish(w);
    }
}
