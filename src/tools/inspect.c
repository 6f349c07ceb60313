/* inspect: the command-line inspector — try a model on image files before running the daemon,
 * and see how a prompt is tokenized. Prints one JSON object per line per image. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inspectd/clip.h"
#include "inspectd/image.h"
#include "inspectd/inspector.h"
#include "inspectd/prompts.h"
#include "inspectd/tokenizer.h"
#include "inspectd/winclip.h"

#define MAX_LIST 64

typedef struct strvec {
    const char *items[MAX_LIST];
    int n;
} strvec;

typedef struct cli {
    const char *model_dir;
    const char *object;
    strvec normal_states, anomaly_states, templates, normal_sentences, anomaly_sentences, refs;
    const char *map_dir;
    insp_map_size map_size;
    float sigma;
    int threads;
    int tokenize;
} cli;

static void usage(FILE *f)
{
    fputs("usage: inspect --model DIR --object WORD [options] IMG...\n"
          "       inspect [--model DIR] --tokenize TEXT...\n"
          "\n"
          "Scores each image (JPEG or PNG) with WinCLIP, or WinCLIP+ when --ref shots are given,\n"
          "and prints one JSON object per line: image, score, mode, zero_shot_score, timing_ms.\n"
          "\n"
          "  --model DIR            model directory: open_clip_config.json + *.safetensors\n"
          "  --object WORD          what the part is (\"printed circuit board\")\n"
          "  --normal-state S       extra normal state, \"{}\" marks the object (repeatable)\n"
          "  --anomaly-state S      extra anomalous state (repeatable)\n"
          "  --template T           extra template, \"{}\" marks the state phrase (repeatable)\n"
          "  --normal-sentence S    a whole extra normal prompt (repeatable)\n"
          "  --anomaly-sentence S   a whole extra anomalous prompt (repeatable)\n"
          "  --ref IMG              a normal reference shot (repeatable, up to 64)\n"
          "  --map-dir OUT          write each map as a 16-bit PNG named after the image\n"
          "  --map-size image|model map at the image's size (default) or the model's S×S\n"
          "  --smooth SIGMA         Gaussian smoothing of the map, σ in pixels at model size\n"
          "  --threads N            compute threads (default 2)\n"
          "  --tokenize             print each TEXT's token ids as a JSON array\n",
          f);
}

static int push(strvec *v, const char *s, const char *what)
{
    if (v->n == MAX_LIST) {
        fprintf(stderr, "inspect: too many %s (at most %d)\n", what, MAX_LIST);
        return -1;
    }
    v->items[v->n++] = s;
    return 0;
}

static insp_strlist list(const strvec *v)
{
    insp_strlist l = {v->items, v->n};
    return l;
}

static void print_error_json(const char *image, const insp_error *e)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "image", image, "error", e->msg, "code",
                          insp_strerror(e->status));
    char *s = json_dumps(o, JSON_COMPACT);
    fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(o);
}

static int run_tokenize(const cli *c, int n, char **texts)
{
    char path[4096];
    insp_error e = {0};
    insp_tokenizer *tok = NULL;
    if (insp_tokenizer_find(c->model_dir, path, sizeof path, &e) != INSP_OK ||
        insp_tokenizer_load(path, &tok, &e) != INSP_OK) {
        fprintf(stderr, "inspect: %s\n", e.msg);
        return 2;
    }
    int rc = 0;
    int32_t ids[77];
    for (int i = 0; i < n; i++) {
        int len = insp_tokenizer_encode(tok, texts[i], ids, 77, &e);
        if (len < 0) {
            fprintf(stderr, "inspect: text %d: %s\n", i + 1, e.msg);
            rc = 1;
            continue;
        }
        json_t *arr = json_array();
        for (int j = 0; j < len; j++)
            json_array_append_new(arr, json_integer(ids[j]));
        char *s = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(arr);
    }
    insp_tokenizer_free(tok);
    return rc;
}

static int write_map(const char *dir, const char *image, const insp_inspection *r, char *out,
                     size_t out_size, insp_error *e)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", image);
    char *base = basename(copy);
    char *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = '\0';
    snprintf(out, out_size, "%s/%s.png", dir, base);
    FILE *f = fopen(out, "wb");
    if (!f)
        return insp_error_set(e, INSP_ERR_IO, "cannot write %s: %s", out, strerror(errno));
    int ok = fwrite(r->png, 1, r->png_len, f) == r->png_len;
    ok &= fclose(f) == 0;
    return ok ? INSP_OK : insp_error_set(e, INSP_ERR_IO, "cannot write %s: %s", out, strerror(errno));
}

static json_t *timings_json(const insp_timings *t)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "decode", t->decode_ms, "preprocess",
                     t->preprocess_ms, "image", t->image_ms, "windows", t->windows_ms, "score",
                     t->score_ms, "map", t->map_ms, "total", t->total_ms);
}

/* Loads everything, builds the reference memory and scores each image; 0 when all succeeded. */
static int run_inspect(const cli *c, int n_images, char **images)
{
    insp_error e = {0};
    insp_clip *clip = NULL;
    insp_tokenizer *tok = NULL;
    insp_winclip *wc = NULL;
    insp_worker *w = NULL;
    insp_memory *mem = NULL;
    insp_prompts prompts = {0};
    float *t = NULL;
    int rc = 2;
    char path[4096];

    insp_prompt_spec spec = {
        .object = c->object,
        .normal_states = list(&c->normal_states),
        .anomaly_states = list(&c->anomaly_states),
        .templates = list(&c->templates),
        .normal_sentences = list(&c->normal_sentences),
        .anomaly_sentences = list(&c->anomaly_sentences),
    };
    if (insp_prompts_build(&spec, &prompts, &e) != INSP_OK)
        goto fail;
    if (insp_clip_load(c->model_dir, &clip, &e) != INSP_OK)
        goto fail;
    if (insp_tokenizer_find(c->model_dir, path, sizeof path, &e) != INSP_OK ||
        insp_tokenizer_load(path, &tok, &e) != INSP_OK)
        goto fail;
    if (insp_winclip_create(clip, NULL, 0, &wc, &e) != INSP_OK ||
        insp_worker_create(wc, c->threads, &w, &e) != INSP_OK)
        goto fail;
    int D = insp_clip_get_config(clip)->embed_dim;
    t = malloc(2 * (size_t)D * sizeof *t);
    if (!t) {
        insp_error_set(&e, INSP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (insp_winclip_text(wc, tok, insp_worker_clip_ws(w), insp_worker_pool(w), &prompts, t, &e) !=
        INSP_OK)
        goto fail;
    if (c->refs.n > 0) {
        if (insp_memory_create(wc, &mem) != INSP_OK) {
            insp_error_set(&e, INSP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < c->refs.n; i++) {
            size_t len = 0;
            void *data = NULL;
            FILE *f = fopen(c->refs.items[i], "rb");
            if (f) {
                fseek(f, 0, SEEK_END);
                long sz = ftell(f);
                rewind(f);
                data = sz > 0 ? malloc((size_t)sz) : NULL;
                if (data && fread(data, 1, (size_t)sz, f) == (size_t)sz)
                    len = (size_t)sz;
                fclose(f);
            }
            if (!len) {
                free(data);
                insp_error_set(&e, INSP_ERR_IO, "reference %s: cannot read the file",
                               c->refs.items[i]);
                goto fail;
            }
            const insp_features *feat = NULL;
            int st = insp_worker_reference(w, data, len, 0, &feat, &e);
            free(data);
            if (st == INSP_OK)
                st = insp_memory_add(mem, feat);
            if (st != INSP_OK) {
                insp_error_prefix(&e, "reference %s: ", c->refs.items[i]);
                goto fail;
            }
        }
    }

    if (c->map_dir && mkdir(c->map_dir, 0777) != 0 && errno != EEXIST) {
        insp_error_set(&e, INSP_ERR_IO, "cannot create --map-dir %s: %s", c->map_dir,
                       strerror(errno));
        goto fail;
    }
    insp_inspect_params params = insp_inspect_default_params();
    params.map_format = c->map_dir ? INSP_MAP_PNG16 : INSP_MAP_NONE;
    params.map_size = c->map_size;
    params.smooth_sigma = c->sigma;
    rc = 0;
    for (int i = 0; i < n_images; i++) {
        insp_image img = {0};
        insp_inspection r = {0};
        insp_error ie = {0};
        if (insp_image_load(images[i], params.max_pixels, &img, &ie) != INSP_OK ||
            insp_inspect_image(w, &img, t, mem, &params, &r, &ie) != INSP_OK) {
            insp_image_free(&img);
            print_error_json(images[i], &ie);
            rc = 1;
            continue;
        }
        insp_image_free(&img);
        json_t *o = json_pack("{s:s, s:f, s:s, s:f}", "image", images[i], "score",
                              (double)r.score.score, "mode",
                              r.score.few_shot ? "few-shot" : "zero-shot", "zero_shot_score",
                              (double)r.score.zero_shot);
        if (c->map_dir) {
            char out[4096];
            if (write_map(c->map_dir, images[i], &r, out, sizeof out, &ie) != INSP_OK) {
                print_error_json(images[i], &ie);
                rc = 1;
            } else {
                json_object_set_new(o, "map", json_string(out));
            }
        }
        json_object_set_new(o, "timing_ms", timings_json(&r.t));
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
        printf("%s\n", s);
        fflush(stdout);
        free(s);
        json_decref(o);
        insp_inspection_free(&r);
    }
    goto done;
fail:
    fprintf(stderr, "inspect: %s\n", e.msg);
done:
    free(t);
    insp_memory_free(mem);
    insp_worker_free(w);
    insp_winclip_free(wc);
    insp_tokenizer_free(tok);
    insp_clip_free(clip);
    insp_prompts_free(&prompts);
    return rc;
}

int main(int argc, char **argv)
{
    enum { O_NS = 256, O_AS, O_TPL, O_NSENT, O_ASENT, O_MAPSIZE, O_SMOOTH, O_THREADS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"object", required_argument, 0, 'o'},
        {"normal-state", required_argument, 0, O_NS},
        {"anomaly-state", required_argument, 0, O_AS},
        {"template", required_argument, 0, O_TPL},
        {"normal-sentence", required_argument, 0, O_NSENT},
        {"anomaly-sentence", required_argument, 0, O_ASENT},
        {"ref", required_argument, 0, 'r'},
        {"map-dir", required_argument, 0, 'd'},
        {"map-size", required_argument, 0, O_MAPSIZE},
        {"smooth", required_argument, 0, O_SMOOTH},
        {"threads", required_argument, 0, O_THREADS},
        {"tokenize", no_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    cli c = {.threads = 2, .map_size = INSP_MAP_SIZE_IMAGE};
    int ch, bad = 0;
    while ((ch = getopt_long(argc, argv, "m:o:r:d:th", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': c.model_dir = optarg; break;
        case 'o': c.object = optarg; break;
        case O_NS: bad |= push(&c.normal_states, optarg, "normal states"); break;
        case O_AS: bad |= push(&c.anomaly_states, optarg, "anomaly states"); break;
        case O_TPL: bad |= push(&c.templates, optarg, "templates"); break;
        case O_NSENT: bad |= push(&c.normal_sentences, optarg, "normal sentences"); break;
        case O_ASENT: bad |= push(&c.anomaly_sentences, optarg, "anomaly sentences"); break;
        case 'r': bad |= push(&c.refs, optarg, "references"); break;
        case 'd': c.map_dir = optarg; break;
        case O_MAPSIZE:
            if (strcmp(optarg, "image") == 0)
                c.map_size = INSP_MAP_SIZE_IMAGE;
            else if (strcmp(optarg, "model") == 0)
                c.map_size = INSP_MAP_SIZE_MODEL;
            else {
                fprintf(stderr, "inspect: --map-size must be image or model\n");
                bad = 1;
            }
            break;
        case O_SMOOTH: {
            char *end;
            c.sigma = strtof(optarg, &end);
            if (*end || !(c.sigma >= 0 && c.sigma <= 100)) {
                fprintf(stderr, "inspect: --smooth takes a σ in 0..100\n");
                bad = 1;
            }
            break;
        }
        case O_THREADS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "inspect: --threads takes 1..256\n");
                bad = 1;
            }
            c.threads = (int)v;
            break;
        }
        case 't': c.tokenize = 1; break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad) {
        usage(stderr);
        return 2;
    }
    if (c.tokenize) {
        if (optind >= argc) {
            fprintf(stderr, "inspect: --tokenize needs at least one TEXT\n");
            return 2;
        }
        return run_tokenize(&c, argc - optind, argv + optind);
    }
    if (!c.model_dir || !c.object || optind >= argc) {
        fprintf(stderr, "inspect: --model, --object and at least one image are required\n");
        usage(stderr);
        return 2;
    }
    return run_inspect(&c, argc - optind, argv + optind);
}
