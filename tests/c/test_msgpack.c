/*
 * test_msgpack.c - standalone tests for hm_plugin_sdk/include/hm_msgpack.h.
 *
 * Valid C99, C11 and C++17 (no designated initializers, compound literals or
 * VLAs; malloc results are cast). Build and run from the repository root:
 *
 *   gcc -std=c99 -Wall -Wextra -Werror -pedantic -O1 -Ihm_plugin_sdk/include \
 *       tests/c/test_msgpack.c -o test_msgpack && ./test_msgpack
 *
 * Also run it under -fsanitize=address,undefined: every buffer handed to a
 * reader is an exactly-sized malloc block (TAKE, dup_exact), so any read past
 * the end of the input is reported. Prints each failing check with its line
 * and returns 1; on success ends with "test_msgpack: all N checks passed".
 */
#include "hm_msgpack.h"

#include <stdio.h>

/* ---- check helpers ------------------------------------------------------ */

static int g_checks = 0;
static int g_failures = 0;

static int check(int ok, int line, const char *expr)
{
    g_checks++;
    if (!ok) {
        g_failures++;
        printf("FAIL line %d: %s\n", line, expr);
    }
    return ok;
}

static void check_eq(long long got, long long want, int line, const char *expr)
{
    if (!check(got == want, line, expr))
        printf("    got %lld, want %lld\n", got, want);
}

static void check_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len,
                        int line, const char *expr)
{
    size_t i;
    if (check(got_len == want_len && memcmp(got, want, want_len) == 0, line, expr))
        return;
    printf("    got  %2lu bytes:", (unsigned long)got_len);
    for (i = 0; i < got_len && i < 24; i++)
        printf(" %02x", got[i]);
    printf("\n    want %2lu bytes:", (unsigned long)want_len);
    for (i = 0; i < want_len; i++)
        printf(" %02x", want[i]);
    printf("\n");
}

static void check_fails(int ret, int err, int want_err, int line, const char *expr)
{
    if (!check(ret == -1 && err == want_err, line, expr))
        printf("    returned %d with error \"%s\", want -1 with \"%s\"\n", ret,
               hm_mp_error_string(err), hm_mp_error_string(want_err));
}

