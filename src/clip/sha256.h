/* SHA-256 of a whole file, streamed: the model checksum that keys every embedding cache. */
#ifndef INSP_CLIP_SHA256_H
#define INSP_CLIP_SHA256_H

#include "inspectd/status.h"

/* Hashes path in fixed-size chunks (memory use does not grow with the file) and writes the
 * lower-case hex digest, 64 chars + NUL, into hex. */
int insp_sha256_file(const char *path, char hex[65], insp_error *err);

#endif
