/* A validating, mmap-based reader of safetensors files (weights and golden fixtures). */
#ifndef INSPECTD_SAFETENSORS_H
#define INSPECTD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "inspectd/status.h"

typedef enum insp_dtype {
    INSP_DTYPE_F32,
    INSP_DTYPE_F16,
    INSP_DTYPE_BF16,
    INSP_DTYPE_I32,
    INSP_DTYPE_I64,
    INSP_DTYPE_U8,
} insp_dtype;

#define INSP_ST_MAX_DIMS 8

typedef struct insp_st_tensor {
    const char *name;  /* owned by the file handle */
    insp_dtype dtype;
    int ndim;          /* 0 for a scalar */
    int64_t shape[INSP_ST_MAX_DIMS];
    int64_t numel;     /* product of shape (1 for a scalar) */
    const void *data;  /* points into the mapping; valid until insp_st_close */
    size_t nbytes;
} insp_st_tensor;

typedef struct insp_safetensors insp_safetensors;

/* Maps and validates path: header length and JSON, known dtypes, shapes, offsets inside the
 * data section and non-overlapping, dtype × shape = byte length. On failure *out is NULL and
 * err names the file, the tensor and the problem. Free with insp_st_close. */
int insp_st_open(const char *path, insp_safetensors **out, insp_error *err);

/* Unmaps and frees. NULL is a harmless no-op. */
void insp_st_close(insp_safetensors *st);

int insp_st_count(const insp_safetensors *st);
const insp_st_tensor *insp_st_at(const insp_safetensors *st, int i);
/* NULL when there is no tensor of that name. */
const insp_st_tensor *insp_st_find(const insp_safetensors *st, const char *name);

/* Converts a floating tensor (F32, F16, BF16) to float32 into dst[numel]; INSP_ERR_UNSUPPORTED
 * for integer dtypes. */
int insp_st_to_f32(const insp_st_tensor *t, float *dst);

/* Size in bytes of one element of dtype. */
size_t insp_dtype_size(insp_dtype dtype);
const char *insp_dtype_name(insp_dtype dtype);

/* IEEE half / bfloat16 to float. */
float insp_f16_to_f32(uint16_t h);
float insp_bf16_to_f32(uint16_t h);

#endif
