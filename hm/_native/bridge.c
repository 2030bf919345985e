/* The host side of the native boundary for plugins loaded into hm's own
 * process: one host-API table per loaded plugin (a *slot*) whose entries call
 * cffi `extern "Python"` callbacks, trampolines that call through a plugin's
 * vtable so Python never calls a function pointer itself, and the last words
 * hm says when an in-process plugin takes the process down.
 *
 * Slots: every plugin gets its own table, and every function of table N passes
 * N to Python. A call handle is bound to the slot of the plugin it was issued
 * to, so a plugin that got hold of another plugin's handle is refused
 * (HM_ERR_DENIED) instead of being served as that plugin.
 *
 * Calls made through cffi release the GIL, so plugin work on several steps
 * runs in parallel. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hm_plugin.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#include <pthread.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>
#endif
#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#define HM_BRIDGE_OP_EXECUTE_STEP 1
#define HM_BRIDGE_OP_ON_HOOK_EVENT 2
#define HM_BRIDGE_OP_RUN_SUBCOMMAND 3
#define HM_BRIDGE_OP_SESSION_OPEN 4
#define HM_BRIDGE_SESSION_WRITE 1
#define HM_BRIDGE_SESSION_RESIZE 2
#define HM_BRIDGE_SESSION_SIGNAL 3
#define HM_BRIDGE_SESSION_CLOSE 4
#define HM_BRIDGE_SLOTS 64

/* cffi defines these; they must be declared before the tables refer to them. */
static hm_status_t hm_py_log(int32_t, hm_call_t, int32_t, const uint8_t *, size_t);
static hm_status_t hm_py_kv_get(int32_t, hm_call_t, int32_t, const uint8_t *, size_t, hm_buf_t *);
static hm_status_t hm_py_kv_set(int32_t, hm_call_t, int32_t, const uint8_t *, size_t, const uint8_t *, size_t);
static hm_status_t hm_py_emit_event(int32_t, hm_call_t, const uint8_t *, size_t);
static hm_status_t hm_py_emit_step_log(int32_t, hm_call_t, int32_t, const uint8_t *, size_t);
static hm_status_t hm_py_should_cancel(int32_t, hm_call_t);
static hm_status_t hm_py_write_stdout(int32_t, hm_call_t, const uint8_t *, size_t);
static hm_status_t hm_py_write_stderr(int32_t, hm_call_t, const uint8_t *, size_t);
static hm_status_t hm_py_archive_read(int32_t, hm_call_t, uint64_t, uint8_t *, size_t, size_t *);
static hm_status_t hm_py_archive_total_size(int32_t, hm_call_t, uint64_t *);
static hm_status_t hm_py_fs_read_config(int32_t, hm_call_t, const uint8_t *, size_t, hm_buf_t *);
static hm_status_t hm_py_kv_compare_and_swap(int32_t, hm_call_t, int32_t, const uint8_t *, size_t, int32_t,
                                             const uint8_t *, size_t, const uint8_t *, size_t);
static hm_status_t hm_py_session_output(int32_t, hm_call_t, const uint8_t *, size_t);

#include "step_log_batch.h"

static void hm_host_free(uint8_t *ptr, size_t len) {
    (void)len;
    free(ptr);
}

