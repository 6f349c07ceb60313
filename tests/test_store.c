/* Tests of the product store on real files in a temporary directory: the operations, restart,
 * damaged products, crash leftovers (real crashes of a forked child at every file-system step
 * and injected ENOSPC failures), id validation, the embedding cache and the checker. */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "store/fsutil.h"
#include "store/store.h"

/* ---- helpers ---- */

static char tmp_root[64];

static const char *new_state_dir(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/inspd-store-XXXXXX");
    if (!mkdtemp(tmp_root))
        return NULL;
    return tmp_root;
}

static void remove_state_dir(void)
{
    insp_fs_remove_tree(tmp_root, NULL);
}

static const char *path_in(const char *fmt, const char *a, const char *b)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    char rel[512];
    snprintf(rel, sizeof rel, fmt, a ? a : "", b ? b : "");
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_root, rel);
    return buf[k];
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Entries of a directory other than . and .. (-1 when it cannot be opened). */
static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            (!prefix || strncmp(e->d_name, prefix, strlen(prefix)) == 0))
            n++;
    closedir(d);
    return n;
}

static void write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

/* A fake image: the format's signature, then bytes derived from seed (the store does not
 * decode images, it only keeps them). */
typedef struct fake_image {
    unsigned char bytes[300];
    size_t len;
    const char *type;
} fake_image;

static fake_image make_image(int seed, bool png)
{
    fake_image im;
    im.len = 100 + (size_t)(seed * 7 % 150);
    im.type = png ? "image/png" : "image/jpeg";
    for (size_t i = 0; i < im.len; i++)
        im.bytes[i] = (unsigned char)(seed * 31 + i * 17 + (i >> 3));
    if (png)
        memcpy(im.bytes, "\x89PNG\r\n\x1a\n", 8);
    else
        memcpy(im.bytes, "\xff\xd8\xff\xe0", 4);
    /* "--" and CR LF inside the data too */
    memcpy(im.bytes + 20, "\r\n--\r\n", 6);
    return im;
}

static insp_ref_upload upload_of(const fake_image *im)
{
    insp_ref_upload u = {im->bytes, im->len, im->type};
    return u;
}

static void def_of(const char *object, insp_product_def *d)
{
    char json[256];
    snprintf(json, sizeof json, "{\"object\": \"%s\", \"threshold\": 0.5}", object);
    insp_error e;
    if (insp_product_def_parse(json, strlen(json), d, &e) != 0)
        memset(d, 0, sizeof *d);
}

static int put_simple_err(insp_store *s, const char *id, const char *object, insp_error *e)
{
    insp_product_def d;
    def_of(object, &d);
    int st = insp_store_put(s, id, &d, NULL, NULL, e);
    insp_product_def_free(&d);
    return st;
}

static int put_simple(insp_store *s, const char *id, const char *object)
{
    insp_error e;
    return put_simple_err(s, id, object, &e);
}

static int add_images(insp_store *s, const char *id, int first_seed, int n, int *count,
                      insp_error *e)
{
    fake_image im[16];
    insp_ref_upload up[16];
    for (int i = 0; i < n; i++) {
        im[i] = make_image(first_seed + i, i % 2 == 0);
        up[i] = upload_of(&im[i]);
    }
    return insp_store_add_references(s, id, n, up, count, e);
}

static int problems_found;
static char last_problem[1024];
static char all_problems[4096];

static void on_problem(const char *id, const char *problem, void *user)
{
    (void)user;
    problems_found++;
    snprintf(last_problem, sizeof last_problem, "%s: %s", id, problem);
    size_t n = strlen(all_problems);
    snprintf(all_problems + n, sizeof all_problems - n, "%s\n", last_problem);
}

static int check_state(void)
{
    problems_found = 0;
    last_problem[0] = '\0';
    all_problems[0] = '\0';
    return insp_store_check(tmp_root, on_problem, NULL);
}

/* ---- tests ---- */

