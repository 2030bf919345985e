/*
 * tar_fake_host.h - a host-API table that serves an archive from memory, for
 * driving the shell runner's tar extractor (plugins/shell/tar_extract.c)
 * without hm: the corpus driver (tar_extract_driver.c) and the fuzz target
 * (tar_extract_fuzz.c) both use it.
 *
 * Only what sh_extract_archive calls is filled in: archive_total_size,
 * archive_read, should_cancel and log. archive_read returns at most
 * `max_read` bytes per call (a host may return fewer bytes than asked), so a
 * small max_read exercises every buffer boundary of the extractor.
 *
 * Single-threaded: the state is one static struct, the call handle is 1.
 */
#ifndef HM_TAR_FAKE_HOST_H
#define HM_TAR_FAKE_HOST_H

#include "shell.h" /* first: its feature-test macros */

#include <stdio.h>
#include <string.h>

typedef struct fake_archive {
    const uint8_t *data;
    size_t size;
    size_t max_read; /* 0: no limit beyond the caller's cap */
    int print_logs;  /* 1: log lines go to stderr as "log LEVEL: message" */
    unsigned warnings;
} fake_archive_t;

static fake_archive_t g_fake;

static hm_status_t fake_log(hm_call_t call, int32_t level, const uint8_t *msg, size_t len)
{
    (void)call;
    if (level >= HM_LOG_WARNING)
        g_fake.warnings++;
    if (g_fake.print_logs)
        fprintf(stderr, "log %d: %.*s\n", (int)level, (int)len, (const char *)msg);
    return HM_OK;
}

static hm_status_t fake_should_cancel(hm_call_t call)
{
    (void)call;
    return HM_OK;
}

static hm_status_t fake_total(hm_call_t call, uint64_t *out)
{
    (void)call;
    *out = (uint64_t)g_fake.size;
    return HM_OK;
}

static hm_status_t fake_read(hm_call_t call, uint64_t offset, uint8_t *buf, size_t cap, size_t *got)
{
    size_t n;
    (void)call;
    if (offset >= g_fake.size) {
        *got = 0;
        return HM_OK;
    }
    n = g_fake.size - (size_t)offset;
    if (n > cap)
        n = cap;
    if (g_fake.max_read && n > g_fake.max_read)
        n = g_fake.max_read;
    memcpy(buf, g_fake.data + offset, n);
    *got = n;
    return HM_OK;
}

/* A host table with the four functions the extractor uses; the rest NULL. */
static hm_host_api_t fake_host_table(void)
{
    hm_host_api_t h;
    memset(&h, 0, sizeof h);
    h.header.struct_size = (uint32_t)sizeof h;
    h.header.abi_major = HM_ABI_MAJOR;
    h.header.abi_minor = HM_ABI_MINOR;
    h.log = fake_log;
    h.should_cancel = fake_should_cancel;
    h.archive_read = fake_read;
    h.archive_total_size = fake_total;
    return h;
}

#endif /* HM_TAR_FAKE_HOST_H */
