/* Tests of the JSON-lines logger: valid JSON per line, escaping, level filtering before
 * formatting, extra fields, and whole lines under concurrent writers. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/log.h"
#include "harness.h"
#include "inspectd/status.h"

static int cap_fd = -1;
static char cap_path[64];

static void capture_begin(void)
{
    snprintf(cap_path, sizeof cap_path, "/tmp/insp_test_log_XXXXXX");
    cap_fd = mkstemp(cap_path);
    insp_log_set_fd(cap_fd);
}

/* Stops capturing and returns everything written (caller frees). */
static char *capture_end(size_t *len)
{
    insp_log_set_fd(2);
    close(cap_fd);
    char *s = read_file(cap_path, len);
    unlink(cap_path);
    return s;
}

/* Splits text into lines (in place) and parses each; returns the number of lines, every
 * one of which must be a JSON object. */
static int parse_lines(char *text, json_t **out, int max)
{
    int n = 0;
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        CHECK_MSG(nl != NULL, "line without newline: %s", p);
        if (!nl)
            break;
        *nl = '\0';
        json_error_t je;
        json_t *j = json_loads(p, 0, &je);
        CHECK_MSG(j && json_is_object(j), "not a JSON object: %s (%s)", p, je.text);
        if (n < max)
            out[n] = j;
        else
            json_decref(j);
        n++;
        p = nl + 1;
    }
    return n;
}

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "(missing)";
}

static void basic_line(void)
{
    insp_log_set_level(INSP_LOG_LEVEL_INFO);
    capture_begin();
    INSP_LOG_INFO("model_loaded", "model %s in %d ms", "tiny", 42);
    size_t len;
    char *text = capture_end(&len);
    REQUIRE(text);
    CHECK(strncmp(text, "{\"ts\":\"", 7) == 0);
    json_t *l[2] = {0};
    CHECK_EQ_INT(parse_lines(text, l, 2), 1);
    REQUIRE(l[0]);
    CHECK(strcmp(str_of(l[0], "level"), "info") == 0);
    CHECK(strcmp(str_of(l[0], "event"), "model_loaded") == 0);
    CHECK(strcmp(str_of(l[0], "msg"), "model tiny in 42 ms") == 0);
    const char *ts = str_of(l[0], "ts");
    /* 2026-11-23T12:00:00.123Z */
    CHECK_EQ_INT(strlen(ts), 24);
    CHECK(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' && ts[19] == '.' &&
          ts[23] == 'Z');
    CHECK_EQ_INT(json_object_size(l[0]), 4);
    json_decref(l[0]);
    free(text);
}

static int side_effects;
static int count_call(void)
{
    return ++side_effects;
}

static void level_checked_before_formatting(void)
{
    side_effects = 0;
    insp_log_set_level(INSP_LOG_LEVEL_WARN);
    capture_begin();
    INSP_LOG_DEBUG("x", "%d", count_call());
    INSP_LOG_INFO("x", "%d", count_call());
    INSP_LOG_FIELDS(INSP_LOG_LEVEL_INFO, "x", json_pack("{s:i}", "n", count_call()), "m");
    CHECK(!insp_log_enabled(INSP_LOG_LEVEL_INFO));
    CHECK(insp_log_enabled(INSP_LOG_LEVEL_ERROR));
    INSP_LOG_WARN("w", "%d", count_call());
    INSP_LOG_ERROR("e", "%d", count_call());
    insp_log_set_level(INSP_LOG_LEVEL_DEBUG);
    INSP_LOG_DEBUG("d", "%d", count_call());
    size_t len;
    char *text = capture_end(&len);
    insp_log_set_level(INSP_LOG_LEVEL_INFO);
    REQUIRE(text);
    CHECK_EQ_INT(side_effects, 3);
    json_t *l[4] = {0};
    CHECK_EQ_INT(parse_lines(text, l, 4), 3);
    const char *want_level[3] = {"warn", "error", "debug"};
    const char *want_msg[3] = {"1", "2", "3"};
    for (int i = 0; i < 3; i++) {
        if (!l[i])
            continue;
        CHECK(strcmp(str_of(l[i], "level"), want_level[i]) == 0);
        CHECK(strcmp(str_of(l[i], "msg"), want_msg[i]) == 0);
        json_decref(l[i]);
    }
    free(text);
}

static void escaping_and_bad_utf8(void)
{
    insp_log_set_level(INSP_LOG_LEVEL_INFO);
    capture_begin();
    /* quote, backslash, newline, tab, a control byte, valid UTF-8 (é, €), a stray 0xff, a
     * truncated 3-byte sequence, an overlong '/' (c0 af) and a UTF-16 surrogate (ed a0 80) */
    INSP_LOG_INFO("ev\"il\n", "a\"b\\c\nd\te\x01 \xc3\xa9\xe2\x82\xac \xff|\xe2\x82|\xc0\xaf|\xed\xa0\x80");
    size_t len;
    char *text = capture_end(&len);
    REQUIRE(text);
    /* one line only */
    CHECK(len > 0 && text[len - 1] == '\n' && strchr(text, '\n') == text + len - 1);
    json_t *l[1] = {0};
    CHECK_EQ_INT(parse_lines(text, l, 1), 1);
    REQUIRE(l[0]);
    const char *fffd = "\xef\xbf\xbd";
    char want[128];
    snprintf(want, sizeof want, "a\"b\\c\nd\te\x01 \xc3\xa9\xe2\x82\xac %s|%s%s|%s%s|%s%s%s",
             fffd, fffd, fffd, fffd, fffd, fffd, fffd, fffd);
    CHECK_MSG(strcmp(str_of(l[0], "msg"), want) == 0, "msg = '%s'", str_of(l[0], "msg"));
    CHECK(strcmp(str_of(l[0], "event"), "ev\"il\n") == 0);
    json_decref(l[0]);
    free(text);
}

