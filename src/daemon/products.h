/* Turning a stored product into one ready to inspect: prompts → text embeddings, reference
 * images → memory (through the embedding cache), leave-one-out threshold. */
#ifndef INSPD_DAEMON_PRODUCTS_H
#define INSPD_DAEMON_PRODUCTS_H

#include "daemon/app.h"

/* Builds a registry product from sp, taking ownership of sp (freed on failure too). prev (may
 * be NULL): the product it replaces, whose text embeddings are reused when the prompts and the
 * model are the same. startup: wait for a free queue slot instead of answering busy.
 * Errors: INSP_ERR_INVALID (unknown model, bad prompt set), INSP_ERR_BUSY, reference failures. */
int insp_products_build(insp_app *app, insp_stored_product *sp, const insp_product *prev,
                        int startup, insp_product **out, insp_error *err);

/* Loads every product of the store into the registry; an unreadable one is logged and
 * skipped. Sets app->products_failed. */
void insp_products_load_all(insp_app *app);

#endif
