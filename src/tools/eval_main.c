/* inspect-eval: runs WinCLIP / WinCLIP+ over MVTec AD, VisA or a plant's own folders and
 * reports the paper's metrics, so that anyone can check inspectd's numbers against the
 * published ones with their own weights. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/eval.h"

#define MAX_LIST 256

static void usage(FILE *f)
{
    fputs(
        "usage: inspect-eval --model DIR --dataset mvtec|visa|folder --root PATH --out DIR\n"
        "                    [--category C]... [--shots K] [--seeds N] [--save-maps] [options]\n"
        "       inspect-eval --metrics-only FILE.csv\n"
        "\n"
        "Scores every test image of each category with WinCLIP (zero-shot) or WinCLIP+ (K\n"
        "normal shots drawn from the training images, one draw per seed) and writes to OUT:\n"
        "metrics.json, metrics.md, scores.csv (path,label,score), run.json, report.html and,\n"
        "with --save-maps, maps/CATEGORY/DEFECT/NAME.png (16-bit, at the image's size).\n"
        "\n"
        "  --model DIR          model directory: open_clip_config.json + *.safetensors\n"
        "  --dataset LAYOUT     mvtec: CAT/train/good, CAT/test/DEFECT, CAT/ground_truth/DEFECT\n"
        "                       visa:  ROOT/split_csv/1cls.csv (object,split,label,image,mask)\n"
        "                       folder: [CAT/]good, [CAT/]bad, optional [CAT/]masks/NAME.png\n"
        "                               and [CAT/]train/ (normal images for --shots)\n"
        "  --root PATH          the dataset's top folder\n"
        "  --out DIR            where the results go (created)\n"
        "  --category C         evaluate only these categories (repeatable; default all)\n"
        "  --object [CAT=]WORD  the prompts' object word (default: the category name with _ as\n"
        "                       space); without CAT= it applies to every category\n"
        "  --shots K            normal reference shots per category (default 0: zero-shot)\n"
        "  --seeds N            independent draws of the shots, reported as mean ± std\n"
        "                       (default 1; the paper uses 5)\n"
        "  --smooth SIGMA       Gaussian smoothing of the maps, σ in pixels at the model's\n"
        "                       input size (default 4; 0 = off)\n"
        "  --pixel-size N|image pixel metrics on N×N maps and masks (masks resampled nearest),\n"
        "                       or at each image's own size (default: the model's input size)\n"
        "  --no-pixel           image metrics only (faster, less memory)\n"
        "  --save-maps          write every test image's map (first seed)\n"
        "  --split-csv FILE     VisA split file (default ROOT/split_csv/1cls.csv)\n"
        "  --examples N         report overlays per kind and category (default 4)\n"
        "  --threads N          compute threads (default: all online CPUs)\n"
        "  --quiet              no progress on stderr\n"
        "  --metrics-only FILE  compute metrics from a CSV and print them as JSON: columns\n"
        "                       label,score (image metrics; scores.csv works) or map,mask\n"
        "                       (16-bit map PNGs and masks; pixel AUROC, AUPRO, F1-max)\n",
        f);
}

static int parse_int(const char *opt, const char *arg, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v < lo || v > hi) {
        fprintf(stderr, "inspect-eval: %s takes an integer in %d..%d\n", opt, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* "metal_nut" → "metal nut". */
static char *default_object(const char *name)
{
    char *s = strdup(name);
    for (char *p = s; p && *p; p++)
        if (*p == '_')
            *p = ' ';
    return s;
}

