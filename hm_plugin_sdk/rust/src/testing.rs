//! A mock host for plugin tests: run a plugin through its real exported vtable
//! with `cargo test`, no hm needed.
//!
//! [`MockHost`] fills a host-API table whose functions record what the plugin
//! does (logs, step output, events, key-value writes, stdout/stderr) and answer
//! like hm does: BUILD/STEP key-value scopes, step logs and the archive only
//! during `execute_step` (BUILD also in hooks), stale handles after a call
//! returned, `HM_ERR_DENIED` for config paths outside `.hm/`. [`MockHost::load`]
//! calls a plugin's `hm_load_plugin` and returns a [`MockPlugin`] whose typed
//! methods encode the input, call the vtable, decode the output and release it
//! through the plugin's `free` — the round trip hm makes.
//!
//! ```
//! use hm_plugin_sdk::testing::MockHost;
//! use hm_plugin_sdk::*;
//!
//! #[derive(Default)]
//! struct Echo;
//! impl Plugin for Echo {
//!     fn manifest(&self) -> PluginManifest {
//!         PluginManifest::new("echo", "1.0.0").with_capability(Capability::step_executor(["echo"]))
//!     }
//!     fn step_executor(&self) -> Option<&dyn StepExecutor> {
//!         Some(self)
//!     }
//! }
//! impl StepExecutor for Echo {
//!     fn execute_step(&self, ctx: &PluginContext<'_>, input: ExecutorInput) -> Result<StepResult, PluginError> {
//!         ctx.emit_step_log(Stream::Stdout, format!("{}\n", input.step.cmd).as_bytes())?;
//!         Ok(StepResult::success())
//!     }
//! }
//! hm_plugin!(Echo);
//!
//! # fn main() {
//! let host = MockHost::new();
//! let plugin = host.load(hm_load_plugin).unwrap();
//! assert_eq!(plugin.manifest().unwrap().name, "echo");
//! let input = ExecutorInput::new("run-1", StepSpec::new("a", "hello"), "/tmp/ws");
//! assert_eq!(plugin.execute_step(&input).unwrap(), StepResult::success());
//! assert_eq!(host.step_output(Stream::Stdout), b"hello\n");
//! # }
//! ```

use core::ffi::c_void;
use core::fmt;
use core::mem::size_of;
use core::ptr;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::context::{KvScope, LogLevel, PluginContext, Status, Stream};
use crate::msgpack::DecodeError;
use crate::protocol::{
    ExecutorInput, ExitInfo, HookEvent, HookOutcome, Message, PluginError, PluginEvent, PluginManifest, StepResult,
    SessionSpec, SubcommandInput,
};
use crate::sys::{self, AbiHeader, Buf, CallHandle, HostApi, LoadPluginFn, PluginVtable, StatusCode};

/// Which vtable function a call serves; decides which host functions answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `manifest`: outside a run.
    Manifest,
    /// `execute_step`: inside a run, for one step.
    Step,
    /// `on_hook_event`: inside a run, no step.
    Hook,
    /// `run_subcommand`: outside a run.
    Subcommand,
    /// `session_open` (ABI 1.1): outside a run; `session_output` works.
    Session,
}

#[derive(Default)]
struct Recorded {
    logs: Vec<(i32, String)>,
    step_log: Vec<(Stream, Vec<u8>)>,
    events: Vec<PluginEvent>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    kv: HashMap<(i32, Vec<u8>), Vec<u8>>,
    session_output: Vec<u8>,
}

struct Shared {
    recorded: Mutex<Recorded>,
    cancel: AtomicBool,
    archive: Option<Vec<u8>>,
    config: Option<BTreeMap<String, Vec<u8>>>,
}

impl Shared {
    fn recorded(&self) -> MutexGuard<'_, Recorded> {
        // A panicking plugin thread may poison the lock; the records are still usable.
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone)]
struct Live {
    shared: Arc<Shared>,
    kind: CallKind,
}

