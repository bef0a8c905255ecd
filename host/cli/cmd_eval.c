/* simcse eval: STS evaluation as SentEval reports it, plus alignment,
 * uniformity and anisotropy of the embedding space. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simcse/cli.h"
#include "simcse/common.h"
#include "simcse/data_dir.h"
#include "simcse/embedder.h"
#include "simcse/eval.h"
#include "simcse/memory_plan.h"

static void usage(FILE *f) {
    fprintf(f, "usage: simcse eval --model DIR --pooler P [options]\n"
               "  --model DIR       Hugging Face model directory\n"
               "  --pooler P        cls (with the MLP head), cls_before_pooler, avg, avg_first_last, avg_top2\n"
               "  --tasks LIST      comma-separated: stsb,sickr,sts12,sts13,sts14,sts15,sts16 (default: all seven)\n"
               "  --split S         test (default) or dev (stsb and sickr only)\n"
               "  --data-dir DIR    shared data (default $SIMCSE_DATA_DIR or ../shared/data)\n"
               "  --max-len N       tokens per sentence (default 32)\n"
               "  --batch-size N    sentences per forward pass (default 128)\n"
               "  --device D        cpu, cuda or auto (default auto)\n"
               "  --threads N       CPU threads (default: OMP_NUM_THREADS, else the cores this process may use)\n"
               "  --precision P     fp32 or bf16 (GPU; default fp32)\n"
               "  --no-stats        skip alignment / uniformity / anisotropy\n");
}

int simcse_cmd_eval(int argc, char **argv) {
    const char *model_dir = NULL, *pooler_name = NULL, *tasks = "stsb,sickr,sts12,sts13,sts14,sts15,sts16",
               *split_name = "test", *data_dir = simcse_data_dir(), *device = "auto", *precision = "fp32";
    int max_len = 32, batch = 128, stats = 1;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--no-stats")) {
            stats = 0;
            continue;
        }
        if ((r = simcse_arg_str(argc, argv, &i, "--model", &model_dir)) ||
            (r = simcse_arg_str(argc, argv, &i, "--pooler", &pooler_name)) ||
            (r = simcse_arg_str(argc, argv, &i, "--tasks", &tasks)) ||
            (r = simcse_arg_str(argc, argv, &i, "--split", &split_name)) ||
            (r = simcse_arg_str(argc, argv, &i, "--data-dir", &data_dir)) ||
            (r = simcse_arg_str(argc, argv, &i, "--device", &device)) || (r = simcse_arg_threads(argc, argv, &i)) ||
            (r = simcse_arg_str(argc, argv, &i, "--precision", &precision)) ||
            (r = simcse_arg_int(argc, argv, &i, "--max-len", 3, 1 << 20, &max_len)) ||
            (r = simcse_arg_int(argc, argv, &i, "--batch-size", 1, 1 << 20, &batch))) {
            if (r < 0) simcse_fatal("eval: %s", simcse_last_error());
            continue;
        }
        fprintf(stderr, "simcse: error: eval: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!model_dir || !pooler_name) {
        fprintf(stderr, "simcse: error: eval: --model and --pooler are required\n");
        usage(stderr);
        return 2;
    }
    simcse_pooler pooler;
    simcse_split split;
    if (simcse_pooler_parse(pooler_name, &pooler) != 0) simcse_fatal("eval: --pooler: %s", simcse_last_error());
    if (simcse_split_parse(split_name, &split) != 0) simcse_fatal("eval: --split: %s", simcse_last_error());
    simcse_model m;
    if (simcse_model_load(&m, model_dir) != 0) simcse_fatal("%s", simcse_last_error());
    int limit = simcse_config_max_tokens(&m.cfg);
    if (max_len > limit) simcse_fatal("eval: --max-len %d exceeds the model's limit of %d tokens", max_len, limit);
    simcse_tokenizer *tok = simcse_tokenizer_load(model_dir);
    if (!tok) simcse_fatal("%s", simcse_last_error());
    simcse_backend *be = simcse_backend_select(device, precision, 0);
    if (!be) simcse_fatal("eval: %s", simcse_last_error());
    if (simcse_memory_check_inference(
            be, &m.cfg, batch, max_len,
            simcse_memory_eval_results(m.cfg.hidden) + 2.0 * batch * m.cfg.hidden * sizeof(float), "eval") != 0)
        simcse_fatal("eval: %s", simcse_last_error());
    simcse_encoder *enc = simcse_encoder_create(be, &m, batch, simcse_embedder_max_tokens(batch, max_len), 0);
    if (!enc) simcse_fatal("eval: %s", simcse_last_error());
    simcse_embedder em;
    if (simcse_embedder_init(&em, tok, enc, &m, pooler, pooler == SIMCSE_POOL_CLS, max_len, batch) != 0)
        simcse_fatal("eval: %s", simcse_last_error());

    double t0 = simcse_now_seconds();
    /* each distinct sentence embedded once: the statistics reuse the STS-B vectors */
    simcse_embed_cache *cache = simcse_embed_cache_create(simcse_embedder_embed, &em, m.cfg.hidden);
    if (!cache) simcse_fatal("eval: %s", simcse_last_error());
    simcse_eval_result res;
    if (simcse_eval_sts(data_dir, tasks, split, m.cfg.hidden, batch, simcse_embed_cache_embed, cache, &res) != 0)
        simcse_fatal("eval: %s", simcse_last_error());
    printf("%-8s %7s %10s\n", "task", "pairs", "spearman");
    for (int i = 0; i < res.n_tasks; i++)
        printf("%-8s %7d %10.2f\n", res.task[i].task, res.task[i].n_pairs, res.task[i].spearman);
    printf("%-8s %7s %10.2f\n", "avg", "", res.avg_spearman);
    for (int i = 0; i < res.n_tasks; i++)
        if (res.task[i].n_nonfinite)
            fprintf(stderr,
                    "simcse: warning: %s: %d of %d sentence embeddings are not finite (NaN or Inf: check the "
                    "model's weights); their cosines count as 0, as SentEval scores them\n",
                    res.task[i].task, res.task[i].n_nonfinite, 2 * res.task[i].n_pairs);
    if (stats) {
        simcse_embedding_stats es;
        if (simcse_eval_embedding_stats(data_dir, split, m.cfg.hidden, batch, simcse_embed_cache_embed, cache, &es) !=
            0)
            simcse_fatal("eval: %s", simcse_last_error());
        printf("alignment %.4f (%d STS-B %s pairs scored > 4) | uniformity %.4f | anisotropy %.4f (%d sentences)\n",
               es.alignment, es.n_pos_pairs, simcse_split_name(split), es.uniformity, es.anisotropy, es.n_sentences);
        if (es.n_nonfinite)
            fprintf(stderr,
                    "simcse: warning: %d of %d STS-B %s sentence embeddings are not finite (NaN or Inf: check the "
                    "model's weights); alignment, uniformity and anisotropy are nan\n",
                    es.n_nonfinite, es.n_sentences, simcse_split_name(split));
    }
    fprintf(stderr, "simcse: evaluated on %s in %.1f s (%lld sentences)\n", be->name, simcse_now_seconds() - t0,
            em.n_sentences);
    simcse_embed_cache_free(cache);
    simcse_embedder_free(&em);
    simcse_encoder_free(enc);
    simcse_tokenizer_free(tok);
    simcse_model_free(&m);
    return 0;
}
