/* Black-box tests of the inspect CLI: its own decode and resize of the fixture PNGs must
 * reproduce the golden WinCLIP scores and model-size maps within 1e-3; bad input must fail
 * clearly with a non-zero exit. */
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include "golden.h"
#include "harness.h"
#include "inspectd/image.h"
#include "inspectd/safetensors.h"

static const char *bin(void)
{
    const char *b = getenv("INSP_INSPECT_BIN");
    return b ? b : "build/src/tools/inspect";
}

/* Runs a shell command, capturing stdout (malloc'ed) and the exit status. */
static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    for (;;) {
        if (n + 4097 > cap)
            out = realloc(out, cap *= 2);
        size_t r = fread(out + n, 1, 4096, p);
        if (r == 0)
            break;
        n += r;
    }
    out[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

typedef struct fixture {
    const char *dir;
    golden_set g; /* manifest and expected outputs; the CLI loads the model itself */
} fixture;

/* One CLI run over every image of a fixture for one class and K references (0 = zero-shot);
 * checks each score and model-size map against the golden tensors. Returns the max errors. */
static void check_run(const fixture *f, json_t *cls, int shots, double *max_score,
                      double *max_map)
{
    const char *name = json_string_value(json_object_get(cls, "name"));
    const char *key = json_string_value(json_object_get(cls, "key"));
    int S = (int)json_integer_value(
        json_object_get(json_object_get(json_object_get(f->g.manifest, "model_cfg"), "vision_cfg"),
                        "image_size"));
    char mapdir[] = "/tmp/insp-cli-XXXXXX";
    REQUIRE(mkdtemp(mapdir) != NULL);

    char cmd[16384];
    int n = snprintf(cmd, sizeof cmd, "%s --model %s --object '%s' --map-dir %s --map-size model",
                     bin(), fixture_path(f->dir), name, mapdir);
    json_t *refs = json_object_get(f->g.manifest, "references");
    for (int i = 0; i < shots; i++)
        n += snprintf(cmd + n, sizeof cmd - n, " --ref %s/images/%s.png", fixture_path(f->dir),
                      json_string_value(json_array_get(refs, i)));
    json_t *images = json_object_get(f->g.manifest, "images");
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img)
    {
        n += snprintf(cmd + n, sizeof cmd - n, " %s/images/%s.png", fixture_path(f->dir),
                      json_string_value(img));
    }
    int status;
    char *out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 0);

    char *line = out, *save = NULL;
    size_t seen = 0;
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        CHECK_MSG(o != NULL, "not JSON: %s", line);
        if (!o)
            continue;
        const char *img_name = json_string_value(json_array_get(images, seen));
        char tname[256], want_img[4096];
        snprintf(want_img, sizeof want_img, "%s/images/%s.png", fixture_path(f->dir), img_name);
        CHECK(strcmp(json_string_value(json_object_get(o, "image")), want_img) == 0);
        CHECK(strcmp(json_string_value(json_object_get(o, "mode")),
                     shots ? "few-shot" : "zero-shot") == 0);
        CHECK(json_is_object(json_object_get(o, "timing_ms")));
        if (shots)
            snprintf(tname, sizeof tname, "few_shot.k%d.%s.image_score.%s", shots, key, img_name);
        else
            snprintf(tname, sizeof tname, "zero_shot.%s.image_score.%s", key, img_name);
        const float *want = golden_set_f32(&f->g, tname, 1);
        double score = json_real_value(json_object_get(o, "score"));
        if (want) {
            CHECK_NEAR(score, want[0], 1e-3);
            if (fabs(score - want[0]) > *max_score)
                *max_score = fabs(score - want[0]);
        }

        if (shots)
            snprintf(tname, sizeof tname, "few_shot.k%d.%s.map.%s", shots, key, img_name);
        else
            snprintf(tname, sizeof tname, "zero_shot.%s.map.%s", key, img_name);
        const float *want_map = golden_set_f32(&f->g, tname, (long)S * S);
        const char *map_path = json_string_value(json_object_get(o, "map"));
        size_t len = 0;
        char *png = map_path ? read_file(map_path, &len) : NULL;
        uint16_t *px = NULL;
        int w = 0, h = 0;
        CHECK_MSG(png && insp_png_decode_gray16(png, len, &px, &w, &h, NULL) == INSP_OK,
                  "map %s unreadable", map_path ? map_path : "(none)");
        if (px && want_map) {
            CHECK_EQ_INT(w, S);
            CHECK_EQ_INT(h, S);
            double err = 0;
            for (long p = 0; p < (long)S * S && w == S && h == S; p++) {
                double d = fabs(px[p] / 65535.0 - want_map[p]);
                err = d > err ? d : err;
            }
            CHECK_MSG(err <= 1e-3, "%s: map error %.3g", tname, err);
            *max_map = err > *max_map ? err : *max_map;
        }
        if (map_path)
            unlink(map_path);
        free(px);
        free(png);
        json_decref(o);
        seen++;
    }
    CHECK_EQ_INT(seen, json_array_size(images));
    free(out);
    rmdir(mapdir);
}

