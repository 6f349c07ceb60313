/* The on-disk form of a stored product (product.json): parsing with strict validation,
 * writing, and the small checks on names and hashes that the rest of the store shares. */
#include "store/product_file.h"

#include <errno.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "store/fsutil.h"

#define PRODUCT_JSON_MAX (4u * 1024 * 1024)
#define STORE_FORMAT 1

void insp_sha256_hex(const void *data, size_t len, char hex[65])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, sizeof d, d);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
}

void insp_pf_now_iso(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    int ms = (int)(ts.tv_nsec / 1000000) % 1000;
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
}

bool insp_pf_sha_hex_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 64;
}

/* "refs/<name>" with a plain file name we could have written. */
bool insp_pf_ref_file_valid(const char *f)
{
    if (strncmp(f, "refs/", 5) != 0)
        return false;
    const char *name = f + 5;
    size_t n = strlen(name);
    if (n == 0 || n > 40 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* "image/png" -> "png", "image/jpeg" -> "jpg"; NULL for anything else. */
const char *insp_pf_image_ext(const char *content_type, const char **canonical)
{
    if (!content_type)
        return NULL;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    if (n == 9 && strncasecmp(content_type, "image/png", 9) == 0) {
        *canonical = "image/png";
        return "png";
    }
    if ((n == 10 && strncasecmp(content_type, "image/jpeg", 10) == 0) ||
        (n == 9 && strncasecmp(content_type, "image/jpg", 9) == 0)) {
        *canonical = "image/jpeg";
        return "jpg";
    }
    return NULL;
}

void insp_stored_product_free(insp_stored_product *p)
{
    if (!p)
        return;
    insp_product_def_free(&p->def);
    free(p->refs);
    free(p);
}

/* ---- product.json <-> insp_stored_product ---- */

static json_t *stored_to_json(const insp_stored_product *p)
{
    json_t *refs = json_array();
    json_t *o = json_object();
    json_t *def = insp_product_def_to_json(&p->def);
    if (!refs || !o || !def) {
        json_decref(refs);
        json_decref(o);
        json_decref(def);
        return NULL;
    }
    int bad = 0;
    for (int i = 0; i < p->n_refs; i++) {
        const insp_stored_ref *r = &p->refs[i];
        json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:s}", "file", r->file, "content_type",
                              r->content_type, "sha256", r->sha256, "size", (json_int_t)r->size,
                              "added", r->added);
        bad |= json_array_append_new(refs, e);
    }
    bad |= json_object_set_new(o, "format", json_integer(STORE_FORMAT));
    bad |= json_object_set_new(o, "definition", def);
    bad |= json_object_set_new(o, "references", refs);
    bad |= json_object_set_new(o, "created", json_string(p->created));
    bad |= json_object_set_new(o, "updated", json_string(p->updated));
    bad |= json_object_set_new(o, "version", json_integer(p->version));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Copies a string member of at most cap-1 bytes into out. */
static int get_str(json_t *o, const char *key, char *out, size_t cap, const char *path,
                   const char *where, insp_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: %s%s: missing or not a string", path,
                              where, key);
    if (json_string_length(v) >= cap)
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: %s%s: too long", path, where, key);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return INSP_OK;
}

