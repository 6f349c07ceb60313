/* Loads an OpenCLIP model directory: finds the weights, settles every dimension (config
 * first, tensor shapes for what it leaves out), checks each tensor against them and copies
 * all of them once into a single float32 block that the towers read. */
#include "clip/model.h"
#include "clip/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_NAME "open_clip_config.json"
#define PREFERRED_WEIGHTS "open_clip_model.safetensors"
#define MAX_CONFIG_BYTES (16u << 20)
/* Tensors that may sit in an open_clip state dict without being part of either tower. */
static const char *const ignorable[] = {"logit_scale", "logit_bias", "attn_mask"};

/* A tensor the towers need: its name, the shape the dims imply and where its float32 copy
 * goes. */
typedef struct slot {
    char name[112];
    int ndim;
    int64_t shape[4];
    const float **dst;
    const insp_st_tensor *t;
} slot;

typedef struct loader {
    const char *wpath; /* weights file, for messages */
    insp_safetensors *st;
    insp_clip *c;
    slot *slots;
    int n_slots, cap_slots;
    insp_error *err;
} loader;

static void format_shape(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld",
                                 (long long)shape[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- finding the files ---- */

static int join(char *out, size_t cap, const char *dir, const char *name, insp_error *err)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return insp_error_set(err, INSP_ERR_INVALID, "model %s: path too long", dir);
    return INSP_OK;
}

static int read_config(const char *dir, insp_clip_config *cfg, insp_error *err)
{
    char path[4096];
    int rc = join(path, sizeof path, dir, CONFIG_NAME, err);
    if (rc != INSP_OK)
        return rc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return insp_error_set(err, errno == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "model %s: cannot open %s: %s", dir, CONFIG_NAME, strerror(errno));
    char *buf = malloc(MAX_CONFIG_BYTES + 1);
    if (!buf) {
        fclose(f);
        return insp_error_set(err, INSP_ERR_NOMEM, "model %s: out of memory", dir);
    }
    size_t n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad)
        rc = insp_error_set(err, INSP_ERR_IO, "model %s: error reading %s", dir, CONFIG_NAME);
    else if (n > MAX_CONFIG_BYTES)
        rc = insp_error_set(err, INSP_ERR_TOO_LARGE, "model %s: %s is larger than %u bytes", dir,
                            CONFIG_NAME, MAX_CONFIG_BYTES);
    else if ((rc = insp_clip_config_parse(buf, n, cfg, err)) != INSP_OK)
        insp_error_prefix(err, "model %s: %s: ", dir, CONFIG_NAME);
    free(buf);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.safetensors regular files (symlinks followed: hub caches link into a blob store) in
 * dir, sorted by name. */
static int list_safetensors(const char *dir, char ***out, int *n_out, insp_error *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return insp_error_set(err, errno == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "model %s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0, rc = INSP_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        const char *ext = ".safetensors";
        if (len <= strlen(ext) || strcmp(e->d_name + len - strlen(ext), ext) != 0)
            continue;
        char path[4096];
        struct stat sb;
        if (join(path, sizeof path, dir, e->d_name, err) != INSP_OK || stat(path, &sb) != 0 ||
            !S_ISREG(sb.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(names, (size_t)cap * sizeof *names);
            if (!nn) {
                rc = INSP_ERR_NOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = INSP_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != INSP_OK) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return insp_error_set(err, rc, "model %s: out of memory listing files", dir);
    }
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return INSP_OK;
}

/* Picks and opens the weights: open_clip_model.safetensors if present, else the only
 * *.safetensors; when there are several, the only one holding a CLIP state dict (a model
 * folder may keep other tensors, such as test references, next to its weights). */
static int open_weights(const char *dir, insp_clip *c, insp_safetensors **st, insp_error *err)
{
    char **names;
    int n;
    int rc = list_safetensors(dir, &names, &n, err);
    if (rc != INSP_OK)
        return rc;
    char path[4096];
    const char *pick = NULL;
    for (int i = 0; i < n && !pick; i++)
        if (strcmp(names[i], PREFERRED_WEIGHTS) == 0)
            pick = names[i];
    if (!pick && n == 1)
        pick = names[0];

    if (n == 0) {
        rc = insp_error_set(err, INSP_ERR_NOT_FOUND, "model %s: no *.safetensors weights file",
                            dir);
    } else if (pick) {
        rc = join(path, sizeof path, dir, pick, err);
        if (rc == INSP_OK)
            rc = insp_st_open(path, st, err);
    } else {
        int found = 0;
        const char *first = NULL;
        for (int i = 0; i < n && rc == INSP_OK; i++) {
            insp_safetensors *cand = NULL;
            if (join(path, sizeof path, dir, names[i], NULL) != INSP_OK ||
                insp_st_open(path, &cand, NULL) != INSP_OK)
                continue;
            if (!insp_st_find(cand, "visual.class_embedding")) {
                insp_st_close(cand);
                continue;
            }
            if (found++ == 0) {
                first = names[i];
                pick = names[i];
                *st = cand;
            } else {
                insp_st_close(cand);
                insp_st_close(*st);
                *st = NULL;
                rc = insp_error_set(err, INSP_ERR_INVALID,
                                    "model %s: ambiguous weights: both %s and %s hold a CLIP "
                                    "state dict; keep one or name it %s",
                                    dir, first, names[i], PREFERRED_WEIGHTS);
            }
        }
        if (rc == INSP_OK && found == 0)
            rc = insp_error_set(err, INSP_ERR_NOT_FOUND,
                                "model %s: %d *.safetensors files (%s, %s%s) and none of them "
                                "is a readable CLIP state dict",
                                dir, n, names[0], names[1], n > 2 ? ", ..." : "");
    }
    if (rc == INSP_OK) {
        snprintf(c->weights_file, sizeof c->weights_file, "%s", pick);
        if (strlen(pick) >= sizeof c->weights_file) {
            insp_st_close(*st);
            *st = NULL;
            rc = insp_error_set(err, INSP_ERR_INVALID, "model %s: weights file name too long",
                                dir);
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- settling the dimensions ---- */

/* Variants recognisable from tensor names alone, refused by name before anything else so
 * the message says what the model is rather than which tensor it lacks. */
static int check_known_variants(loader *ld)
{
    for (int i = 0; i < insp_st_count(ld->st); i++) {
        const char *name = insp_st_at(ld->st, i)->name;
        const char *what = NULL;
        if (strstr(name, ".ls_1.") || strstr(name, ".ls_2."))
            what = "layer scale (ls_1/ls_2)";
        else if (has_prefix(name, "visual.attn_pool"))
            what = "an attentional pooler";
        else if (has_prefix(name, "visual.trunk.") || has_prefix(name, "visual.head."))
            what = "a timm vision tower";
        else if (has_prefix(name, "text."))
            what = "a separate text module (custom_text)";
        else if (has_prefix(name, "vision_model.") || has_prefix(name, "text_model."))
            what = "the Hugging Face transformers layout (convert to open_clip names)";
        if (what)
            return insp_error_set(ld->err, INSP_ERR_UNSUPPORTED,
                                  "%s: tensor %s: %s is not supported", ld->wpath, name, what);
    }
    return INSP_OK;
}

/* Fills *dim from tensor tname's size along axis when the config left it 0, else checks that
 * they agree. cfg_key names the config entry in the message. */
static int dim_from(loader *ld, int *dim, const char *cfg_key, const char *tname, int axis,
                    int ndim)
{
    const insp_st_tensor *t = insp_st_find(ld->st, tname);
    char shape[160];
    if (!t)
        return insp_error_set(ld->err, INSP_ERR_NOT_FOUND, "%s: tensor %s not found", ld->wpath,
                              tname);
    format_shape(t->ndim, t->shape, shape, sizeof shape);
    if (t->ndim != ndim)
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: tensor %s: shape %s, expected %d dimensions", ld->wpath, tname,
                              shape, ndim);
    int64_t v = t->shape[axis];
    if (v <= 0 || v > (1 << 24))
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: tensor %s: shape %s has an unusable size on axis %d",
                              ld->wpath, tname, shape, axis);
    if (*dim == 0)
        *dim = (int)v;
    else if (*dim != v)
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: %s %s is %d but tensor %s has shape %s", ld->wpath,
                              CONFIG_NAME, cfg_key, *dim, tname, shape);
    return INSP_OK;
}

/* Number of residual blocks under prefix ("visual.transformer.resblocks."): one more than
 * the largest index seen, so a gap shows up later as a missing tensor. */
static int count_blocks(const insp_safetensors *st, const char *prefix)
{
    size_t plen = strlen(prefix);
    long max = -1;
    for (int i = 0; i < insp_st_count(st); i++) {
        const char *name = insp_st_at(st, i)->name;
        if (strncmp(name, prefix, plen) != 0)
            continue;
        char *end;
        errno = 0;
        long k = strtol(name + plen, &end, 10);
        if (end != name + plen && *end == '.' && errno == 0 && k >= 0 && k < 100000 && k > max)
            max = k;
    }
    return (int)(max + 1);
}

static int settle_layers(loader *ld, int *layers, const char *cfg_key, const char *prefix)
{
    int nb = count_blocks(ld->st, prefix);
    if (*layers == 0) {
        if (nb == 0)
            return insp_error_set(ld->err, INSP_ERR_NOT_FOUND, "%s: no %s* tensors", ld->wpath,
                                  prefix);
        *layers = nb;
    } else if (nb != *layers) {
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: %s %s is %d but the weights hold %d blocks (%s0..%d)",
                              ld->wpath, CONFIG_NAME, cfg_key, *layers, nb, prefix, nb - 1);
    }
    if (*layers > 1024)
        return insp_error_set(ld->err, INSP_ERR_SHAPE, "%s: %d blocks under %s is implausible",
                              ld->wpath, *layers, prefix);
    return INSP_OK;
}

static int settle_vision(loader *ld, insp_clip_config *cfg)
{
    int rc = dim_from(ld, &cfg->vision.width, "vision_cfg.width", "visual.class_embedding", 0, 1);
    if (rc == INSP_OK)
        rc = dim_from(ld, &cfg->vision.patch_size, "vision_cfg.patch_size", "visual.conv1.weight",
                      2, 4);
    if (rc != INSP_OK)
        return rc;

    /* The grid follows from the positional embedding's 1 + G² rows. */
    int rows = 0;
    rc = dim_from(ld, &rows, "", "visual.positional_embedding", 0, 2);
    if (rc != INSP_OK)
        return rc;
    int g = 0;
    while ((g + 1) * (g + 1) <= rows - 1)
        g++;
    if (rows < 2 || g * g != rows - 1)
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: tensor visual.positional_embedding has %d rows, not 1 + G*G "
                              "for a square grid",
                              ld->wpath, rows);
    int s = cfg->vision.image_size, p = cfg->vision.patch_size;
    if (s == 0) {
        cfg->vision.image_size = g * p;
    } else if (s % p != 0 || s / p != g) {
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: %s vision_cfg.image_size %d with patch size %d does not give "
                              "the %dx%d grid of visual.positional_embedding (%d rows)",
                              ld->wpath, CONFIG_NAME, s, p, g, g, rows);
    }
    cfg->vision.grid = g;

    rc = settle_layers(ld, &cfg->vision.layers, "vision_cfg.layers",
                       "visual.transformer.resblocks.");
    if (rc != INSP_OK)
        return rc;
    if (cfg->vision.head_width == 0)
        cfg->vision.head_width = 64; /* open_clip's default */
    if (cfg->vision.width % cfg->vision.head_width != 0)
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: vision width %d is not a multiple of the head width %d (set "
                              "vision_cfg.head_width in %s)",
                              ld->wpath, cfg->vision.width, cfg->vision.head_width, CONFIG_NAME);
    cfg->vision.heads = cfg->vision.width / cfg->vision.head_width;
    rc = dim_from(ld, &cfg->vision.mlp_width, "vision_cfg.mlp_ratio (as MLP width)",
                  "visual.transformer.resblocks.0.mlp.c_fc.weight", 0, 2);
    if (rc == INSP_OK)
        rc = dim_from(ld, &cfg->embed_dim, "embed_dim", "visual.proj", 1, 2);
    return rc;
}

