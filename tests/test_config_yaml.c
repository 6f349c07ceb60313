/* Tests of the daemon configuration: YAML loading with line numbers in every error, flags
 * over the file, validation (the loopback rule, keys files, TLS pairs), the shipped
 * config/inspectd.yaml, logging with masked keys and --print-config. */
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "harness.h"
#include "inspectd/status.h"

#define KEY_A "key-aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KEY_B "key-bbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Loads YAML text (named t.yaml) over the defaults; returns the status, message in e. */
static int load(const char *yaml, insp_config *cfg, insp_error *e)
{
    insp_error_clear(e);
    if (insp_config_defaults(cfg) != INSP_OK)
        return INSP_ERR_NOMEM;
    return insp_config_load_string(yaml, strlen(yaml), "t.yaml", cfg, e);
}

/* Checks that loading fails with `status` and exactly `msg` (or a message containing each
 * of the NULL-terminated fragments when msg starts with '~'). */
static void expect_error(const char *yaml, int status, const char *msg)
{
    insp_config cfg;
    insp_error e;
    int rc = load(yaml, &cfg, &e);
    CHECK_MSG(rc == status, "status %d, want %d (%s) for:\n%s", rc, status, e.msg, yaml);
    if (msg[0] == '~')
        CHECK_MSG(strstr(e.msg, msg + 1) != NULL, "message '%s' lacks '%s'", e.msg, msg + 1);
    else
        CHECK_MSG(strcmp(e.msg, msg) == 0, "message\n  '%s'\nwant\n  '%s'", e.msg, msg);
    insp_config_free(&cfg);
}

static char tmp_paths[8][64];
static int n_tmp;

static const char *write_tmp(const char *text, mode_t mode)
{
    char *p = tmp_paths[n_tmp++ % 8];
    snprintf(p, 64, "/tmp/insp_test_cfg_XXXXXX");
    int fd = mkstemp(p);
    if (fd < 0)
        return "/nonexistent";
    ssize_t w = write(fd, text, strlen(text));
    (void)w;
    close(fd);
    chmod(p, mode);
    return p;
}

static void defaults_are_valid(void)
{
    insp_config cfg;
    insp_error e;
    REQUIRE(insp_config_defaults(&cfg) == INSP_OK);
    CHECK(strcmp(cfg.listen_addr, "127.0.0.1") == 0);
    CHECK_EQ_INT(cfg.port, 8080);
    CHECK(strcmp(cfg.state_dir, "./state") == 0);
    CHECK_EQ_INT(cfg.n_models, 0);
    CHECK_EQ_INT(cfg.workers, 1);
    CHECK_EQ_INT(cfg.threads, 0);
    CHECK_EQ_INT(cfg.queue_length, 8);
    CHECK_EQ_INT(cfg.connection_limit, 256);
    CHECK_EQ_INT(cfg.request_timeout_s, 30);
    CHECK_EQ_INT(cfg.max_body_bytes, 32LL * 1024 * 1024);
    CHECK_EQ_INT(cfg.max_pixels, 40000000);
    CHECK_EQ_INT(cfg.max_references, 16);
    CHECK_EQ_INT(cfg.max_products, 1000);
    CHECK_EQ_INT(cfg.auth_mode, INSP_AUTH_MODE_KEYS);
    CHECK(cfg.keys_file == NULL && cfg.tls_cert == NULL && cfg.tls_key == NULL);
    CHECK_EQ_INT(cfg.log_level, INSP_LOG_LEVEL_INFO);
    CHECK_MSG(insp_config_validate(&cfg, &e) == INSP_OK, "%s", e.msg);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK_EQ_INT(cfg.threads, cores < 1 ? 1 : cores);
    insp_config_free(&cfg);
    insp_config_free(&cfg); /* zeroed: harmless */
    insp_config_free(NULL);
}

