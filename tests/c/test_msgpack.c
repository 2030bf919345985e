/*
 * test_msgpack.c - standalone tests for hm_plugin_sdk/include/hm_msgpack.h.
 *
 * Valid C99, C11 and C++17 (no designated initializers, compound literals or
 * VLAs; malloc results are cast). Build and run, e.g.:
 *
 *   gcc -std=c99 -Wall -Wextra -Werror -pedantic -O1 -Ihm_plugin_sdk/include \
 *       tests/c/test_msgpack.c -o test_msgpack && ./test_msgpack
 *
 * Also meant to be run under -fsanitize=address,undefined: truncated and
 * hostile inputs are copied into exactly-sized malloc blocks so that any read
 * past the end of the input is reported.
 *
 * Prints every failing check with its line number and returns 1; on success
 * prints "test_msgpack: all N checks passed" and returns 0.
 */
#include "hm_msgpack.h"

#include <stdio.h>

/* ------------------------------------------------------------------------ */
/* Check helpers                                                            */
/* ------------------------------------------------------------------------ */

static int g_checks = 0;
static int g_failures = 0;

static void check_true(int ok, int line, const char *expr)
{
    g_checks++;
    if (!ok) {
        g_failures++;
        printf("FAIL line %d: %s\n", line, expr);
    }
}

static void check_eq(long long got, long long want, int line, const char *expr)
{
    g_checks++;
    if (got != want) {
        g_failures++;
        printf("FAIL line %d: %s: got %lld, want %lld\n", line, expr, got, want);
    }
}

static void check_equ(unsigned long long got, unsigned long long want, int line, const char *expr)
{
    g_checks++;
    if (got != want) {
        g_failures++;
        printf("FAIL line %d: %s: got %llu, want %llu\n", line, expr, got, want);
    }
}

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
    size_t i;
    printf("    %s (%lu bytes):", label, (unsigned long)n);
    for (i = 0; i < n && i < 24; i++)
        printf(" %02x", p[i]);
    printf("%s\n", n > 24 ? " ..." : "");
}

static void check_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len,
                        int line, const char *expr)
{
    g_checks++;
    if (got_len != want_len || (want_len > 0 && memcmp(got, want, want_len) != 0)) {
        g_failures++;
        printf("FAIL line %d: %s: wrong encoding\n", line, expr);
        print_hex("got ", got, got_len);
        print_hex("want", want, want_len);
    }
}

#define CHECK(cond) check_true((cond) ? 1 : 0, __LINE__, #cond)
#define CHECK_EQ(a, b) check_eq((long long)(a), (long long)(b), __LINE__, #a " == " #b)
#define CHECK_EQU(a, b) check_equ((unsigned long long)(a), (unsigned long long)(b), __LINE__, #a " == " #b)

/* Runs STMT (which writes through `w`) on a fresh writer, finishes it and
 * compares the result with the listed bytes. */
