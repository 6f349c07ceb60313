/* Tests of product definitions: parsing, the canonical JSON form, every validation error, the
 * prompt spec view and product id validation. */
#include "harness.h"
#include "store/product_def.h"

static int parse(const char *text, insp_product_def *def, insp_error *err)
{
    insp_error_clear(err);
    return insp_product_def_parse(text, strlen(text), def, err);
}

static void minimal_definition_gets_defaults(void)
{
    insp_product_def d;
    insp_error e;
    CHECK_OK(parse("{\"object\": \"printed circuit board\"}", &d, &e));
    REQUIRE(d.object);
    CHECK(strcmp(d.object, "printed circuit board") == 0);
    CHECK(d.threshold_auto);
    CHECK(d.model == NULL);
    CHECK(d.description == NULL);
    CHECK_EQ_INT(d.normal_states.n, 0);
    CHECK_EQ_INT(d.anomaly_states.n, 0);
    CHECK_EQ_INT(d.templates.n, 0);
    CHECK_EQ_INT(d.normal_sentences.n, 0);
    CHECK_EQ_INT(d.anomaly_sentences.n, 0);
    CHECK(!d.replace_normal_states && !d.replace_anomaly_states && !d.replace_templates);
    insp_product_def_free(&d);
    CHECK(d.object == NULL);
    insp_product_def_free(&d); /* second free of a zeroed def is a no-op */
    insp_product_def_free(NULL);
}

static const char full_json[] =
    "{\"object\": \"printed circuit board\","
    " \"normal_states\": [\"clean {}\", \"{} without solder bridges\"],"
    " \"anomaly_states\": [\"{} with bad soldering\", \"{} with a missing component\"],"
    " \"templates\": [\"a close-up photo of the {}.\"],"
    " \"replace_normal_states\": true, \"replace_anomaly_states\": false,"
    " \"replace_templates\": false,"
    " \"normal_sentences\": [\"a photo of a good board\"],"
    " \"anomaly_sentences\": [\"a photo of a burnt board\", \"a board with a scratch\"],"
    " \"model\": \"ViT-B-16\", \"threshold\": 0.25,"
    " \"description\": \"line 3\\nrev 7 boards\"}";

static void full_definition_parses(void)
{
    insp_product_def d;
    insp_error e;
    CHECK_OK(parse(full_json, &d, &e));
    REQUIRE(d.object);
    CHECK_EQ_INT(d.normal_states.n, 2);
    CHECK(d.normal_states.n == 2 && strcmp(d.normal_states.items[1], "{} without solder bridges") == 0);
    CHECK_EQ_INT(d.anomaly_states.n, 2);
    CHECK_EQ_INT(d.templates.n, 1);
    CHECK_EQ_INT(d.normal_sentences.n, 1);
    CHECK_EQ_INT(d.anomaly_sentences.n, 2);
    CHECK(d.anomaly_sentences.n == 2 &&
          strcmp(d.anomaly_sentences.items[0], "a photo of a burnt board") == 0);
    CHECK(d.replace_normal_states);
    CHECK(!d.replace_anomaly_states);
    CHECK(!d.threshold_auto);
    CHECK_NEAR(d.threshold, 0.25, 0);
    CHECK(d.model && strcmp(d.model, "ViT-B-16") == 0);
    CHECK(d.description && strcmp(d.description, "line 3\nrev 7 boards") == 0);
    insp_product_def_free(&d);
}