static void full_file(void)
{
    const char *yaml =
        "# a comment\n"
        "listen: \"[::1]:9090\"\n"
        "state_dir: /srv/inspectd\n"
        "models:\n"
        "  - name: default\n"
        "    path: weights/ViT-B-16-plus-240\n"
        "  - {name: tiny.v2, path: /models/tiny}\n"
        "workers: 2\n"
        "threads: 3\n"
        "queue_length: 0\n"
        "connection_limit: 100\n"
        "request_timeout_s: 5\n"
        "retry_after_s: 2\n"
        "max_body_bytes: 8MiB\n"
        "max_pixels: 12_000_000\n"
        "max_references: 4\n"
        "max_products: 50\n"
        "auth:\n"
        "  mode: keys\n"
        "  keys:\n"
        "    - role: admin\n"
        "      key: " KEY_A "\n"
        "    - {role: inspect, key: '" KEY_B "'}\n"
        "  keys_file: ~\n"
        "tls:\n"
        "  cert:\n"
        "  key: null\n"
        "log_level: warning\n";
    insp_config cfg;
    insp_error e;
    int rc = load(yaml, &cfg, &e);
    CHECK_MSG(rc == INSP_OK, "%s", e.msg);
    CHECK(cfg.listen_addr && strcmp(cfg.listen_addr, "::1") == 0);
    CHECK_EQ_INT(cfg.port, 9090);
    CHECK(cfg.state_dir && strcmp(cfg.state_dir, "/srv/inspectd") == 0);
    REQUIRE(cfg.n_models == 2);
    CHECK(strcmp(cfg.models[0].name, "default") == 0);
    CHECK(strcmp(cfg.models[0].path, "weights/ViT-B-16-plus-240") == 0);
    CHECK(strcmp(cfg.models[0].origin, "t.yaml:5") == 0);
    CHECK(strcmp(cfg.models[1].name, "tiny.v2") == 0);
    CHECK(strcmp(cfg.models[1].path, "/models/tiny") == 0);
    CHECK_EQ_INT(cfg.workers, 2);
    CHECK_EQ_INT(cfg.threads, 3);
    CHECK_EQ_INT(cfg.queue_length, 0);
    CHECK_EQ_INT(cfg.connection_limit, 100);
    CHECK_EQ_INT(cfg.request_timeout_s, 5);
    CHECK_EQ_INT(cfg.retry_after_s, 2);
    CHECK_EQ_INT(cfg.max_body_bytes, 8 * 1024 * 1024);
    CHECK_EQ_INT(cfg.max_pixels, 12000000);
    CHECK_EQ_INT(cfg.max_references, 4);
    CHECK_EQ_INT(cfg.max_products, 50);
    REQUIRE(cfg.n_keys == 2);
    CHECK(strcmp(cfg.keys[0].key, KEY_A) == 0 && cfg.keys[0].role == INSP_ROLE_ADMIN);
    CHECK(strcmp(cfg.keys[1].key, KEY_B) == 0 && cfg.keys[1].role == INSP_ROLE_INSPECT);
    CHECK(cfg.keys_file == NULL && cfg.tls_cert == NULL && cfg.tls_key == NULL);
    CHECK_EQ_INT(cfg.log_level, INSP_LOG_LEVEL_WARN);
    CHECK_MSG(insp_config_validate(&cfg, &e) == INSP_OK, "%s", e.msg);
    insp_config_free(&cfg);
}

static void syntax_errors_have_lines(void)
{
    expect_error("workers: 2\nqueue_length: 4\n  bad_indent: 3\n", INSP_ERR_FORMAT,
                 "~t.yaml:3: YAML syntax error");
    expect_error("workers: 2\nlisten: \"127.0.0.1:80\nmax_products: 3\n", INSP_ERR_FORMAT,
                 "~YAML syntax error");
    expect_error("workers: 1\n---\nworkers: 2\n", INSP_ERR_FORMAT,
                 "t.yaml:3: a second YAML document; the config is one document");
    expect_error("- workers\n- 2\n", INSP_ERR_INVALID,
                 "t.yaml:1: the top level must be a mapping of keys (key: value), got a list");
}

static void wrong_types_and_ranges(void)
{
    expect_error("listen: 127.0.0.1:8080\nworkers: abc\n", INSP_ERR_INVALID,
                 "t.yaml:2: key 'workers': expected an integer in 1..64, got 'abc'");
    expect_error("workers: 0\n", INSP_ERR_INVALID,
                 "t.yaml:1: key 'workers': expected an integer in 1..64, got '0'");
    expect_error("workers: 2.5\n", INSP_ERR_INVALID, "~got '2.5'");
    expect_error("queue_length: 5000\n", INSP_ERR_INVALID,
                 "t.yaml:1: key 'queue_length': expected an integer in 0..4096, got '5000'");
    expect_error("queue_length: 99999999999999999999999\n", INSP_ERR_INVALID, "~queue_length");
    expect_error("\n\nmax_body_bytes: 2GiB\n", INSP_ERR_INVALID,
                 "~t.yaml:3: key 'max_body_bytes': expected a size in 1KiB..1GiB");
    expect_error("max_body_bytes: 12 parsecs\n", INSP_ERR_INVALID, "~got '12 parsecs'");
    expect_error("workers: [1, 2]\n", INSP_ERR_INVALID,
                 "t.yaml:1: key 'workers': expected a single value, got a list");
    expect_error("workers:\n", INSP_ERR_INVALID, "~got ''");
    expect_error("state_dir: \"\"\n", INSP_ERR_INVALID, "t.yaml:1: key 'state_dir': must not be empty");
    expect_error("log_level: loud\n", INSP_ERR_INVALID,
                 "t.yaml:1: key 'log_level': expected one of debug, info, warn, error, got 'loud'");
    expect_error("listen: 8080\n", INSP_ERR_INVALID, "~key 'listen': expected ADDR:PORT");
    expect_error("listen: \"::1:8080\"\n", INSP_ERR_INVALID, "~IPv6 in brackets");
    expect_error("listen: 127.0.0.1:65536\n", INSP_ERR_INVALID, "~got '127.0.0.1:65536'");
    expect_error("listen: example.com:80\n", INSP_ERR_INVALID, "~got 'example.com:80'");
    expect_error("listen: 127.0.0.1:-1\n", INSP_ERR_INVALID, "~key 'listen'");
    expect_error("tls: yes\n", INSP_ERR_INVALID,
                 "t.yaml:1: key 'tls': expected a mapping of tls.* keys, got a value");

    insp_config cfg;
    insp_error e;
    CHECK_OK(load("listen: localhost:0\nmax_body_bytes: 1024\n", &cfg, &e));
    CHECK(strcmp(cfg.listen_addr, "localhost") == 0);
    CHECK_EQ_INT(cfg.port, 0);
    CHECK_EQ_INT(cfg.max_body_bytes, 1024);
    insp_config_free(&cfg);
}

