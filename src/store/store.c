/* The product store's operations. product.json is the single commit point of a product:
 * every other file is written (fsync + rename) before the product.json that lists it, and
 * removed only after a product.json that no longer lists it, so a crash leaves the old or the
 * new state plus leftovers that insp_store_open removes. */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/fsutil.h"
#include "store/product_file.h"
#include "store/store_internal.h"

#define REF_NAME_HEX 16

/* Takes the process mutex and the product's flock; *fd is released by insp_store_unlock. */
int insp_store_lock(insp_store *s, const char *id, int *fd, insp_error *err)
{
    *fd = -1;
    int st = insp_product_id_check(id, err);
    if (st)
        return st;
    char path[PATH_MAX];
    st = insp_fs_path(path, sizeof path, err, "%s/%s.lock", s->locks, id);
    if (st)
        return st;
    pthread_mutex_lock(&s->mu);
    int f = insp_fs_open_locked(path, O_CREAT);
    if (f < 0) {
        int e = errno;
        pthread_mutex_unlock(&s->mu);
        return insp_error_set(err, INSP_ERR_IO, "%s: cannot open and lock: %s", path,
                              strerror(e));
    }
    *fd = f;
    return INSP_OK;
}

void insp_store_unlock(insp_store *s, int fd)
{
    if (fd < 0)
        return;
    close(fd); /* releases the flock */
    pthread_mutex_unlock(&s->mu);
}

/* Commits p as products/<id>/product.json (an existing folder). */
static int commit_product(insp_store *s, const insp_stored_product *p, bool *renamed,
                          insp_error *err)
{
    char path[PATH_MAX];
    int st = insp_fs_path(path, sizeof path, err, "%s/%s/product.json", s->products, p->id);
    return st ? st : insp_pf_write(path, p, renamed, err);
}

int insp_store_open(const char *state_dir, insp_store **out, insp_error *err)
{
    *out = NULL;
    if (!state_dir || !state_dir[0])
        return insp_error_set(err, INSP_ERR_INVALID, "store: empty state directory");
    insp_store *s = calloc(1, sizeof *s);
    if (!s)
        return insp_error_set(err, INSP_ERR_NOMEM, "store: out of memory");
    int st = insp_fs_path(s->root, sizeof s->root, err, "%s", state_dir);
    if (!st)
        st = insp_fs_path(s->products, sizeof s->products, err, "%s/products", state_dir);
    if (!st)
        st = insp_fs_path(s->locks, sizeof s->locks, err, "%s/locks", state_dir);
    if (!st)
        st = insp_fs_mkdir(s->root, 0750, true, err);
    if (!st)
        st = insp_fs_mkdir(s->products, 0750, false, err);
    if (!st)
        st = insp_fs_mkdir(s->locks, 0750, false, err);
    if (!st && access(s->products, W_OK | X_OK) != 0)
        st = insp_error_set(err, INSP_ERR_IO, "%s: not writable: %s", s->products,
                            strerror(errno));
    if (st) {
        free(s);
        return st;
    }
    pthread_mutex_init(&s->mu, NULL);
    insp_store_clean(s);
    *out = s;
    return INSP_OK;
}

void insp_store_close(insp_store *store)
{
    if (!store)
        return;
    pthread_mutex_destroy(&store->mu);
    free(store);
}

const char *insp_store_dir(const insp_store *store)
{
    return store->root;
}

