/*
 * tar_extract.c — streams the run's workspace archive (an uncompressed POSIX
 * tar the host serves through archive_read) into the step's workspace.
 *
 * Formats: ustar (with the 155-byte prefix), PAX extended headers ('x':
 * path, linkpath, size, mtime; 'g' is skipped), GNU long names ('L' / 'K'),
 * base-256 numbers, and old V7 headers (a regular entry whose name ends in
 * '/' is a directory). Entry types: regular files, directories, symbolic
 * links, hard links; FIFOs and devices are skipped with a warning. A later
 * entry with the same name replaces the earlier one, as tar does.
 *
 * The archive is read in SH_CHUNK pieces and file data goes straight from
 * that buffer to disk: memory use does not depend on the archive's size.
 * should_cancel is polled before every read from the host.
 *
 * Security: the archive comes from the project, and a step may run with more
 * rights than whoever wrote it, so the extractor never writes outside the
 * workspace:
 *   - an absolute name, or one with a '..' component, is refused (bad_archive);
 *   - parents are opened one component at a time relative to the workspace
 *     with O_NOFOLLOW|O_DIRECTORY: an entry under a symlink the archive made
 *     is refused, never written through;
 *   - files are created with O_CREAT|O_EXCL|O_NOFOLLOW after unlinking
 *     whatever had that name (an existing entry is never opened);
 *   - a hard link must point at an earlier entry (the workspace starts
 *     empty, so whatever is there came from the archive), found the same way;
 *   - a size is checked against what is left of the archive before padding
 *     is added to it, so a size near 2^64 cannot wrap around and make the
 *     reader take an entry's data for headers.
 * tests/shell/test_tar_extract.py runs a corpus of hostile archives through
 * this file, and tests/c/tar_extract_fuzz.c fuzzes it.
 * Directories are created 0700 and get their archived mode and mtime at the
 * end (deepest first), so read-only directories can still be filled.
 */
#include "shell.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define BLOCK 512u
/* Largest PAX / GNU long-name header we accept. */
#define META_MAX (1 << 20)
/* Longest entry name we accept. */
#define NAME_MAX_LEN 4096
/* Longest path component: what Linux and macOS file systems can name. A longer
 * one is the archive's fault, not the disk's, and is reported as such. */
#define COMPONENT_MAX 255

#define ARCHIVE_SUGGESTION                                                                       \
    "hm builds the workspace archive from the project; if another tool produced or changed it, " \
    "check that it is an uncompressed POSIX tar with relative paths inside the project"
#define UNSAFE_SUGGESTION                                                                      \
    "an archive entry may not be absolute, contain '..', or lie under a symbolic link; remove " \
    "or rename the offending file or link in the project"
#define WRITE_SUGGESTION "check free disk space and the permissions of the workspace directory"

typedef struct dir_fixup {
    char *path;
    unsigned mode;
    int has_mtime;
    struct timespec mtime;
    size_t seq; /* order of appearance: a later entry for the same path wins */
} dir_fixup_t;

typedef struct tar_state {
    const sh_ctx_t *ctx;
    sh_error_t *err;
    const char *root;
    int root_fd;
    uint64_t total;  /* archive size */
    uint64_t offset; /* next archive byte to fetch from the host */
    uint8_t *buf;
    size_t pos;      /* next unconsumed byte in buf */
    size_t len;      /* bytes in buf */
    unsigned reads;
    int cancelled;
    char *cache_path; /* parent directory opened last (relative path) ... */
    int cache_fd;     /* ... and its fd; see get_parent */
    dir_fixup_t *dirs;
    size_t ndirs;
    size_t dirs_cap;
} tar_state_t;

typedef struct entry {
    char type;
    char *rel;  /* normalised relative path */
    char *link; /* raw link target (symlink) or normalised target (hard link) */
    const char *raw; /* name as archived, for messages */
    unsigned mode;
    uint64_t size;
    int has_mtime;
    struct timespec mtime;
    uint64_t at; /* archive offset of the header */
} entry_t;

/* What PAX / GNU headers said about the next entry. */
typedef struct pending {
    char *pax_path;
    char *pax_linkpath;
    char *gnu_longname;
    char *gnu_longlink;
    int has_size;
    uint64_t size;
    int has_mtime;
    struct timespec mtime;
} pending_t;

/* ---- errors ------------------------------------------------------------- */

static uint64_t archive_pos(const tar_state_t *st)
{
    return st->offset - (uint64_t)(st->len - st->pos);
}

static int oom(tar_state_t *st)
{
    return sh_err_set(st->err, "out_of_memory", NULL, "out of memory extracting the archive");
}

/* A filesystem operation on rel failed with errnum. */
static int write_error(tar_state_t *st, int errnum, const char *action, const char *rel)
{
    char eb[256];
    if (errnum == ENOMEM)
        return oom(st);
    sh_err_set(st->err, "workspace_extract_failed", WRITE_SUGGESTION,
               "cannot %s %s/%s while extracting the workspace archive: %s", action, st->root, rel,
               sh_strerror(errnum, eb, sizeof eb));
    st->err->retryable = errnum == EMFILE || errnum == ENFILE;
    return SH_FAILED;
}