static int assign_objects(eval_dataset *d, const char *const *objects, int n_objects)
{
    const char *all = NULL;
    for (int i = 0; i < n_objects; i++) {
        const char *eq = strchr(objects[i], '=');
        if (!eq) {
            if (all) {
                fprintf(stderr, "inspect-eval: --object WORD given twice (use CAT=WORD)\n");
                return -1;
            }
            all = objects[i];
            continue;
        }
        bool found = false;
        for (int c = 0; c < d->n; c++)
            found |= strlen(d->cats[c].name) == (size_t)(eq - objects[i]) &&
                     !strncmp(d->cats[c].name, objects[i], (size_t)(eq - objects[i]));
        if (!found) {
            fprintf(stderr, "inspect-eval: --object %s: no such category in the dataset\n",
                    objects[i]);
            return -1;
        }
    }
    for (int c = 0; c < d->n; c++) {
        eval_category *cat = &d->cats[c];
        const char *word = all;
        size_t len = strlen(cat->name);
        for (int i = 0; i < n_objects; i++)
            if (!strncmp(objects[i], cat->name, len) && objects[i][len] == '=')
                word = objects[i] + len + 1;
        free(cat->object);
        cat->object = word ? strdup(word) : default_object(cat->name);
        if (!cat->object) {
            fprintf(stderr, "inspect-eval: out of memory\n");
            return -1;
        }
    }
    return 0;
}

static void print_summary(const eval_settings *s, const eval_results *r)
{
    char setting[128];
    eval_describe_setting(s, setting, sizeof setting);
    printf("%s on %s, mean of %d categor%s:", setting, s->dataset, r->n_cats,
           r->n_cats == 1 ? "y" : "ies");
    for (int m = 0; m < EVAL_N_METRICS; m++) {
        double mean, std;
        eval_summary(r, -1, m, &mean, &std);
        if (isnan(mean))
            printf(" %s —", eval_metric_titles[m]);
        else if (r->n_seeds > 1)
            printf(" %s %.1f±%.1f", eval_metric_titles[m], 100 * mean, 100 * std);
        else
            printf(" %s %.1f", eval_metric_titles[m], 100 * mean);
        putchar(m + 1 < EVAL_N_METRICS ? ',' : '\n');
    }
    printf("results in %s (metrics.md, report.html)\n", s->out_dir);
}

