//! [`PluginContext`]: safe wrappers of every host-API function for one call.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::ptr::NonNull;
use std::io;

use crate::protocol::{Message, PluginError, PluginEvent};
use crate::sys::{self, AbiHeader, Buf, CallHandle, HostApi, StatusCode};

/// A non-OK status code a host function returned (`HM_ERR_*`, `HM_CANCELLED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `HM_ERR_FAILED`.
    Failed,
    /// `HM_ERR_UNSUPPORTED`.
    Unsupported,
    /// `HM_ERR_INVALID_ARGUMENT`: e.g. an unknown scope or stream.
    InvalidArgument,
    /// `HM_ERR_NOT_FOUND`.
    NotFound,
    /// `HM_ERR_STALE_CALL`: the call this context belongs to has returned.
    StaleCall,
    /// `HM_ERR_DENIED`: e.g. `fs_read_config` of a path outside `.hm/`.
    Denied,
    /// `HM_ERR_IO`: an I/O error on the host side.
    Io,
    /// `HM_CANCELLED`.
    Cancelled,
    /// `HM_ERR_UNAVAILABLE`: the function is not available *in this call* (e.g.
    /// `archive_read` in a subcommand, BUILD/STEP key-value scopes outside a run).
    Unavailable,
    /// `HM_ERR_NO_MEMORY`.
    NoMemory,
    /// `HM_ERR_INTERNAL`: a bug on the host side.
    Internal,
    /// `HM_ERR_CONFLICT` (since 1.1): `kv_compare_and_swap` found another value.
    Conflict,
    /// A code this crate does not know; treat it as [`Status::Internal`].
    Unknown(StatusCode),
}

impl Status {
    /// The status for a non-OK code (`None` for `HM_OK`).
    pub fn from_code(code: StatusCode) -> Option<Status> {
        Some(match code {
            sys::OK => return None,
            sys::ERR_FAILED => Status::Failed,
            sys::ERR_UNSUPPORTED => Status::Unsupported,
            sys::ERR_INVALID_ARGUMENT => Status::InvalidArgument,
            sys::ERR_NOT_FOUND => Status::NotFound,
            sys::ERR_STALE_CALL => Status::StaleCall,
            sys::ERR_DENIED => Status::Denied,
            sys::ERR_IO => Status::Io,
            sys::CANCELLED => Status::Cancelled,
            sys::ERR_UNAVAILABLE => Status::Unavailable,
            sys::ERR_NO_MEMORY => Status::NoMemory,
            sys::ERR_INTERNAL => Status::Internal,
            sys::ERR_CONFLICT => Status::Conflict,
            other => Status::Unknown(other),
        })
    }

    /// The numeric code.
    pub fn code(self) -> StatusCode {
        match self {
            Status::Failed => sys::ERR_FAILED,
            Status::Unsupported => sys::ERR_UNSUPPORTED,
            Status::InvalidArgument => sys::ERR_INVALID_ARGUMENT,
            Status::NotFound => sys::ERR_NOT_FOUND,
            Status::StaleCall => sys::ERR_STALE_CALL,
            Status::Denied => sys::ERR_DENIED,
            Status::Io => sys::ERR_IO,
            Status::Cancelled => sys::CANCELLED,
            Status::Unavailable => sys::ERR_UNAVAILABLE,
            Status::NoMemory => sys::ERR_NO_MEMORY,
            Status::Internal => sys::ERR_INTERNAL,
            Status::Conflict => sys::ERR_CONFLICT,
            Status::Unknown(code) => code,
        }
    }

    /// The header's name, e.g. `HM_ERR_STALE_CALL`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Failed => "HM_ERR_FAILED",
            Status::Unsupported => "HM_ERR_UNSUPPORTED",
            Status::InvalidArgument => "HM_ERR_INVALID_ARGUMENT",
            Status::NotFound => "HM_ERR_NOT_FOUND",
            Status::StaleCall => "HM_ERR_STALE_CALL",
            Status::Denied => "HM_ERR_DENIED",
            Status::Io => "HM_ERR_IO",
            Status::Cancelled => "HM_CANCELLED",
            Status::Unavailable => "HM_ERR_UNAVAILABLE",
            Status::NoMemory => "HM_ERR_NO_MEMORY",
            Status::Internal => "HM_ERR_INTERNAL",
            Status::Conflict => "HM_ERR_CONFLICT",
            Status::Unknown(_) => "unknown status",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// Why a host function could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// The host's table does not provide the function: the host speaks an older
    /// minor version of the ABI than the one this crate was built against, or
    /// left the entry NULL. The function was not called.
    Unavailable {
        /// The host-API function, e.g. `"archive_read"`.
        function: &'static str,
        /// The minor ABI version the host's table declares.
        host_minor: u32,
    },
    /// The host function returned an error status.
    Status {
        /// The host-API function, e.g. `"kv_get"`.
        function: &'static str,
        /// What it returned.
        status: Status,
    },
}

