/* Tests of the prompt-embedding cache file on real files: round trip, restart, a torn or
 * damaged tail, a file of another width, two handles appending (replicas), a disk that fills
 * up (RLIMIT_FSIZE), and an unwritable store. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "store/fsutil.h"
#include "store/store.h"
#include "store/text_cache.h"

#define DIM 40
#define CHECKSUM "0123abcd"
#define HEADER 16
#define REC (32 + 4 * DIM + 32)

static char root[64];
static char file[256];

static insp_store *open_store(void)
{
    snprintf(root, sizeof root, "/tmp/inspd-textcache-XXXXXX");
    if (!mkdtemp(root))
        return NULL;
    snprintf(file, sizeof file, "%s/text-cache/%s.bin", root, CHECKSUM);
    insp_store *s = NULL;
    return insp_store_open(root, &s, NULL) == INSP_OK ? s : NULL;
}

static void close_store(insp_store *s)
{
    insp_store_close(s);
    insp_fs_remove_tree(root, NULL);
}

/* Key i and its embedding: distinct, recognisable values. */
static void key_of(int i, uint8_t key[32])
{
    for (int b = 0; b < 32; b++)
        key[b] = (uint8_t)(i * 31 + b * 7 + (b == 0 ? i >> 8 : 0));
}

static void emb_of(int i, float *e)
{
    for (int d = 0; d < DIM; d++)
        e[d] = (float)i + (float)d / 64.0f;
}

/* Puts keys first..first+n-1. */
static int put_range(insp_text_cache *c, int first, int n, insp_error *err)
{
    uint8_t(*keys)[32] = malloc((size_t)n * sizeof *keys);
    float *emb = malloc((size_t)n * DIM * sizeof *emb);
    for (int i = 0; i < n; i++) {
        key_of(first + i, keys[i]);
        emb_of(first + i, emb + (long)i * DIM);
    }
    int st = insp_text_cache_put(c, n, (const uint8_t(*)[32])keys, emb, err);
    free(keys);
    free(emb);
    return st;
}

/* How many of keys first..first+n-1 come back, each with exactly its values. */
static int held(insp_text_cache *c, int first, int n)
{
    int ok = 0;
    for (int i = first; i < first + n; i++) {
        uint8_t key[32];
        float got[DIM], want[DIM];
        key_of(i, key);
        emb_of(i, want);
        if (insp_text_cache_get(c, key, got) && memcmp(got, want, sizeof got) == 0)
            ok++;
    }
    return ok;
}

static long file_size(void)
{
    struct stat sb;
    return stat(file, &sb) == 0 ? (long)sb.st_size : -1;
}

static void round_trip_and_restart(void)
{
    insp_store *s = open_store();
    REQUIRE(s);
    insp_text_cache *c = NULL;
    bool reset = true;
    CHECK_OK(insp_text_cache_open(s, CHECKSUM, DIM, &c, &reset, NULL));
    REQUIRE(c);
    CHECK(!reset);
    CHECK_EQ_INT(held(c, 0, 10), 0);
    CHECK_OK(put_range(c, 0, 10, NULL));
    CHECK_EQ_INT(held(c, 0, 10), 10);
    // Keys held already (and repeated within one put) are not written twice.
    CHECK_OK(put_range(c, 5, 10, NULL));
    CHECK_EQ_INT(insp_text_cache_count(c), 15);
    CHECK_EQ_INT(file_size(), HEADER + 15 * REC);
    uint8_t twice[2][32];
    float e2[2 * DIM];
    key_of(100, twice[0]);
    key_of(100, twice[1]);
    emb_of(100, e2);
    emb_of(100, e2 + DIM);
    CHECK_OK(insp_text_cache_put(c, 2, (const uint8_t(*)[32])twice, e2, NULL));
    CHECK_EQ_INT(insp_text_cache_count(c), 16);
    insp_text_cache_close(c);
    // A restart finds them all.
    CHECK_OK(insp_text_cache_open(s, CHECKSUM, DIM, &c, &reset, NULL));
    CHECK(!reset);
    CHECK_EQ_INT(insp_text_cache_count(c), 16);
    CHECK_EQ_INT(held(c, 0, 15), 15);
    CHECK_EQ_INT(held(c, 100, 1), 1);
    insp_text_cache_close(c);
    // Another model is another file; a bad checksum or width is refused.
    CHECK_OK(insp_text_cache_open(s, "other", DIM, &c, NULL, NULL));
    CHECK_EQ_INT(held(c, 0, 15), 0);
    insp_text_cache_close(c);
    insp_error err = {0};
    CHECK_EQ_INT(insp_text_cache_open(s, "../x", DIM, &c, NULL, &err), INSP_ERR_INVALID);
    CHECK(c == NULL);
    CHECK_EQ_INT(insp_text_cache_open(s, CHECKSUM, 0, &c, NULL, &err), INSP_ERR_INVALID);
    close_store(s);
}