#define EXPECT_ENC(STMT, ...)                                                    \
    do {                                                                         \
        static const uint8_t want_[] = {__VA_ARGS__};                            \
        hm_mp_writer_t wr_;                                                      \
        hm_mp_writer_t *w = &wr_;                                                \
        uint8_t *out_ = NULL;                                                    \
        size_t out_len_ = 0;                                                     \
        hm_mp_writer_init(w);                                                    \
        STMT;                                                                    \
        CHECK_EQ(hm_mp_writer_finish(w, &out_, &out_len_), 0);                   \
        check_bytes(out_, out_len_, want_, sizeof want_, __LINE__, #STMT);       \
        free(out_);                                                              \
    } while (0)

/* Finishes w into (out, len); the caller frees out. */
#define FINISH(w, out, len) CHECK_EQ(hm_mp_writer_finish((w), (out), (len)), 0)

/* Exactly-sized heap copy (NULL for n == 0), so ASan sees any over-read. */
static uint8_t *dup_exact(const uint8_t *src, size_t n)
{
    uint8_t *p;
    if (n == 0)
        return NULL;
    p = (uint8_t *)malloc(n);
    if (p == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    memcpy(p, src, n);
    return p;
}

/* Deterministic filler bytes for strings/binaries. */
static char *make_text(size_t n)
{
    char *s = (char *)malloc(n + 1);
    size_t i;
    if (s == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    for (i = 0; i < n; i++)
        s[i] = (char)('a' + (i * 7u) % 26u);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------------ */
/* Exact encodings (msgpack spec)                                           */
/* ------------------------------------------------------------------------ */

static void test_exact_encodings(void)
{
    char *s;

    EXPECT_ENC(hm_mp_write_nil(w), 0xc0);
    EXPECT_ENC(hm_mp_write_bool(w, 0), 0xc2);
    EXPECT_ENC(hm_mp_write_bool(w, 1), 0xc3);
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
    EXPECT_ENC(hm_mp_write_int(w, (int64_t)INT32_MIN - 1),
               0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff);
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

    /* strings, binaries, ext */
    EXPECT_ENC(hm_mp_write_str(w, NULL, 0), 0xa0);
    EXPECT_ENC(hm_mp_write_cstr(w, "abc"), 0xa3, 0x61, 0x62, 0x63);
    EXPECT_ENC(hm_mp_write_str(w, "abcdef", 2), 0xa2, 0x61, 0x62);
    EXPECT_ENC(hm_mp_write_bin(w, NULL, 0), 0xc4, 0x00);
    EXPECT_ENC(hm_mp_write_bin(w, "\x01\x02", 2), 0xc4, 0x02, 0x01, 0x02);
    EXPECT_ENC(hm_mp_write_ext(w, 5, "\xaa", 1), 0xd4, 0x05, 0xaa);
    EXPECT_ENC(hm_mp_write_ext(w, -1, "\x01\x02", 2), 0xd5, 0xff, 0x01, 0x02);
    EXPECT_ENC(hm_mp_write_ext(w, 7, "xyz", 3), 0xc7, 0x03, 0x07, 0x78, 0x79, 0x7a);
    EXPECT_ENC(hm_mp_write_ext(w, 7, NULL, 0), 0xc7, 0x00, 0x07);

    /* str8 / str16 / str32 headers (first bytes of the encoding) */
    /* (w->len = N keeps just the first N bytes of the encoding) */
    s = make_text(65536);
    EXPECT_ENC(hm_mp_write_str(w, s, 31); w->len = 1, 0xbf);
    EXPECT_ENC(hm_mp_write_str(w, s, 32); w->len = 3, 0xd9, 0x20, 0x61);
    EXPECT_ENC(hm_mp_write_str(w, s, 255); w->len = 2, 0xd9, 0xff);
    EXPECT_ENC(hm_mp_write_str(w, s, 256); w->len = 3, 0xda, 0x01, 0x00);
    EXPECT_ENC(hm_mp_write_str(w, s, 65535); w->len = 3, 0xda, 0xff, 0xff);
    EXPECT_ENC(hm_mp_write_str(w, s, 65536); w->len = 5, 0xdb, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_bin(w, s, 256); w->len = 3, 0xc5, 0x01, 0x00);
    EXPECT_ENC(hm_mp_write_bin(w, s, 65536); w->len = 5, 0xc6, 0x00, 0x01, 0x00, 0x00);
    free(s);

    /* container headers (the writer does not check the element count) */
    EXPECT_ENC(hm_mp_write_array(w, 0), 0x90);
    EXPECT_ENC(hm_mp_write_array(w, 3); hm_mp_write_int(w, 1); hm_mp_write_int(w, 2);
               hm_mp_write_int(w, 3), 0x93, 0x01, 0x02, 0x03);
    EXPECT_ENC(hm_mp_write_array(w, 15), 0x9f);
    EXPECT_ENC(hm_mp_write_array(w, 16), 0xdc, 0x00, 0x10);
    EXPECT_ENC(hm_mp_write_array(w, 65536), 0xdd, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_map(w, 0), 0x80);
    EXPECT_ENC(hm_mp_write_map(w, 15), 0x8f);
    EXPECT_ENC(hm_mp_write_map(w, 16), 0xde, 0x00, 0x10);
    EXPECT_ENC(hm_mp_write_map(w, 65536), 0xdf, 0x00, 0x01, 0x00, 0x00);
    EXPECT_ENC(hm_mp_write_map(w, 0xffffffffu), 0xdf, 0xff, 0xff, 0xff, 0xff);

    /* the header's own example: {"ok": true, "items": [1, -2, 3.5], "name": "x"} */
    EXPECT_ENC(hm_mp_write_map(w, 3);
               hm_mp_write_cstr(w, "ok"); hm_mp_write_bool(w, 1);
               hm_mp_write_cstr(w, "items"); hm_mp_write_array(w, 3);
               hm_mp_write_int(w, 1); hm_mp_write_int(w, -2); hm_mp_write_double(w, 3.5);
               hm_mp_write_cstr(w, "name"); hm_mp_write_str(w, "xyz", 1),
               0x83, 0xa2, 0x6f, 0x6b, 0xc3,
               0xa5, 0x69, 0x74, 0x65, 0x6d, 0x73, 0x93, 0x01, 0xfe,
               0xcb, 0x40, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
               0xa4, 0x6e, 0x61, 0x6d, 0x65, 0xa1, 0x78);

    /* write_raw appends verbatim */
    EXPECT_ENC(hm_mp_write_array(w, 2); hm_mp_write_raw(w, "\xc3\x05", 2); hm_mp_write_raw(w, NULL, 0),
               0x92, 0xc3, 0x05);
}

/* ------------------------------------------------------------------------ */
/* Round trips at every format boundary                                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    int64_t v;
    size_t size; /* expected encoded size */
} int_case_t;

static void test_int_round_trips(void)
{
    static const int_case_t cases[] = {
        {0, 1}, {1, 1}, {-1, 1}, {-32, 1}, {-33, 2}, {-128, 2}, {-129, 3},
        {-32768, 3}, {-32769, 5}, {INT32_MIN, 5}, {(int64_t)INT32_MIN - 1, 9},
        {127, 1}, {128, 2}, {255, 2}, {256, 3}, {65535, 3}, {65536, 5},
        {4294967295LL, 5}, {4294967296LL, 9}, {INT64_MAX, 9}, {INT64_MIN, 9}};
    static const uint64_t ucases[] = {0u, 127u, 128u, 255u, 256u, 65535u, 65536u,
                                      4294967295u, 4294967296u, UINT64_MAX};
    size_t k;

    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        hm_mp_writer_t w;
        hm_mp_reader_t r;
        uint8_t *buf;
        size_t len;
        int64_t got = 12345;
        double d = 0.0;

        hm_mp_writer_init(&w);
        hm_mp_write_int(&w, cases[k].v);
        FINISH(&w, &buf, &len);
        CHECK_EQU(len, cases[k].size);

        hm_mp_reader_init(&r, buf, len);
        CHECK(hm_mp_peek(&r) == (cases[k].v < 0 ? HM_MP_INT : HM_MP_UINT));
        CHECK_EQ(hm_mp_read_int(&r, &got), 0);
        CHECK_EQ(got, cases[k].v);
        CHECK_EQU(hm_mp_reader_remaining(&r), 0);

        /* read_uint: fine for v >= 0, RANGE for negatives (cursor stays) */
        hm_mp_reader_init(&r, buf, len);
        if (cases[k].v >= 0) {
            uint64_t u = 0;
            CHECK_EQ(hm_mp_read_uint(&r, &u), 0);
            CHECK_EQU(u, (uint64_t)cases[k].v);
        } else {
            CHECK_EQ(hm_mp_read_uint(&r, NULL), -1);
            CHECK_EQ(r.error, HM_MP_ERR_RANGE);
            CHECK(r.p == buf);
        }

        /* read_double converts any integer */
        hm_mp_reader_init(&r, buf, len);
        CHECK_EQ(hm_mp_read_double(&r, &d), 0);
        CHECK(d == (double)cases[k].v);
        free(buf);
    }

    for (k = 0; k < sizeof ucases / sizeof ucases[0]; k++) {
        hm_mp_writer_t w;
        hm_mp_reader_t r;
        uint8_t *buf;
        size_t len;
        uint64_t got = 1;
        int64_t sgot = 0;

        hm_mp_writer_init(&w);
        hm_mp_write_uint(&w, ucases[k]);
        FINISH(&w, &buf, &len);
        hm_mp_reader_init(&r, buf, len);
        CHECK_EQ(hm_mp_read_uint(&r, &got), 0);
        CHECK_EQU(got, ucases[k]);
        CHECK_EQU(hm_mp_reader_remaining(&r), 0);

        hm_mp_reader_init(&r, buf, len);
        if (ucases[k] > (uint64_t)INT64_MAX) {
            CHECK_EQ(hm_mp_read_int(&r, &sgot), -1); /* UINT64_MAX does not fit */
            CHECK_EQ(r.error, HM_MP_ERR_RANGE);
            CHECK(r.p == buf);
        } else {
            CHECK_EQ(hm_mp_read_int(&r, &sgot), 0);
            CHECK_EQ(sgot, (int64_t)ucases[k]);
        }
        free(buf);
    }
}

static void test_float_round_trips(void)
{
    static const double values[] = {0.0, -0.0, 1.5, -2.25, 0.1, 1e300, -1e-300};
    size_t k;
    for (k = 0; k < sizeof values / sizeof values[0]; k++) {
        hm_mp_writer_t w;
        hm_mp_reader_t r;
        uint8_t *buf;
        size_t len;
        double d = 42.0;
        int64_t i;

        hm_mp_writer_init(&w);
        hm_mp_write_double(&w, values[k]);
        hm_mp_write_float(&w, 0.25f);
        FINISH(&w, &buf, &len);
        CHECK_EQU(len, 9 + 5);
        hm_mp_reader_init(&r, buf, len);
        CHECK(hm_mp_peek(&r) == HM_MP_FLOAT);
        CHECK_EQ(hm_mp_read_int(&r, &i), -1); /* floats are not converted */
        CHECK_EQ(r.error, HM_MP_ERR_TYPE);
        r.error = 0; /* safe: the failed read did not move the cursor */
        CHECK_EQ(hm_mp_read_double(&r, &d), 0);
        CHECK(memcmp(&d, &values[k], sizeof d) == 0); /* bit-exact, keeps -0.0 */
        CHECK_EQ(hm_mp_read_double(&r, &d), 0);
        CHECK(d == 0.25);
        CHECK_EQU(hm_mp_reader_remaining(&r), 0);
        free(buf);
    }
}

static void test_str_bin_round_trips(void)
{
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536, 70000};
    char *text = make_text(70000);
    size_t k;

    for (k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k];
        size_t str_hdr = n <= 31 ? 1 : n <= 255 ? 2 : n <= 65535 ? 3 : 5;
        size_t bin_hdr = n <= 255 ? 2 : n <= 65535 ? 3 : 5;
        hm_mp_writer_t w;
        hm_mp_reader_t r;
        uint8_t *buf;
        size_t len, got_len = 1;
        const char *sp = NULL;
        const uint8_t *bp = NULL;

        hm_mp_writer_init(&w);
        hm_mp_write_str(&w, text, n);
        hm_mp_write_bin(&w, text, n);
        FINISH(&w, &buf, &len);
        CHECK_EQU(len, str_hdr + n + bin_hdr + n);

        hm_mp_reader_init(&r, buf, len);
        CHECK(hm_mp_peek(&r) == HM_MP_STR);
        CHECK_EQ(hm_mp_read_bin(&r, &bp, &got_len), -1); /* wrong type */
        CHECK_EQ(r.error, HM_MP_ERR_TYPE);
        r.error = 0;
        CHECK_EQ(hm_mp_read_str(&r, &sp, &got_len), 0);
        CHECK_EQU(got_len, n);
        CHECK(sp == (const char *)buf + str_hdr); /* zero-copy */
        CHECK(n == 0 || memcmp(sp, text, n) == 0);
        CHECK(hm_mp_peek(&r) == HM_MP_BIN);
        CHECK_EQ(hm_mp_read_bin(&r, &bp, &got_len), 0);
        CHECK_EQU(got_len, n);
        CHECK(n == 0 || memcmp(bp, text, n) == 0);
        CHECK_EQU(hm_mp_reader_remaining(&r), 0);
        free(buf);
    }
    free(text);
}

