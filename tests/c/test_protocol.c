/* The C suite of hm_protocol.h: every encoder's output decodes back with its
 * decoder (and matches the schema's field names), as C99, C11 and C++17.
 * Prints "protocol: all N checks passed" and exits 0, or names the failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_protocol.h"

static int checks = 0, failed = 0;

#define CHECK(cond)                                                      \
    do {                                                                 \
        checks++;                                                        \
        if (!(cond)) {                                                   \
            failed++;                                                    \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                \
    } while (0)

static int str_is(hm_proto_str_t s, const char *want)
{
    return s.ptr != NULL && hm_mp_str_eq(s.ptr, s.len, want);
}

static void test_plugin_error(void)
{
    static const char *const retry[] = {"hm run", "hm cache clear"};
    hm_proto_error_t e;
    hm_proto_error_view_t v;
    hm_buf_t out = {NULL, 0};
    const char *s;
    size_t n;
    memset(&e, 0, sizeof e);
    e.code = "pull_failed";
    e.message = "503";
    e.title = "Pull failed";
    e.suggestion = "wait";
    e.retryable = 1;
    e.retry_commands = retry;
    e.n_retry_commands = 2;
    e.doc_url = "https://example.invalid";
    CHECK(hm_proto_plugin_error(&out, HM_ERR_FAILED, &e) == HM_ERR_FAILED);
    CHECK(hm_proto_decode_plugin_error(out.ptr, out.len, &v) == 0);
    CHECK(str_is(v.code, "pull_failed") && str_is(v.message, "503") && str_is(v.title, "Pull failed"));
    CHECK(str_is(v.suggestion, "wait") && str_is(v.doc_url, "https://example.invalid") && v.retryable == 1);
    CHECK(v.n_retry_commands == 2);
    CHECK(hm_mp_read_str(&v.retry_commands, &s, &n) == 0 && hm_mp_str_eq(s, n, "hm run"));
    CHECK(hm_mp_read_str(&v.retry_commands, &s, &n) == 0 && hm_mp_str_eq(s, n, "hm cache clear"));
    free(out.ptr);
    /* the short form leaves every optional field out */
    CHECK(hm_proto_error(&out, HM_ERR_INVALID_ARGUMENT, "bad", "no") == HM_ERR_INVALID_ARGUMENT);
    CHECK(hm_proto_decode_plugin_error(out.ptr, out.len, &v) == 0);
    CHECK(v.title.ptr == NULL && v.suggestion.ptr == NULL && v.retryable == 0 && v.n_retry_commands == 0);
    free(out.ptr);
    CHECK(hm_proto_decode_plugin_error((const uint8_t *)"\x90", 1, &v) == -1); /* an array, not a map */
}

static void test_step_result_hook_exit(void)
{
    hm_buf_t out = {NULL, 0};
    hm_proto_step_result_view_t r;
    hm_proto_str_t reason, message;
    int64_t code;
    int abort_;
    CHECK(hm_proto_step_result(&out, 3, "failed", "exit 3", "sha256:ab") == HM_OK);
    CHECK(hm_proto_decode_step_result(out.ptr, out.len, &r) == 0);
    CHECK(r.exit_code == 3 && str_is(r.status, "failed") && str_is(r.message, "exit 3") && str_is(r.image_id, "sha256:ab"));
    free(out.ptr);
    CHECK(hm_proto_step_result(&out, 0, "succeeded", NULL, NULL) == HM_OK);
    CHECK(hm_proto_decode_step_result(out.ptr, out.len, &r) == 0 && r.message.ptr == NULL && r.image_id.ptr == NULL);
    free(out.ptr);
    CHECK(hm_proto_hook_outcome(&out, "no deploys on Friday") == HM_OK);
    CHECK(hm_proto_decode_hook_outcome(out.ptr, out.len, &abort_, &reason) == 0 && abort_ == 1);
    CHECK(str_is(reason, "no deploys on Friday"));
    free(out.ptr);
    CHECK(hm_proto_hook_outcome(&out, NULL) == HM_OK);
    CHECK(hm_proto_decode_hook_outcome(out.ptr, out.len, &abort_, &reason) == 0 && abort_ == 0 && reason.ptr == NULL);
    free(out.ptr);
    CHECK(hm_proto_exit_info(&out, 4, "bye") == HM_OK);
    CHECK(hm_proto_decode_exit_info(out.ptr, out.len, &code, &message) == 0 && code == 4 && str_is(message, "bye"));
    free(out.ptr);
}

static void test_manifest(void)
{
    static const char *const runners[] = {"a", "b"};
    static const char *const verb[] = {"x", "y"};
    hm_proto_executor_t ex;
    hm_mp_writer_t w;
    hm_buf_t out = {NULL, 0};
    hm_proto_str_t name, version;
    hm_mp_reader_t caps, kind_r;
    uint32_t n = 0;
    const char *kind;
    size_t kl;
    int sessions = 0;
    memset(&ex, 0, sizeof ex);
    ex.runners = runners;
    ex.n_runners = 2;
    ex.sessions = 1;
    hm_mp_writer_init(&w);
    hm_proto_manifest_begin(&w, "demo", "1.2.3", NULL, 3);
    hm_proto_cap_step_executor(&w, &ex);
    hm_proto_cap_lifecycle_hook(&w, "before", NULL, 0, 100);
    hm_proto_cap_subcommand(&w, verb, 2, "does y", 1);
    hm_proto_arg(&w, "who", "option", "string", 1, NULL);
    CHECK(hm_proto_finish(&w, &out, HM_OK) == HM_OK);
    CHECK(hm_proto_decode_manifest(out.ptr, out.len, &name, &version, &caps, &n) == 0);
    CHECK(str_is(name, "demo") && str_is(version, "1.2.3") && n == 3);
    kind_r = caps;
    CHECK(hm_proto_get_str(&kind_r, "kind", &kind, &kl) == 0 && hm_mp_str_eq(kind, kl, "step_executor"));
    CHECK(hm_proto_get_bool(&caps, "sessions", &sessions) == 0 && sessions == 1);
    free(out.ptr);
}

int main(void)
{
    test_plugin_error();
    test_step_result_hook_exit();
    test_manifest();
    if (failed) {
        printf("protocol: %d of %d checks failed\n", failed, checks);
        return 1;
    }
    printf("protocol: all %d checks passed\n", checks);
    return 0;
}
