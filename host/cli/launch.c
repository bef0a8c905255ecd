/* Rank discovery and the NCCL id rendezvous (see include/simcse/launch.h). */
#include "simcse/launch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "simcse/common.h"

static int env_int(const char *name, int *out) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 1 << 20) return simcse_error("environment %s=%s: not a rank number", name, s);
    *out = (int)v;
    return 1;
}

int simcse_launch_env_read(simcse_launch_env *env) {
    static const struct {
        const char *rank, *size, *local, *source;
    } vars[] = {
        {"SIMCSE_RANK", "SIMCSE_WORLD_SIZE", "SIMCSE_LOCAL_RANK", "simcse"},
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "Open MPI"},
        {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "Slurm"},
        {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "PMI"},
    };
    env->rank = 0;
    env->world = 1;
    env->local_rank = 0;
    env->source = "none";
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        int r, w, l = 0, got = env_int(vars[i].rank, &r);
        if (got < 0) return -1;
        if (!got) continue;
        if (env_int(vars[i].size, &w) != 1) return simcse_error("%s is set but %s is not", vars[i].rank, vars[i].size);
        if (env_int(vars[i].local, &l) < 0) return -1;
        if (r >= w) return simcse_error("%s=%d is not below %s=%d", vars[i].rank, r, vars[i].size, w);
        env->rank = r;
        env->world = w;
        env->local_rank = l;
        env->source = vars[i].source;
        return 0;
    }
    return 0;
}

char *simcse_nccl_id_path(const char *out_dir) {
    const char *f = getenv("SIMCSE_NCCL_ID_FILE");
    if (f && *f) return simcse_xstrdup(f);
    const char *job = getenv("SIMCSE_JOB_ID");
    if (!job || !*job) job = getenv("SLURM_JOB_ID");
    if (!job || !*job) job = getenv("OMPI_MCA_ess_base_jobid");
    if (!job || !*job) job = "default";
    char name[128];
    snprintf(name, sizeof name, "nccl_id.%s", job);
    return simcse_path_join(out_dir, name);
}

int simcse_nccl_rendezvous(const simcse_launch_env *env, const char *path, int timeout_s,
                           unsigned char id[SIMCSE_NCCL_ID_BYTES]) {
    if (env->rank == 0) {
        if (simcse_nccl_unique_id(id) != 0) return -1;
        return simcse_write_file_atomic(path, id, SIMCSE_NCCL_ID_BYTES);
    }
    for (int waited_ms = 0; waited_ms < timeout_s * 1000; waited_ms += 100) {
        size_t n;
        if (simcse_file_exists(path)) {
            char *data = simcse_read_file(path, &n);
            if (data && n == SIMCSE_NCCL_ID_BYTES) {
                memcpy(id, data, n);
                free(data);
                return 0;
            }
            free(data);
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return simcse_error("%s: rank %d waited %d s for rank 0's NCCL id (is rank 0 running, and the directory shared?)",
                        path, env->rank, timeout_s);
}

int simcse_launch_local(int n) {
    char job[32];
    snprintf(job, sizeof job, "local-%ld", (long)getpid());
    pid_t *pids = simcse_xcalloc((size_t)n, sizeof *pids);
    fflush(NULL);
    for (int r = 0; r < n; r++) {
        pid_t pid = fork();
        if (pid < 0) return simcse_error("--gpus: fork failed: %s", strerror(errno));
        if (pid == 0) {
            char v[16];
            snprintf(v, sizeof v, "%d", r);
            setenv("SIMCSE_RANK", v, 1);
            setenv("SIMCSE_LOCAL_RANK", v, 1);
            snprintf(v, sizeof v, "%d", n);
            setenv("SIMCSE_WORLD_SIZE", v, 1);
            setenv("SIMCSE_JOB_ID", job, 1);
            free(pids);
            return 1;
        }
        pids[r] = pid;
    }
    /* The first worker to fail takes the others down: they would wait for it in
     * their next collective. */
    int failed = 0, left = n;
    while (left > 0) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int r = 0;
        while (r < n && pids[r] != pid) r++;
        if (r == n) continue;
        pids[r] = 0;
        left--;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (!failed)
                for (int q = 0; q < n; q++)
                    if (pids[q] > 0) kill(pids[q], SIGTERM);
            failed++;
        }
    }
    free(pids);
    if (failed) return simcse_error("--gpus: %d of %d workers failed (see their messages above)", failed, n);
    return 0;
}
