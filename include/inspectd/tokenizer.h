/* CLIP's byte-level BPE tokenizer (METHODS.md §2). */
#ifndef INSPECTD_TOKENIZER_H
#define INSPECTD_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "inspectd/status.h"

#define INSP_TOKEN_SOT 49406
#define INSP_TOKEN_EOT 49407

typedef struct insp_tokenizer insp_tokenizer;

/* Finds the vocabulary: $INSPECTD_BPE; then in model_dir (may be NULL)
 * bpe_simple_vocab_16e6.txt.gz or merges.txt; then weights/bpe_simple_vocab_16e6.txt.gz;
 * then ../shared/clip-bpe/bpe_simple_vocab_16e6.txt.gz (relative paths from the working
 * directory). Writes the first that exists into path. INSP_ERR_NOT_FOUND lists where it looked. */
int insp_tokenizer_find(const char *model_dir, char *path, size_t path_size, insp_error *err);

/* Loads a gzipped CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz) or the hub's plain
 * merges.txt. Free with insp_tokenizer_free (NULL is fine). The tokenizer is read-only after
 * load and may be shared by threads. */
int insp_tokenizer_load(const char *path, insp_tokenizer **out, insp_error *err);
void insp_tokenizer_free(insp_tokenizer *tok);

/* Tokenizes UTF-8 text into ids[context_length]: SOT, tokens, EOT, zeros; a longer text is cut
 * to context_length-2 tokens + EOT. Returns the number of ids before the padding (≥ 2), or a
 * negative status (INSP_ERR_FORMAT for invalid UTF-8). */
int insp_tokenizer_encode(const insp_tokenizer *tok, const char *text, int32_t *ids,
                          int context_length, insp_error *err);

/* The vocabulary entry of id (byte-level symbols, "</w>" marking word ends), or NULL. */
const char *insp_tokenizer_token(const insp_tokenizer *tok, int32_t id);

#endif