#define CHECK(cond) check((cond) ? 1 : 0, __LINE__, #cond)
#define CHECK_EQ(a, b) check_eq((long long)(a), (long long)(b), __LINE__, #a " == " #b)
/* EXPR (a read from reader R) must return -1 and leave R.error == ERR. */
#define CHECK_FAILS(EXPR, R, ERR)                                           \
    do {                                                                    \
        int ret_ = (EXPR);                                                  \
        check_fails(ret_, (R).error, (ERR), __LINE__, #EXPR);               \
    } while (0)

/* Runs STMT (writing through `w`) on a fresh writer; compares the output. */
#define EXPECT_ENC(STMT, ...)                                               \
    do {                                                                    \
        static const uint8_t want_[] = {__VA_ARGS__};                       \
        hm_mp_writer_t wr_;                                                 \
        hm_mp_writer_t *w = &wr_;                                           \
        uint8_t *out_ = NULL;                                               \
        size_t out_len_ = 0;                                                \
        hm_mp_writer_init(w);                                               \
        STMT;                                                               \
        CHECK_EQ(hm_mp_writer_finish(w, &out_, &out_len_), 0);              \
        check_bytes(out_, out_len_, want_, sizeof want_, __LINE__, #STMT);  \
        free(out_);                                                         \
    } while (0)

/* In EXPECT_ENC: keep only the first n bytes (to check just a long header). */
#define KEEP(n) (w->len = (n))

/* Exactly-sized heap copy of src (src == NULL: uninitialized); NULL for n == 0. */
static uint8_t *dup_exact(const void *src, size_t n)
{
    uint8_t *p = n ? (uint8_t *)malloc(n) : NULL;
    if (n && p == NULL) {
        printf("test_msgpack: out of memory\n");
        exit(2);
    }
    if (n && src)
        memcpy(p, src, n);
    return p;
}

/* Finishes w and returns an exactly-sized copy of the output (the writer's
 * own buffer may be larger, which would hide over-reads). Caller frees it. */
static uint8_t *take_at(hm_mp_writer_t *w, size_t *len, int line)
{
    uint8_t *out = NULL, *copy;
    check_eq(hm_mp_writer_finish(w, &out, len), 0, line, "hm_mp_writer_finish");
    copy = dup_exact(out, *len);
    free(out);
    return copy;
}
#define TAKE(w, len) take_at((w), (len), __LINE__)

/* Deterministic NUL-terminated filler text of n bytes. */
static char *make_text(size_t n)
{
    char *s = (char *)dup_exact(NULL, n + 1);
    size_t i;
    for (i = 0; i < n; i++)
        s[i] = (char)('a' + (i * 7u) % 26u);
    s[n] = '\0';
    return s;
}

/* ---- exact encodings (msgpack spec) ------------------------------------- */

static void test_exact_encodings(void)
{
    char *s = make_text(65536);

    EXPECT_ENC(hm_mp_write_nil(w), 0xc0);
    EXPECT_ENC(hm_mp_write_bool(w, 0), 0xc2);
    EXPECT_ENC(hm_mp_write_bool(w, 42), 0xc3);
    EXPECT_ENC(hm_mp_write_cstr(w, NULL), 0xc0);

    /* integers: smallest encoding, non-negative values unsigned */
    EXPECT_ENC(hm_mp_write_int(w, 0), 0x00);
    EXPECT_ENC(hm_mp_write_int(w, 127), 0x7f);
    EXPECT_ENC(hm_mp_write_int(w, -1), 0xff);
    EXPECT_ENC(hm_mp_write_int(w, -32), 0xe0);
    EXPECT_ENC(hm_mp_write_int(w, -33), 0xd0, 0xdf);
    EXPECT_ENC(hm_mp_write_int(w, -128), 0xd0, 0x80);
    EXPECT_ENC(hm_mp_write_int(w, -129), 0xd1, 0xff, 0x7f);
    EXPECT_ENC(hm_mp_write_int(w, -32768), 0xd1, 0x80, 0x00);
    EXPECT_ENC(hm_mp_write_int(w, -32769), 0xd2, 0xff, 0xff, 0x7f, 0xff);
    EXPECT_ENC(hm_mp_write_int(w, INT32_MIN), 0xd2, 0x80, 0x00, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_int(w, (int64_t)INT32_MIN - 1), 0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff);
    EXPECT_ENC(hm_mp_write_int(w, INT64_MIN), 0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_int(w, 128), 0xcc, 0x80);
    EXPECT_ENC(hm_mp_write_int(w, 255), 0xcc, 0xff);
    EXPECT_ENC(hm_mp_write_int(w, 256), 0xcd, 0x01, 0x00);
    EXPECT_ENC(hm_mp_write_int(w, 65535), 0xcd, 0xff, 0xff);
    EXPECT_ENC(hm_mp_write_int(w, 65536), 0xce, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_uint(w, 4294967295u), 0xce, 0xff, 0xff, 0xff, 0xff);
    EXPECT_ENC(hm_mp_write_uint(w, 4294967296u), 0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_int(w, INT64_MAX), 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    EXPECT_ENC(hm_mp_write_uint(w, UINT64_MAX), 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

    /* floats */
    EXPECT_ENC(hm_mp_write_double(w, 1.5), 0xcb, 0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_double(w, 0.1), 0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a);
    EXPECT_ENC(hm_mp_write_double(w, -2.0), 0xcb, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_float(w, 1.5f), 0xca, 0x3f, 0xc0, 0x00, 0x00);

    /* str / bin / ext */
    EXPECT_ENC(hm_mp_write_str(w, NULL, 0), 0xa0);
    EXPECT_ENC(hm_mp_write_cstr(w, "abc"), 0xa3, 0x61, 0x62, 0x63);
    EXPECT_ENC(hm_mp_write_str(w, "abcdef", 2), 0xa2, 0x61, 0x62);
    EXPECT_ENC(hm_mp_write_str(w, s, 31); KEEP(2), 0xbf, 0x61);
    EXPECT_ENC(hm_mp_write_str(w, s, 32); KEEP(3), 0xd9, 0x20, 0x61);
    EXPECT_ENC(hm_mp_write_str(w, s, 255); KEEP(2), 0xd9, 0xff);
    EXPECT_ENC(hm_mp_write_str(w, s, 256); KEEP(3), 0xda, 0x01, 0x00);
    EXPECT_ENC(hm_mp_write_str(w, s, 65535); KEEP(3), 0xda, 0xff, 0xff);
    EXPECT_ENC(hm_mp_write_str(w, s, 65536); KEEP(5), 0xdb, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_bin(w, NULL, 0), 0xc4, 0x00);
    EXPECT_ENC(hm_mp_write_bin(w, "\x01\x02", 2), 0xc4, 0x02, 0x01, 0x02);
    EXPECT_ENC(hm_mp_write_bin(w, s, 256); KEEP(3), 0xc5, 0x01, 0x00);
    EXPECT_ENC(hm_mp_write_bin(w, s, 65536); KEEP(5), 0xc6, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_ext(w, 5, "\xaa", 1), 0xd4, 0x05, 0xaa);
    EXPECT_ENC(hm_mp_write_ext(w, -1, "\x01\x02", 2), 0xd5, 0xff, 0x01, 0x02);
    EXPECT_ENC(hm_mp_write_ext(w, 7, "xyz", 3), 0xc7, 0x03, 0x07, 0x78, 0x79, 0x7a);
    EXPECT_ENC(hm_mp_write_ext(w, 7, NULL, 0), 0xc7, 0x00, 0x07);
    free(s);

    /* container headers (the writer does not check the element count) */
    EXPECT_ENC(hm_mp_write_array(w, 0), 0x90);
    EXPECT_ENC(hm_mp_write_array(w, 2); hm_mp_write_int(w, 1); hm_mp_write_int(w, 2), 0x92, 0x01, 0x02);
    EXPECT_ENC(hm_mp_write_array(w, 15), 0x9f);
    EXPECT_ENC(hm_mp_write_array(w, 16), 0xdc, 0x00, 0x10);
    EXPECT_ENC(hm_mp_write_array(w, 65536), 0xdd, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_map(w, 0), 0x80);
    EXPECT_ENC(hm_mp_write_map(w, 15), 0x8f);
    EXPECT_ENC(hm_mp_write_map(w, 16), 0xde, 0x00, 0x10);
    EXPECT_ENC(hm_mp_write_map(w, 65536), 0xdf, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_map(w, 0xffffffffu), 0xdf, 0xff, 0xff, 0xff, 0xff);
    EXPECT_ENC(hm_mp_write_array(w, 2); hm_mp_write_raw(w, "\xc3\x05", 2); hm_mp_write_raw(w, NULL, 0),
               0x92, 0xc3, 0x05);

    /* the header's own example: {"ok": true, "items": [1, -2, 3.5], "name": "x"} */
    EXPECT_ENC(hm_mp_write_map(w, 3);
               hm_mp_write_cstr(w, "ok"); hm_mp_write_bool(w, 1);
               hm_mp_write_cstr(w, "items"); hm_mp_write_array(w, 3);
               hm_mp_write_int(w, 1); hm_mp_write_int(w, -2); hm_mp_write_double(w, 3.5);
               hm_mp_write_cstr(w, "name"); hm_mp_write_str(w, "xyz", 1),
               0x83, 0xa2, 0x6f, 0x6b, 0xc3, 0xa5, 0x69, 0x74, 0x65, 0x6d, 0x73,
               0x93, 0x01, 0xfe, 0xcb, 0x40, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
               0xa4, 0x6e, 0x61, 0x6d, 0x65, 0xa1, 0x78);
}

/* ---- round trips at every format boundary ------------------------------- */

typedef struct {
    int64_t v;
    size_t size; /* expected encoded size */
} int_case_t;

static void test_int_round_trips(void)
{
    static const int_case_t cases[] = {
        {0, 1}, {-1, 1}, {-32, 1}, {-33, 2}, {-128, 2}, {-129, 3}, {-32768, 3}, {-32769, 5},
        {INT32_MIN, 5}, {(int64_t)INT32_MIN - 1, 9}, {INT64_MIN, 9}, {127, 1}, {128, 2},
        {255, 2}, {256, 3}, {65535, 3}, {65536, 5}, {4294967295LL, 5}, {4294967296LL, 9},
        {INT64_MAX, 9}};
    static const uint64_t too_big[] = {(uint64_t)INT64_MAX + 1u, UINT64_MAX};
    hm_mp_writer_t w;
    hm_mp_reader_t r;
    uint8_t *buf;
    size_t k, len;

    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t v = cases[k].v, got = 12345;
        uint64_t u = 0;
        double d = 0.0;

        hm_mp_writer_init(&w);
        hm_mp_write_int(&w, v);
        buf = TAKE(&w, &len);
        CHECK_EQ(len, cases[k].size);
        hm_mp_reader_init(&r, buf, len);
        CHECK(hm_mp_peek(&r) == (v < 0 ? HM_MP_INT : HM_MP_UINT));
        CHECK(hm_mp_read_int(&r, &got) == 0 && got == v);
        CHECK_EQ(hm_mp_reader_remaining(&r), 0);

        hm_mp_reader_init(&r, buf, len); /* read_uint: RANGE for negatives, cursor stays */
        if (v >= 0)
            CHECK(hm_mp_read_uint(&r, &u) == 0 && u == (uint64_t)v);
        else
            CHECK_FAILS(hm_mp_read_uint(&r, &u), r, HM_MP_ERR_RANGE);
        hm_mp_reader_init(&r, buf, len); /* read_double converts any integer */
        CHECK(hm_mp_read_double(&r, &d) == 0 && d == (double)v);
        free(buf);
    }

    for (k = 0; k < 2; k++) { /* 2^63 and UINT64_MAX: read_uint only */
        uint64_t got = 1;
        hm_mp_writer_init(&w);
        hm_mp_write_uint(&w, too_big[k]);
        buf = TAKE(&w, &len);
        hm_mp_reader_init(&r, buf, len);
        CHECK_FAILS(hm_mp_read_int(&r, NULL), r, HM_MP_ERR_RANGE);
        CHECK(r.p == buf);
        r.error = 0;
        CHECK(hm_mp_read_uint(&r, &got) == 0 && got == too_big[k]);
        CHECK_EQ(hm_mp_reader_remaining(&r), 0);
        free(buf);
    }
}

static void test_str_bin_round_trips(void)
{
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536, 70000};
    char *text = make_text(70000);
    hm_mp_writer_t w;
    hm_mp_reader_t r;
    uint8_t *buf;
    size_t k, len;

    for (k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k], got_len = 1;
        size_t str_hdr = n <= 31 ? 1 : n <= 255 ? 2 : n <= 65535 ? 3 : 5;
        size_t bin_hdr = n <= 255 ? 2 : n <= 65535 ? 3 : 5;
        const char *sp = NULL;
        const uint8_t *bp = NULL;

        hm_mp_writer_init(&w);
        hm_mp_write_str(&w, text, n);
        hm_mp_write_bin(&w, text, n);
        buf = TAKE(&w, &len);
        CHECK_EQ(len, str_hdr + n + bin_hdr + n);
        hm_mp_reader_init(&r, buf, len);
        CHECK(hm_mp_peek(&r) == HM_MP_STR);
        CHECK(hm_mp_read_bin(&r, &bp, &got_len) == -1 && r.error == HM_MP_ERR_TYPE);
        r.error = 0;
        CHECK(hm_mp_read_str(&r, &sp, &got_len) == 0 && got_len == n);
        CHECK(sp == (const char *)buf + str_hdr); /* zero-copy */
        CHECK(n == 0 || memcmp(sp, text, n) == 0);
        CHECK(hm_mp_peek(&r) == HM_MP_BIN);
        CHECK(hm_mp_read_bin(&r, &bp, &got_len) == 0 && got_len == n);
        CHECK(n == 0 || memcmp(bp, text, n) == 0);
        CHECK_EQ(hm_mp_reader_remaining(&r), 0);
        free(buf);
    }
    free(text);
}

/* Arrays of n fixints and maps of n fixint -> negative fixint pairs, each
 * followed by a nil, for counts around the fixarray/array16/array32 limits. */
static void test_container_round_trips(void)
{
    static const uint32_t counts[] = {0, 1, 15, 16, 65535, 65536};
    hm_mp_writer_t w;
    hm_mp_reader_t r;
    uint8_t *buf;
    size_t k, len;
    int as_map;

    for (k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        for (as_map = 0; as_map <= 1; as_map++) {
            uint32_t n = counts[k], i, got_n = 0, bad = 0;
            size_t hdr = n <= 15 ? 1 : n <= 65535 ? 3 : 5;

            hm_mp_writer_init(&w);
            if (as_map)
                hm_mp_write_map(&w, n);
            else
                hm_mp_write_array(&w, n);
            for (i = 0; i < n; i++) {
                hm_mp_write_uint(&w, i % 128u);
                if (as_map)
                    hm_mp_write_int(&w, -(int64_t)(i % 32u) - 1);
            }
            hm_mp_write_nil(&w);
            buf = TAKE(&w, &len);
            CHECK_EQ(len, hdr + (as_map ? 2u : 1u) * n + 1u);

            hm_mp_reader_init(&r, buf, len);
            CHECK(hm_mp_peek(&r) == (as_map ? HM_MP_MAP : HM_MP_ARRAY));
            CHECK_EQ(as_map ? hm_mp_read_map(&r, &got_n) : hm_mp_read_array(&r, &got_n), 0);
            CHECK_EQ(got_n, n);
            for (i = 0; i < got_n; i++) {
                uint64_t u = 999;
                int64_t v = 0;
                if (hm_mp_read_uint(&r, &u) != 0 || u != i % 128u)
                    bad++;
                if (as_map && (hm_mp_read_int(&r, &v) != 0 || v != -(int64_t)(i % 32u) - 1))
                    bad++;
            }
            CHECK_EQ(bad, 0);
            CHECK_EQ(hm_mp_read_nil(&r), 0);
            hm_mp_reader_init(&r, buf, len); /* skip jumps over the whole container */
            CHECK(hm_mp_skip(&r) == 0 && hm_mp_reader_remaining(&r) == 1);
            free(buf);
        }
    }
}

/* ---- a complex message -------------------------------------------------- */

/* {"ok": true, "items": [1, -2, 3.5, -129, 65536, UINT64_MAX, INT64_MIN, 0.25f, nil, false],
 *  "name": <str8>, "blob": bin(00 c1 ff), "ext": ext(7, "abc"),
 *  "nested": {7: "int key", "deep": {"x": [[], {}, "y"]}}, "big": <str16>, "tail": -33} */
static uint8_t *complex_message(size_t *len)
{
    char *big = make_text(300);
    hm_mp_writer_t wr;
    hm_mp_writer_t *w = &wr;
    uint8_t *out;

    hm_mp_writer_init(w);
    hm_mp_write_map(w, 8);
    hm_mp_write_cstr(w, "ok"); hm_mp_write_bool(w, 1);
    hm_mp_write_cstr(w, "items"); hm_mp_write_array(w, 10);
        hm_mp_write_int(w, 1); hm_mp_write_int(w, -2); hm_mp_write_double(w, 3.5);
        hm_mp_write_int(w, -129); hm_mp_write_uint(w, 65536); hm_mp_write_uint(w, UINT64_MAX);
        hm_mp_write_int(w, INT64_MIN); hm_mp_write_float(w, 0.25f);
        hm_mp_write_nil(w); hm_mp_write_bool(w, 0);
    hm_mp_write_cstr(w, "name"); hm_mp_write_str(w, big, 40);
    hm_mp_write_cstr(w, "blob"); hm_mp_write_bin(w, "\x00\xc1\xff", 3);
    hm_mp_write_cstr(w, "ext"); hm_mp_write_ext(w, 7, "abc", 3);
    hm_mp_write_cstr(w, "nested"); hm_mp_write_map(w, 2);
        hm_mp_write_int(w, 7); hm_mp_write_cstr(w, "int key");
        hm_mp_write_cstr(w, "deep"); hm_mp_write_map(w, 1);
            hm_mp_write_cstr(w, "x"); hm_mp_write_array(w, 3);
                hm_mp_write_array(w, 0); hm_mp_write_map(w, 0); hm_mp_write_cstr(w, "y");
    hm_mp_write_cstr(w, "big"); hm_mp_write_str(w, big, 300);
    hm_mp_write_cstr(w, "tail"); hm_mp_write_int(w, -33);
    free(big);
    out = TAKE(w, len);
    return out;
}

/* Reads one value of any type with the typed read functions. */
static int walk(hm_mp_reader_t *r, int depth)
{
    uint32_t n = 0;
    uint64_t count, i; /* elements of a container */
    if (depth > 16)
        return -1;
    switch (hm_mp_peek(r)) {
    case HM_MP_NIL:   return hm_mp_read_nil(r);
    case HM_MP_BOOL:  return hm_mp_read_bool(r, NULL);
    case HM_MP_INT:   return hm_mp_read_int(r, NULL);
    case HM_MP_UINT:  return hm_mp_read_uint(r, NULL);
    case HM_MP_FLOAT: return hm_mp_read_double(r, NULL);
    case HM_MP_STR:   return hm_mp_read_str(r, NULL, NULL);
    case HM_MP_BIN:   return hm_mp_read_bin(r, NULL, NULL);
    case HM_MP_EXT:   return hm_mp_read_ext(r, NULL, NULL, NULL);
    case HM_MP_ARRAY: if (hm_mp_read_array(r, &n) != 0) return -1; count = n; break;
    case HM_MP_MAP:   if (hm_mp_read_map(r, &n) != 0) return -1; count = 2u * (uint64_t)n; break;
    default:          return -1; /* HM_MP_INVALID: error state, end of input or 0xc1 */
    }
    for (i = 0; i < count; i++)
        if (walk(r, depth + 1) != 0)
            return -1;
    return 0;
}

/* ---- hm_mp_map_find ----------------------------------------------------- */

static void test_map_find(void)
{
    hm_mp_writer_t w;
    hm_mp_reader_t r, v, saved;
    uint8_t *buf;
    size_t len, n;
    const char *s;
    int64_t i = 0;
    uint32_t cnt;

    /* {"a": 1, [1, 2]: "array key", "ab": {"inner": {"k": "deep"}}, "": 3, "z": nil} */
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 5);
    hm_mp_write_cstr(&w, "a"); hm_mp_write_int(&w, 1);
    hm_mp_write_array(&w, 2); hm_mp_write_int(&w, 1); hm_mp_write_int(&w, 2);
        hm_mp_write_cstr(&w, "array key");
    hm_mp_write_cstr(&w, "ab"); hm_mp_write_map(&w, 1);
        hm_mp_write_cstr(&w, "inner"); hm_mp_write_map(&w, 1);
            hm_mp_write_cstr(&w, "k"); hm_mp_write_cstr(&w, "deep");
    hm_mp_write_cstr(&w, ""); hm_mp_write_int(&w, 3);
    hm_mp_write_cstr(&w, "z"); hm_mp_write_nil(&w);
    buf = TAKE(&w, &len);

    hm_mp_reader_init(&r, buf, len);
    saved = r;
    CHECK(hm_mp_map_find(&r, "a", &v) == 0 && hm_mp_read_int(&v, &i) == 0 && i == 1);
    CHECK_EQ(hm_mp_map_find(&r, "ab", &v), 0); /* not confused with "a" */
    CHECK_EQ(hm_mp_map_find(&v, "inner", &v), 0); /* out may alias the input */
    CHECK_EQ(hm_mp_map_find(&v, "k", &v), 0);
    CHECK(hm_mp_read_str(&v, &s, &n) == 0 && hm_mp_str_eq(s, n, "deep"));
    CHECK(hm_mp_map_find(&r, "", &v) == 0 && hm_mp_read_int(&v, &i) == 0 && i == 3);
    CHECK(hm_mp_map_find(&r, "z", &v) == 0 && hm_mp_read_nil(&v) == 0); /* after a non-str key */

    /* not found: *out is an empty reader with NOT_FOUND, reads from it fail */
    CHECK_FAILS(hm_mp_map_find(&r, "missing", &v), v, HM_MP_ERR_NOT_FOUND);
    CHECK(hm_mp_reader_remaining(&v) == 0 && hm_mp_read_int(&v, &i) == -1);
    CHECK_EQ(hm_mp_map_find(&r, "array key", &v), -1); /* a value, not a key */
    CHECK_EQ(hm_mp_map_find(&r, "inner", &v), -1);     /* no recursion */
    CHECK_FAILS(hm_mp_map_find(&r, "k", &v), v, HM_MP_ERR_NOT_FOUND);
    CHECK_FAILS(hm_mp_map_find(&r, NULL, &v), v, HM_MP_ERR_ARG);
    CHECK(r.p == saved.p && r.end == saved.end && r.error == 0); /* r never modified */

    /* non-map input: positioned at the array key [1, 2] */
    CHECK(hm_mp_read_map(&r, &cnt) == 0 && hm_mp_skip(&r) == 0 && hm_mp_skip(&r) == 0);
    CHECK(hm_mp_peek(&r) == HM_MP_ARRAY);
    CHECK_FAILS(hm_mp_map_find(&r, "a", &v), v, HM_MP_ERR_TYPE);
    CHECK_EQ(r.error, 0);

    /* a truncated map reports the decoding error, not NOT_FOUND */
    hm_mp_reader_init(&r, buf, len - 1);
    CHECK_FAILS(hm_mp_map_find(&r, "missing", &v), v, HM_MP_ERR_EOF);
    free(buf);
    CHECK(hm_mp_str_eq("abc", 3, "abc") && hm_mp_str_eq(NULL, 0, "") && !hm_mp_str_eq("abc", 2, "abc"));
    CHECK(!hm_mp_str_eq("abc", 3, "ab") && !hm_mp_str_eq("a\0b", 3, "a") && !hm_mp_str_eq("a", 1, NULL));
}

