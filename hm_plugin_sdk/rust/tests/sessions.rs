//! ABI 1.1 sessions through the crate: `SessionRunner` exported by `hm_plugin!`,
//! driven through the vtable as hm does (open on one thread, control from another).

// The mock's CallError is as large as the PluginError it carries; only these
// closures (thread bodies) return it, so boxing it would serve nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, mpsc};

use hm_plugin_sdk::sys::CallHandle;
use hm_plugin_sdk::testing::MockHost;
use hm_plugin_sdk::{
    Capability, ExitInfo, Plugin, PluginContext, PluginError, PluginManifest, SessionRunner, SessionSpec, Status,
    StepSpec, hm_plugin,
};

/// A "terminal" that echoes what is typed and ends on "exit N".
#[derive(Default)]
struct Echo {
    typed: Mutex<HashMap<CallHandle, Vec<u8>>>,
    wake: Condvar,
}

impl Plugin for Echo {
    fn manifest(&self) -> PluginManifest {
        PluginManifest::new("echo-sessions", "1.0.0").with_capability(Capability::step_executor(["echo"]).with_sessions())
    }
    fn sessions(&self) -> Option<&dyn SessionRunner> {
        Some(self)
    }
}

impl SessionRunner for Echo {
    fn open_session(&self, ctx: &PluginContext<'_>, spec: SessionSpec) -> Result<ExitInfo, PluginError> {
        let me = ctx.call_handle();
        ctx.session_output(format!("{}x{} in {}\n", spec.rows, spec.cols, spec.workspace).as_bytes())?;
        let mut typed = self.typed.lock().unwrap();
        typed.insert(me, Vec::new());
        loop {
            let line = typed.get(&me).cloned().unwrap_or_default();
            if let Some(code) = std::str::from_utf8(&line).ok().and_then(|s| s.strip_prefix("exit ")) {
                typed.remove(&me);
                return Ok(ExitInfo::exit(code.trim().parse().unwrap_or(1)));
            }
            typed = self.wake.wait(typed).unwrap();
        }
    }
    fn write(&self, session: CallHandle, data: &[u8]) -> Result<(), Status> {
        let mut typed = self.typed.lock().unwrap();
        let buf = typed.get_mut(&session).ok_or(Status::StaleCall)?;
        buf.extend_from_slice(data);
        self.wake.notify_all();
        Ok(())
    }
    fn resize(&self, session: CallHandle, _rows: u16, _cols: u16) -> Result<(), Status> {
        self.typed.lock().unwrap().get(&session).map(|_| ()).ok_or(Status::StaleCall)
    }
    fn signal(&self, _session: CallHandle, _signal: i32) -> Result<(), Status> {
        Err(Status::Unsupported)
    }
    fn close(&self, session: CallHandle) -> Result<(), Status> {
        self.write(session, b"exit 129")
    }
}

hm_plugin!(Echo);

#[test]
fn a_session_opens_streams_takes_input_and_ends_with_its_code() {
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    let manifest = plugin.manifest().unwrap();
    assert!(matches!(&manifest.capabilities[0], Capability::StepExecutor { sessions: true, .. }));
    let mut spec = SessionSpec::new("r1", StepSpec::new("a", "x"), "/ws");
    spec.rows = 30;
    spec.cols = 100;
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let opened = s.spawn(|| plugin.session_open(&spec, |h| tx.send(h).unwrap()));
        let session = rx.recv().unwrap();
        // before the runner registered it, a handle is not (yet) a session: hm retries then
        while plugin.session_resize(session, 40, 120) == Status::StaleCall.code() {
            std::thread::yield_now();
        }
        assert_eq!(plugin.session_resize(session, 0, 120), Status::InvalidArgument.code());
        assert_eq!(plugin.session_write(session, b"exit 4"), 0);
        assert_eq!(opened.join().unwrap().unwrap().exit_code, 4);
        assert_eq!(plugin.session_write(session, b"late"), Status::StaleCall.code());
    });
    assert_eq!(host.session_output(), b"30x100 in /ws\n");
}

#[test]
fn session_close_ends_it_and_an_older_host_table_makes_output_unavailable() {
    let host = MockHost::new().with_table(std::mem::offset_of!(hm_plugin_sdk::sys::HostApi, kv_compare_and_swap) as u32, 0);
    let plugin = host.load(hm_load_plugin).unwrap();
    let spec = SessionSpec::new("r1", StepSpec::new("a", "x"), "/ws");
    let err = plugin.session_open(&spec, |_| {}).unwrap_err();
    assert!(err.to_string().contains("host_function_unavailable"), "{err}");
    let host = MockHost::new();
    let plugin = host.load(hm_load_plugin).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let opened = s.spawn(|| plugin.session_open(&spec, |h| tx.send(h).unwrap()));
        let session = rx.recv().unwrap();
        while plugin.session_close(session) == Status::StaleCall.code() {
            std::thread::yield_now();
        }
        assert_eq!(opened.join().unwrap().unwrap().exit_code, 129);
    });
}
