// Rule 8 of the harness: the tensor-core wrappers of kernels/cuda/mma.cuh in the emulation.
//
// - A 16x16x8 tile product through the wrappers as a kernel writes it (A by ldmatrix.x4, B by
//   ldmatrix.x2 from its transpose or by ldmatrix.x2.trans from row-major storage, one
//   mma.sync) equals the naive product. Inputs are multiples of 1/8, so every sum is exact.
// - ldmatrix.x1 and .x4.trans hand each lane the elements the PTX ISA assigns, checked with
//   the ISA's rule written out here (independently of tests/emu/include/emu/mma_layout.h).
// - Broken kernels: A loaded in a wrong layout (the two middle 8x8 blocks swapped, a plausible
//   address mistake) gives a detectably wrong product; the mma called by half the warp, an
//   ldmatrix row address that is not 16-byte aligned, and one in global memory are rejected
//   by the harness: the test runs them in a child and checks that its error names the kernel
//   and the problem.
// Built only by make test-emu.
#include <criterion/criterion.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "kernels/cuda/mma.cuh"

namespace {

enum Variant { GOOD_BT = 0, GOOD_TRANS = 1, BAD_A_LAYOUT = 2, HALF_WARP = 3, MISALIGNED = 4, GLOBAL_ADDR = 5 };

// A [16][16] row-major; Bt [8][16] (B column-major); Brm [16][8] (B row-major); D [16][8] row-major.
__global__ void k_tile(const uint16_t *A, const uint16_t *Bt, const uint16_t *Brm, float *D, int variant) {
    __shared__ __align__(16) uint16_t sa[16][16];
    __shared__ __align__(16) uint16_t sbt[8][16];
    __shared__ __align__(16) uint16_t sbr[16][8];
    const int l = threadIdx.x;
    for (int i = l; i < 256; i += 32) sa[i / 16][i % 16] = A[i];
    for (int i = l; i < 128; i += 32) sbt[i / 16][i % 16] = Bt[i], sbr[i / 8][i % 8] = Brm[i];
    __syncthreads();
    uint32_t a[4], b[2];
    if (variant == BAD_A_LAYOUT) // matrices ordered (rows 0-7, cols 0-7), (rows 0-7, cols 8-15), ...
        cu_ldmatrix_x4(a, &sa[(l % 8) + (l / 16) * 8][((l / 8) % 2) * 8]);
    else if (variant == MISALIGNED)
        cu_ldmatrix_x4(a, &sa[l % 16][(l / 16) * 8 + 1]);
    else if (variant == GLOBAL_ADDR)
        cu_ldmatrix_x4(a, &A[(l % 16) * 16 + (l / 16) * 8]);
    else // lane l: row l % 16, column block l / 16 -> a0..a3 in the mma's A order
        cu_ldmatrix_x4(a, &sa[l % 16][(l / 16) * 8]);
    if (variant == GOOD_TRANS)
        cu_ldmatrix_x2_trans(b, &sbr[l % 16][0]);
    else
        cu_ldmatrix_x2(b, &sbt[l % 8][((l / 8) % 2) * 8]);
    const float c[4] = {0, 0, 0, 0};
    float d[4] = {0, 0, 0, 0};
    if (variant != HALF_WARP || l < 16) cu_mma_m16n8k16_bf16(d, a, b, c);
    const int g = l >> 2, t = l & 3;
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// Each lane dumps its ldmatrix.x1 register and its ldmatrix.x4.trans registers.
__global__ void k_ldmatrix_dump(const uint16_t *M, uint32_t *out) {
    __shared__ __align__(16) uint16_t s[32][8];
    const int l = threadIdx.x;
    for (int c = 0; c < 8; c++) s[l][c] = M[l * 8 + c];
    __syncthreads();
    uint32_t r1[1], r4[4];
    cu_ldmatrix_x1(r1, s[(l * 3) % 32]); // lanes 0-7 give rows 0, 3, 6, ... of the shared block
    cu_ldmatrix_x4_trans(r4, s[(l * 3) % 32]);
    out[l * 5] = r1[0];
    for (int m = 0; m < 4; m++) out[l * 5 + 1 + m] = r4[m];
}

uint16_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
float val(int seed, int i) { return (float)(((seed * 131 + i * 71) % 25) - 12) / 8.0f; }

template <class T> T *dev(const T *h, size_t n) {
    T *d = nullptr;
    cr_assert_eq(cudaMalloc((void **)&d, n * sizeof(T)), cudaSuccess);
    if (h) cr_assert_eq(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    return d;
}

// Runs k_tile; returns the largest |D - naive| and fills got.
float run_tile(int variant, float got[128]) {
    uint16_t A[256], Bt[128], Brm[128];
    float a[16][16], b[16][8];
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++) a[i][k] = val(1, i * 16 + k), A[i * 16 + k] = bf16_bits(a[i][k]);
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 8; n++) {
            b[k][n] = val(2, k * 8 + n);
            Bt[n * 16 + k] = Brm[k * 8 + n] = bf16_bits(b[k][n]);
        }
    uint16_t *dA = dev(A, 256), *dBt = dev(Bt, 128), *dBr = dev(Brm, 128);
    float *dD = dev<float>(nullptr, 128);
    k_tile<<<1, 32>>>(dA, dBt, dBr, dD, variant);
    cr_assert_eq(cudaGetLastError(), cudaSuccess);
    cr_assert_eq(cudaMemcpy(got, dD, 128 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    float worst = 0;
    for (int i = 0; i < 16; i++)
        for (int n = 0; n < 8; n++) {
            double s = 0;
            for (int k = 0; k < 16; k++) s += (double)a[i][k] * b[k][n];
            float e = fabsf(got[i * 8 + n] - (float)s);
            if (e > worst) worst = e;
        }
    cudaFree(dA);
    cudaFree(dBt);
    cudaFree(dBr);
    cudaFree(dD);
    return worst;
}

} // namespace

Test(emu_mma, ldmatrix_and_mma_tile_equals_naive) {
    float got[128];
    cr_assert_eq(run_tile(GOOD_BT, got), 0.0f, "B through ldmatrix.x2 of its transpose");
    cr_assert_eq(run_tile(GOOD_TRANS, got), 0.0f, "B through ldmatrix.x2.trans of row-major storage");
}

Test(emu_mma, ldmatrix_lanes_get_the_isa_elements) {
    uint16_t M[256];
    for (int i = 0; i < 256; i++) M[i] = (uint16_t)(i * 7 + 1);
    uint16_t *dM = dev(M, 256);
    uint32_t *dout = dev<uint32_t>(nullptr, 32 * 5), out[32 * 5];
    k_ldmatrix_dump<<<1, 32>>>(dM, dout);
    cr_assert_eq(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost), cudaSuccess);
    // row r of matrix m is the shared row lane 8m + r pointed at
    auto elem = [&](int m, int r, int c) { return M[(((8 * m + r) * 3) % 32) * 8 + c]; };
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        uint32_t want = (uint32_t)elem(0, g, 2 * t) | (uint32_t)elem(0, g, 2 * t + 1) << 16;
        cr_assert_eq(out[l * 5], want, "x1: lane %d got %08x, want %08x", l, out[l * 5], want);
        for (int m = 0; m < 4; m++) {
            uint32_t wt = (uint32_t)elem(m, 2 * t, g) | (uint32_t)elem(m, 2 * t + 1, g) << 16;
            cr_assert_eq(out[l * 5 + 1 + m], wt, "x4.trans: lane %d matrix %d got %08x, want %08x", l, m,
                         out[l * 5 + 1 + m], wt);
        }
    }
    cudaFree(dM);
    cudaFree(dout);
}

