/* Tests of the WinCLIP prompt ensemble: the default lists and their order, a product's
 * extensions and replacements, bad specs, and the ensemble's token ids against the fixtures. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "inspectd/prompts.h"
#include "inspectd/safetensors.h"
#include "inspectd/tokenizer.h"

#define CTX 77

#define LIST(...)                                                                              \
    ((insp_strlist){(const char *const[]){__VA_ARGS__},                                        \
                    (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))})

static void check_str(const char *got, const char *want)
{
    CHECK_MSG(got && strcmp(got, want) == 0, "\"%s\", expected \"%s\"", got ? got : "(null)",
              want);
}

static void default_counts(void)
{
    CHECK_EQ_INT(insp_default_n_normal_states, 7);
    CHECK_EQ_INT(insp_default_n_anomaly_states, 4);
    CHECK_EQ_INT(insp_default_n_templates, 21);
    insp_prompt_spec spec = {.object = "bottle"};
    insp_prompts p;
    insp_error err = {0};
    REQUIRE(insp_prompts_build(&spec, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 147);
    CHECK_EQ_INT(p.n_anomalous, 84);
    check_str(p.normal[0], "a cropped photo of the bottle.");
    check_str(p.normal[146], "a photo of a bottle without damage for anomaly detection.");
    check_str(p.anomalous[0], "a cropped photo of the damaged bottle.");
    check_str(p.anomalous[83], "a photo of a bottle with damage for anomaly detection.");
    insp_prompts_free(&p);
    CHECK(p.normal == NULL && p.n_normal == 0 && p.anomalous == NULL && p.n_anomalous == 0);
    insp_prompts_free(&p); // a freed set frees again harmlessly
    insp_prompts_free(NULL);
}

static void state_major_order(void)
{
    insp_prompt_spec spec = {.object = "circuit board"};
    insp_prompts p;
    insp_error err = {0};
    REQUIRE(insp_prompts_build(&spec, &p, &err) == INSP_OK);
    // the second prompt is the second template on the first state, the 22nd the first
    // template on the second state
    check_str(p.normal[1], "a close-up photo of a circuit board.");
    check_str(p.normal[21], "a cropped photo of the flawless circuit board.");
    check_str(p.normal[4 * 21 + 17], "a photo of the circuit board without flaw for visual "
                                     "inspection.");
    check_str(p.anomalous[21 + 7], "a jpeg corrupted photo of the circuit board with flaw.");
    check_str(p.anomalous[21 + 8], "a jpeg corrupted photo of the circuit board with flaw.");
    check_str(p.anomalous[3 * 21 + 20], "a photo of a circuit board with damage for anomaly "
                                        "detection.");
    // every prompt is its state's phrase inside its template
    static const char *const phrases[] = {"circuit board", "damaged circuit board"};
    for (int t = 0; t < 21; t++) {
        for (int side = 0; side < 2; side++) {
            const char *tpl = insp_default_templates[t];
            const char *hole = strstr(tpl, "{}");
            REQUIRE(hole);
            char want[256];
            snprintf(want, sizeof want, "%.*s%s%s", (int)(hole - tpl), tpl, phrases[side],
                     hole + 2);
            check_str(side ? p.anomalous[t] : p.normal[t], want);
        }
    }
    insp_prompts_free(&p);
}

static void extend_and_replace(void)
{
    insp_prompts p;
    insp_error err = {0};

    insp_prompt_spec more_states = {
        .object = "pcb",
        .normal_states = LIST("{} in mint condition"),
        .anomaly_states = LIST("{} with bad soldering", "{} missing a component"),
    };
    REQUIRE(insp_prompts_build(&more_states, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 8 * 21);
    CHECK_EQ_INT(p.n_anomalous, 6 * 21);
    check_str(p.normal[7 * 21], "a cropped photo of the pcb in mint condition.");
    check_str(p.anomalous[5 * 21 + 20], "a photo of a pcb missing a component for anomaly "
                                        "detection.");
    insp_prompts_free(&p);

    insp_prompt_spec replace_states = more_states;
    replace_states.replace_anomaly_states = true;
    REQUIRE(insp_prompts_build(&replace_states, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 8 * 21);
    CHECK_EQ_INT(p.n_anomalous, 2 * 21);
    check_str(p.anomalous[0], "a cropped photo of the pcb with bad soldering.");
    insp_prompts_free(&p);

    insp_prompt_spec more_templates = {.object = "pcb", .templates = LIST("an image of a {}")};
    REQUIRE(insp_prompts_build(&more_templates, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 7 * 22);
    CHECK_EQ_INT(p.n_anomalous, 4 * 22);
    check_str(p.normal[21], "an image of a pcb");
    check_str(p.normal[22], "a cropped photo of the flawless pcb.");
    insp_prompts_free(&p);

    insp_prompt_spec only_templates = {.object = "pcb",
                                       .templates = LIST("{}", "a {} on a tray"),
                                       .replace_templates = true};
    REQUIRE(insp_prompts_build(&only_templates, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 7 * 2);
    CHECK_EQ_INT(p.n_anomalous, 4 * 2);
    check_str(p.normal[0], "pcb");
    check_str(p.normal[3], "a flawless pcb on a tray");
    check_str(p.anomalous[7], "a pcb with damage on a tray");
    insp_prompts_free(&p);

    // replacing with an empty list keeps nothing of the defaults
    insp_prompt_spec few = {.object = "pcb",
                            .normal_states = LIST("good {}"),
                            .replace_normal_states = true,
                            .anomaly_states = {NULL, 0},
                            .replace_anomaly_states = false};
    REQUIRE(insp_prompts_build(&few, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 21);
    CHECK_EQ_INT(p.n_anomalous, 84);
    check_str(p.normal[20], "a photo of a good pcb for anomaly detection.");
    insp_prompts_free(&p);
}

static void sentences_as_written(void)
{
    insp_prompt_spec spec = {
        .object = "screw",
        .normal_sentences = LIST("a {} exactly as written.", "A Shiny Screw"),
        .anomaly_sentences = LIST("a screw with a stripped thread"),
    };
    insp_prompts p;
    insp_error err = {0};
    REQUIRE(insp_prompts_build(&spec, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 147 + 2);
    CHECK_EQ_INT(p.n_anomalous, 84 + 1);
    check_str(p.normal[146], "a photo of a screw without damage for anomaly detection.");
    check_str(p.normal[147], "a {} exactly as written.");
    check_str(p.normal[148], "A Shiny Screw");
    check_str(p.anomalous[84], "a screw with a stripped thread");
    insp_prompts_free(&p);

    // sentences alone are a valid side
    insp_prompt_spec only = {.object = "screw",
                             .templates = {NULL, 0},
                             .replace_templates = true,
                             .normal_sentences = LIST("a good screw"),
                             .anomaly_sentences = LIST("a bad screw", "a broken screw")};
    REQUIRE(insp_prompts_build(&only, &p, &err) == INSP_OK);
    CHECK_EQ_INT(p.n_normal, 1);
    CHECK_EQ_INT(p.n_anomalous, 2);
    check_str(p.anomalous[1], "a broken screw");
    insp_prompts_free(&p);
}

/* Expects build to fail with INSP_ERR_INVALID, a message containing `needle` and a zeroed
 * output. */
