/* simcse tokenize: token ids of sentences read from stdin, one per line.
 *
 * A debugging and parity tool: the output is exactly what the trainer feeds
 * the model (template ids included, truncated to --max-len), one line of
 * space-separated ids per input line. Lines follow the rule encode follows
 * (simcse_read_sentence): a line may hold any bytes (NUL, invalid UTF-8); a
 * trailing \r is dropped so that CRLF files give the same ids as LF files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/cli.h"
#include "simcse/common.h"
#include "simcse/tokenizer.h"

static void usage(FILE *f) {
    fputs("usage: simcse tokenize --model DIR [--max-len N]\n"
          "  Reads sentences from stdin, one per line, and prints each one's token ids\n"
          "  (special tokens included), space-separated, one line per sentence.\n"
          "  --model DIR   tokenizer.json, or vocab.txt [+ tokenizer_config.json],\n"
          "                or vocab.json + merges.txt\n"
          "  --max-len N   truncate to N ids in total (default 512)\n",
          f);
}

static int fail(void) {
    fprintf(stderr, "simcse: error: %s\n", simcse_last_error());
    return 1;
}

int simcse_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    long max_len = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--max-len") && i + 1 < argc) {
            char *end;
            max_len = strtol(argv[++i], &end, 10);
            if (*end || max_len < 1 || max_len > 1 << 20) {
                simcse_error("--max-len: expected an integer in [1, %d], got '%s'", 1 << 20, argv[i]);
                return fail();
            }
        } else {
            simcse_error("tokenize: unknown or incomplete option '%s' (see --help)", argv[i]);
            return fail();
        }
    }
    if (!model) {
        simcse_error("tokenize: --model DIR is required (see --help)");
        return fail();
    }
    simcse_tokenizer *t = simcse_tokenizer_load(model);
    if (!t) return fail();
    int32_t *ids = simcse_xmalloc((size_t)max_len * sizeof *ids);
    char *line = NULL;
    size_t cap = 0;
    long n;
    int rc = 0;
    long lineno = 0;
    while ((n = simcse_read_sentence(&line, &cap, stdin)) >= 0) {
        lineno++;
        int k = simcse_tokenizer_encode(t, line, (size_t)n, (int)max_len, ids);
        if (k < 0) {
            simcse_error_prefix("stdin line %ld", lineno);
            rc = fail();
            break;
        }
        for (int j = 0; j < k; j++) printf(j ? " %d" : "%d", ids[j]);
        putchar('\n');
    }
    if (rc == 0 && ferror(stdin)) {
        simcse_error("stdin: read failed after %ld lines", lineno);
        rc = fail();
    }
    if (rc == 0 && fflush(stdout) != 0) {
        simcse_error("cannot write the output");
        rc = fail();
    }
    free(line);
    free(ids);
    simcse_tokenizer_free(t);
    return rc;
}