/* One table per slot: SLOT(n) defines slot n's forwarders and its table. */
#define SLOT(n)                                                                                          \
    static hm_status_t s##n##_log(hm_call_t c, int32_t l, const uint8_t *m, size_t ml) {                 \
        lb_flush(n, c);                                                                                  \
        return hm_py_log(n, c, l, m, ml);                                                                \
    }                                                                                                    \
    static hm_status_t s##n##_kv_get(hm_call_t c, int32_t s, const uint8_t *k, size_t kl, hm_buf_t *o) { \
        return hm_py_kv_get(n, c, s, k, kl, o);                                                          \
    }                                                                                                    \
    static hm_status_t s##n##_kv_set(hm_call_t c, int32_t s, const uint8_t *k, size_t kl,                \
                                     const uint8_t *v, size_t vl) {                                      \
        return hm_py_kv_set(n, c, s, k, kl, v, vl);                                                      \
    }                                                                                                    \
    static hm_status_t s##n##_emit_event(hm_call_t c, const uint8_t *m, size_t ml) {                     \
        lb_flush(n, c);                                                                                  \
        return hm_py_emit_event(n, c, m, ml);                                                            \
    }                                                                                                    \
    static hm_status_t s##n##_step_log(hm_call_t c, int32_t s, const uint8_t *d, size_t dl) {            \
        return lb_emit(n, c, s, d, dl);                                                                  \
    }                                                                                                    \
    static hm_status_t s##n##_should_cancel(hm_call_t c) { return hm_py_should_cancel(n, c); }           \
    static hm_status_t s##n##_stdout(hm_call_t c, const uint8_t *d, size_t dl) {                         \
        lb_flush(n, c);                                                                                  \
        return hm_py_write_stdout(n, c, d, dl);                                                          \
    }                                                                                                    \
    static hm_status_t s##n##_stderr(hm_call_t c, const uint8_t *d, size_t dl) {                         \
        lb_flush(n, c);                                                                                  \
        return hm_py_write_stderr(n, c, d, dl);                                                          \
    }                                                                                                    \
    static hm_status_t s##n##_archive_read(hm_call_t c, uint64_t o, uint8_t *b, size_t cap, size_t *r) { \
        return hm_py_archive_read(n, c, o, b, cap, r);                                                   \
    }                                                                                                    \
    static hm_status_t s##n##_archive_size(hm_call_t c, uint64_t *o) {                                   \
        return hm_py_archive_total_size(n, c, o);                                                        \
    }                                                                                                    \
    static hm_status_t s##n##_read_config(hm_call_t c, const uint8_t *p, size_t pl, hm_buf_t *o) {       \
        return hm_py_fs_read_config(n, c, p, pl, o);                                                     \
    }                                                                                                    \
    /* cffi cannot tell a NULL `expected` from an empty one in Python: say it. */                        \
    static hm_status_t s##n##_kv_cas(hm_call_t c, int32_t s, const uint8_t *k, size_t kl,                \
                                     const uint8_t *e, size_t el, const uint8_t *v, size_t vl) {         \
        return hm_py_kv_compare_and_swap(n, c, s, k, kl, e != NULL, e, el, v, vl);                       \
    }                                                                                                    \
    static hm_status_t s##n##_session_output(hm_call_t c, const uint8_t *d, size_t dl) {                 \
        return hm_py_session_output(n, c, d, dl);                                                        \
    }                                                                                                    \
    static const hm_host_api_t s##n##_table = {                                                          \
        {(uint32_t)sizeof(hm_host_api_t), HM_ABI_MAJOR, HM_ABI_MINOR},                                   \
        NULL,                                                                                            \
        s##n##_log,                                                                                      \
        s##n##_kv_get,                                                                                   \
        s##n##_kv_set,                                                                                   \
        s##n##_emit_event,                                                                               \
        s##n##_step_log,                                                                                 \
        s##n##_should_cancel,                                                                            \
        s##n##_stdout,                                                                                   \
        s##n##_stderr,                                                                                   \
        s##n##_archive_read,                                                                             \
        s##n##_archive_size,                                                                             \
        s##n##_read_config,                                                                              \
        hm_host_free,                                                                                    \
        s##n##_kv_cas,                                                                                   \
        s##n##_session_output,                                                                           \
    };

SLOT(0) SLOT(1) SLOT(2) SLOT(3) SLOT(4) SLOT(5) SLOT(6) SLOT(7)
SLOT(8) SLOT(9) SLOT(10) SLOT(11) SLOT(12) SLOT(13) SLOT(14) SLOT(15)
SLOT(16) SLOT(17) SLOT(18) SLOT(19) SLOT(20) SLOT(21) SLOT(22) SLOT(23)
SLOT(24) SLOT(25) SLOT(26) SLOT(27) SLOT(28) SLOT(29) SLOT(30) SLOT(31)
SLOT(32) SLOT(33) SLOT(34) SLOT(35) SLOT(36) SLOT(37) SLOT(38) SLOT(39)
SLOT(40) SLOT(41) SLOT(42) SLOT(43) SLOT(44) SLOT(45) SLOT(46) SLOT(47)
SLOT(48) SLOT(49) SLOT(50) SLOT(51) SLOT(52) SLOT(53) SLOT(54) SLOT(55)
SLOT(56) SLOT(57) SLOT(58) SLOT(59) SLOT(60) SLOT(61) SLOT(62) SLOT(63)