static int skip_dots(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int insp_store_load_all(insp_store *store, insp_store_product_cb on_product,
                        insp_store_bad_cb on_bad, void *user, insp_error *err)
{
    struct dirent **names;
    int n = scandir(store->products, &names, skip_dots, alphasort);
    if (n < 0)
        return insp_error_set(err, INSP_ERR_IO, "%s: listing failed: %s", store->products,
                              strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *id = names[i]->d_name;
        insp_error why;
        insp_error_clear(&why);
        insp_stored_product *p = NULL;
        int st = insp_product_id_check(id, &why);
        if (st) {
            insp_error_prefix(&why, "%s/%s: ignored: ", store->products, id);
        } else {
            /* A reference missing may be a change committed between our two reads: retry
             * once with the newer product.json. */
            for (int attempt = 0; attempt < 2; attempt++) {
                insp_stored_product_free(p);
                p = NULL;
                st = insp_pf_read(store->products, id, &p, &why);
                if (!st)
                    st = insp_pf_check_ref_files(store->products, p, &why);
                if (st != INSP_ERR_FORMAT)
                    break;
            }
        }
        if (st == INSP_ERR_NOT_FOUND) {
            /* deleted since we listed it */
        } else if (st) {
            if (on_bad)
                on_bad(id, &why, user);
        } else if (on_product) {
            on_product(id, p, user);
        }
        insp_stored_product_free(p);
        free(names[i]);
    }
    free(names);
    return INSP_OK;
}

int insp_store_list(insp_store *store, char ***ids, int *n_ids, insp_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    struct dirent **names;
    int n = scandir(store->products, &names, skip_dots, alphasort);
    if (n < 0)
        return insp_error_set(err, INSP_ERR_IO, "%s: listing failed: %s", store->products,
                              strerror(errno));
    char **out = calloc(n ? (size_t)n : 1, sizeof *out);
    int k = 0, st = out ? INSP_OK : INSP_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        if (!st && insp_product_id_valid(names[i]->d_name)) {
            out[k] = strdup(names[i]->d_name);
            if (out[k])
                k++;
            else
                st = INSP_ERR_NOMEM;
        }
        free(names[i]);
    }
    free(names);
    if (st) {
        insp_store_ids_free(out, k);
        return insp_error_set(err, st, "store: out of memory listing products");
    }
    *ids = out;
    *n_ids = k;
    return INSP_OK;
}

void insp_store_ids_free(char **ids, int n)
{
    if (!ids)
        return;
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

int insp_store_get(insp_store *store, const char *id, insp_stored_product **out,
                   insp_error *err)
{
    *out = NULL;
    int st = insp_product_id_check(id, err);
    return st ? st : insp_pf_read(store->products, id, out, err);
}

/* A new product: its folder is built under a hidden name and renamed into place, so that
 * products/<id> never exists without a product.json. */
static int create_product(insp_store *s, const insp_stored_product *p, insp_error *err)
{
    char rnd[INSP_STORE_RAND_LEN + 1], tmpdir[PATH_MAX], final[PATH_MAX], path[PATH_MAX];
    int st = insp_fs_random_hex(rnd, INSP_STORE_RAND_LEN, err);
    if (!st)
        st = insp_fs_path(tmpdir, sizeof tmpdir, err, "%s/" INSP_STORE_NEW_PREFIX "%s-%s", s->products, rnd,
                          p->id);
    if (!st)
        st = insp_fs_path(final, sizeof final, err, "%s/%s", s->products, p->id);
    if (!st)
        st = insp_fs_path(path, sizeof path, err, "%s/product.json", tmpdir);
    if (st)
        return st;
    st = insp_fs_mkdir(tmpdir, 0750, false, err);
    if (st)
        return st;
    st = insp_pf_write(path, p, NULL, err);
    if (!st)
        st = insp_fs_rename(tmpdir, final, err);
    if (st) {
        struct stat sb;
        /* Only when the rename did not happen: after it, the product exists. */
        if (stat(tmpdir, &sb) == 0)
            insp_fs_remove_tree(tmpdir, NULL);
    }
    return st;
}

/* What is committed must load again: the definition goes through the same validation as a
 * request body (a caller may have built or edited it by hand). */
static int check_def(const insp_product_def *def, insp_error *err)
{
    if (!def)
        return insp_error_set(err, INSP_ERR_INVALID, "definition: none given");
    json_t *j = insp_product_def_to_json(def);
    if (!j)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "definition: cannot be written as JSON (threshold not a number?)");
    insp_product_def back;
    int st = insp_product_def_from_json(j, &back, err);
    json_decref(j);
    insp_product_def_free(&back);
    if (st && err)
        insp_error_prefix(err, "definition: ");
    return st;
}

