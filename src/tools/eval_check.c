/* --metrics-only: the metric code on scores and maps from a file, so that its numbers can be
 * checked against other tools (scikit-learn, the MVTec AD scripts) and a run's scores.csv or
 * saved maps can be re-scored without the model. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspectd/image.h"
#include "tools/eval.h"

typedef struct table {
    char *text;
    char **lines;
    int n_lines;
} table;

static void table_free(table *t)
{
    free(t->text);
    free(t->lines);
}

/* Non-empty lines (CR stripped); the first is the header. */
static int table_read(const char *path, table *t, insp_error *err)
{
    memset(t, 0, sizeof *t);
    size_t len;
    int st = eval_read_file(path, &t->text, &len, err);
    if (st)
        return st;
    int cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(t->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (!l)
            continue;
        if (t->n_lines == cap) {
            cap = cap ? 2 * cap : 1024;
            char **nl = realloc(t->lines, (size_t)cap * sizeof *nl);
            if (!nl) {
                table_free(t);
                return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", path);
            }
            t->lines = nl;
        }
        t->lines[t->n_lines++] = line;
    }
    if (t->n_lines == 0) {
        table_free(t);
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: empty file", path);
    }
    return INSP_OK;
}

static int column(char **f, int nf, const char *name)
{
    for (int i = 0; i < nf; i++)
        if (!strcmp(f[i], name))
            return i;
    return -1;
}

static int image_metrics(const char *path, table *t, int c_label, int c_score, insp_error *err)
{
    long n = t->n_lines - 1;
    float *score = malloc((size_t)(n ? n : 1) * sizeof *score);
    uint8_t *label = malloc((size_t)(n ? n : 1));
    int st = score && label ? INSP_OK : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    for (long i = 0; !st && i < n; i++) {
        char *f[16];
        int nf = eval_csv_split(t->lines[i + 1], f, 16);
        char *end;
        errno = 0;
        double v = c_score < nf ? strtod(f[c_score], &end) : 0;
        bool ok_score = c_score < nf && end != f[c_score] && !*end && errno != ERANGE;
        bool ok_label = c_label < nf && (!strcmp(f[c_label], "0") || !strcmp(f[c_label], "1"));
        if (!ok_score || !ok_label)
            st = insp_error_set(err, INSP_ERR_FORMAT,
                                "%s: row %ld: expected label 0 or 1 and a number as score", path,
                                i + 1);
        else {
            score[i] = (float)v;
            label[i] = f[c_label][0] == '1';
        }
    }
    eval_binary b;
    if (!st)
        st = eval_binary_metrics(score, label, n, &b, NULL, NULL, err);
    if (!st)
        printf("{\"n\": %ld, \"n_anomalous\": %ld, \"auroc\": %.17g, \"ap\": %.17g, "
               "\"f1max\": %.17g, \"f1_threshold\": %.9g}\n",
               b.n, b.n_pos, b.auroc, b.ap, b.f1max, (double)b.f1_threshold);
    free(score);
    free(label);
    return st;
}

/* A file named in the CSV: absolute, or relative to the CSV's directory. */
static char *resolve(const char *csv_path, const char *name)
{
    if (name[0] == '/')
        return strdup(name);
    const char *slash = strrchr(csv_path, '/');
    if (!slash)
        return strdup(name);
    char *dir = strndup(csv_path, (size_t)(slash - csv_path));
    char *p = dir ? eval_path_join(dir, name) : NULL;
    free(dir);
    return p;
}