/* ---- hm_mp_skip and the depth limit ------------------------------------- */

static void test_skip(void)
{
    static const uint8_t nested[] = {
        0x93,                                          /* [                  */
        0x82, 0xa1, 'k', 0x92, 0x01, 0x91, 0x91, 0x03, /*   {"k": [1, [[3]]], */
        0xa1, 'b', 0xc4, 0x02, 0xc1, 0xc1,             /*    "b": bin(c1 c1)}, */
        0x90,                                          /*   [],               */
        0xd6, 0x01, 0x00, 0x00, 0x00, 0x00,            /*   fixext4 ]         */
        0x07};                                         /* then the uint 7    */
    uint8_t *buf = dup_exact(nested, sizeof nested);
    hm_mp_writer_t w;
    hm_mp_reader_t r, v;
    uint64_t u = 0;
    uint32_t n;
    size_t len;
    int depth, k;

    hm_mp_reader_init(&r, buf, sizeof nested);
    CHECK_EQ(hm_mp_skip(&r), 0);
    CHECK(hm_mp_read_uint(&r, &u) == 0 && u == 7);
    CHECK_FAILS(hm_mp_skip(&r), r, HM_MP_ERR_EOF); /* nothing left */

    hm_mp_reader_init(&r, buf, sizeof nested); /* element by element */
    CHECK(hm_mp_read_array(&r, &n) == 0 && n == 3 && hm_mp_skip(&r) == 0);
    CHECK(hm_mp_peek(&r) == HM_MP_ARRAY && hm_mp_skip(&r) == 0);
    CHECK(hm_mp_peek(&r) == HM_MP_EXT && hm_mp_skip(&r) == 0);
    CHECK_EQ(hm_mp_reader_remaining(&r), 1);
    free(buf);

    /* depth limit: HM_MP_MAX_DEPTH nested arrays pass, one more fails in place */
    for (depth = HM_MP_MAX_DEPTH - 1; depth <= HM_MP_MAX_DEPTH + 1; depth++) {
        hm_mp_writer_init(&w);
        for (k = 0; k < depth; k++)
            hm_mp_write_array(&w, 1);
        hm_mp_write_nil(&w);
        hm_mp_write_uint(&w, 7);
        buf = TAKE(&w, &len);
        hm_mp_reader_init(&r, buf, len);
        if (depth <= HM_MP_MAX_DEPTH) {
            CHECK_EQ(hm_mp_skip(&r), 0);
            CHECK(hm_mp_read_uint(&r, &u) == 0 && u == 7);
        } else {
            CHECK_FAILS(hm_mp_skip(&r), r, HM_MP_ERR_DEPTH);
            CHECK(r.p == buf);
            CHECK_EQ(hm_mp_read_array(&r, &n), -1); /* sticky */
        }
        free(buf);
    }

    /* map_find must skip a too-deep value: {"a": {"a": ... 66 maps ... nil}, "b": 2} */
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 2);
    for (k = 0; k < HM_MP_MAX_DEPTH + 2; k++) {
        hm_mp_write_cstr(&w, "a");
        hm_mp_write_map(&w, 1);
    }
    hm_mp_write_cstr(&w, "a"); hm_mp_write_nil(&w);
    hm_mp_write_cstr(&w, "b"); hm_mp_write_int(&w, 2);
    buf = TAKE(&w, &len);
    hm_mp_reader_init(&r, buf, len);
    CHECK_EQ(hm_mp_map_find(&r, "a", &v), 0); /* found before any skip */
    CHECK_FAILS(hm_mp_map_find(&r, "b", &v), v, HM_MP_ERR_DEPTH);
    free(buf);
}

