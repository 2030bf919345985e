/*
 * wire.c — frames in and out of hm-worker.
 *
 * Output has one buffer for every thread of the process, under one mutex, so
 * frames leave in the order they were made: a call's output always precedes
 * its RESULT. Urgent frames (results, requests) write the buffer out at once;
 * notifications wait for the flusher thread, at most about a millisecond, or
 * until WK_FLUSH_AT bytes are waiting. That turns a runner's thousand small
 * emit_step_log calls into a few large writes, and step output of one call and
 * stream into one frame, which is what makes isolated step logs cheap.
 *
 * A write that fails means hm is gone: the worker exits at once (nothing it
 * could still do would reach anyone).
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int wk_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- input ---------------------------------------------------------------- */

#define SPIN_NS 50000L /* 50 us */

static long elapsed_ns(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

/* Waits until fd has data (or its writer is gone). Looks again for a short
 * while before sleeping: hm's next message usually follows within
 * microseconds, and a thread that went to sleep costs a wake-up (tens of
 * microseconds on a virtual machine's idle CPU) on every call. */
static void wait_readable(int fd)
{
    struct timespec start;
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        p.revents = 0;
        if (poll(&p, 1, 0) > 0)
            return;
    } while (elapsed_ns(&start) < SPIN_NS);
    p.revents = 0;
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int fill(wk_in_t *in, size_t need)
{
    /* make room for `need` bytes from `start` */
    if (in->cap - in->start < need) {
        if (in->start > 0) {
            memmove(in->buf, in->buf + in->start, in->end - in->start);
            in->end -= in->start;
            in->start = 0;
        }
        if (in->cap < need) {
            size_t cap = in->cap ? in->cap : 256 * 1024;
            uint8_t *nb;
            while (cap < need)
                cap *= 2;
            nb = (uint8_t *)realloc(in->buf, cap);
            if (nb == NULL)
                return -3;
            in->buf = nb;
            in->cap = cap;
        }
    }
    while (in->end - in->start < need) {
        ssize_t n = read(in->fd, in->buf + in->end, in->cap - in->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_readable(in->fd);
            continue;
        }
        if (n <= 0)
            return -1;
        in->end += (size_t)n;
    }
    return 0;
}

int wk_in_start(wk_in_t *in, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    in->fd = fd;
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ? -1 : 0;
}

int wk_read_frame(wk_in_t *in, const uint8_t **body, size_t *len)
{
    uint32_t n;
    int rc;
    if ((rc = fill(in, 4)) != 0)
        return rc;
    n = load_le32(in->buf + in->start);
    if (n == 0 || n > WK_MAX_FRAME)
        return -2;
    if ((rc = fill(in, 4 + (size_t)n)) != 0)
        return rc;
    *body = in->buf + in->start + 4;
    *len = n;
    in->start += 4 + (size_t)n;
    return 0;
}

/* ---- output --------------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the flusher: something was queued */
    int fd;
    uint8_t *buf;
    size_t len, cap;
    /* Where the last frame starts when it is step output that may still grow
     * (SIZE_MAX: it is not), and whose it is. */
    size_t log_at;
    uint64_t log_handle;
    int32_t log_stream;
} out = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, NULL, 0, 0, SIZE_MAX, 0, 0};

/* The fixed-width head of a step-output frame: fixarray(5), NOTIFY, uint64
 * handle, fn, stream, bin32 length. Fixed width so the data can grow in place. */
#define LOG_HEAD 18

static void store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void reserve(size_t extra)
{
    size_t cap;
    uint8_t *nb;
    if (out.cap - out.len >= extra)
        return;
    cap = out.cap ? out.cap : 256 * 1024;
    while (cap - out.len < extra)
        cap *= 2;
    nb = (uint8_t *)realloc(out.buf, cap);
    if (nb == NULL)
        _exit(71); /* cannot keep the protocol's order any more: give up loudly */
    out.buf = nb;
    out.cap = cap;
}