/* Writes an array (or map) of n elements (pairs), reads it back. */
static void container_round_trip(uint32_t n, int as_map)
{
    size_t hdr = n <= 15 ? 1 : n <= 65535 ? 3 : 5;
    hm_mp_writer_t w;
    hm_mp_reader_t r;
    uint8_t *buf;
    size_t len;
    uint32_t i, got_n = 0, bad = 0;

    hm_mp_writer_init(&w);
    if (as_map)
        hm_mp_write_map(&w, n);
    else
        hm_mp_write_array(&w, n);
    for (i = 0; i < n; i++) {
        hm_mp_write_uint(&w, i % 128u); /* fixint: one byte each */
        if (as_map)
            hm_mp_write_int(&w, -(int64_t)(i % 32u) - 1);
    }
    hm_mp_write_nil(&w); /* sentinel after the container */
    FINISH(&w, &buf, &len);
    CHECK_EQU(len, hdr + (as_map ? 2u : 1u) * n + 1u);

    hm_mp_reader_init(&r, buf, len);
    CHECK(hm_mp_peek(&r) == (as_map ? HM_MP_MAP : HM_MP_ARRAY));
    if (as_map)
        CHECK_EQ(hm_mp_read_map(&r, &got_n), 0);
    else
        CHECK_EQ(hm_mp_read_array(&r, &got_n), 0);
    CHECK_EQU(got_n, n);
    for (i = 0; i < got_n; i++) {
        uint64_t u = 999;
        int64_t v = 0;
        if (hm_mp_read_uint(&r, &u) != 0 || u != i % 128u)
            bad++;
        if (as_map && (hm_mp_read_int(&r, &v) != 0 || v != -(int64_t)(i % 32u) - 1))
            bad++;
    }
    CHECK_EQU(bad, 0);
    CHECK_EQ(hm_mp_read_nil(&r), 0);
    CHECK_EQ(r.error, 0);

    /* skip jumps over the whole container in one go */
    hm_mp_reader_init(&r, buf, len);
    CHECK_EQ(hm_mp_skip(&r), 0);
    CHECK_EQU(hm_mp_reader_remaining(&r), 1);
    free(buf);
}

