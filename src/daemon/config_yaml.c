/* Reads config/inspectd.yaml into an insp_config with libyaml's document API, so that every
 * error can name the file and line: syntax errors, unknown and duplicate keys (a typo must
 * never pass silently), and values the table refuses. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "daemon/config.h"

#define MAX_FILE_BYTES (1 << 20)

typedef struct ctx {
    const char *name;
    yaml_document_t *doc;
    insp_config *cfg;
    insp_error *err;
} ctx;

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static int fail(ctx *c, const yaml_node_t *n, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(ctx *c, const yaml_node_t *n, int status, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return insp_error_set(c->err, status, "%s:%d: %s", c->name, line_of(n), msg);
}

static const char *kind(const yaml_node_t *n)
{
    return n->type == YAML_SEQUENCE_NODE  ? "a list"
           : n->type == YAML_MAPPING_NODE ? "a mapping"
                                          : "a value";
}

/* A plain ~, null or empty scalar: "not set". */
static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !v[0] || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* The scalar's text, refusing embedded NUL bytes. */
static const char *scalar_text(ctx *c, const yaml_node_t *n, const char *key, int *rc)
{
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length) {
        *rc = fail(c, n, INSP_ERR_INVALID, "key '%s': value contains a NUL byte", key);
        return NULL;
    }
    *rc = INSP_OK;
    return is_null(n) ? "" : v;
}

/* Checks a mapping's keys are scalars, known (in `allowed`, NULL-terminated) and unique.
 * Returns INSP_OK or an error naming the key; `what` prefixes the names in messages. */
static int check_item_keys(ctx *c, yaml_node_t *map, const char *what,
                           const char *const *allowed)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return fail(c, k, INSP_ERR_INVALID, "%s: keys must be plain words", what);
        const char *ks = (const char *)k->data.scalar.value;
        int known = 0;
        for (int i = 0; allowed[i]; i++)
            known |= strcmp(ks, allowed[i]) == 0;
        if (!known)
            return fail(c, k, INSP_ERR_INVALID, "%s: unknown key '%s' (expected %s and %s)",
                        what, ks, allowed[0], allowed[1]);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *kq = yaml_document_get_node(c->doc, q->key);
            if (kq->type == YAML_SCALAR_NODE && strcmp((const char *)kq->data.scalar.value, ks) == 0)
                return fail(c, k, INSP_ERR_INVALID, "%s: key '%s' is given twice (first on line %d)",
                            what, ks, line_of(kq));
        }
    }
    return INSP_OK;
}

/* The scalar value of `key` in an item mapping, or NULL. */
static yaml_node_t *item_value(ctx *c, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(c->doc, p->value);
    }
    return NULL;
}

/* models: [{name, path}] or auth.keys: [{role, key}]. The file's list replaces what was
 * there before. */
static int read_list(ctx *c, const char *full, int type, yaml_node_t *v)
{
    int is_models = type == INSP_CONFIG_MODELS;
    if (is_models)
        insp_config_clear_models(c->cfg);
    else
        insp_config_clear_keys(c->cfg);
    if (is_null(v))
        return INSP_OK;
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, v, INSP_ERR_INVALID, "key '%s': expected a list of {%s}, got %s", full,
                    is_models ? "name, path" : "role, key", kind(v));
    static const char *const model_keys[] = {"name", "path", NULL};
    static const char *const key_keys[] = {"role", "key", NULL};
    const char *const *allowed = is_models ? model_keys : key_keys;
    int idx = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, idx++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        char what[160];
        snprintf(what, sizeof what, "%s[%d]", full, idx);
        if (item->type != YAML_MAPPING_NODE)
            return fail(c, item, INSP_ERR_INVALID, "%s: expected a mapping {%s: ..., %s: ...}, got %s",
                        what, allowed[0], allowed[1], kind(item));
        int rc = check_item_keys(c, item, what, allowed);
        if (rc != INSP_OK)
            return rc;
        const char *vals[2];
        for (int j = 0; j < 2; j++) {
            yaml_node_t *n = item_value(c, item, allowed[j]);
            if (!n || n->type != YAML_SCALAR_NODE || is_null(n))
                return fail(c, item, INSP_ERR_INVALID, "%s: needs a %s", what, allowed[j]);
            vals[j] = scalar_text(c, n, what, &rc);
            if (!vals[j])
                return rc;
        }
        char origin[INSP_CONFIG_ORIGIN_LEN];
        snprintf(origin, sizeof origin, "%s:%d", c->name, line_of(item));
        insp_error e;
        rc = is_models ? insp_config_add_model(c->cfg, vals[0], vals[1], origin, &e)
                       : insp_config_add_key(c->cfg, vals[0], vals[1], origin, &e);
        if (rc != INSP_OK)
            return fail(c, item, rc, "%s: %s", what, e.msg);
    }
    return INSP_OK;
}

static int read_mapping(ctx *c, yaml_node_t *map, const char *prefix);

