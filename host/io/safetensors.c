/* safetensors reader and writer. See include/simcse/safetensors.h.
 *
 * Design: the file is mmap'ed once; tensors are (pointer, dtype, shape) views
 * into the mapping and are converted to fp32 straight into the caller's
 * buffer. All validation happens in simcse_st_parse, which works on any byte
 * buffer so the fuzzer exercises exactly the code that real files go through.
 * JSON numbers arrive as doubles from cJSON: every integer is checked to be
 * finite, integral, non-negative and below 2^53 before use, and all size
 * arithmetic is overflow-checked. The host is assumed little-endian (checked
 * at compile time), like every machine safetensors files come from. */
#include "simcse/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "simcse/common.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* ---------------------------------------------------------------- helpers */

float simcse_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan (payload kept) */
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float simcse_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static size_t dtype_size(const char *s, simcse_st_dtype *kind) {
    static const struct {
        const char *name;
        size_t size;
        simcse_st_dtype kind;
    } tab[] = {
        {"F32", 4, SIMCSE_ST_F32},    {"F16", 2, SIMCSE_ST_F16},       {"BF16", 2, SIMCSE_ST_BF16},
        {"F64", 8, SIMCSE_ST_OTHER},  {"I64", 8, SIMCSE_ST_OTHER},     {"I32", 4, SIMCSE_ST_OTHER},
        {"I16", 2, SIMCSE_ST_OTHER},  {"I8", 1, SIMCSE_ST_OTHER},      {"U8", 1, SIMCSE_ST_OTHER},
        {"U16", 2, SIMCSE_ST_OTHER},  {"U32", 4, SIMCSE_ST_OTHER},     {"U64", 8, SIMCSE_ST_OTHER},
        {"BOOL", 1, SIMCSE_ST_OTHER}, {"F8_E4M3", 1, SIMCSE_ST_OTHER}, {"F8_E5M2", 1, SIMCSE_ST_OTHER},
        {"C64", 8, SIMCSE_ST_OTHER},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(s, tab[i].name) == 0) {
            *kind = tab[i].kind;
            return tab[i].size;
        }
    *kind = SIMCSE_ST_OTHER;
    return 0; /* unknown: size not checked, reading it fails */
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!isfinite(d) || d < 0 || d > 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const simcse_st_tensor *)a)->name, ((const simcse_st_tensor *)b)->name);
}

/* ----------------------------------------------------------------- parser */

void simcse_st_close(simcse_st_file *f) {
    if (!f) return;
    if (f->map_) munmap(f->map_, f->map_len_);
    free(f->tensors);
    free(f->names_);
    free(f->path);
    free(f);
}