static const hm_host_api_t *const HM_SLOT_TABLES[HM_BRIDGE_SLOTS] = {
    &s0_table,  &s1_table,  &s2_table,  &s3_table,  &s4_table,  &s5_table,  &s6_table,  &s7_table,
    &s8_table,  &s9_table,  &s10_table, &s11_table, &s12_table, &s13_table, &s14_table, &s15_table,
    &s16_table, &s17_table, &s18_table, &s19_table, &s20_table, &s21_table, &s22_table, &s23_table,
    &s24_table, &s25_table, &s26_table, &s27_table, &s28_table, &s29_table, &s30_table, &s31_table,
    &s32_table, &s33_table, &s34_table, &s35_table, &s36_table, &s37_table, &s38_table, &s39_table,
    &s40_table, &s41_table, &s42_table, &s43_table, &s44_table, &s45_table, &s46_table, &s47_table,
    &s48_table, &s49_table, &s50_table, &s51_table, &s52_table, &s53_table, &s54_table, &s55_table,
    &s56_table, &s57_table, &s58_table, &s59_table, &s60_table, &s61_table, &s62_table, &s63_table,
};

static int hm_bridge_slots(void) { return HM_BRIDGE_SLOTS; }

/* The host table of slot `slot` (0 <= slot < hm_bridge_slots()). */
static const hm_host_api_t *hm_bridge_host_api(int slot) {
    if (slot < 0 || slot >= HM_BRIDGE_SLOTS) return NULL;
    return HM_SLOT_TABLES[slot];
}

/* ---- which plugin call each thread is in ------------------------------------ */

/* Set around every call into a plugin, so the crash and exit handlers below can
 * say which plugin, capability and step took the process down. The strings are
 * borrowed from Python for the duration of the call. */
typedef struct hm_site {
    const char *label; /* "NAME (PATH)" */
    const char *op;
    const char *step;  /* "" outside execute_step */
} hm_site_t;

static _Thread_local hm_site_t hm_site = {NULL, NULL, NULL};

static const char *const HM_OP_NAMES[] = {"manifest", "execute_step", "on_hook_event", "run_subcommand",
                                          "session_open"};

/* ---- opening and calling ----------------------------------------------------- */

static int hm_bridge_open(const char *path, void **out_entry, char *err, size_t err_cap) {
    *out_entry = NULL;
    err[0] = '\0';
#if defined(_WIN32)
    HMODULE lib = LoadLibraryA(path);
    if (!lib) {
        snprintf(err, err_cap, "LoadLibrary failed with error %lu", (unsigned long)GetLastError());
        return 1;
    }
    *out_entry = (void *)GetProcAddress(lib, HM_ENTRY_SYMBOL);
#else
    /* RTLD_LOCAL keeps each plugin's symbols private; RTLD_NOW surfaces missing
     * symbols here instead of as a crash in the middle of a step. */
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *msg = dlerror();
        strncpy(err, msg ? msg : "dlopen failed", err_cap - 1);
        err[err_cap - 1] = '\0';
        return 1;
    }
    dlerror();
    *out_entry = dlsym(lib, HM_ENTRY_SYMBOL);
#endif
    /* The library stays loaded even when the symbol is missing: never dlclose. */
    return *out_entry ? 0 : 2;
}

