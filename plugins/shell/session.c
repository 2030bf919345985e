/*
 * session.c — interactive sessions (ABI 1.1): a shell on a PTY in a step's
 * kept workspace, with the step's environment (`hm shell`, `hm run --debug`).
 *
 * session_open runs the whole session on the host's thread: forkpty, then a
 * loop that copies the PTY's output to host->session_output and polls
 * should_cancel, until the shell exits (or session_close hangs it up). The
 * other four entries come from other host threads while it runs; they find
 * the session by its call handle in the instance's list (under its mutex).
 * Keystrokes go to the PTY as they are: the terminal's line discipline makes
 * Ctrl-C a SIGINT for the session's foreground job, not for the shell.
 *
 * Only POSIX and forkpty (libutil) are used. Between fork and exec the child
 * calls only async-signal-safe functions (hm's process has threads): argv,
 * envp and the program's path are all prepared before forkpty.
 */
#include "shell.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <util.h>
#else
#include <pty.h>
#endif

#include "hm_msgpack.h"
#include "hm_protocol.h"

#if defined(__APPLE__)
#include <crt_externs.h>
#define SS_ENVIRON (*_NSGetEnviron())
#else
extern char **environ;
#define SS_ENVIRON environ
#endif

/* How long a hung-up session's processes get before SIGKILL. */
#define SS_CLOSE_GRACE_MS 2000

struct sh_session {
    hm_call_t call;
    int master;  /* the PTY's controller side; -1 once closed */
    pid_t pid;   /* the shell (a session and process group leader) */
    int closing; /* session_close was called */
    struct sh_session *next;
};

static pthread_mutex_t ss_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the instance's list of running sessions ------------------------------ */

static void ss_add(sh_plugin_t *pl, sh_session_t *s)
{
    pthread_mutex_lock(&ss_lock);
    s->next = pl->sessions;
    pl->sessions = s;
    pthread_mutex_unlock(&ss_lock);
}

static void ss_remove(sh_plugin_t *pl, sh_session_t *s)
{
    sh_session_t **p;
    pthread_mutex_lock(&ss_lock);
    for (p = &pl->sessions; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&ss_lock);
}

/* Call with ss_lock held. */
static sh_session_t *ss_find(sh_plugin_t *pl, hm_call_t call)
{
    sh_session_t *s;
    for (s = pl->sessions; s != NULL; s = s->next)
        if (s->call == call)
            return s;
    return NULL;
}

/* ---- SessionSpec ------------------------------------------------------------ */

typedef struct ss_spec {
    char *workspace;
    char **argv;   /* NULL-terminated */
    char **envp;   /* NULL-terminated: environ without the spec's names, then the spec's */
    char *program; /* argv[0] resolved against PATH */
    unsigned rows, cols;
} ss_spec_t;

