/* Status codes and error details shared by every libinspect function. */
#ifndef INSPECTD_STATUS_H
#define INSPECTD_STATUS_H

#include <stddef.h>

/* 0 = success; every error is negative. The HTTP layer maps these to status codes in one
 * table, so a new code needs an entry there too. */
typedef enum insp_status {
    INSP_OK = 0,
    INSP_ERR_NOMEM = -1,       /* an allocation failed */
    INSP_ERR_IO = -2,          /* a file could not be opened, read or written */
    INSP_ERR_FORMAT = -3,      /* malformed data: a damaged file, a corrupt image, bad JSON */
    INSP_ERR_INVALID = -4,     /* an argument or value out of its allowed range */
    INSP_ERR_UNSUPPORTED = -5, /* well-formed but not something we handle (dtype, image kind) */
    INSP_ERR_TOO_LARGE = -6,   /* over a configured limit (pixels, bytes, count) */
    INSP_ERR_NOT_FOUND = -7,   /* a named thing (tensor, file, product) does not exist */
    INSP_ERR_SHAPE = -8,       /* a tensor's shape disagrees with what the config implies */
    INSP_ERR_BUSY = -9,        /* a bounded queue is full; try again later */
    INSP_ERR_CONFLICT = -10,   /* the operation conflicts with the current state */
    INSP_ERR_INTERNAL = -11,   /* a bug: should never be seen */
} insp_status;

/* A short, static, human description of a status ("malformed data"). Never NULL. */
const char *insp_strerror(int status);

/* Detail for the caller: functions that can fail for reasons a user must see take an
 * insp_error * (which may be NULL) and fill it on failure with the status and a sentence
 * naming the thing and the problem ("tensor visual.proj: shape [64, 31], expected [64, 32]"). */
typedef struct insp_error {
    int status;
    char msg[512];
} insp_error;

/* Records status and a printf-style message in err (if non-NULL); returns status so that
 * callers can write `return insp_error_set(err, INSP_ERR_FORMAT, "...", ...);`. */
int insp_error_set(insp_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with context ("model /x: "), keeping its status. */
int insp_error_prefix(insp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to INSP_OK with an empty message (NULL is a no-op). */
void insp_error_clear(insp_error *err);

#endif