static const hm_plugin_vtable_t *hm_bridge_load(void *entry, int slot, const char *label, void **out_instance) {
    hm_load_plugin_fn fn;
    const hm_plugin_vtable_t *vt;
    hm_site_t saved = hm_site;
    *out_instance = NULL;
    memcpy(&fn, &entry, sizeof(fn));
    hm_site.label = label;
    hm_site.op = "hm_load_plugin";
    hm_site.step = "";
    vt = fn(hm_bridge_host_api(slot), out_instance);
    hm_site = saved;
    return vt;
}

/* The size of the 1.0 layout (through `destroy`), not sizeof(): when a later minor
 * grows the table, plugins built against 1.0 must still load. */
static uint32_t hm_bridge_vtable_min_size(void) {
    return (uint32_t)(offsetof(hm_plugin_vtable_t, destroy) + sizeof(((hm_plugin_vtable_t *)0)->destroy));
}

/* Bits: 1 manifest, 2 free, 4 destroy. Call only once struct_size was checked. */
static int hm_bridge_vtable_missing(const hm_plugin_vtable_t *vt) {
    return (vt->manifest ? 0 : 1) | (vt->free ? 0 : 2) | (vt->destroy ? 0 : 4);
}

/* Whether the vtable has every session function (since 1.1): its struct_size
 * covers them and none is NULL. A 1.0 plugin's table ends before them. */
static int hm_vt_has_sessions(const hm_plugin_vtable_t *vt) {
    return HM_TABLE_HAS(vt, hm_plugin_vtable_t, session_close) && vt->session_open && vt->session_write &&
           vt->session_resize && vt->session_signal && vt->session_close;
}

/* Bits: 1 execute_step, 2 on_hook_event, 4 run_subcommand, 8 sessions (1.1). */
static int hm_bridge_vtable_offers(const hm_plugin_vtable_t *vt) {
    return (vt->execute_step ? 1 : 0) | (vt->on_hook_event ? 2 : 0) | (vt->run_subcommand ? 4 : 0) |
           (hm_vt_has_sessions(vt) ? 8 : 0);
}

/* Controls a running session (the plugin's session_write/resize/signal/close,
 * HM_BRIDGE_SESSION_*): `data` for write, `a` x `b` for resize, `a` the signal.
 * HM_ERR_UNSUPPORTED when the vtable has no sessions. Called from a thread other
 * than the one in session_open, so it sets no crash site of its own. */
static hm_status_t hm_bridge_session_ctl(const hm_plugin_vtable_t *vt, void *inst, int what, hm_call_t session,
                                         const char *data, size_t len, int a, int b) {
    if (!hm_vt_has_sessions(vt)) return HM_ERR_UNSUPPORTED;
    switch (what) {
    case HM_BRIDGE_SESSION_WRITE: return vt->session_write(inst, session, (const uint8_t *)data, len);
    case HM_BRIDGE_SESSION_RESIZE: return vt->session_resize(inst, session, (uint16_t)a, (uint16_t)b);
    case HM_BRIDGE_SESSION_SIGNAL: return vt->session_signal(inst, session, (int32_t)a);
    case HM_BRIDGE_SESSION_CLOSE: return vt->session_close(inst, session);
    default: return HM_ERR_INVALID_ARGUMENT;
    }
}

static hm_status_t hm_bridge_manifest(const hm_plugin_vtable_t *vt, void *inst, hm_call_t call, hm_buf_t *out,
                                      const char *label) {
    hm_status_t status;
    hm_site_t saved = hm_site;
    out->ptr = NULL;
    out->len = 0;
    hm_site.label = label;
    hm_site.op = HM_OP_NAMES[0];
    hm_site.step = "";
    status = vt->manifest(inst, call, out);
    hm_site = saved;
    return status;
}

/* Calls capability `op` and returns the output's length; the status goes to
 * *status. An output that fits in the caller's per-thread `scratch` is copied
 * there and released at once; a larger one is left in *big (and the return value
 * is its length too) for the caller to copy and release. One C call and plain
 * integer results keep the Python side short: this is the cost of every call. */
