/* The daemon's configuration: built-in defaults, then config/inspectd.yaml (-c FILE), then
 * command-line flags, validated once at start and echoed to the log. One table (config.c)
 * holds every key's name, bounds, default and help. */
#ifndef INSPECTD_DAEMON_CONFIG_H
#define INSPECTD_DAEMON_CONFIG_H

#include <stdio.h>

#include "daemon/auth.h"
#include "inspectd/status.h"

/* Where a value came from, for error messages: "default", "FILE:LINE", "--workers". */
#define INSP_CONFIG_ORIGIN_LEN 96
/* Room for every table entry's origin (config.c checks the table fits). */
#define INSP_CONFIG_MAX_ENTRIES 32

typedef enum insp_auth_mode {
    INSP_AUTH_MODE_KEYS = 0, /* keys required if any are configured */
    INSP_AUTH_MODE_NONE = 1, /* no authentication, on any listen address */
} insp_auth_mode;

typedef struct insp_config_model {
    char *name; /* [A-Za-z0-9._-]{1,64}, unique */
    char *path; /* folder with open_clip_config.json + open_clip_model.safetensors */
    char origin[INSP_CONFIG_ORIGIN_LEN];
} insp_config_model;

typedef struct insp_config_key {
    char *key; /* never logged: see insp_auth_fingerprint */
    int role;  /* insp_role */
    int from_keys_file;
    char origin[INSP_CONFIG_ORIGIN_LEN];
} insp_config_key;

/* Every pointer is owned by the config and freed by insp_config_free. Empty optional
 * strings are NULL. */
typedef struct insp_config {
    char *listen_addr; /* IP literal or "localhost"; default 127.0.0.1 */
    int port;          /* 0 = any free port (the server logs the one it got); default 8080 */
    char *state_dir;   /* product store; default ./state (relative to the working dir) */
    insp_config_model *models;
    size_t n_models; /* 0: the daemon picks its fallback */
    int workers;     /* inference workers (jobs run at once) */
    int threads;     /* compute threads per worker; 0 in the file = all cores (validate
                        resolves it, so after validation it is >= 1) */
    int queue_length;      /* jobs that may wait for a worker; more -> 503 */
    int connection_limit;  /* concurrent connections */
    int request_timeout_s; /* idle connection timeout */
    int retry_after_s;     /* Retry-After of a 503 */
    long long max_body_bytes;
    long long max_pixels; /* decoded width * height */
    int max_references;   /* per product */
    int max_products;
    long long max_reference_memory; /* bytes of reference features over all products; 0 in
                                       the file = half of physical memory (resolved by
                                       validate) */
    int auth_mode; /* insp_auth_mode */
    insp_config_key *keys;
    size_t n_keys;
    char *keys_file; /* lines "<role> <key>"; merged into keys by validate */
    char *tls_cert;  /* PEM; both or neither of cert and key */
    char *tls_key;
    int log_level; /* insp_log_level */
    char *config_file; /* the file loaded, or NULL */
    /* private */
    int models_from_args;
    char origin[INSP_CONFIG_MAX_ENTRIES][INSP_CONFIG_ORIGIN_LEN];
} insp_config;

/* Fills cfg with the built-in defaults (the table's). INSP_OK or INSP_ERR_NOMEM (cfg is
 * then still safe to free). Free with insp_config_free. */
int insp_config_defaults(insp_config *cfg);

/* Frees what cfg owns (not cfg itself) and zeroes it. Harmless on a zeroed or NULL cfg. */
void insp_config_free(insp_config *cfg);

/* Reads a YAML file over cfg's current values. Errors (INSP_ERR_IO, INSP_ERR_FORMAT for YAML
 * syntax, INSP_ERR_INVALID for a value, an unknown or duplicate key) come with
 * "FILE:LINE: ..." in err, e.g. "inspectd.yaml:7: key 'workers': expected an integer in
 * 1..64, got 'abc'". cfg may be partly updated on error; free it as usual. */
int insp_config_load_file(const char *path, insp_config *cfg, insp_error *err);

/* The same for YAML text already in memory; `name` stands for the file in messages. */
int insp_config_load_string(const char *text, size_t len, const char *name, insp_config *cfg,
                            insp_error *err);

typedef enum insp_config_action {
    INSP_CONFIG_RUN = 0,
    INSP_CONFIG_HELP = 1,    /* --help: print insp_config_usage, exit 0 */
    INSP_CONFIG_VERSION = 2, /* --version */
    INSP_CONFIG_PRINT = 3,   /* --print-config: validate, insp_config_print, exit */
} insp_config_action;