static void extra_fields(void)
{
    insp_log_set_level(INSP_LOG_LEVEL_INFO);
    capture_begin();
    insp_log_fields(INSP_LOG_LEVEL_WARN, "request",
                    json_pack("{s:s,s:i,s:f,s:s,s:[i,i]}", "route", "/v1/products/{id}", "status",
                              503, "seconds", 0.25, "msg", "clash", "list", 1, 2),
                    "queue full (%d waiting)", 8);
    insp_log_fields(INSP_LOG_LEVEL_INFO, "plain", NULL, "%s", "no fields");
    size_t len;
    char *text = capture_end(&len);
    REQUIRE(text);
    json_t *l[2] = {0};
    CHECK_EQ_INT(parse_lines(text, l, 2), 2);
    REQUIRE(l[0] && l[1]);
    CHECK(strcmp(str_of(l[0], "level"), "warn") == 0);
    CHECK(strcmp(str_of(l[0], "msg"), "queue full (8 waiting)") == 0);
    CHECK(strcmp(str_of(l[0], "route"), "/v1/products/{id}") == 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(l[0], "status")), 503);
    CHECK_NEAR(json_real_value(json_object_get(l[0], "seconds")), 0.25, 0);
    CHECK(strcmp(str_of(l[0], "_msg"), "clash") == 0);
    CHECK_EQ_INT(json_array_size(json_object_get(l[0], "list")), 2);
    CHECK_EQ_INT(json_object_size(l[1]), 4);
    CHECK(strcmp(str_of(l[1], "msg"), "no fields") == 0);
    json_decref(l[0]);
    json_decref(l[1]);
    free(text);
}

#define THREADS 4
#define LINES 300

static void *writer(void *arg)
{
    int id = (int)(long)arg;
    char big[3001];
    memset(big, 'a' + id, 3000);
    big[3000] = '\0';
    for (int i = 0; i < LINES; i++)
        INSP_LOG_INFO("t", "%d %d %s", id, i, big);
    return NULL;
}

static void concurrent_lines_stay_whole(void)
{
    insp_log_set_level(INSP_LOG_LEVEL_INFO);
    capture_begin();
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    size_t len;
    char *text = capture_end(&len);
    REQUIRE(text);
    static json_t *l[THREADS * LINES];
    int n = parse_lines(text, l, THREADS * LINES);
    CHECK_EQ_INT(n, THREADS * LINES);
    int seen[THREADS][LINES] = {{0}};
    int bad = 0;
    for (int k = 0; k < n && k < THREADS * LINES; k++) {
        if (!l[k]) {
            bad++;
            continue;
        }
        int id = -1, i = -1, off = 0;
        const char *msg = str_of(l[k], "msg");
        if (sscanf(msg, "%d %d %n", &id, &i, &off) == 2 && id >= 0 && id < THREADS && i >= 0 &&
            i < LINES && strlen(msg + off) == 3000 && msg[off] == 'a' + id &&
            msg[off + 2999] == 'a' + id)
            seen[id][i]++;
        else
            bad++;
        json_decref(l[k]);
    }
    CHECK_EQ_INT(bad, 0);
    int missing = 0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < LINES; i++)
            missing += seen[t][i] != 1;
    CHECK_EQ_INT(missing, 0);
    free(text);
}

static void level_names(void)
{
    int lv = -1;
    CHECK_OK(insp_log_level_parse("debug", &lv));
    CHECK_EQ_INT(lv, INSP_LOG_LEVEL_DEBUG);
    CHECK_OK(insp_log_level_parse("warning", &lv));
    CHECK_EQ_INT(lv, INSP_LOG_LEVEL_WARN);
    CHECK_EQ_INT(insp_log_level_parse("verbose", &lv), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_log_level_parse(NULL, &lv), INSP_ERR_INVALID);
    CHECK(strcmp(insp_log_level_name(INSP_LOG_LEVEL_ERROR), "error") == 0);
    CHECK(strcmp(insp_log_level_name(17), "?") == 0);
    insp_log_set_level(99);
    CHECK_EQ_INT(insp_log_get_level(), INSP_LOG_LEVEL_ERROR);
    insp_log_set_level(INSP_LOG_LEVEL_INFO);
}

TEST_MAIN(T(basic_line), T(level_checked_before_formatting), T(escaping_and_bad_utf8),
          T(extra_fields), T(concurrent_lines_stay_whole), T(level_names))
