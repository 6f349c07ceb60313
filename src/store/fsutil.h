/* File-system helpers for crash-safe writes: temp file + fsync + rename + directory fsync,
 * with an error injection point so that tests can fail any step on purpose. */
#ifndef INSPD_STORE_FSUTIL_H
#define INSPD_STORE_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "inspectd/status.h"

/* Temporary files start with this prefix (in the directory of their target), so that a later
 * cleanup can recognise and remove what a crash left behind. */
#define INSP_FS_TMP_PREFIX ".tmp-"

enum {
    INSP_FS_NOREPLACE = 1, /* fail with INSP_ERR_CONFLICT when the target already exists */
    INSP_FS_NO_DIRSYNC = 2, /* skip the directory fsync (the caller does one for many files) */
};

/* Writes len bytes to path atomically: a temp file in the same directory, fsync, rename over
 * path, fsync of the directory. Files get mode 0640. On failure the temp file is removed and
 * the old file (if any) is untouched; INSP_ERR_IO names the path and strerror ("No space
 * left on device"). *renamed (may be NULL) is set true once path shows the new content, even
 * when the final directory fsync then failed. */
int insp_fs_write_atomic(const char *path, const void *data, size_t len, int flags,
                         bool *renamed, insp_error *err);

/* fsync of a directory, so that a rename or unlink in it survives a power cut. */
int insp_fs_sync_dir(const char *dir, insp_error *err);

/* mkdir with mode; an existing directory is fine. Parents must exist unless parents is true. */
int insp_fs_mkdir(const char *path, unsigned mode, bool parents, insp_error *err);

/* rename(from, to) then fsync of to's directory (and from's when it differs). */
int insp_fs_rename(const char *from, const char *to, insp_error *err);

/* Reads a whole file into a malloc'ed buffer (freed by the caller; one extra NUL byte after
 * the data). INSP_ERR_NOT_FOUND when it does not exist, INSP_ERR_TOO_LARGE over max_len. */
int insp_fs_read_file(const char *path, size_t max_len, void **data, size_t *len,
                      insp_error *err);

/* Removes path and everything below it; a missing path is fine. Symlinks are removed, never
 * followed. */
int insp_fs_remove_tree(const char *path, insp_error *err);

/* open(path, O_RDWR | O_CLOEXEC | flags, 0640) with an exclusive flock taken (waiting for
 * other holders; retried on EINTR). Closing the descriptor drops the lock. -1 with errno set
 * when either step fails. */
int insp_fs_open_locked(const char *path, int flags);

/* unlink; a missing file is fine. */
int insp_fs_unlink(const char *path, insp_error *err);

/* snprintf into buf that reports truncation as INSP_ERR_INVALID ("path too long"). */
int insp_fs_path(char *buf, size_t cap, insp_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* n random lowercase hex characters (n even) plus a NUL into out (n + 1 bytes). */
int insp_fs_random_hex(char *out, size_t n, insp_error *err);

/* Test hook: the next `after` operations (writes, fsyncs, renames, mkdirs, unlinks) succeed,
 * the one after fails with errnum, and later ones succeed again. errnum 0 instead ends the
 * process there with _exit(INSP_FS_CRASH_EXIT), a crash for a forked test child to simulate.
 * after < 0 disables it (the default). Process-wide; not for use outside tests. */
#define INSP_FS_CRASH_EXIT 86

/* True while an injected failure is armed and has not fired yet. */
bool insp_fs_injection_pending(void);
void insp_fs_inject_failure(int after, int errnum);

#endif
