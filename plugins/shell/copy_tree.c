/*
 * copy_tree.c — gives a step that `builds_in` another one a copy of that
 * step's workspace (ExecutorInput.base_workspace).
 *
 * What is copied, and how:
 *   - directories: created 0700 so they can be filled, then given their
 *     mode & 0777 and times once their content is in (a read-only directory
 *     is thus copied whole);
 *   - regular files: content (copy_file_range on Linux, so filesystems that
 *     can share extents do so; read/write otherwise), mode & 0777, times;
 *   - symbolic links: as links with the same target, never followed;
 *   - FIFOs, sockets and devices: skipped with a warning in hm's log;
 *   - hard links: each name becomes a separate copy.
 * Everything is opened relative to an open directory with O_NOFOLLOW, so a
 * symlink in the base workspace can never make the copy read or write
 * outside the two trees. should_cancel is polled as the copy goes.
 */
#include "shell.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__APPLE__)
#define SH_ATIM(sb) ((sb).st_atimespec)
#define SH_MTIM(sb) ((sb).st_mtimespec)
#else
#define SH_ATIM(sb) ((sb).st_atim)
#define SH_MTIM(sb) ((sb).st_mtim)
#endif

#define COPY_SUGGESTION                                                                        \
    "check free disk space and the permissions of both directories; the base workspace is the " \
    "workspace of the step this one builds in"

/* Poll should_cancel once per this many directory entries. */
#define CANCEL_EVERY 16u

typedef struct copy_state {
    const sh_ctx_t *ctx;
    sh_error_t *err;
    const char *src_root;
    const char *dst_root;
    char *rel; /* path of the current entry relative to both roots ("" = root) */
    size_t rel_len;
    size_t rel_cap;
    uint8_t *buf;
    unsigned long entries;
    int cancelled;
} copy_state_t;

int sh_copy_fd(int in_fd, int out_fd, uint8_t *buf)
{
#if defined(__linux__)
    for (;;) {
        ssize_t n = copy_file_range(in_fd, NULL, out_fd, NULL, (size_t)1 << 30, 0);
        if (n > 0)
            continue;
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
            errno == EPERM || errno == ETXTBSY || errno == EBADF)
            break; /* not supported here: the file offsets are where we left them */
        return -1;
    }
#endif
    for (;;) {
        ssize_t n = read(in_fd, buf, SH_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (sh_write_all(out_fd, buf, (size_t)n) != 0)
            return -1;
    }
}

int sh_write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t k = write(fd, data, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        data += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Reports a failure on the current entry. Returns SH_FAILED. */
static int fail_text(copy_state_t *st, const char *action, const char *text)
{
    const char *sep = st->rel_len ? "/" : "";
    return sh_err_set(st->err, "workspace_copy_failed", COPY_SUGGESTION,
                      "cannot copy the base workspace %s%s%s to %s%s%s: %s: %s", st->src_root, sep,
                      st->rel, st->dst_root, sep, st->rel, action, text);
}

static int fail(copy_state_t *st, int errnum, const char *action)
{
    char eb[256];
    if (errnum == ENOMEM)
        return sh_err_set(st->err, "out_of_memory", NULL, "out of memory copying the base workspace");
    fail_text(st, action, sh_strerror(errnum, eb, sizeof eb));
    st->err->retryable = errnum == EMFILE || errnum == ENFILE;
    return SH_FAILED;
}

/* Appends "/name" to the relative path; returns the old length for pop(). */
static int push(copy_state_t *st, const char *name, size_t *saved)
{
    size_t n = strlen(name), need = st->rel_len + 1 + n + 1;
    if (need > st->rel_cap) {
        size_t cap = st->rel_cap * 2 > need ? st->rel_cap * 2 : need;
        char *p = (char *)realloc(st->rel, cap);
        if (p == NULL)
            return sh_err_set(st->err, "out_of_memory", NULL,
                              "out of memory copying the base workspace");
        st->rel = p;
        st->rel_cap = cap;
    }
    *saved = st->rel_len;
    if (st->rel_len)
        st->rel[st->rel_len++] = '/';
    memcpy(st->rel + st->rel_len, name, n + 1);
    st->rel_len += n;
    return 0;
}

static void pop(copy_state_t *st, size_t saved)
{
    st->rel_len = saved;
    st->rel[saved] = '\0';
}

static int copy_file(copy_state_t *st, int sfd, int dfd, const char *name, const struct stat *sb)
{
    struct timespec times[2];
    struct stat now;
    int in, out, rc = 0;

    in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (in < 0)
        return fail(st, errno, "open for reading");
    if (fstat(in, &now) != 0) {
        rc = fail(st, errno, "open for reading");
        close(in);
        return rc;
    }
    if (!S_ISREG(now.st_mode)) { /* replaced since we looked at it */
        close(in);
        return fail_text(st, "open for reading", "no longer a regular file");
    }
    out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = fail(st, errno, "create file");
        close(in);
        return rc;
    }
    if (sh_copy_fd(in, out, st->buf) != 0)
        rc = fail(st, errno, "copy data");
    else if (fchmod(out, sb->st_mode & 0777) != 0)
        rc = fail(st, errno, "set mode");
    if (rc == 0) {
        times[0] = SH_ATIM(now);
        times[1] = SH_MTIM(now);
        futimens(out, times); /* best effort: times are nice to have */
    }
    close(in);
    if (close(out) != 0 && rc == 0 && errno != EINTR)
        rc = fail(st, errno, "copy data"); /* e.g. a deferred write error on NFS */
    return rc;
}