fn live_calls() -> MutexGuard<'static, HashMap<CallHandle, Live>> {
    static LIVE: OnceLock<Mutex<HashMap<CallHandle, Live>>> = OnceLock::new();
    LIVE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

fn next_handle() -> CallHandle {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A host table and the records of what plugins did through it.
pub struct MockHost {
    table: Box<HostApi>,
    shared: Arc<Shared>,
}

impl fmt::Debug for MockHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockHost").field("header", &self.table.header).finish_non_exhaustive()
    }
}

impl Default for MockHost {
    fn default() -> Self {
        Self::new()
    }
}

/// The complete table of the mock, for this crate's ABI version.
fn full_table() -> HostApi {
    HostApi {
        header: AbiHeader {
            struct_size: size_of::<HostApi>() as u32,
            abi_major: sys::ABI_MAJOR,
            abi_minor: sys::ABI_MINOR,
        },
        host_data: ptr::null_mut(),
        log: Some(mock_log),
        kv_get: Some(mock_kv_get),
        kv_set: Some(mock_kv_set),
        emit_event: Some(mock_emit_event),
        emit_step_log: Some(mock_emit_step_log),
        should_cancel: Some(mock_should_cancel),
        write_stdout: Some(mock_write_stdout),
        write_stderr: Some(mock_write_stderr),
        archive_read: Some(mock_archive_read),
        archive_total_size: Some(mock_archive_total_size),
        fs_read_config: Some(mock_fs_read_config),
        free: Some(mock_free),
        kv_compare_and_swap: Some(mock_kv_compare_and_swap),
        session_output: Some(mock_session_output),
    }
}

impl MockHost {
    /// A host with the complete table of this crate's ABI version, no archive and no project.
    pub fn new() -> Self {
        MockHost {
            table: Box::new(full_table()),
            shared: Arc::new(Shared {
                recorded: Mutex::new(Recorded::default()),
                cancel: AtomicBool::new(false),
                archive: None,
                config: None,
            }),
        }
    }

    /// A host whose table claims `struct_size` bytes and minor version `abi_minor`,
    /// like an older hm: entries past `struct_size` are zeroed (as in hm's own
    /// conformance check), so a plugin that reads them anyway sees NULL.
    pub fn with_table(mut self, struct_size: u32, abi_minor: u32) -> Self {
        let full = size_of::<HostApi>();
        let keep = (struct_size as usize).min(full);
        let mut table = full_table();
        // SAFETY: `table` is a plain-old-data struct of `full` bytes; zeroing its bytes
        // from `keep` to the end makes the fn pointers there None (null) and touches
        // nothing else. `keep <= full`.
        unsafe { ptr::write_bytes((&raw mut table).cast::<u8>().add(keep), 0, full - keep) };
        table.header = AbiHeader { struct_size, abi_major: sys::ABI_MAJOR, abi_minor };
        self.table = Box::new(table);
        self
    }

    /// Gives the host a workspace archive (read by `archive_read` in steps).
    pub fn with_archive(mut self, archive: impl Into<Vec<u8>>) -> Self {
        self.shared_mut().archive = Some(archive.into());
        self
    }

