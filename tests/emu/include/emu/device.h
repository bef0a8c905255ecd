/* Device-side CUDA for the CPU execution harness (C++ only; included by cuda_runtime.h):
 * the built-in variables, the intrinsics kernels/cuda and curand_kernel.h use, barriers,
 * warp collectives, shared memory and the launch template.
 *
 * Why it is built like this
 * - Every thread of a block is a fiber (tests/emu/emu_exec.cpp). threadIdx, blockIdx,
 *   blockDim and gridDim read the running fiber's record through one thread-local pointer
 *   (__thread: no TLS wrapper call, so built-in reads stay cheap).
 * - Barriers and warp collectives carry their call site (file:line) so a divergent barrier
 *   or a mismatched shuffle is reported where it is written; every warp collective goes
 *   through emu_warp_collective (emu/emu.h), which checks the mask against the lanes that
 *   actually arrive.
 * - Floating-point intrinsics with a rounding suffix are plain IEEE operations: host code is
 *   compiled without FMA contraction (x86-64 baseline, -ffp-contract=off), which is what the
 *   _rn intrinsics guarantee on the GPU. The GPU's own contraction elsewhere is not modelled
 *   (README: what only a GPU checks).
 * - tests/emu/rewrite.pl turns `k<<<g, b, s, st>>>(args)` into
 *   `::emu::launch_config(k, "k", __FILE__, __LINE__, g, b, s, st)(args)`, and __shared__
 *   declarations into EMU_SHARED / EMU_DYNAMIC_SHARED below. */
#ifndef EMU_DEVICE_H
#define EMU_DEVICE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace emu {

struct block_info {
    uint3 bid;
    dim3 bdim, gdim;
};
/* The running fiber's identity (the first member of the runtime's thread record). */
struct fiber_view {
    uint3 tid;
    const block_info *blk;
};
} // namespace emu

extern __thread emu::fiber_view *emu_t_cur;

#define threadIdx (emu_t_cur->tid)
#define blockIdx (emu_t_cur->blk->bid)
#define blockDim (emu_t_cur->blk->bdim)
#define gridDim (emu_t_cur->blk->gdim)
static constexpr int warpSize = 32;

#define EMU_STR2(x) #x
#define EMU_STR(x) EMU_STR2(x)
#define EMU_SITE(what) __FILE__ ":" EMU_STR(__LINE__) ": " what

