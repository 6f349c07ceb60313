/* Fuzz target: the safetensors reader on untrusted weight files (a corrupt download, a file
 * from someone else). The input is written to a memfd, since insp_st_open maps a path. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "inspectd/safetensors.h"

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_fd = memfd_create("fuzz-safetensors", 0);
    if (g_fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size)
        abort();
    insp_safetensors *st = NULL;
    insp_error err = {0};
    int rc = insp_st_open(g_path, &st, &err);
    if (rc != INSP_OK) {
        if (st)
            abort();
        return 0;
    }
    int n = insp_st_count(st);
    for (int i = 0; i < n; i++) {
        const insp_st_tensor *t = insp_st_at(st, i);
        if (!t || !t->name || insp_st_find(st, t->name) == NULL)
            abort();
        if (t->nbytes != (size_t)t->numel * insp_dtype_size(t->dtype))
            abort();
        if (t->numel > (1 << 20))
            continue;
        float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *dst);
        if (!dst)
            abort();
        insp_st_to_f32(t, dst); /* reads every byte of the tensor's data */
        free(dst);
    }
    insp_st_close(st);
    return 0;
}
