/* The command line: `inspectd [-c FILE] [--listen ADDR:PORT] [--model NAME=DIR]... ...`.
 * The file (-c) is read first wherever it appears, then each flag overrides it, so that a
 * first run or a test needs no YAML at all. A hand-rolled parser rather than getopt: no
 * global state, so tests can call it repeatedly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

typedef enum {
    OPT_CONFIG,
    OPT_KEY, /* sets the table key in `key` */
    OPT_MODEL,
    OPT_SET,
    OPT_PRINT,
    OPT_HELP,
    OPT_VERSION,
} opt_kind;

typedef struct opt {
    const char *long_name;
    char short_name;
    int kind;
    const char *key; /* OPT_KEY */
    const char *arg; /* name of the value in help; NULL: no value */
    const char *help;
} opt;

static const opt opts[] = {
    {"config", 'c', OPT_CONFIG, NULL, "FILE", "read this YAML file first (see config/inspectd.yaml)"},
    {"listen", 0, OPT_KEY, "listen", "ADDR:PORT", "address and port (default 127.0.0.1:8080)"},
    {"state-dir", 0, OPT_KEY, "state_dir", "DIR", "product store (default ./state)"},
    {"model", 0, OPT_MODEL, NULL, "NAME=DIR", "load a model; repeat for more (replaces the file's)"},
    {"auth", 0, OPT_KEY, "auth.mode", "keys|none", "none: serve without authentication"},
    {"keys-file", 0, OPT_KEY, "auth.keys_file", "FILE", "API keys, lines '<role> <key>'"},
    {"tls-cert", 0, OPT_KEY, "tls.cert", "FILE", "PEM certificate: serve HTTPS"},
    {"tls-key", 0, OPT_KEY, "tls.key", "FILE", "PEM private key of --tls-cert"},
    {"workers", 0, OPT_KEY, "workers", "N", "inference workers (default 1)"},
    {"threads", 0, OPT_KEY, "threads", "N", "compute threads per worker (default 0 = all cores)"},
    {"queue", 0, OPT_KEY, "queue_length", "N", "jobs that may wait before 503 (default 8)"},
    {"log-level", 0, OPT_KEY, "log_level", "LEVEL", "debug, info, warn or error (default info)"},
    {"set", 'o', OPT_SET, NULL, "KEY=VALUE", "any key of the file, e.g. -o max_body_bytes=8MiB"},
    {"print-config", 0, OPT_PRINT, NULL, NULL, "print the effective configuration and exit"},
    {"help", 'h', OPT_HELP, NULL, NULL, "this help"},
    {"version", 'V', OPT_VERSION, NULL, NULL, "print the version"},
};
#define N_OPTS ((int)(sizeof opts / sizeof opts[0]))

void insp_config_usage(FILE *f, const char *prog)
{
    fprintf(f, "usage: %s [options]\n\n", prog ? prog : "inspectd");
    for (int i = 0; i < N_OPTS; i++) {
        char left[64];
        if (opts[i].short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", opts[i].short_name, opts[i].long_name,
                     opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", opts[i].long_name,
                     opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-28s %s\n", left, opts[i].help);
    }
    fprintf(f, "\nKeys for -o/--set:");
    for (int i = 0; i < insp_config_n_entries(); i++) {
        const insp_config_entry *e = insp_config_entry_at(i);
        if (e->type != INSP_CONFIG_MODELS && e->type != INSP_CONFIG_KEYS)
            fprintf(f, " %s", e->name);
    }
    fprintf(f, "\nFlags override the file; without -c no file is read.\n");
}

/* The option at argv[*i]; its value (if it takes one) in *value, advancing *i past it.
 * NULL with err set for an unknown option or a missing value. */
static const opt *next_opt(int argc, char **argv, int *i, const char **value, insp_error *err)
{
    const char *a = argv[*i];
    const opt *o = NULL;
    const char *inline_val = NULL;
    if (a[0] == '-' && a[1] == '-' && a[2]) {
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        for (int k = 0; k < N_OPTS && !o; k++)
            if (strlen(opts[k].long_name) == n && strncmp(opts[k].long_name, name, n) == 0)
                o = &opts[k];
        if (!o) {
            insp_error_set(err, INSP_ERR_INVALID, "unknown option '%.*s' (see --help)", (int)n + 2,
                           a);
            return NULL;
        }
        if (eq) {
            if (!o->arg) {
                insp_error_set(err, INSP_ERR_INVALID, "option --%s takes no value", o->long_name);
                return NULL;
            }
            inline_val = eq + 1;
        }
    } else if (a[0] == '-' && a[1] && a[1] != '-') {
        for (int k = 0; k < N_OPTS && !o; k++)
            if (opts[k].short_name == a[1])
                o = &opts[k];
        if (!o) {
            insp_error_set(err, INSP_ERR_INVALID, "unknown option '-%c' (see --help)", a[1]);
            return NULL;
        }
        if (a[2]) {
            if (!o->arg) {
                insp_error_set(err, INSP_ERR_INVALID, "unknown option '%s' (see --help)", a);
                return NULL;
            }
            inline_val = a + 2;
        }
    } else {
        insp_error_set(err, INSP_ERR_INVALID, "unexpected argument '%s' (see --help)", a);
        return NULL;
    }
    *value = NULL;
    if (o->arg) {
        if (inline_val) {
            *value = inline_val;
        } else if (*i + 1 < argc) {
            *value = argv[++*i];
        } else {
            insp_error_set(err, INSP_ERR_INVALID, "option --%s needs a value (%s)", o->long_name,
                           o->arg);
            return NULL;
        }
    }
    return o;
}

/* NAME=VALUE split into name (copied into buf) and value. */
static int split_eq(const char *s, char *buf, size_t cap, const char **value)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || (size_t)(eq - s) >= cap)
        return 0;
    memcpy(buf, s, (size_t)(eq - s));
    buf[eq - s] = '\0';
    *value = eq + 1;
    return 1;
}