static int settle_text(loader *ld, insp_clip_config *cfg)
{
    int rc = dim_from(ld, &cfg->text.width, "text_cfg.width", "token_embedding.weight", 1, 2);
    if (rc == INSP_OK)
        rc = dim_from(ld, &cfg->text.vocab_size, "text_cfg.vocab_size", "token_embedding.weight",
                      0, 2);
    if (rc == INSP_OK)
        rc = dim_from(ld, &cfg->text.context_length, "text_cfg.context_length",
                      "positional_embedding", 0, 2);
    if (rc == INSP_OK)
        rc = settle_layers(ld, &cfg->text.layers, "text_cfg.layers", "transformer.resblocks.");
    if (rc != INSP_OK)
        return rc;
    if (cfg->text.heads == 0) {
        if (cfg->text.width % 64 != 0)
            return insp_error_set(ld->err, INSP_ERR_SHAPE,
                                  "%s: text width %d is not a multiple of 64; set text_cfg.heads "
                                  "in %s",
                                  ld->wpath, cfg->text.width, CONFIG_NAME);
        cfg->text.heads = cfg->text.width / 64;
    }
    if (cfg->text.width % cfg->text.heads != 0)
        return insp_error_set(ld->err, INSP_ERR_SHAPE,
                              "%s: text width %d is not a multiple of text_cfg.heads %d",
                              ld->wpath, cfg->text.width, cfg->text.heads);
    return dim_from(ld, &cfg->text.mlp_width, "text_cfg.mlp_ratio (as MLP width)",
                    "transformer.resblocks.0.mlp.c_fc.weight", 0, 2);
}