static void unknown_and_duplicate_keys(void)
{
    expect_error("workers: 1\n\nwrokers: 2\n", INSP_ERR_INVALID,
                 "t.yaml:3: unknown key 'wrokers' (did you mean 'workers'?)");
    expect_error("colour: blue\n", INSP_ERR_INVALID, "t.yaml:1: unknown key 'colour'");
    expect_error("auth.mode: none\n", INSP_ERR_INVALID,
                 "t.yaml:1: unknown key 'auth.mode' (nest it: auth: {mode: ...})");
    expect_error("auth:\n  mdoe: none\n", INSP_ERR_INVALID,
                 "t.yaml:2: unknown key 'auth.mdoe' (did you mean 'auth.mode'?)");
    expect_error("tls: {cert: /a, keyy: /b}\n", INSP_ERR_INVALID,
                 "~unknown key 'tls.keyy' (did you mean 'tls.key'?)");
    expect_error("workers: 1\nqueue_length: 2\nworkers: 3\n", INSP_ERR_INVALID,
                 "t.yaml:3: key 'workers' is given twice (first on line 1)");
    expect_error("auth:\n  mode: keys\n  mode: none\n", INSP_ERR_INVALID,
                 "t.yaml:3: key 'auth.mode' is given twice (first on line 2)");
    expect_error("models:\n  - name: a\n    path: /a\n    name: b\n", INSP_ERR_INVALID,
                 "t.yaml:4: models[0]: key 'name' is given twice (first on line 2)");
    expect_error("models:\n  - name: a\n    paht: /a\n", INSP_ERR_INVALID,
                 "t.yaml:3: models[0]: unknown key 'paht' (expected name and path)");
}

static void lists(void)
{
    expect_error("models: /some/dir\n", INSP_ERR_INVALID,
                 "t.yaml:1: key 'models': expected a list of {name, path}, got a value");
    expect_error("models:\n  - name: a\n    path: /a\n  - name: b\n", INSP_ERR_INVALID,
                 "t.yaml:4: models[1]: needs a path");
    expect_error("models:\n  - /a\n", INSP_ERR_INVALID, "~t.yaml:2: models[0]: expected a mapping");
    expect_error("models:\n  - name: 'bad name'\n    path: /a\n", INSP_ERR_INVALID,
                 "~t.yaml:2: models[0]: model name must be");
    expect_error("auth:\n  keys:\n    - role: root\n      key: " KEY_A "\n", INSP_ERR_INVALID,
                 "t.yaml:3: auth.keys[0]: role must be inspect or admin, got 'root'");
    /* a short key: the error has the line but never the key */
    insp_config cfg;
    insp_error e;
    CHECK_EQ_INT(load("auth:\n  keys:\n    - role: admin\n      key: tooshort\n", &cfg, &e),
                 INSP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "t.yaml:3: auth.keys[0]: key is 8 characters") == e.msg, "%s", e.msg);
    CHECK(strstr(e.msg, "tooshort") == NULL);
    insp_config_free(&cfg);
    /* models: [] and a null list are empty; a file's list replaces the previous one */
    CHECK_OK(load("models: []\n", &cfg, &e));
    CHECK_EQ_INT(cfg.n_models, 0);
    CHECK_OK(insp_config_load_string("models:\n", 8, "u.yaml", &cfg, &e));
    CHECK_EQ_INT(cfg.n_models, 0);
    insp_config_free(&cfg);
}

