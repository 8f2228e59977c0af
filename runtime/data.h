/* data.h: datasets for the trainer.  IDX (plain or gzip), CSV (data.c) and
 * text (text.c).  Images and text stay uint8 in memory and are scaled (text:
 * converted) when a batch is gathered. */
#ifndef DL_DATA_H
#define DL_DATA_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "dl_real.h"
#include "threads.h"

typedef struct dl_dataset {
  int64_t n;            /* samples                                       */
  int64_t x_size;       /* input elements per sample                     */
  uint8_t *x_u8;        /* IDX, text: [n, x_size] raw bytes, or NULL     */
  float *x_f32;         /* CSV: [n, x_size] values, or NULL              */
  double scale;         /* multiplies every input value when gathered    */
  int y_is_class;       /* 1: y_class holds class indices                */
  int64_t y_size;       /* classes (y_is_class) or real elements per sample */
  int64_t y_len;        /* y_is_class: labels per sample (text: x_size, one per
                           position; IDX, CSV: 1)                        */
  int32_t *y_class;     /* [n, y_len]                                    */
  float *y_real;        /* [n, y_size]                                   */
} dl_dataset;

/* Every loader returns 0 on success, or -1 with a one-line message in err
 * naming the file and what is wrong (missing, truncated, bad magic, count
 * mismatch, wrong sample size, label out of range, bad number at row:col).
 * x_size: expected elements per sample (product of the image dims in the IDX
 * header must equal it).  n_classes: labels must be in [0, n_classes).
 * labels_path NULL: the images alone (a model without a label), no labels. */
int dl_load_idx(dl_dataset *d, const char *images_path, const char *labels_path,
                double scale, int64_t x_size, int64_t n_classes,
                char *err, size_t errlen);

/* CSV: each row holds x_size input values then the label: one integer class
 * index in [0, y_size) when y_is_class, else y_size real values (y_size 0:
 * no label, the row holds the input values alone).  Blank lines
 * are skipped; header=1 skips the first row. */
int dl_load_csv(dl_dataset *d, const char *path, int header, double scale,
                int64_t x_size, int y_is_class, int64_t y_size,
                char *err, size_t errlen);
/* The same with y_len class labels a row (a class per position of a
 * sequence, `label y : class[T, N]`: y_len T): x_size inputs, then the
 * class index of each position in order, into y_class [n, y_len].  y_len
 * must be 1 for real labels. */
int dl_load_csv_labels(dl_dataset *d, const char *path, int header, double scale,
                       int64_t x_size, int y_is_class, int64_t y_size, int64_t y_len,
                       char *err, size_t errlen);

/* Text: `path` is a file or a directory, which stands for every regular file
 * directly in it (not symlinks, not names ending in .dat: fortune's index
 * files) in byte-wise name order, concatenated; names ending in .gz are
 * read through zlib.  One byte is one token, and every byte must be below
 * vocab.  Of the N bytes, bytes [floor(from*N), floor(to*N)) are used
 * (0 <= from < to <= 1), cut into n = (len - 1) / seq_len non-overlapping
 * windows: sample k's inputs are bytes [k*T, k*T + T) of the part, its
 * labels (y_class [n, T], y_len = T, y_size = vocab) bytes [k*T + 1, k*T + T + 1):
 * next-byte prediction.  Fewer than one sample is an error. */
int dl_load_text(dl_dataset *d, const char *path, double from, double to, int64_t seq_len,
                 int64_t vocab, char *err, size_t errlen);

/* 0 if every input of d is a token id: an integer in [0, vocab) after the
 * scale; else -1 with a message naming the sample and element (data for a
 * model whose inputs index an embedding: a wrong id would read outside it). */
int dl_dataset_check_tokens(const dl_dataset *d, int64_t vocab, char *err, size_t errlen);

void dl_dataset_free(dl_dataset *d);

/* printf into err[errlen] (nothing if err is NULL): the loaders' messages. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void dl_set_err(char *err, size_t errlen, const char *fmt, ...);

/* Gather rows idx[0..n) into x ([n, x_size], scaled) and the labels
 * (y_class [n, y_len] or y_real [n, y_size]; either may be NULL if not wanted). */
void dl_dataset_gather(const dl_dataset *d, const int64_t *idx, int n,
                       dl_real *x, int32_t *y_class, dl_real *y_real);
/* The same, rows split over the pool (NULL: this thread). */
void dl_dataset_gather_pool(dl_pool *pool, const dl_dataset *d, const int64_t *idx, int n,
                            dl_real *x, int32_t *y_class, dl_real *y_real);

/* Parse one CSV line of `count` numbers into out (for `predict`), by the
 * CSV loader's rules: each a finite number within float range, rounded to
 * float32 as the loader keeps it.  Returns the number of fields (only the
 * first `count` are stored), 0 for a blank line, -1 for a malformed number
 * (column in *bad_col), -2 for one past float range (also the number in
 * *bad_val).  The caller scales the values with dl_input_value. */
int dl_parse_csv_row(const char *line, dl_real *out, int64_t count, int64_t *bad_col,
                     double *bad_val);

/* An input as a batch holds it: a stored CSV value (float32) or byte times
 * the data's scale, the product in double. */
static inline dl_real dl_input_value(double stored, double scale) {
  return (dl_real)(stored * scale);
}

/* An input that indexes an embedding must be an integer in [0, vocab). */
static inline int dl_is_token_id(double v, int64_t vocab) {
  return v >= 0 && v < (double)vocab && v == floor(v);
}

#endif
