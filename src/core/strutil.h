/* Small string helpers shared by the config and definition parsers. */
#ifndef INSP_CORE_STRUTIL_H
#define INSP_CORE_STRUTIL_H

#include <stddef.h>

/* Levenshtein distance between a and b, used only to suggest the key a typo meant; strings
 * over 64 bytes give SIZE_MAX. */
size_t insp_edit_distance(const char *a, const char *b);

#endif
