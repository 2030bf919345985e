/*
 * hm_msgpack.h - header-only msgpack encoder/decoder for hm C plugins.
 *
 * Messages between the hm host and native plugins are msgpack. This header
 * lets a C (or C++) plugin decode its msgpack input and encode its msgpack
 * output. It depends only on the C standard library. Every function is
 * `static inline`, so just include it; there is nothing to link.
 *
 * Compiles warning-free as C99, C11 and C++17 with -Wall -Wextra -pedantic.
 *
 * ---------------------------------------------------------------------------
 * OVERVIEW
 * ---------------------------------------------------------------------------
 *
 * Writer (hm_mp_writer_t): appends encoded values to a growable heap buffer.
 *   - hm_mp_writer_init(), then any number of hm_mp_write_*() calls, then
 *     either hm_mp_writer_finish() (you get the malloc'd bytes, release them
 *     with free()) or hm_mp_writer_discard() (buffer released).
 *   - Errors are sticky: if an allocation fails (or a length cannot be
 *     encoded), w->error becomes nonzero and every later write is a no-op.
 *     You only need to check once, at hm_mp_writer_finish().
 *   - Containers are written as a header with an element count followed by
 *     the elements: hm_mp_write_map(w, 2) must be followed by exactly 2
 *     key/value pairs (4 values). The writer does not check this for you.
 *   - Integers always use the smallest encoding; non-negative values use
 *     the unsigned encodings (as the msgpack spec recommends).
 *
 * Reader (hm_mp_reader_t): a cursor over bytes you own (zero-copy).
 *   - hm_mp_reader_init(), then hm_mp_read_*() calls, each of which consumes
 *     one value (or one container header) and advances the cursor.
 *   - All read functions return 0 on success and -1 on failure (type
 *     mismatch, value out of range, truncated or malformed input). On failure
 *     the cursor is NOT advanced and r->error is set to an HM_MP_ERR_* code.
 *   - Reader errors are sticky as well: once r->error is nonzero every read
 *     fails, so a long sequence of reads can be checked once at the end.
 *     To branch on the type of the next value, use hm_mp_peek() BEFORE
 *     reading. (Because a failed read does not move the cursor, resetting
 *     r->error to 0 after a type mismatch is safe if you really want to.)
 *   - The input may be hostile: every length is bounds-checked and nothing is
 *     ever read at or beyond `end`.
 *   - Strings/binaries returned by hm_mp_read_str()/hm_mp_read_bin() point
 *     INTO the input buffer; they are NOT NUL-terminated and are valid only
 *     as long as the input buffer is. Use hm_mp_read_cstr_dup() for a C
 *     string copy, hm_mp_str_eq() to compare with a C string.
 *   - Out-parameters of read functions may be NULL if you do not need them.
 *
 * Assumes IEEE-754 float/double (true on every platform hm supports).
 *
 * ---------------------------------------------------------------------------
 * EXAMPLE: reading a map   {"name": "abc", "count": 3, ...}
 * ---------------------------------------------------------------------------
 *
 *     hm_mp_reader_t r, v;
 *     const char *name; size_t name_len;
 *     int64_t count = 0;
 *
 *     hm_mp_reader_init(&r, in_ptr, in_len);
 *
 *     // a) random access by key (r stays at the map):
 *     if (hm_mp_map_find(&r, "name", &v) != 0 ||
 *         hm_mp_read_str(&v, &name, &name_len) != 0)
 *         return -1;                               // missing or not a str
 *     if (hm_mp_map_find(&r, "count", &v) == 0 && hm_mp_read_int(&v, &count) != 0)
 *         return -1;                               // present but not an int
 *
 *     // b) or one pass over all entries:
 *     uint32_t n, i;
 *     if (hm_mp_read_map(&r, &n) != 0) return -1;
 *     for (i = 0; i < n; i++) {
 *         const char *k; size_t klen;
 *         if (hm_mp_read_str(&r, &k, &klen) != 0) return -1;
 *         if (hm_mp_str_eq(k, klen, "count")) hm_mp_read_int(&r, &count);
 *         else                                hm_mp_skip(&r);   // unknown key
 *     }
 *     if (r.error) return -1;                     // any failure above lands here
 *
 * ---------------------------------------------------------------------------
 * EXAMPLE: writing a map   {"ok": true, "items": [1, -2, 3.5], "name": "x"}
 * ---------------------------------------------------------------------------
 *
 *     hm_mp_writer_t w;
 *     uint8_t *out; size_t out_len;
 *
 *     hm_mp_writer_init(&w);
 *     hm_mp_write_map(&w, 3);                    // 3 key/value pairs follow
 *     hm_mp_write_cstr(&w, "ok");    hm_mp_write_bool(&w, 1);
 *     hm_mp_write_cstr(&w, "items"); hm_mp_write_array(&w, 3);
 *         hm_mp_write_int(&w, 1);
 *         hm_mp_write_int(&w, -2);
 *         hm_mp_write_double(&w, 3.5);
 *     hm_mp_write_cstr(&w, "name");  hm_mp_write_str(&w, "xyz", 1);
 *     if (hm_mp_writer_finish(&w, &out, &out_len) != 0)
 *         return -1;                               // out of memory
 *     // ... hand out/out_len over; whoever owns it releases it with free(out).
 *
 * ---------------------------------------------------------------------------
 * CONFIGURATION
 * ---------------------------------------------------------------------------
 *
 *   HM_MP_MAX_DEPTH  (default 64) maximum container nesting accepted by
 *                    hm_mp_skip() / hm_mp_map_find(). Define before including.
 */