static void expect_invalid(const insp_prompt_spec *spec, const char *needle)
{
    insp_prompts p = {(char **)&p, 5, (char **)&p, 5};
    insp_error err = {0};
    int s = insp_prompts_build(spec, &p, &err);
    CHECK_MSG(s == INSP_ERR_INVALID, "status %d for a spec that should fail (%s)", s, needle);
    CHECK_MSG(err.status == INSP_ERR_INVALID && strstr(err.msg, needle),
              "message \"%s\" lacks \"%s\"", err.msg, needle);
    CHECK(p.normal == NULL && p.n_normal == 0 && p.anomalous == NULL && p.n_anomalous == 0);
    if (s == INSP_OK)
        insp_prompts_free(&p);
}

static void bad_specs(void)
{
    expect_invalid(&(insp_prompt_spec){.object = ""}, "object");
    expect_invalid(&(insp_prompt_spec){.object = "  "}, "object");
    expect_invalid(&(insp_prompt_spec){.object = NULL}, "object");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .normal_states = LIST("flawless")},
                   "flawless");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .anomaly_states = LIST("{} and {}")},
                   "exactly once");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .templates = LIST("a photo of {} {}")},
                   "a photo of {} {}");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .templates = LIST("a photo")},
                   "template 0");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .normal_states = LIST("{}", "")},
                   "normal state 1 is empty");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .anomaly_sentences = LIST("")},
                   "anomaly sentence 0 is empty");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .normal_states = {NULL, 2}}, "list");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .templates = {NULL, -1}}, "list");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .normal_states = {NULL, 0},
                                       .replace_normal_states = true},
                   "no normal prompt");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .anomaly_states = {NULL, 0},
                                       .replace_anomaly_states = true},
                   "no anomalous prompt");
    expect_invalid(&(insp_prompt_spec){.object = "pcb", .templates = {NULL, 0},
                                       .replace_templates = true,
                                       .normal_sentences = LIST("a good pcb")},
                   "no anomalous prompt");
    expect_invalid(NULL, "spec");
    insp_error err = {0};
    CHECK_EQ_INT(insp_prompts_build(&(insp_prompt_spec){.object = "pcb"}, NULL, &err),
                 INSP_ERR_INVALID);
}

