/* Fuzz target: the BPE tokenizer on arbitrary text (object words and states come from
 * product definitions sent over HTTP), with the real CLIP vocabulary loaded once. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "inspectd/tokenizer.h"

#define FUZZ_CONTEXT 77

static insp_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[4096];
    insp_error err = {0};
    if (insp_tokenizer_find(NULL, path, sizeof path, &err) != INSP_OK ||
        insp_tokenizer_load(path, &g_tok, &err) != INSP_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s (set INSPECTD_BPE)\n", err.msg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    int32_t ids[FUZZ_CONTEXT];
    insp_error err = {0};
    int n = insp_tokenizer_encode(g_tok, text, ids, FUZZ_CONTEXT, &err);
    if (n >= 0) {
        if (n < 2 || n > FUZZ_CONTEXT || ids[0] != INSP_TOKEN_SOT || ids[n - 1] != INSP_TOKEN_EOT)
            abort();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] > INSP_TOKEN_EOT || !insp_tokenizer_token(g_tok, ids[i]))
                abort();
        for (int i = n; i < FUZZ_CONTEXT; i++)
            if (ids[i] != 0)
                abort();
    }
    free(text);
    return 0;
}
