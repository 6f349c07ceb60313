/* Standard base64 (RFC 4648 §4, padded): how maps travel inside JSON responses. */
#include <stdint.h>
#include <stdlib.h>

#include "inspectd/image.h"

char *insp_base64_encode(const void *data, size_t len, size_t *out_len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (out_len)
        *out_len = 0;
    if (!data && len)
        return NULL;
    if (len / 3 >= (SIZE_MAX - 1) / 4)
        return NULL;
    size_t n = (len + 2) / 3 * 4;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    const uint8_t *p = data;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        s[o++] = alphabet[v >> 18];
        s[o++] = alphabet[(v >> 12) & 63];
        s[o++] = alphabet[(v >> 6) & 63];
        s[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        s[o++] = alphabet[v >> 18];
        s[o++] = alphabet[(v >> 12) & 63];
        s[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        s[o++] = '=';
    }
    s[o] = '\0';
    if (out_len)
        *out_len = o;
    return s;
}
