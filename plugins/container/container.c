/*
 * container.c — entry point of the container runner: vtable, manifest, and
 * the order of the work.
 *
 * execute_step does, in this order:
 *   1. decode ExecutorInput (input.c; anything malformed -> invalid_input);
 *   2. return "cancelled" at once if the host already asks to stop;
 *   3. find the engine's socket and check that it has the image (engine.c,
 *      run.c) — before any work on the workspace, so a missing engine or
 *      image fails in milliseconds — and learn the image's id. With
 *      resolve_only (hm's step cache asks before it looks a step up) the
 *      answer is that id, and nothing runs;
 *   4. prepare the workspace exactly as the shell runner does (its
 *      copy_tree.c / tar_extract.c are compiled into this library);
 *   5. run the container (run.c): create, start, stream, wait, remove;
 *   6. encode the StepResult (support.c).
 * Infrastructure failures (the command never ran, or the runner lost track
 * of it) are HM_ERR_FAILED with a PluginError; everything the command itself
 * did is a StepResult with HM_OK.
 */
#include "container.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "hm_msgpack.h"
#include "hm_protocol.h"

#define CT_NAME "container"
#define CT_VERSION "0.1.0"
#define CT_DESCRIPTION \
    "Runs steps that name an image in a container, through the Docker Engine API (Docker or Podman)"

/* ======================================================================== */
/* libcurl's global initialisation: once per process, before any handle     */
/* ======================================================================== */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT; /* written once, under curl_once */

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ======================================================================== */
/* Results                                                                  */
/* ======================================================================== */

/* A StepResult, with the image id when there is one (hm_protocol.h's encoder). */
static hm_status_t write_result(hm_buf_t *out, const ct_input_t *in, int64_t exit_code,
                                const char *status, const char *message)
{
    return hm_proto_step_result(out, exit_code, status, message, in->image_id[0] != '\0' ? in->image_id : NULL);
}

static hm_status_t report(hm_buf_t *out, const ct_input_t *in, const ct_result_t *res)
{
    char msg[512];
    int64_t code = res->exit_status;
    if (res->outcome == CT_TIMED_OUT) {
        snprintf(msg, sizeof msg, "timed out after %g s; the container was killed", in->timeout);
        return write_result(out, in, 124, "timed_out", msg);
    }
    if (res->outcome == CT_CANCELLED)
        return write_result(out, in, 130, "cancelled", "cancelled; the container was killed");
    if (code == 0)
        return write_result(out, in, 0, "succeeded", NULL);
    if (res->oom_killed) {
        if (in->args.memory_text[0])
            snprintf(msg, sizeof msg,
                     "killed by the out-of-memory killer (exit %lld): the step needs more than "
                     "runner_args.memory = %s",
                     (long long)code, in->args.memory_text);
        else
            snprintf(msg, sizeof msg, "killed by the out-of-memory killer (exit %lld)",
                     (long long)code);
    } else if (code == 137 && in->args.memory_text[0]) {
        /* Not every engine flags OOM kills (cgroup v1 hosts, older Podman):
         * SIGKILL under a memory limit is almost always the OOM killer. */
        snprintf(msg, sizeof msg,
                 "exited with code 137 (SIGKILL) under runner_args.memory = %s: most likely the "
                 "out-of-memory killer; raise the limit",
                 in->args.memory_text);
    } else if (code == 127) {
        snprintf(msg, sizeof msg, "command not found (exit 127)");
    } else if (code > 128 && code < 128 + 65) {
        snprintf(msg, sizeof msg, "exited with code %lld (a process was killed by signal %lld)",
                 (long long)code, (long long)(code - 128));
    } else {
        snprintf(msg, sizeof msg, "exited with code %lld", (long long)code);
    }
    return write_result(out, in, code > 0 && code < 256 ? code : 1, "failed", msg);
}

/* ======================================================================== */
/* execute_step                                                             */
/* ======================================================================== */

