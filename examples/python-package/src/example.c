/* The plugin this package ships: runner `example`, which prints its command.
 * The messages are encoded with hm_protocol.h, the SDK's encoders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_msgpack.h"
#include "hm_plugin.h"
#include "hm_protocol.h"

static const hm_host_api_t *host;

static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    static const char *const runners[] = {"example"};
    hm_proto_executor_t executor = {runners, 1, 0, 0, 0, 0, 0, 0};
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    hm_proto_manifest_begin(&w, "example", "0.1.0", "", 1);
    hm_proto_cap_step_executor(&w, &executor);
    return hm_proto_finish(&w, out, HM_OK);
}

static hm_status_t execute_step(void *instance, hm_call_t call, const uint8_t *input, size_t len, hm_buf_t *out)
{
    hm_mp_reader_t r, step;
    const char *text = "";
    size_t text_len = 0;
    char line[512];
    int n;
    (void)instance;
    hm_mp_reader_init(&r, input, len);
    if (hm_proto_get_map(&r, "step", &step) == 0)
        hm_proto_get_str(&step, "cmd", &text, &text_len);
    n = snprintf(line, sizeof line, "example plugin ran: %.*s\n", (int)(text_len > 400 ? 400 : text_len), text);
    host->emit_step_log(call, HM_STREAM_STDOUT, (const uint8_t *)line, (size_t)n);
    return hm_proto_step_result(out, 0, "succeeded", NULL, NULL);
}

static void release(void *instance, uint8_t *ptr, size_t len)
{
    (void)instance;
    (void)len;
    free(ptr);
}

static void destroy(void *instance) { (void)instance; }

static const hm_plugin_vtable_t vtable = {
    .header = {sizeof(hm_plugin_vtable_t), HM_ABI_MAJOR, HM_ABI_MINOR},
    .manifest = manifest,
    .execute_step = execute_step,
    .free = release,
    .destroy = destroy,
};

HM_EXPORT const hm_plugin_vtable_t *hm_load_plugin(const hm_host_api_t *h, void **out_instance)
{
    if (h->header.abi_major != HM_ABI_MAJOR)
        return NULL;
    host = h;
    *out_instance = NULL;
    return &vtable;
}
