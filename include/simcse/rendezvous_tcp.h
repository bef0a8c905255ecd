/* Handing a small opaque blob (NCCL's 128-byte unique id) from rank 0 to every
 * other rank over TCP, as torchrun and cluster scripts expect: rank 0 listens on
 * a port (MASTER_PORT), the others connect to MASTER_ADDR:port. A multi-node run
 * then needs no shared filesystem.
 *
 * Rank 0 waits until all world - 1 ranks have checked in, then sends the blob to
 * each: a rank that never shows up makes every rank fail at the rendezvous with
 * a timeout naming the missing ranks, instead of hanging inside NCCL's init.
 * Each rank says who it is (rank, world size, blob size, protocol version);
 * rank 0 refuses a different world size, a duplicate or out-of-range rank, and
 * sends the refusal to every rank that is connected, so all of them fail with
 * the same one-line reason. Connections that do not speak the protocol (a port
 * scanner, a stray client) are dropped and do not count.
 *
 * Wire format (big-endian): hello = "simcseRV" u32 version u32 rank u32 world
 * u32 blob_len; reply = u8 status (0 ok, 1 refused) u32 n, then n bytes: the
 * blob, or the refusal's text. */
#ifndef SIMCSE_RENDEZVOUS_TCP_H
#define SIMCSE_RENDEZVOUS_TCP_H

#include <stddef.h>

/* Rank 0 (rank == 0) listens on port on every interface and sends blob[0..len);
 * other ranks connect to addr:port (a host name, IPv4 or IPv6 address; retried
 * until rank 0 listens) and receive blob[0..len). world == 1 returns at once.
 * Everything, connecting included, ends by timeout_ms. 0, or -1 + a one-line
 * error naming the rank, the address and the problem. */
int simcse_tcp_rendezvous(const char *addr, int port, int rank, int world, int timeout_ms, unsigned char *blob,
                          size_t len);

#endif
