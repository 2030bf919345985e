//! The exported `hm_load_plugin` and vtable, driven through `testing::MockHost`
//! the way hm drives them: load checks, every capability, invalid input, errors,
//! panics, host functions (including ones an older host lacks), stale handles,
//! threads, and `free`/`destroy`.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use hm_plugin_sdk::sys::{self, AbiHeader, HostApi};
use hm_plugin_sdk::testing::{CallKind, MockHost, Op};
use hm_plugin_sdk::*;

static DESTROYED: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
struct Probe;

impl Drop for Probe {
    fn drop(&mut self) {
        DESTROYED.fetch_add(1, Ordering::SeqCst);
    }
}

impl Plugin for Probe {
    fn manifest(&self) -> PluginManifest {
        PluginManifest::new("probe", "1.0.0")
            .with_capability(Capability::step_executor(["probe"]))
            .with_capability(Capability::lifecycle_hook(Phase::Before))
            .with_capability(Capability::subcommand(["probe"], "Probe"))
    }
    fn step_executor(&self) -> Option<&dyn StepExecutor> {
        Some(self)
    }
    fn lifecycle_hook(&self) -> Option<&dyn LifecycleHook> {
        Some(self)
    }
    fn subcommand(&self) -> Option<&dyn Subcommand> {
        Some(self)
    }
}

impl StepExecutor for Probe {
    fn execute_step(&self, ctx: &PluginContext<'_>, input: ExecutorInput) -> Result<StepResult, PluginError> {
        match input.step.cmd.as_str() {
            "panic" => panic!("deliberate panic for testing"),
            "panic-string" => panic!("formatted {}", 42),
            "panic-any" => std::panic::panic_any(7u32),
            "fail" => Err(PluginError::new("nope", "it failed").with_suggestion("try again")),
            "threads" => {
                std::thread::scope(|s| {
                    for t in 0..8 {
                        s.spawn(move || {
                            for n in 0..1000 {
                                ctx.emit_step_log(Stream::Stdout, format!("thread {t} line {n}\n").as_bytes())
                                    .unwrap();
                            }
                        });
                    }
                });
                Ok(StepResult::success())
            }
            "kv" => {
                assert_eq!(ctx.kv_get(KvScope::Step, "k")?, None);
                ctx.kv_set(KvScope::Step, "k", b"v1")?;
                let got = ctx.kv_get(KvScope::Step, "k")?.unwrap();
                ctx.kv_set(KvScope::Plugin, "empty", b"")?;
                let empty = ctx.kv_get(KvScope::Plugin, "empty")?;
                Ok(StepResult::success().with_message(format!("{} {:?}", String::from_utf8_lossy(&got), empty)))
            }
            "archive" => {
                let size = ctx.archive_total_size()?;
                let mut all = Vec::new();
                ctx.archive().read_to_end(&mut all)?;
                let mut small = [0u8; 3];
                let n = ctx.archive_read(size - 2, &mut small)?;
                Ok(StepResult::success().with_message(format!(
                    "{size} {} {:?}",
                    String::from_utf8_lossy(&all),
                    &small[..n]
                )))
            }
            "event" => {
                ctx.emit_event(&PluginEvent::new("hello").with("n", 1i64))?;
                ctx.info("logged");
                ctx.log(LogLevel::Warning, "careful")?;
                Ok(StepResult::success())
            }
            "cancel" => Ok(if ctx.should_cancel() { StepResult::cancelled() } else { StepResult::success() }),
            "host-minor" => {
                // Used with a host table that ends before `archive_read`.
                let err = ctx.archive_read(0, &mut [0u8; 4]).unwrap_err();
                let size = ctx.archive_total_size().unwrap_err();
                ctx.kv_set(KvScope::Step, "still", b"works")?;
                Ok(StepResult::success().with_message(format!("{err:?} | {size:?} | {err}")))
            }
            other => Ok(StepResult::exit(other.len() as i64)),
        }
    }
}

