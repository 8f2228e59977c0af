/* safetensors.c: checkpoints in the safetensors format.
 *
 * Layout: u64 little-endian N, N bytes of JSON header (padded with spaces to
 * a multiple of 8 so the data stays aligned), then the tensors' bytes back to
 * back.  The header goes through a complete JSON parser (json.c), because
 * files also come from Python (any key order, any whitespace, escapes, extra
 * fields), and everything is validated before pointers are handed out: a
 * corrupt checkpoint must be an error message, never a crash or garbage
 * weights. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* open, fstat */
#endif
#include "safetensors.h"
#include "atomic_file.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor bytes are written and read as they sit in memory. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

enum { ST_MAX_DIMS = 8 };

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* A tensor or metadata name made fit for a one-line message: control
 * characters become \xNN and long names are cut.  Returned by value so
 * show(name).s can go straight into a set_err argument list (C11 gives the
 * temporary's array a lifetime to the end of that full expression). */
typedef struct shown_name {
  char s[100];
} shown_name;

static shown_name show(const char *name) {
  shown_name r;
  size_t o = 0;
  for (; *name && o + 8 < sizeof r.s; name++) {
    unsigned char c = (unsigned char)*name;
    if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(r.s + o, sizeof r.s - o, "\\x%02x", c);
    else r.s[o++] = (char)c;
  }
  if (*name) memcpy(r.s + o, "...", 3), o += 3;
  r.s[o] = '\0';
  return r;
}

/* ---- dtypes --------------------------------------------------------------- */

static const struct { const char *name; size_t size; } dtypes[] = {
  [DL_ST_F32] = {"F32", 4}, [DL_ST_F64] = {"F64", 8}, [DL_ST_I64] = {"I64", 8},
  [DL_ST_I32] = {"I32", 4}, [DL_ST_U8] = {"U8", 1},
};
enum { N_DTYPES = sizeof dtypes / sizeof dtypes[0] };

static int dtype_valid(dl_st_dtype t) { return (unsigned)t < N_DTYPES; }

size_t dl_st_dtype_size(dl_st_dtype t) { return dtype_valid(t) ? dtypes[t].size : 0; }

const char *dl_st_dtype_name(dl_st_dtype t) { return dtype_valid(t) ? dtypes[t].name : "?"; }

static int dtype_from_name(const char *s, dl_st_dtype *out) {
  for (int i = 0; i < N_DTYPES; i++)
    if (strcmp(s, dtypes[i].name) == 0) {
      *out = (dl_st_dtype)i;
      return 0;
    }
  return -1;
}

/* numel * dtype size, or -1 on a negative dim or overflow. */
static int tensor_bytes(dl_st_dtype t, int ndim, const int64_t *shape, uint64_t *out) {
  uint64_t n = dl_st_dtype_size(t);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] && n > (UINT64_MAX >> 2) / (uint64_t)shape[i]) return -1;
    n *= (uint64_t)shape[i];
  }
  *out = n;
  return 0;
}

/* ---- helpers -------------------------------------------------------------- */

/* Rejects overlong forms, surrogates and code points past U+10FFFF, as
 * Python's and Rust's decoders do. */
static int utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (n - i < len) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A tensor name that occurs twice, or NULL.  *oom set if sorting failed. */
static const char *duplicate_name(const dl_st_tensor *t, int n, int *oom) {
  const char **sorted = malloc((size_t)n * sizeof *sorted + 1);
  const char *dup = NULL;
  *oom = !sorted;
  if (!sorted) return NULL;
  for (int i = 0; i < n; i++) sorted[i] = t[i].name;
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
  for (int i = 1; i < n && !dup; i++)
    if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
  free(sorted);
  return dup;
}

/* ---- writing -------------------------------------------------------------- */

/* Rejects what would make an unreadable or ambiguous file. */
static int is_text(const char *s) { return s && utf8_valid((const unsigned char *)s, strlen(s)); }

