/* API-key checks (see auth.h). Keys live only as SHA-256 digests: comparing digests of the
 * presented and the stored keys makes every comparison the same length, and looping over
 * all keys without an early exit keeps the time independent of which one matched. */
#include "daemon/auth.h"

#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/config.h"

#define DIGEST_LEN SHA256_DIGEST_SIZE

typedef struct auth_key {
    uint8_t digest[DIGEST_LEN];
    int role;
} auth_key;

struct insp_auth {
    int required;
    auth_key *keys;
    size_t n_keys;
};

int insp_role_parse(const char *name, int *role)
{
    if (name && strcmp(name, "inspect") == 0) {
        *role = INSP_ROLE_INSPECT;
        return INSP_OK;
    }
    if (name && strcmp(name, "admin") == 0) {
        *role = INSP_ROLE_ADMIN;
        return INSP_OK;
    }
    return INSP_ERR_INVALID;
}

const char *insp_role_name(int role)
{
    switch (role) {
    case INSP_ROLE_INSPECT: return "inspect";
    case INSP_ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

static void digest(const char *s, size_t n, uint8_t out[DIGEST_LEN])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, n, (const uint8_t *)s);
    sha256_digest(&ctx, DIGEST_LEN, out);
}

void insp_auth_fingerprint(const char *key, char out[INSP_AUTH_FINGERPRINT_LEN])
{
    uint8_t d[DIGEST_LEN];
    digest(key, strlen(key), d);
    int n = snprintf(out, INSP_AUTH_FINGERPRINT_LEN, "sha256:");
    for (int i = 0; i < 8; i++)
        n += snprintf(out + n, (size_t)(INSP_AUTH_FINGERPRINT_LEN - n), "%02x", d[i]);
}

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int insp_auth_key_check(const char *key, insp_error *err)
{
    size_t n = key ? strlen(key) : 0;
    if (n < 16)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "key is %zu characters long; use at least 16 (for example the "
                              "output of `openssl rand -hex 32`)",
                              n);
    if (n > 512)
        return insp_error_set(err, INSP_ERR_INVALID, "key is %zu characters long; at most 512",
                              n);
    size_t i = 0;
    while (i < n && token_char(key[i]))
        i++;
    size_t body = i;
    while (i < n && key[i] == '=')
        i++;
    if (i != n || body == 0)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "key has a character at position %zu that a Bearer token cannot "
                              "carry (allowed: letters, digits, - . _ ~ + / and trailing =)",
                              i + 1);
    return INSP_OK;
}

int insp_auth_create(const insp_config *cfg, insp_auth **out, insp_error *err)
{
    *out = NULL;
    insp_auth *a = calloc(1, sizeof *a);
    if (!a)
        return insp_error_set(err, INSP_ERR_NOMEM, "auth: out of memory");
    if (cfg->auth_mode == INSP_AUTH_MODE_KEYS && cfg->n_keys > 0) {
        a->keys = calloc(cfg->n_keys, sizeof *a->keys);
        if (!a->keys) {
            free(a);
            return insp_error_set(err, INSP_ERR_NOMEM, "auth: out of memory");
        }
        for (size_t i = 0; i < cfg->n_keys; i++) {
            digest(cfg->keys[i].key, strlen(cfg->keys[i].key), a->keys[i].digest);
            a->keys[i].role = cfg->keys[i].role;
        }
        a->n_keys = cfg->n_keys;
        a->required = 1;
    }
    *out = a;
    return INSP_OK;
}

void insp_auth_free(insp_auth *auth)
{
    if (!auth)
        return;
    free(auth->keys);
    free(auth);
}

int insp_auth_required(const insp_auth *auth)
{
    return auth->required;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

insp_auth_result insp_auth_check(const insp_auth *auth, const char *authorization,
                                 int required_role, int *granted)
{
    if (granted)
        *granted = INSP_ROLE_NONE;
    if (!auth->required) {
        if (granted)
            *granted = INSP_ROLE_ADMIN;
        return INSP_AUTH_OK;
    }
    if (!authorization)
        return INSP_AUTH_UNAUTHENTICATED;
    const char *p = authorization;
    while (is_space(*p))
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || !is_space(p[6]))
        return INSP_AUTH_UNAUTHENTICATED;
    p += 6;
    while (is_space(*p))
        p++;
    size_t n = strlen(p);
    while (n > 0 && is_space(p[n - 1]))
        n--;
    if (n == 0)
        return INSP_AUTH_UNAUTHENTICATED;

    uint8_t d[DIGEST_LEN];
    digest(p, n, d);
    /* No branch on a comparison's result: each key contributes its role through a mask. */
    int role = 0;
    for (size_t i = 0; i < auth->n_keys; i++) {
        int eq = memeql_sec(d, auth->keys[i].digest, DIGEST_LEN) != 0;
        role |= auth->keys[i].role & -eq;
    }
    if (role == INSP_ROLE_NONE)
        return INSP_AUTH_UNAUTHENTICATED;
    if (granted)
        *granted = role;
    return role >= required_role ? INSP_AUTH_OK : INSP_AUTH_FORBIDDEN;
}
