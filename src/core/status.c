/* Status strings and the error-detail helpers every module uses. */
#include "inspectd/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *insp_strerror(int status)
{
    switch (status) {
    case INSP_OK: return "ok";
    case INSP_ERR_NOMEM: return "out of memory";
    case INSP_ERR_IO: return "I/O error";
    case INSP_ERR_FORMAT: return "malformed data";
    case INSP_ERR_INVALID: return "invalid argument";
    case INSP_ERR_UNSUPPORTED: return "unsupported";
    case INSP_ERR_TOO_LARGE: return "too large";
    case INSP_ERR_NOT_FOUND: return "not found";
    case INSP_ERR_SHAPE: return "shape mismatch";
    case INSP_ERR_BUSY: return "busy";
    case INSP_ERR_CONFLICT: return "conflict";
    case INSP_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

int insp_error_set(insp_error *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->status = status;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

int insp_error_prefix(insp_error *err, const char *fmt, ...)
{
    if (!err)
        return INSP_ERR_INTERNAL;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t np = strnlen(prefix, sizeof err->msg - 1);
    memcpy(err->msg, prefix, np);
    size_t no = strnlen(old, sizeof err->msg - 1 - np);
    memcpy(err->msg + np, old, no);
    err->msg[np + no] = '\0';
    return err->status;
}

void insp_error_clear(insp_error *err)
{
    if (err) {
        err->status = INSP_OK;
        err->msg[0] = '\0';
    }
}
