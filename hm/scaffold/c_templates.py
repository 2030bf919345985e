"""Templates of a C plugin project (``{{name}}`` placeholders, filled by ``create_project``).

The messages are encoded with hm_protocol.h (the SDK's encoders), not by hand.
"""

from __future__ import annotations

_COMMON_TOP = r"""/*
 * {{name}} — an hm plugin. Build: `make`; check: `hm plugin check ./{{library}}`.
 * The header hm_plugin.h documents every function used here: ownership, threads,
 * return codes. hm_protocol.h encodes and decodes the messages (on hm_msgpack.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_msgpack.h"
#include "hm_plugin.h"
#include "hm_protocol.h"

#define PLUGIN_NAME "{{name}}"

/* Valid from hm_load_plugin until the process exits (hm_plugin.h). */
static const hm_host_api_t *host;

/* Outputs are malloc'd by hm_protocol.h's encoders; hm hands them back here. */
static void release(void *instance, uint8_t *ptr, size_t len)
{
    (void)instance;
    (void)len;
    free(ptr);
}

static void destroy(void *instance) { (void)instance; }
"""

_EXECUTOR = r"""
/* Runner `{{name}}`: prints the step's command, then succeeds. */
static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    static const char *const runners[] = {PLUGIN_NAME};
    hm_proto_executor_t executor = {runners, 1, 0, 0, 0, 0, 0, 0};
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    hm_proto_manifest_begin(&w, PLUGIN_NAME, "0.1.0", "", 1);
    hm_proto_cap_step_executor(&w, &executor);
    return hm_proto_finish(&w, out, HM_OK);
}

static hm_status_t execute_step(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                                hm_buf_t *out)
{
    hm_mp_reader_t r, step;
    const char *text;
    size_t text_len;
    char line[1024];
    int n;
    (void)instance;

    hm_mp_reader_init(&r, input, input_len);
    if (hm_proto_get_map(&r, "step", &step) != 0 || hm_proto_get_str(&step, "cmd", &text, &text_len) != 0)
        return hm_proto_error(out, HM_ERR_FAILED, "invalid_input", "ExecutorInput has no step.cmd");
    if (HM_HOST_HAS(host, should_cancel) && host->should_cancel(call) != HM_OK)
        return hm_proto_step_result(out, 130, "cancelled", NULL, NULL);
    n = snprintf(line, sizeof line, "{{name}}: %.*s\n", (int)(text_len > 900 ? 900 : text_len), text);
    if (HM_HOST_HAS(host, emit_step_log) && n > 0)
        host->emit_step_log(call, HM_STREAM_STDOUT, (const uint8_t *)line, (size_t)n);
    return hm_proto_step_result(out, 0, "succeeded", NULL, NULL);
}

#define EXECUTE_STEP execute_step
#define ON_HOOK_EVENT NULL
#define RUN_SUBCOMMAND NULL
"""

_HOOK = r"""
/* An `after` hook on every build event: logs what it saw; never aborts. */
static void host_log(hm_call_t call, const char *text)
{
    if (HM_HOST_HAS(host, log))
        host->log(call, HM_LOG_INFO, (const uint8_t *)text, strlen(text));
}

static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    hm_proto_manifest_begin(&w, PLUGIN_NAME, "0.1.0", "", 1);
    hm_proto_cap_lifecycle_hook(&w, "after", NULL, 0, 5000); /* no events listed: every kind but step_log */
    return hm_proto_finish(&w, out, HM_OK);
}

static hm_status_t on_hook_event(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                                 hm_buf_t *out)
{
    hm_mp_reader_t r, event;
    const char *text;
    size_t text_len;
    char line[256];
    (void)instance;

    hm_mp_reader_init(&r, input, input_len);
    if (hm_proto_get_map(&r, "event", &event) != 0 || hm_proto_get_str(&event, "kind", &text, &text_len) != 0)
        return hm_proto_error(out, HM_ERR_FAILED, "invalid_input", "HookEvent has no event.kind");
    snprintf(line, sizeof line, "{{name}} saw %.*s", (int)(text_len > 100 ? 100 : text_len), text);
    host_log(call, line);
    return hm_proto_hook_outcome(out, NULL);
}

#define EXECUTE_STEP NULL
#define ON_HOOK_EVENT on_hook_event
#define RUN_SUBCOMMAND NULL
"""

