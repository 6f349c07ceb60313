/* Maps a safetensors file and checks every header entry before any tensor is handed out, so
 * that a damaged or hostile file yields an error instead of an out-of-bounds read. */
#include "inspectd/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Real headers are a few hundred kB at most; the cap keeps a bogus length from making us
 * parse (or allocate for) gigabytes of "JSON". */
#define ST_MAX_HEADER (100u * 1024u * 1024u)

struct insp_safetensors {
    void *map;
    size_t map_len;
    int n;
    insp_st_tensor *tensors; /* sorted by data offset (file order) */
    const insp_st_tensor **by_name; /* into tensors, sorted by name, for insp_st_find */
    char *names;             /* all tensor names, NUL-separated */
};

/* Offsets of a tensor while the header is checked; begin/end are relative to the data
 * section. */
typedef struct st_entry {
    insp_st_tensor t;
    uint64_t begin, end;
} st_entry;

size_t insp_dtype_size(insp_dtype dtype)
{
    switch (dtype) {
    case INSP_DTYPE_F32: return 4;
    case INSP_DTYPE_F16: return 2;
    case INSP_DTYPE_BF16: return 2;
    case INSP_DTYPE_I32: return 4;
    case INSP_DTYPE_I64: return 8;
    case INSP_DTYPE_U8: return 1;
    }
    return 0;
}

const char *insp_dtype_name(insp_dtype dtype)
{
    switch (dtype) {
    case INSP_DTYPE_F32: return "F32";
    case INSP_DTYPE_F16: return "F16";
    case INSP_DTYPE_BF16: return "BF16";
    case INSP_DTYPE_I32: return "I32";
    case INSP_DTYPE_I64: return "I64";
    case INSP_DTYPE_U8: return "U8";
    }
    return "?";
}

static int dtype_from_name(const char *s, insp_dtype *out)
{
    static const struct {
        const char *name;
        insp_dtype dtype;
    } table[] = {
        {"F32", INSP_DTYPE_F32}, {"F16", INSP_DTYPE_F16}, {"BF16", INSP_DTYPE_BF16},
        {"I32", INSP_DTYPE_I32}, {"I64", INSP_DTYPE_I64}, {"U8", INSP_DTYPE_U8},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(s, table[i].name) == 0) {
            *out = table[i].dtype;
            return 0;
        }
    }
    return -1;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float insp_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf, or nan with its payload kept (quiet bit lands on f32's) */
        return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0)
            return f32_from_bits(sign);
        /* Subnormal half: mant·2^-24 is a normal float; shift its leading 1 into the
         * implicit-bit position and lower the exponent by as much. */
        uint32_t shift = 0;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            shift++;
        }
        return f32_from_bits(sign | ((113u - shift) << 23) | ((mant & 0x3ffu) << 13));
    }
    return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

float insp_bf16_to_f32(uint16_t h)
{
    /* bfloat16 is the top half of a float32, so every class (subnormal, inf, nan) carries
     * over unchanged. */
    return f32_from_bits((uint32_t)h << 16);
}

int insp_st_to_f32(const insp_st_tensor *t, float *dst)
{
    if (!t || (!dst && t->numel > 0))
        return INSP_ERR_INVALID;
    /* Tensor data in the file has no alignment guarantee, hence memcpy for every load. */
    const unsigned char *src = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case INSP_DTYPE_F32:
        if (n)
            memcpy(dst, src, n * sizeof(float));
        return INSP_OK;
    case INSP_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = insp_f16_to_f32(h);
        }
        return INSP_OK;
    case INSP_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = insp_bf16_to_f32(h);
        }
        return INSP_OK;
    default:
        return INSP_ERR_UNSUPPORTED;
    }
}

/* Reads a JSON integer that must be >= 0 (jansson integers are long long). */
static int json_nonneg(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

static void format_shape(const insp_st_tensor *t, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld",
                                 (long long)t->shape[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* Checks one header entry and fills e (name not yet set). */
static int parse_entry(const char *path, const char *name, const json_t *v, uint64_t data_len,
                       st_entry *e, insp_error *err)
{
    if (!json_is_object(v))
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: tensor %s: header entry is not an object",
                              path, name);
    const json_t *jd = json_object_get(v, "dtype");
    const json_t *js = json_object_get(v, "shape");
    const json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: tensor %s: missing or non-string dtype",
                              path, name);
    if (dtype_from_name(json_string_value(jd), &e->t.dtype) != 0)
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "%s: tensor %s: unsupported dtype \"%.32s\" (F32, F16, BF16, I32, "
                              "I64 and U8 are)",
                              path, name, json_string_value(jd));
    if (!json_is_array(js))
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: tensor %s: missing or non-array shape",
                              path, name);
    size_t ndim = json_array_size(js);
    if (ndim > INSP_ST_MAX_DIMS)
        return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                              "%s: tensor %s: %zu dimensions, at most %d supported", path, name,
                              ndim, INSP_ST_MAX_DIMS);
    e->t.ndim = (int)ndim;
    uint64_t numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        uint64_t dim;
        if (json_nonneg(json_array_get(js, d), &dim) != 0)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "%s: tensor %s: shape entry %zu is not a non-negative integer",
                                  path, name, d);
        if (dim > INT64_MAX || __builtin_mul_overflow(numel, dim, &numel) || numel > INT64_MAX)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "%s: tensor %s: shape overflows 64-bit element count", path,
                                  name);
        e->t.shape[d] = (int64_t)dim;
    }
    e->t.numel = (int64_t)numel;

    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        json_nonneg(json_array_get(jo, 0), &e->begin) != 0 ||
        json_nonneg(json_array_get(jo, 1), &e->end) != 0)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "%s: tensor %s: data_offsets is not [begin, end] of non-negative "
                              "integers",
                              path, name);
    if (e->begin > e->end)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "%s: tensor %s: data_offsets [%llu, %llu] has begin after end",
                              path, name, (unsigned long long)e->begin,
                              (unsigned long long)e->end);
    if (e->end > data_len)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "%s: tensor %s: data_offsets [%llu, %llu] run past the end of the "
                              "data section (%llu bytes)",
                              path, name, (unsigned long long)e->begin,
                              (unsigned long long)e->end, (unsigned long long)data_len);
    uint64_t want;
    if (__builtin_mul_overflow(numel, (uint64_t)insp_dtype_size(e->t.dtype), &want) ||
        want != e->end - e->begin) {
        char shape[160];
        format_shape(&e->t, shape, sizeof shape);
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "%s: tensor %s: %s %s needs %llu bytes but data_offsets span %llu",
                              path, name, insp_dtype_name(e->t.dtype), shape,
                              (unsigned long long)want, (unsigned long long)(e->end - e->begin));
    }
    e->t.nbytes = (size_t)want;
    return INSP_OK;
}

