/* Small assertion helpers for the C API tests. */
#ifndef AUGUR_TEST_CHECK_H
#define AUGUR_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augur.h"

static int g_failures = 0;
static int g_checks = 0;

/* The last error message, copied into a static buffer. */
static const char *last_error(void) {
    static char buf[4096];
    size_t n = 0;
    augur_last_error_message(buf, sizeof buf, &n);
    return buf;
}

#define CHECK(cond)                                                              \
    do {                                                                         \
        g_checks++;                                                              \
        if (!(cond)) {                                                           \
            g_failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                        \
    } while (0)

/* Checks that `call` returns `want`, printing the status names and message. */
#define CHECK_STATUS(call, want)                                                 \
    do {                                                                         \
        augur_status got_ = (call);                                              \
        g_checks++;                                                              \
        if (got_ != (want)) {                                                    \
            g_failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s returned %s, expected %s (%s)\n",    \
                    __FILE__, __LINE__, #call, augur_status_name((int32_t)got_), \
                    augur_status_name((int32_t)(want)), last_error());           \
        }                                                                        \
    } while (0)

/* Checks that the last error message contains `needle`. */
#define CHECK_MESSAGE(needle)                                                    \
    do {                                                                         \
        const char *msg_ = last_error();                                         \
        g_checks++;                                                              \
        if (strstr(msg_, (needle)) == NULL) {                                    \
            g_failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: message \"%s\" lacks \"%s\"\n",         \
                    __FILE__, __LINE__, msg_, (needle));                         \
        }                                                                        \
    } while (0)

/* Ends the program: "N passed, N failed" and a failing exit code on failure. */
static int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, g_checks - g_failures, g_failures);
    return g_failures == 0 ? 0 : 1;
}

#endif