static void canonical_json_and_round_trip(void)
{
    insp_product_def d, d2;
    insp_error e;
    CHECK_OK(parse(full_json, &d, &e));
    json_t *j = insp_product_def_to_json(&d);
    REQUIRE(j);
    /* The canonical form of a definition that sets every field is the input itself. */
    json_error_t jerr;
    json_t *input = json_loads(full_json, 0, &jerr);
    REQUIRE(input);
    CHECK(json_equal(j, input));
    char *text = json_dumps(j, 0);
    REQUIRE(text);
    CHECK_OK(parse(text, &d2, &e));
    json_t *j2 = insp_product_def_to_json(&d2);
    CHECK(j2 && json_equal(j, j2));
    free(text);
    json_decref(j);
    json_decref(j2);
    json_decref(input);
    insp_product_def_free(&d);
    insp_product_def_free(&d2);

    /* Defaults are spelt out; model and description stay absent. */
    CHECK_OK(parse("{\"object\": \"bottle\"}", &d, &e));
    j = insp_product_def_to_json(&d);
    json_t *want = json_pack("{s:s, s:[], s:b, s:[], s:b, s:[], s:b, s:[], s:[], s:s}", "object",
                             "bottle", "normal_states", "replace_normal_states", 0,
                             "anomaly_states", "replace_anomaly_states", 0, "templates",
                             "replace_templates", 0, "normal_sentences", "anomaly_sentences",
                             "threshold", "auto");
    CHECK(j && want && json_equal(j, want));
    json_decref(j);
    json_decref(want);
    insp_product_def_free(&d);
}

static void copy_is_deep_and_equal(void)
{
    insp_product_def d, c;
    insp_error e;
    CHECK_OK(parse(full_json, &d, &e));
    CHECK_OK(insp_product_def_copy(&d, &c));
    CHECK(c.object != d.object);
    CHECK(c.templates.items != d.templates.items);
    json_t *a = insp_product_def_to_json(&d), *b = insp_product_def_to_json(&c);
    CHECK(a && b && json_equal(a, b));
    json_decref(a);
    json_decref(b);
    insp_product_def_free(&d);
    /* c survives d */
    CHECK(strcmp(c.templates.items[0], "a close-up photo of the {}.") == 0);
    insp_product_def_free(&c);
}

static void prompt_spec_points_into_def(void)
{
    insp_product_def d;
    insp_error e;
    CHECK_OK(parse(full_json, &d, &e));
    insp_prompt_spec s;
    insp_product_def_prompt_spec(&d, &s);
    CHECK(s.object == d.object);
    CHECK_EQ_INT(s.normal_states.n, 2);
    CHECK(s.normal_states.items && s.normal_states.items[0] == d.normal_states.items[0]);
    CHECK(s.replace_normal_states);
    CHECK(!s.replace_anomaly_states);
    CHECK_EQ_INT(s.anomaly_states.n, 2);
    CHECK_EQ_INT(s.templates.n, 1);
    CHECK_EQ_INT(s.normal_sentences.n, 1);
    CHECK_EQ_INT(s.anomaly_sentences.n, 2);
    CHECK(s.anomaly_sentences.items &&
          strcmp(s.anomaly_sentences.items[1], "a board with a scratch") == 0);
    insp_product_def_free(&d);

    CHECK_OK(parse("{\"object\": \"x\"}", &d, &e));
    insp_product_def_prompt_spec(&d, &s);
    CHECK(s.templates.items == NULL && s.templates.n == 0);
    insp_product_def_free(&d);
}

/* A JSON text with one string field of n bytes of 'a' (placed by fmt's %s). */
static char *with_long(const char *fmt, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, 'a', n);
    s[n] = '\0';
    size_t cap = strlen(fmt) + n + 1;
    char *out = malloc(cap);
    snprintf(out, cap, fmt, s);
    free(s);
    return out;
}

/* A JSON list of n states "s<i> {}". */
static char *with_states(int n)
{
    size_t cap = 64 + (size_t)n * 16;
    char *out = malloc(cap);
    size_t k = (size_t)snprintf(out, cap, "{\"object\": \"o\", \"normal_states\": [");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s\"s%d {}\"", i ? ", " : "", i);
    snprintf(out + k, cap - k, "]}");
    return out;
}

typedef struct bad_case {
    const char *json;
    int status;
    const char *in_message;
} bad_case;