static int check_write_args(const char *path, const dl_st_tensor *t, int n, const dl_st_meta *meta,
                            int n_meta, uint64_t *nbytes, char *err, size_t errlen) {
  if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !meta)) {
    set_err(err, errlen, "cannot write checkpoint %s: bad arguments", path);
    return -1;
  }
  for (int i = 0; i < n; i++) {
    const char *name = t[i].name;
    if (!is_text(name) || !*name || strcmp(name, "__metadata__") == 0) {
      set_err(err, errlen, "cannot write checkpoint %s: tensor %d has an invalid name", path, i);
      return -1;
    }
    if (!dtype_valid(t[i].dtype) || t[i].ndim < 0 || t[i].ndim > ST_MAX_DIMS ||
        tensor_bytes(t[i].dtype, t[i].ndim, t[i].shape, &nbytes[i]) ||
        (nbytes[i] > 0 && !t[i].data)) {
      set_err(err, errlen, "cannot write checkpoint %s: tensor \"%s\" has a bad dtype, shape or data",
              path, show(name).s);
      return -1;
    }
  }
  for (int i = 0; i < n_meta; i++)
    if (!is_text(meta[i].key) || !is_text(meta[i].value)) {
      set_err(err, errlen, "cannot write checkpoint %s: metadata entry %d is not UTF-8 text", path, i);
      return -1;
    }
  int oom;
  const char *dup = duplicate_name(t, n, &oom);
  if (oom) set_err(err, errlen, "cannot write checkpoint %s: out of memory", path);
  else if (dup)
    set_err(err, errlen, "cannot write checkpoint %s: two tensors are named \"%s\"", path,
            show(dup).s);
  return oom || dup ? -1 : 0;
}

/* The JSON header, padded with spaces to a multiple of 8. */
static int build_header(sbuf *h, const dl_st_tensor *t, int n, const dl_st_meta *meta,
                        int n_meta, const uint64_t *nbytes) {
  const char *sep = "";
  sb_putc(h, '{');
  if (n_meta > 0) {
    sb_printf(h, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) sb_putc(h, ',');
      sb_json_str(h, meta[i].key);
      sb_putc(h, ':');
      sb_json_str(h, meta[i].value);
    }
    sb_putc(h, '}');
    sep = ",";
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++, sep = ",") {
    sb_printf(h, "%s", sep);
    sb_json_str(h, t[i].name);
    sb_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[t[i].dtype].name);
    for (int d = 0; d < t[i].ndim; d++)
      sb_printf(h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
    sb_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
              (unsigned long long)(off + nbytes[i]));
    off += nbytes[i];
  }
  sb_putc(h, '}');
  while (h->len % 8) sb_putc(h, ' ');
  return h->oom ? -1 : 0;
}

static int write_contents(dl_af *f, const sbuf *h, const dl_st_tensor *t, int n,
                          const uint64_t *nbytes) {
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h->len >> (8 * i));
  if (dl_af_write(f, len8, 8) || dl_af_write(f, h->p, h->len)) return -1;
  for (int i = 0; i < n; i++)
    if (nbytes[i] && dl_af_write(f, t[i].data, nbytes[i])) return -1;
  return 0;
}

/* Through a temporary file renamed over the target (atomic_file.c), so
 * readers see the old file or the new one, never a partial one. */
static int write_file(const char *path, const sbuf *h, const dl_st_tensor *t, int n,
                      const uint64_t *nbytes, char *err, size_t errlen) {
  dl_af f;
  char why[512];
  if (dl_af_open(&f, path, why, sizeof why)) {
    set_err(err, errlen, "cannot write checkpoint %s: %s", path, why);
    return -1;
  }
  if (write_contents(&f, h, t, n, nbytes)) {
    set_err(err, errlen, "cannot write checkpoint %s: %s", path, strerror(errno));
    dl_af_discard(&f);
    return -1;
  }
  if (dl_af_commit(&f, why, sizeof why)) {
    set_err(err, errlen, "cannot write checkpoint %s: %s", path, why);
    return -1;
  }
  return 0;
}

int dl_st_write(const char *path, const dl_st_tensor *tensors, int n_tensors,
                const dl_st_meta *meta, int n_meta, char *err, size_t errlen) {
  uint64_t *nbytes = malloc((size_t)(n_tensors > 0 ? n_tensors : 0) * sizeof *nbytes + 1);
  sbuf h = {0};
  int rc = -1;
  if (!nbytes) {
    set_err(err, errlen, "cannot write checkpoint %s: out of memory", path);
    goto done;
  }
  if (check_write_args(path, tensors, n_tensors, meta, n_meta, nbytes, err, errlen)) goto done;
  if (build_header(&h, tensors, n_tensors, meta, n_meta, nbytes)) {
    set_err(err, errlen, "cannot write checkpoint %s: out of memory", path);
    goto done;
  }
  rc = write_file(path, &h, tensors, n_tensors, nbytes, err, errlen);
done:
  free(nbytes);
  free(h.p);
  return rc;
}

