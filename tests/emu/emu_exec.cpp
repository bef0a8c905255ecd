/* The execution engine of the CPU harness: a kernel's grid runs block after block; the
 * threads of a block are fibers on one host thread.
 *
 * Why it is built like this
 * - Fibers on Boost.Context's fcontext (make_fcontext / jump_fcontext: a register swap, no
 *   system call; glibc swapcontext saves the signal mask with a syscall per switch, far too
 *   slow for millions of switches), annotated for AddressSanitizer
 *   (__sanitizer_start/finish_switch_fiber) so that stack switches are not reported.
 *   Stacks (mmap'ed with a guard page) come from a per-host-thread pool; a fiber takes one
 *   when it first runs and returns it when it ends, so a kernel without barriers touches one
 *   stack.
 * - A fiber runs until it reaches a barrier or a warp collective, or ends. __syncthreads is
 *   a real barrier: it releases when every live (not exited) thread of the block waits at
 *   it, and every waiter must be at the same call site; a collective completes when every
 *   lane of its mask waits at it with the same mask and call site. When no fiber can run and
 *   some are still waiting, the state is a deadlock on a GPU: it is reported (which thread
 *   waits where, which lane never arrives and what it does instead) instead of hanging.
 * - Shared memory is one allocation per __shared__ declaration per block and one for the
 *   dynamic part, each exactly its size and filled with 0xff bytes (a NaN for floats), so an
 *   overrun is an AddressSanitizer report and an unwritten read shows as NaN.
 * - Thread orders (EMU_ORDERS, default 2): the first run of every launch goes block by block
 *   in lane order; each further run restores the memory the kernel can write (what its
 *   non-const pointer arguments point into), runs the blocks in a seeded random order and,
 *   at every scheduling point, a seeded random runnable fiber, and compares the result bit
 *   for bit with the first. A difference is a race (a missing barrier, two threads writing
 *   one element, an order-dependent atomic sum) and is reported with the seed.
 * - Launch checks as the driver makes them (sm_90: 1024 threads per block, 1024 x 1024 x 64,
 *   grid 2^31-1 x 65535 x 65535, dynamic shared memory above 48 KiB only after
 *   cudaFuncSetAttribute, at most 227 KiB), and stricter ones a GPU only shows as a crash:
 *   a pointer argument that is not device memory of the launching device. */
#include <sanitizer/common_interface_defs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <atomic>
#include <boost/context/detail/fcontext.hpp>
#include <vector>

#include "emu_internal.h"

namespace bctx = boost::context::detail;

__thread emu::fiber_view *emu_t_cur;

