/* simcse encode: sentences (one per line) -> float32 [n, hidden] .npy, streamed: each batch
 * of lines is embedded and its rows appended as it is read (the header gets the final row
 * count at the end), so memory is bounded by the batch, not by the input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/cli.h"
#include "simcse/common.h"
#include "simcse/embedder.h"
#include "simcse/memory_plan.h"
#include "simcse/npy.h"

static void usage(FILE *f) {
    fprintf(f, "usage: simcse encode --model DIR --pooler P --output FILE.npy [options]\n"
               "  --model DIR         Hugging Face model directory (config.json, model.safetensors, tokenizer)\n"
               "  --pooler P          cls (with the MLP head), cls_before_pooler, avg, avg_first_last, avg_top2\n"
               "  --output FILE.npy   float32 [n, hidden], one row per input line\n"
               "  --input FILE        sentences, one per line (default: stdin)\n"
               "  --max-len N         tokens per sentence incl. special tokens (default 32, at most the model's)\n"
               "  --batch-size N      sentences per forward pass (default 64)\n"
               "  --device D          cpu, cuda or auto (default auto)\n"
               "  --threads N         CPU threads (default: OMP_NUM_THREADS, else the cores this process may use)\n"
               "  --precision P       fp32 or bf16 (GPU; default fp32)\n");
}

int simcse_cmd_encode(int argc, char **argv) {
    const char *model_dir = NULL, *pooler_name = NULL, *output = NULL, *input = NULL, *device = "auto",
               *precision = "fp32";
    int max_len = 32, batch = 64;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if ((r = simcse_arg_str(argc, argv, &i, "--model", &model_dir)) ||
            (r = simcse_arg_str(argc, argv, &i, "--pooler", &pooler_name)) ||
            (r = simcse_arg_str(argc, argv, &i, "--output", &output)) ||
            (r = simcse_arg_str(argc, argv, &i, "--input", &input)) ||
            (r = simcse_arg_str(argc, argv, &i, "--device", &device)) || (r = simcse_arg_threads(argc, argv, &i)) ||
            (r = simcse_arg_str(argc, argv, &i, "--precision", &precision)) ||
            (r = simcse_arg_int(argc, argv, &i, "--max-len", 3, 1 << 20, &max_len)) ||
            (r = simcse_arg_int(argc, argv, &i, "--batch-size", 1, 1 << 20, &batch))) {
            if (r < 0) simcse_fatal("encode: %s", simcse_last_error());
            continue;
        }
        fprintf(stderr, "simcse: error: encode: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!model_dir || !pooler_name || !output) {
        fprintf(stderr, "simcse: error: encode: --model, --pooler and --output are required\n");
        usage(stderr);
        return 2;
    }
    simcse_pooler pooler;
    if (simcse_pooler_parse(pooler_name, &pooler) != 0) simcse_fatal("encode: --pooler: %s", simcse_last_error());
    simcse_model m;
    if (simcse_model_load(&m, model_dir) != 0) simcse_fatal("%s", simcse_last_error());
    int limit = simcse_config_max_tokens(&m.cfg);
    if (max_len > limit) simcse_fatal("encode: --max-len %d exceeds the model's limit of %d tokens", max_len, limit);
    simcse_tokenizer *tok = simcse_tokenizer_load(model_dir);
    if (!tok) simcse_fatal("%s", simcse_last_error());
    simcse_backend *be = simcse_backend_select(device, precision, 0);
    if (!be) simcse_fatal("encode: %s", simcse_last_error());
    /* Streamed: a batch of lines in, its rows out; memory is bounded by the batch. */
    simcse_line_reader rd;
    if (simcse_lines_open(&rd, input) != 0) simcse_fatal("encode: %s", simcse_last_error());
    const int max_tokens = simcse_embedder_max_tokens(batch, max_len);
    if (simcse_memory_check_inference(be, &m.cfg, batch, max_len,
                                      (double)batch * (m.cfg.hidden * sizeof(float) + max_len * 16.0), "encode") != 0)
        simcse_fatal("encode: %s", simcse_last_error());
    simcse_encoder *enc = simcse_encoder_create(be, &m, batch, max_tokens, 0);
    if (!enc) simcse_fatal("encode: %s", simcse_last_error());
    simcse_embedder em;
    if (simcse_embedder_init(&em, tok, enc, &m, pooler, pooler == SIMCSE_POOL_CLS, max_len, batch) != 0)
        simcse_fatal("encode: %s", simcse_last_error());
    simcse_npy_writer w;
    if (simcse_npy_writer_open(&w, output, m.cfg.hidden) != 0) simcse_fatal("%s", simcse_last_error());
    char **lines = simcse_xcalloc((size_t)batch, sizeof *lines);
    size_t *lens = simcse_xcalloc((size_t)batch, sizeof *lens);
    float *out = simcse_xmalloc((size_t)batch * m.cfg.hidden * sizeof(float));
    double t0 = simcse_now_seconds();
    long long n = 0;
    for (int k; (k = simcse_lines_next(&rd, lines, lens, batch)) != 0; n += k) {
        if (k < 0 || simcse_embedder_embed_lines(&em, (const char *const *)lines, lens, k, out) != 0 ||
            simcse_npy_writer_append(&w, out, k) != 0) {
            simcse_npy_writer_abort(&w);
            simcse_fatal("encode: %s", simcse_last_error());
        }
        simcse_free_line_array(lines, k);
    }
    if (simcse_npy_writer_close(&w) != 0) simcse_fatal("%s", simcse_last_error());
    double dt = simcse_now_seconds() - t0;
    fprintf(stderr,
            "simcse: encoded %lld sentences (%lld tokens) on %s in %.2f s (%.0f sentences/s) -> %s [%lld, %d]\n", n,
            em.n_tokens, be->name, dt, dt > 0 ? n / dt : 0.0, output, n, m.cfg.hidden);
    free(out);
    free(lines);
    free(lens);
    simcse_lines_close(&rd);
    simcse_embedder_free(&em);
    simcse_encoder_free(enc);
    simcse_tokenizer_free(tok);
    simcse_model_free(&m);
    return 0;
}