static void sha256_known_vectors(void)
{
    char hex[65];
    insp_sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    insp_sha256_hex("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
}

static void put_get_list_delete(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK(exists(path_in("products", NULL, NULL)));

    insp_product_def d;
    def_of("printed circuit board", &d);
    bool created = false;
    insp_stored_product *p = NULL;
    CHECK_OK(insp_store_put(s, "pcb-rev7", &d, &created, &p, &e));
    CHECK(created);
    REQUIRE(p);
    CHECK_EQ_INT(p->version, 1);
    CHECK_EQ_INT(p->n_refs, 0);
    CHECK(strcmp(p->id, "pcb-rev7") == 0);
    CHECK(strcmp(p->created, p->updated) == 0);
    CHECK(strlen(p->created) == 24 && p->created[10] == 'T' && p->created[23] == 'Z');
    char created_at[32];
    snprintf(created_at, sizeof created_at, "%s", p->created);
    insp_stored_product_free(p);
    insp_product_def_free(&d);
    CHECK(exists(path_in("products/pcb-rev7/product.json", NULL, NULL)));

    CHECK_OK(put_simple(s, "bottle", "bottle"));

    /* replace: same created time, version 2, new definition */
    def_of("circuit board", &d);
    CHECK_OK(insp_store_put(s, "pcb-rev7", &d, &created, NULL, &e));
    CHECK(!created);
    insp_product_def_free(&d);
    CHECK_OK(insp_store_get(s, "pcb-rev7", &p, &e));
    REQUIRE(p);
    CHECK_EQ_INT(p->version, 2);
    CHECK(strcmp(p->def.object, "circuit board") == 0);
    CHECK(!p->def.threshold_auto && p->def.threshold == 0.5);
    CHECK(strcmp(p->created, created_at) == 0);
    insp_stored_product_free(p);

    char **ids;
    int n;
    CHECK_OK(insp_store_list(s, &ids, &n, &e));
    CHECK_EQ_INT(n, 2);
    CHECK(n == 2 && strcmp(ids[0], "bottle") == 0 && strcmp(ids[1], "pcb-rev7") == 0);
    insp_store_ids_free(ids, n);

    CHECK_OK(insp_store_delete(s, "pcb-rev7", &e));
    CHECK(!exists(path_in("products/pcb-rev7", NULL, NULL)));
    CHECK_EQ_INT(count_entries(path_in("products", NULL, NULL), NULL), 1); /* no trash left */
    CHECK_EQ_INT(insp_store_get(s, "pcb-rev7", &p, &e), INSP_ERR_NOT_FOUND);
    CHECK(p == NULL);
    CHECK(strstr(e.msg, "pcb-rev7") != NULL);
    CHECK_EQ_INT(insp_store_delete(s, "pcb-rev7", &e), INSP_ERR_NOT_FOUND);
    CHECK_OK(insp_store_list(s, &ids, &n, &e));
    CHECK(n == 1 && strcmp(ids[0], "bottle") == 0);
    insp_store_ids_free(ids, n);
    /* re-creating a deleted id starts afresh */
    CHECK_OK(put_simple(s, "pcb-rev7", "board"));
    CHECK_OK(insp_store_get(s, "pcb-rev7", &p, &e));
    CHECK(p && p->version == 1 && p->n_refs == 0);
    insp_stored_product_free(p);
    CHECK_EQ_INT(check_state(), 0);
    insp_store_close(s);
    insp_store_close(NULL);
    remove_state_dir();
}

static void references_add_in_order_and_clear(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_OK(put_simple(s, "pcb", "board"));
    int count = -1;
    CHECK_OK(add_images(s, "pcb", 1, 2, &count, &e));
    CHECK_EQ_INT(count, 2);
    CHECK_OK(add_images(s, "pcb", 3, 3, &count, &e));
    CHECK_EQ_INT(count, 5);

    insp_stored_product *p;
    CHECK_OK(insp_store_get(s, "pcb", &p, &e));
    REQUIRE(p);
    CHECK_EQ_INT(p->n_refs, 5);
    CHECK_EQ_INT(p->version, 3);
    CHECK_EQ_INT(count_entries(path_in("products/pcb/refs", NULL, NULL), NULL), 5);
    for (int i = 0; i < p->n_refs && i < 5; i++) {
        fake_image im = make_image(1 + i, i < 2 ? i % 2 == 0 : (i - 2) % 2 == 0);
        void *data;
        size_t len;
        CHECK_OK(insp_store_read_reference(s, "pcb", i, &data, &len, &e));
        CHECK_MSG(len == im.len && memcmp(data, im.bytes, len) == 0, "reference %d differs", i);
        free(data);
        CHECK_EQ_INT(p->refs[i].size, im.len);
        CHECK(strcmp(p->refs[i].content_type, im.type) == 0);
        const char *ext = strrchr(p->refs[i].file, '.');
        CHECK(ext && strcmp(ext, strcmp(im.type, "image/png") == 0 ? ".png" : ".jpg") == 0);
        /* the file on disk is exactly the upload */
        size_t flen;
        char *fdata = read_file(path_in("products/pcb/%s", p->refs[i].file, NULL), &flen);
        CHECK(fdata && flen == im.len && memcmp(fdata, im.bytes, flen) == 0);
        free(fdata);
    }
    /* read_ref_file on a snapshot works the same */
    void *data;
    size_t len;
    CHECK_OK(insp_store_read_ref_file(s, "pcb", &p->refs[4], &data, &len, &e));
    free(data);
    CHECK_EQ_INT(insp_store_read_reference(s, "pcb", 5, &data, &len, &e), INSP_ERR_NOT_FOUND);
    CHECK_EQ_INT(insp_store_read_reference(s, "pcb", -1, &data, &len, &e), INSP_ERR_NOT_FOUND);

    /* replacing the definition keeps the references */
    CHECK_OK(put_simple(s, "pcb", "printed circuit board"));
    insp_stored_product *p2;
    CHECK_OK(insp_store_get(s, "pcb", &p2, &e));
    REQUIRE(p2);
    CHECK_EQ_INT(p2->n_refs, 5);
    for (int i = 0; i < 5 && i < p2->n_refs; i++)
        CHECK(strcmp(p2->refs[i].sha256, p->refs[i].sha256) == 0);
    insp_stored_product_free(p2);

    /* refusals leave the product as it was */
    fake_image big[12];
    insp_ref_upload up[12];
    for (int i = 0; i < 12; i++) {
        big[i] = make_image(100 + i, true);
        up[i] = upload_of(&big[i]);
    }
    fake_image dup = make_image(2, false); /* identical to stored reference 2 */
    insp_ref_upload dups[2] = {upload_of(&big[0]), upload_of(&dup)};
    CHECK_EQ_INT(insp_store_add_references(s, "pcb", 2, dups, &count, &e), INSP_ERR_CONFLICT);
    CHECK(strstr(e.msg, "identical to stored reference 2") != NULL);
    insp_ref_upload twice[2] = {upload_of(&big[0]), upload_of(&big[0])};
    CHECK_EQ_INT(insp_store_add_references(s, "pcb", 2, twice, &count, &e), INSP_ERR_CONFLICT);
    insp_ref_upload gif = {big[0].bytes, big[0].len, "image/gif"};
    CHECK_EQ_INT(insp_store_add_references(s, "pcb", 1, &gif, &count, &e), INSP_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "image/gif") != NULL);
    insp_ref_upload empty = {big[0].bytes, 0, "image/png"};
    CHECK_EQ_INT(insp_store_add_references(s, "pcb", 1, &empty, &count, &e), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_store_add_references(s, "pcb", 0, up, &count, &e), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_store_add_references(s, "nope", 1, up, &count, &e), INSP_ERR_NOT_FOUND);
    CHECK_EQ_INT(count_entries(path_in("products/pcb/refs", NULL, NULL), NULL), 5);
    CHECK_OK(insp_store_get(s, "pcb", &p2, &e));
    CHECK(p2 && p2->n_refs == 5 && p2->version == 4);
    insp_stored_product_free(p2);
    /* content types: case and parameters do not matter, "image/jpg" is jpeg */
    insp_ref_upload odd[2] = {{big[1].bytes, big[1].len, " Image/PNG ; q=1"},
                              {big[2].bytes, big[2].len, "image/jpg"}};
    CHECK_OK(insp_store_add_references(s, "pcb", 2, odd, &count, &e));
    CHECK_EQ_INT(count, 7);
    CHECK_OK(insp_store_get(s, "pcb", &p2, &e));
    CHECK(p2 && strcmp(p2->refs[5].content_type, "image/png") == 0 &&
          strcmp(p2->refs[6].content_type, "image/jpeg") == 0);
    insp_stored_product_free(p2);

    /* cache entries go with the references */
    CHECK_OK(insp_store_cache_put(s, "pcb", "abc123", p->refs[0].sha256, "xyz", 3, &e));
    CHECK_OK(insp_store_clear_references(s, "pcb", &e));
    CHECK_OK(insp_store_get(s, "pcb", &p2, &e));
    CHECK(p2 && p2->n_refs == 0 && strcmp(p2->def.object, "printed circuit board") == 0);
    insp_stored_product_free(p2);
    CHECK(!exists(path_in("products/pcb/refs", NULL, NULL)));
    CHECK(!exists(path_in("products/pcb/cache", NULL, NULL)));
    CHECK_EQ_INT(insp_store_read_reference(s, "pcb", 0, &data, &len, &e), INSP_ERR_NOT_FOUND);
    CHECK_EQ_INT(insp_store_read_ref_file(s, "pcb", &p->refs[0], &data, &len, &e),
                 INSP_ERR_NOT_FOUND);
    CHECK_OK(insp_store_clear_references(s, "pcb", &e)); /* again: a no-op */
    CHECK_EQ_INT(insp_store_clear_references(s, "nope", &e), INSP_ERR_NOT_FOUND);
    /* a cleared product takes references again, the old ones included */
    CHECK_OK(add_images(s, "pcb", 1, 2, &count, &e));
    CHECK_EQ_INT(count, 2);
    CHECK_EQ_INT(check_state(), 0);
    insp_stored_product_free(p);
    insp_store_close(s);
    remove_state_dir();
}

