/* inspect-bench: times the real inspection path (decode → map PNG) on a model of a named
 * architecture with random weights, counts its FLOPs, and sets them against the machine's
 * sgemm rate on the same GEMM shapes measured in the same run. Prints one JSON object. */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clip/workspace.h"
#include "inspectd/prompts.h"
#include "inspectd/tokenizer.h"
#include "tools/bench.h"

#define MAX_RUNS 1000
#define STAGES 7

static const char *const stage_names[STAGES] = {"decode", "preprocess", "image", "windows",
                                                "score",  "map",        "total"};

typedef struct options {
    const char *model;
    bool f16;
    int threads, workers, runs, warmup, shots, image_side;
    const char *image_path;
    insp_map_format map;
    const char *object, *write_model;
    bool text, throughput, sgemm, pin;
    uint64_t seed;
} options;

static void usage(FILE *f)
{
    fputs("usage: inspect-bench [options]\n"
          "\n"
          "Times one inspection stage by stage (zero-shot and K-shot) on a model with random\n"
          "weights, with the sgemm rate of the same GEMM shapes measured in the same run, and\n"
          "prints a JSON object. Run with OPENBLAS_NUM_THREADS=1 (the pool makes the threads).\n"
          "\n"
          "  --model M        ViT-B-16-plus-240 (default), ViT-B-16, ViT-L-14-336, an\n"
          "                   open_clip_config.json (random weights), or a model directory\n"
          "                   (its own weights)\n"
          "  --dtype f32|f16  dtype of the random weights file (default f32; compute is f32)\n"
          "  --threads N      compute threads per worker (default 2)\n"
          "  --runs N         timed runs after the warm-up (default 5)\n"
          "  --warmup N       untimed runs first (default 1)\n"
          "  --shots K        references of the few-shot mode (default 4; 0 skips it)\n"
          "  --image FILE     input JPEG/PNG (default: a synthetic photo, --image-side px)\n"
          "  --image-side N   side of the synthetic photo (default 1024)\n"
          "  --map none|png16|png8   map rendered per inspection (default png16)\n"
          "  --no-sgemm       skip the sgemm reference\n"
          "  --text           time the text tower instead: one product's prompt set as run\n"
          "                   (up to each batch's last EOT) against the same padded to 77\n"
          "  --object WORD    object word of that prompt set (default \"bottle\")\n"
          "  --throughput     run --workers workers of --threads threads concurrently instead\n"
          "  --workers N      workers of the --throughput section (default 1)\n"
          "  --pin            pin each worker's threads to CPUs of their own\n"
          "  --seed N         seed of the random weights and images\n"
          "  --write-model DIR  write the random-weight model (open_clip_config.json and\n"
          "                   weights) to DIR, a new directory, and exit: for timing the\n"
          "                   daemon or the CLI on it\n",
          f);
}

