/*
 * container.h — internal declarations of the container runner, hm's bundled
 * step executor for steps that name an image. Not part of the plugin ABI: the
 * only exported symbol is hm_load_plugin (container.c); everything else has
 * hidden visibility (the build uses -fvisibility=hidden).
 *
 * The runner talks to a Docker Engine API (Docker's daemon or Podman's
 * `podman system service`) over its Unix socket, with libcurl for HTTP and
 * jansson for JSON. The workspace is prepared by the shell runner's code,
 * compiled into this library as well (see build.toml): this header includes
 * shell.h for its vocabulary (sh_ctx_t, sh_error_t, sh_err_set, sh_log, ...)
 * and for sh_copy_tree / sh_extract_archive.
 *
 * Layout of the plugin:
 *   container.c  entry point, vtable, manifest, StepResult / PluginError
 *                encoding, the order of the work
 *   input.c      ExecutorInput decoding, runner_args checking
 *   engine.c     socket discovery and one function per Engine API call
 *   demux.c      the multiplexed stdout/stderr stream (8-byte frame headers)
 *   run.c        one step's container: create, start, stream, wait, remove
 *   session.c    interactive sessions (ABI 1.1): exec with a TTY
 *
 * Thread safety: the host calls execute_step concurrently from several
 * threads. There is no mutable global state except libcurl's one-time global
 * initialisation (pthread_once in container.c); every request has its own
 * curl handle, every JSON value its own owner.
 *
 * Every .c file includes this header FIRST (shell.h sets the feature-test
 * macros, which must come before any system header).
 */
#ifndef HM_CONTAINER_RUNNER_H
#define HM_CONTAINER_RUNNER_H

#include "shell.h"

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ---- input.c ------------------------------------------------------------ */

/* The documented runner_args (docs/container-runner.md). */
typedef struct ct_args {
    char *user;        /* "name", "uid" or "uid:gid"; NULL: the image's user */
    char *network;     /* "none", "host" or "bridge"; NULL: the engine's default */
    int64_t memory;    /* bytes; 0: no limit */
    char memory_text[64]; /* as the pipeline wrote it, for messages ("" if unset) */
    double cpus;       /* CPUs, e.g. 1.5; 0: no limit */
} ct_args_t;

/* Room for an image id: "sha256:" and 64 hex digits, with margin. */
#define CT_IMAGE_ID_MAX 160

typedef struct ct_input {
    char *run_id;
    char *key;
    char *cmd;
    char *image;          /* required: the container runner only runs images */
    char *workspace;      /* absolute, empty directory on this machine */
    char *base_workspace; /* NULL: extract the run's archive */
    int has_step;
    double timeout;       /* seconds; 0: none */
    char **env;           /* "NAME=value", owned */
    size_t env_len;
    ct_args_t args;
    int resolve_only;     /* ExecutorInput.resolve_only: resolve the image, run nothing */
    /* The image's id, filled by ct_check_image; the container is created from
     * it, so what ran is exactly what StepResult.image_id names. */
    char image_id[CT_IMAGE_ID_MAX];
} ct_input_t;

/* Decodes an ExecutorInput. Returns 0, or SH_FAILED with *err set
 * (invalid_input, out_of_memory). *in must be freed with ct_input_free
 * either way. */
int ct_decode_input(const uint8_t *data, size_t len, ct_input_t *in, sh_error_t *err);
void ct_input_free(ct_input_t *in);

/* ---- engine.c ----------------------------------------------------------- */

/* Where the engine is: the socket path and how it was chosen. */
typedef struct ct_engine {
    char socket[1024];
    const char *source;  /* "DOCKER_HOST" or "the default socket" (static strings) */
    const sh_ctx_t *ctx; /* for warnings in hm's log; set by the caller */
} ct_engine_t;

