/* Dataset layouts on disk → lists of test images (label, defect, mask) and normal shots per
 * category: MVTec AD's folders and a plant's plain good/bad folders (VisA: eval_visa.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/eval.h"

static void cat_free(eval_category *c)
{
    free(c->name);
    free(c->object);
    eval_free_names(c->train, c->n_train);
    eval_free_names(c->train_rel, c->n_train);
    for (int i = 0; i < c->n_test; i++) {
        free(c->test[i].path);
        free(c->test[i].rel);
        free(c->test[i].defect);
        free(c->test[i].mask);
    }
    free(c->test);
}

void eval_dataset_free(eval_dataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++)
        cat_free(&d->cats[i]);
    free(d->cats);
    memset(d, 0, sizeof *d);
}

int eval_cat_add_test(eval_category *c, const char *path, const char *rel, const char *defect,
                      const char *mask, int label)
{
    if ((c->n_test & (c->n_test - 1)) == 0) { // capacity doubles at powers of two
        size_t cap = c->n_test ? 2 * (size_t)c->n_test : 16;
        eval_sample *t = realloc(c->test, cap * sizeof *t);
        if (!t)
            return INSP_ERR_NOMEM;
        c->test = t;
    }
    eval_sample *s = &c->test[c->n_test];
    memset(s, 0, sizeof *s);
    s->path = strdup(path);
    s->rel = strdup(rel);
    s->defect = strdup(defect);
    s->mask = mask ? strdup(mask) : NULL;
    s->label = label ? 1 : 0;
    c->n_test++;
    if (!s->path || !s->rel || !s->defect || (mask && !s->mask))
        return INSP_ERR_NOMEM;
    c->n_anomalous += s->label;
    return INSP_OK;
}

int eval_cat_add_train(eval_category *c, const char *path, const char *rel)
{
    if ((c->n_train & (c->n_train - 1)) == 0) {
        size_t cap = c->n_train ? 2 * (size_t)c->n_train : 16;
        char **a = realloc(c->train, cap * sizeof *a);
        if (a)
            c->train = a;
        char **b = realloc(c->train_rel, cap * sizeof *b);
        if (b)
            c->train_rel = b;
        if (!a || !b)
            return INSP_ERR_NOMEM;
    }
    c->train[c->n_train] = strdup(path);
    c->train_rel[c->n_train] = strdup(rel);
    c->n_train++;
    return c->train[c->n_train - 1] && c->train_rel[c->n_train - 1] ? INSP_OK : INSP_ERR_NOMEM;
}

/* A new, empty category at the end of d. */
static eval_category *add_cat(eval_dataset *d, const char *name)
{
    eval_category *c = realloc(d->cats, ((size_t)d->n + 1) * sizeof *c);
    if (!c)
        return NULL;
    d->cats = c;
    c = &d->cats[d->n++];
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    return c->name ? c : NULL;
}

/* Adds every image of dir as a training shot; a missing dir adds none. */
static int add_train_dir(eval_category *c, const char *dir, const char *rel_dir, insp_error *err)
{
    if (!eval_is_dir(dir))
        return INSP_OK;
    char **names;
    int n;
    int st = eval_list_dir(dir, false, &names, &n, err);
    for (int i = 0; !st && i < n; i++) {
        char *p = eval_path_join(dir, names[i]), *r = eval_path_join(rel_dir, names[i]);
        st = p && r ? eval_cat_add_train(c, p, r) : INSP_ERR_NOMEM;
        free(p);
        free(r);
        if (st)
            insp_error_set(err, st, "out of memory listing %s", dir);
    }
    eval_free_names(names, n);
    return st;
}

/* The first of the candidate names (formats with one %s for the stem) that exists in dir. */
static char *find_mask(const char *dir, const char *stem, const char *const *fmts, int n_fmts)
{
    for (int i = 0; i < n_fmts; i++) {
        size_t len = strlen(fmts[i]) + strlen(stem) + 1;
        char *name = malloc(len);
        if (!name)
            return NULL;
        snprintf(name, len, fmts[i], stem);
        char *p = eval_path_join(dir, name);
        free(name);
        if (p && eval_is_file(p))
            return p;
        free(p);
    }
    return NULL;
}

