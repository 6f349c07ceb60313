/* report.html: one self-contained page (no external file or script) with the metrics table,
 * ROC / PR / PRO curves as inline SVG and, per category, the overlays of the normals that
 * score highest and the anomalies that score lowest — where a threshold breaks first. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/eval.h"

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A square plot of one curve. x spans 0..xmax (1, or the PRO limit), y 0..1. */
static void svg_curve(FILE *f, const char *title, double value, const char *xlabel,
                      const char *ylabel, const eval_curve *c, double xmax, bool chance)
{
    const double L = 42, T = 24, W = 200, H = 200; // margins and plot size in SVG units
    fprintf(f, "<svg class=\"plot\" viewBox=\"0 0 %g %g\" width=\"%g\" height=\"%g\">", L + W + 12,
            T + H + 40, L + W + 12, T + H + 40);
    fprintf(f, "<text x=\"%g\" y=\"15\" class=\"t\">", L);
    html_text(f, title);
    if (!isnan(value))
        fprintf(f, " = %.1f%%", 100 * value);
    fputs("</text>", f);
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" class=\"frame\"/>", L, T, W, H);
    for (int k = 0; k <= 4; k++) {
        double gx = L + W * k / 4, gy = T + H - H * k / 4;
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" class=\"grid\"/>", gx, T, gx,
                T + H);
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" class=\"grid\"/>", L, gy, L + W,
                gy);
        fprintf(f, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"middle\">%g</text>", gx,
                T + H + 14, xmax * k / 4);
        fprintf(f, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"end\">%g</text>", L - 4,
                gy + 4, k / 4.0);
    }
    fprintf(f, "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"middle\">%s</text>",
            L + W / 2, T + H + 32, xlabel);
    fprintf(f,
            "<text x=\"12\" y=\"%g\" class=\"tick\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 12 %g)\">%s</text>",
            T + H / 2, T + H / 2, ylabel);
    if (chance)
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" class=\"chance\"/>", L, T + H,
                L + W, T);
    if (c && c->n > 0) {
        fputs("<polyline class=\"curve\" points=\"", f);
        for (long i = 0; i < c->n; i++)
            fprintf(f, "%.2f,%.2f ", L + W * c->x[i] / xmax, T + H - H * c->y[i]);
        fputs("\"/>", f);
    }
    fputs("</svg>\n", f);
}

