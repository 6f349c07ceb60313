/* Crash-safe file writes (temp + fsync + rename + directory fsync) and the small file-system
 * chores of the product store, each failure reported with its path and strerror. */
#include "store/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static _Atomic int inject_left = -1;
static _Atomic int inject_errno;

void insp_fs_inject_failure(int after, int errnum)
{
    atomic_store(&inject_errno, errnum);
    atomic_store(&inject_left, after < 0 ? -1 : after);
}

bool insp_fs_injection_pending(void)
{
    return atomic_load(&inject_left) >= 0;
}

/* Called before each operation the hook can fail: 0 to go on, or the errno to fail with. */
static int fault(void)
{
    int left = atomic_load(&inject_left);
    while (left >= 0 && !atomic_compare_exchange_weak(&inject_left, &left, left - 1)) {
    }
    if (left != 0)
        return 0;
    int e = atomic_load(&inject_errno);
    if (e == 0)
        _exit(INSP_FS_CRASH_EXIT);
    return e;
}

static int io_error(insp_error *err, const char *path, const char *what, int e)
{
    return insp_error_set(err, INSP_ERR_IO, "%s: %s failed: %s", path, what, strerror(e));
}

int insp_fs_path(char *buf, size_t cap, insp_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return insp_error_set(err, INSP_ERR_INVALID, "path too long (%d bytes)", n);
    return INSP_OK;
}

