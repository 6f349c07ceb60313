/* Building ready-to-inspect products from the store (see products.h). */
#include "daemon/products.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/feature_cache.h"
#include "daemon/jobs.h"
#include "daemon/log.h"

/* What the text embeddings depend on: the prompt parts of the definition. */
static char *prompt_key(const insp_product_def *def)
{
    json_t *o = insp_product_def_to_json(def);
    if (!o)
        return NULL;
    json_object_del(o, "threshold");
    json_object_del(o, "description");
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static bool same_prompts(const insp_product_def *a, const insp_product_def *b)
{
    char *ka = prompt_key(a), *kb = prompt_key(b);
    bool same = ka && kb && strcmp(ka, kb) == 0;
    free(ka);
    free(kb);
    return same;
}

/* Adds reference i's features to mem: from the cache when it holds them for this model,
 * else computed on a worker and written to the cache. */
static int add_reference(insp_app *app, const insp_product *p, int i, int startup,
                         insp_error *err)
{
    const insp_stored_product *sp = p->stored;
    const insp_stored_ref *ref = &sp->refs[i];
    const char *checksum = insp_clip_checksum(p->model->clip);
    void *data = NULL;
    size_t len = 0;
    insp_features f;
    float *block = NULL;
    int st = INSP_ERR_NOT_FOUND;
    if (insp_store_cache_get(app->store, sp->id, checksum, ref->sha256, &data, &len, NULL) ==
        INSP_OK)
        st = insp_features_unpack(p->model->wc, data, len, &f, &block);
    free(data);
    data = NULL;
    if (st != INSP_OK) {
        void *img = NULL, *packed = NULL;
        size_t img_len = 0, packed_len = 0;
        st = insp_store_read_ref_file(app->store, sp->id, ref, &img, &img_len, err);
        if (st == INSP_OK)
            st = insp_jobs_reference(app, p->model, img, img_len, &packed, &packed_len, startup,
                                     err);
        free(img);
        if (st != INSP_OK) {
            free(packed);
            return insp_error_prefix(err, "reference %d (%s): ", i + 1, ref->file);
        }
        insp_error cerr;
        if (insp_store_cache_put(app->store, sp->id, checksum, ref->sha256, packed, packed_len,
                                 &cerr) != INSP_OK)
            INSP_LOG_WARN("cache", "product %s: cannot cache reference features: %s", sp->id,
                          cerr.msg);
        st = insp_features_unpack(p->model->wc, packed, packed_len, &f, &block);
        free(packed);
        if (st != INSP_OK)
            return insp_error_set(err, st, "reference %d: cannot unpack its features", i + 1);
    }
    st = insp_memory_add(p->mem, &f);
    free(block);
    if (st != INSP_OK)
        return insp_error_set(err, st, "reference %d: cannot add it to the memory", i + 1);
    return INSP_OK;
}

int insp_products_build(insp_app *app, insp_stored_product *sp, const insp_product *prev,
                        int startup, insp_product **out, insp_error *err)
{
    *out = NULL;
    insp_product *p = insp_product_new();
    if (!p) {
        insp_stored_product_free(sp);
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    }
    p->stored = sp;
    int st = INSP_OK;
    p->model = insp_models_find(app->models, app->n_models, sp->def.model);
    if (!p->model) {
        st = insp_error_set(err, INSP_ERR_INVALID, "model '%s' is not loaded (loaded: %s%s)",
                            sp->def.model, app->models[0].name,
                            app->n_models > 1 ? ", ..." : "");
        goto fail;
    }
    int D = insp_clip_get_config(p->model->clip)->embed_dim;
    p->text = malloc(2 * (size_t)D * sizeof(float));
    if (!p->text) {
        st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
        goto fail;
    }

    insp_prompt_spec spec;
    insp_prompts prompts = {0};
    insp_product_def_prompt_spec(&sp->def, &spec);
    st = insp_prompts_build(&spec, &prompts, err);
    if (st != INSP_OK)
        goto fail;
    p->n_normal_prompts = prompts.n_normal;
    p->n_anomalous_prompts = prompts.n_anomalous;
    if (prev && prev->model == p->model && same_prompts(&prev->stored->def, &sp->def)) {
        memcpy(p->text, prev->text, 2 * (size_t)D * sizeof(float));
    } else {
        int cached = 0;
        st = insp_jobs_text(app, p->model, &prompts, p->text, &cached, startup, err);
        if (st == INSP_OK)
            INSP_LOG_INFO("product_text", "product %s: %d prompts, %d from the text cache",
                          sp->id, prompts.n_normal + prompts.n_anomalous, cached);
    }
    insp_prompts_free(&prompts);
    if (st != INSP_OK)
        goto fail;

    if (sp->n_refs > 0) {
        if (insp_memory_create(p->model->wc, &p->mem) != INSP_OK ||
            insp_memory_reserve(p->mem, sp->n_refs) != INSP_OK) {
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < sp->n_refs && st == INSP_OK; i++)
            st = add_reference(app, p, i, startup, err);
        if (st != INSP_OK)
            goto fail;
    }
    if (sp->n_refs >= 2) {
        p->loo = malloc((size_t)sp->n_refs * sizeof(float));
        if (!p->loo) {
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        st = insp_jobs_loo(app, p->model, p->text, p->mem, p->loo, &p->suggested, startup);
        if (st != INSP_OK) {
            insp_error_set(err, st, "leave-one-out scoring failed: %s", insp_strerror(st));
            goto fail;
        }
        p->n_loo = sp->n_refs;
        p->has_suggested = true;
    }
    if (!sp->def.threshold_auto) {
        p->threshold = (float)sp->def.threshold;
        p->threshold_source = "manual";
    } else if (p->has_suggested) {
        p->threshold = p->suggested;
        p->threshold_source = "auto";
    } else {
        p->threshold = 0.5f;
        p->threshold_source = "default";
    }
    *out = p;
    return INSP_OK;
fail:
    insp_product_release(p);
    return st;
}

/* What the store's load callbacks share: the ids to load, and the app for the failures. */
typedef struct id_list {
    insp_app *app;
    char **ids;
    int n, cap;
} id_list;

static void collect(const char *id, const insp_stored_product *p, void *user)
{
    (void)p;
    id_list *l = user;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **ni = realloc(l->ids, (size_t)cap * sizeof *ni);
        if (!ni)
            return;
        l->ids = ni;
        l->cap = cap;
    }
    l->ids[l->n] = strdup(id);
    if (l->ids[l->n])
        l->n++;
}

static void report_bad(const char *id, const insp_error *why, void *user)
{
    insp_app *app = ((id_list *)user)->app;
    app->products_failed++;
    INSP_LOG_ERROR("product_unreadable", "product %s in the store cannot be read, skipped: %s", id,
                   why->msg);
}

void insp_products_load_all(insp_app *app)
{
    id_list l = {.app = app};
    insp_error err = {0};
    if (insp_store_load_all(app->store, collect, report_bad, &l, &err) != INSP_OK) {
        INSP_LOG_ERROR("store", "cannot list the store: %s", err.msg);
        app->products_failed++;
    }
    for (int i = 0; i < l.n; i++) {
        insp_stored_product *sp = NULL;
        insp_product *p = NULL;
        int st = insp_store_get(app->store, l.ids[i], &sp, &err);
        if (st == INSP_OK)
            st = insp_products_build(app, sp, NULL, 1, &p, &err);
        if (st == INSP_OK)
            st = insp_registry_put(app->registry, p);
        if (st != INSP_OK) {
            app->products_failed++;
            INSP_LOG_ERROR("product_unreadable", "product %s cannot be loaded, skipped: %s",
                           l.ids[i], err.msg);
        }
        free(l.ids[i]);
    }
    free(l.ids);
    int np, nr;
    long long bytes;
    insp_registry_counts(app->registry, &np, &nr, &bytes);
    INSP_LOG_INFO("products_loaded",
                  "%d products with %d references loaded, %d skipped; reference features "
                  "%.1f MiB of max_reference_memory %.1f MiB",
                  np, nr, app->products_failed, bytes / 1048576.0,
                  app->cfg.max_reference_memory / 1048576.0);
    if (bytes > app->cfg.max_reference_memory)
        INSP_LOG_WARN("reference_memory", "the stored references need more than "
                      "max_reference_memory: all are loaded, but no reference can be added "
                      "until some are deleted or the limit is raised");
}