static void test_container_round_trips(void)
{
    static const uint32_t counts[] = {0, 1, 15, 16, 65535, 65536};
    size_t k;
    for (k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        container_round_trip(counts[k], 0);
        container_round_trip(counts[k], 1);
    }
}

/* ------------------------------------------------------------------------ */
/* A complex message, decoded generically                                   */
/* ------------------------------------------------------------------------ */

static void write_complex(hm_mp_writer_t *w)
{
    static const uint8_t blob[3] = {0x00, 0xc1, 0xff};
    char *big = make_text(300);
    hm_mp_write_map(w, 8);
    hm_mp_write_cstr(w, "ok");
    hm_mp_write_bool(w, 1);
    hm_mp_write_cstr(w, "items");
    hm_mp_write_array(w, 10);
    hm_mp_write_int(w, 1);
    hm_mp_write_int(w, -2);
    hm_mp_write_double(w, 3.5);
    hm_mp_write_int(w, -129);
    hm_mp_write_uint(w, 65536);
    hm_mp_write_uint(w, UINT64_MAX);
    hm_mp_write_int(w, INT64_MIN);
    hm_mp_write_float(w, 0.25f);
    hm_mp_write_nil(w);
    hm_mp_write_bool(w, 0);
    hm_mp_write_cstr(w, "name");
    hm_mp_write_str(w, big, 40); /* str8 */
    hm_mp_write_cstr(w, "blob");
    hm_mp_write_bin(w, blob, sizeof blob);
    hm_mp_write_cstr(w, "ext");
    hm_mp_write_ext(w, 7, "abc", 3);
    hm_mp_write_cstr(w, "nested");
    hm_mp_write_map(w, 2);
    hm_mp_write_int(w, 7); /* a non-str key */
    hm_mp_write_cstr(w, "int key");
    hm_mp_write_cstr(w, "deep");
    hm_mp_write_map(w, 1);
    hm_mp_write_cstr(w, "x");
    hm_mp_write_array(w, 3);
    hm_mp_write_array(w, 0);
    hm_mp_write_map(w, 0);
    hm_mp_write_cstr(w, "y");
    hm_mp_write_cstr(w, "big");
    hm_mp_write_str(w, big, 300); /* str16 */
    hm_mp_write_cstr(w, "tail");
    hm_mp_write_int(w, -33);
    free(big);
}

/* Reads one value of any type with the typed read functions. */
static int walk(hm_mp_reader_t *r, int depth)
{
    uint32_t n = 0, i;
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
    case HM_MP_ARRAY:
        if (hm_mp_read_array(r, &n) != 0)
            return -1;
        for (i = 0; i < n; i++)
            if (walk(r, depth + 1) != 0)
                return -1;
        return 0;
    case HM_MP_MAP:
        if (hm_mp_read_map(r, &n) != 0)
            return -1;
        for (i = 0; i < n; i++)
            if (walk(r, depth + 1) != 0 || walk(r, depth + 1) != 0)
                return -1;
        return 0;
    case HM_MP_INVALID:
    default:
        return -1;
    }
}

