/* Internal to the store: the on-disk form of a stored product (product.json) and the checks
 * on names and hashes shared by the store's files. */
#ifndef INSPD_STORE_PRODUCT_FILE_H
#define INSPD_STORE_PRODUCT_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "inspectd/status.h"
#include "store/store.h"

/* Reads products_dir/<id>/product.json into *out (freed with insp_stored_product_free).
 * INSP_ERR_NOT_FOUND only when the product folder does not exist; a folder without a
 * readable, valid product.json is INSP_ERR_FORMAT with the path and the problem. */
int insp_pf_read(const char *products_dir, const char *id, insp_stored_product **out,
                 insp_error *err);

/* Every reference p lists exists under products_dir/<id>/ with its recorded size (hashes are
 * checked when a file is read). INSP_ERR_FORMAT naming the file otherwise. */
int insp_pf_check_ref_files(const char *products_dir, const insp_stored_product *p,
                            insp_error *err);

/* Writes p to path atomically (fsutil); *renamed as in insp_fs_write_atomic. */
int insp_pf_write(const char *path, const insp_stored_product *p, bool *renamed,
                  insp_error *err);

/* Deep copy into a new *out. */
int insp_pf_copy(const insp_stored_product *src, insp_stored_product **out, insp_error *err);

/* The current UTC time as "2024-05-01T12:00:00.123Z". */
void insp_pf_now_iso(char out[32]);

/* 64 lowercase hex digits. */
bool insp_pf_sha_hex_valid(const char *s);

/* "refs/<name>": a plain file name the store could have written. */
bool insp_pf_ref_file_valid(const char *file);

/* The file extension ("png", "jpg") of an image content type, and in *canonical its
 * canonical spelling ("image/png", "image/jpeg"); NULL when not a supported image type. */
const char *insp_pf_image_ext(const char *content_type, const char **canonical);

#endif