#ifndef HM_MSGPACK_H
#define HM_MSGPACK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef HM_MP_MAX_DEPTH
#define HM_MP_MAX_DEPTH 64
#endif

/* ======================================================================== */
/* Error codes (values of hm_mp_writer_t.error / hm_mp_reader_t.error)      */
/* ======================================================================== */

enum {
    HM_MP_OK = 0,
    HM_MP_ERR_NOMEM = 1,     /* allocation failed                               */
    HM_MP_ERR_TOO_BIG = 2,   /* writer: length > 2^32-1 or buffer size overflow */
    HM_MP_ERR_ARG = 3,       /* invalid argument (e.g. NULL pointer, len > 0)   */
    HM_MP_ERR_TYPE = 4,      /* reader: next value has another type             */
    HM_MP_ERR_RANGE = 5,     /* reader: integer does not fit the requested type */
    HM_MP_ERR_EOF = 6,       /* reader: input truncated                         */
    HM_MP_ERR_MALFORMED = 7, /* reader: invalid byte (0xc1)                     */
    HM_MP_ERR_DEPTH = 8,     /* reader: nesting deeper than HM_MP_MAX_DEPTH     */
    HM_MP_ERR_NOT_FOUND = 9  /* hm_mp_map_find: key not present                 */
};

/* Returns a static, human-readable name for an HM_MP_ERR_* code (never NULL). */
static inline const char *hm_mp_error_string(int err)
{
    switch (err) {
    case HM_MP_OK:            return "ok";
    case HM_MP_ERR_NOMEM:     return "out of memory";
    case HM_MP_ERR_TOO_BIG:   return "length too large for msgpack";
    case HM_MP_ERR_ARG:       return "invalid argument";
    case HM_MP_ERR_TYPE:      return "type mismatch";
    case HM_MP_ERR_RANGE:     return "integer out of range";
    case HM_MP_ERR_EOF:       return "truncated input";
    case HM_MP_ERR_MALFORMED: return "malformed input";
    case HM_MP_ERR_DEPTH:     return "nesting too deep";
    case HM_MP_ERR_NOT_FOUND: return "key not found";
    default:                  return "unknown error";
    }
}

/* ======================================================================== */
/* Writer                                                                   */
/* ======================================================================== */

typedef struct hm_mp_writer {
    uint8_t *data; /* malloc'd buffer (may be NULL while empty)          */
    size_t len;    /* bytes written so far                               */
    size_t cap;    /* allocated size of data                             */
    int error;     /* 0, or the first HM_MP_ERR_* that occurred (sticky) */
} hm_mp_writer_t;

/* Initializes an empty writer. Allocates nothing. */
static inline void hm_mp_writer_init(hm_mp_writer_t *w)
{
    w->data = NULL;
    w->len = 0;
    w->cap = 0;
    w->error = HM_MP_OK;
}

/* Internal: ensures room for `extra` more bytes. Returns 0, or -1 with w->error set. */
static inline int hm_mp_impl_reserve(hm_mp_writer_t *w, size_t extra)
{
    size_t need, cap;
    uint8_t *nd;
    if (w->error)
        return -1;
    if (extra > SIZE_MAX - w->len) {
        w->error = HM_MP_ERR_TOO_BIG;
        return -1;
    }
    need = w->len + extra;
    if (need <= w->cap)
        return 0;
    cap = w->cap ? w->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    nd = (uint8_t *)realloc(w->data, cap);
    if (nd == NULL) {
        w->error = HM_MP_ERR_NOMEM;
        return -1;
    }
    w->data = nd;
    w->cap = cap;
    return 0;
}

/* Internal: appends n bytes (p may be NULL only if n == 0). */
static inline void hm_mp_impl_put(hm_mp_writer_t *w, const void *p, size_t n)
{
    if (hm_mp_impl_reserve(w, n) != 0)
        return;
    if (n > 0) {
        memcpy(w->data + w->len, p, n);
        w->len += n;
    }
}

/* Internal: appends tag byte followed by the low `nbytes` bytes of v, big-endian. */
static inline void hm_mp_impl_put_be(hm_mp_writer_t *w, uint8_t tag, uint64_t v, unsigned nbytes)
{
    uint8_t buf[9];
    unsigned i;
    buf[0] = tag;
    for (i = 0; i < nbytes; i++)
        buf[1 + i] = (uint8_t)(v >> (8u * (nbytes - 1u - i)));
    hm_mp_impl_put(w, buf, 1u + nbytes);
}

/* Internal: writes a str8/16/32-, bin8/16/32- or ext8/16/32-style length
 * header using the given tags. Returns 0, or -1 with w->error set. */