/* Adds the images of test_dir as one defect. mask_dir NULL: the dataset has no masks. */
static int add_test_dir(eval_category *c, const char *test_dir, const char *rel_dir,
                        const char *defect, int label, const char *mask_dir,
                        const char *const *mask_fmts, int n_fmts, insp_error *err)
{
    char **names;
    int n;
    int st = eval_list_dir(test_dir, false, &names, &n, err);
    for (int i = 0; !st && i < n; i++) {
        char *p = eval_path_join(test_dir, names[i]), *r = eval_path_join(rel_dir, names[i]);
        char *stem = eval_stem(names[i]);
        char *mask = NULL;
        if (!p || !r || !stem) {
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory listing %s", test_dir);
        } else if (label && mask_dir) {
            mask = find_mask(mask_dir, stem, mask_fmts, n_fmts);
            if (!mask)
                st = insp_error_set(err, INSP_ERR_NOT_FOUND,
                                    "%s: anomalous image without a mask (looked for %s/%s)", p,
                                    mask_dir, mask_fmts[0]);
        }
        if (!st && eval_cat_add_test(c, p, r, defect, mask, label))
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory listing %s", test_dir);
        free(p);
        free(r);
        free(stem);
        free(mask);
    }
    eval_free_names(names, n);
    return st;
}

static int load_mvtec_cat(const char *root, eval_category *c, insp_error *err)
{
    static const char *const mask_fmts[] = {"%s_mask.png"};
    char *cat_dir = eval_path_join(root, c->name);
    char *train = cat_dir ? eval_path_join(cat_dir, "train/good") : NULL;
    char *train_rel = eval_path_join(c->name, "train/good");
    char *test = cat_dir ? eval_path_join(cat_dir, "test") : NULL;
    char *gt = cat_dir ? eval_path_join(cat_dir, "ground_truth") : NULL;
    char **defects = NULL;
    int n_def = 0;
    int st = cat_dir && train && train_rel && test && gt
                 ? INSP_OK
                 : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    if (!st)
        st = add_train_dir(c, train, train_rel, err);
    if (!st)
        st = eval_list_dir(test, true, &defects, &n_def, err);
    bool masks = eval_is_dir(gt);
    for (int i = 0; !st && i < n_def; i++) {
        int label = strcmp(defects[i], "good") != 0;
        char *dir = eval_path_join(test, defects[i]);
        char *rel = eval_path_join(c->name, "test");
        char *rel2 = rel ? eval_path_join(rel, defects[i]) : NULL;
        char *mdir = eval_path_join(gt, defects[i]);
        if (!dir || !rel2 || !mdir)
            st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
        else
            st = add_test_dir(c, dir, rel2, defects[i], label, masks ? mdir : NULL, mask_fmts, 1,
                              err);
        free(dir);
        free(rel);
        free(rel2);
        free(mdir);
    }
    c->has_masks = masks && c->n_anomalous > 0;
    eval_free_names(defects, n_def);
    free(cat_dir);
    free(train);
    free(train_rel);
    free(test);
    free(gt);
    return st;
}

static int load_folder_cat(const char *dir, const char *rel_prefix, eval_category *c,
                           insp_error *err)
{
    static const char *const mask_fmts[] = {"%s.png", "%s_mask.png"};
    char *good = eval_path_join(dir, "good"), *bad = eval_path_join(dir, "bad");
    char *masks = eval_path_join(dir, "masks"), *train = eval_path_join(dir, "train");
    char *rgood = eval_path_join(rel_prefix, "good"), *rbad = eval_path_join(rel_prefix, "bad");
    char *rtrain = eval_path_join(rel_prefix, "train");
    int st = good && bad && masks && train && rgood && rbad && rtrain
                 ? INSP_OK
                 : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    bool has_masks = masks && eval_is_dir(masks);
    if (!st)
        st = add_train_dir(c, train, rtrain, err);
    if (!st && eval_is_dir(good))
        st = add_test_dir(c, good, rgood, "good", 0, NULL, mask_fmts, 2, err);
    if (!st && eval_is_dir(bad))
        st = add_test_dir(c, bad, rbad, "bad", 1, has_masks ? masks : NULL, mask_fmts, 2, err);
    c->has_masks = has_masks && c->n_anomalous > 0;
    free(good);
    free(bad);
    free(masks);
    free(train);
    free(rgood);
    free(rbad);
    free(rtrain);
    return st;
}

static bool is_folder_cat(const char *dir)
{
    char *g = eval_path_join(dir, "good"), *b = eval_path_join(dir, "bad");
    bool yes = (g && eval_is_dir(g)) || (b && eval_is_dir(b));
    free(g);
    free(b);
    return yes;
}

static bool is_mvtec_cat(const char *dir)
{
    char *t = eval_path_join(dir, "test");
    bool yes = t && eval_is_dir(t);
    free(t);
    return yes;
}

