/* step_log_batch.h — the step output of in-process plugins, gathered in C
 * (included once, by bridge.c, after the extern "Python" declarations).
 *
 * A runner that calls emit_step_log once per line would otherwise cross into
 * Python once per line: about a microsecond for the bare callback and several
 * with the work behind it, which caps a step's log at ~150k lines/s. While a
 * step call runs, its output is gathered here instead and handed to Python as
 * one chunk per call and stream:
 *   - when LB_FLUSH_AT bytes are waiting, or the stream changes;
 *   - about a millisecond after the first byte (a flusher thread), so a quiet
 *     step's last line is not held back;
 *   - before the same call's log, emit_event, write_stdout or write_stderr, so
 *     output keeps its order;
 *   - when the call returns, before hm sees its result.
 * hm-worker's output (worker/wire.c) batches the same way, for the same reason.
 *
 * Only the calls hm_bridge_invoke registers (execute_step) are gathered; any
 * other handle, or one used through another plugin's table, goes straight to
 * Python, which answers STALE_CALL, UNAVAILABLE or DENIED exactly as before.
 * A gathered chunk that Python refuses makes the call's next emit_step_log
 * return that status.
 *
 * Lock order: an entry's `deliver` mutex, then lb.mu. Python is only ever
 * called with `deliver` held and lb.mu released: cffi calls into C release the
 * GIL, so a Python thread waiting here never blocks a delivery that needs it. */
#if !defined(_WIN32)

#define LB_ENTRIES 256
/* 128 KiB, not more: a chunk becomes ~1,300 str and event objects at once, and
 * 1 MiB chunks raised the peak RSS of a 1M-line step from 37 to 51 MiB for no
 * gain in lines/s (measured: /usr/bin/time of hm run --format json). */
#define LB_FLUSH_AT (128u * 1024u)

typedef struct {
    hm_call_t call; /* 0: the entry is free */
    int32_t slot;
    int32_t stream;     /* of the bytes waiting */
    hm_status_t status; /* Python's answer to the last chunk */
    uint8_t *buf;
    size_t len, cap;
    pthread_mutex_t deliver; /* held across a delivery: chunks reach Python in order */
} lb_entry_t;

static struct {
    pthread_mutex_t mu; /* the table and every buffer */
    pthread_cond_t wake;
    int pending; /* some entry has bytes waiting since the flusher last looked */
    int flusher; /* 1: started, -1: could not be started (deliver at once) */
    int used[LB_ENTRIES];
    int n_used;
    lb_entry_t e[LB_ENTRIES];
} lb = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}, 0, {{0}}};

static pthread_once_t lb_init_once = PTHREAD_ONCE_INIT;

static void lb_init_mutexes(void) {
    int i;
    for (i = 0; i < LB_ENTRIES; i++) pthread_mutex_init(&lb.e[i].deliver, NULL);
}

/* Call with lb.mu held. */
static lb_entry_t *lb_find(hm_call_t call) {
    int i;
    for (i = 0; i < lb.n_used; i++) {
        lb_entry_t *e = &lb.e[lb.used[i]];
        if (e->call == call) return e;
    }
    return NULL;
}

/* Hands what `e` gathered for `call` to Python (nothing if `e` serves another
 * call by now). With `close`, also frees the entry, under the same locks, so no
 * byte can slip in between the last chunk and the end of the call. */
static hm_status_t lb_deliver(lb_entry_t *e, hm_call_t call, int close) {
    uint8_t *buf;
    size_t len;
    int32_t slot, stream;
    hm_status_t st = HM_OK;
    pthread_mutex_lock(&e->deliver);
    pthread_mutex_lock(&lb.mu);
    if (e->call != call) {
        pthread_mutex_unlock(&lb.mu);
        pthread_mutex_unlock(&e->deliver);
        return HM_OK;
    }
    buf = e->buf;
    len = e->len;
    slot = e->slot;
    stream = e->stream;
    e->buf = NULL;
    e->len = e->cap = 0;
    if (close) {
        int i;
        e->call = 0;
        for (i = 0; i < lb.n_used; i++)
            if (&lb.e[lb.used[i]] == e) {
                lb.used[i] = lb.used[--lb.n_used];
                break;
            }
    }
    pthread_mutex_unlock(&lb.mu);
    if (len) st = hm_py_emit_step_log(slot, call, stream, buf, len);
    free(buf);
    if (st != HM_OK && !close) {
        pthread_mutex_lock(&lb.mu);
        if (e->call == call) e->status = st;
        pthread_mutex_unlock(&lb.mu);
    }
    pthread_mutex_unlock(&e->deliver);
    return st;
}

