//! Raw bindings of `hm_plugin.h`, the native plugin ABI of hm, version 1.0.
//!
//! This module mirrors the header one to one: the same tables with the same
//! layout (`#[repr(C)]`), the same constants without their `HM_` prefix (the
//! module path is the namespace: `HM_ERR_FAILED` is [`ERR_FAILED`]). Function
//! pointers are `Option<unsafe extern "C" fn(..)>` so that a NULL entry is
//! representable. Read the header's comments for each function's thread tag,
//! ownership and return values; they are repeated here in short.
//!
//! Plugin authors normally never touch this module: [`hm_plugin!`](crate::hm_plugin)
//! fills the vtable and [`PluginContext`](crate::PluginContext) wraps the host
//! table. It is public for tools (and for plugins that need something the safe
//! layer does not offer).
//!
//! # Reading a table of another minor version
//!
//! Both tables start with [`AbiHeader`]. A table only grows at the end within a
//! major version, so a field exists only if `header.struct_size` covers it. A
//! table filled by an older host can be *shorter* than [`HostApi`]: never create
//! a `&HostApi` to it and read a field beyond `struct_size`. Check the size
//! first with [`table_has`] and read the field through a raw pointer, as
//! [`PluginContext`](crate::PluginContext) does.

use core::ffi::c_void;

/// ABI major version of this crate (`HM_ABI_MAJOR`). A host refuses a plugin
/// whose major differs, and a plugin refuses such a host.
pub const ABI_MAJOR: u32 = 1;
/// ABI minor version of this crate (`HM_ABI_MINOR`). Tables and messages only
/// grow within a major version.
pub const ABI_MINOR: u32 = 1;
/// Name of the one symbol the host looks up (`HM_ENTRY_SYMBOL`).
pub const ENTRY_SYMBOL: &core::ffi::CStr = c"hm_load_plugin";

/// `hm_status_t`: `OK` (zero) or one of the positive error codes below.
///
/// Codes are stable within a major version; a code a side does not know is
/// treated as [`ERR_INTERNAL`].
pub type StatusCode = i32;

/// `HM_OK`: success.
pub const OK: StatusCode = 0;
/// `HM_ERR_FAILED`: the capability ran and failed; the output holds a msgpack `PluginError`.
pub const ERR_FAILED: StatusCode = 1;
/// `HM_ERR_UNSUPPORTED`: the plugin does not implement this capability.
pub const ERR_UNSUPPORTED: StatusCode = 2;
/// `HM_ERR_INVALID_ARGUMENT`: null pointer, malformed msgpack, wrong schema.
pub const ERR_INVALID_ARGUMENT: StatusCode = 3;
/// `HM_ERR_NOT_FOUND`: `kv_get` has no value for the key; `fs_read_config` has no such file.
pub const ERR_NOT_FOUND: StatusCode = 4;
/// `HM_ERR_STALE_CALL`: the call handle does not belong to a running call.
pub const ERR_STALE_CALL: StatusCode = 5;
/// `HM_ERR_DENIED`: the request is not allowed (e.g. `fs_read_config` outside `.hm/`).
pub const ERR_DENIED: StatusCode = 6;
/// `HM_ERR_IO`: an I/O error on the host side.
pub const ERR_IO: StatusCode = 7;
/// `HM_CANCELLED`: `should_cancel` answers that the call should stop.
pub const CANCELLED: StatusCode = 8;
/// `HM_ERR_UNAVAILABLE`: the host function is not available in this call
/// (e.g. `archive_read` in a subcommand).
pub const ERR_UNAVAILABLE: StatusCode = 9;
/// `HM_ERR_NO_MEMORY`: out of memory.
pub const ERR_NO_MEMORY: StatusCode = 10;
/// `HM_ERR_INTERNAL`: any other failure; a bug on the side that returned it.
pub const ERR_INTERNAL: StatusCode = 11;
/// `kv_compare_and_swap`: the stored value was not the expected one. Since 1.1.
pub const ERR_CONFLICT: StatusCode = 12;

/// `HM_LOG_DEBUG` (the numbers are Python's logging levels).
pub const LOG_DEBUG: i32 = 10;
/// `HM_LOG_INFO`.
pub const LOG_INFO: i32 = 20;
/// `HM_LOG_WARNING`.
pub const LOG_WARNING: i32 = 30;
/// `HM_LOG_ERROR`.
pub const LOG_ERROR: i32 = 40;

