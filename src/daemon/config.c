/* The configuration table and everything that works on it: defaults, setting a key from
 * text, validation, the keys file, logging and printing. The YAML reader (config_yaml.c)
 * and the flag parser (config_args.c) both go through insp_config_set. */
#include "daemon/config.h"
#include "core/strutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"

static const char *const auth_modes[] = {"keys", "none", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define KIB 1024LL
#define MIB (1024LL * 1024)
#define GIB (1024LL * 1024 * 1024)

typedef struct row {
    insp_config_entry e;
    size_t off; /* field in insp_config; unused for LISTEN and the lists */
    int wide;   /* long long field (else int) */
} row;

#define F(field) offsetof(insp_config, field)

/* Sections ("auth.", "tls.") are contiguous so that printing can group them. */
static const row table[] = {
    {{"listen", INSP_CONFIG_LISTEN, 0, 65535, "127.0.0.1:8080", NULL,
      "address and port to serve HTTP(S) on"}, 0, 0},
    {{"state_dir", INSP_CONFIG_STRING, 1, 0, "./state", NULL,
      "product store directory"}, F(state_dir), 0},
    {{"models", INSP_CONFIG_MODELS, 0, 0, "", NULL,
      "models to load: list of {name, path}"}, 0, 0},
    {{"workers", INSP_CONFIG_INT, 1, 64, "1", NULL,
      "inference workers: jobs that run at once"}, F(workers), 0},
    {{"threads", INSP_CONFIG_INT, 0, 256, "0", NULL,
      "compute threads per worker (0 = all cores)"}, F(threads), 0},
    {{"queue_length", INSP_CONFIG_INT, 0, 4096, "8", NULL,
      "jobs that may wait for a worker; beyond that 503"}, F(queue_length), 0},
    {{"connection_limit", INSP_CONFIG_INT, 1, 65536, "256", NULL,
      "concurrent HTTP connections"}, F(connection_limit), 0},
    {{"request_timeout_s", INSP_CONFIG_INT, 1, 3600, "30", NULL,
      "seconds an idle connection is kept"}, F(request_timeout_s), 0},
    {{"retry_after_s", INSP_CONFIG_INT, 1, 3600, "1", NULL,
      "Retry-After seconds sent with a 503"}, F(retry_after_s), 0},
    {{"max_body_bytes", INSP_CONFIG_BYTES, KIB, GIB, "32MiB", NULL,
      "largest request body"}, F(max_body_bytes), 1},
    {{"max_pixels", INSP_CONFIG_INT, 4096, 1000000000, "40000000", NULL,
      "largest decoded image, width x height"}, F(max_pixels), 1},
    {{"max_references", INSP_CONFIG_INT, 1, 256, "16", NULL,
      "reference images per product"}, F(max_references), 0},
    {{"max_products", INSP_CONFIG_INT, 1, 1000000, "1000", NULL,
      "registered products"}, F(max_products), 0},
    {{"max_reference_memory", INSP_CONFIG_BYTES, 0, 4096 * GIB, "0", NULL,
      "RAM for all products' reference features (0 = half of physical memory)"},
     F(max_reference_memory), 1},
    {{"auth.mode", INSP_CONFIG_ENUM, 0, 1, "keys", auth_modes,
      "keys: API keys required once any is configured; none: no authentication"},
     F(auth_mode), 0},
    {{"auth.keys", INSP_CONFIG_KEYS, 0, 0, "", NULL,
      "API keys: list of {role, key}, role inspect or admin"}, 0, 0},
    {{"auth.keys_file", INSP_CONFIG_STRING, 0, 0, "", NULL,
      "file of '<role> <key>' lines, not readable by other users"}, F(keys_file), 0},
    {{"tls.cert", INSP_CONFIG_STRING, 0, 0, "", NULL,
      "PEM certificate chain: serve HTTPS"}, F(tls_cert), 0},
    {{"tls.key", INSP_CONFIG_STRING, 0, 0, "", NULL,
      "PEM private key of tls.cert"}, F(tls_key), 0},
    {{"log_level", INSP_CONFIG_ENUM, 0, 3, "info", log_levels,
      "debug, info, warn or error"}, F(log_level), 0},
};

#define N_ROWS ((int)(sizeof table / sizeof table[0]))
_Static_assert(sizeof table / sizeof table[0] <= INSP_CONFIG_MAX_ENTRIES,
               "raise INSP_CONFIG_MAX_ENTRIES");

int insp_config_n_entries(void)
{
    return N_ROWS;
}

const insp_config_entry *insp_config_entry_at(int i)
{
    return i >= 0 && i < N_ROWS ? &table[i].e : NULL;
}

static int row_index(const char *name)
{
    for (int i = 0; i < N_ROWS; i++)
        if (strcmp(table[i].e.name, name) == 0)
            return i;
    return -1;
}

const insp_config_entry *insp_config_find(const char *name)
{
    int i = row_index(name);
    return i < 0 ? NULL : &table[i].e;
}

int insp_config_is_section(const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < N_ROWS; i++)
        if (strncmp(table[i].e.name, name, n) == 0 && table[i].e.name[n] == '.')
            return 1;
    return 0;
}

