/*
 * spawn.c — runs one step's command: environment, fork/exec of /bin/sh -c,
 * output streaming, cancel / timeout, reaping.
 *
 * The host is a multi-threaded Python process that runs several steps at once,
 * each in its own thread calling execute_step. That shapes everything here:
 *
 *   - Every fd we create is close-on-exec from birth (pipe2, F_DUPFD_CLOEXEC,
 *     O_CLOEXEC; plain pipe + fcntl where pipe2 does not exist), so a step
 *     forked by another thread never inherits our pipes and never keeps our
 *     step "open" after our shell is gone.
 *   - argv and envp are built before fork(). Between fork and execve the child
 *     of a multi-threaded process may only make async-signal-safe calls (no
 *     malloc: another thread may have held its lock at fork time).
 *   - All signals are blocked around fork() so no host signal handler (Python
 *     installs C-level handlers) runs in the child; the child resets every
 *     disposition to the default (Python ignores SIGPIPE and SIGXFSZ, and
 *     ignored dispositions survive execve) and unblocks everything.
 *   - Every step has a *supervisor*: the forked child leads a new process
 *     group, starts the shell in it, and stays until the runner kills the
 *     group. It exists so that a step never outlives the process that runs it:
 *     when the thread that forked it dies (hm or its worker crashed, was
 *     killed with SIGKILL, or its whole process group was), the supervisor
 *     gets a parent-death signal (Linux; elsewhere it polls getppid()) and
 *     kills the step's group. It never execs, so it only makes async-signal-
 *     safe calls, and it holds none of the step's pipes.
 *   - The supervisor tells the runner over a status pipe: {STARTED, pid} once
 *     the shell exec'd, {stage, errno} if it could not (a missing workspace is
 *     a precise spawn_failed error, not a misleading "exit 127"), and
 *     {EXITED, wait status} when the shell ends.
 *   - The supervisor's pid is the group's id, and it is only reaped after the
 *     last group signal was sent: an unreaped process keeps its pid, hence the
 *     pgid, from being reused, so killpg() can never hit an unrelated group.
 *   - When the step is over the whole group is killed: what a step started in
 *     the background ends with it.
 */
#include "shell.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif
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

#ifdef NSIG
#define SH_NSIG NSIG
#else
#define SH_NSIG 65
#endif

/* Highest fd the child closes one by one when close_range is unavailable. */
#define SH_MAX_CLOSE_FD (1 << 20)

/* Messages on the status pipe (supervisor -> runner), as {kind, value} ints. */
enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3, MSG_STARTED = 4, MSG_EXITED = 5 };

/* Signal the supervisor gets when the thread that forked it dies (Linux). */
#define SUPERVISOR_PDEATH SIGUSR1

/* Everything the child needs, prepared before fork(). */
typedef struct child_setup {
    char *const *argv;
    char *const *envp;
    const char *workspace;
    int devnull;
    int out_w;
    int err_w;
    int st_w;     /* status pipe to the runner */
    int max_fd;
    pid_t parent; /* the runner's process */
    struct sigaction dfl;
    sigset_t empty;
} child_setup_t;

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

/* ---- the supervisor and the shell (async-signal-safe calls only) --------- */

static void put_msg(int fd, int kind, int value)
{
    int msg[2];
    ssize_t n;
    msg[0] = kind;
    msg[1] = value;
    do {
        n = write(fd, msg, sizeof msg);
    } while (n < 0 && errno == EINTR);
}

static void child_report(int fd, int stage, int errnum)
{
    put_msg(fd, stage, errnum);
    _exit(127);
}

/* Closes every descriptor >= lo. */
static void close_from(int lo, int max_fd)
{
    int fd;
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0u) == 0)
        return;
#endif
    for (fd = lo; fd < max_fd; fd++)
        close(fd);
}

/* The shell: runs in the supervisor's group with an empty signal mask. `rep` is
 * the supervisor's close-on-exec report pipe. */
static void exec_shell(const child_setup_t *cs, int rep)
{
    sigprocmask(SIG_SETMASK, &cs->empty, NULL);
    if (chdir(cs->workspace) != 0)
        child_report(rep, STAGE_CHDIR, errno);
    if (dup2(cs->devnull, 0) < 0 || dup2(cs->out_w, 1) < 0 || dup2(cs->err_w, 2) < 0)
        child_report(rep, STAGE_SETUP, errno);
    /* keep the report pipe as fd 3 (close-on-exec), close everything else */
    if (rep != 3) {
        if (dup2(rep, 3) < 0)
            child_report(rep, STAGE_SETUP, errno);
        rep = 3;
    }
    if (fcntl(rep, F_SETFD, FD_CLOEXEC) != 0)
        child_report(rep, STAGE_SETUP, errno);
    close_from(4, cs->max_fd);

    execve("/bin/sh", cs->argv, cs->envp);
    child_report(rep, STAGE_EXEC, errno);
}

/* Forks the shell; in the child, exec_shell never returns. A function of its
 * own so that vfork's "the child borrows this stack frame" touches nothing of
 * the supervisor's. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static pid_t start_shell(const child_setup_t *cs, int rep)
{
    pid_t pid;
#if defined(__linux__)
    /* vfork: the shell borrows this single-threaded copy of the host until it
     * execs, instead of copying the host's page tables a second time */
    pid = vfork();
#else
    pid = fork();
#endif
    if (pid == 0)
        exec_shell(cs, rep);
    return pid;
}

/* Kills the supervisor's whole group, itself included. */
static void kill_step(void)
{
    kill(0, SIGKILL);
    _exit(137);
}

