/*
 * supervisor.h — what the shell runner and hm-step-supervisor agree on.
 *
 * The runner posix_spawn()s hm-step-supervisor for each step as
 *
 *     hm-step-supervisor PARENT_PID WORKSPACE /bin/sh -c CMD
 *
 * in a new process group (the supervisor's pid is the group's id), with the
 * step's environment as its own, every signal at its default disposition and
 * blocked, and these descriptors:
 *
 *     0  /dev/null           the step's standard input
 *     1  the stdout pipe     the step's standard output
 *     2  the stderr pipe     the step's standard error
 *     3  the status pipe     supervisor -> runner, messages of two ints
 *
 * Messages on the status pipe are {kind, value}: {STARTED, shell pid} once the
 * shell exec'd, {stage, errno} if it could not (then the supervisor exits 127),
 * and {EXITED, wait status} when the shell ends. The supervisor then waits for
 * the runner's SIGKILL of the group; if the runner's thread dies first
 * (PR_SET_PDEATHSIG on Linux, getppid() elsewhere) it kills the group itself.
 */
#ifndef HM_SHELL_SUPERVISOR_H
#define HM_SHELL_SUPERVISOR_H

#include <signal.h>

/* The executable's file name, next to the shell runner's library. */
#define SH_SUPERVISOR_NAME "hm-step-supervisor"

enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3, MSG_STARTED = 4, MSG_EXITED = 5 };

/* Signal the supervisor gets when the thread that spawned it dies (Linux). */
#define SUPERVISOR_PDEATH SIGUSR1

#endif
