/*
 * pool.c — the threads of hm-worker and who reads the protocol input.
 *
 * One thread at a time owns the reader (the *leader*). When it reads a CALL it
 * lets go of the reader and runs the call itself, so a call starts on the
 * thread that read it. Nobody is woken at that moment: most calls end within
 * microseconds, and their thread simply takes the reader back. Waking a thread
 * per call would cost a futex wake and a context switch every time.
 *
 * A call that runs longer still needs someone to read (hm's CANCEL, the
 * replies to other calls' host requests, new CALLs). The *standby* thread sees
 * to that: while a call runs and nobody reads, it hands the reader to an idle
 * thread (or a new one) after HANDOFF_NS; at once when a plugin thread waits
 * for a reply (wk_pool_need_reader). Leadership is handed by name: an idle
 * thread sleeps on its own condition variable until it is given the reader.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HANDOFF_NS (1000L * 1000L)  /* 1 ms */
#define ACTIVE_NS (1000L * 1000L * 1000L) /* the standby ticks while calls came in the last second */

typedef struct idler {
    pthread_cond_t cv;
    int woken;
    struct idler *next;
} idler_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t standby_cv = PTHREAD_COND_INITIALIZER;
static int reader_taken = 0;  /* a thread owns the reader */
static int spawning = 0;      /* a thread was created to take it */
static int urgent = 0;        /* a plugin thread waits for a reply: hand off now */
static int in_flight = 0;     /* calls running */
static int standby_ticking = 0;
static struct timespec free_since, last_call;
static idler_t *idlers = NULL; /* a stack: the most recently idle thread is warmest */

static wk_next_call_fn next_call;
static wk_run_call_fn run_call;

static long ns_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000000000L + (now.tv_nsec - t->tv_nsec);
}

static void *pool_thread(void *arg);

/* Returns 0, or -1 when no thread can be created. */
static int spawn_thread(void *(*fn)(void *))
{
    pthread_t t;
    pthread_attr_t attr;
    int rc;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, fn, NULL);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

/* Call with mu held: gives the free reader to an idle or a new thread. */
static void hand_off(void)
{
    if (idlers != NULL) {
        idler_t *next = idlers;
        idlers = next->next;
        reader_taken = 1; /* it is the woken thread's */
        next->woken = 1;
        pthread_cond_signal(&next->cv);
    } else if (!spawning && spawn_thread(pool_thread) == 0) {
        spawning = 1; /* the new thread takes the reader (or a returning one does) */
    }
    urgent = 0;
}

static void *standby(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        if (!reader_taken && !spawning && in_flight > 0 && (urgent || ns_since(&free_since) >= HANDOFF_NS))
            hand_off();
        standby_ticking = in_flight > 0 || ns_since(&last_call) < ACTIVE_NS;
        if (standby_ticking) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += HANDOFF_NS;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&standby_cv, &mu, &until);
        } else {
            pthread_cond_wait(&standby_cv, &mu);
        }
    }
    return NULL;
}

void wk_pool_need_reader(void)
{
    pthread_mutex_lock(&mu);
    if (!reader_taken && !spawning) {
        urgent = 1;
        pthread_cond_signal(&standby_cv);
    }
    pthread_mutex_unlock(&mu);
}

/* Blocks until this thread owns the reader. Call with mu held. */
static void take_reader(int fresh)
{
    if (fresh)
        spawning = 0;
    if (!reader_taken) {
        reader_taken = 1;
        return;
    }
    {
        idler_t me;
        pthread_cond_init(&me.cv, NULL);
        me.woken = 0;
        me.next = idlers;
        idlers = &me;
        while (!me.woken)
            pthread_cond_wait(&me.cv, &mu);
        pthread_cond_destroy(&me.cv);
    }
}

/* `arg` NULL: a thread spawned to take the reader (see hand_off). */
static void *pool_thread(void *arg)
{
    int fresh = arg == NULL;
    for (;;) {
        wk_call_t call;

        pthread_mutex_lock(&mu);
        take_reader(fresh);
        fresh = 0;
        pthread_mutex_unlock(&mu);

        next_call(&call);

        pthread_mutex_lock(&mu);
        reader_taken = 0;
        in_flight++;
        clock_gettime(CLOCK_MONOTONIC, &free_since);
        if (!standby_ticking) /* the standby sleeps for good: tell it calls run again */
            pthread_cond_signal(&standby_cv);
        pthread_mutex_unlock(&mu);

        run_call(&call);

        pthread_mutex_lock(&mu);
        in_flight--;
        clock_gettime(CLOCK_MONOTONIC, &last_call);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

void wk_pool_run(wk_next_call_fn next, wk_run_call_fn run)
{
    next_call = next;
    run_call = run;
    clock_gettime(CLOCK_MONOTONIC, &last_call);
    if (spawn_thread(standby) != 0) {
        dprintf(2, "hm-worker: cannot start its standby thread\n");
        wk_leave(70);
    }
    pool_thread((void *)1);
    abort(); /* pool_thread never returns */
}
