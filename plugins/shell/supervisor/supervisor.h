/*
 * supervisor.h — what the shell runner and hm-step-supervisor agree on.
 *
 * The runner starts one `hm-step-supervisor --serve` per process, lazily, with
 * posix_spawn: every signal at its default disposition and blocked, and fd 3 a
 * stream socket to the runner. The server is small and single-threaded, so a
 * fork() of it is cheap and its child may call anything (a fork of hm's own
 * large, multi-threaded process cost ~1.6 ms per step and allowed only
 * async-signal-safe calls; an exec'd supervisor per step cost an exec).
 *
 * Requests on the socket (runner -> server), several runner threads taking
 * turns under one lock: a header {uint32 kind, uint32 length}, then `length`
 * bytes of payload.
 *
 *   SUP_START    three descriptors ride on the header (SCM_RIGHTS): the step's
 *                stdout pipe, its stderr pipe, and the status pipe. Payload:
 *                int32 argc, int32 envc, then NUL-terminated strings: the
 *                workspace, argc argv entries, envc "NAME=value" entries.
 *                The server forks a *step supervisor*, which leads a new
 *                process group (its pid is the group's id), starts the shell in
 *                it and stays until the runner kills the group.
 *   SUP_RELEASE  payload: int32 pid. The runner sent its last signal to that
 *                group: the server may reap the supervisor now. Until then it
 *                stays unreaped, so its pid (the pgid) cannot be reused and a
 *                killpg() can never hit an unrelated group.
 *
 * Messages on the status pipe (step supervisor -> runner) are {kind, value}
 * ints: {SUPERVISOR, its pid} first, then {STARTED, shell pid} once the shell
 * exec'd or {stage, errno} if it could not (then it exits 127; a server that
 * cannot fork says {SETUP, errno} instead of SUPERVISOR), and {EXITED, wait
 * status} when the shell ends.
 *
 * Nothing outlives the runner: when the runner's process dies the socket reads
 * EOF and the server exits; each step supervisor gets a parent-death signal
 * (Linux; elsewhere it polls getppid()) and kills its group.
 */
#ifndef HM_SHELL_SUPERVISOR_H
#define HM_SHELL_SUPERVISOR_H

#include <signal.h>
#include <stdint.h>

/* The executable's file name, next to the shell runner's library. */
#define SH_SUPERVISOR_NAME "hm-step-supervisor"

enum { SUP_START = 1, SUP_RELEASE = 2 };

/* The largest payload the server accepts (argv and environment of one step). */
#define SUP_MAX_PAYLOAD (64u * 1024u * 1024u)

enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3, MSG_STARTED = 4, MSG_EXITED = 5, MSG_SUPERVISOR = 6 };

/* Signal a step supervisor gets when the server dies (Linux). */
#define SUPERVISOR_PDEATH SIGUSR1

typedef struct sup_header {
    uint32_t kind;
    uint32_t length;
} sup_header_t;

#endif
