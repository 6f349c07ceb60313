/* A strict multipart/form-data parser: every part is located by its delimiter (RFC 2046
 * §5.1.1) with bounds checked against the body length, so that a truncated or hostile body
 * is an error, never a read past its end. */
#include "http/multipart.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BOUNDARY 70
#define MAX_HEADER_BYTES (16 * 1024) /* the header block of one part */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_bchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("'()+_,-./:=? ", c) != NULL);
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* One parameter: the raw name and value spans; value is the inside of a quoted string
 * (escapes still in) when quoted is true. */
typedef struct param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    bool quoted;
} param;

/* Reads `; name=value` parameters from [*pp, end) one at a time: 1 with *out filled, 0 at the
 * end, negative (INSP_ERR_FORMAT) on a malformed one. */
static int next_param(const char **pp, const char *end, param *out)
{
    const char *p = skip_ows(*pp, end);
    for (;;) {
        if (p == end) {
            *pp = p;
            return 0;
        }
        if (*p != ';')
            return INSP_ERR_FORMAT;
        p = skip_ows(p + 1, end);
        if (p < end && *p == ';')
            continue; /* an empty parameter: harmless */
        if (p == end) {
            *pp = p;
            return 0;
        }
        break;
    }
    out->name = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    out->name_len = (size_t)(p - out->name);
    if (out->name_len == 0 || p == end || *p != '=')
        return INSP_ERR_FORMAT;
    p++;
    if (p < end && *p == '"') {
        out->quoted = true;
        out->value = ++p;
        while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end)
                p++;
            p++;
        }
        if (p >= end)
            return INSP_ERR_FORMAT; /* unterminated quoted string */
        out->value_len = (size_t)(p - out->value);
        p++;
    } else {
        out->quoted = false;
        out->value = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        out->value_len = (size_t)(p - out->value);
        if (out->value_len == 0)
            return INSP_ERR_FORMAT;
    }
    *pp = skip_ows(p, end);
    return 1;
}

/* Unescaped, NUL-terminated copy of a parameter value; NULL when out of memory. */
static char *param_value(const param *pr)
{
    char *s = malloc(pr->value_len + 1);
    if (!s)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < pr->value_len; i++) {
        if (pr->quoted && pr->value[i] == '\\' && i + 1 < pr->value_len)
            i++;
        s[k++] = pr->value[i];
    }
    s[k] = '\0';
    return s;
}

static bool name_is(const param *pr, const char *name)
{
    return pr->name_len == strlen(name) && strncasecmp(pr->name, name, pr->name_len) == 0;
}

/* The media type at the start of [p, end): its span, *pp moved past it. */
static size_t media_type(const char **pp, const char *end)
{
    const char *p = skip_ows(*pp, end), *start = p;
    while (p < end && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    *pp = p;
    return (size_t)(p - start);
}

int insp_multipart_boundary(const char *content_type, char *out, size_t cap, insp_error *err)
{
    if (!content_type)
        return insp_error_set(err, INSP_ERR_UNSUPPORTED, "multipart: no Content-Type");
    const char *p = content_type, *end = content_type + strlen(content_type);
    const char *mt = skip_ows(p, end);
    size_t mt_len = media_type(&p, end);
    static const char want[] = "multipart/form-data";
    if (mt_len != sizeof want - 1 || strncasecmp(mt, want, mt_len) != 0)
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "Content-Type \"%.*s\" is not multipart/form-data",
                              (int)(mt_len > 80 ? 80 : mt_len), mt);
    bool found = false;
    param pr;
    int r;
    while ((r = next_param(&p, end, &pr)) > 0) {
        if (!name_is(&pr, "boundary"))
            continue;
        if (found)
            return insp_error_set(err, INSP_ERR_FORMAT, "Content-Type: boundary given twice");
        found = true;
        char *b = param_value(&pr);
        if (!b)
            return insp_error_set(err, INSP_ERR_NOMEM, "multipart: out of memory");
        size_t n = strlen(b);
        bool ok = n >= 1 && n <= MAX_BOUNDARY && b[n - 1] != ' ' && n < cap;
        for (size_t i = 0; ok && i < n; i++)
            ok = is_bchar((unsigned char)b[i]);
        if (ok)
            memcpy(out, b, n + 1);
        free(b);
        if (!ok)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "Content-Type: boundary must be 1..%d characters of "
                                  "A-Za-z0-9'()+_,-./:=? (not ending in a space)",
                                  MAX_BOUNDARY);
    }
    if (r < 0)
        return insp_error_set(err, INSP_ERR_FORMAT, "Content-Type: malformed parameter at \"%.40s\"",
                              p);
    if (!found)
        return insp_error_set(err, INSP_ERR_FORMAT, "Content-Type: multipart/form-data without "
                                                    "a boundary parameter");
    return INSP_OK;
}

