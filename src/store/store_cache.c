/* The embedding cache: opaque bytes per (product, model checksum, reference sha256), framed
 * with their length and SHA-256 so that a damaged entry is detected, never returned. */
#include <limits.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/fsutil.h"
#include "store/product_file.h"
#include "store/store_internal.h"

#define CACHE_MAGIC "INSPCAC1"
#define CACHE_HEADER (8 + 8 + SHA256_DIGEST_SIZE) /* magic, length (LE), SHA-256 */

int insp_store_checksum_check(const char *checksum, insp_error *err)
{
    size_t n = checksum ? strlen(checksum) : 0;
    if (n == 0 || n > 128)
        return insp_error_set(err, INSP_ERR_INVALID, "cache: model checksum must be 1..128 "
                                                     "characters");
    for (size_t i = 0; i < n; i++) {
        char c = checksum[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "cache: model checksum has a character outside A-Za-z0-9_-");
    }
    return INSP_OK;
}

static int cache_path(insp_store *s, const char *id, const char *checksum, const char *sha,
                      char *path, size_t cap, insp_error *err)
{
    int st = insp_product_id_check(id, err);
    if (st)
        return st;
    st = insp_store_checksum_check(checksum, err);
    if (st)
        return st;
    if (!sha || !insp_pf_sha_hex_valid(sha))
        return insp_error_set(err, INSP_ERR_INVALID,
                              "cache: reference sha256 must be 64 lowercase hex digits");
    return insp_fs_path(path, cap, err, "%s/%s/cache/%s/%s.bin", s->products, id, checksum, sha);
}

int insp_store_cache_get(insp_store *store, const char *id, const char *checksum,
                         const char *ref_sha256, void **data, size_t *len, insp_error *err)
{
    *data = NULL;
    *len = 0;
    char path[PATH_MAX];
    int st = cache_path(store, id, checksum, ref_sha256, path, sizeof path, err);
    void *buf = NULL;
    size_t n = 0;
    if (!st)
        st = insp_fs_read_file(path, INSP_STORE_MAX_CACHE_BYTES + CACHE_HEADER, &buf, &n, err);
    if (st)
        return st;
    unsigned char *b = buf;
    uint64_t want = 0;
    if (n >= CACHE_HEADER)
        for (int i = 0; i < 8; i++)
            want |= (uint64_t)b[8 + i] << (8 * i);
    if (n < CACHE_HEADER || memcmp(b, CACHE_MAGIC, 8) != 0 || want != n - CACHE_HEADER) {
        free(buf);
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: damaged cache entry (header)", path);
    }
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, n - CACHE_HEADER, b + CACHE_HEADER);
    sha256_digest(&c, sizeof d, d);
    if (memcmp(d, b + 16, sizeof d) != 0) {
        free(buf);
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: damaged cache entry (checksum)", path);
    }
    memmove(b, b + CACHE_HEADER, n - CACHE_HEADER);
    *data = buf;
    *len = n - CACHE_HEADER;
    return INSP_OK;
}

int insp_store_cache_put(insp_store *store, const char *id, const char *checksum,
                         const char *ref_sha256, const void *data, size_t len, insp_error *err)
{
    char path[PATH_MAX], dir[PATH_MAX];
    int st = cache_path(store, id, checksum, ref_sha256, path, sizeof path, err);
    if (st)
        return st;
    if (len > INSP_STORE_MAX_CACHE_BYTES)
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "cache entry: %zu bytes, at most %u", len,
                              INSP_STORE_MAX_CACHE_BYTES);
    if (len > 0 && !data)
        return insp_error_set(err, INSP_ERR_INVALID, "cache entry: no data");
    struct stat sb;
    st = insp_fs_path(dir, sizeof dir, err, "%s/%s/product.json", store->products, id);
    if (st)
        return st;
    if (stat(dir, &sb) != 0)
        return insp_error_set(err, INSP_ERR_NOT_FOUND, "product %s: not found", id);
    /* Never create the product folder itself: it may be being deleted. */
    st = insp_fs_path(dir, sizeof dir, err, "%s/%s/cache", store->products, id);
    if (!st)
        st = insp_fs_mkdir(dir, 0750, false, err);
    if (!st)
        st = insp_fs_path(dir, sizeof dir, err, "%s/%s/cache/%s", store->products, id, checksum);
    if (!st)
        st = insp_fs_mkdir(dir, 0750, false, err);
    if (st)
        return st;
    unsigned char *buf = malloc(CACHE_HEADER + len);
    if (!buf)
        return insp_error_set(err, INSP_ERR_NOMEM, "cache entry: out of memory");
    memcpy(buf, CACHE_MAGIC, 8);
    for (int i = 0; i < 8; i++)
        buf[8 + i] = (unsigned char)((uint64_t)len >> (8 * i));
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, len ? data : (const void *)"");
    sha256_digest(&c, SHA256_DIGEST_SIZE, buf + 16);
    if (len)
        memcpy(buf + CACHE_HEADER, data, len);
    /* A lost cache entry costs a recomputation only: no directory fsync. */
    st = insp_fs_write_atomic(path, buf, CACHE_HEADER + len, INSP_FS_NO_DIRSYNC, NULL, err);
    free(buf);
    return st;
}
