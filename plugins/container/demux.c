/*
 * demux.c — the Engine API's multiplexed stdout/stderr stream.
 *
 * A container created without a TTY sends its output (attach and logs alike)
 * as frames: an 8-byte header {stream type, 0, 0, 0, payload size as a
 * big-endian uint32}, then the payload. Stream type 1 is stdout, 2 stderr,
 * 0 stdin (never sent here; dropped). libcurl hands over the body in
 * arbitrary chunks, so a header may be split across two chunks: the parser
 * keeps the header bytes it has and the payload bytes still due, and sends
 * every piece of payload to emit_step_log at once, partial lines included,
 * so output shows as it is produced.
 *
 * If the first bytes are not a valid header (bytes 1-3 must be zero and the
 * type 0-2), the stream is a raw one (a TTY container) and everything is
 * passed through as stdout.
 */
#include "container.h"

#include <string.h>

void ct_demux_init(ct_demux_t *d, const sh_ctx_t *ctx)
{
    memset(d, 0, sizeof *d);
    d->ctx = ctx;
}

static int valid_header(const uint8_t *h)
{
    return h[0] <= 2 && h[1] == 0 && h[2] == 0 && h[3] == 0;
}

void ct_demux_feed(ct_demux_t *d, const uint8_t *data, size_t len)
{
    while (len > 0) {
        if (d->raw) {
            sh_emit_log(d->ctx, HM_STREAM_STDOUT, data, len);
            return;
        }
        if (d->remaining > 0) {
            size_t take = len < d->remaining ? len : d->remaining;
            if (d->stream != 0)
                sh_emit_log(d->ctx, d->stream, data, take);
            d->remaining -= (uint32_t)take;
            data += take;
            len -= take;
            continue;
        }
        /* collect a header, possibly across chunks */
        while (d->header_len < sizeof d->header && len > 0) {
            d->header[d->header_len++] = *data++;
            len--;
        }
        if (d->header_len < sizeof d->header)
            return; /* the rest of the header comes with the next chunk */
        if (!valid_header(d->header)) {
            /* Not framed: a raw stream. Only plausible at the very start;
             * later it means the stream is corrupt, and showing the bytes
             * beats dropping them. */
            if (d->started)
                sh_log(d->ctx, HM_LOG_WARNING,
                       "the container engine's log stream lost its framing; the rest is shown as "
                       "stdout");
            d->raw = 1;
            sh_emit_log(d->ctx, HM_STREAM_STDOUT, d->header, d->header_len);
            d->header_len = 0;
            continue;
        }
        d->started = 1;
        d->stream = d->header[0] == 1 ? HM_STREAM_STDOUT : d->header[0] == 2 ? HM_STREAM_STDERR : 0;
        d->remaining = (uint32_t)d->header[4] << 24 | (uint32_t)d->header[5] << 16 |
                       (uint32_t)d->header[6] << 8 | (uint32_t)d->header[7];
        d->header_len = 0;
    }
}
