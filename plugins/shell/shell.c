/*
 * shell.c — entry point of the shell runner: vtable, manifest, ExecutorInput
 * decoding, and the order of the work (support.c encodes the results).
 *
 * execute_step does, in this order:
 *   1. decode ExecutorInput (anything malformed -> PluginError invalid_input);
 *   2. return "cancelled" at once if the host already asks to stop;
 *   3. refuse a step with an image (PluginError image_unsupported);
 *   4. prepare the workspace: copy base_workspace, or extract the run's
 *      archive (should_cancel is polled throughout);
 *   5. run /bin/sh -c <cmd> (spawn.c), streaming its output;
 *   6. encode the StepResult.
 * Infrastructure failures (the command never ran, or we lost track of it) are
 * HM_ERR_FAILED with a PluginError; everything the command itself did is a
 * StepResult with HM_OK.
 */
#include "shell.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hm_msgpack.h"
#include "hm_protocol.h"

#define SH_NAME "shell"
#define SH_VERSION "0.1.0"
#define SH_DESCRIPTION "Runs each step's command with /bin/sh -c"

#define SH_INPUT_SUGGESTION                                                                    \
    "this is a bug in the host or in a plugin that calls the shell runner: ExecutorInput is " \
    "defined in hm_plugin_sdk/protocol.py"

/* ======================================================================== */
/* ExecutorInput decoding                                                   */
/* ======================================================================== */

typedef struct sh_input {
    char *run_id;
    char *key;
    char *cmd;
    char *image;          /* NULL: none */
    char *workspace;
    char *base_workspace; /* NULL: extract the archive */
    int has_step;
    double timeout;       /* 0: none */
    double grace;
    char **env;           /* "NAME=value", owned */
    size_t env_len;
} sh_input_t;

static void input_free(sh_input_t *in)
{
    size_t i;
    free(in->run_id);
    free(in->key);
    free(in->cmd);
    free(in->image);
    free(in->workspace);
    free(in->base_workspace);
    for (i = 0; i < in->env_len; i++)
        free(in->env[i]);
    free(in->env);
    memset(in, 0, sizeof *in);
}

static const char *type_name(hm_mp_type_t t)
{
    switch (t) {
    case HM_MP_NIL: return "nil";
    case HM_MP_BOOL: return "bool";
    case HM_MP_INT:
    case HM_MP_UINT: return "int";
    case HM_MP_FLOAT: return "float";
    case HM_MP_STR: return "str";
    case HM_MP_BIN: return "bin";
    case HM_MP_ARRAY: return "array";
    case HM_MP_MAP: return "map";
    case HM_MP_EXT: return "ext";
    default: return "malformed msgpack";
    }
}

/* The value at r is unusable for `field`: either malformed (r->error set by a
 * failed read) or of the wrong type (`what` says what was expected). */
static int bad_input(sh_error_t *err, const hm_mp_reader_t *r, const char *field, const char *what)
{
    if (r->error && r->error != HM_MP_ERR_TYPE && r->error != HM_MP_ERR_RANGE)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.%s is malformed msgpack (%s)", field,
                          hm_mp_error_string(r->error));
    {
        hm_mp_reader_t c = *r;
        c.error = HM_MP_OK; /* a failed read does not move the cursor: look again */
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION, "ExecutorInput.%s %s (got %s)",
                          field, what, type_name(hm_mp_peek(&c)));
    }
}

/* Skips the value of an ignored field. */
static int skip_value(hm_mp_reader_t *r, const char *field, sh_error_t *err)
{
    if (hm_mp_skip(r) != 0)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.%s is malformed msgpack (%s)", field,
                          hm_mp_error_string(r->error));
    return 0;
}

/* Reads a str (or nil when `nullable`) into a malloc'd C string that
 * replaces *out (NULL for nil). Rejects NUL bytes: these strings become C
 * strings (argv, environ, paths). */
static int read_string(hm_mp_reader_t *r, const char *field, int nullable, char **out,
                       sh_error_t *err)
{
    const char *s;
    size_t n;
    char *copy;
    if (nullable && hm_mp_peek(r) == HM_MP_NIL) {
        hm_mp_read_nil(r);
        free(*out);
        *out = NULL;
        return 0;
    }
    if (hm_mp_read_str(r, &s, &n) != 0)
        return bad_input(err, r, field, nullable ? "must be a string or nil" : "must be a string");
    if (memchr(s, '\0', n) != NULL)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.%s contains a NUL byte", field);
    copy = (char *)malloc(n + 1);
    if (copy == NULL)
        return sh_err_set(err, "out_of_memory", NULL, "out of memory decoding ExecutorInput.%s",
                          field);
    memcpy(copy, s, n);
    copy[n] = '\0';
    free(*out);
    *out = copy;
    return 0;
}