_SUBCOMMAND = r"""
/* `hm {{name}} [WHO]`: greets WHO (default "world"). */
static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    static const char *const verb[] = {PLUGIN_NAME};
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    hm_proto_manifest_begin(&w, PLUGIN_NAME, "0.1.0", "", 1);
    hm_proto_cap_subcommand(&w, verb, 1, "Greet someone", 1);
    hm_proto_arg(&w, "who", "positional", "string", 0, "who to greet (default: world)");
    return hm_proto_finish(&w, out, HM_OK);
}

static hm_status_t run_subcommand(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                                  hm_buf_t *out)
{
    hm_mp_reader_t r, args;
    const char *text = "world";
    size_t text_len = 5;
    char message[256];
    (void)instance;
    (void)call;

    hm_mp_reader_init(&r, input, input_len);
    if (hm_mp_peek(&r) != HM_MP_MAP)
        return hm_proto_error(out, HM_ERR_FAILED, "invalid_input", "SubcommandInput is not a map");
    if (hm_proto_get_map(&r, "args", &args) == 0 && hm_proto_get_str(&args, "who", &text, &text_len) != 0) {
        text = "world"; /* absent or nil: the default */
        text_len = 5;
    }
    snprintf(message, sizeof message, "hello, %.*s", (int)(text_len > 200 ? 200 : text_len), text);
    return hm_proto_exit_info(out, 0, message);
}

#define EXECUTE_STEP NULL
#define ON_HOOK_EVENT NULL
#define RUN_SUBCOMMAND run_subcommand
"""

_COMMON_BOTTOM = r"""
/* Designated initializers: entries a later ABI minor appends (session_*, since
 * 1.1) stay NULL, which tells hm this plugin does not offer them. */
static const hm_plugin_vtable_t vtable = {
    .header = {sizeof(hm_plugin_vtable_t), HM_ABI_MAJOR, HM_ABI_MINOR},
    .manifest = manifest,
    .execute_step = EXECUTE_STEP,
    .on_hook_event = ON_HOOK_EVENT,
    .run_subcommand = RUN_SUBCOMMAND,
    .free = release,
    .destroy = destroy,
};

HM_EXPORT const hm_plugin_vtable_t *hm_load_plugin(const hm_host_api_t *h, void **out_instance)
{
    if (h == NULL || h->header.abi_major != HM_ABI_MAJOR)
        return NULL; /* built for another ABI major: refuse, hm reports it */
    host = h;
    *out_instance = NULL; /* no per-instance state */
    return &vtable;
}
"""

_BODIES = {"executor": _EXECUTOR, "hook": _HOOK, "subcommand": _SUBCOMMAND}


def source(capability: str) -> str:
    return _COMMON_TOP + _BODIES[capability] + _COMMON_BOTTOM


MAKEFILE = """# Builds {{library}} from plugin.c against the SDK headers in include/
# (copied from the hm that generated this project).
NAME := {{name}}
CFLAGS ?= -std=c11 -O2 -Wall -Wextra
ifeq ($(shell uname),Darwin)
  EXT := dylib
  LDFLAGS += -undefined dynamic_lookup
else
  EXT := so
endif

$(NAME).$(EXT): plugin.c include/hm_plugin.h include/hm_msgpack.h include/hm_protocol.h
\t$(CC) $(CFLAGS) -fPIC -shared -fvisibility=hidden -Iinclude plugin.c -o $@ $(LDFLAGS)

.PHONY: clean
clean:
\trm -f $(NAME).$(EXT)
"""

README = """# {{name}}

An hm plugin in C.

    {{build}}                       # builds {{library}}
    hm plugin check ./{{library}}   # hm's conformance suite
    hm plugin install ./{{library}} # or: HM_PLUGIN_PATH=$PWD/{{library}} hm plugin info {{name}}

`plugin.c` is the whole plugin; `include/` holds the SDK headers of the hm that
generated it (hm_plugin.h documents every function: ownership, threads, codes).
See docs/plugin-authors.md in the hm repository for every message field.
"""