static int truncated(tar_state_t *st)
{
    return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                      "the workspace archive is truncated: it ends at byte %llu in the middle of "
                      "an entry (archive size %llu)",
                      (unsigned long long)archive_pos(st), (unsigned long long)st->total);
}

static int bad(tar_state_t *st, const char *fmt, unsigned long long a)
{
    /* fmt has exactly one %llu */
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a);
    return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION, "%s", msg);
}

/* ---- reading the archive ------------------------------------------------ */

/* Refills the buffer (pos == len). Returns 1, 0 at the end of the archive,
 * or -1 (error set, or st->cancelled). */
static int fill(tar_state_t *st)
{
    const hm_host_api_t *h = st->ctx->host;
    size_t cap = SH_CHUNK, got = 0;
    hm_status_t s;

    if (st->offset >= st->total)
        return 0;
    if (sh_should_cancel(st->ctx)) {
        st->cancelled = 1;
        return -1;
    }
    if (st->total - st->offset < cap)
        cap = (size_t)(st->total - st->offset);
    s = h->archive_read(st->ctx->call, st->offset, st->buf, cap, &got);
    st->reads++;
    if (s != HM_OK) {
        sh_err_set(st->err, "archive_read_failed",
                   "this is a host-side problem reading the run's workspace archive; retry, and "
                   "report it if it persists",
                   "host archive_read failed at byte %llu of %llu with status %d",
                   (unsigned long long)st->offset, (unsigned long long)st->total, (int)s);
        st->err->retryable = s == HM_ERR_IO;
        return -1;
    }
    if (got > cap)
        got = cap; /* a host bug; never trust it past our buffer */
    if (got == 0) {
        st->total = st->offset; /* the host says it ends here */
        return 0;
    }
    st->pos = 0;
    st->len = got;
    st->offset += got;
    return 1;
}

static int read_exact(tar_state_t *st, uint8_t *dst, size_t n)
{
    while (n > 0) {
        size_t k;
        if (st->pos == st->len) {
            int r = fill(st);
            if (r < 0)
                return SH_FAILED;
            if (r == 0)
                return truncated(st);
        }
        k = st->len - st->pos < n ? st->len - st->pos : n;
        memcpy(dst, st->buf + st->pos, k);
        st->pos += k;
        dst += k;
        n -= k;
    }
    return 0;
}

/* Skips n bytes: from the buffer first, then by moving the read offset
 * (archive_read is random access, no need to fetch what we ignore). */
static int skip(tar_state_t *st, uint64_t n)
{
    size_t k = st->len - st->pos;
    if (n <= k) {
        st->pos += (size_t)n;
        return 0;
    }
    n -= k;
    st->pos = st->len;
    if (n > st->total - st->offset) {
        st->offset = st->total;
        return truncated(st);
    }
    st->offset += n;
    return 0;
}

static uint64_t padding(uint64_t size)
{
    return (BLOCK - size % BLOCK) % BLOCK;
}

/* Skips an entry's data and its padding. A size field near 2^64 would make
 * size + padding wrap around to a small number and land the reader inside the
 * entry's "data", where the archive could hide entries; a size larger than
 * what is left of the archive is a truncation whatever its padding. */
static int skip_data(tar_state_t *st, uint64_t size)
{
    if (size > st->total - archive_pos(st)) {
        st->pos = st->len;
        st->offset = st->total;
        return truncated(st);
    }
    return skip(st, size + padding(size));
}

/* ---- numbers ------------------------------------------------------------ */

/* Parses a numeric header field: octal (space/NUL padded) or base-256
 * (first byte 0x80; negative values are refused). Returns 0 or -1. */
static int parse_num(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (p[0] & 0x80u) {
        if (p[0] != 0x80u)
            return -1; /* negative (0xff) or garbage */
        for (i = 1; i < n; i++) {
            if (v >> 56)
                return -1;
            v = (v << 8) | p[i];
        }
        *out = v;
        return 0;
    }
    while (i < n && (p[i] == ' ' || p[i] == '\0'))
        i++;
    while (i < n && p[i] >= '0' && p[i] <= '7') {
        if (v >> 61)
            return -1;
        v = v * 8 + (uint64_t)(p[i] - '0');
        i++;
    }
    for (; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\0')
            return -1;
    }
    *out = v;
    return 0;
}

