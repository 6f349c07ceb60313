/* Products in RAM, ready to inspect: definition, text embeddings, reference memory and
 * threshold. Shared by reference count, so that a replacement never pulls a product out from
 * under an inspection that is using it. */
#ifndef INSPD_DAEMON_REGISTRY_H
#define INSPD_DAEMON_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>

#include "daemon/models.h"
#include "store/store.h"

typedef struct insp_product {
    atomic_int refs;
    insp_stored_product *stored; /* id, definition, reference list, times (owned) */
    const insp_model *model;
    float *text;                 /* [2, D]: mean normal, mean anomalous prompt embedding */
    insp_memory *mem;            /* NULL without references */
    float *loo;                  /* [n_loo] leave-one-out scores of the references */
    int n_loo;
    float suggested;             /* suggested threshold; valid when has_suggested */
    bool has_suggested;
    float threshold;             /* in force */
    const char *threshold_source; /* "manual", "auto" or "default" */
    int n_normal_prompts, n_anomalous_prompts;
} insp_product;

/* A new product with one reference held by the caller. NULL when out of memory. */
insp_product *insp_product_new(void);
/* Drops one reference; the last one frees. NULL is a harmless no-op. */
void insp_product_release(insp_product *p);

typedef struct insp_registry insp_registry;

int insp_registry_create(insp_registry **out);
/* Releases every product. NULL is a harmless no-op. */
void insp_registry_free(insp_registry *r);

/* The product called id with a reference taken (release it), or NULL. */
insp_product *insp_registry_get(insp_registry *r, const char *id);
/* Inserts p, or replaces the product of the same id (whose reference is dropped). The registry
 * takes over the caller's reference to p. INSP_ERR_NOMEM on failure (p is then released). */
int insp_registry_put(insp_registry *r, insp_product *p);
/* Removes id; INSP_ERR_NOT_FOUND when absent. */
int insp_registry_remove(insp_registry *r, const char *id);
/* Every product, sorted by id, each with a reference taken; free the array with
 * insp_registry_list_free. */
int insp_registry_list(insp_registry *r, insp_product ***out, int *n);
void insp_registry_list_free(insp_product **list, int n);
/* Number of products and of references over all of them, and the RAM those references'
 * features take (insp_memory_shot_bytes of each product's model per reference). Any output
 * may be NULL. */
void insp_registry_counts(insp_registry *r, int *products, int *references,
                          long long *reference_bytes);

#endif
