#include <stdlib.h>

#include "simcse/cli.h"

const char *simcse_data_dir(void) {
    const char *d = getenv("SIMCSE_DATA_DIR");
    return d && *d ? d : "../shared/data";
}