impl HostError {
    /// The host-API function that failed.
    pub fn function(&self) -> &'static str {
        match self {
            HostError::Unavailable { function, .. } | HostError::Status { function, .. } => function,
        }
    }

    /// The status the host returned (`None` when the function is missing).
    pub fn status(&self) -> Option<Status> {
        match self {
            HostError::Status { status, .. } => Some(*status),
            HostError::Unavailable { .. } => None,
        }
    }

    /// True when the call this context belongs to has already returned.
    pub fn is_stale(&self) -> bool {
        self.status() == Some(Status::StaleCall)
    }

    fn from_code(function: &'static str, code: StatusCode) -> Self {
        let status = Status::from_code(code).unwrap_or(Status::Internal);
        HostError::Status { function, status }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Unavailable { function, host_minor } => write!(
                f,
                "host function `{function}` is not available: this hm provides plugin ABI {}.{host_minor} \
                 and the plugin was built against {}.{}",
                sys::ABI_MAJOR,
                sys::ABI_MAJOR,
                sys::ABI_MINOR
            ),
            HostError::Status { function, status } => {
                write!(f, "host function `{function}` returned {status}")
            }
        }
    }
}

impl std::error::Error for HostError {}

impl From<HostError> for PluginError {
    /// `host_function_unavailable` or `host_call_failed`, so `?` works on host calls
    /// inside a capability.
    fn from(e: HostError) -> Self {
        match e {
            HostError::Unavailable { .. } => PluginError::new("host_function_unavailable", e.to_string())
                .with_suggestion("upgrade hm, or use a version of this plugin built for your hm"),
            HostError::Status { .. } => PluginError::new("host_call_failed", e.to_string()),
        }
    }
}