impl LifecycleHook for Probe {
    fn on_hook_event(&self, ctx: &PluginContext<'_>, event: HookEvent) -> Result<HookOutcome, PluginError> {
        ctx.kv_set(KvScope::Build, "seen", event.event.kind())?;
        Ok(match &event.event {
            BuildEvent::BuildStarted(_) => HookOutcome::abort("no builds today"),
            _ => HookOutcome::Continue,
        })
    }
}

impl Subcommand for Probe {
    fn run_subcommand(&self, ctx: &PluginContext<'_>, input: SubcommandInput) -> Result<ExitInfo, PluginError> {
        if input.flag("panic") {
            panic!("subcommand panic");
        }
        ctx.write_stdout(b"out\n")?;
        ctx.write_stderr(b"err\n")?;
        let build = ctx.kv_set(KvScope::Build, "k", b"v").unwrap_err();
        let step_log = ctx.emit_step_log(Stream::Stdout, b"x").unwrap_err();
        let config = ctx.fs_read_config("settings.toml")?;
        let denied = ctx.fs_read_config("../secret").unwrap_err();
        let missing = ctx.fs_read_config("missing").unwrap_err();
        Ok(ExitInfo::exit(3).with_message(format!(
            "{} | {} | {} | {} | {}",
            build,
            step_log,
            String::from_utf8_lossy(&config),
            denied.status().unwrap().name(),
            missing.status().unwrap().name()
        )))
    }
}

hm_plugin!(Probe);

fn step(cmd: &str) -> ExecutorInput {
    ExecutorInput::new("run-1", StepSpec::new("a", cmd), "/tmp/ws")
}

#[test]
fn loads_and_reports_its_manifest() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    let m = plugin.manifest().unwrap();
    assert_eq!((m.name.as_str(), m.version.as_str(), m.capabilities.len()), ("probe", "1.0.0", 3));
}

#[test]
fn vtable_header_and_entries() {
    let host = MockHost::new();
    let mut instance = std::ptr::null_mut();
    // SAFETY: a valid host table and out-pointer.
    let vt = unsafe { &*hm_load_plugin(host.host_api(), &mut instance) };
    assert_eq!(vt.header, AbiHeader { struct_size: 104, abi_major: 1, abi_minor: 1 });
    assert!(vt.manifest.is_some() && vt.free.is_some() && vt.destroy.is_some());
    assert!(vt.execute_step.is_some() && vt.on_hook_event.is_some() && vt.run_subcommand.is_some());
    assert!(!instance.is_null());
    // SAFETY: the instance's one and only destroy.
    unsafe { vt.destroy.unwrap()(instance) };
}

#[test]
fn refuses_foreign_major_tiny_tables_and_null_pointers() {
    let host = MockHost::new();
    // SAFETY: reading our own table.
    let mut table: HostApi = unsafe { *host.host_api() };
    let mut instance = std::ptr::null_mut();
    table.header.abi_major = 2;
    // SAFETY: valid pointers; the plugin must refuse.
    assert!(unsafe { hm_load_plugin(&table, &mut instance) }.is_null());
    table.header.abi_major = 1;
    table.header.struct_size = 8;
    // SAFETY: as above.
    assert!(unsafe { hm_load_plugin(&table, &mut instance) }.is_null());
    // SAFETY: null pointers are part of the contract.
    assert!(unsafe { hm_load_plugin(std::ptr::null(), &mut instance) }.is_null());
    // SAFETY: as above.
    assert!(unsafe { hm_load_plugin(host.host_api(), std::ptr::null_mut()) }.is_null());
    assert!(instance.is_null());
}

#[test]
fn executes_steps_and_returns_errors_as_data() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    assert_eq!(plugin.execute_step(&step("abcd")).unwrap(), StepResult::exit(4));
    let err = plugin.execute_step(&step("fail")).unwrap_err();
    assert_eq!(err.status(), Some(Status::Failed));
    assert_eq!(err.plugin_error(), Some(&PluginError::new("nope", "it failed").with_suggestion("try again")));
}