/* ---- the tensor table ---- */

static int add_slot(loader *ld, const float **dst, int ndim, const int64_t *shape,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int add_slot(loader *ld, const float **dst, int ndim, const int64_t *shape,
                    const char *fmt, ...)
{
    if (ld->n_slots == ld->cap_slots) {
        int cap = ld->cap_slots ? ld->cap_slots * 2 : 64;
        slot *ns = realloc(ld->slots, (size_t)cap * sizeof *ns);
        if (!ns)
            return insp_error_set(ld->err, INSP_ERR_NOMEM, "out of memory for the tensor table");
        ld->slots = ns;
        ld->cap_slots = cap;
    }
    slot *s = &ld->slots[ld->n_slots++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->ndim = ndim;
    memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
    s->dst = dst;
    return INSP_OK;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define ADD(dst, nd, shp, ...)                                                                \
    do {                                                                                       \
        int rc_ = add_slot(ld, dst, nd, shp, __VA_ARGS__);                                     \
        if (rc_ != INSP_OK)                                                                    \
            return rc_;                                                                        \
    } while (0)

static int add_block(loader *ld, insp_block *b, const char *prefix, int i, int64_t w, int64_t m)
{
    ADD(&b->ln_1_w, 1, SHAPE(w), "%s%d.ln_1.weight", prefix, i);
    ADD(&b->ln_1_b, 1, SHAPE(w), "%s%d.ln_1.bias", prefix, i);
    ADD(&b->in_proj_w, 2, SHAPE(3 * w, w), "%s%d.attn.in_proj_weight", prefix, i);
    ADD(&b->in_proj_b, 1, SHAPE(3 * w), "%s%d.attn.in_proj_bias", prefix, i);
    ADD(&b->out_proj_w, 2, SHAPE(w, w), "%s%d.attn.out_proj.weight", prefix, i);
    ADD(&b->out_proj_b, 1, SHAPE(w), "%s%d.attn.out_proj.bias", prefix, i);
    ADD(&b->ln_2_w, 1, SHAPE(w), "%s%d.ln_2.weight", prefix, i);
    ADD(&b->ln_2_b, 1, SHAPE(w), "%s%d.ln_2.bias", prefix, i);
    ADD(&b->fc_w, 2, SHAPE(m, w), "%s%d.mlp.c_fc.weight", prefix, i);
    ADD(&b->fc_b, 1, SHAPE(m), "%s%d.mlp.c_fc.bias", prefix, i);
    ADD(&b->proj_w, 2, SHAPE(w, m), "%s%d.mlp.c_proj.weight", prefix, i);
    ADD(&b->proj_b, 1, SHAPE(w), "%s%d.mlp.c_proj.bias", prefix, i);
    return INSP_OK;
}

/* Every tensor the towers read, with the shape the settled dims imply. */
static int build_table(loader *ld)
{
    insp_clip *c = ld->c;
    const insp_clip_config *cfg = &c->cfg;
    int64_t w = cfg->vision.width, p = cfg->vision.patch_size, g = cfg->vision.grid;
    int64_t d = cfg->embed_dim, wt = cfg->text.width;

    ADD(&c->conv1_w, 4, SHAPE(w, 3, p, p), "visual.conv1.weight");
    ADD(&c->class_emb, 1, SHAPE(w), "visual.class_embedding");
    ADD(&c->vpos_emb, 2, SHAPE(1 + g * g, w), "visual.positional_embedding");
    ADD(&c->ln_pre_w, 1, SHAPE(w), "visual.ln_pre.weight");
    ADD(&c->ln_pre_b, 1, SHAPE(w), "visual.ln_pre.bias");
    for (int i = 0; i < cfg->vision.layers; i++) {
        int rc = add_block(ld, &c->vblocks[i], "visual.transformer.resblocks.", i, w,
                           cfg->vision.mlp_width);
        if (rc != INSP_OK)
            return rc;
    }
    ADD(&c->ln_post_w, 1, SHAPE(w), "visual.ln_post.weight");
    ADD(&c->ln_post_b, 1, SHAPE(w), "visual.ln_post.bias");
    ADD(&c->vproj, 2, SHAPE(w, d), "visual.proj");

    ADD(&c->tok_emb, 2, SHAPE(cfg->text.vocab_size, wt), "token_embedding.weight");
    ADD(&c->tpos_emb, 2, SHAPE(cfg->text.context_length, wt), "positional_embedding");
    for (int i = 0; i < cfg->text.layers; i++) {
        int rc = add_block(ld, &c->tblocks[i], "transformer.resblocks.", i, wt,
                           cfg->text.mlp_width);
        if (rc != INSP_OK)
            return rc;
    }
    ADD(&c->ln_final_w, 1, SHAPE(wt), "ln_final.weight");
    ADD(&c->ln_final_b, 1, SHAPE(wt), "ln_final.bias");
    ADD(&c->tproj, 2, SHAPE(wt, d), "text_projection");
    return INSP_OK;
}

/* Finds each slot's tensor and checks dtype and shape; *total = floats needed. */
static int match_table(loader *ld, size_t *total)
{
    size_t sum = 0;
    for (int i = 0; i < ld->n_slots; i++) {
        slot *s = &ld->slots[i];
        const insp_st_tensor *t = insp_st_find(ld->st, s->name);
        if (!t)
            return insp_error_set(ld->err, INSP_ERR_NOT_FOUND, "%s: tensor %s not found",
                                  ld->wpath, s->name);
        if (t->dtype != INSP_DTYPE_F32 && t->dtype != INSP_DTYPE_F16 &&
            t->dtype != INSP_DTYPE_BF16)
            return insp_error_set(ld->err, INSP_ERR_UNSUPPORTED,
                                  "%s: tensor %s: dtype %s, expected F32, F16 or BF16", ld->wpath,
                                  s->name, insp_dtype_name(t->dtype));
        bool same = t->ndim == s->ndim;
        for (int k = 0; same && k < s->ndim; k++)
            same = t->shape[k] == s->shape[k];
        if (!same) {
            char have[160], want[160];
            format_shape(t->ndim, t->shape, have, sizeof have);
            format_shape(s->ndim, s->shape, want, sizeof want);
            return insp_error_set(ld->err, INSP_ERR_SHAPE, "%s: tensor %s: shape %s, expected %s",
                                  ld->wpath, s->name, have, want);
        }
        if (__builtin_add_overflow(sum, (size_t)t->numel, &sum))
            return insp_error_set(ld->err, INSP_ERR_TOO_LARGE, "%s: weights too large",
                                  ld->wpath);
        s->t = t;
    }
    *total = sum;
    return INSP_OK;
}

/* Anything else in the file that is neither used nor known to be harmless belongs to a
 * variant this loader does not compute; say so rather than run a different model. */
static int check_unused(loader *ld)
{
    for (int i = 0; i < insp_st_count(ld->st); i++) {
        const insp_st_tensor *t = insp_st_at(ld->st, i);
        bool known = false;
        for (int k = 0; k < ld->n_slots && !known; k++)
            known = ld->slots[k].t == t;
        for (size_t k = 0; k < sizeof ignorable / sizeof ignorable[0] && !known; k++)
            known = strcmp(t->name, ignorable[k]) == 0;
        if (!known)
            return insp_error_set(ld->err, INSP_ERR_UNSUPPORTED,
                                  "%s: tensor %s is not part of the supported CLIP ViT layout "
                                  "(an unsupported model variant)",
                                  ld->wpath, t->name);
    }
    return INSP_OK;
}

/* Drops the file pages under one converted tensor from this process's mapping. Read once,
 * they would otherwise stay resident next to their float32 copy until the file is closed:
 * for an F32 file that doubles the peak memory of a load. The range is widened to whole
 * pages; a neighbour's page dropped early is simply read from the file again. */
static void release_pages(const insp_st_tensor *t)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || t->nbytes == 0)
        return;
    uintptr_t lo = (uintptr_t)t->data & ~((uintptr_t)page - 1);
    uintptr_t hi = ((uintptr_t)t->data + t->nbytes + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static int convert_all(loader *ld, size_t total)
{
    insp_clip *c = ld->c;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, total * sizeof(float)) != 0)
        return insp_error_set(ld->err, INSP_ERR_NOMEM,
                              "%s: out of memory for %zu MB of float32 weights", ld->wpath,
                              total * sizeof(float) >> 20);
    c->weights = mem;
    c->weights_floats = total;
    size_t off = 0;
    for (int i = 0; i < ld->n_slots; i++) {
        slot *s = &ld->slots[i];
        int rc = insp_st_to_f32(s->t, c->weights + off);
        if (rc != INSP_OK)
            return insp_error_set(ld->err, rc, "%s: tensor %s: cannot convert to float32",
                                  ld->wpath, s->name);
        release_pages(s->t);
        *s->dst = c->weights + off;
        off += (size_t)s->t->numel;
    }
    return INSP_OK;
}

static void set_file_dtype(insp_clip *c, const insp_safetensors *st)
{
    snprintf(c->file_dtype, sizeof c->file_dtype, "?");
    for (int i = 0; i < insp_st_count(st); i++) {
        insp_dtype dt = insp_st_at(st, i)->dtype;
        if (dt == INSP_DTYPE_F32 || dt == INSP_DTYPE_F16 || dt == INSP_DTYPE_BF16) {
            snprintf(c->file_dtype, sizeof c->file_dtype, "%s", insp_dtype_name(dt));
            return;
        }
    }
}

int insp_clip_load(const char *dir, insp_clip **out, insp_error *err)
{
    *out = NULL;
    if (!dir)
        return insp_error_set(err, INSP_ERR_INVALID, "model: no directory given");
    insp_clip *c = calloc(1, sizeof *c);
    if (!c)
        return insp_error_set(err, INSP_ERR_NOMEM, "model %s: out of memory", dir);
    if (strlen(dir) >= sizeof c->dir) {
        free(c);
        return insp_error_set(err, INSP_ERR_INVALID, "model: directory path too long");
    }
    memcpy(c->dir, dir, strlen(dir) + 1);

    loader ld = {.c = c, .err = err};
    char wpath[4096];
    int rc = read_config(dir, &c->cfg, err);
    if (rc == INSP_OK)
        rc = open_weights(dir, c, &ld.st, err);
    if (rc == INSP_OK)
        rc = join(wpath, sizeof wpath, dir, c->weights_file, err);
    if (rc != INSP_OK)
        goto done;
    ld.wpath = wpath;
    rc = check_known_variants(&ld);
    if (rc == INSP_OK)
        rc = settle_vision(&ld, &c->cfg);
    if (rc == INSP_OK)
        rc = settle_text(&ld, &c->cfg);
    if (rc != INSP_OK)
        goto done;
    c->vblocks = calloc((size_t)c->cfg.vision.layers, sizeof *c->vblocks);
    c->tblocks = calloc((size_t)c->cfg.text.layers, sizeof *c->tblocks);
    if (!c->vblocks || !c->tblocks) {
        rc = insp_error_set(err, INSP_ERR_NOMEM, "model %s: out of memory", dir);
        goto done;
    }
    size_t total = 0;
    rc = build_table(&ld);
    if (rc == INSP_OK)
        rc = match_table(&ld, &total);
    if (rc == INSP_OK)
        rc = check_unused(&ld);
    if (rc == INSP_OK)
        rc = convert_all(&ld, total);
    if (rc != INSP_OK)
        goto done;
    set_file_dtype(c, ld.st);
    /* Unmap before hashing: from here on only the float copy is resident. */
    insp_st_close(ld.st);
    ld.st = NULL;
    rc = insp_sha256_file(wpath, c->checksum, err);

done:
    free(ld.slots);
    insp_st_close(ld.st);
    if (rc != INSP_OK) {
        insp_clip_free(c);
        return rc;
    }
    *out = c;
    return INSP_OK;
}

void insp_clip_free(insp_clip *clip)
{
    if (!clip)
        return;
    free(clip->vblocks);
    free(clip->tblocks);
    free(clip->weights);
    free(clip);
}

const insp_clip_config *insp_clip_get_config(const insp_clip *clip)
{
    return clip ? &clip->cfg : NULL;
}

const char *insp_clip_checksum(const insp_clip *clip)
{
    return clip ? clip->checksum : NULL;
}

const char *insp_clip_dir(const insp_clip *clip)
{
    return clip ? clip->dir : NULL;
}

const char *insp_clip_weights_file(const insp_clip *clip)
{
    return clip ? clip->weights_file : NULL;
}

const char *insp_clip_file_dtype(const insp_clip *clip)
{
    return clip ? clip->file_dtype : NULL;
}