static void auth_shorthand(void)
{
    insp_config cfg;
    insp_error e;
    CHECK_OK(load("auth: none\n", &cfg, &e));
    CHECK_EQ_INT(cfg.auth_mode, INSP_AUTH_MODE_NONE);
    insp_config_free(&cfg);
    expect_error("auth: maybe\n", INSP_ERR_INVALID,
                 "t.yaml:1: key 'auth.mode': expected one of keys, none, got 'maybe'");
}

static void empty_files(void)
{
    insp_config cfg;
    insp_error e;
    CHECK_OK(load("", &cfg, &e));
    CHECK_EQ_INT(cfg.workers, 1);
    insp_config_free(&cfg);
    CHECK_OK(load("# only comments\n\n", &cfg, &e));
    insp_config_free(&cfg);
    CHECK_EQ_INT(insp_config_defaults(&cfg), INSP_OK);
    CHECK_EQ_INT(insp_config_load_file("/nonexistent/inspectd.yaml", &cfg, &e), INSP_ERR_IO);
    CHECK(strstr(e.msg, "/nonexistent/inspectd.yaml") != NULL);
    insp_config_free(&cfg);
}

/* Runs the command line (argv NULL-terminated) over the defaults. */
static int args(insp_config *cfg, int *action, insp_error *e, const char **argv_in)
{
    char *argv[32];
    int argc = 0;
    while (argv_in[argc] && argc < 31) {
        argv[argc] = (char *)argv_in[argc];
        argc++;
    }
    argv[argc] = NULL;
    insp_error_clear(e);
    if (insp_config_defaults(cfg) != INSP_OK)
        return INSP_ERR_NOMEM;
    return insp_config_parse_args(argc, argv, cfg, action, e);
}

static void flags_override_file(void)
{
    const char *file = write_tmp("listen: 0.0.0.0:9000\n"
                                 "workers: 2\n"
                                 "queue_length: 6\n"
                                 "max_references: 7\n"
                                 "models:\n"
                                 "  - {name: filemodel, path: /file}\n",
                                 0600);
    insp_config cfg;
    insp_error e;
    int action = -1;
    /* -c comes last and still is read first */
    const char *argv[] = {"inspectd", "--workers", "4", "--listen=127.0.0.1:7000", "--model",
                          "a=/models/a", "--model=b=/models/b", "--queue=3", "-o",
                          "max_products=5", "--set", "max_body_bytes=1MiB", "--auth", "none",
                          "--log-level", "debug", "--state-dir", "/tmp/st", "-c", file, NULL};
    int rc = args(&cfg, &action, &e, argv);
    CHECK_MSG(rc == INSP_OK, "%s", e.msg);
    CHECK_EQ_INT(action, INSP_CONFIG_RUN);
    CHECK(cfg.config_file && strcmp(cfg.config_file, file) == 0);
    CHECK_EQ_INT(cfg.workers, 4);
    CHECK_EQ_INT(cfg.queue_length, 3);
    CHECK_EQ_INT(cfg.max_references, 7); /* file only */
    CHECK_EQ_INT(cfg.max_products, 5);
    CHECK_EQ_INT(cfg.max_body_bytes, 1024 * 1024);
    CHECK_EQ_INT(cfg.auth_mode, INSP_AUTH_MODE_NONE);
    CHECK_EQ_INT(cfg.log_level, INSP_LOG_LEVEL_DEBUG);
    CHECK(strcmp(cfg.listen_addr, "127.0.0.1") == 0);
    CHECK_EQ_INT(cfg.port, 7000);
    CHECK(strcmp(cfg.state_dir, "/tmp/st") == 0);
    REQUIRE(cfg.n_models == 2);
    CHECK(strcmp(cfg.models[0].name, "a") == 0 && strcmp(cfg.models[0].path, "/models/a") == 0);
    CHECK(strcmp(cfg.models[1].name, "b") == 0 && strcmp(cfg.models[1].path, "/models/b") == 0);
    CHECK(strcmp(cfg.origin[0], "--listen") == 0);
    insp_config_free(&cfg);

    /* without flags, the file's values stand */
    const char *argv2[] = {"inspectd", "--config", file, NULL};
    CHECK_OK(args(&cfg, &action, &e, argv2));
    CHECK_EQ_INT(cfg.workers, 2);
    CHECK_EQ_INT(cfg.port, 9000);
    CHECK_EQ_INT(cfg.n_models, 1);
    /* 0.0.0.0 with no keys: refused by validation */
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "listen 0.0.0.0:9000") && strstr(e.msg, file) &&
                  strstr(e.msg, "auth: none"),
              "%s", e.msg);
    insp_config_free(&cfg);
    unlink(file);
}

