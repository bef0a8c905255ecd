/* safetensors files: reading (F32 / F16 / BF16 -> fp32), sharded checkpoints,
 * and writing F32 files.
 *
 * Reading maps the file read-only; tensors are views into the mapping and are
 * converted to fp32 only when read, so the weights are never copied twice.
 * The header is parsed with cJSON and checked before any tensor is touched:
 * header length against the file size and a 100 MB cap, every entry's dtype /
 * shape / data_offsets, offsets inside the data region and consistent with
 * dtype * shape, no duplicate names. __metadata__ is ignored. Tensors of other
 * dtypes (I64 position_ids, ...) parse fine and fail only when read.
 *
 * Writing streams header and data to PATH.tmpPID, fsyncs and renames, so a
 * crash never leaves a half-written checkpoint and a 1 GB model is not first
 * assembled in memory. */
#ifndef SIMCSE_SAFETENSORS_H
#define SIMCSE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIMCSE_ST_MAX_DIMS 8
#define SIMCSE_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef enum {
    SIMCSE_ST_F32 = 0,
    SIMCSE_ST_F16 = 1,
    SIMCSE_ST_BF16 = 2,
    SIMCSE_ST_OTHER = 3, /* a dtype simcse cannot convert (I64, F64, ...) */
} simcse_st_dtype;

typedef struct simcse_st_file simcse_st_file;

typedef struct {
    const char *name;
    char dtype_name[16]; /* as written in the header: "F32", "BF16", "I64", ... */
    simcse_st_dtype dtype;
    int ndim;
    int64_t shape[SIMCSE_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const uint8_t *data;        /* into the file's mapping (no alignment guaranteed) */
    const simcse_st_file *file; /* the file it lives in (for error messages) */
} simcse_st_tensor;

struct simcse_st_file {
    char *path; /* the path, or the label given to simcse_st_parse */
    int n_tensors;
    simcse_st_tensor *tensors; /* sorted by name */
    /* private */
    void *map_;
    size_t map_len_;
    char *names_;
};

/* Maps and validates a .safetensors file. 0, or -1 with an error naming the path. */
int simcse_st_open(const char *path, simcse_st_file **out);
/* The same checks on a buffer in memory (len bytes, not copied: it must outlive
 * the result). label names the buffer in error messages. Fuzzing entry point. */
int simcse_st_parse(const void *buf, size_t len, const char *label, simcse_st_file **out);
const simcse_st_tensor *simcse_st_find(const simcse_st_file *f, const char *name);
/* Converts the tensor to fp32 into dst; n must equal t->numel. F32, F16 and
 * BF16 only: other dtypes are an error naming the file, tensor and dtype. */
int simcse_st_read_f32(const simcse_st_tensor *t, float *dst, size_t n);
void simcse_st_close(simcse_st_file *f);
const char *simcse_st_path(const simcse_st_tensor *t);

/* A model directory's weights: model.safetensors, or model.safetensors.index.json
 * whose weight_map names the shards (each key is checked to be in its shard). */
typedef struct {
    char *path; /* model.safetensors or the index file */
    int n_files;
    simcse_st_file **files;
} simcse_st_set;

int simcse_st_open_dir(const char *dir, simcse_st_set **out);
/* Opens one file as a set (no index). */
int simcse_st_open_set_file(const char *path, simcse_st_set **out);
int simcse_st_open_index(const char *index_path, simcse_st_set **out);
const simcse_st_tensor *simcse_st_set_find(const simcse_st_set *s, const char *name);
void simcse_st_set_close(simcse_st_set *s);

/* One tensor to write: fp32, C order. */
typedef struct {
    const char *name;
    int ndim; /* 0 .. SIMCSE_ST_MAX_DIMS */
    int64_t shape[SIMCSE_ST_MAX_DIMS];
    const float *data;
} simcse_st_entry;

/* Writes an F32 safetensors file with __metadata__ {"format":"pt"} and the
 * header padded with spaces to a multiple of 8 bytes, atomically. */
int simcse_st_write_f32(const char *path, const simcse_st_entry *entries, int n);

/* Streamed atomic file writer (also used by the .npy writer): writes go to
 * PATH.tmpPID; commit fsyncs, renames over PATH and fsyncs the directory;
 * abort (or a failed commit) removes the temporary file. */
typedef struct {
    char *path, *tmp;
    FILE *f;
    int failed;
} simcse_atomic_file;

int simcse_atomic_open(simcse_atomic_file *af, const char *path);
int simcse_atomic_write(simcse_atomic_file *af, const void *data, size_t len);
int simcse_atomic_commit(simcse_atomic_file *af);
void simcse_atomic_abort(simcse_atomic_file *af);

/* Half-precision conversions (exposed for tests). */
float simcse_f16_to_f32(uint16_t h);
float simcse_bf16_to_f32(uint16_t h);

#endif
