/* The models the daemon serves: loaded once at start, shared read-only by every worker. */
#ifndef INSPD_DAEMON_MODELS_H
#define INSPD_DAEMON_MODELS_H

#include <stdbool.h>

#include "daemon/config.h"
#include "inspectd/clip.h"
#include "inspectd/tokenizer.h"
#include "inspectd/winclip.h"
#include "store/text_cache.h"

typedef struct insp_model {
    char name[65];
    char path[4096];
    insp_clip *clip;
    insp_tokenizer *tok;
    insp_winclip *wc;
    const char *architecture; /* a released OpenCLIP name, or "custom-vit" */
    bool test_model;          /* a random-weight fixture: its scores mean nothing */
    insp_text_cache *text_cache; /* prompt embeddings in the store; NULL: none (not writable) */
} insp_model;

/* Loads cfg's models, or with none configured the first of weights/ViT-B-16-plus-240 and the
 * tiny test model tests/fixtures/tiny that exists (with a warning in the log). Any model that
 * cannot be loaded is an error naming it (the daemon then exits non-zero). */
int insp_models_load(const insp_config *cfg, insp_model **models, int *n, insp_error *err);
void insp_models_free(insp_model *models, int n);

/* Opens each model's prompt-embedding cache in the store. A cache that cannot be opened is a
 * warning in the log (that model computes every product's prompts), never an error. */
void insp_models_open_text_caches(insp_model *models, int n, insp_store *store);

/* The model called name, or the first one when name is NULL; NULL when unknown. */
const insp_model *insp_models_find(const insp_model *models, int n, const char *name);

#endif