static void flag_errors_and_actions(void)
{
    insp_config cfg;
    insp_error e;
    int action;
    struct {
        const char *argv[6];
        const char *msg;
    } bad[] = {
        {{"inspectd", "--workers", "abc"}, "--workers: expected an integer in 1..64, got 'abc'"},
        {{"inspectd", "--workers"}, "option --workers needs a value (N)"},
        {{"inspectd", "--wrokers", "2"}, "unknown option '--wrokers' (see --help)"},
        {{"inspectd", "-x"}, "unknown option '-x' (see --help)"},
        {{"inspectd", "extra"}, "unexpected argument 'extra' (see --help)"},
        {{"inspectd", "--print-config=yes"}, "option --print-config takes no value"},
        {{"inspectd", "-o", "quue_length=3"},
         "--set: unknown key 'quue_length' (did you mean 'queue_length'?)"},
        {{"inspectd", "-o", "workers"}, "--set: expected KEY=VALUE, got 'workers'"},
        {{"inspectd", "-o", "models=x"}, "--set models: is a list, not a single value"},
        {{"inspectd", "--model", "nopath"}, "--model: expected NAME=DIR, got 'nopath'"},
        {{"inspectd", "--model", "a b=/x"}, "~--model: model name must be"},
        {{"inspectd", "-c", "a.yaml", "--config", "b.yaml"},
         "-c/--config is given twice ('a.yaml' and 'b.yaml')"},
        {{"inspectd", "-c", "/nonexistent/x.yaml"}, "~config file /nonexistent/x.yaml"},
        {{"inspectd", "--listen", "*:80"}, "~--listen: expected ADDR:PORT"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = args(&cfg, &action, &e, bad[i].argv);
        CHECK_MSG(rc != INSP_OK, "case %zu accepted", i);
        if (bad[i].msg[0] == '~')
            CHECK_MSG(strstr(e.msg, bad[i].msg + 1), "case %zu: '%s'", i, e.msg);
        else
            CHECK_MSG(strcmp(e.msg, bad[i].msg) == 0, "case %zu: '%s'", i, e.msg);
        insp_config_free(&cfg);
    }
    /* --help and --version win and read nothing, even a missing file */
    const char *h[] = {"inspectd", "-c", "/nonexistent.yaml", "--bogus-but-later", NULL};
    CHECK(args(&cfg, &action, &e, h) != INSP_OK); /* unknown option before reaching help */
    insp_config_free(&cfg);
    const char *h2[] = {"inspectd", "-c", "/nonexistent.yaml", "--help", NULL};
    CHECK_OK(args(&cfg, &action, &e, h2));
    CHECK_EQ_INT(action, INSP_CONFIG_HELP);
    insp_config_free(&cfg);
    const char *v[] = {"inspectd", "-V", NULL};
    CHECK_OK(args(&cfg, &action, &e, v));
    CHECK_EQ_INT(action, INSP_CONFIG_VERSION);
    insp_config_free(&cfg);
    const char *p[] = {"inspectd", "--print-config", "--threads", "2", NULL};
    CHECK_OK(args(&cfg, &action, &e, p));
    CHECK_EQ_INT(action, INSP_CONFIG_PRINT);
    CHECK_EQ_INT(cfg.threads, 2);
    insp_config_free(&cfg);
    /* the usage text names every flag */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    insp_config_usage(f, "inspectd");
    fclose(f);
    const char *flags[] = {"--config", "--listen", "--state-dir", "--model", "--auth",
                           "--workers", "--threads", "--queue", "--log-level", "--help",
                           "--version", "--print-config", "--set", "max_body_bytes"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        CHECK_MSG(strstr(buf, flags[i]), "usage lacks %s", flags[i]);
    free(buf);
}

static int validate_listen(const char *listen, int auth_mode, int with_key, insp_error *e)
{
    insp_config cfg;
    insp_config_defaults(&cfg);
    int rc = insp_config_set(&cfg, "listen", listen, "test", e);
    if (rc == INSP_OK) {
        cfg.auth_mode = auth_mode;
        if (with_key)
            insp_config_add_key(&cfg, "admin", KEY_A, "test", e);
        rc = insp_config_validate(&cfg, e);
    }
    insp_config_free(&cfg);
    return rc;
}

static void loopback_rule(void)
{
    insp_error e;
    const char *loop[] = {"127.0.0.1:8080", "127.1.2.3:80", "[::1]:8080", "localhost:8080",
                          "[::ffff:127.0.0.1]:1"};
    for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++)
        CHECK_MSG(validate_listen(loop[i], INSP_AUTH_MODE_KEYS, 0, &e) == INSP_OK, "%s: %s",
                  loop[i], e.msg);
    const char *open[] = {"0.0.0.0:8080", "[::]:8080", "192.168.1.10:8080", "128.0.0.1:80",
                          "[::2]:80"};
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        CHECK_MSG(validate_listen(open[i], INSP_AUTH_MODE_KEYS, 0, &e) == INSP_ERR_INVALID,
                  "%s accepted without keys", open[i]);
        CHECK_MSG(strstr(e.msg, "not a loopback address") && strstr(e.msg, "auth: none"), "%s",
                  e.msg);
        CHECK_MSG(validate_listen(open[i], INSP_AUTH_MODE_NONE, 0, &e) == INSP_OK, "%s: %s",
                  open[i], e.msg);
        CHECK_MSG(validate_listen(open[i], INSP_AUTH_MODE_KEYS, 1, &e) == INSP_OK, "%s: %s",
                  open[i], e.msg);
    }
    CHECK(insp_config_is_loopback("127.0.0.1"));
    CHECK(!insp_config_is_loopback("10.0.0.1"));
    CHECK(!insp_config_is_loopback(NULL));
    CHECK(!insp_config_is_loopback("localhost.evil.com"));
}

