/* The inspection pipeline shared by the CLI and the daemon: one code path, one answer. */
#include "inspectd/inspector.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct insp_worker {
    const insp_winclip *wc;
    int S, G;
    insp_pool *pool;
    insp_clip_ws *ws;
    insp_score_ws *sws;
    insp_features feat;
    float *input;    // [3, S, S]
    float *grid;     // [G, G]
    float *model;    // [S, S]
    float *scratch;  // [S, S] for the blur
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define DEFAULT_MAX_PIXELS (64L * 1000 * 1000)

insp_inspect_params insp_inspect_default_params(void)
{
    insp_inspect_params p = {INSP_MAP_PNG16, INSP_MAP_SIZE_IMAGE, 0.0f, DEFAULT_MAX_PIXELS};
    return p;
}

static int decode(const void *data, size_t len, long max_pixels, insp_image *img,
                  insp_error *err)
{
    return insp_image_decode(data, len, max_pixels > 0 ? max_pixels : DEFAULT_MAX_PIXELS, img,
                             err);
}

void insp_inspection_free(insp_inspection *r)
{
    if (!r)
        return;
    free(r->map);
    free(r->png);
    memset(r, 0, sizeof *r);
}

void insp_worker_free(insp_worker *w)
{
    if (!w)
        return;
    insp_features_free(&w->feat);
    insp_score_ws_free(w->sws);
    insp_clip_ws_free(w->ws);
    insp_pool_free(w->pool);
    free(w->input);
    free(w->grid);
    free(w->model);
    free(w->scratch);
    free(w);
}

int insp_worker_create(const insp_winclip *wc, int threads, insp_worker **out, insp_error *err)
{
    *out = NULL;
    insp_worker *w = calloc(1, sizeof *w);
    if (!w)
        return insp_error_set(err, INSP_ERR_NOMEM, "worker: out of memory");
    const insp_clip_config *cfg = insp_clip_get_config(insp_winclip_clip(wc));
    w->wc = wc;
    w->S = cfg->vision.image_size;
    w->G = cfg->vision.grid;
    size_t plane = (size_t)w->S * w->S;
    int st = insp_pool_create(threads, &w->pool);
    if (st == INSP_OK)
        st = insp_clip_ws_create(insp_winclip_clip(wc), 0, &w->ws);
    if (st == INSP_OK)
        st = insp_score_ws_create(wc, &w->sws);
    if (st == INSP_OK)
        st = insp_features_init(wc, &w->feat);
    if (st == INSP_OK) {
        w->input = malloc(3 * plane * sizeof(float));
        w->grid = malloc((size_t)w->G * w->G * sizeof(float));
        w->model = malloc(plane * sizeof(float));
        w->scratch = malloc(plane * sizeof(float));
        if (!w->input || !w->grid || !w->model || !w->scratch)
            st = INSP_ERR_NOMEM;
    }
    if (st != INSP_OK) {
        insp_worker_free(w);
        return insp_error_set(err, st, "worker: cannot allocate its buffers (%s)",
                              insp_strerror(st));
    }
    *out = w;
    return INSP_OK;
}

insp_pool *insp_worker_pool(insp_worker *w) { return w->pool; }
insp_clip_ws *insp_worker_clip_ws(insp_worker *w) { return w->ws; }
insp_score_ws *insp_worker_score_ws(insp_worker *w) { return w->sws; }

/* Preprocess + both tower passes into w->feat; fills the preprocess/image/windows timings. */
static int compute_features(insp_worker *w, const insp_image *img, insp_timings *t,
                            insp_error *err)
{
    const insp_clip_config *cfg = insp_clip_get_config(insp_winclip_clip(w->wc));
    double t0 = now_ms();
    int st = insp_image_to_input(img, w->S, cfg->mean, cfg->std, w->input);
    if (st != INSP_OK)
        return insp_error_set(err, st, "cannot preprocess the image: %s", insp_strerror(st));
    double t1 = now_ms();
    st = insp_winclip_features(w->wc, w->ws, w->pool, w->input, &w->feat);
    if (st != INSP_OK)
        return insp_error_set(err, st, "forward pass failed: %s", insp_strerror(st));
    if (t) {
        t->preprocess_ms = t1 - t0;
        t->image_ms = w->feat.image_ms;
        t->windows_ms = w->feat.windows_ms;
    }
    return INSP_OK;
}

