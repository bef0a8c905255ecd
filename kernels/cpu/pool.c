/* Sentence pooling over packed sequences: the first token ([CLS] / <s>) or the mean over
 * the tokens of each sequence. Backward passes accumulate into dx (the pooled rows are a
 * branch of an activation that may have other consumers). An empty sequence pools to
 * zeros and receives no gradient. The mean is accumulated in double. */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_pool_first_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H) {
    (void)be;
    for (int b = 0; b < B; b++) {
        if (offsets[b + 1] > offsets[b])
            memcpy(out + (size_t)b * H, x + (size_t)offsets[b] * H, (size_t)H * sizeof(float));
        else
            memset(out + (size_t)b * H, 0, (size_t)H * sizeof(float));
    }
}

void cpu_pool_first_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H) {
    (void)be;
    for (int b = 0; b < B; b++) {
        if (offsets[b + 1] <= offsets[b]) continue;
        float *d = dx + (size_t)offsets[b] * H;
        const float *g = dout + (size_t)b * H;
        for (int h = 0; h < H; h++) d[h] += g[h];
    }
}

void cpu_pool_mean_fwd(simcse_backend *be, float *out, const float *x, const int32_t *offsets, int B, int H) {
    (void)be;
    for (int b = 0; b < B; b++) {
        int t0 = offsets[b], t1 = offsets[b + 1];
        float *y = out + (size_t)b * H;
        for (int h = 0; h < H; h++) {
            double s = 0.0;
            for (int t = t0; t < t1; t++) s += x[(size_t)t * H + h];
            y[h] = t1 > t0 ? (float)(s / (t1 - t0)) : 0.0f;
        }
    }
}

void cpu_pool_mean_bwd(simcse_backend *be, float *dx, const float *dout, const int32_t *offsets, int B, int H) {
    (void)be;
    for (int b = 0; b < B; b++) {
        int t0 = offsets[b], t1 = offsets[b + 1];
        if (t1 <= t0) continue;
        const float inv = 1.0f / (float)(t1 - t0);
        const float *g = dout + (size_t)b * H;
        for (int t = t0; t < t1; t++) {
            float *d = dx + (size_t)t * H;
            for (int h = 0; h < H; h++) d[h] += g[h] * inv;
        }
    }
}
