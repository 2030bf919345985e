/*
 * spawn.c — runs one step's command: environment, its supervisor (through the
 * supervisor server), output streaming, cancel / timeout, release.
 *
 * The host is a multi-threaded Python process that runs several steps at once,
 * each in its own thread calling execute_step. That shapes everything here:
 *
 *   - Every fd we create is close-on-exec from birth (pipe2, F_DUPFD_CLOEXEC,
 *     O_CLOEXEC; plain pipe + fcntl where pipe2 does not exist), so a process
 *     started by another thread never inherits our pipes and never keeps our
 *     step "open" after our shell is gone.
 *   - Every step has a *supervisor*: it leads the step's new process group,
 *     starts the shell in it, and stays until the runner kills the group. It
 *     exists so that a step never outlives the process that runs it.
 *   - Supervisors are forked by one small server per process
 *     (hm-step-supervisor --serve, started with posix_spawn on first use; the
 *     protocol and the reasons are in supervisor/supervisor.h), not by a fork()
 *     of the host: copying the page tables of hm's large, multi-threaded process
 *     was most of a short step's cost, and a child of fork() in a threaded
 *     process may only make async-signal-safe calls.
 *   - The supervisor's pid is the group's id, and it is only reaped (by the
 *     server, on RELEASE) after the last group signal was sent: an unreaped
 *     process keeps its pid, hence the pgid, from being reused, so killpg() can
 *     never hit an unrelated group.
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
#include <sys/socket.h>
#include <sys/uio.h>
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

static int release_supervisor(pid_t pid);

/* Lets the server reap the step's supervisor: the runner sends no more signals
 * to its group. Returns 0, or -1 with errno set. */
static int reap_child(child_state_t *ch)
{
    if (ch->reaped)
        return 0;
    ch->reaped = 1;
    return release_supervisor(ch->pid);
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

/* ---- the supervisor server (supervisor/supervisor.h) -------------------- */

static pthread_mutex_t server_mu = PTHREAD_MUTEX_INITIALIZER;
static int server_fd = -1;    /* our end of the socket; under server_mu */
static pid_t server_pid = -1;

/* Starts `hm-step-supervisor --serve`; under server_mu. 0 or an errno. */
static int start_server(void)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all;
    char serve[] = "--serve";
    char *argv[3];
    int sv[2], devnull, rc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return errno;
    /* the server's end goes to fd 3: it must not be 0-3 itself (a dup2 onto the
     * same number would leave it close-on-exec) */
    rc = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
    close(sv[1]);
    sv[1] = rc;
    devnull = raise_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (sv[1] < 0 || devnull < 0) {
        rc = errno;
        close(sv[0]);
        if (sv[1] >= 0)
            close(sv[1]);
        if (devnull >= 0)
            close(devnull);
        return rc;
    }
    argv[0] = supervisor_path;
    argv[1] = serve;
    argv[2] = NULL;
    sigfillset(&all);
    rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0 && (rc = posix_spawnattr_init(&attr)) != 0)
        posix_spawn_file_actions_destroy(&fa);
    if (rc == 0) {
        /* every signal blocked and at its default: the server takes none (hm's
         * Ctrl-C is for hm), and its children inherit both */
        if ((rc = posix_spawn_file_actions_adddup2(&fa, devnull, 0)) == 0 &&
            (rc = posix_spawn_file_actions_adddup2(&fa, devnull, 1)) == 0 &&
            (rc = posix_spawn_file_actions_adddup2(&fa, devnull, 2)) == 0 &&
            (rc = posix_spawn_file_actions_adddup2(&fa, sv[1], 3)) == 0 &&
            (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0 &&
            (rc = posix_spawnattr_setsigmask(&attr, &all)) == 0 && (rc = posix_spawnattr_setsigdefault(&attr, &all)) == 0)
            rc = posix_spawn(&server_pid, supervisor_path, &fa, &attr, argv, SH_ENVIRON);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
    }
    close(sv[1]);
    close(devnull);
    if (rc != 0) {
        close(sv[0]);
        return rc;
    }
    server_fd = raise_fd(sv[0]);
    return 0;
}

/* Writes header + payload on the socket, the descriptors riding on the first
 * byte; under server_mu. 0 or an errno. */
static int send_request(uint32_t kind, const char *payload, size_t len, const int *fds, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } control;
    sup_header_t h;
    struct iovec iov[2];
    struct msghdr m;
    size_t sent = 0, total = sizeof h + len;
    ssize_t n;

    h.kind = kind;
    h.length = (uint32_t)len;
    memset(&m, 0, sizeof m);
    if (nfds > 0) {
        struct cmsghdr *c;
        memset(&control, 0, sizeof control);
        m.msg_control = control.buf;
        m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    while (sent < total) {
        int k = 0;
        if (sent < sizeof h) {
            iov[k].iov_base = (char *)&h + sent;
            iov[k++].iov_len = sizeof h - sent;
            iov[k].iov_base = (char *)payload;
            iov[k++].iov_len = len;
        } else {
            iov[k].iov_base = (char *)payload + (sent - sizeof h);
            iov[k++].iov_len = total - sent;
        }
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)k;
        n = sendmsg(server_fd, &m, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        sent += (size_t)n;
        m.msg_control = NULL; /* the descriptors went with the first byte */
        m.msg_controllen = 0;
    }
    return 0;
}

