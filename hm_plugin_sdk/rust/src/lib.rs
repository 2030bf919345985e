//! Write native hm plugins in safe Rust.
//!
//! hm runs build pipelines; every runner, hook and extra command is a native
//! plugin: a shared library exporting one symbol, `hm_load_plugin`, that speaks
//! the C ABI of `hm_plugin.h` with msgpack messages. This crate is that ABI for
//! Rust, with no dependencies:
//!
//! * [`Plugin`], [`StepExecutor`], [`LifecycleHook`], [`Subcommand`]: the traits
//!   you implement, with typed inputs and outputs ([`ExecutorInput`] →
//!   [`StepResult`], [`HookEvent`] → [`HookOutcome`], [`SubcommandInput`] →
//!   [`ExitInfo`], failures as [`PluginError`]).
//! * [`PluginContext`]: every host function (logs, step output, cancellation,
//!   key-value store, events, archive, config files) for the running call.
//! * [`hm_plugin!`]: exports `hm_load_plugin` and the vtable for your type.
//! * [`protocol`] and [`msgpack`]: the messages and their codec; [`sys`]: the raw ABI;
//!   [`testing`]: a mock host to test a plugin with `cargo test`.
//!
//! # A complete plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hm-hello"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]   # cdylib for hm; rlib lets integration tests link it
//!
//! [dependencies]
//! hm-plugin-sdk = { path = "../hm/hm_plugin_sdk/rust" }
//! # Do not set `panic = "abort"` in a profile: panics must be caught at the boundary.
//! ```
//!
//! `src/lib.rs` — a runner `hello` and a command `hm hello NAME [--shout]`:
//!
//! ```
//! use hm_plugin_sdk::{
//!     hm_plugin, ArgSpec, Capability, ExecutorInput, ExitInfo, KvScope, Plugin, PluginContext,
//!     PluginError, PluginManifest, StepExecutor, StepResult, Stream, Subcommand, SubcommandInput,
//! };
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn manifest(&self) -> PluginManifest {
//!         PluginManifest::new("hello", "0.1.0")
//!             .with_description("Greets from steps and from the command line.")
//!             .with_capability(Capability::step_executor(["hello"]))
//!             .with_capability(
//!                 Capability::subcommand(["hello"], "Greet someone")
//!                     .with_arg(ArgSpec::positional("name").required().with_help("who to greet"))
//!                     .with_arg(ArgSpec::flag("shout").with_help("greet loudly")),
//!             )
//!     }
//!     fn step_executor(&self) -> Option<&dyn StepExecutor> {
//!         Some(self)
//!     }
//!     fn subcommand(&self) -> Option<&dyn Subcommand> {
//!         Some(self)
//!     }
//! }
//!
//! impl StepExecutor for Hello {
//!     fn execute_step(&self, ctx: &PluginContext<'_>, input: ExecutorInput) -> Result<StepResult, PluginError> {
//!         for word in input.step.cmd.split_whitespace() {
//!             if ctx.should_cancel() {
//!                 return Ok(StepResult::cancelled());
//!             }
//!             ctx.emit_step_log(Stream::Stdout, format!("hello {word}\n").as_bytes())?;
//!         }
//!         // Host errors convert into PluginError, so `?` works.
//!         ctx.kv_set(KvScope::Step, "greeted", input.step.cmd.as_bytes())?;
//!         Ok(StepResult::success())
//!     }
//! }
//!
//! impl Subcommand for Hello {
//!     fn run_subcommand(&self, ctx: &PluginContext<'_>, input: SubcommandInput) -> Result<ExitInfo, PluginError> {
//!         let name = input.str("name").ok_or_else(|| PluginError::invalid_input("name is required"))?;
//!         let mut text = format!("hello {name}");
//!         if input.flag("shout") {
//!             text = text.to_uppercase();
//!         }
//!         ctx.write_stdout(format!("{text}\n").as_bytes())?;
//!         Ok(ExitInfo::success())
//!     }
//! }
//!
//! hm_plugin!(Hello);
//! # fn main() {
//! # use hm_plugin_sdk::{testing::MockHost, StepSpec};
//! # let host = MockHost::new();
//! # let plugin = host.load(hm_load_plugin).unwrap();
//! # assert_eq!(plugin.manifest().unwrap().name, "hello");
//! # plugin.execute_step(&ExecutorInput::new("r", StepSpec::new("a", "x y"), "/w")).unwrap();
//! # assert_eq!(host.step_output(Stream::Stdout), b"hello x\nhello y\n");
//! # let input = SubcommandInput::new(["hello"]).with_arg("name", "Ada").with_arg("shout", true);
//! # plugin.run_subcommand(&input).unwrap();
//! # assert_eq!(host.stdout(), b"HELLO ADA\n");
//! # }
//! ```
//!
//! Build it with `cargo build --release`, then point hm at the library:
//! `HM_PLUGIN_PATH=target/release/libhm_hello.so hm plugin info hello`.
//! Test it without hm through [`testing::MockHost`].
//!
//! # Rules the crate enforces for you
//!
//! * **Errors are data.** Return `Err(PluginError)` (status `HM_ERR_FAILED`);
//!   input that does not decode never reaches your code (status
//!   `HM_ERR_INVALID_ARGUMENT` with a `PluginError {code: "invalid_input"}` that
//!   names the field).
//! * **Panics never cross the boundary.** Each exported function catches them; hm
//!   gets `HM_ERR_FAILED` with `PluginError {code: "panic", message: <panic
//!   message>, title: "the plugin panicked at <file:line:col>"}`. While a call
//!   runs, the panic is not printed (the error carries it) unless
//!   `RUST_BACKTRACE` is set. Do not build with `panic = "abort"`.
//! * **Capabilities you do not implement** (an accessor returning `None`) answer
//!   `HM_ERR_UNSUPPORTED`; the vtable entries are always filled.
//! * **Memory.** Outputs are allocated by the plugin and released by its own
//!   `free`; host buffers (`kv_get`, `fs_read_config`) are copied and released
//!   with the host's `free`. You only ever see owned Rust values.
//! * **Versions.** `hm_load_plugin` refuses a host of another ABI major. Each
//!   host function is called only if the host's table is large enough to have it;
//!   otherwise you get [`HostError::Unavailable`], so a plugin built against a
//!   newer minor version still runs on an older hm.
//!
//! # Threads
//!
//! hm calls a plugin concurrently from several threads (one per running step),
//! so [`Plugin`] is `Send + Sync`. [`PluginContext`] is `Send + Sync` too: share
//! `&ctx` with threads you start (e.g. with [`std::thread::scope`]) while the
//! call runs. Once the call returned, its handle is stale: host functions answer
//! `HM_ERR_STALE_CALL` and [`PluginContext::should_cancel`] returns `true`.

#![warn(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
// `PluginError` is 150-odd bytes; its fields stay public and unboxed because plugins
// build and inspect it directly, and an error path is never hot.
#![allow(clippy::result_large_err)]

mod context;
mod export;
pub mod msgpack;
mod plugin;
pub mod protocol;
pub mod sys;
pub mod testing;

pub use context::{ArchiveReader, HostError, KvScope, LogLevel, PluginContext, Status, Stream};
pub use plugin::{LifecycleHook, Plugin, SessionRunner, StepExecutor, Subcommand};
pub use protocol::{
    ArgKind, ArgSpec, ArgType, ArgValue, BuildEvent, BuildFinished, BuildStarted, BuildStatus, CacheOutcome,
    Capability, ChainFailed, ExecutorInput, ExitInfo, HookEvent, HookOutcome, Message, Phase, PluginError, PluginEvent,
    PluginEventEmitted, PluginManifest, RunnerArgSpec, RunnerArgType, StepFinished, StepFinishedStatus, StepLog,
    SessionSpec, StepQueued, StepResult, StepSpec, StepStarted, StepStatus, SubcommandInput,
};

/// Used by [`hm_plugin!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{load, vtable};
}

