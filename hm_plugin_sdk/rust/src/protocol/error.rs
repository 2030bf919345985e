//! `PluginError` (a failed call's output) and `PluginEvent` (what `emit_event` publishes).

use std::collections::BTreeMap;
use std::fmt;

use super::codec::{Encode, Fields, FromValue, MapBuilder};
use crate::msgpack::{DecodeError, Value, Writer};

/// A failed call's output (status `HM_ERR_FAILED`): what happened, where, and what to do next.
///
/// hm shows it as `<title>: <message> [<code>]` with the suggestion as a hint.
///
/// ```
/// use hm_plugin_sdk::PluginError;
///
/// let err = PluginError::new("image_not_found", "image alpine:9 does not exist")
///     .with_title("cannot start the step")
///     .with_suggestion("pick a tag that exists, e.g. alpine:3")
///     .with_retry_command("hm run --file pipeline.json");
/// assert!(err.retryable);
/// assert_eq!(err.to_string(), "cannot start the step: image alpine:9 does not exist [image_not_found]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginError {
    /// Stable snake_case identifier, e.g. `"image_not_found"`. Scripts match on it.
    pub code: String,
    /// What happened, in one sentence.
    pub message: String,
    /// A short heading. Default none.
    pub title: Option<String>,
    /// What the user should do next. Default none.
    pub suggestion: Option<String>,
    /// Trying again may succeed. Default `false`.
    pub retryable: bool,
    /// Commands that retry the operation. Default none.
    pub retry_commands: Vec<String>,
    /// A page explaining the error. Default none.
    pub doc_url: Option<String>,
}

impl PluginError {
    /// An error with a stable snake_case `code` and a `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError {
            code: code.into(),
            message: message.into(),
            title: None,
            suggestion: None,
            retryable: false,
            retry_commands: Vec::new(),
            doc_url: None,
        }
    }

    /// `code: "invalid_input"`: the input did not match what the plugin needs.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("invalid_input", message)
    }

    /// `code: "failed"`: a generic failure, when no more precise code fits.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new("failed", message)
    }

    /// `code: "cancelled"`: the call stopped because hm asked it to.
    pub fn cancelled() -> Self {
        Self::new("cancelled", "stopped because hm asked the call to stop")
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the suggestion (what to do next).
    pub fn with_suggestion(mut self, suggestion: impl Into<String>) -> Self {
        self.suggestion = Some(suggestion.into());
        self
    }

    /// Sets `retryable`.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Adds a retry command and marks the error retryable.
    pub fn with_retry_command(mut self, command: impl Into<String>) -> Self {
        self.retry_commands.push(command.into());
        self.retryable = true;
        self
    }

    /// Sets the documentation URL.
    pub fn with_doc_url(mut self, url: impl Into<String>) -> Self {
        self.doc_url = Some(url.into());
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(title) = &self.title {
            write!(f, "{title}: ")?;
        }
        write!(f, "{} [{}]", self.message, self.code)
    }
}

impl std::error::Error for PluginError {}

impl From<DecodeError> for PluginError {
    /// `invalid_input` with the decoder's explanation.
    fn from(e: DecodeError) -> Self {
        PluginError::invalid_input(e.to_string())
    }
}

impl From<std::io::Error> for PluginError {
    /// `code: "io_error"` with the error's text.
    fn from(e: std::io::Error) -> Self {
        PluginError::new("io_error", e.to_string())
    }
}

impl FromValue for PluginError {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(PluginError {
            code: f.required("code")?,
            message: f.required("message")?,
            title: f.optional("title")?,
            suggestion: f.optional("suggestion")?,
            retryable: f.or("retryable", false)?,
            retry_commands: f.or_default("retry_commands")?,
            doc_url: f.optional("doc_url")?,
        })
    }
}

impl Encode for PluginError {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("code", &self.code)
            .field("message", &self.message)
            .field_some("title", &self.title)
            .field_some("suggestion", &self.suggestion)
            .field_unless(!self.retryable, "retryable", &self.retryable)
            .field_unless(self.retry_commands.is_empty(), "retry_commands", &self.retry_commands)
            .field_some("doc_url", &self.doc_url)
            .finish(w);
    }
}

/// A custom event a plugin publishes with
/// [`PluginContext::emit_event`](crate::PluginContext::emit_event). It reaches
/// `--format json` output (as a `plugin_event` build event) and the hooks.
///
/// ```
/// use hm_plugin_sdk::PluginEvent;
///
/// let event = PluginEvent::new("cache_hit").with("key", "deps").with("bytes", 4096i64);
/// assert_eq!(event.data.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PluginEvent {
    /// The event's name.
    pub name: String,
    /// Any data (string keys). Default empty.
    pub data: BTreeMap<String, Value>,
}

impl PluginEvent {
    /// An event with no data.
    pub fn new(name: impl Into<String>) -> Self {
        PluginEvent { name: name.into(), data: BTreeMap::new() }
    }

    /// Adds `key: value` to `data`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}

impl FromValue for PluginEvent {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(PluginEvent { name: f.required("name")?, data: f.or_default("data")? })
    }
}

impl Encode for PluginEvent {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("name", &self.name)
            .field_unless(self.data.is_empty(), "data", &self.data)
            .finish(w);
    }
}
