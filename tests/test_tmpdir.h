/* A scratch directory per test (Criterion runs each test in its own process), for
 * the suites that write broken files: mk_tmpdir() in the test's init, rm_tmpdir()
 * in its fini, tmp_path(name) for a file inside (caller frees). */
#ifndef SIMCSE_TEST_TMPDIR_H
#define SIMCSE_TEST_TMPDIR_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "simcse/common.h"

static char g_dir[64];

static void mk_tmpdir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/simcse_test_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

static void rm_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_assert_eq(system(cmd), 0);
}

static char *tmp_path(const char *name) { return simcse_path_join(g_dir, name); }

#endif
