/* The TCP rendezvous (see include/simcse/rendezvous_tcp.h).
 *
 * Plain POSIX sockets and poll(): one small exchange per rank, once per run.
 * Rank 0 keeps one poll set of the listening socket and every accepted
 * connection, so a client that connects and then says nothing cannot hold up
 * the others, and every wait is bounded by the one deadline. The clients retry
 * their connect until rank 0 listens (ranks start in any order). */
#include "simcse/rendezvous_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "simcse/common.h"

#define MAGIC "simcseRV"
#define MAGIC_LEN 8
#define VERSION 1u
#define HELLO_LEN (MAGIC_LEN + 16)
#define MAX_MESSAGE 1024

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int ms_left(double deadline) {
    double left = deadline - now_ms();
    return left <= 0 ? 0 : left > 1e9 ? 1000000000 : (int)left + 1;
}

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes all of buf before the deadline (sockets are non-blocking). 0 or -1 (errno set). */
static int send_all(int fd, const void *buf, size_t n, double deadline) {
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        struct pollfd pf = {fd, POLLOUT, 0};
        int left = ms_left(deadline);
        if (left == 0 || (poll(&pf, 1, left) == 0)) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/* Reads exactly n bytes before the deadline. 0, or -1 with errno (0: the peer closed). */
static int recv_all(int fd, void *buf, size_t n, double deadline) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0) {
            errno = 0;
            return -1;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        int left = ms_left(deadline);
        if (left == 0 || poll(&pf, 1, left) == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

static void set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* status 0: the blob; 1: a refusal's text. */
static int send_reply(int fd, int status, const void *data, size_t n, double deadline) {
    unsigned char head[5];
    head[0] = (unsigned char)status;
    put_u32(head + 1, (uint32_t)n);
    if (send_all(fd, head, sizeof head, deadline) != 0) return -1;
    return send_all(fd, data, n, deadline);
}

/* ---- rank 0 ---- */

static int listen_on(int port) {
    /* IPv6 with IPv4-mapped addresses takes both families; IPv4 alone where the
     * kernel has no IPv6. */
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    if (fd >= 0) {
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)port);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, (struct sockaddr *)&a6, sizeof a6) == 0 && listen(fd, 128) == 0) return fd;
        int e = errno;
        close(fd);
        if (e != EAFNOSUPPORT && e != EADDRNOTAVAIL) {
            errno = e;
            return -1;
        }
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    a4.sin_port = htons((uint16_t)port);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a4, sizeof a4) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

typedef struct {
    int fd;
    size_t got;
    unsigned char hello[HELLO_LEN];
} pending_conn;

/* Checks a complete hello; 1 = a rank joined (*rank_out), 0 = not our protocol
 * (drop the connection), -1 = a refusal (message in why). */
static int check_hello(const unsigned char *h, int world, size_t len, const int *joined_fd, int *rank_out, char *why,
                       size_t cap) {
    if (memcmp(h, MAGIC, MAGIC_LEN) != 0) return 0;
    uint32_t version = get_u32(h + MAGIC_LEN), rank = get_u32(h + MAGIC_LEN + 4),
             their_world = get_u32(h + MAGIC_LEN + 8), their_len = get_u32(h + MAGIC_LEN + 12);
    if (version != VERSION) {
        snprintf(why, cap, "a rank speaks rendezvous protocol %u, rank 0 speaks %u (mixed simcse versions)",
                 (unsigned)version, VERSION);
        return -1;
    }
    if (their_world != (uint32_t)world) {
        snprintf(why, cap, "rank %u has WORLD_SIZE=%u, rank 0 has WORLD_SIZE=%d", (unsigned)rank, (unsigned)their_world,
                 world);
        return -1;
    }
    if (rank == 0 || rank >= (uint32_t)world) {
        snprintf(why, cap, "a rank says it is rank %u; expected 1..%d for WORLD_SIZE=%d", (unsigned)rank, world - 1,
                 world);
        return -1;
    }
    if (joined_fd[rank] >= 0) {
        snprintf(why, cap, "rank %u connected twice (two processes with RANK=%u?)", (unsigned)rank, (unsigned)rank);
        return -1;
    }
    if (their_len != len) {
        snprintf(why, cap, "rank %u expects a %u-byte id, rank 0 has %zu bytes (mixed simcse builds)", (unsigned)rank,
                 (unsigned)their_len, len);
        return -1;
    }
    *rank_out = (int)rank;
    return 1;
}

