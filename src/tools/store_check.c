/* inspect-store-check STATE_DIR: verifies a product store without changing it (every product
 * folder has a valid product.json and exactly the reference files it lists, sizes and
 * SHA-256 included). For operators after a crash or a full disk, and for the fault tests.
 * Exit status: 0 consistent, 1 problems found (one line each), 2 unreadable or bad usage. */
#include <stdio.h>
#include <string.h>

#include "inspectd/status.h"
#include "store/store.h"

static void print_problem(const char *id, const char *problem, void *user)
{
    (void)user;
    printf("%s: %s\n", id ? id : "(store)", problem);
}

int main(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: %s STATE_DIR\n"
                "Checks every product folder under STATE_DIR/products; changes nothing.\n",
                argv[0]);
        return argc == 2 ? 0 : 2;
    }
    int n = insp_store_check(argv[1], print_problem, NULL);
    if (n < 0) {
        fprintf(stderr, "%s: cannot read %s/products: %s\n", argv[0], argv[1],
                insp_strerror(n));
        return 2;
    }
    printf("%d problem%s\n", n, n == 1 ? "" : "s");
    return n == 0 ? 0 : 1;
}
