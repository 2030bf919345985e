/*
 * input.c — decodes the ExecutorInput the host sends to execute_step, and
 * checks the container runner's runner_args.
 *
 * hm checks runner_args against the manifest's declaration before a run
 * starts (exit 3), so a wrong type reaching this file means another host or
 * plugin called the runner; it is refused the same way (invalid_input), and
 * before any container exists. Unknown keys of ExecutorInput and StepSpec
 * are skipped, as the protocol requires; unknown runner_args keys are
 * refused, because a misspelt `netwrok: none` must not silently run with the
 * network on.
 */
#include "container.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_msgpack.h"

#define INPUT_SUGGESTION                                                                      \
    "this is a bug in the host or in a plugin that calls the container runner: ExecutorInput " \
    "is defined in hm_plugin_sdk/protocol.py"
#define ARGS_SUGGESTION \
    "see docs/container-runner.md for runner_args: user, network, memory, cpus"

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

/* The value at r cannot be used for `field`: malformed, or of the wrong type. */
static int bad(sh_error_t *err, const hm_mp_reader_t *r, const char *field, const char *what)
{
    hm_mp_reader_t c = *r;
    if (r->error && r->error != HM_MP_ERR_TYPE && r->error != HM_MP_ERR_RANGE)
        return sh_err_set(err, "invalid_input", INPUT_SUGGESTION,
                          "ExecutorInput.%s is malformed msgpack (%s)", field,
                          hm_mp_error_string(r->error));
    c.error = HM_MP_OK; /* a failed read leaves the cursor where it was: look again */
    return sh_err_set(err, "invalid_input",
                      strncmp(field, "step.runner_args", 16) == 0 ? ARGS_SUGGESTION
                                                                   : INPUT_SUGGESTION,
                      "ExecutorInput.%s %s (got %s)", field, what, type_name(hm_mp_peek(&c)));
}

static int skip(hm_mp_reader_t *r, const char *field, sh_error_t *err)
{
    if (hm_mp_skip(r) != 0)
        return sh_err_set(err, "invalid_input", INPUT_SUGGESTION,
                          "ExecutorInput.%s is malformed msgpack (%s)", field,
                          hm_mp_error_string(r->error));
    return 0;
}

static int take_nil(hm_mp_reader_t *r)
{
    if (hm_mp_peek(r) != HM_MP_NIL)
        return 0;
    hm_mp_read_nil(r);
    return 1;
}

/* A str (or nil when nullable) as a malloc'd C string replacing *out. NUL
 * bytes are refused: these strings become C strings (JSON, paths). */
static int read_string(hm_mp_reader_t *r, const char *field, int nullable, char **out,
                       sh_error_t *err)
{
    const char *s;
    size_t n;
    char *copy;
    if (nullable && take_nil(r)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (hm_mp_read_str(r, &s, &n) != 0)
        return bad(err, r, field, nullable ? "must be a string or nil" : "must be a string");
    if (memchr(s, '\0', n) != NULL)
        return sh_err_set(err, "invalid_input", INPUT_SUGGESTION,
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

/* ---- runner_args ---------------------------------------------------------- */

/* Parses a size as Docker writes it ("512m", "1.5g", "1GiB", "100000"):
 * digits with an optional fraction, then an optional unit b, k, m, g or t
 * (powers of 1024) with an optional "b"/"ib" after it. Returns 0 or -1. */
static int parse_size(const char *s, int64_t *out)
{
    const char *p = s;
    double value = 0, scale = 1, mult = 1;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        value = value * 10 + (*p++ - '0');
        digits++;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            scale /= 10;
            value += (*p++ - '0') * scale;
        }
    }
    if (digits == 0)
        return -1;
    switch (tolower((unsigned char)*p)) {
    case 'b': mult = 1, p++; break;
    case 'k': mult = 1024.0, p++; break;
    case 'm': mult = 1024.0 * 1024, p++; break;
    case 'g': mult = 1024.0 * 1024 * 1024, p++; break;
    case 't': mult = 1024.0 * 1024 * 1024 * 1024, p++; break;
    default: break;
    }
    if (mult > 1) {
        if (tolower((unsigned char)*p) == 'i')
            p++;
        if (tolower((unsigned char)*p) == 'b')
            p++;
    }
    if (*p != '\0' || !isfinite(value * mult) || value * mult >= 9.2e18)
        return -1;
    *out = (int64_t)(value * mult);
    return 0;
}

/* user: a name or uid, optionally ":group" — the characters the engines
 * accept, so a typo fails here and not halfway through a container start. */
static int valid_user(const char *s)
{
    size_t n = strlen(s), colons = 0, i;
    if (n == 0 || s[0] == ':' || s[n - 1] == ':')
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':')
            colons++;
        else if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return 0;
    }
    return colons <= 1;
}

