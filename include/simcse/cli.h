/* Subcommands of build/simcse. Each takes argv without the program name
 * (argv[0] is the subcommand) and returns the process exit status. */
#ifndef SIMCSE_CLI_H
#define SIMCSE_CLI_H

#include <stddef.h>

int simcse_cmd_tokenize(int argc, char **argv);
int simcse_cmd_encode(int argc, char **argv);
int simcse_cmd_train(int argc, char **argv);
int simcse_cmd_eval(int argc, char **argv);
int simcse_cmd_plot(int argc, char **argv);

/* Option parsing shared by the subcommands: "--name value" or "--name=value".
 * Returns 1 and sets *val when argv[*i] is that option (advancing *i past the
 * value), 0 when it is another option, -1 + error when the value is missing. */
int simcse_arg_str(int argc, char **argv, int *i, const char *name, const char **val);
/* Same, parsing a positive integer in [lo, hi]. */
int simcse_arg_int(int argc, char **argv, int *i, const char *name, int lo, int hi, int *val);

/* --threads N: the CPU backend's thread count (simcse_cpu_set_threads), set when parsed.
 * Without it the count comes from OMP_NUM_THREADS, else the process's affinity mask. */
int simcse_arg_threads(int argc, char **argv, int *i);

/* One line of sentence input, the one rule of every command that reads sentences one
 * per line (encode, tokenize): the bytes up to the next \n, NUL bytes included (the
 * tokenizer treats them as Hugging Face's does), with the \n and then one \r dropped, so
 * CRLF files give what LF files give. Returns the length, or -1 at the end of the input
 * or on a read error (ferror tells which). */
long simcse_read_sentence(char **line, size_t *cap, void *file);
/* Reads every line of a file, or stdin for NULL or "-", by that rule: empty ones
 * included, so rows line up with the input; (*lens)[i] is line i's length (malloc'ed).
 * NULL + error (a directory, a read error). */
char **simcse_read_lines(const char *path, int *n, size_t **lens);
void simcse_free_lines(char **lines, int n);

/* The same lines, a batch at a time, so that a command's memory does not grow with its
 * input (encode streams). open: the errors of simcse_read_lines; next: up to max lines into
 * lines[] (each malloc'ed, free with simcse_free_line_array) and lens[], the count (0 at
 * the end), or -1 + error. */
typedef struct {
    void *f;
    const char *name;
    char *line;
    size_t cap;
    long long done;
} simcse_line_reader;
int simcse_lines_open(simcse_line_reader *r, const char *path);
int simcse_lines_next(simcse_line_reader *r, char **lines, size_t *lens, int max);
void simcse_free_line_array(char **lines, int n);
void simcse_lines_close(simcse_line_reader *r);

#endif
