/* Launching several ranks: one process per GPU through `simcse train --gpus N`
 * (forks N workers on this node), torchrun, mpirun or srun (ranks from their
 * environment), or threads as ranks on the CPU (`--ranks N`, the in-process
 * communicator). NCCL's unique id travels over TCP from rank 0 when MASTER_ADDR
 * and MASTER_PORT are set (torchrun sets them; so do cluster scripts), so nodes
 * need no shared filesystem; otherwise through a file that rank 0 writes
 * atomically and the others wait for (the output directory, shared across nodes). */
#ifndef SIMCSE_LAUNCH_H
#define SIMCSE_LAUNCH_H

#include "simcse/comm.h"

typedef struct {
    int rank, world, local_rank;
    const char *source; /* which launcher's variables were read ("none" for one process) */
} simcse_launch_env;

/* SIMCSE_RANK / SIMCSE_WORLD_SIZE / SIMCSE_LOCAL_RANK, torchrun's RANK / WORLD_SIZE /
 * LOCAL_RANK, Open MPI's OMPI_COMM_WORLD_*,
 * Slurm's SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, PMI_RANK / PMI_SIZE. */
int simcse_launch_env_read(simcse_launch_env *env);

/* The id file for a run writing to out_dir: $SIMCSE_NCCL_ID_FILE, else
 * out_dir/nccl_id.<job> with the launcher's job id. Caller frees. */
char *simcse_nccl_id_path(const char *out_dir);
/* Rank 0 makes the id and writes it; the others wait (up to timeout_s) to read it. */
int simcse_nccl_rendezvous(const simcse_launch_env *env, const char *path, int timeout_s,
                           unsigned char id[SIMCSE_NCCL_ID_BYTES]);

/* How the id travels, from the environment: TCP when MASTER_ADDR and MASTER_PORT
 * are set, the file otherwise; SIMCSE_RENDEZVOUS=tcp|file|auto forces one.
 * The port is MASTER_PORT, or MASTER_PORT + 1 under torchrun, whose agent holds
 * MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True); SIMCSE_RENDEZVOUS_PORT sets it.
 * SIMCSE_RENDEZVOUS_TIMEOUT: seconds every rank waits (default 300). */
typedef struct {
    int tcp;
    char addr[256];
    int port;
    int timeout_s;
} simcse_rendezvous_plan;
int simcse_rendezvous_plan_read(simcse_rendezvous_plan *plan);
/* Rank 0 makes the id; every rank ends with it (TCP or file, as planned). */
int simcse_nccl_id_share(const simcse_launch_env *env, const simcse_rendezvous_plan *plan, const char *out_dir,
                         unsigned char id[SIMCSE_NCCL_ID_BYTES]);

/* Forks n workers with SIMCSE_RANK etc. set; returns 1 in each worker (which goes
 * on to train), and in the parent waits for all and returns 0 when every worker
 * succeeded, -1 + error otherwise. */
int simcse_launch_local(int n);

#endif
