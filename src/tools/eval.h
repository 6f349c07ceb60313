/* inspect-eval's internal interface: dataset layouts, the paper's metrics, the run over a
 * dataset and the files it writes. Shared by src/tools/eval_*.c and tests/test_eval_metrics.c. */
#ifndef INSPECTD_TOOLS_EVAL_H
#define INSPECTD_TOOLS_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspectd/status.h"

/* ---- metrics (eval_metrics.c) -------------------------------------------------------------
 * Every score is a float (the engine's precision); samples with equal scores share one
 * threshold, so ties are handled as scikit-learn does. Fewer than two classes is an error
 * (INSP_ERR_INVALID), never NaN. */

/* Points of a curve for plotting, thinned so that consecutive points are at least
 * EVAL_CURVE_STEP apart (|dx| + |dy|) but always keeping the first and last. Owned; free
 * with eval_curve_free (NULL is fine). */
#define EVAL_CURVE_STEP 0.002
typedef struct eval_curve {
    double *x, *y;
    long n;
} eval_curve;
void eval_curve_free(eval_curve *c);

typedef struct eval_binary {
    double auroc;       /* area under ROC (trapezoids between distinct thresholds) */
    double ap;          /* average precision: Σ (R_k − R_{k−1}) · P_k, no interpolation */
    double f1max;       /* max over thresholds of 2·P·R / (P + R) */
    float f1_threshold; /* the score at F1-max: "anomalous" means score ≥ this */
    long n, n_pos;
} eval_binary;

/* Image-level metrics of n scores with labels 0 (normal) / 1 (anomalous). roc (FPR, TPR) and
 * pr (recall, precision) may be NULL. INSP_ERR_INVALID for n < 1, a NaN score, a label other
 * than 0/1 or a single class. */
int eval_binary_metrics(const float *score, const uint8_t *label, long n, eval_binary *out,
                        eval_curve *roc, eval_curve *pr, insp_error *err);

/* AUPRO integrates the per-region-overlap curve up to this false positive rate and divides by
 * it (Bergmann et al., MVTec AD, IJCV 2021). */
#define EVAL_PRO_FPR_LIMIT 0.3

typedef struct eval_pixel {
    double auroc;       /* pixel AUROC */
    double aupro;       /* normalized area under PRO(FPR) for FPR ∈ [0, 0.3] */
    double f1max;       /* pixel F1-max */
    float f1_threshold;
    long n, n_pos;
    int n_regions;
} eval_pixel;

/* Pixel-level metrics. region[n]: 0 for a normal pixel, 1..n_regions for the pixels of each
 * ground-truth region (connected component). At a threshold t, FPR = normal pixels ≥ t over
 * all normal pixels, PRO = mean over regions of (region pixels ≥ t) / (region size). roc and
 * pro (FPR, PRO) may be NULL. INSP_ERR_INVALID for no normal pixel, no region, an empty
 * region, a region id out of 0..n_regions or a NaN score. */
int eval_pixel_metrics(const float *score, const int32_t *region, long n, int n_regions,
                       eval_pixel *out, eval_curve *roc, eval_curve *pro, insp_error *err);

/* ---- regions (eval_regions.c) --------------------------------------------------------------- */

/* Labels the 8-connected components of mask[h, w] (non-zero = anomalous, as the MVTec AD
 * evaluation code does with a 3×3 structuring element): region[p] = first_id + k for the k-th
 * component in row-major order of first pixel, 0 elsewhere. *n_found gets the count.
 * INSP_ERR_NOMEM, or INSP_ERR_INVALID for a side < 1 or first_id < 1 (0 means background). */
int eval_label_regions(const uint8_t *mask, int w, int h, int32_t first_id, int32_t *region,
                       int *n_found);

/* Nearest-neighbour resample of a binary mask by pixel centres (keeps it binary). */
void eval_mask_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

/* ---- files (eval_fs.c) --------------------------------------------------------------------- */

/* malloc'ed "a/b" (NULL on allocation failure). */
char *eval_path_join(const char *a, const char *b);
/* The file name without directory and last extension, malloc'ed. */
char *eval_stem(const char *path);
/* Whether name ends in .png, .jpg or .jpeg (any case): what the decoder reads. */
bool eval_is_image_name(const char *name);
bool eval_is_dir(const char *path);
bool eval_is_file(const char *path);
/* Sorted names (byte order) of a directory's entries that are directories (dirs = true) or
 * image files (dirs = false), hidden ones skipped. *names is a malloc'ed array of malloc'ed
 * strings, freed with eval_free_names. INSP_ERR_NOT_FOUND if the directory is missing. */