/* Reads an int or float (or nil when nil_ok: returns 1). */
static int read_number(hm_mp_reader_t *r, const char *field, int nil_ok, double *out,
                       sh_error_t *err)
{
    hm_mp_type_t t = hm_mp_peek(r);
    if (nil_ok && t == HM_MP_NIL) {
        hm_mp_read_nil(r);
        return 1;
    }
    if (hm_mp_read_double(r, out) != 0) /* accepts int, uint and float */
        return bad_input(err, r, field, nil_ok ? "must be a number or nil" : "must be a number");
    return 0;
}

static int is_nil(hm_mp_reader_t *r)
{
    if (hm_mp_peek(r) != HM_MP_NIL)
        return 0;
    hm_mp_read_nil(r);
    return 1;
}

static int decode_runner_args(hm_mp_reader_t *r, sh_input_t *in, sh_error_t *err)
{
    uint32_t n, i;
    if (is_nil(r))
        return 0;
    if (hm_mp_read_map(r, &n) != 0)
        return bad_input(err, r, "step.runner_args", "must be a map");
    for (i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (hm_mp_peek(r) != HM_MP_STR) {
            if (skip_value(r, "step.runner_args", err) || skip_value(r, "step.runner_args", err))
                return SH_FAILED;
            continue;
        }
        if (hm_mp_read_str(r, &k, &kl) != 0)
            return bad_input(err, r, "step.runner_args", "must be a map");
        if (hm_mp_str_eq(k, kl, "kill_grace_seconds")) {
            double g = 0;
            if (read_number(r, "step.runner_args.kill_grace_seconds", 0, &g, err) != 0)
                return SH_FAILED;
            if (!(g >= 0) || !isfinite(g))
                return sh_err_set(
                    err, "invalid_input",
                    "set runner_args.kill_grace_seconds to a number of seconds >= 0, or leave it "
                    "out for the default of 5",
                    "ExecutorInput.step.runner_args.kill_grace_seconds must be a finite number >= "
                    "0, got %g",
                    g);
            in->grace = g;
        } else if (skip_value(r, "step.runner_args", err) != 0) {
            return SH_FAILED; /* other runners' arguments are none of our business */
        }
    }
    return 0;
}

static int decode_step(hm_mp_reader_t *r, sh_input_t *in, sh_error_t *err)
{
    uint32_t n, i;
    if (hm_mp_read_map(r, &n) != 0)
        return bad_input(err, r, "step", "must be a map");
    in->has_step = 1;
    for (i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int rc = 0;
        if (hm_mp_peek(r) != HM_MP_STR) {
            if (skip_value(r, "step", err) || skip_value(r, "step", err))
                return SH_FAILED;
            continue;
        }
        if (hm_mp_read_str(r, &k, &kl) != 0)
            return bad_input(err, r, "step", "must be a map");
        if (hm_mp_str_eq(k, kl, "key")) {
            rc = read_string(r, "step.key", 0, &in->key, err);
        } else if (hm_mp_str_eq(k, kl, "cmd")) {
            rc = read_string(r, "step.cmd", 0, &in->cmd, err);
        } else if (hm_mp_str_eq(k, kl, "image")) {
            rc = read_string(r, "step.image", 1, &in->image, err);
        } else if (hm_mp_str_eq(k, kl, "timeout_seconds")) {
            double t = 0;
            rc = read_number(r, "step.timeout_seconds", 1, &t, err);
            if (rc == 1) {
                in->timeout = 0;
                rc = 0;
            } else if (rc == 0) {
                if (!(t > 0) || !isfinite(t))
                    return sh_err_set(
                        err, "invalid_input", "omit timeout_seconds for no timeout",
                        "ExecutorInput.step.timeout_seconds must be a positive number of seconds, "
                        "got %g",
                        t);
                in->timeout = t;
            }
        } else if (hm_mp_str_eq(k, kl, "runner_args")) {
            rc = decode_runner_args(r, in, err);
        } else {
            rc = skip_value(r, "step", err); /* label, runner, future fields */
        }
        if (rc != 0)
            return SH_FAILED;
    }
    return 0;
}