static inline int hm_mp_impl_put_len(hm_mp_writer_t *w, size_t len, uint8_t tag8,
                                     uint8_t tag16, uint8_t tag32)
{
    uint64_t n = len;
    if (w->error)
        return -1;
    if (n > 0xffffffffu) {
        w->error = HM_MP_ERR_TOO_BIG;
        return -1;
    }
    if (n <= 0xffu)
        hm_mp_impl_put_be(w, tag8, n, 1);
    else if (n <= 0xffffu)
        hm_mp_impl_put_be(w, tag16, n, 2);
    else
        hm_mp_impl_put_be(w, tag32, n, 4);
    return w->error ? -1 : 0;
}

/* Writes nil. */
static inline void hm_mp_write_nil(hm_mp_writer_t *w)
{
    uint8_t b = 0xc0;
    hm_mp_impl_put(w, &b, 1);
}

/* Writes a boolean: false if v == 0, true otherwise. */
static inline void hm_mp_write_bool(hm_mp_writer_t *w, int v)
{
    uint8_t b = (uint8_t)(v ? 0xc3 : 0xc2);
    hm_mp_impl_put(w, &b, 1);
}

/* Writes an unsigned integer using the smallest encoding (fixint/uint8/16/32/64). */
static inline void hm_mp_write_uint(hm_mp_writer_t *w, uint64_t v)
{
    if (v <= 0x7fu) {
        uint8_t b = (uint8_t)v;
        hm_mp_impl_put(w, &b, 1);
    } else if (v <= 0xffu) {
        hm_mp_impl_put_be(w, 0xcc, v, 1);
    } else if (v <= 0xffffu) {
        hm_mp_impl_put_be(w, 0xcd, v, 2);
    } else if (v <= 0xffffffffu) {
        hm_mp_impl_put_be(w, 0xce, v, 4);
    } else {
        hm_mp_impl_put_be(w, 0xcf, v, 8);
    }
}

/* Writes a signed integer using the smallest encoding; v >= 0 uses the
 * unsigned encodings, v < 0 uses negative fixint/int8/16/32/64. */
static inline void hm_mp_write_int(hm_mp_writer_t *w, int64_t v)
{
    uint64_t u = (uint64_t)v; /* two's complement bit pattern (well-defined) */
    if (v >= 0) {
        hm_mp_write_uint(w, u);
    } else if (v >= -32) {
        uint8_t b = (uint8_t)(u & 0xffu); /* 0xe0..0xff */
        hm_mp_impl_put(w, &b, 1);
    } else if (v >= -128) {
        hm_mp_impl_put_be(w, 0xd0, u, 1);
    } else if (v >= -32768) {
        hm_mp_impl_put_be(w, 0xd1, u, 2);
    } else if (v >= -2147483647 - 1) {
        hm_mp_impl_put_be(w, 0xd2, u, 4);
    } else {
        hm_mp_impl_put_be(w, 0xd3, u, 8);
    }
}

/* Writes a float64. */
static inline void hm_mp_write_double(hm_mp_writer_t *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    hm_mp_impl_put_be(w, 0xcb, bits, 8);
}

/* Writes a float32. */
static inline void hm_mp_write_float(hm_mp_writer_t *w, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    hm_mp_impl_put_be(w, 0xca, bits, 4);
}

/* Writes a str of `len` bytes copied from s (s may be NULL if len == 0).
 * The bytes are copied as-is and MUST be valid UTF-8: hm rejects a message with
 * an invalid str as malformed. Text that may not be UTF-8 (file names, command
 * output, a snprintf cut mid-character) belongs in a bin, or must be cleaned
 * first. len > 2^32-1 sets HM_MP_ERR_TOO_BIG. */
static inline void hm_mp_write_str(hm_mp_writer_t *w, const char *s, size_t len)
{
    if (w->error)
        return;
    if (s == NULL && len > 0) {
        w->error = HM_MP_ERR_ARG;
        return;
    }
    if (len <= 31) {
        uint8_t b = (uint8_t)(0xa0u | (unsigned)len);
        hm_mp_impl_put(w, &b, 1);
    } else if (hm_mp_impl_put_len(w, len, 0xd9, 0xda, 0xdb) != 0) {
        return;
    }
    hm_mp_impl_put(w, s, len);
}

/* Writes the NUL-terminated string s as a str; s == NULL writes nil. */
static inline void hm_mp_write_cstr(hm_mp_writer_t *w, const char *s)
{
    if (s == NULL)
        hm_mp_write_nil(w);
    else
        hm_mp_write_str(w, s, strlen(s));
}

/* Writes a bin of `len` bytes copied from p (p may be NULL if len == 0). */
static inline void hm_mp_write_bin(hm_mp_writer_t *w, const void *p, size_t len)
{
    if (w->error)
        return;
    if (p == NULL && len > 0) {
        w->error = HM_MP_ERR_ARG;
        return;
    }
    if (hm_mp_impl_put_len(w, len, 0xc4, 0xc5, 0xc6) != 0)
        return;
    hm_mp_impl_put(w, p, len);
}

/* Writes an ext value: application type `type` and `len` payload bytes from p
 * (p may be NULL if len == 0). Uses fixext1/2/4/8/16 when len matches. */