Test(emu_mma, a_fragment_in_the_wrong_layout_gives_a_wrong_product) {
    float got[128];
    cr_assert_gt(run_tile(BAD_A_LAYOUT, got), 0.1f, "a kernel that swapped a1 and a2 must not match the naive product");
}

// Runs the variant in a child (a rejection aborts the process) and checks that it was rejected
// with an error that names the kernel and the problem.
static void expect_rejected(int variant, const char *problem) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        float got[128];
        run_tile(variant, got);
        fflush(stderr);
        _exit(0);
    }
    close(p[1]);
    std::string err;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)n);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "the harness accepted variant %d; its stderr:\n%s", variant,
              err.c_str());
    cr_assert(err.find("kernel k_tile") != std::string::npos, "the error does not name k_tile:\n%s", err.c_str());
    cr_assert(err.find(problem) != std::string::npos, "the error does not say '%s':\n%s", problem, err.c_str());
}

Test(emu_mma, mma_by_half_a_warp_is_rejected) {
    // which of lanes 16-31 is named depends on the scheduling; that one of them never arrives does not
    expect_rejected(HALF_WARP, "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: lane ");
    expect_rejected(HALF_WARP, " of the mask 0xffffffff never arrives: it exited");
}

Test(emu_mma, misaligned_ldmatrix_row_is_rejected) {
    expect_rejected(MISALIGNED, "ldmatrix.sync.aligned.m8n8.x4.shared.b16: lane 0 gave row address");
    expect_rejected(MISALIGNED, "which is not 16-byte aligned");
}

Test(emu_mma, ldmatrix_from_global_memory_is_rejected) {
    expect_rejected(GLOBAL_ADDR, "in device (global) memory; ldmatrix reads shared memory");
}