static int parse_ref(json_t *e, insp_stored_ref *r, const char *path, int i, insp_error *err)
{
    char where[48];
    snprintf(where, sizeof where, "references[%d].", i);
    if (!json_is_object(e))
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: references[%d]: not an object", path,
                              i);
    int st = get_str(e, "file", r->file, sizeof r->file, path, where, err);
    if (!st)
        st = get_str(e, "content_type", r->content_type, sizeof r->content_type, path, where,
                     err);
    if (!st)
        st = get_str(e, "sha256", r->sha256, sizeof r->sha256, path, where, err);
    if (!st)
        st = get_str(e, "added", r->added, sizeof r->added, path, where, err);
    if (st)
        return st;
    const char *canonical;
    if (!insp_pf_ref_file_valid(r->file))
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: %sfile: \"%s\" is not refs/<name>", path,
                              where, r->file);
    if (!insp_pf_image_ext(r->content_type, &canonical) || strcmp(canonical, r->content_type) != 0)
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: %scontent_type: \"%s\" unsupported",
                              path, where, r->content_type);
    if (!insp_pf_sha_hex_valid(r->sha256))
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: %ssha256: not 64 lowercase hex digits",
                              path, where);
    json_t *size = json_object_get(e, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 1 ||
        json_integer_value(size) > (json_int_t)INSP_STORE_MAX_REF_BYTES)
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: %ssize: missing or out of range", path,
                              where);
    r->size = (size_t)json_integer_value(size);
    return INSP_OK;
}

/* Parses a product.json's text; path is only for messages. Every error is INSP_ERR_FORMAT
 * (or NOMEM): stored data that does not validate is damaged data. */
static int parse_stored(const char *text, size_t len, const char *id, const char *path,
                        insp_stored_product **out, insp_error *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s",
                              path, jerr.line, jerr.column, jerr.text);
    insp_stored_product *p = calloc(1, sizeof *p);
    int st = p ? INSP_OK : insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", path);
    if (!st && !json_is_object(root))
        st = insp_error_set(err, INSP_ERR_FORMAT, "%s: not a JSON object", path);
    if (!st) {
        snprintf(p->id, sizeof p->id, "%s", id);
        json_t *format = json_object_get(root, "format");
        if (format && (!json_is_integer(format) || json_integer_value(format) != STORE_FORMAT))
            st = insp_error_set(err, INSP_ERR_FORMAT,
                                "%s: format: this build reads format %d only", path,
                                STORE_FORMAT);
    }
    if (!st) {
        insp_error derr;
        insp_error_clear(&derr);
        int ds = insp_product_def_from_json(json_object_get(root, "definition"), &p->def, &derr);
        if (ds)
            st = insp_error_set(err, ds == INSP_ERR_NOMEM ? ds : INSP_ERR_FORMAT, "%s: %s", path,
                                derr.msg);
    }
    json_t *refs = st ? NULL : json_object_get(root, "references");
    if (!st && !json_is_array(refs))
        st = insp_error_set(err, INSP_ERR_FORMAT, "%s: references: missing or not an array",
                            path);
    if (!st && json_array_size(refs) > 1024)
        st = insp_error_set(err, INSP_ERR_FORMAT, "%s: references: %zu entries", path,
                            json_array_size(refs));
    if (!st) {
        size_t n = json_array_size(refs);
        p->refs = calloc(n ? n : 1, sizeof *p->refs);
        if (!p->refs)
            st = insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", path);
        for (size_t i = 0; !st && i < n; i++) {
            st = parse_ref(json_array_get(refs, i), &p->refs[i], path, (int)i, err);
            for (size_t j = 0; !st && j < i; j++)
                if (strcmp(p->refs[j].file, p->refs[i].file) == 0)
                    st = insp_error_set(err, INSP_ERR_FORMAT,
                                        "%s: references[%zu]: file %s listed twice", path, i,
                                        p->refs[i].file);
            if (!st)
                p->n_refs = (int)i + 1;
        }
    }
    if (!st)
        st = get_str(root, "created", p->created, sizeof p->created, path, "", err);
    if (!st)
        st = get_str(root, "updated", p->updated, sizeof p->updated, path, "", err);
    if (!st) {
        json_t *v = json_object_get(root, "version");
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            st = insp_error_set(err, INSP_ERR_FORMAT, "%s: version: missing or not >= 1", path);
        else
            p->version = json_integer_value(v);
    }
    json_decref(root);
    if (st) {
        insp_stored_product_free(p);
        return st;
    }
    *out = p;
    return INSP_OK;
}