static inline void hm_mp_write_ext(hm_mp_writer_t *w, int8_t type, const void *p, size_t len)
{
    uint8_t t = (uint8_t)type;
    if (w->error)
        return;
    if (p == NULL && len > 0) {
        w->error = HM_MP_ERR_ARG;
        return;
    }
    switch (len) {
    case 1:  hm_mp_impl_put_be(w, 0xd4, t, 1); break;
    case 2:  hm_mp_impl_put_be(w, 0xd5, t, 1); break;
    case 4:  hm_mp_impl_put_be(w, 0xd6, t, 1); break;
    case 8:  hm_mp_impl_put_be(w, 0xd7, t, 1); break;
    case 16: hm_mp_impl_put_be(w, 0xd8, t, 1); break;
    default:
        if (hm_mp_impl_put_len(w, len, 0xc7, 0xc8, 0xc9) != 0)
            return;
        hm_mp_impl_put(w, &t, 1);
        break;
    }
    hm_mp_impl_put(w, p, len);
}

/* Writes an array header; exactly n values must follow. */
static inline void hm_mp_write_array(hm_mp_writer_t *w, uint32_t n)
{
    if (n <= 15) {
        uint8_t b = (uint8_t)(0x90u | n);
        hm_mp_impl_put(w, &b, 1);
    } else if (n <= 0xffffu) {
        hm_mp_impl_put_be(w, 0xdc, n, 2);
    } else {
        hm_mp_impl_put_be(w, 0xdd, n, 4);
    }
}

/* Writes a map header; exactly n key/value pairs (2*n values) must follow. */
static inline void hm_mp_write_map(hm_mp_writer_t *w, uint32_t n)
{
    if (n <= 15) {
        uint8_t b = (uint8_t)(0x80u | n);
        hm_mp_impl_put(w, &b, 1);
    } else if (n <= 0xffffu) {
        hm_mp_impl_put_be(w, 0xde, n, 2);
    } else {
        hm_mp_impl_put_be(w, 0xdf, n, 4);
    }
}

/* Appends len bytes of already-encoded msgpack verbatim (p may be NULL if
 * len == 0). Not validated: the bytes must form complete values. */
static inline void hm_mp_write_raw(hm_mp_writer_t *w, const void *p, size_t len)
{
    if (w->error)
        return;
    if (p == NULL && len > 0) {
        w->error = HM_MP_ERR_ARG;
        return;
    }
    hm_mp_impl_put(w, p, len);
}

/* Releases the buffer and resets w to the empty state (error cleared). */
static inline void hm_mp_writer_discard(hm_mp_writer_t *w)
{
    free(w->data);
    hm_mp_writer_init(w);
}

/* Hands the encoded bytes to the caller and resets w to the empty state.
 * Returns 0 on success: *out_ptr is a non-NULL malloc'd buffer (release it
 * with free()) holding *out_len bytes. Returns -1 if any earlier write failed
 * (w->error was set): the buffer is freed, *out_ptr = NULL, *out_len = 0. */
static inline int hm_mp_writer_finish(hm_mp_writer_t *w, uint8_t **out_ptr, size_t *out_len)
{
    *out_ptr = NULL;
    *out_len = 0;
    if (w->error == HM_MP_OK && w->data == NULL) {
        /* nothing written: still hand over a real (1-byte) allocation */
        w->data = (uint8_t *)malloc(1);
        if (w->data == NULL)
            w->error = HM_MP_ERR_NOMEM;
        else
            w->cap = 1;
    }
    if (w->error) {
        hm_mp_writer_discard(w);
        return -1;
    }
    *out_ptr = w->data;
    *out_len = w->len;
    hm_mp_writer_init(w);
    return 0;
}

/* ======================================================================== */
/* Reader                                                                   */
/* ======================================================================== */

typedef struct hm_mp_reader {
    const uint8_t *p;   /* next byte to read (borrowed, not owned)        */
    const uint8_t *end; /* one past the last input byte                  */
    int error;          /* 0, or the first HM_MP_ERR_* that occurred      */
} hm_mp_reader_t;

typedef enum hm_mp_type {
    HM_MP_NIL,
    HM_MP_BOOL,
    HM_MP_INT,   /* signed encodings: negative fixint, int8..int64 */
    HM_MP_UINT,  /* positive fixint, uint8..uint64                 */
    HM_MP_FLOAT, /* float32, float64                               */
    HM_MP_STR,
    HM_MP_BIN,
    HM_MP_ARRAY,
    HM_MP_MAP,
    HM_MP_EXT,
    HM_MP_INVALID /* reader in error state, at end of input, or byte 0xc1 */
} hm_mp_type_t;

/* Initializes r over data[0..len). The bytes are borrowed: they must stay
 * valid and unchanged while r (or anything read through it) is used.
 * data == NULL with len > 0 gives an empty reader with HM_MP_ERR_ARG. */
static inline void hm_mp_reader_init(hm_mp_reader_t *r, const uint8_t *data, size_t len)
{
    r->error = HM_MP_OK;
    if (data == NULL) {
        r->p = (const uint8_t *)"";
        r->end = r->p;
        if (len > 0)
            r->error = HM_MP_ERR_ARG;
        return;
    }
    r->p = data;
    r->end = data + len;
}