static size_t hm_bridge_invoke(const hm_plugin_vtable_t *vt, void *inst, int slot, int op, hm_call_t call,
                               const char *in, size_t in_len, char *scratch, size_t cap,
                               hm_status_t *status, hm_buf_t *big, const char *label, const char *step) {
    hm_status_t (*fn)(void *, hm_call_t, const uint8_t *, size_t, hm_buf_t *) = NULL;
    hm_buf_t tmp = {NULL, 0};
    hm_site_t saved = hm_site;
    big->ptr = NULL;
    big->len = 0;
    switch (op) {
    case HM_BRIDGE_OP_EXECUTE_STEP: fn = vt->execute_step; break;
    case HM_BRIDGE_OP_ON_HOOK_EVENT: fn = vt->on_hook_event; break;
    case HM_BRIDGE_OP_RUN_SUBCOMMAND: fn = vt->run_subcommand; break;
    case HM_BRIDGE_OP_SESSION_OPEN: fn = hm_vt_has_sessions(vt) ? vt->session_open : NULL; break;
    default: *status = HM_ERR_INVALID_ARGUMENT; return 0;
    }
    if (!fn) {
        *status = HM_ERR_UNSUPPORTED;
        return 0;
    }
    hm_site.label = label;
    hm_site.op = HM_OP_NAMES[op];
    hm_site.step = step;
    if (op == HM_BRIDGE_OP_EXECUTE_STEP) lb_open(slot, call);
    *status = fn(inst, call, (const uint8_t *)in, in_len, &tmp);
    if (op == HM_BRIDGE_OP_EXECUTE_STEP) lb_close(call);
    hm_site = saved;
    if (!tmp.ptr) return 0;
    if (tmp.len <= cap) {
        memcpy(scratch, tmp.ptr, tmp.len);
        vt->free(inst, tmp.ptr, tmp.len);
        return tmp.len;
    }
    *big = tmp;
    return tmp.len;
}

static void hm_bridge_release(const hm_plugin_vtable_t *vt, void *inst, hm_buf_t *out) {
    if (out->ptr) vt->free(inst, out->ptr, out->len);
    out->ptr = NULL;
    out->len = 0;
}

static void hm_bridge_destroy(const hm_plugin_vtable_t *vt, void *inst) { vt->destroy(inst); }

static int hm_bridge_host_copy(const char *data, size_t len, hm_buf_t *out) {
    out->ptr = (uint8_t *)malloc(len ? len : 1);
    out->len = 0;
    if (!out->ptr) return HM_ERR_NO_MEMORY;
    memcpy(out->ptr, data, len);
    out->len = len;
    return HM_OK;
}

/* The benchmark's baseline: the same argument shape as a capability call, no work. */
static void hm_bridge_noop(const char *in, size_t in_len, hm_buf_t *out) {
    (void)in;
    (void)in_len;
    out->ptr = NULL;
    out->len = 0;
}

/* ---- last words: an in-process plugin that crashes or exits --------------------- */

#if !defined(_WIN32)
/* A `build_finished` JSON line split around its `ts` and `message` values, set
 * by the run engine for `--format json`, so even a crash ends the event stream. */
static char *hm_lw_head = NULL;   /* {"kind":"build_finished","run_id":"...","ts":" */
static char *hm_lw_middle = NULL; /* ","status":"error","exit_code": */
static char *hm_lw_tail = NULL;   /* "}\n */
static int hm_exit_expected = 0;
static pthread_t hm_main_thread;
static int hm_handlers_installed = 0;

static const int HM_FATAL[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define HM_N_FATAL ((int)(sizeof HM_FATAL / sizeof HM_FATAL[0]))
static struct sigaction hm_old_actions[HM_N_FATAL];

static char *hm_dup(const char *s) {
    size_t n = strlen(s);
    char *p = (char *)malloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

static void hm_w(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t k = write(2, s, n);
        if (k <= 0) return;
        s += k;
        n -= (size_t)k;
    }
}

static void hm_wfd(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k <= 0) return;
        s += k;
        n -= (size_t)k;
    }
}

