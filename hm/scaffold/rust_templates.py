"""Templates of a Rust plugin project (``{{name}}`` placeholders, filled by ``create_project``)."""

from __future__ import annotations

CARGO_TOML = """[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the library hm loads.
crate-type = ["cdylib"]

# The SDK shipped with the hm that generated this project; no other dependency,
# so `cargo build --offline` works.
[dependencies]
hm-plugin-sdk = { path = "{{sdk_path}}" }

# Panics must unwind: the SDK turns them into PluginErrors. Never use "abort".
[profile.release]
panic = "unwind"

[workspace]
"""

_EXECUTOR = """//! {{name}} — an hm plugin: runner `{{name}}` prints the step's command, then succeeds.
//! Build: `{{build}}`; check: `hm plugin check ./{{library}}`.

use hm_plugin_sdk::{
    Capability, ExecutorInput, Plugin, PluginContext, PluginError, PluginManifest, StepExecutor, StepResult,
    Stream, hm_plugin,
};

#[derive(Default)]
struct {{type}};

impl Plugin for {{type}} {
    fn manifest(&self) -> PluginManifest {
        PluginManifest::new("{{name}}", "0.1.0").with_capability(Capability::step_executor(["{{name}}"]))
    }

    fn step_executor(&self) -> Option<&dyn StepExecutor> {
        Some(self)
    }
}

impl StepExecutor for {{type}} {
    fn execute_step(&self, ctx: &PluginContext<'_>, input: ExecutorInput) -> Result<StepResult, PluginError> {
        if ctx.should_cancel() {
            return Ok(StepResult::cancelled());
        }
        ctx.emit_step_log(Stream::Stdout, format!("{{name}}: {}\\n", input.step.cmd).as_bytes())?;
        Ok(StepResult::success())
    }
}

hm_plugin!({{type}});
"""

_HOOK = """//! {{name}} — an hm plugin: an `after` hook on every build event that logs what it saw.
//! Build: `{{build}}`; check: `hm plugin check ./{{library}}`.

use hm_plugin_sdk::{
    Capability, HookEvent, HookOutcome, LifecycleHook, Phase, Plugin, PluginContext, PluginError, PluginManifest,
    hm_plugin,
};

#[derive(Default)]
struct {{type}};

impl Plugin for {{type}} {
    fn manifest(&self) -> PluginManifest {
        PluginManifest::new("{{name}}", "0.1.0").with_capability(Capability::lifecycle_hook(Phase::After))
    }

    fn lifecycle_hook(&self) -> Option<&dyn LifecycleHook> {
        Some(self)
    }
}

impl LifecycleHook for {{type}} {
    fn on_hook_event(&self, ctx: &PluginContext<'_>, event: HookEvent) -> Result<HookOutcome, PluginError> {
        ctx.info(&format!("{{name}} saw {}", event.event.kind()));
        Ok(HookOutcome::Continue)
    }
}

hm_plugin!({{type}});
"""

_SUBCOMMAND = """//! {{name}} — an hm plugin: `hm {{name}} [WHO]` greets WHO (default "world").
//! Build: `{{build}}`; check: `hm plugin check ./{{library}}`.

use hm_plugin_sdk::{
    ArgSpec, Capability, ExitInfo, Plugin, PluginContext, PluginError, PluginManifest, Subcommand, SubcommandInput,
    hm_plugin,
};

#[derive(Default)]
struct {{type}};

impl Plugin for {{type}} {
    fn manifest(&self) -> PluginManifest {
        PluginManifest::new("{{name}}", "0.1.0").with_capability(
            Capability::subcommand(["{{name}}"], "Greet someone")
                .with_arg(ArgSpec::positional("who").with_default("world").with_help("who to greet")),
        )
    }

    fn subcommand(&self) -> Option<&dyn Subcommand> {
        Some(self)
    }
}

impl Subcommand for {{type}} {
    fn run_subcommand(&self, _ctx: &PluginContext<'_>, input: SubcommandInput) -> Result<ExitInfo, PluginError> {
        let who = input.str("who").unwrap_or("world");
        Ok(ExitInfo::success().with_message(format!("hello, {who}")))
    }
}

hm_plugin!({{type}});
"""

_BODIES = {"executor": _EXECUTOR, "hook": _HOOK, "subcommand": _SUBCOMMAND}


def source(capability: str) -> str:
    return _BODIES[capability]


README = """# {{name}}

An hm plugin in Rust, built on the `hm-plugin-sdk` crate shipped with hm.

    {{build}}                       # builds {{library}}
    hm plugin check ./{{library}}   # hm's conformance suite
    hm plugin install ./{{library}} # or: HM_PLUGIN_PATH=$PWD/{{library}} hm plugin info {{name}}

`src/lib.rs` is the whole plugin. The crate's documentation (`cargo doc --open`)
explains every type; its `testing::MockHost` lets you test with `cargo test`.
"""