/// `HM_STREAM_STDOUT`, for `emit_step_log`.
pub const STREAM_STDOUT: i32 = 1;
/// `HM_STREAM_STDERR`, for `emit_step_log`.
pub const STREAM_STDERR: i32 = 2;

/// `HM_KV_SCOPE_PLUGIN`: persistent across runs, private to this plugin.
pub const KV_SCOPE_PLUGIN: i32 = 0;
/// `HM_KV_SCOPE_BUILD`: in memory, private to this plugin and this run.
pub const KV_SCOPE_BUILD: i32 = 1;
/// `HM_KV_SCOPE_STEP`: in memory, private to this plugin, this run and this step.
pub const KV_SCOPE_STEP: i32 = 2;

/// `session_signal`: Ctrl-C's signal (SIGINT on POSIX). Since 1.1.
pub const SIGNAL_INTERRUPT: i32 = 1;
/// `session_signal`: SIGTERM. Since 1.1.
pub const SIGNAL_TERMINATE: i32 = 2;
/// `session_signal`: SIGKILL. Since 1.1.
pub const SIGNAL_KILL: i32 = 3;
/// `session_signal`: SIGHUP. Since 1.1.
pub const SIGNAL_HANGUP: i32 = 4;

/// `hm_call_t`: identifies one call from the host into the plugin. 0 is never valid.
pub type CallHandle = u64;

/// `hm_abi_header_t`: starts both tables.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiHeader {
    /// `sizeof()` the table as the side that filled it was compiled.
    pub struct_size: u32,
    /// ABI major version of the side that filled the table.
    pub abi_major: u32,
    /// ABI minor version of the side that filled the table.
    pub abi_minor: u32,
}

/// `hm_buf_t`: owned output bytes, released by the `free` of the side that
/// allocated them. `ptr` may be null when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Start of the bytes, or null.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

impl Buf {
    /// `{NULL, 0}`: what the host puts in `*out` before each call.
    pub const EMPTY: Buf = Buf { ptr: core::ptr::null_mut(), len: 0 };
}

/// `hm_host_api_t.log`: `(call, level, msg, msg_len) -> status`. \[call-thread\]
pub type LogFn = unsafe extern "C" fn(CallHandle, i32, *const u8, usize) -> StatusCode;
/// `hm_host_api_t.kv_get`: `(call, scope, key, key_len, out) -> status`; `*out` is
/// released with [`HostApi::free`]. \[call-thread\]
pub type KvGetFn = unsafe extern "C" fn(CallHandle, i32, *const u8, usize, *mut Buf) -> StatusCode;
/// `hm_host_api_t.kv_set`: `(call, scope, key, key_len, value, value_len) -> status`. \[call-thread\]
pub type KvSetFn =
    unsafe extern "C" fn(CallHandle, i32, *const u8, usize, *const u8, usize) -> StatusCode;
/// `hm_host_api_t.emit_event`: `(call, msgpack PluginEvent, len) -> status`. \[call-thread\]
pub type EmitEventFn = unsafe extern "C" fn(CallHandle, *const u8, usize) -> StatusCode;
/// `hm_host_api_t.emit_step_log`: `(call, stream, data, len) -> status`. \[call-thread\]
pub type EmitStepLogFn = unsafe extern "C" fn(CallHandle, i32, *const u8, usize) -> StatusCode;
/// `hm_host_api_t.should_cancel`: `(call) -> OK | CANCELLED | ERR_STALE_CALL`. \[call-thread\]
pub type ShouldCancelFn = unsafe extern "C" fn(CallHandle) -> StatusCode;
/// `hm_host_api_t.write_stdout` / `write_stderr`: `(call, data, len) -> status`. \[call-thread\]
pub type WriteFn = unsafe extern "C" fn(CallHandle, *const u8, usize) -> StatusCode;
/// `hm_host_api_t.archive_read`: `(call, offset, buf, cap, out_read) -> status`. \[call-thread\]
pub type ArchiveReadFn =
    unsafe extern "C" fn(CallHandle, u64, *mut u8, usize, *mut usize) -> StatusCode;
/// `hm_host_api_t.archive_total_size`: `(call, out_size) -> status`. \[call-thread\]
pub type ArchiveTotalSizeFn = unsafe extern "C" fn(CallHandle, *mut u64) -> StatusCode;
/// `hm_host_api_t.fs_read_config`: `(call, path, path_len, out) -> status`; `*out` is
/// released with [`HostApi::free`]. \[call-thread\]
pub type FsReadConfigFn =
    unsafe extern "C" fn(CallHandle, *const u8, usize, *mut Buf) -> StatusCode;