/* Parses an unsigned decimal of exactly n characters. Returns 0 or -1. */
static int parse_decimal(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    if (n == 0)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* PAX time: [-]seconds[.fraction]. Returns 0 or -1. */
static int parse_pax_time(const char *s, size_t n, struct timespec *ts)
{
    size_t i = 0, dot;
    int neg = 0;
    uint64_t sec, nsec = 0;
    unsigned digits = 0;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    for (dot = i; dot < n && s[dot] != '.'; dot++)
        ;
    if (parse_decimal(s + i, dot - i, &sec) != 0 || sec > (uint64_t)INT32_MAX * 1024)
        return -1;
    if (dot < n) {
        for (i = dot + 1; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            if (digits < 9) {
                nsec = nsec * 10 + (uint64_t)(s[i] - '0');
                digits++;
            }
        }
        for (; digits < 9; digits++)
            nsec *= 10;
    }
    if (neg && nsec > 0) {
        ts->tv_sec = -(time_t)sec - 1;
        ts->tv_nsec = (long)(1000000000u - nsec);
    } else {
        ts->tv_sec = neg ? -(time_t)sec : (time_t)sec;
        ts->tv_nsec = (long)nsec;
    }
    return 0;
}

/* ---- metadata headers --------------------------------------------------- */

static char *dup_bytes(const char *s, size_t n)
{
    char *d = (char *)malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void pending_clear(pending_t *pd)
{
    free(pd->pax_path);
    free(pd->pax_linkpath);
    free(pd->gnu_longname);
    free(pd->gnu_longlink);
    memset(pd, 0, sizeof *pd);
}

/* Reads the data of a PAX / GNU metadata entry (plus padding) into a
 * malloc'd, NUL-terminated buffer. */
static int read_meta(tar_state_t *st, uint64_t size, char **out)
{
    char *d;
    *out = NULL;
    if (size > META_MAX) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the workspace archive has a %llu-byte extended header at byte %llu (more than "
                 "the %d bytes accepted)",
                 (unsigned long long)size, (unsigned long long)archive_pos(st), META_MAX);
        return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION, "%s", msg);
    }
    d = (char *)malloc((size_t)size + 1);
    if (d == NULL)
        return oom(st);
    if (read_exact(st, (uint8_t *)d, (size_t)size) != 0 || skip(st, padding(size)) != 0) {
        free(d);
        return SH_FAILED;
    }
    d[size] = '\0';
    *out = d;
    return 0;
}

/* Replaces *slot with a copy of a PAX path value ("" clears it). */
static int set_pax_path(tar_state_t *st, char **slot, const char *v, size_t n)
{
    free(*slot);
    *slot = NULL;
    if (memchr(v, '\0', n) != NULL)
        return bad(st, "the workspace archive has a PAX path with a NUL byte before byte %llu",
                   (unsigned long long)archive_pos(st));
    if (n == 0)
        return 0;
    *slot = dup_bytes(v, n);
    return *slot ? 0 : oom(st);
}

static int parse_pax(tar_state_t *st, const char *d, size_t n, pending_t *pd)
{
    unsigned long long at = (unsigned long long)archive_pos(st);
    size_t i = 0;
    while (i < n) {
        size_t j = i, rec_end, kvlen;
        uint64_t len = 0;
        const char *kv, *eq, *val;
        size_t klen, vlen;
        if (d[i] == '\0')
            break; /* NUL padding after the last record */
        while (j < n && d[j] >= '0' && d[j] <= '9') {
            len = len * 10 + (uint64_t)(d[j] - '0');
            if (len > n)
                return bad(st, "the workspace archive has a malformed PAX extended header before "
                               "byte %llu", at);
            j++;
        }
        if (j == i || j >= n || d[j] != ' ' || len <= j - i + 1 || len > n - i ||
            d[i + len - 1] != '\n')
            return bad(st, "the workspace archive has a malformed PAX extended header before byte "
                           "%llu", at);
        rec_end = i + (size_t)len;
        kv = d + j + 1;
        kvlen = rec_end - 1 - (j + 1);
        eq = (const char *)memchr(kv, '=', kvlen);
        if (eq == NULL)
            return bad(st, "the workspace archive has a PAX record without '=' before byte %llu",
                       at);
        klen = (size_t)(eq - kv);
        val = eq + 1;
        vlen = kvlen - klen - 1;
        if (klen == 4 && memcmp(kv, "path", 4) == 0) {
            if (set_pax_path(st, &pd->pax_path, val, vlen) != 0)
                return SH_FAILED;
        } else if (klen == 8 && memcmp(kv, "linkpath", 8) == 0) {
            if (set_pax_path(st, &pd->pax_linkpath, val, vlen) != 0)
                return SH_FAILED;
        } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
            if (vlen > 0) {
                if (parse_decimal(val, vlen, &pd->size) != 0) {
                    char msg[256];
                    snprintf(msg, sizeof msg,
                             "the workspace archive has an invalid PAX size '%.*s' before byte %llu",
                             (int)(vlen > 40 ? 40 : vlen), val, at);
                    return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION, "%s", msg);
                }
                pd->has_size = 1;
            }
        } else if (klen == 5 && memcmp(kv, "mtime", 5) == 0) {
            /* an unparsable mtime only costs us the timestamp */
            pd->has_mtime = parse_pax_time(val, vlen, &pd->mtime) == 0;
        }
        /* uid, gid, uname, atime, comment, hdrcharset, vendor keys: ignored */
        i = rec_end;
    }
    return 0;
}

