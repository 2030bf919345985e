//! The traits a plugin implements.

use crate::context::{PluginContext, Status};
use crate::protocol::{
    ExecutorInput, ExitInfo, HookEvent, HookOutcome, PluginError, PluginManifest, SessionSpec, StepResult,
    SubcommandInput,
};
use crate::sys::CallHandle;

/// A plugin: its manifest and the capabilities it implements.
///
/// Export it with [`hm_plugin!`](crate::hm_plugin), which needs
/// `Plugin + Default`. hm calls a plugin from several threads at once (one per
/// running step), hence `Send + Sync`: guard mutable state with a `Mutex` or
/// atomics.
///
/// Each accessor returns the implementation of one capability, or `None` (the
/// default) when the plugin does not offer it; hm then gets
/// `HM_ERR_UNSUPPORTED`. Keep the answers consistent with the manifest.
pub trait Plugin: Send + Sync + 'static {
    /// What the plugin is and offers. Called once after loading; hm caches the
    /// result, so it must not depend on the environment of one call.
    fn manifest(&self) -> PluginManifest;

    /// The step executor, if the manifest lists a `step_executor` capability.
    fn step_executor(&self) -> Option<&dyn StepExecutor> {
        None
    }

    /// The lifecycle hook, if the manifest lists `lifecycle_hook` capabilities.
    fn lifecycle_hook(&self) -> Option<&dyn LifecycleHook> {
        None
    }

    /// The subcommands, if the manifest lists `subcommand` capabilities.
    fn subcommand(&self) -> Option<&dyn Subcommand> {
        None
    }

    /// The interactive sessions (ABI 1.1), if a `step_executor` capability says
    /// `sessions` ([`Capability::with_sessions`](crate::Capability::with_sessions)).
    fn sessions(&self) -> Option<&dyn SessionRunner> {
        None
    }
}

/// Interactive sessions into a step's environment (`hm shell`). Since ABI 1.1.
///
/// `open_session` runs the whole session on the host's thread: start the
/// process on a terminal, stream what it prints with
/// [`ctx.session_output`](PluginContext::session_output), poll
/// [`ctx.should_cancel`](PluginContext::should_cancel), and return its exit code.
/// The other methods come from other threads while it runs; `session` is
/// [`ctx.call_handle()`](PluginContext::call_handle) of that `open_session`, so keep
/// your sessions in a map keyed by it. Answer [`Status::StaleCall`] for a session
/// that is not (or no longer) running.
pub trait SessionRunner: Send + Sync {
    /// Runs one session until it ends; `Ok(ExitInfo::exit(code))` with its exit code.
    fn open_session(&self, ctx: &PluginContext<'_>, spec: SessionSpec) -> Result<ExitInfo, PluginError>;
    /// Keystrokes for the session (Ctrl-C is the byte 0x03: write it to the terminal).
    fn write(&self, session: CallHandle, data: &[u8]) -> Result<(), Status>;
    /// The user's terminal is now `rows` x `cols`.
    fn resize(&self, session: CallHandle, rows: u16, cols: u16) -> Result<(), Status>;
    /// `HM_SIGNAL_*` (see [`sys`](crate::sys)) for the session's foreground job.
    fn signal(&self, session: CallHandle, signal: i32) -> Result<(), Status>;
    /// End the session; `open_session` returns soon after.
    fn close(&self, session: CallHandle) -> Result<(), Status>;
}

/// Runs pipeline steps of the runners the manifest claims.
pub trait StepExecutor: Send + Sync {
    /// Runs one step: stream its output with
    /// [`ctx.emit_step_log`](PluginContext::emit_step_log), poll
    /// [`ctx.should_cancel`](PluginContext::should_cancel), return how it ended.
    ///
    /// A step that ran and exited non-zero is `Ok(StepResult::exit(code))`; an
    /// `Err` means the step could not be run at all (hm reports the error).
    fn execute_step(&self, ctx: &PluginContext<'_>, input: ExecutorInput) -> Result<StepResult, PluginError>;
}

/// Receives build events in the phases the manifest lists.
pub trait LifecycleHook: Send + Sync {
    /// Handles one event. In the `before` phase, [`HookOutcome::Abort`] stops the
    /// build; an `Err` in that phase also stops it (hooks fail closed).
    fn on_hook_event(&self, ctx: &PluginContext<'_>, event: HookEvent) -> Result<HookOutcome, PluginError>;
}

/// Runs the `hm <verb...>` commands the manifest lists.
pub trait Subcommand: Send + Sync {
    /// Runs one command; `input.verb_path` says which when there are several.
    /// Write output with [`ctx.write_stdout`](PluginContext::write_stdout) or return it
    /// in [`ExitInfo::message`].
    fn run_subcommand(&self, ctx: &PluginContext<'_>, input: SubcommandInput) -> Result<ExitInfo, PluginError>;
}
