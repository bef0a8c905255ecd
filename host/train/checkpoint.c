/* Training-state checkpoints (see include/simcse/checkpoint.h). The moments are
 * stored as two flat F32 tensors in the model's own layout, so saving and
 * loading them is a copy, and resuming is bit-identical on the CPU. The swap is
 * two renames between three names, and its invariant (below) is what lets a
 * run killed at any moment resume. */
#include "simcse/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "simcse/common.h"
#include "simcse/export.h"
#include "simcse/safetensors.h"

/* Makes the renames inside dir durable (a crash after the swap keeps it). */
static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* The three names of the swap. checkpoint/ is always complete: it only ever
 * appears by renaming a fully written checkpoint.tmp/, and it is only ever
 * removed by renaming it to checkpoint.old/. So after a kill at any moment:
 * checkpoint.tmp/ is unfinished (removed); checkpoint.old/ is the previous
 * complete checkpoint, the latest one when checkpoint/ is missing (the kill
 * fell between the two renames), and stale otherwise. Every removal takes the
 * whole tree, whatever names a killed writer left in it, and never follows a
 * link. */
typedef struct {
    char *final, *tmp, *old;
} swap_names;

static swap_names names_of(const char *out_dir) {
    swap_names n = {simcse_path_join(out_dir, "checkpoint"), simcse_path_join(out_dir, "checkpoint.tmp"),
                    simcse_path_join(out_dir, "checkpoint.old")};
    return n;
}

static void names_free(swap_names *n) {
    free(n->final);
    free(n->tmp);
    free(n->old);
}

static int exists_nofollow(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

int simcse_checkpoint_recover(const char *out_dir) {
    swap_names n = names_of(out_dir);
    int rc = simcse_remove_tree(n.tmp);
    if (rc == 0 && exists_nofollow(n.old)) {
        if (!exists_nofollow(n.final)) {
            /* killed between the renames: the old one is the latest (another rank may move it first) */
            if (rename(n.old, n.final) != 0 && !exists_nofollow(n.final))
                rc = simcse_error("%s: cannot rename to %s: %s", n.old, n.final, strerror(errno));
            sync_dir(out_dir);
        } else {
            rc = simcse_remove_tree(n.old);
        }
    }
    names_free(&n);
    return rc;
}

int simcse_checkpoint_remove(const char *out_dir) {
    swap_names n = names_of(out_dir);
    int rc = simcse_remove_tree(n.tmp);
    if (rc == 0) rc = simcse_remove_tree(n.old);
    if (rc == 0) rc = simcse_remove_tree(n.final);
    names_free(&n);
    return rc;
}

int simcse_checkpoint_save(const char *out_dir, const simcse_model *w, const float *m, const float *v,
                           const simcse_train_state *st, const simcse_train_config *cfg) {
    swap_names n = names_of(out_dir);
    const char *tmp = n.tmp;
    int rc = -1;
    if (simcse_remove_tree(tmp) != 0) goto done; /* a killed save's leftovers, whatever their names */
    if (simcse_mkdirs(tmp) != 0) goto done;
    char *p = simcse_path_join(tmp, "config.json");
    rc = simcse_config_save(p, &w->cfg);
    free(p);
    if (rc) goto done;
    p = simcse_path_join(tmp, "model.safetensors");
    rc = simcse_model_save_safetensors(w, p, "", 1);
    free(p);
    if (rc) goto done;
    simcse_st_entry e[2] = {{.name = "adam.m", .ndim = 1, .shape = {(int64_t)w->n_floats}, .data = m},
                            {.name = "adam.v", .ndim = 1, .shape = {(int64_t)w->n_floats}, .data = v}};
    p = simcse_path_join(tmp, "optimizer.safetensors");
    rc = simcse_st_write_f32(p, e, 2);
    free(p);
    if (rc) goto done;
    char *cfg_json = simcse_train_config_to_json(cfg);
    p = simcse_path_join(tmp, "train_config.json");
    rc = simcse_write_file_atomic(p, cfg_json, strlen(cfg_json));
    free(p);
    free(cfg_json);
    if (rc) goto done;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)st->step);
    cJSON_AddNumberToObject(j, "epoch", (double)st->pos.epoch);
    cJSON_AddNumberToObject(j, "index_in_epoch", (double)st->pos.index);
    cJSON_AddNumberToObject(j, "n_examples", (double)st->n_examples);
    cJSON_AddNumberToObject(j, "best_step", (double)st->best_step);
    if (isfinite(st->best_metric))
        cJSON_AddNumberToObject(j, "best_metric", st->best_metric);
    else
        cJSON_AddNullToObject(j, "best_metric");
    cJSON_AddNumberToObject(j, "world_size", st->world_size);
    cJSON_AddStringToObject(j, "backend", st->backend);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    p = simcse_path_join(tmp, "trainer_state.json");
    rc = simcse_write_file_atomic(p, text, strlen(text));
    free(p);
    free(text);
    if (rc) goto done;
    sync_dir(tmp);
    rc = -1;
    /* swap: checkpoint -> checkpoint.old, tmp -> checkpoint, drop old (lstat: a link is moved, not followed) */
    if (simcse_remove_tree(n.old) != 0) goto done;
    if (exists_nofollow(n.final) && rename(n.final, n.old) != 0) {
        simcse_error("%s: cannot rename to %s: %s", n.final, n.old, strerror(errno));
        goto done;
    }
    if (rename(tmp, n.final) != 0) {
        simcse_error("%s: cannot rename to %s: %s", tmp, n.final, strerror(errno));
        goto done;
    }
    sync_dir(out_dir);
    rc = simcse_remove_tree(n.old);
