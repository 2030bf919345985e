//! The machinery behind [`hm_plugin!`](crate::hm_plugin): the vtable functions,
//! output allocation and panic containment. Not a public API (reached through
//! the hidden `__private` path); documented for reviewers.
//!
//! # Output allocation
//!
//! Every output is a `Vec<u8>` turned into a `Box<[u8]>` (exact capacity) and
//! handed over as `(ptr, len)` with `Box::into_raw`. The vtable's `free`
//! rebuilds the box from exactly that `(ptr, len)` (the header guarantees the
//! host passes it back unchanged, once) and drops it, so the plugin's own
//! global allocator allocates and releases, whatever allocator the host uses.
//! An empty output is `{NULL, 0}` and never reaches `free`.
//!
//! # Panics
//!
//! Every exported function runs the plugin's code under
//! [`std::panic::catch_unwind`]. A panic becomes status `HM_ERR_FAILED` with a
//! `PluginError {code: "panic", message: <the panic message>, title: "the
//! plugin panicked at <file:line:col>"}`; nothing unwinds into the host. While
//! a call runs, the panic hook installed at load keeps the panic off stderr
//! (the error report carries it) unless `RUST_BACKTRACE` is set; panics on
//! threads the plugin spawned itself go to the previous hook as usual. A panic
//! payload whose `Drop` panics is leaked rather than unwound. A plugin built
//! with `panic = "abort"` aborts the process instead: do not set it.
//!
//! # Unsupported capabilities
//!
//! The vtable always fills `execute_step`, `on_hook_event` and
//! `run_subcommand`; one whose [`Plugin`] accessor returns `None` answers
//! `HM_ERR_UNSUPPORTED` (checked before the input is decoded). This keeps one
//! static vtable per plugin type and lets the accessor decide at run time.

use core::any::Any;
use core::cell::{Cell, RefCell};
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::context::{PluginContext, Status};
use crate::plugin::{Plugin, SessionRunner};
use crate::protocol::{ExecutorInput, HookEvent, Message, PluginError, SessionSpec, SubcommandInput};
use crate::sys::{self, AbiHeader, Buf, CallHandle, HostApi, PluginVtable, StatusCode};

/// What the instance pointer handed to hm points to.
pub struct Instance<P> {
    host: *const HostApi,
    plugin: P,
}

/// The vtable of plugin type `P`; the macro stores it in a `static`.
pub const fn vtable<P: Plugin>() -> PluginVtable {
    PluginVtable {
        header: AbiHeader {
            struct_size: size_of::<PluginVtable>() as u32,
            abi_major: sys::ABI_MAJOR,
            abi_minor: sys::ABI_MINOR,
        },
        manifest: Some(manifest::<P>),
        execute_step: Some(execute_step::<P>),
        on_hook_event: Some(on_hook_event::<P>),
        run_subcommand: Some(run_subcommand::<P>),
        free: Some(free),
        destroy: Some(destroy::<P>),
        // Sessions (1.1): they answer HM_ERR_UNSUPPORTED unless `P::sessions()` is Some
        // (and hm only calls them when the manifest says `sessions`).
        session_open: Some(session_open::<P>),
        session_write: Some(session_write::<P>),
        session_resize: Some(session_resize::<P>),
        session_signal: Some(session_signal::<P>),
        session_close: Some(session_close::<P>),
    }
}

/// The body of `hm_load_plugin`: refuses a null or foreign-major host table (returns
/// null), creates the instance with `P::default()` and returns `vtable`.
///
/// # Safety
///
/// `host` must be null or a host table valid until the process exits, as
/// `hm_plugin.h` promises for `hm_load_plugin`; `out_instance` must be null or
/// writable. `vtable` must be [`vtable::<P>()`](vtable).
pub unsafe fn load<P: Plugin + Default>(
    host: *const HostApi,
    out_instance: *mut *mut c_void,
    vtable: &'static PluginVtable,
) -> *const PluginVtable {
    if host.is_null() || out_instance.is_null() {
        return ptr::null();
    }
    // SAFETY: `host` is a host table (caller's contract); every table starts with the header.
    let header = unsafe { host.cast::<AbiHeader>().read() };
    if header.abi_major != sys::ABI_MAJOR || (header.struct_size as usize) < size_of::<AbiHeader>() {
        return ptr::null();
    }
    install_panic_hook();
    // A panic in `P::default()` is not guarded: the previous hook prints it (there is
    // no call handle to log with) and the plugin refuses to load.
    match panic::catch_unwind(|| Box::new(Instance { host, plugin: P::default() })) {
        Ok(instance) => {
            // SAFETY: `out_instance` is writable (caller's contract, checked non-null).
            unsafe { *out_instance = Box::into_raw(instance).cast() };
            vtable
        }
        Err(payload) => {
            drop_payload(payload);
            ptr::null()
        }
    }
}