static int parse_int(const char *s, int lo, int hi, int *out, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "inspect-bench: %s takes %d..%d\n", what, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_DTYPE = 256, O_THREADS, O_RUNS, O_WARMUP, O_SHOTS, O_IMAGE, O_SIDE, O_MAP,
           O_NOSGEMM, O_TEXT, O_OBJECT, O_THROUGHPUT, O_WORKERS, O_PIN, O_SEED, O_WRITE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"dtype", required_argument, 0, O_DTYPE},
        {"threads", required_argument, 0, O_THREADS},
        {"runs", required_argument, 0, O_RUNS},
        {"warmup", required_argument, 0, O_WARMUP},
        {"shots", required_argument, 0, O_SHOTS},
        {"image", required_argument, 0, O_IMAGE},
        {"image-side", required_argument, 0, O_SIDE},
        {"map", required_argument, 0, O_MAP},
        {"no-sgemm", no_argument, 0, O_NOSGEMM},
        {"text", no_argument, 0, O_TEXT},
        {"object", required_argument, 0, O_OBJECT},
        {"throughput", no_argument, 0, O_THROUGHPUT},
        {"workers", required_argument, 0, O_WORKERS},
        {"pin", no_argument, 0, O_PIN},
        {"seed", required_argument, 0, O_SEED},
        {"write-model", required_argument, 0, O_WRITE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    *o = (options){.model = "ViT-B-16-plus-240", .threads = 2, .workers = 1, .runs = 5,
                   .warmup = 1, .shots = 4, .image_side = 1024, .map = INSP_MAP_PNG16,
                   .object = "bottle", .sgemm = true, .seed = 42};
    int ch, bad = 0, seed = 42;
    while ((ch = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case O_DTYPE:
            if (strcmp(optarg, "f32") == 0 || strcmp(optarg, "f16") == 0)
                o->f16 = optarg[1] == '1';
            else
                bad = fprintf(stderr, "inspect-bench: --dtype is f32 or f16\n");
            break;
        case O_THREADS: bad |= parse_int(optarg, 1, 256, &o->threads, "--threads"); break;
        case O_RUNS: bad |= parse_int(optarg, 1, MAX_RUNS, &o->runs, "--runs"); break;
        case O_WARMUP: bad |= parse_int(optarg, 0, 100, &o->warmup, "--warmup"); break;
        case O_SHOTS: bad |= parse_int(optarg, 0, 64, &o->shots, "--shots"); break;
        case O_IMAGE: o->image_path = optarg; break;
        case O_SIDE: bad |= parse_int(optarg, 16, 8192, &o->image_side, "--image-side"); break;
        case O_MAP:
            if (strcmp(optarg, "none") == 0)
                o->map = INSP_MAP_NONE;
            else if (strcmp(optarg, "png16") == 0)
                o->map = INSP_MAP_PNG16;
            else if (strcmp(optarg, "png8") == 0)
                o->map = INSP_MAP_PNG8;
            else
                bad = fprintf(stderr, "inspect-bench: --map is none, png16 or png8\n");
            break;
        case O_NOSGEMM: o->sgemm = false; break;
        case O_TEXT: o->text = true; break;
        case O_OBJECT: o->object = optarg; break;
        case O_THROUGHPUT: o->throughput = true; break;
        case O_WORKERS: bad |= parse_int(optarg, 1, 64, &o->workers, "--workers"); break;
        case O_PIN: o->pin = true; break;
        case O_SEED:
            bad |= parse_int(optarg, 0, 1 << 30, &seed, "--seed");
            o->seed = (uint64_t)seed;
            break;
        case O_WRITE: o->write_model = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: bad = 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "inspect-bench: unexpected argument %s\n", argv[optind]);
        bad = 1;
    }
    if (bad)
        usage(stderr);
    return bad ? -1 : 0;
}

/* ---- small JSON helpers ---- */

static json_t *stats_json(double *ms, int n, double flops)
{
    double med = bench_median(ms, n), p90 = bench_p90(ms, n); /* sorted: ms[0] is the best */
    json_t *o = json_pack("{s:f, s:f, s:f}", "median_ms", med, "p90_ms", p90, "min_ms", ms[0]);
    if (flops > 0) {
        json_object_set_new(o, "gflop", json_real(flops * 1e-9));
        json_object_set_new(o, "gflops", json_real(flops * 1e-9 / (med * 1e-3)));
    }
    return o;
}

static void cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        char *colon = strchr(line, ':');
        if (colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(buf, cap, "%s", colon);
        }
        break;
    }
    fclose(f);
}

static json_t *settings_json(const options *o, const insp_clip *clip, bool random_weights)
{
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    const char *image = o->image_path ? o->image_path : "synthetic";
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:i, s:s, s:i, s:i, s:i, s:s, s:b, "
                     "s:s, s:i}",
                     "model", o->model, "weights", random_weights ? "random" : "file",
                     "weights_dtype", insp_clip_file_dtype(clip), "compute_dtype", "float32",
                     "threads", o->threads, "workers", o->workers, "blas_core",
                     openblas_get_corename(), "blas_threads", openblas_get_num_threads(),
                     "blas_config", openblas_get_config(), "runs", o->runs, "warmup", o->warmup,
                     "shots", o->shots, "image", image, "pin", o->pin, "cpu", cpu, "cpus_online",
                     (int)sysconf(_SC_NPROCESSORS_ONLN));
}

