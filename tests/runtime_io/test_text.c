/* test_text.c: text datasets (dl_load_text): which files of a directory are
 * read and in what order, plain and gzip, the windows and their next-byte
 * labels, the from/to split, gathering y_len labels a row (also over the
 * thread pool), messages; plus the token-id checks (dl_dataset_check_tokens,
 * dl_is_token_id). */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data.h"
#include "threads.h"

/* The corpus directory: "B", "a" and "b.gz" are read, in byte order ("B" <
 * "a"); the .dat file, the symlink and the subdirectory are not. */
static const char CORPUS[] = "XY" "hello\nworld\n" "abcdefgh";
enum { N = sizeof CORPUS - 1 };

static void write_gz(const char *path, const void *data, size_t len) {
  gzFile g = gzopen(path, "wb");
  if (!g || gzwrite(g, data, (unsigned)len) != (int)len || gzclose(g) != Z_OK) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
}

static void make_corpus(void) {
  mkdir(tmp_path("corpus"), 0755);
  write_text(tmp_path("corpus/a"), "hello\nworld\n");
  write_text(tmp_path("corpus/B"), "XY");
  write_gz(tmp_path("corpus/b.gz"), "abcdefgh", 8);
  const unsigned char junk[] = {0, 0, 0, 2, 0xff, 0xfe, 0x80, 0x81};
  write_bytes(tmp_path("corpus/a.dat"), junk, sizeof junk);
  if (symlink("a", tmp_path("corpus/a.u8")) != 0) perror("symlink");
  mkdir(tmp_path("corpus/sub"), 0755);
  write_text(tmp_path("corpus/sub/c"), "not read: no recursion");
}

/* d holds the windows of text[a, b) for sequences of t, exactly. */
static void check_windows(const dl_dataset *d, const char *text, size_t a, size_t b, int64_t t,
                          int64_t vocab) {
  int64_t n = (int64_t)(b - a - 1) / t;
  CHECK(d->n == n && d->x_size == t && d->y_len == t && d->y_size == vocab);
  CHECK(d->y_is_class == 1 && d->scale == 1.0 && d->x_u8 && d->y_class && !d->x_f32 && !d->y_real);
  if (d->n != n) return;
  for (int64_t k = 0; k < n; k++)
    for (int64_t j = 0; j < t; j++) {
      CHECK(d->x_u8[k * t + j] == (unsigned char)text[a + (size_t)(k * t + j)]);
      CHECK(d->y_class[k * t + j] == (unsigned char)text[a + (size_t)(k * t + j) + 1]);
    }
}

static int load(dl_dataset *d, const char *path, double from, double to, int64_t t,
                int64_t vocab, char *err, size_t errlen) {
  int rc = dl_load_text(d, path, from, to, t, vocab, err, errlen);
  if (rc) fprintf(stderr, "load of %s failed: %s\n", path, err);
  return rc;
}

static void check_directory(void) {
  dl_dataset d;
  char err[512] = "";
  /* T = 4 over 22 bytes: (22 - 1) / 4 = 5 samples, the last byte a label only */
  if (load(&d, tmp_path("corpus"), 0, 1, 4, 256, err, sizeof err) == 0) {
    check_windows(&d, CORPUS, 0, N, 4, 256);
    CHECK(d.n == 5);
    /* a permutation with a repeat: every row's 4 inputs and 4 labels */
    int64_t idx[3] = {4, 0, 4};
    dl_real x[12];
    int32_t y[12];
    dl_dataset_gather(&d, idx, 3, x, y, NULL);
    for (int r = 0; r < 3; r++)
      for (int j = 0; j < 4; j++) {
        CHECK(x[r * 4 + j] == (dl_real)(unsigned char)CORPUS[idx[r] * 4 + j]);
        CHECK(y[r * 4 + j] == (unsigned char)CORPUS[idx[r] * 4 + j + 1]);
      }
    dl_dataset_free(&d);
  }
  /* the exact fit: 22 bytes hold one sample of 21 */
  if (load(&d, tmp_path("corpus"), 0, 1, 21, 128, err, sizeof err) == 0) {
    check_windows(&d, CORPUS, 0, N, 21, 128);
    dl_dataset_free(&d);
  }
}

