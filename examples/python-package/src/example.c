/* The plugin this package ships: runner `example`, which prints its command. */
#include <stdio.h>
#include <string.h>

#include "hm_msgpack.h"
#include "hm_plugin.h"

static const hm_host_api_t *host;

static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 3);
    hm_mp_write_cstr(&w, "name");
    hm_mp_write_cstr(&w, "example");
    hm_mp_write_cstr(&w, "version");
    hm_mp_write_cstr(&w, "0.1.0");
    hm_mp_write_cstr(&w, "capabilities");
    hm_mp_write_array(&w, 1);
    hm_mp_write_map(&w, 2);
    hm_mp_write_cstr(&w, "kind");
    hm_mp_write_cstr(&w, "step_executor");
    hm_mp_write_cstr(&w, "runners");
    hm_mp_write_array(&w, 1);
    hm_mp_write_cstr(&w, "example");
    return hm_mp_writer_finish(&w, &out->ptr, &out->len) == 0 ? HM_OK : HM_ERR_NO_MEMORY;
}

static hm_status_t execute_step(void *instance, hm_call_t call, const uint8_t *input, size_t len, hm_buf_t *out)
{
    hm_mp_reader_t r, step, cmd;
    const char *text = "";
    size_t text_len = 0;
    char line[512];
    int n;
    hm_mp_writer_t w;
    (void)instance;
    hm_mp_reader_init(&r, input, len);
    if (hm_mp_map_find(&r, "step", &step) == 0 && hm_mp_map_find(&step, "cmd", &cmd) == 0)
        hm_mp_read_str(&cmd, &text, &text_len);
    n = snprintf(line, sizeof line, "example plugin ran: %.*s\n", (int)(text_len > 400 ? 400 : text_len), text);
    host->emit_step_log(call, HM_STREAM_STDOUT, (const uint8_t *)line, (size_t)n);
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 2);
    hm_mp_write_cstr(&w, "exit_code");
    hm_mp_write_int(&w, 0);
    hm_mp_write_cstr(&w, "status");
    hm_mp_write_cstr(&w, "succeeded");
    return hm_mp_writer_finish(&w, &out->ptr, &out->len) == 0 ? HM_OK : HM_ERR_NO_MEMORY;
}

static void release(void *instance, uint8_t *ptr, size_t len)
{
    (void)instance;
    (void)len;
    free(ptr);
}

static void destroy(void *instance) { (void)instance; }

static const hm_plugin_vtable_t vtable = {
    {sizeof(hm_plugin_vtable_t), HM_ABI_MAJOR, HM_ABI_MINOR}, manifest, execute_step, NULL, NULL, release, destroy,
};

HM_EXPORT const hm_plugin_vtable_t *hm_load_plugin(const hm_host_api_t *h, void **out_instance)
{
    if (h->header.abi_major != HM_ABI_MAJOR)
        return NULL;
    host = h;
    *out_instance = NULL;
    return &vtable;
}
