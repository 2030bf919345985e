/*
 * hm_protocol.h — encoders and decoders for the messages a C plugin exchanges
 * with hm (docs/plugin-authors.md §4), built on hm_msgpack.h. Header-only: every
 * function is `static inline`, so a plugin gets its own copy and exports nothing.
 * Added with ABI 1.1; it uses only 1.0 entries of hm_plugin.h, so a plugin built
 * against the 1.0 header may include it too.
 *
 * What is here:
 *   outputs:   hm_proto_finish, hm_proto_plugin_error / hm_proto_error,
 *              hm_proto_step_result, hm_proto_hook_outcome, hm_proto_exit_info;
 *   manifest:  hm_proto_manifest_begin, hm_proto_cap_step_executor (then
 *              hm_proto_runner_arg), hm_proto_cap_lifecycle_hook,
 *              hm_proto_cap_subcommand (then hm_proto_arg);
 *   inputs:    hm_proto_get_str / _map / _int / _bool (one field of a map);
 *   decoders:  hm_proto_decode_plugin_error, _step_result, _hook_outcome,
 *              _exit_info, _manifest (for a plugin's tests, or a plugin that reads
 *              another's answer). Decoded strings are BORROWED from the input
 *              (pointer and length, not NUL-terminated) and valid while it is.
 *
 * Ownership: an encoder writes into a fresh hm_mp_writer_t and hands the bytes to
 * *out (malloc'd by hm_msgpack.h): release them with free(), which is what the
 * plugin's vtable `free` must do for them. Every encoder returns the status the
 * capability should return, or HM_ERR_NO_MEMORY with *out = {NULL, 0} when an
 * allocation failed. Strings must be valid UTF-8 (hm refuses a message whose
 * str values are not); NULL optional strings are left out of the message.
 *
 * Threads: nothing here has state; every function is [any-thread].
 */
#ifndef HM_PROTOCOL_H
#define HM_PROTOCOL_H

#include <stdint.h>
#include <string.h>

#include "hm_msgpack.h"
#include "hm_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- outputs ------------------------------------------------------------ */

/* Hands the writer's bytes to *out and returns `status`; if any write failed, the
 * bytes are dropped, *out is {NULL, 0} and the result is HM_ERR_NO_MEMORY. */
static inline hm_status_t hm_proto_finish(hm_mp_writer_t *w, hm_buf_t *out, hm_status_t status)
{
    uint8_t *ptr = NULL;
    size_t len = 0;
    if (out == NULL) {
        hm_mp_writer_discard(w);
        return HM_ERR_INVALID_ARGUMENT;
    }
    if (hm_mp_writer_finish(w, &ptr, &len) != 0) {
        out->ptr = NULL;
        out->len = 0;
        return HM_ERR_NO_MEMORY;
    }
    out->ptr = ptr;
    out->len = len;
    return status;
}

/* Writes the map entry `key: value` (value NULL: nil). */
static inline void hm_proto_kv_str(hm_mp_writer_t *w, const char *key, const char *value)
{
    hm_mp_write_cstr(w, key);
    hm_mp_write_cstr(w, value);
}

/* A PluginError to encode. `code` and `message` are required; the rest may be
 * NULL / 0 and are then left out. `retry_commands` has `n_retry_commands` strings. */
typedef struct hm_proto_error {
    const char *code;
    const char *message;
    const char *title;
    const char *suggestion;
    int retryable;
    const char *const *retry_commands;
    uint32_t n_retry_commands;
    const char *doc_url;
} hm_proto_error_t;

