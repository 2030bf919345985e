/*
 * hm_plugin.h — the native plugin ABI of hm, version 1.1.
 *
 * A plugin is a shared library (.so / .dylib / .dll) that exports exactly one
 * symbol, `hm_load_plugin`. The host calls it once per process with its
 * host-API table and receives the plugin's vtable and instance pointer.
 * Everything else crosses the boundary through those two tables.
 *
 * ---------------------------------------------------------------------------
 * Conventions used in every comment of this file
 * ---------------------------------------------------------------------------
 *
 * Thread tags (in brackets before each function):
 *   [any-thread]    may be called from any thread, concurrently with itself.
 *   [call-thread]   may be called from any thread, but only while the call the
 *                   handle belongs to is running (between the host entering the
 *                   vtable function and that function returning).
 *   [load-thread]   called once, by the host, on the thread that loads plugins.
 *
 * Ownership:
 *   - Input bytes are BORROWED: `(const uint8_t *ptr, size_t len)` is valid only
 *     until the function returns. Copy what you keep.
 *   - Output bytes are OWNED by the side that allocated them and released by that
 *     side's `free`: bytes a plugin returns in an `hm_buf_t` are released by the
 *     host through `hm_plugin_vtable_t.free`; bytes the host returns (kv_get,
 *     fs_read_config) are released by the plugin through `hm_host_api_t.free`.
 *     Never pass one side's memory to the other side's `free`.
 *
 * Messages:
 *   Every input and output payload is msgpack with a fixed schema (named fields,
 *   snake_case, tagged unions with a "kind" field). The schemas are documented
 *   field by field in docs/plugin-authors.md and defined in the Python package
 *   `hm_plugin_sdk.protocol`. hm_msgpack.h (next to this file) encodes and
 *   decodes them with no other library.
 *
 * Versioning:
 *   Both tables start with `hm_abi_header_t`. The host refuses a plugin whose
 *   `abi_major` differs from HM_ABI_MAJOR before it calls anything but
 *   `hm_load_plugin`. Within a major version, tables only grow at the end: a
 *   field is read only if `struct_size` covers it (see HM_TABLE_HAS), so a
 *   plugin built against a newer minor loads on an older host and the reverse.
 *   Message schemas only gain optional fields within a major version.
 *   An entry added after 1.0 says "Since 1.N". A copy of every older minor's
 *   header is kept in hm's tests, and a plugin built against it is run there on
 *   the current host; `hm plugin check` runs a plugin on each older minor's host
 *   table (ending before the entries added later).
 *
 * The call handle:
 *   Every vtable function except free and destroy receives an `hm_call_t`. Host-API
 *   functions take that handle so a log line, a KV access or a cancel check is
 *   attributed to the right plugin, build and step even when many steps run at
 *   once. A handle used after its call returned gets HM_ERR_STALE_CALL, never a
 *   crash. Handles are random 64-bit numbers, so they cannot be guessed, and
 *   each is bound to the plugin it was issued to: a host function called with
 *   another plugin's live handle answers HM_ERR_DENIED (or HM_ERR_STALE_CALL
 *   when the plugin runs isolated, in a worker that knows only its own calls).
 *   Compare handles for equality only; their values mean nothing. During `manifest` and
 *   `run_subcommand` the functions behave as outside a run: step logs, BUILD/STEP
 *   KV scopes and the archive answer HM_ERR_UNAVAILABLE. `hm_load_plugin` gets no
 *   handle, so it cannot log: keep it trivial.
 *
 * Libraries are never unloaded. `destroy` is the last call an instance gets.
 */
#ifndef HM_PLUGIN_H
#define HM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version of this header. Added in 1.0; HM_ABI_MINOR is 1 since 1.1. */
#define HM_ABI_MAJOR 1
#define HM_ABI_MINOR 1

/* Name of the one symbol the host looks up. */
#define HM_ENTRY_SYMBOL "hm_load_plugin"

#if defined(_WIN32)
#define HM_EXPORT __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define HM_EXPORT __attribute__((visibility("default")))
#else
#define HM_EXPORT
#endif