static int parse_entry(const char *label, const cJSON *e, simcse_st_tensor *t, const uint8_t *data, size_t data_len) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return simcse_error("%s: tensor '%s': header entry is not an object", label, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !dt->valuestring)
        return simcse_error("%s: tensor '%s': 'dtype' missing or not a string", label, name);
    if (!cJSON_IsArray(sh)) return simcse_error("%s: tensor '%s': 'shape' missing or not an array", label, name);
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return simcse_error("%s: tensor '%s': 'data_offsets' must be an array of two integers", label, name);

    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);
    size_t esize = dtype_size(dt->valuestring, &t->dtype);

    int nd = cJSON_GetArraySize(sh);
    if (nd > SIMCSE_ST_MAX_DIMS)
        return simcse_error("%s: tensor '%s': %d dimensions (at most %d supported)", label, name, nd,
                            SIMCSE_ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    int k = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        uint64_t v;
        if (json_uint(d, &v) != 0)
            return simcse_error("%s: tensor '%s': shape[%d] is not a non-negative integer", label, name, k);
        t->shape[k++] = (int64_t)v;
        if (__builtin_mul_overflow(numel, (size_t)v, &numel))
            return simcse_error("%s: tensor '%s': shape overflows", label, name);
    }
    t->numel = numel;

    uint64_t begin, end;
    if (json_uint(off->child, &begin) != 0 || json_uint(off->child->next, &end) != 0)
        return simcse_error("%s: tensor '%s': 'data_offsets' must be non-negative integers", label, name);
    if (begin > end)
        return simcse_error("%s: tensor '%s': data_offsets [%llu, %llu] are reversed", label, name,
                            (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return simcse_error("%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                            "(%zu bytes; truncated file?)",
                            label, name, (unsigned long long)begin, (unsigned long long)end, data_len);
    size_t nbytes = (size_t)(end - begin);
    if (esize) {
        size_t want;
        if (__builtin_mul_overflow(numel, esize, &want) || want != nbytes)
            return simcse_error("%s: tensor '%s': data_offsets [%llu, %llu] hold %zu bytes but %s %s needs "
                                "%zu x %zu",
                                label, name, (unsigned long long)begin, (unsigned long long)end, nbytes, t->dtype_name,
                                nd ? "shape" : "scalar", numel, esize);
    }
    t->nbytes = nbytes;
    t->data = data + begin;
    return 0;
}

static int cmp_by_offset(const void *a, const void *b) {
    const simcse_st_tensor *x = *(const simcse_st_tensor *const *)a, *y = *(const simcse_st_tensor *const *)b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* No two tensors share bytes, as the safetensors library requires (SafeTensors::validate):
 * a write through one would change the other, and two names would silently read the same
 * weights. The library also refuses gaps between tensors and bytes after the last one;
 * those are accepted here (no tensor reads them), which keeps a header with one entry
 * removed readable far enough to say which tensor is missing. */
static int check_overlap(const char *label, const simcse_st_file *f, const uint8_t *data) {
    const int n = f->n_tensors;
    const simcse_st_tensor **by = simcse_xmalloc((size_t)(n ? n : 1) * sizeof *by);
    for (int i = 0; i < n; i++) by[i] = &f->tensors[i];
    qsort(by, (size_t)n, sizeof *by, cmp_by_offset);
    size_t at = 0; /* the furthest end so far, and whose it is */
    const simcse_st_tensor *owner = NULL;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        size_t begin = (size_t)(by[i]->data - data), end = begin + by[i]->nbytes;
        if (begin < at && end > begin)
            rc = simcse_error("%s: tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s', which ends at %zu", label,
                              by[i]->name, begin, end, owner->name, at);
        if (end > at) {
            at = end;
            owner = by[i];
        }
    }
    free(by);
    return rc;
}

int simcse_st_parse(const void *buf, size_t len, const char *label, simcse_st_file **out) {
    *out = NULL;
    const uint8_t *b = buf;
    if (len < 8) return simcse_error("%s: truncated file: %zu bytes, too short for a safetensors header", label, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    if (hlen > SIMCSE_ST_MAX_HEADER)
        return simcse_error("%s: header length %llu is absurd (limit 100 MB): not a safetensors file?", label,
                            (unsigned long long)hlen);
    if (hlen > len - 8)
        return simcse_error("%s: truncated file: header length %llu but only %zu bytes follow", label,
                            (unsigned long long)hlen, len - 8);
    if (hlen < 2) return simcse_error("%s: header is not JSON (length %llu)", label, (unsigned long long)hlen);
    const char *h = (const char *)b + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = cJSON_GetErrorPtr() ? (size_t)(cJSON_GetErrorPtr() - h) : 0;
        if (at > hlen) at = 0;
        return simcse_error("%s: header is not JSON (parse error at byte %zu)", label, at);
    }
    for (const char *p = end; p && p < h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return simcse_error("%s: header is not JSON (trailing bytes after the object)", label);
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return simcse_error("%s: header is not a JSON object", label);
    }

    simcse_st_file *f = simcse_xcalloc(1, sizeof *f);
    f->path = simcse_xstrdup(label);
    int n = 0;
    size_t names_len = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!e->string) continue;
        if (strcmp(e->string, "__metadata__") == 0) continue;
        n++;
        names_len += strlen(e->string) + 1;
    }
    f->tensors = simcse_xcalloc((size_t)n, sizeof *f->tensors);
    f->names_ = simcse_xmalloc(names_len);
    const uint8_t *data = b + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;
    char *np = f->names_;
    int i = 0;
    cJSON_ArrayForEach(e, root) {
        if (!e->string || strcmp(e->string, "__metadata__") == 0) continue;
        simcse_st_tensor *t = &f->tensors[i++];
        size_t k = strlen(e->string) + 1;
        memcpy(np, e->string, k);
        t->name = np;
        np += k;
        t->file = f;
        if (parse_entry(label, e, t, data, data_len) != 0) {
            cJSON_Delete(root);
            simcse_st_close(f);
            return -1;
        }
    }
    cJSON_Delete(root);
    f->n_tensors = n;
    qsort(f->tensors, (size_t)n, sizeof *f->tensors, cmp_tensor);
    for (i = 1; i < n; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            simcse_error("%s: tensor '%s' appears twice in the header", label, f->tensors[i].name);
            simcse_st_close(f);
            return -1;
        }
    /* qsort moved the structs; the file back-pointers stay valid, names too. */
    if (check_overlap(label, f, data) != 0) {
        simcse_st_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

int simcse_st_open(const char *path, simcse_st_file **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return simcse_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return simcse_error("%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        close(fd);
        return simcse_error("%s: truncated file: %zu bytes, too short for a safetensors header", path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return simcse_error("%s: mmap failed: %s", path, strerror(e));
    if (simcse_st_parse(map, len, path, out) != 0) {
        munmap(map, len);
        return -1;
    }
    (*out)->map_ = map;
    (*out)->map_len_ = len;
    return 0;
}

const simcse_st_tensor *simcse_st_find(const simcse_st_file *f, const char *name) {
    if (!f || f->n_tensors == 0) return NULL;
    simcse_st_tensor key;
    memset(&key, 0, sizeof key);
    key.name = name;
    return bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof key, cmp_tensor);
}

const char *simcse_st_path(const simcse_st_tensor *t) { return t && t->file ? t->file->path : "?"; }

int simcse_st_read_f32(const simcse_st_tensor *t, float *dst, size_t n) {
    if (n != t->numel)
        return simcse_error("%s: tensor '%s': has %zu elements, caller expected %zu", simcse_st_path(t), t->name,
                            t->numel, n);
    const uint8_t *s = t->data;
    switch (t->dtype) {
    case SIMCSE_ST_F32:
        if (n) memcpy(dst, s, n * 4);
        return 0;
    case SIMCSE_ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = simcse_f16_to_f32((uint16_t)(s[2 * i] | (s[2 * i + 1] << 8)));
        return 0;
    case SIMCSE_ST_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = simcse_bf16_to_f32((uint16_t)(s[2 * i] | (s[2 * i + 1] << 8)));
        return 0;
    default:
        return simcse_error("%s: tensor '%s': dtype %s is not supported (F32, F16 or BF16)", simcse_st_path(t), t->name,
                            t->dtype_name);
    }
}

/* ------------------------------------------------------- sets and shards */

void simcse_st_set_close(simcse_st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) simcse_st_close(s->files[i]);
    free(s->files);
    free(s->path);
    free(s);
}

int simcse_st_open_set_file(const char *path, simcse_st_set **out) {
    *out = NULL;
    simcse_st_file *f;
    if (simcse_st_open(path, &f) != 0) return -1;
    simcse_st_set *s = simcse_xcalloc(1, sizeof *s);
    s->path = simcse_xstrdup(path);
    s->n_files = 1;
    s->files = simcse_xmalloc(sizeof *s->files);
    s->files[0] = f;
    *out = s;
    return 0;
}

int simcse_st_open_index(const char *index_path, simcse_st_set **out) {
    *out = NULL;
    size_t len;
    char *text = simcse_read_file(index_path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return simcse_error("%s: not valid JSON", index_path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return simcse_error("%s: key 'weight_map': missing or not an object", index_path);
    }
    /* directory of the index */
    const char *slash = strrchr(index_path, '/');
    char *dir = slash ? simcse_xstrdup(index_path) : simcse_xstrdup(".");
    if (slash) dir[slash - index_path + 1] = 0;

    simcse_st_set *s = simcse_xcalloc(1, sizeof *s);
    s->path = simcse_xstrdup(index_path);
    int cap = 0;
    const char **shard_names = NULL;
    const cJSON *e;
    int rc = 0;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->valuestring || !e->valuestring[0]) {
            rc = simcse_error("%s: weight_map['%s']: expected a shard file name", index_path, e->string);
            break;
        }
        const char *sn = e->valuestring;
        if (sn[0] == '/' || strstr(sn, "..")) {
            rc = simcse_error("%s: weight_map['%s']: shard '%s' is not a file name inside the model directory",
                              index_path, e->string, sn);
            break;
        }
        int j;
        for (j = 0; j < s->n_files; j++)
            if (strcmp(shard_names[j], sn) == 0) break;
        if (j < s->n_files) continue;
        if (s->n_files == cap) {
            cap = cap ? 2 * cap : 4;
            shard_names = simcse_xrealloc(shard_names, (size_t)cap * sizeof *shard_names);
            s->files = simcse_xrealloc(s->files, (size_t)cap * sizeof *s->files);
        }
        char *p = simcse_path_join(dir, sn);
        simcse_st_file *f;
        int r = simcse_st_open(p, &f);
        free(p);
        if (r != 0) {
            rc = simcse_error_prefix("%s: shard '%s'", index_path, sn);
            break;
        }
        shard_names[s->n_files] = sn;
        s->files[s->n_files++] = f;
    }
    if (rc == 0 && s->n_files == 0) rc = simcse_error("%s: key 'weight_map': empty", index_path);
    if (rc == 0) {
        cJSON_ArrayForEach(e, wm) {
            int j;
            for (j = 0; j < s->n_files; j++)
                if (strcmp(shard_names[j], e->valuestring) == 0) break;
            if (!simcse_st_find(s->files[j], e->string)) {
                rc = simcse_error("%s: tensor '%s' is not in its shard '%s'", index_path, e->string, e->valuestring);
                break;
            }
        }
    }
    free(shard_names);
    free(dir);
    cJSON_Delete(root);
    if (rc != 0) {
        simcse_st_set_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

int simcse_st_open_dir(const char *dir, simcse_st_set **out) {
    *out = NULL;
    char *single = simcse_path_join(dir, "model.safetensors");
    char *index = simcse_path_join(dir, "model.safetensors.index.json");
    int rc;
    if (simcse_file_exists(single)) {
        rc = simcse_st_open_set_file(single, out);
    } else if (simcse_file_exists(index)) {
        rc = simcse_st_open_index(index, out);
    } else {
        char *bin = simcse_path_join(dir, "pytorch_model.bin");
        if (simcse_file_exists(bin))
            rc = simcse_error("%s: no model.safetensors or model.safetensors.index.json (pytorch_model.bin is not "
                              "supported: re-save with save_pretrained(safe_serialization=True))",
                              dir);
        else
            rc = simcse_error("%s: no model.safetensors or model.safetensors.index.json", dir);
        free(bin);
    }
    free(single);
    free(index);
    return rc;
}

const simcse_st_tensor *simcse_st_set_find(const simcse_st_set *s, const char *name) {
    for (int i = 0; s && i < s->n_files; i++) {
        const simcse_st_tensor *t = simcse_st_find(s->files[i], name);
        if (t) return t;
    }
    return NULL;
}

/* ----------------------------------------------------------------- writer */

int simcse_atomic_open(simcse_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->tmp = simcse_xmalloc(n);
    snprintf(af->tmp, n, "%s.tmp%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        simcse_error("%s: cannot create %s: %s", path, af->tmp, strerror(errno));
        free(af->tmp);
        af->tmp = NULL;
        return -1;
    }
    af->path = simcse_xstrdup(path);
    return 0;
}

int simcse_atomic_write(simcse_atomic_file *af, const void *data, size_t len) {
    if (af->failed) return -1;
    if (len && fwrite(data, 1, len, af->f) != len) {
        af->failed = 1;
        return simcse_error("%s: write failed: %s", af->tmp, strerror(errno));
    }
    return 0;
}

void simcse_atomic_abort(simcse_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof *af);
}

int simcse_atomic_commit(simcse_atomic_file *af) {
    if (af->failed) {
        simcse_atomic_abort(af);
        return -1;
    }
    int rc = 0;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        rc = simcse_error("%s: write failed: %s", af->tmp, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0) rc = simcse_error("%s: close failed: %s", af->tmp, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp, af->path) != 0)
        rc = simcse_error("%s: rename to %s failed: %s", af->tmp, af->path, strerror(errno));
    if (rc != 0) {
        simcse_atomic_abort(af);
        return -1;
    }
    /* make the rename durable */
    const char *slash = strrchr(af->path, '/');
    char *dir = slash ? simcse_xstrdup(af->path) : simcse_xstrdup(".");
    if (slash) dir[slash - af->path + (slash == af->path)] = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof *af);
    return 0;
}

