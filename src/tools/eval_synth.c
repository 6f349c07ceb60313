/* inspect-synth: writes a small synthetic inspection dataset — textured parts with scratches,
 * spots and missing pieces, and their exact masks — in the MVTec AD, VisA or folder layout,
 * so that inspect-eval can be exercised end to end without downloads. */
#include <getopt.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "inspectd/image.h"
#include "tools/eval.h"

typedef enum { L_MVTEC, L_VISA, L_FOLDER } layout;

/* Each category: a name (with an underscore, as MVTec's metal_nut) and a surface. */
static const char *const cat_names[] = {"metal_plate", "wood_board", "woven_fabric"};
enum { N_CATS = 3 };
static const char *const defect_names[] = {"scratch", "spot", "missing"};
enum { N_DEFECTS = 3 };

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uni(rng *r) { return (next(r) >> 11) * (1.0 / 9007199254740992.0); }

static rng rng_for(uint64_t seed, int cat, int kind, int index)
{
    rng r = {seed * 0x100000001B3ull ^ ((uint64_t)cat << 40) ^ ((uint64_t)kind << 32) ^
             (uint64_t)index};
    next(&r);
    return r;
}

/* One part: its surface parameters, jittered per image as real parts vary. */
typedef struct part {
    int cat, size;
    double phase, tone, cx, cy, radius;
    float *row_noise; /* [size] brushed-metal streaks */
} part;

static bool inside_object(const part *p, double x, double y)
{
    if (p->cat != 0)
        return true; // wood and fabric fill the frame
    double dx = x - p->cx, dy = y - p->cy;
    return dx * dx + dy * dy <= p->radius * p->radius;
}

/* The defect-free colour at (x, y); "background" is what shows where material is missing. */
static void surface(const part *p, int x, int y, bool background, float rgb[3])
{
    double s = p->size;
    if (p->cat == 0) {
        if (background || !inside_object(p, x, y)) {
            rgb[0] = 40, rgb[1] = 60, rgb[2] = 45; // green table mat
            return;
        }
        double shade = 1 - 0.25 * hypot(x - p->cx, y - p->cy) / p->radius;
        double v = (150 + p->tone + 25 * p->row_noise[y]) * shade;
        rgb[0] = (float)v, rgb[1] = (float)v, rgb[2] = (float)(v * 1.05);
    } else if (p->cat == 1) {
        if (background) {
            rgb[0] = 20, rgb[1] = 15, rgb[2] = 10;
            return;
        }
        double grain = sin((x + 6 * sin(y / (s / 7) + p->phase)) / (s / 24) + p->phase);
        double v = 0.75 + 0.18 * grain;
        rgb[0] = (float)((170 + p->tone) * v), rgb[1] = (float)((115 + p->tone) * v),
        rgb[2] = (float)(60 * v);
    } else {
        if (background) {
            rgb[0] = 10, rgb[1] = 10, rgb[2] = 30;
            return;
        }
        int cell = p->size / 16 > 2 ? p->size / 16 : 2;
        int over = ((x / cell) + (y / cell)) & 1;
        double t = over ? (x % cell) : (y % cell);
        double v = 0.7 + 0.3 * sin(M_PI * (t + 0.5) / cell);
        rgb[0] = (float)((60 + p->tone) * v), rgb[1] = (float)((90 + p->tone) * v),
        rgb[2] = (float)(170 * v);
    }
}