/* --------------------------------------------------------------------------
 * Status codes. Added in 1.0.
 *
 * Every function that can fail returns an hm_status_t. HM_OK is zero; every
 * other value is positive. Codes are stable within a major version; a host or
 * plugin that receives a code it does not know treats it as HM_ERR_INTERNAL.
 * ------------------------------------------------------------------------ */
typedef int32_t hm_status_t;

#define HM_OK 0
/* The capability ran and failed: the output holds a msgpack PluginError
 * ({code, message, title?, suggestion?, retryable?, retry_commands?, doc_url?}). */
#define HM_ERR_FAILED 1
/* The plugin does not implement this capability (its manifest does not list it). */
#define HM_ERR_UNSUPPORTED 2
/* An argument was invalid: null pointer, malformed msgpack, wrong schema. */
#define HM_ERR_INVALID_ARGUMENT 3
/* kv_get: no value for the key. */
#define HM_ERR_NOT_FOUND 4
/* The call handle does not belong to a running call (already returned, or never issued). */
#define HM_ERR_STALE_CALL 5
/* The request is not allowed: fs_read_config outside `.hm/`, of a file that is not
 * regular or is over 16 MiB; any function called with another plugin's handle. */
#define HM_ERR_DENIED 6
/* An I/O error on the host side (file, database, archive). */
#define HM_ERR_IO 7
/* should_cancel: the user or the scheduler asked this call to stop. */
#define HM_CANCELLED 8
/* The host-API function is not available in this call (e.g. archive_read in a subcommand). */
#define HM_ERR_UNAVAILABLE 9
/* Out of memory. */
#define HM_ERR_NO_MEMORY 10
/* Any other failure; a bug on the side that returned it. */
#define HM_ERR_INTERNAL 11
/* kv_compare_and_swap: the stored value was not the expected one (or a value
 * was stored where none was expected); nothing was written. Read it again and
 * retry. Since 1.1. */
#define HM_ERR_CONFLICT 12

/* --------------------------------------------------------------------------
 * Common types. Added in 1.0.
 * ------------------------------------------------------------------------ */

/* The header that starts both tables. `struct_size` is sizeof() the table as the
 * side that filled it was compiled, so the other side can tell which fields exist. */
typedef struct hm_abi_header {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
} hm_abi_header_t;

/* Before calling any host function, check that the table has it and that it is
 * not NULL: hosts of other minors (and `hm plugin check`'s older-host check) give
 * tables whose struct_size ends earlier. True when `table` (a pointer to a `type`,
 * a flat struct starting with hm_abi_header_t;
 * both tables are flat: a later minor appends fields, it never nests the old table)
 * is large enough to contain `field`. Use it before reading a field that a later
 * minor added, then check the pointer itself for NULL:
 *     if (HM_TABLE_HAS(host, hm_host_api_t, archive_read) && host->archive_read) */
#define HM_TABLE_HAS(table, type, field)                                        \
    ((size_t)(table)->header.struct_size >= offsetof(type, field) + sizeof((table)->field))

/* True when the host table has the entry `field` (struct_size covers it) and it
 * is not NULL. Since 1.1; the same test as HM_TABLE_HAS plus the NULL check. */
#define HM_HOST_HAS(host, field) (HM_TABLE_HAS(host, hm_host_api_t, field) && (host)->field != NULL)

/* Owned output bytes. The side that allocated `ptr` releases it with its own
 * `free`. `ptr` may be NULL when `len` is 0. */
typedef struct hm_buf {
    uint8_t *ptr;
    size_t len;
} hm_buf_t;

/* Identifies one call from the host into the plugin. 0 is never a valid handle. */
typedef uint64_t hm_call_t;

/* Log levels for hm_host_api_t.log; the same numbers as Python's logging. */
#define HM_LOG_DEBUG 10
#define HM_LOG_INFO 20
#define HM_LOG_WARNING 30
#define HM_LOG_ERROR 40

/* Streams for hm_host_api_t.emit_step_log. */
#define HM_STREAM_STDOUT 1
#define HM_STREAM_STDERR 2