/* At exit (hm's, or its worker's): close the socket so the server ends, and
 * reap it, so no zombie of ours waits for an init that may never reap it. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((destructor))
#endif
static void stop_server(void)
{
    if (pthread_mutex_trylock(&server_mu) != 0)
        return; /* a step thread is mid-request as the process exits: the server ends at our exit anyway */
    if (server_fd >= 0) {
        close_fd(&server_fd);
        while (waitpid(server_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&server_mu);
}

/* One request to the server, started (again, if it died) as needed. 0 or an errno. */
static int request(uint32_t kind, const char *payload, size_t len, const int *fds, int nfds)
{
    int rc = 0, attempt;
    pthread_mutex_lock(&server_mu);
    for (attempt = 0; attempt < 2; attempt++) {
        if (server_fd < 0 && (rc = start_server()) != 0)
            break;
        rc = send_request(kind, payload, len, fds, nfds);
        if (rc == 0 || kind != SUP_START || (rc != EPIPE && rc != ECONNRESET))
            break;
        /* the server is gone (killed?): its steps went with it; start another */
        close_fd(&server_fd);
        waitpid(server_pid, NULL, WNOHANG);
    }
    pthread_mutex_unlock(&server_mu);
    return rc;
}

static int release_supervisor(pid_t pid)
{
    int32_t p = (int32_t)pid;
    int rc = request(SUP_RELEASE, (const char *)&p, sizeof p, NULL, 0);
    if (rc != 0 && rc != EPIPE && rc != ECONNRESET) { /* a dead server reaped nothing, and needs not */
        errno = rc;
        return -1;
    }
    return 0;
}

/* The START payload: argc, envc, workspace, argv, envp (supervisor.h). NULL
 * when out of memory; *len is set. */
static char *start_payload(const char *workspace, char *const argv[], char *const envp[], size_t *len)
{
    int32_t argc = 0, envc = 0;
    size_t total = 8 + strlen(workspace) + 1, at;
    char *p;
    int i;
    while (argv[argc] != NULL)
        total += strlen(argv[argc++]) + 1;
    while (envp[envc] != NULL)
        total += strlen(envp[envc++]) + 1;
    *len = total;
    if (total > SUP_MAX_PAYLOAD)
        return NULL;
    p = (char *)malloc(total);
    if (p == NULL)
        return NULL;
    memcpy(p, &argc, 4);
    memcpy(p + 4, &envc, 4);
    at = 8;
    at += (size_t)sprintf(p + at, "%s", workspace) + 1;
    for (i = 0; i < argc; i++)
        at += (size_t)sprintf(p + at, "%s", argv[i]) + 1;
    for (i = 0; i < envc; i++)
        at += (size_t)sprintf(p + at, "%s", envp[i]) + 1;
    return p;
}

/* Reads one {kind, value} message from the status pipe (blocking); 0, or -1 at
 * EOF before a whole one. */
static int read_report(int fd, int report[2])
{
    size_t got = 0;
    report[0] = report[1] = 0;
    while (got < 2 * sizeof(int)) {
        ssize_t n = read(fd, (char *)report + got, 2 * sizeof(int) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

int sh_run(const sh_ctx_t *ctx, const sh_run_spec_t *spec, sh_run_result_t *res, sh_error_t *err)
{
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
    int rc = -1, report[2], fds[3], sent;
    char *argv[4];
    char **envp = NULL, *payload = NULL;
    uint8_t *buf = NULL;
    child_state_t ch;
    size_t payload_len = 0;

    memset(&ch, 0, sizeof ch);
    pthread_once(&supervisor_once, find_supervisor);
    if (supervisor_errno != 0) {
        spawn_error(err, supervisor_errno, "reinstall hm: the shell runner's helper program is missing",
                    "cannot find " SH_SUPERVISOR_NAME " next to the shell runner: ", supervisor_path);
        return -1;
    }

    argv[0] = (char *)"/bin/sh";
    argv[1] = (char *)"-c";
    argv[2] = (char *)spec->cmd;
    argv[3] = NULL;
    envp = build_envp(spec);
    buf = (uint8_t *)malloc(SH_CHUNK);
    if (envp != NULL)
        payload = start_payload(spec->workspace, argv, envp, &payload_len);
    if (payload == NULL && payload_len > SUP_MAX_PAYLOAD) {
        too_big_error(err, spec);
        goto out;
    }
    if (envp == NULL || buf == NULL || payload == NULL) {
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
    fds[0] = out_p[1];
    fds[1] = err_p[1];
    fds[2] = st_p[1];
    sent = request(SUP_START, payload, payload_len, fds, 3);
    /* the server holds its own copies now: the pipes close when the step's processes close them */
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&st_p[1]);
    if (sent != 0) {
        spawn_error(err, sent,
                    retryable_errno(sent) ? "the system is out of processes or memory: lower --parallelism or retry"
                                          : "reinstall hm: the shell runner's helper program cannot run",
                    "cannot start the step's supervisor ", supervisor_path);
        goto out;
    }

    /* The supervisor's pid first (or why the server could not fork one), then
     * STARTED or why the shell could not start. */
    if (read_report(st_p[0], report) != 0 || report[0] != MSG_SUPERVISOR) {
        int e = report[0] == STAGE_SETUP ? report[1] : ECHILD;
        spawn_error(err, e, retryable_errno(e) ? "the system is out of processes or memory: lower --parallelism or retry" : NULL,
                    "cannot start the step's supervisor", "");
        goto out;
    }
    ch.pid = (pid_t)report[1];
    if (read_report(st_p[0], report) != 0 || report[0] != MSG_STARTED) {
        int got = report[0] != MSG_SUPERVISOR && report[0] >= STAGE_SETUP && report[0] <= STAGE_EXEC;
        int e = got ? report[1] : ECHILD;
        signal_group(ch.pid, SIGKILL);
        reap_child(&ch);
        if (!got)
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
    free(payload);
    free(buf);
    free_envp(envp);
    return rc;
}