const char *insp_config_suggest(const char *name)
{
    const char *best = NULL;
    size_t best_d = 3; /* farther than two edits is a different word */
    for (int i = 0; i < N_ROWS; i++) {
        size_t d = insp_edit_distance(name, table[i].e.name);
        if (d < best_d) {
            best_d = d;
            best = table[i].e.name;
        }
    }
    return best;
}

/* ---- values from text ---- */

static void set_origin(insp_config *cfg, int idx, const char *origin)
{
    snprintf(cfg->origin[idx], INSP_CONFIG_ORIGIN_LEN, "%s", origin ? origin : "api");
}

/* Decimal integer with optional '_' between digits ("40_000_000"); no trailing text except
 * what *end points to (end may be NULL: everything must be consumed). */
static int parse_ll(const char *s, long long *out, const char **end)
{
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (*p < '0' || *p > '9')
        return 0;
    unsigned long long v = 0;
    while ((*p >= '0' && *p <= '9') || (*p == '_' && p[1] >= '0' && p[1] <= '9' && p > s)) {
        if (*p != '_') {
            if (v > (ULLONG_MAX - 9) / 10)
                return 0;
            v = v * 10 + (unsigned long long)(*p - '0');
        }
        p++;
    }
    if (v > (unsigned long long)LLONG_MAX)
        return 0;
    if (end)
        *end = p;
    else if (*p)
        return 0;
    *out = neg ? -(long long)v : (long long)v;
    return 1;
}

static int parse_bytes(const char *s, long long *out)
{
    const char *end;
    long long v;
    if (!parse_ll(s, &v, &end))
        return 0;
    while (*end == ' ')
        end++;
    long long mult = 1;
    if (*end == '\0' || strcmp(end, "B") == 0)
        mult = 1;
    else if (strcmp(end, "KiB") == 0)
        mult = KIB;
    else if (strcmp(end, "MiB") == 0)
        mult = MIB;
    else if (strcmp(end, "GiB") == 0)
        mult = GIB;
    else
        return 0;
    if (v > LLONG_MAX / mult || v < LLONG_MIN / mult)
        return 0;
    *out = v * mult;
    return 1;
}

static void fmt_bytes(char *buf, size_t n, long long v)
{
    if (v != 0 && v % GIB == 0)
        snprintf(buf, n, "%lldGiB", v / GIB);
    else if (v != 0 && v % MIB == 0)
        snprintf(buf, n, "%lldMiB", v / MIB);
    else if (v != 0 && v % KIB == 0)
        snprintf(buf, n, "%lldKiB", v / KIB);
    else
        snprintf(buf, n, "%lld", v);
}

/* A value quoted for a message, cut short if long. */
static const char *shown(const char *v, char buf[80])
{
    size_t n = strlen(v);
    if (n < 70)
        snprintf(buf, 80, "%s", v);
    else
        snprintf(buf, 80, "%.60s...", v);
    return buf;
}

static int valid_ip_or_localhost(const char *addr)
{
    unsigned char sa[sizeof(struct in6_addr)];
    return strcmp(addr, "localhost") == 0 || inet_pton(AF_INET, addr, sa) == 1 ||
           inet_pton(AF_INET6, addr, sa) == 1;
}

