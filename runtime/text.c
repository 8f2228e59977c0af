/* text.c: text datasets for next-token models (dl_load_text), and the check
 * that a dataset's inputs are token ids (dl_dataset_check_tokens).
 *
 * A corpus is a file or a directory of files (Debian's fortunes: one file
 * per topic, next to `.dat` index files and `.u8` symlinks, which are
 * skipped), read whole into one buffer: one byte is one token.  Samples are
 * windows of that buffer, so the inputs are the buffer itself, moved to the
 * front; only the labels (int32) take more room.  Every message names the
 * file, and for a byte outside the vocabulary its line. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* fstatat, dirfd */
#endif
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { READ_CHUNK = 1 << 16 };

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- which files ---------------------------------------------------------- */

typedef struct file_list {
  char **path;              /* in reading order */
  size_t n, cap;
} file_list;

static void files_free(file_list *f) {
  for (size_t i = 0; i < f->n; i++) free(f->path[i]);
  free(f->path);
  memset(f, 0, sizeof *f);
}

/* Appends dir/name (or name alone when dir is NULL); -1 on OOM. */
static int files_add(file_list *f, const char *dir, const char *name) {
  if (f->n == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 16;
    char **p = realloc(f->path, cap * sizeof *p);
    if (!p) return -1;
    f->path = p;
    f->cap = cap;
  }
  size_t dl = dir ? strlen(dir) : 0, len = dl + 1 + strlen(name) + 1;
  char *s = malloc(len);
  if (!s) return -1;
  if (dir)
    snprintf(s, len, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name);
  else
    snprintf(s, len, "%s", name);
  f->path[f->n++] = s;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  /* strcmp compares as unsigned char: byte-wise order, whatever the locale */
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir worth reading: regular files (lstat-wise: a symlink is
 * skipped, not followed), not *.dat.  Names are sorted before the paths are
 * built, so the order is the names' byte order. */
static int list_dir(file_list *f, const char *dir, char *err, size_t errlen) {
  DIR *dp = opendir(dir);
  if (!dp) {
    dl_set_err(err, errlen, "cannot open the directory %s: %s", dir, strerror(errno));
    return -1;
  }
  file_list names = {0};
  int rc = 0;
  struct dirent *e;
  errno = 0;
  while (rc == 0 && (e = readdir(dp)) != NULL) {
    struct stat st;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || has_suffix(e->d_name, ".dat"))
      continue;
    if (fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      dl_set_err(err, errlen, "cannot read %s/%s: %s", dir, e->d_name, strerror(errno));
      rc = -1;
    } else if (S_ISREG(st.st_mode) && files_add(&names, NULL, e->d_name)) {
      dl_set_err(err, errlen, "out of memory listing the directory %s", dir);
      rc = -1;
    }
    errno = 0;
  }
  if (rc == 0 && errno) {
    dl_set_err(err, errlen, "cannot list the directory %s: %s", dir, strerror(errno));
    rc = -1;
  }
  closedir(dp);
  if (rc == 0 && names.n == 0) {
    dl_set_err(err, errlen, "the directory %s holds no text files (regular files not ending in .dat)", dir);
    rc = -1;
  }
  if (rc == 0) qsort(names.path, names.n, sizeof *names.path, cmp_names);
  for (size_t i = 0; rc == 0 && i < names.n; i++)
    if (files_add(f, dir, names.path[i])) {
      dl_set_err(err, errlen, "out of memory listing the directory %s", dir);
      rc = -1;
    }
  files_free(&names);
  return rc;
}

/* path itself (followed if a symlink: the user named it), or its files. */
static int list_path(file_list *f, const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    dl_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  if (S_ISDIR(st.st_mode)) return list_dir(f, path, err, errlen);
  if (!S_ISREG(st.st_mode)) {
    dl_set_err(err, errlen, "%s is neither a regular file nor a directory", path);
    return -1;
  }
  if (files_add(f, NULL, path)) {
    dl_set_err(err, errlen, "out of memory reading %s", path);
    return -1;
  }
  return 0;
}

/* ---- reading -------------------------------------------------------------- */

/* The concatenation, and where each file starts in it (for messages). */
typedef struct text_buf {
  uint8_t *bytes;
  size_t len, cap;
  size_t *start;            /* [files]: offset of each file's first byte */
} text_buf;