/* Builds the default ensemble for object, tokenizes it and compares every id with the
 * fixture's tokens.<key>.{normal,anomalous} (I32 [n_prompts, 77]). */
static void check_ensemble_ids(const insp_tokenizer *tok, const char *fixture,
                               const char *object, const char *key)
{
    insp_safetensors *st = NULL;
    insp_error err = {0};
    int s = insp_st_open(fixture_path(fixture), &st, &err);
    CHECK_MSG(s == INSP_OK, "%s: %s", fixture, err.msg);
    if (s != INSP_OK)
        return;
    insp_prompts p;
    insp_prompt_spec spec = {.object = object};
    s = insp_prompts_build(&spec, &p, &err);
    CHECK_MSG(s == INSP_OK, "%s: %s", object, err.msg);
    for (int side = 0; side < 2 && s == INSP_OK; side++) {
        char name[128];
        snprintf(name, sizeof name, "tokens.%s.%s", key, side ? "anomalous" : "normal");
        const insp_st_tensor *t = insp_st_find(st, name);
        CHECK_MSG(t != NULL, "%s: no tensor %s", fixture, name);
        if (!t)
            continue;
        char **prompts = side ? p.anomalous : p.normal;
        int n = side ? p.n_anomalous : p.n_normal;
        CHECK_MSG(t->dtype == INSP_DTYPE_I32 && t->ndim == 2 && t->shape[0] == n &&
                      t->shape[1] == CTX,
                  "%s: %s has dtype %s, %d dims, shape [%lld, %lld]; expected I32 [%d, %d]",
                  fixture, name, insp_dtype_name(t->dtype), t->ndim, (long long)t->shape[0],
                  (long long)(t->ndim > 1 ? t->shape[1] : 0), n, CTX);
        if (t->dtype != INSP_DTYPE_I32 || t->ndim != 2 || t->shape[0] != n ||
            t->shape[1] != CTX)
            continue;
        int bad = 0;
        for (int i = 0; i < n; i++) {
            int32_t ids[CTX], want[CTX];
            memcpy(want, (const char *)t->data + (size_t)i * CTX * sizeof(int32_t), sizeof want);
            int k = insp_tokenizer_encode(tok, prompts[i], ids, CTX, &err);
            CHECK_MSG(k >= 2, "\"%s\": %s", prompts[i], err.msg);
            if (k >= 2 && memcmp(ids, want, sizeof ids) != 0 && bad++ < 3)
                CHECK_MSG(0, "%s row %d \"%s\" tokenizes differently", name, i, prompts[i]);
        }
        CHECK_MSG(bad == 0, "%s: %d of %d prompts differ", name, bad, n);
    }
    insp_prompts_free(&p);
    insp_st_close(st);
}

static void ensemble_token_ids(void)
{
    const char *bpe = getenv("INSPECTD_BPE");
    REQUIRE(bpe);
    insp_tokenizer *tok = NULL;
    insp_error err = {0};
    REQUIRE(insp_tokenizer_load(bpe, &tok, &err) == INSP_OK);
    check_ensemble_ids(tok, "tiny/expected.safetensors", "bottle", "bottle");
    check_ensemble_ids(tok, "tiny/expected.safetensors", "circuit board", "circuit_board");
    check_ensemble_ids(tok, "tiny-quickgelu/expected.safetensors", "screw", "screw");
    insp_tokenizer_free(tok);
}

TEST_MAIN(T(default_counts), T(state_major_order), T(extend_and_replace),
          T(sentences_as_written), T(bad_specs), T(ensemble_token_ids))
