/* The product store: each product's definition and reference images on disk, written so that
 * a crash at any point leaves either the old or the new product, never a torn one.
 *
 * Layout under the state directory:
 *   products/<id>/product.json       the commit point: definition, reference list, times
 *   products/<id>/refs/<name>.png|jpg  the reference images exactly as uploaded
 *   products/<id>/cache/<model checksum>/<ref sha256>.bin  embedding cache (optional bytes)
 *   locks/<id>.lock                  per-product lock file (flock), never removed
 *   text-cache/<model checksum>.bin  prompt embeddings (text_cache.h; optional bytes)
 * A reference file not listed in product.json, a temp file (.tmp-*), a half-created product
 * (products/.new-*) and a half-deleted one (products/.trash-*) are leftovers of a crash and
 * are removed by insp_store_open.
 *
 * Concurrency: every function may be called from any thread. Changes (put, delete, add and
 * clear references) are serialised by a mutex in the store and, across processes sharing the
 * directory (replicas on a shared volume), by a per-product flock; readers (get, load_all,
 * read_reference, cache_get) take no lock and always see a committed product.json, because
 * it is only ever replaced by rename. */
#ifndef INSPD_STORE_STORE_H
#define INSPD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "inspectd/status.h"
#include "store/product_def.h"

/* References per product: a sanity bound on the store; the configured limit (the server's
 * max_references, default 16) is checked by the caller before adding. */
#define INSP_STORE_MAX_REFS 256
#define INSP_STORE_MAX_REF_BYTES (64u * 1024 * 1024) /* one reference image */
#define INSP_STORE_MAX_CACHE_BYTES (256u * 1024 * 1024) /* one cache entry */

typedef struct insp_store insp_store;

/* One reference image as the caller received it. content_type: "image/png" or "image/jpeg"
 * ("image/jpg" is taken as jpeg; case and parameters after ';' are ignored). The store does
 * not decode images: the caller checks that they decode before adding them. */
typedef struct insp_ref_upload {
    const void *data;
    size_t len;
    const char *content_type;
} insp_ref_upload;

typedef struct insp_stored_ref {
    char file[64];         /* relative to the product folder: "refs/<16 hex>.png" */
    char content_type[16]; /* "image/png" or "image/jpeg" */
    char sha256[65];       /* lowercase hex of the file's SHA-256 */
    size_t size;           /* bytes */
    char added[32];        /* ISO 8601 UTC, "2024-05-01T12:00:00.123Z" */
} insp_stored_ref;

/* A committed product, as read from its product.json. Owned by whoever got it; freed with
 * insp_stored_product_free. */
typedef struct insp_stored_product {
    char id[INSP_PRODUCT_ID_MAX + 1];
    insp_product_def def;
    insp_stored_ref *refs; /* in the order they were added */
    int n_refs;
    char created[32]; /* ISO 8601 UTC */
    char updated[32];
    long long version; /* 1 at creation, +1 for every change */
} insp_stored_product;

/* Opens (creating with mode 0750 as needed) the store under state_dir and removes the
 * leftovers of crashed writes (see the layout above). *out is freed with insp_store_close.
 * INSP_ERR_IO naming the path when the directory cannot be created or written. A product
 * whose product.json cannot be read is left alone here (load_all reports it). */
int insp_store_open(const char *state_dir, insp_store **out, insp_error *err);

/* Closes the store. NULL is a harmless no-op. */
void insp_store_close(insp_store *store);

/* The state directory the store was opened on. */
const char *insp_store_dir(const insp_store *store);

typedef void (*insp_store_product_cb)(const char *id, const insp_stored_product *p, void *user);
typedef void (*insp_store_bad_cb)(const char *id, const insp_error *why, void *user);

/* Calls on_product for every readable product, in id order; p is valid during the call only
 * (copy what you keep, e.g. with insp_product_def_copy). A product that cannot be read (bad
 * JSON, invalid definition, a listed reference file missing or of the wrong size) goes to
 * on_bad (may be NULL) and is skipped; it is never fatal. Names in products/ that are not
 * valid ids are reported with id set to the name. Returns INSP_ERR_IO only when the products
 * directory itself cannot be listed. */
int insp_store_load_all(insp_store *store, insp_store_product_cb on_product,
                        insp_store_bad_cb on_bad, void *user, insp_error *err);

/* Ids of the products folders (valid ids only, sorted), whether readable or not. *ids is a
 * malloc'ed array of malloc'ed strings: free with insp_store_ids_free(ids, n). */