namespace emu {

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifndef EMU_ASAN
#define EMU_ASAN 0
#endif

static inline void asan_start(void **fake, const void *bottom, size_t size) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}
static inline void asan_finish(void *fake, const void **bottom, size_t *size) {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

/* ---- stacks ---- */

static const size_t STACK_BYTES = 256 * 1024, GUARD_BYTES = 4096;

struct stack_mem {
    char *bottom; /* usable area: [bottom, bottom + STACK_BYTES) */
};

struct stack_pool {
    std::vector<stack_mem> free_list;
    ~stack_pool() {
        for (auto &s : free_list) munmap(s.bottom - GUARD_BYTES, STACK_BYTES + GUARD_BYTES);
    }
    stack_mem get() {
        if (!free_list.empty()) {
            stack_mem s = free_list.back();
            free_list.pop_back();
            return s;
        }
        void *m = mmap(NULL, STACK_BYTES + GUARD_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) emu_fail("emu", "cannot map a %zu-byte fiber stack", STACK_BYTES);
        mprotect(m, GUARD_BYTES, PROT_NONE); /* overflow: a fault, not a silent overwrite */
        return stack_mem{(char *)m + GUARD_BYTES};
    }
    void put(stack_mem s) { free_list.push_back(s); }
};
static thread_local stack_pool g_stacks;

/* ---- threads and blocks ---- */

enum { ST_NEW, ST_RUN, ST_BARRIER, ST_COLL, ST_DONE };

typedef void (*combine_fn)(const void *, void *, unsigned, void *);

struct thread_rec {
    fiber_view view; /* first: emu_t_cur points here */
    int linear, lane, warp, state;
    bctx::fcontext_t fctx;
    stack_mem stack;
    void *fake_stack;
    /* barrier */
    const char *bar_site;
    int bar_kind, bar_pred, bar_result;
    /* collective */
    unsigned c_mask;
    const void *c_in;
    size_t c_in_bytes, c_out_bytes;
    void *c_out;
    combine_fn c_combine;
    void *c_ctx;
    const char *c_what;
};

struct block_run {
    block_info info;
    const launch_site *site;
    const std::function<void()> *body;
    std::vector<thread_rec> th;
    int n_threads, n_live, n_at_barrier, cur;
    /* runnable fibers: FIFO in lane order, or a random pick */
    std::vector<int> queue;
    size_t q_head;
    int random;
    unsigned long long rng;
    bctx::fcontext_t sched_fctx;
    const void *sched_bottom;
    size_t sched_size;
    /* shared memory */
    void *dyn;
    size_t dyn_bytes;
    std::vector<std::pair<const void *, void *>> statics;
    size_t static_bytes;
};

static __thread block_run *t_block;

static unsigned long long splitmix(unsigned long long *s) {
    unsigned long long z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static thread_rec *cur_thread(const char *what) {
    block_run *b = t_block;
    if (!b || b->cur < 0) emu_fail(what, "called outside kernel code");
    return &b->th[(size_t)b->cur];
}

static void describe_place(char *buf, size_t n) {
    block_run *b = t_block;
    if (!b || b->cur < 0) {
        buf[0] = 0;
        return;
    }
    const thread_rec &t = b->th[(size_t)b->cur];
    snprintf(buf, n, " [kernel %s launched at %s:%d, block (%u,%u,%u), thread (%u,%u,%u)]", b->site->name,
             b->site->file, b->site->line, b->info.bid.x, b->info.bid.y, b->info.bid.z, t.view.tid.x, t.view.tid.y,
             t.view.tid.z);
}

} // namespace emu

void emu_fail(const char *where, const char *fmt, ...) {
    char msg[2048], place[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emu::describe_place(place, sizeof place);
    fprintf(stderr, "emu: %s: %s%s\n", where, msg, place);
    fflush(stderr);
    abort();
}

namespace emu {

void fail_in_kernel(const char *what, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    block_run *b = t_block;
    emu_fail(b ? b->site->name : "emu", "%s: %s", what, msg);
}

static void push_runnable(block_run *b, int i) {
    b->th[(size_t)i].state = ST_RUN;
    b->queue.push_back(i);
}

static int pick_runnable(block_run *b) {
    if (b->random) {
        const size_t n = b->queue.size() - b->q_head;
        if (!n) return -1;
        const size_t k = b->q_head + (size_t)(splitmix(&b->rng) % n);
        const int i = b->queue[k];
        b->queue[k] = b->queue[b->q_head];
        b->q_head++;
        return i;
    }
    if (b->q_head == b->queue.size()) return -1;
    return b->queue[b->q_head++];
}

static void fiber_entry(bctx::transfer_t t);

/* Switch from the scheduler into thread i until it blocks or ends. */
static void resume(block_run *b, int i) {
    thread_rec &t = b->th[(size_t)i];
    if (t.state == ST_NEW || (t.state == ST_RUN && !t.fctx)) {
        t.stack = g_stacks.get();
        t.fctx = bctx::make_fcontext(t.stack.bottom + STACK_BYTES, STACK_BYTES, fiber_entry);
    }
    t.state = ST_RUN;
    b->cur = i;
    emu_t_cur = &t.view;
    void *fake = NULL;
    asan_start(&fake, t.stack.bottom, STACK_BYTES);
    bctx::transfer_t r = bctx::jump_fcontext(t.fctx, &t);
    asan_finish(fake, NULL, NULL);
    t.fctx = r.fctx;
    b->cur = -1;
    emu_t_cur = NULL;
    if (t.state == ST_DONE) {
        g_stacks.put(t.stack);
        t.fctx = NULL;
    }
}

/* From a fiber back to the scheduler. */
static void yield(block_run *b, thread_rec *me) {
    asan_start(&me->fake_stack, b->sched_bottom, b->sched_size);
    bctx::transfer_t r = bctx::jump_fcontext(b->sched_fctx, me);
    b->sched_fctx = r.fctx;
    asan_finish(me->fake_stack, NULL, NULL);
}

static void release_barrier(block_run *b);

/* No address-taken locals (no ASan frame redzones): a finished fiber leaves a clean stack
 * behind for the next one. */
__attribute__((no_sanitize_address)) static void fiber_entry(bctx::transfer_t t) {
    block_run *b = t_block;
    b->sched_fctx = t.fctx;
    asan_finish(NULL, &b->sched_bottom, &b->sched_size);
    thread_rec *me = (thread_rec *)t.data;
    (*b->body)();
    me->state = ST_DONE;
    b->n_live--;
    if (b->n_at_barrier > 0 && b->n_at_barrier == b->n_live) release_barrier(b);
    asan_start(NULL, b->sched_bottom, b->sched_size);
    bctx::jump_fcontext(b->sched_fctx, me);
    __builtin_unreachable();
}

static const char *state_name(const thread_rec &t, char *buf, size_t n) {
    switch (t.state) {
    case ST_DONE: return "it exited";
    case ST_BARRIER: snprintf(buf, n, "it waits at %s", t.bar_site); return buf;
    case ST_COLL: snprintf(buf, n, "it waits at %s with mask 0x%08x", t.c_what, t.c_mask); return buf;
    default: return "it is still running";
    }
}

static void release_barrier(block_run *b) {
    const thread_rec *first = NULL;
    int count = 0;
    for (auto &t : b->th)
        if (t.state == ST_BARRIER) {
            if (!first)
                first = &t;
            else if (t.bar_site != first->bar_site && strcmp(t.bar_site, first->bar_site) != 0) {
                b->cur = first->linear;
                fail_in_kernel("divergent barrier",
                               "thread (%u,%u,%u) waits at %s while thread (%u,%u,%u) waits at %s: every live thread "
                               "of a block must reach the same __syncthreads",
                               first->view.tid.x, first->view.tid.y, first->view.tid.z, first->bar_site, t.view.tid.x,
                               t.view.tid.y, t.view.tid.z, t.bar_site);
            }
            count += t.bar_pred != 0;
        }
    const int all = count == b->n_at_barrier;
    for (auto &t : b->th)
        if (t.state == ST_BARRIER) {
            t.bar_result = t.bar_kind == BAR_COUNT ? count
                           : t.bar_kind == BAR_AND ? all
                           : t.bar_kind == BAR_OR  ? count > 0
                                                   : 0;
            push_runnable(b, t.linear);
        }
    b->n_at_barrier = 0;
}

/* Nothing can run, yet threads wait: on a GPU this hangs. Say who waits for whom. */
[[noreturn]] static void report_stuck(block_run *b) {
    char buf[512];
    for (auto &t : b->th) {
        if (t.state != ST_COLL) continue;
        const int base = t.warp * 32;
        for (int l = 0; l < 32; l++) {
            if (!(t.c_mask >> l & 1u)) continue;
            const int j = base + l;
            const thread_rec &o = b->th[(size_t)j];
            if (o.state == ST_COLL && o.c_mask == t.c_mask && (o.c_what == t.c_what || !strcmp(o.c_what, t.c_what)))
                continue;
            b->cur = t.linear;
            fail_in_kernel(t.c_what, "lane %d of the mask 0x%08x never arrives: %s", l, t.c_mask,
                           state_name(o, buf, sizeof buf));
        }
    }
    for (auto &t : b->th)
        if (t.state == ST_BARRIER) {
            b->cur = t.linear;
            for (auto &o : b->th)
                if (o.state != ST_BARRIER && o.state != ST_DONE)
                    fail_in_kernel("barrier not reached",
                                   "thread (%u,%u,%u) waits at %s, but thread (%u,%u,%u) never reaches it: %s",
                                   t.view.tid.x, t.view.tid.y, t.view.tid.z, t.bar_site, o.view.tid.x, o.view.tid.y,
                                   o.view.tid.z, state_name(o, buf, sizeof buf));
        }
    emu_fail(b->site->name, "block (%u,%u,%u) cannot make progress", b->info.bid.x, b->info.bid.y, b->info.bid.z);
}

int syncthreads(const char *site, int kind, int pred) {
    block_run *b = t_block;
    thread_rec *me = cur_thread("__syncthreads");
    me->state = ST_BARRIER;
    me->bar_site = site;
    me->bar_kind = kind;
    me->bar_pred = pred;
    b->n_at_barrier++;
    if (b->n_at_barrier == b->n_live) release_barrier(b);
    yield(b, me);
    return me->bar_result;
}

void threadfence(void) {}

unsigned activemask(void) {
    block_run *b = t_block;
    thread_rec *me = cur_thread("__activemask");
    unsigned m = 0;
    for (int l = 0; l < 32; l++) {
        const int j = me->warp * 32 + l;
        if (j < b->n_threads && b->th[(size_t)j].state != ST_DONE) m |= 1u << l;
    }
    return m;
}

void collective(unsigned mask, const void *in, size_t in_bytes, void *out, size_t out_bytes, combine_fn combine,
                void *ctx, const char *what) {
    block_run *b = t_block;
    thread_rec *me = cur_thread(what);
    if (in_bytes > EMU_COLLECTIVE_MAX_BYTES || out_bytes > EMU_COLLECTIVE_MAX_BYTES)
        fail_in_kernel(what, "%zu / %zu bytes per lane exceed the harness's %d", in_bytes, out_bytes,
                       EMU_COLLECTIVE_MAX_BYTES);
    if (!(mask >> me->lane & 1u))
        fail_in_kernel(what, "lane %d passes the mask 0x%08x, which does not include itself", me->lane, mask);
    me->state = ST_COLL;
    me->c_mask = mask;
    me->c_in = in;
    me->c_in_bytes = in_bytes;
    me->c_out = out;
    me->c_out_bytes = out_bytes;
    me->c_combine = combine;
    me->c_ctx = ctx;
    me->c_what = what;
    const int base = me->warp * 32;
    int complete = 1;
    char buf[512];
    for (int l = 0; l < 32; l++) {
        if (!(mask >> l & 1u)) continue;
        const int j = base + l;
        if (j >= b->n_threads)
            fail_in_kernel(what, "lane %d of the mask 0x%08x does not exist (the block has %d threads)", l, mask,
                           b->n_threads);
        const thread_rec &o = b->th[(size_t)j];
        if (o.state == ST_DONE)
            fail_in_kernel(what, "lane %d of the mask 0x%08x never arrives: %s", l, mask,
                           state_name(o, buf, sizeof buf));
        if (o.state != ST_COLL || o.c_mask != mask || (o.c_what != what && strcmp(o.c_what, what))) complete = 0;
    }
    if (complete) {
        unsigned char ins[32 * EMU_COLLECTIVE_MAX_BYTES], outs[32 * EMU_COLLECTIVE_MAX_BYTES];
        if (in_bytes) memset(ins, 0, 32 * in_bytes);
        for (int l = 0; l < 32; l++) {
            if (!(mask >> l & 1u)) continue;
            const thread_rec &o = b->th[(size_t)(base + l)];
            if (o.c_in_bytes != in_bytes || o.c_out_bytes != out_bytes)
                fail_in_kernel(what, "lanes pass different operand sizes (%zu/%zu and %zu/%zu bytes)", o.c_in_bytes,
                               o.c_out_bytes, in_bytes, out_bytes);
            if (in_bytes) memcpy(ins + (size_t)l * in_bytes, o.c_in, in_bytes);
        }
        if (combine) {
            if (out_bytes) memset(outs, 0, 32 * out_bytes);
            combine(ins, outs, mask, ctx);
        }
        for (int l = 0; l < 32; l++) {
            if (!(mask >> l & 1u)) continue;
            thread_rec &o = b->th[(size_t)(base + l)];
            if (out_bytes && o.c_out) memcpy(o.c_out, outs + (size_t)l * out_bytes, out_bytes);
            if (&o != me) push_runnable(b, o.linear);
        }
        me->state = ST_RUN;
        if (!b->random) return;
        push_runnable(b, me->linear);
    }
    yield(b, me);
}

void ballot_combine(const void *ins, void *outs, unsigned mask, void *) {
    const int *p = (const int *)ins;
    unsigned r = 0;
    for (int l = 0; l < 32; l++)
        if ((mask >> l & 1u) && p[l]) r |= 1u << l;
    for (int l = 0; l < 32; l++) ((unsigned *)outs)[l] = r;
}

void reduce_combine(const void *ins, void *outs, unsigned mask, void *ctx) {
    const unsigned *p = (const unsigned *)ins;
    const int op = *(const int *)ctx, sgn = op & RED_SIGNED;
    unsigned r = 0;
    int first = 1;
    for (int l = 0; l < 32; l++) {
        if (!(mask >> l & 1u)) continue;
        const unsigned v = p[l];
        if (first) {
            r = v, first = 0;
            continue;
        }
        switch (op & 7) {
        case RED_ADD: r += v; break;
        case RED_MIN: r = sgn ? ((int)v < (int)r ? v : r) : (v < r ? v : r); break;
        case RED_MAX: r = sgn ? ((int)v > (int)r ? v : r) : (v > r ? v : r); break;
        case RED_AND: r &= v; break;
        case RED_OR: r |= v; break;
        default: r ^= v; break;
        }
    }
    for (int l = 0; l < 32; l++) ((unsigned *)outs)[l] = r;
}

void match_any_combine(const void *ins, void *outs, unsigned mask, void *) {
    const unsigned long long *p = (const unsigned long long *)ins;
    for (int l = 0; l < 32; l++) {
        if (!(mask >> l & 1u)) continue;
        unsigned m = 0;
        for (int k = 0; k < 32; k++)
            if ((mask >> k & 1u) && p[k] == p[l]) m |= 1u << k;
        ((unsigned *)outs)[l] = m;
    }
}

/* ---- shared memory ---- */

static void *smem_alloc(size_t bytes, size_t align) {
    void *p = NULL;
    if (posix_memalign(&p, align < 16 ? 16 : align, bytes) != 0)
        emu_fail("emu", "out of host memory for shared memory");
    memset(p, 0xff, bytes);
    return p;
}

void *dynamic_shared(void) {
    block_run *b = t_block;
    (void)cur_thread("extern __shared__");
    return b->dyn;
}

void *static_shared(size_t bytes, size_t align, const void *key, const char *name) {
    block_run *b = t_block;
    (void)cur_thread("__shared__");
    for (auto &s : b->statics)
        if (s.first == key) return s.second;
    b->static_bytes += bytes;
    if (b->static_bytes > SMEM_DEFAULT)
        fail_in_kernel("__shared__",
                       "static shared memory reaches %zu bytes with '%s' (sm_90 allows 48 KiB of static "
                       "shared memory per block)",
                       b->static_bytes, name);
    if (b->static_bytes + b->dyn_bytes > SMEM_OPTIN_MAX)
        fail_in_kernel("__shared__", "static (%zu) plus dynamic (%zu) shared memory exceed sm_90's %zu bytes per block",
                       b->static_bytes, b->dyn_bytes, SMEM_OPTIN_MAX);
    void *p = smem_alloc(bytes, align);
    b->statics.push_back({key, p});
    return p;
}

/* ---- launches ---- */

static int g_orders = -1;
static unsigned long long g_seed;
static std::atomic<unsigned long long> g_launch_no;

static void orders_init(void) {
    if (g_orders >= 0) return;
    const char *o = getenv("EMU_ORDERS"), *s = getenv("EMU_SEED");
    g_orders = o && *o ? atoi(o) : 2;
    if (g_orders < 1) g_orders = 1;
    g_seed = s && *s ? strtoull(s, NULL, 0) : 0x5eed;
}

} // namespace emu

void emu_set_orders(int orders, unsigned long long seed) {
    emu::g_orders = orders < 1 ? 1 : orders;
    emu::g_seed = seed;
}

int emu_lane_id(void) { return emu::cur_thread("emu_lane_id")->lane; }
int emu_in_kernel(void) { return emu::t_block && emu::t_block->cur >= 0; }
const char *emu_kernel_name(void) { return emu::t_block ? emu::t_block->site->name : NULL; }

void emu_warp_collective(unsigned mask, const void *in, size_t in_bytes, void *out, size_t out_bytes,
                         void (*combine)(const void *ins, void *outs, unsigned mask, void *ctx), void *ctx,
                         const char *what) {
    emu::collective(mask, in, in_bytes, out, out_bytes, combine, ctx, what);
}

namespace emu {

static void run_block(block_run *b, const launch_site &site, const std::function<void()> &body, uint3 bid, int random,
                      unsigned long long seed, std::vector<thread_rec> &recs) {
    b->site = &site;
    b->body = &body;
    b->info.bid = bid;
    b->info.bdim = site.block;
    b->info.gdim = site.grid;
    const int n = (int)(site.block.x * site.block.y * site.block.z);
    b->n_threads = n;
    b->n_live = n;
    b->n_at_barrier = 0;
    b->cur = -1;
    b->random = random;
    b->rng = seed;
    b->queue.clear();
    b->q_head = 0;
    b->dyn_bytes = site.smem;
    b->dyn = smem_alloc(site.smem, 16);
    b->statics.clear();
    b->static_bytes = 0;
    recs.resize((size_t)n);
    b->th.swap(recs);
    for (int i = 0; i < n; i++) {
        thread_rec &t = b->th[(size_t)i];
        memset((void *)&t, 0, sizeof t);
        t.view.tid = uint3{(unsigned)i % site.block.x, (unsigned)(i / site.block.x) % site.block.y,
                           (unsigned)(i / (site.block.x * site.block.y))};
        t.view.blk = &b->info;
        t.linear = i;
        t.lane = i & 31;
        t.warp = i >> 5;
        t.state = ST_NEW;
        b->queue.push_back(i);
    }
    block_run *saved = t_block;
    t_block = b;
    for (;;) {
        const int i = pick_runnable(b);
        if (i < 0) {
            if (b->n_live == 0) break;
            report_stuck(b);
        }
        resume(b, i);
    }
    t_block = saved;
    free(b->dyn);
    for (auto &s : b->statics) free(s.second);
    b->th.swap(recs);
}

struct snapshot {
    char *base;
    size_t size;
    std::vector<char> before, first;
};

static void run_grid(const launch_site &site, const std::vector<ptr_arg> &ptrs, const std::function<void()> &body,
                     unsigned long long launch_no) {
    orders_init();
    const int orders = g_orders;
    std::vector<snapshot> snaps;
    if (orders > 1)
        for (const auto &a : ptrs) {
            char *base;
            size_t size;
            int dev;
            if (!a.writable || !a.p || !find_alloc(a.p, &base, &size, &dev)) continue;
            int dup = 0;
            for (auto &s : snaps) dup |= s.base == base;
            if (dup) continue;
            snapshot s;
            s.base = base;
            s.size = size;
            s.before.assign(base, base + size);
            snaps.push_back(std::move(s));
        }
    const unsigned long long nblocks = (unsigned long long)site.grid.x * site.grid.y * site.grid.z;
    block_run b;
    std::vector<thread_rec> recs;
    std::vector<unsigned long long> perm;
    for (int o = 0; o < orders; o++) {
        unsigned long long seed = g_seed ^ (launch_no * 0x9E3779B97F4A7C15ull) ^ ((unsigned long long)o << 48);
        if (o > 0) {
            for (auto &s : snaps) memcpy(s.base, s.before.data(), s.size);
            perm.resize(nblocks);
            for (unsigned long long i = 0; i < nblocks; i++) perm[i] = i;
            for (unsigned long long i = nblocks; i > 1; i--) {
                const unsigned long long j = splitmix(&seed) % i;
                std::swap(perm[i - 1], perm[j]);
            }
        }
        for (unsigned long long k = 0; k < nblocks; k++) {
            const unsigned long long lin = o > 0 ? perm[k] : k;
            const uint3 bid{(unsigned)(lin % site.grid.x), (unsigned)(lin / site.grid.x % site.grid.y),
                            (unsigned)(lin / ((unsigned long long)site.grid.x * site.grid.y))};
            run_block(&b, site, body, bid, o > 0, splitmix(&seed), recs);
        }
        if (orders > 1) {
            if (o == 0) {
                for (auto &s : snaps) s.first.assign(s.base, s.base + s.size);
                continue;
            }
            for (auto &s : snaps) {
                if (!memcmp(s.base, s.first.data(), s.size)) continue;
                size_t i = 0;
                while (s.base[i] == s.first[i]) i++;
                const size_t w = i & ~(size_t)3;
                float f0 = 0, f1 = 0;
                if (w + 4 <= s.size) memcpy(&f0, &s.first[w], 4), memcpy(&f1, s.base + w, 4);
                emu_fail(
                    site.name,
                    "the result depends on the thread order (a race: a missing __syncthreads / __syncwarp, two "
                    "threads writing one element, or an order-dependent atomic): byte %zu of the %zu-byte "
                    "allocation at %p is 0x%02x in lane order and 0x%02x in random order %d (seed 0x%llx; as "
                    "floats %g vs %g); launched at %s:%d",
                    i, s.size, (void *)s.base, (unsigned char)s.first[i], (unsigned char)s.base[i], o,
                    (unsigned long long)(g_seed ^ (launch_no * 0x9E3779B97F4A7C15ull) ^ ((unsigned long long)o << 48)),
                    (double)f0, (double)f1, site.file, site.line);
            }
        }
    }
    note_kernel_executed();
}

cudaError_t launch_kernel(const launch_site &site, const void *kfn, std::vector<ptr_arg> ptrs,
                          std::function<void()> body) {
    char where[512];
    snprintf(where, sizeof where, "launch of %s at %s:%d", site.name, site.file, site.line);
    const dim3 g = site.grid, t = site.block;
    const unsigned long long threads = (unsigned long long)t.x * t.y * t.z;
    if (!t.x || !t.y || !t.z || threads > 1024 || t.x > 1024 || t.y > 1024 || t.z > 64)
        return api_error(cudaErrorInvalidConfiguration, where,
                         "block (%u,%u,%u) is outside sm_90's limits (1 to 1024 threads, at most 1024 x 1024 x 64)",
                         t.x, t.y, t.z);
    if (!g.x || !g.y || !g.z || g.x > 2147483647u || g.y > 65535u || g.z > 65535u)
        return api_error(cudaErrorInvalidConfiguration, where,
                         "grid (%u,%u,%u) is outside sm_90's limits (1 to 2^31-1 x 65535 x 65535 blocks)", g.x, g.y,
                         g.z);
    const size_t limit = func_max_dynamic_smem(kfn);
    if (site.smem > limit) {
        if (limit == SMEM_DEFAULT)
            return api_error(cudaErrorInvalidValue, where,
                             "%zu bytes of dynamic shared memory exceed the 48 KiB a kernel gets without "
                             "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize)",
                             site.smem);
        return api_error(cudaErrorInvalidValue, where,
                         "%zu bytes of dynamic shared memory exceed the %zu set with cudaFuncSetAttribute", site.smem,
                         limit);
    }
    const int dev = current_device();
    for (size_t i = 0; i < ptrs.size(); i++) {
        const void *p = ptrs[i].p;
        if (!p) continue;
        char *base;
        size_t size;
        int d;
        if (find_alloc(p, &base, &size, &d)) {
            if (d != dev)
                emu_fail(where, "pointer argument %zu (%p) is memory of device %d; the kernel runs on device %d", i + 1,
                         p, d, dev);
        } else if (!is_pinned(p, 1)) {
            emu_fail(where, "pointer argument %zu (%p) is neither device memory nor pinned host memory", i + 1, p);
        }
    }
    const unsigned long long no = g_launch_no++;
    launch_site s = site;
    return submit(site.stream, site.name, WORK_KERNEL,
                  [s, ptrs = std::move(ptrs), body = std::move(body), no] { run_grid(s, ptrs, body, no); });
}

} // namespace emu
