/*
 * worker.h — internal declarations of hm-worker, the process that runs one
 * native plugin on hm's behalf (docs/worker-protocol.md is the contract).
 *
 * Layout:
 *   main.c       start-up, handshake, LOAD, dispatch of host messages, calls
 *   pool.c       the threads: who reads the protocol input, who runs a call
 *   wire.c       frames in (buffered reader) and out (one ordered, batched
 *                output buffer shared by every thread)
 *   calls.c      the table of running calls (handle -> op, cancel flag) and the
 *                waiters of host-API requests
 *   host_table.c the hm_host_api_t the plugin sees: each function answers
 *                locally or forwards to the host
 *   reaper.c     `hm-worker --reaper`: removes a run's directory if hm dies
 *
 * Threads: one thread at a time is the *leader* and reads the protocol input;
 * when it reads a CALL it runs the call itself, so a call starts without a
 * thread hop, and reading passes to another thread only if the call runs long
 * (pool.c). Plugin threads may call the host table at any time; everything
 * they touch here is guarded by the mutexes of wire.c, calls.c and pool.c.
 */
#ifndef HM_WORKER_H
#define HM_WORKER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_plugin.h"

#define WK_PROTO_MAJOR 1
#define WK_PROTO_MINOR 0

/* The largest frame either side may send (docs/worker-protocol.md §2). */
#define WK_MAX_FRAME (64u * 1024u * 1024u)
/* Step output merged into one NOTIFY frame at most. */
#define WK_MAX_LOG_FRAME (1u * 1024u * 1024u)
/* Buffered notifications are written once this much is waiting. */
#define WK_FLUSH_AT (256u * 1024u)

/* Message types. */
enum {
    WK_HELLO = 0,
    WK_LOAD = 1,
    WK_LOADED = 2,
    WK_CALL = 3,
    WK_RESULT = 4,
    WK_CANCEL = 5,
    WK_REQUEST = 6,
    WK_REPLY = 7,
    WK_NOTIFY = 8,
    WK_SHUTDOWN = 9
};

/* Operations of CALL. */
enum { WK_OP_MANIFEST = 0, WK_OP_EXECUTE_STEP = 1, WK_OP_ON_HOOK_EVENT = 2, WK_OP_RUN_SUBCOMMAND = 3 };

/* fn codes of REQUEST and NOTIFY. */
enum { WK_REQ_KV_GET = 1, WK_REQ_KV_SET = 2, WK_REQ_EMIT_EVENT = 3, WK_REQ_ARCHIVE_READ = 4,
       WK_REQ_ARCHIVE_SIZE = 5, WK_REQ_FS_READ_CONFIG = 6, WK_REQ_KV_CAS = 7 /* since 1.1 */ };
enum { WK_NOTE_LOG = 1, WK_NOTE_STEP_LOG = 2, WK_NOTE_STDOUT = 3, WK_NOTE_STDERR = 4 };

/* ---- wire.c --------------------------------------------------------------- */

/* Buffered frame reader over the protocol input; owned by the leader. */
typedef struct wk_in {
    int fd;
    uint8_t *buf;
    size_t cap, start, end;
} wk_in_t;

/* Makes `fd` the reader's (non-blocking; wk_read_frame waits itself). 0 or -1. */
int wk_in_start(wk_in_t *in, int fd);

/* Reads the next frame. On 0, *body and *len point into the reader's buffer and
 * stay valid until the next call. Returns -1 at end of file or on a read
 * error, -2 for a frame of length 0 or over WK_MAX_FRAME, -3 out of memory. */
int wk_read_frame(wk_in_t *in, const uint8_t **body, size_t *len);

/* Starts the output side on `fd` (and its flusher thread). Returns 0 or -1. */
int wk_out_start(int fd);

/* Sends one frame body now, after everything buffered before it. */
void wk_send(const uint8_t *body, size_t len);

/* Queues a frame body; it is written within about a millisecond. */
void wk_send_later(const uint8_t *body, size_t len);

/* Queues step output of `handle`, merged with the previous frame when that was
 * output of the same call and stream. */
void wk_send_step_log(uint64_t handle, int32_t stream, const uint8_t *data, size_t len);

/* Writes everything queued. */
void wk_flush(void);

/* ---- calls.c -------------------------------------------------------------- */

/* Registers a running call. Returns 0, or -1 when out of memory. */
int wk_calls_open(uint64_t handle, int op);
/* Forgets a call; its handle is stale from now on. */
void wk_calls_close(uint64_t handle);
/* The op of a running call, or -1 when the handle is not one (stale). */
int wk_calls_op(uint64_t handle);
/* 1 when CANCEL arrived for the call, 0 when not, -1 when the handle is stale. */
int wk_calls_cancelled(uint64_t handle);
/* Marks a call cancelled (unknown handles are ignored). */
void wk_calls_cancel(uint64_t handle);
/* Number of running calls. */
size_t wk_calls_running(void);

/* The answer to a REQUEST. `data` is malloc'd (or NULL) and owned by the caller. */
typedef struct wk_reply {
    int32_t status;
    uint8_t *data;
    size_t len;
    uint64_t number;
} wk_reply_t;

/* Sends REQUEST [6, id, handle, fn, <args>] where `args` is `nargs` msgpack
 * values already encoded, and waits for its REPLY. */
void wk_request(uint64_t handle, int fn, const uint8_t *args, size_t args_len, uint32_t nargs, wk_reply_t *out);
/* Hands a REPLY to the thread waiting for it (unknown ids are ignored). */
void wk_deliver_reply(uint64_t req_id, int32_t status, const uint8_t *data, size_t len, uint64_t number);

/* ---- host_table.c --------------------------------------------------------- */

/* The table handed to hm_load_plugin. `size` 0: the full table; otherwise a copy
 * that claims `size` bytes and ABI minor `minor`, with later fields NULL. */
const hm_host_api_t *wk_host_table(uint32_t size, uint32_t minor);

/* ---- pool.c --------------------------------------------------------------- */

/* A CALL read by the leader, with its payload copied (malloc'd, freed by the runner). */
typedef struct wk_call {
    uint64_t handle;
    int op;
    uint8_t *payload;
    size_t payload_len;
} wk_call_t;

/* Reads frames as the leader until one is a CALL (fills *call; never fails). */
typedef void (*wk_next_call_fn)(wk_call_t *call);
/* Runs a CALL and frees its payload. */
typedef void (*wk_run_call_fn)(wk_call_t *call);

/* Runs the thread pool on the calling thread; never returns. */
__attribute__((noreturn)) void wk_pool_run(wk_next_call_fn next, wk_run_call_fn run);
/* A plugin thread is about to wait for a reply: make sure someone reads. */
void wk_pool_need_reader(void);

/* ---- main.c --------------------------------------------------------------- */

/* Ends the worker with `status` after killing every process it started. */
__attribute__((noreturn)) void wk_leave(int status);

/* ---- reaper.c ------------------------------------------------------------- */

int wk_reaper_main(int argc, char **argv);

/* Writes all of `len` bytes to `fd` (retrying on EINTR and short writes).
 * Returns 0 or -1. */
int wk_write_all(int fd, const uint8_t *p, size_t len);

#endif /* HM_WORKER_H */