/// `hm_host_api_t.free`: releases bytes the host handed over; accepts null. \[any-thread\]
pub type HostFreeFn = unsafe extern "C" fn(*mut u8, usize);
/// `hm_host_api_t.kv_compare_and_swap`: `(call, scope, key, key_len, expected, expected_len,
/// value, value_len) -> status`; `expected` null means "absent". \[call-thread\] Since 1.1.
pub type KvCompareAndSwapFn =
    unsafe extern "C" fn(CallHandle, i32, *const u8, usize, *const u8, usize, *const u8, usize) -> StatusCode;
/// `hm_host_api_t.session_output`: `(call, data, len) -> status`. \[call-thread\] Since 1.1.
pub type SessionOutputFn = unsafe extern "C" fn(CallHandle, *const u8, usize) -> StatusCode;

/// `hm_host_api_t`: the host-API table, filled by the host and valid from
/// `hm_load_plugin` until the process exits.
///
/// Every function is thread-safe and may be called from any plugin thread while
/// the call its handle belongs to runs. See the module docs before reading a
/// field: a table from an older host may end before it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostApi {
    /// Size and version of the table as the host filled it.
    pub header: AbiHeader,
    /// Reserved for the host. Plugins must not read or write it.
    pub host_data: *mut c_void,
    /// Writes a UTF-8 message to hm's log. Since 1.0.
    pub log: Option<LogFn>,
    /// Reads a key-value entry (copy owned by the plugin). Since 1.0.
    pub kv_get: Option<KvGetFn>,
    /// Stores a key-value entry. Since 1.0.
    pub kv_set: Option<KvSetFn>,
    /// Publishes a `PluginEvent`. Since 1.0.
    pub emit_event: Option<EmitEventFn>,
    /// Streams output of the step being executed. Since 1.0.
    pub emit_step_log: Option<EmitStepLogFn>,
    /// Asks whether the call should stop. Since 1.0.
    pub should_cancel: Option<ShouldCancelFn>,
    /// Writes to the user's standard output. Since 1.0.
    pub write_stdout: Option<WriteFn>,
    /// Writes to the user's standard error. Since 1.0.
    pub write_stderr: Option<WriteFn>,
    /// Reads the run's workspace archive. Since 1.0.
    pub archive_read: Option<ArchiveReadFn>,
    /// Size of the run's workspace archive. Since 1.0.
    pub archive_total_size: Option<ArchiveTotalSizeFn>,
    /// Reads a file under the project's `.hm/`. Since 1.0.
    pub fs_read_config: Option<FsReadConfigFn>,
    /// Releases bytes the host handed to the plugin. Since 1.0.
    pub free: Option<HostFreeFn>,
    /// Atomic compare-and-swap of a key-value entry. Since 1.1.
    pub kv_compare_and_swap: Option<KvCompareAndSwapFn>,
    /// Streams a session's terminal output. Since 1.1.
    pub session_output: Option<SessionOutputFn>,
}

/// `manifest(instance, call, out) -> status`. \[any-thread\] Required.
pub type ManifestFn = unsafe extern "C" fn(*mut c_void, CallHandle, *mut Buf) -> StatusCode;
/// `execute_step` / `on_hook_event` / `run_subcommand`:
/// `(instance, call, input, input_len, out) -> status`. \[any-thread\]
pub type CapabilityFn =
    unsafe extern "C" fn(*mut c_void, CallHandle, *const u8, usize, *mut Buf) -> StatusCode;
/// `free(instance, ptr, len)`: releases bytes the plugin returned. \[any-thread\] Required.
pub type PluginFreeFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize);
/// `destroy(instance)`: the instance's last call. \[load-thread\] Required.
pub type DestroyFn = unsafe extern "C" fn(*mut c_void);
/// `session_write(instance, session, data, len) -> status`. \[any-thread\] Since 1.1.
pub type SessionWriteFn = unsafe extern "C" fn(*mut c_void, CallHandle, *const u8, usize) -> StatusCode;
/// `session_resize(instance, session, rows, cols) -> status`. \[any-thread\] Since 1.1.
pub type SessionResizeFn = unsafe extern "C" fn(*mut c_void, CallHandle, u16, u16) -> StatusCode;
/// `session_signal(instance, session, signal) -> status`. \[any-thread\] Since 1.1.
pub type SessionSignalFn = unsafe extern "C" fn(*mut c_void, CallHandle, i32) -> StatusCode;
/// `session_close(instance, session) -> status`. \[any-thread\] Since 1.1.
pub type SessionCloseFn = unsafe extern "C" fn(*mut c_void, CallHandle) -> StatusCode;

