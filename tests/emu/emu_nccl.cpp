// The NCCL stand-in of the CPU harness: ranks are host threads of one process, each on its
// own emulated device (tests/emu/include/nccl.h).
//
// How it works. ncclGetUniqueId makes an id that names a group in this process (a magic, the
// pid and a random key); ncclCommInitRank joins it and, as in NCCL, blocks until all nranks
// ranks have joined (inside ncclGroupStart/End: until ncclGroupEnd). A collective checks its
// arguments when it is called (types, operations, device buffers of the communicator's
// device, NCCL's in-place rules) and queues its work on the stream with emu_stream_submit, so
// it runs in stream order like a kernel and can be captured in a graph. Each call gets the
// next sequence number of its communicator; when a rank's work for number s runs, it waits
// for every rank's work for s, the last one to arrive checks that all ranks called the same
// collective with the same count, type and operation, computes every rank's result in rank
// order (deterministic) into temporaries and writes them out, and all ranks continue.
//
// Errors a GPU run would turn into a hang or silent garbage are errors here: ranks that call
// different collectives at the same position, a rank that never arrives (after
// EMU_NCCL_TIMEOUT_S seconds, default 120, naming the missing ranks), two ranks on one device,
// an id from another process, a communicator used after ncclCommDestroy or ncclCommAbort.
// ncclCommAbort wakes the peers waiting in a collective: their work ends without writing,
// their communicator reports ncclRemoteError from ncclCommGetAsyncError and from every later
// call, so a failing rank stops the group instead of leaving it waiting.
#include <emu/emu.h>
#include <nccl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "emu_blas_core.h"

