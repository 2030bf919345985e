/*
 * tar_extract_fuzz.c - a fuzz target for the shell runner's tar extractor
 * (plugins/shell/tar_extract.c), linked with every plugins/shell source.
 *
 * Each input is served as the run's workspace archive through a fake host
 * table (tar_fake_host.h) and extracted into an empty workspace, exactly as
 * the plugin does for a step. Besides the sanitizers' own checks, every run
 * must keep these invariants (a violation aborts, so the fuzzer reports it):
 *   - nothing is created, changed or linked outside the workspace: the box
 *     holds only ws/ and outside/, and outside/secret keeps its content and
 *     its link count of 1;
 *   - the workspace holds only directories, regular files and symlinks (no
 *     device node or FIFO);
 *   - a failure carries one of the documented PluginError codes and a message.
 *
 * Two ways to build it:
 *
 *   libFuzzer (clang): `python tests/shell/tar_fuzz.py --libfuzzer`, or by
 *   hand: clang -g -O1 -DHM_LIBFUZZER -fsanitize=fuzzer,address,undefined
 *   with -Ihm_plugin_sdk/include -Iplugins/shell -Itests/c, this file and
 *   every .c file of plugins/shell, -lpthread; then
 *     ./tar_fuzz -max_total_time=600 CORPUS_DIR
 *   (LLVMFuzzerCustomMutator fixes header checksums after each mutation, so
 *   the fuzzer gets past the checksum test.)
 *
 *   Standalone (any C compiler; what the test suite uses): the same target
 *   with a small deterministic mutator and main():
 *     ./tar_fuzz [-runs=N] [-seed=S] SEED_FILE_OR_DIR...
 *   tests/shell/tar_fuzz.py builds either flavour, writes a seed corpus and
 *   runs it: `python tests/shell/tar_fuzz.py --runs 1000000` fuzzes for longer.
 *
 * The box lives in $HM_TAR_FUZZ_DIR (default: a new /tmp/hm-tar-fuzz-XXXXXX).
 * The input being run is saved as last-input.tar there first, so a crash can
 * be replayed: ./tar_fuzz -runs=0 DIR/last-input.tar.
 */
#include "tar_fake_host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_root[4096]; /* the fuzz directory */
static char g_box[4200];  /* g_root/box: ws/ and outside/ */
static char g_ws[4300];   /* g_box/ws */
static const char SECRET[] = "secret";

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "tar_extract_fuzz: INVARIANT BROKEN: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* ---- the box ------------------------------------------------------------ */

/* Removes everything below the directory fd `dfd` (not following symlinks),
 * making directories writable first: the archive may have made them 0500. */
static void empty_dir(int dfd)
{
    DIR *d = fdopendir(dfd);
    struct dirent *e;
    if (d == NULL)
        die("cannot read a workspace directory", strerror(errno));
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            int sub;
            fchmodat(dirfd(d), e->d_name, 0700, 0);
            sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                empty_dir(sub);
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        } else {
            unlinkat(dirfd(d), e->d_name, 0);
        }
        rewinddir(d); /* entries were removed: start over, never skip one */
    }
    closedir(d);
}

/* Every entry below dfd is a directory, a regular file or a symlink. */
static void check_kinds(int dfd, const char *where)
{
    DIR *d = fdopendir(dfd);
    struct dirent *e;
    if (d == NULL)
        die("cannot read a workspace directory", strerror(errno));
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            die("an entry vanished while checking", e->d_name);
        if (S_ISDIR(sb.st_mode)) {
            int sub;
            fchmodat(dirfd(d), e->d_name, 0700, 0);
            sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                die("cannot open a directory the archive made", e->d_name);
            check_kinds(sub, where);
        } else if (!S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
            die("the workspace holds something that is not a file, directory or symlink", e->d_name);
        }
    }
    closedir(d);
}

static void check_outside(void)
{
    char path[4400], buf[64];
    struct stat sb;
    DIR *d;
    struct dirent *e;
    int fd, n = 0;
    ssize_t got;

    d = opendir(g_box);
    if (d == NULL)
        die("the box vanished", g_box);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "ws") &&
            strcmp(e->d_name, "outside"))
            die("something appeared next to the workspace", e->d_name);
    }
    closedir(d);
    snprintf(path, sizeof path, "%s/outside", g_box);
    d = opendir(path);
    if (d == NULL)
        die("outside/ vanished", path);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    }
    closedir(d);
    if (n != 1)
        die("something appeared in outside/", NULL);
    snprintf(path, sizeof path, "%s/outside/secret", g_box);
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1)
        die("outside/secret was replaced or hard-linked", path);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    got = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)(sizeof SECRET - 1) || memcmp(buf, SECRET, sizeof SECRET - 1) != 0)
        die("outside/secret was written to", path);
}