/* *out = the PluginError *e; returns `status` (usually HM_ERR_FAILED). */
static inline hm_status_t hm_proto_plugin_error(hm_buf_t *out, hm_status_t status, const hm_proto_error_t *e)
{
    hm_mp_writer_t w;
    uint32_t n = 2, i;
    n += e->title != NULL;
    n += e->suggestion != NULL;
    n += e->retryable != 0;
    n += e->n_retry_commands != 0;
    n += e->doc_url != NULL;
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, n);
    hm_proto_kv_str(&w, "code", e->code != NULL ? e->code : "internal");
    hm_proto_kv_str(&w, "message", e->message != NULL ? e->message : "");
    if (e->title != NULL)
        hm_proto_kv_str(&w, "title", e->title);
    if (e->suggestion != NULL)
        hm_proto_kv_str(&w, "suggestion", e->suggestion);
    if (e->retryable) {
        hm_mp_write_cstr(&w, "retryable");
        hm_mp_write_bool(&w, 1);
    }
    if (e->n_retry_commands) {
        hm_mp_write_cstr(&w, "retry_commands");
        hm_mp_write_array(&w, e->n_retry_commands);
        for (i = 0; i < e->n_retry_commands; i++)
            hm_mp_write_cstr(&w, e->retry_commands[i]);
    }
    if (e->doc_url != NULL)
        hm_proto_kv_str(&w, "doc_url", e->doc_url);
    return hm_proto_finish(&w, out, status);
}

/* *out = PluginError {code, message}; returns `status`. */
static inline hm_status_t hm_proto_error(hm_buf_t *out, hm_status_t status, const char *code, const char *message)
{
    hm_proto_error_t e;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.message = message;
    return hm_proto_plugin_error(out, status, &e);
}

/* *out = StepResult {exit_code, status, message?, image_id?}; returns HM_OK.
 * `status` is "succeeded", "failed", "timed_out" or "cancelled". */
static inline hm_status_t hm_proto_step_result(hm_buf_t *out, int64_t exit_code, const char *status,
                                               const char *message, const char *image_id)
{
    hm_mp_writer_t w;
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 2u + (message != NULL) + (image_id != NULL));
    hm_mp_write_cstr(&w, "exit_code");
    hm_mp_write_int(&w, exit_code);
    hm_proto_kv_str(&w, "status", status != NULL ? status : "succeeded");
    if (message != NULL)
        hm_proto_kv_str(&w, "message", message);
    if (image_id != NULL)
        hm_proto_kv_str(&w, "image_id", image_id);
    return hm_proto_finish(&w, out, HM_OK);
}

/* *out = HookOutcome: {kind: "continue"} when abort_reason is NULL, else
 * {kind: "abort", reason}; returns HM_OK. */
static inline hm_status_t hm_proto_hook_outcome(hm_buf_t *out, const char *abort_reason)
{
    hm_mp_writer_t w;
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, abort_reason == NULL ? 1u : 2u);
    hm_proto_kv_str(&w, "kind", abort_reason == NULL ? "continue" : "abort");
    if (abort_reason != NULL)
        hm_proto_kv_str(&w, "reason", abort_reason);
    return hm_proto_finish(&w, out, HM_OK);
}

/* *out = ExitInfo {exit_code, message?}; returns HM_OK. The output of
 * run_subcommand and (since 1.1) session_open. */
static inline hm_status_t hm_proto_exit_info(hm_buf_t *out, int64_t exit_code, const char *message)
{
    hm_mp_writer_t w;
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, message != NULL ? 2u : 1u);
    hm_mp_write_cstr(&w, "exit_code");
    hm_mp_write_int(&w, exit_code);
    if (message != NULL)
        hm_proto_kv_str(&w, "message", message);
    return hm_proto_finish(&w, out, HM_OK);
}

/* ---- the manifest ----------------------------------------------------------- */

/* Starts a PluginManifest {name, version, description, capabilities: [...]};
 * exactly `ncaps` hm_proto_cap_* calls must follow. */
static inline void hm_proto_manifest_begin(hm_mp_writer_t *w, const char *name, const char *version,
                                           const char *description, uint32_t ncaps)
{
    hm_mp_write_map(w, 4);
    hm_proto_kv_str(w, "name", name);
    hm_proto_kv_str(w, "version", version);
    hm_proto_kv_str(w, "description", description != NULL ? description : "");
    hm_mp_write_cstr(w, "capabilities");
    hm_mp_write_array(w, ncaps);
}