static void reference_count_bound(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_OK(put_simple(s, "many", "board"));
    int count = 0, batch = 16;
    for (int first = 0; first + batch <= INSP_STORE_MAX_REFS; first += batch)
        CHECK_OK(add_images(s, "many", 1000 + first, batch, &count, &e));
    CHECK_EQ_INT(count, INSP_STORE_MAX_REFS);
    int st = add_images(s, "many", 5000, 1, &count, &e);
    CHECK_EQ_INT(st, INSP_ERR_TOO_LARGE);
    CHECK(strstr(e.msg, "would exceed the limit") != NULL);
    fake_image im = make_image(1, true);
    insp_ref_upload up[INSP_STORE_MAX_REFS + 1];
    for (int i = 0; i <= INSP_STORE_MAX_REFS; i++)
        up[i] = upload_of(&im);
    CHECK_OK(put_simple(s, "few", "board"));
    CHECK_EQ_INT(insp_store_add_references(s, "few", INSP_STORE_MAX_REFS + 1, up, &count, &e),
                 INSP_ERR_TOO_LARGE);
    insp_stored_product *p;
    CHECK_OK(insp_store_get(s, "many", &p, &e));
    CHECK(p && p->n_refs == INSP_STORE_MAX_REFS);
    insp_stored_product_free(p);
    CHECK_EQ_INT(check_state(), 0);
    insp_store_close(s);
    remove_state_dir();
}

static void hand_built_definitions_are_checked(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    insp_product_def d;
    memset(&d, 0, sizeof d); /* no object word */
    CHECK_EQ_INT(insp_store_put(s, "x", &d, NULL, NULL, &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "definition: object") != NULL);
    def_of("board", &d);
    d.threshold = NAN;
    d.threshold_auto = false;
    CHECK_EQ_INT(insp_store_put(s, "x", &d, NULL, NULL, &e), INSP_ERR_INVALID);
    d.threshold = 1.5;
    CHECK_EQ_INT(insp_store_put(s, "x", &d, NULL, NULL, &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "threshold") != NULL);
    d.threshold = 0.75; /* an edited but valid definition is fine */
    CHECK_OK(insp_store_put(s, "x", &d, NULL, NULL, &e));
    insp_product_def_free(&d);
    CHECK_EQ_INT(insp_store_put(s, "x", NULL, NULL, NULL, &e), INSP_ERR_INVALID);
    insp_stored_product *p;
    CHECK_OK(insp_store_get(s, "x", &p, &e));
    CHECK(p && p->version == 1 && !p->def.threshold_auto && p->def.threshold == 0.75);
    insp_stored_product_free(p);
    insp_store_close(s);
    remove_state_dir();
}