/// A status and the output bytes that go with it.
struct Reply {
    status: StatusCode,
    bytes: Vec<u8>,
}

impl Reply {
    fn ok<M: Message>(m: &M) -> Self {
        Reply { status: sys::OK, bytes: m.to_msgpack() }
    }

    fn error(status: StatusCode, e: &PluginError) -> Self {
        Reply { status, bytes: e.to_msgpack() }
    }

    fn from_result<M: Message>(r: Result<M, PluginError>) -> Self {
        match r {
            Ok(m) => Self::ok(&m),
            Err(e) => Self::error(sys::ERR_FAILED, &e),
        }
    }

    fn invalid(message: &str) -> Self {
        Self::error(sys::ERR_INVALID_ARGUMENT, &PluginError::invalid_input(message))
    }

    fn unsupported() -> Self {
        Reply { status: sys::ERR_UNSUPPORTED, bytes: Vec::new() }
    }
}

/// Moves `bytes` into an owned buffer that [`free`] releases.
fn into_buf(bytes: Vec<u8>) -> Buf {
    if bytes.is_empty() {
        return Buf::EMPTY;
    }
    let len = bytes.len();
    let ptr = Box::into_raw(bytes.into_boxed_slice()).cast::<u8>();
    Buf { ptr, len }
}

/// Runs `f` on the instance under `catch_unwind` and stores its reply in `*out`.
///
/// # Safety
///
/// `instance` must be null or the pointer [`load`] stored for this `P`, not yet
/// destroyed; `out` must be null or writable.
unsafe fn respond<P: Plugin>(
    instance: *mut c_void,
    call: CallHandle,
    out: *mut Buf,
    f: impl FnOnce(&P, &PluginContext<'_>) -> Reply,
) -> StatusCode {
    if out.is_null() {
        return sys::ERR_INVALID_ARGUMENT;
    }
    let reply = if instance.is_null() {
        Reply::invalid("the instance pointer is NULL")
    } else {
        // SAFETY: a live instance created by `load::<P>` (caller's contract); only
        // shared references are made, and `P: Sync` allows concurrent calls.
        let instance = unsafe { &*instance.cast::<Instance<P>>() };
        // SAFETY: `load` checked the table; hm keeps it valid until the process exits.
        match unsafe { PluginContext::from_raw(instance.host, call) } {
            None => Reply::invalid("the host table is unusable"),
            Some(ctx) => guarded(|| f(&instance.plugin, &ctx))
                .unwrap_or_else(|panicked| Reply::error(sys::ERR_FAILED, &panicked)),
        }
    };
    // SAFETY: `out` is writable (caller's contract, checked non-null).
    unsafe { *out = into_buf(reply.bytes) };
    reply.status
}

/// The input bytes, or `None` for a null pointer with a non-zero length.
///
/// # Safety
///
/// When non-null, `input` must point to `len` readable bytes that stay valid for `'a`.
unsafe fn input_slice<'a>(input: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if input.is_null() {
        return None;
    }
    // SAFETY: non-null and `len` readable bytes, borrowed for the call (caller's contract).
    Some(unsafe { core::slice::from_raw_parts(input, len) })
}

/// Decodes a capability's input; a malformed one is the `invalid_input` reply.
fn decode_input<M: Message>(input: Option<&[u8]>) -> Result<M, Reply> {
    let Some(bytes) = input else {
        return Err(Reply::invalid("the input pointer is NULL with a non-zero length"));
    };
    M::from_msgpack(bytes).map_err(|e| Reply::invalid(&e.to_string()))
}

/// `manifest` of the vtable.
///
/// # Safety
///
/// Called by the host as `hm_plugin.h` specifies (instance from `load::<P>`).
unsafe extern "C" fn manifest<P: Plugin>(instance: *mut c_void, call: CallHandle, out: *mut Buf) -> StatusCode {
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe { respond::<P>(instance, call, out, |plugin, _ctx| Reply::ok(&plugin.manifest())) }
}