static void damaged_tail_is_cut_off(void)
{
    insp_store *s = open_store();
    REQUIRE(s);
    insp_text_cache *c = NULL;
    bool reset = false;
    REQUIRE(insp_text_cache_open(s, CHECKSUM, DIM, &c, NULL, NULL) == INSP_OK);
    CHECK_OK(put_range(c, 0, 10, NULL));
    insp_text_cache_close(c);
    // A torn append: half a record at the end.
    REQUIRE(truncate(file, HEADER + 9 * REC + REC / 2) == 0);
    CHECK_OK(insp_text_cache_open(s, CHECKSUM, DIM, &c, &reset, NULL));
    CHECK(reset);
    CHECK_EQ_INT(insp_text_cache_count(c), 9);
    CHECK_EQ_INT(held(c, 0, 9), 9);
    CHECK_EQ_INT(file_size(), HEADER + 9 * REC);
    // New records after the cut are found after the next restart.
    CHECK_OK(put_range(c, 20, 3, NULL));
    insp_text_cache_close(c);
    CHECK_OK(insp_text_cache_open(s, CHECKSUM, DIM, &c, &reset, NULL));
    CHECK(!reset);
    CHECK_EQ_INT(held(c, 0, 9) + held(c, 20, 3), 12);
    // A flipped bit in record 4's floats: a get of it misses at once (it is checked on every
    // read), and the next open keeps records 0..3 only.
    FILE *f = fopen(file, "r+b");
    REQUIRE(f);
    fseek(f, HEADER + 4 * REC + 40, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, HEADER + 4 * REC + 40, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
    CHECK_EQ_INT(held(c, 4, 1), 0);
    CHECK_EQ_INT(held(c, 3, 1), 1);
    insp_text_cache_close(c);
    CHECK_OK(insp_text_cache_open(s, CHECKSUM, DIM, &c, &reset, NULL));
    CHECK(reset);
    CHECK_EQ_INT(insp_text_cache_count(c), 4);
    CHECK_EQ_INT(held(c, 0, 4), 4);
    insp_text_cache_close(c);
    // Another width (the same checksum cannot have one, but a damaged header can say so) or
    // garbage: started afresh.
    CHECK_OK(insp_text_cache_open(s, CHECKSUM, DIM + 1, &c, &reset, NULL));
    CHECK(reset);
    CHECK_EQ_INT(insp_text_cache_count(c), 0);
    insp_text_cache_close(c);
    f = fopen(file, "wb");
    REQUIRE(f);
    fputs("not a cache file at all, just some text", f);
    fclose(f);
    CHECK_OK(insp_text_cache_open(s, CHECKSUM, DIM, &c, &reset, NULL));
    CHECK(reset);
    CHECK_EQ_INT(file_size(), HEADER);
    CHECK_OK(put_range(c, 0, 2, NULL));
    CHECK_EQ_INT(held(c, 0, 2), 2);
    insp_text_cache_close(c);
    close_store(s);
}

static void two_handles_share_the_file(void)
{
    insp_store *s = open_store();
    REQUIRE(s);
    insp_text_cache *a = NULL, *b = NULL;
    REQUIRE(insp_text_cache_open(s, CHECKSUM, DIM, &a, NULL, NULL) == INSP_OK);
    REQUIRE(insp_text_cache_open(s, CHECKSUM, DIM, &b, NULL, NULL) == INSP_OK);
    CHECK_OK(put_range(a, 0, 5, NULL));
    CHECK_EQ_INT(held(b, 0, 5), 0); /* b has not looked yet */
    // b's append picks up a's records first, writes only what is new, after them.
    CHECK_OK(put_range(b, 3, 5, NULL));
    CHECK_EQ_INT(held(b, 0, 8), 8);
    CHECK_EQ_INT(file_size(), HEADER + 8 * REC);
    CHECK_OK(put_range(a, 8, 1, NULL));
    CHECK_EQ_INT(held(a, 0, 9), 9);
    insp_text_cache_close(a);
    insp_text_cache_close(b);
    REQUIRE(insp_text_cache_open(s, CHECKSUM, DIM, &a, NULL, NULL) == INSP_OK);
    CHECK_EQ_INT(insp_text_cache_count(a), 9);
    insp_text_cache_close(a);
    close_store(s);
}

static void full_disk_loses_nothing(void)
{
    insp_store *s = open_store();
    REQUIRE(s);
    insp_text_cache *c = NULL;
    REQUIRE(insp_text_cache_open(s, CHECKSUM, DIM, &c, NULL, NULL) == INSP_OK);
    CHECK_OK(put_range(c, 0, 4, NULL));
    // Room for one and a half more records: a put of three fails as a whole.
    struct rlimit old, lim;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = (rlim_t)(HEADER + 5 * REC + REC / 2);
    signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    insp_error err = {0};
    int st = put_range(c, 10, 3, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_EQ_INT(st, INSP_ERR_IO);
    CHECK_MSG(strstr(err.msg, "cannot append") != NULL, "message: %s", err.msg);
    CHECK_EQ_INT(file_size(), HEADER + 4 * REC);
    CHECK_EQ_INT(held(c, 10, 3), 0);
    CHECK_EQ_INT(held(c, 0, 4), 4);
    // With room again the same put goes through.
    CHECK_OK(put_range(c, 10, 3, NULL));
    CHECK_EQ_INT(held(c, 10, 3), 3);
    insp_text_cache_close(c);
    close_store(s);
}

static void unwritable_store_is_an_error(void)
{
    if (geteuid() == 0) {
        // root writes anyway: check a path that cannot be a directory instead.
        insp_store *s = open_store();
        REQUIRE(s);
        char blocker[300];
        snprintf(blocker, sizeof blocker, "%s/text-cache", root);
        FILE *f = fopen(blocker, "w");
        REQUIRE(f);
        fclose(f);
        insp_text_cache *c = NULL;
        insp_error err = {0};
        CHECK_EQ_INT(insp_text_cache_open(s, CHECKSUM, DIM, &c, NULL, &err), INSP_ERR_IO);
        CHECK(c == NULL);
        CHECK_MSG(strstr(err.msg, "text-cache") != NULL, "message: %s", err.msg);
        close_store(s);
        return;
    }
    insp_store *s = open_store();
    REQUIRE(s);
    REQUIRE(chmod(root, 0500) == 0);
    insp_text_cache *c = NULL;
    insp_error err = {0};
    CHECK_EQ_INT(insp_text_cache_open(s, CHECKSUM, DIM, &c, NULL, &err), INSP_ERR_IO);
    CHECK(c == NULL);
    chmod(root, 0700);
    close_store(s);
}

TEST_MAIN(T(round_trip_and_restart), T(damaged_tail_is_cut_off), T(two_handles_share_the_file),
          T(full_disk_loses_nothing), T(unwritable_store_is_an_error))