/* data from 0 to 0.5, test from 0.5 to 1: bytes [0, 11) and [11, 22). */
static void check_split(void) {
  dl_dataset d;
  char err[512] = "";
  if (load(&d, tmp_path("corpus"), 0, 0.5, 3, 256, err, sizeof err) == 0) {
    check_windows(&d, CORPUS, 0, 11, 3, 256);
    CHECK(d.n == 3);
    dl_dataset_free(&d);
  }
  if (load(&d, tmp_path("corpus"), 0.5, 1, 3, 256, err, sizeof err) == 0) {
    check_windows(&d, CORPUS, 11, N, 3, 256);
    CHECK(d.x_u8 && d.x_u8[0] == 'l'); /* "XYhello\nworld": byte 11 */
    dl_dataset_free(&d);
  }
  /* floor(0.3 * 22) = 6, floor(0.95 * 22) = 20 */
  if (load(&d, tmp_path("corpus"), 0.3, 0.95, 2, 256, err, sizeof err) == 0) {
    check_windows(&d, CORPUS, 6, 20, 2, 256);
    dl_dataset_free(&d);
  }
}

/* One file, named directly; gzip; every byte value with vocab 256. */
static void check_single_files(void) {
  dl_dataset d;
  char err[512] = "";
  unsigned char all[513];
  for (int i = 0; i < 513; i++) all[i] = (unsigned char)(i * 7 + 255);
  write_bytes(tmp_path("bytes"), all, sizeof all);
  write_gz(tmp_path("bytes.gz"), all, sizeof all);
  for (int gz = 0; gz < 2; gz++) {
    if (load(&d, tmp_path(gz ? "bytes.gz" : "bytes"), 0, 1, 8, 256, err, sizeof err)) continue;
    check_windows(&d, (const char *)all, 0, sizeof all, 8, 256);
    CHECK(d.n == 64);
    dl_dataset_free(&d);
  }
  /* a file not named .gz is read as it is, even when it is gzip data */
  write_gz(tmp_path("looks_plain"), "abcdef", 6);
  if (load(&d, tmp_path("looks_plain"), 0, 1, 1, 256, err, sizeof err) == 0) {
    CHECK(d.n > 6 && d.x_u8[0] == 0x1f && d.x_u8[1] == 0x8b);
    dl_dataset_free(&d);
  }
}

/* Many rows over a pool of 2: each thread's rows land at y + b * y_len. */
static void check_gather_pool(void) {
  enum { BIG = 100001, T = 2 };
  char *text = malloc(BIG);
  for (int i = 0; i < BIG; i++) text[i] = (char)('a' + (i * 13 + i / 7) % 26);
  write_bytes(tmp_path("big"), text, BIG);
  dl_dataset d;
  char err[512] = "";
  if (load(&d, tmp_path("big"), 0, 1, T, 128, err, sizeof err) == 0) {
    CHECK(d.n == (BIG - 1) / T);
    int n = (int)d.n;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    dl_real *x = malloc((size_t)n * T * sizeof *x);
    int32_t *y = malloc((size_t)n * T * sizeof *y);
    for (int i = 0; i < n; i++) idx[i] = n - 1 - i;
    dl_pool *pool = dl_pool_new(2);
    dl_dataset_gather_pool(pool, &d, idx, n, x, y, NULL);
    int bad = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < T; j++) {
        size_t at = (size_t)idx[i] * T + (size_t)j;
        bad += x[(size_t)i * T + j] != (dl_real)text[at] || y[(size_t)i * T + j] != text[at + 1];
      }
    CHECK(bad == 0);
    dl_pool_free(pool);
    free(idx);
    free(x);
    free(y);
    dl_dataset_free(&d);
  }
  free(text);
}

/* A load that must fail, with a message holding the fragments. */
#define EXPECT_FAIL(path, from, to, t, vocab, ...)                             \
  do {                                                                         \
    dl_dataset d_;                                                             \
    char err_[512] = "";                                                       \
    int rc_ = dl_load_text(&d_, path, from, to, t, vocab, err_, sizeof err_);  \
    CHECK_ERR(rc_ == -1, err_, __VA_ARGS__);                                   \
    CHECK(d_.n == 0 && d_.x_u8 == NULL && d_.y_class == NULL);                 \
  } while (0)

