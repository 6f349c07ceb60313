/* Streams a file through nettle's SHA-256 for the model checksum. */
#include "clip/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)

int insp_sha256_file(const char *path, char hex[65], insp_error *err)
{
    hex[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return insp_error_set(err, errno == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory for the hash buffer", path);
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    for (;;) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return insp_error_set(err, INSP_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        sha256_update(&ctx, (size_t)r, buf);
    }
    free(buf);
    close(fd);

    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof digest, digest);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof digest; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
    return INSP_OK;
}
