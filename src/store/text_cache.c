/* The prompt-embedding cache file of one model (see text_cache.h): an append-only log of
 * checked records with an in-memory index from key to file offset. */
#include "store/text_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/fsutil.h"
#include "store/store_internal.h"

#define MAGIC "INSPTXC1"
#define HEADER 16
#define MAX_DIM 8192
/* Beyond this the cache stops growing (about 400 000 prompts of width 640); delete the file
 * to start afresh. */
#define MAX_FILE_BYTES (1024LL * 1024 * 1024)
#define SCAN_RECORDS 256 /* records read per pread when scanning */

typedef struct slot {
    uint8_t key[32];
    int64_t off; /* 0: empty */
} slot;

struct insp_text_cache {
    pthread_mutex_t mu;
    int fd; /* read-only: a file held open for writing would keep its mount from going
             * read-only; appends open it for writing for as long as they take */
    int dim;
    size_t rec;  /* bytes per record */
    int64_t end; /* the file up to here is checked and indexed */
    slot *slots;
    size_t cap, count; /* cap: a power of two */
    uint8_t *scratch;  /* SCAN_RECORDS records */
    char path[PATH_MAX];
};

static size_t hash_of(const uint8_t key[32], size_t cap)
{
    uint64_t h = 0;
    memcpy(&h, key, sizeof h); /* the key is a SHA-256: any 8 bytes are uniform */
    return (size_t)h & (cap - 1);
}

static slot *find(const insp_text_cache *c, const uint8_t key[32])
{
    for (size_t i = hash_of(key, c->cap);; i = (i + 1) & (c->cap - 1))
        if (c->slots[i].off == 0 || memcmp(c->slots[i].key, key, 32) == 0)
            return &c->slots[i];
}

static int grow(insp_text_cache *c)
{
    size_t old_cap = c->cap, cap = old_cap ? 2 * old_cap : 1024;
    slot *old = c->slots;
    c->slots = calloc(cap, sizeof *c->slots);
    if (!c->slots) {
        c->slots = old;
        return INSP_ERR_NOMEM;
    }
    c->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].off)
            *find(c, old[i].key) = old[i];
    free(old);
    return INSP_OK;
}

/* Indexes key at off unless it is held already. */
static int index_add(insp_text_cache *c, const uint8_t key[32], int64_t off)
{
    if (2 * (c->count + 1) > c->cap && grow(c) != INSP_OK)
        return INSP_ERR_NOMEM;
    slot *s = find(c, key);
    if (s->off == 0) {
        memcpy(s->key, key, 32);
        s->off = off;
        c->count++;
    }
    return INSP_OK;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A record's check: SHA-256 of its key and floats. */
static void record_sum(const insp_text_cache *c, const uint8_t *r, uint8_t sum[32])
{
    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, c->rec - SHA256_DIGEST_SIZE, r);
    sha256_digest(&h, SHA256_DIGEST_SIZE, sum);
}

static bool record_ok(const insp_text_cache *c, const uint8_t *r)
{
    uint8_t sum[SHA256_DIGEST_SIZE];
    record_sum(c, r, sum);
    return memcmp(sum, r + c->rec - SHA256_DIGEST_SIZE, sizeof sum) == 0;
}

static void record_make(const insp_text_cache *c, const uint8_t key[32], const float *emb,
                        uint8_t *r)
{
    memcpy(r, key, 32);
    for (int d = 0; d < c->dim; d++) {
        uint32_t v;
        memcpy(&v, &emb[d], 4);
        put_u32(r + 32 + 4 * d, v);
    }
    record_sum(c, r, r + c->rec - SHA256_DIGEST_SIZE);
}

