// The CUDA backend's own counters (kernels/cuda/backend.cu, fed by the counting interposers of
// cuda_common.cuh) against the harness runtime's (tests/emu/emu_runtime.cpp), field by field:
// the GPU build reports the backend's figures, and this is what checks them without a GPU.
//   - a whole training step (encoder and step created, both views forward and backward, the
//     InfoNCE loss, AdamW with clipping, a read-back, everything freed) in fp32 and in bf16
//     (cuBLAS and cuBLASLt GEMMs): every counter moves by the same amount in both;
//   - ops captured into a CUDA graph on the backend's stream and replayed 3 times: the captured
//     kernels and library calls count when each replay runs (3 x what the same ops launch
//     eagerly), in both counters, and a replay is one host launch.
// Built only by make test-emu (tests/emu/test_*.cu).
#include <criterion/criterion.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "simcse/cuda_counters.h"
#include "simcse/encoder.h"
#include "simcse/loss.h"
#include "simcse/model.h"
#include "simcse/ops.h"
#include "simcse/optimizer.h"
}

#include "kernels/cuda/cuda_common.cuh"

static simcse_cuda_counters diff(const simcse_cuda_counters &a, const simcse_cuda_counters &b) {
    simcse_cuda_counters d;
    d.launches = b.launches - a.launches;
    d.kernel_launches = b.kernel_launches - a.kernel_launches;
    d.library_calls = b.library_calls - a.library_calls;
    d.graph_launches = b.graph_launches - a.graph_launches;
    d.kernels_executed = b.kernels_executed - a.kernels_executed;
    d.library_executed = b.library_executed - a.library_executed;
    d.host_syncs = b.host_syncs - a.host_syncs;
    d.allocations = b.allocations - a.allocations;
    d.h2d_bytes = b.h2d_bytes - a.h2d_bytes;
    d.d2h_bytes = b.d2h_bytes - a.d2h_bytes;
    return d;
}

struct both {
    simcse_cuda_counters rt, be;
};
static both read_both() {
    both x;
    cr_assert(simcse_cuda_counters_read(&x.rt), "the harness runtime must count");
    cr_assert(simcse_cuda_backend_counters_read(&x.be), "the CUDA backend must count");
    return x;
}

#define SAME(field)                                                                                              \
    cr_expect_eq(rt.field, be.field, "%s: %s: the harness runtime counted %llu, the backend %llu", what, #field, \
                 rt.field, be.field)
static void expect_same(const both &a, const both &b, const char *what) {
    const simcse_cuda_counters rt = diff(a.rt, b.rt), be = diff(a.be, b.be);
    SAME(launches);
    SAME(kernel_launches);
    SAME(library_calls);
    SAME(graph_launches);
    SAME(kernels_executed);
    SAME(library_executed);
    SAME(host_syncs);
    SAME(allocations);
    SAME(h2d_bytes);
    SAME(d2h_bytes);
}

static simcse_config tiny_config(void) {
    simcse_config c = {};
    c.arch = SIMCSE_ARCH_BERT;
    c.vocab_size = 256;
    c.hidden = 32;
    c.layers = 2;
    c.heads = 2;
    c.intermediate = 64;
    c.max_positions = 32;
    c.type_vocab_size = 2;
    c.pad_token_id = 0;
    c.layer_norm_eps = 1e-12f;
    c.hidden_dropout = 0.1f;
    c.attn_dropout = 0.1f;
    return c;
}

static void check_training_step(int bf16) {
    simcse_backend *be = simcse_backend_cuda(0, bf16);
    cr_assert_not_null(be, "%s", simcse_last_error());
    simcse_config c = tiny_config();
    simcse_model m;
    cr_assert_eq(simcse_model_init(&m, &c), 0);
    simcse_model_init_random(&m, 5);
    enum { B = 4, V = 2, L = 9 };
    int32_t ids[B * V * L], pos[B * V * L], rows[B * V * L], offs[B * V + 1];
    for (int s = 0, T = 0; s < B * V; s++) {
        offs[s] = T;
        for (int j = 0; j < L; j++, T++) {
            ids[T] = j == 0 ? 2 : 4 + (s % B * 31 + j * 13) % 200;
            pos[T] = j;
            rows[T] = s * L + j;
        }
    }
    offs[B * V] = B * V * L;
    simcse_packed p = {};
    p.n_seq = B * V;
    p.T = B * V * L;
    p.ids = ids;
    p.pos_ids = pos;
    p.offsets = offs;
    p.row_ids = rows;
    simcse_loss_config lc = {};
    lc.pooler = SIMCSE_POOL_CLS;
    lc.apply_mlp = 1;
    lc.temperature = 0.05f;
    simcse_adamw_config ac = {};
    ac.lr = 1e-3;
    ac.beta1 = 0.9;
    ac.beta2 = 0.999;
    ac.eps = 1e-8;
    ac.weight_decay = 0.01;
    ac.max_grad_norm = 1.0;
    ac.total_steps = 4;

    const both a = read_both();
    simcse_encoder *e = simcse_encoder_create(be, &m, p.n_seq, p.T, 1);
    cr_assert_not_null(e, "%s", simcse_last_error());
    simcse_step *st = simcse_step_create(e, &lc, NULL, B, V);
    cr_assert_not_null(st, "%s", simcse_last_error());
    simcse_optimizer opt;
    cr_assert_eq(simcse_optimizer_init(&opt, be, &m, &ac), 0, "%s", simcse_last_error());
    int counts[1] = {B};
    for (int s = 0; s < 2; s++) {
        float loss = 0;
        simcse_encoder_zero_grads(e);
        simcse_encoder_set_dropout(e, 1, 11, (uint32_t)s);
        cr_assert_eq(simcse_step_run(st, &p, counts, 1, &loss), 0, "%s", simcse_last_error());
        simcse_optimizer_step(&opt, simcse_encoder_params(e), simcse_encoder_grads(e), NULL);
    }
    float w[8];
    be->to_host(be, w, simcse_encoder_params(e), sizeof w);
    simcse_optimizer_free(&opt);
    simcse_step_free(st);
    simcse_encoder_free(e);
    be->sync(be);
    const both b = read_both();
    expect_same(a, b, bf16 ? "bf16 training steps" : "fp32 training steps");
    const simcse_cuda_counters rt = diff(a.rt, b.rt);
    cr_expect(rt.kernels_executed > 0 && rt.library_executed > 0 && rt.allocations > 0 && rt.h2d_bytes > 0 &&
                  rt.host_syncs > 0,
              "the steps must exercise every counter (kernels %llu, library %llu, allocations %llu, h2d %llu, "
              "syncs %llu)",
              rt.kernels_executed, rt.library_executed, rt.allocations, rt.h2d_bytes, rt.host_syncs);
    simcse_model_free(&m);
}

