/* data.c: datasets for the trainer.
 *
 * IDX files (MNIST's format) are read through zlib, which passes plain files
 * through unchanged, so train-images-idx3-ubyte and its .gz both load.  The
 * file must hold exactly the bytes its header promises: a short download or a
 * file with junk appended is reported rather than silently trained on.
 * CSV files are parsed with strtod; every message names file:row:col. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* getline */
#endif
#include "data.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void dl_set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---- IDX ------------------------------------------------------------------ */

enum { IDX_UBYTE = 0x08, IDX_MAX_DIMS = 8 };

typedef struct idx_file {
  const char *path;
  const char *what;       /* "images" / "labels", for messages */
  gzFile gz;
  int ndim;
  uint64_t dims[IDX_MAX_DIMS]; /* dims[0] is the item count */
  uint64_t per_item;      /* product of dims[1..]              */
  uint64_t header_bytes;  /* 4 + 4 * ndim                       */
  uint64_t data_bytes;    /* dims[0] * per_item                 */
} idx_file;

/* zlib reports its own errors (corrupt gzip data) through gzerror, and
 * system errors as Z_ERRNO with errno set. */
static void gz_fail(const idx_file *f, char *err, size_t errlen) {
  int code = 0;
  const char *msg = gzerror(f->gz, &code);
  dl_set_err(err, errlen, "cannot read %s: %s", f->path,
          code == Z_ERRNO ? strerror(errno) : msg);
}

/* Reads up to len bytes (fewer only at end of file).  Returns the count read,
 * or -1 with a message.  gzread takes an unsigned length and returns int, so
 * large reads go in chunks. */
static int64_t gz_read_full(const idx_file *f, void *buf, uint64_t len,
                            char *err, size_t errlen) {
  uint64_t got = 0;
  while (got < len) {
    uint64_t chunk = len - got;
    if (chunk > (1u << 30)) chunk = 1u << 30;
    int r = gzread(f->gz, (unsigned char *)buf + got, (unsigned)chunk);
    if (r < 0) {
      gz_fail(f, err, errlen);
      return -1;
    }
    if (r == 0) break;
    got += (uint64_t)r;
  }
  return (int64_t)got;
}

/* Counts what is left in the file, to say how long it really is. */
static int64_t gz_count_rest(const idx_file *f, char *err, size_t errlen) {
  unsigned char scratch[65536];
  int64_t total = 0, r;
  while ((r = gz_read_full(f, scratch, sizeof scratch, err, errlen)) > 0) total += r;
  return r < 0 ? -1 : total;
}

/* The "expected N bytes, found M" message.  Counts are of the uncompressed
 * stream, which is what the header describes. */
static void idx_size_err(const idx_file *f, uint64_t found, char *err, size_t errlen) {
  int gz = !gzdirect(f->gz);
  dl_set_err(err, errlen,
          "%s file %s is %s: its header promises %llu bytes%s, found %llu",
          f->what, f->path, found < f->header_bytes + f->data_bytes ? "truncated" : "too long",
          (unsigned long long)(f->header_bytes + f->data_bytes),
          gz ? " (uncompressed)" : "", (unsigned long long)found);
}

/* "28x28" into buf. */
static void dims_str(const idx_file *f, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 1; i < f->ndim && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%llu", i > 1 ? "x" : "",
                             (unsigned long long)f->dims[i]);
}

/* Checks the 4-byte magic: two zero bytes, the element type, the dim count. */
static int idx_check_magic(const idx_file *f, const unsigned char m[4], int min_dims,
                           int max_dims, unsigned expect, char *err, size_t errlen) {
  unsigned magic = (unsigned)m[0] << 24 | (unsigned)m[1] << 16 | (unsigned)m[2] << 8 | m[3];
  if (m[0] != 0 || m[1] != 0 || m[3] < min_dims || m[3] > max_dims) {
    dl_set_err(err, errlen, "%s file %s is not an IDX %s file: bad magic 0x%08X (expected 0x%08X)",
            f->what, f->path, f->what, magic, expect);
    return -1;
  }
  if (m[2] != IDX_UBYTE) {
    dl_set_err(err, errlen, "%s file %s has IDX element type 0x%02X; only 0x08 (unsigned byte) is supported",
            f->what, f->path, m[2]);
    return -1;
  }
  return 0;
}

/* Decodes the big-endian dims after the magic.  Products are kept below
 * 2^62 so that adding the header size to them cannot overflow either. */