static int pread_full(int fd, void *buf, size_t len, int64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, int64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pwrite(fd, (const char *)buf + done, len - done,
                           (off_t)(off + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

/* Indexes the checked records from c->end up to size (what another process appended, or the
 * whole file at open); the first bad or partial record and all after it are cut off through
 * wfd, which holds the flock (-1: a read-only store, nothing is cut). *cut: whether the file
 * has such a tail. */
static int scan(insp_text_cache *c, int wfd, int64_t size, bool *cut, insp_error *err)
{
    while (c->end + (int64_t)c->rec <= size) {
        int64_t n = (size - c->end) / (int64_t)c->rec;
        if (n > SCAN_RECORDS)
            n = SCAN_RECORDS;
        if (pread_full(c->fd, c->scratch, (size_t)n * c->rec, c->end) != 0)
            break;
        int64_t i = 0;
        for (; i < n; i++) {
            const uint8_t *r = c->scratch + i * (int64_t)c->rec;
            if (!record_ok(c, r))
                break;
            if (index_add(c, r, c->end) != INSP_OK)
                return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", c->path);
            c->end += (int64_t)c->rec;
        }
        if (i < n)
            break;
    }
    *cut = c->end < size;
    if (*cut && wfd >= 0 && ftruncate(wfd, (off_t)c->end) != 0)
        return insp_error_set(err, INSP_ERR_IO, "%s: cannot cut off a damaged tail: %s",
                              c->path, strerror(errno));
    return INSP_OK;
}

/* A fresh file: just the header. wfd holds the flock. */
static int start_afresh(insp_text_cache *c, int wfd, insp_error *err)
{
    uint8_t h[HEADER] = {0};
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, (uint32_t)c->dim);
    if (ftruncate(wfd, 0) != 0 || pwrite_full(wfd, h, HEADER, 0) != 0 || fdatasync(wfd) != 0)
        return insp_error_set(err, INSP_ERR_IO, "%s: cannot write: %s", c->path,
                              strerror(errno));
    c->end = HEADER;
    return INSP_OK;
}

/* Checks the header (a bad one starts the file afresh when it can be written) and indexes the
 * records. */
static int load(insp_text_cache *c, int wfd, bool *reset, insp_error *err)
{
    struct stat sb;
    uint8_t h[HEADER];
    int fd = wfd >= 0 ? wfd : c->fd;
    if (fstat(fd, &sb) != 0)
        return insp_error_set(err, INSP_ERR_IO, "%s: %s", c->path, strerror(errno));
    if (sb.st_size < HEADER || pread_full(fd, h, HEADER, 0) != 0 || memcmp(h, MAGIC, 8) != 0 ||
        get_u32(h + 8) != (uint32_t)c->dim || get_u32(h + 12) != 0) {
        *reset = sb.st_size > 0;
        if (wfd < 0)
            return insp_error_set(err, INSP_ERR_FORMAT, "%s: not a cache file of width %d",
                                  c->path, c->dim);
        return start_afresh(c, wfd, err);
    }
    c->end = HEADER;
    return scan(c, wfd, (int64_t)sb.st_size, reset, err);
}

int insp_text_cache_open(insp_store *store, const char *checksum, int dim,
                         insp_text_cache **out, bool *reset, insp_error *err)
{
    bool was_reset = false;
    *out = NULL;
    if (reset)
        *reset = false;
    int st = insp_store_checksum_check(checksum, err);
    if (st)
        return st;
    if (dim < 1 || dim > MAX_DIM)
        return insp_error_set(err, INSP_ERR_INVALID, "text cache: width %d outside 1..%d", dim,
                              MAX_DIM);
    insp_text_cache *c = calloc(1, sizeof *c);
    if (!c)
        return insp_error_set(err, INSP_ERR_NOMEM, "text cache: out of memory");
    c->fd = -1;
    c->dim = dim;
    c->rec = 32 + 4 * (size_t)dim + SHA256_DIGEST_SIZE;
    pthread_mutex_init(&c->mu, NULL);
    char dir[PATH_MAX];
    st = insp_fs_path(dir, sizeof dir, err, "%s/text-cache", store->root);
    if (!st)
        st = insp_fs_path(c->path, sizeof c->path, err, "%s/%s.bin", dir, checksum);
    if (!st)
        st = insp_fs_mkdir(dir, 0750, false, err);
    if (!st && !(c->scratch = malloc(SCAN_RECORDS * c->rec)))
        st = insp_error_set(err, INSP_ERR_NOMEM, "text cache: out of memory");
    if (!st && grow(c) != INSP_OK)
        st = insp_error_set(err, INSP_ERR_NOMEM, "text cache: out of memory");
    int wfd = -1;
    if (!st) {
        // Writable: create, check and repair it under the flock. Read-only (a store mounted so):
        // use what is there as it is.
        wfd = insp_fs_open_locked(c->path, O_CREAT);
        if (wfd < 0 && errno != EROFS && errno != EACCES && errno != EPERM)
            st = insp_error_set(err, INSP_ERR_IO, "%s: cannot open: %s", c->path,
                                strerror(errno));
    }
    if (!st && (c->fd = open(c->path, O_RDONLY | O_CLOEXEC)) < 0)
        st = insp_error_set(err, INSP_ERR_IO, "%s: cannot open: %s", c->path, strerror(errno));
    if (!st)
        st = load(c, wfd, &was_reset, err);
    if (wfd >= 0)
        close(wfd);
    if (st) {
        insp_text_cache_close(c);
        return st;
    }
    if (reset)
        *reset = was_reset;
    *out = c;
    return INSP_OK;
}

void insp_text_cache_close(insp_text_cache *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c->scratch);
    free(c);
}

bool insp_text_cache_get(insp_text_cache *c, const uint8_t key[32], float *emb)
{
    bool ok = false;
    pthread_mutex_lock(&c->mu);
    const slot *s = find(c, key);
    if (s->off != 0 && pread_full(c->fd, c->scratch, c->rec, s->off) == 0 &&
        memcmp(c->scratch, key, 32) == 0 && record_ok(c, c->scratch)) {
        for (int d = 0; d < c->dim; d++) {
            uint32_t v = get_u32(c->scratch + 32 + 4 * d);
            memcpy(&emb[d], &v, 4);
        }
        ok = true;
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

/* Appends the records of the keys in keys[0..n) not yet held; holds mu, wfd the flock. */
static int append(insp_text_cache *c, int wfd, int n, const uint8_t (*keys)[32],
                  const float *emb, insp_error *err)
{
    struct stat sb;
    bool cut;
    if (fstat(wfd, &sb) != 0)
        return insp_error_set(err, INSP_ERR_IO, "%s: %s", c->path, strerror(errno));
    if ((int64_t)sb.st_size < c->end) { /* another process started it afresh */
        memset(c->slots, 0, c->cap * sizeof *c->slots);
        c->count = 0;
        c->end = HEADER;
    }
    int st = scan(c, wfd, (int64_t)sb.st_size, &cut, err);
    if (st)
        return st;
    uint8_t *buf = malloc((size_t)n * c->rec);
    int m = 0; /* records to write */
    if (!buf)
        return insp_error_set(err, INSP_ERR_NOMEM, "text cache: out of memory");
    for (int i = 0; i < n; i++) {
        bool seen = find(c, keys[i])->off != 0;
        for (int j = 0; j < m && !seen; j++)
            seen = memcmp(buf + (size_t)j * c->rec, keys[i], 32) == 0;
        if (!seen)
            record_make(c, keys[i], emb + (long)i * c->dim, buf + (size_t)m++ * c->rec);
    }
    if (m > 0 && c->end + (int64_t)m * (int64_t)c->rec > MAX_FILE_BYTES) {
        st = insp_error_set(err, INSP_ERR_TOO_LARGE,
                            "%s: at its limit of %lld bytes; delete it to start afresh",
                            c->path, MAX_FILE_BYTES);
    } else if (m > 0 && (pwrite_full(wfd, buf, (size_t)m * c->rec, c->end) != 0 ||
                         fdatasync(wfd) != 0)) {
        int e = errno;
        bool stuck = ftruncate(wfd, (off_t)c->end) != 0; /* a torn record fails its check */
        st = insp_error_set(err, INSP_ERR_IO, "%s: cannot append: %s%s", c->path, strerror(e),
                            stuck ? " (and cannot cut the attempt off)" : "");
    } else {
        for (int j = 0; j < m && st == INSP_OK; j++)
            if (index_add(c, buf + (size_t)j * c->rec,
                          c->end + (int64_t)j * (int64_t)c->rec) != INSP_OK)
                st = insp_error_set(err, INSP_ERR_NOMEM, "text cache: out of memory");
        c->end += (int64_t)m * (int64_t)c->rec;
    }
    free(buf);
    return st;
}

int insp_text_cache_put(insp_text_cache *c, int n, const uint8_t (*keys)[32], const float *emb,
                        insp_error *err)
{
    if (n <= 0)
        return INSP_OK;
    pthread_mutex_lock(&c->mu);
    int st, wfd = insp_fs_open_locked(c->path, 0);
    if (wfd < 0) {
        st = insp_error_set(err, INSP_ERR_IO, "%s: cannot open for writing: %s", c->path,
                            strerror(errno));
    } else {
        st = append(c, wfd, n, keys, emb, err);
        close(wfd);
    }
    pthread_mutex_unlock(&c->mu);
    return st;
}

int insp_text_cache_count(insp_text_cache *c)
{
    pthread_mutex_lock(&c->mu);
    int n = (int)c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}
