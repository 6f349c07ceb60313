/* Strict parsing of product definitions: a typo in a field name or a value out of range is an
 * error naming the field, never silently ignored. */
#include "store/product_def.h"
#include "core/strutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum field_kind { F_STRING, F_LIST, F_BOOL, F_THRESHOLD };

typedef struct field_info {
    const char *name;
    enum field_kind kind;
} field_info;

static const field_info fields[] = {
    {"object", F_STRING},
    {"normal_states", F_LIST},
    {"anomaly_states", F_LIST},
    {"templates", F_LIST},
    {"replace_normal_states", F_BOOL},
    {"replace_anomaly_states", F_BOOL},
    {"replace_templates", F_BOOL},
    {"normal_sentences", F_LIST},
    {"anomaly_sentences", F_LIST},
    {"model", F_STRING},
    {"threshold", F_THRESHOLD},
    {"description", F_STRING},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

static int unknown_field(const char *key, insp_error *err)
{
    const char *best = NULL;
    size_t best_d = 3; /* suggest only close matches */
    for (size_t i = 0; i < N_FIELDS; i++) {
        size_t d = insp_edit_distance(key, fields[i].name);
        if (d < best_d) {
            best_d = d;
            best = fields[i].name;
        }
    }
    if (best)
        return insp_error_set(err, INSP_ERR_INVALID, "unknown field \"%.64s\" (did you mean \"%s\"?)",
                              key, best);
    return insp_error_set(err, INSP_ERR_INVALID, "unknown field \"%.64s\"", key);
}

static bool all_space(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

static bool has_control(const char *s, bool allow_newlines)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (allow_newlines && (*p == '\n' || *p == '\r' || *p == '\t'))
            continue;
        if (*p < 0x20 || *p == 0x7f)
            return true;
    }
    return false;
}

static int count_placeholders(const char *s)
{
    int n = 0;
    for (const char *p = strstr(s, "{}"); p; p = strstr(p + 2, "{}"))
        n++;
    return n;
}

/* A one-line prompt fragment: non-empty, within max bytes, no control characters. `what`
 * names it in messages ("object", "normal_states[2]"). */
static int check_line(const char *s, size_t len, size_t max, const char *what, insp_error *err)
{
    if (len == 0 || all_space(s))
        return insp_error_set(err, INSP_ERR_INVALID, "%s: must not be empty", what);
    if (len > max)
        return insp_error_set(err, INSP_ERR_INVALID, "%s: %zu bytes, at most %zu allowed", what,
                              len, max);
    if (has_control(s, false))
        return insp_error_set(err, INSP_ERR_INVALID, "%s: contains a control character", what);
    return INSP_OK;
}

static int get_string(const json_t *v, const char *what, char **out, insp_error *err)
{
    if (!json_is_string(v))
        return insp_error_set(err, INSP_ERR_INVALID, "%s: must be a string, got %s", what,
                              type_name(v));
    *out = strdup(json_string_value(v));
    return *out ? INSP_OK : insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", what);
}

static void list_free(insp_def_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* placeholders: how many "{}" each item must hold (1 for states and templates, -1: any). */
static int get_list(const json_t *v, const char *name, int placeholders, insp_def_list *out,
                    insp_error *err)
{
    if (!json_is_array(v))
        return insp_error_set(err, INSP_ERR_INVALID, "%s: must be an array of strings, got %s",
                              name, type_name(v));
    size_t n = json_array_size(v);
    if (n > INSP_PRODUCT_LIST_MAX_ITEMS)
        return insp_error_set(err, INSP_ERR_INVALID, "%s: %zu items, at most %d allowed", name,
                              n, INSP_PRODUCT_LIST_MAX_ITEMS);
    out->items = calloc(n ? n : 1, sizeof *out->items);
    if (!out->items)
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        char what[64];
        snprintf(what, sizeof what, "%s[%zu]", name, i);
        if (!json_is_string(item))
            return insp_error_set(err, INSP_ERR_INVALID, "%s: must be a string, got %s", what,
                                  type_name(item));
        const char *s = json_string_value(item);
        int st = check_line(s, json_string_length(item), INSP_PRODUCT_ITEM_MAX, what, err);
        if (st)
            return st;
        if (placeholders >= 0 && count_placeholders(s) != placeholders)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "%s: must contain \"{}\" exactly once, got \"%.80s\"", what, s);
        out->items[i] = strdup(s);
        if (!out->items[i])
            return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", what);
        out->n = (int)i + 1;
    }
    return INSP_OK;
}