namespace emu {

/* ---- barriers (emu_exec.cpp) ---- */
enum { BAR_PLAIN = 0, BAR_COUNT = 1, BAR_AND = 2, BAR_OR = 3 };
int syncthreads(const char *site, int kind, int pred);
void threadfence(void);
unsigned activemask(void);

/* ---- shared memory (emu_exec.cpp) ---- */
void *dynamic_shared(void);
void *static_shared(size_t bytes, size_t align, const void *key, const char *name);

/* ---- warp collectives ---- */
void collective(unsigned mask, const void *in, size_t in_bytes, void *out, size_t out_bytes,
                void (*combine)(const void *, void *, unsigned, void *), void *ctx, const char *what);
[[noreturn]] void fail_in_kernel(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum { SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR };
template <class T> struct shfl_in {
    T v;
    int arg, width;
};
struct shfl_ctx {
    int kind;
    const char *what;
};
template <class T> void shfl_combine(const void *ins_, void *outs_, unsigned mask, void *ctx_) {
    const shfl_in<T> *ins = (const shfl_in<T> *)ins_;
    T *outs = (T *)outs_;
    const shfl_ctx *c = (const shfl_ctx *)ctx_;
    for (int lane = 0; lane < 32; lane++) {
        if (!(mask >> lane & 1u)) continue;
        const int w = ins[lane].width, a = ins[lane].arg;
        if (w <= 0 || w > 32 || (w & (w - 1)))
            fail_in_kernel(c->what, "lane %d passes width %d (a power of two up to 32 is required)", lane, w);
        const int seg = lane & ~(w - 1);
        int src;
        switch (c->kind) {
        case SHFL_IDX: src = seg + (a & (w - 1)); break;
        case SHFL_UP: src = lane - a >= seg ? lane - a : lane; break;
        case SHFL_DOWN: src = lane + a < seg + w ? lane + a : lane; break;
        default: src = (lane ^ a) < seg + w ? lane ^ a : lane; break;
        }
        if (src < 0 || src > 31 || !(mask >> src & 1u))
            fail_in_kernel(c->what,
                           "lane %d reads lane %d, which is not in the mask 0x%08x (its value is undefined on a GPU)",
                           lane, src, mask);
        outs[lane] = ins[src].v;
    }
}
template <int K, class T> static inline T shfl(const char *what, unsigned mask, T var, int arg, int width = 32) {
    static_assert(std::is_trivially_copyable<T>::value, "shuffles move trivially copyable values");
    shfl_in<T> in;
    memset((void *)&in, 0, sizeof in);
    in.v = var;
    in.arg = arg;
    in.width = width;
    shfl_ctx c = {K, what};
    T out;
    collective(mask, &in, sizeof in, &out, sizeof out, shfl_combine<T>, &c, what);
    return out;
}
void ballot_combine(const void *ins, void *outs, unsigned mask, void *ctx);
void reduce_combine(const void *ins, void *outs, unsigned mask, void *ctx);
void match_any_combine(const void *ins, void *outs, unsigned mask, void *ctx);
static inline unsigned ballot(const char *what, unsigned mask, int pred) {
    int in = pred != 0;
    unsigned out;
    collective(mask, &in, sizeof in, &out, sizeof out, ballot_combine, NULL, what);
    return out;
}
static inline void syncwarp(const char *what, unsigned mask = 0xffffffffu) {
    collective(mask, NULL, 0, NULL, 0, NULL, NULL, what);
}
enum { RED_ADD, RED_MIN, RED_MAX, RED_AND, RED_OR, RED_XOR, RED_SIGNED = 8 };
static inline unsigned reduce(const char *what, int op, unsigned mask, unsigned v) {
    unsigned out;
    collective(mask, &v, sizeof v, &out, sizeof out, reduce_combine, &op, what);
    return out;
}
template <class T> static inline unsigned match_any(const char *what, unsigned mask, T v) {
    unsigned long long in = 0;
    memcpy(&in, &v, sizeof v < sizeof in ? sizeof v : sizeof in);
    unsigned out;
    collective(mask, &in, sizeof in, &out, sizeof out, match_any_combine, NULL, what);
    return out;
}

/* ---- launches (emu_exec.cpp) ---- */
struct ptr_arg {
    const void *p;
    int writable; /* pointer to non-const: the thread-order check snapshots what it points into */
};
struct launch_site {
    const char *name, *file;
    int line;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
};
cudaError_t launch_kernel(const launch_site &site, const void *kfn, std::vector<ptr_arg> ptrs,
                          std::function<void()> body);

template <class T> static inline void collect_ptr(std::vector<ptr_arg> &v, const T &a) {
    if constexpr (std::is_pointer<T>::value)
        v.push_back(ptr_arg{(const void *)a, !std::is_const<typename std::remove_pointer<T>::type>::value});
}

template <class... P> struct launcher {
    void (*k)(P...);
    launch_site site;
    template <class... A> void operator()(A &&...a) const {
        static_assert(sizeof...(A) == sizeof...(P), "wrong number of kernel arguments");
        auto args = std::make_shared<std::tuple<typename std::decay<P>::type...>>(std::forward<A>(a)...);
        std::vector<ptr_arg> ptrs;
        std::apply([&](const auto &...x) { (collect_ptr(ptrs, x), ...); }, *args);
        void (*kk)(P...) = k;
        (void)launch_kernel(site, (const void *)k, std::move(ptrs), [kk, args] { std::apply(kk, *args); });
    }
};

template <class... P>
static inline launcher<P...> launch_config(void (*k)(P...), const char *name, const char *file, int line, dim3 grid,
                                           dim3 block, size_t smem = 0, cudaStream_t stream = 0) {
    return launcher<P...>{k, launch_site{name, file, line, grid, block, smem, stream}};
}

} // namespace emu

/* __shared__ T name dims;  ->  EMU_SHARED(T, name, dims); (one per declarator) */
#define EMU_SHARED(T, N, D)                                 \
    typedef T emu_shared_t_##N D;                           \
    static char emu_shared_k_##N;                           \
    emu_shared_t_##N &N = *static_cast<emu_shared_t_##N *>( \
        ::emu::static_shared(sizeof(emu_shared_t_##N), alignof(emu_shared_t_##N), &emu_shared_k_##N, #N))
/* extern __shared__ T name[];  ->  EMU_DYNAMIC_SHARED(T, name); */
#define EMU_DYNAMIC_SHARED(T, N) T *const N = static_cast<T *>(::emu::dynamic_shared())

/* ---- barriers and warp collectives ---- */
#define __syncthreads() ((void)::emu::syncthreads(EMU_SITE("__syncthreads"), ::emu::BAR_PLAIN, 0))
#define __syncthreads_count(p) ::emu::syncthreads(EMU_SITE("__syncthreads_count"), ::emu::BAR_COUNT, (p))
#define __syncthreads_and(p) ::emu::syncthreads(EMU_SITE("__syncthreads_and"), ::emu::BAR_AND, (p))
#define __syncthreads_or(p) ::emu::syncthreads(EMU_SITE("__syncthreads_or"), ::emu::BAR_OR, (p))
#define __syncwarp(...) ::emu::syncwarp(EMU_SITE("__syncwarp") __VA_OPT__(, ) __VA_ARGS__)
#define __shfl_sync(...) ::emu::shfl<::emu::SHFL_IDX>(EMU_SITE("__shfl_sync"), __VA_ARGS__)
#define __shfl_up_sync(...) ::emu::shfl<::emu::SHFL_UP>(EMU_SITE("__shfl_up_sync"), __VA_ARGS__)
#define __shfl_down_sync(...) ::emu::shfl<::emu::SHFL_DOWN>(EMU_SITE("__shfl_down_sync"), __VA_ARGS__)
#define __shfl_xor_sync(...) ::emu::shfl<::emu::SHFL_XOR>(EMU_SITE("__shfl_xor_sync"), __VA_ARGS__)
#define __ballot_sync(m, p) ::emu::ballot(EMU_SITE("__ballot_sync"), (m), (p))
#define __any_sync(m, p) (::emu::ballot(EMU_SITE("__any_sync"), (m), (p)) != 0u)
#define __all_sync(m, p) (::emu::ballot(EMU_SITE("__all_sync"), (m), (p)) == (unsigned)(m))
#define __match_any_sync(m, v) ::emu::match_any(EMU_SITE("__match_any_sync"), (m), (v))
#define __reduce_add_sync(m, v) ::emu::reduce(EMU_SITE("__reduce_add_sync"), ::emu::RED_ADD, (m), (unsigned)(v))
#define __reduce_min_sync(m, v)                  \
    ::emu::reduce(EMU_SITE("__reduce_min_sync"), \
                  ::emu::RED_MIN | (std::is_signed<decltype(v)>::value ? ::emu::RED_SIGNED : 0), (m), (unsigned)(v))
#define __reduce_max_sync(m, v)                  \
    ::emu::reduce(EMU_SITE("__reduce_max_sync"), \
                  ::emu::RED_MAX | (std::is_signed<decltype(v)>::value ? ::emu::RED_SIGNED : 0), (m), (unsigned)(v))
#define __reduce_and_sync(m, v) ::emu::reduce(EMU_SITE("__reduce_and_sync"), ::emu::RED_AND, (m), (unsigned)(v))
#define __reduce_or_sync(m, v) ::emu::reduce(EMU_SITE("__reduce_or_sync"), ::emu::RED_OR, (m), (unsigned)(v))
#define __reduce_xor_sync(m, v) ::emu::reduce(EMU_SITE("__reduce_xor_sync"), ::emu::RED_XOR, (m), (unsigned)(v))
static inline unsigned __activemask(void) { return ::emu::activemask(); }
static inline void __threadfence(void) { ::emu::threadfence(); }
static inline void __threadfence_block(void) { ::emu::threadfence(); }
static inline void __threadfence_system(void) { ::emu::threadfence(); }
static inline void __nanosleep(unsigned) {}
static inline long long clock64(void) { return 0; }

/* ---- integer and float intrinsics ---- */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
static inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
static inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }
static inline long max(long a, long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }

static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
static inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static inline int __mul24(int a, int b) { return (int)((long long)(a << 8 >> 8) * (b << 8 >> 8)); }
static inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
    s &= 31;
    return s ? (hi << s) | (lo >> (32 - s)) : hi;
}
static inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
    s &= 31;
    return s ? (lo >> s) | (hi << (32 - s)) : lo;
}
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
    return r;
}