static json_t *model_json(const insp_clip *clip, double load_ms)
{
    const insp_clip_config *c = insp_clip_get_config(clip);
    return json_pack("{s:i, s:b, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i}, "
                     "s:f, s:s}",
                     "embed_dim", c->embed_dim, "quick_gelu", c->quick_gelu, "vision",
                     "image_size", c->vision.image_size, "patch_size", c->vision.patch_size,
                     "width", c->vision.width, "layers", c->vision.layers, "heads",
                     c->vision.heads, "mlp_width", c->vision.mlp_width, "text", "width",
                     c->text.width, "layers", c->text.layers, "heads", c->text.heads,
                     "context_length", c->text.context_length, "load_ms", load_ms, "checksum",
                     insp_clip_checksum(clip));
}

/* ---- the stage section ---- */

typedef struct mode_times {
    double ms[STAGES][MAX_RUNS];
    double faults[MAX_RUNS]; /* minor page faults of the whole process during the inspection */
} mode_times;

static long minor_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

static int inspect_once(insp_worker *w, const bench_ctx *ctx, const insp_memory *mem,
                        mode_times *mt, int run, insp_error *err)
{
    insp_inspection r;
    long faults = minor_faults();
    int st = insp_inspect_encoded(w, ctx->image, ctx->image_len, ctx->t, mem, &ctx->params, &r,
                                  err);
    if (st != INSP_OK)
        return st;
    if (mt && run >= 0) {
        mt->faults[run] = (double)(minor_faults() - faults);
        const insp_timings *t = &r.t;
        const double v[STAGES] = {t->decode_ms, t->preprocess_ms, t->image_ms, t->windows_ms,
                                  t->score_ms,  t->map_ms,        t->total_ms};
        for (int s = 0; s < STAGES; s++)
            mt->ms[s][run] = v[s];
    }
    insp_inspection_free(&r);
    return INSP_OK;
}

static json_t *mode_json(mode_times *mt, int runs, const bench_flops *fl, bool few)
{
    const double flops[STAGES] = {0,
                                  0,
                                  fl->image_dense + fl->image_attn,
                                  fl->windows_dense + fl->windows_attn,
                                  few ? fl->score_few : fl->score_zero,
                                  0,
                                  0};
    double total = flops[2] + flops[3] + flops[4];
    json_t *o = json_object();
    for (int s = 0; s < STAGES; s++)
        json_object_set_new(o, stage_names[s],
                            stats_json(mt->ms[s], runs, s == STAGES - 1 ? total : flops[s]));
    json_object_set_new(o, "minor_page_faults_median", json_real(bench_median(mt->faults, runs)));
    return o;
}

/* Per-run efficiency: that run's end-to-end FLOP rate over the better of that round's two
 * sgemm rates; the median of these ratios holds up while others load the machine evenly.
 * *best: the same from the fastest run of each (the least disturbed), which holds up when the
 * load comes and goes within a round. */
static double efficiency(const double *total_ms, const double *pool_s, const double *blas_s,
                         int runs, double flops, double ref_flops, double *best)
{
    double ratio[MAX_RUNS], best_ms = INFINITY, best_s = INFINITY;
    for (int i = 0; i < runs; i++) {
        double e2e = flops / (total_ms[i] * 1e-3);
        double ref = fmax(ref_flops / pool_s[i], ref_flops / blas_s[i]);
        ratio[i] = e2e / ref;
        best_ms = fmin(best_ms, total_ms[i]);
        best_s = fmin(best_s, fmin(pool_s[i], blas_s[i]));
    }
    *best = (flops / (best_ms * 1e-3)) / (ref_flops / best_s);
    return bench_median(ratio, runs);
}

