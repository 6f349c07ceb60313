/* Fuzz target: open_clip_config.json parsing (a model folder from the hub or a user). */
#include "fuzz.h"
#include "inspectd/clip.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    insp_clip_config cfg;
    insp_error err = {0};
    insp_clip_config_parse((const char *)data, size, &cfg, &err);
    return 0;
}
