/*
 * reaper.c — `hm-worker --reaper`: the last resort that removes a run's
 * directory when hm dies without doing it (SIGKILL, a crash in a plugin that
 * ran in hm's own process, exit() called by such a plugin).
 *
 * hm starts it in a session of its own (so a kill of hm's process group does
 * not reach it) and writes lines to its stdin:
 *     dir <absolute path>     remove this directory if hm dies
 *     done                    hm cleaned up itself
 * At end of file the reaper removes every registered directory unless `done`
 * came last, then exits. Only hm holds the other end of the pipe, so end of
 * file means hm is gone. Step processes are not its job: each step has a
 * supervisor that ends it when its parent dies.
 *
 * Removal never follows a symlink (*at() calls with AT_SYMLINK_NOFOLLOW /
 * O_NOFOLLOW), makes read-only directories writable first (a step may leave
 * mode 0555 trees), and refuses any path whose last component does not start
 * with "hm-run-".
 */
#include "worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIRS 64

static void remove_in(int dirfd, int depth);

static void remove_entry(int parent, const char *name, int depth)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    if (S_ISDIR(st.st_mode) && depth < 256) {
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            fchmodat(parent, name, 0700, 0);
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd >= 0) {
            fchmod(fd, 0700);
            remove_in(fd, depth + 1);
            close(fd);
        }
        unlinkat(parent, name, AT_REMOVEDIR);
    } else {
        unlinkat(parent, name, 0);
    }
}

static void remove_in(int dirfd, int depth)
{
    int fd = dup(dirfd);
    DIR *d;
    struct dirent *e;
    if (fd < 0)
        return;
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* removing an entry already returned does not disturb readdir */
        remove_entry(dirfd, e->d_name, depth);
    }
    closedir(d);
}

static void remove_tree(const char *path)
{
    const char *base = strrchr(path, '/');
    char parent[4096];
    int pfd;
    size_t plen;
    if (path[0] != '/' || base == NULL || strncmp(base + 1, "hm-run-", 7) != 0)
        return;
    plen = (size_t)(base - path);
    if (plen == 0 || plen >= sizeof parent)
        return;
    memcpy(parent, path, plen);
    parent[plen] = '\0';
    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return;
    remove_entry(pfd, base + 1, 0);
    close(pfd);
}

int wk_reaper_main(int argc, char **argv)
{
    char *dirs[MAX_DIRS];
    size_t n = 0, i;
    int done = 0;
    char line[4200];
    (void)argc;
    (void)argv;
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (strncmp(line, "dir ", 4) == 0 && n < MAX_DIRS) {
            dirs[n] = strdup(line + 4);
            if (dirs[n] != NULL)
                n++;
            done = 0;
        } else if (strcmp(line, "done") == 0) {
            done = 1;
        }
    }
    if (!done)
        for (i = 0; i < n; i++)
            remove_tree(dirs[i]);
    return 0;
}