static int read_pair(ctx *c, yaml_node_t *k, yaml_node_t *v, const char *full)
{
    const insp_config_entry *e = insp_config_find(full);
    if (e && (e->type == INSP_CONFIG_MODELS || e->type == INSP_CONFIG_KEYS))
        return read_list(c, full, e->type, v);
    if (e) {
        if (v->type != YAML_SCALAR_NODE)
            return fail(c, v, INSP_ERR_INVALID, "key '%s': expected a single value, got %s", full,
                        kind(v));
        int rc;
        const char *text = scalar_text(c, v, full, &rc);
        if (!text)
            return rc;
        char origin[INSP_CONFIG_ORIGIN_LEN];
        snprintf(origin, sizeof origin, "%s:%d", c->name, line_of(v));
        insp_error e2;
        rc = insp_config_set(c->cfg, full, text, origin, &e2);
        if (rc != INSP_OK)
            return fail(c, v, rc, "key '%s': %s", full, e2.msg);
        return INSP_OK;
    }
    if (insp_config_is_section(full)) {
        if (v->type == YAML_MAPPING_NODE)
            return read_mapping(c, v, full);
        if (strcmp(full, "auth") == 0 && v->type == YAML_SCALAR_NODE)
            return read_pair(c, k, v, "auth.mode"); /* the shorthand `auth: none` */
        return fail(c, v, INSP_ERR_INVALID, "key '%s': expected a mapping of %s.* keys, got %s",
                    full, full, kind(v));
    }
    const char *hint = insp_config_suggest(full);
    if (hint)
        return fail(c, k, INSP_ERR_INVALID, "unknown key '%s' (did you mean '%s'?)", full, hint);
    return fail(c, k, INSP_ERR_INVALID, "unknown key '%s'", full);
}

static int read_mapping(ctx *c, yaml_node_t *map, const char *prefix)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return fail(c, k, INSP_ERR_INVALID, "keys must be plain words, got %s", kind(k));
        const char *ks = (const char *)k->data.scalar.value;
        if (strchr(ks, '.')) /* "auth.mode:" would bypass the duplicate check of auth: {mode} */
            return fail(c, k, INSP_ERR_INVALID, "unknown key '%s' (nest it: %.*s: {%s: ...})", ks,
                        (int)(strchr(ks, '.') - ks), ks, strchr(ks, '.') + 1);
        char full[128];
        if (prefix)
            snprintf(full, sizeof full, "%s.%s", prefix, ks);
        else
            snprintf(full, sizeof full, "%s", ks);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *kq = yaml_document_get_node(c->doc, q->key);
            if (kq->type == YAML_SCALAR_NODE && strcmp((const char *)kq->data.scalar.value, ks) == 0)
                return fail(c, k, INSP_ERR_INVALID, "key '%s' is given twice (first on line %d)",
                            full, line_of(kq));
        }
        int rc = read_pair(c, k, v, full);
        if (rc != INSP_OK)
            return rc;
    }
    return INSP_OK;
}

int insp_config_load_string(const char *text, size_t len, const char *name, insp_config *cfg,
                            insp_error *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = insp_error_set(
            err, parser.error == YAML_MEMORY_ERROR ? INSP_ERR_NOMEM : INSP_ERR_FORMAT,
            "%s:%d: YAML syntax error at column %d: %s%s%s", name,
            (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
            parser.problem ? parser.problem : "unreadable", parser.context ? " " : "",
            parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    ctx c = {name, &doc, cfg, err};
    int rc = INSP_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE)
            rc = fail(&c, root, INSP_ERR_INVALID,
                      "the top level must be a mapping of keys (key: value), got %s", kind(root));
        else
            rc = read_mapping(&c, root, NULL);
    }
    if (rc == INSP_OK && root) {
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            rc = insp_error_set(err, INSP_ERR_FORMAT, "%s:%d: YAML syntax error at column %d: %s",
                                name, (int)parser.problem_mark.line + 1,
                                (int)parser.problem_mark.column + 1,
                                parser.problem ? parser.problem : "unreadable");
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2)
                rc = insp_error_set(err, INSP_ERR_FORMAT,
                                    "%s:%d: a second YAML document; the config is one document",
                                    name, line_of(r2));
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int insp_config_load_file(const char *path, insp_config *cfg, insp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return insp_error_set(err, INSP_ERR_IO, "config file %s: %s", path, strerror(errno));
    char *buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return insp_error_set(err, INSP_ERR_NOMEM, "config file %s: out of memory", path);
    }
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int read_err = ferror(f);
    fclose(f);
    if (read_err) {
        free(buf);
        return insp_error_set(err, INSP_ERR_IO, "config file %s: read error", path);
    }
    if (n > MAX_FILE_BYTES) {
        free(buf);
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "config file %s: larger than %d bytes",
                              path, MAX_FILE_BYTES);
    }
    int rc = insp_config_load_string(buf, n, path, cfg, err);
    free(buf);
    if (rc == INSP_OK) {
        char *dup = strdup(path);
        if (!dup)
            return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
        free(cfg->config_file);
        cfg->config_file = dup;
    }
    return rc;
}