static void check_errors(void) {
  const char *corpus = tmp_path("corpus");
  /* 'w' (0x77) on line 2 of corpus/a, after "XY" of corpus/B */
  EXPECT_FAIL(corpus, 0, 1, 4, 0x77, "corpus/a:2: byte 0x77 is outside the vocabulary of 119 tokens",
              "class[T, 256] takes any byte");
  write_text(tmp_path("utf8"), "plain\nascii\ncaf\xc3\xa9\n");
  EXPECT_FAIL(tmp_path("utf8"), 0, 1, 2, 128, "utf8:3: byte 0xc3 is outside the vocabulary of 128");
  /* the whole text is checked, not only the part used */
  EXPECT_FAIL(tmp_path("utf8"), 0, 0.5, 2, 128, "utf8:3: byte 0xc3");
  EXPECT_FAIL(corpus, 0, 1, 22, 256, "corpus", "text too short for sequences of 22");
  EXPECT_FAIL(corpus, 0.9, 1, 3, 256, "text too short for sequences of 3"); /* 3 bytes */
  EXPECT_FAIL(tmp_path("nope"), 0, 1, 4, 256, "cannot open", "nope", "No such file");
  mkdir(tmp_path("empty"), 0755);
  EXPECT_FAIL(tmp_path("empty"), 0, 1, 4, 256, "empty", "holds no text files");
  mkdir(tmp_path("only_dat"), 0755);
  write_text(tmp_path("only_dat/x.dat"), "index");
  EXPECT_FAIL(tmp_path("only_dat"), 0, 1, 4, 256, "only_dat", "holds no text files");
  write_text(tmp_path("zero"), "");
  EXPECT_FAIL(tmp_path("zero"), 0, 1, 1, 256, "zero", "too short", "its 0 bytes");
  EXPECT_FAIL(corpus, 0.5, 0.5, 4, 256, "corpus", "0 <= from < to <= 1");
  EXPECT_FAIL(corpus, -0.1, 1, 4, 256, "corpus", "0 <= from < to <= 1");
  EXPECT_FAIL(corpus, 0, 1.5, 4, 256, "corpus", "0 <= from < to <= 1");
  EXPECT_FAIL(corpus, NAN, 1, 4, 256, "corpus", "0 <= from < to <= 1");
  EXPECT_FAIL(corpus, 0, 1, 0, 256, "corpus", "bad arguments");
  EXPECT_FAIL(corpus, 0, 1, 4, 0, "corpus", "bad arguments");
  /* gzip cut short, and gzip with damaged data */
  char text[4000];
  uint32_t state = 12345; /* xorshift: text that does not compress to nothing */
  for (int i = 0; i < 4000; i++) {
    state ^= state << 13, state ^= state >> 17, state ^= state << 5;
    text[i] = (char)('a' + state % 26);
  }
  write_gz(tmp_path("whole.gz"), text, sizeof text);
  FILE *f = fopen(tmp_path("whole.gz"), "rb");
  unsigned char gz[8192];
  size_t len = f ? fread(gz, 1, sizeof gz, f) : 0;
  if (f) fclose(f);
  CHECK(len > 100);
  write_bytes(tmp_path("cut.gz"), gz, len / 2);
  EXPECT_FAIL(tmp_path("cut.gz"), 0, 1, 4, 256, "cut.gz", "truncated");
  for (size_t i = 20; i < len - 20; i++) gz[i] ^= 0x5a;
  write_bytes(tmp_path("bad.gz"), gz, len);
  EXPECT_FAIL(tmp_path("bad.gz"), 0, 1, 4, 256, "cannot read", "bad.gz");
  /* an unreadable file in the directory: named, and not a crash */
  mkdir(tmp_path("with_bad"), 0755);
  write_text(tmp_path("with_bad/a"), "fine text");
  write_bytes(tmp_path("with_bad/b.gz"), gz, len);
  EXPECT_FAIL(tmp_path("with_bad"), 0, 1, 4, 256, "with_bad/b.gz");
}

/* Inputs of CSV (or IDX) data for a model whose inputs are token ids. */
static void check_tokens(void) {
  const char *p = tmp_path("ids.csv");
  write_text(p, "1,2,0\n3,4.5,1\n0,4,1\n");
  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_csv(&d, p, 0, 1.0, 2, 1, 2, err, sizeof err);
  CHECK(rc == 0 && d.y_len == 1);
  if (rc) return;
  CHECK_ERR(dl_dataset_check_tokens(&d, 5, err, sizeof err) == -1, err, "sample 2, input 2",
            "4.5 is not a token id", "[0, 5)");
  dl_dataset_free(&d);
  write_text(p, "1,2,0\n3,4,1\n0,0,1\n");
  rc = dl_load_csv(&d, p, 0, 1.0, 2, 1, 2, err, sizeof err);
  CHECK(rc == 0);
  if (rc) return;
  CHECK(dl_dataset_check_tokens(&d, 5, err, sizeof err) == 0);
  CHECK_ERR(dl_dataset_check_tokens(&d, 4, err, sizeof err) == -1, err, "sample 2, input 2",
            "4 is not a token id");
  dl_dataset_free(&d);
  /* the id rule predict applies to its rows too (after the scale) */
  CHECK(dl_is_token_id(0, 3) && dl_is_token_id(2, 3) && !dl_is_token_id(3, 3));
  CHECK(!dl_is_token_id(-1, 3) && !dl_is_token_id(2.5, 3) && !dl_is_token_id(1e300, 3));
}

int main(void) {
  make_tmpdir("rt_text");
  make_corpus();
  check_directory();
  check_split();
  check_single_files();
  check_gather_pool();
  check_errors();
  check_tokens();
  return finish("runtime_io_text");
}
