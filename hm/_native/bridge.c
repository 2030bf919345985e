/* The host side of the native boundary: the host-API table whose entries are
 * cffi `extern "Python"` callbacks, and small trampolines that call through a
 * plugin's vtable so Python never calls a function pointer itself. Calls made
 * through cffi release the GIL, so plugin work on several steps runs in parallel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hm_plugin.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

#define HM_BRIDGE_OP_EXECUTE_STEP 1
#define HM_BRIDGE_OP_ON_HOOK_EVENT 2
#define HM_BRIDGE_OP_RUN_SUBCOMMAND 3

/* cffi defines these; they must be declared before the table refers to them. */
static hm_status_t hm_py_log(hm_call_t, int32_t, const uint8_t *, size_t);
static hm_status_t hm_py_kv_get(hm_call_t, int32_t, const uint8_t *, size_t, hm_buf_t *);
static hm_status_t hm_py_kv_set(hm_call_t, int32_t, const uint8_t *, size_t, const uint8_t *, size_t);
static hm_status_t hm_py_emit_event(hm_call_t, const uint8_t *, size_t);
static hm_status_t hm_py_emit_step_log(hm_call_t, int32_t, const uint8_t *, size_t);
static hm_status_t hm_py_should_cancel(hm_call_t);
static hm_status_t hm_py_write_stdout(hm_call_t, const uint8_t *, size_t);
static hm_status_t hm_py_write_stderr(hm_call_t, const uint8_t *, size_t);
static hm_status_t hm_py_archive_read(hm_call_t, uint64_t, uint8_t *, size_t, size_t *);
static hm_status_t hm_py_archive_total_size(hm_call_t, uint64_t *);
static hm_status_t hm_py_fs_read_config(hm_call_t, const uint8_t *, size_t, hm_buf_t *);

static void hm_host_free(uint8_t *ptr, size_t len) {
    (void)len;
    free(ptr);
}

static const hm_host_api_t HM_HOST_API = {
    {(uint32_t)sizeof(hm_host_api_t), HM_ABI_MAJOR, HM_ABI_MINOR},
    NULL,
    hm_py_log,
    hm_py_kv_get,
    hm_py_kv_set,
    hm_py_emit_event,
    hm_py_emit_step_log,
    hm_py_should_cancel,
    hm_py_write_stdout,
    hm_py_write_stderr,
    hm_py_archive_read,
    hm_py_archive_total_size,
    hm_py_fs_read_config,
    hm_host_free,
};

static const hm_host_api_t *hm_bridge_host_api(void) { return &HM_HOST_API; }

/* A copy of the host table that claims an older (smaller) layout, for checking
 * that a plugin honours struct_size. Fields past struct_size are zeroed. The
 * copy lives until the process exits, like the real table. */
static const hm_host_api_t *hm_bridge_host_api_as(uint32_t struct_size, uint32_t abi_minor) {
    hm_host_api_t *copy = (hm_host_api_t *)calloc(1, sizeof(hm_host_api_t));
    if (!copy) return NULL;
    if (struct_size > sizeof(hm_host_api_t)) struct_size = (uint32_t)sizeof(hm_host_api_t);
    memcpy(copy, &HM_HOST_API, struct_size);
    copy->header.struct_size = struct_size;
    copy->header.abi_minor = abi_minor;
    return copy;
}

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

static const hm_plugin_vtable_t *hm_bridge_load(void *entry, const hm_host_api_t *host, void **out_instance) {
    hm_load_plugin_fn fn;
    *out_instance = NULL;
    memcpy(&fn, &entry, sizeof(fn));
    return fn(host, out_instance);
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

/* Bits: 1 execute_step, 2 on_hook_event, 4 run_subcommand. */
static int hm_bridge_vtable_offers(const hm_plugin_vtable_t *vt) {
    return (vt->execute_step ? 1 : 0) | (vt->on_hook_event ? 2 : 0) | (vt->run_subcommand ? 4 : 0);
}

static hm_status_t hm_bridge_manifest(const hm_plugin_vtable_t *vt, void *inst, hm_call_t call, hm_buf_t *out) {
    out->ptr = NULL;
    out->len = 0;
    return vt->manifest(inst, call, out);
}

static hm_status_t hm_bridge_call(const hm_plugin_vtable_t *vt, void *inst, int op, hm_call_t call,
                                  const char *in, size_t in_len, hm_buf_t *out) {
    hm_status_t (*fn)(void *, hm_call_t, const uint8_t *, size_t, hm_buf_t *) = NULL;
    out->ptr = NULL;
    out->len = 0;
    switch (op) {
    case HM_BRIDGE_OP_EXECUTE_STEP: fn = vt->execute_step; break;
    case HM_BRIDGE_OP_ON_HOOK_EVENT: fn = vt->on_hook_event; break;
    case HM_BRIDGE_OP_RUN_SUBCOMMAND: fn = vt->run_subcommand; break;
    default: return HM_ERR_INVALID_ARGUMENT;
    }
    if (!fn) return HM_ERR_UNSUPPORTED;
    return fn(inst, call, (const uint8_t *)in, in_len, out);
}

/* hm_bridge_call for the hot path. Returns the output's length; the status goes
 * to *status. An output that fits in the caller's per-thread `scratch` is copied
 * there and released at once; a larger one is left in *big (and the return value
 * is its length too) for the caller to copy and release. One C call and plain
 * integer results keep the Python side short: this is the cost of every call. */
static size_t hm_bridge_invoke(const hm_plugin_vtable_t *vt, void *inst, int op, hm_call_t call,
                               const char *in, size_t in_len, char *scratch, size_t cap,
                               hm_status_t *status, hm_buf_t *big) {
    hm_buf_t tmp;
    *status = hm_bridge_call(vt, inst, op, call, in, in_len, &tmp);
    big->ptr = NULL;
    big->len = 0;
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
