/* Tests of the CLIP tokenizer: the fixture's reference ids, Python's text cleaning rules,
 * invalid UTF-8, truncation, both vocabulary formats and the search path. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "harness.h"
#include "inspectd/tokenizer.h"

#define CTX 77

static insp_tokenizer *load_default(void)
{
    const char *path = getenv("INSPECTD_BPE");
    if (!path) {
        fprintf(stderr, "  INSPECTD_BPE is not set\n");
        return NULL;
    }
    insp_error err = {0};
    insp_tokenizer *tok = NULL;
    int s = insp_tokenizer_load(path, &tok, &err);
    if (s != INSP_OK)
        fprintf(stderr, "  load %s: %d %s\n", path, s, err.msg);
    return tok;
}

/* The fixture's cases: a JSON array of {"text", "ids"} (ids = SOT … EOT, no padding). */
static json_t *load_cases(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path("tiny/tokenizer.json"), 0, &jerr);
    if (!root) {
        fprintf(stderr, "  tokenizer.json: %s (line %d)\n", jerr.text, jerr.line);
        return NULL;
    }
    json_t *cases = json_object_get(root, "cases");
    json_incref(cases);
    json_decref(root);
    return cases;
}

/* Compares encode(text) with the expected ids (SOT … EOT); prints the first difference. */
static void check_ids(const insp_tokenizer *tok, const char *text, const int32_t *want,
                      int n_want)
{
    int32_t ids[CTX];
    insp_error err = {0};
    int n = insp_tokenizer_encode(tok, text, ids, CTX, &err);
    CHECK_MSG(n == n_want, "\"%.60s\": %d ids, expected %d (%s)", text, n, n_want, err.msg);
    if (n != n_want)
        return;
    for (int i = 0; i < n; i++) {
        if (ids[i] != want[i]) {
            CHECK_MSG(ids[i] == want[i], "\"%.60s\": id %d is %d, expected %d", text, i,
                      (int)ids[i], (int)want[i]);
            return;
        }
    }
    for (int i = n; i < CTX; i++)
        CHECK_MSG(ids[i] == 0, "\"%.60s\": padding id %d is %d", text, i, (int)ids[i]);
}

/* Checks that a and b tokenize identically (a rule of the text cleaning). */
static void check_same(const insp_tokenizer *tok, const char *a, const char *b)
{
    int32_t ia[CTX], ib[CTX];
    insp_error err = {0};
    int na = insp_tokenizer_encode(tok, a, ia, CTX, &err);
    int nb = insp_tokenizer_encode(tok, b, ib, CTX, &err);
    CHECK_MSG(na > 0 && na == nb && memcmp(ia, ib, sizeof ia) == 0,
              "\"%s\" (%d ids) and \"%s\" (%d ids) tokenize differently", a, na, b, nb);
}

static void fixture_cases(void)
{
    insp_tokenizer *tok = load_default();
    json_t *cases = load_cases();
    REQUIRE(tok && cases);
    CHECK_EQ_INT(json_array_size(cases), 55);
    size_t i;
    json_t *c;
    int checked = 0;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *jids = json_object_get(c, "ids");
        int n = (int)json_array_size(jids);
        REQUIRE(text && n >= 2 && n <= CTX);
        int32_t want[CTX];
        for (int k = 0; k < n; k++)
            want[k] = (int32_t)json_integer_value(json_array_get(jids, (size_t)k));
        check_ids(tok, text, want, n);
        checked++;
    }
    CHECK_EQ_INT(checked, 55);
    json_decref(cases);
    insp_tokenizer_free(tok);
}

static void vocabulary_entries(void)
{
    insp_tokenizer *tok = load_default();
    REQUIRE(tok);
    // GPT-2's byte table puts '!' first; "a" as a whole word is 320 in the reference ids.
    CHECK(strcmp(insp_tokenizer_token(tok, 0), "!") == 0);
    CHECK(strcmp(insp_tokenizer_token(tok, 256), "!</w>") == 0);
    CHECK(strcmp(insp_tokenizer_token(tok, 320), "a</w>") == 0);
    CHECK(strcmp(insp_tokenizer_token(tok, 512), "in") == 0); // the first merge: "i n"
    CHECK(strcmp(insp_tokenizer_token(tok, INSP_TOKEN_SOT), "<start_of_text>") == 0);
    CHECK(strcmp(insp_tokenizer_token(tok, INSP_TOKEN_EOT), "<end_of_text>") == 0);
    CHECK(insp_tokenizer_token(tok, -1) == NULL);
    CHECK(insp_tokenizer_token(tok, 49408) == NULL);
    CHECK(insp_tokenizer_token(NULL, 0) == NULL);
    insp_tokenizer_free(tok);
    insp_tokenizer_free(NULL);
}

