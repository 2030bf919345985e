/*
 * session.c — interactive sessions (ABI 1.1) of the container runner: a TTY in
 * the step's image, on the step's kept workspace, with the step's env, through
 * the Engine API's exec (create, start with a TTY, resize), as docker-py's
 * exec_api does it.
 *
 * A failed step's container is not kept running (its command has ended, and
 * starting it again would run the step again), so a session makes a fresh one
 * from the step's image that only waits (labelled dev.hm.session, removed when
 * the session ends), with the kept workspace mounted where the step had it,
 * and execs the session's command in it with a TTY. The exec's start request
 * streams the TTY's output as its body (libcurl); the engine hijacks that
 * connection for the exec's stdin, so keystrokes are written to its socket,
 * which libcurl tells us through its open/close-socket callbacks.
 *
 * session_open runs on the host's thread for the whole session; the other
 * entries come from other threads and find the session by its call handle
 * in this file's list, under its mutex.
 */
#include "container.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hm_msgpack.h"
#include "hm_protocol.h"

#define CT_WORKSPACE "/workspace"

typedef struct ct_session {
    hm_call_t call;
    int fd;        /* the hijacked connection (stdin of the exec); -1 when closed */
    int closing;   /* session_close was called */
    ct_engine_t eng;
    char container[72];
    char exec_id[72];
    unsigned rows, cols;
    const hm_host_api_t *host;
    struct ct_session *next;
} ct_session_t;

static pthread_mutex_t cs_lock = PTHREAD_MUTEX_INITIALIZER;
static ct_session_t *cs_list = NULL;

static ct_session_t *cs_find(hm_call_t call) /* with cs_lock held */
{
    ct_session_t *s;
    for (s = cs_list; s != NULL; s = s->next)
        if (s->call == call)
            return s;
    return NULL;
}

