/* multipart/form-data bodies (RFC 7578 on RFC 2046's multipart syntax): the parts of an
 * upload of several reference images, pointing into the body without copying it. */
#ifndef INSPD_HTTP_MULTIPART_H
#define INSPD_HTTP_MULTIPART_H

#include <stddef.h>

#include "inspectd/status.h"

typedef struct insp_multipart_part {
    char *name;         /* the form field name (Content-Disposition name=), never NULL */
    char *filename;     /* Content-Disposition filename=, NULL when absent */
    char *content_type; /* media type, lowercased, without parameters; "text/plain" if absent */
    const unsigned char *data; /* into the body given to insp_multipart_parse */
    size_t len;
} insp_multipart_part;

typedef struct insp_multipart {
    insp_multipart_part *parts;
    int n;
} insp_multipart;

/* The boundary parameter of a Content-Type header value ("multipart/form-data;
 * boundary=xyz", quoted or not) into out (71 bytes suffice). INSP_ERR_UNSUPPORTED when the
 * media type is not multipart/form-data, INSP_ERR_FORMAT when the boundary is missing or not
 * 1..70 valid characters. */
int insp_multipart_boundary(const char *content_type, char *out, size_t cap, insp_error *err);

/* Parses body (len bytes) strictly: CRLF line ends, a Content-Disposition: form-data header
 * with a name in every part, a blank line after each part's headers, and the closing
 * delimiter; a preamble and an epilogue are allowed and ignored. Errors: those of
 * insp_multipart_boundary, INSP_ERR_FORMAT for a malformed or truncated body (the message
 * names the part), INSP_ERR_TOO_LARGE for more than max_parts parts. Never reads outside
 * body[0..len). On success free *out with insp_multipart_free; the parts' data point into
 * body, which must outlive them. On error *out is empty. */
int insp_multipart_parse(const char *content_type, const void *body, size_t len, int max_parts,
                         insp_multipart *out, insp_error *err);

/* Frees the parts' strings and array and zeroes *mp. NULL is a harmless no-op. */
void insp_multipart_free(insp_multipart *mp);

#endif
