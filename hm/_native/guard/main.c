/*
 * hm-guard — starts a plugin program so that it cannot outlive hm.
 *
 *     hm-guard FD PROGRAM [ARG...]
 *
 * hm starts a stdio plugin (any executable) through this: FD is the read end of
 * a "lifeline" pipe whose write end only hm holds. hm-guard forks a small
 * watcher and then execs PROGRAM in its own place, so the process hm started
 * *is* the plugin (its pid, its stdio pipes, its exit status). The watcher
 * blocks on the lifeline; when it reads EOF — hm exited, crashed or was killed
 * with SIGKILL — it kills the plugin's whole process group (hm starts the
 * plugin in a session of its own). A plugin that ignores the end of its stdin
 * therefore still ends with hm. When the plugin exits first, the watcher gets
 * a parent-death signal (Linux; elsewhere it polls getppid()) and exits.
 *
 * hm closes the lifeline only after it stopped the plugin in its own steps, so
 * the watcher never cuts a graceful shutdown short.
 */
#define _GNU_SOURCE 1 /* prctl */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

static void watch(int lifeline, pid_t plugin)
{
    struct pollfd p;
    char byte;
    int devnull = open("/dev/null", O_RDWR);
    /* hold none of the plugin's pipes: they must close when the plugin closes them */
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (devnull > 2)
            close(devnull);
    }
#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != plugin) /* it is gone already */
        _exit(0);
    p.fd = lifeline;
    p.events = POLLIN;
    for (;;) {
        int r = poll(&p, 1, 500);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && read(lifeline, &byte, 1) <= 0)
            break; /* EOF: hm is gone */
        if (getppid() != plugin)
            _exit(0); /* the plugin exited (no parent-death signal outside Linux) */
    }
    kill(-plugin, SIGKILL);
    kill(plugin, SIGKILL); /* in case it left the group */
    _exit(0);
}

int main(int argc, char **argv)
{
    pid_t self = getpid(), watcher;
    char *end = NULL;
    long fd;

    if (argc < 3)
        return 2;
    fd = strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || fd < 0 || fcntl((int)fd, F_GETFD) < 0) {
        fprintf(stderr, "hm-guard: %s is not an open descriptor\n", argv[1]);
        return 2;
    }
    watcher = fork();
    if (watcher < 0) {
        fprintf(stderr, "hm-guard: cannot fork the watcher: %s\n", strerror(errno));
        return 126;
    }
    if (watcher == 0)
        watch((int)fd, self);
    close((int)fd);
    execvp(argv[2], argv + 2);
    fprintf(stderr, "hm-guard: cannot execute %s: %s\n", argv[2], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