/* Returns the number of unread input bytes (0 once the input is consumed). */
static inline size_t hm_mp_reader_remaining(const hm_mp_reader_t *r)
{
    return r->p < r->end ? (size_t)(r->end - r->p) : 0;
}

/* Returns the type of the next value from its first byte, without consuming
 * anything. HM_MP_INVALID if r->error is set, no bytes are left, or the byte
 * is the reserved 0xc1. (The value itself may still turn out truncated.) */
static inline hm_mp_type_t hm_mp_peek(const hm_mp_reader_t *r)
{
    uint8_t b;
    if (r->error || hm_mp_reader_remaining(r) == 0)
        return HM_MP_INVALID;
    b = r->p[0];
    if (b <= 0x7f) return HM_MP_UINT;
    if (b <= 0x8f) return HM_MP_MAP;
    if (b <= 0x9f) return HM_MP_ARRAY;
    if (b <= 0xbf) return HM_MP_STR;
    if (b >= 0xe0) return HM_MP_INT;
    switch (b) {
    case 0xc0: return HM_MP_NIL;
    case 0xc2: case 0xc3: return HM_MP_BOOL;
    case 0xc4: case 0xc5: case 0xc6: return HM_MP_BIN;
    case 0xc7: case 0xc8: case 0xc9: return HM_MP_EXT;
    case 0xca: case 0xcb: return HM_MP_FLOAT;
    case 0xcc: case 0xcd: case 0xce: case 0xcf: return HM_MP_UINT;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: return HM_MP_INT;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return HM_MP_EXT;
    case 0xd9: case 0xda: case 0xdb: return HM_MP_STR;
    case 0xdc: case 0xdd: return HM_MP_ARRAY;
    case 0xde: case 0xdf: return HM_MP_MAP;
    default: return HM_MP_INVALID; /* 0xc1 */
    }
}

/* Internal: decoded header of the next value. */
typedef struct hm_mp_impl_tag {
    hm_mp_type_t type;
    size_t hdr;     /* header size in bytes (tag byte + fixed-size fields)  */
    uint64_t u;     /* UINT value; BOOL 0/1; STR/BIN/EXT payload length;
                       ARRAY/MAP element/pair count                        */
    int64_t i;      /* INT value                                            */
    double d;       /* FLOAT value                                          */
    int8_t ext;     /* EXT application type                                 */
} hm_mp_impl_tag_t;

