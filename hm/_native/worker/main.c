/*
 * main.c — hm-worker: start-up, handshake, loading the plugin, dispatching
 * hm's messages and running calls (docs/worker-protocol.md). Which thread reads
 * and which runs a call is pool.c's business.
 */
#include "worker.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hm_msgpack.h"

#if defined(__linux__)
#include <sys/prctl.h>
#endif

static const hm_plugin_vtable_t *vt = NULL;
static void *instance = NULL;
static int loaded = 0; /* LOAD answered with a vtable */

static wk_in_t in = {-1, NULL, 0, 0, 0};

/* SIGKILLs every child of this process (and the process group each leads), so
 * nothing the plugin started outlives its worker: the worker is a child
 * subreaper, so what the plugin left behind (a daemon forked while loading, a
 * step's orphans) is a child by now. Linux: from /proc; elsewhere nothing. */
static void kill_children(void)
{
#if defined(__linux__)
    int round;
    pid_t me = getpid(), my_group = getpgrp();
    for (round = 0; round < 3; round++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int found = 0;
        if (d == NULL)
            return;
        while ((e = readdir(d)) != NULL) {
            char path[300], stat[512], *close_paren;
            long ppid = 0, pgrp = 0;
            int fd;
            ssize_t n;
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            n = read(fd, stat, sizeof stat - 1);
            close(fd);
            if (n <= 0)
                continue;
            stat[n] = '\0';
            close_paren = strrchr(stat, ')'); /* the command name may hold anything */
            if (close_paren == NULL || sscanf(close_paren + 2, "%*c %ld %ld", &ppid, &pgrp) != 2)
                continue;
            if ((pid_t)ppid != me)
                continue;
            if ((pid_t)pgrp != my_group && pgrp > 1)
                kill(-(pid_t)pgrp, SIGKILL);
            kill((pid_t)atol(e->d_name), SIGKILL);
            found = 1;
        }
        closedir(d);
        if (!found)
            return;
        usleep(20000); /* let grandchildren be reparented to us, then look again */
    }
#endif
}

/* Every way out of the worker but a crash: nothing it started stays. */
__attribute__((noreturn)) static void leave(int status)
{
    kill_children();
    _exit(status);
}

void wk_leave(int status)
{
    leave(status);
}

__attribute__((noreturn)) static void die(const char *why)
{
    /* stderr is the host's log of this worker */
    dprintf(2, "hm-worker: %s\n", why);
    leave(70);
}

/* ---- messages out ------------------------------------------------------------ */

static void send_writer(hm_mp_writer_t *w, int urgent)
{
    uint8_t *body;
    size_t len;
    if (hm_mp_writer_finish(w, &body, &len) != 0)
        die("out of memory encoding a message");
    if (urgent)
        wk_send(body, len);
    else
        wk_send_later(body, len);
    free(body);
}

static void send_hello(void)
{
    hm_mp_writer_t w;
    hm_mp_writer_init(&w);
    hm_mp_write_array(&w, 5);
    hm_mp_write_uint(&w, WK_HELLO);
    hm_mp_write_cstr(&w, "hm-worker");
    hm_mp_write_uint(&w, WK_PROTO_MAJOR);
    hm_mp_write_uint(&w, WK_PROTO_MINOR);
    hm_mp_write_uint(&w, (uint64_t)getpid());
    send_writer(&w, 1);
}

static void send_loaded(int code, const char *detail, const hm_plugin_vtable_t *v)
{
    hm_mp_writer_t w;
    uint32_t size = 0, major = 0, minor = 0;
    int missing = 0, offers = 0;
    if (v != NULL) {
        size = v->header.struct_size;
        major = v->header.abi_major;
        minor = v->header.abi_minor;
        /* the 1.0 layout ends with destroy; read no entry the table may not have */
        if (size >= offsetof(hm_plugin_vtable_t, destroy) + sizeof v->destroy) {
            missing = (v->manifest ? 0 : 1) | (v->free ? 0 : 2) | (v->destroy ? 0 : 4);
            offers = (v->execute_step ? 1 : 0) | (v->on_hook_event ? 2 : 0) | (v->run_subcommand ? 4 : 0);
            /* 8: every session entry (since 1.1), as the bridge reports it; a worker
             * runs no sessions, but discovery's verdict must not depend on that */
            if (HM_TABLE_HAS(v, hm_plugin_vtable_t, session_close) && v->session_open && v->session_write &&
                v->session_resize && v->session_signal && v->session_close)
                offers |= 8;
        }
    }
    hm_mp_writer_init(&w);
    hm_mp_write_array(&w, 8);
    hm_mp_write_uint(&w, WK_LOADED);
    hm_mp_write_int(&w, code);
    hm_mp_write_cstr(&w, detail ? detail : "");
    hm_mp_write_uint(&w, size);
    hm_mp_write_uint(&w, major);
    hm_mp_write_uint(&w, minor);
    hm_mp_write_int(&w, missing);
    hm_mp_write_int(&w, offers);
    send_writer(&w, 1);
}

