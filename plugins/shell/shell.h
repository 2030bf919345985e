/*
 * shell.h — internal declarations of the shell runner, hm's bundled default
 * step executor. Not part of the plugin ABI: the only exported symbol of the
 * library is hm_load_plugin (shell.c); everything declared here has hidden
 * visibility (the build uses -fvisibility=hidden).
 *
 * Every .c file of the plugin includes this header FIRST, so the feature-test
 * macros below are seen before any system header.
 *
 * Layout of the plugin:
 *   shell.c        entry point, vtable, manifest, ExecutorInput decoding,
 *                  the order of the work
 *   support.c      shared helpers (errors, strerror, UTF-8, guarded host
 *                  calls, StepResult / PluginError encoding);
 *                  plugins/container compiles it too
 *   spawn.c        environment, fork/exec of /bin/sh -c, output streaming,
 *                  cancel / timeout, reaping
 *   tar_extract.c  streaming extractor for the run's workspace archive
 *   copy_tree.c    copy of base_workspace (the step this one builds in)
 *   session.c      interactive sessions on a PTY (ABI 1.1: session_*)
 *
 * Thread safety: the host calls execute_step concurrently from several
 * threads. The plugin has no mutable global state; each call keeps its state
 * on its own stack or heap.
 */
#ifndef HM_SHELL_RUNNER_H
#define HM_SHELL_RUNNER_H

/* POSIX.1-2008 (openat & co., O_CLOEXEC, waitid, strerror_r). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
/* glibc/musl: BSD and XSI extras (killpg, NSIG, st_mtim). */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
/* macOS: without this, _POSIX_C_SOURCE hides killpg, NSIG, st_mtimespec. */
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE 1
#endif
/* Linux: pipe2 (atomic O_CLOEXEC pipes), copy_file_range and syscall()
 * for close_range are only declared with _GNU_SOURCE. Side effect: glibc's
 * strerror_r becomes the GNU variant; sh_strerror() copes with both. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hm_plugin.h"

#if defined(__GNUC__) || defined(__clang__)
#define SH_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#else
#define SH_PRINTF(fmt_idx, args_idx)
#endif

/* Size of the buffers used to stream step output, archive bytes and file copies. */
#define SH_CHUNK (64u * 1024u)

/* Default of runner_args.kill_grace_seconds: time between SIGTERM and SIGKILL. */
#define SH_DEFAULT_KILL_GRACE 5.0

/* After the shell exits, how long processes it left in the background may keep
 * its stdout/stderr open before the runner kills them and stops reading. */
#define SH_DRAIN_LIMIT_SECONDS 2.0

/* Outcome codes of the preparation functions (sh_copy_tree, sh_extract_archive). */
#define SH_DONE 0        /* finished */
#define SH_FAILED (-1)   /* failed: the sh_error_t holds a PluginError */
#define SH_STOPPED 1     /* should_cancel asked to stop: report "cancelled" */

typedef struct sh_session sh_session_t;

/* The plugin instance: hm_load_plugin mallocs it, destroy frees it. */
typedef struct sh_plugin {
    const hm_host_api_t *host;
    /* Running sessions (session.c), guarded by its mutex. */
    sh_session_t *sessions;
} sh_plugin_t;

/* What every helper needs to talk to the host on behalf of one call. */
typedef struct sh_ctx {
    const hm_host_api_t *host;
    hm_call_t call;
} sh_ctx_t;

/* A PluginError being built (fixed size: filling it never allocates, so it
 * also works when memory runs out). All strings are NUL-terminated, valid
 * UTF-8 (sh_err_set replaces invalid bytes with '?'). */
typedef struct sh_error {
    char code[48];
    char message[1536];
    char suggestion[512]; /* "" when there is none */
    int retryable;
} sh_error_t;

/* ---- support.c: shared helpers ------------------------------------------ */

/* Fills *err (code, optional suggestion, printf-style message). Returns
 * SH_FAILED so callers can `return sh_err_set(...)`. */
int sh_err_set(sh_error_t *err, const char *code, const char *suggestion, const char *fmt, ...)
    SH_PRINTF(4, 5);

/* Thread-safe strerror: writes the text for errnum into buf, returns buf. */
const char *sh_strerror(int errnum, char *buf, size_t len);

/* Replaces every byte of s that is not part of a valid UTF-8 sequence with '?'. */
void sh_force_utf8(char *s);

/* host->log at `level`, printf-style; silently nothing if the host has no log. */
void sh_log(const sh_ctx_t *ctx, int32_t level, const char *fmt, ...) SH_PRINTF(3, 4);