int insp_store_put(insp_store *store, const char *id, const insp_product_def *def,
                   bool *created, insp_stored_product **out, insp_error *err)
{
    if (created)
        *created = false;
    if (out)
        *out = NULL;
    int st = check_def(def, err);
    if (st)
        return st;
    int fd;
    st = insp_store_lock(store, id, &fd, err);
    if (st)
        return st;
    insp_stored_product *p = NULL;
    insp_error rerr;
    insp_error_clear(&rerr);
    st = insp_pf_read(store->products, id, &p, &rerr);
    if (st == INSP_ERR_NOT_FOUND) {
        p = calloc(1, sizeof *p);
        st = p ? INSP_OK : insp_error_set(err, INSP_ERR_NOMEM, "product %s: out of memory", id);
        if (!st) {
            snprintf(p->id, sizeof p->id, "%s", id);
            insp_pf_now_iso(p->created);
            memcpy(p->updated, p->created, sizeof p->updated);
            p->version = 1;
            st = insp_product_def_copy(def, &p->def);
            if (st)
                insp_error_set(err, st, "product %s: out of memory", id);
        }
        if (!st)
            st = create_product(store, p, err);
        if (!st && created)
            *created = true;
    } else if (st == INSP_ERR_FORMAT) {
        st = insp_error_set(err, INSP_ERR_CONFLICT,
                            "product %s exists but cannot be read (%s); delete it first", id,
                            rerr.msg);
    } else if (st) {
        if (err)
            *err = rerr;
    } else {
        insp_product_def nd;
        st = insp_product_def_copy(def, &nd);
        if (st) {
            insp_error_set(err, st, "product %s: out of memory", id);
        } else {
            insp_product_def_free(&p->def);
            p->def = nd;
            p->version++;
            insp_pf_now_iso(p->updated);
            st = commit_product(store, p, NULL, err);
        }
    }
    insp_store_unlock(store, fd);
    if (!st && out)
        st = insp_pf_copy(p, out, err);
    insp_stored_product_free(p);
    return st;
}

int insp_store_delete(insp_store *store, const char *id, insp_error *err)
{
    int fd;
    int st = insp_store_lock(store, id, &fd, err);
    if (st)
        return st;
    char dir[PATH_MAX], trash[PATH_MAX], rnd[INSP_STORE_RAND_LEN + 1];
    st = insp_fs_path(dir, sizeof dir, err, "%s/%s", store->products, id);
    if (!st)
        st = insp_fs_random_hex(rnd, INSP_STORE_RAND_LEN, err);
    if (!st)
        st = insp_fs_path(trash, sizeof trash, err, "%s/" INSP_STORE_TRASH_PREFIX "%s-%s", store->products,
                          rnd, id);
    struct stat sb;
    if (!st && lstat(dir, &sb) != 0)
        st = errno == ENOENT ? insp_error_set(err, INSP_ERR_NOT_FOUND, "product %s: not found", id)
                             : insp_error_set(err, INSP_ERR_IO, "%s: stat failed: %s", dir,
                                              strerror(errno));
    if (!st) {
        st = insp_fs_rename(dir, trash, err); /* the commit point of a delete */
        /* Even when only the directory fsync after the rename failed, the product is gone
         * from view: remove it. Whatever stays is removed at the next open. */
        if (!st || lstat(trash, &sb) == 0)
            insp_fs_remove_tree(trash, NULL);
    }
    insp_store_unlock(store, fd);
    return st;
}

static int validate_uploads(const char *id, int n, const insp_ref_upload *uploads,
                            insp_error *err)
{
    if (n < 1 || !uploads)
        return insp_error_set(err, INSP_ERR_INVALID, "product %s: no reference image given", id);
    if (n > INSP_STORE_MAX_REFS)
        return insp_error_set(err, INSP_ERR_TOO_LARGE,
                              "product %s: %d reference images, at most %d allowed", id, n,
                              INSP_STORE_MAX_REFS);
    for (int i = 0; i < n; i++) {
        const char *canonical;
        if (!uploads[i].data || uploads[i].len == 0)
            return insp_error_set(err, INSP_ERR_INVALID, "reference image %d: empty", i + 1);
        if (uploads[i].len > INSP_STORE_MAX_REF_BYTES)
            return insp_error_set(err, INSP_ERR_TOO_LARGE,
                                  "reference image %d: %zu bytes, at most %u allowed", i + 1,
                                  uploads[i].len, INSP_STORE_MAX_REF_BYTES);
        if (!insp_pf_image_ext(uploads[i].content_type, &canonical))
            return insp_error_set(err, INSP_ERR_UNSUPPORTED,
                                  "reference image %d: content type \"%.60s\" is not image/png "
                                  "or image/jpeg",
                                  i + 1, uploads[i].content_type ? uploads[i].content_type : "");
    }
    return INSP_OK;
}