/* ---- reading -------------------------------------------------------------- */

struct dl_st_file {
  int n;
  dl_st_tensor *t;
  char **names;         /* owned names, t[i].name points here     */
  void **copies;        /* per-tensor aligned copies, or NULL     */
  int n_meta;
  char **mkey, **mval;
  unsigned char *buf;   /* the whole file                         */
};

/* Where a tensor's bytes are, for sorting into file order. */
typedef struct st_span {
  uint64_t begin, end;
  int idx;              /* position in the header */
} st_span;

static int cmp_span(const void *a, const void *b) {
  const st_span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->idx - y->idx;
}

static int read_whole_file(const char *path, unsigned char **buf, size_t *size,
                           char *err, size_t errlen) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st)) {
    set_err(err, errlen, "cannot open checkpoint %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SIZE_MAX - 1) {
    set_err(err, errlen, "cannot read checkpoint %s: not a regular file", path);
    close(fd);
    return -1;
  }
  size_t want = (size_t)st.st_size, got = 0;
  unsigned char *b = malloc(want + 1);
  if (!b) {
    set_err(err, errlen, "cannot read checkpoint %s: out of memory (%zu bytes)", path, want);
    close(fd);
    return -1;
  }
  while (got < want) {
    ssize_t r = read(fd, b + got, want - got > (1u << 30) ? (1u << 30) : want - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      set_err(err, errlen, "cannot read checkpoint %s: %s", path,
              r < 0 ? strerror(errno) : "file shrank while reading");
      free(b);
      close(fd);
      return -1;
    }
    got += (size_t)r;
  }
  close(fd); /* read-only descriptor */
  *buf = b;
  *size = want;
  return 0;
}

static int meta_from_json(dl_st_file *f, const jv *m, const char *path, char *err, size_t errlen) {
  if (m->type != JV_OBJ) {
    set_err(err, errlen, "cannot read checkpoint %s: \"__metadata__\" is not an object", path);
    return -1;
  }
  f->mkey = calloc((size_t)m->n + 1, sizeof *f->mkey);
  f->mval = calloc((size_t)m->n + 1, sizeof *f->mval);
  if (!f->mkey || !f->mval) {
    set_err(err, errlen, "cannot read checkpoint %s: out of memory", path);
    return -1;
  }
  for (int i = 0; i < m->n; i++) {
    if (m->items[i].type != JV_STR) {
      set_err(err, errlen, "cannot read checkpoint %s: metadata \"%s\" is not a string", path,
              show(m->keys[i]).s);
      return -1;
    }
    f->mkey[i] = m->keys[i];   /* taken over from the JSON tree */
    f->mval[i] = m->items[i].str;
    m->keys[i] = NULL;
    m->items[i].str = NULL;
    f->n_meta = i + 1;
  }
  return 0;
}

/* Fills t (not data) and span from one header entry. */
static int tensor_from_json(dl_st_tensor *t, st_span *span, const jv *info, uint64_t data_len,
                            const char *path, char *err, size_t errlen) {
#define TERR(...)                                                               \
  do {                                                                          \
    char why_[160];                                                             \
    snprintf(why_, sizeof why_, __VA_ARGS__);                                   \
    set_err(err, errlen, "cannot read checkpoint %s: tensor \"%s\": %s", path, \
            show(t->name).s, why_);                                             \
    return -1;                                                                  \
  } while (0)
  if (info->type != JV_OBJ) TERR("entry is not an object");
  const jv *dt = jv_get(info, "dtype"), *sh = jv_get(info, "shape"),
           *off = jv_get(info, "data_offsets");
  if (!dt || dt->type != JV_STR) TERR("no \"dtype\" string");
  if (dtype_from_name(dt->str, &t->dtype))
    TERR("unsupported dtype \"%.20s\" (supported: F32 F64 I64 I32 U8)", dt->str);
  if (!sh || sh->type != JV_ARR) TERR("no \"shape\" array");
  if (sh->n > ST_MAX_DIMS) TERR("%d dims, at most %d are supported", sh->n, ST_MAX_DIMS);
  t->ndim = sh->n;
  for (int d = 0; d < sh->n; d++) {
    uint64_t v;
    if (jv_uint(&sh->items[d], &v) || v > INT64_MAX) TERR("shape holds a bad dimension");
    t->shape[d] = (int64_t)v;
  }
  if (!off || off->type != JV_ARR || off->n != 2 || jv_uint(&off->items[0], &span->begin) ||
      jv_uint(&off->items[1], &span->end))
    TERR("\"data_offsets\" is not two non-negative integers");
  /* Data past the end is what a file cut short looks like (a copy
   * interrupted, a full disk under a writer that is not atomic): say so. */
  if (span->end < span->begin || span->end > data_len)
    TERR("data_offsets [%llu, %llu] are out of range (the data is %llu bytes)%s",
         (unsigned long long)span->begin, (unsigned long long)span->end,
         (unsigned long long)data_len,
         span->end > data_len && span->end >= span->begin ? "; the file is truncated" : "");
  uint64_t need;
  if (tensor_bytes(t->dtype, t->ndim, t->shape, &need)) TERR("shape is too large");
  if (need != span->end - span->begin)
    TERR("its shape and dtype need %llu bytes, data_offsets give %llu",
         (unsigned long long)need, (unsigned long long)(span->end - span->begin));
  return 0;
#undef TERR
}