/* Call with out.mu held. */
static void flush_locked(void)
{
    if (out.len == 0)
        return;
    if (wk_write_all(out.fd, out.buf, out.len) != 0)
        wk_leave(0); /* hm closed the channel: it is gone */
    out.len = 0;
    out.log_at = SIZE_MAX;
    if (out.cap > 4u * 1024u * 1024u) { /* a burst grew the buffer: give it back */
        free(out.buf);
        out.buf = NULL;
        out.cap = 0;
    }
}

static void append_frame(const uint8_t *body, size_t len)
{
    reserve(4 + len);
    store_le32(out.buf + out.len, (uint32_t)len);
    memcpy(out.buf + out.len + 4, body, len);
    out.len += 4 + len;
    out.log_at = SIZE_MAX;
}

void wk_send(const uint8_t *body, size_t len)
{
    pthread_mutex_lock(&out.mu);
    append_frame(body, len);
    flush_locked();
    pthread_mutex_unlock(&out.mu);
}

void wk_send_later(const uint8_t *body, size_t len)
{
    pthread_mutex_lock(&out.mu);
    append_frame(body, len);
    if (out.len >= WK_FLUSH_AT)
        flush_locked();
    else
        pthread_cond_signal(&out.wake);
    pthread_mutex_unlock(&out.mu);
}

void wk_send_step_log(uint64_t handle, int32_t stream, const uint8_t *data, size_t len)
{
    pthread_mutex_lock(&out.mu);
    while (len > 0) {
        size_t room, take;
        if (out.log_at == SIZE_MAX || out.log_handle != handle || out.log_stream != stream ||
            out.len - out.log_at - 4 - LOG_HEAD >= WK_MAX_LOG_FRAME) {
            uint8_t *h;
            int i;
            reserve(4 + LOG_HEAD);
            out.log_at = out.len;
            h = out.buf + out.len + 4;
            h[0] = 0x95; /* fixarray 5 */
            h[1] = WK_NOTIFY;
            h[2] = 0xcf; /* uint64 */
            for (i = 0; i < 8; i++)
                h[3 + i] = (uint8_t)(handle >> (56 - 8 * i));
            h[11] = WK_NOTE_STEP_LOG;
            h[12] = (uint8_t)stream;
            h[13] = 0xc6; /* bin32 */
            store_be32(h + 14, 0);
            store_le32(out.buf + out.len, LOG_HEAD);
            out.len += 4 + LOG_HEAD;
            out.log_handle = handle;
            out.log_stream = stream;
        }
        room = WK_MAX_LOG_FRAME - (out.len - out.log_at - 4 - LOG_HEAD);
        take = len < room ? len : room;
        reserve(take);
        memcpy(out.buf + out.len, data, take);
        out.len += take;
        {
            uint8_t *frame = out.buf + out.log_at;
            uint32_t body = (uint32_t)(out.len - out.log_at - 4);
            store_le32(frame, body);
            store_be32(frame + 4 + 14, body - LOG_HEAD);
        }
        data += take;
        len -= take;
        if (out.len >= WK_FLUSH_AT)
            flush_locked();
    }
    pthread_cond_signal(&out.wake);
    pthread_mutex_unlock(&out.mu);
}

void wk_flush(void)
{
    pthread_mutex_lock(&out.mu);
    flush_locked();
    pthread_mutex_unlock(&out.mu);
}

static void *flusher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&out.mu);
    for (;;) {
        struct timespec pause = {0, 1000000}; /* 1 ms: lets a burst gather */
        while (out.len == 0)
            pthread_cond_wait(&out.wake, &out.mu);
        pthread_mutex_unlock(&out.mu);
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&out.mu);
        flush_locked();
    }
    return NULL;
}

int wk_out_start(int fd)
{
    pthread_t t;
    pthread_attr_t attr;
    out.fd = fd;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&t, &attr, flusher, NULL) != 0) {
        pthread_attr_destroy(&attr);
        return -1;
    }
    pthread_attr_destroy(&attr);
    return 0;
}
