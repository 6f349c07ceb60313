/* Fuzz target: multipart/form-data bodies (uploads of several reference images) under a fixed
 * boundary, and the boundary parameter itself from the input's first bytes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/multipart.h"

#define FUZZ_CONTENT_TYPE "multipart/form-data; boundary=XyZzy"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    insp_multipart mp;
    insp_error err = {0};
    if (insp_multipart_parse(FUZZ_CONTENT_TYPE, data, size, 16, &mp, &err) == INSP_OK) {
        if (mp.n < 0 || mp.n > 16)
            abort();
        for (int i = 0; i < mp.n; i++) {
            const insp_multipart_part *p = &mp.parts[i];
            if (!p->name || !p->content_type)
                abort();
            /* Every part must lie inside the body. */
            const uint8_t *b = p->data;
            if (p->len > 0 && (b < data || b + p->len > data + size))
                abort();
            volatile unsigned sum = 0;
            for (size_t k = 0; k < p->len; k++)
                sum += b[k];
            (void)sum;
        }
        insp_multipart_free(&mp);
    } else if (mp.n != 0 || mp.parts) {
        abort(); /* on error *out is empty */
    }

    /* The first line as a Content-Type header value. */
    size_t line = 0;
    while (line < size && line < 300 && data[line] != '\n')
        line++;
    char *ct = fuzz_strndup(data, line);
    char boundary[71];
    if (insp_multipart_boundary(ct, boundary, sizeof boundary, &err) == INSP_OK) {
        size_t bl = strlen(boundary);
        if (bl < 1 || bl > 70)
            abort();
    }
    free(ct);
    return 0;
}
