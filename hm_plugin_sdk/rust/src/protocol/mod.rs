//! The msgpack messages that cross the plugin boundary, as Rust types.
//!
//! They mirror the `msgspec` structs of `hm_plugin_sdk/protocol.py` field by
//! field (`docs/plugin-authors.md` documents each field). On the wire each is a
//! map with snake_case string keys; tagged unions carry a `"kind"` field.
//!
//! | Direction                         | Message                                  |
//! |-----------------------------------|------------------------------------------|
//! | `manifest` →                      | [`PluginManifest`]                       |
//! | `execute_step`                    | [`ExecutorInput`] → [`StepResult`]       |
//! | `on_hook_event`                   | [`HookEvent`] → [`HookOutcome`]          |
//! | `run_subcommand`                  | [`SubcommandInput`] → [`ExitInfo`]       |
//! | any failing call →                | [`PluginError`]                          |
//! | [`PluginContext::emit_event`](crate::PluginContext::emit_event) | [`PluginEvent`] |
//!
//! Every type implements [`Message`] in both directions, so a plugin's tests can
//! build inputs and check outputs as bytes.
//!
//! # Compatibility rules the codecs follow
//!
//! * **Decoding** ignores unknown keys (a newer hm may add optional fields),
//!   takes the documented default for a missing optional field, and fails with a
//!   [`DecodeError`] naming the field (`ExecutorInput.step.key: missing required
//!   field`) for anything else. A build event of a kind this crate does not know
//!   decodes to [`BuildEvent::Other`]. Hostile input never panics.
//! * **Encoding** produces exactly the bytes Python's msgspec produces for the
//!   same message: fields in schema order, fields equal to their default left
//!   out (`omit_defaults`), build events with every field.
//! * Structs are `#[non_exhaustive]` because hm may add optional fields within a
//!   major version: build them with their constructors (`StepResult::exit(1)`,
//!   `PluginError::new(..)`, ...) and set the public fields you need.

pub(crate) mod codec;
mod error;
mod hook;
mod manifest;
mod session;
mod step;
mod subcommand;

pub use error::{PluginError, PluginEvent};
pub use hook::{
    BuildEvent, BuildFinished, BuildStarted, BuildStatus, CacheOutcome, ChainFailed, HookEvent, HookOutcome,
    PluginEventEmitted, StepFinished, StepFinishedStatus, StepLog, StepQueued, StepStarted,
};
pub use manifest::{ArgKind, ArgSpec, ArgType, Capability, Phase, PluginManifest, RunnerArgSpec, RunnerArgType};
pub use session::SessionSpec;
pub use step::{ExecutorInput, StepResult, StepSpec, StepStatus};
pub use subcommand::{ArgValue, ExitInfo, SubcommandInput};

use crate::msgpack::{DecodeError, Value, Writer};
use codec::{Encode, FromValue};

mod sealed {
    pub trait Sealed {}
}

/// A message of the plugin protocol: encodes to and decodes from msgpack.
///
/// Implemented by every type of this module (and sealed: the set of messages is
/// the protocol's, not the plugin's).
///
/// ```
/// use hm_plugin_sdk::{Message, StepResult};
///
/// let bytes = StepResult::exit(1).with_message("boom").to_msgpack();
/// let back = StepResult::from_msgpack(&bytes).unwrap();
/// assert_eq!(back.exit_code, 1);
/// assert!(StepResult::from_msgpack(b"\x80").unwrap_err().to_string()
///     .contains("StepResult: missing required field `exit_code`"));
/// ```
pub trait Message: Sized + sealed::Sealed {
    /// The message's name in `protocol.py`, used in error messages.
    const NAME: &'static str;

    /// Appends the message to `w`.
    fn write_to(&self, w: &mut Writer);

    /// Decodes the message from an already-decoded msgpack value.
    fn from_value(v: Value) -> Result<Self, DecodeError>;

    /// The message as msgpack bytes.
    fn to_msgpack(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write_to(&mut w);
        w.into_bytes()
    }

    /// Decodes the message from msgpack bytes (exactly one value).
    fn from_msgpack(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_value(crate::msgpack::decode(bytes)?)
    }
}

macro_rules! messages {
    ($($t:ident),+ $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Message for $t {
            const NAME: &'static str = stringify!($t);
            fn write_to(&self, w: &mut Writer) {
                Encode::encode(self, w)
            }
            fn from_value(v: Value) -> Result<Self, DecodeError> {
                <$t as FromValue>::from_value(v).map_err(|e| e.within(stringify!($t)))
            }
        }
    )+};
}

messages!(
    PluginManifest,
    Capability,
    ArgSpec,
    PluginError,
    PluginEvent,
    StepSpec,
    ExecutorInput,
    StepResult,
    BuildEvent,
    HookEvent,
    HookOutcome,
    SubcommandInput,
    ExitInfo,
    SessionSpec,
);

#[cfg(test)]
mod tests;