/* Appends `s` to buf as JSON string content (escaped); async-signal-safe. */
static size_t hm_json_escape(char *buf, size_t at, size_t cap, const char *s) {
    static const char hex[] = "0123456789abcdef";
    for (; s && *s && at + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[at++] = '\\';
            buf[at++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[at++] = '\\';
            buf[at++] = 'u';
            buf[at++] = '0';
            buf[at++] = '0';
            buf[at++] = hex[c >> 4];
            buf[at++] = hex[c & 15];
        } else {
            buf[at++] = (char)c;
        }
    }
    return at;
}

/* Appends `s` as it is (pieces hm made itself). */
static size_t hm_raw(char *buf, size_t at, size_t cap, const char *s) {
    for (; s && *s && at + 1 < cap; s++) buf[at++] = *s;
    return at;
}

/* Appends `s` with control characters shown as '?': it goes to a terminal. */
static size_t hm_text(char *buf, size_t at, size_t cap, const char *s) {
    for (; s && *s && at + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        buf[at++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    return at;
}

static size_t hm_num(char *buf, size_t at, size_t cap, long v, int width) {
    char tmp[24];
    int n = 0;
    if (v < 0) {
        if (at + 1 < cap) buf[at++] = '-';
        v = -v;
    }
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && n < 23);
    while (n < width && n < 23) tmp[n++] = '0';
    while (n > 0 && at + 1 < cap) buf[at++] = tmp[--n];
    return at;
}

/* RFC 3339 UTC with milliseconds, from the clock; days-to-civil per Howard Hinnant. */
static size_t hm_ts(char *buf, size_t at, size_t cap) {
    struct timespec ts;
    long days, secs, y, m, d, era, doe, yoe, doy, mp;
    clock_gettime(CLOCK_REALTIME, &ts);
    days = (long)(ts.tv_sec / 86400);
    secs = (long)(ts.tv_sec % 86400);
    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    at = hm_num(buf, at, cap, y, 4);
    if (at + 1 < cap) buf[at++] = '-';
    at = hm_num(buf, at, cap, m, 2);
    if (at + 1 < cap) buf[at++] = '-';
    at = hm_num(buf, at, cap, d, 2);
    if (at + 1 < cap) buf[at++] = 'T';
    at = hm_num(buf, at, cap, secs / 3600, 2);
    if (at + 1 < cap) buf[at++] = ':';
    at = hm_num(buf, at, cap, (secs / 60) % 60, 2);
    if (at + 1 < cap) buf[at++] = ':';
    at = hm_num(buf, at, cap, secs % 60, 2);
    if (at + 1 < cap) buf[at++] = '.';
    at = hm_num(buf, at, cap, ts.tv_nsec / 1000000, 3);
    if (at + 1 < cap) buf[at++] = 'Z';
    return at;
}

static const char *hm_signame(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "a fatal signal";
    }
}

/* "plugin NAME (PATH) <pre><detail><post> in execute_step of step KEY" into buf. */
static size_t hm_what(char *buf, size_t cap, const char *label, const char *pre, const char *detail,
                      const char *post) {
    size_t at = 0;
    at = hm_text(buf, at, cap, "plugin ");
    at = hm_text(buf, at, cap, label);
    at = hm_text(buf, at, cap, " ");
    at = hm_text(buf, at, cap, pre);
    at = hm_text(buf, at, cap, detail);
    at = hm_text(buf, at, cap, post);
    if (hm_site.op && hm_site.label == label) {
        at = hm_text(buf, at, cap, " in ");
        at = hm_text(buf, at, cap, hm_site.op);
        if (hm_site.step && hm_site.step[0]) {
            at = hm_text(buf, at, cap, " of step ");
            at = hm_text(buf, at, cap, hm_site.step);
        }
    }
    buf[at] = '\0';
    return at;
}