namespace {

const uint64_t ID_MAGIC = 0x4c43434e756d65ull; // "emuNCCL"

enum Kind { ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER };
const char *kind_name(Kind k) {
    return k == ALL_REDUCE ? "ncclAllReduce" : k == ALL_GATHER ? "ncclAllGather" : "ncclReduceScatter";
}

struct Entry {
    Kind kind;
    const void *send;
    void *recv;
    size_t count; // AllReduce: count; AllGather: sendcount; ReduceScatter: recvcount
    ncclDataType_t type;
    ncclRedOp_t op;
};

struct Slot {
    std::vector<Entry> e;
    std::vector<bool> in;
    int arrived = 0, left = 0;
    bool done = false;
};

struct Group {
    uint64_t key;
    int nranks;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<int> device; // per rank, -1 until joined
    int joined = 0;
    int aborted_by = -1;
    std::map<uint64_t, Slot> slots;
};

struct CommState {
    std::shared_ptr<Group> g;
    int rank, nranks, device;
    uint64_t next_seq = 0;
    ncclResult_t async = ncclSuccess; // guarded by g->mu
};

std::mutex g_reg_mu;
std::map<uint64_t, std::weak_ptr<Group>> g_groups;
std::set<uint64_t> g_issued; // keys made by ncclGetUniqueId in this process

thread_local std::string t_last_error;
thread_local int t_group_depth = 0;
thread_local std::vector<std::function<ncclResult_t()>> t_group_ops;

ncclResult_t nccl_error(ncclResult_t r, const char *call, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
ncclResult_t nccl_error(ncclResult_t r, const char *call, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t_last_error = std::string(call) + ": " + msg;
    fprintf(stderr, "emu: %s: %s (%s)\n", call, msg, ncclGetErrorString(r));
    return r;
}

int timeout_s() {
    const char *e = getenv("EMU_NCCL_TIMEOUT_S");
    int t = e && *e ? atoi(e) : 120;
    return t > 0 ? t : 120;
}

int type_size(ncclDataType_t t) {
    switch (t) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    default: return 0;
    }
}

double load(ncclDataType_t t, const void *p, size_t i) {
    switch (t) {
    case ncclInt8: return ((const int8_t *)p)[i];
    case ncclUint8: return ((const uint8_t *)p)[i];
    case ncclInt32: return ((const int32_t *)p)[i];
    case ncclUint32: return ((const uint32_t *)p)[i];
    case ncclInt64: return (double)((const int64_t *)p)[i];
    case ncclUint64: return (double)((const uint64_t *)p)[i];
    case ncclFloat16: return emu_blas::f16_to_f32(((const uint16_t *)p)[i]);
    case ncclBfloat16: return emu_blas::bf16_to_f32(((const uint16_t *)p)[i]);
    case ncclFloat32: return ((const float *)p)[i];
    default: return ((const double *)p)[i];
    }
}

// Rounds v to the type (the reductions accumulate in the element type, as NCCL's do).
double in_type(ncclDataType_t t, double v) {
    switch (t) {
    case ncclFloat16: return emu_blas::f16_to_f32(emu_blas::f32_to_f16((float)v));
    case ncclBfloat16: return emu_blas::bf16_to_f32(emu_blas::f32_to_bf16((float)v));
    case ncclFloat32: return (float)v;
    default: return v;
    }
}

void store(ncclDataType_t t, void *p, size_t i, double v) {
    switch (t) {
    case ncclInt8: ((int8_t *)p)[i] = (int8_t)v; break;
    case ncclUint8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case ncclInt32: ((int32_t *)p)[i] = (int32_t)v; break;
    case ncclUint32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case ncclInt64: ((int64_t *)p)[i] = (int64_t)v; break;
    case ncclUint64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case ncclFloat16: ((uint16_t *)p)[i] = emu_blas::f32_to_f16((float)v); break;
    case ncclBfloat16: ((uint16_t *)p)[i] = emu_blas::f32_to_bf16((float)v); break;
    case ncclFloat32: ((float *)p)[i] = (float)v; break;
    default: ((double *)p)[i] = v; break;
    }
}

// Exact integer reductions of 64-bit values would lose bits through double: the stand-in
// reduces integers through int64 arithmetic instead.
bool is_int(ncclDataType_t t) {
    return t == ncclInt8 || t == ncclUint8 || t == ncclInt32 || t == ncclUint32 || t == ncclInt64 || t == ncclUint64;
}

double reduce2(ncclRedOp_t op, ncclDataType_t t, double a, double b) {
    switch (op) {
    case ncclSum:
    case ncclAvg: return in_type(t, a + b);
    case ncclProd: return in_type(t, a * b);
    case ncclMax: return a > b ? a : b;
    default: return a < b ? a : b;
    }
}

// The last rank to arrive computes everything: every read happens before any write, so
// in-place buffers are safe.
void execute(Group &g, uint64_t seq, Slot &s) {
    const int n = g.nranks;
    const Entry &e0 = s.e[0];
    for (int r = 1; r < n; r++) {
        const Entry &e = s.e[(size_t)r];
        if (e.kind != e0.kind || e.count != e0.count || e.type != e0.type || (e.kind != ALL_GATHER && e.op != e0.op))
            emu_fail(kind_name(e.kind),
                     "collective #%llu: rank 0 called %s(count %zu, type %d, op %d) but rank %d called "
                     "%s(count %zu, type %d, op %d): ranks must call the same collectives in the same order",
                     (unsigned long long)seq, kind_name(e0.kind), e0.count, (int)e0.type, (int)e0.op, r,
                     kind_name(e.kind), e.count, (int)e.type, (int)e.op);
    }
    const size_t c = e0.count;
    const ncclDataType_t t = e0.type;
    if (e0.kind == ALL_GATHER) {
        // recv[q*c .. (q+1)*c) = rank q's send, on every rank
        std::vector<std::vector<double>> v((size_t)n, std::vector<double>(c));
        for (int q = 0; q < n; q++)
            for (size_t i = 0; i < c; i++) v[(size_t)q][i] = load(t, s.e[(size_t)q].send, i);
        for (int r = 0; r < n; r++)
            for (int q = 0; q < n; q++)
                for (size_t i = 0; i < c; i++) store(t, s.e[(size_t)r].recv, (size_t)q * c + i, v[(size_t)q][i]);
        return;
    }
    // reductions in rank order; AllReduce over c elements, ReduceScatter over n*c
    const size_t total = e0.kind == ALL_REDUCE ? c : c * (size_t)n;
    std::vector<double> acc(total);
    std::vector<int64_t> iacc(is_int(t) ? total : 0);
    for (size_t i = 0; i < total; i++) {
        if (is_int(t)) {
            int64_t a = (int64_t)load(t, s.e[0].send, i);
            for (int q = 1; q < n; q++) {
                int64_t b = (int64_t)load(t, s.e[(size_t)q].send, i);
                switch (e0.op) {
                case ncclSum:
                case ncclAvg: a += b; break;
                case ncclProd: a *= b; break;
                case ncclMax: a = a > b ? a : b; break;
                default: a = a < b ? a : b; break;
                }
            }
            iacc[i] = e0.op == ncclAvg ? a / n : a;
        } else {
            double a = load(t, s.e[0].send, i);
            for (int q = 1; q < n; q++) a = reduce2(e0.op, t, a, load(t, s.e[(size_t)q].send, i));
            acc[i] = e0.op == ncclAvg ? in_type(t, a / n) : a;
        }
    }
    for (int r = 0; r < n; r++) {
        const size_t base = e0.kind == ALL_REDUCE ? 0 : (size_t)r * c;
        for (size_t i = 0; i < c; i++)
            store(t, s.e[(size_t)r].recv, i, is_int(t) ? (double)iacc[base + i] : acc[base + i]);
    }
}

// The work a rank's stream runs for collective `seq`.
void run_collective(const std::shared_ptr<CommState> &cs, uint64_t seq, Entry e) {
    Group &g = *cs->g;
    std::unique_lock<std::mutex> lk(g.mu);
    if (cs->async != ncclSuccess) return; // the group was aborted before this work ran
    Slot &s = g.slots[seq];
    if (s.e.empty()) {
        s.e.resize((size_t)g.nranks);
        s.in.assign((size_t)g.nranks, false);
    }
    s.e[(size_t)cs->rank] = e;
    s.in[(size_t)cs->rank] = true;
    if (++s.arrived == g.nranks) {
        execute(g, seq, s);
        s.done = true;
        g.cv.notify_all();
    } else {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s());
        while (!s.done && g.aborted_by < 0) {
            if (g.cv.wait_until(lk, deadline) == std::cv_status::timeout && !s.done && g.aborted_by < 0) {
                std::string missing;
                for (int r = 0; r < g.nranks; r++)
                    if (!s.in[(size_t)r]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
                emu_fail(kind_name(e.kind),
                         "rank %d of %d waited %d s in collective #%llu for rank(s) %s, which never reached it "
                         "(a rank skipped a collective, or its stream was never synchronised)",
                         cs->rank, g.nranks, timeout_s(), (unsigned long long)seq, missing.c_str());
            }
        }
        if (!s.done) {
            cs->async = ncclRemoteError;
            fprintf(stderr,
                    "emu: %s: rank %d: rank %d aborted the communicator while this rank waited in collective #%llu; "
                    "its output is not written\n",
                    kind_name(e.kind), cs->rank, g.aborted_by, (unsigned long long)seq);
        }
    }
    if (++s.left == s.arrived && (s.done || g.aborted_by >= 0)) g.slots.erase(seq);
}

} // namespace