/* A POSIX-usable variable name for execve: non-empty, no '=', no NUL. */
static int valid_env_name(const char *s, size_t n)
{
    return n > 0 && memchr(s, '=', n) == NULL && memchr(s, '\0', n) == NULL;
}

static int decode_env(hm_mp_reader_t *r, sh_input_t *in, sh_error_t *err)
{
    uint32_t n, i;
    size_t j;
    /* a duplicate "env" key replaces the earlier map */
    for (j = 0; j < in->env_len; j++)
        free(in->env[j]);
    free(in->env);
    in->env = NULL;
    in->env_len = 0;
    if (is_nil(r))
        return 0;
    if (hm_mp_read_map(r, &n) != 0)
        return bad_input(err, r, "env", "must be a map of str to str");
    if (n == 0)
        return 0;
    in->env = (char **)calloc(n, sizeof *in->env);
    if (in->env == NULL)
        return sh_err_set(err, "out_of_memory", NULL, "out of memory decoding ExecutorInput.env");
    for (i = 0; i < n; i++) {
        const char *k, *v;
        size_t kl, vl;
        char *kv;
        if (hm_mp_read_str(r, &k, &kl) != 0)
            return bad_input(err, r, "env", "keys must be strings");
        if (hm_mp_read_str(r, &v, &vl) != 0)
            return bad_input(err, r, "env", "values must be strings");
        if (!valid_env_name(k, kl))
            return sh_err_set(err, "invalid_input",
                              "environment variable names must be non-empty and contain no '=' or "
                              "NUL",
                              "ExecutorInput.env has an invalid variable name '%.*s'",
                              (int)(kl > 200 ? 200 : kl), k);
        if (memchr(v, '\0', vl) != NULL)
            return sh_err_set(err, "invalid_input", "environment values cannot contain NUL bytes",
                              "ExecutorInput.env[%.*s] contains a NUL byte",
                              (int)(kl > 200 ? 200 : kl), k);
        kv = (char *)malloc(kl + vl + 2);
        if (kv == NULL)
            return sh_err_set(err, "out_of_memory", NULL,
                              "out of memory decoding ExecutorInput.env");
        memcpy(kv, k, kl);
        kv[kl] = '=';
        memcpy(kv + kl + 1, v, vl);
        kv[kl + 1 + vl] = '\0';
        in->env[in->env_len++] = kv;
    }
    return 0;
}

static int decode_input(const uint8_t *data, size_t len, sh_input_t *in, sh_error_t *err)
{
    hm_mp_reader_t r;
    uint32_t n, i;

    memset(in, 0, sizeof *in);
    in->grace = SH_DEFAULT_KILL_GRACE;
    if (data == NULL)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput is a NULL pointer");
    hm_mp_reader_init(&r, data, len);
    if (hm_mp_peek(&r) != HM_MP_MAP)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput must be a msgpack map (got %s)",
                          len == 0 ? "no bytes" : type_name(hm_mp_peek(&r)));
    if (hm_mp_read_map(&r, &n) != 0)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput is malformed msgpack (%s)", hm_mp_error_string(r.error));
    for (i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int rc = 0;
        if (hm_mp_peek(&r) != HM_MP_STR) {
            if (skip_value(&r, "<key>", err) || skip_value(&r, "<value>", err))
                return SH_FAILED;
            continue;
        }
        if (hm_mp_read_str(&r, &k, &kl) != 0)
            return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                              "ExecutorInput is malformed msgpack (%s)",
                              hm_mp_error_string(r.error));
        if (hm_mp_str_eq(k, kl, "run_id")) {
            rc = read_string(&r, "run_id", 0, &in->run_id, err);
        } else if (hm_mp_str_eq(k, kl, "step")) {
            rc = decode_step(&r, in, err);
        } else if (hm_mp_str_eq(k, kl, "env")) {
            rc = decode_env(&r, in, err);
        } else if (hm_mp_str_eq(k, kl, "workspace")) {
            rc = read_string(&r, "workspace", 0, &in->workspace, err);
        } else if (hm_mp_str_eq(k, kl, "base_workspace")) {
            rc = read_string(&r, "base_workspace", 1, &in->base_workspace, err);
        } else if (hm_mp_skip(&r) != 0) { /* project_root and future fields */
            return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                              "ExecutorInput.%.*s is malformed msgpack (%s)",
                              (int)(kl > 100 ? 100 : kl), k, hm_mp_error_string(r.error));
        }
        if (rc != 0)
            return SH_FAILED;
    }

    if (in->run_id == NULL)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION, "ExecutorInput.run_id is missing");
    if (!in->has_step)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION, "ExecutorInput.step is missing");
    if (in->key == NULL)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.step.key is missing");
    if (in->cmd == NULL)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.step.cmd is missing");
    if (in->workspace == NULL)
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.workspace is missing");
    if (in->workspace[0] != '/')
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.workspace must be an absolute path, got '%s'",
                          in->workspace);
    if (in->base_workspace != NULL && in->base_workspace[0] != '/')
        return sh_err_set(err, "invalid_input", SH_INPUT_SUGGESTION,
                          "ExecutorInput.base_workspace must be an absolute path or nil, got '%s'",
                          in->base_workspace);
    return 0;
}