/* ---- names -------------------------------------------------------------- */

/* Turns an archived name into a clean relative path: no empty or '.'
 * components; refuses absolute names and '..'. *out may be "" (the root). */
static int normalize(tar_state_t *st, const char *what, const char *raw, char **out)
{
    size_t n = strlen(raw), k = 0;
    const char *p = raw;
    char *o;
    *out = NULL;
    if (raw[0] == '/')
        return sh_err_set(st->err, "bad_archive", UNSAFE_SUGGESTION,
                          "refusing to extract the workspace archive: %s '%s' is an absolute path",
                          what, raw);
    if (n > NAME_MAX_LEN)
        return sh_err_set(st->err, "bad_archive", UNSAFE_SUGGESTION,
                          "refusing to extract the workspace archive: %s '%.200s...' is longer "
                          "than %d bytes",
                          what, raw, NAME_MAX_LEN);
    o = (char *)malloc(n + 1);
    if (o == NULL)
        return oom(st);
    while (*p) {
        const char *q = strchr(p, '/');
        size_t c = q ? (size_t)(q - p) : strlen(p);
        if (c == 2 && p[0] == '.' && p[1] == '.') {
            free(o);
            return sh_err_set(st->err, "bad_archive", UNSAFE_SUGGESTION,
                              "refusing to extract the workspace archive: %s '%s' has a '..' "
                              "component and could escape the workspace",
                              what, raw);
        }
        if (c > COMPONENT_MAX) {
            free(o);
            return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                              "the workspace archive has %s '%.200s...' with a name component longer "
                              "than %d bytes, more than a file name can hold",
                              what, raw, COMPONENT_MAX);
        }
        if (c > 0 && !(c == 1 && p[0] == '.')) {
            if (k > 0)
                o[k++] = '/';
            memcpy(o + k, p, c);
            k += c;
        }
        p += c;
        if (*p == '/')
            p++;
    }
    o[k] = '\0';
    *out = o;
    return 0;
}

static const char *leaf_of(const char *rel)
{
    const char *s = strrchr(rel, '/');
    return s ? s + 1 : rel;
}

/* ---- directories -------------------------------------------------------- */

static void cache_drop(tar_state_t *st)
{
    free(st->cache_path);
    st->cache_path = NULL;
    if (st->cache_fd >= 0)
        close(st->cache_fd);
    st->cache_fd = -1;
}

/* Opens the directory rel[0..plen) one component at a time from the root,
 * never following a symlink; missing components are created (0755) when
 * `create`. `name` is the entry this is for (for messages). Returns an fd the
 * caller owns, -1 (error set when `report`), or -2 if a component does not
 * exist and !create. */
static int walk_parent(tar_state_t *st, const char *name, const char *rel, size_t plen, int create,
                       int report)
{
    char *path = dup_bytes(rel, plen);
    char *comp;
    int fd;
    if (path == NULL)
        return report ? oom(st) : -1;
    fd = fcntl(st->root_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        free(path);
        return report ? write_error(st, e, "open directory", "") : -1;
    }
    comp = path;
    while (plen > 0 && comp != NULL) {
        char *slash = strchr(comp, '/');
        int nfd;
        if (slash)
            *slash = '\0';
        nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                close(fd);
                if (slash)
                    *slash = '/';
                if (report)
                    write_error(st, e, "create directory", path);
                free(path);
                return -1;
            }
            nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (nfd < 0) {
            int e = errno, rc = -1;
            struct stat sb;
            size_t upto = (size_t)(comp - path) + strlen(comp);
            int exists = fstatat(fd, comp, &sb, AT_SYMLINK_NOFOLLOW) == 0;
            close(fd);
            if (slash)
                *slash = '/';
            if (!exists && e == ENOENT && !create)
                rc = -2;
            else if (!report)
                rc = -1;
            else if (exists && S_ISLNK(sb.st_mode))
                sh_err_set(st->err, "bad_archive", UNSAFE_SUGGESTION,
                           "refusing to extract the workspace archive: entry '%s' lies under "
                           "'%.*s', which the archive made a symbolic link; the extractor never "
                           "writes through symlinks",
                           name, (int)upto, rel);
            else if (exists && !S_ISDIR(sb.st_mode))
                sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                           "the workspace archive has entry '%s' under '%.*s', which is not a "
                           "directory",
                           name, (int)upto, rel);
            else
                write_error(st, e, "open directory", path);
            free(path);
            return rc;
        }
        close(fd);
        fd = nfd;
        comp = slash ? slash + 1 : NULL;
    }
    free(path);
    return fd;
}

/* The open parent directory of rel (borrowed: do not close). Consecutive
 * entries usually share a parent, so the last one stays open. The cache is
 * safe: it always holds the parent of the entry being extracted, and entries
 * only ever replace children of that parent, never its ancestors; a different
 * parent is walked afresh with O_NOFOLLOW. */