static void spec_free(ss_spec_t *sp)
{
    size_t i;
    free(sp->workspace);
    if (sp->argv)
        for (i = 0; sp->argv[i]; i++)
            free(sp->argv[i]);
    free(sp->argv);
    if (sp->envp)
        for (i = 0; sp->envp[i]; i++)
            free(sp->envp[i]);
    free(sp->envp);
    free(sp->program);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = (char *)malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int env_name_eq(const char *entry, const char *name, size_t n)
{
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* envp = environ minus every name the spec's env (or TERM) sets, then those. */
static int build_env(hm_mp_reader_t *spec, ss_spec_t *sp, sh_error_t *err)
{
    hm_mp_reader_t env;
    uint32_t n = 0, i;
    size_t total = 0, at = 0, j;
    char **own;
    int has_term = 0;
    if (hm_proto_get_map(spec, "env", &env) == 0 && hm_mp_read_map(&env, &n) != 0)
        return sh_err_set(err, "invalid_input", NULL, "SessionSpec.env is not a map of str to str");
    own = (char **)calloc((size_t)n + 2, sizeof *own);
    if (own == NULL)
        return sh_err_set(err, "out_of_memory", NULL, "out of memory reading SessionSpec.env");
    for (i = 0; i < n; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (hm_mp_read_str(&env, &k, &kl) != 0 || hm_mp_read_str(&env, &v, &vl) != 0 || kl == 0 ||
            memchr(k, '=', kl) || memchr(k, '\0', kl) || memchr(v, '\0', vl)) {
            for (j = 0; j < i; j++)
                free(own[j]);
            free(own);
            return sh_err_set(err, "invalid_input", NULL, "SessionSpec.env has an entry that is not NAME: value");
        }
        own[i] = (char *)malloc(kl + vl + 2);
        if (own[i] == NULL)
            break;
        memcpy(own[i], k, kl);
        own[i][kl] = '=';
        memcpy(own[i] + kl + 1, v, vl);
        own[i][kl + 1 + vl] = '\0';
        has_term |= kl == 4 && memcmp(k, "TERM", 4) == 0;
    }
    if (i == n && !has_term) /* a terminal program needs to know what it talks to */
        own[n++] = dup_n("TERM=xterm-256color", 19);
    for (char **e = SS_ENVIRON; e && *e; e++)
        total++;
    sp->envp = (char **)calloc(total + n + 1, sizeof *sp->envp);
    if (sp->envp == NULL || (n > 0 && own[n - 1] == NULL)) {
        for (j = 0; j < n; j++)
            free(own[j]);
        free(own);
        return sh_err_set(err, "out_of_memory", NULL, "out of memory building the session's environment");
    }
    for (char **e = SS_ENVIRON; e && *e; e++) {
        int overridden = 0;
        for (j = 0; j < n && !overridden; j++)
            overridden = env_name_eq(*e, own[j], (size_t)(strchr(own[j], '=') - own[j]));
        if (!overridden && (sp->envp[at] = strdup(*e)) != NULL)
            at++;
    }
    for (j = 0; j < n; j++)
        sp->envp[at++] = own[j]; /* handed over */
    free(own);
    return 0;
}

static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (env_name_eq(*envp, name, n))
            return *envp + n + 1;
    return NULL;
}

/* The path execve gets for argv[0]: as it is if it has a '/', else the first
 * executable PATH entry (the session's PATH). NULL: none found. */
static char *resolve(const char *prog, char **envp)
{
    const char *path = env_get(envp, "PATH");
    const char *p;
    if (strchr(prog, '/') != NULL)
        return strdup(prog);
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        size_t pl = strlen(prog);
        char *cand = (char *)malloc(dl + pl + 3);
        if (cand == NULL)
            return NULL;
        if (dl == 0)
            memcpy(cand, ".", 2), dl = 1;
        else
            memcpy(cand, p, dl);
        cand[dl] = '/';
        memcpy(cand + dl + 1, prog, pl + 1);
        if (access(cand, X_OK) == 0)
            return cand;
        free(cand);
        if (end == NULL)
            return NULL;
        p = end;
    }
}

static int decode_spec(const uint8_t *input, size_t len, ss_spec_t *sp, sh_error_t *err)
{
    hm_mp_reader_t r, argv;
    const char *s;
    size_t n;
    int64_t v;
    uint32_t argc = 0, i;
    memset(sp, 0, sizeof *sp);
    sp->rows = 24;
    sp->cols = 80;
    if (hm_proto_open_map(input, len, &r) != 0)
        return sh_err_set(err, "invalid_input", NULL, "SessionSpec: expected a msgpack map");
    if (hm_proto_get_str(&r, "workspace", &s, &n) != 0 || n == 0)
        return sh_err_set(err, "invalid_input", NULL, "SessionSpec.workspace: missing or not a str");
    if ((sp->workspace = dup_n(s, n)) == NULL)
        return sh_err_set(err, "out_of_memory", NULL, "out of memory reading SessionSpec");
    if (hm_proto_get_int(&r, "rows", &v) == 0 && v > 0 && v < 65536)
        sp->rows = (unsigned)v;
    if (hm_proto_get_int(&r, "cols", &v) == 0 && v > 0 && v < 65536)
        sp->cols = (unsigned)v;
    if (hm_mp_map_find(&r, "argv", &argv) == 0 && hm_mp_read_array(&argv, &argc) != 0)
        return sh_err_set(err, "invalid_input", NULL, "SessionSpec.argv is not an array of str");
    sp->argv = (char **)calloc((size_t)(argc ? argc : 2) + 1, sizeof *sp->argv);
    if (sp->argv == NULL)
        return sh_err_set(err, "out_of_memory", NULL, "out of memory reading SessionSpec.argv");
    for (i = 0; i < argc; i++) {
        if (hm_mp_read_str(&argv, &s, &n) != 0 || memchr(s, '\0', n))
            return sh_err_set(err, "invalid_input", NULL, "SessionSpec.argv[%u] is not a str", (unsigned)i);
        if ((sp->argv[i] = dup_n(s, n)) == NULL)
            return sh_err_set(err, "out_of_memory", NULL, "out of memory reading SessionSpec.argv");
    }
    if (argc == 0) { /* an interactive shell, as the step's commands ran in /bin/sh */
        sp->argv[0] = strdup("/bin/sh");
        sp->argv[1] = strdup("-i");
        if (sp->argv[0] == NULL || sp->argv[1] == NULL)
            return sh_err_set(err, "out_of_memory", NULL, "out of memory reading SessionSpec.argv");
    }
    if (build_env(&r, sp, err) != 0)
        return SH_FAILED;
    sp->program = resolve(sp->argv[0], sp->envp);
    if (sp->program == NULL)
        return sh_err_set(err, "command_not_found", "give the command's full path, or check the step's PATH",
                          "the session's command '%.200s' was not found on PATH", sp->argv[0]);
    return 0;
}

