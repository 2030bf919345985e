/*
 * tar_extract_driver.c - runs the shell runner's tar extractor on one archive
 * file, the way the plugin runs it for a step: sh_extract_archive() into an
 * empty workspace, the archive served through host->archive_read.
 *
 *   tar_extract_driver ARCHIVE WORKSPACE [MAX_READ]
 *
 * Prints one line on stdout: "ok", "stopped", or "error CODE: MESSAGE" (the
 * PluginError the step would fail with); host log lines go to stderr.
 * Exit status: 0 ok, 1 error, 2 stopped, 3 bad usage. Built and run by
 * tests/shell/test_tar_extract.py together with the plugin sources (plugins/shell).
 */
#include "tar_fake_host.h"

#include <stdlib.h>

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t cap = 0, n = 0, got;
    if (f == NULL)
        return NULL;
    do {
        if (n == cap) {
            uint8_t *p;
            cap = cap ? cap * 2 : 65536;
            p = (uint8_t *)realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        got = fread(data + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *size = n;
    return data;
}

int main(int argc, char **argv)
{
    hm_host_api_t host;
    sh_ctx_t ctx;
    sh_error_t err;
    uint8_t *data;
    size_t size = 0;
    int rc;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s ARCHIVE WORKSPACE [MAX_READ]\n", argv[0]);
        return 3;
    }
    data = read_file(argv[1], &size);
    if (data == NULL && size != 0) {
        perror(argv[1]);
        return 3;
    }
    g_fake.data = data;
    g_fake.size = size;
    g_fake.max_read = argc == 4 ? (size_t)strtoul(argv[3], NULL, 10) : 0;
    g_fake.print_logs = 1;
    host = fake_host_table();
    ctx.host = &host;
    ctx.call = 1;
    memset(&err, 0, sizeof err);
    rc = sh_extract_archive(&ctx, argv[2], &err);
    free(data);
    if (rc == SH_DONE) {
        printf("ok\n");
        return 0;
    }
    if (rc == SH_STOPPED) {
        printf("stopped\n");
        return 2;
    }
    printf("error %s: %s\n", err.code, err.message);
    return 1;
}