static void setup(void)
{
    char path[4400];
    const char *dir = getenv("HM_TAR_FUZZ_DIR");
    int fd;
    if (dir && *dir) {
        snprintf(g_root, sizeof g_root, "%s", dir);
        mkdir(g_root, 0700);
    } else {
        snprintf(g_root, sizeof g_root, "/tmp/hm-tar-fuzz-XXXXXX");
        if (mkdtemp(g_root) == NULL)
            die("mkdtemp failed", strerror(errno));
    }
    snprintf(g_box, sizeof g_box, "%s/box", g_root);
    snprintf(g_ws, sizeof g_ws, "%s/ws", g_box);
    mkdir(g_box, 0700);
    fd = open(g_box, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        die("cannot create the box", g_box);
    empty_dir(fd); /* a previous run's leftovers */
    snprintf(path, sizeof path, "%s/outside", g_box);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/outside/secret", g_box);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, SECRET, sizeof SECRET - 1) != (ssize_t)(sizeof SECRET - 1))
        die("cannot write outside/secret", path);
    close(fd);
    fprintf(stderr, "tar_extract_fuzz: box %s (the input being run is %s/last-input.tar)\n", g_box, g_root);
}

static void save_input(const uint8_t *data, size_t size)
{
    char path[4400];
    FILE *f;
    snprintf(path, sizeof path, "%s/last-input.tar", g_root);
    f = fopen(path, "wb");
    if (f) {
        if (size)
            fwrite(data, 1, size, f);
        fclose(f);
    }
}

static int known_code(const char *code)
{
    static const char *const codes[] = {"bad_archive", "archive_read_failed", "workspace_extract_failed",
                                        "workspace_unavailable", "out_of_memory"};
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i]) == 0)
            return 1;
    }
    return 0;
}

/* ---- the target --------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hm_host_api_t host;
    sh_ctx_t ctx;
    sh_error_t err;
    int rc, fd;

    if (g_root[0] == '\0')
        setup();
    save_input(data, size);
    if (mkdir(g_ws, 0700) != 0)
        die("cannot create the workspace", strerror(errno));
    g_fake.data = data;
    g_fake.size = size;
    g_fake.max_read = size % 5 == 0 ? 1 + size % 1021 : 0; /* sometimes short reads */
    g_fake.print_logs = 0;
    host = fake_host_table();
    ctx.host = &host;
    ctx.call = 1;
    memset(&err, 0, sizeof err);
    rc = sh_extract_archive(&ctx, g_ws, &err);
#ifdef HM_FUZZ_SELF_TEST
    { /* what an extractor that escaped would leave: the test proves the checks see it */
        char path[4400];
        int out;
        snprintf(path, sizeof path, "%s/outside/escaped", g_box);
        out = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (out >= 0)
            close(out);
    }
#endif
    if (rc == SH_FAILED && (!known_code(err.code) || err.message[0] == '\0'))
        die("a failure without a documented code and a message", err.code);
    if (rc != SH_DONE && rc != SH_FAILED)
        die("an outcome other than done or failed (nothing asked to stop)", NULL);
    check_outside();
    fd = open(g_ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        die("the workspace itself was replaced", g_ws);
    check_kinds(fd, g_ws);
    fd = open(g_ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    empty_dir(fd);
    if (rmdir(g_ws) != 0)
        die("cannot remove the workspace", strerror(errno));
    return 0;
}

/* ---- checksums: what makes mutated headers reach the parser ------------- */

/* Recomputes the checksum of every 512-byte block that carries a ustar magic. */
static void fix_checksums(uint8_t *data, size_t size)
{
    size_t at;
    for (at = 0; at + 512 <= size; at += 512) {
        uint8_t *h = data + at;
        unsigned sum = 0;
        size_t i;
        if (memcmp(h + 257, "ustar", 5) != 0)
            continue;
        memset(h + 148, ' ', 8);
        for (i = 0; i < 512; i++)
            sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum & 0777777u);
        h[155] = ' ';
    }
}

#ifdef HM_LIBFUZZER

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 8 != 0) /* now and then, keep a bad checksum */
        fix_checksums(data, size);
    return size;
}

#else /* the standalone fuzzer */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

typedef struct input {
    uint8_t *data;
    size_t size;
} input_t;

static input_t *g_seeds;
static size_t g_nseeds, g_seeds_cap;

static void add_seed(const char *path)
{
    FILE *f = fopen(path, "rb");
    input_t in;
    long n;
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    in.size = n > 0 ? (size_t)n : 0;
    in.data = (uint8_t *)malloc(in.size + 1);
    if (in.data == NULL || fread(in.data, 1, in.size, f) != in.size) {
        free(in.data);
        fclose(f);
        return;
    }
    fclose(f);
    if (g_nseeds == g_seeds_cap) {
        g_seeds_cap = g_seeds_cap ? g_seeds_cap * 2 : 16;
        g_seeds = (input_t *)realloc(g_seeds, g_seeds_cap * sizeof *g_seeds);
        if (g_seeds == NULL)
            die("out of memory", NULL);
    }
    g_seeds[g_nseeds++] = in;
}

static void add_seeds(const char *path)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;
    if (stat(path, &sb) != 0)
        return;
    if (!S_ISDIR(sb.st_mode)) {
        add_seed(path);
        return;
    }
    d = opendir(path);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char child[4400];
        if (e->d_name[0] == '.')
            continue;
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        add_seed(child);
    }
    closedir(d);
}