#[test]
fn malformed_input_is_invalid_argument_naming_the_field() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    for (input, want) in [
        (&b"\xc1"[..], "malformed msgpack: reserved marker 0xc1 at byte 0"),
        (b"\x80", "ExecutorInput: missing required field `run_id`"),
        (
            b"\x83\xa6run_id\xa1r\xa9workspace\xa2/w\xa4step\x81\xa3key\xa1k",
            "ExecutorInput.step: missing required field `cmd`",
        ),
        (b"", "malformed msgpack: input ends in the middle of a value (at byte 0)"),
    ] {
        let (status, out) = plugin.call_raw(Op::ExecuteStep, input);
        assert_eq!(status, sys::ERR_INVALID_ARGUMENT);
        let err = PluginError::from_msgpack(&out).unwrap();
        assert_eq!((err.code.as_str(), err.message.as_str()), ("invalid_input", want));
    }
}

#[test]
fn panics_become_panic_errors() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    for (cmd, message) in [
        ("panic", "deliberate panic for testing"),
        ("panic-string", "formatted 42"),
        ("panic-any", "a panic with a payload that is not a string"),
    ] {
        let err = plugin.execute_step(&step(cmd)).unwrap_err();
        assert_eq!(err.status(), Some(Status::Failed));
        let e = err.plugin_error().unwrap();
        assert_eq!((e.code.as_str(), e.message.as_str()), ("panic", message));
        let title = e.title.as_deref().unwrap();
        assert!(title.starts_with("the plugin panicked at tests/vtable.rs:"), "{title}");
    }
    let err = plugin.run_subcommand(&SubcommandInput::new(["probe"]).with_arg("panic", true)).unwrap_err();
    assert_eq!(err.plugin_error().unwrap().message, "subcommand panic");
    // The instance is still usable after a panic.
    assert_eq!(plugin.execute_step(&step("ok")).unwrap(), StepResult::exit(2));
}

#[test]
fn hooks_abort_and_continue() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    let started = HookEvent::new(Phase::Before, BuildEvent::BuildStarted(BuildStarted::new("r", "t", "p", 1)));
    assert_eq!(plugin.on_hook_event(&started).unwrap(), HookOutcome::abort("no builds today"));
    let queued = HookEvent::new(Phase::Before, BuildEvent::StepQueued(StepQueued::new("r", "t", "a")));
    assert_eq!(plugin.on_hook_event(&queued).unwrap(), HookOutcome::Continue);
    assert_eq!(host.kv(KvScope::Build, "seen").unwrap(), b"step_queued");
}

#[test]
fn subcommands_see_the_outside_of_a_run() {
    let host = MockHost::new().with_config("settings.toml", "x = 1");
    let plugin = host.load(hm_load_plugin).unwrap();
    let exit = plugin.run_subcommand(&SubcommandInput::new(["probe"])).unwrap();
    assert_eq!(exit.exit_code, 3);
    assert_eq!(
        exit.message.unwrap(),
        "host function `kv_set` returned HM_ERR_UNAVAILABLE (9) | host function `emit_step_log` returned \
         HM_ERR_UNAVAILABLE (9) | x = 1 | HM_ERR_DENIED | HM_ERR_NOT_FOUND"
    );
    assert_eq!(host.stdout(), b"out\n");
    assert_eq!(host.stderr(), b"err\n");
}

#[test]
fn key_value_round_trip() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    let r = plugin.execute_step(&step("kv")).unwrap();
    assert_eq!(r.message.as_deref(), Some("v1 Some([])"));
    assert_eq!(host.kv(KvScope::Step, "k").unwrap(), b"v1");
}

