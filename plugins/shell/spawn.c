/*
 * spawn.c — runs one step's command: environment, posix_spawn of its
 * supervisor, output streaming, cancel / timeout, reaping.
 *
 * The host is a multi-threaded Python process that runs several steps at once,
 * each in its own thread calling execute_step. That shapes everything here:
 *
 *   - Every fd we create is close-on-exec from birth (pipe2, F_DUPFD_CLOEXEC,
 *     O_CLOEXEC; plain pipe + fcntl where pipe2 does not exist), so a step
 *     spawned by another thread never inherits our pipes and never keeps our
 *     step "open" after our shell is gone.
 *   - Every step has a *supervisor* (supervisor/main.c, protocol in
 *     supervisor/supervisor.h): it leads the step's new process group, starts
 *     the shell in it, and stays until the runner kills the group. It exists so
 *     that a step never outlives the process that runs it: when the thread that
 *     spawned it dies, it kills the step's group.
 *   - The supervisor is a small program started with posix_spawn, not a fork()
 *     of the host: copying the page tables of hm's large, multi-threaded
 *     process was most of a short step's cost, and a child of fork() in a
 *     multi-threaded process may only make async-signal-safe calls.
 *     posix_spawn puts it in its own group, sets every signal to its default
 *     disposition (Python ignores SIGPIPE and SIGXFSZ, and ignored dispositions
 *     survive exec) and blocks them all (it takes its signals with
 *     sigtimedwait; the shell unblocks them before its exec), all before the
 *     supervisor runs a single instruction.
 *   - The supervisor's pid is the group's id, and it is only reaped after the
 *     last group signal was sent: an unreaped process keeps its pid, hence the
 *     pgid, from being reused, so killpg() can never hit an unrelated group.
 *   - When the step is over the whole group is killed: what a step started in
 *     the background ends with it.
 */
#define _GNU_SOURCE 1 /* dladdr */
#include "shell.h"
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <crt_externs.h> /* a dylib cannot link against `environ` directly */
#define SH_ENVIRON (*_NSGetEnviron())
#else
extern char **environ;
#define SH_ENVIRON environ
#endif

#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
#define SH_HAVE_PIPE2 1
#endif



typedef struct child_state {
    pid_t pid;     /* the supervisor: its pid is the step's process group */
    int exited;    /* the shell has exited (EXITED on the status pipe) */
    int reaped;    /* the supervisor was reaped */
    int status;    /* the shell's wait status, once exited */
    int st_r;      /* read end of the status pipe */
    int got;       /* bytes of a status message read so far */
    int msg[2];
} child_state_t;

typedef enum stop_reason { STOP_NONE, STOP_CANCEL, STOP_TIMEOUT } stop_reason_t;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Closes *fd if open and marks it closed. (No retry on EINTR: on Linux and
 * macOS the descriptor is released even then, and retrying could close an fd
 * another thread just opened.) */
static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int retryable_errno(int e)
{
    return e == EAGAIN || e == ENOMEM || e == EMFILE || e == ENFILE;
}

/* ---- environment -------------------------------------------------------- */

/* Length of the NAME part of a "NAME=value" entry. */
static size_t key_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

static int same_key(const char *a, const char *b)
{
    size_t la = key_len(a);
    return la == key_len(b) && memcmp(a, b, la) == 0;
}

/* envp = the host's environ without the names the overlay sets, then the
 * overlay (a later overlay entry wins over an earlier one with the same name).
 * The array is malloc'd; the strings are borrowed. */
static char **build_envp(const sh_run_spec_t *spec)
{
    char **env = SH_ENVIRON;
    size_t n_env = 0, i, j, k = 0;
    char **envp;

    while (env != NULL && env[n_env] != NULL)
        n_env++;
    envp = (char **)malloc((n_env + spec->env_overlay_len + 1) * sizeof *envp);
    if (envp == NULL)
        return NULL;
    for (i = 0; i < n_env; i++) {
        int overridden = 0;
        if (strchr(env[i], '=') == NULL)
            continue;
        for (j = 0; j < spec->env_overlay_len && !overridden; j++)
            overridden = same_key(env[i], spec->env_overlay[j]);
        if (!overridden)
            envp[k++] = env[i];
    }
    for (i = 0; i < spec->env_overlay_len; i++) {
        int later = 0;
        for (j = i + 1; j < spec->env_overlay_len && !later; j++)
            later = same_key(spec->env_overlay[i], spec->env_overlay[j]);
        if (!later)
            envp[k++] = (char *)spec->env_overlay[i];
    }
    envp[k] = NULL;
    return envp;
}