static void test_complex_message(void)
{
    hm_mp_writer_t w;
    hm_mp_reader_t r, v, v2;
    uint8_t *buf;
    size_t len, n;
    const char *s;
    const uint8_t *p;
    int8_t ext_type = 0;
    int64_t i = 0;
    uint32_t cnt = 0;
    uint64_t u = 0;
    int b = 0;

    hm_mp_writer_init(&w);
    write_complex(&w);
    FINISH(&w, &buf, &len);

    hm_mp_reader_init(&r, buf, len);
    CHECK_EQ(walk(&r, 0), 0);
    CHECK_EQU(hm_mp_reader_remaining(&r), 0);
    hm_mp_reader_init(&r, buf, len);
    CHECK_EQ(hm_mp_skip(&r), 0);
    CHECK(r.p == r.end);

    /* spot checks by key */
    hm_mp_reader_init(&r, buf, len);
    CHECK_EQ(hm_mp_map_find(&r, "ok", &v), 0);
    CHECK_EQ(hm_mp_read_bool(&v, &b), 0);
    CHECK_EQ(b, 1);
    CHECK_EQ(hm_mp_map_find(&r, "items", &v), 0);
    CHECK_EQ(hm_mp_read_array(&v, &cnt), 0);
    CHECK_EQ(cnt, 10);
    CHECK_EQ(hm_mp_skip(&v) | hm_mp_skip(&v) | hm_mp_skip(&v), 0);
    CHECK_EQ(hm_mp_read_int(&v, &i), 0);
    CHECK_EQ(i, -129);
    CHECK_EQ(hm_mp_read_uint(&v, &u), 0);
    CHECK_EQU(u, 65536);
    CHECK_EQ(hm_mp_read_uint(&v, &u), 0);
    CHECK_EQU(u, UINT64_MAX);
    CHECK_EQ(hm_mp_read_int(&v, &i), 0);
    CHECK(i == INT64_MIN);
    CHECK_EQ(hm_mp_map_find(&r, "blob", &v), 0);
    CHECK_EQ(hm_mp_read_bin(&v, &p, &n), 0);
    CHECK(n == 3 && p[0] == 0x00 && p[1] == 0xc1 && p[2] == 0xff);
    CHECK_EQ(hm_mp_map_find(&r, "ext", &v), 0);
    CHECK_EQ(hm_mp_read_ext(&v, &ext_type, &p, &n), 0);
    CHECK(ext_type == 7 && n == 3 && memcmp(p, "abc", 3) == 0);
    CHECK_EQ(hm_mp_map_find(&r, "big", &v), 0);
    CHECK_EQ(hm_mp_read_str(&v, &s, &n), 0);
    CHECK_EQU(n, 300);
    CHECK_EQ(hm_mp_map_find(&r, "tail", &v), 0);
    CHECK_EQ(hm_mp_read_int(&v, &i), 0);
    CHECK_EQ(i, -33);
    CHECK_EQU(hm_mp_reader_remaining(&v), 0);

    /* nested lookups */
    CHECK_EQ(hm_mp_map_find(&r, "nested", &v), 0);
    CHECK_EQ(hm_mp_map_find(&v, "deep", &v2), 0);
    CHECK_EQ(hm_mp_map_find(&v2, "x", &v2), 0); /* out may alias the input */
    CHECK_EQ(hm_mp_read_array(&v2, &cnt), 0);
    CHECK_EQ(cnt, 3);
    CHECK_EQ(hm_mp_map_find(&v, "int key", &v2), -1); /* it is a value, not a key */
    CHECK_EQ(v2.error, HM_MP_ERR_NOT_FOUND);
    CHECK_EQ(hm_mp_map_find(&r, "x", &v2), -1); /* no recursion into nested maps */
    CHECK_EQ(v2.error, HM_MP_ERR_NOT_FOUND);
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* hm_mp_map_find                                                           */
/* ------------------------------------------------------------------------ */

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
    hm_mp_write_cstr(&w, "a");
    hm_mp_write_int(&w, 1);
    hm_mp_write_array(&w, 2);
    hm_mp_write_int(&w, 1);
    hm_mp_write_int(&w, 2);
    hm_mp_write_cstr(&w, "array key");
    hm_mp_write_cstr(&w, "ab");
    hm_mp_write_map(&w, 1);
    hm_mp_write_cstr(&w, "inner");
    hm_mp_write_map(&w, 1);
    hm_mp_write_cstr(&w, "k");
    hm_mp_write_cstr(&w, "deep");
    hm_mp_write_cstr(&w, "");
    hm_mp_write_int(&w, 3);
    hm_mp_write_cstr(&w, "z");
    hm_mp_write_nil(&w);
    FINISH(&w, &buf, &len);

    hm_mp_reader_init(&r, buf, len);
    saved = r;
    CHECK_EQ(hm_mp_map_find(&r, "a", &v), 0);
    CHECK_EQ(hm_mp_read_int(&v, &i), 0);
    CHECK_EQ(i, 1);
    CHECK_EQ(hm_mp_map_find(&r, "ab", &v), 0); /* not confused with "a" */
    CHECK_EQ(hm_mp_map_find(&v, "inner", &v), 0);
    CHECK_EQ(hm_mp_map_find(&v, "k", &v), 0);
    CHECK_EQ(hm_mp_read_str(&v, &s, &n), 0);
    CHECK(hm_mp_str_eq(s, n, "deep"));
    CHECK_EQ(hm_mp_map_find(&r, "", &v), 0);
    CHECK_EQ(hm_mp_read_int(&v, &i), 0);
    CHECK_EQ(i, 3);
    CHECK_EQ(hm_mp_map_find(&r, "z", &v), 0); /* after the non-str key */
    CHECK_EQ(hm_mp_read_nil(&v), 0);

    /* not found: empty reader with NOT_FOUND, reads from it fail */
    CHECK_EQ(hm_mp_map_find(&r, "missing", &v), -1);
    CHECK_EQ(v.error, HM_MP_ERR_NOT_FOUND);
    CHECK_EQU(hm_mp_reader_remaining(&v), 0);
    CHECK_EQ(hm_mp_read_int(&v, &i), -1);
    CHECK_EQ(hm_mp_map_find(&r, "array key", &v), -1);
    CHECK_EQ(hm_mp_map_find(&r, "inner", &v), -1);
    CHECK_EQ(hm_mp_map_find(&r, "k", &v), -1);
    CHECK_EQ(hm_mp_map_find(&r, NULL, &v), -1);
    CHECK_EQ(v.error, HM_MP_ERR_ARG);
    /* r itself is never modified */
    CHECK(r.p == saved.p && r.end == saved.end && r.error == 0);

    /* non-map input: the nested array [1, 2] */
    hm_mp_reader_init(&r, buf, len);
    CHECK_EQ(hm_mp_read_map(&r, &cnt), 0);
    CHECK_EQ(hm_mp_skip(&r) | hm_mp_skip(&r), 0);
    CHECK(hm_mp_peek(&r) == HM_MP_ARRAY);
    CHECK_EQ(hm_mp_map_find(&r, "a", &v), -1);
    CHECK_EQ(v.error, HM_MP_ERR_TYPE);
    CHECK_EQ(r.error, 0);

    /* a truncated map reports the decoding error, not NOT_FOUND */
    hm_mp_reader_init(&r, buf, len - 1);
    CHECK_EQ(hm_mp_map_find(&r, "missing", &v), -1);
    CHECK_EQ(v.error, HM_MP_ERR_EOF);

    /* a reader already in error state finds nothing */
    hm_mp_reader_init(&r, buf, len);
    r.error = HM_MP_ERR_TYPE;
    CHECK_EQ(hm_mp_map_find(&r, "a", &v), -1);
    CHECK_EQ(v.error, HM_MP_ERR_TYPE);
    free(buf);

    /* hm_mp_str_eq */
    CHECK(hm_mp_str_eq("abc", 3, "abc"));
    CHECK(!hm_mp_str_eq("abc", 2, "abc"));
    CHECK(!hm_mp_str_eq("abc", 3, "ab"));
    CHECK(hm_mp_str_eq("", 0, ""));
    CHECK(hm_mp_str_eq(NULL, 0, ""));
    CHECK(!hm_mp_str_eq("a\0b", 3, "a"));
    CHECK(!hm_mp_str_eq("abc", 3, NULL));
}