/* ---- running it -------------------------------------------------------------- */

/* The child between forkpty and execve: async-signal-safe calls only. */
static void child(const ss_spec_t *sp)
{
    sigset_t none;
    int sig, fd;
    /* hm ignores SIGPIPE and blocks nothing, but its threads may; a shell must
     * start with default dispositions and an empty mask */
    for (sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (fd = 3; fd < 1024; fd++) /* hm's pipes and sockets are not the session's */
        close(fd);
    if (chdir(sp->workspace) != 0)
        _exit(126);
    execve(sp->program, sp->argv, sp->envp);
    _exit(127);
}

static int32_t exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

static hm_status_t session_fail(hm_buf_t *out, sh_error_t *err)
{
    return sh_write_error(out, err);
}

hm_status_t sh_session_open(void *instance, hm_call_t call, const uint8_t *input, size_t input_len, hm_buf_t *out)
{
    sh_plugin_t *pl = (sh_plugin_t *)instance;
    sh_ctx_t ctx = {pl->host, call};
    sh_session_t s;
    ss_spec_t sp;
    sh_error_t err;
    struct winsize ws;
    struct stat st;
    uint8_t buf[SH_CHUNK];
    int status = 0, exited = 0, code;
    long waited_ms = 0, hung_up_ms = -1;
    hm_status_t rc;

    memset(&err, 0, sizeof err);
    if (!HM_HOST_HAS(pl->host, session_output)) {
        sh_err_set(&err, "sessions_unavailable", "use an hm whose plugin ABI is 1.1 or later",
                   "this host has no session_output (ABI 1.1): it cannot show a session");
        err.retryable = 0;
        sh_write_error(out, &err);
        return HM_ERR_UNAVAILABLE;
    }
    if (decode_spec(input, input_len, &sp, &err) != 0) {
        spec_free(&sp);
        return session_fail(out, &err);
    }
    if (stat(sp.workspace, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char e[128];
        sh_err_set(&err, "workspace_missing", "run the pipeline again to get a fresh workspace",
                   "the step's workspace %.900s is gone (%s)", sp.workspace,
                   sh_strerror(errno ? errno : ENOTDIR, e, sizeof e));
        spec_free(&sp);
        return session_fail(out, &err);
    }
    memset(&ws, 0, sizeof ws);
    ws.ws_row = (unsigned short)sp.rows;
    ws.ws_col = (unsigned short)sp.cols;
    memset(&s, 0, sizeof s);
    s.call = call;
    s.pid = forkpty(&s.master, NULL, NULL, &ws);
    if (s.pid < 0) {
        char e[128];
        sh_err_set(&err, "spawn_failed", NULL, "forkpty failed: %s", sh_strerror(errno, e, sizeof e));
        err.retryable = 1;
        spec_free(&sp);
        return session_fail(out, &err);
    }
    if (s.pid == 0)
        child(&sp); /* never returns */
    spec_free(&sp);
    fcntl(s.master, F_SETFD, FD_CLOEXEC); /* not into other steps' children */
    ss_add(pl, &s);
    sh_log(&ctx, HM_LOG_DEBUG, "session %d started", (int)s.pid);

    for (;;) {
        struct pollfd p = {s.master, POLLIN, 0};
        int n = poll(&p, 1, 50);
        if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t got = read(s.master, buf, sizeof buf);
            if (got > 0) {
                hm_host_session_output(pl->host, call, buf, (size_t)got);
                continue; /* read until it is empty before anything else */
            }
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            break; /* EIO: every slave side is closed, the session is over */
        }
        if (!exited && waitpid(s.pid, &status, WNOHANG) == s.pid)
            exited = 1;
        if (exited) {
            /* background jobs may keep the terminal open: give them a moment */
            if ((waited_ms += 50) >= 500)
                break;
            continue;
        }
        if (hung_up_ms < 0 && (s.closing || sh_should_cancel(&ctx))) {
            kill(-s.pid, SIGHUP);
            hung_up_ms = 0;
        } else if (hung_up_ms >= 0 && (hung_up_ms += 50) >= SS_CLOSE_GRACE_MS) {
            kill(-s.pid, SIGKILL);
            hung_up_ms = -2 * SS_CLOSE_GRACE_MS; /* once */
        }
    }
    ss_remove(pl, &s);
    pthread_mutex_lock(&ss_lock);
    close(s.master);
    s.master = -1;
    pthread_mutex_unlock(&ss_lock);
    if (!exited) {
        kill(-s.pid, SIGHUP);
        while (waitpid(s.pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    code = exit_code_of(status);
    rc = hm_proto_exit_info(out, code, NULL);
    sh_log(&ctx, HM_LOG_DEBUG, "session %d ended with %d", (int)s.pid, code);
    return rc;
}

hm_status_t sh_session_write(void *instance, hm_call_t session, const uint8_t *data, size_t len)
{
    int rc;
    sh_plugin_t *pl = (sh_plugin_t *)instance;
    sh_session_t *s;
    int fd = -1;
    pthread_mutex_lock(&ss_lock);
    s = ss_find(pl, session);
    if (s != NULL && s->master >= 0)
        fd = dup(s->master); /* written outside the lock: a full PTY may block */
    pthread_mutex_unlock(&ss_lock);
    if (fd < 0)
        return s == NULL ? HM_ERR_STALE_CALL : HM_ERR_IO;
    rc = sh_write_all(fd, data, len);
    close(fd);
    return rc == 0 ? HM_OK : HM_ERR_IO;
}

hm_status_t sh_session_resize(void *instance, hm_call_t session, uint16_t rows, uint16_t cols)
{
    sh_plugin_t *pl = (sh_plugin_t *)instance;
    sh_session_t *s;
    struct winsize ws;
    hm_status_t rc = HM_OK;
    if (rows == 0 || cols == 0)
        return HM_ERR_INVALID_ARGUMENT;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = rows;
    ws.ws_col = cols;
    pthread_mutex_lock(&ss_lock);
    s = ss_find(pl, session);
    if (s == NULL)
        rc = HM_ERR_STALE_CALL;
    else if (ioctl(s->master, TIOCSWINSZ, &ws) != 0) /* the kernel sends SIGWINCH to the foreground job */
        rc = HM_ERR_IO;
    pthread_mutex_unlock(&ss_lock);
    return rc;
}

hm_status_t sh_session_signal(void *instance, hm_call_t session, int32_t signal_)
{
    sh_plugin_t *pl = (sh_plugin_t *)instance;
    sh_session_t *s;
    hm_status_t rc = HM_OK;
    int sig;
    switch (signal_) {
    case HM_SIGNAL_INTERRUPT: sig = SIGINT; break;
    case HM_SIGNAL_TERMINATE: sig = SIGTERM; break;
    case HM_SIGNAL_KILL: sig = SIGKILL; break;
    case HM_SIGNAL_HANGUP: sig = SIGHUP; break;
    default: return HM_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&ss_lock);
    s = ss_find(pl, session);
    if (s == NULL) {
        rc = HM_ERR_STALE_CALL;
    } else {
        /* the terminal's foreground job (what Ctrl-C would reach), else the shell's group */
        pid_t fg = s->master >= 0 ? tcgetpgrp(s->master) : -1;
        kill(fg > 0 ? -fg : -s->pid, sig);
    }
    pthread_mutex_unlock(&ss_lock);
    return rc;
}

hm_status_t sh_session_close(void *instance, hm_call_t session)
{
    sh_plugin_t *pl = (sh_plugin_t *)instance;
    sh_session_t *s;
    hm_status_t rc = HM_OK;
    pthread_mutex_lock(&ss_lock);
    s = ss_find(pl, session);
    if (s == NULL)
        rc = HM_ERR_STALE_CALL;
    else
        s->closing = 1; /* session_open's loop hangs it up within 50 ms */
    pthread_mutex_unlock(&ss_lock);
    return rc;
}