// The API handle; the state lives on while queued work still refers to it.
struct ncclComm {
    std::shared_ptr<CommState> s;
    bool freed = false;
};

namespace {

std::mutex g_comms_mu;
std::set<ncclComm_t> g_comms;

// NULL: ncclInvalidArgument. Destroyed, aborted or never made: undefined in NCCL, an error here.
ncclResult_t check_comm(ncclComm_t c, const char *call) {
    if (!c) return nccl_error(ncclInvalidArgument, call, "comm is NULL");
    std::lock_guard<std::mutex> lk(g_comms_mu);
    if (!g_comms.count(c))
        emu_fail(call, "communicator %p was destroyed or aborted, or never made by ncclCommInitRank", (void *)c);
    return ncclSuccess;
}

ncclResult_t wait_joined(const std::shared_ptr<Group> &g, int rank) {
    std::unique_lock<std::mutex> lk(g->mu);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s());
    while (g->joined < g->nranks && g->aborted_by < 0)
        if (g->cv.wait_until(lk, deadline) == std::cv_status::timeout && g->joined < g->nranks) {
            std::string missing;
            for (int r = 0; r < g->nranks; r++)
                if (g->device[(size_t)r] < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
            emu_fail("ncclCommInitRank", "rank %d of %d waited %d s for rank(s) %s to join", rank, g->nranks,
                     timeout_s(), missing.c_str());
        }
    if (g->aborted_by >= 0)
        return nccl_error(ncclRemoteError, "ncclCommInitRank", "rank %d aborted the group while rank %d joined",
                          g->aborted_by, rank);
    return ncclSuccess;
}

// Defers f to ncclGroupEnd inside a group, else runs it.
ncclResult_t grouped(std::function<ncclResult_t()> f) {
    if (t_group_depth > 0) {
        t_group_ops.push_back(std::move(f));
        return ncclSuccess;
    }
    return f();
}

ncclResult_t collective(const char *call, Kind kind, const void *send, void *recv, size_t count, ncclDataType_t type,
                        ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    ncclResult_t r = check_comm(comm, call);
    if (r != ncclSuccess) return r;
    std::shared_ptr<CommState> cs = comm->s;
    {
        std::lock_guard<std::mutex> lk(cs->g->mu);
        if (cs->async != ncclSuccess || cs->g->aborted_by >= 0) {
            cs->async = ncclRemoteError;
            return nccl_error(ncclRemoteError, call, "rank %d: rank %d aborted the communicator", cs->rank,
                              cs->g->aborted_by);
        }
    }
    const int ts = type_size(type);
    if (ts == 0 || (int)type < 0 || type >= ncclNumTypes)
        return nccl_error(ncclInvalidArgument, call, "invalid type %d", (int)type);
    if (kind != ALL_GATHER && ((int)op < 0 || op >= ncclNumOps))
        return nccl_error(ncclInvalidArgument, call, "invalid reduction operation %d", (int)op);
    const size_t n = (size_t)cs->nranks;
    const size_t send_elems = kind == REDUCE_SCATTER ? count * n : count;
    const size_t recv_elems = kind == ALL_GATHER ? count * n : count;
    if (count > 0) {
        if (!send || !recv) return nccl_error(ncclInvalidArgument, call, "NULL buffer (send %p, recv %p)", send, recv);
        for (int b = 0; b < 2; b++) {
            const void *p = b ? (const void *)recv : send;
            size_t bytes = (b ? recv_elems : send_elems) * (size_t)ts;
            if (!emu_is_device_range(p, bytes) || emu_device_of(p) != cs->device)
                return nccl_error(ncclInvalidArgument, call,
                                  "rank %d: %s buffer %p (%zu bytes) is not memory of the communicator's device %d",
                                  cs->rank, b ? "recv" : "send", p, bytes, cs->device);
        }
        // in place is allowed only in NCCL's form; any other overlap is undefined
        const char *sb = (const char *)send, *rb = (const char *)recv;
        const size_t sbytes = send_elems * (size_t)ts, rbytes = recv_elems * (size_t)ts;
        bool in_place = (kind == ALL_REDUCE && sb == rb) ||
                        (kind == ALL_GATHER && sb == rb + (size_t)cs->rank * count * (size_t)ts) ||
                        (kind == REDUCE_SCATTER && rb == sb + (size_t)cs->rank * count * (size_t)ts);
        if (!in_place && sb < rb + rbytes && rb < sb + sbytes)
            emu_fail(call, "rank %d: send [%p, +%zu) and recv [%p, +%zu) overlap other than in NCCL's in-place form",
                     cs->rank, send, sbytes, (void *)recv, rbytes);
    }
    Entry e{kind, send, recv, count, type, op};
    return grouped([cs, e, stream, call]() -> ncclResult_t {
        uint64_t seq = cs->next_seq++;
        if (emu_stream_submit(stream, call, [cs, seq, e] { run_collective(cs, seq, e); }) != cudaSuccess)
            return nccl_error(ncclUnhandledCudaError, call, "queueing on stream %p failed", (void *)stream);
        return ncclSuccess;
    });
}

} // namespace

