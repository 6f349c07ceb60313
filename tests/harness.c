/* The test harness's runner and helpers (see harness.h). */
#include "harness.h"

int harness_failures;

int harness_main(int argc, char **argv, const test_case *cases, size_t n_cases)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n_cases; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int a = 1; a < argc; a++)
                wanted |= strcmp(argv[a], cases[i].name) == 0;
            if (!wanted)
                continue;
        }
        harness_failures = 0;
        cases[i].fn();
        if (harness_failures == 0) {
            passed++;
            printf("ok - %s\n", cases[i].name);
        } else {
            failed++;
            printf("FAIL - %s (%d checks failed)\n", cases[i].name, harness_failures);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

const char *fixture_path(const char *rel)
{
    /* A few rotating buffers, so that several paths can be used in one call. */
    static char bufs[8][4096];
    static int next;
    char *buf = bufs[next++ % 8];
    const char *root = getenv("INSP_FIXTURES");
    snprintf(buf, sizeof bufs[0], "%s/%s", root ? root : "tests/fixtures", rel);
    return buf;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

double rel_error(const float *a, const float *b, long n)
{
    double maxdiff = 0, maxref = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxdiff || isnan(d))
            maxdiff = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > maxref)
            maxref = fabs((double)b[i]);
    }
    return maxref > 0 ? maxdiff / maxref : maxdiff;
}

double max_abs_error(const float *a, const float *b, long n)
{
    double maxdiff = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxdiff || isnan(d))
            maxdiff = isnan(d) ? INFINITY : d;
    }
    return maxdiff;
}