static const bad_case bad_cases[] = {
    {"{\"object\": ", INSP_ERR_FORMAT, "invalid JSON"},
    {"{\"object\": \"\xff\xfe\"}", INSP_ERR_FORMAT, "invalid JSON"},
    {"{\"object\": \"a\", \"object\": \"b\"}", INSP_ERR_FORMAT, "invalid JSON"},
    {"{\"object\": \"a\\u0000b\"}", INSP_ERR_FORMAT, "invalid JSON"},
    {"", INSP_ERR_FORMAT, "invalid JSON"},
    {"[\"object\"]", INSP_ERR_INVALID, "must be a JSON object"},
    {"{}", INSP_ERR_INVALID, "object: required"},
    {"{\"object\": \"\"}", INSP_ERR_INVALID, "object: must not be empty"},
    {"{\"object\": \"  \\t \"}", INSP_ERR_INVALID, "object: must not be empty"},
    {"{\"object\": 3}", INSP_ERR_INVALID, "object: must be a string, got a number"},
    {"{\"object\": null}", INSP_ERR_INVALID, "object: must be a string, got null"},
    {"{\"object\": \"board {}\"}", INSP_ERR_INVALID, "object: must not contain"},
    {"{\"object\": \"two\\nlines\"}", INSP_ERR_INVALID, "object: contains a control character"},
    {"{\"objet\": \"board\"}", INSP_ERR_INVALID, "unknown field \"objet\" (did you mean \"object\"?)"},
    {"{\"object\": \"b\", \"treshold\": 0.5}", INSP_ERR_INVALID, "did you mean \"threshold\""},
    {"{\"object\": \"b\", \"colour\": 1}", INSP_ERR_INVALID, "unknown field \"colour\""},
    {"{\"object\": \"b\", \"normal_states\": \"good {}\"}", INSP_ERR_INVALID,
     "normal_states: must be an array of strings, got a string"},
    {"{\"object\": \"b\", \"normal_states\": [\"good {}\", 7]}", INSP_ERR_INVALID,
     "normal_states[1]: must be a string, got a number"},
    {"{\"object\": \"b\", \"anomaly_states\": [\"\"]}", INSP_ERR_INVALID,
     "anomaly_states[0]: must not be empty"},
    {"{\"object\": \"b\", \"anomaly_states\": [[\"{}\"]]}", INSP_ERR_INVALID,
     "anomaly_states[0]: must be a string, got an array"},
    {"{\"object\": \"b\", \"normal_states\": [\"good\"]}", INSP_ERR_INVALID,
     "normal_states[0]: must contain \"{}\" exactly once"},
    {"{\"object\": \"b\", \"templates\": [\"a {} of a {}\"]}", INSP_ERR_INVALID,
     "templates[0]: must contain \"{}\" exactly once"},
    {"{\"object\": \"b\", \"normal_sentences\": [\"ok\\u0007\"]}", INSP_ERR_INVALID,
     "normal_sentences[0]: contains a control character"},
    {"{\"object\": \"b\", \"replace_templates\": \"yes\"}", INSP_ERR_INVALID,
     "replace_templates: must be true or false, got a string"},
    {"{\"object\": \"b\", \"replace_normal_states\": 1}", INSP_ERR_INVALID,
     "replace_normal_states: must be true or false, got a number"},
    {"{\"object\": \"b\", \"threshold\": 1.5}", INSP_ERR_INVALID, "threshold: must be in [0, 1]"},
    {"{\"object\": \"b\", \"threshold\": -0.01}", INSP_ERR_INVALID, "threshold: must be in [0, 1]"},
    {"{\"object\": \"b\", \"threshold\": \"high\"}", INSP_ERR_INVALID,
     "threshold: must be a number in [0, 1] or \"auto\""},
    {"{\"object\": \"b\", \"threshold\": null}", INSP_ERR_INVALID,
     "threshold: must be a number in [0, 1] or \"auto\", got null"},
    {"{\"object\": \"b\", \"model\": \"\"}", INSP_ERR_INVALID, "model: must not be empty"},
    {"{\"object\": \"b\", \"model\": 5}", INSP_ERR_INVALID, "model: must be a string"},
    {"{\"object\": \"b\", \"description\": {}}", INSP_ERR_INVALID,
     "description: must be a string, got an object"},
    {"{\"object\": \"b\", \"replace_normal_states\": true}", INSP_ERR_INVALID,
     "no normal prompt left"},
    {"{\"object\": \"b\", \"replace_anomaly_states\": true, \"anomaly_states\": []}",
     INSP_ERR_INVALID, "no anomaly prompt left"},
    {"{\"object\": \"b\", \"replace_templates\": true, \"normal_sentences\": [\"n\"]}",
     INSP_ERR_INVALID, "no anomaly prompt left: templates is empty"},
};

