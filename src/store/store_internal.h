/* Internal to the store: the store handle and the per-product lock its files share. */
#ifndef INSPD_STORE_STORE_INTERNAL_H
#define INSPD_STORE_STORE_INTERNAL_H

#include <limits.h>
#include <pthread.h>

#include "store/store.h"

#define INSP_STORE_TRASH_PREFIX ".trash-" /* products/.trash-<rand>-<id>: a delete under way */
#define INSP_STORE_NEW_PREFIX ".new-"     /* products/.new-<rand>-<id>: a creation under way */
#define INSP_STORE_RAND_LEN 12            /* hex characters of <rand> */

struct insp_store {
    char root[PATH_MAX];
    char products[PATH_MAX]; /* root/products */
    char locks[PATH_MAX];    /* root/locks */
    pthread_mutex_t mu;      /* serialises changes within the process */
};

/* Takes the store's mutex, then the flock of locks/<id>.lock (other processes on the same
 * directory). INSP_ERR_INVALID for a bad id. *fd goes back to insp_store_unlock. */
int insp_store_lock(insp_store *s, const char *id, int *fd, insp_error *err);
void insp_store_unlock(insp_store *s, int fd);

/* A model checksum usable as a file name: 1..128 characters of A-Za-z0-9_- (else
 * INSP_ERR_INVALID). */
int insp_store_checksum_check(const char *checksum, insp_error *err);

/* Removes crash leftovers in the whole store (best effort, errors ignored). */
void insp_store_clean(insp_store *s);

#endif