int insp_config_is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!addr)
        return 0;
    if (strcmp(addr, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* "ADDR:PORT" or "[IPV6]:PORT" -> malloc'ed addr and port. */
static int parse_listen(const char *s, char **addr, int *port)
{
    const char *a, *colon;
    size_t alen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return 0;
        a = s + 1;
        alen = (size_t)(close - a);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return 0; /* no port, or an IPv6 address without brackets */
        a = s;
        alen = (size_t)(colon - s);
    }
    long long p;
    if (alen == 0 || alen > 255 || !parse_ll(colon + 1, &p, NULL) || colon[1] == '-' ||
        colon[1] == '+' || strchr(colon + 1, '_') || p < 0 || p > 65535)
        return 0;
    char *out = strndup(a, alen);
    if (!out)
        return 0;
    if (!valid_ip_or_localhost(out)) {
        free(out);
        return 0;
    }
    *addr = out;
    *port = (int)p;
    return 1;
}

static int set_row(insp_config *cfg, int idx, const char *value, insp_error *err)
{
    const row *r = &table[idx];
    char *field = (char *)cfg + r->off;
    char b1[80];
    switch (r->e.type) {
    case INSP_CONFIG_INT:
    case INSP_CONFIG_BYTES: {
        long long v;
        int ok = r->e.type == INSP_CONFIG_INT ? parse_ll(value, &v, NULL) : parse_bytes(value, &v);
        if (!ok || v < r->e.min || v > r->e.max) {
            if (r->e.type == INSP_CONFIG_INT)
                return insp_error_set(err, INSP_ERR_INVALID,
                                      "expected an integer in %lld..%lld, got '%s'", r->e.min,
                                      r->e.max, shown(value, b1));
            char lo[32], hi[32];
            fmt_bytes(lo, sizeof lo, r->e.min);
            fmt_bytes(hi, sizeof hi, r->e.max);
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "expected a size in %s..%s (bytes, or with a KiB, MiB or GiB "
                                  "suffix), got '%s'",
                                  lo, hi, shown(value, b1));
        }
        if (r->wide)
            *(long long *)field = v;
        else
            *(int *)field = (int)v;
        return INSP_OK;
    }
    case INSP_CONFIG_ENUM:
        for (int i = 0; r->e.enum_names[i]; i++) {
            if (strcmp(value, r->e.enum_names[i]) == 0) {
                *(int *)field = i;
                return INSP_OK;
            }
        }
        if (r->off == F(log_level) && strcmp(value, "warning") == 0) {
            *(int *)field = INSP_LOG_LEVEL_WARN;
            return INSP_OK;
        } else {
            char names[128] = "";
            for (int i = 0; r->e.enum_names[i]; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         i ? ", " : "", r->e.enum_names[i]);
            return insp_error_set(err, INSP_ERR_INVALID, "expected one of %s, got '%s'", names,
                                  shown(value, b1));
        }
    case INSP_CONFIG_STRING: {
        if (!value[0] && r->e.min > 0)
            return insp_error_set(err, INSP_ERR_INVALID, "must not be empty");
        char *dup = NULL;
        if (value[0] && !(dup = strdup(value)))
            return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
        free(*(char **)field);
        *(char **)field = dup;
        return INSP_OK;
    }
    case INSP_CONFIG_LISTEN: {
        char *addr;
        int port;
        if (!parse_listen(value, &addr, &port))
            return insp_error_set(err, INSP_ERR_INVALID,
                                  "expected ADDR:PORT with an IP address or localhost and a "
                                  "port in 0..65535 (IPv6 in brackets: [::1]:8080), got '%s'",
                                  shown(value, b1));
        free(cfg->listen_addr);
        cfg->listen_addr = addr;
        cfg->port = port;
        return INSP_OK;
    }
    default:
        return insp_error_set(err, INSP_ERR_INVALID, "is a list, not a single value");
    }
}

int insp_config_set(insp_config *cfg, const char *name, const char *value, const char *origin,
                    insp_error *err)
{
    int idx = row_index(name);
    if (idx < 0)
        return insp_error_set(err, INSP_ERR_NOT_FOUND, "unknown key '%s'", name);
    int rc = set_row(cfg, idx, value ? value : "", err);
    if (rc == INSP_OK)
        set_origin(cfg, idx, origin);
    return rc;
}

