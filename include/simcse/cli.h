/* Subcommands of build/simcse. Each takes argv without the program name
 * (argv[0] is the subcommand) and returns the process exit status. */
#ifndef SIMCSE_CLI_H
#define SIMCSE_CLI_H

int simcse_cmd_tokenize(int argc, char **argv);
int simcse_cmd_encode(int argc, char **argv);
int simcse_cmd_train(int argc, char **argv);
int simcse_cmd_eval(int argc, char **argv);

/* The data directory: $SIMCSE_DATA_DIR or ../shared/data. */
const char *simcse_data_dir(void);

#endif