/* ---- the complex message, whole and truncated at every cut point ------- */

static void test_truncation(void)
{
    size_t len, cut, n = 0;
    uint8_t *full = complex_message(&len);
    int walk_ok = 0, skip_ok = 0, find_ok = 0, out_of_bounds = 0, moved = 0, no_error = 0;
    hm_mp_reader_t r, v;
    const uint8_t *p = NULL;
    int8_t ext_type = 0;
    int64_t i = 0;
    uint64_t u = 0;
    uint32_t cnt = 0;
    double d = 0.0;

    /* the whole message decodes, by walk, skip and map_find */
    CHECK(len > 400);
    hm_mp_reader_init(&r, full, len);
    CHECK(walk(&r, 0) == 0 && r.p == r.end);
    hm_mp_reader_init(&r, full, len);
    CHECK(hm_mp_skip(&r) == 0 && r.p == r.end);
    hm_mp_reader_init(&r, full, len);
    CHECK(hm_mp_map_find(&r, "items", &v) == 0 && hm_mp_read_array(&v, &cnt) == 0 && cnt == 10);
    CHECK(hm_mp_skip(&v) == 0 && hm_mp_read_int(&v, &i) == 0 && i == -2);
    CHECK_FAILS(hm_mp_read_int(&v, &i), v, HM_MP_ERR_TYPE); /* floats are not converted */
    v.error = 0; /* safe: a failed read does not move the cursor */
    CHECK(hm_mp_read_double(&v, &d) == 0 && d == 3.5);
    CHECK(hm_mp_read_int(&v, &i) == 0 && i == -129);
    CHECK(hm_mp_read_uint(&v, &u) == 0 && u == 65536);
    CHECK(hm_mp_read_uint(&v, &u) == 0 && u == UINT64_MAX);
    CHECK(hm_mp_read_int(&v, &i) == 0 && i == INT64_MIN);
    CHECK(hm_mp_read_double(&v, &d) == 0 && d == 0.25);
    CHECK(hm_mp_map_find(&r, "blob", &v) == 0 && hm_mp_read_bin(&v, &p, &n) == 0);
    CHECK(n == 3 && p[0] == 0x00 && p[1] == 0xc1 && p[2] == 0xff);
    CHECK(hm_mp_map_find(&r, "ext", &v) == 0 && hm_mp_read_ext(&v, &ext_type, &p, &n) == 0);
    CHECK(ext_type == 7 && n == 3 && memcmp(p, "abc", 3) == 0);
    CHECK(hm_mp_map_find(&r, "tail", &v) == 0 && hm_mp_read_int(&v, &i) == 0 && i == -33);
    CHECK_EQ(hm_mp_reader_remaining(&v), 0);

    /* every proper prefix fails, without moving the cursor or reading past the end */
    for (cut = 0; cut < len; cut++) {
        uint8_t *buf = dup_exact(full, cut); /* exactly cut bytes */
        const uint8_t *start;
        char *dup;

        hm_mp_reader_init(&r, buf, cut);
        start = r.p;
        if (walk(&r, 0) == 0)
            walk_ok++;
        if (r.p < start || r.p > r.end || r.end != start + cut)
            out_of_bounds++;

        hm_mp_reader_init(&r, buf, cut);
        if (hm_mp_skip(&r) == 0)
            skip_ok++;
        if (r.p != start || r.error == 0)
            moved++;

        /* "tail" is the last key: its value is cut off even when the key is not */
        hm_mp_reader_init(&r, buf, cut);
        if (hm_mp_map_find(&r, "tail", &v) == 0 && hm_mp_read_int(&v, NULL) == 0)
            find_ok++;
        if (hm_mp_map_find(&r, "missing", &v) == 0 || v.error != HM_MP_ERR_EOF)
            no_error++;

        dup = hm_mp_read_cstr_dup(&r); /* a map, or nothing: fails */
        if (dup != NULL || r.error == 0 || r.p != start)
            no_error++;
        free(dup);
        free(buf);
    }
    CHECK_EQ(walk_ok, 0);
    CHECK_EQ(skip_ok, 0);
    CHECK_EQ(find_ok, 0);
    CHECK_EQ(out_of_bounds, 0);
    CHECK_EQ(moved, 0);
    CHECK_EQ(no_error, 0);
    free(full);
}

