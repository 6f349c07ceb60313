/* Building HTTP answers: JSON bodies, the error body, and the one table that maps engine
 * statuses to HTTP statuses. */
#ifndef INSPD_DAEMON_RESPOND_H
#define INSPD_DAEMON_RESPOND_H

#include <jansson.h>

#include "http/server.h"

/* Sets resp to status with the JSON value (reference stolen). */
void insp_respond_json(insp_http_response *resp, int status, json_t *body);

/* Sets resp to {"error": {"code": code, "message": ...}}. */
void insp_respond_error(insp_http_response *resp, int status, const char *code,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The HTTP status and error code for an insp_status in a given context: `image` is true when
 * the failing input was an uploaded image (malformed data is then "bad_image"). */
void insp_status_to_http(int status, int image, int *http, const char **code);

/* Error answer for an insp_status with its message. */
void insp_respond_status(insp_http_response *resp, int status, int image, const char *msg);

#endif