typedef struct loaded {
    int n;
    char ids[8][72];
    int n_refs[8];
    char objects[8][64];
    int n_bad;
    char bad_ids[8][72];
    char bad_msgs[8][512];
} loaded;

static void on_loaded(const char *id, const insp_stored_product *p, void *user)
{
    loaded *l = user;
    if (l->n < 8) {
        snprintf(l->ids[l->n], sizeof l->ids[0], "%s", id);
        l->n_refs[l->n] = p->n_refs;
        snprintf(l->objects[l->n], sizeof l->objects[0], "%s", p->def.object);
    }
    l->n++;
}

static void on_bad(const char *id, const insp_error *why, void *user)
{
    loaded *l = user;
    if (l->n_bad < 8) {
        snprintf(l->bad_ids[l->n_bad], sizeof l->bad_ids[0], "%s", id);
        snprintf(l->bad_msgs[l->n_bad], sizeof l->bad_msgs[0], "%s", why->msg);
    }
    l->n_bad++;
}

static void restart_sees_the_same(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_OK(put_simple(s, "b-two", "bottle"));
    CHECK_OK(put_simple(s, "a-one", "board"));
    int count;
    CHECK_OK(add_images(s, "a-one", 10, 3, &count, &e));
    CHECK_OK(add_images(s, "b-two", 20, 1, &count, &e));
    insp_stored_product *before;
    CHECK_OK(insp_store_get(s, "a-one", &before, &e));
    insp_store_close(s);

    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    loaded l;
    memset(&l, 0, sizeof l);
    CHECK_OK(insp_store_load_all(s, on_loaded, on_bad, &l, &e));
    CHECK_EQ_INT(l.n, 2);
    CHECK_EQ_INT(l.n_bad, 0);
    CHECK(strcmp(l.ids[0], "a-one") == 0 && strcmp(l.ids[1], "b-two") == 0); /* id order */
    CHECK_EQ_INT(l.n_refs[0], 3);
    CHECK_EQ_INT(l.n_refs[1], 1);
    CHECK(strcmp(l.objects[0], "board") == 0 && strcmp(l.objects[1], "bottle") == 0);
    insp_stored_product *after;
    CHECK_OK(insp_store_get(s, "a-one", &after, &e));
    REQUIRE(before && after);
    CHECK_EQ_INT(after->version, before->version);
    CHECK(strcmp(after->updated, before->updated) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(strcmp(after->refs[i].file, before->refs[i].file) == 0);
        CHECK(strcmp(after->refs[i].sha256, before->refs[i].sha256) == 0);
        CHECK(strcmp(after->refs[i].added, before->refs[i].added) == 0);
    }
    insp_stored_product_free(before);
    insp_stored_product_free(after);
    insp_store_close(s);
    remove_state_dir();
}

