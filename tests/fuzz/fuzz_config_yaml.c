/* Fuzz target: the daemon's YAML configuration (inspectd.yaml) loaded over the defaults. */
#include "daemon/config.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    insp_config cfg;
    insp_error err = {0};
    if (insp_config_defaults(&cfg) == INSP_OK &&
        insp_config_load_string((const char *)data, size, "fuzz.yaml", &cfg, &err) == INSP_OK &&
        !cfg.keys_file)
        insp_config_validate(&cfg, &err); /* a keys file would be read from any path */
    insp_config_free(&cfg);
    return 0;
}