/* Scopes for kv_get / kv_set.
 *   PLUGIN: persistent across runs, private to this plugin (by manifest name).
 *   BUILD:  in memory, private to this plugin and this run.
 *   STEP:   in memory, private to this plugin, this run and this step. */
#define HM_KV_SCOPE_PLUGIN 0
#define HM_KV_SCOPE_BUILD 1
#define HM_KV_SCOPE_STEP 2

/* Signals for hm_plugin_vtable_t.session_signal. hm's own numbers, not the
 * platform's: the runner maps them (SIGINT, SIGTERM, SIGKILL, SIGHUP on POSIX).
 * Since 1.1. */
#define HM_SIGNAL_INTERRUPT 1
#define HM_SIGNAL_TERMINATE 2
#define HM_SIGNAL_KILL 3
#define HM_SIGNAL_HANGUP 4

/* --------------------------------------------------------------------------
 * The host-API table. Added in 1.0.
 *
 * Filled by the host, valid from hm_load_plugin until the process exits. All
 * functions are [call-thread] unless tagged otherwise: they are thread-safe and
 * may be called from any plugin thread while the call they belong to runs.
 * ------------------------------------------------------------------------ */
typedef struct hm_host_api {
    hm_abi_header_t header;

    /* Reserved for the host. Plugins must not read or write it. */
    void *host_data;

    /* [call-thread] Writes `msg` (UTF-8, not NUL-terminated) to hm's log at
     * `level` (HM_LOG_*), attributed to the plugin, run and step of `call`.
     * Returns HM_OK, HM_ERR_STALE_CALL. Since 1.0. */
    hm_status_t (*log)(hm_call_t call, int32_t level, const uint8_t *msg, size_t msg_len);

    /* [call-thread] Reads the value stored under `key` in `scope` (HM_KV_SCOPE_*).
     * On HM_OK, *out holds a copy owned by the plugin, released with
     * hm_host_api_t.free. Returns HM_OK, HM_ERR_NOT_FOUND (out untouched),
     * HM_ERR_INVALID_ARGUMENT (unknown scope, null out), HM_ERR_UNAVAILABLE
     * (BUILD/STEP scope outside a run, PLUGIN scope during `manifest`),
     * HM_ERR_STALE_CALL, HM_ERR_IO. Since 1.0. */
    hm_status_t (*kv_get)(hm_call_t call, int32_t scope, const uint8_t *key, size_t key_len,
                          hm_buf_t *out);

    /* [call-thread] Stores a copy of `value` under `key` in `scope`. A zero-length
     * value is stored as such (it is not a delete). Same errors as kv_get but
     * HM_ERR_NOT_FOUND. Since 1.0. */
    hm_status_t (*kv_set)(hm_call_t call, int32_t scope, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len);

    /* [call-thread] Publishes a plugin event: msgpack PluginEvent
     * {name: str, data: map}. During a run it reaches `--format json` output and
     * the hooks (not when sent from a hook call); outside a run, hm's debug log.
     * Returns HM_OK, HM_ERR_INVALID_ARGUMENT (not a PluginEvent), HM_ERR_STALE_CALL.
     * Since 1.0. */
    hm_status_t (*emit_event)(hm_call_t call, const uint8_t *msg, size_t msg_len);

    /* [call-thread] Streams output of the step `call` executes. `data` is raw bytes
     * (any encoding; invalid UTF-8 is shown with replacement characters) and need
     * not end at a line boundary: the host joins partial lines. `stream` is
     * HM_STREAM_STDOUT or HM_STREAM_STDERR. Returns HM_OK, HM_ERR_INVALID_ARGUMENT,
     * HM_ERR_UNAVAILABLE (not an execute_step call), HM_ERR_STALE_CALL. Since 1.0. */
    hm_status_t (*emit_step_log)(hm_call_t call, int32_t stream, const uint8_t *data,
                                 size_t data_len);

    /* [call-thread] Asks whether the work of `call` should stop (Ctrl-C, fail-fast,
     * timeout). Cheap: poll it often. Returns HM_OK (keep going), HM_CANCELLED
     * (stop as soon as possible and return), HM_ERR_STALE_CALL. Since 1.0. */
    hm_status_t (*should_cancel)(hm_call_t call);

    /* [call-thread] Writes bytes to the user's standard output / standard error,
     * unbuffered by the host. Meant for subcommands. During a run, stdout belongs
     * to `--format json`: in execute_step the bytes go to the step's log (as
     * emit_step_log would), in a hook call to hm's standard error.
     * Returns HM_OK, HM_ERR_STALE_CALL, HM_ERR_IO. Since 1.0. */
    hm_status_t (*write_stdout)(hm_call_t call, const uint8_t *data, size_t data_len);
    hm_status_t (*write_stderr)(hm_call_t call, const uint8_t *data, size_t data_len);

    /* [call-thread] Reads up to `cap` bytes at `offset` of the run's workspace
     * archive (an uncompressed POSIX tar of the project) into the plugin's buffer
     * `buf`; *out_read receives the number of bytes copied (0 at the end).
     * Returns HM_OK, HM_ERR_UNAVAILABLE (no archive in this call),
     * HM_ERR_INVALID_ARGUMENT, HM_ERR_STALE_CALL, HM_ERR_IO. Since 1.0. */
    hm_status_t (*archive_read)(hm_call_t call, uint64_t offset, uint8_t *buf, size_t cap,
                                size_t *out_read);

    /* [call-thread] *out_size receives the archive's size in bytes.
     * Returns the same codes as archive_read. Since 1.0. */
    hm_status_t (*archive_total_size)(hm_call_t call, uint64_t *out_size);

    /* [call-thread] Reads the regular file at `path` (UTF-8, relative to the
     * project's `.hm/` directory, at most 16 MiB) into *out, owned by the plugin
     * and released with hm_host_api_t.free. The host resolves the path beneath
     * `.hm/` without a window (openat2 RESOLVE_BENEATH, else component by component
     * with O_NOFOLLOW): a path that is absolute, has a `..` component or leaves
     * `.hm/` through a symlink is refused, and so are FIFOs, devices, sockets and
     * larger files (without blocking). Returns HM_OK, HM_ERR_DENIED,
     * HM_ERR_NOT_FOUND (missing, or a directory), HM_ERR_IO, HM_ERR_UNAVAILABLE (no
     * project), HM_ERR_STALE_CALL. On any error *out is left untouched. Since 1.0. */
    hm_status_t (*fs_read_config)(hm_call_t call, const uint8_t *path, size_t path_len,
                                  hm_buf_t *out);

    /* [any-thread] Releases bytes the host handed to the plugin (kv_get,
     * fs_read_config). Accepts NULL. Since 1.0. */
    void (*free)(uint8_t *ptr, size_t len);

    /* ---- Since 1.1. Check with HM_TABLE_HAS before use: a 1.0 host's table ends above. */

    /* [call-thread] Atomically replaces the value under `key` in `scope` with
     * `value`, if and only if the stored value is `expected`. `expected` NULL
     * means "no value is stored" (the key must be absent; a new key is created);
     * to expect a zero-length value pass any non-NULL pointer with expected_len 0.
     * The comparison and the write are one transaction: across the threads of a
     * run and, for HM_KV_SCOPE_PLUGIN, across hm processes (SQLite). All inputs
     * are borrowed. Returns HM_OK (written), HM_ERR_CONFLICT (the stored value
     * differs; nothing written), HM_ERR_INVALID_ARGUMENT (unknown scope, NULL
     * key/value with a length), HM_ERR_UNAVAILABLE (as kv_set: BUILD/STEP scope
     * outside a run, PLUGIN scope during `manifest`), HM_ERR_STALE_CALL,
     * HM_ERR_IO. Since 1.1. */
    hm_status_t (*kv_compare_and_swap)(hm_call_t call, int32_t scope, const uint8_t *key, size_t key_len,
                                       const uint8_t *expected, size_t expected_len, const uint8_t *value,
                                       size_t value_len);

    /* [call-thread] Streams output of the interactive session that `call`
     * serves (a session_open call): raw terminal bytes, borrowed, any length.
     * The host keeps the last bytes of every session in a bounded ring (1 MiB by
     * default) and replays them to a terminal that attaches later. Returns HM_OK,
     * HM_ERR_INVALID_ARGUMENT (NULL data with a length), HM_ERR_UNAVAILABLE (not
     * a session_open call), HM_ERR_STALE_CALL. Since 1.1. */
    hm_status_t (*session_output)(hm_call_t call, const uint8_t *data, size_t data_len);
} hm_host_api_t;