void insp_multipart_free(insp_multipart *mp)
{
    if (!mp)
        return;
    for (int i = 0; i < mp->n; i++) {
        free(mp->parts[i].name);
        free(mp->parts[i].filename);
        free(mp->parts[i].content_type);
    }
    free(mp->parts);
    mp->parts = NULL;
    mp->n = 0;
}

static int part_error(insp_error *err, int k, const char *what)
{
    return insp_error_set(err, INSP_ERR_FORMAT, "multipart: part %d: %s", k, what);
}

static bool header_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

static int parse_disposition(const char *p, const char *end, insp_multipart_part *part, int k,
                             insp_error *err)
{
    const char *t = skip_ows(p, end);
    size_t n = media_type(&p, end);
    if (!(n == 9 && strncasecmp(t, "form-data", 9) == 0))
        return part_error(err, k, "Content-Disposition is not form-data");
    param pr;
    int r;
    while ((r = next_param(&p, end, &pr)) > 0) {
        char **slot = name_is(&pr, "name") ? &part->name
                      : name_is(&pr, "filename") ? &part->filename
                                                 : NULL;
        if (!slot)
            continue; /* e.g. filename* (RFC 5987): the plain filename is enough for us */
        if (*slot)
            return part_error(err, k, "Content-Disposition parameter given twice");
        *slot = param_value(&pr);
        if (!*slot)
            return insp_error_set(err, INSP_ERR_NOMEM, "multipart: out of memory");
    }
    if (r < 0)
        return part_error(err, k, "malformed Content-Disposition parameter");
    if (!part->name)
        return part_error(err, k, "Content-Disposition without a name");
    return INSP_OK;
}

