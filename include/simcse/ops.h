/* The operation interface: every computation of the model goes through one of
 * these, so the encoder graph (host/train/encoder.c) is written once and runs on
 * any backend. Two implementations: kernels/cpu (fp32: OpenBLAS and a thread pool,
 * with its plain loops kept as simcse_backend_cpu_reference, the oracle) and
 * kernels/cuda (the fast path).
 *
 * Conventions
 * - Activations are token-packed: [T, H] with T the real tokens of the batch and
 *   offsets[B+1] giving each sequence's first token (offsets[B] == T). Nothing
 *   is padded. offsets, ids and other int arrays live in backend memory too.
 * - Linear layers use PyTorch's [out, in] weight layout: y = x W^T + b.
 * - Backward functions ACCUMULATE into parameter gradients (dW, db, dgamma...)
 *   and OVERWRITE activation gradients (dx) unless they say otherwise.
 * - Dropout: sites identify the place in the network; masks come from
 *   include/simcse/rng.h and are regenerated, never stored. p == 0 means off. */
#ifndef SIMCSE_OPS_H
#define SIMCSE_OPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t seed;
    uint32_t step;
    uint32_t site;
    float p; /* drop probability; 0 disables */
    /* Global row identity of each token (backend memory, [T]), so that masks do not
     * depend on where a sentence sits in a packed batch, a chunk or a rank: the
     * packer gives token j of global sequence s the row s * max_len + j. NULL: the
     * row is the packed index. */
    const int32_t *row_ids;
} simcse_dropout;

typedef struct simcse_backend simcse_backend;
struct simcse_backend {
    const char *name;
    void *ctx;

