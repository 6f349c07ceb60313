/* VisA's layout: the split CSV (split_csv/1cls.csv: object,split,label,image,mask with paths
 * relative to the root) names every image, its split and its mask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/eval.h"

enum { COL_OBJECT, COL_SPLIT, COL_LABEL, COL_IMAGE, COL_MASK, N_COLS };
static const char *const col_names[N_COLS] = {"object", "split", "label", "image", "mask"};

/* A path from the CSV must stay inside the root. */
static bool safe_rel(const char *p)
{
    if (!*p || p[0] == '/')
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return false;
        s += len + (e ? 1 : 0);
    }
    return true;
}

static eval_category *find_cat(eval_dataset *d, const char *name)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->cats[i].name, name))
            return &d->cats[i];
    return NULL;
}

static eval_category *get_cat(eval_dataset *d, const char *name)
{
    eval_category *c = find_cat(d, name);
    if (c)
        return c;
    c = realloc(d->cats, ((size_t)d->n + 1) * sizeof *c);
    if (!c)
        return NULL;
    d->cats = c;
    c = &d->cats[d->n++];
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    return c->name ? c : NULL;
}

static int cmp_cat(const void *a, const void *b)
{
    return strcmp(((const eval_category *)a)->name, ((const eval_category *)b)->name);
}

/* Parses the CSV into d (every category in it). */
static int parse(const eval_dataset_spec *spec, const char *csv_path, char *text,
                 eval_dataset *d, insp_error *err)
{
    int col[N_COLS];
    int line_no = 0;
    char *save = NULL;
    bool header = true;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (!len)
            continue;
        char *f[16];
        int nf = eval_csv_split(line, f, 16);
        if (header) {
            for (int c = 0; c < N_COLS; c++) {
                col[c] = -1;
                for (int i = 0; i < nf; i++)
                    if (!strcmp(f[i], col_names[c]))
                        col[c] = i;
                if (col[c] < 0)
                    return insp_error_set(err, INSP_ERR_FORMAT,
                                          "%s: the header has no \"%s\" column (expected "
                                          "object,split,label,image,mask)",
                                          csv_path, col_names[c]);
            }
            header = false;
            continue;
        }
        const char *v[N_COLS];
        for (int c = 0; c < N_COLS; c++)
            v[c] = col[c] < nf ? f[col[c]] : "";
        bool train = !strcmp(v[COL_SPLIT], "train"), test = !strcmp(v[COL_SPLIT], "test");
        bool normal = !strcmp(v[COL_LABEL], "normal"), anomaly = !strcmp(v[COL_LABEL], "anomaly");
        if (!*v[COL_OBJECT] || (!train && !test) || (!normal && !anomaly))
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "%s:%d: expected an object, split train|test and label "
                                  "normal|anomaly",
                                  csv_path, line_no);
        if (!safe_rel(v[COL_IMAGE]) || (*v[COL_MASK] && !safe_rel(v[COL_MASK])))
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "%s:%d: image and mask must be paths inside the root",
                                  csv_path, line_no);
        if (strchr(v[COL_OBJECT], '/') || !strcmp(v[COL_OBJECT], ".."))
            return insp_error_set(err, INSP_ERR_FORMAT, "%s:%d: bad object name \"%s\"",
                                  csv_path, line_no, v[COL_OBJECT]);
        if (train && anomaly)
            continue; // shots are normal by definition
        eval_category *c = get_cat(d, v[COL_OBJECT]);
        char *path = eval_path_join(spec->root, v[COL_IMAGE]);
        char *mask = *v[COL_MASK] ? eval_path_join(spec->root, v[COL_MASK]) : NULL;
        int st = c && path && (mask || !*v[COL_MASK]) ? INSP_OK : INSP_ERR_NOMEM;
        if (!st && !eval_is_file(path))
            st = insp_error_set(err, INSP_ERR_NOT_FOUND, "%s:%d: %s does not exist", csv_path,
                                line_no, path);
        else if (!st && mask && anomaly && !eval_is_file(mask))
            st = insp_error_set(err, INSP_ERR_NOT_FOUND, "%s:%d: mask %s does not exist",
                                csv_path, line_no, mask);
        else if (!st && train)
            st = eval_cat_add_train(c, path, v[COL_IMAGE]);
        else if (!st)
            st = eval_cat_add_test(c, path, v[COL_IMAGE], anomaly ? "bad" : "good",
                                   anomaly ? mask : NULL, anomaly);
        free(path);
        free(mask);
        if (st == INSP_ERR_NOMEM)
            return insp_error_set(err, st, "%s: out of memory", csv_path);
        if (st)
            return st;
    }
    if (header)
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: empty file", csv_path);
    return INSP_OK;
}

int eval_visa_load(const eval_dataset_spec *spec, eval_dataset *out, insp_error *err)
{
    char *def = spec->split_csv ? NULL : eval_path_join(spec->root, "split_csv/1cls.csv");
    const char *csv_path = spec->split_csv ? spec->split_csv : def;
    if (!csv_path)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    char *text;
    size_t len;
    int st = eval_read_file(csv_path, &text, &len, err);
    if (st) {
        free(def);
        return st;
    }
    eval_dataset all = {0};
    st = parse(spec, csv_path, text, &all, err);
    free(text);
    for (int i = 0; !st && i < all.n; i++) {
        eval_category *c = &all.cats[i];
        bool masks = c->n_anomalous > 0;
        for (int j = 0; j < c->n_test; j++)
            if (c->test[j].label && !c->test[j].mask)
                masks = false;
        c->has_masks = masks;
    }
    if (!st && spec->n_categories > 0) {
        // Keep the requested categories, in the order asked.
        eval_dataset picked = {0};
        picked.cats = calloc((size_t)spec->n_categories, sizeof *picked.cats);
        if (!picked.cats)
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
        for (int i = 0; !st && i < spec->n_categories; i++) {
            eval_category *c = find_cat(&all, spec->categories[i]);
            if (!c) {
                st = insp_error_set(err, INSP_ERR_NOT_FOUND, "category %s: not in %s",
                                    spec->categories[i], csv_path);
                break;
            }
            for (int j = 0; j < i; j++)
                if (!strcmp(spec->categories[j], spec->categories[i]))
                    st = insp_error_set(err, INSP_ERR_INVALID, "category %s given twice",
                                        spec->categories[i]);
            if (st)
                break;
            picked.cats[picked.n++] = *c;
            memset(c, 0, sizeof *c); // moved: all's copy frees nothing
        }
        eval_dataset_free(&all);
        all = picked;
    } else if (!st && all.n > 1) {
        qsort(all.cats, (size_t)all.n, sizeof *all.cats, cmp_cat);
    }
    free(def);
    if (st) {
        eval_dataset_free(&all);
        return st;
    }
    *out = all;
    return INSP_OK;
}
