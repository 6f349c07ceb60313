/* Opening a golden fixture (tests/fixtures/<name>: model, manifest.json, expected.safetensors)
 * and reading its expected tensors, the same way in every golden test. */
#ifndef INSP_TEST_GOLDEN_H
#define INSP_TEST_GOLDEN_H

#include <jansson.h>

#include "inspectd/clip.h"
#include "inspectd/safetensors.h"

typedef struct golden_set {
    insp_clip *clip;             /* NULL when opened without the model */
    const insp_clip_config *cfg; /* clip's config, NULL with it */
    insp_safetensors *expected;  /* the reference outputs */
    json_t *manifest;
} golden_set;

/* Opens fixture `name`, its model too when with_model. On failure prints why, leaves *g
 * zeroed and returns the status. Free with golden_set_close. */
int golden_set_open(const char *name, int with_model, golden_set *g);

/* Frees what golden_set_open opened and zeroes *g; a zeroed set is a no-op. */
void golden_set_close(golden_set *g);

/* The expected F32 tensor `name` with exactly numel values, or NULL after a failed check. */
const float *golden_set_f32(const golden_set *g, const char *name, long numel);

#endif
