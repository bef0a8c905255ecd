/* build/simcse: one binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "simcse/cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"train", simcse_cmd_train, "fine-tune an encoder with SimCSE (unsupervised or NLI-supervised)"},
    {"eval", simcse_cmd_eval, "STS evaluation (Spearman x 100), alignment, uniformity, anisotropy"},
    {"encode", simcse_cmd_encode, "sentence embeddings to a .npy file"},
    {"tokenize", simcse_cmd_tokenize, "token ids of sentences read from stdin"},
    {"plot", simcse_cmd_plot, "the picture of a training run (loss, dev scores, alignment-uniformity plane)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: simcse <command> [options]   (simcse <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "simcse: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