/* Sorted spans must tile [0, data_len) exactly: no overlap, no gap. */
static int check_tiling(const dl_st_file *f, const st_span *s, uint64_t data_len,
                        const char *path, char *err, size_t errlen) {
  uint64_t at = 0;
  for (int i = 0; i < f->n; i++) {
    if (s[i].begin != at) {
      const char *prev = i ? f->names[s[i - 1].idx] : NULL;
      if (s[i].begin < at)
        set_err(err, errlen, "cannot read checkpoint %s: tensors \"%s\" and \"%s\" overlap", path,
                show(prev).s, show(f->names[s[i].idx]).s);
      else
        set_err(err, errlen, "cannot read checkpoint %s: %llu unused bytes before tensor \"%s\"",
                path, (unsigned long long)(s[i].begin - at), show(f->names[s[i].idx]).s);
      return -1;
    }
    at = s[i].end;
  }
  if (at != data_len) {
    set_err(err, errlen, "cannot read checkpoint %s: %llu unused bytes after the last tensor",
            path, (unsigned long long)(data_len - at));
    return -1;
  }
  return 0;
}

/* Points each tensor at its bytes.  A file from another writer may place a
 * tensor at an offset that is not a multiple of its element size; such a
 * tensor gets its own aligned copy so callers can read it as a typed array. */
static int attach_data(dl_st_file *f, const unsigned char *data, const st_span *s,
                       const char *path, char *err, size_t errlen) {
  for (int i = 0; i < f->n; i++) {
    const unsigned char *p = data + s[i].begin;
    f->t[i].data = p;
    if ((uintptr_t)p % dl_st_dtype_size(f->t[i].dtype) == 0) continue;
    size_t len = (size_t)(s[i].end - s[i].begin);
    if (!(f->copies[i] = malloc(len))) {
      set_err(err, errlen, "cannot read checkpoint %s: out of memory", path);
      return -1;
    }
    memcpy(f->copies[i], p, len);
    f->t[i].data = f->copies[i];
  }
  return 0;
}

