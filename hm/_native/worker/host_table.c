/*
 * host_table.c — the host-API table a plugin gets inside hm-worker.
 *
 * Each function first answers what the worker knows itself (a stale handle, a
 * NULL out-pointer, the cancel flag, step output outside execute_step), so the
 * plugin sees the same status codes as in hm's own process; the rest becomes
 * a REQUEST (answered by hm) or a NOTIFY (one-way, batched).
 * Every function is [call-thread]-safe: the state it touches is in calls.c and
 * wire.c, under their mutexes.
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "hm_msgpack.h"

static int stale(hm_call_t call)
{
    return wk_calls_op(call) < 0;
}

/* Builds the args of a request or notification; sticky errors: check once. */
typedef struct args {
    hm_mp_writer_t w;
    uint32_t n;
} args_t;

static void notify(hm_call_t call, int fn, args_t *a)
{
    hm_mp_writer_t mw;
    uint8_t *args = NULL, *body = NULL;
    size_t args_len = 0, body_len = 0;
    if (hm_mp_writer_finish(&a->w, &args, &args_len) != 0)
        return;
    hm_mp_writer_init(&mw);
    hm_mp_write_array(&mw, 3 + a->n);
    hm_mp_write_uint(&mw, WK_NOTIFY);
    hm_mp_write_uint(&mw, call);
    hm_mp_write_uint(&mw, (uint64_t)fn);
    hm_mp_write_raw(&mw, args, args_len);
    if (hm_mp_writer_finish(&mw, &body, &body_len) == 0) {
        wk_send_later(body, body_len);
        free(body);
    }
    free(args);
}

static int32_t request(hm_call_t call, int fn, args_t *a, wk_reply_t *reply)
{
    uint8_t *args = NULL;
    size_t args_len = 0;
    if (hm_mp_writer_finish(&a->w, &args, &args_len) != 0)
        return HM_ERR_NO_MEMORY;
    wk_request(call, fn, args, args_len, a->n, reply);
    free(args);
    return reply->status;
}

static hm_status_t h_log(hm_call_t call, int32_t level, const uint8_t *msg, size_t msg_len)
{
    args_t a;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (msg == NULL && msg_len)
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 2;
    hm_mp_write_int(&a.w, level);
    hm_mp_write_bin(&a.w, msg, msg_len);
    notify(call, WK_NOTE_LOG, &a);
    return HM_OK;
}

/* Hands reply bytes to the plugin as host-owned memory (released with h_free). */
static hm_status_t hand_over(wk_reply_t *r, hm_buf_t *out)
{
    if (r->status != HM_OK) {
        free(r->data);
        return r->status;
    }
    if (r->data == NULL) {
        r->data = (uint8_t *)malloc(1);
        if (r->data == NULL)
            return HM_ERR_NO_MEMORY;
    }
    out->ptr = r->data;
    out->len = r->len;
    return HM_OK;
}

static hm_status_t h_kv_get(hm_call_t call, int32_t scope, const uint8_t *key, size_t key_len, hm_buf_t *out)
{
    args_t a;
    wk_reply_t r;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (out == NULL || (key == NULL && key_len))
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 2;
    hm_mp_write_int(&a.w, scope);
    hm_mp_write_bin(&a.w, key, key_len);
    request(call, WK_REQ_KV_GET, &a, &r);
    return hand_over(&r, out);
}

static hm_status_t h_kv_set(hm_call_t call, int32_t scope, const uint8_t *key, size_t key_len,
                            const uint8_t *value, size_t value_len)
{
    args_t a;
    wk_reply_t r;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if ((key == NULL && key_len) || (value == NULL && value_len))
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 3;
    hm_mp_write_int(&a.w, scope);
    hm_mp_write_bin(&a.w, key, key_len);
    hm_mp_write_bin(&a.w, value, value_len);
    request(call, WK_REQ_KV_SET, &a, &r);
    free(r.data);
    return r.status;
}

static hm_status_t h_emit_event(hm_call_t call, const uint8_t *msg, size_t msg_len)
{
    args_t a;
    wk_reply_t r;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (msg == NULL && msg_len)
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 1;
    hm_mp_write_bin(&a.w, msg, msg_len);
    request(call, WK_REQ_EMIT_EVENT, &a, &r);
    free(r.data);
    return r.status;
}

static hm_status_t h_emit_step_log(hm_call_t call, int32_t stream, const uint8_t *data, size_t data_len)
{
    int op = wk_calls_op(call);
    if (op < 0)
        return HM_ERR_STALE_CALL;
    if ((stream != HM_STREAM_STDOUT && stream != HM_STREAM_STDERR) || (data == NULL && data_len))
        return HM_ERR_INVALID_ARGUMENT;
    if (op != WK_OP_EXECUTE_STEP)
        return HM_ERR_UNAVAILABLE;
    if (data_len)
        wk_send_step_log(call, stream, data, data_len);
    return HM_OK;
}

