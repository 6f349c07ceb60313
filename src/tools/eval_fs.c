/* Files for inspect-eval: sorted directory listings, whole-file reads and writes, mkdir -p,
 * and masks read as 0/1 whatever their PNG flavour. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "inspectd/image.h"
#include "tools/eval.h"

char *eval_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    size_t at = la;
    if (la && a[la - 1] != '/')
        s[at++] = '/';
    memcpy(s + at, b, lb + 1);
    return s;
}

char *eval_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    memcpy(s, base, len);
    s[len] = '\0';
    return s;
}

bool eval_is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

bool eval_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool eval_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void eval_free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int eval_list_dir(const char *path, bool dirs, char ***names, int *n, insp_error *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return insp_error_set(err, errno == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "%s: cannot open the directory: %s", path, strerror(errno));
    char **v = NULL;
    int count = 0, cap = 0, st = INSP_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *full = eval_path_join(path, e->d_name);
        if (!full) {
            st = INSP_ERR_NOMEM;
            break;
        }
        bool keep = dirs ? eval_is_dir(full) : (eval_is_image_name(e->d_name) && eval_is_file(full));
        free(full);
        if (!keep)
            continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                st = INSP_ERR_NOMEM;
                break;
            }
            v = nv;
        }
        if (!(v[count] = strdup(e->d_name))) {
            st = INSP_ERR_NOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (st) {
        eval_free_names(v, count);
        return insp_error_set(err, st, "%s: out of memory listing the directory", path);
    }
    if (count > 1)
        qsort(v, (size_t)count, sizeof *v, cmp_names);
    *names = v;
    *n = count;
    return INSP_OK;
}

int eval_read_file(const char *path, char **data, size_t *len, insp_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return insp_error_set(err, errno == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "%s: cannot open: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return insp_error_set(err, INSP_ERR_IO, "%s: cannot read (not a regular file?)", path);
    }
    if (size > (1L << 30)) {
        fclose(f);
        return insp_error_set(err, INSP_ERR_TOO_LARGE, "%s: %ld bytes, more than 1 GB", path,
                              size);
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(buf);
        return insp_error_set(err, INSP_ERR_IO, "%s: short read", path);
    }
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    return INSP_OK;
}

int eval_write_file(const char *path, const void *data, size_t len, insp_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return insp_error_set(err, INSP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(data, 1, len, f) == len;
    ok &= fclose(f) == 0;
    return ok ? INSP_OK : insp_error_set(err, INSP_ERR_IO, "%s: write failed", path);
}

int eval_mkdirs(const char *path, insp_error *err)
{
    char *p = strdup(path);
    if (!p)
        return insp_error_set(err, INSP_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            insp_error_set(err, INSP_ERR_IO, "cannot create directory %s: %s", p, strerror(e));
            free(p);
            return INSP_ERR_IO;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    if (!eval_is_dir(path))
        return insp_error_set(err, INSP_ERR_IO, "%s exists and is not a directory", path);
    return INSP_OK;
}

int eval_load_mask(const char *path, uint8_t **mask, int *w, int *h, insp_error *err)
{
    *mask = NULL;
    char *data;
    size_t len;
    int st = eval_read_file(path, &data, &len, err);
    if (st)
        return st;
    insp_image_format fmt;
    int iw, ih;
    st = insp_image_probe(data, len, &fmt, &iw, &ih, err);
    if (st) {
        free(data);
        return insp_error_prefix(err, "mask %s: ", path);
    }
    long n = (long)iw * ih;
    uint8_t *m = malloc((size_t)n);
    if (!m) {
        free(data);
        return insp_error_set(err, INSP_ERR_NOMEM, "mask %s: out of memory", path);
    }
    // Gray PNGs are read at full depth (a 16-bit mask with small labels stays non-zero);
    // palette, colour and JPEG masks go through the RGB decoder.
    uint16_t *px = NULL;
    int gw, gh;
    insp_error ge = {0};
    if (fmt == INSP_IMAGE_PNG && insp_png_decode_gray16(data, len, &px, &gw, &gh, &ge) == INSP_OK) {
        if ((long)gw * gh != n) {
            free(px);
            free(data);
            free(m);
            return insp_error_set(err, INSP_ERR_FORMAT, "mask %s: header and pixels disagree",
                                  path);
        }
        for (long i = 0; i < n; i++)
            m[i] = px[i] != 0;
        free(px);
    } else {
        insp_image img = {0};
        st = insp_image_decode(data, len, 256L * 1000 * 1000, &img, err);
        if (st) {
            free(data);
            free(m);
            return insp_error_prefix(err, "mask %s: ", path);
        }
        for (long i = 0; i < n; i++)
            m[i] = (img.rgb[3 * i] | img.rgb[3 * i + 1] | img.rgb[3 * i + 2]) != 0;
        insp_image_free(&img);
    }
    free(data);
    *mask = m;
    *w = iw;
    *h = ih;
    return INSP_OK;
}
