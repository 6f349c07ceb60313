/* Tests of the multipart/form-data parser: the boundary parameter, parts and their headers,
 * preamble and epilogue, binary data, every strictness error, and truncation or corruption
 * at every offset of a small body (run under ASan, an out-of-bounds read would abort). */
#include "harness.h"
#include "http/multipart.h"

#define CT "multipart/form-data; boundary=XyZ"

static int parse(const char *ct, const char *body, size_t len, int max_parts, insp_multipart *mp,
                 insp_error *e)
{
    insp_error_clear(e);
    return insp_multipart_parse(ct, body, len, max_parts, mp, e);
}

static void boundary_parameter(void)
{
    char b[71];
    insp_error e;
    CHECK_OK(insp_multipart_boundary("multipart/form-data; boundary=abc", b, sizeof b, &e));
    CHECK(strcmp(b, "abc") == 0);
    CHECK_OK(insp_multipart_boundary("Multipart/Form-Data;charset=utf-8;BOUNDARY=\"a b:c\"", b,
                                     sizeof b, &e));
    CHECK(strcmp(b, "a b:c") == 0);
    CHECK_OK(insp_multipart_boundary("  multipart/form-data ;  boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW ; x=y",
                                     b, sizeof b, &e));
    CHECK(strcmp(b, "----WebKitFormBoundary7MA4YWxkTrZu0gW") == 0);
    char seventy[128] = "multipart/form-data; boundary=";
    size_t k = strlen(seventy);
    memset(seventy + k, 'q', 70);
    seventy[k + 70] = '\0';
    CHECK_OK(insp_multipart_boundary(seventy, b, sizeof b, &e));
    CHECK_EQ_INT(strlen(b), 70);
    strcat(seventy, "q");
    CHECK_EQ_INT(insp_multipart_boundary(seventy, b, sizeof b, &e), INSP_ERR_FORMAT);
    CHECK(strstr(e.msg, "1..70") != NULL);

    struct {
        const char *ct;
        int status;
        const char *msg;
    } bad[] = {
        {"application/json", INSP_ERR_UNSUPPORTED, "is not multipart/form-data"},
        {"multipart/mixed; boundary=abc", INSP_ERR_UNSUPPORTED, "is not multipart/form-data"},
        {"multipart/form-data", INSP_ERR_FORMAT, "without a boundary"},
        {"multipart/form-data; charset=utf-8", INSP_ERR_FORMAT, "without a boundary"},
        {"multipart/form-data; boundary=", INSP_ERR_FORMAT, "malformed parameter"},
        {"multipart/form-data; boundary=\"\"", INSP_ERR_FORMAT, "boundary must be"},
        {"multipart/form-data; boundary=\"a@b\"", INSP_ERR_FORMAT, "boundary must be"},
        {"multipart/form-data; boundary=\"ends in space \"", INSP_ERR_FORMAT, "boundary must be"},
        {"multipart/form-data; boundary=\"abc", INSP_ERR_FORMAT, "malformed parameter"},
        {"multipart/form-data; boundary", INSP_ERR_FORMAT, "malformed parameter"},
        {"multipart/form-data boundary=abc", INSP_ERR_FORMAT, "malformed parameter"},
        {"multipart/form-data; boundary=a; boundary=b", INSP_ERR_FORMAT, "given twice"},
        {"", INSP_ERR_UNSUPPORTED, "not multipart"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        insp_error_clear(&e);
        int st = insp_multipart_boundary(bad[i].ct, b, sizeof b, &e);
        CHECK_MSG(st == bad[i].status, "\"%s\": status %d (%s)", bad[i].ct, st, e.msg);
        CHECK_MSG(strstr(e.msg, bad[i].msg) != NULL, "\"%s\": message \"%s\"", bad[i].ct, e.msg);
    }
    CHECK_EQ_INT(insp_multipart_boundary(NULL, b, sizeof b, &e), INSP_ERR_UNSUPPORTED);
}

/* Builds a body into buf from pieces; returns its length. */
static size_t build(char *buf, const char *const *pieces, const size_t *lens, int n)
{
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(buf + k, pieces[i], lens[i]);
        k += lens[i];
    }
    return k;
}