/// `hm_plugin_vtable_t`: filled by the plugin, returned by `hm_load_plugin`,
/// valid until the process exits.
///
/// Capability functions take borrowed msgpack input and put owned msgpack in
/// `*out` (released by the host through `free`): `OK` → the success message,
/// `ERR_FAILED` → a `PluginError`, other codes → `*out` may stay empty.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginVtable {
    /// Size and version of the table as the plugin filled it.
    pub header: AbiHeader,
    /// Returns the msgpack `PluginManifest`. Required. Since 1.0.
    pub manifest: Option<ManifestFn>,
    /// `ExecutorInput` → `StepResult`. Since 1.0.
    pub execute_step: Option<CapabilityFn>,
    /// `HookEvent` → `HookOutcome`. Since 1.0.
    pub on_hook_event: Option<CapabilityFn>,
    /// `SubcommandInput` → `ExitInfo`. Since 1.0.
    pub run_subcommand: Option<CapabilityFn>,
    /// Releases bytes the plugin returned in a [`Buf`]. Required. Since 1.0.
    pub free: Option<PluginFreeFn>,
    /// The instance's last call. Required. Since 1.0.
    pub destroy: Option<DestroyFn>,
    /// `SessionSpec` → `ExitInfo`, running the whole session. Since 1.1.
    pub session_open: Option<CapabilityFn>,
    /// Terminal input for a running session. Since 1.1.
    pub session_write: Option<SessionWriteFn>,
    /// Resizes a running session's terminal. Since 1.1.
    pub session_resize: Option<SessionResizeFn>,
    /// Signals a running session's foreground job. Since 1.1.
    pub session_signal: Option<SessionSignalFn>,
    /// Ends a running session. Since 1.1.
    pub session_close: Option<SessionCloseFn>,
}

/// `hm_load_plugin_fn`: the type of the one exported symbol.
pub type LoadPluginFn =
    unsafe extern "C" fn(host: *const HostApi, out_instance: *mut *mut c_void) -> *const PluginVtable;

/// `HM_TABLE_HAS`: true when a table whose header says `struct_size` bytes
/// contains the field at `field_offset` of `field_size` bytes.
///
/// ```
/// use core::mem::{offset_of, size_of};
/// use hm_plugin_sdk::sys::{table_has, HostApi, ArchiveReadFn};
/// let size = offset_of!(HostApi, archive_read) as u32; // a table that ends just before it
/// assert!(!table_has(size, offset_of!(HostApi, archive_read), size_of::<Option<ArchiveReadFn>>()));
/// ```
pub const fn table_has(struct_size: u32, field_offset: usize, field_size: usize) -> bool {
    struct_size as usize >= field_offset + field_size
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// The layout the C compiler gives `hm_plugin.h` on LP64 targets (checked with
    /// `offsetof`/`sizeof` in C: header 12, buf 16, host_data 16, log 24, free 112,
    /// kv_compare_and_swap 120 (1.1), host table 136, vtable manifest 16, destroy 56,
    /// session_open 64 (1.1), vtable 104).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn layout_matches_the_c_header() {
        assert_eq!(size_of::<AbiHeader>(), 12);
        assert_eq!(size_of::<Buf>(), 16);
        assert_eq!(offset_of!(HostApi, host_data), 16);
        assert_eq!(offset_of!(HostApi, log), 24);
        assert_eq!(offset_of!(HostApi, free), 112);
        assert_eq!(offset_of!(HostApi, kv_compare_and_swap), 120);
        assert_eq!(size_of::<HostApi>(), 136);
        assert_eq!(offset_of!(PluginVtable, manifest), 16);
        assert_eq!(offset_of!(PluginVtable, destroy), 56);
        assert_eq!(offset_of!(PluginVtable, session_open), 64);
        assert_eq!(size_of::<PluginVtable>(), 104);
    }

    #[test]
    fn option_fn_pointers_are_nullable_pointers() {
        assert_eq!(size_of::<Option<LogFn>>(), size_of::<*const u8>());
    }
}