/// `execute_step` of the vtable.
///
/// # Safety
///
/// Called by the host as `hm_plugin.h` specifies (instance from `load::<P>`,
/// `input_len` readable bytes at `input`).
unsafe extern "C" fn execute_step<P: Plugin>(
    instance: *mut c_void,
    call: CallHandle,
    input: *const u8,
    input_len: usize,
    out: *mut Buf,
) -> StatusCode {
    // SAFETY: the host lends the input for the duration of the call.
    let input = unsafe { input_slice(input, input_len) };
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe {
        respond::<P>(instance, call, out, |plugin, ctx| {
            let Some(executor) = plugin.step_executor() else { return Reply::unsupported() };
            match decode_input::<ExecutorInput>(input) {
                Ok(input) => Reply::from_result(executor.execute_step(ctx, input)),
                Err(reply) => reply,
            }
        })
    }
}

/// `session_open` of the vtable (ABI 1.1).
///
/// # Safety
///
/// As for [`execute_step`].
unsafe extern "C" fn session_open<P: Plugin>(
    instance: *mut c_void,
    call: CallHandle,
    input: *const u8,
    input_len: usize,
    out: *mut Buf,
) -> StatusCode {
    // SAFETY: the host lends the input for the duration of the call.
    let input = unsafe { input_slice(input, input_len) };
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe {
        respond::<P>(instance, call, out, |plugin, ctx| {
            let Some(sessions) = plugin.sessions() else { return Reply::unsupported() };
            match decode_input::<SessionSpec>(input) {
                Ok(spec) => Reply::from_result(sessions.open_session(ctx, spec)),
                Err(reply) => reply,
            }
        })
    }
}

/// Runs a session control entry on the instance's [`SessionRunner`] under `catch_unwind`.
///
/// # Safety
///
/// `instance` must be null or the pointer [`load`] stored for this `P`, not yet destroyed.
unsafe fn control<P: Plugin>(
    instance: *mut c_void,
    f: impl FnOnce(&dyn SessionRunner) -> Result<(), Status>,
) -> StatusCode {
    if instance.is_null() {
        return sys::ERR_INVALID_ARGUMENT;
    }
    // SAFETY: a live instance created by `load::<P>` (caller's contract); shared access only.
    let instance = unsafe { &*instance.cast::<Instance<P>>() };
    let Some(sessions) = instance.plugin.sessions() else { return sys::ERR_UNSUPPORTED };
    match panic::catch_unwind(AssertUnwindSafe(|| f(sessions))) {
        Ok(Ok(())) => sys::OK,
        Ok(Err(status)) => status.code(),
        Err(payload) => {
            drop_payload(payload);
            sys::ERR_INTERNAL
        }
    }
}

/// `session_write` of the vtable (ABI 1.1).
///
/// # Safety
///
/// Called by the host as `hm_plugin.h` specifies; `data` lends `len` bytes.
unsafe extern "C" fn session_write<P: Plugin>(
    instance: *mut c_void,
    session: CallHandle,
    data: *const u8,
    len: usize,
) -> StatusCode {
    // SAFETY: the host lends the bytes for the duration of the call.
    let Some(data) = (unsafe { input_slice(data, len) }) else { return sys::ERR_INVALID_ARGUMENT };
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe { control::<P>(instance, |s| s.write(session, data)) }
}

/// `session_resize` of the vtable (ABI 1.1).
///
/// # Safety
///
/// Called by the host as `hm_plugin.h` specifies.
unsafe extern "C" fn session_resize<P: Plugin>(
    instance: *mut c_void,
    session: CallHandle,
    rows: u16,
    cols: u16,
) -> StatusCode {
    if rows == 0 || cols == 0 {
        return sys::ERR_INVALID_ARGUMENT;
    }
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe { control::<P>(instance, |s| s.resize(session, rows, cols)) }
}

/// `session_signal` of the vtable (ABI 1.1).
///
/// # Safety
///
/// Called by the host as `hm_plugin.h` specifies.
unsafe extern "C" fn session_signal<P: Plugin>(instance: *mut c_void, session: CallHandle, signal: i32) -> StatusCode {
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe { control::<P>(instance, |s| s.signal(session, signal)) }
}

/// `session_close` of the vtable (ABI 1.1).
///
/// # Safety
///
/// Called by the host as `hm_plugin.h` specifies.
unsafe extern "C" fn session_close<P: Plugin>(instance: *mut c_void, session: CallHandle) -> StatusCode {
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe { control::<P>(instance, |s| s.close(session)) }
}

