//! `PluginManifest` and its capabilities.

use super::codec::{Encode, Fields, FromValue, MapBuilder, string_enum};
use super::subcommand::ArgValue;
use crate::msgpack::{DecodeError, Value, Writer};

/// What a plugin is and offers; returned by the vtable's `manifest`.
///
/// ```
/// use hm_plugin_sdk::{ArgSpec, ArgType, Capability, Phase, PluginManifest};
///
/// let manifest = PluginManifest::new("my-plugin", "1.0.0")
///     .with_description("Runs steps in Rust.")
///     .with_capability(Capability::step_executor(["rust"]))
///     .with_capability(Capability::lifecycle_hook(Phase::Before))
///     .with_capability(Capability::subcommand(["my", "greet"], "Say hello").with_arg(
///         ArgSpec::option("times", ArgType::Int).with_default(1i64),
///     ));
/// assert_eq!(manifest.capabilities.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PluginManifest {
    /// The plugin's name: lowercase letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// A semantic version, e.g. `"1.2.0"`.
    pub version: String,
    /// What the plugin offers; at least one.
    pub capabilities: Vec<Capability>,
    /// One line for `hm plugin list`. Default `""`.
    pub description: String,
    /// A semver range of hm versions this plugin needs, e.g. `">=0.1.0,<1.0.0"`.
    pub requires_hm: Option<String>,
}

impl PluginManifest {
    /// A manifest with no capabilities yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        PluginManifest {
            name: name.into(),
            version: version.into(),
            capabilities: Vec::new(),
            description: String::new(),
            requires_hm: None,
        }
    }

    /// Sets `description`.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Appends a capability.
    pub fn with_capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Sets `requires_hm`.
    pub fn with_requires_hm(mut self, range: impl Into<String>) -> Self {
        self.requires_hm = Some(range.into());
        self
    }
}

impl FromValue for PluginManifest {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(PluginManifest {
            name: f.required("name")?,
            version: f.required("version")?,
            capabilities: f.required("capabilities")?,
            description: f.or_default("description")?,
            requires_hm: f.optional("requires_hm")?,
        })
    }
}

impl Encode for PluginManifest {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("name", &self.name)
            .field("version", &self.version)
            .field("capabilities", &self.capabilities)
            .field_unless(self.description.is_empty(), "description", &self.description)
            .field_some("requires_hm", &self.requires_hm)
            .finish(w);
    }
}

string_enum! {
    /// The phase of a lifecycle hook: `before` hooks may abort the build, `after` hooks observe.
    pub enum Phase {
        /// `"before"`: sees each event before any output does; may abort.
        Before = "before",
        /// `"after"`: observes; its outcome is ignored.
        After = "after",
    }
}

/// One capability of a plugin (tagged by `"kind"` on the wire).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Capability {
    /// `kind: "step_executor"`: runs pipeline steps whose `runner` is one of `runners`.
    StepExecutor {
        /// Runner names claimed (lowercase letters, digits, `-`, `_`, `.`).
        runners: Vec<String>,
        /// Also run steps that name no runner. At most one plugin may claim it. Default `false`.
        default: bool,
        /// Can run a step in a container image (the step's `image` or the pipeline's
        /// `default_image`); hm refuses a step with an image on a runner without it. Default `false`.
        images: bool,
        /// The `runner_args` keys the runner takes; hm refuses others, and wrong types, before a
        /// run starts. `None` (the default) leaves checking to the runner.
        runner_args: Option<Vec<RunnerArgSpec>>,
        /// The runner reports the id of a step's image ([`StepResult::image_id`]) and answers an
        /// [`ExecutorInput`] with `resolve_only` without running anything; hm's step cache keys
        /// steps with an image on that id. Default `false`.
        ///
        /// [`StepResult::image_id`]: crate::StepResult::image_id
        /// [`ExecutorInput`]: crate::ExecutorInput
        resolves_images: bool,
        /// The runner opens interactive sessions ([`SessionRunner`](crate::SessionRunner),
        /// `hm shell`). Since ABI 1.1. Default `false`.
        sessions: bool,
    },
    /// `kind: "lifecycle_hook"`: receives build events.
    LifecycleHook {
        /// `before` (may abort) or `after` (observes).
        phase: Phase,
        /// Build event kinds to receive; empty (the default) means all but `step_log`.
        events: Vec<String>,
        /// How long one call may take before hm gives up on it. Default 5000.
        timeout_ms: u64,
    },
    /// `kind: "subcommand"`: adds `hm <verb...>` to the command line.
    Subcommand {
        /// The verb path, e.g. `["db", "migrate"]` for `hm db migrate`.
        verb: Vec<String>,
        /// One line for `hm --help`. Default `""`.
        summary: String,
        /// The arguments, parsed and validated by hm. Default none.
        args: Vec<ArgSpec>,
    },
}

