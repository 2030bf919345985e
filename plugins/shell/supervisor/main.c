/*
 * hm-step-supervisor — forks the process that stands between the shell runner
 * and each step's shell (protocol and reasons: supervisor.h).
 *
 *     hm-step-supervisor --serve      fd 3: the socket to the runner
 *
 * The server reads requests until the socket closes, then exits. Each step
 * supervisor it forks exists so that a step never outlives the process that
 * runs it, and holds none of the step's pipes once the shell runs, so the
 * step's output closes when the step's own processes close it.
 */
#define _GNU_SOURCE 1 /* vfork, prctl */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "supervisor.h"

#define SOCKET_FD 3
#define STATUS_FD 3 /* in a step supervisor, once the socket is closed */

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

static void report(int fd, int stage, int errnum)
{
    put_msg(fd, stage, errnum);
    _exit(127);
}

/* Closes every descriptor >= lo. */
static void close_from(int lo)
{
    long max = sysconf(_SC_OPEN_MAX);
    int fd;
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0u) == 0)
        return;
#endif
    if (max < 0 || max > (1 << 20))
        max = 1 << 20;
    for (fd = lo; fd < (int)max; fd++)
        close(fd);
}

/* ---- a step supervisor --------------------------------------------------- */

/* Kills the supervisor's whole group, itself included. */
static void kill_step(void)
{
    kill(0, SIGKILL);
    _exit(137);
}

/* The shell, in the supervisor's group, with an empty signal mask; fds 0-2 are
 * the step's already. `rep` is a close-on-exec pipe that reads EOF once the
 * exec succeeded. Never returns. */
static void exec_shell(const char *workspace, char **argv, char **envp, int rep)
{
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    if (chdir(workspace) != 0)
        report(rep, STAGE_CHDIR, errno);
    if (rep != STATUS_FD) { /* the status pipe is the runner's: the shell gets the report pipe there */
        if (dup2(rep, STATUS_FD) < 0)
            report(rep, STAGE_SETUP, errno);
        rep = STATUS_FD;
    }
    if (fcntl(rep, F_SETFD, FD_CLOEXEC) != 0)
        report(rep, STAGE_SETUP, errno);
    close_from(STATUS_FD + 1);
    execve(argv[0], argv, envp);
    report(rep, STAGE_EXEC, errno);
}

/* A function of its own so that vfork's "the child borrows this stack frame"
 * touches nothing of its caller's. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static pid_t start_shell(const char *workspace, char **argv, char **envp, int rep)
{
    pid_t pid;
#if defined(__linux__)
    pid = vfork();
#else
    pid = fork();
#endif
    if (pid == 0)
        exec_shell(workspace, argv, envp, rep);
    return pid;
}

/* Runs in the forked child: fds 0-3 are /dev/null, the step's stdout and
 * stderr, and the status pipe. Never returns. */