/// `on_hook_event` of the vtable.
///
/// # Safety
///
/// As for [`execute_step`].
unsafe extern "C" fn on_hook_event<P: Plugin>(
    instance: *mut c_void,
    call: CallHandle,
    input: *const u8,
    input_len: usize,
    out: *mut Buf,
) -> StatusCode {
    // SAFETY: the host lends the input for the duration of the call.
    let input = unsafe { input_slice(input, input_len) };
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe {
        respond::<P>(instance, call, out, |plugin, ctx| {
            let Some(hook) = plugin.lifecycle_hook() else { return Reply::unsupported() };
            match decode_input::<HookEvent>(input) {
                Ok(event) => Reply::from_result(hook.on_hook_event(ctx, event)),
                Err(reply) => reply,
            }
        })
    }
}

/// `run_subcommand` of the vtable.
///
/// # Safety
///
/// As for [`execute_step`].
unsafe extern "C" fn run_subcommand<P: Plugin>(
    instance: *mut c_void,
    call: CallHandle,
    input: *const u8,
    input_len: usize,
    out: *mut Buf,
) -> StatusCode {
    // SAFETY: the host lends the input for the duration of the call.
    let input = unsafe { input_slice(input, input_len) };
    // SAFETY: forwarded from the host, per this function's contract.
    unsafe {
        respond::<P>(instance, call, out, |plugin, ctx| {
            let Some(subcommand) = plugin.subcommand() else { return Reply::unsupported() };
            match decode_input::<SubcommandInput>(input) {
                Ok(input) => Reply::from_result(subcommand.run_subcommand(ctx, input)),
                Err(reply) => reply,
            }
        })
    }
}

/// `free` of the vtable: releases an output made by [`into_buf`].
///
/// # Safety
///
/// `(ptr, len)` must be exactly an output this plugin returned, released once.
unsafe extern "C" fn free(_instance: *mut c_void, ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `(ptr, len)` came from `Box::<[u8]>::into_raw` in `into_buf` (caller's
    // contract), so rebuilding the box gives back the same allocation, dropped once.
    let bytes = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, len)) };
    drop(bytes);
}

/// `destroy` of the vtable: drops the instance (a panic in its `Drop` is contained).
///
/// # Safety
///
/// `instance` must be null or the pointer `load::<P>` stored, destroyed once.
unsafe extern "C" fn destroy<P: Plugin>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: created by `Box::into_raw` in `load::<P>`, and this is its last use.
    let instance = unsafe { Box::from_raw(instance.cast::<Instance<P>>()) };
    // A panicking Drop has nobody to report to: contain it and move on.
    let _ = guarded(move || drop(instance));
}

thread_local! {
    /// How many guarded calls are running on this thread (the panic hook stays quiet inside).
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where the last guarded panic on this thread happened.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that records the location of panics
/// inside guarded calls instead of printing them, and defers to the previous hook
/// otherwise (or when `RUST_BACKTRACE` is set).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let guarded = GUARD_DEPTH.try_with(|d| d.get() > 0).unwrap_or(false);
            if guarded {
                let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                let _ = PANIC_LOCATION.try_with(|slot| slot.try_borrow_mut().map(|mut s| *s = location));
                if std::env::var_os("RUST_BACKTRACE").is_none() {
                    return;
                }
            }
            previous(info);
        }));
    });
}

struct DepthGuard;

impl DepthGuard {
    fn enter() -> Self {
        let _ = GUARD_DEPTH.try_with(|d| d.set(d.get() + 1));
        DepthGuard
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        let _ = GUARD_DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs `f`, turning a panic into the `panic` PluginError.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, PluginError> {
    let _depth = DepthGuard::enter();
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(panic_error)
}

/// The PluginError for a caught panic.
fn panic_error(payload: Box<dyn Any + Send>) -> PluginError {
    let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    };
    drop_payload(payload);
    let location = PANIC_LOCATION.try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()));
    let title = match location {
        Ok(Some(location)) => format!("the plugin panicked at {location}"),
        _ => "the plugin panicked".to_owned(),
    };
    PluginError::new("panic", message)
        .with_title(title)
        .with_suggestion("this is a bug in the plugin: report it to its author (RUST_BACKTRACE=1 shows a backtrace)")
}

/// Drops a panic payload; if its `Drop` panics too, leaks that second payload
/// rather than unwinding.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        core::mem::forget(again);
    }
}