    /// Gives the host a project whose `.hm/<path>` contains `contents`.
    pub fn with_config(mut self, path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        self.shared_mut().config.get_or_insert_with(BTreeMap::new).insert(path.into(), contents.into());
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared).expect("configure the MockHost before loading plugins or making calls")
    }

    /// The host table, for `hm_load_plugin` or [`PluginContext::from_raw`].
    pub fn host_api(&self) -> *const HostApi {
        &*self.table
    }

    /// From now on `should_cancel` answers `HM_CANCELLED`.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
    }

    /// Runs `f` with a context for a fresh call of `kind`; the handle is stale afterwards.
    pub fn call<R>(&self, kind: CallKind, f: impl FnOnce(&PluginContext<'_>) -> R) -> R {
        let handle = self.open(kind);
        let _close = CloseOnDrop(handle);
        // SAFETY: the table is owned by `self`, immutable and outlives the context
        // (the context is only lent to `f`); its header is accurate.
        let ctx = unsafe { PluginContext::from_raw(self.host_api(), handle) }.expect("the mock table has a header");
        f(&ctx)
    }

    fn open(&self, kind: CallKind) -> CallHandle {
        let handle = next_handle();
        live_calls().insert(handle, Live { shared: Arc::clone(&self.shared), kind });
        handle
    }

    /// Calls the plugin's entry point (its `hm_load_plugin`) with this host's table.
    pub fn load(&self, entry: LoadPluginFn) -> Result<MockPlugin<'_>, String> {
        let mut instance = ptr::null_mut();
        // SAFETY: the table lives as long as `self`, which the MockPlugin borrows;
        // `instance` is a valid out-pointer.
        let vtable = unsafe { entry(self.host_api(), &mut instance) };
        if vtable.is_null() {
            return Err("hm_load_plugin returned NULL: the plugin refused to load".to_owned());
        }
        // SAFETY: a non-null vtable from the entry point is valid until the process exits.
        let vt = unsafe { *vtable };
        if vt.header.abi_major != sys::ABI_MAJOR {
            return Err(format!("the plugin speaks ABI {}.{}", vt.header.abi_major, vt.header.abi_minor));
        }
        if (vt.header.struct_size as usize) < size_of::<PluginVtable>() {
            return Err(format!("the vtable's struct_size {} is too small", vt.header.struct_size));
        }
        if vt.manifest.is_none() || vt.free.is_none() || vt.destroy.is_none() {
            return Err("the vtable lacks manifest, free or destroy".to_owned());
        }
        Ok(MockPlugin { host: self, vtable: vt, instance })
    }

    /// Everything plugins sent with `session_output` (ABI 1.1), concatenated.
    pub fn session_output(&self) -> Vec<u8> {
        self.shared.recorded().session_output.clone()
    }

    /// Everything the plugin streamed to `stream` with `emit_step_log`, concatenated.
    pub fn step_output(&self, stream: Stream) -> Vec<u8> {
        let rec = self.shared.recorded();
        rec.step_log.iter().filter(|(s, _)| *s == stream).flat_map(|(_, d)| d.iter().copied()).collect()
    }

    /// The log messages, with their levels (unknown levels as `Info`).
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        let level = |l: i32| match l {
            sys::LOG_DEBUG => LogLevel::Debug,
            sys::LOG_WARNING => LogLevel::Warning,
            sys::LOG_ERROR => LogLevel::Error,
            _ => LogLevel::Info,
        };
        self.shared.recorded().logs.iter().map(|(l, m)| (level(*l), m.clone())).collect()
    }

    /// The events published with `emit_event`.
    pub fn events(&self) -> Vec<PluginEvent> {
        self.shared.recorded().events.clone()
    }

    /// What was written with `write_stdout`.
    pub fn stdout(&self) -> Vec<u8> {
        self.shared.recorded().stdout.clone()
    }

    /// What was written with `write_stderr`.
    pub fn stderr(&self) -> Vec<u8> {
        self.shared.recorded().stderr.clone()
    }

    /// The value stored under `key` in `scope` (the mock keeps one store per scope).
    pub fn kv(&self, scope: KvScope, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.shared.recorded().kv.get(&(scope as i32, key.as_ref().to_vec())).cloned()
    }
}

struct CloseOnDrop(CallHandle);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        live_calls().remove(&self.0);
    }
}

/// What a failed call through a [`MockPlugin`] returned.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// A non-OK status, with the `PluginError` the plugin attached (if it decodes).
    Status {
        /// The status.
        status: Status,
        /// The error report, when the output held one.
        error: Option<PluginError>,
    },
    /// `HM_OK` with an output that is not the expected message.
    Malformed(DecodeError),
}