static void *lb_flusher(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec pause = {0, 1000000}; /* 1 ms: lets a burst gather */
        hm_call_t calls[LB_ENTRIES];
        lb_entry_t *entries[LB_ENTRIES];
        int i, n = 0;
        pthread_mutex_lock(&lb.mu);
        while (!lb.pending) pthread_cond_wait(&lb.wake, &lb.mu);
        pthread_mutex_unlock(&lb.mu);
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lb.mu);
        lb.pending = 0;
        for (i = 0; i < lb.n_used; i++) {
            lb_entry_t *e = &lb.e[lb.used[i]];
            if (e->len) {
                calls[n] = e->call;
                entries[n++] = e;
            }
        }
        pthread_mutex_unlock(&lb.mu);
        for (i = 0; i < n; i++) lb_deliver(entries[i], calls[i], 0);
    }
    return NULL;
}

/* Call with lb.mu held. */
static void lb_start_flusher(void) {
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    if (lb.flusher) return;
    lb.flusher = -1;
    if (pthread_attr_init(&attr) != 0) return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* Signals stay with hm's own threads (Python handles them on the main one). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&t, &attr, lb_flusher, NULL) == 0) lb.flusher = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* Starts gathering `call`'s output (a full table just means it goes unbatched). */
static void lb_open(int32_t slot, hm_call_t call) {
    int i;
    pthread_once(&lb_init_once, lb_init_mutexes);
    pthread_mutex_lock(&lb.mu);
    if (!lb.flusher) lb_start_flusher();
    if (lb.flusher > 0 && lb.n_used < LB_ENTRIES)
        for (i = 0; i < LB_ENTRIES; i++)
            if (lb.e[i].call == 0) {
                lb_entry_t *e = &lb.e[i];
                e->call = call;
                e->slot = slot;
                e->stream = 0;
                e->status = HM_OK;
                lb.used[lb.n_used++] = i;
                break;
            }
    pthread_mutex_unlock(&lb.mu);
}

/* The call returned: what it gathered goes to Python now, and the entry is freed. */
static void lb_close(hm_call_t call) {
    lb_entry_t *e;
    pthread_mutex_lock(&lb.mu);
    e = lb_find(call);
    pthread_mutex_unlock(&lb.mu);
    if (e) lb_deliver(e, call, 1);
}

/* Before another kind of output of the same call: what waits goes first. */
static void lb_flush(int32_t slot, hm_call_t call) {
    lb_entry_t *e;
    pthread_mutex_lock(&lb.mu);
    e = lb.n_used ? lb_find(call) : NULL;
    if (e && (e->slot != slot || e->len == 0)) e = NULL;
    pthread_mutex_unlock(&lb.mu);
    if (e) lb_deliver(e, call, 0);
}

static hm_status_t lb_emit(int32_t slot, hm_call_t call, int32_t stream, const uint8_t *data, size_t len) {
    if ((stream != HM_STREAM_STDOUT && stream != HM_STREAM_STDERR) || (data == NULL && len))
        return HM_ERR_INVALID_ARGUMENT;
    for (;;) {
        lb_entry_t *e;
        pthread_mutex_lock(&lb.mu);
        e = lb.n_used ? lb_find(call) : NULL;
        if (e == NULL || e->slot != slot) {
            pthread_mutex_unlock(&lb.mu);
            return hm_py_emit_step_log(slot, call, stream, data, len);
        }
        if (e->status != HM_OK) {
            hm_status_t st = e->status;
            pthread_mutex_unlock(&lb.mu);
            return st;
        }
        if (len == 0) {
            pthread_mutex_unlock(&lb.mu);
            return HM_OK;
        }
        if (e->len && (e->stream != stream || e->len + len > LB_FLUSH_AT)) {
            pthread_mutex_unlock(&lb.mu);
            lb_deliver(e, call, 0);
            continue;
        }
        if (e->cap - e->len < len) {
            size_t cap = e->cap ? e->cap : 4096;
            uint8_t *nb;
            while (cap - e->len < len) cap *= 2;
            nb = (uint8_t *)realloc(e->buf, cap);
            if (nb == NULL) { /* no memory to gather in: hand this chunk over as it is */
                pthread_mutex_unlock(&lb.mu);
                lb_deliver(e, call, 0);
                return hm_py_emit_step_log(slot, call, stream, data, len);
            }
            e->buf = nb;
            e->cap = cap;
        }
        memcpy(e->buf + e->len, data, len);
        e->len += len;
        e->stream = stream;
        if (e->len >= LB_FLUSH_AT) {
            pthread_mutex_unlock(&lb.mu);
            return lb_deliver(e, call, 0);
        }
        if (!lb.pending) {
            lb.pending = 1;
            pthread_cond_signal(&lb.wake);
        }
        pthread_mutex_unlock(&lb.mu);
        return HM_OK;
    }
}

#else /* Windows: no gathering, every chunk goes to Python as it comes */

static void lb_open(int32_t slot, hm_call_t call) { (void)slot; (void)call; }
static void lb_close(hm_call_t call) { (void)call; }
static void lb_flush(int32_t slot, hm_call_t call) { (void)slot; (void)call; }
static hm_status_t lb_emit(int32_t slot, hm_call_t call, int32_t stream, const uint8_t *data, size_t len) {
    return hm_py_emit_step_log(slot, call, stream, data, len);
}

#endif
