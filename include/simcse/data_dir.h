/* Where the shared data sets live: $SIMCSE_DATA_DIR, else ../shared/data.
 * In the base layer because the trainer, the CLI and the tests all resolve
 * relative data paths against it. */
#ifndef SIMCSE_DATA_DIR_H
#define SIMCSE_DATA_DIR_H

const char *simcse_data_dir(void);

#endif