static json_t *run_stages(const options *o, const bench_ctx *ctx, insp_worker *w,
                          insp_error *err)
{
    static mode_times zero, few;
    double pool_s[MAX_RUNS], blas_s[MAX_RUNS], ref_flops = 0, tmp_flops;
    const insp_memory *mem = ctx->mem && insp_memory_count(ctx->mem) > 0 ? ctx->mem : NULL;
    for (int i = 0; i < o->warmup; i++)
        if (inspect_once(w, ctx, NULL, NULL, -1, err) != INSP_OK ||
            (mem && inspect_once(w, ctx, mem, NULL, -1, err) != INSP_OK))
            return NULL;
    long rss_warm = bench_peak_rss();
    // Interleaved rounds: zero-shot and few-shot (in alternating order, so that neither is
    // always the one run right after the pause), then both sgemm replays, so that whatever
    // else loads the machine weighs on all of them alike.
    for (int i = 0; i < o->runs; i++) {
        for (int k = 0; k < 2; k++) {
            bool few_now = (k == 1) != (i % 2 == 1);
            if (few_now && !mem)
                continue;
            if (inspect_once(w, ctx, few_now ? mem : NULL, few_now ? &few : &zero, i, err) !=
                INSP_OK)
                return NULL;
        }
        if (o->sgemm) {
            // The same order each round: the pool replay first, OpenBLAS's threads second
            // and then a pause, so that they have stopped spinning when the next round starts.
            pool_s[i] = bench_gemm_replay(ctx->wc, w, false, &ref_flops);
            blas_s[i] = bench_gemm_replay(ctx->wc, w, true, &tmp_flops);
            usleep(200000);
        }
    }

    bench_flops fl;
    bench_count_flops(ctx->wc, mem ? insp_memory_count(mem) : 0, &fl);
    double zero_flops = fl.image_dense + fl.image_attn + fl.windows_dense + fl.windows_attn;
    double few_flops = zero_flops + fl.score_few;
    zero_flops += fl.score_zero;
    // Paired figures first: the per-stage statistics below sort the time arrays in place.
    double added[MAX_RUNS], eff_zero = 0, eff_few = 0, best_zero = 0, best_few = 0;
    const double *zt = zero.ms[STAGES - 1], *ft = few.ms[STAGES - 1];
    double best_z = INFINITY, best_f = INFINITY;
    for (int i = 0; mem && i < o->runs; i++) {
        added[i] = ft[i] / zt[i] - 1.0;
        best_z = fmin(best_z, zt[i]);
        best_f = fmin(best_f, ft[i]);
    }
    if (o->sgemm) {
        eff_zero = efficiency(zt, pool_s, blas_s, o->runs, zero_flops, ref_flops, &best_zero);
        if (mem)
            eff_few = efficiency(ft, pool_s, blas_s, o->runs, few_flops, ref_flops, &best_few);
    }

    json_t *out = json_object();
    json_object_set_new(out, "zero_shot", mode_json(&zero, o->runs, &fl, false));
    if (mem) {
        json_object_set_new(out, "few_shot", mode_json(&few, o->runs, &fl, true));
        json_object_set_new(out, "few_shot_added", json_real(bench_median(added, o->runs)));
        json_object_set_new(out, "few_shot_added_best_runs", json_real(best_f / best_z - 1.0));
    }
    json_object_set_new(
        out, "counted",
        json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "image_dense_gflop", fl.image_dense * 1e-9,
                  "image_attention_gflop", fl.image_attn * 1e-9, "windows_dense_gflop",
                  fl.windows_dense * 1e-9, "windows_attention_gflop", fl.windows_attn * 1e-9,
                  "zero_shot_gflop", zero_flops * 1e-9, "few_shot_gflop", few_flops * 1e-9));
    if (o->sgemm) {
        double pool_ms[MAX_RUNS], blas_ms[MAX_RUNS];
        for (int i = 0; i < o->runs; i++) {
            pool_ms[i] = pool_s[i] * 1e3;
            blas_ms[i] = blas_s[i] * 1e3;
        }
        json_t *sg = json_object();
        json_object_set_new(sg, "pool_split", stats_json(pool_ms, o->runs, ref_flops));
        json_object_set_new(sg, "blas_threads", stats_json(blas_ms, o->runs, ref_flops));
        json_object_set_new(out, "sgemm", sg);
        json_t *eff = json_pack("{s:f, s:f}", "zero_shot", eff_zero, "zero_shot_best_runs",
                                best_zero);
        if (mem) {
            json_object_set_new(eff, "few_shot", json_real(eff_few));
            json_object_set_new(eff, "few_shot_best_runs", json_real(best_few));
        }
        json_object_set_new(out, "efficiency", eff);
    }
    json_object_set_new(out, "peak_rss_after_warmup_bytes", json_integer(rss_warm));
    return out;
}