static int cmp_offset(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    const insp_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Builds st's tables from the parsed header. */
static int build_index(const char *path, insp_safetensors *st, json_t *root,
                       const unsigned char *data, uint64_t data_len, insp_error *err)
{
    size_t n = 0, names_len = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        n++;
        names_len += strlen(key) + 1;
    }
    if (n > INT32_MAX / 2)
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "%s: %zu tensors", path, n);

    st_entry *ents = calloc(n ? n : 1, sizeof *ents);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->by_name = calloc(n ? n : 1, sizeof *st->by_name);
    st->names = malloc(names_len ? names_len : 1);
    if (!ents || !st->tensors || !st->by_name || !st->names) {
        free(ents);
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory for %zu tensor entries",
                              path, n);
    }

    size_t i = 0, pos = 0;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        size_t len = strlen(key) + 1;
        memcpy(st->names + pos, key, len);
        ents[i].t.name = st->names + pos;
        pos += len;
        int rc = parse_entry(path, key, v, data_len, &ents[i], err);
        if (rc != INSP_OK) {
            free(ents);
            return rc;
        }
        i++;
    }

    qsort(ents, n, sizeof *ents, cmp_offset);
    for (i = 0; i < n; i++) {
        if (i > 0 && ents[i].begin < ents[i - 1].end) {
            int rc = insp_error_set(err, INSP_ERR_FORMAT,
                                    "%s: tensor %s: data [%llu, %llu] overlaps tensor %s "
                                    "[%llu, %llu]",
                                    path, ents[i].t.name, (unsigned long long)ents[i].begin,
                                    (unsigned long long)ents[i].end, ents[i - 1].t.name,
                                    (unsigned long long)ents[i - 1].begin,
                                    (unsigned long long)ents[i - 1].end);
            free(ents);
            return rc;
        }
        st->tensors[i] = ents[i].t;
        st->tensors[i].data = data + ents[i].begin;
        st->by_name[i] = &st->tensors[i];
    }
    free(ents);
    st->n = (int)n;
    qsort(st->by_name, n, sizeof *st->by_name, cmp_name);
    return INSP_OK;
}

int insp_st_open(const char *path, insp_safetensors **out, insp_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return insp_error_set(err, errno == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return insp_error_set(err, INSP_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "%s: file is %zu bytes, too short for a safetensors header", path,
                              size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return insp_error_set(err, INSP_ERR_IO, "%s: mmap failed: %s", path,
                              strerror(map_errno));

    insp_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        munmap(map, size);
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", path);
    }
    st->map = map;
    st->map_len = size;

    const unsigned char *bytes = map;
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--) /* little-endian u64 */
        hlen = (hlen << 8) | bytes[b];
    int rc;
    if (hlen > ST_MAX_HEADER) {
        rc = insp_error_set(err, INSP_ERR_FORMAT,
                            "%s: header length %llu exceeds the %u-byte limit", path,
                            (unsigned long long)hlen, ST_MAX_HEADER);
        goto fail;
    }
    if (hlen > size - 8) {
        rc = insp_error_set(err, INSP_ERR_FORMAT,
                            "%s: header length %llu exceeds the file (%zu bytes after the "
                            "length field)",
                            path, (unsigned long long)hlen, size - 8);
        goto fail;
    }

    json_error_t jerr;
    json_t *root = json_loadb((const char *)bytes + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = insp_error_set(err, INSP_ERR_FORMAT, "%s: header is not valid JSON: %s (at byte %d)",
                            path, jerr.text, jerr.position);
        goto fail;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        rc = insp_error_set(err, INSP_ERR_FORMAT, "%s: header JSON is not an object", path);
        goto fail;
    }
    rc = build_index(path, st, root, bytes + 8 + hlen, size - 8 - hlen, err);
    json_decref(root);
    if (rc != INSP_OK)
        goto fail;
    *out = st;
    return INSP_OK;

fail:
    insp_st_close(st);
    return rc;
}

void insp_st_close(insp_safetensors *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_len);
    free(st->tensors);
    free(st->by_name);
    free(st->names);
    free(st);
}

int insp_st_count(const insp_safetensors *st)
{
    return st ? st->n : 0;
}

const insp_st_tensor *insp_st_at(const insp_safetensors *st, int i)
{
    if (!st || i < 0 || i >= st->n)
        return NULL;
    return &st->tensors[i];
}

const insp_st_tensor *insp_st_find(const insp_safetensors *st, const char *name)
{
    if (!st || !name)
        return NULL;
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const insp_st_tensor *t = st->by_name[mid];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}