/// Default of `Capability::LifecycleHook::timeout_ms`.
const DEFAULT_HOOK_TIMEOUT_MS: u64 = 5000;

impl Capability {
    /// A step executor for `runners` (not the default runner).
    pub fn step_executor<S: Into<String>>(runners: impl IntoIterator<Item = S>) -> Self {
        Capability::StepExecutor {
            runners: runners.into_iter().map(Into::into).collect(),
            default: false,
            images: false,
            runner_args: None,
            resolves_images: false,
            sessions: false,
        }
    }

    /// A step executor for `runners` that also runs steps naming no runner.
    pub fn default_step_executor<S: Into<String>>(runners: impl IntoIterator<Item = S>) -> Self {
        Capability::StepExecutor {
            runners: runners.into_iter().map(Into::into).collect(),
            default: true,
            images: false,
            runner_args: None,
            resolves_images: false,
            sessions: false,
        }
    }

    /// Declares that a [`Capability::StepExecutor`] runs steps in container images
    /// (other kinds are returned unchanged).
    pub fn with_images(mut self) -> Self {
        if let Capability::StepExecutor { images, .. } = &mut self {
            *images = true;
        }
        self
    }

    /// Declares that a [`Capability::StepExecutor`] resolves its steps' images to ids
    /// (`resolves_images`; other kinds are returned unchanged).
    pub fn with_resolved_images(mut self) -> Self {
        if let Capability::StepExecutor { resolves_images, .. } = &mut self {
            *resolves_images = true;
        }
        self
    }

    /// Declares that a [`Capability::StepExecutor`] opens interactive sessions
    /// (`sessions`, ABI 1.1; other kinds are returned unchanged). Implement
    /// [`Plugin::sessions`](crate::Plugin::sessions) too.
    pub fn with_sessions(mut self) -> Self {
        if let Capability::StepExecutor { sessions, .. } = &mut self {
            *sessions = true;
        }
        self
    }

    /// Declares one `runner_args` key of a [`Capability::StepExecutor`]; once one is
    /// declared, hm refuses keys that are not (other kinds are returned unchanged).
    pub fn with_runner_arg(mut self, spec: RunnerArgSpec) -> Self {
        if let Capability::StepExecutor { runner_args, .. } = &mut self {
            runner_args.get_or_insert_with(Vec::new).push(spec);
        }
        self
    }

    /// A lifecycle hook in `phase` for every event but `step_log`, with the default timeout.
    pub fn lifecycle_hook(phase: Phase) -> Self {
        Capability::LifecycleHook { phase, events: Vec::new(), timeout_ms: DEFAULT_HOOK_TIMEOUT_MS }
    }

    /// A lifecycle hook in `phase` for the listed event kinds (e.g. `"build_started"`).
    pub fn lifecycle_hook_for<S: Into<String>>(
        phase: Phase,
        events: impl IntoIterator<Item = S>,
        timeout_ms: u64,
    ) -> Self {
        Capability::LifecycleHook { phase, events: events.into_iter().map(Into::into).collect(), timeout_ms }
    }

    /// A subcommand `hm <verb...>` with no arguments yet (add them with [`Capability::with_arg`]).
    pub fn subcommand<S: Into<String>>(verb: impl IntoIterator<Item = S>, summary: impl Into<String>) -> Self {
        Capability::Subcommand {
            verb: verb.into_iter().map(Into::into).collect(),
            summary: summary.into(),
            args: Vec::new(),
        }
    }