/* A step_executor capability. Zeroed fields are left at hm's defaults. */
typedef struct hm_proto_executor {
    const char *const *runners;
    uint32_t n_runners;
    int is_default;
    int images;
    int resolves_images;
    /* Since 1.1: the runner implements the session_* vtable entries. */
    int sessions;
    /* Write "runner_args" with n_runner_args specs, which the caller writes with
     * hm_proto_runner_arg right after hm_proto_cap_step_executor. 0: no key (hm
     * leaves runner_args unchecked). */
    int has_runner_args;
    uint32_t n_runner_args;
} hm_proto_executor_t;

static inline void hm_proto_cap_step_executor(hm_mp_writer_t *w, const hm_proto_executor_t *e)
{
    uint32_t i, n = 3;
    n += e->images != 0;
    n += e->resolves_images != 0;
    n += e->sessions != 0;
    n += e->has_runner_args != 0;
    hm_mp_write_map(w, n);
    hm_proto_kv_str(w, "kind", "step_executor");
    hm_mp_write_cstr(w, "runners");
    hm_mp_write_array(w, e->n_runners);
    for (i = 0; i < e->n_runners; i++)
        hm_mp_write_cstr(w, e->runners[i]);
    hm_mp_write_cstr(w, "default");
    hm_mp_write_bool(w, e->is_default);
    if (e->images) {
        hm_mp_write_cstr(w, "images");
        hm_mp_write_bool(w, 1);
    }
    if (e->resolves_images) {
        hm_mp_write_cstr(w, "resolves_images");
        hm_mp_write_bool(w, 1);
    }
    if (e->sessions) {
        hm_mp_write_cstr(w, "sessions");
        hm_mp_write_bool(w, 1);
    }
    if (e->has_runner_args) { /* last: the specs follow */
        hm_mp_write_cstr(w, "runner_args");
        hm_mp_write_array(w, e->n_runner_args);
    }
}

/* One RunnerArgSpec {name, types: [...], choices?: [...], pattern?, help}: `types`
 * of "string", "int", "number", "bool"; no choices with n_choices 0; pattern NULL
 * for none. */
static inline void hm_proto_runner_arg(hm_mp_writer_t *w, const char *name, const char *const *types,
                                       uint32_t n_types, const char *const *choices, uint32_t n_choices,
                                       const char *pattern, const char *help)
{
    uint32_t i;
    hm_mp_write_map(w, 3u + (n_choices > 0) + (pattern != NULL));
    hm_proto_kv_str(w, "name", name);
    hm_mp_write_cstr(w, "types");
    hm_mp_write_array(w, n_types);
    for (i = 0; i < n_types; i++)
        hm_mp_write_cstr(w, types[i]);
    if (n_choices > 0) {
        hm_mp_write_cstr(w, "choices");
        hm_mp_write_array(w, n_choices);
        for (i = 0; i < n_choices; i++)
            hm_mp_write_cstr(w, choices[i]);
    }
    if (pattern != NULL)
        hm_proto_kv_str(w, "pattern", pattern);
    hm_proto_kv_str(w, "help", help != NULL ? help : "");
}

/* {kind: "lifecycle_hook", phase, events: [events...] (none: all but step_log), timeout_ms} */
static inline void hm_proto_cap_lifecycle_hook(hm_mp_writer_t *w, const char *phase, const char *const *events,
                                               uint32_t n_events, int64_t timeout_ms)
{
    uint32_t i;
    hm_mp_write_map(w, 4);
    hm_proto_kv_str(w, "kind", "lifecycle_hook");
    hm_proto_kv_str(w, "phase", phase);
    hm_mp_write_cstr(w, "events");
    hm_mp_write_array(w, n_events);
    for (i = 0; i < n_events; i++)
        hm_mp_write_cstr(w, events[i]);
    hm_mp_write_cstr(w, "timeout_ms");
    hm_mp_write_int(w, timeout_ms);
}

/* {kind: "subcommand", verb: [verbs...], summary, args: [...]}: exactly `nargs`
 * hm_proto_arg calls must follow. */