static int get_threshold(const json_t *v, insp_product_def *def, insp_error *err)
{
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "auto") != 0)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "threshold: must be a number in [0, 1] or \"auto\", got \"%.40s\"",
                                  json_string_value(v));
        def->threshold_auto = true;
        return INSP_OK;
    }
    if (!json_is_number(v))
        return insp_error_set(err, INSP_ERR_INVALID,
                              "threshold: must be a number in [0, 1] or \"auto\", got %s",
                              type_name(v));
    double t = json_number_value(v);
    if (!(t >= 0.0 && t <= 1.0))
        return insp_error_set(err, INSP_ERR_INVALID,
                              "threshold: must be in [0, 1], got %g", t);
    def->threshold_auto = false;
    def->threshold = t;
    return INSP_OK;
}

static int get_field(const char *key, const json_t *v, insp_product_def *def, insp_error *err)
{
    if (strcmp(key, "object") == 0) {
        if (!json_is_string(v))
            return insp_error_set(err, INSP_ERR_INVALID, "object: must be a string, got %s",
                                  type_name(v));
        int st = check_line(json_string_value(v), json_string_length(v), INSP_PRODUCT_OBJECT_MAX,
                            "object", err);
        if (st)
            return st;
        if (count_placeholders(json_string_value(v)) > 0)
            return insp_error_set(err, INSP_ERR_INVALID, "object: must not contain \"{}\"");
        return get_string(v, "object", &def->object, err);
    }
    if (strcmp(key, "model") == 0) {
        if (!json_is_string(v))
            return insp_error_set(err, INSP_ERR_INVALID, "model: must be a string, got %s",
                                  type_name(v));
        int st = check_line(json_string_value(v), json_string_length(v), INSP_PRODUCT_MODEL_MAX,
                            "model", err);
        return st ? st : get_string(v, "model", &def->model, err);
    }
    if (strcmp(key, "description") == 0) {
        if (!json_is_string(v))
            return insp_error_set(err, INSP_ERR_INVALID, "description: must be a string, got %s",
                                  type_name(v));
        if (json_string_length(v) > INSP_PRODUCT_DESCRIPTION_MAX)
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "description: %zu bytes, at most %d allowed",
                                  json_string_length(v), INSP_PRODUCT_DESCRIPTION_MAX);
        if (has_control(json_string_value(v), true))
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "description: contains a control character");
        return get_string(v, "description", &def->description, err);
    }
    if (strcmp(key, "threshold") == 0)
        return get_threshold(v, def, err);

    bool *flag = strcmp(key, "replace_normal_states") == 0    ? &def->replace_normal_states
                 : strcmp(key, "replace_anomaly_states") == 0 ? &def->replace_anomaly_states
                 : strcmp(key, "replace_templates") == 0      ? &def->replace_templates
                                                              : NULL;
    if (flag) {
        if (!json_is_boolean(v))
            return insp_error_set(err, INSP_ERR_INVALID, "%s: must be true or false, got %s", key,
                                  type_name(v));
        *flag = json_is_true(v);
        return INSP_OK;
    }

    struct {
        const char *name;
        insp_def_list *list;
        int placeholders;
    } lists[] = {
        {"normal_states", &def->normal_states, 1},
        {"anomaly_states", &def->anomaly_states, 1},
        {"templates", &def->templates, 1},
        {"normal_sentences", &def->normal_sentences, -1},
        {"anomaly_sentences", &def->anomaly_sentences, -1},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (strcmp(key, lists[i].name) == 0)
            return get_list(v, key, lists[i].placeholders, lists[i].list, err);
    return unknown_field(key, err);
}

