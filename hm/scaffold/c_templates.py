"""Templates of a C plugin project (``{{name}}`` placeholders, filled by ``create_project``)."""

from __future__ import annotations

_COMMON_TOP = r"""/*
 * {{name}} — an hm plugin. Build: `make`; check: `hm plugin check ./{{library}}`.
 * The header hm_plugin.h documents every function used here: ownership, threads,
 * return codes. hm_msgpack.h encodes and decodes the messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_msgpack.h"
#include "hm_plugin.h"

#define PLUGIN_NAME "{{name}}"

/* Valid from hm_load_plugin until the process exits (hm_plugin.h). */
static const hm_host_api_t *host;

/* Outputs are malloc'd by hm_mp_writer_finish; hm hands them back here. */
static void release(void *instance, uint8_t *ptr, size_t len)
{
    (void)instance;
    (void)len;
    free(ptr);
}

static void destroy(void *instance) { (void)instance; }

static hm_status_t finish(hm_mp_writer_t *w, hm_buf_t *out, hm_status_t status)
{
    return hm_mp_writer_finish(w, &out->ptr, &out->len) == 0 ? status : HM_ERR_NO_MEMORY;
}

/* A PluginError {code, message}; hm shows it with the plugin's name. */
static hm_status_t fail(hm_buf_t *out, hm_status_t status, const char *code, const char *message)
{
    hm_mp_writer_t w;
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 2);
    hm_mp_write_cstr(&w, "code");
    hm_mp_write_cstr(&w, code);
    hm_mp_write_cstr(&w, "message");
    hm_mp_write_cstr(&w, message);
    return finish(&w, out, status);
}

/* The manifest's common part: {name, version, capabilities: [one capability follows]}. */
static void begin_manifest(hm_mp_writer_t *w)
{
    hm_mp_write_map(w, 3);
    hm_mp_write_cstr(w, "name");
    hm_mp_write_cstr(w, PLUGIN_NAME);
    hm_mp_write_cstr(w, "version");
    hm_mp_write_cstr(w, "0.1.0");
    hm_mp_write_cstr(w, "capabilities");
    hm_mp_write_array(w, 1);
}
"""

_EXECUTOR = r"""
/* Runner `{{name}}`: prints the step's command, then succeeds. */
static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    begin_manifest(&w);
    hm_mp_write_map(&w, 2);
    hm_mp_write_cstr(&w, "kind");
    hm_mp_write_cstr(&w, "step_executor");
    hm_mp_write_cstr(&w, "runners");
    hm_mp_write_array(&w, 1);
    hm_mp_write_cstr(&w, PLUGIN_NAME);
    return finish(&w, out, HM_OK);
}

static hm_status_t execute_step(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                                hm_buf_t *out)
{
    hm_mp_reader_t r, step, cmd;
    const char *text;
    size_t text_len;
    char line[1024];
    int n;
    hm_mp_writer_t w;
    (void)instance;

    hm_mp_reader_init(&r, input, input_len);
    if (hm_mp_map_find(&r, "step", &step) != 0 || hm_mp_map_find(&step, "cmd", &cmd) != 0 ||
        hm_mp_read_str(&cmd, &text, &text_len) != 0)
        return fail(out, HM_ERR_FAILED, "invalid_input", "ExecutorInput has no step.cmd");
    if (HM_TABLE_HAS(host, hm_host_api_t, should_cancel) && host->should_cancel &&
        host->should_cancel(call) != HM_OK) {
        hm_mp_writer_init(&w);
        hm_mp_write_map(&w, 2);
        hm_mp_write_cstr(&w, "exit_code");
        hm_mp_write_int(&w, 130);
        hm_mp_write_cstr(&w, "status");
        hm_mp_write_cstr(&w, "cancelled");
        return finish(&w, out, HM_OK);
    }
    n = snprintf(line, sizeof line, "{{name}}: %.*s\n", (int)(text_len > 900 ? 900 : text_len), text);
    if (HM_TABLE_HAS(host, hm_host_api_t, emit_step_log) && host->emit_step_log && n > 0)
        host->emit_step_log(call, HM_STREAM_STDOUT, (const uint8_t *)line, (size_t)n);

    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 2);
    hm_mp_write_cstr(&w, "exit_code");
    hm_mp_write_int(&w, 0);
    hm_mp_write_cstr(&w, "status");
    hm_mp_write_cstr(&w, "succeeded");
    return finish(&w, out, HM_OK);
}

#define EXECUTE_STEP execute_step
#define ON_HOOK_EVENT NULL
#define RUN_SUBCOMMAND NULL
"""