int insp_store_list(insp_store *store, char ***ids, int *n, insp_error *err);
void insp_store_ids_free(char **ids, int n);

/* Creates product id with def and no references, or replaces the definition of an existing
 * one keeping its references (and its created time). *created (may be NULL) tells which;
 * *out (may be NULL) receives the committed product. INSP_ERR_INVALID for a bad id,
 * INSP_ERR_INVALID also for a def that would not parse back (a hand-built one with no object
 * word, say), INSP_ERR_CONFLICT when a folder for id exists but its product.json cannot be
 * read (DELETE it first), INSP_ERR_IO on file-system failure (the old state is then intact). */
int insp_store_put(insp_store *store, const char *id, const insp_product_def *def,
                   bool *created, insp_stored_product **out, insp_error *err);

/* Reads the committed product. INSP_ERR_NOT_FOUND when there is none, INSP_ERR_FORMAT when
 * its product.json is unreadable. */
int insp_store_get(insp_store *store, const char *id, insp_stored_product **out,
                   insp_error *err);

/* Deletes the product and everything under its folder. INSP_ERR_NOT_FOUND when absent. */
int insp_store_delete(insp_store *store, const char *id, insp_error *err);

/* Appends n references (n >= 1) in the given order, all or none: on any error the product is
 * as before. *new_count (may be NULL) receives the total count after the call. Errors:
 * INSP_ERR_NOT_FOUND, INSP_ERR_INVALID (n < 1, empty data), INSP_ERR_UNSUPPORTED (content
 * type), INSP_ERR_TOO_LARGE (more than INSP_STORE_MAX_REFS in all, or an image over
 * INSP_STORE_MAX_REF_BYTES), INSP_ERR_CONFLICT (an image identical to one already stored or
 * given twice), INSP_ERR_IO. */
int insp_store_add_references(insp_store *store, const char *id, int n,
                              const insp_ref_upload *uploads, int *new_count, insp_error *err);

/* Removes every reference (and the embedding cache). No-op when there are none. */
int insp_store_clear_references(insp_store *store, const char *id, insp_error *err);

/* Reads the image file of ref (from a product got from this store) into a malloc'ed buffer
 * the caller frees, checking its SHA-256: INSP_ERR_FORMAT when it does not match,
 * INSP_ERR_NOT_FOUND when the file is gone (e.g. references cleared meanwhile). */
int insp_store_read_ref_file(insp_store *store, const char *id, const insp_stored_ref *ref,
                             void **data, size_t *len, insp_error *err);

/* The same for reference number idx (0-based) of the currently committed product.
 * INSP_ERR_NOT_FOUND for an unknown product or idx out of range. */
int insp_store_read_reference(insp_store *store, const char *id, int idx, void **data,
                              size_t *len, insp_error *err);

/* Embedding cache: opaque bytes per (product, model checksum, reference sha256). checksum:
 * 1..128 characters of [A-Za-z0-9_-]; ref_sha256: 64 lowercase hex. The entry is stored with
 * a header holding its length and SHA-256, so cache_get returns either exactly what was put
 * or an error: INSP_ERR_NOT_FOUND (none), INSP_ERR_FORMAT (damaged; the caller recomputes
 * and puts again). *data is malloc'ed, freed by the caller. cache_put on an unknown product
 * is INSP_ERR_NOT_FOUND. */
int insp_store_cache_get(insp_store *store, const char *id, const char *checksum,
                         const char *ref_sha256, void **data, size_t *len, insp_error *err);
int insp_store_cache_put(insp_store *store, const char *id, const char *checksum,
                         const char *ref_sha256, const void *data, size_t len, insp_error *err);

/* Frees a product from get/put. NULL is a harmless no-op. */
void insp_stored_product_free(insp_stored_product *p);

/* Lowercase hex SHA-256 of len bytes into hex[65]. */
void insp_sha256_hex(const void *data, size_t len, char hex[65]);

/* Verifies a state directory without changing it: every product folder has a product.json
 * that parses and validates, and every listed reference exists with its size and SHA-256.
 * report (may be NULL) gets one line per problem. Returns the number of problems (0 = all
 * good) or a negative status when the products directory cannot be read. Leftover files of
 * crashes (which insp_store_open removes) are not problems. */
typedef void (*insp_store_check_cb)(const char *id, const char *problem, void *user);
int insp_store_check(const char *state_dir, insp_store_check_cb report, void *user);

#endif
