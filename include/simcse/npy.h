/* NumPy .npy files of float32 matrices.
 *
 * The writer produces exactly what numpy.save writes for a C-order float32
 * [rows, cols] array: format version 1.0, header dict padded with spaces so
 * that magic + header ends on a 64-byte boundary (newline included), then the
 * little-endian data. It streams to PATH.tmpPID and renames (atomic), so an
 * embedding file of several GB is never held twice in memory.
 *
 * The reader (tests, golden files) validates magic, version 1.0 / 2.0 / 3.0,
 * the header dict (descr '<f4' or '<f8' -- the latter converted to float32 --,
 * fortran_order False, a 1-D or 2-D shape) and that the data size matches the
 * file size exactly. A 1-D shape (n,) reads as rows = n, cols = 1. */
#ifndef SIMCSE_NPY_H
#define SIMCSE_NPY_H

#include <stdint.h>

#include "simcse/safetensors.h"

int simcse_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols);

/* The same file streamed: rows are appended as they are made and the header, written first
 * with 0 rows, is rewritten with the final count at close (numpy's header has the same
 * length for any row count), then the temporary file is renamed over PATH; abort (or a
 * failed close) removes it. The result is byte-identical to simcse_npy_write_f32's. */
typedef struct {
    simcse_atomic_file af;
    int64_t rows, cols;
    size_t header_len;
} simcse_npy_writer;
int simcse_npy_writer_open(simcse_npy_writer *w, const char *path, int64_t cols);
int simcse_npy_writer_append(simcse_npy_writer *w, const float *data, int64_t rows);
int simcse_npy_writer_close(simcse_npy_writer *w);
void simcse_npy_writer_abort(simcse_npy_writer *w);
/* *data is malloc'ed (free it); 0 or -1 with an error naming the file. */
int simcse_npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols);

#endif