/* Applies the command line to cfg (which holds the defaults): -c/--config FILE is loaded
 * first, wherever it appears, then every other flag overrides the file. Flags: --listen
 * ADDR:PORT, --state-dir DIR, --model NAME=DIR (repeatable; the first one replaces the
 * file's models), --auth keys|none, --keys-file FILE, --tls-cert FILE, --tls-key FILE,
 * --workers N, --threads N, --queue N, --log-level L, -o/--set KEY=VALUE (any scalar key
 * of the file, e.g. max_body_bytes=8MiB), --print-config, -h/--help, -V/--version; both
 * "--flag value" and "--flag=value". --help and --version win over everything and load
 * nothing. Does not validate: call insp_config_validate next. */
int insp_config_parse_args(int argc, char **argv, insp_config *cfg, int *action,
                           insp_error *err);

/* Help text for the flags. */
void insp_config_usage(FILE *f, const char *prog);

/* Cross-checks and completes cfg once everything is applied: bounds again, threads 0 ->
 * cores, model names, reads auth.keys_file into keys (refusing a file other users can read
 * or write), key shapes and duplicates, TLS files readable and paired, and the loopback
 * rule: with authentication on and no key configured, listen must be a loopback address
 * (127.0.0.0/8, ::1, localhost) — `auth: none` is the explicit way to serve without keys.
 * INSP_ERR_INVALID / INSP_ERR_IO with the key, its origin and the fix in err. Idempotent. */
int insp_config_validate(insp_config *cfg, insp_error *err);

/* Logs the final values as one "config" info line (keys as role + fingerprint only), and a
 * warning for settings that are allowed but risky. */
void insp_config_log(const insp_config *cfg);

/* Writes the values as YAML in the file's layout (keys masked, so as comments). */
void insp_config_print(FILE *f, const insp_config *cfg);

/* Sets one scalar key of the table ("workers", "auth.mode", "listen") from text, as the
 * file and -o do. `origin` (NULL = "api") is remembered for later messages. INSP_OK;
 * INSP_ERR_NOT_FOUND for an unknown key; INSP_ERR_INVALID with the reason
 * ("expected an integer in 1..64, got 'abc'") without any key or location prefix. */
int insp_config_set(insp_config *cfg, const char *name, const char *value, const char *origin,
                    insp_error *err);

/* Appends a model / an API key (role "inspect" or "admin"); errors as insp_config_set. */
int insp_config_add_model(insp_config *cfg, const char *name, const char *path,
                          const char *origin, insp_error *err);
int insp_config_add_key(insp_config *cfg, const char *role, const char *key,
                        const char *origin, insp_error *err);
void insp_config_clear_models(insp_config *cfg);
void insp_config_clear_keys(insp_config *cfg);

/* Table introspection, for the YAML reader, the docs test and help. */
typedef enum insp_config_type {
    INSP_CONFIG_INT,
    INSP_CONFIG_BYTES, /* integer with optional KiB/MiB/GiB suffix */
    INSP_CONFIG_STRING,
    INSP_CONFIG_ENUM,
    INSP_CONFIG_LISTEN,
    INSP_CONFIG_MODELS, /* list of {name, path} */
    INSP_CONFIG_KEYS,   /* list of {role, key} */
} insp_config_type;

typedef struct insp_config_entry {
    const char *name; /* dotted for nested keys: "auth.mode" */
    int type;         /* insp_config_type */
    long long min, max;
    const char *def;                /* default in text form */
    const char *const *enum_names; /* NULL-terminated, for INSP_CONFIG_ENUM */
    const char *help;
} insp_config_entry;

/* Number of table entries and entry i (NULL when out of range); lookup by name (NULL when
 * unknown). */
int insp_config_n_entries(void);
const insp_config_entry *insp_config_entry_at(int i);
const insp_config_entry *insp_config_find(const char *name);
/* Whether name is a section ("auth", "tls") of dotted keys. */
int insp_config_is_section(const char *name);
/* The known key closest to a misspelt one, or NULL when none is close. */
const char *insp_config_suggest(const char *name);
/* Whether a listen address is loopback: 127.0.0.0/8, ::1, ::ffff:127.x, "localhost". */
int insp_config_is_loopback(const char *addr);

#endif
