/* simcse train: SimCSE fine-tuning from a JSON config. The output directory is
 * checked here, once per job (rank 0), before any rank writes into it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "simcse/checkpoint.h"
#include "simcse/cli.h"
#include "simcse/comm.h"
#include "simcse/common.h"
#include "simcse/export.h"
#include "simcse/launch.h"
#include "simcse/plot.h"
#include "simcse/run_dir.h"
#include "simcse/train_config.h"
#include "simcse/trainer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: simcse train --config FILE.json --output DIR [--overwrite] [--set key=value ...] [--device D]\n"
               "       simcse train --resume DIR [--set key=value ...] [--device D]\n"
               "  --config FILE     training configuration (configs/ has the paper's setups and demo.json)\n"
               "  --set key=value   override one key (repeatable)\n"
               "  --output DIR      where the model (Hugging Face + sentence-transformers directory), metrics.jsonl\n"
               "                    and the resumable checkpoint/ go; it must be new or empty\n"
               "  --overwrite       write into a non-empty --output (a previous run's files are replaced). The model\n"
               "                    directory, the tokenizer directory and any directory holding one of them are\n"
               "                    refused even so\n"
               "  --resume DIR      continue the run whose --output was DIR from DIR/checkpoint, after a stop or a\n"
               "                    kill at any moment: the same losses as an uninterrupted run, each step logged\n"
               "                    once. Only logging_steps, eval_steps, save_steps (--set) and --quiet may change;\n"
               "                    any other key, another --ranks/--gpus count or another backend is refused\n"
               "  --device D        cpu, cuda or auto (default auto)\n"
               "  --threads N       CPU threads (default: OMP_NUM_THREADS, else the cores this process may use)\n"
               "  --gpus N          N processes on this node, one per GPU, NCCL between them (torchrun, mpirun\n"
               "                    and srun work too: ranks come from their environment; with MASTER_ADDR and\n"
               "                    MASTER_PORT set, rank 0 hands out NCCL's id over TCP)\n"
               "  --ranks N         N threads as ranks on the CPU (the in-process communicator)\n"
               "  --nccl            use the NCCL path even with one GPU (to test and time it)\n"
               "  --quiet           no progress line\n\nconfiguration keys (default, meaning):\n");
    simcse_train_config_print_keys(f);
}

/* The tasks as the config names them (eval_tasks: "stsb", "sickr", "stsb,sickr": the average). */
static void print_summary(const simcse_train_summary *sum, const char *tasks) {
    if (sum->eval_before == sum->eval_before)
        printf("%s dev Spearman x100%s: before %.2f, after (best, step %lld) %.2f\n", tasks,
               strchr(tasks, ',') ? " (average)" : "", sum->eval_before, (long long)sum->best_step, sum->eval_best);
}

/* Every run leaves its picture; a missing gnuplot costs the picture, not the run. */
static void plot_run(const char *output) {
    if (simcse_plot_run(output, NULL) != 0)
        fprintf(stderr, "simcse: warning: no plot: %s\n", simcse_last_error());
    else
        fprintf(stderr, "simcse: plot: %s/plot.png\n", output);
}

/* A run that fails after logging (a diverged loss, a full disk) is drawn as far
 * as it got, then fails with its own error, not the plot's. */
noreturn static void fail_with_plot(const char *output, const char *error) {
    char msg[1200];
    snprintf(msg, sizeof msg, "%s", error);
    char *metrics = simcse_path_join(output, "metrics.jsonl");
    struct stat st;
    if (stat(metrics, &st) == 0 && st.st_size > 0 && simcse_plot_run(output, NULL) == 0)
        fprintf(stderr, "simcse: plot of the run so far: %s/plot.png\n", output);
    free(metrics);
    simcse_fatal("%s", msg);
}

typedef struct {
    const simcse_train_config *cfg;
    simcse_train_options opt;
    simcse_train_summary sum;
    int rc;
    char err[1024];
} rank_job;

static void *rank_main(void *p) {
    rank_job *j = p;
    j->rc = simcse_train(j->cfg, &j->opt, &j->sum);
    if (j->rc != 0) snprintf(j->err, sizeof j->err, "%s", simcse_last_error());
    return NULL;
}

/* --ranks N: threads as ranks on the CPU, one trainer each. */
static int train_threads(const simcse_train_config *cfg, const simcse_train_options *opt, int n) {
    if (strcmp(opt->device, "cpu") && strcmp(opt->device, "auto"))
        simcse_fatal("train: --ranks runs on the CPU; use --gpus for several GPUs");
    simcse_comm **comms = simcse_comm_threads_create(n);
    if (!comms) simcse_fatal("train: %s", simcse_last_error());
    rank_job *jobs = simcse_xcalloc((size_t)n, sizeof *jobs);
    pthread_t *th = simcse_xcalloc((size_t)n, sizeof *th);
    for (int r = 0; r < n; r++) {
        jobs[r].cfg = cfg;
        jobs[r].opt = *opt;
        jobs[r].opt.device = "cpu";
        jobs[r].opt.comm = comms[r];
        if (pthread_create(&th[r], NULL, rank_main, &jobs[r]) != 0) simcse_fatal("train: cannot start rank %d", r);
    }
    for (int r = 0; r < n; r++) pthread_join(th[r], NULL);
    /* a failing rank aborts the group, so the others fail too: report the cause first */
    int failed = -1;
    for (int r = 0; r < n && failed < 0; r++)
        if (jobs[r].rc != 0 && !strstr(jobs[r].err, "another rank failed")) failed = r;
    for (int r = 0; r < n && failed < 0; r++)
        if (jobs[r].rc != 0) failed = r;
    if (failed >= 0) {
        char msg[1100];
        snprintf(msg, sizeof msg, "rank %d: %s", failed, jobs[failed].err);
        fail_with_plot(opt->output_dir, msg);
    }
    print_summary(&jobs[0].sum, cfg->eval_tasks);
    plot_run(opt->output_dir);
    simcse_comm_threads_destroy(comms);
    free(jobs);
    free(th);
    return 0;
}