/* ======================================================================== */
/* execute_step                                                             */
/* ======================================================================== */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGSTOP: return "SIGSTOP";
    case SIGTSTP: return "SIGTSTP";
    case SIGTTIN: return "SIGTTIN";
    case SIGTTOU: return "SIGTTOU";
    case SIGURG: return "SIGURG";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGVTALRM: return "SIGVTALRM";
    case SIGPROF: return "SIGPROF";
    case SIGSYS: return "SIGSYS";
#ifdef SIGWINCH
    case SIGWINCH: return "SIGWINCH";
#endif
#ifdef SIGIO
    case SIGIO: return "SIGIO";
#endif
#if defined(SIGPWR) && (!defined(SIGINFO) || SIGPWR != SIGINFO)
    case SIGPWR: return "SIGPWR";
#endif
#if defined(SIGSTKFLT)
    case SIGSTKFLT: return "SIGSTKFLT";
#endif
#if defined(SIGEMT)
    case SIGEMT: return "SIGEMT";
#endif
#if defined(SIGINFO)
    case SIGINFO: return "SIGINFO";
#endif
    default: return NULL;
    }
}

/* Maps the run's outcome to a StepResult. */
static hm_status_t report_outcome(hm_buf_t *out, const sh_run_result_t *res, double timeout)
{
    char msg[128];
    int st = res->wait_status;
    if (res->outcome == SH_TIMED_OUT) {
        snprintf(msg, sizeof msg, "timed out after %g s", timeout);
        return sh_write_result(out, 124, "timed_out", msg);
    }
    if (res->outcome == SH_CANCELLED)
        return sh_write_result(out, 130, "cancelled", "cancelled");
    if (WIFEXITED(st)) {
        int code = WEXITSTATUS(st);
        if (code == 0)
            return sh_write_result(out, 0, "succeeded", NULL);
        if (code == 127)
            return sh_write_result(out, 127, "failed", "command not found (exit 127)");
        snprintf(msg, sizeof msg, "exited with code %d", code);
        return sh_write_result(out, code, "failed", msg);
    }
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *name = signal_name(sig);
        if (name)
            snprintf(msg, sizeof msg, "killed by signal %d (%s)", sig, name);
        else
            snprintf(msg, sizeof msg, "killed by signal %d", sig);
        return sh_write_result(out, 128 + sig, "failed", msg);
    }
    snprintf(msg, sizeof msg, "ended with wait status 0x%x", (unsigned)st);
    return sh_write_result(out, 1, "failed", msg);
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = (char *)malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static hm_status_t execute_step(void *instance, hm_call_t call, const uint8_t *input,
                                size_t input_len, hm_buf_t *out)
{
    const sh_plugin_t *pl = (const sh_plugin_t *)instance;
    sh_ctx_t ctx;
    sh_error_t err;
    sh_input_t in;
    sh_run_spec_t spec;
    sh_run_result_t res;
    char *fixed[4] = {NULL, NULL, NULL, NULL};
    const char **overlay = NULL;
    hm_status_t status;
    size_t i;
    int rc;

    if (out == NULL || pl == NULL)
        return HM_ERR_INVALID_ARGUMENT;
    out->ptr = NULL;
    out->len = 0;
    memset(&err, 0, sizeof err);
    ctx.host = pl->host;
    ctx.call = call;

    /* 1. input */
    if (decode_input(input, input_len, &in, &err) != 0) {
        input_free(&in);
        return sh_write_error(out, &err);
    }

    /* 2. cancelled before we even start */
    if (sh_should_cancel(&ctx)) {
        input_free(&in);
        return sh_write_result(out, 130, "cancelled", "cancelled");
    }

    /* 3. images are a container runner's business: a step with an image never
     *    silently runs without one (hm's validation refuses it first; this
     *    guards other hosts and plugins that call the shell runner) */
    if (in.image != NULL) {
        sh_err_set(&err, "image_unsupported",
                   "leave `runner` unset (or set runner=\"container\") to run the step in its image, "
                   "or remove the image to run it on this machine",
                   "the shell runner cannot run images; step '%s' names image '%s'", in.key,
                   in.image);
        input_free(&in);
        return sh_write_error(out, &err);
    }

    /* 4. workspace */
    if (in.base_workspace != NULL)
        rc = sh_copy_tree(&ctx, in.base_workspace, in.workspace, &err);
    else
        rc = sh_extract_archive(&ctx, in.workspace, &err);
    if (rc == SH_STOPPED) {
        input_free(&in);
        return sh_write_result(out, 130, "cancelled", "cancelled");
    }
    if (rc != SH_DONE) {
        input_free(&in);
        return sh_write_error(out, &err);
    }

    /* 5. environment overlay: the step's env, then the variables hm always sets */
    fixed[0] = concat("HM_STEP_KEY=", in.key);
    fixed[1] = concat("HM_RUN_ID=", in.run_id);
    fixed[2] = concat("HM_WORKSPACE=", in.workspace);
    fixed[3] = concat("PWD=", in.workspace);
    overlay = (const char **)malloc((in.env_len + 4) * sizeof *overlay);
    if (!fixed[0] || !fixed[1] || !fixed[2] || !fixed[3] || !overlay) {
        sh_err_set(&err, "out_of_memory", NULL, "out of memory building the step's environment");
        status = sh_write_error(out, &err);
        goto done;
    }
    for (i = 0; i < in.env_len; i++)
        overlay[i] = in.env[i];
    for (i = 0; i < 4; i++)
        overlay[in.env_len + i] = fixed[i];

    spec.cmd = in.cmd;
    spec.workspace = in.workspace;
    spec.env_overlay = overlay;
    spec.env_overlay_len = in.env_len + 4;
    spec.timeout_seconds = in.timeout;
    spec.kill_grace_seconds = in.grace;

    /* 6. run and report */
    if (sh_run(&ctx, &spec, &res, &err) != 0)
        status = sh_write_error(out, &err);
    else
        status = report_outcome(out, &res, in.timeout);

done:
    for (i = 0; i < 4; i++)
        free(fixed[i]);
    free((void *)overlay);
    input_free(&in);
    return status;
}