static void keys_file(void)
{
    const char *kf = write_tmp("# API keys\n"
                               "admin " KEY_A "\n"
                               "\n"
                               "  inspect\t" KEY_B "   # line-end comment\n",
                               0600);
    insp_config cfg;
    insp_error e;
    insp_config_defaults(&cfg);
    CHECK_OK(insp_config_set(&cfg, "auth.keys_file", kf, "test", &e));
    CHECK_OK(insp_config_set(&cfg, "listen", "0.0.0.0:80", "test", &e));
    CHECK_MSG(insp_config_validate(&cfg, &e) == INSP_OK, "%s", e.msg);
    REQUIRE(cfg.n_keys == 2);
    CHECK(cfg.keys[0].role == INSP_ROLE_ADMIN && strcmp(cfg.keys[0].key, KEY_A) == 0);
    CHECK(cfg.keys[1].role == INSP_ROLE_INSPECT && strcmp(cfg.keys[1].key, KEY_B) == 0);
    char want[96];
    snprintf(want, sizeof want, "%s:4", kf);
    CHECK(strcmp(cfg.keys[1].origin, want) == 0);
    /* validating again does not read the file twice */
    CHECK_OK(insp_config_validate(&cfg, &e));
    CHECK_EQ_INT(cfg.n_keys, 2);
    /* the same key inline and in the file is ambiguous */
    CHECK_OK(insp_config_add_key(&cfg, "inspect", KEY_A, "t.yaml:9", &e));
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "same key is given twice") && strstr(e.msg, "t.yaml:9") &&
                  !strstr(e.msg, KEY_A),
              "%s", e.msg);
    insp_config_clear_keys(&cfg);
    /* world-readable: refused */
    chmod(kf, 0644);
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "other users can read or write it (mode 0644)"), "%s", e.msg);
    chmod(kf, 0640);
    CHECK_OK(insp_config_validate(&cfg, &e));
    insp_config_free(&cfg);
    unlink(kf);

    struct {
        const char *text;
        const char *msg; /* after "FILE:" */
    } bad[] = {
        {"admin\n", "1: expected '<role> <key>'"},
        {"# c\nroot " KEY_A "\n", "2: role must be inspect or admin, got 'root'"},
        {"admin short\n", "1: key is 5 characters long"},
        {"admin " KEY_A " extra\n", "1: expected '<role> <key>'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = write_tmp(bad[i].text, 0600);
        insp_config_defaults(&cfg);
        insp_config_set(&cfg, "auth.keys_file", p, "test", &e);
        CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
        char w[160];
        snprintf(w, sizeof w, "%s:%s", p, bad[i].msg);
        CHECK_MSG(strstr(e.msg, w) == e.msg, "'%s' lacks '%s'", e.msg, w);
        insp_config_free(&cfg);
        unlink(p);
    }
    /* an empty keys file: no keys, so loopback only */
    const char *empty = write_tmp("# nothing yet\n", 0600);
    insp_config_defaults(&cfg);
    insp_config_set(&cfg, "auth.keys_file", empty, "test", &e);
    CHECK_OK(insp_config_validate(&cfg, &e));
    insp_config_set(&cfg, "listen", "0.0.0.0:80", "test", &e);
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
    insp_config_free(&cfg);
    unlink(empty);
    /* a missing keys file */
    insp_config_defaults(&cfg);
    insp_config_set(&cfg, "auth.keys_file", "/nonexistent/keys", "test", &e);
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_IO);
    insp_config_free(&cfg);
}