impl CallError {
    /// The attached `PluginError`, if any.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            CallError::Status { error, .. } => error.as_ref(),
            CallError::Malformed(_) => None,
        }
    }

    /// The status (`None` for a malformed success).
    pub fn status(&self) -> Option<Status> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            CallError::Malformed(_) => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status { status, error: Some(e) } => write!(f, "{status}: {e}"),
            CallError::Status { status, error: None } => write!(f, "{status}"),
            CallError::Malformed(e) => write!(f, "malformed output: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A capability entry of the vtable, for [`MockPlugin::call_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `execute_step`.
    ExecuteStep,
    /// `on_hook_event`.
    OnHookEvent,
    /// `run_subcommand`.
    RunSubcommand,
}

/// A plugin loaded by a [`MockHost`]; destroyed when dropped.
pub struct MockPlugin<'h> {
    host: &'h MockHost,
    vtable: PluginVtable,
    instance: *mut c_void,
}

// SAFETY: the vtable's capability functions, `manifest` and `free` are [any-thread]
// by the ABI contract (hm calls them concurrently from several threads), and a Rust
// plugin's instance is `Send + Sync` (the `Plugin` trait requires it). `destroy` runs
// in `Drop`, which needs `&mut self`, so it never overlaps another call.
unsafe impl Send for MockPlugin<'_> {}
// SAFETY: see `Send`.
unsafe impl Sync for MockPlugin<'_> {}

impl fmt::Debug for MockPlugin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockPlugin").field("vtable", &self.vtable.header).finish_non_exhaustive()
    }
}