/* ======================================================================== */
/* Manifest, vtable, entry point                                            */
/* ======================================================================== */

static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    static const char *const runners[] = {"shell"};
    hm_proto_executor_t executor;
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    if (out == NULL)
        return HM_ERR_INVALID_ARGUMENT;
    memset(&executor, 0, sizeof executor);
    executor.runners = runners;
    executor.n_runners = 1;
    executor.is_default = 1;
    executor.sessions = 1; /* session.c */
    hm_mp_writer_init(&w);
    hm_proto_manifest_begin(&w, SH_NAME, SH_VERSION, SH_DESCRIPTION, 1);
    hm_proto_cap_step_executor(&w, &executor);
    return hm_proto_finish(&w, out, HM_OK);
}

static void plugin_free(void *instance, uint8_t *ptr, size_t len)
{
    (void)instance;
    (void)len;
    free(ptr);
}

static void plugin_destroy(void *instance)
{
    free(instance);
}

static const hm_plugin_vtable_t vtable = {
    .header = {(uint32_t)sizeof(hm_plugin_vtable_t), HM_ABI_MAJOR, HM_ABI_MINOR},
    .manifest = manifest,
    .execute_step = execute_step,
    .on_hook_event = NULL,
    .run_subcommand = NULL,
    .free = plugin_free,
    .destroy = plugin_destroy,
    .session_open = sh_session_open,
    .session_write = sh_session_write,
    .session_resize = sh_session_resize,
    .session_signal = sh_session_signal,
    .session_close = sh_session_close,
};

HM_EXPORT const hm_plugin_vtable_t *hm_load_plugin(const hm_host_api_t *host, void **out_instance)
{
    sh_plugin_t *pl;
    if (host == NULL || out_instance == NULL)
        return NULL;
    if (host->header.struct_size < sizeof(hm_abi_header_t) || host->header.abi_major != HM_ABI_MAJOR)
        return NULL;
    pl = (sh_plugin_t *)malloc(sizeof *pl);
    if (pl == NULL)
        return NULL;
    pl->host = host;
    pl->sessions = NULL;
    *out_instance = pl;
    return &vtable;
}
