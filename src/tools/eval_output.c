/* The run's machine- and human-readable results: metrics.json (fractions), metrics.md (the
 * paper's percentages), scores.csv (per image) and run.json (everything needed to redo it). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/eval.h"

static json_t *num(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

/* {"image_auroc": ..., ...} for one category (cat ≥ 0) or the mean (cat = -1); with several
 * seeds also the standard deviations and every seed's values. */
static json_t *metrics_object(const eval_results *r, int cat)
{
    json_t *o = json_object(), *sd = json_object();
    for (int m = 0; m < EVAL_N_METRICS; m++) {
        double mean, std;
        eval_summary(r, cat, m, &mean, &std);
        json_object_set_new(o, eval_metric_keys[m], num(mean));
        json_object_set_new(sd, eval_metric_keys[m], num(std));
    }
    if (r->n_seeds < 2) {
        json_decref(sd);
        return o;
    }
    json_object_set_new(o, "std", sd);
    json_t *seeds = json_array();
    for (int s = 0; s < r->n_seeds; s++) {
        json_t *one = json_object();
        for (int m = 0; m < EVAL_N_METRICS; m++) {
            double v = 0;
            if (cat >= 0) {
                v = r->cats[cat].per_seed[s][m];
            } else {
                for (int c = 0; c < r->n_cats; c++)
                    v += r->cats[c].per_seed[s][m];
                v /= r->n_cats;
            }
            json_object_set_new(one, eval_metric_keys[m], num(v));
        }
        json_array_append_new(seeds, one);
    }
    json_object_set_new(o, "per_seed", seeds);
    return o;
}

static int dump_json(json_t *root, const char *dir, const char *name, insp_error *err)
{
    char *path = eval_path_join(dir, name);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    int st = path && text ? INSP_OK : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    if (!st) {
        size_t len = strlen(text);
        text[len] = '\n'; // replaces the NUL: written with its length below
        st = eval_write_file(path, text, len + 1, err);
    }
    free(path);
    free(text);
    return st;
}

static int write_metrics_json(const eval_settings *s, const eval_dataset *d,
                              const eval_results *r, insp_error *err)
{
    json_t *root = json_object();
    for (int c = 0; c < d->n; c++)
        json_object_set_new(root, d->cats[c].name, metrics_object(r, c));
    json_object_set_new(root, "mean", metrics_object(r, -1));
    int st = dump_json(root, s->out_dir, "metrics.json", err);
    json_decref(root);
    return st;
}

/* "91.8" or "93.1 ± 2.0" (percent), "—" when not computed. */
static void cell(const eval_results *r, int cat, int m, char *buf, size_t size)
{
    double mean, std;
    eval_summary(r, cat, m, &mean, &std);
    if (isnan(mean))
        snprintf(buf, size, "—");
    else if (r->n_seeds > 1)
        snprintf(buf, size, "%.1f ± %.1f", 100 * mean, 100 * std);
    else
        snprintf(buf, size, "%.1f", 100 * mean);
}

void eval_describe_setting(const eval_settings *s, char *buf, size_t size)
{
    if (s->shots == 0)
        snprintf(buf, size, "WinCLIP zero-shot");
    else
        snprintf(buf, size, "WinCLIP+ %d-shot, %d seed%s", s->shots, s->seeds,
                 s->seeds > 1 ? "s" : "");
}

static int write_metrics_md(const eval_settings *s, const eval_dataset *d, const eval_results *r,
                            insp_error *err)
{
    char *path = eval_path_join(s->out_dir, "metrics.md");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        int st = insp_error_set(err, INSP_ERR_IO, "cannot create %s/metrics.md", s->out_dir);
        free(path);
        return st;
    }
    char setting[128], pix[64];
    eval_describe_setting(s, setting, sizeof setting);
    if (r->pixel_w)
        snprintf(pix, sizeof pix, "%d×%d", r->pixel_w, r->pixel_h);
    else
        snprintf(pix, sizeof pix, "each image's own size");
    fprintf(f, "# %s on %s\n\n", setting, s->dataset);
    fprintf(f,
            "Model `%s` (%d px, weights SHA-256 `%.16s…`), dataset `%s`; maps smoothed with "
            "σ = %g px, pixel metrics at %s. Values in %%%s.\n\n",
            s->model_dir, r->image_size, r->model_sha256, s->root, (double)s->smooth, pix,
            r->n_seeds > 1 ? "; ± is the standard deviation over seeds" : "");
    fprintf(f, "| category |");
    for (int m = 0; m < EVAL_N_METRICS; m++)
        fprintf(f, " %s |", eval_metric_titles[m]);
    fprintf(f, "\n|---|");
    for (int m = 0; m < EVAL_N_METRICS; m++)
        fprintf(f, "---:|");
    fputc('\n', f);
    char buf[64];
    for (int c = 0; c < d->n; c++) {
        fprintf(f, "| %s |", d->cats[c].name);
        for (int m = 0; m < EVAL_N_METRICS; m++) {
            cell(r, c, m, buf, sizeof buf);
            fprintf(f, " %s |", buf);
        }
        fputc('\n', f);
    }
    fprintf(f, "| **mean** |");
    for (int m = 0; m < EVAL_N_METRICS; m++) {
        cell(r, -1, m, buf, sizeof buf);
        fprintf(f, " **%s** |", buf);
    }
    fputc('\n', f);
    bool notes = false;
    for (int c = 0; c < d->n; c++) {
        if (!r->cats[c].pixel_note)
            continue;
        if (!notes)
            fputc('\n', f);
        notes = true;
        fprintf(f, "- %s: %s.\n", d->cats[c].name, r->cats[c].pixel_note);
    }
    int ok = fclose(f) == 0;
    int st = ok ? INSP_OK : insp_error_set(err, INSP_ERR_IO, "%s: write failed", path);
    free(path);
    return st;
}

