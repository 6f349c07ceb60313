/* The prompt-embedding cache of one model: single prompts' text embeddings kept in the store so
 * that a restart (or a second product with the same object word) does not run the text tower
 * again. Keys are the SHA-256 of the prompt's token ids (see insp_prompt_cache).
 *
 * One append-only file per model, <state>/text-cache/<model checksum>.bin: a 16-byte header
 * ("INSPTXC1", uint32 dim, uint32 0) and records of [key 32][dim float32 LE][SHA-256 of key
 * and floats 32]. A record that does not check out (a torn append, a flipped bit) ends the
 * file: it and everything after it are cut off at the next open or append. Appends take an
 * flock on the file, so replicas sharing the store may add to it at once; each picks up the
 * other's records when it next appends. Losing the file loses nothing but time.
 *
 * Thread-safe: gets and puts may come from any thread. */
#ifndef INSPD_STORE_TEXT_CACHE_H
#define INSPD_STORE_TEXT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "inspectd/status.h"
#include "store/store.h"

typedef struct insp_text_cache insp_text_cache;

/* Opens (creating when needed) the cache file of the model with this weights checksum and
 * embedding width dim. A file of another width or with a damaged header is started afresh.
 * A store that cannot be written is INSP_ERR_IO with the reason; callers run without a cache
 * then. *reset (may be NULL) is set when a damaged header or tail was cut off. */
int insp_text_cache_open(insp_store *store, const char *checksum, int dim,
                         insp_text_cache **out, bool *reset, insp_error *err);
void insp_text_cache_close(insp_text_cache *c);

/* Fills emb[dim] with key's embedding; false when it is not held (or its record is damaged). */
bool insp_text_cache_get(insp_text_cache *c, const uint8_t key[32], float *emb);

/* Appends the embeddings of keys not held yet (emb [n, dim]) and makes them durable (fdatasync)
 * before returning. On failure (disk full) nothing half-written stays behind. */
int insp_text_cache_put(insp_text_cache *c, int n, const uint8_t (*keys)[32], const float *emb,
                        insp_error *err);

/* Embeddings held. */
int insp_text_cache_count(insp_text_cache *c);

#endif