static hm_status_t execute_step(void *instance, hm_call_t call, const uint8_t *input,
                                size_t input_len, hm_buf_t *out)
{
    const sh_plugin_t *pl = (const sh_plugin_t *)instance;
    sh_ctx_t ctx;
    sh_error_t err;
    ct_input_t in;
    ct_engine_t eng;
    ct_result_t res;
    hm_status_t status;
    int rc;

    if (out == NULL || pl == NULL)
        return HM_ERR_INVALID_ARGUMENT;
    out->ptr = NULL;
    out->len = 0;
    memset(&err, 0, sizeof err);
    ctx.host = pl->host;
    ctx.call = call;

    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK) {
        sh_err_set(&err, "engine_error", NULL, "libcurl failed to initialise: %s",
                   curl_easy_strerror(curl_init_result));
        return sh_write_error(out, &err);
    }

    /* 1. input */
    if (ct_decode_input(input, input_len, &in, &err) != 0) {
        ct_input_free(&in);
        return sh_write_error(out, &err);
    }
    /* 2. cancelled before we even start */
    if (sh_should_cancel(&ctx)) {
        ct_input_free(&in);
        return sh_write_result(out, 130, "cancelled", "cancelled");
    }
    /* 3. engine and image */
    eng.ctx = &ctx;
    if (ct_engine_find(&eng, &err) != 0 || ct_check_image(&eng, &in, &err) != 0) {
        ct_input_free(&in);
        return sh_write_error(out, &err);
    }
    if (in.resolve_only) {
        status = write_result(out, &in, 0, "succeeded", NULL);
        ct_input_free(&in);
        return status;
    }
    /* 4. workspace */
    if (in.base_workspace != NULL)
        rc = sh_copy_tree(&ctx, in.base_workspace, in.workspace, &err);
    else
        rc = sh_extract_archive(&ctx, in.workspace, &err);
    if (rc == SH_STOPPED) {
        ct_input_free(&in);
        return sh_write_result(out, 130, "cancelled", "cancelled");
    }
    if (rc != SH_DONE) {
        ct_input_free(&in);
        return sh_write_error(out, &err);
    }
    /* 5. run, 6. report */
    if (ct_run(&ctx, &eng, &in, &res, &err) != 0)
        status = sh_write_error(out, &err);
    else
        status = report(out, &in, &res);
    ct_input_free(&in);
    return status;
}

/* ======================================================================== */
/* Manifest, vtable, entry point                                            */
/* ======================================================================== */

/* One RunnerArgSpec: hm checks runner_args against these before a run starts. */
static void write_arg_spec(hm_mp_writer_t *w, const char *name, const char *const *types,
                           uint32_t n_types, const char *const *choices, uint32_t n_choices,
                           const char *pattern, const char *help)
{
    hm_proto_runner_arg(w, name, types, n_types, choices, n_choices, pattern, help);
}

static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    static const char *const str[] = {"string"};
    static const char *const str_int[] = {"string", "int"};
    static const char *const num[] = {"number"};
    static const char *const networks[] = {"none", "host", "bridge"};
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    if (out == NULL)
        return HM_ERR_INVALID_ARGUMENT;
    static const char *const runners[] = {CT_NAME};
    hm_proto_executor_t executor;
    memset(&executor, 0, sizeof executor);
    executor.runners = runners;
    executor.n_runners = 1;
    executor.images = 1;
    /* answers resolve_only, and reports StepResult.image_id (hm's step cache) */
    executor.resolves_images = 1;
    executor.sessions = 1; /* session.c */
    executor.has_runner_args = 1;
    executor.n_runner_args = 4;
    hm_mp_writer_init(&w);
    hm_proto_manifest_begin(&w, CT_NAME, CT_VERSION, CT_DESCRIPTION, 1);
    hm_proto_cap_step_executor(&w, &executor);
    /* the same rules input.c applies (valid_user, parse_size) */
    write_arg_spec(&w, "user", str_int, 2, NULL, 0, "[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?",
                   "the user to run as: a name or uid, optionally with :group, e.g. \"1000:1000\"");
    write_arg_spec(&w, "network", str, 1, networks, 3, NULL,
                   "the container's network: none, host or bridge; default: the engine's");
    write_arg_spec(&w, "memory", str_int, 2, NULL, 0,
                   "[0-9]+(\\.[0-9]+)?([bB]|[kKmMgGtT][iI]?[bB]?)?",
                   "memory limit: bytes as an int, or a size like \"512m\" or \"2g\"");
    write_arg_spec(&w, "cpus", num, 1, NULL, 0, NULL, "CPU limit, e.g. 1.5");
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
    .session_open = ct_session_open, /* session.c: Engine API exec with a TTY */
    .session_write = ct_session_write,
    .session_resize = ct_session_resize,
    .session_signal = ct_session_signal,
    .session_close = ct_session_close,
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
