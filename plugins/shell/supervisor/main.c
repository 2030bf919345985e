/*
 * hm-step-supervisor — the process that stands between the shell runner and a
 * step's shell (protocol: supervisor.h).
 *
 * It exists so that a step never outlives the process that runs it: when the
 * thread that spawned it dies (hm or its worker crashed or was killed), it
 * kills the step's process group. It is a program of its own, exec'd with
 * posix_spawn, rather than a fork() of the host: forking hm's 40 MB,
 * multi-threaded process cost 1.6 ms per step against a fraction of that for
 * posix_spawn of this small program (bench: python -m bench.steps).
 *
 * Being exec'd, it may call anything; it still holds none of the step's pipes
 * once the shell runs, so the step's output closes when the step's own
 * processes close it.
 */
#define _GNU_SOURCE 1 /* vfork, prctl */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "supervisor.h"

#define STATUS_FD 3

extern char **environ;

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

/* Closes every descriptor >= lo: whatever the host left open without
 * close-on-exec is not the step's to keep. */
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

/* Kills the supervisor's whole group, itself included. */
static void kill_step(void)
{
    kill(0, SIGKILL);
    _exit(137);
}

/* The shell, in the supervisor's group, with an empty signal mask; fds 0-2 are
 * the step's already. `rep` is a close-on-exec pipe that reads EOF once the
 * exec succeeded. Never returns. */
static void exec_shell(const char *workspace, char **argv, int rep)
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
    execve(argv[0], argv, environ);
    report(rep, STAGE_EXEC, errno);
}

/* A function of its own so that vfork's "the child borrows this stack frame"
 * touches nothing of main's. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static pid_t start_shell(const char *workspace, char **argv, int rep)
{
    pid_t pid;
#if defined(__linux__)
    pid = vfork();
#else
    pid = fork();
#endif
    if (pid == 0)
        exec_shell(workspace, argv, rep);
    return pid;
}

int main(int argc, char **argv)
{
    int st = STATUS_FD, sig, ex[2], msg[2], status = 0, reaped = 0;
    sigset_t waitset;
    pid_t parent, shell;
    ssize_t n;
    size_t got = 0;

    if (argc < 4) /* started by hand: there is no runner to report to */
        return 2;
    parent = (pid_t)strtol(argv[1], NULL, 10);
    close_from(STATUS_FD + 1);
#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, SUPERVISOR_PDEATH);
    /* the step's orphans (`cmd &` after the shell left) become ours to reap */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
    if (getppid() != parent) /* it died before prctl took effect */
        kill_step();

    if (pipe(ex) != 0)
        report(st, STAGE_SETUP, errno);
    if (fcntl(ex[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(ex[1], F_SETFD, FD_CLOEXEC) != 0)
        report(st, STAGE_SETUP, errno);
    shell = start_shell(argv[2], argv + 3, ex[1]);
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
        if (sig == SUPERVISOR_PDEATH || getppid() != parent)
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
