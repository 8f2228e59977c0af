/* safetensors.h: checkpoints in the safetensors format
 * (8-byte little-endian header length, JSON header, raw little-endian data).
 * Writes are atomic (atomic_file.c): a temporary file beside the target,
 * fsync, rename, fsync of the directory; symbolic links are followed, and
 * only a regular file is ever replaced. */
#ifndef DL_SAFETENSORS_H
#define DL_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

typedef enum { DL_ST_F32, DL_ST_F64, DL_ST_I64, DL_ST_I32, DL_ST_U8 } dl_st_dtype;

typedef struct dl_st_tensor {
  const char *name;
  dl_st_dtype dtype;
  int ndim;                 /* 0..8 */
  int64_t shape[8];
  const void *data;         /* numel * dtype size bytes */
} dl_st_tensor;

typedef struct dl_st_meta {
  const char *key, *value;  /* go in "__metadata__" as strings */
} dl_st_meta;

/* 0 on success; -1 and a message in err (the old file at path is untouched). */
int dl_st_write(const char *path, const dl_st_tensor *tensors, int n_tensors,
                const dl_st_meta *meta, int n_meta, char *err, size_t errlen);

typedef struct dl_st_file dl_st_file;

/* Reads and validates the whole file (header JSON, offsets in range and
 * contiguous, dtype sizes).  NULL and a message in err on any problem. */
dl_st_file *dl_st_read(const char *path, char *err, size_t errlen);
int dl_st_count(const dl_st_file *f);
const dl_st_tensor *dl_st_get(const dl_st_file *f, int i);
const dl_st_tensor *dl_st_find(const dl_st_file *f, const char *name);
const char *dl_st_meta_get(const dl_st_file *f, const char *key); /* NULL if absent */
void dl_st_close(dl_st_file *f);
size_t dl_st_dtype_size(dl_st_dtype t);
const char *dl_st_dtype_name(dl_st_dtype t);

#endif