_HOOK = r"""
/* An `after` hook on every build event: logs what it saw; never aborts. */
static void host_log(hm_call_t call, const char *text)
{
    if (HM_TABLE_HAS(host, hm_host_api_t, log) && host->log)
        host->log(call, HM_LOG_INFO, (const uint8_t *)text, strlen(text));
}

static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    begin_manifest(&w);
    hm_mp_write_map(&w, 4);
    hm_mp_write_cstr(&w, "kind");
    hm_mp_write_cstr(&w, "lifecycle_hook");
    hm_mp_write_cstr(&w, "phase");
    hm_mp_write_cstr(&w, "after");
    hm_mp_write_cstr(&w, "events");
    hm_mp_write_array(&w, 0); /* empty: every kind but step_log */
    hm_mp_write_cstr(&w, "timeout_ms");
    hm_mp_write_int(&w, 5000);
    return finish(&w, out, HM_OK);
}

static hm_status_t on_hook_event(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                                 hm_buf_t *out)
{
    hm_mp_reader_t r, event, kind;
    const char *text;
    size_t text_len;
    char line[256];
    hm_mp_writer_t w;
    (void)instance;

    hm_mp_reader_init(&r, input, input_len);
    if (hm_mp_map_find(&r, "event", &event) != 0 || hm_mp_map_find(&event, "kind", &kind) != 0 ||
        hm_mp_read_str(&kind, &text, &text_len) != 0)
        return fail(out, HM_ERR_FAILED, "invalid_input", "HookEvent has no event.kind");
    snprintf(line, sizeof line, "{{name}} saw %.*s", (int)(text_len > 100 ? 100 : text_len), text);
    host_log(call, line);

    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 1);
    hm_mp_write_cstr(&w, "kind");
    hm_mp_write_cstr(&w, "continue");
    return finish(&w, out, HM_OK);
}

#define EXECUTE_STEP NULL
#define ON_HOOK_EVENT on_hook_event
#define RUN_SUBCOMMAND NULL
"""

_SUBCOMMAND = r"""
/* `hm {{name}} [WHO]`: greets WHO (default "world"). */
static hm_status_t manifest(void *instance, hm_call_t call, hm_buf_t *out)
{
    hm_mp_writer_t w;
    (void)instance;
    (void)call;
    hm_mp_writer_init(&w);
    begin_manifest(&w);
    hm_mp_write_map(&w, 4);
    hm_mp_write_cstr(&w, "kind");
    hm_mp_write_cstr(&w, "subcommand");
    hm_mp_write_cstr(&w, "verb");
    hm_mp_write_array(&w, 1);
    hm_mp_write_cstr(&w, PLUGIN_NAME);
    hm_mp_write_cstr(&w, "summary");
    hm_mp_write_cstr(&w, "Greet someone");
    hm_mp_write_cstr(&w, "args");
    hm_mp_write_array(&w, 1);
    hm_mp_write_map(&w, 5);
    hm_mp_write_cstr(&w, "name");
    hm_mp_write_cstr(&w, "who");
    hm_mp_write_cstr(&w, "kind");
    hm_mp_write_cstr(&w, "positional");
    hm_mp_write_cstr(&w, "type");
    hm_mp_write_cstr(&w, "string");
    hm_mp_write_cstr(&w, "default");
    hm_mp_write_cstr(&w, "world");
    hm_mp_write_cstr(&w, "help");
    hm_mp_write_cstr(&w, "who to greet");
    return finish(&w, out, HM_OK);
}

static hm_status_t run_subcommand(void *instance, hm_call_t call, const uint8_t *input, size_t input_len,
                                  hm_buf_t *out)
{
    hm_mp_reader_t r, args, who;
    const char *text = "world";
    size_t text_len = 5;
    char message[256];
    hm_mp_writer_t w;
    (void)instance;
    (void)call;

    hm_mp_reader_init(&r, input, input_len);
    if (hm_mp_peek(&r) != HM_MP_MAP)
        return fail(out, HM_ERR_FAILED, "invalid_input", "SubcommandInput is not a map");
    if (hm_mp_map_find(&r, "args", &args) == 0 && hm_mp_map_find(&args, "who", &who) == 0 &&
        hm_mp_peek(&who) == HM_MP_STR)
        hm_mp_read_str(&who, &text, &text_len);
    snprintf(message, sizeof message, "hello, %.*s", (int)(text_len > 200 ? 200 : text_len), text);

    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 2);
    hm_mp_write_cstr(&w, "exit_code");
    hm_mp_write_int(&w, 0);
    hm_mp_write_cstr(&w, "message");
    hm_mp_write_cstr(&w, message);
    return finish(&w, out, HM_OK);
}

#define EXECUTE_STEP NULL
#define ON_HOOK_EVENT NULL
#define RUN_SUBCOMMAND run_subcommand
"""

_COMMON_BOTTOM = r"""
static const hm_plugin_vtable_t vtable = {
    {sizeof(hm_plugin_vtable_t), HM_ABI_MAJOR, HM_ABI_MINOR},
    manifest,
    EXECUTE_STEP,
    ON_HOOK_EVENT,
    RUN_SUBCOMMAND,
    release,
    destroy,
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

$(NAME).$(EXT): plugin.c include/hm_plugin.h include/hm_msgpack.h
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