static double seg_dist(double px, double py, double ax, double ay, double bx, double by)
{
    double vx = bx - ax, vy = by - ay, wx = px - ax, wy = py - ay;
    double t = (wx * vx + wy * vy) / (vx * vx + vy * vy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypot(px - ax - t * vx, py - ay - t * vy);
}

/* Renders one image; with defect ≥ 0 also its mask (1 = defect). */
static void render(const part *p, int defect, rng *r, uint8_t *rgb, uint8_t *mask)
{
    int n = p->size;
    double s = n;
    // Defect geometry, placed on the object.
    double ax = 0, ay = 0, bx = 0, by = 0, width = 0;
    double spot_x[3], spot_y[3], spot_rx[3], spot_ry[3];
    int n_spots = 0;
    double hole_x = 0, hole_y = 0, hole_r = 0;
    double cx = p->cat == 0 ? p->cx : s / 2, cy = p->cat == 0 ? p->cy : s / 2;
    double reach = p->cat == 0 ? p->radius * 0.6 : s * 0.3;
    if (defect == 0) {
        double ang = uni(r) * M_PI, len = s * (0.25 + 0.2 * uni(r));
        double mx = cx + (uni(r) - 0.5) * reach, my = cy + (uni(r) - 0.5) * reach;
        ax = mx - cos(ang) * len / 2, ay = my - sin(ang) * len / 2;
        bx = mx + cos(ang) * len / 2, by = my + sin(ang) * len / 2;
        width = 1.0 + s / 128.0 * (1 + uni(r));
    } else if (defect == 1) {
        n_spots = 1 + (int)(uni(r) * 3);
        for (int k = 0; k < n_spots; k++) {
            // Spots spread apart so that they are separate regions (AUPRO counts each).
            double ang = 2 * M_PI * (k + uni(r) * 0.5) / n_spots;
            spot_x[k] = cx + cos(ang) * reach * 0.8 * (n_spots > 1);
            spot_y[k] = cy + sin(ang) * reach * 0.8 * (n_spots > 1);
            spot_rx[k] = s * (0.03 + 0.04 * uni(r));
            spot_ry[k] = s * (0.03 + 0.04 * uni(r));
        }
    } else if (defect == 2) {
        double ang = uni(r) * 2 * M_PI;
        double d = p->cat == 0 ? p->radius : reach * uni(r);
        hole_x = cx + cos(ang) * d, hole_y = cy + sin(ang) * d;
        hole_r = s * (0.08 + 0.05 * uni(r));
    }
    for (int y = 0; y < n; y++) {
        for (int x = 0; x < n; x++) {
            float c[3];
            bool bad = false;
            surface(p, x, y, false, c);
            if (defect == 0 && seg_dist(x, y, ax, ay, bx, by) <= width / 2 &&
                inside_object(p, x, y)) {
                c[0] = c[1] = c[2] = p->cat == 0 ? 235 : 25; // bright on metal, dark elsewhere
                bad = true;
            } else if (defect == 1) {
                for (int k = 0; k < n_spots && !bad; k++) {
                    double u = (x - spot_x[k]) / spot_rx[k], v = (y - spot_y[k]) / spot_ry[k];
                    if (u * u + v * v <= 1 && inside_object(p, x, y)) {
                        c[0] = 150, c[1] = 70, c[2] = 20; // rust
                        bad = true;
                    }
                }
            } else if (defect == 2 && hypot(x - hole_x, y - hole_y) <= hole_r &&
                       inside_object(p, x, y)) {
                surface(p, x, y, true, c);
                bad = true;
            }
            long i = (long)y * n + x;
            for (int ch = 0; ch < 3; ch++) {
                double v = c[ch] + (uni(r) - 0.5) * 6; // sensor noise
                rgb[3 * i + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
            }
            if (mask)
                mask[i] = bad;
        }
    }
}

static int write_rgb_png(const char *path, const uint8_t *rgb, int n)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)n;
    im.height = (png_uint_32)n;
    im.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&im, path, 0, rgb, 0, NULL)) {
        fprintf(stderr, "inspect-synth: %s: %s\n", path, im.message);
        return -1;
    }
    return 0;
}

static int write_jpeg(const char *path, const uint8_t *rgb, int n)
{
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long len = 0;
    insp_error err = {0};
    int rc = -1;
    if (tj && tjCompress2(tj, rgb, n, 0, n, TJPF_RGB, &jpeg, &len, TJSAMP_444, 95, 0) == 0)
        rc = eval_write_file(path, jpeg, len, &err) ? -1 : 0;
    if (rc)
        fprintf(stderr, "inspect-synth: %s: %s\n", path, err.msg[0] ? err.msg : "JPEG failed");
    tjFree(jpeg);
    if (tj)
        tjDestroy(tj);
    return rc;
}

/* The mask as an 8-bit PNG holding `on` for defect pixels (255 for MVTec, 1 as VisA's raw
 * masks). */
static int write_mask(const char *path, const uint8_t *mask, int n, uint8_t on)
{
    long np = (long)n * n;
    uint8_t *px = malloc((size_t)np), *png = NULL;
    size_t len = 0;
    insp_error err = {0};
    int rc = -1;
    if (px) {
        for (long i = 0; i < np; i++)
            px[i] = mask[i] ? on : 0;
        if (insp_png_encode_gray8(px, n, n, &png, &len) == INSP_OK)
            rc = eval_write_file(path, png, len, &err) ? -1 : 0;
    }
    if (rc)
        fprintf(stderr, "inspect-synth: %s: %s\n", path, err.msg[0] ? err.msg : "cannot encode");
    free(px);
    free(png);
    return rc;
}