static int get_parent(tar_state_t *st, const char *name, const char *rel)
{
    const char *slash = strrchr(rel, '/');
    size_t plen = slash ? (size_t)(slash - rel) : 0;
    int fd;
    if (plen == 0)
        return st->root_fd;
    if (st->cache_path && strlen(st->cache_path) == plen && memcmp(st->cache_path, rel, plen) == 0)
        return st->cache_fd;
    fd = walk_parent(st, name, rel, plen, 1, 1);
    if (fd < 0)
        return -1;
    cache_drop(st);
    st->cache_path = dup_bytes(rel, plen);
    if (st->cache_path == NULL) {
        close(fd);
        oom(st);
        return -1;
    }
    st->cache_fd = fd;
    return fd;
}

/* Removes whatever is called leaf in pfd (never following it). */
static int remove_existing(tar_state_t *st, int pfd, const char *leaf, const char *rel)
{
    struct stat sb;
    if (fstatat(pfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : write_error(st, errno, "inspect", rel);
    if (S_ISDIR(sb.st_mode)) {
        if (unlinkat(pfd, leaf, AT_REMOVEDIR) != 0) {
            if (errno == ENOTEMPTY || errno == EEXIST)
                return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                                  "the workspace archive has entry '%s', which would replace a "
                                  "non-empty directory of the same name",
                                  rel);
            return write_error(st, errno, "remove directory", rel);
        }
        return 0;
    }
    if (unlinkat(pfd, leaf, 0) != 0)
        return write_error(st, errno, "remove", rel);
    return 0;
}

static int record_dir(tar_state_t *st, const entry_t *e)
{
    dir_fixup_t *d;
    if (st->ndirs == st->dirs_cap) {
        size_t cap = st->dirs_cap ? st->dirs_cap * 2 : 64;
        dir_fixup_t *p = (dir_fixup_t *)realloc(st->dirs, cap * sizeof *p);
        if (p == NULL)
            return oom(st);
        st->dirs = p;
        st->dirs_cap = cap;
    }
    d = &st->dirs[st->ndirs];
    d->path = dup_bytes(e->rel, strlen(e->rel));
    if (d->path == NULL)
        return oom(st);
    d->mode = e->mode;
    d->has_mtime = e->has_mtime;
    d->mtime = e->mtime;
    d->seq = st->ndirs;
    st->ndirs++;
    return 0;
}

static size_t depth_of(const char *p)
{
    size_t n = 0;
    for (; *p; p++)
        n += *p == '/';
    return n;
}

/* Deepest first (a parent's mode may forbid entering it); within one path,
 * the latest entry first. */
static int fixup_cmp(const void *a, const void *b)
{
    const dir_fixup_t *x = (const dir_fixup_t *)a, *y = (const dir_fixup_t *)b;
    size_t dx = depth_of(x->path), dy = depth_of(y->path);
    int c;
    if (dx != dy)
        return dx > dy ? -1 : 1;
    c = strcmp(x->path, y->path);
    if (c != 0)
        return c;
    return x->seq > y->seq ? -1 : x->seq < y->seq ? 1 : 0;
}

static int apply_dir_fixups(tar_state_t *st)
{
    size_t i;
    const char *prev = NULL;
    if (st->ndirs > 1)
        qsort(st->dirs, st->ndirs, sizeof *st->dirs, fixup_cmp);
    cache_drop(st);
    for (i = 0; i < st->ndirs; i++) {
        dir_fixup_t *d = &st->dirs[i];
        const char *leaf = leaf_of(d->path);
        size_t plen = leaf == d->path ? 0 : (size_t)(leaf - d->path - 1);
        int pfd, fd;
        if (prev && strcmp(prev, d->path) == 0)
            continue; /* an earlier entry for a directory the archive listed again */
        prev = d->path;
        /* a later entry may have replaced the directory: then skip it quietly */
        pfd = walk_parent(st, d->path, d->path, plen, 0, 0);
        if (pfd < 0)
            continue;
        fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(pfd);
        if (fd < 0)
            continue;
        if (fchmod(fd, d->mode) != 0) {
            int e = errno;
            close(fd);
            return write_error(st, e, "set the mode of", d->path);
        }
        if (d->has_mtime) {
            struct timespec t[2];
            t[0] = d->mtime;
            t[1] = d->mtime;
            futimens(fd, t);
        }
        close(fd);
    }
    return 0;
}

/* ---- entries ------------------------------------------------------------ */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int open_new_file(tar_state_t *st, int pfd, const char *leaf, const char *rel)
{
    int fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return write_error(st, errno, "create file", rel);
    return fd;
}

static void set_times_fd(int fd, const entry_t *e)
{
    struct timespec t[2];
    if (!e->has_mtime)
        return;
    t[0] = e->mtime;
    t[1] = e->mtime;
    futimens(fd, t); /* best effort */
}

/* Mode and times on the new file, then close it. */
static int finish_file(tar_state_t *st, int fd, const entry_t *e, unsigned mode)
{
    if (fchmod(fd, mode) != 0) {
        int er = errno;
        close(fd);
        return write_error(st, er, "set the mode of", e->rel);
    }
    set_times_fd(fd, e);
    if (close(fd) != 0 && errno != EINTR)
        return write_error(st, errno, "write", e->rel);
    return 0;
}

static int extract_file(tar_state_t *st, const entry_t *e)
{
    uint64_t left = e->size;
    int pfd, fd;
    if (e->rel[0] == '\0')
        return bad(st, "the workspace archive has a file entry with an empty name at byte %llu",
                   (unsigned long long)e->at);
    pfd = get_parent(st, e->raw, e->rel);
    if (pfd < 0)
        return SH_FAILED;
    if (remove_existing(st, pfd, leaf_of(e->rel), e->rel) != 0)
        return SH_FAILED;
    fd = open_new_file(st, pfd, leaf_of(e->rel), e->rel);
    if (fd < 0)
        return SH_FAILED;
    while (left > 0) {
        size_t k;
        if (st->pos == st->len) {
            int r = fill(st);
            if (r <= 0) {
                close(fd);
                return r < 0 ? SH_FAILED : truncated(st);
            }
        }
        k = st->len - st->pos;
        if ((uint64_t)k > left)
            k = (size_t)left;
        if (write_all(fd, st->buf + st->pos, k) != 0) {
            int er = errno;
            close(fd);
            return write_error(st, er, "write", e->rel);
        }
        st->pos += k;
        left -= k;
    }
    if (finish_file(st, fd, e, e->mode) != 0)
        return SH_FAILED;
    return skip(st, padding(e->size));
}

static int extract_dir(tar_state_t *st, const entry_t *e)
{
    const char *leaf;
    int pfd;
    if (e->rel[0] == '\0')
        return 0; /* "./": the workspace itself, which the host owns */
    pfd = get_parent(st, e->raw, e->rel);
    if (pfd < 0)
        return SH_FAILED;
    leaf = leaf_of(e->rel);
    if (mkdirat(pfd, leaf, 0700) != 0) {
        struct stat sb;
        if (errno != EEXIST)
            return write_error(st, errno, "create directory", e->rel);
        if (fstatat(pfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            return write_error(st, errno, "create directory", e->rel);
        if (!S_ISDIR(sb.st_mode)) { /* a file or symlink of that name: replace it */
            if (remove_existing(st, pfd, leaf, e->rel) != 0)
                return SH_FAILED;
            if (mkdirat(pfd, leaf, 0700) != 0)
                return write_error(st, errno, "create directory", e->rel);
        }
    }
    return record_dir(st, e);
}

static int extract_symlink(tar_state_t *st, const entry_t *e)
{
    int pfd;
    if (e->rel[0] == '\0' || e->link == NULL || e->link[0] == '\0')
        return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                          "the workspace archive has a symbolic link '%s' with an empty name or "
                          "target",
                          e->raw);
    pfd = get_parent(st, e->raw, e->rel);
    if (pfd < 0)
        return SH_FAILED;
    if (remove_existing(st, pfd, leaf_of(e->rel), e->rel) != 0)
        return SH_FAILED;
    /* the target is stored as is: a symlink is never followed by the extractor */
    if (symlinkat(e->link, pfd, leaf_of(e->rel)) != 0)
        return write_error(st, errno, "create symlink", e->rel);
    if (e->has_mtime) {
        struct timespec t[2];
        t[0] = e->mtime;
        t[1] = e->mtime;
        utimensat(pfd, leaf_of(e->rel), t, AT_SYMLINK_NOFOLLOW);
    }
    return 0;
}

static int extract_hardlink(tar_state_t *st, const entry_t *e, const char *raw_target)
{
    const char *target = e->link, *tleaf;
    size_t tplen;
    struct stat sb;
    int tpfd, pfd, rc = 0;

    if (e->rel[0] == '\0' || target == NULL || target[0] == '\0')
        return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                          "the workspace archive has a hard link '%s' with an empty name or target",
                          e->raw);
    if (strcmp(target, e->rel) == 0)
        return 0; /* a link to itself: nothing to do */
    tleaf = leaf_of(target);
    tplen = tleaf == target ? 0 : (size_t)(tleaf - target - 1);
    tpfd = walk_parent(st, target, target, tplen, 0, 1);
    if (tpfd == -2 || (tpfd >= 0 && fstatat(tpfd, tleaf, &sb, AT_SYMLINK_NOFOLLOW) != 0)) {
        if (tpfd >= 0)
            close(tpfd);
        return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                          "the workspace archive has a hard link '%s' to '%s', which is not an "
                          "earlier entry of the archive",
                          e->raw, raw_target);
    }
    if (tpfd < 0)
        return SH_FAILED;
    if (S_ISDIR(sb.st_mode)) {
        close(tpfd);
        return sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                          "the workspace archive has a hard link '%s' to the directory '%s'",
                          e->raw, raw_target);
    }
    pfd = get_parent(st, e->raw, e->rel);
    if (pfd < 0)
        rc = SH_FAILED;
    else if (remove_existing(st, pfd, leaf_of(e->rel), e->rel) != 0)
        rc = SH_FAILED;
    else if (linkat(tpfd, tleaf, pfd, leaf_of(e->rel), 0) != 0) /* 0: never follow */
        rc = write_error(st, errno, "create hard link", e->rel);
    close(tpfd);
    return rc;
}