    /// Appends an argument to a [`Capability::Subcommand`] (other kinds are returned unchanged).
    pub fn with_arg(mut self, arg: ArgSpec) -> Self {
        if let Capability::Subcommand { args, .. } = &mut self {
            args.push(arg);
        }
        self
    }

    /// The wire tag: `"step_executor"`, `"lifecycle_hook"` or `"subcommand"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Capability::StepExecutor { .. } => "step_executor",
            Capability::LifecycleHook { .. } => "lifecycle_hook",
            Capability::Subcommand { .. } => "subcommand",
        }
    }
}

impl FromValue for Capability {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        let kind: String = f.required("kind")?;
        match kind.as_str() {
            "step_executor" => Ok(Capability::StepExecutor {
                runners: f.required("runners")?,
                default: f.or("default", false)?,
                images: f.or("images", false)?,
                runner_args: f.optional("runner_args")?,
                resolves_images: f.or("resolves_images", false)?,
                sessions: f.or("sessions", false)?,
            }),
            "lifecycle_hook" => Ok(Capability::LifecycleHook {
                phase: f.required("phase")?,
                events: f.or_default("events")?,
                timeout_ms: f.or("timeout_ms", DEFAULT_HOOK_TIMEOUT_MS)?,
            }),
            "subcommand" => Ok(Capability::Subcommand {
                verb: f.required("verb")?,
                summary: f.or_default("summary")?,
                args: f.or_default("args")?,
            }),
            other => Err(DecodeError::schema(format!(
                "unknown capability kind {other:?} (expected step_executor, lifecycle_hook or subcommand)"
            ))
            .within("kind")),
        }
    }
}

impl Encode for Capability {
    fn encode(&self, w: &mut Writer) {
        let mut m = MapBuilder::new();
        m.field("kind", self.kind());
        match self {
            Capability::StepExecutor { runners, default, images, runner_args, resolves_images, sessions } => {
                m.field("runners", runners)
                    .field_unless(!default, "default", default)
                    .field_unless(!images, "images", images)
                    .field_some("runner_args", runner_args)
                    .field_unless(!resolves_images, "resolves_images", resolves_images)
                    .field_unless(!sessions, "sessions", sessions);
            }
            Capability::LifecycleHook { phase, events, timeout_ms } => {
                m.field("phase", phase)
                    .field_unless(events.is_empty(), "events", events)
                    .field_unless(*timeout_ms == DEFAULT_HOOK_TIMEOUT_MS, "timeout_ms", timeout_ms);
            }
            Capability::Subcommand { verb, summary, args } => {
                m.field("verb", verb)
                    .field_unless(summary.is_empty(), "summary", summary)
                    .field_unless(args.is_empty(), "args", args);
            }
        }
        m.finish(w);
    }
}

string_enum! {
    /// How an argument is written on the command line.
    pub enum ArgKind {
        /// `"positional"`: `hm verb VALUE` (the default).
        Positional = "positional",
        /// `"option"`: `hm verb --name VALUE`.
        Option = "option",
        /// `"flag"`: `hm verb --name` (a bool).
        Flag = "flag",
    }
}

string_enum! {
    /// The type hm parses an argument as.
    pub enum ArgType {
        /// `"string"` (the default).
        String = "string",
        /// `"int"`.
        Int = "int",
        /// `"bool"`.
        Bool = "bool",
    }
}

/// One argument of a subcommand; hm parses and validates it before calling the plugin.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ArgSpec {
    /// The argument's name: a lowercase identifier; also its key in [`SubcommandInput::args`](crate::SubcommandInput::args).
    pub name: String,
    /// Positional, option or flag. Default positional.
    pub kind: ArgKind,
    /// String, int or bool (`"type"` on the wire). Default string.
    pub ty: ArgType,
    /// hm refuses the command line without it. Default `false`.
    pub required: bool,
    /// The value when not given. `None` (the default) leaves it out of the manifest.
    pub default: Option<ArgValue>,
    /// One line for `--help`. Default `""`.
    pub help: String,
}

impl ArgSpec {
    fn new(name: impl Into<String>, kind: ArgKind, ty: ArgType) -> Self {
        ArgSpec { name: name.into(), kind, ty, required: false, default: None, help: String::new() }
    }