static void free_envp(char **envp)
{
    free((void *)envp);
}

/* ---- descriptors -------------------------------------------------------- */

/* Moves fd to a number >= 3 (close-on-exec), so that placing the child's
 * stdin/stdout/stderr with dup2 can never clobber another of our fds even if
 * the host runs with 0, 1 or 2 closed. Returns the fd, or -1 (errno set; fd
 * closed). */
static int raise_fd(int fd)
{
    int nfd, saved;
    if (fd < 0 || fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    saved = errno;
    close(fd);
    errno = saved;
    return nfd;
}

/* A close-on-exec pipe whose both ends are >= 3. Returns 0 or -1 (errno set). */
static int make_pipe(int p[2])
{
#ifdef SH_HAVE_PIPE2
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
#else
    /* no pipe2 (macOS): set FD_CLOEXEC at once; a concurrent fork in another
     * thread can still catch them in between, but its child closes every fd
     * above 2 before exec (below), and foreign children exec immediately */
    if (pipe(p) != 0)
        return -1;
    if (fcntl(p[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0) {
        int saved = errno;
        close(p[0]);
        close(p[1]);
        errno = saved;
        return -1;
    }
#endif
    p[0] = raise_fd(p[0]);
    p[1] = raise_fd(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        int saved = errno;
        close_fd(&p[0]);
        close_fd(&p[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- the parent --------------------------------------------------------- */

/* Reads what the status pipe has (non-blocking): sets ch->exited once the
 * shell's EXITED arrived, or once the supervisor is gone without saying it
 * (it was killed: the step is over either way). */
static void read_status(child_state_t *ch)
{
    while (ch->st_r >= 0) {
        ssize_t n = read(ch->st_r, (char *)ch->msg + ch->got, sizeof ch->msg - (size_t)ch->got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return; /* EAGAIN: nothing yet */
        if (n == 0) {
            close_fd(&ch->st_r);
            if (!ch->exited) {
                ch->exited = 1;
                ch->status = SIGKILL; /* the wait status of "killed by SIGKILL" */
            }
            return;
        }
        ch->got += (int)n;
        if (ch->got == (int)sizeof ch->msg) {
            ch->got = 0;
            if (ch->msg[0] == MSG_EXITED && !ch->exited) {
                ch->exited = 1;
                ch->status = ch->msg[1];
            }
        }
    }
}

/* Reaps the supervisor (blocking). Returns 0, or -1 with errno set. */
static int reap_child(child_state_t *ch)
{
    int status = 0;
    pid_t r;
    if (ch->reaped)
        return 0;
    do {
        r = waitpid(ch->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    ch->reaped = 1;
    return 0;
}

/* Signals the shell's process group (the shell's pid is its pgid). */
static void signal_group(pid_t pgid, int sig)
{
    if (killpg(pgid, sig) != 0 && errno == ESRCH)
        kill(pgid, sig); /* setpgid not effective yet: at least the shell itself */
}

/* Milliseconds from now until t, within [0, cap]. */
static int ms_until(double t, double now, int cap)
{
    double ms = (t - now) * 1000.0;
    if (ms <= 0)
        return 0;
    if (ms >= cap)
        return cap;
    return (int)ms + 1; /* round up: never wake just before the deadline */
}

/* Reads once from *fd and streams what came; closes *fd at EOF or on error. */
static void pump(const sh_ctx_t *ctx, int *fd, int32_t stream, uint8_t *buf)
{
    ssize_t n = read(*fd, buf, SH_CHUNK);
    if (n > 0)
        sh_emit_log(ctx, stream, buf, (size_t)n);
    else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        close_fd(fd);
}

/* Streams whatever is already buffered in the pipes (bounded), without waiting. */
static void drain_available(const sh_ctx_t *ctx, struct pollfd *pfd, uint8_t *buf)
{
    int k, i;
    for (k = 0; k < 2; k++) {
        for (i = 0; i < 16 && pfd[k].fd >= 0; i++) {
            ssize_t n = read(pfd[k].fd, buf, SH_CHUNK);
            if (n > 0) {
                sh_emit_log(ctx, k == 0 ? HM_STREAM_STDOUT : HM_STREAM_STDERR, buf, (size_t)n);
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                close_fd(&pfd[k].fd);
            break;
        }
    }
}

static int spawn_error(sh_error_t *err, int errnum, const char *suggestion, const char *what,
                       const char *detail)
{
    char eb[256];
    sh_err_set(err, "spawn_failed", suggestion, "%s%s: %s", what, detail,
               sh_strerror(errnum, eb, sizeof eb));
    err->retryable = retryable_errno(errnum);
    return -1;
}

/* Streams the running shell's output until it has exited and its pipes are
 * drained, handling cancel / timeout. On return the step's group was killed and
 * its supervisor reaped (unless -1: wait_failed). */
static int supervise(const sh_ctx_t *ctx, const sh_run_spec_t *spec, child_state_t *ch,
                     int out_r, int err_r, uint8_t *buf, sh_run_result_t *res, sh_error_t *err)
{
    struct pollfd pfd[3];
    const int32_t streams[2] = {HM_STREAM_STDOUT, HM_STREAM_STDERR};
    double start = now_seconds();
    double deadline = spec->timeout_seconds > 0 ? start + spec->timeout_seconds : 0;
    double grace = spec->kill_grace_seconds;
    double term_at = 0, exit_at = 0;
    stop_reason_t stop = STOP_NONE;
    int killed = 0, late_stop = 0, stragglers = 0, k;
    char eb[256];

    pfd[0].fd = out_r;
    pfd[1].fd = err_r;
    pfd[2].fd = ch->st_r;
    for (k = 0; k < 3; k++) {
        pfd[k].events = POLLIN;
        pfd[k].revents = 0;
        set_nonblocking(pfd[k].fd);
    }

    for (;;) {
        int nopen = (pfd[0].fd >= 0) + (pfd[1].fd >= 0);
        int wait_ms = 100, r;
        double now = now_seconds();

        if (!ch->exited) {
            if (stop == STOP_NONE) {
                if (sh_should_cancel(ctx))
                    stop = STOP_CANCEL;
                else if (deadline > 0 && now >= deadline)
                    stop = STOP_TIMEOUT;
                if (stop != STOP_NONE) {
                    /* the supervisor ignores TERM: it is for the step's processes */
                    signal_group(ch->pid, SIGTERM);
                    term_at = now;
                    if (grace <= 0) {
                        signal_group(ch->pid, SIGKILL);
                        killed = 1;
                    }
                }
            } else if (!killed && now >= term_at + grace) {
                signal_group(ch->pid, SIGKILL);
                killed = 1;
            }
        } else {
            if (nopen == 0)
                break;
            if (stop != STOP_NONE) {
                /* stopped on purpose: take what is buffered, wait for nothing */
                drain_available(ctx, pfd, buf);
                break;
            }
            if (exit_at == 0)
                exit_at = now;
            if (sh_should_cancel(ctx) || (deadline > 0 && now >= deadline)) {
                late_stop = 1; /* the shell's own status stands; just stop reading */
                break;
            }
            if (now - exit_at >= SH_DRAIN_LIMIT_SECONDS) {
                stragglers = 1;
                break;
            }
        }

        /* how long poll() may sleep: 100 ms at most, less before a deadline */
        if (!ch->exited && stop == STOP_NONE && deadline > 0)
            wait_ms = ms_until(deadline, now, wait_ms);
        if (!ch->exited && stop != STOP_NONE && !killed)
            wait_ms = ms_until(term_at + grace, now, wait_ms);
        if (ch->exited)
            wait_ms = ms_until(exit_at + SH_DRAIN_LIMIT_SECONDS, now, wait_ms);

        pfd[2].fd = ch->st_r; /* -1 once the supervisor is gone: poll ignores it */
        r = poll(pfd, 3, wait_ms);
        if (r < 0) {
            int e = errno;
            if (e == EINTR || e == EAGAIN)
                continue;
            signal_group(ch->pid, SIGKILL);
            close_fd(&pfd[0].fd);
            close_fd(&pfd[1].fd);
            reap_child(ch);
            return sh_err_set(err, "wait_failed", NULL, "poll() on the step's output failed: %s",
                              sh_strerror(e, eb, sizeof eb));
        }
        for (k = 0; k < 2; k++) {
            if (pfd[k].fd >= 0 && pfd[k].revents != 0)
                pump(ctx, &pfd[k].fd, streams[k], buf);
        }
        if (pfd[2].fd >= 0 && pfd[2].revents != 0)
            read_status(ch);
    }

    /* the step is over: its group goes, supervisor included; all group signals
     * happen before the reap (see the top of this file) */
    signal_group(ch->pid, SIGKILL);
    close_fd(&pfd[0].fd);
    close_fd(&pfd[1].fd);
    if (stragglers)
        sh_log(ctx, HM_LOG_WARNING,
               "the shell exited but processes it started kept its output open for %g s; killed "
               "them",
               SH_DRAIN_LIMIT_SECONDS);

    if (reap_child(ch) != 0) {
        int e = errno;
        return sh_err_set(err, "wait_failed",
                          e == ECHILD ? "something in the host process reaps children it did not "
                                        "start (SIGCHLD set to SIG_IGN?)"
                                      : NULL,
                          "cannot reap the step's supervisor (pid %ld): %s", (long)ch->pid,
                          sh_strerror(e, eb, sizeof eb));
    }
    (void)late_stop;
    res->outcome = stop == STOP_CANCEL    ? SH_CANCELLED
                   : stop == STOP_TIMEOUT ? SH_TIMED_OUT
                                          : SH_EXITED;
    res->wait_status = ch->status;
    return 0;
}

static void too_big_error(sh_error_t *err, const sh_run_spec_t *spec)
{
    char eb[256];
    sh_err_set(err, "spawn_failed",
               "the command or the environment is larger than the system accepts for one "
               "program (on Linux, one argument may be at most 128 KiB): put a long script "
               "in a file and run that file",
               "cannot execute /bin/sh: %s (command of %zu bytes)", sh_strerror(E2BIG, eb, sizeof eb),
               strlen(spec->cmd));
}

/* ---- finding the supervisor ---------------------------------------------- */

static char supervisor_path[4096];
static int supervisor_errno; /* why it is not there, once looked for */
static pthread_once_t supervisor_once = PTHREAD_ONCE_INIT;

/* hm-step-supervisor is built next to this library (build.py). */
static void find_supervisor(void)
{
    Dl_info info;
    const char *slash;
    size_t dir_len;

    if (dladdr((void *)&sh_run, &info) == 0 || info.dli_fname == NULL ||
        (slash = strrchr(info.dli_fname, '/')) == NULL) {
        supervisor_errno = ENOENT;
        return;
    }
    dir_len = (size_t)(slash - info.dli_fname) + 1;
    if (dir_len + sizeof SH_SUPERVISOR_NAME > sizeof supervisor_path) {
        supervisor_errno = ENAMETOOLONG;
        return;
    }
    memcpy(supervisor_path, info.dli_fname, dir_len);
    memcpy(supervisor_path + dir_len, SH_SUPERVISOR_NAME, sizeof SH_SUPERVISOR_NAME);
    if (access(supervisor_path, X_OK) != 0)
        supervisor_errno = errno;
}

/* Starts the supervisor of one step; 0 or an errno. *where says which part
 * failed, for the message. */
static int spawn_supervisor(pid_t *pid, char *const argv[], char *const envp[], int devnull, int out_w,
                            int err_w, int st_w, const char **where)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all;
    int rc;

    *where = "cannot set up the step's supervisor";
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return rc;
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigfillset(&all);
    /* st_w is >= 4 (the caller made sure), so no dup2 below has the same fd on
     * both sides (that would leave it close-on-exec) or clobbers a later source */
    if ((rc = posix_spawn_file_actions_adddup2(&fa, devnull, 0)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&fa, st_w, 3)) == 0 &&
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) == 0 &&
        (rc = posix_spawnattr_setpgroup(&attr, 0)) == 0 && (rc = posix_spawnattr_setsigmask(&attr, &all)) == 0 &&
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) == 0) {
        *where = "cannot start the step's supervisor ";
        rc = posix_spawn(pid, argv[0], &fa, &attr, argv, envp);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int sh_run(const sh_ctx_t *ctx, const sh_run_spec_t *spec, sh_run_result_t *res, sh_error_t *err)
{
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
    int devnull = -1, rc = -1, report[2], spawn_errno;
    char parent[24];
    char *argv[7];
    char **envp = NULL;
    uint8_t *buf = NULL;
    child_state_t ch;
    const char *where;
    size_t got = 0;
    pid_t pid = -1;

    memset(&ch, 0, sizeof ch);
    pthread_once(&supervisor_once, find_supervisor);
    if (supervisor_errno != 0) {
        spawn_error(err, supervisor_errno, "reinstall hm: the shell runner's helper program is missing",
                    "cannot find " SH_SUPERVISOR_NAME " next to the shell runner: ", supervisor_path);
        return -1;
    }

    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    argv[0] = supervisor_path;
    argv[1] = parent;
    argv[2] = (char *)spec->workspace;
    argv[3] = (char *)"/bin/sh";
    argv[4] = (char *)"-c";
    argv[5] = (char *)spec->cmd;
    argv[6] = NULL;
    envp = build_envp(spec);
    buf = (uint8_t *)malloc(SH_CHUNK);
    if (envp == NULL || buf == NULL) {
        sh_err_set(err, "out_of_memory", NULL, "out of memory preparing the step's process");
        goto out;
    }
    if (make_pipe(out_p) != 0 || make_pipe(err_p) != 0 || make_pipe(st_p) != 0) {
        spawn_error(err, errno,
                    "the process may have run out of file descriptors: raise `ulimit -n` or "
                    "lower --parallelism",
                    "cannot create pipes for the step's output", "");
        goto out;
    }
    if (st_p[1] < 4) { /* see spawn_supervisor */
        int moved = fcntl(st_p[1], F_DUPFD_CLOEXEC, 4);
        if (moved < 0) {
            spawn_error(err, errno, "raise `ulimit -n` or lower --parallelism",
                        "cannot create pipes for the step's output", "");
            goto out;
        }
        close_fd(&st_p[1]);
        st_p[1] = moved;
    }
    devnull = raise_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (devnull < 0) {
        spawn_error(err, errno, "check that /dev/null exists and is readable",
                    "cannot open /dev/null for the step's standard input", "");
        goto out;
    }
    spawn_errno = spawn_supervisor(&pid, argv, envp, devnull, out_p[1], err_p[1], st_p[1], &where);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&st_p[1]);
    close_fd(&devnull);
    if (spawn_errno == E2BIG) { /* the supervisor carries the same command and environment */
        too_big_error(err, spec);
        goto out;
    }
    if (spawn_errno != 0) {
        spawn_error(err, spawn_errno,
                    retryable_errno(spawn_errno) ? "the system is out of processes or memory: lower --parallelism or retry"
                                                 : "reinstall hm: the shell runner's helper program cannot run",
                    where, strncmp(where, "cannot start", 12) == 0 ? supervisor_path : "");
        goto out;
    }
    ch.pid = pid;

    /* The supervisor's first message: STARTED, or why the shell could not start. */
    while (got < sizeof report) {
        ssize_t n = read(st_p[0], (char *)report + got, sizeof report - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != sizeof report || report[0] != MSG_STARTED) {
        int e = got == sizeof report ? report[1] : ECHILD;
        signal_group(ch.pid, SIGKILL);
        reap_child(&ch);
        if (got != sizeof report)
            report[0] = STAGE_SETUP;
        if (report[0] == STAGE_CHDIR)
            spawn_error(err, e, "the workspace directory must exist and be searchable by this user",
                        "cannot enter the workspace ", spec->workspace);
        else if (report[0] == STAGE_EXEC && e == E2BIG)
            too_big_error(err, spec);
        else if (report[0] == STAGE_EXEC)
            spawn_error(err, e, "the shell runner needs a POSIX shell at /bin/sh",
                        "cannot execute /bin/sh", "");
        else
            spawn_error(err, e, NULL, "cannot set up the step's process", "");
        goto out;
    }

    ch.st_r = st_p[0];
    st_p[0] = -1;
    rc = supervise(ctx, spec, &ch, out_p[0], err_p[0], buf, res, err);
    out_p[0] = err_p[0] = -1; /* supervise closed them */
    close_fd(&ch.st_r);

out:
    close_fd(&out_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[0]);
    close_fd(&err_p[1]);
    close_fd(&st_p[0]);
    close_fd(&st_p[1]);
    close_fd(&devnull);
    free(buf);
    free_envp(envp);
    return rc;
}