static void table(FILE *f, const eval_dataset *d, const eval_results *r)
{
    fputs("<table><tr><th>category</th>", f);
    for (int m = 0; m < EVAL_N_METRICS; m++)
        fprintf(f, "<th>%s</th>", eval_metric_titles[m]);
    fputs("</tr>\n", f);
    for (int k = 0; k <= d->n; k++) {
        int cat = k < d->n ? k : -1; // categories, then the mean
        fputs(cat < 0 ? "<tr class=\"mean\"><td>mean</td>" : "<tr><td>", f);
        if (cat >= 0) {
            fprintf(f, "<a href=\"#cat-%d\">", cat);
            html_text(f, d->cats[cat].name);
            fputs("</a></td>", f);
        }
        for (int m = 0; m < EVAL_N_METRICS; m++) {
            double mean, std;
            eval_summary(r, cat, m, &mean, &std);
            if (isnan(mean))
                fputs("<td>—</td>", f);
            else if (r->n_seeds > 1)
                fprintf(f, "<td>%.1f <small>± %.1f</small></td>", 100 * mean, 100 * std);
            else
                fprintf(f, "<td>%.1f</td>", 100 * mean);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void examples(FILE *f, const eval_category *c, const eval_example *ex, int n, float thr,
                     const char *heading, const char *empty)
{
    fprintf(f, "<h3>%s</h3>\n", heading);
    if (n == 0) {
        fprintf(f, "<p>%s</p>\n", empty);
        return;
    }
    fputs("<div class=\"ex\">", f);
    for (int k = 0; k < n; k++) {
        const eval_sample *s = &c->test[ex[k].index];
        fprintf(f, "<figure><img alt=\"\" src=\"data:image/jpeg;base64,%s\"><figcaption>",
                ex[k].jpeg_b64 ? ex[k].jpeg_b64 : "");
        html_text(f, s->rel);
        fprintf(f, "<br>score %.4f (%s the F1-max threshold)</figcaption></figure>",
                (double)ex[k].score, ex[k].score >= thr ? "at or above" : "below");
    }
    fputs("</div>\n", f);
}

static void category(FILE *f, const eval_settings *st, const eval_category *c,
                     const eval_cat_result *res, int index)
{
    fprintf(f, "<section id=\"cat-%d\"><h2>", index);
    html_text(f, c->name);
    fputs(" <small>object “", f);
    html_text(f, c->object);
    fprintf(f, "” · %d test images, %d anomalous · %.1f s</small></h2>\n", c->n_test,
            c->n_anomalous, res->seconds);
    if (st->shots > 0) {
        fputs("<p class=\"refs\">Shots of the first seed: ", f);
        for (int k = 0; k < st->shots; k++) {
            if (k)
                fputs(", ", f);
            html_text(f, res->refs[0][k]);
        }
        fputs("</p>\n", f);
    }
    const double *m = res->per_seed[0];
    fputs("<div class=\"curves\">", f);
    svg_curve(f, "image ROC, AUROC", m[EVAL_IMAGE_AUROC], "false positive rate",
              "true positive rate", &res->img_roc, 1, true);
    svg_curve(f, "image PR, AP", m[EVAL_IMAGE_AP], "recall", "precision", &res->img_pr, 1,
              false);
    if (!res->pixel_note) {
        svg_curve(f, "pixel ROC, AUROC", m[EVAL_PIXEL_AUROC], "false positive rate",
                  "true positive rate", &res->pix_roc, 1, true);
        svg_curve(f, "PRO to FPR 0.3, AUPRO", m[EVAL_PIXEL_AUPRO], "false positive rate",
                  "per-region overlap", &res->pix_pro, EVAL_PRO_FPR_LIMIT, false);
    }
    fputs("</div>\n", f);
    if (res->pixel_note) {
        fputs("<p>Pixel metrics: ", f);
        html_text(f, res->pixel_note);
        fputs(".</p>\n", f);
    }
    int fp = 0, fn = 0;
    for (int i = 0; i < c->n_test; i++) {
        bool flagged = res->scores[0][i] >= res->img_threshold;
        fp += !c->test[i].label && flagged;
        fn += c->test[i].label && !flagged;
    }
    fprintf(f,
            "<p>At the image F1-max threshold %.4f (score ≥ threshold = anomalous): <b>%d of %d "
            "normal images flagged</b>, <b>%d of %d anomalous images missed</b>%s. Overlay "
            "colours span map values %.3f (blue) to %.3f (red); white outlines the ground "
            "truth.</p>\n",
            (double)res->img_threshold, fp, c->n_test - c->n_anomalous, fn, c->n_anomalous,
            st->seeds > 1 ? " (first seed)" : "", (double)res->map_lo, (double)res->map_hi);
    examples(f, c, res->normals, res->n_normals, res->img_threshold,
             "Highest-scoring normal images", "None.");
    examples(f, c, res->anomalies, res->n_anomalies, res->img_threshold,
             "Lowest-scoring anomalous images", "None.");
    fputs("</section>\n", f);
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}td:first-child,th:first-child{text-align:left}tr.mean{font-weight:bold}"
    "section{border-top:2px solid #ddd;margin-top:2em}.curves{display:flex;flex-wrap:wrap;"
    "gap:8px}.plot .frame{fill:none;stroke:#444}.plot .grid{stroke:#eee}.plot .chance{"
    "stroke:#aaa;stroke-dasharray:4 3}.plot .curve{fill:none;stroke:#c0392b;stroke-width:1.6}"
    ".plot .t{font-size:12px;font-weight:bold}.plot .tick{font-size:10px;fill:#555}"
    ".ex{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;max-width:220px}"
    "figcaption{font-size:11px;word-break:break-all}small{color:#666;font-weight:normal}";

int eval_write_report(const eval_settings *s, const eval_dataset *d, const eval_results *r,
                      insp_error *err)
{
    char *path = eval_path_join(s->out_dir, "report.html");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        int st = insp_error_set(err, INSP_ERR_IO, "cannot create %s/report.html", s->out_dir);
        free(path);
        return st;
    }
    char setting[128];
    eval_describe_setting(s, setting, sizeof setting);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>inspect-eval: ",
          f);
    html_text(f, setting);
    fprintf(f, " on %s</title><style>%s</style></head><body>\n<h1>", s->dataset, style);
    html_text(f, setting);
    fprintf(f, " on %s</h1>\n<p>Model <code>", s->dataset);
    html_text(f, s->model_dir);
    fprintf(f, "</code> (%d px, %d×%d patches, %s, SHA-256 <code>%s</code>). Dataset <code>",
            r->image_size, r->grid, r->grid, r->model_dtype, r->model_sha256);
    html_text(f, s->root);
    fprintf(f, "</code>. Maps smoothed with σ = %g px", (double)s->smooth);
    if (r->pixel_w)
        fprintf(f, "; pixel metrics on %d×%d maps and masks", r->pixel_w, r->pixel_h);
    else
        fputs("; pixel metrics at each image's own size", f);
    fprintf(f, ". %ld test images in %.1f s (%.1f s loading the model).</p>\n", r->n_images,
            r->seconds, r->load_seconds);
    fputs("<p>Values in %. AUPRO integrates the per-region overlap up to a false positive rate "
          "of 0.3 and divides by 0.3 (regions are 8-connected).",
          f);
    if (r->n_seeds > 1)
        fputs(" ± is the standard deviation over seeds; curves and examples show the first "
              "seed.",
              f);
    fputs("</p>\n", f);
    table(f, d, r);
    for (int c = 0; c < d->n; c++)
        category(f, s, &d->cats[c], &r->cats[c], c);
    fputs("</body></html>\n", f);
    int ok = fclose(f) == 0;
    int st = ok ? INSP_OK : insp_error_set(err, INSP_ERR_IO, "%s: write failed", path);
    free(path);
    return st;
}