static int decode_args(hm_mp_reader_t *r, ct_args_t *a, sh_error_t *err)
{
    uint32_t n, i;
    if (take_nil(r))
        return 0;
    if (hm_mp_read_map(r, &n) != 0)
        return bad(err, r, "step.runner_args", "must be a map");
    for (i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (hm_mp_read_str(r, &k, &kl) != 0)
            return bad(err, r, "step.runner_args", "keys must be strings");
        if (hm_mp_str_eq(k, kl, "user")) {
            int64_t uid;
            if (hm_mp_peek(r) == HM_MP_INT || hm_mp_peek(r) == HM_MP_UINT) {
                char buf[32];
                if (hm_mp_read_int(r, &uid) != 0 || uid < 0)
                    return bad(err, r, "step.runner_args.user", "must be a uid >= 0");
                snprintf(buf, sizeof buf, "%lld", (long long)uid);
                free(a->user);
                a->user = strdup(buf);
                if (a->user == NULL)
                    return sh_err_set(err, "out_of_memory", NULL, "out of memory");
            } else if (read_string(r, "step.runner_args.user", 0, &a->user, err) != 0) {
                return SH_FAILED;
            } else if (!valid_user(a->user)) {
                return sh_err_set(err, "invalid_input", ARGS_SUGGESTION,
                                  "runner_args.user '%.200s' is not a user: give a name or uid, "
                                  "optionally with ':group' (e.g. \"1000:1000\")",
                                  a->user);
            }
        } else if (hm_mp_str_eq(k, kl, "network")) {
            if (read_string(r, "step.runner_args.network", 0, &a->network, err) != 0)
                return SH_FAILED;
            if (strcmp(a->network, "none") != 0 && strcmp(a->network, "host") != 0 &&
                strcmp(a->network, "bridge") != 0)
                return sh_err_set(err, "invalid_input", ARGS_SUGGESTION,
                                  "runner_args.network must be \"none\", \"host\" or \"bridge\", "
                                  "got '%.200s'",
                                  a->network);
        } else if (hm_mp_str_eq(k, kl, "memory")) {
            hm_mp_type_t t = hm_mp_peek(r);
            if (t == HM_MP_INT || t == HM_MP_UINT) {
                if (hm_mp_read_int(r, &a->memory) != 0 || a->memory <= 0)
                    return bad(err, r, "step.runner_args.memory", "must be a positive number of bytes");
                snprintf(a->memory_text, sizeof a->memory_text, "%lld", (long long)a->memory);
            } else if (t == HM_MP_STR) {
                char *text = NULL;
                if (read_string(r, "step.runner_args.memory", 0, &text, err) != 0)
                    return SH_FAILED;
                if (parse_size(text, &a->memory) != 0 || a->memory <= 0) {
                    sh_err_set(err, "invalid_input", ARGS_SUGGESTION,
                               "runner_args.memory '%.200s' is not a size: give bytes as an int, "
                               "or a string like \"512m\" or \"2g\"",
                               text);
                    free(text);
                    return SH_FAILED;
                }
                snprintf(a->memory_text, sizeof a->memory_text, "%s", text);
                free(text);
            } else {
                return bad(err, r, "step.runner_args.memory",
                           "must be a number of bytes or a size string like \"512m\"");
            }
        } else if (hm_mp_str_eq(k, kl, "cpus")) {
            hm_mp_type_t t = hm_mp_peek(r);
            if ((t != HM_MP_INT && t != HM_MP_UINT && t != HM_MP_FLOAT) ||
                hm_mp_read_double(r, &a->cpus) != 0)
                return bad(err, r, "step.runner_args.cpus", "must be a number of CPUs");
            if (!(a->cpus > 0) || !isfinite(a->cpus) || a->cpus > 1e6)
                return sh_err_set(err, "invalid_input", ARGS_SUGGESTION,
                                  "runner_args.cpus must be a positive number of CPUs, got %g",
                                  a->cpus);
        } else {
            return sh_err_set(err, "invalid_input", ARGS_SUGGESTION,
                              "the container runner has no runner_args '%.*s' (it takes user, "
                              "network, memory and cpus)",
                              (int)(kl > 100 ? 100 : kl), k);
        }
    }
    return 0;
}

/* ---- ExecutorInput ------------------------------------------------------------ */

static int decode_env(hm_mp_reader_t *r, ct_input_t *in, sh_error_t *err)
{
    uint32_t n, i;
    size_t j;
    for (j = 0; j < in->env_len; j++) /* a duplicate "env" key replaces the earlier map */
        free(in->env[j]);
    free(in->env);
    in->env = NULL;
    in->env_len = 0;
    if (take_nil(r))
        return 0;
    if (hm_mp_read_map(r, &n) != 0)
        return bad(err, r, "env", "must be a map of str to str");
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
            return bad(err, r, "env", "keys must be strings");
        if (hm_mp_read_str(r, &v, &vl) != 0)
            return bad(err, r, "env", "values must be strings");
        if (kl == 0 || memchr(k, '=', kl) || memchr(k, '\0', kl) || memchr(v, '\0', vl))
            return sh_err_set(err, "invalid_input",
                              "environment variable names must be non-empty and contain no '=' "
                              "or NUL, and values no NUL",
                              "ExecutorInput.env has an invalid variable '%.*s'",
                              (int)(kl > 200 ? 200 : kl), k);
        kv = (char *)malloc(kl + vl + 2);
        if (kv == NULL)
            return sh_err_set(err, "out_of_memory", NULL, "out of memory decoding ExecutorInput.env");
        memcpy(kv, k, kl);
        kv[kl] = '=';
        memcpy(kv + kl + 1, v, vl);
        kv[kl + 1 + vl] = '\0';
        in->env[in->env_len++] = kv;
    }
    return 0;
}