int insp_fs_random_hex(char *out, size_t n, insp_error *err)
{
    unsigned char raw[64];
    if (n % 2 || n / 2 > sizeof raw)
        return insp_error_set(err, INSP_ERR_INTERNAL, "random name of %zu characters", n);
    size_t got = 0;
    while (got < n / 2) {
        ssize_t r = getrandom(raw + got, n / 2 - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return insp_error_set(err, INSP_ERR_IO, "getrandom failed: %s", strerror(errno));
        }
        got += (size_t)r;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n / 2; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[n] = '\0';
    return INSP_OK;
}

/* The directory part of path ("." when there is none). */
static int dir_of(const char *path, char *dir, size_t cap, insp_error *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return insp_fs_path(dir, cap, err, ".");
    if (slash == path)
        return insp_fs_path(dir, cap, err, "/");
    return insp_fs_path(dir, cap, err, "%.*s", (int)(slash - path), path);
}

int insp_fs_sync_dir(const char *dir, insp_error *err)
{
    int e = fault();
    if (e)
        return io_error(err, dir, "fsync", e);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, dir, "open", errno);
    if (fsync(fd) != 0 && errno != EINVAL) { /* EINVAL: a file system without dir fsync */
        e = errno;
        close(fd);
        return io_error(err, dir, "fsync", e);
    }
    close(fd);
    return INSP_OK;
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Moves tmp to path unless path exists: renameat2 where the file system has it, else link +
 * unlink (both atomic on local and network file systems). */
static int rename_noreplace(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return errno;
    if (link(tmp, path) != 0)
        return errno;
    unlink(tmp);
    return 0;
}

int insp_fs_write_atomic(const char *path, const void *data, size_t len, int flags,
                         bool *renamed, insp_error *err)
{
    if (renamed)
        *renamed = false;
    char dir[PATH_MAX], tmp[PATH_MAX];
    int st = dir_of(path, dir, sizeof dir, err);
    if (!st)
        st = insp_fs_path(tmp, sizeof tmp, err, "%s/" INSP_FS_TMP_PREFIX "XXXXXX", dir);
    if (st)
        return st;
    int e = fault();
    int fd = e ? -1 : mkstemp(tmp);
    if (fd < 0)
        return io_error(err, path, "creating a temporary file", e ? e : errno);

    const char *what = "write";
    e = fault();
    if (!e)
        e = fchmod(fd, 0640) != 0 ? errno : 0;
    if (!e)
        e = write_all(fd, data, len);
    if (!e) {
        what = "fsync";
        e = fault();
        if (!e && fsync(fd) != 0)
            e = errno;
    }
    if (close(fd) != 0 && !e) {
        what = "close";
        e = errno;
    }
    if (!e) {
        what = "rename";
        e = fault();
        if (!e)
            e = flags & INSP_FS_NOREPLACE ? rename_noreplace(tmp, path)
                                           : (rename(tmp, path) != 0 ? errno : 0);
    }
    if (e) {
        unlink(tmp);
        if (e == EEXIST && (flags & INSP_FS_NOREPLACE))
            return insp_error_set(err, INSP_ERR_CONFLICT, "%s: already exists", path);
        return io_error(err, path, what, e);
    }
    if (renamed)
        *renamed = true;
    if (flags & INSP_FS_NO_DIRSYNC)
        return INSP_OK;
    return insp_fs_sync_dir(dir, err);
}

int insp_fs_mkdir(const char *path, unsigned mode, bool parents, insp_error *err)
{
    if (parents) {
        char buf[PATH_MAX];
        int st = insp_fs_path(buf, sizeof buf, err, "%s", path);
        if (st)
            return st;
        for (char *p = buf + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            st = insp_fs_mkdir(buf, mode, false, err);
            *p = '/';
            if (st)
                return st;
        }
    }
    int e = fault();
    if (!e && mkdir(path, (mode_t)mode) != 0)
        e = errno;
    if (e == EEXIST) {
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            return INSP_OK;
        return insp_error_set(err, INSP_ERR_IO, "%s: exists and is not a directory", path);
    }
    return e ? io_error(err, path, "mkdir", e) : INSP_OK;
}

int insp_fs_rename(const char *from, const char *to, insp_error *err)
{
    int e = fault();
    if (!e && rename(from, to) != 0)
        e = errno;
    if (e)
        return insp_error_set(err, INSP_ERR_IO, "rename %s -> %s failed: %s", from, to,
                              strerror(e));
    char d1[PATH_MAX], d2[PATH_MAX];
    int st = dir_of(to, d2, sizeof d2, err);
    if (!st)
        st = insp_fs_sync_dir(d2, err);
    if (!st)
        st = dir_of(from, d1, sizeof d1, err);
    if (!st && strcmp(d1, d2) != 0)
        st = insp_fs_sync_dir(d1, err);
    return st;
}

int insp_fs_read_file(const char *path, size_t max_len, void **data, size_t *len,
                      insp_error *err)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return insp_error_set(err, INSP_ERR_NOT_FOUND, "%s: no such file", path);
        return io_error(err, path, "open", errno);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return io_error(err, path, "stat", e);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return insp_error_set(err, INSP_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > max_len) {
        close(fd);
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "%s: %lld bytes, at most %zu allowed",
                              path, (long long)sb.st_size, max_len);
    }
    /* Read to EOF rather than trusting st_size: the file may be replaced meanwhile. */
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
    }
    for (;;) {
        if (n == cap) {
            if (cap > max_len) {
                free(buf);
                close(fd);
                return insp_error_set(err, INSP_ERR_TOO_LARGE, "%s: more than %zu bytes", path,
                                      max_len);
            }
            size_t ncap = cap * 2 > max_len + 1 ? max_len + 1 : cap * 2;
            unsigned char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return io_error(err, path, "read", e);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max_len) {
        free(buf);
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "%s: more than %zu bytes", path, max_len);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return INSP_OK;
}

int insp_fs_unlink(const char *path, insp_error *err)
{
    int e = fault();
    if (!e && unlink(path) != 0 && errno != ENOENT)
        e = errno;
    return e ? io_error(err, path, "unlink", e) : INSP_OK;
}

/* nftw's callback has no user pointer; removal is rare, so a thread-local is enough. */
static _Thread_local int rm_errno;
static _Thread_local char rm_failed[PATH_MAX];

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int e = fault();
    if (!e) {
        int r = type == FTW_DP ? rmdir(path) : unlink(path);
        e = r != 0 && errno != ENOENT ? errno : 0;
    }
    if (e && !rm_errno) {
        rm_errno = e;
        snprintf(rm_failed, sizeof rm_failed, "%s", path);
    }
    return 0; /* go on: remove as much as possible */
}

int insp_fs_remove_tree(const char *path, insp_error *err)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? INSP_OK : io_error(err, path, "stat", errno);
    if (!S_ISDIR(sb.st_mode))
        return insp_fs_unlink(path, err);
    rm_errno = 0;
    rm_failed[0] = '\0';
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return io_error(err, path, "walking", errno);
    if (rm_errno)
        return io_error(err, rm_failed, "removing", rm_errno);
    return INSP_OK;
}

int insp_fs_open_locked(const char *path, int flags)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | flags, 0640);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    return fd;
}
