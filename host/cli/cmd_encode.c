/* PLACEHOLDER: being written. */
#include <stdio.h>
#include "simcse/cli.h"
int simcse_cmd_encode(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "simcse: encode: not built yet\n"); return 1; }