static int idx_dims(idx_file *f, const unsigned char *b, char *err, size_t errlen) {
  const uint64_t limit = UINT64_MAX / 4;
  f->per_item = 1;
  for (int i = 0; i < f->ndim; i++, b += 4) {
    f->dims[i] = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
    if (i == 0) continue;
    if (f->dims[i] && f->per_item > limit / f->dims[i]) {
      f->per_item = UINT64_MAX;
      break;
    }
    f->per_item *= f->dims[i];
  }
  if (f->per_item > limit || (f->per_item && f->dims[0] > limit / f->per_item)) {
    dl_set_err(err, errlen, "%s file %s: header dims are too large", f->what, f->path);
    return -1;
  }
  f->data_bytes = f->dims[0] * f->per_item;
  return 0;
}

/* Opens an IDX file and reads and checks its header.  Images may have any
 * number of per-sample dims (usually 2: rows, cols); labels have none. */
static int idx_open(idx_file *f, const char *path, const char *what, int min_dims,
                    int max_dims, unsigned expect_magic, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  f->path = path;
  f->what = what;
  errno = 0;
  f->gz = gzopen(path, "rb");
  if (!f->gz) {
    dl_set_err(err, errlen, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    return -1;
  }
  gzbuffer(f->gz, 1 << 17);
  unsigned char head[4 + 4 * IDX_MAX_DIMS];
  int64_t got = gz_read_full(f, head, 4, err, errlen);
  if (got < 0) return -1;
  if (got < 4) {
    dl_set_err(err, errlen, "%s file %s is truncated: it holds %lld bytes, an IDX header needs %d",
            what, path, (long long)got, 4 + 4 * min_dims);
    return -1;
  }
  if (idx_check_magic(f, head, min_dims, max_dims, expect_magic, err, errlen)) return -1;
  f->ndim = head[3];
  f->header_bytes = 4 + 4u * (unsigned)f->ndim;
  int64_t more = gz_read_full(f, head + 4, 4u * (unsigned)f->ndim, err, errlen);
  if (more < 0) return -1;
  if (more < 4 * f->ndim) {
    idx_size_err(f, (uint64_t)(got + more), err, errlen);
    return -1;
  }
  return idx_dims(f, head + 4, err, errlen);
}

/* Reads what the header promises, growing the buffer as bytes arrive: a
 * corrupt or truncated file whose header claims gigabytes then fails on the
 * size check instead of on a giant allocation.  Returns the buffer (NULL
 * with a message on error) and the count read in *got. */
static uint8_t *idx_read_growing(const idx_file *f, uint64_t *got, char *err, size_t errlen) {
  uint64_t cap = 0;
  uint8_t *buf = NULL;
  *got = 0;
  do {
    uint64_t want = cap ? 2 * cap : 1u << 20; /* cap <= 2^62: no overflow */
    if (want > f->data_bytes) want = f->data_bytes;
    uint8_t *nb = want <= SIZE_MAX - 1 ? realloc(buf, (size_t)want + 1) : NULL;
    if (!nb) {
      dl_set_err(err, errlen, "out of memory reading %s (%llu bytes)", f->path,
              (unsigned long long)f->data_bytes);
      free(buf);
      return NULL;
    }
    buf = nb;
    int64_t r = gz_read_full(f, buf + cap, want - cap, err, errlen);
    if (r < 0) {
      free(buf);
      return NULL;
    }
    *got += (uint64_t)r;
    cap = want;
  } while (*got == cap && cap < f->data_bytes);
  return buf;
}

/* Reads the data the header describes into a new buffer and checks the file
 * ends exactly there. */
static uint8_t *idx_read_data(const idx_file *f, char *err, size_t errlen) {
  uint64_t got;
  uint8_t *buf = idx_read_growing(f, &got, err, errlen);
  if (!buf) return NULL;
  int64_t rest = got == f->data_bytes ? gz_count_rest(f, err, errlen) : 0;
  if (rest < 0) {
    free(buf);
    return NULL;
  }
  if (got < f->data_bytes || rest > 0) {
    idx_size_err(f, f->header_bytes + got + (uint64_t)rest, err, errlen);
    free(buf);
    return NULL;
  }
  return buf;
}

/* Label bytes to int32, each checked against the class count. */
static int32_t *idx_labels(const idx_file *f, const uint8_t *raw, int64_t n_classes,
                           char *err, size_t errlen) {
  int32_t *y = malloc((size_t)f->dims[0] * sizeof *y + 1);
  if (!y) {
    dl_set_err(err, errlen, "out of memory reading %s", f->path);
    return NULL;
  }
  for (uint64_t i = 0; i < f->dims[0]; i++) {
    if (raw[i] >= n_classes) {
      dl_set_err(err, errlen,
              "labels file %s: label %u at index %llu is out of range for %lld classes (0..%lld)",
              f->path, raw[i], (unsigned long long)i, (long long)n_classes,
              (long long)n_classes - 1);
      free(y);
      return NULL;
    }
    y[i] = raw[i];
  }
  return y;
}

/* The header-level agreement between the two files (lb NULL: the images
 * alone) and the model. */
static int idx_check_shapes(const idx_file *im, const idx_file *lb, int64_t x_size,
                            char *err, size_t errlen) {
  if (im->per_item != (uint64_t)x_size) {
    char dims[128];
    dims_str(im, dims, sizeof dims);
    if (im->ndim > 2)
      dl_set_err(err, errlen,
              "images file %s holds %s = %llu values per sample, the model's input needs %lld",
              im->path, dims, (unsigned long long)im->per_item, (long long)x_size);
    else
      dl_set_err(err, errlen, "images file %s holds %llu values per sample, the model's input needs %lld",
              im->path, (unsigned long long)im->per_item, (long long)x_size);
    return -1;
  }
  if (lb && im->dims[0] != lb->dims[0]) {
    dl_set_err(err, errlen, "images file %s holds %llu samples but labels file %s holds %llu labels",
            im->path, (unsigned long long)im->dims[0], lb->path,
            (unsigned long long)lb->dims[0]);
    return -1;
  }
  if (im->dims[0] == 0) {
    dl_set_err(err, errlen, "images file %s holds no samples", im->path);
    return -1;
  }
  return 0;
}

int dl_load_idx(dl_dataset *d, const char *images_path, const char *labels_path,
                double scale, int64_t x_size, int64_t n_classes,
                char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  if (x_size < 1 || (labels_path && n_classes < 1)) {
    dl_set_err(err, errlen, "dl_load_idx: bad arguments (x_size %lld, n_classes %lld)",
            (long long)x_size, (long long)n_classes);
    return -1;
  }
  idx_file im = {0}, lb = {0};
  uint8_t *x = NULL, *raw_y = NULL;
  int32_t *y = NULL;
  int rc = -1;
  /* Both headers first, so a mismatch is reported before reading megabytes. */
  if (idx_open(&im, images_path, "images", 2, IDX_MAX_DIMS, 0x00000803, err, errlen) ||
      (labels_path && idx_open(&lb, labels_path, "labels", 1, 1, 0x00000801, err, errlen)) ||
      idx_check_shapes(&im, labels_path ? &lb : NULL, x_size, err, errlen))
    goto done;
  if (!(x = idx_read_data(&im, err, errlen)))
    goto done;
  if (labels_path && (!(raw_y = idx_read_data(&lb, err, errlen)) ||
                      !(y = idx_labels(&lb, raw_y, n_classes, err, errlen))))
    goto done;
  d->n = (int64_t)im.dims[0];
  d->x_size = x_size;
  d->x_u8 = x;
  d->scale = scale;
  if (labels_path) {
    d->y_is_class = 1;
    d->y_size = n_classes;
    d->y_len = 1;
    d->y_class = y;
  }
  x = NULL;
  y = NULL;
  rc = 0;
done:
  if (im.gz) gzclose(im.gz);
  if (lb.gz) gzclose(lb.gz);
  free(x);
  free(raw_y);
  free(y);
  return rc;
}

/* ---- CSV ------------------------------------------------------------------ */

typedef enum { FIELD_OK, FIELD_EMPTY, FIELD_BAD, FIELD_NONFINITE } field_status;

static int is_eol(char c) { return c == '\0' || c == '\n' || c == '\r'; }

static const char *skip_blank(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

static int line_is_blank(const char *p) {
  p = skip_blank(p);
  while (*p == '\r' || *p == '\n') p++;
  return *p == '\0';
}

/* Parses one field starting at *p, up to the next comma or the end of the
 * line.  On FIELD_OK, *p moves past the comma and *more says whether one was
 * there.  On failure *p is left at the field so it can be quoted. */
static field_status csv_field(const char **p, double *v, int *more) {
  const char *s = skip_blank(*p);
  /* Check before strtod: it would skip other whitespace, newlines included. */
  if (*s == ',' || is_eol(*s)) return FIELD_EMPTY;
  if (*s == ' ' || (*s >= '\t' && *s <= '\r')) return FIELD_BAD;
  char *end;
  *v = strtod(s, &end);
  if (end == s) return FIELD_BAD;
  const char *t = skip_blank(end);
  if (*t != ',' && !is_eol(*t)) return FIELD_BAD;
  if (!isfinite(*v)) return FIELD_NONFINITE;
  *more = *t == ',';
  *p = *more ? t + 1 : t;
  return FIELD_OK;
}

/* Length of the field at p, for quoting it in a message. */
static int field_len(const char *p) {
  int n = 0;
  while (p[n] != ',' && !is_eol(p[n]) && n < 40) n++;
  return n;
}

/* A message for a bad field at file:row:col (col counts fields from 1). */
static void field_err(const char *path, int64_t row, int64_t col, field_status st,
                      const char *at, int first_row, char *err, size_t errlen) {
  at = skip_blank(at);
  if (st == FIELD_EMPTY) {
    dl_set_err(err, errlen, "%s:%lld:%lld: empty field", path, (long long)row, (long long)col);
    return;
  }
  dl_set_err(err, errlen, "%s:%lld:%lld: %s \"%.*s\"%s", path, (long long)row, (long long)col,
          st == FIELD_NONFINITE ? "not a finite number" : "bad number", field_len(at), at,
          first_row && st == FIELD_BAD ? " (is the first row a header?)" : "");
}

/* The largest magnitude a CSV value may have: the loaders keep float32. */
static int in_float_range(double v) { return fabs(v) <= FLT_MAX; }

int dl_parse_csv_row(const char *line, dl_real *out, int64_t count, int64_t *bad_col,
                     double *bad_val) {
  int64_t col = 0;
  if (line_is_blank(line)) return 0;
  for (int more = 1; more;) {
    double v;
    if (csv_field(&line, &v, &more) != FIELD_OK) {
      *bad_col = col + 1;
      return -1;
    }
    if (!in_float_range(v)) {
      *bad_col = col + 1;
      *bad_val = v;
      return -2;
    }
    /* rounded to float32 as the CSV loader stores it */
    if (col < count) out[col] = (dl_real)(float)v;
    col++;
  }
  return col > 0x7fffffff ? 0x7fffffff : (int)col;
}

/* Growing columns of a CSV dataset. */
typedef struct csv_build {
  int64_t n, cap;
  float *x, *y_real;
  int32_t *y_class;
} csv_build;

/* Label fields of a row: y_len class indices, or y_size real values. */
static int64_t csv_label_cols(const dl_dataset *d) { return d->y_is_class ? d->y_len : d->y_size; }

static int csv_grow(csv_build *b, const dl_dataset *d) {
  if (b->n < b->cap) return 0;
  int64_t cap = b->cap ? b->cap * 2 : 1024;
  int64_t y_cols = csv_label_cols(d);
  if ((uint64_t)cap > SIZE_MAX / sizeof(float) / (uint64_t)(d->x_size + y_cols)) return -1;
  float *x = realloc(b->x, (size_t)cap * (size_t)d->x_size * sizeof *x);
  if (!x) return -1;
  b->x = x;
  if (d->y_is_class) {
    int32_t *y = realloc(b->y_class, (size_t)cap * (size_t)y_cols * sizeof *y);
    if (!y) return -1;
    b->y_class = y;
  } else if (y_cols > 0) {
    float *y = realloc(b->y_real, (size_t)cap * (size_t)y_cols * sizeof *y);
    if (!y) return -1;
    b->y_real = y;
  }
  b->cap = cap;
  return 0;
}

/* A class label field: an integer in [0, y_size); else the message, which
 * names the position when a row holds one label per position. */
static int csv_class(const dl_dataset *d, double v, int64_t t, const char *path, int64_t row,
                     char *err, size_t errlen) {
  if (v == floor(v) && v >= 0 && v < (double)d->y_size) return 0;
  char pos[64] = "";
  if (d->y_len > 1)
    snprintf(pos, sizeof pos, " (position %lld of %lld)", (long long)t + 1, (long long)d->y_len);
  dl_set_err(err, errlen, "%s:%lld:%lld: class label %g%s is %s [0, %lld)", path, (long long)row,
             (long long)(d->x_size + t + 1), v, pos,
             v != floor(v) ? "not an integer in" : "out of range", (long long)d->y_size);
  return -1;
}

/* Stores one parsed row (vals: x_size inputs then the label fields). */
static int csv_store(csv_build *b, const dl_dataset *d, const double *vals,
                     const char *path, int64_t row, char *err, size_t errlen) {
  int64_t nf = d->x_size + csv_label_cols(d);
  for (int64_t c = 0; c < nf; c++)
    if (!in_float_range(vals[c])) {
      dl_set_err(err, errlen, "%s:%lld:%lld: %g is out of float range", path, (long long)row,
              (long long)c + 1, vals[c]);
      return -1;
    }
  if (csv_grow(b, d)) {
    dl_set_err(err, errlen, "out of memory reading %s at row %lld", path, (long long)row);
    return -1;
  }
  float *x = b->x + (size_t)b->n * (size_t)d->x_size;
  for (int64_t c = 0; c < d->x_size; c++) x[c] = (float)vals[c];
  const double *y = vals + d->x_size;
  if (d->y_is_class) {
    int32_t *yc = b->y_class + (size_t)b->n * (size_t)d->y_len;
    for (int64_t t = 0; t < d->y_len; t++) {
      if (csv_class(d, y[t], t, path, row, err, errlen)) return -1;
      yc[t] = (int32_t)y[t];
    }
  } else if (d->y_size > 0) { /* else no label: nothing to store */
    float *yr = b->y_real + (size_t)b->n * (size_t)d->y_size;
    for (int64_t c = 0; c < d->y_size; c++) yr[c] = (float)y[c];
  }
  b->n++;
  return 0;
}

/* What a row holds, for the message about a wrong field count. */
static void csv_layout(const dl_dataset *d, char *buf, size_t len) {
  if (!d->y_is_class && d->y_size == 0)
    snprintf(buf, len, "%lld input values and no label: the model has none", (long long)d->x_size);
  else if (!d->y_is_class)
    snprintf(buf, len, "%lld input values, then %lld label values", (long long)d->x_size,
             (long long)d->y_size);
  else if (d->y_len > 1)
    snprintf(buf, len, "%lld input values, then %lld class labels: one per position",
             (long long)d->x_size, (long long)d->y_len);
  else
    snprintf(buf, len, "%lld input values, then the class label", (long long)d->x_size);
}

/* Splits a data row into vals (nf fields); -1 with a message if malformed. */
static int csv_split(const char *line, double *vals, const dl_dataset *d, const char *path,
                     int64_t row, int first_row, char *err, size_t errlen) {
  int64_t nf = d->x_size + csv_label_cols(d);
  const char *p = line;
  int64_t col = 0;
  for (int more = 1; more; col++) {
    double v;
    field_status st = csv_field(&p, &v, &more);
    if (st != FIELD_OK) {
      field_err(path, row, col + 1, st, p, first_row, err, errlen);
      return -1;
    }
    if (col < nf) vals[col] = v;
  }
  if (col != nf) {
    char layout[160];
    csv_layout(d, layout, sizeof layout);
    dl_set_err(err, errlen, "%s:%lld: expected %lld fields, found %lld (a row holds %s)", path,
               (long long)row, (long long)nf, (long long)col, layout);
    return -1;
  }
  return 0;
}

static int csv_read_rows(FILE *fp, csv_build *b, const dl_dataset *d, const char *path,
                         int header, char *err, size_t errlen) {
  int64_t nf = d->x_size + csv_label_cols(d);
  double *vals = malloc((size_t)nf * sizeof *vals);
  char *line = NULL;
  size_t cap = 0;
  int64_t row = 0, seen = 0;
  int rc = vals ? 0 : -1;
  if (!vals) dl_set_err(err, errlen, "out of memory reading %s", path);
  while (rc == 0 && getline(&line, &cap, fp) != -1) {
    row++;
    if (line_is_blank(line)) continue;
    if (seen++ == 0 && header) continue;
    if (csv_split(line, vals, d, path, row, seen == 1, err, errlen) ||
        csv_store(b, d, vals, path, row, err, errlen))
      rc = -1;
  }
  if (rc == 0 && ferror(fp)) {
    dl_set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
    rc = -1;
  }
  if (rc == 0 && b->n == 0) {
    dl_set_err(err, errlen, "%s holds no data rows", path);
    rc = -1;
  }
  free(line);
  free(vals);
  return rc;
}

int dl_load_csv(dl_dataset *d, const char *path, int header, double scale,
                int64_t x_size, int y_is_class, int64_t y_size,
                char *err, size_t errlen) {
  return dl_load_csv_labels(d, path, header, scale, x_size, y_is_class, y_size, 1, err, errlen);
}

int dl_load_csv_labels(dl_dataset *d, const char *path, int header, double scale,
                       int64_t x_size, int y_is_class, int64_t y_size, int64_t y_len,
                       char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  if (x_size < 1 || y_size < (y_is_class ? 1 : 0) || x_size > INT32_MAX || y_size > INT32_MAX || y_len < 1 ||
      y_len > INT32_MAX || (!y_is_class && y_len != 1)) {
    dl_set_err(err, errlen, "dl_load_csv: bad arguments (x_size %lld, y_size %lld, y_len %lld)",
            (long long)x_size, (long long)y_size, (long long)y_len);
    return -1;
  }
  FILE *fp = fopen(path, "r");
  if (!fp) {
    dl_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  d->x_size = x_size;
  d->y_is_class = y_is_class ? 1 : 0;
  d->y_size = y_size;
  d->y_len = y_len;
  d->scale = scale;
  csv_build b = {0};
  int rc = csv_read_rows(fp, &b, d, path, header, err, errlen);
  fclose(fp); /* read-only: nothing to lose if close fails */
  if (rc) {
    free(b.x);
    free(b.y_class);
    free(b.y_real);
    memset(d, 0, sizeof *d);
    return -1;
  }
  d->n = b.n;
  d->x_f32 = b.x;
  d->y_class = b.y_class;
  d->y_real = b.y_real;
  return 0;
}

/* ---- common --------------------------------------------------------------- */

void dl_dataset_free(dl_dataset *d) {
  if (!d) return;
  free(d->x_u8);
  free(d->x_f32);
  free(d->y_class);
  free(d->y_real);
  memset(d, 0, sizeof *d);
}

void dl_dataset_gather(const dl_dataset *d, const int64_t *idx, int n,
                       dl_real *x, int32_t *y_class, dl_real *y_real) {
  size_t xs = (size_t)d->x_size;
  if (x && d->x_u8) {
    /* (dl_real)(byte * scale) with the product in double: exact for the
     * usual 1/255, and a straight conversion loop that vectorises (a
     * 256-entry lookup table does not). */
    const double scale = d->scale;
    for (int r = 0; r < n; r++) {
      const uint8_t *src = d->x_u8 + (size_t)idx[r] * xs;
      dl_real *dst = x + (size_t)r * xs;
      for (size_t j = 0; j < xs; j++) dst[j] = dl_input_value(src[j], scale);
    }
  } else if (x && d->x_f32) {
    for (int r = 0; r < n; r++) {
      const float *src = d->x_f32 + (size_t)idx[r] * xs;
      dl_real *dst = x + (size_t)r * xs;
      for (size_t j = 0; j < xs; j++) dst[j] = dl_input_value(src[j], d->scale);
    }
  }
  if (y_class && d->y_class) {
    size_t yl = d->y_len > 1 ? (size_t)d->y_len : 1;
    for (int r = 0; r < n; r++)
      memcpy(y_class + (size_t)r * yl, d->y_class + (size_t)idx[r] * yl, yl * sizeof *y_class);
  }
  if (y_real && d->y_real) {
    size_t ys = (size_t)d->y_size;
    for (int r = 0; r < n; r++)
      for (size_t j = 0; j < ys; j++) y_real[(size_t)r * ys + j] = (dl_real)d->y_real[(size_t)idx[r] * ys + j];
  }
}

/* A batch's rows come from all over the data set, so gathering is bound by
 * memory latency: every thread fetching its own rows hides more of it. */
typedef struct {
  const dl_dataset *d;
  const int64_t *idx;
  dl_real *x, *y_real;
  int32_t *y_class;
} gather_job;

static void gather_range(void *arg, int64_t b, int64_t e) {
  const gather_job *j = arg;
  int64_t yl = j->d->y_len > 1 ? j->d->y_len : 1;
  dl_dataset_gather(j->d, j->idx + b, (int)(e - b), j->x ? j->x + b * j->d->x_size : NULL,
                    j->y_class ? j->y_class + b * yl : NULL,
                    j->y_real ? j->y_real + b * j->d->y_size : NULL);
}

void dl_dataset_gather_pool(dl_pool *pool, const dl_dataset *d, const int64_t *idx, int n,
                            dl_real *x, int32_t *y_class, dl_real *y_real) {
  gather_job j = {d, idx, x, y_real, y_class};
  /* chunks of at least ~16k elements, below which a hand-off costs more */
  dl_parallel_for(pool, n, 16384 / (d->x_size > 0 ? d->x_size : 1) + 1, gather_range, &j);
}
