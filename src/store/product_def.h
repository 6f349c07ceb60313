/* A product's definition (the body of PUT /v1/products/{id}): strict parsing, its canonical
 * JSON form, and the view of it that the prompt ensemble takes. */
#ifndef INSPD_STORE_PRODUCT_DEF_H
#define INSPD_STORE_PRODUCT_DEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "inspectd/prompts.h"
#include "inspectd/status.h"

/* Limits, in bytes of UTF-8 unless said otherwise. */
#define INSP_PRODUCT_DEF_MAX_BYTES (256 * 1024) /* a whole JSON body */
#define INSP_PRODUCT_ID_MAX 64
#define INSP_PRODUCT_OBJECT_MAX 200
#define INSP_PRODUCT_LIST_MAX_ITEMS 64 /* items per list */
#define INSP_PRODUCT_ITEM_MAX 200      /* one state, template or sentence */
#define INSP_PRODUCT_MODEL_MAX 128
#define INSP_PRODUCT_DESCRIPTION_MAX 2000

/* A list of owned, NUL-terminated strings. */
typedef struct insp_def_list {
    char **items;
    int n;
} insp_def_list;

/* Every string is owned by the definition and freed by insp_product_def_free. */
typedef struct insp_product_def {
    char *object; /* never NULL in a parsed definition */
    insp_def_list normal_states;
    insp_def_list anomaly_states;
    insp_def_list templates;
    insp_def_list normal_sentences;
    insp_def_list anomaly_sentences;
    bool replace_normal_states; /* true: normal_states replaces the defaults */
    bool replace_anomaly_states;
    bool replace_templates;
    char *model;         /* NULL: the first configured model */
    bool threshold_auto; /* true: derived from the references' leave-one-out scores */
    double threshold;    /* in [0, 1]; meaningful only when !threshold_auto */
    char *description;   /* NULL when absent */
} insp_product_def;

/* Parses a JSON body (len bytes, need not be NUL-terminated) into *def, which the caller
 * frees with insp_product_def_free. Errors: INSP_ERR_TOO_LARGE over
 * INSP_PRODUCT_DEF_MAX_BYTES, INSP_ERR_FORMAT for text that is not JSON (invalid UTF-8,
 * duplicate keys included), INSP_ERR_INVALID for a valid JSON value that is not a valid
 * definition; err->msg names the field ("normal_states[2]: ..."). On error *def is zeroed. */
int insp_product_def_parse(const char *json_text, size_t len, insp_product_def *def,
                           insp_error *err);

/* The same validation on an already parsed object (e.g. the "definition" member of a stored
 * product). The json value is only read. */
int insp_product_def_from_json(const json_t *obj, insp_product_def *def, insp_error *err);

/* The canonical form: every field present ("model" and "description" only when set),
 * "threshold" a number or "auto". Parsing it gives back an equal definition. Returns a new
 * reference the caller releases with json_decref; NULL only when out of memory. */
json_t *insp_product_def_to_json(const insp_product_def *def);

/* Deep copy into *dst (freed with insp_product_def_free). INSP_ERR_NOMEM on failure, *dst
 * zeroed. */
int insp_product_def_copy(const insp_product_def *src, insp_product_def *dst);

/* Frees the strings and zeroes *def. NULL is a harmless no-op. */
void insp_product_def_free(insp_product_def *def);

/* Fills *spec with pointers into def's strings: valid while def lives unchanged. */
void insp_product_def_prompt_spec(const insp_product_def *def, insp_prompt_spec *spec);

/* True when id is 1..INSP_PRODUCT_ID_MAX characters of [A-Za-z0-9._-], starts with a letter
 * or digit and contains no "..": safe to use as a single path component. NULL is false. */
bool insp_product_id_valid(const char *id);

/* insp_product_id_valid with a reason: INSP_OK, or INSP_ERR_INVALID and a message. */
int insp_product_id_check(const char *id, insp_error *err);

#endif
