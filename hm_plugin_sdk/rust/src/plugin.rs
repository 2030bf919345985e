//! The traits a plugin implements.

use crate::context::PluginContext;
use crate::protocol::{
    ExecutorInput, ExitInfo, HookEvent, HookOutcome, PluginError, PluginManifest, StepResult, SubcommandInput,
};

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