/* ---- headers ------------------------------------------------------------ */

static int checksum_ok(const uint8_t *h)
{
    uint64_t want;
    uint64_t usum = 0;
    int64_t ssum = 0;
    size_t i;
    if (parse_num(h + 148, 8, &want) != 0)
        return 0;
    for (i = 0; i < BLOCK; i++) {
        uint8_t b = (i >= 148 && i < 156) ? (uint8_t)' ' : h[i];
        usum += b;
        ssum += (int8_t)b; /* some old tars summed signed chars */
    }
    return want == usum || (int64_t)want == ssum;
}

static int all_zero(const uint8_t *h)
{
    size_t i;
    for (i = 0; i < BLOCK; i++) {
        if (h[i])
            return 0;
    }
    return 1;
}

static size_t field_len(const uint8_t *p, size_t n)
{
    const uint8_t *z = (const uint8_t *)memchr(p, '\0', n);
    return z ? (size_t)(z - p) : n;
}

/* Handles one ordinary (non-metadata) entry whose header is h. */
static int do_entry(tar_state_t *st, const uint8_t *h, uint64_t at, uint64_t hdr_size,
                    pending_t *pd)
{
    entry_t e;
    char *raw = NULL, *raw_link = NULL;
    uint64_t v;
    int rc = SH_FAILED;
    char type = (char)h[156];

    memset(&e, 0, sizeof e);
    e.at = at;
    e.size = pd->has_size ? pd->size : hdr_size;

    /* name: PAX path, GNU long name, or ustar prefix + name */
    if (pd->pax_path)
        raw = dup_bytes(pd->pax_path, strlen(pd->pax_path));
    else if (pd->gnu_longname)
        raw = dup_bytes(pd->gnu_longname, strlen(pd->gnu_longname));
    else {
        size_t nl = field_len(h, 100), pl = 0;
        if (memcmp(h + 257, "ustar\0", 6) == 0)
            pl = field_len(h + 345, 155);
        raw = (char *)malloc(pl + 1 + nl + 1);
        if (raw) {
            size_t k = 0;
            if (pl) {
                memcpy(raw, h + 345, pl);
                k = pl;
                raw[k++] = '/';
            }
            memcpy(raw + k, h, nl);
            raw[k + nl] = '\0';
        }
    }
    if (pd->pax_linkpath)
        raw_link = dup_bytes(pd->pax_linkpath, strlen(pd->pax_linkpath));
    else if (pd->gnu_longlink)
        raw_link = dup_bytes(pd->gnu_longlink, strlen(pd->gnu_longlink));
    else
        raw_link = dup_bytes((const char *)h + 157, field_len(h + 157, 100));
    if (raw == NULL || raw_link == NULL) {
        oom(st);
        goto out;
    }
    e.raw = raw;

    if (pd->has_mtime) {
        e.has_mtime = 1;
        e.mtime = pd->mtime;
    } else if (parse_num(h + 136, 12, &v) == 0 && v <= (uint64_t)INT32_MAX * 1024) {
        e.has_mtime = 1;
        e.mtime.tv_sec = (time_t)v;
        e.mtime.tv_nsec = 0;
    }
    /* old V7 archives mark directories by a trailing slash only */
    if ((type == '0' || type == '\0') && raw[0] != '\0' && raw[strlen(raw) - 1] == '/')
        type = '5';
    e.type = type;
    if (parse_num(h + 100, 8, &v) == 0)
        e.mode = (unsigned)(v & 0777u);
    else
        e.mode = type == '5' ? 0755u : 0644u;

    if (normalize(st, "entry", raw, &e.rel) != 0)
        goto out;

    switch (type) {
    case '0':
    case '\0':
    case '7': /* contiguous file: a regular file everywhere that matters */
        rc = extract_file(st, &e);
        break;
    case '5':
        rc = extract_dir(st, &e);
        break;
    case 'D': /* GNU dump dir: a directory followed by a listing we ignore */
        rc = extract_dir(st, &e);
        if (rc == 0)
            rc = skip_data(st, e.size);
        break;
    case '2':
        e.link = raw_link;
        rc = extract_symlink(st, &e);
        e.link = NULL;
        break;
    case '1':
        if (normalize(st, "hard link target", raw_link, &e.link) != 0)
            break;
        rc = extract_hardlink(st, &e, raw_link);
        break;
    case '3':
    case '4':
    case '6':
        sh_log(st->ctx, HM_LOG_WARNING,
               "not extracting '%s' from the workspace archive: device nodes and FIFOs are skipped",
               raw);
        rc = 0;
        break;
    case 'V': /* GNU volume label */
        rc = 0;
        break;
    default: {
        unsigned char c = (unsigned char)type;
        rc = sh_err_set(st->err, "bad_archive", ARCHIVE_SUGGESTION,
                        "the workspace archive has entry '%s' of unsupported type '%c' (0x%02x)",
                        raw, (c >= 0x20 && c < 0x7f) ? (char)c : '?', (unsigned)c);
        break;
    }
    }
out:
    free(e.rel);
    free(e.link);
    free(raw);
    free(raw_link);
    return rc;
}

