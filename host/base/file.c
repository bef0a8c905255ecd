/* Whole-file reads, path joining, atomic writes and tree removal. Files are
 * written through path.tmp + fsync + rename so that a crash never leaves a
 * half-written checkpoint or export behind; trees are removed by nftw without
 * following links. See include/simcse/common.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "simcse/common.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *simcse_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        simcse_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        simcse_error("%s: not a regular file", path);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = simcse_xmalloc(n + 1);
    if (n && fread(buf, 1, n, f) != n) {
        int e = errno;
        fclose(f);
        free(buf);
        simcse_error("%s: read failed: %s", path, e ? strerror(e) : "short read");
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

char *simcse_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = simcse_xmalloc(a + b + 2);
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int simcse_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int simcse_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t n = strlen(path);
    char *tmp = simcse_xmalloc(n + 16);
    snprintf(tmp, n + 16, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        simcse_error("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            simcse_error("%s: write failed: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        simcse_error("%s: sync failed: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        simcse_error("%s: rename to %s failed: %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* nftw reports each entry after its contents (FTW_DEPTH), never through a link
 * (FTW_PHYS: a link is an entry of its own and is unlinked) and never on another
 * filesystem (FTW_MOUNT). An entry that is already gone is not an error, so two
 * processes may clear the same directory. */
static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    if (type == FTW_DNR) return simcse_error("%s: cannot read the directory to remove it", path), 1;
    int r = type == FTW_DP ? rmdir(path) : unlink(path);
    if (r != 0 && errno != ENOENT) return simcse_error("%s: cannot remove: %s", path, strerror(errno)), 1;
    return 0;
}

int simcse_remove_tree(const char *path) {
    for (int attempt = 0; attempt < 3; attempt++) {
        int r = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (r > 0) return -1; /* remove_entry said why */
        if (r < 0 && errno != ENOENT) return simcse_error("%s: cannot remove: %s", path, strerror(errno));
        struct stat sb;
        if (lstat(path, &sb) != 0) return 0; /* gone (or never there) */
        /* an entry vanished under the walk (another process clearing it too): walk again */
    }
    return simcse_error("%s: cannot remove: entries keep appearing", path);
}
