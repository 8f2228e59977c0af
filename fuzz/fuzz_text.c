/* fuzz_text.c: dl_load_text on one file or on a directory of files.
 *
 * Input layout (gen_corpus.c writes seeds in it):
 *   byte 0     flags: bit 0 gzip the second file's bytes first, bit 1 load the
 *              directory (else the first file alone)
 *   byte 1     seq_len - 1
 *   byte 2     vocab - 1
 *   bytes 3-4  from = byte 3 / 256, to = (byte 4 + 1) / 256 (from >= to must
 *              be refused)
 *   bytes 5-6  length of the first file (little-endian; clamped)
 *   rest       the first file ("a"), then the second ("b.gz")
 * The directory also holds "c.dat" (the whole input) and a symlink "d.u8" to
 * "a", which must both be skipped.  With bit 0 clear the second file's raw
 * bytes are read through zlib (a fuzzed gzip stream); with it set the harness
 * compresses them, so the loader also sees well-formed gzip of fuzzed text.
 * Files live in a directory of their own (the loader picks gzip by name, so a
 * memfd would not do), removed at exit. */
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data.h"
#include "fuzz_util.h"

enum { HEAD = 7, MAX_SIZE = 1 << 14 };

static char dir[256], path_a[300], path_b[300], path_c[300], path_d[300];

static void cleanup(void) {
  unlink(path_a), unlink(path_b), unlink(path_c), unlink(path_d);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  struct stat st;
  const char *tmp = getenv("TMPDIR");
  const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm"
                     : tmp && *tmp                                      ? tmp
                                                                        : "/tmp";
  snprintf(dir, sizeof dir, "%s/dlnc-fuzz-text-XXXXXX", base);
  if (!mkdtemp(dir)) {
    perror("fuzz_text: cannot create a temporary directory");
    abort();
  }
  snprintf(path_a, sizeof path_a, "%s/a", dir);
  snprintf(path_b, sizeof path_b, "%s/b.gz", dir);
  snprintf(path_c, sizeof path_c, "%s/c.dat", dir);
  snprintf(path_d, sizeof path_d, "%s/d.u8", dir);
  if (symlink("a", path_d) != 0) abort();
  atexit(cleanup);
  return 0;
}

static void put(const char *path, const uint8_t *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) abort();
}

static void put_gz(const char *path, const uint8_t *data, size_t n) {
  gzFile g = gzopen(path, "wb1");
  if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) abort();
}

/* A loaded set must be its windows: labels are the next input byte. */
static void check(const dl_dataset *d, int64_t t, int64_t vocab) {
  if (d->n < 1 || d->x_size != t || d->y_len != t || d->y_size != vocab || !d->y_is_class ||
      !d->x_u8 || !d->y_class)
    abort();
  size_t count = (size_t)d->n * (size_t)t;
  for (size_t i = 0; i < count; i++) {
    if (d->x_u8[i] >= vocab || d->y_class[i] < 0 || d->y_class[i] >= vocab) abort();
    if (i + 1 < count && d->y_class[i] != d->x_u8[i + 1]) abort();
  }
  int64_t idx[2] = {0, d->n - 1};
  dl_real *x = malloc(2 * (size_t)t * sizeof *x);
  int32_t *y = malloc(2 * (size_t)t * sizeof *y);
  if (!x || !y) abort();
  dl_dataset_gather(d, idx, 2, x, y, NULL);
  if (memcmp(y + t, d->y_class + (size_t)(d->n - 1) * (size_t)t, (size_t)t * sizeof *y) != 0) abort();
  free(x);
  free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD || size > MAX_SIZE) return 0;
  int flags = data[0];
  int64_t t = data[1] + 1, vocab = data[2] + 1;
  double from = data[3] / 256.0, to = (data[4] + 1) / 256.0;
  size_t rest = size - HEAD, n_a = fuzz_u16(data + 5);
  if (n_a > rest) n_a = rest;
  put(path_a, data + HEAD, n_a);
  if (flags & 1)
    put_gz(path_b, data + HEAD + n_a, rest - n_a);
  else
    put(path_b, data + HEAD + n_a, rest - n_a);
  put(path_c, data, size);

  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_text(&d, flags & 2 ? dir : path_a, from, to, t, vocab, err, sizeof err);
  fuzz_say("dl_load_text", rc, err);
  if (rc == 0) {
    check(&d, t, vocab);
    dl_dataset_free(&d);
  } else if (!err[0] || strchr(err, '\n')) {
    abort(); /* a failure must come with a one-line message */
  }
  return 0;
}