int insp_config_parse_args(int argc, char **argv, insp_config *cfg, int *action,
                           insp_error *err)
{
    *action = INSP_CONFIG_RUN;
    const char *file = NULL;
    /* Pass 1: syntax, --help/--version, and the file. */
    for (int i = 1; i < argc; i++) {
        const char *v;
        const opt *o = next_opt(argc, argv, &i, &v, err);
        if (!o)
            return INSP_ERR_INVALID;
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION) {
            *action = o->kind == OPT_HELP ? INSP_CONFIG_HELP : INSP_CONFIG_VERSION;
            return INSP_OK;
        }
        if (o->kind == OPT_CONFIG) {
            if (file)
                return insp_error_set(err, INSP_ERR_INVALID,
                                      "-c/--config is given twice ('%s' and '%s')", file, v);
            file = v;
        }
    }
    if (file) {
        int rc = insp_config_load_file(file, cfg, err);
        if (rc != INSP_OK)
            return rc;
    }
    /* Pass 2: everything else, in order, over the file. */
    for (int i = 1; i < argc; i++) {
        const char *v;
        const opt *o = next_opt(argc, argv, &i, &v, err);
        if (!o)
            return INSP_ERR_INVALID;
        char origin[INSP_CONFIG_ORIGIN_LEN];
        snprintf(origin, sizeof origin, "--%s", o->long_name);
        int rc = INSP_OK;
        char name[96];
        const char *value;
        insp_error e;
        switch (o->kind) {
        case OPT_KEY:
            rc = insp_config_set(cfg, o->key, v, origin, &e);
            if (rc != INSP_OK)
                return insp_error_set(err, rc, "--%s: %s", o->long_name, e.msg);
            break;
        case OPT_SET:
            if (!split_eq(v, name, sizeof name, &value))
                return insp_error_set(err, INSP_ERR_INVALID, "--set: expected KEY=VALUE, got '%s'",
                                      v);
            snprintf(origin, sizeof origin, "--set %.80s", name);
            rc = insp_config_set(cfg, name, value, origin, &e);
            if (rc == INSP_ERR_NOT_FOUND) {
                const char *hint = insp_config_suggest(name);
                return insp_error_set(err, INSP_ERR_INVALID, "--set: unknown key '%s'%s%s%s",
                                      name, hint ? " (did you mean '" : "", hint ? hint : "",
                                      hint ? "'?)" : "");
            }
            if (rc != INSP_OK)
                return insp_error_set(err, rc, "--set %s: %s", name, e.msg);
            break;
        case OPT_MODEL:
            if (!split_eq(v, name, sizeof name, &value))
                return insp_error_set(err, INSP_ERR_INVALID, "--model: expected NAME=DIR, got '%s'",
                                      v);
            if (!cfg->models_from_args) {
                insp_config_clear_models(cfg); /* the command line's list replaces the file's */
                cfg->models_from_args = 1;
            }
            rc = insp_config_add_model(cfg, name, value, origin, &e);
            if (rc != INSP_OK)
                return insp_error_set(err, rc, "--model: %s", e.msg);
            break;
        case OPT_PRINT:
            *action = INSP_CONFIG_PRINT;
            break;
        default:
            break;
        }
    }
    return INSP_OK;
}