static inline void hm_proto_cap_subcommand(hm_mp_writer_t *w, const char *const *verbs, uint32_t nverbs,
                                           const char *summary, uint32_t nargs)
{
    uint32_t i;
    hm_mp_write_map(w, 4);
    hm_proto_kv_str(w, "kind", "subcommand");
    hm_mp_write_cstr(w, "verb");
    hm_mp_write_array(w, nverbs);
    for (i = 0; i < nverbs; i++)
        hm_mp_write_cstr(w, verbs[i]);
    hm_proto_kv_str(w, "summary", summary != NULL ? summary : "");
    hm_mp_write_cstr(w, "args");
    hm_mp_write_array(w, nargs);
}

/* One ArgSpec {name, kind ("positional" | "option" | "flag"), type ("string" |
 * "int" | "bool"), required, help}. */
static inline void hm_proto_arg(hm_mp_writer_t *w, const char *name, const char *kind, const char *type,
                                int required, const char *help)
{
    hm_mp_write_map(w, 5);
    hm_proto_kv_str(w, "name", name);
    hm_proto_kv_str(w, "kind", kind);
    hm_proto_kv_str(w, "type", type);
    hm_mp_write_cstr(w, "required");
    hm_mp_write_bool(w, required);
    hm_proto_kv_str(w, "help", help != NULL ? help : "");
}

/* ---- reading inputs --------------------------------------------------------- */

/* `map` is positioned at a map. Each getter returns 0 and fills its output with
 * the value of `key`, or -1 when the key is missing or has another type. */
static inline int hm_proto_get_str(const hm_mp_reader_t *map, const char *key, const char **s, size_t *n)
{
    hm_mp_reader_t v;
    if (hm_mp_map_find(map, key, &v) != 0)
        return -1;
    return hm_mp_read_str(&v, s, n) == 0 ? 0 : -1;
}

static inline int hm_proto_get_map(const hm_mp_reader_t *map, const char *key, hm_mp_reader_t *out)
{
    hm_mp_reader_t v;
    if (hm_mp_map_find(map, key, &v) != 0 || hm_mp_peek(&v) != HM_MP_MAP)
        return -1;
    *out = v;
    return 0;
}

static inline int hm_proto_get_int(const hm_mp_reader_t *map, const char *key, int64_t *out)
{
    hm_mp_reader_t v;
    if (hm_mp_map_find(map, key, &v) != 0)
        return -1;
    return hm_mp_read_int(&v, out) == 0 ? 0 : -1;
}

static inline int hm_proto_get_bool(const hm_mp_reader_t *map, const char *key, int *out)
{
    hm_mp_reader_t v;
    if (hm_mp_map_find(map, key, &v) != 0)
        return -1;
    return hm_mp_read_bool(&v, out) == 0 ? 0 : -1;
}

/* ---- decoders --------------------------------------------------------------- */

/* A borrowed string: `ptr` NULL when the field was missing or nil. */
typedef struct hm_proto_str {
    const char *ptr;
    size_t len;
} hm_proto_str_t;

static inline void hm_proto_opt_str(const hm_mp_reader_t *map, const char *key, hm_proto_str_t *out)
{
    if (hm_proto_get_str(map, key, &out->ptr, &out->len) != 0) {
        out->ptr = NULL;
        out->len = 0;
    }
}

static inline int hm_proto_open_map(const uint8_t *data, size_t len, hm_mp_reader_t *r)
{
    if (data == NULL)
        return -1;
    hm_mp_reader_init(r, data, len);
    return hm_mp_peek(r) == HM_MP_MAP ? 0 : -1;
}

/* A decoded PluginError. `retry_commands` is positioned at the array (when
 * n_retry_commands > 0): read each with hm_mp_read_str. */
typedef struct hm_proto_error_view {
    hm_proto_str_t code, message, title, suggestion, doc_url;
    int retryable;
    uint32_t n_retry_commands;
    hm_mp_reader_t retry_commands;
} hm_proto_error_view_t;