static void damaged_products_are_reported_and_skipped(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    const char *ids[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        CHECK_OK(put_simple(s, ids[i], "thing"));
    int count;
    CHECK_OK(add_images(s, "d", 1, 2, &count, &e));
    CHECK_OK(add_images(s, "e", 3, 1, &count, &e));
    write_raw(path_in("products/b/product.json", NULL, NULL), "{\"definition\": ", 15);
    insp_stored_product *p;
    CHECK_OK(insp_store_get(s, "d", &p, &e));
    REQUIRE(p && p->n_refs == 2);
    CHECK(unlink(path_in("products/d/%s", p->refs[1].file, NULL)) == 0);
    insp_stored_product_free(p);
    /* a definition that no longer validates */
    CHECK_OK(insp_store_get(s, "c", &p, &e));
    char *text = read_file(path_in("products/c/product.json", NULL, NULL), NULL);
    REQUIRE(text);
    char *obj = strstr(text, "\"object\"");
    REQUIRE(obj);
    memcpy(obj, "\"objekt\"", 8);
    write_raw(path_in("products/c/product.json", NULL, NULL), text, strlen(text));
    free(text);
    insp_stored_product_free(p);
    CHECK(mkdir(path_in("products/bad name", NULL, NULL), 0750) == 0);
    insp_store_close(s);

    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    loaded l;
    memset(&l, 0, sizeof l);
    CHECK_OK(insp_store_load_all(s, on_loaded, on_bad, &l, &e));
    CHECK_EQ_INT(l.n, 2);
    CHECK(strcmp(l.ids[0], "a") == 0 && strcmp(l.ids[1], "e") == 0);
    CHECK_EQ_INT(l.n_bad, 4);
    const char *want_ids[] = {"b", "bad name", "c", "d"};
    const char *want_msg[] = {"invalid JSON", "ignored", "unknown field \"objekt\"",
                              "listed reference 1"};
    for (int i = 0; i < 4 && i < l.n_bad; i++) {
        CHECK_MSG(strcmp(l.bad_ids[i], want_ids[i]) == 0, "bad %d: %s", i, l.bad_ids[i]);
        CHECK_MSG(strstr(l.bad_msgs[i], want_msg[i]) != NULL, "bad %d: %s", i, l.bad_msgs[i]);
    }
    CHECK(strstr(l.bad_msgs[0], "products/b/product.json") != NULL);
    /* nothing of the damaged products was removed by the open's cleanup */
    CHECK(exists(path_in("products/d/refs", NULL, NULL)));
    CHECK_EQ_INT(count_entries(path_in("products/d/refs", NULL, NULL), NULL), 1);

    CHECK_EQ_INT(insp_store_get(s, "b", &p, &e), INSP_ERR_FORMAT);
    CHECK_EQ_INT(put_simple(s, "b", "thing"), INSP_ERR_CONFLICT);
    CHECK_EQ_INT(insp_store_add_references(s, "b", 0, NULL, NULL, &e), INSP_ERR_INVALID);
    CHECK_OK(insp_store_delete(s, "b", &e));
    CHECK_OK(put_simple(s, "b", "thing"));
    /* loading without an on_bad callback is fine */
    memset(&l, 0, sizeof l);
    CHECK_OK(insp_store_load_all(s, on_loaded, NULL, &l, &e));
    CHECK_EQ_INT(l.n, 3);
    insp_store_close(s);
    remove_state_dir();
}

static void crash_leftovers_are_removed_on_open(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_OK(put_simple(s, "pcb", "board"));
    int count;
    CHECK_OK(add_images(s, "pcb", 1, 2, &count, &e));
    CHECK_OK(put_simple(s, "other", "bottle"));
    insp_stored_product *before;
    CHECK_OK(insp_store_get(s, "pcb", &before, &e));
    REQUIRE(before);
    char *json_before = read_file(path_in("products/pcb/product.json", NULL, NULL), NULL);
    CHECK_OK(insp_store_cache_put(s, "pcb", "m1", before->refs[0].sha256, "emb", 3, &e));
    insp_store_close(s);

    /* What crashes at various points leave behind: */
    fake_image im = make_image(9, true);
    write_raw(path_in("products/pcb/refs/0123456789abcdef.png", NULL, NULL), im.bytes, im.len);
    write_raw(path_in("products/pcb/refs/.tmp-Ab12Cd", NULL, NULL), "x", 1);
    write_raw(path_in("products/pcb/.tmp-Zz99Yy", NULL, NULL), "{", 1);
    CHECK(mkdir(path_in("products/pcb/cache/m1", NULL, NULL), 0750) == 0 || errno == EEXIST);
    write_raw(path_in("products/pcb/cache/m1/%s.bin",
                      "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", NULL),
              "old", 3);
    CHECK(mkdir(path_in("products/.trash-0123456789ab-gone", NULL, NULL), 0750) == 0);
    write_raw(path_in("products/.trash-0123456789ab-gone/product.json", NULL, NULL), "{}", 2);
    CHECK(mkdir(path_in("products/.new-0123456789ab-half", NULL, NULL), 0750) == 0);
    write_raw(path_in("products/.new-0123456789ab-half/product.json", NULL, NULL), "{}", 2);
    CHECK_EQ_INT(count_entries(path_in("products/pcb/refs", NULL, NULL), NULL), 4);

    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_EQ_INT(count_entries(path_in("products/pcb/refs", NULL, NULL), NULL), 2);
    CHECK(!exists(path_in("products/pcb/refs/0123456789abcdef.png", NULL, NULL)));
    CHECK(!exists(path_in("products/pcb/.tmp-Zz99Yy", NULL, NULL)));
    CHECK_EQ_INT(count_entries(path_in("products", NULL, NULL), NULL), 2); /* pcb, other */
    CHECK_EQ_INT(count_entries(path_in("products/pcb/cache/m1", NULL, NULL), NULL), 1);
    void *data;
    size_t len;
    CHECK_OK(insp_store_cache_get(s, "pcb", "m1", before->refs[0].sha256, &data, &len, &e));
    CHECK(len == 3 && memcmp(data, "emb", 3) == 0);
    free(data);
    /* the product is exactly as before: same bytes of product.json */
    char *json_after = read_file(path_in("products/pcb/product.json", NULL, NULL), NULL);
    CHECK(json_before && json_after && strcmp(json_before, json_after) == 0);
    free(json_before);
    free(json_after);
    insp_stored_product_free(before);
    CHECK_EQ_INT(check_state(), 0);
    insp_store_close(s);
    remove_state_dir();
}

/* The operations a crash test runs in a child, on a store holding "pcb" with 2 references
 * and "other" with none. */
enum op { OP_ADD, OP_CLEAR, OP_CREATE, OP_REPLACE, OP_DELETE, OP_N };
static const char *op_names[] = {"add", "clear", "create", "replace", "delete"};

static int run_op(insp_store *s, enum op op, insp_error *e)
{
    int count;
    switch (op) {
    case OP_ADD: return add_images(s, "pcb", 50, 3, &count, e);
    case OP_CLEAR: return insp_store_clear_references(s, "pcb", e);
    case OP_CREATE: return put_simple_err(s, "fresh", "cup", e);
    case OP_REPLACE: return put_simple_err(s, "pcb", "new board", e);
    case OP_DELETE: return insp_store_delete(s, "pcb", e);
    default: return INSP_ERR_INTERNAL;
    }
}

static void setup_crash_state(void)
{
    insp_store *s;
    insp_error e;
    int count;
    if (insp_store_open(tmp_root, &s, &e) != 0)
        return;
    put_simple(s, "pcb", "board");
    add_images(s, "pcb", 1, 2, &count, &e);
    put_simple(s, "other", "bottle");
    insp_store_close(s);
}

/* After a crash or a failure: "pcb" and "fresh" are each wholly old or wholly new. With
 * reopened (the store was opened again, which removes leftovers) the folders must also hold
 * nothing but the listed files and insp_store_check must pass. */
static void check_old_or_new(insp_store *s, enum op op, int step, bool reopened)
{
    insp_error e;
    insp_stored_product *p = NULL;
    int st = insp_store_get(s, "pcb", &p, &e);
    int n_refs = p ? p->n_refs : -1;
    const char *object = p ? p->def.object : "";
    bool old = st == 0 && n_refs == 2 && strcmp(object, "board") == 0;
    bool new_ = false;
    switch (op) {
    case OP_ADD: new_ = st == 0 && n_refs == 5; break;
    case OP_CLEAR: new_ = st == 0 && n_refs == 0; break;
    case OP_REPLACE: new_ = st == 0 && n_refs == 2 && strcmp(object, "new board") == 0; break;
    case OP_DELETE: new_ = st == INSP_ERR_NOT_FOUND; break;
    case OP_CREATE: {
        insp_stored_product *f = NULL;
        int fs = insp_store_get(s, "fresh", &f, &e);
        new_ = old && fs == 0 && f->n_refs == 0;
        old = old && fs == INSP_ERR_NOT_FOUND;
        insp_stored_product_free(f);
        break;
    }
    default: break;
    }
    CHECK_MSG(old || new_, "%s, step %d: neither old nor new (status %d, %d refs)", op_names[op],
              step, st, n_refs);
    for (int i = 0; p && i < p->n_refs; i++) {
        void *data;
        size_t len;
        CHECK_MSG(insp_store_read_reference(s, "pcb", i, &data, &len, &e) == 0,
                  "%s, step %d: reference %d: %s", op_names[op], step, i, e.msg);
        free(data);
    }
    insp_stored_product *o = NULL;
    CHECK_MSG(insp_store_get(s, "other", &o, &e) == 0, "%s, step %d: other lost", op_names[op],
              step);
    insp_stored_product_free(o);
    if (!reopened && op == OP_ADD && old) { /* a failed add removes what it wrote at once */
        int files = count_entries(path_in("products/pcb/refs", NULL, NULL), NULL);
        CHECK_MSG(files == 2, "add, step %d: %d files left for 2 references", step, files);
    }
    if (reopened) {
        if (p) { /* no orphan files: the refs folder holds exactly the listed files */
            int files = count_entries(path_in("products/pcb/refs", NULL, NULL), NULL);
            CHECK_MSG(files == n_refs || (files == -1 && n_refs == 0),
                      "%s, step %d: %d files for %d references", op_names[op], step, files,
                      n_refs);
        }
        CHECK_MSG(count_entries(path_in("products", NULL, NULL), ".") == 0,
                  "%s, step %d: leftover hidden entries in products/", op_names[op], step);
        CHECK_MSG(count_entries(path_in("products/pcb", NULL, NULL), ".tmp-") <= 0,
                  "%s, step %d: leftover temp files", op_names[op], step);
        int problems = check_state();
        CHECK_MSG(problems == 0, "%s, step %d: %d problems: %s", op_names[op], step, problems,
                  all_problems);
    }
    insp_stored_product_free(p);
}

static void crash_at_every_step_leaves_old_or_new(void)
{
    int crashes = 0;
    for (int op = 0; op < OP_N; op++) {
        int step;
        for (step = 0; step < 200; step++) {
            REQUIRE(new_state_dir());
            setup_crash_state();
            fflush(NULL);
            pid_t pid = fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                insp_store *s;
                insp_error e;
                if (insp_store_open(tmp_root, &s, &e) != 0)
                    _exit(3);
                insp_fs_inject_failure(step, 0);
                int st = run_op(s, (enum op)op, &e);
                _exit(st == 0 ? 0 : 4);
            }
            int ws;
            waitpid(pid, &ws, 0);
            REQUIRE(WIFEXITED(ws));
            int code = WEXITSTATUS(ws);
            CHECK_MSG(code == 0 || code == INSP_FS_CRASH_EXIT, "%s step %d: child exit %d",
                      op_names[op], step, code);
            insp_store *s;
            insp_error e;
            CHECK_OK(insp_store_open(tmp_root, &s, &e));
            if (s)
                check_old_or_new(s, (enum op)op, step, true);
            insp_store_close(s);
            remove_state_dir();
            if (code != INSP_FS_CRASH_EXIT)
                break; /* the operation ran to its end: every step has been crashed */
            crashes++;
        }
        CHECK_MSG(step > 1 && step < 200, "%s: %d steps", op_names[op], step);
    }
    fprintf(stderr, "  %d simulated crashes\n", crashes);
}