/* Builds f from the parsed header; tensors end up in file (offset) order. */
static int file_from_json(dl_st_file *f, jv *root, const unsigned char *data, uint64_t data_len,
                          const char *path, char *err, size_t errlen) {
  const jv *meta = jv_get(root, "__metadata__");
  int n = root->n - (meta != NULL);
  st_span *span = calloc((size_t)n + 1, sizeof *span);
  dl_st_tensor *hdr = calloc((size_t)n + 1, sizeof *hdr);
  f->t = calloc((size_t)n + 1, sizeof *f->t);
  f->names = calloc((size_t)n + 1, sizeof *f->names);
  f->copies = calloc((size_t)n + 1, sizeof *f->copies);
  int rc = -1;
  if (!span || !hdr || !f->t || !f->names || !f->copies) {
    set_err(err, errlen, "cannot read checkpoint %s: out of memory", path);
    goto done;
  }
  if (meta && meta_from_json(f, meta, path, err, errlen)) goto done;
  int k = 0;
  for (int i = 0; i < root->n; i++) {
    if (&root->items[i] == meta) continue;
    hdr[k].name = root->keys[i];
    span[k].idx = k;
    if (tensor_from_json(&hdr[k], &span[k], &root->items[i], data_len, path, err, errlen))
      goto done;
    k++;
  }
  int oom;
  const char *dup = duplicate_name(hdr, n, &oom);
  if (oom || dup) {
    if (oom) set_err(err, errlen, "cannot read checkpoint %s: out of memory", path);
    else set_err(err, errlen, "cannot read checkpoint %s: tensor \"%s\" appears twice", path,
                 show(dup).s);
    goto done;
  }
  qsort(span, (size_t)n, sizeof *span, cmp_span);
  f->n = n;
  for (int i = 0; i < n; i++) {
    int h = span[i].idx;
    f->t[i] = hdr[h];
    f->names[i] = (char *)hdr[h].name;
    f->t[i].name = f->names[i];
    span[i].idx = i;
  }
  /* The names now belong to f. */
  for (int i = 0; i < root->n; i++)
    if (&root->items[i] != meta) root->keys[i] = NULL;
  if (check_tiling(f, span, data_len, path, err, errlen) ||
      attach_data(f, data, span, path, err, errlen))
    goto done;
  rc = 0;
done:
  free(span);
  free(hdr);
  return rc;
}

/* The length prefix and the header text, before any JSON parsing. */
static int check_prefix(const unsigned char *buf, size_t size, uint64_t *hlen, const char *path,
                        char *err, size_t errlen) {
  if (size < 8) {
    set_err(err, errlen, "cannot read checkpoint %s: not a safetensors file (%zu bytes)", path,
            size);
    return -1;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
  if (n > size - 8) {
    set_err(err, errlen,
            "cannot read checkpoint %s: header size %llu is larger than the file (%zu bytes); "
            "truncated or not a safetensors file",
            path, (unsigned long long)n, size);
    return -1;
  }
  if (!utf8_valid(buf + 8, (size_t)n)) {
    set_err(err, errlen, "cannot read checkpoint %s: the header is not UTF-8 text", path);
    return -1;
  }
  *hlen = n;
  return 0;
}

dl_st_file *dl_st_read(const char *path, char *err, size_t errlen) {
  dl_st_file *f = calloc(1, sizeof *f);
  if (!f) {
    set_err(err, errlen, "cannot read checkpoint %s: out of memory", path);
    return NULL;
  }
  size_t size;
  uint64_t hlen;
  jv root = {0};
  if (read_whole_file(path, &f->buf, &size, err, errlen) ||
      check_prefix(f->buf, size, &hlen, path, err, errlen))
    goto fail;
  const char *h = (const char *)f->buf + 8;
  char why[160];
  if (json_parse_object(h, hlen, &root, why, sizeof why)) {
    set_err(err, errlen, "cannot read checkpoint %s: bad JSON header%s", path,
            why + strlen("bad JSON"));
    goto fail;
  }
  if (file_from_json(f, &root, f->buf + 8 + hlen, size - 8 - hlen, path, err, errlen))
    goto fail;
  jv_free(&root);
  return f;
fail:
  jv_free(&root);
  dl_st_close(f);
  return NULL;
}

int dl_st_count(const dl_st_file *f) { return f ? f->n : 0; }

const dl_st_tensor *dl_st_get(const dl_st_file *f, int i) {
  return f && i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const dl_st_tensor *dl_st_find(const dl_st_file *f, const char *name) {
  for (int i = 0; f && i < f->n; i++)
    if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
  return NULL;
}

const char *dl_st_meta_get(const dl_st_file *f, const char *key) {
  for (int i = 0; f && i < f->n_meta; i++)
    if (strcmp(f->mkey[i], key) == 0) return f->mval[i];
  return NULL;
}

void dl_st_close(dl_st_file *f) {
  if (!f) return;
  /* names and copies may be partly filled when reading failed; calloc'd
   * arrays make the unused slots NULL. */
  for (int i = 0; f->names && f->copies && i < f->n; i++) {
    free(f->names[i]);
    free(f->copies[i]);
  }
  for (int i = 0; i < f->n_meta; i++) {
    free(f->mkey[i]);
    free(f->mval[i]);
  }
  free(f->t);
  free(f->names);
  free(f->copies);
  free(f->mkey);
  free(f->mval);
  free(f->buf);
  free(f);
}
