/* simcse plot: the picture of a training run (include/simcse/plot.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/cli.h"
#include "simcse/common.h"
#include "simcse/plot.h"

static void usage(FILE *f) {
    fprintf(f, "usage: simcse plot --run DIR [--width W] [--height H]\n"
               "  --run DIR     a training run's --output directory: reads DIR/metrics.jsonl and writes\n"
               "                DIR/plot.png and DIR/plot.svg (and DIR/plot.gp, the gnuplot script with the data)\n"
               "  --width W     pixels (default 1800)\n"
               "  --height H    pixels (default 600)\n"
               "Panels: loss and learning rate per step; the dev score of each evaluation task; the\n"
               "alignment-uniformity plane on STS-B dev (lower is better on both axes). Needs gnuplot\n"
               "(Debian: gnuplot-nox; $SIMCSE_GNUPLOT names another binary).\n");
}

int simcse_cmd_plot(int argc, char **argv) {
    const char *run = NULL;
    simcse_plot_options opt = {0};
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if ((r = simcse_arg_str(argc, argv, &i, "--run", &run)) ||
            (r = simcse_arg_int(argc, argv, &i, "--width", 200, 20000, &opt.width)) ||
            (r = simcse_arg_int(argc, argv, &i, "--height", 100, 20000, &opt.height))) {
            if (r < 0) simcse_fatal("plot: %s", simcse_last_error());
            continue;
        }
        fprintf(stderr, "simcse: error: plot: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!run) {
        fprintf(stderr, "simcse: error: plot: --run is required\n");
        usage(stderr);
        return 2;
    }
    if (simcse_plot_run(run, &opt) != 0) simcse_fatal("%s", simcse_last_error());
    char *png = simcse_path_join(run, "plot.png");
    printf("plot: %s (and plot.svg beside it)\n", png);
    free(png);
    return 0;
}