impl From<HostError> for io::Error {
    fn from(e: HostError) -> Self {
        let kind = match e.status() {
            Some(Status::NotFound) => io::ErrorKind::NotFound,
            Some(Status::Denied) => io::ErrorKind::PermissionDenied,
            Some(Status::InvalidArgument) => io::ErrorKind::InvalidInput,
            Some(Status::NoMemory) => io::ErrorKind::OutOfMemory,
            None | Some(Status::Unavailable) => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Log levels for [`PluginContext::log`] (the numbers of Python's logging).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// `HM_LOG_DEBUG`: shown with `hm --verbose`.
    Debug = sys::LOG_DEBUG as isize,
    /// `HM_LOG_INFO`.
    Info = sys::LOG_INFO as isize,
    /// `HM_LOG_WARNING`.
    Warning = sys::LOG_WARNING as isize,
    /// `HM_LOG_ERROR`.
    Error = sys::LOG_ERROR as isize,
}

/// An output stream of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// `HM_STREAM_STDOUT`, `"stdout"` in events.
    Stdout = sys::STREAM_STDOUT as isize,
    /// `HM_STREAM_STDERR`, `"stderr"` in events.
    Stderr = sys::STREAM_STDERR as isize,
}

impl Stream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Scopes of the key-value store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvScope {
    /// `HM_KV_SCOPE_PLUGIN`: persistent across runs, private to this plugin (by manifest name).
    Plugin = sys::KV_SCOPE_PLUGIN as isize,
    /// `HM_KV_SCOPE_BUILD`: in memory, private to this plugin and this run.
    Build = sys::KV_SCOPE_BUILD as isize,
    /// `HM_KV_SCOPE_STEP`: in memory, private to this plugin, this run and this step.
    Step = sys::KV_SCOPE_STEP as isize,
}

/// The host, as seen from one call: every host-API function, bound to the call's handle.
///
/// A capability receives `&PluginContext`. Every method checks that the host's
/// table is large enough to contain the function (its `struct_size`) and that
/// the entry is not NULL before calling it; a function the host lacks returns
/// [`HostError::Unavailable`] instead of crashing, so a plugin built against a
/// newer minor ABI runs on an older host.
///
/// # Threads
///
/// `PluginContext` is `Send + Sync` and `Copy`: share `&ctx` with threads of your
/// own (e.g. [`std::thread::scope`]) while the call runs. The host-API functions
/// are thread-safe by contract (`hm_plugin.h`: "[call-thread] may be called from
/// any thread while the call it belongs to runs"). The lifetime `'a` ties the
/// context to the call, so scoped threads cannot outlive it; even so, a context
/// used after its call returned is safe — the host answers `HM_ERR_STALE_CALL`
/// ([`HostError::is_stale`], and [`PluginContext::should_cancel`] returns `true`).
///
/// Which functions work depends on the call: during `manifest` and
/// `run_subcommand`, step logs, BUILD/STEP key-value scopes and the archive
/// answer [`Status::Unavailable`].
#[derive(Clone, Copy)]
pub struct PluginContext<'a> {
    host: NonNull<HostApi>,
    header: AbiHeader,
    call: CallHandle,
    _call: PhantomData<&'a HostApi>,
}

// SAFETY: the context is a pointer to the host table plus two plain integers. The
// table is immutable and valid until the process exits (hm_plugin.h: "valid from
// hm_load_plugin until the process exits"), the context never touches `host_data`,
// and every function in the table is thread-safe: tagged [call-thread] ("thread-safe
// and may be called from any plugin thread while the call they belong to runs") or
// [any-thread] (`free`). Calls after the call returned are answered with
// HM_ERR_STALE_CALL, never a crash. So moving or sharing the context across threads
// cannot cause a data race.
unsafe impl Send for PluginContext<'_> {}
// SAFETY: see `Send` above; every method takes `&self` and only reads the immutable table.
unsafe impl Sync for PluginContext<'_> {}

impl fmt::Debug for PluginContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContext")
            .field("call", &self.call)
            .field("host_abi", &(self.header.abi_major, self.header.abi_minor))
            .field("host_struct_size", &self.header.struct_size)
            .finish()
    }
}

/// Looks up a host function by field name: checks `struct_size` and NULL.
macro_rules! host_fn {
    ($ctx:expr, $field:ident) => {
        $ctx.lookup(stringify!($field), offset_of!(HostApi, $field), |h: &HostApi| &h.$field)
    };
}

impl<'a> PluginContext<'a> {
    /// A context for `call` on the host table `host`.
    ///
    /// Returns `None` if `host` is null or its header is smaller than
    /// [`AbiHeader`]. The [`hm_plugin!`](crate::hm_plugin) macro creates contexts
    /// for you; this is for hand-written exports and for tests.
    ///
    /// # Safety
    ///
    /// `host` must be null or point to a host table that stays valid and unchanged
    /// for `'a`, whose header's `struct_size` does not exceed the bytes readable at
    /// `host`, and whose entries within `struct_size` are NULL or functions with the
    /// signatures and contract of `hm_plugin.h`.
    pub unsafe fn from_raw(host: *const HostApi, call: CallHandle) -> Option<Self> {
        let host = NonNull::new(host.cast_mut())?;
        // SAFETY: the caller guarantees `host` points to a readable table, which
        // starts with the header (every host fills at least the header).
        let header = unsafe { host.cast::<AbiHeader>().as_ptr().read() };
        if (header.struct_size as usize) < size_of::<AbiHeader>() {
            return None;
        }
        Some(PluginContext { host, header, call, _call: PhantomData })
    }

    /// The handle of the call this context belongs to.
    pub fn call_handle(&self) -> CallHandle {
        self.call
    }

    /// The `(major, minor)` ABI version of the host's table.
    pub fn host_abi(&self) -> (u32, u32) {
        (self.header.abi_major, self.header.abi_minor)
    }

    fn unavailable(&self, function: &'static str) -> HostError {
        HostError::Unavailable { function, host_minor: self.header.abi_minor }
    }