/* ---- hostile headers ---------------------------------------------------- */

/* Runs EXPR (reading from `r`) over an exact copy of the bytes and expects
 * failure with ERR and an unmoved cursor; hm_mp_skip must fail the same way. */
#define EXPECT_BAD(ERR, EXPR, ...)                                          \
    do {                                                                    \
        static const uint8_t in_[] = {__VA_ARGS__};                         \
        uint8_t *b_ = dup_exact(in_, sizeof in_);                           \
        hm_mp_reader_t r;                                                   \
        hm_mp_reader_init(&r, b_, sizeof in_);                              \
        CHECK_FAILS(EXPR, r, ERR);                                          \
        CHECK(r.p == b_);                                                   \
        hm_mp_reader_init(&r, b_, sizeof in_);                              \
        CHECK_FAILS(hm_mp_skip(&r), r, ERR);                                \
        CHECK(r.p == b_);                                                   \
        free(b_);                                                           \
    } while (0)

static void test_hostile(void)
{
    static const uint8_t map_c1[] = {0x82, 0xa1, 'a', 0xc1, 0xa1, 'b', 0x02};
    static const uint8_t sticky[] = {0xa1, 'x', 0x05};
    hm_mp_reader_t r, v;
    uint32_t n;
    int64_t i = 0;
    uint8_t *b;

    /* lengths/counts far past the end of the input */
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_str(&r, NULL, NULL), 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c');
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_str(&r, NULL, NULL), 0xda, 0x00, 0x04, 'a', 'b', 'c');
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_str(&r, NULL, NULL), 0xa5, 'a');
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_bin(&r, NULL, NULL), 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00);
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_ext(&r, NULL, NULL, NULL), 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01);
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_ext(&r, NULL, NULL, NULL), 0xd8, 0x01, 0x00);
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_array(&r, &n), 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02);
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_map(&r, &n), 0xdf, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02);
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_map(&r, &n), 0x82, 0x01, 0x02, 0x03); /* 2 pairs need 4 */
    EXPECT_BAD(HM_MP_ERR_EOF, hm_mp_read_uint(&r, NULL), 0xcd, 0x01);

    /* the reserved byte 0xc1, alone and nested */
    EXPECT_BAD(HM_MP_ERR_MALFORMED, hm_mp_read_nil(&r), 0xc1);
    EXPECT_BAD(HM_MP_ERR_MALFORMED, hm_mp_read_int(&r, NULL), 0xc1, 0x00);
    EXPECT_BAD(HM_MP_ERR_MALFORMED, hm_mp_skip(&r), 0x92, 0x01, 0xc1);
    b = dup_exact("\xc1", 1);
    hm_mp_reader_init(&r, b, 1);
    CHECK(hm_mp_peek(&r) == HM_MP_INVALID);
    CHECK_EQ(r.error, 0); /* peek does not set errors */
    free(b);
    b = dup_exact(map_c1, sizeof map_c1);
    hm_mp_reader_init(&r, b, sizeof map_c1);
    CHECK_FAILS(hm_mp_map_find(&r, "b", &v), v, HM_MP_ERR_MALFORMED);
    free(b);

    /* sticky reader errors, and recovery by resetting r.error */
    b = dup_exact(sticky, sizeof sticky);
    hm_mp_reader_init(&r, b, sizeof sticky);
    CHECK_FAILS(hm_mp_read_int(&r, &i), r, HM_MP_ERR_TYPE);
    CHECK(hm_mp_peek(&r) == HM_MP_INVALID);
    CHECK_FAILS(hm_mp_read_str(&r, NULL, NULL), r, HM_MP_ERR_TYPE); /* sticky; first error wins */
    r.error = 0;
    CHECK_EQ(hm_mp_read_str(&r, NULL, NULL), 0);
    CHECK(hm_mp_read_int(&r, &i) == 0 && i == 5);
    free(b);

    hm_mp_reader_init(&r, NULL, 5); /* NULL input */
    CHECK_FAILS(hm_mp_read_nil(&r), r, HM_MP_ERR_ARG);
    hm_mp_reader_init(&r, NULL, 0);
    CHECK(r.error == 0 && hm_mp_peek(&r) == HM_MP_INVALID);
    CHECK_FAILS(hm_mp_read_nil(&r), r, HM_MP_ERR_EOF);
}