done:
    names_free(&n);
    return rc;
}

/* An integer field in [lo, hi]: checked as a double first, so that a value like 1e300
 * is an error naming the field, never an undefined conversion. */
static int get_int(cJSON *j, const char *key, const char *path, double lo, double hi, int64_t *out) {
    cJSON *it = cJSON_GetObjectItem(j, key);
    if (!cJSON_IsNumber(it)) return simcse_error("%s: key '%s': expected a number", path, key);
    double v = it->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v))
        return simcse_error("%s: key '%s': %.15g is not an integer in [%.0f, %.0f]", path, key, v, lo, hi);
    *out = (int64_t)v;
    return 0;
}

int simcse_checkpoint_load_config(const char *out_dir, simcse_train_config *cfg, simcse_train_state *st) {
    char *dir = simcse_path_join(out_dir, "checkpoint");
    char *cpath = simcse_path_join(dir, "train_config.json");
    char *spath = simcse_path_join(dir, "trainer_state.json");
    int rc = -1;
    simcse_train_config_defaults(cfg);
    if (simcse_train_config_load(cfg, cpath) != 0) goto done;
    size_t n;
    char *text = simcse_read_file(spath, &n);
    if (!text) goto done;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) {
        simcse_error("%s: malformed JSON", spath);
        goto done;
    }
    /* the bound of the config key they count against (max_steps; with max_steps
     * an epoch can be as short as one step) */
    const double max_step = 1e15, max_epoch = 1e15, max_count = 9007199254740992.0; /* 2^53 */
    int64_t epoch = 0;
    if (get_int(j, "step", spath, 0, max_step, &st->step) || get_int(j, "epoch", spath, 0, max_epoch, &epoch) ||
        get_int(j, "index_in_epoch", spath, 0, max_count, &st->pos.index) ||
        get_int(j, "n_examples", spath, 0, max_count, &st->n_examples) ||
        get_int(j, "best_step", spath, -1, max_step, &st->best_step)) {
        cJSON_Delete(j);
        goto done;
    }
    st->pos.epoch = (uint64_t)epoch;
    cJSON *b = cJSON_GetObjectItem(j, "best_metric");
    st->best_metric = -INFINITY;
    if (cJSON_IsNumber(b)) {
        if (!isfinite(b->valuedouble) || fabs(b->valuedouble) > 1e6) {
            simcse_error("%s: key 'best_metric': %.17g is not a Spearman score", spath, b->valuedouble);
            cJSON_Delete(j);
            goto done;
        }
        st->best_metric = b->valuedouble;
    }
    /* written since resume checks them; absent (0, ""): an older checkpoint, not checked */
    int64_t world = 0;
    cJSON *be = cJSON_GetObjectItem(j, "backend");
    if ((cJSON_GetObjectItem(j, "world_size") && get_int(j, "world_size", spath, 1, 1 << 20, &world)) ||
        (be && (!cJSON_IsString(be) || strlen(be->valuestring) >= sizeof st->backend))) {
        if (be && (!cJSON_IsString(be) || strlen(be->valuestring) >= sizeof st->backend))
            simcse_error("%s: key 'backend': expected a backend name (cpu, cuda, cuda-bf16)", spath);
        cJSON_Delete(j);
        goto done;
    }
    st->world_size = (int)world;
    snprintf(st->backend, sizeof st->backend, "%s", be ? be->valuestring : "");
    cJSON_Delete(j);
    rc = 0;
done:
    free(dir);
    free(cpath);
    free(spath);
    return rc;
}

int simcse_checkpoint_load_tensors(const char *out_dir, simcse_model *w, float *m, float *v) {
    char *dir = simcse_path_join(out_dir, "checkpoint");
    int rc = -1;
    simcse_model loaded;
    if (simcse_model_load(&loaded, dir) != 0) goto done;
    if (loaded.n_floats != w->n_floats) {
        simcse_error("%s: checkpoint has %zu parameters, the model %zu", dir, loaded.n_floats, w->n_floats);
        simcse_model_free(&loaded);
        goto done;
    }
    memcpy(w->data, loaded.data, w->n_floats * sizeof(float));
    w->has_mlp_weights = loaded.has_mlp_weights;
    simcse_model_free(&loaded);
    char *p = simcse_path_join(dir, "optimizer.safetensors");
    simcse_st_file *f;
    if (simcse_st_open(p, &f) != 0) {
        free(p);
        goto done;
    }
    free(p);
    const simcse_st_tensor *tm = simcse_st_find(f, "adam.m"), *tv = simcse_st_find(f, "adam.v");
    if (!tm || !tv)
        rc = simcse_error("%s: optimizer.safetensors lacks adam.m / adam.v", dir);
    else if (simcse_st_read_f32(tm, m, w->n_floats) == 0 && simcse_st_read_f32(tv, v, w->n_floats) == 0)
        rc = 0;
    simcse_st_close(f);
done:
    free(dir);
    return rc;
}