    /* memory: sizes in bytes */
    void *(*alloc)(simcse_backend *be, size_t bytes); /* NULL + error when it does not fit */
    void (*free)(simcse_backend *be, void *p);
    void (*to_device)(simcse_backend *be, void *dst, const void *src, size_t bytes);
    void (*to_host)(simcse_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(simcse_backend *be, void *p, size_t bytes);
    /* device-to-device copy; dst and src must not overlap (cudaMemcpyAsync) */
    void (*copy)(simcse_backend *be, void *dst, const void *src, size_t bytes);
    void (*sync)(simcse_backend *be);
    /* bytes allocated through alloc and not freed, and the most there ever were
     * (the memory a run needs, comparable with torch.cuda.max_memory_allocated) */
    void (*memory)(simcse_backend *be, size_t *in_use, size_t *peak);
    /* bytes it can still allocate, and where the figure comes from (a static string):
     * cudaMemGetInfo's free memory on the GPU; on the CPU the host's figure
     * (include/simcse/host_memory.h), with *host = 1: the backend's allocations and the
     * host's then come out of the same memory. For budgeting a run before it allocates. */
    size_t (*available)(simcse_backend *be, const char **source, int *host);

    /* out[T,H] = word[ids] + pos[pos_ids] + type[type_ids]  (type_ids NULL: row 0).
     * The backward accumulates dout rows into the tables; a NULL table is skipped. */
    void (*embed_fwd)(simcse_backend *be, float *out, const int32_t *ids, const int32_t *pos_ids,
                      const int32_t *type_ids, const float *word, const float *pos, const float *type, int T, int H);
    void (*embed_bwd)(simcse_backend *be, float *dword, float *dpos, float *dtype, const float *dout,
                      const int32_t *ids, const int32_t *pos_ids, const int32_t *type_ids, int T, int H);

    /* out[N,O] = in[N,I] W[O,I]^T + b[O]  (b may be NULL; out must not alias in) */
    void (*linear_fwd)(simcse_backend *be, float *out, const float *in, const float *W, const float *b, int N, int I,
                       int O);
    /* din[N,I] = dout W (overwrite; din may be NULL); dW += dout^T in; db += sum_n dout
     * (dW, db may be NULL) */
    void (*linear_bwd)(simcse_backend *be, float *din, float *dW, float *db, const float *dout, const float *in,
                       const float *W, int N, int I, int O);

    /* y = LayerNorm(x + residual) (residual may be NULL); saves mean and rstd [N].
     * PyTorch semantics: biased variance, rstd = 1/sqrt(var + eps). */
    void (*layernorm_fwd)(simcse_backend *be, float *y, float *mean, float *rstd, const float *x, const float *residual,
                          const float *g, const float *b, int N, int H, float eps);
    /* dx = d(x+residual) (overwrite; also the residual's gradient), dg += , db +=
     * (dg, db may be NULL) */
    void (*layernorm_bwd)(simcse_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                          const float *residual, const float *mean, const float *rstd, const float *g, int N, int H);

    /* exact (erf) GELU, in place allowed (y == x; dx == dy in the backwards) */
    void (*gelu_fwd)(simcse_backend *be, float *y, const float *x, size_t n);
    void (*gelu_bwd)(simcse_backend *be, float *dx, const float *dy, const float *x, size_t n);
    void (*tanh_fwd)(simcse_backend *be, float *y, const float *x, size_t n);
    /* dx = dy * (1 - y^2), from the output y */
    void (*tanh_bwd)(simcse_backend *be, float *dx, const float *dy, const float *y, size_t n);

    /* y = dropout(x) on a [rows, cols] matrix: element (r, c) uses rng row r, element c:
     * dropped when simcse_rng_u32(seed, simcse_rng_subsequence(step, site, r), c)
     * < simcse_dropout_threshold(p), else multiplied by 1.0f / (1.0f - p) (float).
     * p <= 0: copy; p >= 1: zeros. The rng row of matrix row r is row_ids[r] (or r). The backward is the same function
     * applied to the gradient. In place allowed. */
    void (*dropout)(simcse_backend *be, float *y, const float *x, int rows, int cols, simcse_dropout d);

    /* Self-attention over packed sequences. q, k, v, out: [T, heads*hd].
     * Scores (q . k) * (1.0f / sqrtf(hd)) within each sequence only; softmax; then
     * dropout on the probabilities (PyTorch's dropout(softmax(scores)) @ v).
     * lse[T*heads] (row log-sum-exp of the scaled scores, at lse[t*heads + h]) is saved
     * for the backward, which recomputes the probabilities from it.
     * Probability dropout: rng row = row_ids[t]*heads + head (t the packed token; row_ids NULL: t),
     * element = key position j in its sequence, with the rule and scale of `dropout`.
     * The backward overwrites dq, dk, dv; `out` is there for kernels that form
     * D = rowsum(dout * out) (the CPU oracle computes D from the probabilities). */
    void (*attention_fwd)(simcse_backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                          const int32_t *offsets, int B, int T, int heads, int hd, simcse_dropout d);
    void (*attention_bwd)(simcse_backend *be, float *dq, float *dk, float *dv, const float *dout, const float *q,
                          const float *k, const float *v, const float *out, const float *lse, const int32_t *offsets,
                          int B, int T, int heads, int hd, simcse_dropout d);

    /* Pooling. out[B,H] = x[offsets[b]] (the first token) */
    void (*pool_first_fwd)(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
    /* dx[first token of b] += dout[b] (accumulate; other rows untouched) */
    void (*pool_first_bwd)(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);
    /* out[B,H] = mean over the tokens of each sequence (an empty sequence pools to 0) */
    void (*pool_mean_fwd)(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H);
    /* dx[t] += dout[b] / len_b (accumulate) */
    void (*pool_mean_bwd)(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H);

    /* y = a + b elementwise; y may alias a or b (accumulate y += x: add(be, y, y, x, n)) */
    void (*add)(simcse_backend *be, float *y, const float *a, const float *b, size_t n);
    /* y *= s in place */
    void (*scale)(simcse_backend *be, float *y, float s, size_t n);

    /* InfoNCE with cosine similarity. anchors [B,H]; cands [C,H]: a block of positives and,
     * when hard, a second block of the same size of hard negatives. Anchor i's positive
     * is cands[target0 + i] and its hard negative cands[C/2 + target0 + i] (target0 > 0
     * when the candidates were gathered from several ranks). Logits = cos / temp, plus
     * hn_weight on the own hard negative (added after dividing by temp, as SimCSE).
     * *loss (a host pointer) = mean over the B anchors; d_anchors [B,H] and d_cands [C,H]
     * are overwritten, scaled by grad_scale (the loss is not).
     * cos = a.c / max(|a| |c|, 1e-8) as nn.CosineSimilarity. */
    void (*infonce)(simcse_backend *be, float *loss, float *d_anchors, float *d_cands, const float *anchors,
                    const float *cands, int B, int C, int H, float temp, float hn_weight, float grad_scale, int target0,
                    int hard);

    /* sum of squares of x[0..n) into *out (host pointer), fp64 accumulate on CPU */
    void (*sumsq)(simcse_backend *be, double *out, const float *x, size_t n);

    /* One AdamW step on n floats, torch.optim.AdamW's order: g = grad * grad_scale (clipping);
     * p *= 1 - lr * wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * p -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^step), v_hat = v / (1 - b2^step).
     * step counts from 1. */
    void (*adamw)(simcse_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                  float beta2, float eps, float wd, float grad_scale, int step);
};

/* The CPU backend (fp32): OpenBLAS GEMMs and the other ops on one thread pool. */
simcse_backend *simcse_backend_cpu(void);
/* Its plain single-threaded loops, the oracle the CPU backend is tested against (same
 * memory functions; not for production use). */
simcse_backend *simcse_backend_cpu_reference(void);
/* The CPU backend's thread count: n >= 1 sets it (`--threads N`); 0 resolves it from
 * OMP_NUM_THREADS, else the processors of the process's affinity mask. Returns the count,
 * or -1 + error for a bad OMP_NUM_THREADS. Results are deterministic for a fixed count. */
int simcse_cpu_set_threads(int n);
int simcse_cpu_threads(void);
/* The CUDA backend on device `device`, or NULL + error when none is usable. */
simcse_backend *simcse_backend_cuda(int device, int bf16);
int simcse_cuda_available(void);
/* The backend for --device cpu|cuda|auto on GPU number `gpu`, and a precision (fp32|bf16);
 * bf16 on the CPU falls back to fp32 with a note on stderr. NULL + error. */
simcse_backend *simcse_backend_select(const char *device, const char *precision, int gpu);

#endif