/* One map (16-bit or 8-bit gray PNG, value / 65535) and its regions, appended. */
static int add_image(const char *csv_path, const char *map_name, const char *mask_name,
                     float **score, int32_t **region, long *n, int *n_regions, insp_error *err)
{
    char *map_path = resolve(csv_path, map_name);
    char *mask_path = *mask_name ? resolve(csv_path, mask_name) : NULL;
    char *data = NULL;
    size_t len;
    uint16_t *px = NULL;
    uint8_t *mask = NULL;
    int w = 0, h = 0, mw, mh;
    int st = map_path && (mask_path || !*mask_name)
                 ? INSP_OK
                 : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    if (!st)
        st = eval_read_file(map_path, &data, &len, err);
    if (!st && (st = insp_png_decode_gray16(data, len, &px, &w, &h, err)))
        insp_error_prefix(err, "map %s: ", map_path);
    if (!st && mask_path && !(st = eval_load_mask(mask_path, &mask, &mw, &mh, err)) &&
        (mw != w || mh != h))
        st = insp_error_set(err, INSP_ERR_SHAPE, "mask %s is %d×%d but map %s is %d×%d",
                            mask_path, mw, mh, map_path, w, h);
    long m = (long)w * h;
    if (!st) {
        float *s = realloc(*score, (size_t)(*n + m) * sizeof *s);
        if (s)
            *score = s;
        int32_t *r = realloc(*region, (size_t)(*n + m) * sizeof *r);
        if (r)
            *region = r;
        if (!s || !r)
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        for (long i = 0; i < m; i++)
            (*score)[*n + i] = px[i] / 65535.0f;
        int found = 0;
        if (mask)
            st = eval_label_regions(mask, w, h, *n_regions + 1, *region + *n, &found);
        else
            memset(*region + *n, 0, (size_t)m * sizeof **region);
        if (st)
            insp_error_set(err, st, "mask %s: cannot label its regions", mask_path);
        *n_regions += found;
        *n += m;
    }
    free(map_path);
    free(mask_path);
    free(data);
    free(px);
    free(mask);
    return st;
}

static int pixel_metrics(const char *path, table *t, int c_map, int c_mask, insp_error *err)
{
    float *score = NULL;
    int32_t *region = NULL;
    long n = 0;
    int n_regions = 0, st = INSP_OK;
    for (int i = 1; !st && i < t->n_lines; i++) {
        char *f[16];
        int nf = eval_csv_split(t->lines[i], f, 16);
        if (c_map >= nf || !*f[c_map])
            st = insp_error_set(err, INSP_ERR_FORMAT, "%s: row %d: no map", path, i);
        else
            st = add_image(path, f[c_map], c_mask < nf ? f[c_mask] : "", &score, &region, &n,
                           &n_regions, err);
    }
    eval_pixel p;
    if (!st)
        st = eval_pixel_metrics(score, region, n, n_regions, &p, NULL, NULL, err);
    if (!st)
        printf("{\"n_images\": %d, \"n_pixels\": %ld, \"n_anomalous_pixels\": %ld, "
               "\"n_regions\": %d, \"auroc\": %.17g, \"aupro\": %.17g, \"f1max\": %.17g, "
               "\"f1_threshold\": %.9g}\n",
               t->n_lines - 1, p.n, p.n_pos, p.n_regions, p.auroc, p.aupro, p.f1max,
               (double)p.f1_threshold);
    free(score);
    free(region);
    return st;
}

int eval_metrics_only(const char *csv_path, insp_error *err)
{
    table t;
    int st = table_read(csv_path, &t, err);
    if (st)
        return st;
    char *f[16];
    int nf = eval_csv_split(t.lines[0], f, 16);
    int c_label = column(f, nf, "label"), c_score = column(f, nf, "score");
    int c_map = column(f, nf, "map"), c_mask = column(f, nf, "mask");
    if (c_label >= 0 && c_score >= 0)
        st = image_metrics(csv_path, &t, c_label, c_score, err);
    else if (c_map >= 0 && c_mask >= 0)
        st = pixel_metrics(csv_path, &t, c_map, c_mask, err);
    else
        st = insp_error_set(err, INSP_ERR_FORMAT,
                            "%s: the header must name the columns label,score (image "
                            "metrics, as scores.csv) or map,mask (pixel metrics)",
                            csv_path);
    table_free(&t);
    return st;
}
