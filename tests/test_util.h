/* Helpers shared by the Criterion suites. Tests run from the repository root. */
#ifndef SIMCSE_TEST_UTIL_H
#define SIMCSE_TEST_UTIL_H

#include <stdlib.h>

#include "simcse/cli.h"

/* The shared data directory ($SIMCSE_DATA_DIR or ../shared/data). */
static inline const char *test_data_dir(void) { return simcse_data_dir(); }
/* The CLI binary under test ($SIMCSE_BIN or build/simcse). */
static inline const char *test_bin(void) {
    const char *b = getenv("SIMCSE_BIN");
    return b && *b ? b : "build/simcse";
}

#endif
