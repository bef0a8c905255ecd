#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "simcse/common.h"

Test(common, error_prefix_chains_context) {
    cr_assert_eq(simcse_error("key '%s' missing", "hidden_size"), -1);
    simcse_error_prefix("%s", "m/config.json");
    cr_assert_str_eq(simcse_last_error(), "m/config.json: key 'hidden_size' missing");
}

Test(common, atomic_write_replaces_whole_file) {
    char path[] = "/tmp/simcse_atomicXXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(simcse_write_file_atomic(path, "hello", 5), 0);
    size_t n = 0;
    char *s = simcse_read_file(path, &n);
    cr_assert_not_null(s);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(s, "hello");
    free(s);
    unlink(path);
}

Test(common, read_missing_file_names_it) {
    cr_assert_null(simcse_read_file("/nonexistent/x.json", NULL));
    cr_assert(strstr(simcse_last_error(), "/nonexistent/x.json") != NULL);
}
