/* API-key authentication: `Authorization: Bearer <key>` checked against every configured
 * key in constant time, with two roles. The HTTP layer decides which role a route needs. */
#ifndef INSPECTD_DAEMON_AUTH_H
#define INSPECTD_DAEMON_AUTH_H

#include "inspectd/status.h"

struct insp_config;

typedef enum insp_role {
    INSP_ROLE_NONE = 0,    /* no valid key */
    INSP_ROLE_INSPECT = 1, /* inspect and read: GET routes, POST .../inspect */
    INSP_ROLE_ADMIN = 2,   /* everything, including product and reference changes */
} insp_role;

typedef enum insp_auth_result {
    INSP_AUTH_OK = 0,              /* allowed */
    INSP_AUTH_UNAUTHENTICATED = 1, /* no key, malformed header or unknown key -> 401 */
    INSP_AUTH_FORBIDDEN = 2,       /* a valid key whose role is too low -> 403 */
} insp_auth_result;

typedef struct insp_auth insp_auth;

/* "inspect"/"admin" -> role (INSP_OK), INSP_ERR_INVALID otherwise. */
int insp_role_parse(const char *name, int *role);
/* "inspect", "admin", or "none". Never NULL. */
const char *insp_role_name(int role);

/* Builds the checker from a validated config (insp_config_validate has merged the keys
 * file into cfg->keys). Authentication is off — every request allowed, as admin — when
 * cfg->auth_mode is none or no key is configured (the config then only allows a loopback
 * listen address). Keys are kept only as SHA-256 digests. INSP_OK or INSP_ERR_NOMEM;
 * free with insp_auth_free (NULL is a harmless no-op). */
int insp_auth_create(const struct insp_config *cfg, insp_auth **out, insp_error *err);
void insp_auth_free(insp_auth *auth);

/* Whether requests need a key at all (0 when authentication is off). */
int insp_auth_required(const insp_auth *auth);

/* Checks an Authorization header value (NULL when the request had none) against the role
 * a route needs. "Bearer" is matched case-insensitively; the key is compared with every
 * configured key through fixed-length digests and a constant-time comparison, so timing
 * does not tell which key or how much of one matched. *granted (if non-NULL) gets the
 * key's role (INSP_ROLE_NONE when unauthenticated). A 401 answer should carry
 * `WWW-Authenticate: Bearer`. */
insp_auth_result insp_auth_check(const insp_auth *auth, const char *authorization,
                                 int required_role, int *granted);

/* Checks a key's shape: 16..512 characters of the Bearer token alphabet (letters, digits,
 * - . _ ~ + / and trailing =). INSP_OK or INSP_ERR_INVALID with a reason in err that never
 * contains the key itself. */
int insp_auth_key_check(const char *key, insp_error *err);

/* "sha256:" + the first 16 hex digits of the key's SHA-256: names a key in logs without
 * revealing it. out must hold INSP_AUTH_FINGERPRINT_LEN bytes. */
#define INSP_AUTH_FINGERPRINT_LEN 24
void insp_auth_fingerprint(const char *key, char out[INSP_AUTH_FINGERPRINT_LEN]);

#endif