static void tls_pairs(void)
{
    const char *cert = write_tmp("-----BEGIN CERTIFICATE-----\n", 0600);
    insp_config cfg;
    insp_error e;
    insp_config_defaults(&cfg);
    insp_config_set(&cfg, "tls.cert", cert, "t.yaml:4", &e);
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "tls.cert (t.yaml:4) is set but tls.key is not"), "%s", e.msg);
    insp_config_set(&cfg, "tls.key", "/nonexistent/key.pem", "--tls-key", &e);
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_IO);
    CHECK_MSG(strstr(e.msg, "tls.key (--tls-key): cannot read /nonexistent/key.pem"), "%s",
              e.msg);
    insp_config_set(&cfg, "tls.key", cert, "--tls-key", &e);
    CHECK_OK(insp_config_validate(&cfg, &e));
    insp_config_free(&cfg);
    unlink(cert);
}

static void model_names_unique(void)
{
    insp_config cfg;
    insp_error e;
    CHECK_OK(load("models:\n  - {name: a, path: /x}\n  - {name: a, path: /y}\n", &cfg, &e));
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
    CHECK_MSG(strcmp(e.msg, "models: name 'a' is given twice (t.yaml:2 and t.yaml:3)") == 0, "%s",
              e.msg);
    insp_config_free(&cfg);
}

/* The shipped config/inspectd.yaml: loads, validates, mentions every key, and its values
 * are the built-in defaults (so the file documents them truthfully). */
static void shipped_yaml_documents_defaults(void)
{
    const char *root = getenv("INSP_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/config/inspectd.yaml", root ? root : ".");
    size_t len;
    char *text = read_file(path, &len);
    REQUIRE(text);
    insp_config def, cfg;
    insp_error e;
    REQUIRE(insp_config_defaults(&def) == INSP_OK);
    REQUIRE(insp_config_defaults(&cfg) == INSP_OK);
    int rc = insp_config_load_file(path, &cfg, &e);
    CHECK_MSG(rc == INSP_OK, "%s", e.msg);
    for (int i = 0; i < insp_config_n_entries(); i++) {
        const insp_config_entry *en = insp_config_entry_at(i);
        const char *leaf = strrchr(en->name, '.') ? strrchr(en->name, '.') + 1 : en->name;
        char needle[64];
        snprintf(needle, sizeof needle, "%s:", leaf);
        CHECK_MSG(strstr(text, needle), "%s does not mention %s", path, en->name);
    }
    CHECK(strcmp(cfg.listen_addr, def.listen_addr) == 0 && cfg.port == def.port);
    CHECK(strcmp(cfg.state_dir, def.state_dir) == 0);
    CHECK_EQ_INT(cfg.workers, def.workers);
    CHECK_EQ_INT(cfg.threads, def.threads);
    CHECK_EQ_INT(cfg.queue_length, def.queue_length);
    CHECK_EQ_INT(cfg.connection_limit, def.connection_limit);
    CHECK_EQ_INT(cfg.request_timeout_s, def.request_timeout_s);
    CHECK_EQ_INT(cfg.retry_after_s, def.retry_after_s);
    CHECK_EQ_INT(cfg.max_body_bytes, def.max_body_bytes);
    CHECK_EQ_INT(cfg.max_pixels, def.max_pixels);
    CHECK_EQ_INT(cfg.max_references, def.max_references);
    CHECK_EQ_INT(cfg.max_products, def.max_products);
    CHECK_EQ_INT(cfg.auth_mode, def.auth_mode);
    CHECK_EQ_INT(cfg.n_keys, 0);
    CHECK(!cfg.keys_file && !cfg.tls_cert && !cfg.tls_key);
    CHECK_EQ_INT(cfg.log_level, def.log_level);
    CHECK_EQ_INT(cfg.n_models, 1);
    CHECK_MSG(insp_config_validate(&cfg, &e) == INSP_OK, "%s", e.msg);
    insp_config_free(&cfg);
    insp_config_free(&def);
    free(text);
}