static void golden_fixture(const char *name)
{
    fixture f;
    f.dir = name;
    REQUIRE(golden_set_open(name, 0, &f.g) == INSP_OK);
    double max_score = 0, max_map = 0;
    size_t ci;
    json_t *cls;
    json_array_foreach(json_object_get(f.g.manifest, "classes"), ci, cls)
    {
        check_run(&f, cls, 0, &max_score, &max_map);
        size_t si;
        json_t *k;
        json_array_foreach(json_object_get(f.g.manifest, "shots"), si, k)
        {
            check_run(&f, cls, (int)json_integer_value(k), &max_score, &max_map);
        }
    }
    printf("  %s: CLI max |score error| %.3g, max |map error| %.3g\n", name, max_score, max_map);
    golden_set_close(&f.g);
}

static void golden_tiny(void) { golden_fixture("tiny"); }
static void golden_tiny_quickgelu(void) { golden_fixture("tiny-quickgelu"); }

static void map_at_image_size(void)
{
    /* A JPEG keeps its own size in the map file unless --map-size model is given. */
    char mapdir[] = "/tmp/insp-cli-XXXXXX";
    REQUIRE(mkdtemp(mapdir) != NULL);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s --model %s --object bottle --map-dir %s %s", bin(),
             fixture_path("tiny"), mapdir, fixture_path("tiny/images/04_missing.jpg"));
    int status;
    char *out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 0);
    insp_image img = {0};
    CHECK_OK(insp_image_load(fixture_path("tiny/images/04_missing.jpg"), 1 << 24, &img, NULL));
    char map_path[4200];
    snprintf(map_path, sizeof map_path, "%s/04_missing.png", mapdir);
    size_t len;
    char *png = read_file(map_path, &len);
    uint16_t *px = NULL;
    int w = 0, h = 0;
    CHECK(png && insp_png_decode_gray16(png, len, &px, &w, &h, NULL) == INSP_OK);
    CHECK_EQ_INT(w, img.width);
    CHECK_EQ_INT(h, img.height);
    unlink(map_path);
    rmdir(mapdir);
    free(px);
    free(png);
    free(out);
    insp_image_free(&img);
}

static void bad_inputs_fail_clearly(void)
{
    char cmd[8192];
    int status;
    /* A missing file and a non-image among good ones: the good one is still scored, the run
     * exits 1 and says why for each bad one on stderr. */
    snprintf(cmd, sizeof cmd, "%s --model %s --object bottle /nonexistent.png %s %s 2>&1", bin(),
             fixture_path("tiny"), fixture_path("tiny/manifest.json"),
             fixture_path("tiny/images/00_normal.png"));
    char *out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 1);
    CHECK(strstr(out, "/nonexistent.png") && strstr(out, "No such file"));
    CHECK(strstr(out, "not a JPEG or PNG image"));
    CHECK(strstr(out, "\"score\""));
    free(out);

    /* A model directory that is not one. */
    snprintf(cmd, sizeof cmd, "%s --model /nonexistent-model --object bottle %s 2>&1", bin(),
             fixture_path("tiny/images/00_normal.png"));
    out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 2);
    CHECK(strstr(out, "/nonexistent-model") != NULL);
    free(out);

    /* An unreadable reference stops the run before any image is scored. */
    snprintf(cmd, sizeof cmd, "%s --model %s --object bottle --ref %s %s 2>&1", bin(),
             fixture_path("tiny"), fixture_path("tiny/manifest.json"),
             fixture_path("tiny/images/00_normal.png"));
    out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 2);
    CHECK(strstr(out, "reference") && !strstr(out, "\"score\""));
    free(out);

    /* Missing arguments. */
    snprintf(cmd, sizeof cmd, "%s --object bottle 2>&1", bin());
    out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 2);
    CHECK(strstr(out, "usage") != NULL);
    free(out);
}

static void tokenize_prints_ids(void)
{
    char cmd[4096];
    int status;
    snprintf(cmd, sizeof cmd, "%s --tokenize 'a photo of a cat' 'screw with defect'", bin());
    char *out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 0);
    /* Ids from tests/fixtures/tiny/tokenizer.json. */
    CHECK(strcmp(out, "[49406,320,1125,539,320,2368,49407]\n[49406,14225,593,44013,49407]\n") ==
          0);
    free(out);
    snprintf(cmd, sizeof cmd, "%s --tokenize \"$(printf '\\377\\376')\" 2>&1", bin());
    out = run(cmd, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 1);
    free(out);
}

TEST_MAIN(T(golden_tiny), T(golden_tiny_quickgelu), T(map_at_image_size),
          T(bad_inputs_fail_clearly), T(tokenize_prints_ids))
