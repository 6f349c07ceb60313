/* Internal Unicode side of the CLIP tokenizer: strict UTF-8, the text cleaning CLIP applies
 * before splitting, and the character classes of its split pattern (METHODS.md §2). */
#ifndef INSP_CLIP_UNICODE_H
#define INSP_CLIP_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspectd/status.h"

/* Decodes len bytes of UTF-8 into cps[len] (a text never has more code points than bytes)
 * and sets *n. Rejects stray continuation bytes, truncated sequences, overlong encodings,
 * surrogates and values above U+10FFFF with INSP_ERR_FORMAT naming the byte offset. */
int insp_utf8_decode(const char *s, size_t len, uint32_t *cps, size_t *n, insp_error *err);

/* Writes the UTF-8 form of cp (≤ U+10FFFF, not a surrogate) into out; returns its length. */
int insp_utf8_encode(uint32_t cp, unsigned char out[4]);

/* Python's str.isspace(), which CLIP's whitespace cleaning (re's \s) uses. */
bool insp_uc_is_space(uint32_t cp);
/* \p{L} and \p{N} of CLIP's split pattern (Unicode general categories L* and N*). */
bool insp_uc_is_letter(uint32_t cp);
bool insp_uc_is_number(uint32_t cp);

/* One pass of Python's html.unescape over in[n] into out (at most n code points; the result
 * is never longer); returns the output length. Numeric references follow Python exactly; of
 * the named ones, the HTML 4 set plus &apos; and the upper-case legacy aliases (&AMP; &LT;
 * &GT; &QUOT; &COPY; &REG;) are known, with Python's semicolon-less legacy rule; names only
 * HTML 5 has (&Tab;, &NewLine;, &check;, ...) stay as written. */
size_t insp_html_unescape(const uint32_t *in, size_t n, uint32_t *out);

/* CLIP's cleaning of decoded text: html.unescape twice, strip, whitespace runs to one space,
 * strip, then Python's str.lower() (simple mappings via utf8proc, plus İ → i̇ and the final
 * sigma rule). On success *out (malloc'ed, the caller frees) holds *n_out code points. */
int insp_clip_clean(const uint32_t *cps, size_t n, uint32_t **out, size_t *n_out,
                    insp_error *err);

#endif