static void log_masks_keys(void)
{
    insp_config cfg;
    insp_error e;
    REQUIRE(insp_config_defaults(&cfg) == INSP_OK);
    CHECK_OK(insp_config_add_key(&cfg, "admin", KEY_A, "t.yaml:3", &e));
    CHECK_OK(insp_config_add_model(&cfg, "default", "/m", "t.yaml:5", &e));
    CHECK_OK(insp_config_validate(&cfg, &e));
    char path[] = "/tmp/insp_test_cfglog_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    insp_log_set_level(INSP_LOG_LEVEL_INFO);
    insp_log_set_fd(fd);
    insp_config_log(&cfg);
    insp_log_set_fd(2);
    close(fd);
    size_t len;
    char *text = read_file(path, &len);
    unlink(path);
    REQUIRE(text);
    CHECK(strstr(text, KEY_A) == NULL);
    char fp[INSP_AUTH_FINGERPRINT_LEN];
    insp_auth_fingerprint(KEY_A, fp);
    CHECK(strstr(text, fp) != NULL);
    char *nl = strchr(text, '\n');
    REQUIRE(nl);
    *nl = '\0';
    json_t *j = json_loads(text, 0, NULL);
    REQUIRE(j);
    CHECK(strcmp(json_string_value(json_object_get(j, "event")), "config") == 0);
    CHECK(strcmp(json_string_value(json_object_get(j, "listen")), "127.0.0.1:8080") == 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "max_body_bytes")), 32 * 1024 * 1024);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "threads")), cfg.threads);
    CHECK(strcmp(json_string_value(json_object_get(j, "auth.mode")), "keys") == 0);
    json_t *keys = json_object_get(j, "auth.keys");
    CHECK_EQ_INT(json_array_size(keys), 1);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(keys, 0), "role")), "admin") == 0);
    json_t *models = json_object_get(j, "models");
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(models, 0), "path")), "/m") == 0);
    /* every table key is in the line */
    for (int i = 0; i < insp_config_n_entries(); i++)
        CHECK_MSG(json_object_get(j, insp_config_entry_at(i)->name), "log lacks %s",
                  insp_config_entry_at(i)->name);
    json_decref(j);
    free(text);
    insp_config_free(&cfg);
}

/* --print-config output is YAML this reader takes back, giving the same values. */
static void print_round_trip(void)
{
    insp_config cfg, back;
    insp_error e;
    int rc = load("listen: \"[::1]:81\"\nstate_dir: \"/a \\\"quoted\\\" dir\"\nworkers: 3\n"
                  "threads: 2\nmax_body_bytes: 3000\nauth: none\nlog_level: error\n"
                  "models:\n  - {name: m1, path: /p1}\n",
                  &cfg, &e);
    CHECK_MSG(rc == INSP_OK, "%s", e.msg);
    CHECK_OK(insp_config_add_key(&cfg, "inspect", KEY_B, "x", &e));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    insp_config_print(f, &cfg);
    fclose(f);
    CHECK(strstr(buf, KEY_B) == NULL);
    REQUIRE(insp_config_defaults(&back) == INSP_OK);
    rc = insp_config_load_string(buf, len, "printed", &back, &e);
    CHECK_MSG(rc == INSP_OK, "%s\n%s", e.msg, buf);
    CHECK(strcmp(back.listen_addr, "::1") == 0 && back.port == 81);
    CHECK(back.state_dir && strcmp(back.state_dir, "/a \"quoted\" dir") == 0);
    CHECK_EQ_INT(back.workers, 3);
    CHECK_EQ_INT(back.threads, 2);
    CHECK_EQ_INT(back.max_body_bytes, 3000);
    CHECK_EQ_INT(back.auth_mode, INSP_AUTH_MODE_NONE);
    CHECK_EQ_INT(back.log_level, INSP_LOG_LEVEL_ERROR);
    CHECK_EQ_INT(back.n_models, 1);
    CHECK_EQ_INT(back.n_keys, 0);
    free(buf);
    insp_config_free(&back);
    insp_config_free(&cfg);
}

static void table_is_consistent(void)
{
    /* every default parses and lies within its bounds; suggestions stay close */
    for (int i = 0; i < insp_config_n_entries(); i++) {
        const insp_config_entry *en = insp_config_entry_at(i);
        CHECK(insp_config_find(en->name) == en);
        CHECK(en->help && en->help[0]);
    }
    CHECK(insp_config_entry_at(insp_config_n_entries()) == NULL);
    CHECK(insp_config_find("nope") == NULL);
    CHECK(insp_config_is_section("auth") && insp_config_is_section("tls"));
    CHECK(!insp_config_is_section("workers") && !insp_config_is_section("au"));
    CHECK(insp_config_suggest("completely-different") == NULL);
    insp_config cfg;
    insp_error e;
    CHECK_OK(insp_config_defaults(&cfg));
    CHECK_EQ_INT(insp_config_set(&cfg, "nope", "1", NULL, &e), INSP_ERR_NOT_FOUND);
    /* a programmatic out-of-range value is caught by validate */
    cfg.workers = 1000;
    CHECK_EQ_INT(insp_config_validate(&cfg, &e), INSP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "key 'workers' (default): 1000 is outside 1..64"), "%s", e.msg);
    insp_config_free(&cfg);
}

TEST_MAIN(T(defaults_are_valid), T(full_file), T(syntax_errors_have_lines),
          T(wrong_types_and_ranges), T(unknown_and_duplicate_keys), T(lists), T(auth_shorthand),
          T(empty_files), T(flags_override_file), T(flag_errors_and_actions), T(loopback_rule),
          T(keys_file), T(tls_pairs), T(model_names_unique), T(shipped_yaml_documents_defaults),
          T(log_masks_keys), T(print_round_trip), T(table_is_consistent))