/// Exports a plugin type: defines `hm_load_plugin` and the plugin's static vtable.
///
/// `$plugin` must implement [`Plugin`] + [`Default`] (+ `Send + Sync + 'static`,
/// which `Plugin` requires). Use it once per library, at the crate root or in any
/// module. The generated `hm_load_plugin`:
///
/// 1. returns NULL (refuses to load) if the host table is NULL, its `abi_major`
///    differs from [`sys::ABI_MAJOR`] or its `struct_size` does not even cover
///    the header;
/// 2. creates the instance with `Default::default()` in a `Box` (keep `default`
///    cheap: listing plugins may load them) and stores it in `*out_instance`;
/// 3. returns a `static` vtable whose functions decode the input, call your trait
///    method with a [`PluginContext`] under `catch_unwind`, and encode the output.
///
/// `destroy` drops the instance. The function is also callable from Rust, e.g.
/// with [`testing::MockHost::load`].
#[macro_export]
macro_rules! hm_plugin {
    ($plugin:ty) => {
        /// The plugin's entry point for hm, generated by `hm_plugin_sdk::hm_plugin!`.
        ///
        /// # Safety
        ///
        /// `host` must be NULL or hm's host table (valid until the process exits) and
        /// `out_instance` NULL or writable, as `hm_plugin.h` specifies for `hm_load_plugin`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn hm_load_plugin(
            host: *const $crate::sys::HostApi,
            out_instance: *mut *mut ::core::ffi::c_void,
        ) -> *const $crate::sys::PluginVtable {
            static VTABLE: $crate::sys::PluginVtable = $crate::__private::vtable::<$plugin>();
            // SAFETY: the caller upholds this function's contract, which is `load`'s.
            unsafe { $crate::__private::load::<$plugin>(host, out_instance, &VTABLE) }
        }
    };
}
