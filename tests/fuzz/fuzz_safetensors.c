/* libFuzzer target for the safetensors header parser (simcse_st_parse, the
 * same code simcse_st_open runs on a mapped file). Every tensor that parses is
 * also read back as fp32 (bounded size) so the offsets the parser accepted are
 * exercised by the conversion loops under ASan. The input is copied to an
 * exact-size heap buffer so any read past the end is caught. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    simcse_st_file *f = NULL;
    if (simcse_st_parse(buf, size, "fuzz", &f) == 0) {
        for (int i = 0; i < f->n_tensors; i++) {
            const simcse_st_tensor *t = &f->tensors[i];
            if (simcse_st_find(f, t->name) == NULL) abort();
            if (t->numel > (1u << 20)) continue;
            float *out = malloc((t->numel ? t->numel : 1) * sizeof(float));
            (void)simcse_st_read_f32(t, out, t->numel);
            free(out);
        }
        simcse_st_close(f);
    }
    free(buf);
    return 0;
}