int insp_config_defaults(insp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < N_ROWS; i++) {
        if (table[i].e.type == INSP_CONFIG_MODELS || table[i].e.type == INSP_CONFIG_KEYS) {
            set_origin(cfg, i, "default");
            continue;
        }
        int rc = insp_config_set(cfg, table[i].e.name, table[i].e.def, "default", NULL);
        if (rc != INSP_OK)
            return rc; /* only NOMEM: the defaults are checked by the tests */
    }
    return INSP_OK;
}

void insp_config_clear_models(insp_config *cfg)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        free(cfg->models[i].name);
        free(cfg->models[i].path);
    }
    free(cfg->models);
    cfg->models = NULL;
    cfg->n_models = 0;
}

static void free_key(insp_config_key *k)
{
    if (k->key) {
        /* Not a secret-wiping guarantee, but no stale copy in freed heap either. */
        volatile char *p = k->key;
        while (*p)
            *p++ = 0;
        free(k->key);
    }
}

void insp_config_clear_keys(insp_config *cfg)
{
    for (size_t i = 0; i < cfg->n_keys; i++)
        free_key(&cfg->keys[i]);
    free(cfg->keys);
    cfg->keys = NULL;
    cfg->n_keys = 0;
}

void insp_config_free(insp_config *cfg)
{
    if (!cfg)
        return;
    insp_config_clear_models(cfg);
    insp_config_clear_keys(cfg);
    free(cfg->listen_addr);
    free(cfg->state_dir);
    free(cfg->keys_file);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->config_file);
    memset(cfg, 0, sizeof *cfg);
}

static int valid_model_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int insp_config_add_model(insp_config *cfg, const char *name, const char *path,
                          const char *origin, insp_error *err)
{
    char b1[80];
    if (!name || !valid_model_name(name))
        return insp_error_set(err, INSP_ERR_INVALID,
                              "model name must be 1-64 letters, digits, '.', '_' or '-', got "
                              "'%s'",
                              shown(name ? name : "", b1));
    if (!path || !path[0])
        return insp_error_set(err, INSP_ERR_INVALID, "model '%s' has no path", name);
    insp_config_model *nm = realloc(cfg->models, (cfg->n_models + 1) * sizeof *nm);
    if (!nm)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    cfg->models = nm;
    insp_config_model *m = &nm[cfg->n_models];
    m->name = strdup(name);
    m->path = strdup(path);
    if (!m->name || !m->path) {
        free(m->name);
        free(m->path);
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    }
    snprintf(m->origin, sizeof m->origin, "%s", origin ? origin : "api");
    cfg->n_models++;
    return INSP_OK;
}

static int add_key(insp_config *cfg, const char *role, const char *key, const char *origin,
                   int from_file, insp_error *err)
{
    int r;
    char b1[80];
    if (insp_role_parse(role, &r) != INSP_OK)
        return insp_error_set(err, INSP_ERR_INVALID, "role must be inspect or admin, got '%s'",
                              shown(role ? role : "", b1));
    int rc = insp_auth_key_check(key, err);
    if (rc != INSP_OK)
        return rc;
    insp_config_key *nk = realloc(cfg->keys, (cfg->n_keys + 1) * sizeof *nk);
    if (!nk)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    cfg->keys = nk;
    insp_config_key *k = &nk[cfg->n_keys];
    if (!(k->key = strdup(key)))
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    k->role = r;
    k->from_keys_file = from_file;
    snprintf(k->origin, sizeof k->origin, "%s", origin ? origin : "api");
    cfg->n_keys++;
    return INSP_OK;
}

int insp_config_add_key(insp_config *cfg, const char *role, const char *key, const char *origin,
                        insp_error *err)
{
    return add_key(cfg, role, key, origin, 0, err);
}

/* ---- validation ---- */