/* 0, or -1 when `data` is not a PluginError (no map, no code or message). */
static inline int hm_proto_decode_plugin_error(const uint8_t *data, size_t len, hm_proto_error_view_t *e)
{
    hm_mp_reader_t r, v;
    memset(e, 0, sizeof *e);
    if (hm_proto_open_map(data, len, &r) != 0)
        return -1;
    hm_proto_opt_str(&r, "code", &e->code);
    hm_proto_opt_str(&r, "message", &e->message);
    if (e->code.ptr == NULL || e->message.ptr == NULL)
        return -1;
    hm_proto_opt_str(&r, "title", &e->title);
    hm_proto_opt_str(&r, "suggestion", &e->suggestion);
    hm_proto_opt_str(&r, "doc_url", &e->doc_url);
    if (hm_proto_get_bool(&r, "retryable", &e->retryable) != 0)
        e->retryable = 0;
    if (hm_mp_map_find(&r, "retry_commands", &v) == 0 && hm_mp_read_array(&v, &e->n_retry_commands) == 0)
        e->retry_commands = v;
    else
        e->n_retry_commands = 0;
    return 0;
}

typedef struct hm_proto_step_result_view {
    int64_t exit_code;
    hm_proto_str_t status; /* "succeeded" when missing */
    hm_proto_str_t message, image_id;
} hm_proto_step_result_view_t;

/* 0, or -1 when `data` is not a StepResult (no map or no int exit_code). */
static inline int hm_proto_decode_step_result(const uint8_t *data, size_t len, hm_proto_step_result_view_t *s)
{
    hm_mp_reader_t r;
    memset(s, 0, sizeof *s);
    if (hm_proto_open_map(data, len, &r) != 0 || hm_proto_get_int(&r, "exit_code", &s->exit_code) != 0)
        return -1;
    hm_proto_opt_str(&r, "status", &s->status);
    if (s->status.ptr == NULL) {
        s->status.ptr = "succeeded";
        s->status.len = 9;
    }
    hm_proto_opt_str(&r, "message", &s->message);
    hm_proto_opt_str(&r, "image_id", &s->image_id);
    return 0;
}

/* *is_abort is 1 for {kind: "abort"}; *reason is borrowed (ptr NULL: none).
 * 0, or -1 when `data` is not a HookOutcome. */
static inline int hm_proto_decode_hook_outcome(const uint8_t *data, size_t len, int *is_abort, hm_proto_str_t *reason)
{
    hm_mp_reader_t r;
    hm_proto_str_t kind;
    if (hm_proto_open_map(data, len, &r) != 0)
        return -1;
    hm_proto_opt_str(&r, "kind", &kind);
    hm_proto_opt_str(&r, "reason", reason);
    if (kind.ptr == NULL || hm_mp_str_eq(kind.ptr, kind.len, "continue"))
        *is_abort = 0;
    else if (hm_mp_str_eq(kind.ptr, kind.len, "abort"))
        *is_abort = 1;
    else
        return -1;
    return 0;
}

/* 0, or -1 when `data` is not an ExitInfo. exit_code defaults to 0. */
static inline int hm_proto_decode_exit_info(const uint8_t *data, size_t len, int64_t *exit_code,
                                            hm_proto_str_t *message)
{
    hm_mp_reader_t r;
    if (hm_proto_open_map(data, len, &r) != 0)
        return -1;
    if (hm_proto_get_int(&r, "exit_code", exit_code) != 0)
        *exit_code = 0;
    hm_proto_opt_str(&r, "message", message);
    return 0;
}

/* The manifest's name and version, and *capabilities positioned at its array of
 * *n_capabilities maps (read each with hm_mp_map_find / hm_proto_get_*; skip
 * with hm_mp_skip). 0, or -1 when `data` is not a manifest. */
static inline int hm_proto_decode_manifest(const uint8_t *data, size_t len, hm_proto_str_t *name,
                                           hm_proto_str_t *version, hm_mp_reader_t *capabilities,
                                           uint32_t *n_capabilities)
{
    hm_mp_reader_t r, v;
    if (hm_proto_open_map(data, len, &r) != 0)
        return -1;
    hm_proto_opt_str(&r, "name", name);
    hm_proto_opt_str(&r, "version", version);
    if (name->ptr == NULL || version->ptr == NULL)
        return -1;
    if (hm_mp_map_find(&r, "capabilities", &v) != 0 || hm_mp_read_array(&v, n_capabilities) != 0)
        return -1;
    *capabilities = v;
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* HM_PROTOCOL_H */