static void hm_last_words(const char *what, const char *code_text) {
    char line[4096];
    size_t at = 0;
    hm_w("hm: ");
    hm_w(what);
    hm_w("; run with --isolate to contain it\n");
    if (hm_lw_head == NULL) return;
    at = hm_raw(line, at, sizeof line, hm_lw_head);
    at = hm_ts(line, at, sizeof line);
    at = hm_raw(line, at, sizeof line, hm_lw_middle);
    at = hm_raw(line, at, sizeof line, code_text);
    at = hm_raw(line, at, sizeof line, ",\"duration_ms\":0,\"message\":\"");
    at = hm_json_escape(line, at, sizeof line, what);
    at = hm_raw(line, at, sizeof line, hm_lw_tail);
    hm_wfd(1, line, at);
}

/* Labels of the plugins loaded in this process, by slot, and their paths: a
 * crash on a plugin's own thread (no call recorded there) is still named by
 * the library its faulting instruction belongs to. */
static char *hm_slot_label[HM_BRIDGE_SLOTS];
static char *hm_slot_path[HM_BRIDGE_SLOTS];

static void *hm_fault_pc(void *uctx) {
#if defined(__linux__) && defined(__x86_64__)
    return uctx ? (void *)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP] : NULL;
#elif defined(__linux__) && defined(__aarch64__)
    return uctx ? (void *)((ucontext_t *)uctx)->uc_mcontext.pc : NULL;
#else
    (void)uctx;
    return NULL;
#endif
}

/* The label of the plugin whose library holds `pc`, or NULL. */
static const char *hm_label_at(void *pc) {
#if defined(__GLIBC__) || defined(__APPLE__)
    Dl_info info;
    int i;
    if (pc && dladdr(pc, &info) && info.dli_fname) {
        for (i = 0; i < HM_BRIDGE_SLOTS; i++)
            if (hm_slot_path[i] && strcmp(hm_slot_path[i], info.dli_fname) == 0) return hm_slot_label[i];
    }
#endif
    (void)pc;
    return NULL;
}

static const char *hm_exit_code_of(int sig) {
    switch (sig) {
    case SIGSEGV: return "139";
    case SIGBUS: return "135";
    case SIGILL: return "132";
    case SIGFPE: return "136";
    default: return "134";
    }
}

static void hm_on_fatal(int sig, siginfo_t *info, void *uctx) {
    char what[2048];
    const char *label = hm_site.label;
    int i;
    (void)info;
    if (label != NULL) {
        hm_what(what, sizeof what, label, "crashed with ", hm_signame(sig), "");
        hm_last_words(what, hm_exit_code_of(sig));
    } else if (sig != SIGABRT && (label = hm_label_at(hm_fault_pc(uctx))) != NULL) {
        hm_what(what, sizeof what, label, "crashed with ", hm_signame(sig), " on a thread of its own");
        hm_last_words(what, hm_exit_code_of(sig));
    }
    /* then whatever would have happened without us: the old handler, or death */
    for (i = 0; i < HM_N_FATAL; i++)
        if (HM_FATAL[i] == sig) sigaction(sig, &hm_old_actions[i], NULL);
    if (sig == SIGABRT || (info && info->si_code <= 0)) raise(sig); /* sent, not faulted */
    /* a fault re-executes the instruction on return and meets the old action */
}

static void hm_on_exit(int status, void *arg) {
    char what[2048];
    char num[24];
    size_t n;
    (void)arg;
    if (hm_exit_expected) return;
    if (hm_site.label == NULL && pthread_equal(pthread_self(), hm_main_thread)) return;
    if (hm_site.label != NULL) {
        n = hm_num(num, 0, sizeof num, status, 1);
        num[n] = '\0';
        hm_what(what, sizeof what, hm_site.label, "called exit(", num, ")");
        hm_last_words(what, "5");
    } else {
        hm_w("hm: a plugin called exit() on a thread of its own; hm stops with exit code 5\n");
    }
    _exit(5); /* never the plugin's status: a plugin's exit(0) must not read as success */
}

/* Records which library is the plugin in `slot`, for naming crashes. */
static void hm_bridge_note_plugin(int slot, const char *label, const char *path) {
    if (slot < 0 || slot >= HM_BRIDGE_SLOTS) return;
    hm_slot_path[slot] = hm_dup(path);
    hm_slot_label[slot] = hm_dup(label);
}

