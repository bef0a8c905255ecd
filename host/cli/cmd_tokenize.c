/* PLACEHOLDER: being written. */
#include <stdio.h>
#include "simcse/cli.h"
int simcse_cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "simcse: tokenize: not built yet\n"); return 1; }