/* ------------------------------------------------------------------------ */
/* hm_mp_skip and the depth limit                                           */
/* ------------------------------------------------------------------------ */

/* depth nested 1-element arrays around a nil, followed by the byte 0x07. */
static uint8_t *nested_arrays(int depth, size_t *len)
{
    uint8_t *p = (uint8_t *)malloc((size_t)depth + 2);
    if (p == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    memset(p, 0x91, (size_t)depth);
    p[depth] = 0xc0;
    p[depth + 1] = 0x07;
    *len = (size_t)depth + 2;
    return p;
}

static void test_skip(void)
{
    static const uint8_t nested[] = {
        0x93,                                   /* [                        */
        0x82, 0xa1, 'k', 0x92, 0x01, 0x91, 0x91, 0x03, /* {"k": [1, [[3]]], */
        0xa1, 'b', 0xc4, 0x02, 0xc1, 0xc1,      /*  "b": bin(c1 c1)},       */
        0x90,                                   /* [],                      */
        0xd6, 0x01, 0x00, 0x00, 0x00, 0x00,     /* fixext4 ]                */
        0x07};                                  /* then the uint 7          */
    hm_mp_reader_t r;
    uint8_t *buf;
    size_t len;
    uint64_t u = 0;
    uint32_t n;
    hm_mp_writer_t w;
    int k;

    buf = dup_exact(nested, sizeof nested);
    hm_mp_reader_init(&r, buf, sizeof nested);
    CHECK_EQ(hm_mp_skip(&r), 0);
    CHECK_EQ(hm_mp_read_uint(&r, &u), 0);
    CHECK_EQU(u, 7);
    CHECK_EQ(hm_mp_skip(&r), -1); /* nothing left */
    CHECK_EQ(r.error, HM_MP_ERR_EOF);

    /* skip inside a container, element by element */
    hm_mp_reader_init(&r, buf, sizeof nested);
    CHECK_EQ(hm_mp_read_array(&r, &n), 0);
    CHECK_EQ(n, 3);
    CHECK_EQ(hm_mp_skip(&r), 0);
    CHECK(hm_mp_peek(&r) == HM_MP_ARRAY);
    CHECK_EQ(hm_mp_skip(&r), 0);
    CHECK(hm_mp_peek(&r) == HM_MP_EXT);
    CHECK_EQ(hm_mp_skip(&r), 0);
    CHECK_EQU(hm_mp_reader_remaining(&r), 1);
    free(buf);

    /* depth limit: HM_MP_MAX_DEPTH levels pass, one more fails in place */
    for (k = HM_MP_MAX_DEPTH - 1; k <= HM_MP_MAX_DEPTH + 1; k++) {
        buf = nested_arrays(k, &len);
        hm_mp_reader_init(&r, buf, len);
        if (k <= HM_MP_MAX_DEPTH) {
            CHECK_EQ(hm_mp_skip(&r), 0);
            CHECK_EQ(hm_mp_read_uint(&r, &u), 0);
            CHECK_EQU(u, 7);
        } else {
            CHECK_EQ(hm_mp_skip(&r), -1);
            CHECK_EQ(r.error, HM_MP_ERR_DEPTH);
            CHECK(r.p == buf);
            CHECK_EQ(hm_mp_read_array(&r, &n), -1); /* sticky */
        }
        free(buf);
    }

    /* map_find skipping a too-deep value reports DEPTH */
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 2);
    hm_mp_write_cstr(&w, "a");
    for (k = 0; k < HM_MP_MAX_DEPTH + 1; k++) {
        hm_mp_write_map(&w, 1);
        hm_mp_write_cstr(&w, "a");
    }
    hm_mp_write_nil(&w);
    hm_mp_write_cstr(&w, "b");
    hm_mp_write_int(&w, 2);
    FINISH(&w, &buf, &len);
    {
        hm_mp_reader_t v;
        hm_mp_reader_init(&r, buf, len);
        CHECK_EQ(hm_mp_map_find(&r, "a", &v), 0); /* found before any skip */
        CHECK_EQ(hm_mp_map_find(&r, "b", &v), -1);
        CHECK_EQ(v.error, HM_MP_ERR_DEPTH);
    }
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* Truncated input at every cut point                                       */
/* ------------------------------------------------------------------------ */

static void test_truncation(void)
{
    hm_mp_writer_t w;
    uint8_t *full;
    size_t len, cut;
    int walk_ok = 0, skip_ok = 0, find_ok = 0, bounds_bad = 0, moved = 0, no_error = 0;

    hm_mp_writer_init(&w);
    write_complex(&w);
    FINISH(&w, &full, &len);
    CHECK(len > 400);

    for (cut = 0; cut < len; cut++) {
        uint8_t *buf = dup_exact(full, cut);
        hm_mp_reader_t r, v;
        const uint8_t *start;
        char *dup;

        hm_mp_reader_init(&r, buf, cut);
        start = r.p;
        if (walk(&r, 0) == 0)
            walk_ok++;
        if (r.p < start || r.p > r.end || r.end != start + cut)
            bounds_bad++;

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

        hm_mp_reader_init(&r, buf, cut);
        dup = hm_mp_read_cstr_dup(&r); /* not a str: fails (or EOF) */
        if (dup != NULL || r.error == 0)
            no_error++;
        free(dup);
        free(buf);
    }
    CHECK_EQ(walk_ok, 0);
    CHECK_EQ(skip_ok, 0);
    CHECK_EQ(find_ok, 0);
    CHECK_EQ(bounds_bad, 0);
    CHECK_EQ(moved, 0);
    CHECK_EQ(no_error, 0);

    /* cuts inside single scalars: every read fails with EOF and stays put */
    for (cut = 1; cut < 9; cut++) {
        static const uint8_t d[] = {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
        static const uint8_t q[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        uint8_t *b1 = dup_exact(d, cut), *b2 = dup_exact(q, cut);
        hm_mp_reader_t r1, r2;
        double x;
        uint64_t u;
        hm_mp_reader_init(&r1, b1, cut);
        hm_mp_reader_init(&r2, b2, cut);
        CHECK(hm_mp_read_double(&r1, &x) == -1 && r1.error == HM_MP_ERR_EOF && r1.p == b1);
        CHECK(hm_mp_read_uint(&r2, &u) == -1 && r2.error == HM_MP_ERR_EOF && r2.p == b2);
        free(b1);
        free(b2);
    }
    free(full);
}

/* ------------------------------------------------------------------------ */
/* Hostile headers                                                          */
/* ------------------------------------------------------------------------ */

/* Runs read `EXPR` (using reader `r`) over an exact copy of the bytes and
 * expects failure with error ERR and an unmoved cursor; skip must agree. */
#define EXPECT_BAD(ERR, EXPR, ...)                                               \
    do {                                                                         \
        static const uint8_t in_[] = {__VA_ARGS__};                              \
        uint8_t *b_ = dup_exact(in_, sizeof in_);                                \
        hm_mp_reader_t r;                                                        \
        hm_mp_reader_init(&r, b_, sizeof in_);                                   \
        CHECK_EQ(EXPR, -1);                                                      \
        CHECK_EQ(r.error, ERR);                                                  \
        CHECK(r.p == b_);                                                        \
        hm_mp_reader_init(&r, b_, sizeof in_);                                   \
        CHECK_EQ(hm_mp_skip(&r), -1);                                            \
        CHECK_EQ(r.error, ERR);                                                  \
        free(b_);                                                                \
    } while (0)

static void test_hostile(void)
{
    hm_mp_reader_t r;
    uint32_t n;

    /* 32-bit lengths/counts far past the end of the input */
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
    {
        static const uint8_t c1[] = {0xc1};
        static const uint8_t m[] = {0x82, 0xa1, 'a', 0xc1, 0xa1, 'b', 0x02};
        uint8_t *b = dup_exact(c1, 1);
        hm_mp_reader_t v;
        hm_mp_reader_init(&r, b, 1);
        CHECK(hm_mp_peek(&r) == HM_MP_INVALID);
        CHECK_EQ(r.error, 0); /* peek does not set errors */
        free(b);
        b = dup_exact(m, sizeof m);
        hm_mp_reader_init(&r, b, sizeof m);
        CHECK_EQ(hm_mp_map_find(&r, "b", &v), -1);
        CHECK_EQ(v.error, HM_MP_ERR_MALFORMED);
        free(b);
    }

    /* sticky reader errors, and recovery by resetting r.error */
    {
        static const uint8_t in[] = {0xa1, 'x', 0x05};
        uint8_t *b = dup_exact(in, sizeof in);
        int64_t i = 0;
        hm_mp_reader_init(&r, b, sizeof in);
        CHECK_EQ(hm_mp_read_int(&r, &i), -1);
        CHECK_EQ(r.error, HM_MP_ERR_TYPE);
        CHECK_EQ(hm_mp_read_str(&r, NULL, NULL), -1); /* right type, but sticky */
        CHECK(hm_mp_peek(&r) == HM_MP_INVALID);
        CHECK_EQ(r.error, HM_MP_ERR_TYPE); /* first error wins */
        r.error = 0;
        CHECK_EQ(hm_mp_read_str(&r, NULL, NULL), 0);
        CHECK_EQ(hm_mp_read_int(&r, &i), 0);
        CHECK_EQ(i, 5);
        free(b);
    }

    /* NULL input */
    hm_mp_reader_init(&r, NULL, 5);
    CHECK_EQ(r.error, HM_MP_ERR_ARG);
    CHECK_EQ(hm_mp_read_nil(&r), -1);
    hm_mp_reader_init(&r, NULL, 0);
    CHECK_EQ(r.error, 0);
    CHECK(hm_mp_peek(&r) == HM_MP_INVALID);
    CHECK_EQ(hm_mp_read_nil(&r), -1);
    CHECK_EQ(r.error, HM_MP_ERR_EOF);
    CHECK(strcmp(hm_mp_error_string(HM_MP_ERR_EOF), "truncated input") == 0);
    CHECK(hm_mp_error_string(12345) != NULL);
}

/* ------------------------------------------------------------------------ */
/* Writer ownership and errors; hm_mp_read_cstr_dup                         */
/* ------------------------------------------------------------------------ */

static void test_writer_ownership(void)
{
    hm_mp_writer_t w;
    uint8_t *out = (uint8_t *)&w; /* must be overwritten */
    size_t len = 99;

    /* nothing written: still a real allocation, length 0 */
    hm_mp_writer_init(&w);
    CHECK_EQ(hm_mp_writer_finish(&w, &out, &len), 0);
    CHECK(out != NULL);
    CHECK_EQU(len, 0);
    free(out);

    /* finish hands the buffer over and resets the writer for reuse */
    hm_mp_writer_init(&w);
    hm_mp_write_cstr(&w, "first");
    CHECK_EQ(hm_mp_writer_finish(&w, &out, &len), 0);
    CHECK(w.data == NULL && w.len == 0 && w.cap == 0 && w.error == 0);
    CHECK_EQU(len, 6);
    hm_mp_write_int(&w, 1);
    free(out); /* the writer no longer references it */
    CHECK_EQ(hm_mp_writer_finish(&w, &out, &len), 0);
    CHECK(len == 1 && out[0] == 0x01);
    free(out);

    /* sticky errors: later writes are no-ops, finish fails and frees */
    hm_mp_writer_init(&w);
    hm_mp_write_array(&w, 2);
    hm_mp_write_str(&w, NULL, 3);
    CHECK_EQ(w.error, HM_MP_ERR_ARG);
    len = w.len;
    hm_mp_write_int(&w, 1);
    hm_mp_write_bin(&w, NULL, 1);
    CHECK_EQU(w.len, len);
    CHECK_EQ(w.error, HM_MP_ERR_ARG);
    CHECK_EQ(hm_mp_writer_finish(&w, &out, &len), -1);
    CHECK(out == NULL && len == 0);
    CHECK(w.data == NULL && w.error == 0);

    hm_mp_writer_init(&w);
    hm_mp_write_ext(&w, 1, NULL, 2);
    CHECK_EQ(w.error, HM_MP_ERR_ARG);
    hm_mp_writer_discard(&w);
    hm_mp_write_raw(&w, NULL, 1);
    CHECK_EQ(w.error, HM_MP_ERR_ARG);
    hm_mp_writer_discard(&w);
    CHECK(w.data == NULL && w.error == 0);

    /* a length that does not fit 32 bits (checked before any byte is read) */
    if ((size_t)-1 > 0xffffffffu) {
        size_t huge = (size_t)0xffffffffu + 1u;
        hm_mp_writer_init(&w);
        hm_mp_write_str(&w, "x", huge);
        CHECK_EQ(w.error, HM_MP_ERR_TOO_BIG);
        CHECK_EQ(hm_mp_writer_finish(&w, &out, &len), -1);
        hm_mp_writer_init(&w);
        hm_mp_write_bin(&w, "x", huge);
        CHECK_EQ(w.error, HM_MP_ERR_TOO_BIG);
        hm_mp_writer_discard(&w);
    }

    /* discard after real writes releases the buffer (checked by LSan) */
    hm_mp_writer_init(&w);
    hm_mp_write_map(&w, 1);
    hm_mp_write_cstr(&w, "k");
    hm_mp_write_cstr(&w, "v");
    CHECK(w.data != NULL && w.len == 5);
    hm_mp_writer_discard(&w);
    CHECK(w.data == NULL && w.len == 0);
}

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
    CHECK_EQU(hm_mp_reader_remaining(&r), 3);

    s = hm_mp_read_cstr_dup(&r); /* an int: type mismatch, cursor stays */
    CHECK(s == NULL);
    CHECK_EQ(r.error, HM_MP_ERR_TYPE);
    CHECK_EQU(hm_mp_reader_remaining(&r), 3);
    r.error = 0;
    CHECK_EQ(hm_mp_read_uint(&r, NULL), 0);
    s = hm_mp_read_cstr_dup(&r); /* str of 4 with 1 byte left */
    CHECK(s == NULL);
    CHECK_EQ(r.error, HM_MP_ERR_EOF);
    CHECK_EQU(hm_mp_reader_remaining(&r), 2);
    free(b);

    /* a long str (str16) */
    {
        hm_mp_writer_t w;
        uint8_t *buf;
        size_t len;
        char *text = make_text(1000);
        hm_mp_writer_init(&w);
        hm_mp_write_cstr(&w, text);
        FINISH(&w, &buf, &len);
        hm_mp_reader_init(&r, buf, len);
        s = hm_mp_read_cstr_dup(&r);
        CHECK(s != NULL && strcmp(s, text) == 0);
        CHECK_EQU(hm_mp_reader_remaining(&r), 0);
        free(s);
        free(buf);
        free(text);
    }
}

int main(void)
{
    test_exact_encodings();
    test_int_round_trips();
    test_float_round_trips();
    test_str_bin_round_trips();
    test_container_round_trips();
    test_complex_message();
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