/* Binary data with everything a naive parser trips on: "--", CR, LF, NUL and a prefix of the
 * delimiter. */
static const char nasty[] = "\x89PNG\r\n\x1a\n--\r\n--XY\r\n--Xy\0\r\r\n\n-\r\n--XYZ--XyZ";
#define NASTY_LEN (sizeof nasty - 1)

static void parts_headers_and_binary_data(void)
{
    const char *pieces[] = {
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"label\"\r\n"
        "\r\n"
        "pcb line 3",
        "\r\n--XyZ\r\n"
        "content-disposition: form-data; name=image; filename=\"a\\\"b.png\"\r\n"
        "Content-Type: Image/PNG; q=1\r\n"
        "X-Other: ignored\r\n"
        "\r\n",
        nasty,
        "\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "\r\n",
        "\r\n--XyZ--",
    };
    size_t lens[] = {strlen(pieces[0]), strlen(pieces[1]), NASTY_LEN, strlen(pieces[3]),
                     strlen(pieces[4])};
    char body[1024];
    size_t len = build(body, pieces, lens, 5);
    insp_multipart mp;
    insp_error e;
    CHECK_OK(parse(CT, body, len, 16, &mp, &e));
    REQUIRE(mp.n == 3);
    CHECK(strcmp(mp.parts[0].name, "label") == 0);
    CHECK(mp.parts[0].filename == NULL);
    CHECK(strcmp(mp.parts[0].content_type, "text/plain") == 0);
    CHECK(mp.parts[0].len == 10 && memcmp(mp.parts[0].data, "pcb line 3", 10) == 0);
    CHECK((const char *)mp.parts[0].data == body + strlen(pieces[0]) - 10); /* no copy */

    CHECK(strcmp(mp.parts[1].name, "image") == 0);
    CHECK(mp.parts[1].filename && strcmp(mp.parts[1].filename, "a\"b.png") == 0);
    CHECK(strcmp(mp.parts[1].content_type, "image/png") == 0);
    CHECK_EQ_INT(mp.parts[1].len, NASTY_LEN);
    CHECK((const char *)mp.parts[1].data == body + lens[0] + lens[1]);
    CHECK(memcmp(mp.parts[1].data, nasty, NASTY_LEN) == 0);

    CHECK(strcmp(mp.parts[2].name, "empty") == 0);
    CHECK(mp.parts[2].filename && mp.parts[2].filename[0] == '\0');
    CHECK_EQ_INT(mp.parts[2].len, 0);
    insp_multipart_free(&mp);
    CHECK(mp.parts == NULL && mp.n == 0);
    insp_multipart_free(&mp);
    insp_multipart_free(NULL);
}

static void preamble_epilogue_and_padding(void)
{
    const char body[] = "This is the preamble; --XyZ inside it does not count.\r\n"
                        "--XyZ \t\r\n"
                        "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
                        "1\r\n"
                        "--XyZ\r\n"
                        "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
                        "22\r\n"
                        "--XyZ--  \r\nepilogue --XyZ\r\n garbage";
    insp_multipart mp;
    insp_error e;
    CHECK_OK(parse(CT, body, sizeof body - 1, 16, &mp, &e));
    CHECK_EQ_INT(mp.n, 2);
    CHECK(mp.n == 2 && mp.parts[0].len == 1 && mp.parts[0].data[0] == '1');
    CHECK(mp.n == 2 && mp.parts[1].len == 2 && memcmp(mp.parts[1].data, "22", 2) == 0);
    insp_multipart_free(&mp);

    /* no parts at all is well-formed (the caller decides whether that is enough) */
    CHECK_OK(parse(CT, "--XyZ--", 7, 16, &mp, &e));
    CHECK_EQ_INT(mp.n, 0);
    insp_multipart_free(&mp);
    /* a quoted boundary with a space */
    const char body2[] = "--a b\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--a b--";
    CHECK_OK(parse("multipart/form-data; boundary=\"a b\"", body2, sizeof body2 - 1, 4, &mp, &e));
    CHECK(mp.n == 1 && mp.parts[0].len == 1 && mp.parts[0].data[0] == 'v');
    insp_multipart_free(&mp);
}

