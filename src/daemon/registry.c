/* The in-RAM product registry: a sorted array under a mutex, products shared by refcount. */
#include "daemon/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct insp_registry {
    pthread_mutex_t lock;
    insp_product **items; /* sorted by id */
    int n, cap;
};

insp_product *insp_product_new(void)
{
    insp_product *p = calloc(1, sizeof *p);
    if (p)
        atomic_init(&p->refs, 1);
    return p;
}

void insp_product_release(insp_product *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    insp_stored_product_free(p->stored);
    insp_memory_free(p->mem);
    free(p->text);
    free(p->loo);
    free(p);
}

int insp_registry_create(insp_registry **out)
{
    insp_registry *r = calloc(1, sizeof *r);
    if (!r)
        return INSP_ERR_NOMEM;
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return INSP_OK;
}

void insp_registry_free(insp_registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        insp_product_release(r->items[i]);
    free(r->items);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Index of id, or -(insertion point) - 1. Caller holds the lock. */
static int find(const insp_registry *r, const char *id)
{
    int lo = 0, hi = r->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(r->items[mid]->stored->id, id);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

insp_product *insp_registry_get(insp_registry *r, const char *id)
{
    pthread_mutex_lock(&r->lock);
    int i = find(r, id);
    insp_product *p = NULL;
    if (i >= 0) {
        p = r->items[i];
        atomic_fetch_add(&p->refs, 1);
    }
    pthread_mutex_unlock(&r->lock);
    return p;
}

int insp_registry_put(insp_registry *r, insp_product *p)
{
    insp_product *old = NULL;
    pthread_mutex_lock(&r->lock);
    int i = find(r, p->stored->id);
    if (i >= 0) {
        old = r->items[i];
        r->items[i] = p;
    } else {
        if (r->n == r->cap) {
            int cap = r->cap ? r->cap * 2 : 16;
            insp_product **ni = realloc(r->items, (size_t)cap * sizeof *ni);
            if (!ni) {
                pthread_mutex_unlock(&r->lock);
                insp_product_release(p);
                return INSP_ERR_NOMEM;
            }
            r->items = ni;
            r->cap = cap;
        }
        i = -i - 1;
        memmove(r->items + i + 1, r->items + i, (size_t)(r->n - i) * sizeof *r->items);
        r->items[i] = p;
        r->n++;
    }
    pthread_mutex_unlock(&r->lock);
    insp_product_release(old);
    return INSP_OK;
}

int insp_registry_remove(insp_registry *r, const char *id)
{
    pthread_mutex_lock(&r->lock);
    int i = find(r, id);
    insp_product *old = NULL;
    if (i >= 0) {
        old = r->items[i];
        memmove(r->items + i, r->items + i + 1, (size_t)(r->n - i - 1) * sizeof *r->items);
        r->n--;
    }
    pthread_mutex_unlock(&r->lock);
    if (!old)
        return INSP_ERR_NOT_FOUND;
    insp_product_release(old);
    return INSP_OK;
}

int insp_registry_list(insp_registry *r, insp_product ***out, int *n)
{
    pthread_mutex_lock(&r->lock);
    insp_product **list = malloc((size_t)(r->n ? r->n : 1) * sizeof *list);
    if (!list) {
        pthread_mutex_unlock(&r->lock);
        return INSP_ERR_NOMEM;
    }
    for (int i = 0; i < r->n; i++) {
        list[i] = r->items[i];
        atomic_fetch_add(&list[i]->refs, 1);
    }
    *n = r->n;
    pthread_mutex_unlock(&r->lock);
    *out = list;
    return INSP_OK;
}

void insp_registry_list_free(insp_product **list, int n)
{
    for (int i = 0; i < n; i++)
        insp_product_release(list[i]);
    free(list);
}

void insp_registry_counts(insp_registry *r, int *products, int *references,
                          long long *reference_bytes)
{
    pthread_mutex_lock(&r->lock);
    int refs = 0;
    long long bytes = 0;
    for (int i = 0; i < r->n; i++) {
        const insp_product *p = r->items[i];
        refs += p->stored->n_refs;
        bytes += (long long)p->stored->n_refs * (long long)insp_memory_shot_bytes(p->model->wc);
    }
    if (products)
        *products = r->n;
    if (references)
        *references = refs;
    if (reference_bytes)
        *reference_bytes = bytes;
    pthread_mutex_unlock(&r->lock);
}
