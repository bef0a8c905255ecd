// The harness's mma.sync and ldmatrix (C++; included by kernels/cuda/mma.cuh under SIMCSE_EMU).
//
// Both are warp-wide instructions (.sync.aligned: all 32 lanes execute them together), so each
// is one emu_warp_collective over the full mask: a lane that does not arrive, or arrives at a
// different instruction, is an error naming the kernel. The combine step places the lanes'
// registers with the PTX ISA layouts of emu/mma_layout.h, the same functions the GPU test
// compares with the hardware. ldmatrix also checks what the ISA requires of each row
// address: 16-byte alignment and shared memory (device memory from cudaMalloc is refused).
#pragma once

#include <emu/emu.h>
#include <emu/mma_layout.h>
#include <stdint.h>
#include <string.h>

namespace emu_mma {

struct mma_in {
    uint32_t a[4], b[2];
    float c[4];
};

inline void mma_combine(const void *ins, void *outs, unsigned mask, void *ctx) {
    (void)mask;
    (void)ctx;
    const mma_in *in = (const mma_in *)ins;
    uint32_t a[32][4], b[32][2];
    float c[32][4];
    for (int l = 0; l < 32; l++) {
        memcpy(a[l], in[l].a, sizeof a[l]);
        memcpy(b[l], in[l].b, sizeof b[l]);
        memcpy(c[l], in[l].c, sizeof c[l]);
    }
    emu_mma_m16n8k16_bf16_f32(a, b, c, (float(*)[4])outs);
}

struct ld_ctx {
    int num, trans;
    const char *what;
};

inline void ldmatrix_combine(const void *ins, void *outs, unsigned mask, void *ctx) {
    (void)mask;
    const ld_ctx *x = (const ld_ctx *)ctx;
    const uintptr_t *addr = (const uintptr_t *)ins;
    uint16_t rows[4][8][8];
    for (int m = 0; m < x->num; m++)
        for (int r = 0; r < 8; r++) {
            const int lane = 8 * m + r;
            const void *p = (const void *)addr[lane];
            if (addr[lane] & 15)
                emu_fail(x->what, "lane %d gave row address %p, which is not 16-byte aligned", lane, p);
            if (emu_is_device_range(p, 16))
                emu_fail(x->what, "lane %d gave row address %p in device (global) memory; ldmatrix reads shared memory",
                         lane, p);
            memcpy(rows[m][r], p, 16);
        }
    uint32_t regs[32][4];
    emu_ldmatrix_b16(x->num, x->trans, rows, regs);
    uint32_t *out = (uint32_t *)outs;
    for (int l = 0; l < 32; l++)
        for (int m = 0; m < x->num; m++) out[l * x->num + m] = regs[l][m];
}

inline void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    mma_in in;
    memcpy(in.a, a, sizeof in.a);
    memcpy(in.b, b, sizeof in.b);
    memcpy(in.c, c, sizeof in.c);
    float out[4];
    emu_warp_collective(0xffffffffu, &in, sizeof in, out, sizeof out, mma_combine, nullptr,
                        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
    memcpy(d, out, sizeof out);
}

// One context per variant, so every lane passes the same pointer.
template <int NUM, int TRANS> inline void ldmatrix(uint32_t *r, const void *row_addr) {
    static const ld_ctx ctx = {
        NUM, TRANS,
        NUM == 1
            ? (TRANS ? "ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16" : "ldmatrix.sync.aligned.m8n8.x1.shared.b16")
        : NUM == 2
            ? (TRANS ? "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16" : "ldmatrix.sync.aligned.m8n8.x2.shared.b16")
            : (TRANS ? "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" : "ldmatrix.sync.aligned.m8n8.x4.shared.b16")};
    uintptr_t a = (uintptr_t)row_addr;
    uint32_t out[NUM];
    emu_warp_collective(0xffffffffu, &a, sizeof a, out, sizeof out, ldmatrix_combine, (void *)&ctx, ctx.what);
    memcpy(r, out, sizeof out);
}

} // namespace emu_mma
