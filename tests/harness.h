/* A small test harness: each test binary lists its cases and prints one line per case and a
 * closing "N passed, N failed" line that tests/run adds up. Checks never compile out. */
#ifndef INSP_TEST_HARNESS_H
#define INSP_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

extern int harness_failures; /* checks failed in the current case */

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            harness_failures++;                                                                \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);         \
        }                                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            harness_failures++;                                                                \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                     \
    do {                                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                                    \
        CHECK_MSG(a_ == b_, "%s = %lld, %s = %lld", #a, a_, #b, b_);                           \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                  \
    do {                                                                                       \
        double a_ = (double)(a), b_ = (double)(b);                                             \
        CHECK_MSG(fabs(a_ - b_) <= (tol), "%s = %.9g, %s = %.9g, |diff| %.3g > %.3g", #a, a_, \
                  #b, b_, fabs(a_ - b_), (double)(tol));                                       \
    } while (0)

/* Fails the case when expr (an insp status) is not 0, printing the status. */
#define CHECK_OK(expr)                                                                         \
    do {                                                                                       \
        int s_ = (expr);                                                                       \
        CHECK_MSG(s_ == 0, "%s returned %d", #expr, s_);                                       \
    } while (0)

/* Stops the current case (after recording a failure) when cond is false. */
#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            harness_failures++;                                                                \
            fprintf(stderr, "  %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond);       \
            return;                                                                            \
        }                                                                                      \
    } while (0)

/* Runs the cases named on the command line (all when none), prints
 * "ok - name" / "FAIL - name" and finally "N passed, N failed"; exit status 1 on any failure. */
int harness_main(int argc, char **argv, const test_case *cases, size_t n_cases);

/* Path of a file under tests/fixtures (from $INSP_FIXTURES, set by meson), in one of 8
 * rotating static buffers: valid for the next 7 calls. */
const char *fixture_path(const char *rel);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated); NULL on failure. */
char *read_file(const char *path, size_t *len);

/* max |a-b| / max |b| over n values (the fixtures' relative error). */
double rel_error(const float *a, const float *b, long n);
/* max |a-b| over n values. */
double max_abs_error(const float *a, const float *b, long n);

#define TEST_MAIN(...)                                                                         \
    int main(int argc, char **argv)                                                            \
    {                                                                                          \
        static const test_case cases_[] = {__VA_ARGS__};                                       \
        return harness_main(argc, argv, cases_, sizeof cases_ / sizeof cases_[0]);             \
    }
#define T(fn) {#fn, fn}

#endif