/* Called between waits while a long request streams; nonzero aborts it. */
typedef int (*ct_stop_fn)(void *arg);
/* Receives the body of a streaming request, chunk by chunk, as it arrives. */
typedef void (*ct_data_fn)(void *arg, const uint8_t *data, size_t len);
/* Told the socket of a hijacked stream's connection once libcurl opened it, and
 * -1 just before libcurl closes it. */
typedef void (*ct_sock_fn)(void *arg, int fd);
/* Called once when a streaming request's answer has begun (2xx headers in);
 * nonzero (with *err set) aborts the request with that error. */
typedef int (*ct_ready_fn)(void *arg, sh_error_t *err);

/* Outcomes of requests that can be stopped or can find nothing. */
#define CT_OK 0
#define CT_NOT_FOUND 2 /* HTTP 404: no such image / container */
#define CT_STOPPED 1   /* the stop function asked to stop (same value as SH_STOPPED) */

/* Picks the socket: DOCKER_HOST=unix://PATH, else the first of
 * /var/run/docker.sock, /run/podman/podman.sock and
 * $XDG_RUNTIME_DIR/podman/podman.sock that exists (eng->ctx is kept).
 * Returns 0 or SH_FAILED
 * (engine_unreachable: DOCKER_HOST is not a unix:// URL, or no socket). */
int ct_engine_find(ct_engine_t *eng, sh_error_t *err);

/* One function per Engine API call, as docker-py has them. Each returns CT_OK
 * or SH_FAILED with *err naming the step's image or container, the socket
 * and the engine's own message. */

/* GET /images/{image}/json. CT_NOT_FOUND when the engine does not have it.
 * Fills id (cap bytes) with the image's id as the engine names it
 * ("sha256:<hex>"). */
int ct_image_inspect(const ct_engine_t *eng, const char *image, char *id, size_t cap,
                     sh_error_t *err);

/* POST /containers/create?name={name} with `body` (borrowed). Fills id with
 * the container's id (hex, NUL-terminated). On failure *uncertain says
 * whether the container may exist all the same (the request went out but no
 * usable answer came back). */
int ct_container_create(const ct_engine_t *eng, const char *name, const json_t *body, char id[72],
                        int *uncertain, sh_error_t *err);

/* Sessions (ABI 1.1), as docker-py's exec_api: POST /containers/{id}/exec
 * (`body` borrowed; fills id). */
int ct_exec_create(const ct_engine_t *eng, const char *container, const json_t *body, char id[72],
                   sh_error_t *err);
/* POST /exec/{id}/start {Detach: false, Tty: true}: streams the TTY's output to
 * on_data until the exec ends (CT_OK) or stop() says so (CT_STOPPED); on_sock
 * learns the connection's socket, to which the session's input is written. */
int ct_exec_start_tty(const ct_engine_t *eng, const char *exec_id, ct_sock_fn on_sock, ct_data_fn on_data,
                      ct_ready_fn on_ready, ct_stop_fn stop, void *arg, sh_error_t *err);
/* POST /exec/{id}/resize?h=ROWS&w=COLS */
int ct_exec_resize(const ct_engine_t *eng, const char *exec_id, unsigned rows, unsigned cols, sh_error_t *err);
/* GET /exec/{id}/json: its ExitCode (-1 if none yet). */
int ct_exec_exit_code(const ct_engine_t *eng, const char *exec_id, int64_t *code, sh_error_t *err);

/* POST /containers/{id}/start */
int ct_container_start(const ct_engine_t *eng, const char *id, sh_error_t *err);

/* POST /containers/{id}/attach?stream=1&stdout=1&stderr=1: the container's
 * output from the moment of attaching, live and lossless (a log-file follow,
 * Podman 4's at least, drops lines under fast output). on_ready runs once the
 * stream is open — that is when to start the container, so nothing it
 * prints is missed. Streams until the container ends (CT_OK) or stop() says
 * so (CT_STOPPED). */
int ct_container_attach(const ct_engine_t *eng, const char *id, ct_ready_fn on_ready,
                        ct_data_fn on_data, ct_stop_fn stop, void *arg, sh_error_t *err);