static int serve(int port, int world, int timeout_ms, const unsigned char *blob, size_t len) {
    int lfd = listen_on(port);
    if (lfd < 0)
        return simcse_error(
            "TCP rendezvous: rank 0 cannot listen on port %d: %s%s", port, strerror(errno),
            errno == EADDRINUSE ? " (another job on this port? set MASTER_PORT or SIMCSE_RENDEZVOUS_PORT)" : "");
    set_nonblocking(lfd);
    double deadline = now_ms() + timeout_ms;
    int *joined_fd = simcse_xmalloc((size_t)world * sizeof *joined_fd);
    for (int r = 0; r < world; r++) joined_fd[r] = -1;
    int n_joined = 0, cap = 16, n_pending = 0, rc = 0;
    pending_conn *pend = simcse_xcalloc((size_t)cap, sizeof *pend);
    struct pollfd *pfd = NULL;
    char why[512] = "";
    while (n_joined < world - 1) {
        int left = ms_left(deadline);
        if (left == 0) {
            char missing[256] = "";
            size_t used = 0;
            int n_missing = 0;
            for (int r = 1; r < world; r++) {
                if (joined_fd[r] >= 0) continue;
                if (n_missing++ < 16 && used < sizeof missing)
                    used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%d", used ? ", " : "", r);
            }
            if (n_missing > 16 && used < sizeof missing) snprintf(missing + used, sizeof missing - used, ", ...");
            snprintf(why, sizeof why, "rank%s %s of WORLD_SIZE=%d did not connect to port %d within %.1f s",
                     n_missing > 1 ? "s" : "", missing, world, port, timeout_ms / 1e3);
            rc = -1;
            break;
        }
        pfd = simcse_xrealloc(pfd, (size_t)(n_pending + 1) * sizeof *pfd);
        pfd[0] = (struct pollfd){lfd, POLLIN, 0};
        for (int i = 0; i < n_pending; i++) pfd[i + 1] = (struct pollfd){pend[i].fd, POLLIN, 0};
        int ready = poll(pfd, (nfds_t)(n_pending + 1), left);
        if (ready < 0 && errno != EINTR) {
            snprintf(why, sizeof why, "poll failed: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (ready <= 0) continue;
        /* read what the pending connections sent (back to front: entries are removed) */
        for (int i = n_pending - 1; i >= 0 && rc == 0; i--) {
            if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            pending_conn *p = &pend[i];
            ssize_t r = recv(p->fd, p->hello + p->got, HELLO_LEN - p->got, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            int drop = r <= 0, rank = -1;
            if (r > 0 && (p->got += (size_t)r) == HELLO_LEN) {
                int k = check_hello(p->hello, world, len, joined_fd, &rank, why, sizeof why);
                if (k < 0) {
                    send_reply(p->fd, 1, why, strlen(why), now_ms() + 1000);
                    rc = -1;
                }
                if (k == 1) {
                    joined_fd[rank] = p->fd;
                    n_joined++;
                    p->fd = -1;
                }
                drop = 1;
            } else if (r > 0 && p->got >= MAGIC_LEN && memcmp(p->hello, MAGIC, MAGIC_LEN) != 0) {
                drop = 1; /* not our protocol */
            }
            if (drop) {
                if (p->fd >= 0) close(p->fd);
                pend[i] = pend[--n_pending];
            }
        }
        if (rc != 0) break;
        if (pfd[0].revents & POLLIN) {
            for (;;) {
                int c = accept(lfd, NULL, NULL);
                if (c < 0) break;
                fcntl(c, F_SETFD, FD_CLOEXEC);
                set_nonblocking(c);
                if (n_pending == cap) {
                    cap *= 2;
                    pend = simcse_xrealloc(pend, (size_t)cap * sizeof *pend);
                }
                pend[n_pending++] = (pending_conn){.fd = c, .got = 0};
            }
        }
    }
    close(lfd);
    for (int i = 0; i < n_pending; i++) close(pend[i].fd);
    /* the id to everyone, or the reason to everyone who is there to hear it */
    double send_deadline = now_ms() + (timeout_ms < 10000 ? timeout_ms : 10000);
    int send_failed = -1, send_errno = 0;
    for (int r = 1; r < world; r++) {
        if (joined_fd[r] < 0) continue;
        int s = rc == 0 ? send_reply(joined_fd[r], 0, blob, len, send_deadline)
                        : send_reply(joined_fd[r], 1, why, strlen(why), send_deadline);
        if (s != 0 && send_failed < 0) {
            send_failed = r;
            send_errno = errno;
        }
        close(joined_fd[r]);
    }
    free(joined_fd);
    free(pend);
    free(pfd);
    if (rc != 0) return simcse_error("TCP rendezvous: rank 0: %s", why);
    if (send_failed >= 0)
        return simcse_error("TCP rendezvous: rank 0 could not send the id to rank %d: %s", send_failed,
                            strerror(send_errno));
    return 0;
}

/* ---- the other ranks ---- */

/* One connect attempt to any address of addr:port, bounded by the deadline.
 * The socket, or -1 with errno (and *resolve_error for a name that does not resolve). */
static int connect_once(const char *addr, int port, double deadline, int *resolve_error) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(addr, service, &hints, &res);
    if (g != 0) {
        *resolve_error = g;
        return -1;
    }
    *resolve_error = 0;
    int fd = -1, err = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        set_nonblocking(fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            struct pollfd pf = {fd, POLLOUT, 0};
            int left = ms_left(deadline);
            int soerr = ETIMEDOUT;
            socklen_t sl = sizeof soerr;
            if (left > 0 && poll(&pf, 1, left) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
                soerr == 0)
                break;
            err = soerr;
        } else {
            err = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) errno = err;
    return fd;
}

static int join(const char *addr, int port, int rank, int world, int timeout_ms, unsigned char *blob, size_t len) {
    double deadline = now_ms() + timeout_ms;
    int fd = -1, last_errno = 0, resolve_error = 0;
    while (fd < 0) {
        fd = connect_once(addr, port, deadline, &resolve_error);
        if (fd >= 0) break;
        last_errno = errno;
        if (ms_left(deadline) == 0) {
            const char *reason = resolve_error ? gai_strerror(resolve_error) : strerror(last_errno);
            return simcse_error("TCP rendezvous: rank %d could not reach rank 0 at %s:%d within %.1f s: %s%s", rank,
                                addr, port, timeout_ms / 1e3, reason,
                                resolve_error ? "" : " (is rank 0 running? MASTER_ADDR and MASTER_PORT right?)");
        }
        struct timespec ts = {0, 100 * 1000 * 1000}; /* rank 0 may not listen yet */
        nanosleep(&ts, NULL);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char hello[HELLO_LEN];
    memcpy(hello, MAGIC, MAGIC_LEN);
    put_u32(hello + MAGIC_LEN, VERSION);
    put_u32(hello + MAGIC_LEN + 4, (uint32_t)rank);
    put_u32(hello + MAGIC_LEN + 8, (uint32_t)world);
    put_u32(hello + MAGIC_LEN + 12, (uint32_t)len);
    unsigned char head[5];
    int rc = 0;
    if (send_all(fd, hello, sizeof hello, deadline) != 0 || recv_all(fd, head, sizeof head, deadline) != 0) {
        int e = errno;
        rc = simcse_error("TCP rendezvous: rank %d: %s from rank 0 at %s:%d%s", rank,
                          e == ETIMEDOUT ? "no id" : "connection lost", addr, port,
                          e == ETIMEDOUT ? " within the timeout (rank 0 waits for ranks that have not connected)"
                          : e == 0       ? " (rank 0 closed it: did it fail?)"
                                         : "");
    } else {
        uint32_t n = get_u32(head + 1);
        if (head[0] == 0 && n == len) {
            if (recv_all(fd, blob, len, deadline) != 0)
                rc = simcse_error("TCP rendezvous: rank %d: the id from %s:%d was cut short", rank, addr, port);
        } else if (head[0] == 1 && n <= MAX_MESSAGE) {
            char msg[MAX_MESSAGE + 1];
            if (recv_all(fd, msg, n, deadline) != 0) n = 0;
            msg[n] = 0;
            rc = simcse_error("TCP rendezvous: rank %d: refused by rank 0 at %s:%d: %s", rank, addr, port,
                              n ? msg : "(no reason received)");
        } else {
            rc = simcse_error("TCP rendezvous: rank %d: %s:%d answered something that is not a simcse rank 0", rank,
                              addr, port);
        }
    }
    close(fd);
    return rc;
}

int simcse_tcp_rendezvous(const char *addr, int port, int rank, int world, int timeout_ms, unsigned char *blob,
                          size_t len) {
    if (world < 1 || rank < 0 || rank >= world)
        return simcse_error("TCP rendezvous: rank %d is not in 0..%d (WORLD_SIZE=%d)", rank, world - 1, world);
    if (port < 1 || port > 65535) return simcse_error("TCP rendezvous: port %d is not in 1..65535", port);
    if (len > MAX_MESSAGE * 64) return simcse_error("TCP rendezvous: a %zu-byte blob is too large", len);
    if (timeout_ms < 1) timeout_ms = 1;
    if (world == 1) return 0;
    if (rank == 0) return serve(port, world, timeout_ms, blob, len);
    if (!addr || !*addr) return simcse_error("TCP rendezvous: rank %d has no address for rank 0 (MASTER_ADDR)", rank);
    return join(addr, port, rank, world, timeout_ms, blob, len);
}