extern "C" {

ncclResult_t ncclGetVersion(int *version) {
    if (!version) return ncclInvalidArgument;
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
    if (!uniqueId) return nccl_error(ncclInvalidArgument, "ncclGetUniqueId", "uniqueId is NULL");
    static std::mt19937_64 rng(std::random_device{}());
    std::lock_guard<std::mutex> lk(g_reg_mu);
    uint64_t key;
    do key = rng();
    while (g_issued.count(key));
    g_issued.insert(key);
    memset(uniqueId, 0, sizeof *uniqueId);
    uint64_t pid = (uint64_t)getpid();
    memcpy(uniqueId->internal, &ID_MAGIC, 8);
    memcpy(uniqueId->internal + 8, &pid, 8);
    memcpy(uniqueId->internal + 16, &key, 8);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) {
    const char *call = "ncclCommInitRank";
    if (!comm) return nccl_error(ncclInvalidArgument, call, "comm is NULL");
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return nccl_error(ncclInvalidArgument, call, "rank %d of %d ranks", rank, nranks);
    uint64_t magic, pid, key;
    memcpy(&magic, commId.internal, 8);
    memcpy(&pid, commId.internal + 8, 8);
    memcpy(&key, commId.internal + 16, 8);
    if (magic != ID_MAGIC)
        return nccl_error(ncclInvalidArgument, call, "the unique id was not made by ncclGetUniqueId");
    if (pid != (uint64_t)getpid())
        return nccl_error(ncclInvalidUsage, call,
                          "the unique id was made by process %llu: the harness's NCCL runs ranks as threads of one "
                          "process",
                          (unsigned long long)pid);
    int dev = emu_current_device();
    std::shared_ptr<Group> g;
    {
        std::lock_guard<std::mutex> lk(g_reg_mu);
        if (!g_issued.count(key)) return nccl_error(ncclInvalidArgument, call, "unknown unique id");
        g = g_groups[key].lock();
        if (!g) {
            g = std::make_shared<Group>();
            g->key = key;
            g->nranks = nranks;
            g->device.assign((size_t)nranks, -1);
            g_groups[key] = g;
        }
    }
    {
        std::lock_guard<std::mutex> lk(g->mu);
        if (g->nranks != nranks)
            return nccl_error(ncclInvalidArgument, call, "rank %d says %d ranks, the group was made with %d", rank,
                              nranks, g->nranks);
        if (g->device[(size_t)rank] >= 0) return nccl_error(ncclInvalidUsage, call, "rank %d joined twice", rank);
        for (int r = 0; r < nranks; r++)
            if (g->device[(size_t)r] == dev)
                return nccl_error(ncclInvalidUsage, call,
                                  "Duplicate GPU detected: rank %d and rank %d both on device %d", rank, r, dev);
        g->device[(size_t)rank] = dev;
        g->joined++;
        g->cv.notify_all();
    }
    auto cs = std::make_shared<CommState>();
    cs->g = g;
    cs->rank = rank;
    cs->nranks = nranks;
    cs->device = dev;
    ncclComm_t c = new ncclComm{cs, false};
    {
        std::lock_guard<std::mutex> lk(g_comms_mu);
        g_comms.insert(c);
    }
    *comm = c;
    return grouped([g, rank] { return wait_joined(g, rank); });
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return ncclSuccess;
    ncclResult_t r = check_comm(comm, "ncclCommDestroy");
    if (r != ncclSuccess) return r;
    std::lock_guard<std::mutex> lk(g_comms_mu);
    g_comms.erase(comm);
    delete comm;
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (!comm) return ncclSuccess;
    ncclResult_t r = check_comm(comm, "ncclCommAbort");
    if (r != ncclSuccess) return r;
    {
        Group &g = *comm->s->g;
        std::lock_guard<std::mutex> lk(g.mu);
        if (g.aborted_by < 0) g.aborted_by = comm->s->rank;
        comm->s->async = ncclRemoteError; // this rank's queued collectives do nothing
        g.cv.notify_all();
    }
    std::lock_guard<std::mutex> lk(g_comms_mu);
    g_comms.erase(comm);
    delete comm;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

const char *ncclGetLastError(ncclComm_t comm) { return t_last_error.c_str(); }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
    ncclResult_t r = check_comm(comm, "ncclCommGetAsyncError");
    if (r != ncclSuccess) return r;
    if (!asyncError) return nccl_error(ncclInvalidArgument, "ncclCommGetAsyncError", "asyncError is NULL");
    std::lock_guard<std::mutex> lk(comm->s->g->mu);
    *asyncError = comm->s->async;
    return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
    ncclResult_t r = check_comm(comm, "ncclCommCount");
    if (r != ncclSuccess) return r;
    if (!count) return ncclInvalidArgument;
    *count = comm->s->nranks;
    return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device) {
    ncclResult_t r = check_comm(comm, "ncclCommCuDevice");
    if (r != ncclSuccess) return r;
    if (!device) return ncclInvalidArgument;
    *device = comm->s->device;
    return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
    ncclResult_t r = check_comm(comm, "ncclCommUserRank");
    if (r != ncclSuccess) return r;
    if (!rank) return ncclInvalidArgument;
    *rank = comm->s->rank;
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    return collective("ncclAllReduce", ALL_REDUCE, sendbuff, recvbuff, count, datatype, op, comm, stream);
}

ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    return collective("ncclReduceScatter", REDUCE_SCATTER, sendbuff, recvbuff, recvcount, datatype, op, comm, stream);
}

ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
    return collective("ncclAllGather", ALL_GATHER, sendbuff, recvbuff, sendcount, datatype, ncclSum, comm, stream);
}

ncclResult_t ncclGroupStart(void) {
    t_group_depth++;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
    if (t_group_depth <= 0) return nccl_error(ncclInvalidUsage, "ncclGroupEnd", "no matching ncclGroupStart");
    if (--t_group_depth > 0) return ncclSuccess;
    std::vector<std::function<ncclResult_t()>> ops;
    ops.swap(t_group_ops);
    ncclResult_t first = ncclSuccess;
    for (auto &f : ops) {
        ncclResult_t r = f();
        if (first == ncclSuccess) first = r;
    }
    return first;
}

} // extern "C"