static void every_validation_error(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        insp_product_def d;
        insp_error e;
        int st = parse(c->json, &d, &e);
        CHECK_MSG(st == c->status, "case %zu (%s): status %d, want %d (%s)", i, c->json, st,
                  c->status, e.msg);
        CHECK_MSG(st == 0 || e.status == st, "case %zu: err.status %d", i, e.status);
        CHECK_MSG(strstr(e.msg, c->in_message) != NULL, "case %zu (%s): message \"%s\" lacks \"%s\"",
                  i, c->json, e.msg, c->in_message);
        CHECK_MSG(d.object == NULL && d.normal_states.items == NULL, "case %zu: def not zeroed", i);
        insp_product_def_free(&d);
    }
}

static void limits_at_and_over_the_edge(void)
{
    struct {
        const char *fmt;
        size_t ok, bad;
        const char *field;
    } lim[] = {
        {"{\"object\": \"%s\"}", 200, 201, "object: 201 bytes, at most 200"},
        {"{\"object\": \"o\", \"normal_states\": [\"{}%s\"]}", 198, 199,
         "normal_states[0]: 201 bytes"},
        {"{\"object\": \"o\", \"anomaly_sentences\": [\"%s\"]}", 200, 201,
         "anomaly_sentences[0]: 201 bytes"},
        {"{\"object\": \"o\", \"model\": \"%s\"}", 128, 129, "model: 129 bytes"},
        {"{\"object\": \"o\", \"description\": \"%s\"}", 2000, 2001,
         "description: 2001 bytes, at most 2000"},
    };
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        insp_product_def d;
        insp_error e;
        char *ok = with_long(lim[i].fmt, lim[i].ok), *bad = with_long(lim[i].fmt, lim[i].bad);
        CHECK_MSG(parse(ok, &d, &e) == 0, "limit %zu at the edge: %s", i, e.msg);
        insp_product_def_free(&d);
        CHECK_EQ_INT(parse(bad, &d, &e), INSP_ERR_INVALID);
        CHECK_MSG(strstr(e.msg, lim[i].field) != NULL, "limit %zu: \"%s\"", i, e.msg);
        free(ok);
        free(bad);
    }
    /* A multi-byte character counts as its bytes: 100 x "é" = 200 bytes is fine, 101 not. */
    char obj[512] = "{\"object\": \"";
    for (int i = 0; i < 101; i++)
        strcat(obj, "\xc3\xa9");
    strcat(obj, "\"}");
    insp_product_def d;
    insp_error e;
    CHECK_EQ_INT(parse(obj, &d, &e), INSP_ERR_INVALID);

    char *s64 = with_states(64), *s65 = with_states(65);
    CHECK_OK(parse(s64, &d, &e));
    CHECK_EQ_INT(d.normal_states.n, 64);
    insp_product_def_free(&d);
    CHECK_EQ_INT(parse(s65, &d, &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "normal_states: 65 items, at most 64") != NULL);
    free(s64);
    free(s65);

    /* thresholds at the ends of the range, as integers too */
    CHECK_OK(parse("{\"object\": \"o\", \"threshold\": 0}", &d, &e));
    CHECK(!d.threshold_auto && d.threshold == 0.0);
    insp_product_def_free(&d);
    CHECK_OK(parse("{\"object\": \"o\", \"threshold\": 1}", &d, &e));
    CHECK(!d.threshold_auto && d.threshold == 1.0);
    insp_product_def_free(&d);
    CHECK_OK(parse("{\"object\": \"o\", \"threshold\": \"auto\"}", &d, &e));
    CHECK(d.threshold_auto);
    insp_product_def_free(&d);
    /* replacing every list is fine while each side keeps a prompt */
    CHECK_OK(parse("{\"object\": \"o\", \"replace_templates\": true, \"templates\": [],"
                   " \"normal_sentences\": [\"n\"], \"anomaly_sentences\": [\"a\"]}",
                   &d, &e));
    insp_product_def_free(&d);
}