typedef struct {
    char *s;
    size_t len, cap;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 1024;
        b->s = simcse_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_json_string(strbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_add(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_add(b, esc, 6);
        } else {
            sb_add(b, (const char *)&c, 1);
        }
    }
    sb_add(b, "\"", 1);
}

int simcse_st_write_f32(const char *path, const simcse_st_entry *entries, int n) {
    for (int i = 0; i < n; i++) {
        const simcse_st_entry *e = &entries[i];
        if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0)
            return simcse_error("%s: tensor %d: invalid name", path, i);
        if (e->ndim < 0 || e->ndim > SIMCSE_ST_MAX_DIMS)
            return simcse_error("%s: tensor '%s': %d dimensions", path, e->name, e->ndim);
        for (int d = 0; d < e->ndim; d++)
            if (e->shape[d] < 0) return simcse_error("%s: tensor '%s': negative dimension", path, e->name);
        for (int j = 0; j < i; j++)
            if (strcmp(entries[j].name, e->name) == 0)
                return simcse_error("%s: tensor '%s' given twice", path, e->name);
    }
    strbuf h = {0};
    sb_str(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    size_t *nbytes = simcse_xmalloc((size_t)(n ? n : 1) * sizeof *nbytes);
    char num[64];
    for (int i = 0; i < n; i++) {
        const simcse_st_entry *e = &entries[i];
        size_t numel = 1;
        for (int d = 0; d < e->ndim; d++) numel *= (size_t)e->shape[d];
        nbytes[i] = numel * 4;
        sb_str(&h, ",");
        sb_json_string(&h, e->name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + nbytes[i]));
        sb_str(&h, num);
        off += nbytes[i];
    }
    sb_str(&h, "}");
    while (h.len % 8) sb_add(&h, " ", 1);

    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    simcse_atomic_file af;
    int rc = simcse_atomic_open(&af, path);
    if (rc == 0) {
        simcse_atomic_write(&af, lenb, 8);
        simcse_atomic_write(&af, h.s, h.len);
        for (int i = 0; i < n; i++)
            if (nbytes[i]) simcse_atomic_write(&af, entries[i].data, nbytes[i]);
        rc = simcse_atomic_commit(&af);
    }
    free(nbytes);
    free(h.s);
    return rc;
}
