/*
 * run.c — one step's container, from the image check to its removal.
 *
 *   ct_check_image: the image must be in the engine's store (hm never pulls:
 *                   a build should not depend on what a registry serves today),
 *                   and its id is what the container is created from;
 *   ct_run:         create (env, /workspace bind mount, runner_args) -> attach
 *                   -> start -> stream -> wait -> inspect (OOM) -> remove.
 *
 * As `docker run` does, the runner attaches before it starts the container, so
 * the output stream is complete from the first byte; the attach request lasts
 * until the container ends and is asked every 100 ms whether to stop (cancel,
 * or the step's timeout), and then the container is killed. Whatever happens
 * after a successful create — a failed start, a lost engine, cancel — the
 * container is removed (force, with its anonymous volumes). If even the create
 * request's answer was lost, the container is removed by its name, which is
 * unique to this run and step.
 */
#include "container.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKSPACE_IN_CONTAINER "/workspace"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An image reference the engines accept, and that cannot change the request
 * path: [A-Za-z0-9._/:@-], not starting with '/', '.' or '-', no "..". */
static int valid_image(const char *s)
{
    size_t i, n = strlen(s);
    if (n == 0 || n > 512 || s[0] == '/' || s[0] == '.' || s[0] == '-' || strstr(s, "..") ||
        strstr(s, "//"))
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '/' || c == ':' || c == '@' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

int ct_check_image(const ct_engine_t *eng, ct_input_t *in, sh_error_t *err)
{
    const char *image = in->image;
    int rc;
    if (!valid_image(image))
        return sh_err_set(err, "invalid_image",
                          "an image reference looks like name[:tag] or registry/name@sha256:digest",
                          "'%.300s' is not a valid image reference", image);
    rc = ct_image_inspect(eng, image, in->image_id, sizeof in->image_id, err);
    if (rc == CT_NOT_FOUND) {
        char hint[512];
        snprintf(hint, sizeof hint,
                 "get it into the engine first: `podman pull %.150s` (or `docker pull`), or build "
                 "or import it (`podman import rootfs.tar %.150s`); hm never pulls images",
                 image, image);
        return sh_err_set(err, "image_not_found", hint,
                          "image '%s' is not in the container engine's image store (unix://%s)",
                          image, eng->socket);
    }
    return rc;
}

/* ---- the container spec ---------------------------------------------------- */

static int is_fixed_var(const char *kv)
{
    return strncmp(kv, "HM_STEP_KEY=", 12) == 0 || strncmp(kv, "HM_RUN_ID=", 10) == 0 ||
           strncmp(kv, "HM_WORKSPACE=", 13) == 0;
}

static int env_add(json_t *env, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *kv = (char *)malloc(n);
    int rc;
    if (kv == NULL)
        return -1;
    snprintf(kv, n, "%s=%s", name, value);
    rc = json_array_append_new(env, json_string(kv));
    free(kv);
    return rc;
}

/* The body of POST /containers/create. NULL when out of memory (or a string
 * is not UTF-8, which jansson refuses: hm only sends UTF-8). */
static json_t *container_spec(const ct_input_t *in)
{
    json_t *spec = json_object(), *host = json_object(), *env = json_array();
    json_t *mounts = json_array(), *mount = json_object(), *labels = json_object();
    size_t i;
    int bad = spec == NULL || host == NULL || env == NULL || mounts == NULL || mount == NULL ||
              labels == NULL;

    /* The environment is the step's own (pipeline env + step env) and the
     * variables hm always sets, never the host's: the container is a
     * different machine. HM_* values set by hm always win. */
    for (i = 0; !bad && i < in->env_len; i++)
        if (!is_fixed_var(in->env[i]))
            bad |= json_array_append_new(env, json_string(in->env[i])) != 0;
    bad = bad || env_add(env, "HM_STEP_KEY", in->key) != 0 ||
          env_add(env, "HM_RUN_ID", in->run_id) != 0 ||
          env_add(env, "HM_WORKSPACE", WORKSPACE_IN_CONTAINER) != 0;

    if (!bad) {
        /* Mounts, not Binds: "src:dst" would break on a path with ':' or ','. */
        bad |= json_object_set_new(mount, "Type", json_string("bind")) != 0;
        bad |= json_object_set_new(mount, "Source", json_string(in->workspace)) != 0;
        bad |= json_object_set_new(mount, "Target", json_string(WORKSPACE_IN_CONTAINER)) != 0;
        bad |= json_array_append(mounts, mount) != 0;
        bad |= json_object_set(host, "Mounts", mounts) != 0;
        if (in->args.network)
            bad |= json_object_set_new(host, "NetworkMode", json_string(in->args.network)) != 0;
        if (in->args.memory > 0)
            bad |= json_object_set_new(host, "Memory", json_integer(in->args.memory)) != 0;
        if (in->args.cpus > 0)
            bad |= json_object_set_new(host, "NanoCpus",
                                       json_integer((json_int_t)(in->args.cpus * 1e9 + 0.5))) != 0;

        bad |= json_object_set_new(labels, "dev.hm.run_id", json_string(in->run_id)) != 0;
        bad |= json_object_set_new(labels, "dev.hm.step", json_string(in->key)) != 0;
        bad |= json_object_set_new(labels, "dev.hm.image", json_string(in->image)) != 0;

        /* The id ct_check_image found, not the name: a tag moved meanwhile
         * cannot change what runs, and StepResult.image_id tells the truth. */
        bad |= json_object_set_new(spec, "Image",
                                   json_string(in->image_id[0] ? in->image_id : in->image)) != 0;
        /* The step's cmd is a shell command, whatever the image's entrypoint. */
        bad |= json_object_set_new(spec, "Entrypoint", json_pack("[ss]", "/bin/sh", "-c")) != 0;
        bad |= json_object_set_new(spec, "Cmd", json_pack("[s]", in->cmd)) != 0;
        bad |= json_object_set(spec, "Env", env) != 0;
        bad |= json_object_set_new(spec, "WorkingDir", json_string(WORKSPACE_IN_CONTAINER)) != 0;
        if (in->args.user)
            bad |= json_object_set_new(spec, "User", json_string(in->args.user)) != 0;
        bad |= json_object_set_new(spec, "Tty", json_false()) != 0;
        bad |= json_object_set_new(spec, "OpenStdin", json_false()) != 0;
        bad |= json_object_set(spec, "Labels", labels) != 0;
        bad |= json_object_set(spec, "HostConfig", host) != 0;
    }
    json_decref(env);
    json_decref(mount);
    json_decref(mounts);
    json_decref(labels);
    json_decref(host);
    if (bad) {
        json_decref(spec);
        return NULL;
    }
    return spec;
}

/* hm-<run id>-<step key>: unique per run and step, readable in `podman ps`,
 * and made only of the characters container names allow. */
static void container_name(const ct_input_t *in, char *out, size_t cap)
{
    size_t i;
    snprintf(out, cap, "hm-%.40s-%.150s", in->run_id, in->key);
    for (i = 3; out[i]; i++) {
        char c = out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            out[i] = '-';
    }
}

/* ---- streaming and stopping ------------------------------------------------- */

typedef struct watch {
    const sh_ctx_t *ctx;
    const ct_engine_t *eng;
    const ct_input_t *in;
    const char *id;
    int started;
    double deadline; /* CLOCK_MONOTONIC seconds; 0: none */
    ct_outcome_t why;
    ct_demux_t demux;
} watch_t;

static int should_stop(void *arg)
{
    watch_t *w = (watch_t *)arg;
    if (sh_should_cancel(w->ctx)) {
        w->why = CT_CANCELLED;
        return 1;
    }
    if (w->deadline > 0 && now_s() >= w->deadline) {
        w->why = CT_TIMED_OUT;
        return 1;
    }
    return 0;
}

static void on_output(void *arg, const uint8_t *data, size_t len)
{
    ct_demux_feed(&((watch_t *)arg)->demux, data, len);
}

/* The attach stream is open: start the container (and its timeout clock). */
static int on_attached(void *arg, sh_error_t *err)
{
    watch_t *w = (watch_t *)arg;
    if (ct_container_start(w->eng, w->id, err) != CT_OK) {
        if (err->suggestion[0] == '\0')
            snprintf(err->suggestion, sizeof err->suggestion,
                     "the runner starts /bin/sh -c CMD in the image, so the image needs /bin/sh");
        return SH_FAILED;
    }
    w->started = 1;
    if (w->in->timeout > 0)
        w->deadline = now_s() + w->in->timeout;
    return 0;
}

/* Removes the container; a failure is reported in the step's log (the step's
 * own outcome stays what it was) with the command that finishes the job. */
static void remove_container(const sh_ctx_t *ctx, const ct_engine_t *eng, const char *ref,
                             const char *name)
{
    sh_error_t rm_err;
    char line[2048];
    memset(&rm_err, 0, sizeof rm_err);
    if (ct_container_remove(eng, ref, &rm_err) == CT_OK)
        return;
    snprintf(line, sizeof line,
             "hm: could not remove container %s: %s; remove it with `podman rm -f %s` (or "
             "`docker rm -f %s`)\n",
             name, rm_err.message, name, name);
    sh_force_utf8(line);
    sh_emit_log(ctx, HM_STREAM_STDERR, (const uint8_t *)line, strlen(line));
    sh_log(ctx, HM_LOG_WARNING, "%s", line);
}

int ct_run(const sh_ctx_t *ctx, const ct_engine_t *eng, const ct_input_t *in, ct_result_t *res,
           sh_error_t *err)
{
    char name[256], id[72];
    json_t *spec;
    watch_t watch;
    int rc, uncertain = 0;

    memset(res, 0, sizeof *res);
    container_name(in, name, sizeof name);
    spec = container_spec(in);
    if (spec == NULL)
        return sh_err_set(err, "out_of_memory", NULL,
                          "cannot build the container spec of step '%s' (out of memory, or a "
                          "string that is not UTF-8)",
                          in->key);
    rc = ct_container_create(eng, name, spec, id, &uncertain, err);
    json_decref(spec);
    if (rc != CT_OK) {
        /* the request may have reached the engine even though its answer did not reach us */
        if (uncertain)
            remove_container(ctx, eng, name, name);
        return SH_FAILED;
    }

    memset(&watch, 0, sizeof watch);
    watch.ctx = ctx;
    watch.eng = eng;
    watch.in = in;
    watch.id = id;
    ct_demux_init(&watch.demux, ctx);
    if (should_stop(&watch)) { /* cancelled while the container was being created */
        res->outcome = watch.why;
        goto remove;
    }

    rc = ct_container_attach(eng, id, on_attached, on_output, should_stop, &watch, err);
    if (rc == CT_OK && !watch.started) /* the stream ended before it began */
        rc = sh_err_set(err, "engine_error", NULL,
                        "the container engine (unix://%s) closed the stream of container %s "
                        "before it started",
                        eng->socket, name);
    if (rc == CT_OK)
        rc = ct_container_wait(eng, id, should_stop, &watch, &res->exit_status, err);
    if (rc == CT_STOPPED) {
        sh_error_t kill_err;
        memset(&kill_err, 0, sizeof kill_err);
        res->outcome = watch.why;
        if (ct_container_kill(eng, id, &kill_err) != CT_OK)
            sh_log(ctx, HM_LOG_WARNING, "could not kill container %s: %s (removing it anyway)",
                   name, kill_err.message);
        rc = CT_OK;
        goto remove;
    }
    if (rc != CT_OK)
        goto remove;
    res->outcome = CT_EXITED;
    if (res->exit_status != 0) {
        sh_error_t inspect_err;
        memset(&inspect_err, 0, sizeof inspect_err);
        if (ct_container_oom_killed(eng, id, &res->oom_killed, &inspect_err) != CT_OK)
            sh_log(ctx, HM_LOG_WARNING, "could not inspect container %s: %s", name,
                   inspect_err.message);
    }

remove:
    remove_container(ctx, eng, id, name);
    return rc == CT_OK ? 0 : SH_FAILED;
}