int eval_list_dir(const char *path, bool dirs, char ***names, int *n, insp_error *err);
void eval_free_names(char **names, int n);
/* Whole file into *data (malloc'ed, NUL-terminated, *len without the NUL). Up to 1 GB. */
int eval_read_file(const char *path, char **data, size_t *len, insp_error *err);
int eval_write_file(const char *path, const void *data, size_t len, insp_error *err);
/* mkdir -p. */
int eval_mkdirs(const char *path, insp_error *err);
/* Loads a mask (gray or color PNG/JPEG; any non-zero sample is anomalous) as 0/1 bytes. */
int eval_load_mask(const char *path, uint8_t **mask, int *w, int *h, insp_error *err);

/* Splits one CSV line in place into at most max fields (RFC 4180 quoting: double quotes
 * group, "" is a quote); returns the number of fields. (eval_csv.c) */
int eval_csv_split(char *line, char **fields, int max);

/* ---- datasets (eval_dataset.c, eval_visa.c) ------------------------------------------------ */

typedef enum eval_layout {
    EVAL_MVTEC = 0, /* CAT/train/good, CAT/test/DEFECT, CAT/ground_truth/DEFECT/NAME_mask.png */
    EVAL_VISA,      /* split_csv/1cls.csv: object,split,label,image,mask */
    EVAL_FOLDER,    /* [CAT/]good, [CAT/]bad, optional [CAT/]masks and [CAT/]train */
} eval_layout;

typedef struct eval_sample {
    char *path;     /* the file to open */
    char *rel;      /* relative to the root: what scores.csv lists */
    char *defect;   /* "good" for normal images; names maps/CAT/DEFECT/ */
    char *mask;     /* NULL for normal images and where the dataset has no masks */
    uint8_t label;  /* 0 normal, 1 anomalous */
} eval_sample;

typedef struct eval_category {
    char *name;
    char *object;      /* the prompt's object word (set by the caller) */
    char **train;      /* normal images the shots are drawn from (paths to open) */
    char **train_rel;
    int n_train;
    eval_sample *test;
    int n_test, n_anomalous;
    bool has_masks;    /* every anomalous test image has a mask */
} eval_category;

typedef struct eval_dataset {
    eval_category *cats;
    int n;
} eval_dataset;

typedef struct eval_dataset_spec {
    eval_layout layout;
    const char *root;
    const char *split_csv;               /* VisA; NULL = ROOT/split_csv/1cls.csv */
    const char *const *categories;       /* only these, in this order; none = all, sorted */
    int n_categories;
} eval_dataset_spec;

/* Reads a dataset's file lists (no image is decoded). Errors name the path and what is
 * missing: an unknown category, an anomalous image without its mask, an empty test set. */
int eval_dataset_load(const eval_dataset_spec *spec, eval_dataset *out, insp_error *err);
void eval_dataset_free(eval_dataset *d);

/* Internal to the loaders: appends to a category. */
int eval_cat_add_test(eval_category *c, const char *path, const char *rel, const char *defect,
                      const char *mask, int label);
int eval_cat_add_train(eval_category *c, const char *path, const char *rel);
int eval_visa_load(const eval_dataset_spec *spec, eval_dataset *out, insp_error *err);

/* ---- the run (eval_run.c) ------------------------------------------------------------------ */

enum {
    EVAL_IMAGE_AUROC = 0,
    EVAL_IMAGE_AP,
    EVAL_IMAGE_F1MAX,
    EVAL_PIXEL_AUROC,
    EVAL_PIXEL_AUPRO,
    EVAL_PIXEL_F1MAX,
    EVAL_N_METRICS,
};
extern const char *const eval_metric_keys[EVAL_N_METRICS];   /* "image_auroc", ... */
extern const char *const eval_metric_titles[EVAL_N_METRICS]; /* "image AUROC", ... */

#define EVAL_MAX_SEEDS 64

