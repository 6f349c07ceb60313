/* A read-only consistency check of a state directory, for tests and for operators: does
 * every product folder hold a product.json that validates and the exact files it lists? */
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/fsutil.h"
#include "store/product_file.h"
#include "store/store.h"

static int skip_dots(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static void report_problem(insp_store_check_cb report, void *user, const char *id,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report_problem(insp_store_check_cb report, void *user, const char *id,
                           const char *fmt, ...)
{
    if (!report)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(id, msg, user);
}

int insp_store_check(const char *state_dir, insp_store_check_cb report, void *user)
{
    char products[PATH_MAX];
    if (insp_fs_path(products, sizeof products, NULL, "%s/products", state_dir))
        return INSP_ERR_INVALID;
    struct dirent **names;
    int n = scandir(products, &names, skip_dots, alphasort);
    if (n < 0)
        return INSP_ERR_IO;
    int problems = 0;
    for (int i = 0; i < n; i++) {
        const char *id = names[i]->d_name;
        insp_error e;
        insp_error_clear(&e);
        insp_stored_product *p = NULL;
        if (insp_product_id_check(id, &e) != INSP_OK) {
            problems++;
            report_problem(report, user, id, "%s", e.msg);
        } else if (insp_pf_read(products, id, &p, &e) != INSP_OK) {
            problems++;
            report_problem(report, user, id, "%s", e.msg);
        } else {
            for (int r = 0; r < p->n_refs; r++) {
                char path[PATH_MAX];
                void *data = NULL;
                size_t len = 0;
                char hex[65];
                if (insp_fs_path(path, sizeof path, &e, "%s/%s/%s", products, id,
                                 p->refs[r].file) ||
                    insp_fs_read_file(path, INSP_STORE_MAX_REF_BYTES, &data, &len, &e)) {
                    problems++;
                    report_problem(report, user, id, "reference %d: %s", r, e.msg);
                    continue;
                }
                insp_sha256_hex(data, len, hex);
                free(data);
                if (len != p->refs[r].size || strcmp(hex, p->refs[r].sha256) != 0) {
                    problems++;
                    report_problem(report, user, id,
                                   "reference %d (%s): %zu bytes sha256 %.12s..., product.json "
                                   "says %zu bytes sha256 %.12s...",
                                   r, path, len, hex, p->refs[r].size, p->refs[r].sha256);
                }
            }
        }
        insp_stored_product_free(p);
        free(names[i]);
    }
    free(names);
    return problems;
}
