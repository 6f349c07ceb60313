/* WinCLIP's compositional prompt ensemble (METHODS.md §3): state phrases × templates per side,
 * with a product's own states, templates and whole sentences. */
#include "inspectd/prompts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *const insp_default_normal_states[] = {
    "{}", "flawless {}", "perfect {}", "unblemished {}",
    "{} without flaw", "{} without defect", "{} without damage",
};
const int insp_default_n_normal_states = 7;

const char *const insp_default_anomaly_states[] = {
    "damaged {}", "{} with flaw", "{} with defect", "{} with damage",
};
const int insp_default_n_anomaly_states = 4;

// The jpeg line appears twice in WinCLIP's list; keeping it weights that template double.
const char *const insp_default_templates[] = {
    "a cropped photo of the {}.",
    "a close-up photo of a {}.",
    "a close-up photo of the {}.",
    "a bright photo of a {}.",
    "a bright photo of the {}.",
    "a dark photo of the {}.",
    "a dark photo of a {}.",
    "a jpeg corrupted photo of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a blurry photo of the {}.",
    "a blurry photo of a {}.",
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of a small {}.",
    "a photo of the small {}.",
    "a photo of a large {}.",
    "a photo of the large {}.",
    "a photo of the {} for visual inspection.",
    "a photo of a {} for visual inspection.",
    "a photo of the {} for anomaly detection.",
    "a photo of a {} for anomaly detection.",
};
const int insp_default_n_templates = 21;

/* A list made of the defaults (unless replaced) followed by the product's items. */
typedef struct joined {
    const char *const *base;
    int n_base;
    insp_strlist extra;
} joined;

static int joined_n(const joined *j)
{
    return j->n_base + j->extra.n;
}

static const char *joined_at(const joined *j, int i)
{
    return i < j->n_base ? j->base[i] : j->extra.items[i - j->n_base];
}

static joined join(const char *const *defaults, int n_defaults, insp_strlist extra, bool replace)
{
    return (joined){defaults, replace ? 0 : n_defaults, extra};
}

static int count_holes(const char *s)
{
    int n = 0;
    for (const char *p = strstr(s, "{}"); p; p = strstr(p + 2, "{}"))
        n++;
    return n;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != '\v')
            return false;
    return true;
}

/* Checks a list's shape and, with holes ≥ 0, that every item has exactly that many "{}". */
static int check_list(const insp_strlist *l, const char *what, int holes, insp_error *err)
{
    if (l->n < 0 || (l->n > 0 && !l->items))
        return insp_error_set(err, INSP_ERR_INVALID,
                              "prompts: %s list is malformed (%d items, %s array)", what, l->n,
                              l->items ? "an" : "no");
    for (int i = 0; i < l->n; i++) {
        const char *s = l->items[i];
        if (!s || blank(s))
            return insp_error_set(err, INSP_ERR_INVALID, "prompts: %s %d is empty", what, i);
        if (holes >= 0 && count_holes(s) != holes)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "prompts: %s %d \"%.200s\" must contain \"{}\" exactly once "
                                  "(found %d)", what, i, s, count_holes(s));
    }
    return INSP_OK;
}

/* pattern with its single "{}" replaced by fill; malloc'ed. */
static char *fill_hole(const char *pattern, const char *fill)
{
    const char *hole = strstr(pattern, "{}");
    size_t pre = (size_t)(hole - pattern), nf = strlen(fill), post = strlen(hole + 2);
    char *s = malloc(pre + nf + post + 1);
    if (!s)
        return NULL;
    memcpy(s, pattern, pre);
    memcpy(s + pre, fill, nf);
    memcpy(s + pre + nf, hole + 2, post + 1);
    return s;
}

static void free_side(char **v, int n)
{
    if (!v)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* One side's prompts: for each state, for each template; then the sentences. */
static int build_side(const char *object, const joined *states, const joined *templates,
                      insp_strlist sentences, const char *side, char ***out, int *n_out,
                      insp_error *err)
{
    int64_t n64 = (int64_t)joined_n(states) * joined_n(templates) + sentences.n;
    if (n64 == 0)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "prompts: no %s prompt left (%d states, %d templates, %d "
                              "sentences)", side, joined_n(states), joined_n(templates),
                              sentences.n);
    if (n64 > INT32_MAX / 2)
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "prompts: %lld %s prompts",
                              (long long)n64, side);
    int n = (int)n64, k = 0;
    char **v = calloc((size_t)n, sizeof *v);
    if (!v)
        return insp_error_set(err, INSP_ERR_NOMEM, "prompts: out of memory for %d %s prompts",
                              n, side);
    for (int s = 0; s < joined_n(states); s++) {
        char *phrase = fill_hole(joined_at(states, s), object);
        if (!phrase)
            goto nomem;
        for (int t = 0; t < joined_n(templates); t++) {
            if (!(v[k] = fill_hole(joined_at(templates, t), phrase))) {
                free(phrase);
                goto nomem;
            }
            k++;
        }
        free(phrase);
    }
    for (int i = 0; i < sentences.n; i++) {
        if (!(v[k] = strdup(sentences.items[i])))
            goto nomem;
        k++;
    }
    *out = v;
    *n_out = n;
    return INSP_OK;
nomem:
    free_side(v, n);
    return insp_error_set(err, INSP_ERR_NOMEM, "prompts: out of memory building %s prompts",
                          side);
}

int insp_prompts_build(const insp_prompt_spec *spec, insp_prompts *out, insp_error *err)
{
    if (!out)
        return insp_error_set(err, INSP_ERR_INVALID, "prompts: no output");
    memset(out, 0, sizeof *out);
    if (!spec)
        return insp_error_set(err, INSP_ERR_INVALID, "prompts: no prompt spec");
    if (!spec->object || blank(spec->object))
        return insp_error_set(err, INSP_ERR_INVALID, "prompts: the object word is empty");

    int status;
    if ((status = check_list(&spec->normal_states, "normal state", 1, err)) ||
        (status = check_list(&spec->anomaly_states, "anomaly state", 1, err)) ||
        (status = check_list(&spec->templates, "template", 1, err)) ||
        (status = check_list(&spec->normal_sentences, "normal sentence", -1, err)) ||
        (status = check_list(&spec->anomaly_sentences, "anomaly sentence", -1, err)))
        return status;

    joined normal = join(insp_default_normal_states, insp_default_n_normal_states,
                         spec->normal_states, spec->replace_normal_states);
    joined anomalous = join(insp_default_anomaly_states, insp_default_n_anomaly_states,
                            spec->anomaly_states, spec->replace_anomaly_states);
    joined templates = join(insp_default_templates, insp_default_n_templates, spec->templates,
                            spec->replace_templates);

    status = build_side(spec->object, &normal, &templates, spec->normal_sentences, "normal",
                        &out->normal, &out->n_normal, err);
    if (status == INSP_OK)
        status = build_side(spec->object, &anomalous, &templates, spec->anomaly_sentences,
                            "anomalous", &out->anomalous, &out->n_anomalous, err);
    if (status != INSP_OK)
        insp_prompts_free(out);
    return status;
}

void insp_prompts_free(insp_prompts *p)
{
    if (!p)
        return;
    free_side(p->normal, p->n_normal);
    free_side(p->anomalous, p->n_anomalous);
    memset(p, 0, sizeof *p);
}