static void supervise_step(pid_t server, const char *workspace, char **argv, char **envp)
{
    int st = STATUS_FD, sig, ex[2], msg[2], status = 0, reaped = 0;
    sigset_t waitset;
    pid_t shell;
    ssize_t n;
    size_t got = 0;

#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, SUPERVISOR_PDEATH);
    /* the step's orphans (`cmd &` after the shell left) become ours to reap */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
    if (getppid() != server) /* it died before prctl took effect */
        kill_step();
    put_msg(st, MSG_SUPERVISOR, (int)getpid());

    if (pipe(ex) != 0)
        report(st, STAGE_SETUP, errno);
    if (fcntl(ex[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(ex[1], F_SETFD, FD_CLOEXEC) != 0)
        report(st, STAGE_SETUP, errno);
    shell = start_shell(workspace, argv, envp, ex[1]);
    if (shell < 0)
        report(st, STAGE_SETUP, errno);
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
        report(st, msg[0], msg[1]);
    }
    put_msg(st, MSG_STARTED, (int)shell);

    /* hold nothing of the step's (fd 0 is /dev/null already) */
    if (dup2(0, 1) < 0 || dup2(0, 2) < 0)
        kill_step();

    sigemptyset(&waitset);
    sigaddset(&waitset, SIGCHLD);
    sigaddset(&waitset, SUPERVISOR_PDEATH);
    for (;;) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        sig = sigtimedwait(&waitset, NULL, &tick);
        if (sig == SUPERVISOR_PDEATH || getppid() != server)
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

/* ---- the server ---------------------------------------------------------- */

/* Reads exactly len bytes; 0, or -1 at EOF or on an error. */
static int read_all(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* The header, and the descriptors that came with it (up to 3; the rest -1). */
static int read_header(sup_header_t *h, int fds[3])
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } control;
    struct iovec iov;
    struct msghdr m;
    struct cmsghdr *c;
    ssize_t n;

    fds[0] = fds[1] = fds[2] = -1;
    memset(&m, 0, sizeof m);
    iov.iov_base = h;
    iov.iov_len = sizeof *h;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    do {
        n = recvmsg(SOCKET_FD, &m, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int), i;
            for (i = 0; i < count && i < 3; i++)
                memcpy(&fds[i], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    }
    /* the rest of a header split across reads (the descriptors came with its first byte) */
    return (size_t)n < sizeof *h ? read_all(SOCKET_FD, (char *)h + n, sizeof *h - (size_t)n) : 0;
}

/* Splits a START payload into the workspace, argv and envp (pointers into it). */
static int parse_start(char *p, size_t len, char **workspace, char ***argv, char ***envp)
{
    int32_t argc, envc, i;
    char *end = p + len, **vec;
    if (len < 8)
        return -1;
    memcpy(&argc, p, 4);
    memcpy(&envc, p + 4, 4);
    if (argc < 1 || envc < 0 || (size_t)argc + (size_t)envc > len)
        return -1;
    p += 8;
    vec = (char **)malloc(((size_t)argc + (size_t)envc + 2) * sizeof *vec);
    if (vec == NULL)
        return -1;
    for (i = -1; i < argc + envc; i++) {
        char *nul = memchr(p, '\0', (size_t)(end - p));
        if (nul == NULL) {
            free(vec);
            return -1;
        }
        if (i < 0)
            *workspace = p;
        else
            vec[i < argc ? i : i + 1] = p;
        p = nul + 1;
    }
    vec[argc] = NULL;
    vec[argc + envc + 1] = NULL;
    *argv = vec;
    *envp = vec + argc + 1;
    return 0;
}

static void start_step(char *payload, size_t len, const int fds[3], pid_t server)
{
    char *workspace = NULL, **argv = NULL, **envp = NULL;
    int null_fd;
    pid_t pid;

    if (fds[2] < 0)
        return; /* no status pipe: nobody to tell anything */
    if (fds[0] < 0 || fds[1] < 0 || parse_start(payload, len, &workspace, &argv, &envp) != 0) {
        put_msg(fds[2], STAGE_SETUP, EINVAL);
        return;
    }
    pid = fork();
    if (pid < 0) {
        put_msg(fds[2], STAGE_SETUP, errno);
    } else if (pid == 0) {
        if (setpgid(0, 0) != 0)
            report(fds[2], STAGE_SETUP, errno);
        null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0)
            report(fds[2], STAGE_SETUP, errno);
        /* every source is >= 4 or /dev/null's fresh number, and 3 goes last:
         * close the socket first so no dup2 lands on a fd still in use */
        close(SOCKET_FD);
        if (dup2(null_fd, 0) < 0 || dup2(fds[0], 1) < 0 || dup2(fds[1], 2) < 0 || dup2(fds[2], STATUS_FD) < 0)
            report(fds[2], STAGE_SETUP, errno);
        close_from(STATUS_FD + 1);
        supervise_step(server, workspace, argv, envp);
    }
    free(argv);
}

static int serve(void)
{
    pid_t self = getpid();
    char *payload = NULL;
    size_t cap = 0;
    sup_header_t h;
    int fds[3], i;

    close_from(SOCKET_FD + 1);
    for (;;) {
        if (read_header(&h, fds) != 0)
            return 0; /* the runner's process is gone, or closed the socket */
        if (h.length > SUP_MAX_PAYLOAD)
            return 1;
        if (h.length + 1 > cap) {
            char *bigger = (char *)realloc(payload, h.length + 1);
            if (bigger == NULL)
                return 1;
            payload = bigger;
            cap = h.length + 1;
        }
        if (read_all(SOCKET_FD, payload, h.length) != 0)
            return 0;
        if (h.kind == SUP_START) {
            start_step(payload, h.length, fds, self);
        } else if (h.kind == SUP_RELEASE && h.length == 4) {
            int32_t pid;
            memcpy(&pid, payload, 4);
            if (pid > 0) {
                /* the runner killed the group already; this makes sure, and the
                 * pid is ours (unreaped) until waitpid returns */
                kill((pid_t)pid, SIGKILL);
                while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
                    ;
            }
        }
        for (i = 0; i < 3; i++)
            if (fds[i] >= 0)
                close(fds[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--serve") == 0)
        return serve();
    return 2; /* started by hand: there is no runner to serve */
}
