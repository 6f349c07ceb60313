/* Fuzz target: image header probe and full decode (JPEG, PNG) of untrusted upload bytes. */
#include <stdlib.h>

#include "fuzz.h"
#include "inspectd/image.h"

/* Small enough that a lying header cannot make the fuzzer run out of memory, large enough for
 * every real decode path (a 2048x2048 RGB image is 12 MiB). */
#define FUZZ_MAX_PIXELS (2048L * 2048L)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    insp_error err = {0};
    insp_image_format fmt;
    int w = 0, h = 0;
    int probe_rc = insp_image_probe(data, size, &fmt, &w, &h, &err);
    if (probe_rc == INSP_OK && (w < 1 || h < 1))
        abort(); /* a successful probe must give a real size */

    insp_image img = {0};
    int rc = insp_image_decode(data, size, FUZZ_MAX_PIXELS, &img, &err);
    if (rc == INSP_OK) {
        if (!img.rgb || img.width < 1 || img.height < 1 ||
            (long)img.width * img.height > FUZZ_MAX_PIXELS)
            abort();
        if (probe_rc == INSP_OK && (img.width != w || img.height != h))
            abort(); /* decode and probe must agree on the size */
        /* Touch every byte so that ASan sees a short buffer and MSan-like bugs show up as
         * differences (the sum itself is discarded). */
        volatile unsigned sum = 0;
        for (size_t i = 0; i < (size_t)img.width * img.height * 3; i++)
            sum += img.rgb[i];
        (void)sum;
    } else if (img.rgb) {
        abort(); /* on failure out->rgb is NULL */
    }
    insp_image_free(&img);
    return 0;
}