static inline float __int_as_float(int x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}
static inline int __float_as_int(float f) {
    int x;
    memcpy(&x, &f, 4);
    return x;
}
static inline float __uint_as_float(unsigned x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}
static inline unsigned __float_as_uint(float f) {
    unsigned x;
    memcpy(&x, &f, 4);
    return x;
}
static inline double __longlong_as_double(long long x) {
    double d;
    memcpy(&d, &x, 8);
    return d;
}
static inline long long __double_as_longlong(double d) {
    long long x;
    memcpy(&x, &d, 8);
    return x;
}
static inline int __double2hiint(double d) { return (int)((unsigned long long)__double_as_longlong(d) >> 32); }
static inline int __double2loint(double d) { return (int)(unsigned)__double_as_longlong(d); }
static inline double __hiloint2double(int hi, int lo) {
    return __longlong_as_double((long long)(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo));
}

static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float a) { return a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a == a ? a : 0.0f; }
static inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
static inline double rsqrt(double a) { return 1.0 / sqrt(a); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline int __float2int_rn(float a) { return (int)nearbyintf(a); }
static inline int __float2int_rz(float a) { return (int)a; }
static inline unsigned __float2uint_rn(float a) { return (unsigned)nearbyintf(a); }
static inline float __int2float_rn(int a) { return (float)a; }
static inline float __uint2float_rn(unsigned a) { return (float)a; }
static inline double __int2double_rn(int a) { return (double)a; }
static inline float __double2float_rn(double a) { return (float)a; }

/* __expf, __logf, __sinf, __powf, exp10f ... are glibc's own (math.h declares them).
 * read-only / streaming loads and stores: plain accesses here */
template <class T> static inline T __ldg(const T *p) { return *p; }
template <class T> static inline T __ldcs(const T *p) { return *p; }
template <class T> static inline T __ldca(const T *p) { return *p; }
template <class T> static inline T __ldcg(const T *p) { return *p; }
template <class T> static inline void __stcs(T *p, T v) { *p = v; }
template <class T> static inline void __stcg(T *p, T v) { *p = v; }

/* Atomics: the fibers of one host thread never run at the same time and blocks run one
 * after another, so a plain read-modify-write is atomic here (the thread-order check still
 * sees order-dependent results, e.g. float sums). */
template <class T> static inline T atomicAdd(T *p, T v) {
    T o = *p;
    *p = (T)(o + v);
    return o;
}
template <class T> static inline T atomicSub(T *p, T v) {
    T o = *p;
    *p = (T)(o - v);
    return o;
}
template <class T> static inline T atomicExch(T *p, T v) {
    T o = *p;
    *p = v;
    return o;
}
template <class T> static inline T atomicMax(T *p, T v) {
    T o = *p;
    *p = o > v ? o : v;
    return o;
}
template <class T> static inline T atomicMin(T *p, T v) {
    T o = *p;
    *p = o < v ? o : v;
    return o;
}
template <class T> static inline T atomicAnd(T *p, T v) {
    T o = *p;
    *p = o & v;
    return o;
}
template <class T> static inline T atomicOr(T *p, T v) {
    T o = *p;
    *p = o | v;
    return o;
}
template <class T> static inline T atomicXor(T *p, T v) {
    T o = *p;
    *p = o ^ v;
    return o;
}
template <class T> static inline T atomicCAS(T *p, T cmp, T v) {
    T o = *p;
    if (o == cmp) *p = v;
    return o;
}
static inline unsigned atomicInc(unsigned *p, unsigned lim) {
    unsigned o = *p;
    *p = o >= lim ? 0 : o + 1;
    return o;
}

#endif