#[test]
fn archive_reads() {
    let host = MockHost::new().with_archive(&b"0123456789"[..]);
    let plugin = host.load(hm_load_plugin).unwrap();
    let r = plugin.execute_step(&step("archive")).unwrap();
    assert_eq!(r.message.as_deref(), Some("10 0123456789 [56, 57]"));
}

#[test]
fn events_and_logs() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    plugin.execute_step(&step("event")).unwrap();
    assert_eq!(host.events(), vec![PluginEvent::new("hello").with("n", 1i64)]);
    assert_eq!(host.logs(), vec![(LogLevel::Info, "logged".to_owned()), (LogLevel::Warning, "careful".to_owned())]);
}

#[test]
fn cancellation_and_stale_handles() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    assert_eq!(plugin.execute_step(&step("cancel")).unwrap(), StepResult::success());
    host.cancel();
    assert_eq!(plugin.execute_step(&step("cancel")).unwrap(), StepResult::cancelled());

    // A handle that is not (or no longer) running.
    // SAFETY: the mock's table outlives the context.
    let stale = unsafe { PluginContext::from_raw(host.host_api(), u64::MAX) }.unwrap();
    assert!(stale.should_cancel());
    let err = stale.log(LogLevel::Info, "late").unwrap_err();
    assert!(err.is_stale());
    assert_eq!(err.to_string(), "host function `log` returned HM_ERR_STALE_CALL (5)");
}

#[test]
fn an_older_host_gets_clear_errors_for_functions_it_lacks() {
    let end = std::mem::offset_of!(HostApi, archive_read) as u32;
    let host = MockHost::new().with_table(end, 0).with_archive(&b"abc"[..]);
    let plugin = host.load(hm_load_plugin).unwrap();
    let r = plugin.execute_step(&step("host-minor")).unwrap();
    assert_eq!(
        r.message.as_deref(),
        Some(
            "Unavailable { function: \"archive_read\", host_minor: 0 } | \
             Unavailable { function: \"archive_total_size\", host_minor: 0 } | \
             host function `archive_read` is not available: this hm provides plugin ABI 1.0 and the plugin \
             was built against 1.1"
        )
    );
    assert_eq!(host.kv(KvScope::Step, "still").unwrap(), b"works");

    // A table that ends before `free`: kv_get cannot release the host's copy, so it refuses.
    let end = std::mem::offset_of!(HostApi, free) as u32;
    let host = MockHost::new().with_table(end, 0);
    host.call(CallKind::Step, |ctx| {
        ctx.kv_set(KvScope::Step, "k", "v").unwrap();
        assert_eq!(
            ctx.kv_get(KvScope::Step, "k").unwrap_err(),
            HostError::Unavailable { function: "free", host_minor: 0 }
        );
    });
}

#[test]
fn contexts_are_shared_with_threads() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    plugin.execute_step(&step("threads")).unwrap();
    let out = String::from_utf8(host.step_output(Stream::Stdout)).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8000);
    for t in 0..8 {
        let mine: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with(&format!("thread {t} "))).collect();
        let want: Vec<String> = (0..1000).map(|n| format!("thread {t} line {n}")).collect();
        assert_eq!(mine, want, "thread {t}'s lines are whole and in order");
    }
}

#[test]
fn concurrent_calls_on_one_instance() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let plugin = &plugin;
            s.spawn(move || {
                for n in 0..200 {
                    let cmd = "x".repeat(t + n % 5);
                    assert_eq!(plugin.execute_step(&step(&cmd)).unwrap().exit_code, cmd.len() as i64);
                    assert_eq!(plugin.manifest().unwrap().name, "probe");
                }
            });
        }
    });
}

#[test]
fn destroy_drops_the_instance() {
    let before = DESTROYED.load(Ordering::SeqCst);
    {
        let host = MockHost::new();
        let _plugin = host.load(hm_load_plugin).unwrap();
    }
    assert!(DESTROYED.load(Ordering::SeqCst) > before);
}
