/* Tests of API-key authentication: roles, header parsing, 401 vs 403, auth off, key shapes
 * and fingerprints. */
#include "daemon/auth.h"
#include "daemon/config.h"
#include "harness.h"
#include "inspectd/status.h"

#define ADMIN_KEY "adm-0123456789abcdef0123456789abcdef"
#define INSPECT_KEY "insp_ABCDEFGHIJKLMNOPQRSTUVWXYZ+/=="

static insp_auth *make_auth(int mode, int with_keys)
{
    insp_config cfg;
    insp_error e;
    insp_auth *a = NULL;
    if (insp_config_defaults(&cfg) != INSP_OK)
        return NULL;
    cfg.auth_mode = mode;
    if (with_keys) {
        CHECK_OK(insp_config_add_key(&cfg, "admin", ADMIN_KEY, "test", &e));
        CHECK_OK(insp_config_add_key(&cfg, "inspect", INSPECT_KEY, "test", &e));
    }
    CHECK_OK(insp_auth_create(&cfg, &a, &e));
    insp_config_free(&cfg);
    return a;
}

static void roles(void)
{
    int r = -1;
    CHECK_OK(insp_role_parse("admin", &r));
    CHECK_EQ_INT(r, INSP_ROLE_ADMIN);
    CHECK_OK(insp_role_parse("inspect", &r));
    CHECK_EQ_INT(r, INSP_ROLE_INSPECT);
    CHECK_EQ_INT(insp_role_parse("Admin", &r), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_role_parse(NULL, &r), INSP_ERR_INVALID);
    CHECK(strcmp(insp_role_name(INSP_ROLE_ADMIN), "admin") == 0);
    CHECK(strcmp(insp_role_name(INSP_ROLE_INSPECT), "inspect") == 0);
    CHECK(strcmp(insp_role_name(42), "none") == 0);
}

static void keys_and_roles(void)
{
    insp_auth *a = make_auth(INSP_AUTH_MODE_KEYS, 1);
    REQUIRE(a);
    CHECK(insp_auth_required(a));
    int g = -1;
    CHECK_EQ_INT(insp_auth_check(a, NULL, INSP_ROLE_INSPECT, &g), INSP_AUTH_UNAUTHENTICATED);
    CHECK_EQ_INT(g, INSP_ROLE_NONE);
    CHECK_EQ_INT(insp_auth_check(a, "Bearer " ADMIN_KEY, INSP_ROLE_ADMIN, &g), INSP_AUTH_OK);
    CHECK_EQ_INT(g, INSP_ROLE_ADMIN);
    CHECK_EQ_INT(insp_auth_check(a, "Bearer " ADMIN_KEY, INSP_ROLE_INSPECT, &g), INSP_AUTH_OK);
    CHECK_EQ_INT(insp_auth_check(a, "Bearer " INSPECT_KEY, INSP_ROLE_INSPECT, &g), INSP_AUTH_OK);
    CHECK_EQ_INT(g, INSP_ROLE_INSPECT);
    CHECK_EQ_INT(insp_auth_check(a, "Bearer " INSPECT_KEY, INSP_ROLE_ADMIN, &g),
                 INSP_AUTH_FORBIDDEN);
    CHECK_EQ_INT(g, INSP_ROLE_INSPECT);
    /* scheme is case-insensitive; spaces around the token are fine */
    CHECK_EQ_INT(insp_auth_check(a, "  bEaReR \t " INSPECT_KEY "  ", INSP_ROLE_INSPECT, NULL),
                 INSP_AUTH_OK);
    CHECK_EQ_INT(insp_auth_check(a, "Bearer " ADMIN_KEY, INSP_ROLE_NONE, NULL), INSP_AUTH_OK);
    insp_auth_free(a);
}

static void bad_headers(void)
{
    insp_auth *a = make_auth(INSP_AUTH_MODE_KEYS, 1);
    REQUIRE(a);
    const char *bad[] = {
        "",
        "Bearer",
        "Bearer ",
        "Bearer" ADMIN_KEY,
        "Basic " ADMIN_KEY,
        ADMIN_KEY,
        "Bearer " ADMIN_KEY "x",
        "Bearer adm-0123456789abcdef0123456789abcde", /* a prefix of the admin key */
        "Bearer ADM-0123456789ABCDEF0123456789ABCDEF",
        "Bearer " ADMIN_KEY " " INSPECT_KEY,
        "Bearer wrong-key-but-long-enough-0000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int g = -1;
        CHECK_MSG(insp_auth_check(a, bad[i], INSP_ROLE_INSPECT, &g) == INSP_AUTH_UNAUTHENTICATED,
                  "header '%s' accepted", bad[i]);
        CHECK_EQ_INT(g, INSP_ROLE_NONE);
    }
    insp_auth_free(a);
    insp_auth_free(NULL);
}

static void auth_off(void)
{
    /* no keys configured: the config allows only loopback then, and everything passes */
    insp_auth *a = make_auth(INSP_AUTH_MODE_KEYS, 0);
    REQUIRE(a);
    CHECK(!insp_auth_required(a));
    int g = -1;
    CHECK_EQ_INT(insp_auth_check(a, NULL, INSP_ROLE_ADMIN, &g), INSP_AUTH_OK);
    CHECK_EQ_INT(g, INSP_ROLE_ADMIN);
    insp_auth_free(a);
    /* auth: none ignores configured keys */
    a = make_auth(INSP_AUTH_MODE_NONE, 1);
    REQUIRE(a);
    CHECK(!insp_auth_required(a));
    CHECK_EQ_INT(insp_auth_check(a, "Basic garbage", INSP_ROLE_ADMIN, NULL), INSP_AUTH_OK);
    insp_auth_free(a);
}

static void key_shapes(void)
{
    insp_error e;
    CHECK_OK(insp_auth_key_check(ADMIN_KEY, &e));
    CHECK_OK(insp_auth_key_check(INSPECT_KEY, &e));
    CHECK_EQ_INT(insp_auth_key_check("short-key", &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "at least 16") != NULL);
    CHECK(strstr(e.msg, "short-key") == NULL);
    CHECK_EQ_INT(insp_auth_key_check("has a space in the middle", &e), INSP_ERR_INVALID);
    CHECK(strstr(e.msg, "position 4") != NULL);
    CHECK(strstr(e.msg, "has a space") == NULL);
    CHECK_EQ_INT(insp_auth_key_check("equals=in-the-middle-x", &e), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_auth_key_check("================", &e), INSP_ERR_INVALID);
    CHECK_EQ_INT(insp_auth_key_check(NULL, &e), INSP_ERR_INVALID);
    char long_key[600];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    CHECK_EQ_INT(insp_auth_key_check(long_key, &e), INSP_ERR_INVALID);
    long_key[512] = '\0';
    CHECK_OK(insp_auth_key_check(long_key, &e));
}

static void fingerprint(void)
{
    char fp[INSP_AUTH_FINGERPRINT_LEN];
    /* SHA-256("abc") = ba7816bf 8f01cfea ... (FIPS 180-2 test vector) */
    insp_auth_fingerprint("abc", fp);
    CHECK_MSG(strcmp(fp, "sha256:ba7816bf8f01cfea") == 0, "fp = %s", fp);
    char fp2[INSP_AUTH_FINGERPRINT_LEN];
    insp_auth_fingerprint(ADMIN_KEY, fp2);
    CHECK(strstr(fp2, "adm-") == NULL && strlen(fp2) == 23);
}

TEST_MAIN(T(roles), T(keys_and_roles), T(bad_headers), T(auth_off), T(key_shapes),
          T(fingerprint))