static void invalid_utf8(void)
{
    insp_tokenizer *tok = load_default();
    REQUIRE(tok);
    static const char *const bad[] = {
        "\x80",                 // lone continuation byte
        "photo \xbf of",        // continuation byte mid-text
        "caf\xc3",              // truncated 2-byte sequence at the end
        "\xe2\x82 x",           // truncated 3-byte sequence
        "\xe2\x28\xa1",         // bad continuation
        "\xf0\x9f\x98",         // truncated 4-byte sequence
        "\xc0\xaf",             // overlong '/'
        "\xc1\xbf",             // overlong
        "\xe0\x80\xaf",         // overlong 3-byte
        "\xf0\x82\x82\xac",     // overlong 4-byte
        "\xed\xa0\x80",         // surrogate U+D800
        "a\xed\xbf\xbf",        // surrogate U+DFFF
        "\xf4\x90\x80\x80",     // above U+10FFFF
        "\xf8\x88\x80\x80\x80", // 5-byte form
        "\xfe",
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[CTX];
        insp_error err = {0};
        int s = insp_tokenizer_encode(tok, bad[i], ids, CTX, &err);
        CHECK_MSG(s == INSP_ERR_FORMAT, "case %zu: status %d", i, s);
        CHECK_MSG(err.status == INSP_ERR_FORMAT && strstr(err.msg, "UTF-8"), "case %zu: %s", i,
                  err.msg);
    }
    insp_tokenizer_free(tok);
}

static void empty_and_blank(void)
{
    insp_tokenizer *tok = load_default();
    REQUIRE(tok);
    static const int32_t want[] = {INSP_TOKEN_SOT, INSP_TOKEN_EOT};
    check_ids(tok, "", want, 2);
    check_ids(tok, " \t\n\xe3\x80\x80", want, 2); // U+3000 ideographic space too
    check_ids(tok, "&nbsp;", want, 2);             // unescapes to whitespace, then stripped
    insp_tokenizer_free(tok);
}

static void long_text_is_cut(void)
{
    insp_tokenizer *tok = load_default();
    REQUIRE(tok);
    int32_t one[CTX], ids[CTX];
    insp_error err = {0};
    REQUIRE(insp_tokenizer_encode(tok, "photo", one, CTX, &err) == 3);

    size_t reps = 20000;
    char *text = malloc(6 * reps + 1);
    REQUIRE(text);
    for (size_t i = 0; i < reps; i++)
        memcpy(text + 6 * i, "photo ", 6);
    text[6 * reps] = '\0';
    int n = insp_tokenizer_encode(tok, text, ids, CTX, &err);
    CHECK_EQ_INT(n, CTX);
    CHECK_EQ_INT(ids[0], INSP_TOKEN_SOT);
    CHECK_EQ_INT(ids[CTX - 1], INSP_TOKEN_EOT);
    for (int i = 1; i < CTX - 1; i++)
        CHECK_MSG(ids[i] == one[1], "id %d is %d, expected %d", i, (int)ids[i], (int)one[1]);

    // one enormous word: merged without quadratic blow-up, still cut at 77
    memset(text, 'q', 6 * reps);
    n = insp_tokenizer_encode(tok, text, ids, CTX, &err);
    CHECK_EQ_INT(n, CTX);
    CHECK_EQ_INT(ids[CTX - 1], INSP_TOKEN_EOT);
    free(text);
    insp_tokenizer_free(tok);
}