static int mkdirs(const char *root, const char *sub)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, sub);
    insp_error err = {0};
    if (eval_mkdirs(path, &err)) {
        fprintf(stderr, "inspect-synth: %s\n", err.msg);
        return -1;
    }
    return 0;
}

typedef struct opts {
    const char *out;
    layout lay;
    int size, n_train, n_good, n_bad, n_cats;
    uint64_t seed;
} opts;

/* Writes one category's images; csv (VisA) gets its rows. */
static int write_category(const opts *o, int cat, FILE *csv)
{
    const char *name = cat_names[cat];
    int n = o->size;
    uint8_t *rgb = malloc((size_t)n * n * 3), *mask = malloc((size_t)n * n);
    float *rows = malloc((size_t)n * sizeof *rows);
    if (!rgb || !mask || !rows) {
        free(rgb);
        free(mask);
        free(rows);
        fprintf(stderr, "inspect-synth: out of memory\n");
        return -1;
    }
    int rc = 0;
    char dir[2048], file[4096], mfile[4096];
    int visa_normal = 0, visa_anomaly = 0;
    // kind 0: train, 1: test good, 2 + d: test with defect d.
    for (int kind = 0; !rc && kind < 2 + N_DEFECTS; kind++) {
        int count = kind == 0 ? o->n_train : kind == 1 ? o->n_good : o->n_bad;
        int defect = kind - 2;
        for (int i = 0; !rc && i < count; i++) {
            rng r = rng_for(o->seed, cat, kind, i);
            part p = {.cat = cat, .size = n, .row_noise = rows};
            p.phase = uni(&r) * 2 * M_PI;
            p.tone = (uni(&r) - 0.5) * 20;
            p.cx = n * (0.5 + (uni(&r) - 0.5) * 0.06);
            p.cy = n * (0.5 + (uni(&r) - 0.5) * 0.06);
            p.radius = n * (0.36 + (uni(&r) - 0.5) * 0.03);
            double acc = 0;
            for (int y = 0; y < n; y++) {
                acc = 0.8 * acc + 0.2 * (uni(&r) * 2 - 1);
                rows[y] = (float)acc;
            }
            render(&p, defect, &r, rgb, defect >= 0 ? mask : NULL);
            const char *dname = defect >= 0 ? defect_names[defect] : "good";
            bool jpeg = false;
            file[0] = mfile[0] = '\0';
            if (o->lay == L_MVTEC) {
                snprintf(dir, sizeof dir, "%s/%s/%s", name, kind == 0 ? "train" : "test", dname);
                snprintf(file, sizeof file, "%s/%03d.png", dir, i);
                if (defect >= 0)
                    snprintf(mfile, sizeof mfile, "%s/ground_truth/%s/%03d_mask.png", name,
                             dname, i);
            } else if (o->lay == L_FOLDER) {
                snprintf(dir, sizeof dir, "%s/%s", name,
                         kind == 0 ? "train" : defect >= 0 ? "bad" : "good");
                // Defect types share bad/: the name keeps them apart.
                snprintf(file, sizeof file, "%s/%s%03d.png", dir, defect >= 0 ? dname : "", i);
                if (defect >= 0)
                    snprintf(mfile, sizeof mfile, "%s/masks/%s%03d.png", name, dname, i);
            } else {
                jpeg = true;
                snprintf(dir, sizeof dir, "%s/Data/Images/%s", name,
                         defect >= 0 ? "Anomaly" : "Normal");
                int k = defect >= 0 ? visa_anomaly++ : visa_normal++;
                snprintf(file, sizeof file, "%s/%04d.JPG", dir, k);
                if (defect >= 0)
                    snprintf(mfile, sizeof mfile, "%s/Data/Masks/Anomaly/%04d.png", name, k);
                fprintf(csv, "%s,%s,%s,%s,%s\n", name, kind == 0 ? "train" : "test",
                        defect >= 0 ? "anomaly" : "normal", file, mfile);
            }
            char path[8192];
            rc = mkdirs(o->out, dir);
            snprintf(path, sizeof path, "%s/%s", o->out, file);
            if (!rc)
                rc = jpeg ? write_jpeg(path, rgb, n) : write_rgb_png(path, rgb, n);
            if (!rc && mfile[0]) {
                char mdir[4096];
                snprintf(mdir, sizeof mdir, "%s", mfile);
                *strrchr(mdir, '/') = '\0';
                rc = mkdirs(o->out, mdir);
                snprintf(path, sizeof path, "%s/%s", o->out, mfile);
                if (!rc)
                    rc = write_mask(path, mask, n, o->lay == L_VISA ? 1 : 255);
            }
        }
    }
    free(rgb);
    free(mask);
    free(rows);
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: inspect-synth --out DIR [--layout mvtec|visa|folder] [--categories N]\n"
          "                     [--size PX] [--train N] [--test-good N] [--test-bad N]\n"
          "                     [--seed S]\n"
          "\n"
          "Writes a synthetic dataset: up to 3 categories (metal_plate, wood_board,\n"
          "woven_fabric) of PX×PX parts; normal training images, normal test images, and\n"
          "--test-bad images of each defect (scratch, spot — one to three, missing piece) with\n"
          "exact masks. Defaults: mvtec, 2 categories, 128 px, 4 train, 6 good, 2 per defect.\n",
          f);
}

