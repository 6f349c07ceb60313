/* The libFuzzer entry points every target in tests/fuzz defines; replay.c calls them the
 * same way libFuzzer does, so that the corpora also run as plain tests in every build. */
#ifndef INSPD_TESTS_FUZZ_H
#define INSPD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated malloc'ed copy of data (the parsers that take C strings); aborts when out
 * of memory, which a fuzzer reports as a finding rather than hiding it. */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