static int extract_all(tar_state_t *st)
{
    pending_t pd;
    uint8_t h[BLOCK];
    int rc = 0;

    memset(&pd, 0, sizeof pd);
    for (;;) {
        uint64_t at, size;
        char type;
        if (st->pos == st->len && st->offset >= st->total)
            break; /* ended at a block boundary without end-of-archive blocks: fine */
        at = archive_pos(st);
        if (read_exact(st, h, BLOCK) != 0) {
            rc = SH_FAILED;
            break;
        }
        if (all_zero(h))
            break; /* end-of-archive marker */
        if (!checksum_ok(h)) {
            rc = bad(st, "the workspace archive is not a tar archive or is corrupt: bad header "
                         "checksum at byte %llu",
                     (unsigned long long)at);
            break;
        }
        if (parse_num(h + 124, 12, &size) != 0) {
            rc = bad(st, "the workspace archive has an invalid size field at byte %llu",
                     (unsigned long long)at);
            break;
        }
        type = (char)h[156];
        if (type == 'x' || type == 'X') {
            char *d;
            if (read_meta(st, size, &d) != 0) {
                rc = SH_FAILED;
                break;
            }
            rc = parse_pax(st, d, (size_t)size, &pd);
            free(d);
        } else if (type == 'g') {
            rc = skip_data(st, size); /* global defaults: nothing we use */
        } else if (type == 'L' || type == 'K') {
            char *d, **slot = type == 'L' ? &pd.gnu_longname : &pd.gnu_longlink;
            if (read_meta(st, size, &d) != 0) {
                rc = SH_FAILED;
                break;
            }
            free(*slot);
            *slot = d; /* NUL-terminated at the first NUL */
        } else {
            rc = do_entry(st, h, at, size, &pd);
            pending_clear(&pd);
        }
        if (rc != 0)
            break;
    }
    pending_clear(&pd);
    return rc;
}