/* Reads "<role> <key>" lines ('#' comments, blank lines) into cfg->keys. */
static int read_keys_file(insp_config *cfg, const char *path, insp_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return insp_error_set(err, INSP_ERR_IO, "auth.keys_file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return insp_error_set(err, INSP_ERR_IO, "auth.keys_file %s: not a regular file", path);
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        fclose(f);
        return insp_error_set(err, INSP_ERR_INVALID,
                              "auth.keys_file %s: other users can read or write it (mode %04o); "
                              "run chmod o-rwx on it (0600 or 0640)",
                              path, (unsigned)(st.st_mode & 07777));
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = INSP_OK;
    while (rc == INSP_OK && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *save = NULL;
        char *role = strtok_r(line, " \t\r\n", &save);
        if (!role || role[0] == '#')
            continue;
        char *key = strtok_r(NULL, " \t\r\n", &save);
        char *extra = key ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!key || (extra && extra[0] != '#')) {
            rc = insp_error_set(err, INSP_ERR_INVALID, "%s:%d: expected '<role> <key>'", path,
                                lineno);
            break;
        }
        char origin[INSP_CONFIG_ORIGIN_LEN];
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        rc = add_key(cfg, role, key, origin, 1, err);
        if (rc != INSP_OK)
            insp_error_prefix(err, "%s:%d: ", path, lineno);
    }
    if (line) {
        memset(line, 0, cap);
        free(line);
    }
    fclose(f);
    return rc;
}

static void drop_file_keys(insp_config *cfg)
{
    size_t w = 0;
    for (size_t i = 0; i < cfg->n_keys; i++) {
        if (cfg->keys[i].from_keys_file)
            free_key(&cfg->keys[i]);
        else
            cfg->keys[w++] = cfg->keys[i];
    }
    cfg->n_keys = w;
}

static const char *origin_of(const insp_config *cfg, const char *name)
{
    return cfg->origin[row_index(name)];
}

static void fmt_listen(char *buf, size_t n, const insp_config *cfg)
{
    const char *a = cfg->listen_addr ? cfg->listen_addr : "";
    snprintf(buf, n, strchr(a, ':') ? "[%s]:%d" : "%s:%d", a, cfg->port);
}

int insp_config_validate(insp_config *cfg, insp_error *err)
{
    for (int i = 0; i < N_ROWS; i++) {
        const row *r = &table[i];
        const char *field = (const char *)cfg + r->off;
        long long v;
        switch (r->e.type) {
        case INSP_CONFIG_INT:
        case INSP_CONFIG_BYTES:
        case INSP_CONFIG_ENUM:
            v = r->wide ? *(const long long *)field : *(const int *)field;
            if (v < r->e.min || v > r->e.max)
                return insp_error_set(err, INSP_ERR_INVALID,
                                      "key '%s' (%s): %lld is outside %lld..%lld", r->e.name,
                                      cfg->origin[i], v, r->e.min, r->e.max);
            break;
        case INSP_CONFIG_STRING:
            if (r->e.min > 0 && !*(char *const *)field)
                return insp_error_set(err, INSP_ERR_INVALID, "key '%s' (%s): must not be empty",
                                      r->e.name, cfg->origin[i]);
            break;
        case INSP_CONFIG_LISTEN:
            if (!cfg->listen_addr || !valid_ip_or_localhost(cfg->listen_addr) || cfg->port < 0 ||
                cfg->port > 65535)
                return insp_error_set(err, INSP_ERR_INVALID,
                                      "key 'listen' (%s): not an IP address or localhost with a "
                                      "port in 0..65535",
                                      cfg->origin[i]);
            break;
        default:
            break;
        }
    }

    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
    }
    if (cfg->max_reference_memory == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        cfg->max_reference_memory = pages > 0 && page > 0 ? (long long)pages * page / 2 : 4 * GIB;
    }

    for (size_t i = 0; i < cfg->n_models; i++) {
        if (!cfg->models[i].name || !valid_model_name(cfg->models[i].name) ||
            !cfg->models[i].path || !cfg->models[i].path[0])
            return insp_error_set(err, INSP_ERR_INVALID, "models (%s): bad name or empty path",
                                  cfg->models[i].origin);
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->models[i].name, cfg->models[j].name) == 0)
                return insp_error_set(err, INSP_ERR_INVALID,
                                      "models: name '%s' is given twice (%s and %s)",
                                      cfg->models[i].name, cfg->models[j].origin,
                                      cfg->models[i].origin);
    }

    drop_file_keys(cfg);
    if (cfg->keys_file && cfg->auth_mode == INSP_AUTH_MODE_KEYS) {
        int rc = read_keys_file(cfg, cfg->keys_file, err);
        if (rc != INSP_OK)
            return rc;
    }
    for (size_t i = 0; i < cfg->n_keys; i++) {
        int role;
        insp_error e;
        if (insp_auth_key_check(cfg->keys[i].key, &e) != INSP_OK)
            return insp_error_set(err, INSP_ERR_INVALID, "auth key (%s): %s",
                                  cfg->keys[i].origin, e.msg);
        if (insp_role_parse(insp_role_name(cfg->keys[i].role), &role) != INSP_OK)
            return insp_error_set(err, INSP_ERR_INVALID, "auth key (%s): bad role",
                                  cfg->keys[i].origin);
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->keys[i].key, cfg->keys[j].key) == 0)
                return insp_error_set(err, INSP_ERR_INVALID,
                                      "auth: the same key is given twice (%s and %s); each key "
                                      "must be unique so that its role is unambiguous",
                                      cfg->keys[j].origin, cfg->keys[i].origin);
    }

    if (!cfg->tls_cert != !cfg->tls_key)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "%s (%s) is set but %s is not: HTTPS needs both a certificate "
                              "and its private key",
                              cfg->tls_cert ? "tls.cert" : "tls.key",
                              origin_of(cfg, cfg->tls_cert ? "tls.cert" : "tls.key"),
                              cfg->tls_cert ? "tls.key" : "tls.cert");
    const char *tls_names[2] = {"tls.cert", "tls.key"};
    const char *tls_paths[2] = {cfg->tls_cert, cfg->tls_key};
    for (int i = 0; i < 2; i++)
        if (tls_paths[i] && access(tls_paths[i], R_OK) != 0)
            return insp_error_set(err, INSP_ERR_IO, "%s (%s): cannot read %s: %s", tls_names[i],
                                  origin_of(cfg, tls_names[i]), tls_paths[i], strerror(errno));

    if (cfg->auth_mode == INSP_AUTH_MODE_KEYS && cfg->n_keys == 0 &&
        !insp_config_is_loopback(cfg->listen_addr)) {
        char l[300];
        fmt_listen(l, sizeof l, cfg);
        return insp_error_set(err, INSP_ERR_INVALID,
                              "listen %s (%s) is not a loopback address and no API key is "
                              "configured: anyone reaching the port could change products. Add "
                              "keys (auth.keys or auth.keys_file), listen on 127.0.0.1 or ::1, "
                              "or set auth: none (--auth none) to serve without authentication "
                              "on purpose",
                              l, origin_of(cfg, "listen"));
    }
    return INSP_OK;
}