static hm_status_t h_should_cancel(hm_call_t call)
{
    int c = wk_calls_cancelled(call);
    if (c < 0)
        return HM_ERR_STALE_CALL;
    return c ? HM_CANCELLED : HM_OK;
}

static hm_status_t write_to(hm_call_t call, int fn, const uint8_t *data, size_t data_len)
{
    args_t a;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (data == NULL && data_len)
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 1;
    hm_mp_write_bin(&a.w, data, data_len);
    notify(call, fn, &a);
    return HM_OK;
}

static hm_status_t h_write_stdout(hm_call_t call, const uint8_t *data, size_t data_len)
{
    return write_to(call, WK_NOTE_STDOUT, data, data_len);
}

static hm_status_t h_write_stderr(hm_call_t call, const uint8_t *data, size_t data_len)
{
    return write_to(call, WK_NOTE_STDERR, data, data_len);
}

static hm_status_t h_archive_read(hm_call_t call, uint64_t offset, uint8_t *buf, size_t cap, size_t *out_read)
{
    args_t a;
    wk_reply_t r;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (out_read == NULL || (buf == NULL && cap))
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 2;
    hm_mp_write_uint(&a.w, offset);
    hm_mp_write_uint(&a.w, cap);
    if (request(call, WK_REQ_ARCHIVE_READ, &a, &r) == HM_OK) {
        size_t n = r.len < cap ? r.len : cap;
        if (n)
            memcpy(buf, r.data, n);
        *out_read = n;
    }
    free(r.data);
    return r.status;
}

static hm_status_t h_archive_total_size(hm_call_t call, uint64_t *out_size)
{
    args_t a;
    wk_reply_t r;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (out_size == NULL)
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 0;
    if (request(call, WK_REQ_ARCHIVE_SIZE, &a, &r) == HM_OK)
        *out_size = r.number;
    free(r.data);
    return r.status;
}

static hm_status_t h_fs_read_config(hm_call_t call, const uint8_t *path, size_t path_len, hm_buf_t *out)
{
    args_t a;
    wk_reply_t r;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (out == NULL || (path == NULL && path_len))
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 1;
    hm_mp_write_bin(&a.w, path, path_len);
    request(call, WK_REQ_FS_READ_CONFIG, &a, &r);
    return hand_over(&r, out);
}

/* Since 1.1. `expected` NULL travels as msgpack nil: "the key must be absent". */
static hm_status_t h_kv_compare_and_swap(hm_call_t call, int32_t scope, const uint8_t *key, size_t key_len,
                                         const uint8_t *expected, size_t expected_len, const uint8_t *value,
                                         size_t value_len)
{
    args_t a;
    wk_reply_t r;
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if ((key == NULL && key_len) || (value == NULL && value_len))
        return HM_ERR_INVALID_ARGUMENT;
    hm_mp_writer_init(&a.w);
    a.n = 4;
    hm_mp_write_int(&a.w, scope);
    hm_mp_write_bin(&a.w, key, key_len);
    if (expected == NULL)
        hm_mp_write_nil(&a.w);
    else
        hm_mp_write_bin(&a.w, expected, expected_len);
    hm_mp_write_bin(&a.w, value, value_len);
    request(call, WK_REQ_KV_CAS, &a, &r);
    free(r.data);
    return r.status;
}

/* Since 1.1. A worker runs no sessions (hm opens them in its own process), so
 * no call here is a session_open call. */
static hm_status_t h_session_output(hm_call_t call, const uint8_t *data, size_t data_len)
{
    if (stale(call))
        return HM_ERR_STALE_CALL;
    if (data == NULL && data_len)
        return HM_ERR_INVALID_ARGUMENT;
    return HM_ERR_UNAVAILABLE;
}

static void h_free(uint8_t *ptr, size_t len)
{
    (void)len;
    free(ptr);
}

static const hm_host_api_t TABLE = {
    {(uint32_t)sizeof(hm_host_api_t), HM_ABI_MAJOR, HM_ABI_MINOR},
    NULL,
    h_log,
    h_kv_get,
    h_kv_set,
    h_emit_event,
    h_emit_step_log,
    h_should_cancel,
    h_write_stdout,
    h_write_stderr,
    h_archive_read,
    h_archive_total_size,
    h_fs_read_config,
    h_free,
    h_kv_compare_and_swap,
    h_session_output,
};

const hm_host_api_t *wk_host_table(uint32_t size, uint32_t minor)
{
    hm_host_api_t *copy;
    if (size == 0)
        return &TABLE;
    copy = (hm_host_api_t *)calloc(1, sizeof *copy);
    if (copy == NULL)
        return NULL;
    if (size > sizeof *copy)
        size = (uint32_t)sizeof *copy;
    memcpy(copy, &TABLE, size);
    copy->header.struct_size = size;
    copy->header.abi_minor = minor;
    return copy; /* lives as long as the process, like the real table */
}