/* A side with no prompt at all cannot be scored; say which settings emptied it. */
static int check_sides(const insp_product_def *d, insp_error *err)
{
    bool templates = !d->replace_templates || d->templates.n > 0;
    bool normal = (!d->replace_normal_states || d->normal_states.n > 0) && templates;
    bool anomaly = (!d->replace_anomaly_states || d->anomaly_states.n > 0) && templates;
    if (!normal && d->normal_sentences.n == 0)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "no normal prompt left: %s is empty with %s true and there are no "
                              "normal_sentences",
                              templates ? "normal_states" : "templates",
                              templates ? "replace_normal_states" : "replace_templates");
    if (!anomaly && d->anomaly_sentences.n == 0)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "no anomaly prompt left: %s is empty with %s true and there are no "
                              "anomaly_sentences",
                              templates ? "anomaly_states" : "templates",
                              templates ? "replace_anomaly_states" : "replace_templates");
    return INSP_OK;
}

int insp_product_def_from_json(const json_t *obj, insp_product_def *def, insp_error *err)
{
    memset(def, 0, sizeof *def);
    def->threshold_auto = true;
    if (!json_is_object(obj))
        return insp_error_set(err, INSP_ERR_INVALID, "definition: must be a JSON object, got %s",
                              obj ? type_name(obj) : "nothing");
    /* Unknown keys first: a misspelt "objet" is reported as such, not as "object missing". */
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool known = false;
        for (size_t i = 0; i < N_FIELDS && !known; i++)
            known = strcmp(key, fields[i].name) == 0;
        if (!known)
            return unknown_field(key, err);
    }
    int st = INSP_OK;
    json_object_foreach((json_t *)obj, key, v) {
        st = get_field(key, v, def, err);
        if (st)
            break;
    }
    if (!st && !def->object)
        st = insp_error_set(err, INSP_ERR_INVALID, "object: required (the object word, e.g. "
                                                   "\"printed circuit board\")");
    if (!st)
        st = check_sides(def, err);
    if (st)
        insp_product_def_free(def);
    return st;
}

int insp_product_def_parse(const char *json_text, size_t len, insp_product_def *def,
                           insp_error *err)
{
    memset(def, 0, sizeof *def);
    if (len > INSP_PRODUCT_DEF_MAX_BYTES)
        return insp_error_set(err, INSP_ERR_TOO_LARGE,
                              "definition: %zu bytes, at most %d allowed", len,
                              INSP_PRODUCT_DEF_MAX_BYTES);
    if (!json_text)
        return insp_error_set(err, INSP_ERR_FORMAT, "definition: empty body");
    json_error_t jerr;
    json_t *root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "definition: invalid JSON at line %d, column %d: %s", jerr.line,
                              jerr.column, jerr.text);
    int st = insp_product_def_from_json(root, def, err);
    json_decref(root);
    return st;
}