/* Installs the fatal-signal and exit handlers (once). Returns 0. On Linux hm
 * also becomes a child subreaper, so processes an in-process plugin left
 * behind stay hm's descendants and end with it. */
static int hm_bridge_install_last_words(void) {
    struct sigaction sa;
    int i;
    if (hm_handlers_installed) return 0;
    hm_handlers_installed = 1;
#if defined(__linux__)
    prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
    hm_main_thread = pthread_self();
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = hm_on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < HM_N_FATAL; i++) sigaction(HM_FATAL[i], &sa, &hm_old_actions[i]);
#if defined(__GLIBC__)
    on_exit(hm_on_exit, NULL);
#endif
    return 0;
}

/* The pieces of the build_finished line to print if the process dies (NULLs: none). */
static void hm_bridge_set_last_words(const char *head, const char *middle, const char *tail) {
    char *h = head ? hm_dup(head) : NULL, *m = middle ? hm_dup(middle) : NULL, *t = tail ? hm_dup(tail) : NULL;
    char *oh = hm_lw_head, *om = hm_lw_middle, *ot = hm_lw_tail;
    hm_lw_head = NULL; /* a crash between these lines prints nothing rather than half */
    hm_lw_middle = m;
    hm_lw_tail = t;
    hm_lw_head = h;
    free(oh);
    free(om);
    free(ot);
}

/* hm is leaving on purpose: its own exit() is not a plugin's. */
static void hm_bridge_exit_expected(void) { hm_exit_expected = 1; }

/* ---- reading a file beneath a directory, without a window --------------------- */

#if defined(__linux__) && defined(SYS_openat2)
struct hm_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define HM_RESOLVE_NO_MAGICLINKS 0x02
#define HM_RESOLVE_BENEATH 0x08
#endif

/* Opens `rel` (relative, no NUL) beneath the directory `base` for reading, never
 * leaving it: with openat2(RESOLVE_BENEATH) where the kernel has it, else one
 * component at a time with O_NOFOLLOW (symlinks are then refused). Returns an
 * fd, or -errno (-EXDEV / -ELOOP: it would leave `base` or crosses a symlink). */
static int hm_bridge_open_beneath(const char *base, const char *rel) {
    int dirfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;
    if (dirfd < 0) return -errno;
#if defined(__linux__) && defined(SYS_openat2)
    {
        struct hm_open_how how;
        memset(&how, 0, sizeof how);
        how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
        how.resolve = HM_RESOLVE_BENEATH | HM_RESOLVE_NO_MAGICLINKS;
        fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS) {
            int e = errno;
            close(dirfd);
            return fd >= 0 ? fd : -e;
        }
    }
#endif
    {
        char part[4096];
        const char *p = rel;
        int cur = dirfd;
        for (;;) {
            const char *slash = strchr(p, '/');
            size_t n = slash ? (size_t)(slash - p) : strlen(p);
            int next;
            if (n >= sizeof part) {
                close(cur);
                return -ENAMETOOLONG;
            }
            memcpy(part, p, n);
            part[n] = '\0';
            if (n == 0 || strcmp(part, ".") == 0) {
                if (!slash) {
                    close(cur);
                    return -EISDIR;
                }
                p = slash + 1;
                continue;
            }
            if (strcmp(part, "..") == 0) {
                close(cur);
                return -EXDEV;
            }
            if (slash)
                next = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            else
                next = openat(cur, part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
            if (next < 0) {
                int e = errno;
                close(cur);
                return -e;
            }
            close(cur);
            cur = next;
            if (!slash) return cur;
            p = slash + 1;
        }
    }
}
#else
static int hm_bridge_install_last_words(void) { return 0; }
static void hm_bridge_set_last_words(const char *head, const char *middle, const char *tail) {
    (void)head; (void)middle; (void)tail;
}
static void hm_bridge_exit_expected(void) {}
static void hm_bridge_note_plugin(int slot, const char *label, const char *path) {
    (void)slot; (void)label; (void)path;
}
static int hm_bridge_open_beneath(const char *base, const char *rel) { (void)base; (void)rel; return -38; }
#endif
