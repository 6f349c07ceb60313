/* Per-product prompt customisation through the whole text path: extra states, templates and
 * sentences change the text embedding exactly as documented (each side is the plain mean of
 * its prompts' embeddings), and a malformed prompt set is a clear error. */
#include "harness.h"
#include "inspectd/clip.h"
#include "inspectd/prompts.h"
#include "inspectd/tokenizer.h"
#include "inspectd/winclip.h"

typedef struct ctx {
    insp_clip *clip;
    insp_tokenizer *tok;
    insp_clip_ws *ws;
    insp_winclip *wc;
    int D;
} ctx;

static int ctx_open(ctx *c)
{
    char path[4096];
    memset(c, 0, sizeof *c);
    if (insp_clip_load(fixture_path("tiny"), &c->clip, NULL) != INSP_OK ||
        insp_tokenizer_find(NULL, path, sizeof path, NULL) != INSP_OK ||
        insp_tokenizer_load(path, &c->tok, NULL) != INSP_OK ||
        insp_clip_ws_create(c->clip, 0, &c->ws) != INSP_OK ||
        insp_winclip_create(c->clip, NULL, 0, &c->wc, NULL) != INSP_OK)
        return -1;
    c->D = insp_clip_get_config(c->clip)->embed_dim;
    return 0;
}

static void ctx_close(ctx *c)
{
    insp_winclip_free(c->wc);
    insp_clip_ws_free(c->ws);
    insp_tokenizer_free(c->tok);
    insp_clip_free(c->clip);
}

/* Mean embedding of a list of prompts, each encoded on its own (independent of the batching
 * insp_winclip_text does). */
static void mean_of(ctx *c, char **prompts, int n, float *out)
{
    double acc[256] = {0};
    int32_t ids[77];
    float e[256];
    for (int i = 0; i < n; i++) {
        CHECK(insp_tokenizer_encode(c->tok, prompts[i], ids, 77, NULL) >= 2);
        CHECK_OK(insp_clip_encode_text(c->clip, c->ws, NULL, 1, ids, e));
        for (int d = 0; d < c->D; d++)
            acc[d] += e[d];
    }
    for (int d = 0; d < c->D; d++)
        out[d] = (float)(acc[d] / n);
}

/* Builds spec's prompts, checks the counts, and compares insp_winclip_text with the mean of
 * the individually encoded prompts. Returns the text embedding in t[2, D]. */
static void check_spec(ctx *c, const insp_prompt_spec *spec, int n_normal, int n_anom, float *t)
{
    insp_prompts p = {0};
    insp_error err = {0};
    REQUIRE(insp_prompts_build(spec, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, n_normal);
    CHECK_EQ_INT(p.n_anomalous, n_anom);
    CHECK_OK(insp_winclip_text(c->wc, c->tok, c->ws, NULL, &p, t, &err));
    float want[2][256];
    mean_of(c, p.normal, p.n_normal, want[0]);
    mean_of(c, p.anomalous, p.n_anomalous, want[1]);
    CHECK(rel_error(t, want[0], c->D) < 1e-5);
    CHECK(rel_error(t + c->D, want[1], c->D) < 1e-5);
    insp_prompts_free(&p);
}

static void sentences_extend_the_mean(void)
{
    ctx c;
    REQUIRE(ctx_open(&c) == 0);
    float base[512], with[512], sentence[256];
    insp_prompt_spec spec = {.object = "circuit board"};
    check_spec(&c, &spec, 147, 84, base);

    const char *anom[] = {"a blue circuit board with slight scratches on the edge"};
    spec.anomaly_sentences = (insp_strlist){anom, 1};
    check_spec(&c, &spec, 147, 85, with);
    /* Normal side untouched; anomalous side = (84·old + sentence) / 85. */
    CHECK(rel_error(with, base, c.D) < 1e-6);
    char *one[] = {(char *)anom[0]};
    mean_of(&c, one, 1, sentence);
    float want[256];
    for (int d = 0; d < c.D; d++)
        want[d] = (84.0f * base[c.D + d] + sentence[d]) / 85.0f;
    CHECK(rel_error(with + c.D, want, c.D) < 1e-5);
    ctx_close(&c);
}

static void extra_states_and_templates(void)
{
    ctx c;
    REQUIRE(ctx_open(&c) == 0);
    float t[512], base[512];
    insp_prompt_spec spec = {.object = "printed circuit board"};
    check_spec(&c, &spec, 147, 84, base);

    const char *anom[] = {"{} with bad soldering", "{} with a missing component"};
    spec.anomaly_states = (insp_strlist){anom, 2};
    check_spec(&c, &spec, 147, 6 * 21, t);
    CHECK(rel_error(t, base, c.D) < 1e-6);            /* normal side unchanged */
    CHECK(rel_error(t + c.D, base + c.D, c.D) > 1e-3); /* anomalous side moved */

    spec.replace_anomaly_states = true;
    check_spec(&c, &spec, 147, 2 * 21, t);

    const char *tpl[] = {"a photo of {} on the conveyor."};
    spec.templates = (insp_strlist){tpl, 1};
    spec.replace_templates = true;
    check_spec(&c, &spec, 7, 2, t);
    spec.replace_templates = false;
    check_spec(&c, &spec, 7 * 22, 2 * 22, t);
    ctx_close(&c);
}

static void malformed_sets_are_errors(void)
{
    insp_prompts p = {0};
    insp_error err = {0};
    insp_prompt_spec empty_object = {.object = ""};
    CHECK_EQ_INT(insp_prompts_build(&empty_object, &p, &err), INSP_ERR_INVALID);
    CHECK(strlen(err.msg) > 0);

    const char *no_slot[] = {"bad soldering"};
    insp_prompt_spec spec = {.object = "board", .anomaly_states = {no_slot, 1}};
    CHECK_EQ_INT(insp_prompts_build(&spec, &p, &err), INSP_ERR_INVALID);
    CHECK(strstr(err.msg, "bad soldering") != NULL);

    insp_prompt_spec nothing_left = {.object = "board", .replace_normal_states = true};
    CHECK_EQ_INT(insp_prompts_build(&nothing_left, &p, &err), INSP_ERR_INVALID);
    CHECK(strlen(err.msg) > 0);
    CHECK(p.normal == NULL && p.n_normal == 0);
}

TEST_MAIN(T(sentences_extend_the_mean), T(extra_states_and_templates),
          T(malformed_sets_are_errors))