/* Turns the G×G grid map into the requested map and PNG. */
static int render_map(insp_worker *w, const insp_inspect_params *p, int img_w, int img_h,
                      insp_inspection *out)
{
    insp_map_resize_bilinear(w->grid, w->G, w->G, w->model, w->S, w->S);
    if (p->smooth_sigma > 0)
        insp_map_gaussian(w->model, w->S, w->S, p->smooth_sigma, w->scratch);
    int mw = w->S, mh = w->S;
    if (p->map_size == INSP_MAP_SIZE_IMAGE) {
        mw = img_w;
        mh = img_h;
    }
    long n = (long)mw * mh;
    out->map = malloc((size_t)n * sizeof(float));
    if (!out->map)
        return INSP_ERR_NOMEM;
    if (p->map_size == INSP_MAP_SIZE_IMAGE)
        insp_map_resize_bilinear(w->model, w->S, w->S, out->map, mw, mh);
    else
        memcpy(out->map, w->model, (size_t)n * sizeof(float));
    out->map_width = mw;
    out->map_height = mh;

    int st;
    if (p->map_format == INSP_MAP_PNG8) {
        uint8_t *px = malloc((size_t)n);
        if (!px)
            return INSP_ERR_NOMEM;
        insp_map_to_u8(out->map, n, px);
        st = insp_png_encode_gray8(px, mw, mh, &out->png, &out->png_len);
        free(px);
    } else {
        uint16_t *px = malloc((size_t)n * sizeof *px);
        if (!px)
            return INSP_ERR_NOMEM;
        insp_map_to_u16(out->map, n, px);
        st = insp_png_encode_gray16(px, mw, mh, &out->png, &out->png_len);
        free(px);
    }
    return st;
}

int insp_inspect_image(insp_worker *w, const insp_image *img, const float *t,
                       const insp_memory *mem, const insp_inspect_params *params,
                       insp_inspection *out, insp_error *err)
{
    insp_inspect_params defaults = insp_inspect_default_params();
    const insp_inspect_params *p = params ? params : &defaults;
    memset(out, 0, sizeof *out);
    double t0 = now_ms();
    int st = compute_features(w, img, &out->t, err);
    if (st != INSP_OK)
        return st;
    double t1 = now_ms();
    st = insp_winclip_score(w->wc, w->sws, w->pool, t, mem, &w->feat, w->grid, &out->score);
    if (st != INSP_OK)
        return insp_error_set(err, st, "scoring failed: %s", insp_strerror(st));
    double t2 = now_ms();
    out->t.score_ms = t2 - t1;
    out->image_width = img->width;
    out->image_height = img->height;
    if (p->map_format != INSP_MAP_NONE) {
        st = render_map(w, p, img->width, img->height, out);
        if (st != INSP_OK) {
            insp_inspection_free(out);
            return insp_error_set(err, st, "cannot render the map: %s", insp_strerror(st));
        }
    }
    double t3 = now_ms();
    out->t.map_ms = t3 - t2;
    out->t.total_ms = t3 - t0;
    return INSP_OK;
}

int insp_inspect_encoded(insp_worker *w, const void *data, size_t len, const float *t,
                         const insp_memory *mem, const insp_inspect_params *params,
                         insp_inspection *out, insp_error *err)
{
    insp_inspect_params defaults = insp_inspect_default_params();
    const insp_inspect_params *p = params ? params : &defaults;
    memset(out, 0, sizeof *out);
    double t0 = now_ms();
    insp_image img = {0};
    int st = decode(data, len, p->max_pixels, &img, err);
    if (st != INSP_OK)
        return st;
    double t1 = now_ms();
    st = insp_inspect_image(w, &img, t, mem, p, out, err);
    insp_image_free(&img);
    if (st == INSP_OK) {
        out->t.decode_ms = t1 - t0;
        out->t.total_ms += t1 - t0;
    }
    return st;
}

int insp_worker_reference(insp_worker *w, const void *data, size_t len, long max_pixels,
                          const insp_features **features, insp_error *err)
{
    *features = NULL;
    insp_image img = {0};
    int st = decode(data, len, max_pixels, &img, err);
    if (st != INSP_OK)
        return st;
    st = compute_features(w, &img, NULL, err);
    insp_image_free(&img);
    if (st == INSP_OK)
        *features = &w->feat;
    return st;
}