/* [call-thread] host->kv_compare_and_swap where the host has it, else
 * HM_ERR_UNAVAILABLE (an hm of ABI 1.0, or `hm plugin check`'s 1.0 table):
 * a plugin calls this and handles "unavailable" instead of checking the table
 * itself. Arguments, result and ownership are those of kv_compare_and_swap.
 * Since 1.1. */
static inline hm_status_t hm_host_kv_compare_and_swap(const hm_host_api_t *host, hm_call_t call, int32_t scope,
                                                      const uint8_t *key, size_t key_len,
                                                      const uint8_t *expected, size_t expected_len,
                                                      const uint8_t *value, size_t value_len)
{
    if (host == NULL || !HM_HOST_HAS(host, kv_compare_and_swap))
        return HM_ERR_UNAVAILABLE;
    return host->kv_compare_and_swap(call, scope, key, key_len, expected, expected_len, value, value_len);
}

/* [call-thread] host->session_output where the host has it, else
 * HM_ERR_UNAVAILABLE. Since 1.1. */
static inline hm_status_t hm_host_session_output(const hm_host_api_t *host, hm_call_t call, const uint8_t *data,
                                                 size_t data_len)
{
    if (host == NULL || !HM_HOST_HAS(host, session_output))
        return HM_ERR_UNAVAILABLE;
    return host->session_output(call, data, data_len);
}