static int num(const char *opt, const char *arg, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v < lo || v > hi) {
        fprintf(stderr, "inspect-synth: %s takes an integer in %ld..%ld\n", opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"out", required_argument, 0, 'o'},       {"layout", required_argument, 0, 'l'},
        {"categories", required_argument, 0, 'c'}, {"size", required_argument, 0, 's'},
        {"train", required_argument, 0, 't'},     {"test-good", required_argument, 0, 'g'},
        {"test-bad", required_argument, 0, 'b'},  {"seed", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0},
    };
    opts o = {.lay = L_MVTEC, .size = 128, .n_train = 4, .n_good = 6, .n_bad = 2, .n_cats = 2};
    int ch, bad = 0;
    long v = 0;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'o': o.out = optarg; break;
        case 'l':
            if (!strcmp(optarg, "mvtec"))
                o.lay = L_MVTEC;
            else if (!strcmp(optarg, "visa"))
                o.lay = L_VISA;
            else if (!strcmp(optarg, "folder"))
                o.lay = L_FOLDER;
            else {
                fprintf(stderr, "inspect-synth: --layout is mvtec, visa or folder\n");
                bad = 1;
            }
            break;
        case 'c': bad |= num("--categories", optarg, 1, N_CATS, &v); o.n_cats = (int)v; break;
        case 's': bad |= num("--size", optarg, 32, 2048, &v); o.size = (int)v; break;
        case 't': bad |= num("--train", optarg, 0, 1000, &v); o.n_train = (int)v; break;
        case 'g': bad |= num("--test-good", optarg, 0, 1000, &v); o.n_good = (int)v; break;
        case 'b': bad |= num("--test-bad", optarg, 0, 1000, &v); o.n_bad = (int)v; break;
        case 'r': bad |= num("--seed", optarg, 0, 1L << 30, &v); o.seed = (uint64_t)v; break;
        case 'h': usage(stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad || !o.out || optind < argc) {
        if (!bad)
            fprintf(stderr, "inspect-synth: --out is required (and takes no other argument)\n");
        usage(stderr);
        return 2;
    }
    insp_error err = {0};
    if (eval_mkdirs(o.out, &err)) {
        fprintf(stderr, "inspect-synth: %s\n", err.msg);
        return 1;
    }
    FILE *csv = NULL;
    if (o.lay == L_VISA) {
        char path[4096];
        if (mkdirs(o.out, "split_csv"))
            return 1;
        snprintf(path, sizeof path, "%s/split_csv/1cls.csv", o.out);
        if (!(csv = fopen(path, "w"))) {
            fprintf(stderr, "inspect-synth: cannot create %s\n", path);
            return 1;
        }
        fputs("object,split,label,image,mask\n", csv);
    }
    int rc = 0;
    for (int c = 0; !rc && c < o.n_cats; c++)
        rc = write_category(&o, c, csv);
    if (csv && fclose(csv) != 0)
        rc = -1;
    if (rc)
        return 1;
    printf("inspect-synth: %d categor%s in %s\n", o.n_cats, o.n_cats == 1 ? "y" : "ies", o.out);
    return 0;
}