static json_t *list_to_json(const insp_def_list *l)
{
    json_t *a = json_array();
    for (int i = 0; a && i < l->n; i++) {
        if (json_array_append_new(a, json_string(l->items[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *insp_product_def_to_json(const insp_product_def *def)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "object", json_string(def->object ? def->object : ""));
    bad |= json_object_set_new(o, "normal_states", list_to_json(&def->normal_states));
    bad |= json_object_set_new(o, "replace_normal_states",
                               json_boolean(def->replace_normal_states));
    bad |= json_object_set_new(o, "anomaly_states", list_to_json(&def->anomaly_states));
    bad |= json_object_set_new(o, "replace_anomaly_states",
                               json_boolean(def->replace_anomaly_states));
    bad |= json_object_set_new(o, "templates", list_to_json(&def->templates));
    bad |= json_object_set_new(o, "replace_templates", json_boolean(def->replace_templates));
    bad |= json_object_set_new(o, "normal_sentences", list_to_json(&def->normal_sentences));
    bad |= json_object_set_new(o, "anomaly_sentences", list_to_json(&def->anomaly_sentences));
    if (def->model)
        bad |= json_object_set_new(o, "model", json_string(def->model));
    bad |= json_object_set_new(o, "threshold", def->threshold_auto ? json_string("auto")
                                                                   : json_real(def->threshold));
    if (def->description)
        bad |= json_object_set_new(o, "description", json_string(def->description));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int list_copy(const insp_def_list *src, insp_def_list *dst)
{
    dst->items = calloc(src->n ? (size_t)src->n : 1, sizeof *dst->items);
    if (!dst->items)
        return INSP_ERR_NOMEM;
    for (int i = 0; i < src->n; i++) {
        dst->items[i] = strdup(src->items[i]);
        if (!dst->items[i])
            return INSP_ERR_NOMEM;
        dst->n = i + 1;
    }
    return INSP_OK;
}

static int str_copy(const char *src, char **dst)
{
    *dst = NULL;
    if (!src)
        return INSP_OK;
    *dst = strdup(src);
    return *dst ? INSP_OK : INSP_ERR_NOMEM;
}

int insp_product_def_copy(const insp_product_def *src, insp_product_def *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->replace_normal_states = src->replace_normal_states;
    dst->replace_anomaly_states = src->replace_anomaly_states;
    dst->replace_templates = src->replace_templates;
    dst->threshold_auto = src->threshold_auto;
    dst->threshold = src->threshold;
    int st = str_copy(src->object, &dst->object);
    if (!st)
        st = str_copy(src->model, &dst->model);
    if (!st)
        st = str_copy(src->description, &dst->description);
    if (!st)
        st = list_copy(&src->normal_states, &dst->normal_states);
    if (!st)
        st = list_copy(&src->anomaly_states, &dst->anomaly_states);
    if (!st)
        st = list_copy(&src->templates, &dst->templates);
    if (!st)
        st = list_copy(&src->normal_sentences, &dst->normal_sentences);
    if (!st)
        st = list_copy(&src->anomaly_sentences, &dst->anomaly_sentences);
    if (st)
        insp_product_def_free(dst);
    return st;
}

void insp_product_def_free(insp_product_def *def)
{
    if (!def)
        return;
    free(def->object);
    free(def->model);
    free(def->description);
    list_free(&def->normal_states);
    list_free(&def->anomaly_states);
    list_free(&def->templates);
    list_free(&def->normal_sentences);
    list_free(&def->anomaly_sentences);
    memset(def, 0, sizeof *def);
}

static insp_strlist strlist(const insp_def_list *l)
{
    insp_strlist s = {(const char *const *)l->items, l->n};
    if (l->n == 0)
        s.items = NULL;
    return s;
}

void insp_product_def_prompt_spec(const insp_product_def *def, insp_prompt_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->object = def->object;
    spec->normal_states = strlist(&def->normal_states);
    spec->replace_normal_states = def->replace_normal_states;
    spec->anomaly_states = strlist(&def->anomaly_states);
    spec->replace_anomaly_states = def->replace_anomaly_states;
    spec->templates = strlist(&def->templates);
    spec->replace_templates = def->replace_templates;
    spec->normal_sentences = strlist(&def->normal_sentences);
    spec->anomaly_sentences = strlist(&def->anomaly_sentences);
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

int insp_product_id_check(const char *id, insp_error *err)
{
    if (!id || !id[0])
        return insp_error_set(err, INSP_ERR_INVALID, "product id: must not be empty");
    size_t n = strnlen(id, INSP_PRODUCT_ID_MAX + 1);
    if (n > INSP_PRODUCT_ID_MAX)
        return insp_error_set(err, INSP_ERR_INVALID, "product id: longer than %d characters",
                              INSP_PRODUCT_ID_MAX);
    char c0 = id[0];
    if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || (c0 >= '0' && c0 <= '9')))
        return insp_error_set(err, INSP_ERR_INVALID,
                              "product id \"%.64s\": must start with a letter or digit", id);
    for (size_t i = 0; i < n; i++)
        if (!id_char(id[i]))
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "product id \"%.64s\": character %zu is not one of "
                                  "A-Z a-z 0-9 . _ -",
                                  id, i + 1);
    if (strstr(id, ".."))
        return insp_error_set(err, INSP_ERR_INVALID, "product id \"%.64s\": must not contain \"..\"",
                              id);
    return INSP_OK;
}

bool insp_product_id_valid(const char *id)
{
    return insp_product_id_check(id, NULL) == INSP_OK;
}
