/* Removal of what crashed writes leave behind (unlisted reference files, temp files, half
 * created or half deleted product folders), run by insp_store_open under each product's
 * lock so that a write in progress in another process is never touched. */
#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/fsutil.h"
#include "store/product_file.h"
#include "store/store_internal.h"

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ref_listed(const insp_stored_product *p, const char *name)
{
    for (int i = 0; i < p->n_refs; i++)
        if (strcmp(p->refs[i].file + 5, name) == 0)
            return true;
    return false;
}

static bool cache_entry_listed(const insp_stored_product *p, const char *name)
{
    size_t n = strlen(name);
    if (n != 64 + 4 || strcmp(name + 64, ".bin") != 0)
        return false;
    for (int i = 0; i < p->n_refs; i++)
        if (strncmp(p->refs[i].sha256, name, 64) == 0)
            return true;
    return false;
}

/* Removes the entries of dir for which keep() is false (best effort). */
static void prune_dir(const char *dir, const insp_stored_product *p,
                      bool (*keep)(const insp_stored_product *, const char *))
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (keep(p, e->d_name))
            continue;
        char path[PATH_MAX];
        if (insp_fs_path(path, sizeof path, NULL, "%s/%s", dir, e->d_name) == INSP_OK)
            insp_fs_remove_tree(path, NULL);
    }
    closedir(d);
}

static void clean_product(insp_store *s, const char *id)
{
    int fd;
    if (insp_store_lock(s, id, &fd, NULL) != INSP_OK)
        return;
    char dir[PATH_MAX], sub[PATH_MAX];
    if (insp_fs_path(dir, sizeof dir, NULL, "%s/%s", s->products, id) != INSP_OK)
        goto out;
    DIR *d = opendir(dir);
    if (d) { /* temp files of an interrupted product.json write */
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (has_prefix(e->d_name, INSP_FS_TMP_PREFIX) &&
                insp_fs_path(sub, sizeof sub, NULL, "%s/%s", dir, e->d_name) == INSP_OK)
                insp_fs_unlink(sub, NULL);
        }
        closedir(d);
    }
    insp_stored_product *p;
    if (insp_pf_read(s->products, id, &p, NULL) != INSP_OK)
        goto out; /* unreadable: touch nothing we cannot prove unused */
    if (insp_fs_path(sub, sizeof sub, NULL, "%s/refs", dir) == INSP_OK)
        prune_dir(sub, p, ref_listed);
    if (insp_fs_path(sub, sizeof sub, NULL, "%s/cache", dir) == INSP_OK) {
        if (p->n_refs == 0) {
            insp_fs_remove_tree(sub, NULL);
        } else {
            DIR *c = opendir(sub);
            struct dirent *e;
            while (c && (e = readdir(c)) != NULL) {
                if (e->d_name[0] == '.' && !has_prefix(e->d_name, INSP_FS_TMP_PREFIX))
                    continue;
                char ck[PATH_MAX];
                if (insp_fs_path(ck, sizeof ck, NULL, "%s/%s", sub, e->d_name) != INSP_OK)
                    continue;
                struct stat sb;
                if (lstat(ck, &sb) == 0 && S_ISDIR(sb.st_mode) &&
                    !has_prefix(e->d_name, INSP_FS_TMP_PREFIX)) {
                    prune_dir(ck, p, cache_entry_listed);
                    rmdir(ck); /* only succeeds when it is empty now */
                } else {
                    insp_fs_remove_tree(ck, NULL);
                }
            }
            if (c)
                closedir(c);
        }
    }
    insp_stored_product_free(p);
out:
    insp_store_unlock(s, fd);
}

void insp_store_clean(insp_store *s)
{
    DIR *d = opendir(s->products);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        char path[PATH_MAX];
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (insp_fs_path(path, sizeof path, NULL, "%s/%s", s->products, name) != INSP_OK)
            continue;
        if (has_prefix(name, INSP_STORE_TRASH_PREFIX) || has_prefix(name, INSP_FS_TMP_PREFIX)) {
            insp_fs_remove_tree(path, NULL);
        } else if (has_prefix(name, INSP_STORE_NEW_PREFIX)) {
            /* .new-<rand>-<id>: a creation still running in another process holds <id>'s lock */
            const char *id = name + strlen(INSP_STORE_NEW_PREFIX) + INSP_STORE_RAND_LEN + 1;
            int fd;
            if (strlen(name) > strlen(INSP_STORE_NEW_PREFIX) + INSP_STORE_RAND_LEN + 1 &&
                insp_store_lock(s, id, &fd, NULL) == INSP_OK) {
                insp_fs_remove_tree(path, NULL);
                insp_store_unlock(s, fd);
            }
        } else if (insp_product_id_valid(name)) {
            clean_product(s, name);
        }
    }
    closedir(d);
}