static int copy_symlink(copy_state_t *st, int sfd, int dfd, const char *name, const struct stat *sb)
{
    size_t cap = sb->st_size > 0 ? (size_t)sb->st_size + 1 : 256;
    struct timespec times[2];
    char *target = NULL;
    ssize_t n;

    for (;;) {
        char *p = (char *)realloc(target, cap);
        if (p == NULL) {
            free(target);
            return sh_err_set(st->err, "out_of_memory", NULL,
                              "out of memory copying the base workspace");
        }
        target = p;
        n = readlinkat(sfd, name, target, cap);
        if (n < 0) {
            int e = errno;
            free(target);
            return fail(st, e, "read symlink");
        }
        if ((size_t)n < cap)
            break;
        cap *= 2; /* it grew since lstat */
    }
    target[n] = '\0';
    if (symlinkat(target, dfd, name) != 0) {
        int e = errno;
        free(target);
        return fail(st, e, "create symlink");
    }
    free(target);
    times[0] = SH_ATIM(*sb);
    times[1] = SH_MTIM(*sb);
    utimensat(dfd, name, times, AT_SYMLINK_NOFOLLOW); /* best effort */
    return 0;
}

/* Copies the content of the open directory sfd into the open directory dfd. */
static int copy_dir(copy_state_t *st, int sfd, int dfd)
{
    struct dirent *de;
    DIR *d;
    int rc = 0, fd;

    fd = fcntl(sfd, F_DUPFD_CLOEXEC, 0); /* closedir closes it, sfd stays ours */
    if (fd < 0)
        return fail(st, errno, "open directory");
    d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return fail(st, e, "open directory");
    }
    for (;;) {
        const char *name;
        struct stat sb;
        size_t saved = st->rel_len;

        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0)
                rc = fail(st, errno, "read directory");
            break;
        }
        name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (++st->entries % CANCEL_EVERY == 0 && sh_should_cancel(st->ctx)) {
            st->cancelled = 1;
            rc = SH_STOPPED;
            break;
        }
        if (push(st, name, &saved) != 0) {
            rc = SH_FAILED;
            break;
        }
        if (fstatat(sfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = fail(st, errno, "read directory");
        } else if (S_ISDIR(sb.st_mode)) {
            int csfd, cdfd;
            if (mkdirat(dfd, name, 0700) != 0) {
                rc = fail(st, errno, "create directory");
            } else if ((csfd = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                rc = fail(st, errno, "open directory");
            } else {
                cdfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (cdfd < 0) {
                    rc = fail(st, errno, "open new directory");
                } else {
                    rc = copy_dir(st, csfd, cdfd);
                    if (rc == 0) {
                        struct timespec times[2];
                        if (fchmod(cdfd, sb.st_mode & 0777) != 0) {
                            rc = fail(st, errno, "set directory mode");
                        } else {
                            times[0] = SH_ATIM(sb);
                            times[1] = SH_MTIM(sb);
                            futimens(cdfd, times); /* last: filling it changed mtime */
                        }
                    }
                    close(cdfd);
                }
                close(csfd);
            }
        } else if (S_ISREG(sb.st_mode)) {
            rc = copy_file(st, sfd, dfd, name, &sb);
        } else if (S_ISLNK(sb.st_mode)) {
            rc = copy_symlink(st, sfd, dfd, name, &sb);
        } else {
            sh_log(st->ctx, HM_LOG_WARNING,
                   "not copying %s/%s into the step's workspace: not a file, directory or "
                   "symlink (FIFO, socket or device)",
                   st->src_root, st->rel);
        }
        pop(st, saved);
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

int sh_copy_tree(const sh_ctx_t *ctx, const char *src, const char *dst, sh_error_t *err)
{
    copy_state_t st;
    char eb[256];
    int sfd, dfd, rc;

    if (sh_should_cancel(ctx))
        return SH_STOPPED;
    sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0)
        return sh_err_set(err, "workspace_copy_failed",
                          "the base workspace is the workspace of the step this one builds in; it "
                          "must still exist when this step starts",
                          "cannot open the base workspace %s: %s", src,
                          sh_strerror(errno, eb, sizeof eb));
    dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        close(sfd);
        return sh_err_set(err, "workspace_unavailable",
                          "the host creates the step's workspace before calling the runner; check "
                          "that it was not removed",
                          "cannot open the step's workspace %s: %s", dst,
                          sh_strerror(e, eb, sizeof eb));
    }

    memset(&st, 0, sizeof st);
    st.ctx = ctx;
    st.err = err;
    st.src_root = src;
    st.dst_root = dst;
    st.rel_cap = 256;
    st.rel = (char *)malloc(st.rel_cap);
    st.buf = (uint8_t *)malloc(SH_CHUNK);
    if (st.rel == NULL || st.buf == NULL) {
        rc = sh_err_set(err, "out_of_memory", NULL, "out of memory copying the base workspace");
    } else {
        st.rel[0] = '\0';
        rc = copy_dir(&st, sfd, dfd);
    }
    if (rc == SH_FAILED && st.cancelled)
        rc = SH_STOPPED;
    free(st.rel);
    free(st.buf);
    close(sfd);
    close(dfd);
    return rc;
}
