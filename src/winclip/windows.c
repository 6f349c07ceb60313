/* WinCLIP's window geometry on the patch grid, and the harmonic aggregation that turns
 * per-window values back into per-patch values (METHODS.md §3). */
#include <stdlib.h>

#include "inspectd/winclip.h"

/* A grid this large would be a 50-megapixel ViT input at patch 14; anything beyond is a
 * corrupt config rather than a model. */
#define MAX_GRID 512

int insp_windows_make(int grid, int k, insp_windows *out)
{
    if (!out)
        return INSP_ERR_INVALID;
    *out = (insp_windows){0};
    if (grid < 1 || grid > MAX_GRID || k < 1 || k > grid)
        return INSP_ERR_INVALID;
    int per_side = grid - k + 1;
    int n = per_side * per_side;
    int32_t *patches = malloc((size_t)n * (size_t)(k * k) * sizeof *patches); // [n, k·k]
    if (!patches)
        return INSP_ERR_NOMEM;
    int32_t *p = patches;
    for (int top = 0; top < per_side; top++)
        for (int left = 0; left < per_side; left++)
            for (int r = 0; r < k; r++)
                for (int c = 0; c < k; c++)
                    *p++ = (int32_t)((top + r) * grid + left + c);
    *out = (insp_windows){.grid = grid, .k = k, .n = n, .patches = patches};
    return INSP_OK;
}

void insp_windows_free(insp_windows *w)
{
    if (!w)
        return;
    free(w->patches);
    *w = (insp_windows){0};
}

/* Windows covering grid row (or column) r: those whose first row lies in
 * [max(0, r-k+1), min(r, grid-k)]. */
static int covering_1d(int r, int grid, int k)
{
    int lo = r - k + 1 > 0 ? r - k + 1 : 0;
    int hi = r < grid - k ? r : grid - k;
    return hi >= lo ? hi - lo + 1 : 0;
}

void insp_harmonic_aggregate(const insp_windows *w, const float *val, float *out)
{
    int n_patches = w->grid * w->grid;
    int kk = w->k * w->k;
    // out first holds Σ 1/val over the covering windows. A zero value makes that sum +inf and
    // the mean 0, which is what anomalib gets (its nan_to_num(posinf=0) only matters for
    // uncovered patches).
    for (int p = 0; p < n_patches; p++)
        out[p] = 0.0f;
    for (int i = 0; i < w->n; i++) {
        float recip = 1.0f / val[i];
        const int32_t *idx = w->patches + (long)i * kk;
        for (int j = 0; j < kk; j++)
            out[idx[j]] += recip;
    }
    for (int p = 0; p < n_patches; p++) {
        int n_p = covering_1d(p / w->grid, w->grid, w->k) * covering_1d(p % w->grid, w->grid, w->k);
        out[p] = n_p > 0 ? (float)n_p / out[p] : 0.0f;
    }
}