/* ---- echo ---- */

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

void insp_config_log(const insp_config *cfg)
{
    char l[300];
    fmt_listen(l, sizeof l, cfg);
    if (insp_log_enabled(INSP_LOG_LEVEL_INFO)) {
        json_t *o = json_object();
        json_object_set_new(o, "config_file", string_or_null(cfg->config_file));
        for (int i = 0; i < N_ROWS; i++) {
            const row *r = &table[i];
            const char *field = (const char *)cfg + r->off;
            json_t *v = NULL;
            switch (r->e.type) {
            case INSP_CONFIG_INT:
            case INSP_CONFIG_BYTES:
                v = json_integer(r->wide ? *(const long long *)field : *(const int *)field);
                break;
            case INSP_CONFIG_ENUM: {
                int e = *(const int *)field;
                v = json_string(e >= r->e.min && e <= r->e.max ? r->e.enum_names[e] : "?");
                break;
            }
            case INSP_CONFIG_STRING: v = string_or_null(*(char *const *)field); break;
            case INSP_CONFIG_LISTEN: v = json_string(l); break;
            case INSP_CONFIG_MODELS:
                v = json_array();
                for (size_t m = 0; m < cfg->n_models; m++)
                    json_array_append_new(v, json_pack("{s:s,s:s}", "name", cfg->models[m].name,
                                                       "path", cfg->models[m].path));
                break;
            case INSP_CONFIG_KEYS:
                v = json_array();
                for (size_t k = 0; k < cfg->n_keys; k++) {
                    char fp[INSP_AUTH_FINGERPRINT_LEN];
                    insp_auth_fingerprint(cfg->keys[k].key, fp);
                    json_array_append_new(v, json_pack("{s:s,s:s,s:s}", "role",
                                                       insp_role_name(cfg->keys[k].role), "key",
                                                       fp, "source", cfg->keys[k].origin));
                }
                break;
            }
            if (v)
                json_object_set_new(o, r->e.name, v);
        }
        const char *auth = cfg->auth_mode == INSP_AUTH_MODE_NONE ? "off (auth: none)"
                           : cfg->n_keys ? "API keys"
                                         : "off (no keys; loopback only)";
        insp_log_fields(INSP_LOG_LEVEL_INFO, "config", o,
                        "listening on %s%s, %zu model(s), %d worker(s) x %d thread(s), queue %d, "
                        "authentication %s",
                        l, cfg->tls_cert ? " (HTTPS)" : "", cfg->n_models, cfg->workers,
                        cfg->threads, cfg->queue_length, auth);
    }
    if (cfg->auth_mode == INSP_AUTH_MODE_NONE && cfg->n_keys > 0)
        INSP_LOG_WARN("config", "auth: none, so the %zu configured API key(s) are ignored",
                      cfg->n_keys);
    if (cfg->auth_mode == INSP_AUTH_MODE_NONE && !insp_config_is_loopback(cfg->listen_addr))
        INSP_LOG_WARN("config",
                      "authentication is off (auth: none) on %s: anyone who can reach it can "
                      "change products",
                      l);
}

