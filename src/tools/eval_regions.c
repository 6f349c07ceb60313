/* Ground-truth regions for AUPRO: the 8-connected components of a defect mask, and the
 * nearest-neighbour resampling that brings a mask to the resolution metrics are taken at. */
#include <stdlib.h>
#include <string.h>

#include "tools/eval.h"

int eval_label_regions(const uint8_t *mask, int w, int h, int32_t first_id, int32_t *region,
                       int *n_found)
{
    *n_found = 0;
    if (w < 1 || h < 1 || first_id < 1)
        return INSP_ERR_INVALID;
    long n = (long)w * h;
    if (n > INT32_MAX)
        return INSP_ERR_TOO_LARGE;
    memset(region, 0, (size_t)n * sizeof *region);
    int32_t *stack = NULL; // allocated on the first defect pixel: most masks are empty
    int found = 0;
    for (long start = 0; start < n; start++) {
        if (!mask[start] || region[start])
            continue;
        if (!stack && !(stack = malloc((size_t)n * sizeof *stack)))
            return INSP_ERR_NOMEM;
        int32_t id = first_id + found++;
        long top = 0;
        region[start] = id;
        stack[top++] = (int32_t)start;
        // Each pixel is pushed once (labelled when pushed), so the stack never exceeds n.
        while (top > 0) {
            int32_t p = stack[--top];
            int x = p % w, y = p / w;
            for (int dy = -1; dy <= 1; dy++) {
                int yy = y + dy;
                if (yy < 0 || yy >= h)
                    continue;
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx;
                    if (xx < 0 || xx >= w)
                        continue;
                    long q = (long)yy * w + xx;
                    if (mask[q] && !region[q]) {
                        region[q] = id;
                        stack[top++] = (int32_t)q;
                    }
                }
            }
        }
    }
    free(stack);
    *n_found = found;
    return INSP_OK;
}

void eval_mask_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    for (int y = 0; y < dh; y++) {
        long sy = ((2L * y + 1) * sh) / (2L * dh); // the source pixel under this pixel's centre
        if (sy >= sh)
            sy = sh - 1;
        for (int x = 0; x < dw; x++) {
            long sx = ((2L * x + 1) * sw) / (2L * dw);
            if (sx >= sw)
                sx = sw - 1;
            dst[(long)y * dw + x] = src[sy * sw + sx] ? 1 : 0;
        }
    }
}