impl MockPlugin<'_> {
    /// Calls `manifest` and decodes the manifest.
    pub fn manifest(&self) -> Result<PluginManifest, CallError> {
        let handle = self.host.open(CallKind::Manifest);
        let _close = CloseOnDrop(handle);
        let manifest = self.vtable.manifest.expect("checked at load");
        let mut out = Buf::EMPTY;
        // SAFETY: vtable function of a loaded plugin with its own instance and a valid out-buffer.
        let status = unsafe { manifest(self.instance, handle, &mut out) };
        decode_reply(status, self.take(out))
    }

    /// Calls `execute_step` with `input`.
    pub fn execute_step(&self, input: &ExecutorInput) -> Result<StepResult, CallError> {
        let (status, out) = self.call_raw(Op::ExecuteStep, &input.to_msgpack());
        decode_reply(status, out)
    }

    /// Calls `on_hook_event` with `event`.
    pub fn on_hook_event(&self, event: &HookEvent) -> Result<HookOutcome, CallError> {
        let (status, out) = self.call_raw(Op::OnHookEvent, &event.to_msgpack());
        decode_reply(status, out)
    }

    /// Calls `run_subcommand` with `input`.
    pub fn run_subcommand(&self, input: &SubcommandInput) -> Result<ExitInfo, CallError> {
        let (status, out) = self.call_raw(Op::RunSubcommand, &input.to_msgpack());
        decode_reply(status, out)
    }

    /// Calls `session_open` (ABI 1.1) with `spec`; `started` gets the session's handle
    /// first (for [`session_write`](Self::session_write) and the others, from another
    /// thread) and the call blocks until the session ends. A NULL entry answers
    /// `HM_ERR_UNSUPPORTED`.
    pub fn session_open(&self, spec: &SessionSpec, started: impl FnOnce(CallHandle)) -> Result<ExitInfo, CallError> {
        let Some(f) = self.vtable.session_open else {
            return Err(CallError::Status { status: Status::Unsupported, error: None });
        };
        let input = spec.to_msgpack();
        let handle = self.host.open(CallKind::Session);
        let _close = CloseOnDrop(handle);
        started(handle);
        let mut out = Buf::EMPTY;
        // SAFETY: vtable function of a loaded plugin; `input` is lent for the call.
        let status = unsafe { f(self.instance, handle, input.as_ptr(), input.len(), &mut out) };
        decode_reply(status, self.take(out))
    }

    /// `session_write` of a running session; its status code.
    pub fn session_write(&self, session: CallHandle, data: &[u8]) -> StatusCode {
        // SAFETY: vtable function of a loaded plugin; `data` is lent for the call.
        self.vtable.session_write.map_or(sys::ERR_UNSUPPORTED, |f| unsafe {
            f(self.instance, session, data.as_ptr(), data.len())
        })
    }

    /// `session_resize` of a running session; its status code.
    pub fn session_resize(&self, session: CallHandle, rows: u16, cols: u16) -> StatusCode {
        // SAFETY: vtable function of a loaded plugin.
        self.vtable.session_resize.map_or(sys::ERR_UNSUPPORTED, |f| unsafe { f(self.instance, session, rows, cols) })
    }

    /// `session_close` of a running session; its status code.
    pub fn session_close(&self, session: CallHandle) -> StatusCode {
        // SAFETY: vtable function of a loaded plugin.
        self.vtable.session_close.map_or(sys::ERR_UNSUPPORTED, |f| unsafe { f(self.instance, session) })
    }

    /// Calls a capability with raw input bytes; returns the status and a copy of the
    /// output (released through the plugin's `free`). A NULL entry answers
    /// `HM_ERR_UNSUPPORTED`, as hm does.
    pub fn call_raw(&self, op: Op, input: &[u8]) -> (StatusCode, Vec<u8>) {
        let (f, kind) = match op {
            Op::ExecuteStep => (self.vtable.execute_step, CallKind::Step),
            Op::OnHookEvent => (self.vtable.on_hook_event, CallKind::Hook),
            Op::RunSubcommand => (self.vtable.run_subcommand, CallKind::Subcommand),
        };
        let Some(f) = f else { return (sys::ERR_UNSUPPORTED, Vec::new()) };
        let handle = self.host.open(kind);
        let _close = CloseOnDrop(handle);
        let mut out = Buf::EMPTY;
        // SAFETY: vtable function of a loaded plugin; `input` is lent for the call.
        let status = unsafe { f(self.instance, handle, input.as_ptr(), input.len(), &mut out) };
        (status, self.take(out))
    }

    /// Copies an output and releases it through the plugin's `free`.
    fn take(&self, out: Buf) -> Vec<u8> {
        if out.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the plugin returned `len` readable bytes at `ptr`, owned until released.
        let copy = unsafe { core::slice::from_raw_parts(out.ptr, out.len) }.to_vec();
        let free = self.vtable.free.expect("checked at load");
        // SAFETY: exactly the pointer and length the plugin returned, released once.
        unsafe { free(self.instance, out.ptr, out.len) };
        copy
    }
}

impl Drop for MockPlugin<'_> {
    fn drop(&mut self) {
        if let Some(destroy) = self.vtable.destroy {
            // SAFETY: the instance's last call; no other call can run (we have `&mut self`).
            unsafe { destroy(self.instance) };
        }
    }
}

fn decode_reply<M: Message>(status: StatusCode, out: Vec<u8>) -> Result<M, CallError> {
    match Status::from_code(status) {
        None => M::from_msgpack(&out).map_err(CallError::Malformed),
        Some(status) => Err(CallError::Status { status, error: PluginError::from_msgpack(&out).ok() }),
    }
}

// ---------------------------------------------------------------------------
// The mock's host functions. Each is called by a plugin through the table, with
// the pointer contract of hm_plugin.h: every (ptr, len) input is NULL with len 0
// or `len` readable bytes; every out-pointer is NULL or writable.

fn live(call: CallHandle) -> Result<Live, StatusCode> {
    live_calls().get(&call).cloned().ok_or(sys::ERR_STALE_CALL)
}

fn status(r: Result<(), StatusCode>) -> StatusCode {
    r.err().unwrap_or(sys::OK)
}

