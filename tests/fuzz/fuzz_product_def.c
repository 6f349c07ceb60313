/* Fuzz target: product definitions (the body of PUT /v1/products/{id}). A definition that
 * parses must survive its canonical form: parse(to_json(def)) gives the same canonical JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store/product_def.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static char *canonical(const insp_product_def *def)
{
    json_t *j = insp_product_def_to_json(def);
    if (!j)
        abort();
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (!s)
        abort();
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    insp_product_def def;
    insp_error err = {0};
    if (insp_product_def_parse((const char *)data, size, &def, &err) != INSP_OK) {
        if (def.object)
            abort(); /* on error *def is zeroed */
        return 0;
    }
    char *first = canonical(&def);
    insp_product_def again;
    if (insp_product_def_parse(first, strlen(first), &again, &err) != INSP_OK)
        abort(); /* the canonical form must parse */
    char *second = canonical(&again);
    if (strcmp(first, second) != 0)
        abort();
    insp_product_def copy;
    if (insp_product_def_copy(&def, &copy) != INSP_OK)
        abort();
    char *third = canonical(&copy);
    if (strcmp(first, third) != 0)
        abort();
    insp_prompt_spec spec;
    insp_product_def_prompt_spec(&def, &spec);
    free(first);
    free(second);
    free(third);
    insp_product_def_free(&def);
    insp_product_def_free(&again);
    insp_product_def_free(&copy);

    /* The same bytes as a product id. */
    char *id = fuzz_strndup(data, size < 100 ? size : 100);
    insp_product_id_check(id, &err);
    free(id);
    return 0;
}
