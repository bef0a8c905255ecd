/* The TCP rendezvous over loopback: the ranks other than 0 are forked processes
 * (as under torchrun), rank 0 is the test process. Each child reports back
 * through a pipe: 0 + the blob it received, or 1 + its error message. Timeouts
 * are short so a failure shows as an error here, not a hung suite. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/launch.h"
#include "simcse/rendezvous_tcp.h"

#define ID_LEN 128

/* A port nobody listens on right now (the kernel's pick for port 0). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t n = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct {
    pid_t pid;
    int fd;
} rank_proc;

static rank_proc start_rank(const char *addr, int port, int rank, int world, int timeout_ms) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        unsigned char blob[ID_LEN];
        memset(blob, 0, sizeof blob);
        int rc = simcse_tcp_rendezvous(addr, port, rank, world, timeout_ms, blob, ID_LEN);
        unsigned char status = rc == 0 ? 0 : 1;
        ssize_t w = write(p[1], &status, 1);
        if (rc == 0)
            w += write(p[1], blob, ID_LEN);
        else
            w += write(p[1], simcse_last_error(), strlen(simcse_last_error()) + 1);
        _exit(w > 0 ? 0 : 3);
    }
    close(p[1]);
    return (rank_proc){pid, p[0]};
}

/* The child's result: 0 and its blob, or 1 and its message. */
static int finish_rank(rank_proc r, unsigned char blob[ID_LEN], char *msg, size_t cap) {
    unsigned char buf[1 + 2048];
    size_t got = 0;
    ssize_t n;
    while ((n = read(r.fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
    close(r.fd);
    int st;
    cr_assert_eq(waitpid(r.pid, &st, 0), r.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank process died");
    cr_assert(got >= 1, "rank process reported nothing");
    if (buf[0] == 0) {
        cr_assert_eq(got, 1 + ID_LEN);
        memcpy(blob, buf + 1, ID_LEN);
        return 0;
    }
    buf[got] = 0;
    snprintf(msg, cap, "%s", (const char *)buf + 1);
    return 1;
}

static void random_blob(unsigned char *b) {
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int i = 0; i < ID_LEN; i++) b[i] = (unsigned char)rand();
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(rendezvous, the_id_arrives_at_every_rank, .timeout = 30) {
    const int world = 4;
    int port = free_port();
    unsigned char id[ID_LEN], got[ID_LEN];
    random_blob(id);
    /* the ranks start before rank 0 listens: they must retry, not fail */
    rank_proc r[4];
    for (int k = 1; k < world; k++) r[k] = start_rank(k == 2 ? "localhost" : "127.0.0.1", port, k, world, 10000);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    cr_assert_eq(simcse_tcp_rendezvous(NULL, port, 0, world, 10000, id, ID_LEN), 0, "%s", simcse_last_error());
    for (int k = 1; k < world; k++) {
        char msg[2048];
        memset(got, 0, sizeof got);
        cr_assert_eq(finish_rank(r[k], got, msg, sizeof msg), 0, "rank %d: %s", k, msg);
        cr_assert(memcmp(got, id, ID_LEN) == 0, "rank %d received a different id", k);
    }
}

Test(rendezvous, a_stray_connection_does_not_count_as_a_rank, .timeout = 30) {
    int port = free_port();
    unsigned char id[ID_LEN], got[ID_LEN];
    random_blob(id);
    pid_t stray = fork();
    cr_assert(stray >= 0);
    if (stray == 0) { /* connects as soon as rank 0 listens, sends an HTTP request, lingers */
        for (int i = 0; i < 100; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
                const char *req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"; /* longer than a hello */
                ssize_t w = write(fd, req, strlen(req));
                sleep(2);
                _exit(w > 0 ? 0 : 1);
            }
            close(fd);
            struct timespec p = {0, 20 * 1000 * 1000};
            nanosleep(&p, NULL);
        }
        _exit(1);
    }
    rank_proc r = start_rank("127.0.0.1", port, 1, 2, 10000);
    cr_assert_eq(simcse_tcp_rendezvous(NULL, port, 0, 2, 10000, id, ID_LEN), 0, "%s", simcse_last_error());
    char msg[2048];
    cr_assert_eq(finish_rank(r, got, msg, sizeof msg), 0, "%s", msg);
    cr_assert(memcmp(got, id, ID_LEN) == 0);
    kill(stray, SIGTERM);
    waitpid(stray, NULL, 0);
}

Test(rendezvous, a_rank_that_never_shows_up_is_a_timeout_naming_it, .timeout = 30) {
    int port = free_port();
    unsigned char id[ID_LEN], got[ID_LEN];
    random_blob(id);
    rank_proc r = start_rank("127.0.0.1", port, 1, 3, 10000); /* rank 2 of 3 never starts */
    double t0 = seconds();
    cr_assert_eq(simcse_tcp_rendezvous(NULL, port, 0, 3, 700, id, ID_LEN), -1);
    double took = seconds() - t0;
    const char *e = simcse_last_error();
    cr_assert(strstr(e, "rank 2 ") && strstr(e, "did not connect") && strstr(e, "0.7 s"), "%s", e);
    cr_assert(!strchr(e, '\n'));
    cr_assert(took >= 0.6 && took < 5, "took %.2f s", took);
    /* the rank that came is told why, rather than waiting for its own timeout */
    char msg[2048];
    cr_assert_eq(finish_rank(r, got, msg, sizeof msg), 1);
    cr_assert(strstr(msg, "rank 1") && strstr(msg, "refused") && strstr(msg, "rank 2 "), "%s", msg);
    cr_assert(seconds() - t0 < 5);
}

Test(rendezvous, no_rank_0_is_a_timeout_naming_the_address, .timeout = 30) {
    int port = free_port();
    unsigned char got[ID_LEN];
    double t0 = seconds();
    cr_assert_eq(simcse_tcp_rendezvous("127.0.0.1", port, 1, 2, 600, got, ID_LEN), -1);
    const char *e = simcse_last_error();
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    cr_assert(strstr(e, "rank 1") && strstr(e, where) && strstr(e, "0.6 s"), "%s", e);
    cr_assert(seconds() - t0 < 5);
    cr_assert_eq(simcse_tcp_rendezvous("no-such-host.invalid", port, 1, 2, 300, got, ID_LEN), -1);
    cr_assert(strstr(simcse_last_error(), "no-such-host.invalid"), "%s", simcse_last_error());
}

Test(rendezvous, a_wrong_world_size_is_refused, .timeout = 30) {
    int port = free_port();
    unsigned char id[ID_LEN], got[ID_LEN];
    random_blob(id);
    rank_proc r = start_rank("127.0.0.1", port, 1, 3, 10000); /* thinks the world is 3 */
    double t0 = seconds();
    cr_assert_eq(simcse_tcp_rendezvous(NULL, port, 0, 2, 10000, id, ID_LEN), -1);
    const char *e = simcse_last_error();
    cr_assert(strstr(e, "rank 1 has WORLD_SIZE=3") && strstr(e, "rank 0 has WORLD_SIZE=2"), "%s", e);
    cr_assert(seconds() - t0 < 5, "a refusal must not wait for the timeout");
    char msg[2048];
    cr_assert_eq(finish_rank(r, got, msg, sizeof msg), 1);
    cr_assert(strstr(msg, "refused") && strstr(msg, "WORLD_SIZE=3"), "%s", msg);
}

Test(rendezvous, a_duplicate_rank_is_refused, .timeout = 30) {
    int port = free_port();
    unsigned char id[ID_LEN], got[ID_LEN];
    random_blob(id);
    rank_proc a = start_rank("127.0.0.1", port, 1, 3, 10000), b = start_rank("127.0.0.1", port, 1, 3, 10000);
    cr_assert_eq(simcse_tcp_rendezvous(NULL, port, 0, 3, 10000, id, ID_LEN), -1);
    cr_assert(strstr(simcse_last_error(), "rank 1 connected twice"), "%s", simcse_last_error());
    char msg[2048];
    cr_assert_eq(finish_rank(a, got, msg, sizeof msg), 1);
    cr_assert_eq(finish_rank(b, got, msg, sizeof msg), 1);
}

Test(rendezvous, the_plan_follows_torchrun_and_cluster_variables) {
    const char *vars[] = {"SIMCSE_RENDEZVOUS",
                          "SIMCSE_RENDEZVOUS_PORT",
                          "SIMCSE_RENDEZVOUS_TIMEOUT",
                          "MASTER_ADDR",
                          "MASTER_PORT",
                          "TORCHELASTIC_USE_AGENT_STORE",
                          "SIMCSE_RANK",
                          "RANK",
                          "WORLD_SIZE",
                          "LOCAL_RANK",
                          "OMPI_COMM_WORLD_RANK",
                          "SLURM_PROCID",
                          "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    simcse_rendezvous_plan p;
    cr_assert_eq(simcse_rendezvous_plan_read(&p), 0);
    cr_assert_eq(p.tcp, 0);
    cr_assert_eq(p.timeout_s, 300);

    /* torchrun: ranks from RANK / WORLD_SIZE / LOCAL_RANK, its agent holds MASTER_PORT */
    setenv("RANK", "5", 1);
    setenv("WORLD_SIZE", "8", 1);
    setenv("LOCAL_RANK", "1", 1);
    setenv("SLURM_PROCID", "0", 1); /* torchrun inside srun: the worker's RANK wins */
    setenv("SLURM_NTASKS", "2", 1);
    simcse_launch_env env;
    cr_assert_eq(simcse_launch_env_read(&env), 0, "%s", simcse_last_error());
    cr_assert_eq(env.rank, 5);
    cr_assert_eq(env.world, 8);
    cr_assert_eq(env.local_rank, 1);
    cr_assert_str_eq(env.source, "torchrun");
    setenv("MASTER_ADDR", "node17", 1);
    setenv("MASTER_PORT", "29500", 1);
    setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
    cr_assert_eq(simcse_rendezvous_plan_read(&p), 0, "%s", simcse_last_error());
    cr_assert_eq(p.tcp, 1);
    cr_assert_str_eq(p.addr, "node17");
    cr_assert_eq(p.port, 29501);
    unsetenv("TORCHELASTIC_USE_AGENT_STORE"); /* a cluster script's own MASTER_PORT is free for rank 0 */
    cr_assert_eq(simcse_rendezvous_plan_read(&p), 0);
    cr_assert_eq(p.port, 29500);
    setenv("SIMCSE_RENDEZVOUS_PORT", "31000", 1);
    setenv("SIMCSE_RENDEZVOUS_TIMEOUT", "12", 1);
    cr_assert_eq(simcse_rendezvous_plan_read(&p), 0);
    cr_assert_eq(p.port, 31000);
    cr_assert_eq(p.timeout_s, 12);
    setenv("SIMCSE_RENDEZVOUS", "file", 1); /* what `--gpus N` sets for its workers */
    cr_assert_eq(simcse_rendezvous_plan_read(&p), 0);
    cr_assert_eq(p.tcp, 0);

    /* half a configuration is an error naming what is missing */
    unsetenv("SIMCSE_RENDEZVOUS");
    unsetenv("MASTER_PORT");
    cr_assert_eq(simcse_rendezvous_plan_read(&p), -1);
    cr_assert(strstr(simcse_last_error(), "MASTER_PORT"), "%s", simcse_last_error());
    setenv("MASTER_PORT", "http", 1);
    cr_assert_eq(simcse_rendezvous_plan_read(&p), -1);
    cr_assert(strstr(simcse_last_error(), "MASTER_PORT=http"), "%s", simcse_last_error());
    setenv("MASTER_PORT", "29500", 1);
    setenv("SIMCSE_RENDEZVOUS", "carrier-pigeon", 1);
    cr_assert_eq(simcse_rendezvous_plan_read(&p), -1);
    cr_assert(strstr(simcse_last_error(), "SIMCSE_RENDEZVOUS"), "%s", simcse_last_error());
    unsetenv("WORLD_SIZE");
    cr_assert_eq(simcse_launch_env_read(&env), -1);
    cr_assert(strstr(simcse_last_error(), "WORLD_SIZE"), "%s", simcse_last_error());
}
