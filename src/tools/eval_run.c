/* The evaluation run: for each category, shots drawn per seed into reference memories, each
 * test image's towers run once and its features scored against every seed's memory, maps
 * kept at the metric resolution, metrics per seed. Progress on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inspectd/clip.h"
#include "inspectd/image.h"
#include "inspectd/inspector.h"
#include "inspectd/prompts.h"
#include "inspectd/tokenizer.h"
#include "inspectd/winclip.h"
#include "tools/eval.h"
#include "tools/eval_run.h"

const char *const eval_metric_keys[EVAL_N_METRICS] = {
    "image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_aupro", "pixel_f1max",
};
const char *const eval_metric_titles[EVAL_N_METRICS] = {
    "image AUROC", "image AP", "image F1-max", "pixel AUROC", "pixel AUPRO", "pixel F1-max",
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- progress ---------------------------------------------------------------------------- */

typedef struct progress {
    double start, last;
    long done, total;
    bool tty, quiet;
} progress;

static void progress_show(progress *p, const char *cat, int ci, int n_cats, bool force)
{
    if (p->quiet)
        return;
    double t = now_s();
    // On a terminal the line is redrawn in place; in a log, a line every 10 s is enough.
    if (!force && t - p->last < (p->tty ? 0.2 : 10.0))
        return;
    p->last = t;
    double el = t - p->start;
    double rate = el > 0 ? p->done / el : 0;
    char eta[32] = "?";
    if (rate > 0) {
        long s = (long)((p->total - p->done) / rate + 0.5);
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    fprintf(stderr, "%sinspect-eval: %s (%d/%d)  %ld/%ld images  %.1f img/s  ETA %s%s",
            p->tty ? "\r" : "", cat, ci + 1, n_cats, p->done, p->total, rate, eta,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

/* ---- the model ----------------------------------------------------------------------------- */

static void engine_free(eval_engine *e)
{
    free(e->t);
    free(e->model);
    free(e->scratch);
    free(e->grid);
    insp_worker_free(e->w);
    insp_winclip_free(e->wc);
    insp_tokenizer_free(e->tok);
    insp_clip_free(e->clip);
    memset(e, 0, sizeof *e);
}

static int engine_load(const eval_settings *s, eval_engine *e, insp_error *err)
{
    memset(e, 0, sizeof *e);
    char path[4096];
    int st = insp_clip_load(s->model_dir, &e->clip, err);
    if (!st)
        st = insp_tokenizer_find(s->model_dir, path, sizeof path, err);
    if (!st)
        st = insp_tokenizer_load(path, &e->tok, err);
    if (!st)
        st = insp_winclip_create(e->clip, NULL, 0, &e->wc, err);
    if (!st)
        st = insp_worker_create(e->wc, s->threads, &e->w, err);
    if (st) {
        engine_free(e);
        return st;
    }
    const insp_clip_config *cfg = insp_clip_get_config(e->clip);
    e->S = cfg->vision.image_size;
    e->G = cfg->vision.grid;
    e->D = cfg->embed_dim;
    e->t = malloc(2 * (size_t)e->D * sizeof *e->t);
    e->grid = malloc((size_t)e->G * e->G * sizeof *e->grid);
    e->model = malloc((size_t)e->S * e->S * sizeof *e->model);
    e->scratch = malloc((size_t)e->S * e->S * sizeof *e->scratch);
    if (!e->t || !e->grid || !e->model || !e->scratch) {
        engine_free(e);
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    }
    return INSP_OK;
}

/* The map the inspector would render for the last scored image, at S×S: the grid upsampled
 * bilinearly, then smoothed (src/winclip/inspector.c does the same two steps). */
static void model_map(eval_engine *e, float sigma)
{
    insp_map_resize_bilinear(e->grid, e->G, e->G, e->model, e->S, e->S);
    if (sigma > 0)
        insp_map_gaussian(e->model, e->S, e->S, sigma, e->scratch);
}

/* Writes the S×S map resized to the image's w×h as a 16-bit PNG, as `inspect --map-dir`. */
static int save_map(const eval_engine *e, const char *out_dir, const char *cat,
                    const eval_sample *smp, int w, int h, insp_error *err)
{
    long n = (long)w * h;
    float *full = malloc((size_t)n * sizeof *full);
    uint16_t *px = malloc((size_t)n * sizeof *px);
    char *stem = eval_stem(smp->path);
    size_t plen = strlen(out_dir) + strlen(cat) + strlen(smp->defect) + 32 +
                  (stem ? strlen(stem) : 0);
    char *dir = malloc(plen), *file = malloc(plen);
    uint8_t *png = NULL;
    size_t png_len = 0;
    int st = full && px && stem && dir && file ? INSP_OK
                                               : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    if (!st) {
        insp_map_resize_bilinear(e->model, e->S, e->S, full, w, h);
        insp_map_to_u16(full, n, px);
        snprintf(dir, plen, "%s/maps/%s/%s", out_dir, cat, smp->defect);
        snprintf(file, plen, "%s/%s.png", dir, stem);
        st = eval_mkdirs(dir, err);
    }
    if (!st && insp_png_encode_gray16(px, w, h, &png, &png_len))
        st = insp_error_set(err, INSP_ERR_NOMEM, "%s: cannot encode the map", file);
    if (!st)
        st = eval_write_file(file, png, png_len, err);
    free(png);
    free(full);
    free(px);
    free(stem);
    free(dir);
    free(file);
    return st;
}

/* ---- shots ------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void eval_draw_shots(uint64_t seed, const char *salt, int n, int k, int *out)
{
    // The category name salts the draw so that seed 0 does not pick the same file numbers in
    // every category.
    uint64_t state = seed * 0x9E3779B97F4A7C15ull;
    for (const unsigned char *p = (const unsigned char *)salt; *p; p++)
        state = (state ^ *p) * 0x100000001B3ull;
    int *perm = malloc((size_t)n * sizeof *perm);
    if (!perm) {
        for (int i = 0; i < k; i++)
            out[i] = i;
        return;
    }
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = 0; i < k; i++) { // partial Fisher–Yates
        int j = i + (int)(splitmix64(&state) % (uint64_t)(n - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        out[i] = perm[i];
    }
    free(perm);
}

static int build_memories(eval_engine *e, const eval_settings *s, const eval_category *c,
                          eval_cat_result *res, insp_memory **mem, progress *pg, int ci,
                          int n_cats, insp_error *err)
{
    int K = s->shots;
    if (K > c->n_train)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "category %s: --shots %d, but only %d normal training images",
                              c->name, K, c->n_train);
    int *idx = malloc((size_t)K * sizeof *idx);
    if (!idx)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    int st = INSP_OK;
    for (int seed = 0; !st && seed < s->seeds; seed++) {
        eval_draw_shots((uint64_t)seed, c->name, c->n_train, K, idx);
        res->refs[seed] = malloc((size_t)K * sizeof *res->refs[seed]);
        if (!res->refs[seed] || insp_memory_create(e->wc, &mem[seed])) {
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
            break;
        }
        for (int k = 0; !st && k < K; k++) {
            const char *path = c->train[idx[k]];
            res->refs[seed][k] = c->train_rel[idx[k]];
            char *data;
            size_t len;
            const insp_features *feat;
            st = eval_read_file(path, &data, &len, err);
            if (!st) {
                st = insp_worker_reference(e->w, data, len, 0, &feat, err);
                free(data);
                if (st)
                    insp_error_prefix(err, "shot %s: ", path);
            }
            if (!st && (st = insp_memory_add(mem[seed], feat)))
                insp_error_set(err, st, "shot %s: cannot add it to the memory", path);
            pg->done++;
            progress_show(pg, c->name, ci, n_cats, false);
        }
    }
    free(idx);
    return st;
}

/* ---- one category ------------------------------------------------------------------------ */

/* Growable pixel storage: scores per seed and the shared region ids. */
typedef struct pixels {
    float **score; /* [seeds][n] */
    int32_t *region;
    long n, cap;
    int seeds, n_regions;
} pixels;

static int pixels_reserve(pixels *p, long more)
{
    if (p->n + more <= p->cap)
        return INSP_OK;
    long cap = p->cap ? p->cap : 1 << 16;
    while (cap < p->n + more)
        cap *= 2;
    int32_t *r = realloc(p->region, (size_t)cap * sizeof *r);
    if (!r)
        return INSP_ERR_NOMEM;
    p->region = r;
    for (int s = 0; s < p->seeds; s++) {
        float *f = realloc(p->score[s], (size_t)cap * sizeof *f);
        if (!f)
            return INSP_ERR_NOMEM;
        p->score[s] = f;
    }
    p->cap = cap;
    return INSP_OK;
}

static void pixels_free(pixels *p)
{
    for (int s = 0; p->score && s < p->seeds; s++)
        free(p->score[s]);
    free(p->score);
    free(p->region);
}

/* Ground truth of one test image at ew×eh into region[]: region ids continue the category's. */
static int image_regions(const eval_sample *smp, int ew, int eh, pixels *px, insp_error *err)
{
    int32_t *region = px->region + px->n;
    if (!smp->label || !smp->mask) {
        memset(region, 0, (size_t)ew * eh * sizeof *region);
        return INSP_OK;
    }
    uint8_t *m, *small = malloc((size_t)ew * eh);
    int mw, mh, found;
    if (!small)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    int st = eval_load_mask(smp->mask, &m, &mw, &mh, err);
    if (st) {
        free(small);
        return st;
    }
    eval_mask_resize(m, mw, mh, small, ew, eh);
    st = eval_label_regions(small, ew, eh, px->n_regions + 1, region, &found);
    free(m);
    free(small);
    if (st)
        return insp_error_set(err, st, "mask %s: cannot label its regions", smp->mask);
    px->n_regions += found;
    return INSP_OK;
}

static int run_category(eval_engine *e, const eval_settings *s, const eval_category *c, int ci,
                        int n_cats, eval_cat_result *res, eval_thumbs *th, progress *pg,
                        insp_error *err)
{
    double t0 = now_s();
    int seeds = s->seeds;
    insp_memory **mem = calloc((size_t)seeds, sizeof *mem);
    uint8_t *labels = malloc((size_t)c->n_test);
    pixels px = {.seeds = seeds};
    px.score = calloc((size_t)seeds, sizeof *px.score);
    bool want_pixels = s->pixel && c->has_masks;
    insp_prompts prompts = {0};
    int st = mem && labels && px.score ? INSP_OK
                                       : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");

    insp_prompt_spec spec = {.object = c->object};
    if (!st && (st = insp_prompts_build(&spec, &prompts, err)) == INSP_OK)
        st = insp_winclip_text(e->wc, e->tok, insp_worker_clip_ws(e->w), insp_worker_pool(e->w),
                               &prompts, e->t, err);
    insp_prompts_free(&prompts);
    if (st)
        insp_error_prefix(err, "category %s, object \"%s\": ", c->name, c->object);
    if (!st && s->shots > 0)
        st = build_memories(e, s, c, res, mem, pg, ci, n_cats, err);

    for (int i = 0; !st && i < c->n_test; i++) {
        const eval_sample *smp = &c->test[i];
        labels[i] = smp->label;
        char *data;
        size_t len;
        insp_image_format fmt;
        int w = 0, h = 0;
        const insp_features *feat = NULL;
        st = eval_read_file(smp->path, &data, &len, err);
        if (st)
            break;
        st = insp_image_probe(data, len, &fmt, &w, &h, err);
        if (!st)
            st = insp_worker_reference(e->w, data, len, 0, &feat, err);
        free(data);
        if (st) {
            insp_error_prefix(err, "%s: ", smp->path);
            break;
        }
        int ew = s->pixel_size > 0 ? s->pixel_size : s->pixel_size == 0 ? e->S : w;
        int eh = s->pixel_size > 0 ? s->pixel_size : s->pixel_size == 0 ? e->S : h;
        if (want_pixels) {
            if (pixels_reserve(&px, (long)ew * eh)) {
                st = insp_error_set(err, INSP_ERR_NOMEM,
                                    "category %s: out of memory for the pixel maps (try "
                                    "--pixel-size with a smaller N)",
                                    c->name);
                break;
            }
            if ((st = image_regions(smp, ew, eh, &px, err)))
                break;
        }
        for (int seed = 0; !st && seed < seeds; seed++) {
            insp_score sc;
            st = insp_winclip_score(e->wc, insp_worker_score_ws(e->w), insp_worker_pool(e->w),
                                    e->t, s->shots > 0 ? mem[seed] : NULL, feat, e->grid, &sc);
            if (st) {
                insp_error_set(err, st, "%s: scoring failed", smp->path);
                break;
            }
            res->scores[seed][i] = sc.score;
            model_map(e, s->smooth);
            if (want_pixels) {
                float *dst = px.score[seed] + px.n;
                if (ew == e->S && eh == e->S)
                    memcpy(dst, e->model, (size_t)ew * eh * sizeof *dst);
                else
                    insp_map_resize_bilinear(e->model, e->S, e->S, dst, ew, eh);
            }
            if (seed == 0) {
                st = eval_thumb_add(th, i, e->model, e->S, w, h, err);
                if (!st && s->save_maps)
                    st = save_map(e, s->out_dir, c->name, smp, w, h, err);
            }
        }
        if (want_pixels)
            px.n += (long)ew * eh;
        pg->done++;
        progress_show(pg, c->name, ci, n_cats, false);
    }

    for (int seed = 0; !st && seed < seeds; seed++) {
        eval_binary b;
        st = eval_binary_metrics(res->scores[seed], labels, c->n_test, &b,
                                 seed ? NULL : &res->img_roc, seed ? NULL : &res->img_pr, err);
        if (st) {
            insp_error_prefix(err, "category %s: image metrics: ", c->name);
            break;
        }
        res->per_seed[seed][EVAL_IMAGE_AUROC] = b.auroc;
        res->per_seed[seed][EVAL_IMAGE_AP] = b.ap;
        res->per_seed[seed][EVAL_IMAGE_F1MAX] = b.f1max;
        if (seed == 0)
            res->img_threshold = b.f1_threshold;
        if (!want_pixels)
            continue;
        eval_pixel p;
        st = eval_pixel_metrics(px.score[seed], px.region, px.n, px.n_regions, &p,
                                seed ? NULL : &res->pix_roc, seed ? NULL : &res->pix_pro, err);
        if (st) {
            insp_error_prefix(err, "category %s: pixel metrics: ", c->name);
            break;
        }
        res->per_seed[seed][EVAL_PIXEL_AUROC] = p.auroc;
        res->per_seed[seed][EVAL_PIXEL_AUPRO] = p.aupro;
        res->per_seed[seed][EVAL_PIXEL_F1MAX] = p.f1max;
        if (seed == 0) {
            res->pix_threshold = p.f1_threshold;
            res->n_pixels = p.n;
            res->n_regions = p.n_regions;
        }
    }
    if (!want_pixels)
        res->pixel_note = !s->pixel ? "pixel metrics turned off (--no-pixel)"
                                    : "no masks for this category";
    if (!st)
        st = eval_pick_examples(s, c, res, th, err);

    for (int seed = 0; mem && seed < seeds; seed++)
        insp_memory_free(mem[seed]);
    free(mem);
    free(labels);
    pixels_free(&px);
    res->seconds = now_s() - t0;
    progress_show(pg, c->name, ci, n_cats, true);
    return st;
}

/* ---- the whole run ----------------------------------------------------------------------- */

void eval_results_free(eval_results *r)
{
    if (!r)
        return;
    for (int i = 0; r->cats && i < r->n_cats; i++) {
        eval_cat_result *c = &r->cats[i];
        for (int s = 0; s < r->n_seeds; s++) {
            if (c->scores)
                free(c->scores[s]);
            if (c->refs)
                free(c->refs[s]);
        }
        free(c->scores);
        free(c->refs);
        free(c->per_seed);
        eval_curve_free(&c->img_roc);
        eval_curve_free(&c->img_pr);
        eval_curve_free(&c->pix_roc);
        eval_curve_free(&c->pix_pro);
        for (int k = 0; k < c->n_normals; k++)
            free(c->normals[k].jpeg_b64);
        for (int k = 0; k < c->n_anomalies; k++)
            free(c->anomalies[k].jpeg_b64);
        free(c->normals);
        free(c->anomalies);
    }
    free(r->cats);
    memset(r, 0, sizeof *r);
}

static int alloc_results(const eval_settings *s, const eval_dataset *d, eval_results *r)
{
    r->n_cats = d->n;
    r->n_seeds = s->seeds;
    r->shots = s->shots;
    r->cats = calloc((size_t)d->n, sizeof *r->cats);
    if (!r->cats)
        return INSP_ERR_NOMEM;
    for (int i = 0; i < d->n; i++) {
        eval_cat_result *c = &r->cats[i];
        c->scores = calloc((size_t)s->seeds, sizeof *c->scores);
        c->refs = calloc((size_t)s->seeds, sizeof *c->refs);
        c->per_seed = malloc((size_t)s->seeds * sizeof *c->per_seed);
        if (!c->scores || !c->refs || !c->per_seed)
            return INSP_ERR_NOMEM;
        for (int seed = 0; seed < s->seeds; seed++) {
            for (int m = 0; m < EVAL_N_METRICS; m++)
                c->per_seed[seed][m] = NAN;
            c->scores[seed] = calloc((size_t)d->cats[i].n_test, sizeof *c->scores[seed]);
            if (!c->scores[seed])
                return INSP_ERR_NOMEM;
        }
        c->pixel_note = NULL;
    }
    return INSP_OK;
}

int eval_run(const eval_settings *s, const eval_dataset *d, eval_results *out, insp_error *err)
{
    memset(out, 0, sizeof *out);
    double t0 = now_s();
    eval_engine e;
    int st = engine_load(s, &e, err);
    if (st)
        return insp_error_prefix(err, "model %s: ", s->model_dir);
    if (alloc_results(s, d, out)) {
        eval_results_free(out);
        engine_free(&e);
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    }
    const insp_clip_config *cfg = insp_clip_get_config(e.clip);
    snprintf(out->model_sha256, sizeof out->model_sha256, "%s", insp_clip_checksum(e.clip));
    snprintf(out->model_dtype, sizeof out->model_dtype, "%s", insp_clip_file_dtype(e.clip));
    out->image_size = cfg->vision.image_size;
    out->grid = cfg->vision.grid;
    out->pixel_w = out->pixel_h = s->pixel_size > 0 ? s->pixel_size
                                  : s->pixel_size == 0 ? out->image_size
                                                       : 0;
    double t1 = now_s();
    out->load_seconds = t1 - t0;

    progress pg = {.start = t1, .tty = isatty(2), .quiet = s->quiet};
    for (int i = 0; i < d->n; i++)
        pg.total += d->cats[i].n_test + (long)s->shots * s->seeds;
    for (int i = 0; !st && i < d->n; i++) {
        eval_thumbs th;
        if (eval_thumbs_init(&th, d->cats[i].n_test)) {
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
            break;
        }
        st = run_category(&e, s, &d->cats[i], i, d->n, &out->cats[i], &th, &pg, err);
        eval_thumbs_free(&th);
        out->n_images += d->cats[i].n_test;
    }
    if (!s->quiet && pg.tty)
        fputc('\n', stderr);
    out->seconds = now_s() - t0;
    engine_free(&e);
    if (st)
        eval_results_free(out);
    return st;
}

void eval_summary(const eval_results *r, int cat, int metric, double *mean, double *std)
{
    int n = r->n_seeds;
    double v[64], sum = 0;
    for (int s = 0; s < n && s < 64; s++) {
        if (cat >= 0) {
            v[s] = r->cats[cat].per_seed[s][metric];
        } else {
            v[s] = 0;
            for (int c = 0; c < r->n_cats; c++)
                v[s] += r->cats[c].per_seed[s][metric];
            v[s] /= r->n_cats;
        }
        sum += v[s];
    }
    double m = sum / n, ss = 0;
    for (int s = 0; s < n && s < 64; s++)
        ss += (v[s] - m) * (v[s] - m);
    *mean = m;
    *std = isnan(m) ? NAN : sqrt(ss / n);
}