/* ---- writer ownership and errors ---------------------------------------- */

static void test_writer_ownership(void)
{
    hm_mp_writer_t w;
    uint8_t *out = (uint8_t *)&w; /* must be overwritten */
    size_t len = 99;

    /* nothing written: still a real allocation, of length 0 */
    hm_mp_writer_init(&w);
    CHECK(hm_mp_writer_finish(&w, &out, &len) == 0 && out != NULL && len == 0);
    free(out);

    /* finish hands the buffer over and resets the writer for reuse */
    hm_mp_write_cstr(&w, "first");
    CHECK_EQ(hm_mp_writer_finish(&w, &out, &len), 0);
    CHECK(w.data == NULL && w.len == 0 && w.cap == 0 && w.error == 0);
    CHECK(len == 6 && out[0] == 0xa5 && memcmp(out + 1, "first", 5) == 0);
    free(out); /* the writer no longer references it */
    hm_mp_write_int(&w, 1);
    CHECK(hm_mp_writer_finish(&w, &out, &len) == 0 && len == 1 && out[0] == 0x01);
    free(out);

    /* sticky errors: later writes are no-ops, finish fails and frees */
    hm_mp_write_array(&w, 2);
    hm_mp_write_str(&w, NULL, 3);
    CHECK_EQ(w.error, HM_MP_ERR_ARG);
    hm_mp_write_int(&w, 1);
    CHECK(w.len == 1 && w.error == HM_MP_ERR_ARG);
    CHECK_EQ(hm_mp_writer_finish(&w, &out, &len), -1);
    CHECK(out == NULL && len == 0 && w.data == NULL && w.error == 0);

    /* a length that does not fit 32 bits (rejected before any byte is read) */
    if ((size_t)-1 > 0xffffffffu) {
        size_t huge = (size_t)0xffffffffu + 1u;
        hm_mp_write_str(&w, "x", huge);
        CHECK_EQ(w.error, HM_MP_ERR_TOO_BIG);
        CHECK(hm_mp_writer_finish(&w, &out, &len) == -1 && out == NULL);
    }

    /* discard after real writes releases the buffer (LSan would notice) */
    hm_mp_write_cstr(&w, "discarded");
    CHECK(w.data != NULL && w.len == 10);
    hm_mp_writer_discard(&w);
    CHECK(w.data == NULL && w.len == 0 && w.error == 0);
}

