/* simcse train: SimCSE fine-tuning from a JSON config. */
#include <stdio.h>
#include <string.h>

#include "simcse/checkpoint.h"
#include "simcse/cli.h"
#include "simcse/common.h"
#include "simcse/train_config.h"
#include "simcse/trainer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: simcse train --config FILE.json --output DIR [--set key=value ...] [--device D]\n"
            "       simcse train --resume DIR [--device D]\n"
            "  --config FILE     training configuration (configs/ has the paper's setups and demo.json)\n"
            "  --set key=value   override one key (repeatable)\n"
            "  --output DIR      where the model (Hugging Face + sentence-transformers directory), metrics.jsonl\n"
            "                    and the resumable checkpoint/ go\n"
            "  --resume DIR      continue the run whose --output was DIR, from DIR/checkpoint\n"
            "  --device D        cpu, cuda or auto (default auto)\n"
            "  --quiet           no progress line\n\nconfiguration keys (default, meaning):\n");
    simcse_train_config_print_keys(f);
}

int simcse_cmd_train(int argc, char **argv) {
    simcse_train_config cfg;
    simcse_train_config_defaults(&cfg);
    const char *config = NULL, *output = NULL, *resume = NULL, *device = "auto", *val;
    int stop_after = 0, quiet = 0;
    const char *sets[64];
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
            continue;
        }
        if ((r = simcse_arg_str(argc, argv, &i, "--set", &val)) > 0) {
            if (n_sets == 64) simcse_fatal("train: at most 64 --set options");
            sets[n_sets++] = val;
            continue;
        }
        if (r < 0 || (r = simcse_arg_str(argc, argv, &i, "--config", &config)) ||
            (r = simcse_arg_str(argc, argv, &i, "--output", &output)) ||
            (r = simcse_arg_str(argc, argv, &i, "--resume", &resume)) ||
            (r = simcse_arg_str(argc, argv, &i, "--device", &device)) ||
            (r = simcse_arg_int(argc, argv, &i, "--stop-after", 1, 1 << 30, &stop_after))) {
            if (r < 0) simcse_fatal("train: %s", simcse_last_error());
            continue;
        }
        fprintf(stderr, "simcse: error: train: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (resume) {
        if (config || output)
            simcse_fatal("train: --resume continues with the saved configuration; drop --config and --output");
        simcse_train_state st;
        if (simcse_checkpoint_load_config(resume, &cfg, &st) != 0) simcse_fatal("%s", simcse_last_error());
        output = resume;
        fprintf(stderr, "simcse: resuming %s at step %lld\n", resume, (long long)st.step);
    } else {
        if (!config || !output) {
            fprintf(stderr, "simcse: error: train: --config and --output are required\n");
            usage(stderr);
            return 2;
        }
        if (simcse_train_config_load(&cfg, config) != 0) simcse_fatal("%s", simcse_last_error());
    }
    for (int i = 0; i < n_sets; i++)
        if (simcse_train_config_set(&cfg, sets[i]) != 0) simcse_fatal("%s", simcse_last_error());
    if (simcse_train_config_expand_data(&cfg) != 0) simcse_fatal("%s", simcse_last_error());
    simcse_train_options opt = {.output_dir = output, .device = device, .resume = resume != NULL,
                                .stop_after = stop_after, .quiet = quiet};
    simcse_train_summary sum;
    if (simcse_train(&cfg, &opt, &sum) != 0) simcse_fatal("%s", simcse_last_error());
    if (sum.eval_before == sum.eval_before)
        printf("STS-B dev Spearman x100: before %.2f, after (best, step %lld) %.2f\n", sum.eval_before,
               (long long)sum.best_step, sum.eval_best);
    return 0;
}
