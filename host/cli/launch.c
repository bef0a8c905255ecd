/* Rank discovery and the NCCL id rendezvous (see include/simcse/launch.h): the
 * policy of which method and which port lives here; the socket code is in
 * rendezvous_tcp.c. */
#include "simcse/launch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/rendezvous_tcp.h"

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
        /* before Slurm's: torchrun inside srun gives each worker its own RANK */
        {"RANK", "WORLD_SIZE", "LOCAL_RANK", "torchrun"},
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

static int env_positive(const char *name, int lo, int hi, int fallback, int *out) {
    const char *s = getenv(name);
    *out = fallback;
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return simcse_error("environment %s=%s: expected an integer in [%d, %d]", name, s, lo, hi);
    *out = (int)v;
    return 0;
}

int simcse_rendezvous_plan_read(simcse_rendezvous_plan *plan) {
    memset(plan, 0, sizeof *plan);
    const char *method = getenv("SIMCSE_RENDEZVOUS"), *addr = getenv("MASTER_ADDR"), *port = getenv("MASTER_PORT");
    if (method && *method && strcmp(method, "tcp") && strcmp(method, "file") && strcmp(method, "auto"))
        return simcse_error("environment SIMCSE_RENDEZVOUS=%s: expected tcp, file or auto", method);
    int have_addr = addr && *addr, have_port = port && *port;
    if (have_addr != have_port)
        return simcse_error("environment: %s is set but %s is not", have_addr ? "MASTER_ADDR" : "MASTER_PORT",
                            have_addr ? "MASTER_PORT" : "MASTER_ADDR");
    plan->tcp = method && !strcmp(method, "tcp") ? 1 : method && !strcmp(method, "file") ? 0 : have_addr;
    if (env_positive("SIMCSE_RENDEZVOUS_TIMEOUT", 1, 86400, 300, &plan->timeout_s) != 0) return -1;
    if (!plan->tcp) return 0;
    if (!have_addr) return simcse_error("SIMCSE_RENDEZVOUS=tcp needs MASTER_ADDR and MASTER_PORT");
    if (env_positive("MASTER_PORT", 1, 65535, 0, &plan->port) != 0) return -1;
    /* torchrun's agent already listens on MASTER_PORT (its own store, shared with
     * its workers when TORCHELASTIC_USE_AGENT_STORE is True): take the next port. */
    const char *agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
    if (agent && (!strcmp(agent, "True") || !strcmp(agent, "true") || !strcmp(agent, "1"))) {
        if (plan->port == 65535) return simcse_error("environment MASTER_PORT=65535: no port above it for simcse");
        plan->port++;
    }
    if (env_positive("SIMCSE_RENDEZVOUS_PORT", 1, 65535, plan->port, &plan->port) != 0) return -1;
    snprintf(plan->addr, sizeof plan->addr, "%s", addr);
    return 0;
}

int simcse_nccl_id_share(const simcse_launch_env *env, const simcse_rendezvous_plan *plan, const char *out_dir,
                         unsigned char id[SIMCSE_NCCL_ID_BYTES]) {
    if (!plan->tcp) {
        char *path = simcse_nccl_id_path(out_dir);
        int rc = simcse_nccl_rendezvous(env, path, plan->timeout_s, id);
        free(path);
        return rc;
    }
    if (env->rank == 0 && simcse_nccl_unique_id(id) != 0) return -1;
    return simcse_tcp_rendezvous(plan->addr, plan->port, env->rank, env->world, plan->timeout_s * 1000, id,
                                 SIMCSE_NCCL_ID_BYTES);
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
            /* one node: the id file in the output directory; a MASTER_PORT left in
             * the environment belongs to some other job */
            setenv("SIMCSE_RENDEZVOUS", "file", 0);
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