static void context_length_limits(void)
{
    insp_tokenizer *tok = load_default();
    REQUIRE(tok);
    int32_t ids[8];
    insp_error err = {0};
    // "a photo of a cat" is SOT 320 1125 539 320 2368 EOT in the fixture
    CHECK_EQ_INT(insp_tokenizer_encode(tok, "a photo of a cat", ids, 5, &err), 5);
    CHECK(ids[0] == INSP_TOKEN_SOT && ids[1] == 320 && ids[2] == 1125 && ids[3] == 539 &&
          ids[4] == INSP_TOKEN_EOT);
    CHECK_EQ_INT(insp_tokenizer_encode(tok, "a photo of a cat", ids, 2, &err), 2);
    CHECK(ids[0] == INSP_TOKEN_SOT && ids[1] == INSP_TOKEN_EOT);
    CHECK_EQ_INT(insp_tokenizer_encode(tok, "cat", ids, 1, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_tokenizer_encode(tok, NULL, ids, 8, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_tokenizer_encode(NULL, "cat", ids, 8, &err), INSP_ERR_INVALID);
    insp_tokenizer_free(tok);
}

/* Python's html.unescape (twice), str.strip/isspace and str.lower, as CLIP applies them; the
 * expected ids come from the reference tokenizer (open_clip's, without ftfy). */
static void text_cleaning(void)
{
    insp_tokenizer *tok = load_default();
    REQUIRE(tok);
    check_same(tok, "&amp;lt;tag&amp;gt;", "<tag>");          // unescaped twice
    check_same(tok, "&#65;&#x42;&#X63;", "abc");              // numeric, ';' and case
    check_same(tok, "&#65&#x42", "ab");                        // ';' optional in numeric refs
    check_same(tok, "caf&eacute;", "caf\xc3\xa9");
    check_same(tok, "&eacute", "\xc3\xa9");                    // legacy name without ';'
    check_same(tok, "&ampfoo", "&foo");                        // longest legacy prefix
    check_same(tok, "&notit;", "\xc2\xacit;");                // &not + "it;"
    check_same(tok, "&hellip;", "\xe2\x80\xa6");
    check_same(tok, "&AMP;&COPY", "&\xc2\xa9");
    check_same(tok, "&quot;&#39;&apos;", "\"''");
    check_same(tok, "&#0;", "\xef\xbf\xbd");                   // NUL → U+FFFD
    check_same(tok, "&#xD800;", "\xef\xbf\xbd");               // surrogate → U+FFFD
    check_same(tok, "&#99999999999;", "\xef\xbf\xbd");         // out of range → U+FFFD
    check_same(tok, "&#128;", "\xe2\x82\xac");                 // Windows-1252 reading: €
    check_same(tok, "&#1;x", "x");                             // control code: dropped
    check_same(tok, "&#x7f;x&#xFFFE;", "x");
    check_same(tok, "&#13;a", "a");                            // CR, then stripped
    // whitespace is Python's isspace(), including U+001C..U+001F and U+0085
    check_same(tok, "a\xe3\x80\x80" "b\xe2\x80\xa8" "c\x1c" "d\xc2\x85" "e\xc2\xa0" "f",
               "a b c d e f");
    // str.lower(): İ becomes i + U+0307; a word-final capital sigma becomes ς
    check_same(tok, "\xc4\xb0", "i\xcc\x87");
    check_same(tok, "\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82");
    check_same(tok, "\xce\xa3", "\xcf\x83");                   // alone: σ
    check_same(tok, "\xce\x91\xce\xa3.\xce\x92", "\xce\xb1\xcf\x83.\xce\xb2"); // '.' is ignorable

    static const int32_t unknown[] = {INSP_TOKEN_SOT, 261, 8685, 282, INSP_TOKEN_EOT};
    check_ids(tok, "&unknown;", unknown, 5); // unknown names stay as written
    static const int32_t bare[] = {INSP_TOKEN_SOT, 5, 2, 282, INSP_TOKEN_EOT};
    check_ids(tok, "&#;", bare, 5);
    insp_tokenizer_free(tok);
}

/* The split pattern's special tokens and its case-insensitive contractions (reference ids). */
static void split_pattern(void)
{
    insp_tokenizer *tok = load_default();
    REQUIRE(tok);
    static const int32_t eot_inside[] = {INSP_TOKEN_SOT, 320, INSP_TOKEN_EOT, 321,
                                         INSP_TOKEN_EOT};
    check_ids(tok, "a <end_of_text> b", eot_inside, 5);
    static const int32_t sot_upper[] = {INSP_TOKEN_SOT, INSP_TOKEN_SOT, 1125, INSP_TOKEN_EOT};
    check_ids(tok, "<START_of_text>photo", sot_upper, 4);
    static const int32_t sot_after[] = {INSP_TOKEN_SOT, 343, INSP_TOKEN_SOT, INSP_TOKEN_EOT};
    check_ids(tok, "x<start_of_text>", sot_after, 4);
    // "<ſtart_of_text>" matches the pattern case-insensitively but is not the special token
    static const int32_t long_s[] = {INSP_TOKEN_SOT, 27, 129, 123, 16707, 62, 684, 62, 18169,
                                     285, INSP_TOKEN_EOT};
    check_ids(tok, "<\xc5\xbftart_of_text>", long_s, 11);
    static const int32_t contraction[] = {INSP_TOKEN_SOT, 585, 6, 129, 379, INSP_TOKEN_EOT};
    check_ids(tok, "it'\xc5\xbf", contraction, 6);
    insp_tokenizer_free(tok);
}

static int write_merges_txt(const char *gz_path, const char *out_path)
{
    gzFile in = gzopen(gz_path, "rb");
    FILE *out = fopen(out_path, "w");
    if (!in || !out) {
        if (in)
            gzclose(in);
        if (out)
            fclose(out);
        return -1;
    }
    // The hub's file: its own header, then the same 48,894 merges.
    fputs("#version: 0.2\n", out);
    int line = 0, c;
    while (line <= 48894 && (c = gzgetc(in)) != -1) {
        if (line >= 1)
            fputc(c, out);
        if (c == '\n')
            line++;
    }
    gzclose(in);
    return fclose(out) == 0 && line == 48895 ? 0 : -1;
}

static void merges_txt_same_ids(void)
{
    insp_tokenizer *gz = load_default();
    json_t *cases = load_cases();
    REQUIRE(gz && cases);
    char dir[] = "/tmp/inspectd-tok-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    REQUIRE(write_merges_txt(getenv("INSPECTD_BPE"), path) == 0);

    insp_tokenizer *txt = NULL;
    insp_error err = {0};
    CHECK_OK(insp_tokenizer_load(path, &txt, &err));
    if (txt) {
        for (int32_t id = 0; id < 49408; id++)
            if (strcmp(insp_tokenizer_token(gz, id), insp_tokenizer_token(txt, id)) != 0) {
                CHECK_MSG(0, "vocabulary entry %d differs", (int)id);
                break;
            }
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c) {
            const char *text = json_string_value(json_object_get(c, "text"));
            int32_t a[CTX], b[CTX];
            int na = insp_tokenizer_encode(gz, text, a, CTX, &err);
            int nb = insp_tokenizer_encode(txt, text, b, CTX, &err);
            CHECK_MSG(na > 0 && na == nb && memcmp(a, b, sizeof a) == 0, "case %zu differs", i);
        }
    }

    // found through a model folder once $INSPECTD_BPE points nowhere
    char *saved = strdup(getenv("INSPECTD_BPE"));
    REQUIRE(saved);
    setenv("INSPECTD_BPE", "/nonexistent/bpe.txt.gz", 1);
    char found[512];
    CHECK_OK(insp_tokenizer_find(dir, found, sizeof found, &err));
    CHECK_MSG(strcmp(found, path) == 0, "found %s, expected %s", found, path);
    char tiny[8];
    CHECK_EQ_INT(insp_tokenizer_find(dir, tiny, sizeof tiny, &err), INSP_ERR_INVALID);
    setenv("INSPECTD_BPE", saved, 1);
    free(saved);

    insp_tokenizer_free(txt);
    unlink(path);
    rmdir(dir);
    json_decref(cases);
    insp_tokenizer_free(gz);
}

static void find_search_path(void)
{
    const char *env = getenv("INSPECTD_BPE");
    REQUIRE(env);
    char *saved = strdup(env);
    REQUIRE(saved);
    char found[4096];
    insp_error err = {0};
    CHECK_OK(insp_tokenizer_find(NULL, found, sizeof found, &err));
    CHECK(strcmp(found, saved) == 0);

    // nothing anywhere: an empty working directory and no variable
    char cwd[4096], dir[] = "/tmp/inspectd-find-XXXXXX";
    REQUIRE(getcwd(cwd, sizeof cwd) && mkdtemp(dir));
    REQUIRE(chdir(dir) == 0);
    unsetenv("INSPECTD_BPE");
    int s = insp_tokenizer_find("/nonexistent-model", found, sizeof found, &err);
    CHECK_EQ_INT(s, INSP_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.msg, "/nonexistent-model/merges.txt") &&
                  strstr(err.msg, "weights/bpe_simple_vocab_16e6.txt.gz"),
              "message: %s", err.msg);

    // weights/ under the working directory is the next place
    REQUIRE(mkdir("weights", 0700) == 0);
    FILE *f = fopen("weights/bpe_simple_vocab_16e6.txt.gz", "w");
    REQUIRE(f);
    fclose(f);
    CHECK_OK(insp_tokenizer_find(NULL, found, sizeof found, &err));
    CHECK(strcmp(found, "weights/bpe_simple_vocab_16e6.txt.gz") == 0);
    unlink("weights/bpe_simple_vocab_16e6.txt.gz");
    rmdir("weights");

    REQUIRE(chdir(cwd) == 0);
    rmdir(dir);
    setenv("INSPECTD_BPE", saved, 1);
    free(saved);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void bad_vocabulary_files(void)
{
    insp_tokenizer *tok = (insp_tokenizer *)&tok; // must be reset to NULL on failure
    insp_error err = {0};
    CHECK_EQ_INT(insp_tokenizer_load("/nonexistent/bpe_simple_vocab_16e6.txt.gz", &tok, &err),
                 INSP_ERR_NOT_FOUND);
    CHECK(tok == NULL);
    CHECK(strstr(err.msg, "/nonexistent/bpe_simple_vocab_16e6.txt.gz") != NULL);
    CHECK_EQ_INT(insp_tokenizer_load(NULL, &tok, &err), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_tokenizer_load("/tmp", &tok, &err), INSP_ERR_IO);

    char dir[] = "/tmp/inspectd-badbpe-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/merges.txt", dir);

    REQUIRE(write_file(path, "#version: 0.2\ni n\nt h\n") == 0); // far too few merges
    CHECK_EQ_INT(insp_tokenizer_load(path, &tok, &err), INSP_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "2 merges"), "message: %s", err.msg);

    REQUIRE(write_file(path, "i n\nt h\n") == 0); // no header line
    CHECK_EQ_INT(insp_tokenizer_load(path, &tok, &err), INSP_ERR_FORMAT);

    REQUIRE(write_file(path, "#version: 0.2\ni n\nthree parts here\n") == 0);
    CHECK_EQ_INT(insp_tokenizer_load(path, &tok, &err), INSP_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "line 3"), "message: %s", err.msg);

    REQUIRE(write_file(path, "#version: 0.2\ni \xff\n") == 0);
    CHECK_EQ_INT(insp_tokenizer_load(path, &tok, &err), INSP_ERR_FORMAT);

    // a gzip stream cut short
    REQUIRE(write_file(path, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab") == 0);
    CHECK_EQ_INT(insp_tokenizer_load(path, &tok, &err), INSP_ERR_FORMAT);
    CHECK(tok == NULL);
    unlink(path);
    rmdir(dir);
}

typedef struct thread_job {
    const insp_tokenizer *tok;
    json_t *cases;
    int mismatches;
} thread_job;

static void *encode_all(void *arg)
{
    thread_job *job = arg;
    for (int round = 0; round < 20; round++) {
        size_t i;
        json_t *c;
        json_array_foreach(job->cases, i, c) {
            int32_t ids[CTX];
            json_t *want = json_object_get(c, "ids");
            int n = insp_tokenizer_encode(job->tok, json_string_value(json_object_get(c, "text")),
                                          ids, CTX, NULL);
            if (n != (int)json_array_size(want)) {
                job->mismatches++;
                continue;
            }
            for (int k = 0; k < n; k++)
                if (ids[k] != json_integer_value(json_array_get(want, (size_t)k)))
                    job->mismatches++;
        }
    }
    return NULL;
}

static void shared_by_threads(void)
{
    insp_tokenizer *tok = load_default();
    json_t *cases = load_cases();
    REQUIRE(tok && cases);
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){tok, cases, 0};
        REQUIRE(pthread_create(&th[i], NULL, encode_all, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].mismatches, 0);
    }
    json_decref(cases);
    insp_tokenizer_free(tok);
}

TEST_MAIN(T(fixture_cases), T(vocabulary_entries), T(invalid_utf8), T(empty_and_blank),
          T(long_text_is_cut), T(context_length_limits), T(text_cleaning), T(split_pattern),
          T(merges_txt_same_ids), T(find_search_path), T(bad_vocabulary_files),
          T(shared_by_threads))