/* Room for READ_CHUNK more bytes, doubling; -1 with a message. */
static int text_reserve(text_buf *t, const char *path, char *err, size_t errlen) {
  if (t->cap - t->len >= READ_CHUNK) return 0;
  size_t cap = t->cap ? t->cap : 4 * READ_CHUNK;
  while (cap - t->len < READ_CHUNK && cap <= SIZE_MAX / 2) cap *= 2;
  uint8_t *b = cap - t->len >= READ_CHUNK ? realloc(t->bytes, cap) : NULL;
  if (!b) {
    dl_set_err(err, errlen, "out of memory reading %s (%zu bytes read so far)", path, t->len);
    return -1;
  }
  t->bytes = b;
  t->cap = cap;
  return 0;
}

/* A plain file, byte for byte (not through zlib, which would inflate a
 * file that merely starts with the gzip magic). */
static int read_plain(text_buf *t, const char *path, char *err, size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    dl_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = 0;
  size_t got;
  do {
    if (text_reserve(t, path, err, errlen)) {
      rc = -1;
      break;
    }
    got = fread(t->bytes + t->len, 1, READ_CHUNK, fp);
    t->len += got;
  } while (got == READ_CHUNK);
  if (rc == 0 && ferror(fp)) {
    dl_set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
    rc = -1;
  }
  fclose(fp); /* read-only: nothing to lose if close fails */
  return rc;
}

/* zlib's own message for a corrupt stream (which it starts with the path:
 * dropped, the message names it once), strerror for a system error. */
static void gz_err(gzFile gz, const char *path, char *err, size_t errlen) {
  int code = 0;
  const char *msg = gzerror(gz, &code);
  size_t n = strlen(path);
  if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0) msg += n + 2;
  dl_set_err(err, errlen, "cannot read %s: %s", path, code == Z_ERRNO ? strerror(errno) : msg);
}

/* A .gz file.  gzread reports a stream cut short not as an error but as the
 * end of the data, with Z_BUF_ERROR left in gzerror: check it at the end. */