/* 1 if the host asks this call to stop (should_cancel returned anything but
 * HM_OK), else 0. */
int sh_should_cancel(const sh_ctx_t *ctx);

/* host->emit_step_log; nothing if the host lacks it. */
void sh_emit_log(const sh_ctx_t *ctx, int32_t stream, const uint8_t *data, size_t len);

struct hm_mp_writer;

/* Hands the writer's bytes to *out. Returns `status`, or HM_ERR_NO_MEMORY
 * (with *out empty) if any write failed. */
hm_status_t sh_finish(struct hm_mp_writer *w, hm_buf_t *out, hm_status_t status);

/* Encodes *err as a PluginError into *out; returns HM_ERR_FAILED. */
hm_status_t sh_write_error(hm_buf_t *out, sh_error_t *err);

/* Encodes a StepResult into *out; message may be NULL (then omitted).
 * Returns HM_OK. */
hm_status_t sh_write_result(hm_buf_t *out, int64_t exit_code, const char *status,
                            const char *message);

/* ---- copy_tree.c -------------------------------------------------------- */

/* Copies data from in_fd to out_fd until EOF using buf (SH_CHUNK bytes).
 * Returns 0, or -1 with errno set. */
int sh_copy_fd(int in_fd, int out_fd, uint8_t *buf);

/* Writes all of data to fd (retrying short writes and EINTR). Returns 0, or -1
 * with errno set. */
int sh_write_all(int fd, const uint8_t *data, size_t len);

/* Recursively copies the directory src into the (empty) directory dst:
 * directories, regular files (mode & 0777, times), symlinks as symlinks;
 * nothing is followed; FIFOs, sockets and devices are skipped with a warning;
 * hard links become separate copies. Returns SH_DONE, SH_FAILED (*err set:
 * workspace_copy_failed, workspace_unavailable, out_of_memory) or SH_STOPPED. */
int sh_copy_tree(const sh_ctx_t *ctx, const char *src, const char *dst, sh_error_t *err);

/* ---- tar_extract.c ------------------------------------------------------ */

/* Materialises the run's workspace archive (host archive_read) in the
 * directory `workspace`. An archive the host does not offer (HM_ERR_UNAVAILABLE)
 * leaves the workspace empty. Returns SH_DONE, SH_FAILED (*err set:
 * bad_archive, archive_read_failed, workspace_extract_failed,
 * workspace_unavailable, out_of_memory) or SH_STOPPED. */
int sh_extract_archive(const sh_ctx_t *ctx, const char *workspace, sh_error_t *err);

/* ---- spawn.c ------------------------------------------------------------ */

typedef enum sh_outcome {
    SH_EXITED,    /* the shell ended by itself: wait_status says how */
    SH_TIMED_OUT, /* timeout_seconds elapsed; the group was killed */
    SH_CANCELLED  /* should_cancel asked to stop; the group was killed */
} sh_outcome_t;

typedef struct sh_run_spec {
    const char *cmd;                /* passed to /bin/sh -c */
    const char *workspace;          /* working directory */
    const char *const *env_overlay; /* "NAME=value" entries over the host's environ;
                                       a later entry wins over an earlier one */
    size_t env_overlay_len;
    double timeout_seconds;         /* <= 0: no timeout */
    double kill_grace_seconds;      /* SIGTERM -> SIGKILL delay, >= 0 */
} sh_run_spec_t;

typedef struct sh_run_result {
    sh_outcome_t outcome;
    int wait_status; /* waitpid() status of the shell (meaningful for SH_EXITED) */
} sh_run_result_t;

/* Runs /bin/sh -c spec->cmd in spec->workspace, streaming its stdout/stderr
 * through emit_step_log until it ends, is cancelled or times out. Returns 0
 * with *res filled, or -1 with *err set (spawn_failed, wait_failed,
 * out_of_memory). */
int sh_run(const sh_ctx_t *ctx, const sh_run_spec_t *spec, sh_run_result_t *res, sh_error_t *err);

/* ---- session.c ---------------------------------------------------------- */

/* The vtable's session entries (hm_plugin.h, since 1.1). */
hm_status_t sh_session_open(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                            hm_buf_t *out);
hm_status_t sh_session_write(void *instance, hm_call_t session, const uint8_t *data, size_t len);
hm_status_t sh_session_resize(void *instance, hm_call_t session, uint16_t rows, uint16_t cols);
hm_status_t sh_session_signal(void *instance, hm_call_t session, int32_t signal_);
hm_status_t sh_session_close(void *instance, hm_call_t session);

#endif /* HM_SHELL_RUNNER_H */
