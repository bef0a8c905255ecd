/* See include/simcse/data_dir.h. */
#include "simcse/data_dir.h"

#include <stdlib.h>

const char *simcse_data_dir(void) {
    const char *d = getenv("SIMCSE_DATA_DIR");
    return d && *d ? d : "../shared/data";
}