static int read_gz(text_buf *t, const char *path, char *err, size_t errlen) {
  errno = 0;
  gzFile gz = gzopen(path, "rb");
  if (!gz) {
    dl_set_err(err, errlen, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    return -1;
  }
  gzbuffer(gz, 1 << 17);
  int rc = 0, r;
  do {
    if (text_reserve(t, path, err, errlen)) {
      rc = -1;
      break;
    }
    r = gzread(gz, t->bytes + t->len, READ_CHUNK);
    if (r < 0) {
      gz_err(gz, path, err, errlen);
      rc = -1;
    } else {
      t->len += (size_t)r;
    }
  } while (rc == 0 && r > 0);
  int code = Z_OK;
  if (rc == 0) gzerror(gz, &code);
  if (rc == 0 && code != Z_OK) {
    dl_set_err(err, errlen, "cannot read %s: the gzip data is truncated", path);
    rc = -1;
  }
  gzclose(gz);
  return rc;
}

static int read_all(text_buf *t, const file_list *f, char *err, size_t errlen) {
  t->start = malloc(f->n * sizeof *t->start);
  if (!t->start) {
    dl_set_err(err, errlen, "out of memory reading %s", f->path[0]);
    return -1;
  }
  for (size_t i = 0; i < f->n; i++) {
    t->start[i] = t->len;
    int rc = has_suffix(f->path[i], ".gz") ? read_gz(t, f->path[i], err, errlen)
                                           : read_plain(t, f->path[i], err, errlen);
    if (rc) return -1;
  }
  return 0;
}

/* Every byte below vocab, else the first that is not, by file and line. */
static int check_vocab(const text_buf *t, const file_list *f, int64_t vocab, char *err,
                       size_t errlen) {
  if (vocab >= 256) return 0;
  size_t i = 0;
  while (i < t->len && t->bytes[i] < vocab) i++;
  if (i == t->len) return 0;
  size_t file = f->n - 1;
  while (t->start[file] > i) file--;
  long long line = 1;
  for (size_t k = t->start[file]; k < i; k++) line += t->bytes[k] == '\n';
  dl_set_err(err, errlen, "%s:%lld: byte 0x%02x is outside the vocabulary of %lld tokens "
          "(class[T, 256] takes any byte)", f->path[file], line, t->bytes[i], (long long)vocab);
  return -1;
}

/* ---- samples -------------------------------------------------------------- */

/* The windows of bytes [a, a + n*T + 1): labels first (bytes a+1 ...), then
 * the inputs moved to the front of the buffer, which becomes x_u8. */
static int make_samples(dl_dataset *d, text_buf *t, size_t a, int64_t n, int64_t seq_len,
                        const char *path, char *err, size_t errlen) {
  size_t count = (size_t)n * (size_t)seq_len; /* <= the part's length */
  int32_t *y = count <= SIZE_MAX / sizeof *y ? malloc(count * sizeof *y) : NULL;
  if (!y) {
    dl_set_err(err, errlen, "out of memory for the labels of %s (%zu bytes)", path, count);
    return -1;
  }
  for (size_t i = 0; i < count; i++) y[i] = t->bytes[a + 1 + i];
  memmove(t->bytes, t->bytes + a, count);
  uint8_t *x = realloc(t->bytes, count); /* shrinking: may keep the old block */
  if (x) t->bytes = x;
  d->x_u8 = t->bytes;
  t->bytes = NULL;
  d->y_class = y;
  d->n = n;
  return 0;
}

/* Bytes [floor(from*N), floor(to*N)) into n samples of seq_len. */
static int cut_part(dl_dataset *d, text_buf *t, const char *path, double from, double to,
                    int64_t seq_len, char *err, size_t errlen) {
  size_t a = (size_t)floor(from * (double)t->len), b = (size_t)floor(to * (double)t->len);
  if (b > t->len) b = t->len; /* rounding of to * N for to = 1 */
  if (a > b) a = b;
  size_t part = b - a;
  int64_t n = part > 0 ? (int64_t)((part - 1) / (uint64_t)seq_len) : 0;
  if (n < 1) {
    dl_set_err(err, errlen, "%s: text too short for sequences of %lld: the part from %g to %g of "
            "its %zu bytes holds %zu, a sample needs %lld (its inputs and the byte after)",
            path, (long long)seq_len, from, to, t->len, part, (long long)seq_len + 1);
    return -1;
  }
  return make_samples(d, t, a, n, seq_len, path, err, errlen);
}

int dl_load_text(dl_dataset *d, const char *path, double from, double to, int64_t seq_len,
                 int64_t vocab, char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  if (seq_len < 1 || vocab < 1 || vocab > INT32_MAX) {
    dl_set_err(err, errlen, "dl_load_text: bad arguments for %s (seq_len %lld, vocab %lld)", path,
            (long long)seq_len, (long long)vocab);
    return -1;
  }
  if (!(from >= 0 && from < to && to <= 1)) { /* also catches NaN */
    dl_set_err(err, errlen, "%s: the part of the text from %g to %g is not a range in [0, 1] "
            "(need 0 <= from < to <= 1)", path, from, to);
    return -1;
  }
  file_list f = {0};
  text_buf t = {0};
  int rc = -1;
  if (list_path(&f, path, err, errlen) == 0 && read_all(&t, &f, err, errlen) == 0 &&
      check_vocab(&t, &f, vocab, err, errlen) == 0 &&
      cut_part(d, &t, path, from, to, seq_len, err, errlen) == 0) {
    d->x_size = seq_len;
    d->scale = 1.0;
    d->y_is_class = 1;
    d->y_size = vocab;
    d->y_len = seq_len;
    rc = 0;
  }
  free(t.bytes);
  free(t.start);
  files_free(&f);
  if (rc) memset(d, 0, sizeof *d);
  return rc;
}

/* ---- token ids in any dataset ------------------------------------------- */

int dl_dataset_check_tokens(const dl_dataset *d, int64_t vocab, char *err, size_t errlen) {
  size_t count = (size_t)d->n * (size_t)d->x_size;
  for (size_t i = 0; i < count; i++) {
    double v = d->x_u8 ? (double)d->x_u8[i] * d->scale : d->x_f32 ? (double)d->x_f32[i] * d->scale : 0;
    if (!dl_is_token_id(v, vocab)) {
      dl_set_err(err, errlen, "sample %zu, input %zu (counting from 1): %g is not a token id, "
              "an integer in [0, %lld)", i / (size_t)d->x_size + 1, i % (size_t)d->x_size + 1,
              v, (long long)vocab);
      return -1;
    }
  }
  return 0;
}