Test(emu_counters, fp32_training_steps_backend_agrees_with_runtime) { check_training_step(0); }
Test(emu_counters, bf16_training_steps_backend_agrees_with_runtime) { check_training_step(1); }

/* a few ops of a layer: a GEMM (library call), GELU and add kernels, a pinned upload */
static void some_ops(simcse_backend *be, float *y, float *h, const float *x, const float *W, const float *bias,
                     const float *pinned, int N, int I, int O) {
    CU_CHECK(cudaMemcpyAsync(h, pinned, (size_t)N * O * sizeof(float), cudaMemcpyHostToDevice, cu_stream(be)));
    be->linear_fwd(be, y, x, W, bias, N, I, O);
    be->gelu_fwd(be, y, y, (size_t)N * O);
    be->add(be, y, y, h, (size_t)N * O);
}

Test(emu_counters, graph_replays_count_the_captured_launches) {
    simcse_backend *be = simcse_backend_cuda(0, 0);
    cr_assert_not_null(be, "%s", simcse_last_error());
    const int N = 8, I = 16, O = 16;
    float *x = (float *)be->alloc(be, (size_t)N * I * sizeof(float)), *W = (float *)be->alloc(be, (size_t)I * O * 4),
          *bias = (float *)be->alloc(be, (size_t)O * 4), *y = (float *)be->alloc(be, (size_t)N * O * 4),
          *h = (float *)be->alloc(be, (size_t)N * O * 4);
    float *pinned = NULL;
    CU_CHECK(cudaMallocHost((void **)&pinned, (size_t)N * O * sizeof(float)));
    for (int i = 0; i < N * O; i++) pinned[i] = 0.01f * i;
    be->zero(be, x, (size_t)N * I * 4);
    be->zero(be, W, (size_t)I * O * 4);
    be->zero(be, bias, (size_t)O * 4);
    be->sync(be);

    const both e0 = read_both();
    some_ops(be, y, h, x, W, bias, pinned, N, I, O); /* eagerly: what one replay must execute */
    be->sync(be);
    const both e1 = read_both();
    expect_same(e0, e1, "the ops run eagerly");
    const simcse_cuda_counters eager = diff(e0.rt, e1.rt);
    cr_assert(eager.kernels_executed > 0 && eager.library_executed > 0);

    const both g0 = read_both();
    cudaGraph_t g;
    cudaGraphExec_t x_exec;
    CU_CHECK(cudaStreamBeginCapture(cu_stream(be), cudaStreamCaptureModeThreadLocal));
    some_ops(be, y, h, x, W, bias, pinned, N, I, O);
    CU_CHECK(cudaStreamEndCapture(cu_stream(be), &g));
    CU_CHECK(cudaGraphInstantiate(&x_exec, g, 0));
    const both g1 = read_both();
    const simcse_cuda_counters captured = diff(g0.rt, g1.rt);
    cr_expect_eq(captured.kernels_executed + captured.library_executed, 0, "captured work must not run yet");
    for (int r = 0; r < 3; r++) CU_CHECK(cudaGraphLaunch(x_exec, cu_stream(be)));
    be->sync(be);
    const both g2 = read_both();
    expect_same(g0, g2, "3 graph replays");
    const simcse_cuda_counters rep = diff(g0.rt, g2.rt), rep_be = diff(g0.be, g2.be);
    cr_expect_eq(rep.graph_launches, 3);
    cr_expect_eq(rep.launches, 3, "a replay is one host launch (got %llu for 3)", rep.launches);
    cr_expect_eq(rep.kernels_executed, 3 * eager.kernels_executed, "kernels: %llu for 3 replays of %llu",
                 rep.kernels_executed, eager.kernels_executed);
    cr_expect_eq(rep_be.library_executed, 3 * eager.library_executed, "library calls: %llu for 3 replays of %llu",
                 rep_be.library_executed, eager.library_executed);
    cr_expect_eq(rep_be.h2d_bytes, 3 * eager.h2d_bytes);
    CU_CHECK(cudaGraphExecDestroy(x_exec));
    CU_CHECK(cudaGraphDestroy(g));
    CU_CHECK(cudaFreeHost(pinned));
    be->free(be, x);
    be->free(be, W);
    be->free(be, bias);
    be->free(be, y);
    be->free(be, h);
}