    /// A positional string argument.
    pub fn positional(name: impl Into<String>) -> Self {
        Self::new(name, ArgKind::Positional, ArgType::String)
    }

    /// An option `--name VALUE` of type `ty`.
    pub fn option(name: impl Into<String>, ty: ArgType) -> Self {
        Self::new(name, ArgKind::Option, ty)
    }

    /// A flag `--name` (type bool).
    pub fn flag(name: impl Into<String>) -> Self {
        Self::new(name, ArgKind::Flag, ArgType::Bool)
    }

    /// Sets the type.
    pub fn with_type(mut self, ty: ArgType) -> Self {
        self.ty = ty;
        self
    }

    /// Makes the argument required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the default value.
    pub fn with_default(mut self, value: impl Into<ArgValue>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Sets the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }
}

impl FromValue for ArgSpec {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(ArgSpec {
            name: f.required("name")?,
            kind: f.or("kind", ArgKind::Positional)?,
            ty: f.or("type", ArgType::String)?,
            required: f.or("required", false)?,
            // nil means "no default", as in msgspec where None is the field's default.
            default: match f.optional::<ArgValue>("default")? {
                Some(ArgValue::Nil) | None => None,
                Some(v) => Some(v),
            },
            help: f.or_default("help")?,
        })
    }
}

impl Encode for ArgSpec {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("name", &self.name)
            .field_unless(self.kind == ArgKind::Positional, "kind", &self.kind)
            .field_unless(self.ty == ArgType::String, "type", &self.ty)
            .field_unless(!self.required, "required", &self.required)
            .field_some("default", &self.default)
            .field_unless(self.help.is_empty(), "help", &self.help)
            .finish(w);
    }
}

string_enum! {
    /// A value type a `runner_args` key accepts.
    pub enum RunnerArgType {
        /// `"string"`.
        String = "string",
        /// `"int"`.
        Int = "int",
        /// `"number"`: an int or a float.
        Number = "number",
        /// `"bool"`.
        Bool = "bool",
    }
}

/// One `runner_args` key a step executor takes; hm checks pipelines against it before a run starts.
///
/// ```
/// use hm_plugin_sdk::{Capability, RunnerArgSpec, RunnerArgType};
///
/// let cap = Capability::step_executor(["vm"]).with_images().with_runner_arg(
///     RunnerArgSpec::new("network", [RunnerArgType::String]).with_choices(["none", "host"]),
/// );
/// assert_eq!(cap.kind(), "step_executor");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunnerArgSpec {
    /// The key in `runner_args`.
    pub name: String,
    /// The types accepted; at least one.
    pub types: Vec<RunnerArgType>,
    /// For a string: the only values allowed (empty: any). Default empty.
    pub choices: Vec<String>,
    /// For a string: a regular expression (Python `re` syntax) the whole value must match.
    pub pattern: Option<String>,
    /// One line for messages and `hm plugin info`. Default `""`.
    pub help: String,
}

impl RunnerArgSpec {
    /// A key `name` accepting `types`.
    pub fn new(name: impl Into<String>, types: impl IntoIterator<Item = RunnerArgType>) -> Self {
        RunnerArgSpec {
            name: name.into(),
            types: types.into_iter().collect(),
            choices: Vec::new(),
            pattern: None,
            help: String::new(),
        }
    }

    /// Sets the allowed string values.
    pub fn with_choices<S: Into<String>>(mut self, choices: impl IntoIterator<Item = S>) -> Self {
        self.choices = choices.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the pattern a string value must match.
    pub fn with_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// Sets the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }
}

impl FromValue for RunnerArgSpec {
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        let mut f = Fields::new(v)?;
        Ok(RunnerArgSpec {
            name: f.required("name")?,
            types: f.required("types")?,
            choices: f.or_default("choices")?,
            pattern: f.optional("pattern")?,
            help: f.or_default("help")?,
        })
    }
}

impl Encode for RunnerArgSpec {
    fn encode(&self, w: &mut Writer) {
        MapBuilder::new()
            .field("name", &self.name)
            .field("types", &self.types)
            .field_unless(self.choices.is_empty(), "choices", &self.choices)
            .field_some("pattern", &self.pattern)
            .field_unless(self.help.is_empty(), "help", &self.help)
            .finish(w);
    }
}
