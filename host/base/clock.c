/* The one clock behind every timing the program prints: monotonic, so a
 * wall-clock adjustment during a run cannot produce a negative duration. */
#include "simcse/common.h"

#include <time.h>

double simcse_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