static void disk_full_at_every_step_keeps_old_state(void)
{
    for (int op = 0; op < OP_N; op++) {
        int step;
        for (step = 0; step < 200; step++) {
            REQUIRE(new_state_dir());
            setup_crash_state();
            insp_store *s;
            insp_error e;
            CHECK_OK(insp_store_open(tmp_root, &s, &e));
            REQUIRE(s);
            insp_error_clear(&e);
            insp_fs_inject_failure(step, ENOSPC);
            int st = run_op(s, (enum op)op, &e);
            bool fired = !insp_fs_injection_pending();
            insp_fs_inject_failure(-1, 0);
            if (st != 0) {
                CHECK_MSG(st == INSP_ERR_IO, "%s step %d: status %d", op_names[op], step, st);
                CHECK_MSG(strstr(e.msg, "No space left on device") && strstr(e.msg, tmp_root),
                          "%s step %d: message \"%s\"", op_names[op], step, e.msg);
            }
            /* Old state, except when the failing step came after the commit point (the
             * directory fsync after a rename, or removing files no longer listed), where
             * the new state is visible. Then the same after a restart. */
            check_old_or_new(s, (enum op)op, step, false);
            insp_store_close(s);
            CHECK_OK(insp_store_open(tmp_root, &s, &e));
            if (s)
                check_old_or_new(s, (enum op)op, step, true);
            insp_store_close(s);
            remove_state_dir();
            if (!fired)
                break; /* the operation ran out of steps before the failure */
        }
        CHECK_MSG(step > 1 && step < 200, "%s: %d steps", op_names[op], step);
    }
}