int main(int argc, char **argv)
{
    enum {
        O_MODEL = 256, O_DATASET, O_ROOT, O_OUT, O_CAT, O_OBJECT, O_SHOTS, O_SEEDS, O_SMOOTH,
        O_PIXEL_SIZE, O_NO_PIXEL, O_SAVE_MAPS, O_SPLIT, O_EXAMPLES, O_THREADS, O_QUIET,
        O_METRICS_ONLY, O_HELP,
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},
        {"dataset", required_argument, 0, O_DATASET},
        {"root", required_argument, 0, O_ROOT},
        {"out", required_argument, 0, O_OUT},
        {"category", required_argument, 0, O_CAT},
        {"object", required_argument, 0, O_OBJECT},
        {"shots", required_argument, 0, O_SHOTS},
        {"seeds", required_argument, 0, O_SEEDS},
        {"smooth", required_argument, 0, O_SMOOTH},
        {"pixel-size", required_argument, 0, O_PIXEL_SIZE},
        {"no-pixel", no_argument, 0, O_NO_PIXEL},
        {"save-maps", no_argument, 0, O_SAVE_MAPS},
        {"split-csv", required_argument, 0, O_SPLIT},
        {"examples", required_argument, 0, O_EXAMPLES},
        {"threads", required_argument, 0, O_THREADS},
        {"quiet", no_argument, 0, O_QUIET},
        {"metrics-only", required_argument, 0, O_METRICS_ONLY},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    eval_settings s = {
        .seeds = 1,
        .smooth = 4.0f,
        .pixel = true,
        .examples = 4,
        .threads = ncpu > 0 ? (int)(ncpu > 256 ? 256 : ncpu) : 1,
    };
    eval_dataset_spec spec = {.layout = EVAL_MVTEC};
    const char *categories[MAX_LIST], *objects[MAX_LIST], *metrics_only = NULL;
    int n_cat = 0, n_obj = 0, bad = 0, ch;
    bool seeds_given = false;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: s.model_dir = optarg; break;
        case O_DATASET:
            s.dataset = optarg;
            if (!strcmp(optarg, "mvtec"))
                spec.layout = EVAL_MVTEC;
            else if (!strcmp(optarg, "visa"))
                spec.layout = EVAL_VISA;
            else if (!strcmp(optarg, "folder"))
                spec.layout = EVAL_FOLDER;
            else {
                fprintf(stderr, "inspect-eval: --dataset is mvtec, visa or folder\n");
                bad = 1;
            }
            break;
        case O_ROOT: s.root = spec.root = optarg; break;
        case O_OUT: s.out_dir = optarg; break;
        case O_CAT:
        case O_OBJECT:
            if ((ch == O_CAT ? n_cat : n_obj) == MAX_LIST) {
                fprintf(stderr, "inspect-eval: at most %d of each list\n", MAX_LIST);
                bad = 1;
            } else if (ch == O_CAT) {
                categories[n_cat++] = optarg;
            } else {
                objects[n_obj++] = optarg;
            }
            break;
        case O_SHOTS: bad |= parse_int("--shots", optarg, 0, 64, &s.shots); break;
        case O_SEEDS:
            bad |= parse_int("--seeds", optarg, 1, EVAL_MAX_SEEDS, &s.seeds);
            seeds_given = true;
            break;
        case O_SMOOTH: {
            char *end;
            s.smooth = strtof(optarg, &end);
            if (end == optarg || *end || !(s.smooth >= 0 && s.smooth <= 64)) {
                fprintf(stderr, "inspect-eval: --smooth takes a σ in 0..64\n");
                bad = 1;
            }
            break;
        }
        case O_PIXEL_SIZE:
            if (!strcmp(optarg, "image"))
                s.pixel_size = -1;
            else
                bad |= parse_int("--pixel-size", optarg, 1, 4096, &s.pixel_size);
            break;
        case O_NO_PIXEL: s.pixel = false; break;
        case O_SAVE_MAPS: s.save_maps = true; break;
        case O_SPLIT: spec.split_csv = optarg; break;
        case O_EXAMPLES: bad |= parse_int("--examples", optarg, 0, 32, &s.examples); break;
        case O_THREADS: bad |= parse_int("--threads", optarg, 1, 256, &s.threads); break;
        case O_QUIET: s.quiet = true; break;
        case O_METRICS_ONLY: metrics_only = optarg; break;
        case O_HELP:
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad) {
        usage(stderr);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "inspect-eval: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    insp_error err = {0};
    if (metrics_only) {
        if (eval_metrics_only(metrics_only, &err)) {
            fprintf(stderr, "inspect-eval: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (!s.model_dir || !s.dataset || !s.root || !s.out_dir) {
        fprintf(stderr, "inspect-eval: --model, --dataset, --root and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (s.shots == 0 && s.seeds > 1) {
        if (seeds_given)
            fprintf(stderr, "inspect-eval: zero-shot has nothing to draw: --seeds ignored\n");
        s.seeds = 1;
    }
    spec.categories = categories;
    spec.n_categories = n_cat;

    eval_dataset d;
    if (eval_dataset_load(&spec, &d, &err)) {
        fprintf(stderr, "inspect-eval: %s\n", err.msg);
        return 1;
    }
    if (assign_objects(&d, objects, n_obj)) {
        eval_dataset_free(&d);
        return 2;
    }
    eval_results r;
    int st = eval_mkdirs(s.out_dir, &err);
    if (!st)
        st = eval_run(&s, &d, &r, &err);
    if (!st) {
        st = eval_write_outputs(&s, &d, &r, (const char *const *)argv, argc, &err);
        if (!st)
            st = eval_write_report(&s, &d, &r, &err);
        if (!st)
            print_summary(&s, &r);
        eval_results_free(&r);
    }
    eval_dataset_free(&d);
    if (st) {
        fprintf(stderr, "inspect-eval: %s\n", err.msg);
        return 1;
    }
    return 0;
}