    /// The function in field `function` (at `offset`), if the table covers it and it is not NULL.
    /// `_field` only names the field's type; it is never called.
    fn lookup<F: Copy>(
        &self,
        function: &'static str,
        offset: usize,
        _field: fn(&HostApi) -> &Option<F>,
    ) -> Result<F, HostError> {
        if !sys::table_has(self.header.struct_size, offset, size_of::<Option<F>>()) {
            return Err(self.unavailable(function));
        }
        // SAFETY: `offset` is the offset of a field of type Option<F> in HostApi and the
        // host's table covers it (checked above; `from_raw`'s contract says struct_size
        // bytes are readable), so the read is in bounds and aligned (the table is a
        // HostApi-aligned struct). We never create a `&HostApi`, which would claim the
        // whole struct is readable when an older host's table is shorter.
        let f = unsafe { self.host.as_ptr().cast::<u8>().add(offset).cast::<Option<F>>().read() };
        f.ok_or_else(|| self.unavailable(function))
    }

    fn check(function: &'static str, code: StatusCode) -> Result<(), HostError> {
        if code == sys::OK { Ok(()) } else { Err(HostError::from_code(function, code)) }
    }

    /// Writes `message` to hm's log at `level`, attributed to this plugin, run and step.
    pub fn log(&self, level: LogLevel, message: &str) -> Result<(), HostError> {
        let log = host_fn!(self, log)?;
        // SAFETY: `log` comes from the host table (checked by `lookup`); the message
        // pointer and length describe a live &str for the duration of the call.
        let code = unsafe { log(self.call, level as i32, message.as_ptr(), message.len()) };
        Self::check("log", code)
    }

    /// [`log`](Self::log) at debug level, ignoring errors (logging is best effort).
    pub fn debug(&self, message: &str) {
        let _ = self.log(LogLevel::Debug, message);
    }

    /// [`log`](Self::log) at info level, ignoring errors.
    pub fn info(&self, message: &str) {
        let _ = self.log(LogLevel::Info, message);
    }

    /// [`log`](Self::log) at warning level, ignoring errors.
    pub fn warn(&self, message: &str) {
        let _ = self.log(LogLevel::Warning, message);
    }

    /// [`log`](Self::log) at error level, ignoring errors.
    pub fn error(&self, message: &str) {
        let _ = self.log(LogLevel::Error, message);
    }