static int decode_step(hm_mp_reader_t *r, ct_input_t *in, sh_error_t *err)
{
    uint32_t n, i;
    if (hm_mp_read_map(r, &n) != 0)
        return bad(err, r, "step", "must be a map");
    in->has_step = 1;
    for (i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int rc;
        if (hm_mp_read_str(r, &k, &kl) != 0)
            return bad(err, r, "step", "keys must be strings");
        if (hm_mp_str_eq(k, kl, "key")) {
            rc = read_string(r, "step.key", 0, &in->key, err);
        } else if (hm_mp_str_eq(k, kl, "cmd")) {
            rc = read_string(r, "step.cmd", 0, &in->cmd, err);
        } else if (hm_mp_str_eq(k, kl, "image")) {
            rc = read_string(r, "step.image", 1, &in->image, err);
        } else if (hm_mp_str_eq(k, kl, "timeout_seconds")) {
            double t = 0;
            rc = 0;
            if (!take_nil(r)) {
                if (hm_mp_read_double(r, &t) != 0)
                    return bad(err, r, "step.timeout_seconds", "must be a number or nil");
                if (!(t > 0) || !isfinite(t))
                    return sh_err_set(err, "invalid_input", "omit timeout_seconds for no timeout",
                                      "ExecutorInput.step.timeout_seconds must be a positive "
                                      "number of seconds, got %g",
                                      t);
                in->timeout = t;
            }
        } else if (hm_mp_str_eq(k, kl, "runner_args")) {
            rc = decode_args(r, &in->args, err);
        } else {
            rc = skip(r, "step", err); /* label, runner, future fields */
        }
        if (rc != 0)
            return SH_FAILED;
    }
    return 0;
}

void ct_input_free(ct_input_t *in)
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
    free(in->args.user);
    free(in->args.network);
    memset(in, 0, sizeof *in);
}

int ct_decode_input(const uint8_t *data, size_t len, ct_input_t *in, sh_error_t *err)
{
    hm_mp_reader_t r;
    uint32_t n, i;

    memset(in, 0, sizeof *in);
    if (data == NULL)
        return sh_err_set(err, "invalid_input", INPUT_SUGGESTION, "ExecutorInput is a NULL pointer");
    hm_mp_reader_init(&r, data, len);
    if (hm_mp_read_map(&r, &n) != 0)
        return bad(err, &r, "(the whole input)", "must be a msgpack map");
    for (i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int rc;
        if (hm_mp_read_str(&r, &k, &kl) != 0)
            return bad(err, &r, "(keys)", "must be strings");
        if (hm_mp_str_eq(k, kl, "run_id"))
            rc = read_string(&r, "run_id", 0, &in->run_id, err);
        else if (hm_mp_str_eq(k, kl, "step"))
            rc = decode_step(&r, in, err);
        else if (hm_mp_str_eq(k, kl, "env"))
            rc = decode_env(&r, in, err);
        else if (hm_mp_str_eq(k, kl, "workspace"))
            rc = read_string(&r, "workspace", 0, &in->workspace, err);
        else if (hm_mp_str_eq(k, kl, "base_workspace"))
            rc = read_string(&r, "base_workspace", 1, &in->base_workspace, err);
        else if (hm_mp_str_eq(k, kl, "resolve_only")) {
            rc = hm_mp_read_bool(&r, &in->resolve_only) != 0
                     ? bad(err, &r, "resolve_only", "must be a bool")
                     : 0;
        } else
            rc = skip(&r, "(unknown field)", err); /* project_root and future fields */
        if (rc != 0)
            return SH_FAILED;
    }

    if (in->run_id == NULL || !in->has_step || in->key == NULL || in->cmd == NULL ||
        in->workspace == NULL)
        return sh_err_set(err, "invalid_input", INPUT_SUGGESTION,
                          "ExecutorInput.%s is missing",
                          in->run_id == NULL ? "run_id"
                          : !in->has_step    ? "step"
                          : in->key == NULL  ? "step.key"
                          : in->cmd == NULL  ? "step.cmd"
                                             : "workspace");
    if (in->workspace[0] != '/' || (in->base_workspace && in->base_workspace[0] != '/'))
        return sh_err_set(err, "invalid_input", INPUT_SUGGESTION,
                          "ExecutorInput.%s must be an absolute path",
                          in->workspace[0] != '/' ? "workspace" : "base_workspace");
    if (in->image == NULL || in->image[0] == '\0')
        return sh_err_set(err, "invalid_input",
                          "give the step an image (or the pipeline a default_image), or run it on "
                          "the shell runner",
                          "step '%s' names no image; the container runner runs every step in an "
                          "image",
                          in->key);
    return 0;
}
