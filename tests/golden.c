/* One fixture loader and tensor lookup for the golden tests, so a missing or mis-shaped
 * expected tensor is reported (and fails the case) the same way everywhere. */
#include "golden.h"

#include "harness.h"

void golden_set_close(golden_set *g)
{
    insp_clip_free(g->clip);
    insp_st_close(g->expected);
    json_decref(g->manifest);
    memset(g, 0, sizeof *g);
}

int golden_set_open(const char *name, int with_model, golden_set *g)
{
    char rel[256];
    insp_error err = {0};
    memset(g, 0, sizeof *g);
    int rc = INSP_OK;
    if (with_model)
        rc = insp_clip_load(fixture_path(name), &g->clip, &err);
    snprintf(rel, sizeof rel, "%s/expected.safetensors", name);
    if (rc == INSP_OK)
        rc = insp_st_open(fixture_path(rel), &g->expected, &err);
    snprintf(rel, sizeof rel, "%s/manifest.json", name);
    if (rc == INSP_OK && !(g->manifest = json_load_file(fixture_path(rel), 0, NULL)))
        rc = insp_error_set(&err, INSP_ERR_FORMAT, "%s unreadable", rel);
    if (rc == INSP_OK && g->clip)
        g->cfg = insp_clip_get_config(g->clip);
    if (rc != INSP_OK) {
        fprintf(stderr, "  fixture %s: %s\n", name, err.msg);
        golden_set_close(g);
    }
    return rc;
}

const float *golden_set_f32(const golden_set *g, const char *name, long numel)
{
    const insp_st_tensor *t = insp_st_find(g->expected, name);
    CHECK_MSG(t != NULL, "expected tensor %s missing", name);
    if (!t)
        return NULL;
    int ok = t->dtype == INSP_DTYPE_F32 && t->numel == numel;
    CHECK_MSG(ok, "expected tensor %s: %s with %lld values, F32 with %ld wanted", name,
              insp_dtype_name(t->dtype), (long long)t->numel, numel);
    return ok ? t->data : NULL;
}