/* Header field offsets and widths worth aiming at. */
static const size_t FIELDS[][2] = {{0, 100},   {100, 8},   {124, 12},  {136, 12},  {156, 1},
                                   {157, 100}, {257, 8},   {345, 155}, {329, 8},   {337, 8}};
static const char TYPES[] = "0125673456xgLKDV\0Sz";
static const char *const NAMES[] = {"..", "../x", "/abs", "a/../../b", "l", "l/x", ".", "./", "a/",
                                    "d/l/..", "x/y/z", "link", "link/in"};

static void put_number(uint8_t *field, size_t width)
{
    uint64_t v;
    switch (below(5)) {
    case 0: /* base-256, up to 2^64 - 1 */
        memset(field, 0, width);
        field[0] = 0x80;
        v = rnd() >> below(64);
        for (size_t i = width; i > 1 && v; i--, v >>= 8)
            field[i - 1] = (uint8_t)v;
        break;
    case 1: /* garbage */
        for (size_t i = 0; i < width; i++)
            field[i] = (uint8_t)rnd();
        break;
    default: /* octal */
        v = below(4) == 0 ? rnd() : below(4096);
        snprintf((char *)field, width, "%0*llo", (int)width - 1, (unsigned long long)v);
        break;
    }
}

/* One random change to buf[0..*size) (capacity cap). */
static void mutate_once(uint8_t *buf, size_t *size, size_t cap)
{
    size_t n = *size, at, len;
    switch (below(9)) {
    case 0: /* flip a bit */
        if (n)
            buf[below(n)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* a random byte */
        if (n)
            buf[below(n)] = (uint8_t)rnd();
        break;
    case 2: /* a header field gets a number */
    case 3: {
        size_t block = below(n / 512 + 1) * 512;
        size_t f = below(sizeof FIELDS / sizeof FIELDS[0]);
        if (block + 512 <= n && FIELDS[f][1] > 1)
            put_number(buf + block + FIELDS[f][0], FIELDS[f][1]);
        break;
    }
    case 4: { /* a header gets another type */
        size_t block = below(n / 512 + 1) * 512;
        if (block + 512 <= n)
            buf[block + 156] = (uint8_t)TYPES[below(sizeof TYPES - 1)];
        break;
    }
    case 5: { /* a name or link name gets a nasty value */
        size_t block = below(n / 512 + 1) * 512;
        const char *s = NAMES[below(sizeof NAMES / sizeof NAMES[0])];
        if (block + 512 <= n) {
            uint8_t *field = buf + block + (below(2) ? 0 : 157);
            memset(field, 0, 100);
            memcpy(field, s, strlen(s));
        }
        break;
    }
    case 6: /* cut the end */
        *size = below(n + 1);
        break;
    case 7: /* duplicate a chunk (e.g. a whole entry) */
        at = below(n + 1);
        len = below(n - at + 1);
        if (n + len <= cap) {
            memmove(buf + at + len, buf + at, n - at);
            *size = n + len;
        }
        break;
    default: /* splice in the start of another seed */
        if (g_nseeds) {
            const input_t *o = &g_seeds[below(g_nseeds)];
            at = below(n / 512 + 1) * 512;
            len = o->size < cap - at ? o->size : cap - at;
            len = below(len + 1);
            if (at <= n && at + len <= cap) {
                memcpy(buf + at, o->data, len);
                if (at + len > n)
                    *size = at + len;
            }
        }
        break;
    }
}

int main(int argc, char **argv)
{
    long runs = 1000, i;
    size_t cap = 1 << 20;
    uint8_t *buf;
    int a;

    for (a = 1; a < argc; a++) {
        if (strncmp(argv[a], "-runs=", 6) == 0)
            runs = strtol(argv[a] + 6, NULL, 10);
        else if (strncmp(argv[a], "-seed=", 6) == 0)
            g_rng = strtoull(argv[a] + 6, NULL, 10) * 0x9e3779b97f4a7c15ull + 1;
        else
            add_seeds(argv[a]);
    }
    if (g_nseeds == 0) {
        fprintf(stderr, "usage: %s [-runs=N] [-seed=S] SEED_FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (i = 0; i < (long)g_nseeds; i++)
        LLVMFuzzerTestOneInput(g_seeds[i].data, g_seeds[i].size);
    buf = (uint8_t *)malloc(cap);
    if (buf == NULL)
        return 1;
    for (i = 0; i < runs; i++) {
        const input_t *s = &g_seeds[below(g_nseeds)];
        size_t size = s->size < cap ? s->size : cap, k, m = 1 + below(6);
        memcpy(buf, s->data, size);
        for (k = 0; k < m; k++)
            mutate_once(buf, &size, cap);
        if (below(8) != 0)
            fix_checksums(buf, size);
        LLVMFuzzerTestOneInput(buf, size);
    }
    free(buf);
    printf("tar_extract_fuzz: %zu seeds and %ld mutated inputs, no invariant broken\n", g_nseeds, runs);
    return 0;
}

#endif