/* Writes one image under a fresh name refs/<16 hex>.<ext> (never replacing a file). */
static int write_ref_file(insp_store *s, const char *id, const insp_ref_upload *u,
                          insp_stored_ref *r, insp_error *err)
{
    const char *canonical, *ext = insp_pf_image_ext(u->content_type, &canonical);
    for (int attempt = 0;; attempt++) {
        char rnd[REF_NAME_HEX + 1], path[PATH_MAX];
        int st = insp_fs_random_hex(rnd, REF_NAME_HEX, err);
        if (st)
            return st;
        snprintf(r->file, sizeof r->file, "refs/%s.%s", rnd, ext);
        st = insp_fs_path(path, sizeof path, err, "%s/%s/%s", s->products, id, r->file);
        if (!st)
            st = insp_fs_write_atomic(path, u->data, u->len,
                                      INSP_FS_NOREPLACE | INSP_FS_NO_DIRSYNC, NULL, err);
        if (st != INSP_ERR_CONFLICT || attempt == 3)
            return st;
    }
}

int insp_store_add_references(insp_store *store, const char *id, int n,
                              const insp_ref_upload *uploads, int *new_count, insp_error *err)
{
    if (new_count)
        *new_count = 0;
    int st = insp_product_id_check(id, err);
    if (!st)
        st = validate_uploads(id, n, uploads, err);
    if (st)
        return st;
    int fd;
    st = insp_store_lock(store, id, &fd, err);
    if (st)
        return st;
    insp_stored_product *p = NULL;
    insp_stored_ref *refs = NULL, *newlist = NULL;
    int old_n = 0, written = 0;
    bool committed = false;
    char dir[PATH_MAX];
    st = insp_pf_read(store->products, id, &p, err);
    if (!st && p->n_refs + n > INSP_STORE_MAX_REFS)
        st = insp_error_set(err, INSP_ERR_TOO_LARGE,
                            "product %s: %d references + %d new would exceed the limit of %d", id,
                            p->n_refs, n, INSP_STORE_MAX_REFS);
    if (!st) {
        old_n = p->n_refs;
        refs = newlist = calloc((size_t)(old_n + n), sizeof *refs);
        if (!refs)
            st = insp_error_set(err, INSP_ERR_NOMEM, "product %s: out of memory", id);
    }
    if (!st) {
        memcpy(refs, p->refs, (size_t)old_n * sizeof *refs);
        char added[32];
        insp_pf_now_iso(added);
        for (int i = 0; i < n; i++) {
            insp_stored_ref *r = &refs[old_n + i];
            const char *canonical;
            insp_pf_image_ext(uploads[i].content_type, &canonical);
            snprintf(r->content_type, sizeof r->content_type, "%s", canonical);
            insp_sha256_hex(uploads[i].data, uploads[i].len, r->sha256);
            r->size = uploads[i].len;
            memcpy(r->added, added, sizeof r->added);
            for (int j = 0; j < old_n + i && !st; j++)
                if (strcmp(refs[j].sha256, r->sha256) == 0)
                    st = j < old_n ? insp_error_set(err, INSP_ERR_CONFLICT,
                                                    "reference image %d: identical to stored "
                                                    "reference %d (sha256 %.12s...)",
                                                    i + 1, j + 1, r->sha256)
                                   : insp_error_set(err, INSP_ERR_CONFLICT,
                                                    "reference image %d: identical to image %d",
                                                    i + 1, j - old_n + 1);
            if (st)
                break;
        }
    }
    if (!st)
        st = insp_fs_path(dir, sizeof dir, err, "%s/%s/refs", store->products, id);
    if (!st)
        st = insp_fs_mkdir(dir, 0750, false, err);
    for (int i = 0; !st && i < n; i++) {
        st = write_ref_file(store, id, &uploads[i], &refs[old_n + i], err);
        if (!st)
            written = i + 1;
    }
    if (!st)
        st = insp_fs_sync_dir(dir, err);
    if (!st) {
        insp_stored_ref *old = p->refs;
        p->refs = refs;
        p->n_refs = old_n + n;
        p->version++;
        insp_pf_now_iso(p->updated);
        refs = old; /* freed below; p owns newlist now */
        st = commit_product(store, p, &committed, err);
        if (!st && new_count)
            *new_count = p->n_refs;
    }
    if (st && !committed) {
        /* Not listed anywhere: remove now rather than leaving them to the next open. */
        for (int i = 0; i < written; i++) {
            char path[PATH_MAX];
            if (insp_fs_path(path, sizeof path, NULL, "%s/%s/%s", store->products, id,
                             newlist[old_n + i].file) == INSP_OK)
                insp_fs_unlink(path, NULL);
        }
    }
    insp_store_unlock(store, fd);
    free(refs);
    insp_stored_product_free(p);
    return st;
}