/* A double-quoted YAML scalar. */
static void yaml_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void insp_config_print(FILE *f, const insp_config *cfg)
{
    char l[300];
    fmt_listen(l, sizeof l, cfg);
    fprintf(f, "# inspectd: effective configuration (built-in defaults%s%s, then flags)\n",
            cfg->config_file ? ", then " : "", cfg->config_file ? cfg->config_file : "");
    char section[32] = "";
    for (int i = 0; i < N_ROWS; i++) {
        const row *r = &table[i];
        const char *dot = strchr(r->e.name, '.');
        const char *leaf = r->e.name;
        const char *indent = "";
        if (dot) {
            size_t n = (size_t)(dot - r->e.name);
            if (strlen(section) != n || strncmp(section, r->e.name, n) != 0) {
                snprintf(section, sizeof section, "%.*s", (int)n, r->e.name);
                fprintf(f, "%s:\n", section);
            }
            leaf = dot + 1;
            indent = "  ";
        } else {
            section[0] = '\0';
        }
        const char *field = (const char *)cfg + r->off;
        fprintf(f, "%s%s:", indent, leaf);
        switch (r->e.type) {
        case INSP_CONFIG_INT:
            fprintf(f, " %lld\n", r->wide ? *(const long long *)field : *(const int *)field);
            break;
        case INSP_CONFIG_BYTES: {
            char b[32];
            fmt_bytes(b, sizeof b, *(const long long *)field);
            fprintf(f, " %s\n", b);
            break;
        }
        case INSP_CONFIG_ENUM: {
            int e = *(const int *)field;
            fprintf(f, " %s\n", e >= r->e.min && e <= r->e.max ? r->e.enum_names[e] : "?");
            break;
        }
        case INSP_CONFIG_STRING:
            fputc(' ', f);
            yaml_quoted(f, *(char *const *)field);
            fputc('\n', f);
            break;
        case INSP_CONFIG_LISTEN:
            fputc(' ', f);
            yaml_quoted(f, l);
            fputc('\n', f);
            break;
        case INSP_CONFIG_MODELS:
            fprintf(f, cfg->n_models ? "\n" : " []\n");
            for (size_t m = 0; m < cfg->n_models; m++) {
                fprintf(f, "%s  - name: ", indent);
                yaml_quoted(f, cfg->models[m].name);
                fprintf(f, "\n%s    path: ", indent);
                yaml_quoted(f, cfg->models[m].path);
                fputc('\n', f);
            }
            break;
        case INSP_CONFIG_KEYS:
            fprintf(f, " []%s\n", cfg->n_keys ? "  # keys are not printed; configured:" : "");
            for (size_t k = 0; k < cfg->n_keys; k++) {
                char fp[INSP_AUTH_FINGERPRINT_LEN];
                insp_auth_fingerprint(cfg->keys[k].key, fp);
                fprintf(f, "%s  #   role %s, key %s, from %s\n", indent,
                        insp_role_name(cfg->keys[k].role), fp, cfg->keys[k].origin);
            }
            break;
        }
    }
}