int simcse_cmd_train(int argc, char **argv) {
    simcse_train_config cfg;
    simcse_train_config_defaults(&cfg);
    const char *config = NULL, *output = NULL, *resume = NULL, *device = "auto", *val;
    int stop_after = 0, quiet = 0, gpus = 1, ranks = 1, force_nccl = 0, overwrite = 0;
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
        if (!strcmp(argv[i], "--nccl")) {
            force_nccl = 1;
            continue;
        }
        if (!strcmp(argv[i], "--overwrite")) {
            overwrite = 1;
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
            (r = simcse_arg_str(argc, argv, &i, "--device", &device)) || (r = simcse_arg_threads(argc, argv, &i)) ||
            (r = simcse_arg_int(argc, argv, &i, "--stop-after", 1, 1 << 30, &stop_after)) ||
            (r = simcse_arg_int(argc, argv, &i, "--gpus", 1, 1024, &gpus)) ||
            (r = simcse_arg_int(argc, argv, &i, "--ranks", 1, 64, &ranks))) {
            if (r < 0) simcse_fatal("train: %s", simcse_last_error());
            continue;
        }
        fprintf(stderr, "simcse: error: train: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    simcse_launch_env env;
    if (simcse_launch_env_read(&env) != 0) simcse_fatal("train: %s", simcse_last_error());
    if (resume) {
        if (config || output)
            simcse_fatal("train: --resume continues with the saved configuration; drop --config and --output");
        if (overwrite) simcse_fatal("train: --overwrite starts a fresh run; --resume continues %s as it is", resume);
        /* a kill may have left the swap half done: put the latest complete checkpoint in place */
        if (simcse_checkpoint_recover(resume) != 0) simcse_fatal("%s", simcse_last_error());
        char *ck = simcse_path_join(resume, "checkpoint");
        struct stat sb;
        if (stat(ck, &sb) != 0)
            simcse_fatal("%s: no checkpoint to resume (the run stopped before its step-0 checkpoint, so nothing was "
                         "trained): start it again with --config, --output %s and --overwrite",
                         resume, resume);
        free(ck);
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
    if (env.rank == 0 && simcse_run_dir_check(output, &cfg, overwrite, resume != NULL) != 0)
        simcse_fatal("train: %s", simcse_last_error());
    simcse_train_options opt = {
        .output_dir = output, .device = device, .resume = resume != NULL, .stop_after = stop_after, .quiet = quiet};
    if (ranks > 1) return train_threads(&cfg, &opt, ranks);

    if (gpus > 1 && env.world == 1) {
        int r = simcse_launch_local(gpus);
        if (r < 0) simcse_fatal("train: %s", simcse_last_error());
        if (r == 0) return 0; /* the launcher: every worker finished */
        if (simcse_launch_env_read(&env) != 0) simcse_fatal("train: %s", simcse_last_error());
    }
    simcse_comm *comm = NULL;
    if (env.world > 1 || force_nccl) {
        if (!strcmp(device, "cpu"))
            simcse_fatal("train: several processes need GPUs (--device cuda); --ranks N runs ranks on the CPU");
        simcse_rendezvous_plan plan;
        if (simcse_rendezvous_plan_read(&plan) != 0) simcse_fatal("train: %s", simcse_last_error());
        if (!plan.tcp && simcse_mkdirs(output) != 0) simcse_fatal("%s", simcse_last_error());
        unsigned char id[SIMCSE_NCCL_ID_BYTES];
        if (simcse_nccl_id_share(&env, &plan, output, id) != 0) simcse_fatal("train: %s", simcse_last_error());
        if (env.rank == 0 && !quiet) {
            if (plan.tcp)
                fprintf(stderr, "simcse: %d ranks (%s variables): NCCL id handed out over TCP on port %d\n", env.world,
                        env.source, plan.port);
            else
                fprintf(stderr, "simcse: %d ranks (%s variables): NCCL id shared through a file in %s\n", env.world,
                        env.source, output);
        }
        comm = simcse_comm_nccl_create(env.rank, env.world, id, env.local_rank);
        if (!comm) simcse_fatal("train: %s", simcse_last_error());
        opt.comm = comm;
        opt.gpu = env.local_rank;
        opt.device = "cuda";
    }
    simcse_train_summary sum;
    if (simcse_train(&cfg, &opt, &sum) != 0) {
        if (env.rank == 0) fail_with_plot(output, simcse_last_error());
        simcse_fatal("%s", simcse_last_error());
    }
    if (comm) comm->destroy(comm);
    if (env.rank == 0) {
        print_summary(&sum, cfg.eval_tasks);
        plot_run(output);
    }
    return 0;
}
