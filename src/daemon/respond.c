/* JSON answers and the status table (see respond.h). */
#include "daemon/respond.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspectd/status.h"

void insp_respond_json(insp_http_response *resp, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(body);
    resp->status = s ? status : 500;
    resp->content_type = "application/json";
    if (!s)
        s = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
    resp->body = s;
    resp->body_len = s ? strlen(s) : 0;
}

void insp_respond_error(insp_http_response *resp, int status, const char *code,
                        const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    insp_respond_json(resp, status,
                      json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

/* The one table: engine status → HTTP status and error code. */
static const struct {
    int status, http;
    const char *code, *image_code;
} table[] = {
    {INSP_ERR_FORMAT, 400, "bad_request", "bad_image"},
    {INSP_ERR_INVALID, 400, "invalid", "bad_image"},
    {INSP_ERR_UNSUPPORTED, 400, "invalid", "bad_image"},
    {INSP_ERR_SHAPE, 400, "invalid", "bad_image"},
    {INSP_ERR_TOO_LARGE, 413, "too_large", "too_large"},
    {INSP_ERR_NOT_FOUND, 404, "not_found", "not_found"},
    {INSP_ERR_CONFLICT, 409, "conflict", "conflict"},
    {INSP_ERR_BUSY, 503, "busy", "busy"},
    {INSP_ERR_NOMEM, 503, "busy", "busy"},
    {INSP_ERR_IO, 500, "internal", "internal"},
    {INSP_ERR_INTERNAL, 500, "internal", "internal"},
};

void insp_status_to_http(int status, int image, int *http, const char **code)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].status == status) {
            *http = table[i].http;
            *code = image ? table[i].image_code : table[i].code;
            return;
        }
    *http = 500;
    *code = "internal";
}

void insp_respond_status(insp_http_response *resp, int status, int image, const char *msg)
{
    int http;
    const char *code;
    insp_status_to_http(status, image, &http, &code);
    insp_respond_error(resp, http, code, "%s", msg && *msg ? msg : insp_strerror(status));
    if (http == 503)
        resp->retry_after = 1;
}