/* --------------------------------------------------------------------------
 * The plugin vtable. Added in 1.0.
 *
 * Filled by the plugin, returned by hm_load_plugin; it must stay valid until
 * the process exits (a `static const` table is the usual choice). `instance` is
 * the pointer hm_load_plugin stored in *out_instance and is passed back
 * unchanged.
 *
 * Capability functions share one shape: `input` is borrowed msgpack; on return
 * `*out` holds owned msgpack released by the host through `free`:
 *   HM_OK          -> *out is the capability's success message.
 *   HM_ERR_FAILED  -> *out is a PluginError.
 *   other codes    -> *out may be left empty ({NULL, 0}), or hold a PluginError
 *                     that the host shows with the code.
 * The host initialises *out to {NULL, 0} before each call and, whatever the
 * status, releases a non-NULL *out through `free` exactly once. Capability functions
 * are [any-thread]: the host calls them concurrently from several threads (one
 * per running step), so guard shared state. They must not unwind (C++
 * exceptions, Rust panics) across the boundary.
 * A capability the plugin does not offer may be NULL.
 * ------------------------------------------------------------------------ */
typedef struct hm_plugin_vtable {
    hm_abi_header_t header;

    /* [any-thread] Required. *out receives the msgpack PluginManifest: name,
     * semver version, capabilities. The host caches the result by the library's
     * path, size, mtime and content hash, but calls it again in each process that
     * uses the plugin: it must return the same manifest every time. During this
     * call the plugin's name is not known yet, so the PLUGIN KV scope answers
     * HM_ERR_UNAVAILABLE. Since 1.0. */
    hm_status_t (*manifest)(void *instance, hm_call_t call, hm_buf_t *out);

    /* [any-thread] Step executors. input: ExecutorInput; success output:
     * StepResult. Stream output with host->emit_step_log, poll
     * host->should_cancel. Since 1.0. */
    hm_status_t (*execute_step)(void *instance, hm_call_t call, const uint8_t *input,
                                size_t input_len, hm_buf_t *out);

    /* [any-thread] Lifecycle hooks. input: HookEvent; success output:
     * HookOutcome ({kind: "continue"} or {kind: "abort", reason}). Since 1.0. */
    hm_status_t (*on_hook_event)(void *instance, hm_call_t call, const uint8_t *input,
                                 size_t input_len, hm_buf_t *out);

    /* [any-thread] Subcommands. input: SubcommandInput; success output: ExitInfo.
     * Since 1.0. */
    hm_status_t (*run_subcommand)(void *instance, hm_call_t call, const uint8_t *input,
                                  size_t input_len, hm_buf_t *out);

    /* [any-thread] Required. Releases bytes the plugin returned in an hm_buf_t.
     * Called with exactly the ptr/len it returned; never with NULL. Since 1.0. */
    void (*free)(void *instance, uint8_t *ptr, size_t len);

    /* [load-thread] Required. The instance's last call: release what it owns.
     * hm calls it when the process exits, if no call into the plugin is still
     * running (a runner abandoned after a timeout may be); no other vtable
     * function is called on this instance afterwards. The library itself is
     * never unloaded. Since 1.0. */
    void (*destroy)(void *instance);

    /* ---- Since 1.1: interactive sessions (step executors). The host reads these
     * only when struct_size covers them; a 1.0 plugin (or NULL entries) has none,
     * and hm says the runner cannot open sessions. A runner that has them also
     * sets `sessions: true` in its step_executor capability. */

    /* [any-thread] Runs an interactive session into a step's environment and
     * returns when it ends. input: SessionSpec (step, workspace, env, argv, rows,
     * cols, ...); success output: ExitInfo {exit_code} of the session's process.
     * The runner starts the process on a terminal (a PTY, or the engine's TTY),
     * streams everything it prints through host->session_output(call, ...) and
     * polls host->should_cancel(call) (HM_CANCELLED: end the session). `call`
     * names the session in the four functions below, which the host calls from
     * other threads while this one runs. Since 1.1. */
    hm_status_t (*session_open)(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                                hm_buf_t *out);

    /* [any-thread] Writes terminal input (keystrokes, borrowed) to the session
     * `session` (the call handle of its session_open). A Ctrl-C arrives here as
     * the byte 0x03: the terminal's line discipline turns it into SIGINT for the
     * session's foreground job. Returns HM_OK, HM_ERR_STALE_CALL (no such session
     * is running), HM_ERR_IO. Since 1.1. */
    hm_status_t (*session_write)(void *instance, hm_call_t session, const uint8_t *data, size_t data_len);

    /* [any-thread] The user's terminal is now `rows` x `cols`: resize the
     * session's terminal (its processes get SIGWINCH). Returns HM_OK,
     * HM_ERR_INVALID_ARGUMENT (0 rows or cols), HM_ERR_STALE_CALL, HM_ERR_IO.
     * Since 1.1. */
    hm_status_t (*session_resize)(void *instance, hm_call_t session, uint16_t rows, uint16_t cols);

    /* [any-thread] Sends `signal` (HM_SIGNAL_*) to the session's process group.
     * Returns HM_OK, HM_ERR_INVALID_ARGUMENT (unknown signal), HM_ERR_STALE_CALL.
     * Since 1.1. */
    hm_status_t (*session_signal)(void *instance, hm_call_t session, int32_t signal);

    /* [any-thread] Ends the session: hang up its terminal, stop its processes
     * (forced after a short grace), and make session_open return. Idempotent.
     * Returns HM_OK, HM_ERR_STALE_CALL. Since 1.1. */
    hm_status_t (*session_close)(void *instance, hm_call_t session);
} hm_plugin_vtable_t;

/* --------------------------------------------------------------------------
 * The entry point. Added in 1.0.
 *
 * [load-thread] Called once per process. `host` is valid until the process
 * exits; keep the pointer. Check host->header.abi_major == HM_ABI_MAJOR and
 * fail (return NULL) if not. On success store the plugin's instance pointer
 * (may be NULL if the plugin has no state) in *out_instance and return the
 * vtable. Returning NULL means the plugin refused to load; the host reports it.
 * Do no heavy work here: listing plugins may call it.
 * ------------------------------------------------------------------------ */
typedef const hm_plugin_vtable_t *(*hm_load_plugin_fn)(const hm_host_api_t *host,
                                                       void **out_instance);

HM_EXPORT const hm_plugin_vtable_t *hm_load_plugin(const hm_host_api_t *host,
                                                   void **out_instance);

#ifdef __cplusplus
}
#endif

#endif /* HM_PLUGIN_H */