/* A CSV field, quoted when it holds a comma, quote or line break (RFC 4180). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_scores(const eval_settings *s, const eval_dataset *d, const eval_results *r,
                        int seed, insp_error *err)
{
    char name[64];
    if (seed == 0)
        snprintf(name, sizeof name, "scores.csv");
    else
        snprintf(name, sizeof name, "scores-seed%d.csv", seed);
    char *path = eval_path_join(s->out_dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        int st = insp_error_set(err, INSP_ERR_IO, "cannot create %s/%s", s->out_dir, name);
        free(path);
        return st;
    }
    fprintf(f, "path,label,score\n");
    for (int c = 0; c < d->n; c++) {
        for (int i = 0; i < d->cats[c].n_test; i++) {
            csv_field(f, d->cats[c].test[i].rel);
            // %.9g: a float survives the round trip, so other tools see the exact scores.
            fprintf(f, ",%d,%.9g\n", d->cats[c].test[i].label,
                    (double)r->cats[c].scores[seed][i]);
        }
    }
    int ok = fclose(f) == 0;
    int st = ok ? INSP_OK : insp_error_set(err, INSP_ERR_IO, "%s: write failed", path);
    free(path);
    return st;
}

static int write_run_json(const eval_settings *s, const eval_dataset *d, const eval_results *r,
                          const char *const *argv, int argc, insp_error *err)
{
    json_t *root = json_object();
    json_t *cmd = json_array();
    for (int i = 0; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    json_object_set_new(root, "command", cmd);
    json_object_set_new(
        root, "model",
        json_pack("{s:s, s:s, s:s, s:i, s:i}", "dir", s->model_dir, "sha256", r->model_sha256,
                  "dtype", r->model_dtype, "image_size", r->image_size, "grid", r->grid));
    json_object_set_new(root, "dataset", json_pack("{s:s, s:s}", "layout", s->dataset, "root",
                                                   s->root));
    json_object_set_new(
        root, "settings",
        json_pack("{s:i, s:i, s:f, s:o, s:b, s:i}", "shots", s->shots, "seeds", s->seeds,
                  "smooth_sigma", (double)s->smooth, "pixel_size",
                  r->pixel_w ? json_integer(r->pixel_w) : json_string("image"), "save_maps",
                  s->save_maps, "threads", s->threads));
    json_t *cats = json_object();
    for (int c = 0; c < d->n; c++) {
        const eval_category *cat = &d->cats[c];
        const eval_cat_result *res = &r->cats[c];
        json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:f}", "object", cat->object,
                              "n_test", cat->n_test, "n_anomalous", cat->n_anomalous, "n_train",
                              cat->n_train, "image_f1_threshold", (double)res->img_threshold,
                              "seconds", res->seconds, "images_per_second",
                              res->seconds > 0 ? cat->n_test / res->seconds : 0.0);
        if (res->pixel_note) {
            json_object_set_new(o, "pixel_note", json_string(res->pixel_note));
        } else {
            json_object_set_new(o, "pixel_f1_threshold", json_real(res->pix_threshold));
            json_object_set_new(o, "n_pixels", json_integer(res->n_pixels));
            json_object_set_new(o, "n_regions", json_integer(res->n_regions));
        }
        if (s->shots > 0) {
            json_t *refs = json_array();
            for (int seed = 0; seed < r->n_seeds; seed++) {
                json_t *one = json_array();
                for (int k = 0; k < s->shots; k++)
                    json_array_append_new(one, json_string(res->refs[seed][k]));
                json_array_append_new(refs, one);
            }
            json_object_set_new(o, "shots", refs);
        }
        json_object_set_new(cats, cat->name, o);
    }
    json_object_set_new(root, "categories", cats);
    json_object_set_new(root, "timing",
                        json_pack("{s:f, s:f, s:I, s:f}", "load_seconds", r->load_seconds,
                                  "total_seconds", r->seconds, "images", (json_int_t)r->n_images,
                                  "images_per_second",
                                  r->seconds > r->load_seconds
                                      ? r->n_images / (r->seconds - r->load_seconds)
                                      : 0.0));
    int st = dump_json(root, s->out_dir, "run.json", err);
    json_decref(root);
    return st;
}

int eval_write_outputs(const eval_settings *s, const eval_dataset *d, const eval_results *r,
                       const char *const *argv, int argc, insp_error *err)
{
    int st = write_metrics_json(s, d, r, err);
    if (!st)
        st = write_metrics_md(s, d, r, err);
    for (int seed = 0; !st && seed < r->n_seeds; seed++)
        st = write_scores(s, d, r, seed, err);
    if (!st)
        st = write_run_json(s, d, r, argv, argc, err);
    return st;
}