/* ---- the text section ---- */

static json_t *run_text(const options *o, const insp_winclip *wc, const insp_tokenizer *tok,
                        insp_worker *w, insp_error *err)
{
    insp_prompt_spec spec = {.object = o->object};
    insp_prompts prompts = {0};
    if (insp_prompts_build(&spec, &prompts, err) != INSP_OK)
        return NULL;
    const insp_clip_config *c = insp_clip_get_config(insp_winclip_clip(wc));
    const int n = prompts.n_normal + prompts.n_anomalous, ctx = c->text.context_length;
    int *own = malloc((size_t)n * sizeof *own), *pad = malloc((size_t)n * sizeof *pad);
    int32_t *ids = malloc((size_t)ctx * sizeof *ids);
    float *t = malloc(2 * (size_t)c->embed_dim * sizeof *t);
    json_t *out = NULL;
    if (!own || !pad || !ids || !t) {
        insp_error_set(err, INSP_ERR_NOMEM, "bench: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const char *p = i < prompts.n_normal ? prompts.normal[i]
                                             : prompts.anomalous[i - prompts.n_normal];
        int len = insp_tokenizer_encode(tok, p, ids, ctx, err);
        if (len < 0)
            goto done;
        own[i] = len; /* SOT … EOT: the positions up to this prompt's own EOT */
        pad[i] = ctx;
    }
    insp_clip_ws *ws = insp_worker_clip_ws(w);
    insp_pool *pool = insp_worker_pool(w);
    double short_ms[MAX_RUNS], full_ms[MAX_RUNS], ratio[MAX_RUNS];
    for (int i = -o->warmup; i < o->runs; i++) {
        for (int full = 0; full < 2; full++) {
            ws->text_full_length = full;
            double t0 = bench_now_s();
            if (insp_winclip_text(wc, tok, ws, pool, &prompts, t, err) != INSP_OK)
                goto done;
            if (i >= 0)
                (full ? full_ms : short_ms)[i] = (bench_now_s() - t0) * 1e3;
        }
        if (i >= 0)
            ratio[i] = short_ms[i] / full_ms[i];
    }
    ws->text_full_length = false;
    double lens[1024];
    int m = n < 1024 ? n : 1024;
    for (int i = 0; i < m; i++)
        lens[i] = own[i];
    double len_median = bench_median(lens, m), len_max = lens[m - 1];
    double own_flops = bench_text_flops(c, n, own), pad_flops = bench_text_flops(c, n, pad);
    out = json_object();
    json_object_set_new(out, "prompts", json_integer(n));
    json_object_set_new(out, "tokens", json_pack("{s:f, s:f, s:i}", "median", len_median, "max",
                                                 len_max, "padded", ctx));
    json_object_set_new(out, "as_run", stats_json(short_ms, o->runs, own_flops));
    json_object_set_new(out, "padded_77", stats_json(full_ms, o->runs, pad_flops));
    json_object_set_new(out, "ratio", json_real(bench_median(ratio, o->runs)));
    json_object_set_new(out, "note",
                        json_string("as_run gflop counts each prompt at its own length (the "
                                    "least work possible), padded_77 every prompt at 77"));
done:
    free(own);
    free(pad);
    free(ids);
    free(t);
    insp_prompts_free(&prompts);
    return out;
}

/* ---- setup ---- */

static int read_file(const char *path, uint8_t **data, size_t *len, insp_error *err)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return insp_error_set(err, INSP_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    if (sz <= 0 || sz > (256L << 20) || !(*data = malloc((size_t)sz)) ||
        fread(*data, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(*data);
        *data = NULL;
        return insp_error_set(err, INSP_ERR_IO, "%s: cannot read", path);
    }
    fclose(f);
    *len = (size_t)sz;
    return INSP_OK;
}

/* The model directory to load: a given one as it is, else random weights written to a
 * temporary one (*tmp set). */
static int resolve_model(const options *o, char *dir, size_t cap, bool *tmp, insp_error *err)
{
    struct stat sb;
    insp_clip_config cfg;
    *tmp = false;
    if (bench_arch_builtin(o->model, &cfg) != INSP_OK) {
        if (stat(o->model, &sb) != 0)
            return insp_error_set(err, INSP_ERR_NOT_FOUND,
                                  "--model %s: not a built-in architecture (ViT-B-16-plus-240, "
                                  "ViT-B-16, ViT-L-14-336), a file or a directory",
                                  o->model);
        if (S_ISDIR(sb.st_mode)) {
            snprintf(dir, cap, "%s", o->model);
            return INSP_OK;
        }
        int rc = bench_arch_from_config(o->model, &cfg, err);
        if (rc != INSP_OK)
            return rc;
    }
    int rc = bench_model_write(&cfg, o->f16, o->seed, o->write_model, dir, cap, err);
    if (rc == INSP_OK)
        *tmp = !o->write_model;
    return rc;
}

static int build_memory(const options *o, const insp_winclip *wc, insp_worker *w,
                        insp_memory **mem, double *ref_ms, insp_error *err)
{
    *ref_ms = 0;
    if (o->shots == 0 || o->text)
        return INSP_OK;
    int rc = insp_memory_create(wc, mem);
    if (rc != INSP_OK)
        return insp_error_set(err, rc, "bench: cannot create the memory");
    double ms[64];
    for (int i = 0; i < o->shots && rc == INSP_OK; i++) {
        uint8_t *jpeg = NULL;
        size_t len = 0;
        const insp_features *f = NULL;
        rc = bench_synthetic_jpeg(o->image_side, o->image_side, o->seed + 1000 + (uint64_t)i,
                                  &jpeg, &len);
        if (rc != INSP_OK) {
            insp_error_set(err, rc, "bench: cannot make a reference image");
            break;
        }
        double t0 = bench_now_s();
        rc = insp_worker_reference(w, jpeg, len, 0, &f, err);
        if (rc == INSP_OK)
            rc = insp_memory_add(*mem, f);
        ms[i] = (bench_now_s() - t0) * 1e3;
        free(jpeg);
    }
    if (rc == INSP_OK)
        *ref_ms = bench_median(ms, o->shots);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    insp_error err = {0};
    char dir[4096];
    bool tmp_dir = false;
    insp_clip *clip = NULL;
    insp_tokenizer *tok = NULL;
    insp_winclip *wc = NULL;
    insp_worker *w = NULL;
    insp_memory *mem = NULL;
    uint8_t *image = NULL;
    size_t image_len = 0;
    float *t = NULL;
    json_t *root = NULL, *section = NULL;
    int rc = resolve_model(&o, dir, sizeof dir, &tmp_dir, &err);
    if (rc != INSP_OK)
        goto fail;
    if (o.write_model) {
        printf("%s\n", dir);
        return 0;
    }
    double t0 = bench_now_s();
    rc = insp_clip_load(dir, &clip, &err);
    double load_ms = (bench_now_s() - t0) * 1e3;
    if (tmp_dir) /* loaded: the random files have served their purpose */
        bench_model_remove(dir);
    if (rc != INSP_OK)
        goto fail;

    char path[4096];
    if (insp_tokenizer_find(tmp_dir ? NULL : dir, path, sizeof path, &err) == INSP_OK)
        rc = insp_tokenizer_load(path, &tok, &err);
    else if (o.text)
        rc = err.status;
    if (rc != INSP_OK)
        goto fail;
    rc = insp_winclip_create(clip, NULL, 0, &wc, &err);
    if (rc == INSP_OK)
        rc = insp_worker_create(wc, o.threads, &w, &err);
    if (rc != INSP_OK)
        goto fail;

    root = json_object();
    json_object_set_new(root, "settings", settings_json(&o, clip, tmp_dir));
    json_object_set_new(root, "model", model_json(clip, load_ms));
    if (o.text) {
        section = run_text(&o, wc, tok, w, &err);
        if (!section)
            goto fail;
        json_object_set_new(root, "text", section);
    } else {
        const int D = insp_clip_get_config(clip)->embed_dim;
        t = malloc(2 * (size_t)D * sizeof *t);
        if (!t) {
            rc = insp_error_set(&err, INSP_ERR_NOMEM, "bench: out of memory");
            goto fail;
        }
        double text_ms = 0;
        if (tok) { /* the product's real prompt set; without a vocabulary, any two vectors */
            insp_prompt_spec spec = {.object = o.object};
            insp_prompts prompts = {0};
            double s0 = bench_now_s();
            rc = insp_prompts_build(&spec, &prompts, &err);
            if (rc == INSP_OK)
                rc = insp_winclip_text(wc, tok, insp_worker_clip_ws(w), insp_worker_pool(w),
                                       &prompts, t, &err);
            text_ms = (bench_now_s() - s0) * 1e3;
            insp_prompts_free(&prompts);
            if (rc != INSP_OK)
                goto fail;
        } else {
            for (int d = 0; d < 2 * D; d++)
                t[d] = (float)((d * 7919 % 101) - 50) / 50.0f;
        }
        if (o.image_path)
            rc = read_file(o.image_path, &image, &image_len, &err);
        else if ((rc = bench_synthetic_jpeg(o.image_side, o.image_side, o.seed, &image,
                                            &image_len)) != INSP_OK)
            insp_error_set(&err, rc, "bench: cannot make the input image");
        double ref_ms = 0;
        if (rc == INSP_OK)
            rc = build_memory(&o, wc, w, &mem, &ref_ms, &err);
        if (rc != INSP_OK)
            goto fail;
        bench_ctx ctx = {.wc = wc, .t = t, .mem = mem, .image = image, .image_len = image_len,
                         .params = insp_inspect_default_params(), .threads = o.threads,
                         .workers = o.workers, .runs = o.runs, .warmup = o.warmup, .pin = o.pin};
        ctx.params.map_format = o.map;
        json_object_set_new(root, "setup", json_pack("{s:f, s:f, s:i}", "text_ms", text_ms,
                                                     "reference_median_ms", ref_ms,
                                                     "input_bytes", (int)image_len));
        if (o.throughput) {
            insp_worker_free(w); /* each worker of the section makes its own */
            w = NULL;
            section = bench_workers(&ctx, &err);
        } else {
            section = run_stages(&o, &ctx, w, &err);
        }
        if (!section)
            goto fail;
        json_object_update(root, section);
        json_decref(section);
    }
    json_object_set_new(
        root, "memory",
        json_pack("{s:I, s:f, s:I}", "peak_rss_bytes", (json_int_t)bench_peak_rss(),
                  "peak_rss_mib", bench_peak_rss() / 1048576.0, "workspace_bytes",
                  (json_int_t)(w ? insp_clip_ws_bytes(insp_worker_clip_ws(w)) : 0)));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s)
        printf("%s\n", s);
    free(s);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "inspect-bench: %s\n", err.msg[0] ? err.msg : insp_strerror(rc));
    rc = 1;
done:
    json_decref(root);
    free(t);
    free(image);
    insp_memory_free(mem);
    insp_worker_free(w);
    insp_winclip_free(wc);
    insp_tokenizer_free(tok);
    insp_clip_free(clip);
    return rc;
}