static void oversized_and_nested_bodies(void)
{
    insp_product_def d;
    insp_error e;
    size_t n = INSP_PRODUCT_DEF_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    memcpy(big, "{\"object\": \"o\"}", 15);
    insp_error_clear(&e);
    CHECK_EQ_INT(insp_product_def_parse(big, n, &d, &e), INSP_ERR_TOO_LARGE);
    CHECK(strstr(e.msg, "at most") != NULL);
    /* the same text one byte shorter is accepted (trailing whitespace) */
    CHECK_OK(insp_product_def_parse(big, n - 1, &d, &e));
    insp_product_def_free(&d);
    free(big);

    /* 100000 nested arrays: rejected by the parser's depth limit, without a crash */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    int st = parse(deep, &d, &e);
    CHECK(st == INSP_ERR_FORMAT || st == INSP_ERR_TOO_LARGE);
    free(deep);
    /* nesting inside a field is a type error naming the field */
    CHECK_EQ_INT(parse("{\"object\": \"o\", \"templates\": [[[[[\"{}\"]]]]]}", &d, &e),
                 INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "templates[0]") != NULL);
    /* not NUL-terminated: only len bytes are read */
    const char text[] = "{\"object\": \"o\"}garbage";
    CHECK_OK(insp_product_def_parse(text, 15, &d, &e));
    insp_product_def_free(&d);
    CHECK_EQ_INT(insp_product_def_parse(NULL, 0, &d, &e), INSP_ERR_FORMAT);
}

static void product_ids(void)
{
    const char *good[] = {"pcb-rev7", "A.b_c-1", "0", "x.y.z", "bottle_2024.v3"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(insp_product_id_valid(good[i]), "\"%s\" should be valid", good[i]);
    char id64[66], id65[66];
    memset(id64, 'a', 64);
    id64[64] = '\0';
    memset(id65, 'a', 65);
    id65[65] = '\0';
    CHECK(insp_product_id_valid(id64));
    CHECK(!insp_product_id_valid(id65));
    const char *bad[] = {"",     "../x", "a/b",  ".hidden", "-x",  "_x",    "a..b", "a b",
                         "..",   ".",    "a\\b", "ä",       "a\n", "x/../y", "a:b", "a%2fb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!insp_product_id_valid(bad[i]), "\"%s\" should be invalid", bad[i]);
    CHECK(!insp_product_id_valid(NULL));
    insp_error e;
    CHECK_EQ_INT(insp_product_id_check("../x", &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "must start with a letter or digit") != NULL);
    CHECK_EQ_INT(insp_product_id_check("a/b", &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "character 2") != NULL);
    CHECK_EQ_INT(insp_product_id_check(id65, &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "longer than 64") != NULL);
    CHECK_EQ_INT(insp_product_id_check("a..b", &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "\"..\"") != NULL);
}

TEST_MAIN(T(minimal_definition_gets_defaults), T(full_definition_parses),
          T(canonical_json_and_round_trip), T(copy_is_deep_and_equal),
          T(prompt_spec_points_into_def), T(every_validation_error),
          T(limits_at_and_over_the_edge), T(oversized_and_nested_bodies), T(product_ids))
