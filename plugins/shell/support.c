/*
 * support.c — the helpers every file of the shell runner uses to talk to the
 * host and to build errors (declared in shell.h, "shared helpers"): PluginError
 * filling, thread-safe strerror, UTF-8 clean-up, guarded host calls (log,
 * should_cancel, emit_step_log), and StepResult / PluginError encoding
 * (through hm_protocol.h).
 *
 * A file of its own so that another bundled runner can compile the workspace
 * code (tar_extract.c, copy_tree.c) with it: plugins/container does.
 */
#include "shell.h"

#include <stdio.h>
#include <string.h>

#include "hm_msgpack.h"
#include "hm_protocol.h"
void sh_force_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = p[0];
        size_t n, i;
        uint32_t cp, min;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2, cp = c & 0x1fu, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3, cp = c & 0x0fu, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4, cp = c & 0x07u, min = 0x10000;
        } else {
            *p++ = '?';
            continue;
        }
        /* a NUL (end of string) fails the continuation test, so we never run past it */
        for (i = 1; i < n; i++) {
            if ((p[i] & 0xc0u) != 0x80u)
                break;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        if (i < n || cp < min || cp > 0x10ffffu || (cp >= 0xd800u && cp <= 0xdfffu)) {
            *p++ = '?'; /* replace the lead byte; continuation bytes follow suit */
            continue;
        }
        p += n;
    }
}

int sh_err_set(sh_error_t *err, const char *code, const char *suggestion, const char *fmt, ...)
{
    va_list ap;
    snprintf(err->code, sizeof err->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    snprintf(err->suggestion, sizeof err->suggestion, "%s", suggestion ? suggestion : "");
    err->retryable = 0;
    /* paths, entry names and errno texts come from outside: a msgpack str must
     * be UTF-8, and snprintf may have cut a multi-byte character in half */
    sh_force_utf8(err->message);
    sh_force_utf8(err->suggestion);
    return SH_FAILED;
}

const char *sh_strerror(int errnum, char *buf, size_t len)
{
    if (len == 0)
        return "";
    buf[0] = '\0';
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    {
        /* GNU variant: may return a static string instead of filling buf */
        const char *s = strerror_r(errnum, buf, len);
        if (s != buf)
            snprintf(buf, len, "%s", s ? s : "");
    }
#else
    if (strerror_r(errnum, buf, len) != 0)
        buf[0] = '\0';
#endif
    if (buf[0] == '\0')
        snprintf(buf, len, "error %d", errnum);
    sh_force_utf8(buf); /* localised messages need not be UTF-8 */
    return buf;
}

void sh_log(const sh_ctx_t *ctx, int32_t level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    if (ctx->host == NULL || !HM_TABLE_HAS(ctx->host, hm_host_api_t, log) || ctx->host->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sh_force_utf8(msg);
    ctx->host->log(ctx->call, level, (const uint8_t *)msg, strlen(msg));
}

int sh_should_cancel(const sh_ctx_t *ctx)
{
    if (ctx->host == NULL || !HM_TABLE_HAS(ctx->host, hm_host_api_t, should_cancel) ||
        ctx->host->should_cancel == NULL)
        return 0;
    /* HM_CANCELLED, but also HM_ERR_STALE_CALL or any other code: stop */
    return ctx->host->should_cancel(ctx->call) != HM_OK;
}

void sh_emit_log(const sh_ctx_t *ctx, int32_t stream, const uint8_t *data, size_t len)
{
    if (len == 0 || ctx->host == NULL || !HM_TABLE_HAS(ctx->host, hm_host_api_t, emit_step_log) ||
        ctx->host->emit_step_log == NULL)
        return;
    ctx->host->emit_step_log(ctx->call, stream, data, len);
}

/* ======================================================================== */
/* Output encoding                                                          */
/* ======================================================================== */

/* The encoders are the SDK's (hm_protocol.h), shared with every C plugin. */
hm_status_t sh_finish(struct hm_mp_writer *w, hm_buf_t *out, hm_status_t status)
{
    return hm_proto_finish(w, out, status);
}

/* Encodes *err as a PluginError; returns HM_ERR_FAILED. */
hm_status_t sh_write_error(hm_buf_t *out, sh_error_t *err)
{
    hm_proto_error_t e;
    if (err->code[0] == '\0')
        snprintf(err->code, sizeof err->code, "%s", "internal");
    if (err->message[0] == '\0')
        snprintf(err->message, sizeof err->message, "%s", "the runner failed");
    sh_force_utf8(err->message);
    sh_force_utf8(err->suggestion);
    memset(&e, 0, sizeof e);
    e.code = err->code;
    e.message = err->message;
    e.suggestion = err->suggestion[0] != '\0' ? err->suggestion : NULL;
    e.retryable = err->retryable;
    return hm_proto_plugin_error(out, HM_ERR_FAILED, &e);
}

/* Encodes a StepResult; message may be NULL (then omitted). Returns HM_OK. */
hm_status_t sh_write_result(hm_buf_t *out, int64_t exit_code, const char *status, const char *message)
{
    return hm_proto_step_result(out, exit_code, status, message, NULL);
}