/* POST /containers/{id}/wait: the container's exit status once it ended, or
 * CT_STOPPED if stop() said so first (stop may be NULL). */
int ct_container_wait(const ct_engine_t *eng, const char *id, ct_stop_fn stop, void *arg,
                      int64_t *status, sh_error_t *err);

/* GET /containers/{id}/json: State.OOMKilled. */
int ct_container_oom_killed(const ct_engine_t *eng, const char *id, int *oom_killed,
                            sh_error_t *err);

/* kill and remove take the container's id or its name. */

/* POST /containers/{id}/kill (SIGKILL). A container that is no longer
 * running is not an error. */
int ct_container_kill(const ct_engine_t *eng, const char *id, sh_error_t *err);

/* DELETE /containers/{id}?force=1&v=1. A container already gone is not an
 * error. */
int ct_container_remove(const ct_engine_t *eng, const char *id, sh_error_t *err);

/* ---- demux.c ------------------------------------------------------------ */

/* Splits the Engine API's multiplexed stream into stdout and stderr. Each
 * frame is an 8-byte header {stream, 0, 0, 0, size as big-endian uint32}
 * and `size` payload bytes; the payload goes to emit_step_log as it arrives,
 * partial frames included (the host joins lines). A stream that does not
 * start with a valid header (a TTY container's raw stream) is passed through
 * as stdout. */
typedef struct ct_demux {
    const sh_ctx_t *ctx;
    uint8_t header[8];
    size_t header_len;  /* bytes of the current header received so far */
    uint32_t remaining; /* payload bytes of the current frame still to come */
    int32_t stream;     /* HM_STREAM_STDOUT / HM_STREAM_STDERR; 0: discard (stdin) */
    int raw;            /* no framing: everything is stdout */
    int started;
} ct_demux_t;

void ct_demux_init(ct_demux_t *d, const sh_ctx_t *ctx);
void ct_demux_feed(ct_demux_t *d, const uint8_t *data, size_t len);

/* ---- run.c -------------------------------------------------------------- */

typedef enum ct_outcome {
    CT_EXITED,    /* the container ended by itself: exit_status says how */
    CT_TIMED_OUT, /* timeout_seconds elapsed; the container was killed */
    CT_CANCELLED  /* should_cancel asked to stop; the container was killed */
} ct_outcome_t;

typedef struct ct_result {
    ct_outcome_t outcome;
    int64_t exit_status; /* the container's exit code (for CT_EXITED) */
    int oom_killed;      /* the engine says the OOM killer killed it */
} ct_result_t;

/* Checks that in->image is a valid reference and that the engine has it, and
 * fills in->image_id. Returns 0 or SH_FAILED (invalid_image, image_not_found,
 * engine_*). */
int ct_check_image(const ct_engine_t *eng, ct_input_t *in, sh_error_t *err);

/* Runs the step's command in a container of in->image with in->workspace
 * bind-mounted at /workspace, streaming its output, and removes the
 * container whatever happens. Returns 0 with *res filled, or SH_FAILED with
 * *err set (image_not_found, engine_unreachable, engine_error, ...). */
int ct_run(const sh_ctx_t *ctx, const ct_engine_t *eng, const ct_input_t *in, ct_result_t *res,
           sh_error_t *err);

/* ---- session.c: interactive sessions (ABI 1.1) -------------------------- */

hm_status_t ct_session_open(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                            hm_buf_t *out);
hm_status_t ct_session_write(void *instance, hm_call_t session, const uint8_t *data, size_t len);
hm_status_t ct_session_resize(void *instance, hm_call_t session, uint16_t rows, uint16_t cols);
hm_status_t ct_session_signal(void *instance, hm_call_t session, int32_t signal_);
hm_status_t ct_session_close(void *instance, hm_call_t session);

#endif /* HM_CONTAINER_RUNNER_H */