static void cs_remove(ct_session_t *s)
{
    ct_session_t **p;
    pthread_mutex_lock(&cs_lock);
    for (p = &cs_list; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    pthread_mutex_unlock(&cs_lock);
}

/* ---- callbacks of the exec's stream ------------------------------------------ */

static void on_sock(void *arg, int fd)
{
    ct_session_t *s = (ct_session_t *)arg;
    pthread_mutex_lock(&cs_lock);
    s->fd = fd;
    pthread_mutex_unlock(&cs_lock);
}

static void on_data(void *arg, const uint8_t *data, size_t len)
{
    ct_session_t *s = (ct_session_t *)arg;
    hm_host_session_output(s->host, s->call, data, len);
}

/* The exec runs once the engine answered its start: give its TTY the user's size. */
static int on_ready(void *arg, sh_error_t *err)
{
    ct_session_t *s = (ct_session_t *)arg;
    sh_error_t ignored;
    (void)err;
    ct_exec_resize(&s->eng, s->exec_id, s->rows, s->cols, &ignored); /* best effort: a default size works */
    return 0;
}

static int should_stop(void *arg)
{
    ct_session_t *s = (ct_session_t *)arg;
    sh_ctx_t ctx = {s->host, s->call};
    int closing;
    pthread_mutex_lock(&cs_lock);
    closing = s->closing;
    pthread_mutex_unlock(&cs_lock);
    return closing || sh_should_cancel(&ctx);
}

/* ---- the session's container ----------------------------------------------------- */

/* {Image, Entrypoint: sh -c, Cmd: [a wait], Env, WorkingDir, Labels, HostConfig: {Mounts: [workspace]}} */
static json_t *holder_spec(const char *image, const char *workspace, json_t *env, const char *run_id)
{
    json_t *spec = json_pack("{s:s, s:[ss], s:[s], s:O, s:s, s:b, s:{s:s}}", "Image", image, "Entrypoint",
                             "/bin/sh", "-c", "Cmd", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done",
                             "Env", env, "WorkingDir", CT_WORKSPACE, "Tty", 0, "Labels", "dev.hm.session", run_id);
    json_t *host = json_pack("{s:[{s:s, s:s, s:s}]}", "Mounts", "Type", "bind", "Source", workspace, "Target",
                             CT_WORKSPACE);
    if (spec == NULL || host == NULL || json_object_set_new(spec, "HostConfig", host) != 0) {
        json_decref(spec);
        return NULL;
    }
    return spec;
}

/* SessionSpec's env as the engine's ["NAME=value", ...], plus what hm sets in steps. */
static json_t *env_of(hm_mp_reader_t *spec, const char *key, const char *run_id)
{
    hm_mp_reader_t env;
    uint32_t n = 0, i;
    json_t *out = json_array();
    char buf[8192];
    if (out == NULL)
        return NULL;
    if (hm_proto_get_map(spec, "env", &env) == 0 && hm_mp_read_map(&env, &n) == 0) {
        for (i = 0; i < n; i++) {
            const char *k, *v;
            size_t kl, vl;
            if (hm_mp_read_str(&env, &k, &kl) != 0 || hm_mp_read_str(&env, &v, &vl) != 0)
                break;
            if (kl + vl + 2 > sizeof buf || (kl >= 3 && memcmp(k, "HM_", 3) == 0))
                continue; /* hm's own variables are set below, as in steps */
            snprintf(buf, sizeof buf, "%.*s=%.*s", (int)kl, k, (int)vl, v);
            json_array_append_new(out, json_string(buf));
        }
    }
    snprintf(buf, sizeof buf, "HM_STEP_KEY=%s", key);
    json_array_append_new(out, json_string(buf));
    snprintf(buf, sizeof buf, "HM_RUN_ID=%s", run_id);
    json_array_append_new(out, json_string(buf));
    json_array_append_new(out, json_string("HM_WORKSPACE=" CT_WORKSPACE));
    return out;
}

static char *str_of(const hm_mp_reader_t *map, const char *key)
{
    const char *s;
    size_t n;
    char *p;
    if (hm_proto_get_str(map, key, &s, &n) != 0 || memchr(s, '\0', n) != NULL)
        return NULL;
    if ((p = (char *)malloc(n + 1)) != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

hm_status_t ct_session_open(void *instance, hm_call_t call, const uint8_t *input, size_t input_len, hm_buf_t *out)
{
    sh_plugin_t *pl = (sh_plugin_t *)instance;
    sh_ctx_t ctx = {pl->host, call};
    ct_session_t s;
    sh_error_t err;
    hm_mp_reader_t r, step, argv_r;
    char *workspace = NULL, *image = NULL, *run_id = NULL, *key = NULL;
    json_t *env = NULL, *spec = NULL, *exec = NULL, *cmd = NULL;
    struct stat st;
    int64_t v, code = -1;
    uint32_t argc = 0, i;
    int rc, uncertain = 0, made = 0, tries;
    char name[96];
    hm_status_t status;

    memset(&err, 0, sizeof err);
    memset(&s, 0, sizeof s);
    s.call = call;
    s.fd = -1;
    s.host = pl->host;
    s.rows = 24;
    s.cols = 80;
    if (!HM_HOST_HAS(pl->host, session_output)) {
        sh_err_set(&err, "sessions_unavailable", "use an hm whose plugin ABI is 1.1 or later",
                   "this host has no session_output (ABI 1.1): it cannot show a session");
        sh_write_error(out, &err);
        return HM_ERR_UNAVAILABLE;
    }
    if (hm_proto_open_map(input, input_len, &r) != 0 || hm_proto_get_map(&r, "step", &step) != 0 ||
        (workspace = str_of(&r, "workspace")) == NULL || (run_id = str_of(&r, "run_id")) == NULL ||
        (key = str_of(&step, "key")) == NULL) {
        sh_err_set(&err, "invalid_input", NULL, "SessionSpec: workspace, run_id and step.key must be strings");
        goto fail;
    }
    if ((image = str_of(&r, "image")) == NULL) {
        sh_err_set(&err, "image_missing", "the container runner opens sessions only into steps with an image",
                   "step '%.200s' has no image", key);
        goto fail;
    }
    if (hm_proto_get_int(&r, "rows", &v) == 0 && v > 0 && v < 65536)
        s.rows = (unsigned)v;
    if (hm_proto_get_int(&r, "cols", &v) == 0 && v > 0 && v < 65536)
        s.cols = (unsigned)v;
    if (stat(workspace, &st) != 0 || !S_ISDIR(st.st_mode)) {
        sh_err_set(&err, "workspace_missing", "run the pipeline again to get a fresh workspace",
                   "the step's workspace %.900s is gone", workspace);
        goto fail;
    }
    s.eng.ctx = &ctx;
    if (ct_engine_find(&s.eng, &err) != 0)
        goto fail;
    s.eng.ctx = NULL; /* ctx lives on this stack only; the engine struct is read by other threads */

    if ((env = env_of(&r, key, run_id)) == NULL || (spec = holder_spec(image, workspace, env, run_id)) == NULL) {
        sh_err_set(&err, "out_of_memory", NULL, "out of memory building the session's container");
        goto fail;
    }
    snprintf(name, sizeof name, "hm-session-%016llx", (unsigned long long)call);
    if (ct_container_create(&s.eng, name, spec, s.container, &uncertain, &err) != CT_OK)
        goto fail;
    made = 1;
    if (ct_container_start(&s.eng, s.container, &err) != CT_OK)
        goto fail;

    cmd = json_array();
    if (hm_mp_map_find(&r, "argv", &argv_r) == 0 && hm_mp_read_array(&argv_r, &argc) == 0 && argc > 0) {
        for (i = 0; i < argc; i++) {
            const char *a;
            size_t al;
            if (hm_mp_read_str(&argv_r, &a, &al) != 0)
                break;
            json_array_append_new(cmd, json_stringn(a, al));
        }
    } else {
        json_array_append_new(cmd, json_string("/bin/sh"));
    }
    exec = json_pack("{s:b, s:b, s:b, s:b, s:O, s:[s], s:s}", "AttachStdin", 1, "AttachStdout", 1, "AttachStderr", 1,
                     "Tty", 1, "Cmd", cmd, "Env", "TERM=xterm-256color", "WorkingDir", CT_WORKSPACE);
    if (exec == NULL) {
        sh_err_set(&err, "out_of_memory", NULL, "out of memory building the session's exec");
        goto fail;
    }
    if (ct_exec_create(&s.eng, s.container, exec, s.exec_id, &err) != CT_OK)
        goto fail;

    pthread_mutex_lock(&cs_lock);
    s.next = cs_list;
    cs_list = &s;
    pthread_mutex_unlock(&cs_lock);
    rc = ct_exec_start_tty(&s.eng, s.exec_id, on_sock, on_data, on_ready, should_stop, &s, &err);
    cs_remove(&s);
    if (rc == SH_FAILED)
        goto fail;
    /* the engine records the exit code a moment after the stream ends */
    for (tries = 0; rc == CT_OK && tries < 40; tries++) {
        if (ct_exec_exit_code(&s.eng, s.exec_id, &code, &err) != CT_OK || code >= 0)
            break;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    if (rc == CT_STOPPED || code < 0)
        code = 128 + SIGHUP; /* hung up, as a terminal that goes away */
    status = hm_proto_exit_info(out, code, NULL);
    ct_container_remove(&s.eng, s.container, &err);
    goto done;

fail:
    if (made || uncertain) {
        sh_error_t ignored;
        ct_container_remove(&s.eng, s.container, &ignored);
    }
    status = sh_write_error(out, &err);
done:
    json_decref(env);
    json_decref(spec);
    json_decref(exec);
    json_decref(cmd);
    free(workspace);
    free(image);
    free(run_id);
    free(key);
    return status;
}

/* ---- the control entries ------------------------------------------------------- */

hm_status_t ct_session_write(void *instance, hm_call_t session, const uint8_t *data, size_t len)
{
    int rc;
    ct_session_t *s;
    int fd = -1;
    (void)instance;
    pthread_mutex_lock(&cs_lock);
    s = cs_find(session);
    if (s != NULL && s->fd >= 0)
        fd = dup(s->fd); /* written outside the lock; the stream may be slow */
    pthread_mutex_unlock(&cs_lock);
    if (s == NULL)
        return HM_ERR_STALE_CALL;
    if (fd < 0)
        return HM_ERR_STALE_CALL; /* not connected yet: hm retries early keystrokes */
    rc = sh_write_all(fd, data, len);
    close(fd);
    return rc == 0 ? HM_OK : HM_ERR_IO;
}

hm_status_t ct_session_resize(void *instance, hm_call_t session, uint16_t rows, uint16_t cols)
{
    ct_session_t *s;
    ct_engine_t eng;
    char exec_id[72];
    sh_error_t err;
    (void)instance;
    if (rows == 0 || cols == 0)
        return HM_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&cs_lock);
    s = cs_find(session);
    if (s != NULL) {
        eng = s->eng;
        memcpy(exec_id, s->exec_id, sizeof exec_id);
    }
    pthread_mutex_unlock(&cs_lock);
    if (s == NULL)
        return HM_ERR_STALE_CALL;
    return ct_exec_resize(&eng, exec_id, rows, cols, &err) == CT_OK ? HM_OK : HM_ERR_IO;
}

hm_status_t ct_session_signal(void *instance, hm_call_t session, int32_t signal_)
{
    ct_session_t *s;
    int closing = 0;
    if (signal_ == HM_SIGNAL_INTERRUPT) /* what Ctrl-C is on a TTY: the engine's line discipline signals */
        return ct_session_write(instance, session, (const uint8_t *)"\x03", 1);
    if (signal_ != HM_SIGNAL_TERMINATE && signal_ != HM_SIGNAL_KILL && signal_ != HM_SIGNAL_HANGUP)
        return HM_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&cs_lock);
    s = cs_find(session);
    if (s != NULL)
        closing = s->closing = 1; /* the exec's processes end with its container */
    pthread_mutex_unlock(&cs_lock);
    return closing ? HM_OK : HM_ERR_STALE_CALL;
}

hm_status_t ct_session_close(void *instance, hm_call_t session)
{
    return ct_session_signal(instance, session, HM_SIGNAL_HANGUP);
}
