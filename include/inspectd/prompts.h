/* WinCLIP's compositional prompt ensemble (METHODS.md §3) and its per-product customisation. */
#ifndef INSPECTD_PROMPTS_H
#define INSPECTD_PROMPTS_H

#include <stdbool.h>

#include "inspectd/status.h"

/* A list of strings; the caller owns the strings. */
typedef struct insp_strlist {
    const char *const *items;
    int n;
} insp_strlist;

/* What a product says about its prompts. Every list may be empty ({NULL, 0}).
 * States contain "{}" where the object word goes (a state without "{}" is an error);
 * templates contain exactly one "{}" where the state phrase goes. With replace_* false the
 * given items are appended to the defaults, with it true they replace them. Sentences are
 * whole prompts added as they are (no template) to their side. */
typedef struct insp_prompt_spec {
    const char *object;            /* required, non-empty: "printed circuit board" */
    insp_strlist normal_states;
    bool replace_normal_states;
    insp_strlist anomaly_states;
    bool replace_anomaly_states;
    insp_strlist templates;
    bool replace_templates;
    insp_strlist normal_sentences;
    insp_strlist anomaly_sentences;
} insp_prompt_spec;

/* The prompts of one side, state-major (for each state, for each template), then sentences. */
typedef struct insp_prompts {
    char **normal;
    int n_normal;
    char **anomalous;
    int n_anomalous;
} insp_prompts;

/* Default lists (METHODS.md §3): 7 normal states, 4 anomalous states, 21 templates. */
extern const char *const insp_default_normal_states[];
extern const int insp_default_n_normal_states;
extern const char *const insp_default_anomaly_states[];
extern const int insp_default_n_anomaly_states;
extern const char *const insp_default_templates[];
extern const int insp_default_n_templates;

/* Expands spec into prompts. INSP_ERR_INVALID with a message for an empty object word, a
 * state or template without its "{}" (or with more than one), an empty string, or a side left
 * with no prompt at all. On success free with insp_prompts_free. */
int insp_prompts_build(const insp_prompt_spec *spec, insp_prompts *out, insp_error *err);

/* Frees the strings and zeroes the struct. NULL is a harmless no-op. */
void insp_prompts_free(insp_prompts *p);

#endif