static void run_supervisor(const child_setup_t *cs)
{
    int sig, st = cs->st_w, ex[2], msg[2], status = 0, reaped = 0;
    sigset_t waitset;
    pid_t shell;
    ssize_t n;
    size_t got = 0;

    /* default dispositions (Python ignores SIGPIPE and SIGXFSZ, and ignored
     * dispositions survive execve); the mask stays full (the runner blocked
     * everything around fork): the supervisor takes its signals with
     * sigtimedwait, the shell unblocks them before exec */
    for (sig = 1; sig < SH_NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &cs->dfl, NULL); /* EINVAL for libc-reserved numbers: fine */
    }
    if (setpgid(0, 0) != 0)
        child_report(st, STAGE_SETUP, errno);
#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, SUPERVISOR_PDEATH);
    /* the step's orphans (`cmd &` after the shell left) become ours to reap,
     * not zombies of the host's */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
    if (getppid() != cs->parent) /* it died before prctl took effect */
        _exit(137);

    if (pipe(ex) != 0)
        child_report(st, STAGE_SETUP, errno);
    if (fcntl(ex[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(ex[1], F_SETFD, FD_CLOEXEC) != 0)
        child_report(st, STAGE_SETUP, errno);
    shell = start_shell(cs, ex[1]);
    if (shell < 0)
        child_report(st, STAGE_SETUP, errno);
    close(ex[1]);
    /* EOF: execve succeeded. Otherwise the shell says why it could not. */
    while (got < sizeof msg) {
        n = read(ex[0], (char *)msg + got, sizeof msg - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(ex[0]);
    if (got == sizeof msg) {
        while (waitpid(shell, &status, 0) < 0 && errno == EINTR)
            ;
        child_report(st, msg[0], msg[1]);
    }
    put_msg(st, MSG_STARTED, (int)shell);

    /* hold nothing of the step's: its output pipes must close when its own
     * processes close them */
    if (dup2(cs->devnull, 0) < 0 || dup2(cs->devnull, 1) < 0 || dup2(cs->devnull, 2) < 0)
        kill_step();
    if (st != 3) {
        if (dup2(st, 3) < 0)
            kill_step();
        st = 3;
    }
    close_from(4, cs->max_fd);

    sigemptyset(&waitset);
    sigaddset(&waitset, SIGCHLD);
    sigaddset(&waitset, SUPERVISOR_PDEATH);
    for (;;) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        sig = sigtimedwait(&waitset, NULL, &tick);
        if (sig == SUPERVISOR_PDEATH || getppid() != cs->parent)
            kill_step(); /* the runner is gone: so is the step */
        for (;;) { /* reap the shell and any orphan of the step that ended */
            int any_status;
            pid_t done = waitpid(-1, &any_status, WNOHANG);
            if (done <= 0)
                break;
            if (done == shell && !reaped) {
                reaped = 1;
                status = any_status;
                put_msg(st, MSG_EXITED, status);
            }
        }
        /* then wait for the runner's SIGKILL of the group */
    }
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

int sh_run(const sh_ctx_t *ctx, const sh_run_spec_t *spec, sh_run_result_t *res, sh_error_t *err)
{
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
    int devnull = -1, rc = -1, report[2];
    char *argv[4];
    char **envp = NULL;
    uint8_t *buf = NULL;
    child_setup_t cs;
    child_state_t ch;
    sigset_t all, old;
    struct rlimit rl;
    size_t got = 0;
    pid_t pid;
    int fork_errno;

    memset(&ch, 0, sizeof ch);
    memset(&cs, 0, sizeof cs);

    /* everything the child needs, before fork */
    argv[0] = (char *)"/bin/sh";
    argv[1] = (char *)"-c";
    argv[2] = (char *)spec->cmd;
    argv[3] = NULL;
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
    devnull = raise_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (devnull < 0) {
        spawn_error(err, errno, "check that /dev/null exists and is readable",
                    "cannot open /dev/null for the step's standard input", "");
        goto out;
    }
    cs.argv = argv;
    cs.envp = envp;
    cs.workspace = spec->workspace;
    cs.devnull = devnull;
    cs.out_w = out_p[1];
    cs.err_w = err_p[1];
    cs.st_w = st_p[1];
    cs.parent = getpid();
    cs.max_fd = SH_MAX_CLOSE_FD;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)SH_MAX_CLOSE_FD)
        cs.max_fd = (int)rl.rlim_cur;
    memset(&cs.dfl, 0, sizeof cs.dfl);
    cs.dfl.sa_handler = SIG_DFL;
    sigemptyset(&cs.dfl.sa_mask);
    sigemptyset(&cs.empty);

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        run_supervisor(&cs); /* never returns */
    fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&st_p[1]);
    close_fd(&devnull);
    if (pid < 0) {
        spawn_error(err, fork_errno, "the system is out of processes or memory: lower --parallelism or retry",
                    "cannot fork to run /bin/sh", "");
        goto out;
    }
    ch.pid = pid;
    setpgid(pid, pid); /* also done by the child; whichever runs first wins */

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
        else if (report[0] == STAGE_EXEC && e == E2BIG) {
            char eb[256];
            sh_err_set(err, "spawn_failed",
                       "the command or the environment is larger than the system accepts for one "
                       "program (on Linux, one argument may be at most 128 KiB): put a long script "
                       "in a file and run that file",
                       "cannot execute /bin/sh: %s (command of %zu bytes)",
                       sh_strerror(e, eb, sizeof eb), strlen(spec->cmd));
        } else if (report[0] == STAGE_EXEC)
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