typedef struct bad_body {
    const char *body;
    int max_parts;
    int status;
    const char *msg;
} bad_body;

#define CD "Content-Disposition: form-data; name=\"f\"\r\n"
static const bad_body bad_bodies[] = {
    {"", 16, INSP_ERR_FORMAT, "no \"--XyZ\" delimiter"},
    {"hello world", 16, INSP_ERR_FORMAT, "no \"--XyZ\" delimiter"},
    {"--XyZ\r\n" CD "\r\ndata", 16, INSP_ERR_FORMAT, "part 1 has no delimiter after its data"},
    {"--XyZ\r\n" CD "\r\ndata\r\n--XyZ", 16, INSP_ERR_FORMAT, "without the closing"},
    {"--XyZ\r\n" CD "\r\ndata\r\n--XyZ\r\n", 16, INSP_ERR_FORMAT, "part 2: headers not ended"},
    {"--XyZ\r\n" CD "data\r\n--XyZ--", 16, INSP_ERR_FORMAT, "part 1: header line without"},
    {"--XyZ\r\n" CD, 16, INSP_ERR_FORMAT, "part 1: headers not ended by a blank line"},
    {"--XyZ\n" CD "\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT, "followed by other bytes"},
    {"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\n\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT,
     "part 1: header line not ended by CRLF"},
    {"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT,
     "part 1: no Content-Disposition"},
    {"--XyZ\r\n\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT, "part 1: no Content-Disposition"},
    {"--XyZ\r\nContent-Disposition: attachment; name=\"f\"\r\n\r\nx\r\n--XyZ--", 16,
     INSP_ERR_FORMAT, "not form-data"},
    {"--XyZ\r\nContent-Disposition: form-data; filename=\"a.png\"\r\n\r\nx\r\n--XyZ--", 16,
     INSP_ERR_FORMAT, "without a name"},
    {"--XyZ\r\nContent-Disposition: form-data; name=\"f\r\n\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT,
     "malformed Content-Disposition parameter"},
    {"--XyZ\r\n" CD CD "\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT, "Content-Disposition given twice"},
    {"--XyZ\r\n" CD "Content-Type: png\r\n\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT,
     "not type/subtype"},
    {"--XyZ\r\n" CD "Content-Type: a/b\r\nContent-Type: a/b\r\n\r\nx\r\n--XyZ--", 16,
     INSP_ERR_FORMAT, "Content-Type given twice"},
    {"--XyZ\r\n" CD " continued\r\n\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT, "folded header"},
    {"--XyZ\r\n" CD "Bad Name: x\r\n\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT,
     "invalid character in a header name"},
    {"--XyZ\r\n" CD "Content-Transfer-Encoding: base64\r\n\r\neA==\r\n--XyZ--", 16,
     INSP_ERR_UNSUPPORTED, "base64"},
    {"--XyZZ\r\n" CD "\r\nx\r\n--XyZ--", 16, INSP_ERR_FORMAT, "followed by other bytes"},
    {"--XyZ\r\n" CD "\r\nx\r\n--XyZ-x", 16, INSP_ERR_FORMAT, "followed by other bytes"},
    /* the delimiter must not occur inside data (RFC 2046 5.1.1), even as a prefix */
    {"--XyZ\r\n" CD "\r\nab\r\n--XyZZ\r\n--XyZ--", 16, INSP_ERR_FORMAT,
     "delimiter before part 2 followed by other bytes"},
    {"--XyZ\r\n" CD "\r\n1\r\n--XyZ\r\n" CD "\r\n2\r\n--XyZ\r\n" CD "\r\n3\r\n--XyZ--", 2,
     INSP_ERR_TOO_LARGE, "more than 2 parts"},
    {"--XyZ\r\n" CD "\r\n1\r\n--XyZ--", 0, INSP_ERR_TOO_LARGE, "more than 0 parts"},
};

static void strict_errors(void)
{
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
        const bad_body *c = &bad_bodies[i];
        insp_multipart mp;
        insp_error e;
        int st = parse(CT, c->body, strlen(c->body), c->max_parts, &mp, &e);
        CHECK_MSG(st == c->status, "case %zu: status %d, want %d (%s)", i, st, c->status, e.msg);
        CHECK_MSG(strstr(e.msg, c->msg) != NULL, "case %zu: message \"%s\" lacks \"%s\"", i,
                  e.msg, c->msg);
        CHECK_MSG(mp.n == 0 && mp.parts == NULL, "case %zu: output not empty", i);
    }
    /* exactly max_parts is fine */
    const char *three = "--XyZ\r\n" CD "\r\n1\r\n--XyZ\r\n" CD "\r\n2\r\n--XyZ\r\n" CD
                        "\r\n3\r\n--XyZ--";
    insp_multipart mp;
    insp_error e;
    CHECK_OK(parse(CT, three, strlen(three), 3, &mp, &e));
    CHECK_EQ_INT(mp.n, 3);
    insp_multipart_free(&mp);
    /* the content type is checked before the body */
    CHECK_EQ_INT(parse("image/png", three, strlen(three), 3, &mp, &e), INSP_ERR_UNSUPPORTED);
}

static const char small_body[] = "--XyZ\r\n"
                                 "Content-Disposition: form-data; name=\"a\"; filename=\"1.png\"\r\n"
                                 "Content-Type: image/png\r\n"
                                 "\r\n"
                                 "\x89PNG\r\n--\r\n"
                                 "\r\n--XyZ\r\n"
                                 "Content-Disposition: form-data; name=\"b\"\r\n"
                                 "\r\n"
                                 "\r\n--XyZ--\r\n";

static void truncated_at_every_offset(void)
{
    size_t full = sizeof small_body - 1;
    const char *close = strstr(small_body, "--XyZ--");
    REQUIRE(close);
    size_t complete = (size_t)(close - small_body) + 7; /* the first length that parses */
    int ok = 0, failed = 0;
    for (size_t len = 0; len <= full; len++) {
        /* an exact-size copy, so that ASan sees any read past the end */
        char *b = malloc(len ? len : 1);
        memcpy(b, small_body, len);
        insp_multipart mp;
        insp_error e;
        int st = parse(CT, len ? b : NULL, len, 16, &mp, &e);
        if (len >= complete) {
            CHECK_MSG(st == 0, "length %zu: %s", len, e.msg);
            CHECK(mp.n == 2 && mp.parts[0].len == 10 && mp.parts[1].len == 0);
            ok++;
        } else {
            CHECK_MSG(st == INSP_ERR_FORMAT, "length %zu: status %d", len, st);
            CHECK_MSG(e.msg[0] != '\0', "length %zu: no message", len);
            failed++;
        }
        insp_multipart_free(&mp);
        free(b);
    }
    CHECK_EQ_INT(ok, (int)(full - complete + 1));
    CHECK_EQ_INT(failed, (int)complete);
}

static void corrupted_at_every_offset(void)
{
    size_t full = sizeof small_body - 1;
    const char subst[] = {'-', '\r', '\n', 'x', '\0', ' ', '"', ';', ':'};
    int ok = 0, errors = 0;
    for (size_t i = 0; i < full; i++) {
        for (size_t j = 0; j < sizeof subst; j++) {
            char *b = malloc(full);
            memcpy(b, small_body, full);
            b[i] = subst[j];
            insp_multipart mp;
            insp_error e;
            int st = parse(CT, b, full, 16, &mp, &e);
            if (st == 0) {
                ok++;
                for (int k = 0; k < mp.n; k++) /* parts lie inside the body */
                    CHECK(mp.parts[k].data >= (unsigned char *)b &&
                          mp.parts[k].data + mp.parts[k].len <= (unsigned char *)b + full);
            } else {
                errors++;
                CHECK_MSG(st == INSP_ERR_FORMAT || st == INSP_ERR_UNSUPPORTED,
                          "offset %zu: status %d", i, st);
            }
            insp_multipart_free(&mp);
            free(b);
        }
    }
    /* both outcomes happen: data bytes may change freely, structure bytes may not */
    CHECK(ok > 0 && errors > 0);
}

TEST_MAIN(T(boundary_parameter), T(parts_headers_and_binary_data),
          T(preamble_epilogue_and_padding), T(strict_errors), T(truncated_at_every_offset),
          T(corrupted_at_every_offset))