/// The bytes a plugin lent for a host call.
///
/// # Safety
///
/// When non-null, `ptr` must point to `len` readable bytes.
unsafe fn lent<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], StatusCode> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(sys::ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-null with `len` readable bytes, per this function's contract.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Hands `bytes` to the plugin in `*out`; released by [`mock_free`].
///
/// # Safety
///
/// `out` must be writable.
unsafe fn hand_over(bytes: Vec<u8>, out: *mut Buf) {
    let len = bytes.len();
    let ptr = if len == 0 { ptr::null_mut() } else { Box::into_raw(bytes.into_boxed_slice()).cast::<u8>() };
    // SAFETY: writable per this function's contract.
    unsafe { *out = Buf { ptr, len } };
}

fn kv_scope(call: &Live, scope: i32) -> Result<i32, StatusCode> {
    match scope {
        sys::KV_SCOPE_PLUGIN => Ok(scope),
        sys::KV_SCOPE_BUILD if matches!(call.kind, CallKind::Step | CallKind::Hook) => Ok(scope),
        sys::KV_SCOPE_STEP if call.kind == CallKind::Step => Ok(scope),
        sys::KV_SCOPE_BUILD | sys::KV_SCOPE_STEP => Err(sys::ERR_UNAVAILABLE),
        _ => Err(sys::ERR_INVALID_ARGUMENT),
    }
}

/// `log`.
///
/// # Safety
///
/// `msg` is NULL with `len` 0 or points to `len` readable bytes.
unsafe extern "C" fn mock_log(call: CallHandle, level: i32, msg: *const u8, len: usize) -> StatusCode {
    status((|| {
        let live = live(call)?;
        // SAFETY: the plugin lends `len` bytes at `msg` (this function's contract).
        let msg = unsafe { lent(msg, len) }?;
        live.shared.recorded().logs.push((level, String::from_utf8_lossy(msg).into_owned()));
        Ok(())
    })())
}

/// `kv_get`.
///
/// # Safety
///
/// `key` as for [`mock_log`]; `out` is NULL or writable.
unsafe extern "C" fn mock_kv_get(call: CallHandle, scope: i32, key: *const u8, len: usize, out: *mut Buf) -> StatusCode {
    status((|| {
        let live = live(call)?;
        let scope = kv_scope(&live, scope)?;
        // SAFETY: the plugin lends `len` bytes at `key` (this function's contract).
        let key = unsafe { lent(key, len) }?;
        if out.is_null() {
            return Err(sys::ERR_INVALID_ARGUMENT);
        }
        let value = live.shared.recorded().kv.get(&(scope, key.to_vec())).cloned().ok_or(sys::ERR_NOT_FOUND)?;
        // SAFETY: `out` is non-null and writable (this function's contract).
        unsafe { hand_over(value, out) };
        Ok(())
    })())
}

/// `kv_set`.
///
/// # Safety
///
/// `key` and `value` as for [`mock_log`].
unsafe extern "C" fn mock_kv_set(
    call: CallHandle,
    scope: i32,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) -> StatusCode {
    status((|| {
        let live = live(call)?;
        let scope = kv_scope(&live, scope)?;
        // SAFETY: the plugin lends the key and value bytes (this function's contract).
        let (key, value) = unsafe { (lent(key, key_len)?, lent(value, value_len)?) };
        live.shared.recorded().kv.insert((scope, key.to_vec()), value.to_vec());
        Ok(())
    })())
}

/// `kv_compare_and_swap` (1.1): compare and write under the records' lock, as one step.
///
/// # Safety
///
/// `key`, `expected` (null: absent) and `value` as for [`mock_kv_set`].
#[allow(clippy::too_many_arguments)] // the C signature
unsafe extern "C" fn mock_kv_compare_and_swap(
    call: CallHandle,
    scope: i32,
    key: *const u8,
    key_len: usize,
    expected: *const u8,
    expected_len: usize,
    value: *const u8,
    value_len: usize,
) -> StatusCode {
    status((|| {
        let live = live(call)?;
        let scope = kv_scope(&live, scope)?;
        // SAFETY: the plugin lends the key, expected and value bytes (this function's contract).
        let (key, value) = unsafe { (lent(key, key_len)?, lent(value, value_len)?) };
        let expected = if expected.is_null() {
            None
        } else {
            // SAFETY: as above; non-null.
            Some(unsafe { lent(expected, expected_len)? })
        };
        let mut rec = live.shared.recorded();
        let slot = (scope, key.to_vec());
        if rec.kv.get(&slot).map(Vec::as_slice) != expected {
            return Err(sys::ERR_CONFLICT);
        }
        rec.kv.insert(slot, value.to_vec());
        Ok(())
    })())
}

/// `session_output` (1.1): recorded during a [`CallKind::Session`] call, else UNAVAILABLE.
///
/// # Safety
///
/// `data` as for [`mock_log`].
unsafe extern "C" fn mock_session_output(call: CallHandle, data: *const u8, len: usize) -> StatusCode {
    status((|| {
        let live = live(call)?;
        if live.kind != CallKind::Session {
            return Err(sys::ERR_UNAVAILABLE);
        }
        // SAFETY: the plugin lends the bytes (this function's contract).
        let data = unsafe { lent(data, len)? };
        live.shared.recorded().session_output.extend_from_slice(data);
        Ok(())
    })())
}

/// `emit_event`.
///
/// # Safety
///
/// `msg` as for [`mock_log`].
unsafe extern "C" fn mock_emit_event(call: CallHandle, msg: *const u8, len: usize) -> StatusCode {
    status((|| {
        let live = live(call)?;
        // SAFETY: the plugin lends `len` bytes at `msg` (this function's contract).
        let msg = unsafe { lent(msg, len) }?;
        let event = PluginEvent::from_msgpack(msg).map_err(|_| sys::ERR_INVALID_ARGUMENT)?;
        live.shared.recorded().events.push(event);
        Ok(())
    })())
}

/// `emit_step_log`.
///
/// # Safety
///
/// `data` as for [`mock_log`].
unsafe extern "C" fn mock_emit_step_log(call: CallHandle, stream: i32, data: *const u8, len: usize) -> StatusCode {
    status((|| {
        let live = live(call)?;
        if live.kind != CallKind::Step {
            return Err(sys::ERR_UNAVAILABLE);
        }
        let stream = match stream {
            sys::STREAM_STDOUT => Stream::Stdout,
            sys::STREAM_STDERR => Stream::Stderr,
            _ => return Err(sys::ERR_INVALID_ARGUMENT),
        };
        // SAFETY: the plugin lends `len` bytes at `data` (this function's contract).
        let data = unsafe { lent(data, len) }?;
        live.shared.recorded().step_log.push((stream, data.to_vec()));
        Ok(())
    })())
}

/// `should_cancel`.
///
/// # Safety
///
/// None beyond the ABI's: it takes no pointer.
unsafe extern "C" fn mock_should_cancel(call: CallHandle) -> StatusCode {
    match live(call) {
        Err(code) => code,
        Ok(live) if live.shared.cancel.load(Ordering::SeqCst) => sys::CANCELLED,
        Ok(_) => sys::OK,
    }
}

/// `write_stdout` / `write_stderr`.
///
/// # Safety
///
/// `data` as for [`mock_log`].
unsafe fn write_to(call: CallHandle, data: *const u8, len: usize, stderr: bool) -> StatusCode {
    status((|| {
        let live = live(call)?;
        // SAFETY: the plugin lends `len` bytes at `data` (this function's contract).
        let data = unsafe { lent(data, len) }?;
        let mut rec = live.shared.recorded();
        if stderr { &mut rec.stderr } else { &mut rec.stdout }.extend_from_slice(data);
        Ok(())
    })())
}

/// `write_stdout`.
///
/// # Safety
///
/// `data` as for [`mock_log`].
unsafe extern "C" fn mock_write_stdout(call: CallHandle, data: *const u8, len: usize) -> StatusCode {
    // SAFETY: forwarded under this function's contract.
    unsafe { write_to(call, data, len, false) }
}

/// `write_stderr`.
///
/// # Safety
///
/// `data` as for [`mock_log`].
unsafe extern "C" fn mock_write_stderr(call: CallHandle, data: *const u8, len: usize) -> StatusCode {
    // SAFETY: forwarded under this function's contract.
    unsafe { write_to(call, data, len, true) }
}

fn archive(live: &Live) -> Result<&[u8], StatusCode> {
    match (&live.shared.archive, live.kind) {
        (Some(a), CallKind::Step) => Ok(a),
        _ => Err(sys::ERR_UNAVAILABLE),
    }
}

/// `archive_read`.
///
/// # Safety
///
/// `buf` is NULL with `cap` 0 or has `cap` writable bytes; `out_read` is NULL or writable.
unsafe extern "C" fn mock_archive_read(
    call: CallHandle,
    offset: u64,
    buf: *mut u8,
    cap: usize,
    out_read: *mut usize,
) -> StatusCode {
    status((|| {
        let live = live(call)?;
        let archive = archive(&live)?;
        if out_read.is_null() || (buf.is_null() && cap > 0) {
            return Err(sys::ERR_INVALID_ARGUMENT);
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(archive.len());
        let n = cap.min(archive.len() - start);
        // SAFETY: `buf` has `cap >= n` writable bytes and does not overlap the archive,
        // which the mock owns; `out_read` is non-null and writable (this function's contract).
        unsafe {
            if n > 0 {
                ptr::copy_nonoverlapping(archive.as_ptr().add(start), buf, n);
            }
            *out_read = n;
        }
        Ok(())
    })())
}

/// `archive_total_size`.
///
/// # Safety
///
/// `out_size` is NULL or writable.
unsafe extern "C" fn mock_archive_total_size(call: CallHandle, out_size: *mut u64) -> StatusCode {
    status((|| {
        let live = live(call)?;
        let archive = archive(&live)?;
        if out_size.is_null() {
            return Err(sys::ERR_INVALID_ARGUMENT);
        }
        // SAFETY: non-null and writable (this function's contract).
        unsafe { *out_size = archive.len() as u64 };
        Ok(())
    })())
}

/// `fs_read_config`.
///
/// # Safety
///
/// `path` as for [`mock_log`]; `out` is NULL or writable.
unsafe extern "C" fn mock_fs_read_config(call: CallHandle, path: *const u8, len: usize, out: *mut Buf) -> StatusCode {
    status((|| {
        let live = live(call)?;
        // SAFETY: the plugin lends `len` bytes at `path` (this function's contract).
        let path = unsafe { lent(path, len) }?;
        let path = core::str::from_utf8(path).map_err(|_| sys::ERR_INVALID_ARGUMENT)?;
        if out.is_null() {
            return Err(sys::ERR_INVALID_ARGUMENT);
        }
        let config = live.shared.config.as_ref().ok_or(sys::ERR_UNAVAILABLE)?;
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|part| part == "..") {
            return Err(sys::ERR_DENIED);
        }
        let contents = config.get(path).cloned().ok_or(sys::ERR_NOT_FOUND)?;
        // SAFETY: `out` is non-null and writable (this function's contract).
        unsafe { hand_over(contents, out) };
        Ok(())
    })())
}

/// `free`: releases what [`hand_over`] gave the plugin.
///
/// # Safety
///
/// `(ptr, len)` is NULL or exactly a buffer the mock handed over, released once.
unsafe extern "C" fn mock_free(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `(ptr, len)` was made by `hand_over` with `Box::<[u8]>::into_raw`
    // (this function's contract).
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, len)) });
}