/* Internal: big-endian unsigned load of n (1..8) bytes. */
static inline uint64_t hm_mp_impl_load_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Internal: interprets the low `bits` bits of u as two's complement. */
static inline int64_t hm_mp_impl_to_signed(uint64_t u, unsigned bits)
{
    if (bits < 64 && (u & ((uint64_t)1 << (bits - 1))) != 0)
        u |= ~(((uint64_t)1 << bits) - 1); /* sign-extend */
    if (u <= (uint64_t)INT64_MAX)
        return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

/* Internal: parses the header of the next value without consuming anything.
 * Guarantees on success: hdr bytes are available; for STR/BIN/EXT the payload
 * (u bytes) is available too; for ARRAY u <= bytes left after the header and
 * for MAP 2*u <= bytes left (each element takes at least one byte).
 * Returns HM_MP_OK or an HM_MP_ERR_* code. */
static inline int hm_mp_impl_parse(const hm_mp_reader_t *r, hm_mp_impl_tag_t *t)
{
    size_t avail = hm_mp_reader_remaining(r);
    const uint8_t *p = r->p;
    uint8_t b;
    unsigned n = 0; /* size of the field following the tag byte */
    uint64_t rest;

    t->type = HM_MP_INVALID;
    t->hdr = 1;
    t->u = 0;
    t->i = 0;
    t->d = 0.0;
    t->ext = 0;

    if (r->error)
        return r->error;
    if (avail == 0)
        return HM_MP_ERR_EOF;
    b = p[0];

    if (b <= 0x7f) {
        t->type = HM_MP_UINT;
        t->u = b;
        return HM_MP_OK;
    }
    if (b >= 0xe0) {
        t->type = HM_MP_INT;
        t->i = (int64_t)b - 256;
        return HM_MP_OK;
    }
    if (b <= 0x8f) {
        t->type = HM_MP_MAP;
        t->u = b & 0x0fu;
    } else if (b <= 0x9f) {
        t->type = HM_MP_ARRAY;
        t->u = b & 0x0fu;
    } else if (b <= 0xbf) {
        t->type = HM_MP_STR;
        t->u = b & 0x1fu;
    } else {
        switch (b) {
        case 0xc0: t->type = HM_MP_NIL; return HM_MP_OK;
        case 0xc2: t->type = HM_MP_BOOL; t->u = 0; return HM_MP_OK;
        case 0xc3: t->type = HM_MP_BOOL; t->u = 1; return HM_MP_OK;
        case 0xc4: t->type = HM_MP_BIN; n = 1; break;
        case 0xc5: t->type = HM_MP_BIN; n = 2; break;
        case 0xc6: t->type = HM_MP_BIN; n = 4; break;
        case 0xc7: t->type = HM_MP_EXT; n = 1; break;
        case 0xc8: t->type = HM_MP_EXT; n = 2; break;
        case 0xc9: t->type = HM_MP_EXT; n = 4; break;
        case 0xca: t->type = HM_MP_FLOAT; n = 4; break;
        case 0xcb: t->type = HM_MP_FLOAT; n = 8; break;
        case 0xcc: t->type = HM_MP_UINT; n = 1; break;
        case 0xcd: t->type = HM_MP_UINT; n = 2; break;
        case 0xce: t->type = HM_MP_UINT; n = 4; break;
        case 0xcf: t->type = HM_MP_UINT; n = 8; break;
        case 0xd0: t->type = HM_MP_INT; n = 1; break;
        case 0xd1: t->type = HM_MP_INT; n = 2; break;
        case 0xd2: t->type = HM_MP_INT; n = 4; break;
        case 0xd3: t->type = HM_MP_INT; n = 8; break;
        case 0xd4: t->type = HM_MP_EXT; t->u = 1; break;
        case 0xd5: t->type = HM_MP_EXT; t->u = 2; break;
        case 0xd6: t->type = HM_MP_EXT; t->u = 4; break;
        case 0xd7: t->type = HM_MP_EXT; t->u = 8; break;
        case 0xd8: t->type = HM_MP_EXT; t->u = 16; break;
        case 0xd9: t->type = HM_MP_STR; n = 1; break;
        case 0xda: t->type = HM_MP_STR; n = 2; break;
        case 0xdb: t->type = HM_MP_STR; n = 4; break;
        case 0xdc: t->type = HM_MP_ARRAY; n = 2; break;
        case 0xdd: t->type = HM_MP_ARRAY; n = 4; break;
        case 0xde: t->type = HM_MP_MAP; n = 2; break;
        case 0xdf: t->type = HM_MP_MAP; n = 4; break;
        default: return HM_MP_ERR_MALFORMED; /* 0xc1 */
        }
        if (avail - 1 < n)
            return HM_MP_ERR_EOF;
        t->hdr = 1u + n;
        if (n > 0) {
            uint64_t v = hm_mp_impl_load_be(p + 1, n);
            if (t->type == HM_MP_UINT) {
                t->u = v;
                return HM_MP_OK;
            }
            if (t->type == HM_MP_INT) {
                t->i = hm_mp_impl_to_signed(v, 8u * n);
                return HM_MP_OK;
            }
            if (t->type == HM_MP_FLOAT) {
                if (n == 4) {
                    uint32_t bits32 = (uint32_t)v;
                    float f;
                    memcpy(&f, &bits32, sizeof f);
                    t->d = (double)f;
                } else {
                    memcpy(&t->d, &v, sizeof t->d);
                }
                return HM_MP_OK;
            }
            t->u = v; /* str/bin/ext length or array/map count */
        }
        if (t->type == HM_MP_EXT) {
            /* ext: the application type byte follows the length (if any) */
            if (avail - t->hdr < 1)
                return HM_MP_ERR_EOF;
            t->ext = (int8_t)hm_mp_impl_to_signed(p[t->hdr], 8);
            t->hdr += 1;
        }
    }

    /* bounds-check payloads / element counts against what is left */
    rest = avail - t->hdr;
    if (t->type == HM_MP_MAP) {
        if (t->u * 2u > rest) /* u <= 2^32-1, cannot overflow */
            return HM_MP_ERR_EOF;
    } else if (t->u > rest) { /* STR/BIN/EXT payload, ARRAY count */
        return HM_MP_ERR_EOF;
    }
    return HM_MP_OK;
}

/* Internal: records err in r (first error wins) and returns -1. */
static inline int hm_mp_impl_fail(hm_mp_reader_t *r, int err)
{
    if (r->error == HM_MP_OK)
        r->error = err;
    return -1;
}

/* Internal: parses the next header and checks its type. Returns 0 or -1 (error set). */
static inline int hm_mp_impl_expect(hm_mp_reader_t *r, hm_mp_impl_tag_t *t, hm_mp_type_t type)
{
    int err = hm_mp_impl_parse(r, t);
    if (err != HM_MP_OK)
        return hm_mp_impl_fail(r, err);
    if (t->type != type)
        return hm_mp_impl_fail(r, HM_MP_ERR_TYPE);
    return 0;
}

/* Reads nil. Returns 0, or -1 if the next value is not nil. */
static inline int hm_mp_read_nil(hm_mp_reader_t *r)
{
    hm_mp_impl_tag_t t;
    if (hm_mp_impl_expect(r, &t, HM_MP_NIL) != 0)
        return -1;
    r->p += t.hdr;
    return 0;
}

/* Reads a boolean into *out (0 or 1). Returns 0, or -1 if not a bool. */
static inline int hm_mp_read_bool(hm_mp_reader_t *r, int *out)
{
    hm_mp_impl_tag_t t;
    if (hm_mp_impl_expect(r, &t, HM_MP_BOOL) != 0)
        return -1;
    r->p += t.hdr;
    if (out)
        *out = (int)t.u;
    return 0;
}

/* Reads an integer into *out. Accepts signed and unsigned encodings; fails
 * with HM_MP_ERR_RANGE for unsigned values > INT64_MAX, HM_MP_ERR_TYPE for
 * non-integers (floats are not converted). */
static inline int hm_mp_read_int(hm_mp_reader_t *r, int64_t *out)
{
    hm_mp_impl_tag_t t;
    int64_t v;
    int err = hm_mp_impl_parse(r, &t);
    if (err != HM_MP_OK)
        return hm_mp_impl_fail(r, err);
    if (t.type == HM_MP_INT)
        v = t.i;
    else if (t.type == HM_MP_UINT && t.u <= (uint64_t)INT64_MAX)
        v = (int64_t)t.u;
    else
        return hm_mp_impl_fail(r, t.type == HM_MP_UINT ? HM_MP_ERR_RANGE : HM_MP_ERR_TYPE);
    r->p += t.hdr;
    if (out)
        *out = v;
    return 0;
}

/* Reads a non-negative integer into *out. Accepts unsigned encodings and
 * signed encodings holding a value >= 0; negative values fail with
 * HM_MP_ERR_RANGE, non-integers with HM_MP_ERR_TYPE. */
static inline int hm_mp_read_uint(hm_mp_reader_t *r, uint64_t *out)
{
    hm_mp_impl_tag_t t;
    uint64_t v;
    int err = hm_mp_impl_parse(r, &t);
    if (err != HM_MP_OK)
        return hm_mp_impl_fail(r, err);
    if (t.type == HM_MP_UINT)
        v = t.u;
    else if (t.type == HM_MP_INT && t.i >= 0)
        v = (uint64_t)t.i;
    else
        return hm_mp_impl_fail(r, t.type == HM_MP_INT ? HM_MP_ERR_RANGE : HM_MP_ERR_TYPE);
    r->p += t.hdr;
    if (out)
        *out = v;
    return 0;
}

/* Reads a number as double into *out. Accepts float32, float64 and any
 * integer (converted; integers beyond 2^53 lose precision). */
static inline int hm_mp_read_double(hm_mp_reader_t *r, double *out)
{
    hm_mp_impl_tag_t t;
    double v;
    int err = hm_mp_impl_parse(r, &t);
    if (err != HM_MP_OK)
        return hm_mp_impl_fail(r, err);
    if (t.type == HM_MP_FLOAT)
        v = t.d;
    else if (t.type == HM_MP_INT)
        v = (double)t.i;
    else if (t.type == HM_MP_UINT)
        v = (double)t.u;
    else
        return hm_mp_impl_fail(r, HM_MP_ERR_TYPE);
    r->p += t.hdr;
    if (out)
        *out = v;
    return 0;
}

/* Reads a str. *ptr points INTO the input (borrowed, NOT NUL-terminated, may
 * contain any bytes), *len is its length in bytes. */
static inline int hm_mp_read_str(hm_mp_reader_t *r, const char **ptr, size_t *len)
{
    hm_mp_impl_tag_t t;
    if (hm_mp_impl_expect(r, &t, HM_MP_STR) != 0)
        return -1;
    if (ptr)
        *ptr = (const char *)(r->p + t.hdr);
    if (len)
        *len = (size_t)t.u;
    r->p += t.hdr + (size_t)t.u;
    return 0;
}

/* Reads a bin. *ptr points INTO the input (borrowed), *len is its length. */
static inline int hm_mp_read_bin(hm_mp_reader_t *r, const uint8_t **ptr, size_t *len)
{
    hm_mp_impl_tag_t t;
    if (hm_mp_impl_expect(r, &t, HM_MP_BIN) != 0)
        return -1;
    if (ptr)
        *ptr = r->p + t.hdr;
    if (len)
        *len = (size_t)t.u;
    r->p += t.hdr + (size_t)t.u;
    return 0;
}

/* Reads an ext value: *type is the application type, *ptr points INTO the
 * input (borrowed) at the *len payload bytes. */
static inline int hm_mp_read_ext(hm_mp_reader_t *r, int8_t *type, const uint8_t **ptr, size_t *len)
{
    hm_mp_impl_tag_t t;
    if (hm_mp_impl_expect(r, &t, HM_MP_EXT) != 0)
        return -1;
    if (type)
        *type = t.ext;
    if (ptr)
        *ptr = r->p + t.hdr;
    if (len)
        *len = (size_t)t.u;
    r->p += t.hdr + (size_t)t.u;
    return 0;
}

/* Reads an array header; *n elements follow (read each, or hm_mp_skip them).
 * Fails if n exceeds the bytes left, so n is bounded by the input size. */
static inline int hm_mp_read_array(hm_mp_reader_t *r, uint32_t *n)
{
    hm_mp_impl_tag_t t;
    if (hm_mp_impl_expect(r, &t, HM_MP_ARRAY) != 0)
        return -1;
    r->p += t.hdr;
    if (n)
        *n = (uint32_t)t.u;
    return 0;
}

/* Reads a map header; *n key/value pairs (2*n values) follow. Fails if 2*n
 * exceeds the bytes left, so n is bounded by the input size. */
static inline int hm_mp_read_map(hm_mp_reader_t *r, uint32_t *n)
{
    hm_mp_impl_tag_t t;
    if (hm_mp_impl_expect(r, &t, HM_MP_MAP) != 0)
        return -1;
    r->p += t.hdr;
    if (n)
        *n = (uint32_t)t.u;
    return 0;
}

/* Skips one complete value of any type, including everything nested inside
 * containers (at most HM_MP_MAX_DEPTH levels: deeper fails with
 * HM_MP_ERR_DEPTH). Returns 0, or -1 (cursor not advanced) if the value is
 * truncated or malformed. Not recursive; uses a small fixed stack array. */
static inline int hm_mp_skip(hm_mp_reader_t *r)
{
    uint64_t pending[HM_MP_MAX_DEPTH]; /* values still to skip, per open container */
    int depth = 0;
    hm_mp_reader_t c = *r;             /* commit to r only on success */

    for (;;) {
        hm_mp_impl_tag_t t;
        int err = hm_mp_impl_parse(&c, &t);
        if (err != HM_MP_OK)
            return hm_mp_impl_fail(r, err);
        c.p += t.hdr;
        if (t.type == HM_MP_STR || t.type == HM_MP_BIN || t.type == HM_MP_EXT)
            c.p += (size_t)t.u; /* payload bounds already checked */

        if ((t.type == HM_MP_ARRAY || t.type == HM_MP_MAP) && t.u > 0) {
            if (depth >= HM_MP_MAX_DEPTH)
                return hm_mp_impl_fail(r, HM_MP_ERR_DEPTH);
            pending[depth++] = t.type == HM_MP_MAP ? t.u * 2u : t.u;
            continue; /* next value is this container's first element */
        }

        /* one complete value done: close every container it completes */
        while (depth > 0) {
            if (--pending[depth - 1] > 0)
                break;
            depth--;
        }
        if (depth == 0)
            break;
    }
    r->p = c.p;
    return 0;
}

/* Returns 1 if the (ptr, len) string equals the NUL-terminated cstr, else 0.
 * Never reads ptr beyond len nor cstr beyond its NUL. cstr == NULL gives 0. */
static inline int hm_mp_str_eq(const char *ptr, size_t len, const char *cstr)
{
    size_t i;
    if (cstr == NULL || (ptr == NULL && len > 0))
        return 0;
    for (i = 0; i < len; i++) {
        if (cstr[i] == '\0' || cstr[i] != ptr[i])
            return 0;
    }
    return cstr[len] == '\0';
}

/* r must be positioned at a map. Looks for the first entry whose key is a str
 * equal to `key` (non-str keys are skipped). Returns 0 if found: *out is a
 * copy of r positioned at that entry's value (r itself is never advanced or
 * modified; out may be r itself). Returns -1 if not found or on any error:
 * *out is then an empty reader with out->error set (HM_MP_ERR_NOT_FOUND, or
 * the decoding error), so reads from it fail. */
static inline int hm_mp_map_find(const hm_mp_reader_t *r, const char *key, hm_mp_reader_t *out)
{
    hm_mp_reader_t c = *r;
    const uint8_t *end = r->end;
    uint32_t n, i;
    int err;

    if (key == NULL)
        c.error = HM_MP_ERR_ARG;
    if (hm_mp_read_map(&c, &n) == 0) {
        for (i = 0; i < n; i++) {
            if (hm_mp_peek(&c) == HM_MP_STR) {
                const char *k;
                size_t klen;
                if (hm_mp_read_str(&c, &k, &klen) != 0)
                    break;
                if (hm_mp_str_eq(k, klen, key)) {
                    *out = c;
                    return 0;
                }
            } else if (hm_mp_skip(&c) != 0) {
                break;
            }
            if (hm_mp_skip(&c) != 0)
                break;
        }
    }
    err = c.error ? c.error : HM_MP_ERR_NOT_FOUND;
    out->p = end;
    out->end = end;
    out->error = err;
    return -1;
}

/* Reads a str and returns a newly malloc'd NUL-terminated copy (caller frees
 * with free()). Returns NULL on error (r->error set: type mismatch, truncated,
 * or HM_MP_ERR_NOMEM; the cursor is then not advanced). Note: a str containing
 * NUL bytes is copied whole, but C string functions will stop at the first NUL. */
static inline char *hm_mp_read_cstr_dup(hm_mp_reader_t *r)
{
    hm_mp_reader_t c = *r;
    const char *s;
    size_t len;
    char *d;
    if (hm_mp_read_str(&c, &s, &len) != 0) {
        hm_mp_impl_fail(r, c.error);
        return NULL;
    }
    d = (char *)malloc(len + 1); /* len < input size, cannot overflow */
    if (d == NULL) {
        hm_mp_impl_fail(r, HM_MP_ERR_NOMEM);
        return NULL;
    }
    if (len > 0)
        memcpy(d, s, len);
    d[len] = '\0';
    r->p = c.p;
    return d;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HM_MSGPACK_H */