static void invalid_ids_are_refused_everywhere(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    const char *bad[] = {"../x", "a/b", "", id65, ".hidden", "..", "x/../../y"};
    insp_product_def d;
    def_of("thing", &d);
    fake_image im = make_image(1, true);
    insp_ref_upload up = upload_of(&im);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        insp_stored_product *p;
        void *data;
        size_t len;
        CHECK_EQ_INT(insp_store_put(s, bad[i], &d, NULL, NULL, &e), INSP_ERR_INVALID);
        CHECK(strstr(e.msg, "product id") != NULL);
        CHECK_EQ_INT(insp_store_get(s, bad[i], &p, &e), INSP_ERR_INVALID);
        CHECK_EQ_INT(insp_store_delete(s, bad[i], &e), INSP_ERR_INVALID);
        CHECK_EQ_INT(insp_store_add_references(s, bad[i], 1, &up, NULL, &e), INSP_ERR_INVALID);
        CHECK_EQ_INT(insp_store_clear_references(s, bad[i], &e), INSP_ERR_INVALID);
        CHECK_EQ_INT(insp_store_read_reference(s, bad[i], 0, &data, &len, &e), INSP_ERR_INVALID);
        CHECK_EQ_INT(insp_store_cache_put(s, bad[i], "m", "", "x", 1, &e), INSP_ERR_INVALID);
    }
    CHECK_EQ_INT(insp_store_get(s, NULL, &(insp_stored_product *){NULL}, &e), INSP_ERR_INVALID);
    insp_product_def_free(&d);
    /* nothing was created anywhere */
    CHECK_EQ_INT(count_entries(path_in("products", NULL, NULL), NULL), 0);
    CHECK_EQ_INT(count_entries(tmp_root, NULL), 2); /* products, locks */
    CHECK(!exists(path_in("x", NULL, NULL)) && !exists(path_in("y", NULL, NULL)));
    insp_store_close(s);
    remove_state_dir();
}

static void cache_put_get_missing_and_damaged(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_OK(put_simple(s, "pcb", "board"));
    int count;
    CHECK_OK(add_images(s, "pcb", 1, 2, &count, &e));
    insp_stored_product *p;
    CHECK_OK(insp_store_get(s, "pcb", &p, &e));
    REQUIRE(p && p->n_refs == 2);
    const char *sha = p->refs[0].sha256;
    float emb[512];
    for (int i = 0; i < 512; i++)
        emb[i] = (float)i * 0.25f - 3.0f;
    void *data = NULL;
    size_t len = 0;
    CHECK_EQ_INT(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e), INSP_ERR_NOT_FOUND);
    CHECK_OK(insp_store_cache_put(s, "pcb", "ck1", sha, emb, sizeof emb, &e));
    CHECK_OK(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e));
    CHECK(data && len == sizeof emb && memcmp(data, emb, len) == 0);
    free(data);
    /* another model's checksum is another entry */
    CHECK_EQ_INT(insp_store_cache_get(s, "pcb", "ck2", sha, &data, &len, &e), INSP_ERR_NOT_FOUND);
    /* overwrite */
    CHECK_OK(insp_store_cache_put(s, "pcb", "ck1", sha, "abc", 3, &e));
    CHECK_OK(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e));
    CHECK(len == 3 && memcmp(data, "abc", 3) == 0);
    free(data);
    /* zero bytes is a valid entry */
    CHECK_OK(insp_store_cache_put(s, "pcb", "ck1", p->refs[1].sha256, NULL, 0, &e));
    CHECK_OK(insp_store_cache_get(s, "pcb", "ck1", p->refs[1].sha256, &data, &len, &e));
    CHECK_EQ_INT(len, 0);
    free(data);

    /* damage: a flipped payload byte, a truncation, garbage */
    CHECK_OK(insp_store_cache_put(s, "pcb", "ck1", sha, emb, sizeof emb, &e));
    const char *file = path_in("products/pcb/cache/ck1/%s.bin", sha, NULL);
    size_t flen;
    char *raw = read_file(file, &flen);
    REQUIRE(raw && flen > sizeof emb);
    raw[flen - 7] ^= 0x10;
    write_raw(file, raw, flen);
    CHECK_EQ_INT(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e), INSP_ERR_FORMAT);
    CHECK(data == NULL && strstr(e.msg, "damaged") != NULL);
    raw[flen - 7] ^= 0x10;
    write_raw(file, raw, flen - 1);
    CHECK_EQ_INT(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e), INSP_ERR_FORMAT);
    write_raw(file, raw, 10);
    CHECK_EQ_INT(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e), INSP_ERR_FORMAT);
    write_raw(file, raw, flen);
    CHECK_OK(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e));
    free(data);
    free(raw);

    /* bad keys, unknown product */
    CHECK_EQ_INT(insp_store_cache_put(s, "pcb", "../x", sha, "a", 1, &e), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_store_cache_put(s, "pcb", "", sha, "a", 1, &e), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_store_cache_put(s, "pcb", "ck1", "ABC", "a", 1, &e), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_store_cache_get(s, "pcb", "ck1", "../../product.json", &data, &len, &e),
                 INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_store_cache_put(s, "nope", "ck1", sha, "a", 1, &e), INSP_ERR_NOT_FOUND);
    CHECK(!exists(path_in("products/nope", NULL, NULL)));

    /* entries of references no longer listed are pruned at the next open */
    const char *other = "0000000000000000000000000000000000000000000000000000000000000000";
    CHECK_OK(insp_store_cache_put(s, "pcb", "ck1", other, "zz", 2, &e));
    CHECK_EQ_INT(count_entries(path_in("products/pcb/cache/ck1", NULL, NULL), NULL), 3);
    insp_store_close(s);
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_EQ_INT(count_entries(path_in("products/pcb/cache/ck1", NULL, NULL), NULL), 2);
    CHECK_OK(insp_store_cache_get(s, "pcb", "ck1", sha, &data, &len, &e));
    CHECK(len == sizeof emb && memcmp(data, emb, len) == 0);
    free(data);
    insp_stored_product_free(p);
    insp_store_close(s);
    remove_state_dir();
}