static void send_result(uint64_t handle, hm_status_t status, const uint8_t *p, size_t len)
{
    hm_mp_writer_t w;
    int oversize = len > WK_MAX_FRAME - 64; /* room for the array around it */
    hm_mp_writer_init(&w);
    hm_mp_write_array(&w, oversize ? 5 : 4);
    hm_mp_write_uint(&w, WK_RESULT);
    hm_mp_write_uint(&w, handle);
    hm_mp_write_int(&w, status);
    if (oversize) {
        /* too large for a frame: say how large, so hm can name the fault */
        hm_mp_write_bin(&w, NULL, 0);
        hm_mp_write_uint(&w, len);
    } else {
        hm_mp_write_bin(&w, p, len);
    }
    send_writer(&w, 1);
}

/* ---- loading -------------------------------------------------------------- */

/* Strips anything that is not printable ASCII from a loader message: the host
 * shows it on a terminal. */
static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

static void load(hm_mp_reader_t *r)
{
    const char *path;
    size_t path_len;
    uint64_t host_size = 0, host_minor = 0;
    char *cpath;
    void *lib, *entry;
    hm_load_plugin_fn fn;
    const hm_host_api_t *host;

    if (hm_mp_read_str(r, &path, &path_len) != 0 || hm_mp_read_uint(r, &host_size) != 0)
        die("malformed LOAD");
    if (hm_mp_peek(r) == HM_MP_UINT)
        hm_mp_read_uint(r, &host_minor);
    cpath = (char *)malloc(path_len + 1);
    if (cpath == NULL)
        die("out of memory");
    memcpy(cpath, path, path_len);
    cpath[path_len] = '\0';

    /* RTLD_LOCAL keeps the plugin's symbols private; RTLD_NOW reports missing
     * symbols here rather than as a crash in the middle of a step */
    lib = dlopen(cpath, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *msg = dlerror();
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", msg ? msg : "dlopen failed");
        clean(buf);
        send_loaded(1, buf, NULL);
        free(cpath);
        return;
    }
    dlerror();
    entry = dlsym(lib, HM_ENTRY_SYMBOL);
    if (entry == NULL) {
        send_loaded(2, "", NULL);
        free(cpath);
        return;
    }
    host = wk_host_table((uint32_t)host_size, (uint32_t)host_minor);
    if (host == NULL)
        die("out of memory");
    memcpy(&fn, &entry, sizeof fn);
    vt = fn(host, &instance);
    if (vt == NULL) {
        send_loaded(3, "", NULL);
        free(cpath);
        return;
    }
    loaded = 1;
    send_loaded(0, "", vt);
    free(cpath);
}

/* ---- calls ------------------------------------------------------------------- */

typedef hm_status_t (*cap_fn)(void *, hm_call_t, const uint8_t *, size_t, hm_buf_t *);

static void run_call(uint64_t handle, int op, const uint8_t *payload, size_t len)
{
    hm_buf_t out = {NULL, 0};
    hm_status_t status;
    cap_fn fn = NULL;

    if (!loaded) {
        send_result(handle, HM_ERR_UNAVAILABLE, NULL, 0);
        return;
    }
    if (wk_calls_open(handle, op) != 0) {
        send_result(handle, HM_ERR_NO_MEMORY, NULL, 0);
        return;
    }
    switch (op) {
    case WK_OP_MANIFEST:
        status = vt->manifest(instance, handle, &out);
        break;
    case WK_OP_EXECUTE_STEP: fn = vt->execute_step; goto cap;
    case WK_OP_ON_HOOK_EVENT: fn = vt->on_hook_event; goto cap;
    case WK_OP_RUN_SUBCOMMAND: fn = vt->run_subcommand; goto cap;
    default:
        status = HM_ERR_INVALID_ARGUMENT;
        break;
    cap:
        status = fn ? fn(instance, handle, payload, len, &out) : HM_ERR_UNSUPPORTED;
        break;
    }
    /* stale from here on: a plugin thread that keeps the handle gets STALE_CALL */
    wk_calls_close(handle);
    send_result(handle, status, out.ptr, out.ptr ? out.len : 0);
    if (out.ptr != NULL)
        vt->free(instance, out.ptr, out.len);
}

/* ---- reading and running calls -------------------------------------------------- */

/* Handles one frame as leader. Returns 1 when it was a CALL that this thread
 * must now run (leadership already given away), with its payload copied. */