typedef struct eval_settings {
    const char *model_dir;
    const char *out_dir;
    const char *dataset;   /* "mvtec", "visa" or "folder": for the outputs' headers */
    const char *root;
    int shots;          /* 0 = zero-shot */
    int seeds;          /* reference draws 0..seeds-1 (1 when zero-shot), ≤ EVAL_MAX_SEEDS */
    int threads;
    float smooth;       /* Gaussian σ in pixels at the model's input size */
    int pixel_size;     /* pixel metrics on N×N maps and masks; 0 = the model's S; -1 = image */
    bool pixel;         /* compute pixel metrics where masks exist */
    bool save_maps;
    bool quiet;
    int examples;       /* report overlays per kind and category */
} eval_settings;

/* A report thumbnail: the image with its map blended in and the mask outlined. */
typedef struct eval_example {
    int index;          /* into the category's test list */
    float score;
    char *jpeg_b64;     /* base64 JPEG, owned */
} eval_example;

typedef struct eval_cat_result {
    double (*per_seed)[EVAL_N_METRICS]; /* [seeds][metric], NaN where not computed */
    float **scores;                   /* [seeds][n_test] final image scores */
    const char ***refs;               /* [seeds][shots] root-relative paths of the shots */
    eval_curve img_roc, img_pr, pix_roc, pix_pro; /* first seed, for the report */
    float img_threshold, pix_threshold;           /* F1-max thresholds of the first seed */
    long n_pixels;
    int n_regions;
    const char *pixel_note;           /* why pixel metrics are absent (static string) */
    eval_example *normals, *anomalies; /* highest-scoring normals, lowest-scoring anomalies */
    int n_normals, n_anomalies;
    float map_lo, map_hi;             /* colour scale of the overlays */
    double seconds;
} eval_cat_result;

typedef struct eval_results {
    eval_cat_result *cats;  /* [dataset n] */
    int n_cats, n_seeds, shots;
    char model_sha256[65];
    char model_dtype[8];
    int image_size, grid, pixel_w, pixel_h; /* pixel_w/h: 0 for the images' own sizes */
    double load_seconds, seconds;
    long n_images;          /* test images inspected (not counting shots) */
} eval_results;

/* Loads the model and runs every category: shots drawn per seed, each test image's towers
 * run once and scored against every seed's memory, metrics per seed, maps written under
 * OUT/maps with save_maps, progress on stderr. */
int eval_run(const eval_settings *s, const eval_dataset *d, eval_results *out, insp_error *err);
void eval_results_free(eval_results *r);

/* Mean and standard deviation (population, as numpy's default) over seeds of one metric of a
 * category, or of the category mean (cat = -1: per seed the mean over categories, NaN if any
 * category lacks the metric). NaN mean when not computed. */
void eval_summary(const eval_results *r, int cat, int metric, double *mean, double *std);

/* The shots drawn for a seed: k distinct indices out of n, deterministic in (seed, salt). */
void eval_draw_shots(uint64_t seed, const char *salt, int n, int k, int *out);

/* ---- outputs (eval_output.c, eval_report.c, eval_overlay.c) -------------------------------- */

/* metrics.json, metrics.md, scores.csv (+ scores-seedN.csv), run.json. */
int eval_write_outputs(const eval_settings *s, const eval_dataset *d, const eval_results *r,
                       const char *const *argv, int argc, insp_error *err);
/* "WinCLIP zero-shot" or "WinCLIP+ 4-shot, 5 seeds". */
void eval_describe_setting(const eval_settings *s, char *buf, size_t size);
/* report.html: table, ROC/PR/PRO curves as inline SVG, heat-map overlays. */
int eval_write_report(const eval_settings *s, const eval_dataset *d, const eval_results *r,
                      insp_error *err);
/* Blends map[mh, mw] (scaled lo..hi) over the image resized to mw×mh, outlines mask[mh, mw]
 * (may be NULL) and returns a base64 JPEG. */
int eval_overlay_b64(const char *image_path, const float *map, const uint8_t *mask, int mw,
                     int mh, float lo, float hi, char **b64, insp_error *err);

/* ---- checking against other tools (eval_check.c) ------------------------------------------- */

/* --metrics-only FILE: a "path,label,score" CSV (image metrics) or a "map,mask" CSV of 16-bit
 * map PNGs and masks (pixel metrics); prints one JSON object on stdout. */
int eval_metrics_only(const char *csv_path, insp_error *err);

#endif