static void checker_and_damaged_reference_files(void)
{
    REQUIRE(new_state_dir());
    insp_store *s;
    insp_error e;
    CHECK_OK(insp_store_open(tmp_root, &s, &e));
    REQUIRE(s);
    CHECK_OK(put_simple(s, "pcb", "board"));
    CHECK_OK(put_simple(s, "cup", "cup"));
    int count;
    CHECK_OK(add_images(s, "pcb", 1, 3, &count, &e));
    CHECK_OK(add_images(s, "cup", 7, 1, &count, &e));
    CHECK_EQ_INT(check_state(), 0);
    insp_stored_product *p;
    CHECK_OK(insp_store_get(s, "pcb", &p, &e));
    REQUIRE(p && p->n_refs == 3);

    /* same size, one byte changed: only the hash can tell */
    const char *f1 = path_in("products/pcb/%s", p->refs[1].file, NULL);
    size_t len;
    char *raw = read_file(f1, &len);
    REQUIRE(raw);
    raw[len / 2] ^= 1;
    write_raw(f1, raw, len);
    free(raw);
    CHECK_EQ_INT(check_state(), 1);
    CHECK(strstr(last_problem, "pcb: reference 1") != NULL);
    void *data;
    CHECK_EQ_INT(insp_store_read_reference(s, "pcb", 1, &data, &len, &e), INSP_ERR_FORMAT);
    CHECK(strstr(e.msg, "damaged") != NULL);

    /* a deleted reference file */
    CHECK(unlink(path_in("products/pcb/%s", p->refs[2].file, NULL)) == 0);
    CHECK_EQ_INT(check_state(), 2);
    CHECK(strstr(last_problem, "reference 2") != NULL && strstr(last_problem, "no such file"));
    CHECK_EQ_INT(insp_store_read_reference(s, "pcb", 2, &data, &len, &e), INSP_ERR_NOT_FOUND);

    /* a broken product.json */
    write_raw(path_in("products/cup/product.json", NULL, NULL), "[]", 2);
    CHECK_EQ_INT(check_state(), 3);
    CHECK(strstr(all_problems, "cup: ") != NULL && strstr(all_problems, "not a JSON object"));
    CHECK_EQ_INT(insp_store_check("/nonexistent/inspd", NULL, NULL), INSP_ERR_IO);
    insp_stored_product_free(p);
    insp_store_close(s);
    remove_state_dir();
}

static void open_failures_are_clear(void)
{
    insp_store *s = NULL;
    insp_error e;
    CHECK_EQ_INT(insp_store_open("/proc/inspd-no/state", &s, &e), INSP_ERR_IO);
    CHECK(s == NULL);
    CHECK(strstr(e.msg, "/proc/inspd-no") != NULL);
    REQUIRE(new_state_dir());
    char file[128];
    snprintf(file, sizeof file, "%s/plain", tmp_root);
    write_raw(file, "x", 1);
    CHECK_EQ_INT(insp_store_open(file, &s, &e), INSP_ERR_IO);
    CHECK(strstr(e.msg, "plain") != NULL);
    CHECK_EQ_INT(insp_store_open("", &s, &e), INSP_ERR_INVALID);
    /* nested state dirs are created with their parents */
    char nested[128];
    snprintf(nested, sizeof nested, "%s/a/b/state", tmp_root);
    CHECK_OK(insp_store_open(nested, &s, &e));
    CHECK(s && strcmp(insp_store_dir(s), nested) == 0);
    struct stat sb;
    CHECK(stat(nested, &sb) == 0 && (sb.st_mode & 0027) == 0); /* 0750 less the umask */
    insp_store_close(s);
    remove_state_dir();
}

TEST_MAIN(T(sha256_known_vectors), T(put_get_list_delete), T(references_add_in_order_and_clear),
          T(reference_count_bound), T(hand_built_definitions_are_checked),
          T(restart_sees_the_same), T(damaged_products_are_reported_and_skipped),
          T(crash_leftovers_are_removed_on_open), T(crash_at_every_step_leaves_old_or_new),
          T(disk_full_at_every_step_keeps_old_state), T(invalid_ids_are_refused_everywhere),
          T(cache_put_get_missing_and_damaged), T(checker_and_damaged_reference_files),
          T(open_failures_are_clear))