int insp_store_clear_references(insp_store *store, const char *id, insp_error *err)
{
    int fd;
    int st = insp_store_lock(store, id, &fd, err);
    if (st)
        return st;
    insp_stored_product *p = NULL;
    st = insp_pf_read(store->products, id, &p, err);
    if (!st && p->n_refs > 0) {
        p->n_refs = 0;
        p->version++;
        insp_pf_now_iso(p->updated);
        bool committed = false;
        st = commit_product(store, p, &committed, err);
        if (committed) { /* the files are unlisted now; a failure here leaves only orphans */
            char path[PATH_MAX];
            if (insp_fs_path(path, sizeof path, NULL, "%s/%s/refs", store->products, id) == 0)
                insp_fs_remove_tree(path, NULL);
            if (insp_fs_path(path, sizeof path, NULL, "%s/%s/cache", store->products, id) == 0)
                insp_fs_remove_tree(path, NULL);
        }
    }
    insp_store_unlock(store, fd);
    insp_stored_product_free(p);
    return st;
}

int insp_store_read_ref_file(insp_store *store, const char *id, const insp_stored_ref *ref,
                             void **data, size_t *len, insp_error *err)
{
    *data = NULL;
    *len = 0;
    int st = insp_product_id_check(id, err);
    if (!st && !insp_pf_ref_file_valid(ref->file))
        st = insp_error_set(err, INSP_ERR_INVALID, "reference file \"%.60s\": invalid name",
                            ref->file);
    char path[PATH_MAX];
    if (!st)
        st = insp_fs_path(path, sizeof path, err, "%s/%s/%s", store->products, id, ref->file);
    void *buf = NULL;
    size_t n = 0;
    if (!st)
        st = insp_fs_read_file(path, INSP_STORE_MAX_REF_BYTES, &buf, &n, err);
    if (st)
        return st;
    char hex[65];
    insp_sha256_hex(buf, n, hex);
    if (strcmp(hex, ref->sha256) != 0) {
        free(buf);
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "%s: damaged: sha256 %.12s..., product.json says %.12s...", path,
                              hex, ref->sha256);
    }
    *data = buf;
    *len = n;
    return INSP_OK;
}

int insp_store_read_reference(insp_store *store, const char *id, int idx, void **data,
                              size_t *len, insp_error *err)
{
    *data = NULL;
    *len = 0;
    insp_stored_product *p;
    int st = insp_store_get(store, id, &p, err);
    if (st)
        return st;
    if (idx < 0 || idx >= p->n_refs)
        st = insp_error_set(err, INSP_ERR_NOT_FOUND, "product %s: no reference %d (it has %d)",
                            id, idx, p->n_refs);
    else
        st = insp_store_read_ref_file(store, id, &p->refs[idx], data, len, err);
    insp_stored_product_free(p);
    return st;
}