static int parse_content_type(const char *p, const char *end, insp_multipart_part *part, int k,
                              insp_error *err)
{
    const char *t = skip_ows(p, end);
    size_t n = media_type(&p, end);
    const char *slash = n ? memchr(t, '/', n) : NULL;
    if (!slash || slash == t || slash == t + n - 1)
        return part_error(err, k, "Content-Type is not type/subtype");
    part->content_type = malloc(n + 1);
    if (!part->content_type)
        return insp_error_set(err, INSP_ERR_NOMEM, "multipart: out of memory");
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        part->content_type[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    part->content_type[n] = '\0';
    return INSP_OK;
}

/* Parses the header block starting at body[*pos], up to and including its blank line. */
static int parse_headers(const unsigned char *b, size_t len, size_t *pos,
                         insp_multipart_part *part, int k, insp_error *err)
{
    size_t p = *pos;
    for (;;) {
        if (p - *pos > MAX_HEADER_BYTES)
            return part_error(err, k, "headers longer than 16 KiB");
        /* find this line's CRLF */
        size_t e = p;
        while (e < len && b[e] != '\r' && b[e] != '\n')
            e++;
        if (e >= len || e + 1 >= len)
            return part_error(err, k, "headers not ended by a blank line (body truncated?)");
        if (b[e] != '\r' || b[e + 1] != '\n')
            return part_error(err, k, "header line not ended by CRLF");
        if (e == p) { /* the blank line */
            *pos = p + 2;
            return INSP_OK;
        }
        const char *line = (const char *)b + p, *lend = (const char *)b + e;
        if (*line == ' ' || *line == '\t')
            return part_error(err, k, "folded header lines are not supported");
        const char *colon = memchr(line, ':', (size_t)(lend - line));
        if (!colon || colon == line)
            return part_error(err, k, "header line without a name and ':'");
        for (const char *c = line; c < colon; c++)
            if (!is_tchar((unsigned char)*c))
                return part_error(err, k, "invalid character in a header name");
        for (const char *c = colon + 1; c < lend; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return part_error(err, k, "control character in a header value");
        size_t nlen = (size_t)(colon - line);
        int st = INSP_OK;
        if (header_is(line, nlen, "Content-Disposition")) {
            if (part->name)
                return part_error(err, k, "Content-Disposition given twice");
            st = parse_disposition(colon + 1, lend, part, k, err);
        } else if (header_is(line, nlen, "Content-Type")) {
            if (part->content_type)
                return part_error(err, k, "Content-Type given twice");
            st = parse_content_type(colon + 1, lend, part, k, err);
        } else if (header_is(line, nlen, "Content-Transfer-Encoding")) {
            const char *v = skip_ows(colon + 1, lend);
            size_t vn = (size_t)(lend - v);
            while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                vn--;
            if (!header_is(v, vn, "binary") && !header_is(v, vn, "8bit") &&
                !header_is(v, vn, "7bit"))
                st = insp_error_set(err, INSP_ERR_UNSUPPORTED,
                                    "multipart: part %d: Content-Transfer-Encoding \"%.*s\" is "
                                    "not supported (send the bytes as they are)",
                                    k, (int)(vn > 40 ? 40 : vn), v);
        }
        if (st)
            return st;
        p = e + 2;
    }
}

/* First occurrence of needle in hay (both with lengths); NULL when absent. */
static const unsigned char *find(const unsigned char *hay, size_t n, const unsigned char *needle,
                                 size_t m)
{
    return n >= m ? memmem(hay, n, needle, m) : NULL;
}

int insp_multipart_parse(const char *content_type, const void *body, size_t len, int max_parts,
                         insp_multipart *out, insp_error *err)
{
    out->parts = NULL;
    out->n = 0;
    char boundary[MAX_BOUNDARY + 1];
    int st = insp_multipart_boundary(content_type, boundary, sizeof boundary, err);
    if (st)
        return st;
    if (!body && len)
        return insp_error_set(err, INSP_ERR_INVALID, "multipart: no body");
    const unsigned char *b = body ? body : (const unsigned char *)"";
    /* delim = CRLF "--" boundary; dash = delim + 2 */
    unsigned char delim[4 + MAX_BOUNDARY];
    size_t blen = strlen(boundary);
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    size_t dlen = 4 + blen, dash = dlen - 2;

    size_t pos;
    if (len >= dash && memcmp(b, delim + 2, dash) == 0) {
        pos = 0;
    } else {
        const unsigned char *f = find(b, len, delim, dlen);
        if (!f)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "multipart: no \"--%s\" delimiter line in the body", boundary);
        pos = (size_t)(f - b) + 2;
    }

    int cap = 0;
    for (int k = 1;; k++) {
        pos += dash; /* past "--boundary" */
        if (len - pos >= 2 && b[pos] == '-' && b[pos + 1] == '-')
            return INSP_OK; /* close delimiter; the epilogue is ignored */
        while (pos < len && (b[pos] == ' ' || b[pos] == '\t'))
            pos++;
        if (len - pos < 2) {
            st = insp_error_set(err, INSP_ERR_FORMAT,
                                "multipart: body ends after a delimiter without the closing "
                                "\"--%s--\" (truncated?)",
                                boundary);
            break;
        }
        if (b[pos] != '\r' || b[pos + 1] != '\n') {
            st = insp_error_set(err, INSP_ERR_FORMAT,
                                "multipart: delimiter before part %d followed by other bytes "
                                "than CRLF or \"--\"",
                                k);
            break;
        }
        pos += 2;
        if (k > max_parts) {
            st = insp_error_set(err, INSP_ERR_TOO_LARGE, "multipart: more than %d parts",
                                max_parts);
            break;
        }
        if (out->n == cap) {
            int ncap = cap ? cap * 2 : 4;
            if (ncap > max_parts)
                ncap = max_parts;
            insp_multipart_part *np = realloc(out->parts, (size_t)ncap * sizeof *np);
            if (!np) {
                st = insp_error_set(err, INSP_ERR_NOMEM, "multipart: out of memory");
                break;
            }
            out->parts = np;
            cap = ncap;
        }
        insp_multipart_part *part = &out->parts[out->n++];
        memset(part, 0, sizeof *part);
        st = parse_headers(b, len, &pos, part, k, err);
        if (st)
            break;
        if (!part->name) {
            st = part_error(err, k, "no Content-Disposition header");
            break;
        }
        if (!part->content_type && !(part->content_type = strdup("text/plain"))) {
            st = insp_error_set(err, INSP_ERR_NOMEM, "multipart: out of memory");
            break;
        }
        const unsigned char *f = find(b + pos, len - pos, delim, dlen);
        if (!f) {
            st = insp_error_set(err, INSP_ERR_FORMAT,
                                "multipart: part %d has no delimiter after its data (body "
                                "truncated?)",
                                k);
            break;
        }
        part->data = b + pos;
        part->len = (size_t)(f - (b + pos));
        pos = (size_t)(f - b) + 2; /* at "--boundary" */
    }
    insp_multipart_free(out);
    return st;
}
