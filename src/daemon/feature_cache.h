/* The bytes of one reference shot's features in the store's embedding cache, so that a restart
 * or a new reference does not recompute the shots already seen. */
#ifndef INSPD_DAEMON_FEATURE_CACHE_H
#define INSPD_DAEMON_FEATURE_CACHE_H

#include <stddef.h>

#include "inspectd/winclip.h"

/* Serializes f (image embedding, patch tokens, window embeddings; not F0), computed with wc,
 * into a malloc'ed buffer. INSP_ERR_NOMEM on failure. */
int insp_features_pack(const insp_winclip *wc, const insp_features *f, void **data,
                       size_t *len);

/* Checks data against wc's geometry and points *f into a malloc'ed copy (*block, freed by
 * the caller after use). INSP_ERR_FORMAT when the bytes do not match (stale or damaged). */
int insp_features_unpack(const insp_winclip *wc, const void *data, size_t len,
                         insp_features *f, float **block);

#endif