    /// Reads the value stored under `key` in `scope`; `Ok(None)` when there is none.
    ///
    /// The host's copy is copied into a `Vec` and released with the host's `free`.
    /// BUILD and STEP scopes exist only during a run ([`Status::Unavailable`] otherwise).
    pub fn kv_get(&self, scope: KvScope, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, HostError> {
        let get = host_fn!(self, kv_get)?;
        // Without the host's `free` the copy could not be released: refuse up front.
        let free = host_fn!(self, free)?;
        let key = key.as_ref();
        let mut out = Buf::EMPTY;
        // SAFETY: host function from the table; key is a live slice; `out` is a valid
        // Buf the host may fill with memory we release below with the host's `free`.
        let code = unsafe { get(self.call, scope as i32, key.as_ptr(), key.len(), &mut out) };
        // SAFETY: `out` is either untouched (EMPTY) or what the host handed over.
        let value = unsafe { take_host_buf(out, free) };
        match code {
            sys::OK => Ok(Some(value)),
            sys::ERR_NOT_FOUND => Ok(None),
            code => Err(HostError::from_code("kv_get", code)),
        }
    }

    /// Stores a copy of `value` under `key` in `scope`. An empty value is stored as such.
    pub fn kv_set(&self, scope: KvScope, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), HostError> {
        let set = host_fn!(self, kv_set)?;
        let (key, value) = (key.as_ref(), value.as_ref());
        // SAFETY: host function from the table; key and value are live slices.
        let code = unsafe { set(self.call, scope as i32, key.as_ptr(), key.len(), value.as_ptr(), value.len()) };
        Self::check("kv_set", code)
    }

    /// Since 1.1: stores `value` under `key` in `scope` only if the stored value is
    /// `expected` (`None`: no value stored). `Ok(true)`: written; `Ok(false)`: another
    /// value is stored (`HM_ERR_CONFLICT`), nothing written. One transaction on the
    /// host, across threads and (PLUGIN scope) hm processes. On a 1.0 host the entry
    /// is missing: [`HostError::Unavailable`], checked against `struct_size`.
    pub fn kv_compare_and_swap(
        &self,
        scope: KvScope,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool, HostError> {
        let cas = host_fn!(self, kv_compare_and_swap)?;
        let (key, value) = (key.as_ref(), value.as_ref());
        // A slice's pointer is never null (even when empty), so `Some(&[])` reads as
        // "expect an empty value" and only `None` as "expect no value".
        let (exp_ptr, exp_len) = expected.map_or((core::ptr::null(), 0), |e| (e.as_ptr(), e.len()));
        // SAFETY: host function from the table (checked by `lookup`); key, expected and
        // value are live slices (or null for "absent") for the duration of the call.
        let code = unsafe {
            cas(self.call, scope as i32, key.as_ptr(), key.len(), exp_ptr, exp_len, value.as_ptr(), value.len())
        };
        match code {
            sys::OK => Ok(true),
            sys::ERR_CONFLICT => Ok(false),
            code => Err(HostError::from_code("kv_compare_and_swap", code)),
        }
    }

    /// Since 1.1: replaces the value under `key` with `update(old)` atomically, the
    /// read / compare-and-swap / retry loop every counter needs; `old` is `None` when
    /// no value is stored. `update` may run several times (once per conflict), so it
    /// must not have side effects. Returns the value written.
    ///
    /// ```no_run
    /// # use hm_plugin_sdk::{KvScope, PluginContext, HostError};
    /// # fn count(ctx: &PluginContext<'_>) -> Result<u64, HostError> {
    /// let new = ctx.kv_update(KvScope::Plugin, "runs", |old| {
    ///     let n: u64 = old.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0);
    ///     (n + 1).to_string().into_bytes()
    /// })?;
    /// # Ok(String::from_utf8_lossy(&new).parse().unwrap_or(0)) }
    /// ```
    pub fn kv_update(
        &self,
        scope: KvScope,
        key: impl AsRef<[u8]>,
        mut update: impl FnMut(Option<&[u8]>) -> Vec<u8>,
    ) -> Result<Vec<u8>, HostError> {
        let key = key.as_ref();
        // Fail before reading when the host cannot swap (a 1.0 host): no partial work.
        host_fn!(self, kv_compare_and_swap)?;
        loop {
            let old = self.kv_get(scope, key)?;
            let new = update(old.as_deref());
            if self.kv_compare_and_swap(scope, key, old.as_deref(), &new)? {
                return Ok(new);
            }
        }
    }

    /// Since 1.1: streams terminal output of the session this call runs (a
    /// `session_open` call; [`Status::Unavailable`] elsewhere).
    pub fn session_output(&self, data: &[u8]) -> Result<(), HostError> {
        let out = host_fn!(self, session_output)?;
        // SAFETY: host function from the table; `data` is a live slice.
        let code = unsafe { out(self.call, data.as_ptr(), data.len()) };
        Self::check("session_output", code)
    }

    /// Publishes a plugin event; it reaches `--format json` output and the hooks.
    pub fn emit_event(&self, event: &PluginEvent) -> Result<(), HostError> {
        let emit = host_fn!(self, emit_event)?;
        let bytes = event.to_msgpack();
        // SAFETY: host function from the table; `bytes` lives across the call.
        let code = unsafe { emit(self.call, bytes.as_ptr(), bytes.len()) };
        Self::check("emit_event", code)
    }

    /// Streams output of the step this call executes. `data` need not end at a line
    /// boundary (hm joins partial lines). Only in `execute_step` ([`Status::Unavailable`] elsewhere).
    pub fn emit_step_log(&self, stream: Stream, data: &[u8]) -> Result<(), HostError> {
        let emit = host_fn!(self, emit_step_log)?;
        // SAFETY: host function from the table; `data` is a live slice.
        let code = unsafe { emit(self.call, stream as i32, data.as_ptr(), data.len()) };
        Self::check("emit_step_log", code)
    }

    /// True when the work of this call should stop (Ctrl-C, fail-fast, timeout),
    /// and also when the call has already returned (stale handle). Cheap: poll it often.
    ///
    /// Returns `false` if the host lacks the function or answers another error:
    /// then nobody can ask the call to stop.
    pub fn should_cancel(&self) -> bool {
        let Ok(should_cancel) = host_fn!(self, should_cancel) else {
            return false;
        };
        // SAFETY: host function from the table; takes only the handle.
        let code = unsafe { should_cancel(self.call) };
        code == sys::CANCELLED || code == sys::ERR_STALE_CALL
    }

    /// Writes bytes to the user's standard output, unbuffered by hm. Meant for
    /// subcommands; during a run prefer [`emit_step_log`](Self::emit_step_log).
    pub fn write_stdout(&self, data: &[u8]) -> Result<(), HostError> {
        let write = host_fn!(self, write_stdout)?;
        // SAFETY: host function from the table; `data` is a live slice.
        let code = unsafe { write(self.call, data.as_ptr(), data.len()) };
        Self::check("write_stdout", code)
    }

    /// Writes bytes to the user's standard error, unbuffered by hm.
    pub fn write_stderr(&self, data: &[u8]) -> Result<(), HostError> {
        let write = host_fn!(self, write_stderr)?;
        // SAFETY: host function from the table; `data` is a live slice.
        let code = unsafe { write(self.call, data.as_ptr(), data.len()) };
        Self::check("write_stderr", code)
    }

    /// The size in bytes of the run's workspace archive (an uncompressed POSIX tar
    /// of the project). Only in `execute_step`.
    pub fn archive_total_size(&self) -> Result<u64, HostError> {
        let size_fn = host_fn!(self, archive_total_size)?;
        let mut size = 0u64;
        // SAFETY: host function from the table; `size` is a valid out-pointer.
        let code = unsafe { size_fn(self.call, &mut size) };
        Self::check("archive_total_size", code).map(|()| size)
    }

    /// Reads up to `buf.len()` bytes of the workspace archive at `offset` into
    /// `buf`; returns how many were read (0 at the end). Only in `execute_step`.
    pub fn archive_read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, HostError> {
        let read = host_fn!(self, archive_read)?;
        let mut n = 0usize;
        // SAFETY: host function from the table; `buf` is a live, writable slice of
        // `buf.len()` bytes and `n` a valid out-pointer.
        let code = unsafe { read(self.call, offset, buf.as_mut_ptr(), buf.len(), &mut n) };
        Self::check("archive_read", code)?;
        if n > buf.len() {
            // The host claims to have written past the buffer: a host bug.
            return Err(HostError::Status { function: "archive_read", status: Status::Internal });
        }
        Ok(n)
    }

    /// The workspace archive as an [`io::Read`] + [`io::Seek`] (e.g. for a tar reader).
    pub fn archive(&self) -> ArchiveReader<'_, 'a> {
        ArchiveReader { ctx: self, pos: 0 }
    }

    /// Reads the file at `path` (relative to the project's `.hm/` directory).
    /// Absolute paths and paths escaping `.hm/` are refused ([`Status::Denied`]);
    /// a missing file is [`Status::NotFound`].
    pub fn fs_read_config(&self, path: &str) -> Result<Vec<u8>, HostError> {
        let read = host_fn!(self, fs_read_config)?;
        let free = host_fn!(self, free)?;
        let mut out = Buf::EMPTY;
        // SAFETY: host function from the table; `path` is a live &str; `out` is a
        // valid Buf released below with the host's `free`.
        let code = unsafe { read(self.call, path.as_ptr(), path.len(), &mut out) };
        // SAFETY: `out` is either untouched (EMPTY) or what the host handed over.
        let value = unsafe { take_host_buf(out, free) };
        Self::check("fs_read_config", code).map(|()| value)
    }
}

/// Copies a buffer the host handed over and releases it with the host's `free`.
///
/// # Safety
///
/// `buf` must be [`Buf::EMPTY`] or a buffer the host allocated for the plugin
/// (`len` readable bytes at `ptr`), not yet released; `free` must be the host's `free`.
unsafe fn take_host_buf(buf: Buf, free: sys::HostFreeFn) -> Vec<u8> {
    if buf.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract, `len` bytes at `ptr` are readable until released.
    let copy = unsafe { core::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
    // SAFETY: the host's free, with exactly the pointer and length it handed over, once.
    unsafe { free(buf.ptr, buf.len) };
    copy
}

/// The run's workspace archive as a byte stream; see [`PluginContext::archive`].
#[derive(Debug)]
pub struct ArchiveReader<'c, 'a> {
    ctx: &'c PluginContext<'a>,
    pos: u64,
}

impl io::Read for ArchiveReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.ctx.archive_read(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for ArchiveReader<'_, '_> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let target = match pos {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            io::SeekFrom::End(d) => self.ctx.archive_total_size()?.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the archive"))?;
        self.pos = target;
        Ok(target)
    }
}