/* ---- hm_mp_read_cstr_dup ------------------------------------------------ */

static void test_cstr_dup(void)
{
    static const uint8_t in[] = {0xa5, 'h', 'e', 'l', 'l', 'o', 0xa0, 0xa3, 'a', 0x00, 'b', 0x07, 0xa4, 'x'};
    uint8_t *b = dup_exact(in, sizeof in);
    hm_mp_reader_t r;
    char *s;

    hm_mp_reader_init(&r, b, sizeof in);
    s = hm_mp_read_cstr_dup(&r);
    CHECK(s != NULL && strcmp(s, "hello") == 0);
    free(s);
    s = hm_mp_read_cstr_dup(&r);
    CHECK(s != NULL && s[0] == '\0');
    free(s);
    s = hm_mp_read_cstr_dup(&r); /* embedded NUL: copied whole */
    CHECK(s != NULL && memcmp(s, "a\0b\0", 4) == 0);
    free(s);
    CHECK_EQ(hm_mp_reader_remaining(&r), 3);

    s = hm_mp_read_cstr_dup(&r); /* an int: type mismatch, cursor stays */
    CHECK(s == NULL && r.error == HM_MP_ERR_TYPE && hm_mp_reader_remaining(&r) == 3);
    r.error = 0;
    CHECK_EQ(hm_mp_read_uint(&r, NULL), 0);
    s = hm_mp_read_cstr_dup(&r); /* str of 4 with 1 byte left */
    CHECK(s == NULL && r.error == HM_MP_ERR_EOF && hm_mp_reader_remaining(&r) == 2);
    free(b);
}

int main(void)
{
    test_exact_encodings();
    test_int_round_trips();
    test_str_bin_round_trips();
    test_container_round_trips();
    test_map_find();
    test_skip();
    test_truncation();
    test_hostile();
    test_writer_ownership();
    test_cstr_dup();

    if (g_failures > 0) {
        printf("test_msgpack: %d of %d checks FAILED\n", g_failures, g_checks);
        return 1;
    }
    printf("test_msgpack: all %d checks passed\n", g_checks);
    return 0;
}