int sh_extract_archive(const sh_ctx_t *ctx, const char *workspace, sh_error_t *err)
{
    const hm_host_api_t *h = ctx->host;
    tar_state_t st;
    uint64_t total = 0;
    hm_status_t s;
    char eb[256];
    size_t i;
    int rc;

    if (sh_should_cancel(ctx))
        return SH_STOPPED;
    if (h == NULL || !HM_TABLE_HAS(h, hm_host_api_t, archive_total_size) ||
        h->archive_total_size == NULL || !HM_TABLE_HAS(h, hm_host_api_t, archive_read) ||
        h->archive_read == NULL)
        return SH_DONE; /* no archive in this host: start from the empty workspace */
    s = h->archive_total_size(ctx->call, &total);
    if (s == HM_ERR_UNAVAILABLE)
        return SH_DONE;
    if (s != HM_OK) {
        sh_err_set(err, "archive_read_failed",
                   "this is a host-side problem reading the run's workspace archive; retry, and "
                   "report it if it persists",
                   "host archive_total_size failed with status %d", (int)s);
        err->retryable = s == HM_ERR_IO;
        return SH_FAILED;
    }
    if (total == 0)
        return SH_DONE;

    memset(&st, 0, sizeof st);
    st.ctx = ctx;
    st.err = err;
    st.root = workspace;
    st.total = total;
    st.cache_fd = -1;
    st.root_fd = open(workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st.root_fd < 0)
        return sh_err_set(err, "workspace_unavailable",
                          "the host creates the step's workspace before calling the runner; check "
                          "that it was not removed",
                          "cannot open the step's workspace %s: %s", workspace,
                          sh_strerror(errno, eb, sizeof eb));
    st.buf = (uint8_t *)malloc(SH_CHUNK);
    if (st.buf == NULL)
        rc = sh_err_set(err, "out_of_memory", NULL, "out of memory reading the archive");
    else
        rc = extract_all(&st);
    if (rc == 0)
        rc = apply_dir_fixups(&st);
    if (st.cancelled)
        rc = SH_STOPPED;
    cache_drop(&st);
    for (i = 0; i < st.ndirs; i++)
        free(st.dirs[i].path);
    free(st.dirs);
    free(st.buf);
    close(st.root_fd);
    return rc;
}
