/*
 * calls.c — what hm-worker knows about running calls and open host requests.
 *
 * The call table maps a handle to its op and cancel flag. The plugin polls
 * should_cancel often, so lookups are a short critical section over an open-
 * addressing table (handles are random 64-bit numbers: the low bits hash well).
 *
 * A host request is a waiter on a list: the plugin thread that asked sleeps on
 * its own condition variable until the leader reads the REPLY.
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "hm_msgpack.h"

typedef struct slot {
    uint64_t handle; /* 0: empty; TOMB: deleted */
    int op;
    int cancelled;
} slot_t;

#define TOMB UINT64_MAX

static pthread_mutex_t calls_mu = PTHREAD_MUTEX_INITIALIZER;
static slot_t *slots = NULL;
static size_t n_slots = 0, n_used = 0, n_live = 0;

static slot_t *find(uint64_t handle)
{
    size_t i, mask;
    if (n_slots == 0 || handle == 0 || handle == TOMB)
        return NULL;
    mask = n_slots - 1;
    for (i = (size_t)handle & mask;; i = (i + 1) & mask) {
        if (slots[i].handle == handle)
            return &slots[i];
        if (slots[i].handle == 0)
            return NULL;
    }
}

static int grow(void)
{
    size_t cap = n_slots ? n_slots * 2 : 64, i;
    slot_t *ns;
    if (n_live * 4 < n_slots) /* mostly tombstones: rebuild at the same size */
        cap = n_slots;
    ns = (slot_t *)calloc(cap, sizeof *ns);
    if (ns == NULL)
        return -1;
    for (i = 0; i < n_slots; i++) {
        if (slots[i].handle != 0 && slots[i].handle != TOMB) {
            size_t j = (size_t)slots[i].handle & (cap - 1);
            while (ns[j].handle != 0)
                j = (j + 1) & (cap - 1);
            ns[j] = slots[i];
        }
    }
    free(slots);
    slots = ns;
    n_slots = cap;
    n_used = n_live;
    return 0;
}

int wk_calls_open(uint64_t handle, int op)
{
    size_t i, mask;
    pthread_mutex_lock(&calls_mu);
    if ((n_used + 1) * 2 > n_slots && grow() != 0) {
        pthread_mutex_unlock(&calls_mu);
        return -1;
    }
    mask = n_slots - 1;
    for (i = (size_t)handle & mask; slots[i].handle != 0 && slots[i].handle != TOMB; i = (i + 1) & mask)
        ;
    if (slots[i].handle == 0)
        n_used++;
    slots[i].handle = handle;
    slots[i].op = op;
    slots[i].cancelled = 0;
    n_live++;
    pthread_mutex_unlock(&calls_mu);
    return 0;
}

void wk_calls_close(uint64_t handle)
{
    slot_t *s;
    pthread_mutex_lock(&calls_mu);
    s = find(handle);
    if (s != NULL) {
        s->handle = TOMB;
        n_live--;
    }
    pthread_mutex_unlock(&calls_mu);
}

int wk_calls_op(uint64_t handle)
{
    slot_t *s;
    int op;
    pthread_mutex_lock(&calls_mu);
    s = find(handle);
    op = s ? s->op : -1;
    pthread_mutex_unlock(&calls_mu);
    return op;
}

int wk_calls_cancelled(uint64_t handle)
{
    slot_t *s;
    int c;
    pthread_mutex_lock(&calls_mu);
    s = find(handle);
    c = s ? s->cancelled : -1;
    pthread_mutex_unlock(&calls_mu);
    return c;
}

void wk_calls_cancel(uint64_t handle)
{
    slot_t *s;
    pthread_mutex_lock(&calls_mu);
    s = find(handle);
    if (s != NULL)
        s->cancelled = 1;
    pthread_mutex_unlock(&calls_mu);
}

size_t wk_calls_running(void)
{
    size_t n;
    pthread_mutex_lock(&calls_mu);
    n = n_live;
    pthread_mutex_unlock(&calls_mu);
    return n;
}

/* ---- host requests --------------------------------------------------------- */

typedef struct waiter {
    uint64_t id;
    pthread_cond_t cv;
    int done;
    wk_reply_t reply;
    struct waiter *next;
} waiter_t;

static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static waiter_t *waiters = NULL;
static uint64_t next_id = 1;

void wk_request(uint64_t handle, int fn, const uint8_t *args, size_t args_len, uint32_t nargs, wk_reply_t *out)
{
    waiter_t w;
    waiter_t **pp;
    hm_mp_writer_t mw;
    uint8_t *body;
    size_t body_len;

    memset(out, 0, sizeof *out);
    memset(&w, 0, sizeof w);
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&wait_mu);
    w.id = next_id++;
    w.next = waiters;
    waiters = &w;
    pthread_mutex_unlock(&wait_mu);

    hm_mp_writer_init(&mw);
    hm_mp_write_array(&mw, 4 + nargs);
    hm_mp_write_uint(&mw, WK_REQUEST);
    hm_mp_write_uint(&mw, w.id);
    hm_mp_write_uint(&mw, handle);
    hm_mp_write_uint(&mw, (uint64_t)fn);
    hm_mp_write_raw(&mw, args, args_len);
    if (hm_mp_writer_finish(&mw, &body, &body_len) != 0) {
        w.reply.status = HM_ERR_NO_MEMORY;
        w.done = 1;
    } else {
        wk_send(body, body_len);
        free(body);
        wk_pool_need_reader(); /* the REPLY must be read even if every thread is busy */
    }

    pthread_mutex_lock(&wait_mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &wait_mu);
    for (pp = &waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == &w) {
            *pp = w.next;
            break;
        }
    }
    pthread_mutex_unlock(&wait_mu);
    pthread_cond_destroy(&w.cv);
    *out = w.reply;
}

void wk_deliver_reply(uint64_t req_id, int32_t status, const uint8_t *data, size_t len, uint64_t number)
{
    waiter_t *w;
    pthread_mutex_lock(&wait_mu);
    for (w = waiters; w != NULL && w->id != req_id; w = w->next)
        ;
    if (w != NULL && !w->done) {
        w->reply.status = status;
        w->reply.number = number;
        if (data != NULL && len > 0) {
            w->reply.data = (uint8_t *)malloc(len);
            if (w->reply.data == NULL)
                w->reply.status = HM_ERR_NO_MEMORY;
            else {
                memcpy(w->reply.data, data, len);
                w->reply.len = len;
            }
        }
        w->done = 1;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&wait_mu);
}