/* Reads products_dir/<id>/product.json. INSP_ERR_NOT_FOUND only when the product folder does
 * not exist; a folder without a readable product.json is INSP_ERR_FORMAT. */
int insp_pf_read(const char *products_dir, const char *id, insp_stored_product **out,
                        insp_error *err)
{
    *out = NULL;
    char dir[PATH_MAX], path[PATH_MAX];
    int st = insp_fs_path(dir, sizeof dir, err, "%s/%s", products_dir, id);
    if (!st)
        st = insp_fs_path(path, sizeof path, err, "%s/product.json", dir);
    if (st)
        return st;
    void *text;
    size_t len;
    st = insp_fs_read_file(path, PRODUCT_JSON_MAX, &text, &len, err);
    if (st == INSP_ERR_NOT_FOUND) {
        struct stat sb;
        if (stat(dir, &sb) != 0 && errno == ENOENT)
            return insp_error_set(err, INSP_ERR_NOT_FOUND, "product %s: not found", id);
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: missing", path);
    }
    if (st == INSP_ERR_TOO_LARGE)
        return insp_error_set(err, INSP_ERR_FORMAT, "%s: larger than %u bytes", path,
                              PRODUCT_JSON_MAX);
    if (st)
        return st;
    st = parse_stored(text, len, id, path, out, err);
    free(text);
    return st;
}

/* Every listed reference file exists with its recorded size (hashes are checked on read). */
int insp_pf_check_ref_files(const char *products_dir, const insp_stored_product *p,
                           insp_error *err)
{
    for (int i = 0; i < p->n_refs; i++) {
        char path[PATH_MAX];
        int st = insp_fs_path(path, sizeof path, err, "%s/%s/%s", products_dir, p->id,
                              p->refs[i].file);
        if (st)
            return st;
        struct stat sb;
        if (stat(path, &sb) != 0)
            return insp_error_set(err, INSP_ERR_FORMAT, "%s: listed reference %d: %s", path, i,
                                  strerror(errno));
        if (!S_ISREG(sb.st_mode) || (unsigned long long)sb.st_size != p->refs[i].size)
            return insp_error_set(err, INSP_ERR_FORMAT,
                                  "%s: listed reference %d: %lld bytes, product.json says %zu",
                                  path, i, (long long)sb.st_size, p->refs[i].size);
    }
    return INSP_OK;
}

/* product.json's text (malloc'ed, newline-terminated). */
static char *dump_product(const insp_stored_product *p, size_t *len)
{
    json_t *j = stored_to_json(p);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return NULL;
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    *len = n + 1;
    return withnl;
}

/* Writes p as path (atomically). */
int insp_pf_write(const char *path, const insp_stored_product *p, bool *renamed,
                         insp_error *err)
{
    size_t len;
    char *text = dump_product(p, &len);
    if (!text)
        return insp_error_set(err, INSP_ERR_NOMEM, "%s: out of memory", path);
    int st = insp_fs_write_atomic(path, text, len, 0, renamed, err);
    free(text);
    return st;
}

int insp_pf_copy(const insp_stored_product *src, insp_stored_product **out,
                        insp_error *err)
{
    insp_stored_product *p = calloc(1, sizeof *p);
    if (p) {
        *p = *src;
        memset(&p->def, 0, sizeof p->def);
        p->refs = calloc(src->n_refs ? (size_t)src->n_refs : 1, sizeof *p->refs);
    }
    if (!p || !p->refs || insp_product_def_copy(&src->def, &p->def) != INSP_OK) {
        if (p)
            free(p->refs);
        free(p);
        return insp_error_set(err, INSP_ERR_NOMEM, "product %s: out of memory", src->id);
    }
    if (src->n_refs)
        memcpy(p->refs, src->refs, (size_t)src->n_refs * sizeof *p->refs);
    *out = p;
    return INSP_OK;
}