/* The category names to load: the requested ones (each must exist) or every matching one. */
static int pick_categories(const eval_dataset_spec *spec, bool (*is_cat)(const char *),
                           char ***names, int *n, insp_error *err)
{
    if (spec->n_categories > 0) {
        char **v = calloc((size_t)spec->n_categories, sizeof *v);
        if (!v)
            return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
        for (int i = 0; i < spec->n_categories; i++) {
            const char *name = spec->categories[i];
            char *dir = strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, ".")
                            ? NULL
                            : eval_path_join(spec->root, name);
            bool ok = dir && is_cat(dir);
            free(dir);
            if (!ok || !(v[i] = strdup(name))) {
                eval_free_names(v, i);
                return insp_error_set(err, INSP_ERR_NOT_FOUND,
                                      "category %s: no such category folder under %s", name,
                                      spec->root);
            }
        }
        *names = v;
        *n = spec->n_categories;
        return INSP_OK;
    }
    char **all;
    int n_all;
    int st = eval_list_dir(spec->root, true, &all, &n_all, err);
    if (st)
        return st;
    int kept = 0;
    for (int i = 0; i < n_all; i++) {
        char *dir = eval_path_join(spec->root, all[i]);
        if (dir && is_cat(dir))
            all[kept++] = all[i];
        else
            free(all[i]);
        free(dir);
    }
    *names = all;
    *n = kept;
    return INSP_OK;
}

static int check_dataset(const eval_dataset_spec *spec, eval_dataset *d, insp_error *err)
{
    if (d->n == 0)
        return insp_error_set(err, INSP_ERR_NOT_FOUND, "%s: no category found (%s layout)",
                              spec->root,
                              spec->layout == EVAL_MVTEC
                                  ? "MVTec AD: CAT/train/good, CAT/test/DEFECT, "
                                    "CAT/ground_truth/DEFECT/NAME_mask.png"
                                  : spec->layout == EVAL_VISA
                                        ? "VisA: split_csv/1cls.csv"
                                        : "folder: [CAT/]good, [CAT/]bad, [CAT/]masks, [CAT/]train");
    for (int i = 0; i < d->n; i++) {
        eval_category *c = &d->cats[i];
        if (!strcmp(c->name, "mean"))
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "a category is named \"mean\", the name of the average row");
        if (c->n_test == 0)
            return insp_error_set(err, INSP_ERR_NOT_FOUND, "category %s: no test image",
                                  c->name);
        // Both classes are needed for every metric; say so before hours of inference.
        if (c->n_anomalous == 0 || c->n_anomalous == c->n_test)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "category %s: all %d test images are %s; the metrics need "
                                  "normal and anomalous ones",
                                  c->name, c->n_test, c->n_anomalous ? "anomalous" : "normal");
        for (int j = 0; j < i; j++)
            if (!strcmp(d->cats[j].name, c->name))
                return insp_error_set(err, INSP_ERR_INVALID, "category %s given twice",
                                      c->name);
    }
    return INSP_OK;
}

int eval_dataset_load(const eval_dataset_spec *spec, eval_dataset *out, insp_error *err)
{
    memset(out, 0, sizeof *out);
    if (!eval_is_dir(spec->root))
        return insp_error_set(err, INSP_ERR_NOT_FOUND, "--root %s: no such directory",
                              spec->root);
    int st;
    if (spec->layout == EVAL_VISA) {
        st = eval_visa_load(spec, out, err);
    } else if (spec->layout == EVAL_FOLDER && is_folder_cat(spec->root)) {
        // good/ and bad/ right under the root: one category named after the folder.
        char *real = realpath(spec->root, NULL);
        char *slash = real ? strrchr(real, '/') : NULL;
        const char *cname = slash ? slash + 1 : "";
        if (!real)
            st = insp_error_set(err, INSP_ERR_IO, "--root %s: cannot resolve the path",
                                spec->root);
        else if (!*cname)
            st = insp_error_set(err, INSP_ERR_INVALID, "--root %s: cannot name its category",
                                spec->root);
        else if (spec->n_categories > 0 &&
                 (spec->n_categories > 1 || strcmp(spec->categories[0], cname)))
            st = insp_error_set(err, INSP_ERR_NOT_FOUND,
                                "--category: %s holds a single category, %s", spec->root, cname);
        else {
            eval_category *c = add_cat(out, cname);
            st = c ? load_folder_cat(spec->root, "", c, err)
                   : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
        }
        free(real);
    } else {
        char **names = NULL;
        int n = 0;
        bool (*is_cat)(const char *) = spec->layout == EVAL_MVTEC ? is_mvtec_cat : is_folder_cat;
        st = pick_categories(spec, is_cat, &names, &n, err);
        for (int i = 0; names && !st && i < n; i++) {
            eval_category *c = add_cat(out, names[i]);
            if (!c) {
                st = insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
            } else if (spec->layout == EVAL_MVTEC) {
                st = load_mvtec_cat(spec->root, c, err);
            } else {
                char *dir = eval_path_join(spec->root, names[i]);
                st = dir ? load_folder_cat(dir, names[i], c, err)
                         : insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
                free(dir);
            }
        }
        if (names)
            eval_free_names(names, n);
    }
    if (!st)
        st = check_dataset(spec, out, err);
    if (st)
        eval_dataset_free(out);
    return st;
}