static int dispatch(const uint8_t *body, size_t len, uint64_t *handle, int *op, uint8_t **payload,
                    size_t *payload_len)
{
    hm_mp_reader_t r;
    uint32_t n;
    uint64_t type;
    hm_mp_reader_init(&r, body, len);
    if (hm_mp_read_array(&r, &n) != 0 || n < 1 || hm_mp_read_uint(&r, &type) != 0)
        die("a frame from hm is not a msgpack array starting with a message type");
    switch (type) {
    case WK_LOAD:
        if (vt != NULL)
            die("LOAD sent twice");
        load(&r);
        return 0;
    case WK_CALL: {
        uint64_t h, o;
        const uint8_t *p;
        size_t pl;
        if (hm_mp_read_uint(&r, &h) != 0 || hm_mp_read_uint(&r, &o) != 0 || hm_mp_read_bin(&r, &p, &pl) != 0)
            die("malformed CALL");
        *payload = (uint8_t *)malloc(pl ? pl : 1);
        if (*payload == NULL) {
            send_result(h, HM_ERR_NO_MEMORY, NULL, 0);
            return 0;
        }
        memcpy(*payload, p, pl);
        *payload_len = pl;
        *handle = h;
        *op = (int)o;
        return 1;
    }
    case WK_CANCEL: {
        uint64_t h;
        if (hm_mp_read_uint(&r, &h) != 0)
            die("malformed CANCEL");
        wk_calls_cancel(h);
        return 0;
    }
    case WK_REPLY: {
        uint64_t id, number = 0;
        int64_t status;
        const uint8_t *p = NULL;
        size_t pl = 0;
        if (hm_mp_read_uint(&r, &id) != 0 || hm_mp_read_int(&r, &status) != 0)
            die("malformed REPLY");
        switch (hm_mp_peek(&r)) {
        case HM_MP_BIN: hm_mp_read_bin(&r, &p, &pl); break;
        case HM_MP_UINT: hm_mp_read_uint(&r, &number); break;
        default: hm_mp_skip(&r); break;
        }
        wk_deliver_reply(id, (int32_t)status, p, pl, number);
        return 0;
    }
    case WK_SHUTDOWN:
        wk_flush();
        if (vt != NULL && wk_calls_running() == 0)
            vt->destroy(instance);
        leave(0);
    default:
        die("unknown message type from hm");
    }
    return 0;
}

/* Reads and dispatches frames until one is a CALL for this thread to run. */
static void lead(uint64_t *handle, int *op, uint8_t **payload, size_t *payload_len)
{
    for (;;) {
        const uint8_t *body;
        size_t len;
        int rc = wk_read_frame(&in, &body, &len);
        if (rc == -1)
            leave(0); /* hm is gone: never outlive it */
        if (rc == -2)
            die("a frame from hm is empty or over 64 MiB");
        if (rc == -3)
            die("out of memory reading a frame");
        if (dispatch(body, len, handle, op, payload, payload_len))
            return;
    }
}

static void next_call(wk_call_t *call)
{
    lead(&call->handle, &call->op, &call->payload, &call->payload_len);
}

static void run_and_free(wk_call_t *call)
{
    run_call(call->handle, call->op, call->payload, call->payload_len);
    free(call->payload);
}

/* ---- start-up ------------------------------------------------------------------ */

#if defined(__GLIBC__)
static void on_exit_handler(int status, void *arg)
{
    (void)arg;
    /* the worker itself only ever leaves through _exit: this is plugin code */
    dprintf(2, "hm-worker: the plugin called exit(%d)\n", status);
}
#else
static void on_exit_handler(void)
{
    dprintf(2, "hm-worker: the plugin called exit()\n");
}
#endif

int main(int argc, char **argv)
{
    int in_fd, out_fd, devnull;

    if (argc > 1 && strcmp(argv[1], "--reaper") == 0)
        return wk_reaper_main(argc, argv);
    if (argc > 1) {
        fprintf(stderr, "usage: hm-worker   (started by hm; speaks docs/worker-protocol.md on stdin/stdout)\n"
                        "       hm-worker --reaper\n");
        return 2;
    }

    /* a closed channel is an error code from write(), not a signal */
    signal(SIGPIPE, SIG_IGN);
#if defined(__linux__)
    /* orphans of the plugin's processes become ours, so leave() can end them */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif

    /* the protocol moves to private descriptors; fd 1 becomes stderr, so a
     * plugin's printf can never garble a frame */
    in_fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
    out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (in_fd < 0 || out_fd < 0)
        die("cannot set up the protocol descriptors");
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(2, 1) < 0)
        die("cannot redirect stdin/stdout");
    close(devnull);
    if (wk_in_start(&in, in_fd) != 0)
        die("cannot set up the protocol input");

#if defined(__GLIBC__)
    on_exit(on_exit_handler, NULL);
#else
    atexit(on_exit_handler);
#endif

    if (wk_out_start(out_fd) != 0)
        die("cannot start the output thread");
    send_hello();
    wk_pool_run(next_call, run_and_free);
}
