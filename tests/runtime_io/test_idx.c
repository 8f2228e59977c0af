/* test_idx.c: IDX loading (plain and gzip), validation messages, gather. */
#include "testutil.h"

#include <math.h>
#include <zlib.h>

#include "data.h"

enum { N = 5, ROWS = 3, COLS = 4, PIX = ROWS * COLS, CLASSES = 10 };

static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Writes len bytes, gzip-compressed or plain. */
static void put_file(const char *path, const unsigned char *b, size_t len, int gz) {
  if (!gz) {
    write_bytes(path, b, len);
    return;
  }
  gzFile g = gzopen(path, "wb");
  if (!g || gzwrite(g, b, (unsigned)len) != (int)len || gzclose(g) != Z_OK) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
}

static unsigned char pixel(int i, int j) { return (unsigned char)(i * 40 + j * 7 + 3); }

/* An images file of n samples of rows x cols; `drop` bytes cut off the end,
 * `extra` zero bytes appended; magic overridable (0 = the right one). */
static void make_images(const char *path, int n, int rows, int cols, int drop, int extra,
                        uint32_t magic, int gz) {
  size_t len = 16 + (size_t)n * rows * cols + (size_t)extra;
  unsigned char *b = calloc(len, 1);
  be32(b, magic ? magic : 0x00000803);
  be32(b + 4, (uint32_t)n), be32(b + 8, (uint32_t)rows), be32(b + 12, (uint32_t)cols);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < rows * cols; j++) b[16 + i * rows * cols + j] = pixel(i, j);
  put_file(path, b, len - (size_t)drop, gz);
  free(b);
}

static void make_labels(const char *path, int n, int bad_at, int gz) {
  unsigned char b[8 + 64];
  be32(b, 0x00000801);
  be32(b + 4, (uint32_t)n);
  for (int i = 0; i < n; i++) b[8 + i] = (unsigned char)(i == bad_at ? CLASSES : (i * 3) % CLASSES);
  put_file(path, b, 8 + (size_t)n, gz);
}

static void check_round_trip(int gz) {
  const char *im = tmp_path(gz ? "rt-images.gz" : "rt-images");
  const char *lb = tmp_path(gz ? "rt-labels.gz" : "rt-labels");
  make_images(im, N, ROWS, COLS, 0, 0, 0, gz);
  make_labels(lb, N, -1, gz);
  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_idx(&d, im, lb, 1.0 / 255, PIX, CLASSES, err, sizeof err);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "load failed: %s\n", err);
    return;
  }
  CHECK(d.n == N && d.x_size == PIX && d.y_is_class == 1 && d.y_size == CLASSES);
  CHECK(d.x_u8 && !d.x_f32 && d.y_class && !d.y_real);
  for (int i = 0; i < N; i++) {
    CHECK(d.y_class[i] == (i * 3) % CLASSES);
    for (int j = 0; j < PIX; j++) CHECK(d.x_u8[i * PIX + j] == pixel(i, j));
  }
  /* Gather a permutation with a repeat; inputs come out scaled. */
  int64_t idx[4] = {4, 0, 2, 4};
  dl_real x[4 * PIX];
  int32_t y[4];
  dl_dataset_gather(&d, idx, 4, x, y, NULL);
  for (int r = 0; r < 4; r++) {
    CHECK(y[r] == (idx[r] * 3) % CLASSES);
    for (int j = 0; j < PIX; j++) {
      dl_real want = (dl_real)(pixel((int)idx[r], j) * (1.0 / 255));
      CHECK(x[r * PIX + j] == want);
    }
  }
  CHECK(fabs((double)x[0] - pixel(4, 0) / 255.0) < 1e-6);
  dl_dataset_free(&d);
  CHECK(d.x_u8 == NULL && d.n == 0);
}

/* Several MB, so reading crosses the loader's buffer growth steps. */
static void check_large(void) {
  enum { BIG_N = 3001 };
  const char *im = tmp_path("big-images.gz"), *lb = tmp_path("big-labels.gz");
  make_images(im, BIG_N, 28, 28, 0, 0, 0, 1);
  unsigned char *b = calloc(8 + BIG_N, 1);
  be32(b, 0x00000801), be32(b + 4, BIG_N);
  put_file(lb, b, 8 + BIG_N, 1);
  free(b);
  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_idx(&d, im, lb, 1.0, 784, CLASSES, err, sizeof err);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "load failed: %s\n", err);
    return;
  }
  CHECK(d.n == BIG_N);
  for (int i = 0; i < BIG_N; i += 97)
    for (int j = 0; j < 784; j += 13) CHECK(d.x_u8[(size_t)i * 784 + j] == pixel(i, j));
  CHECK(d.x_u8[(size_t)BIG_N * 784 - 1] == pixel(BIG_N - 1, 783));
  dl_dataset_free(&d);
}

/* One broken pair of files: the load fails and the message says why. */
#define EXPECT_FAIL(im, lb, x_size, ...)                                      \
  do {                                                                        \
    dl_dataset d_;                                                            \
    char err_[512] = "";                                                      \
    int rc_ = dl_load_idx(&d_, im, lb, 1.0, x_size, CLASSES, err_, sizeof err_); \
    CHECK_ERR(rc_ == -1, err_, __VA_ARGS__);                                  \
    CHECK(d_.x_u8 == NULL && d_.y_class == NULL && d_.n == 0);                \
  } while (0)

static void check_errors(void) {
  const char *good_im = tmp_path("good-images"), *good_lb = tmp_path("good-labels");
  make_images(good_im, N, ROWS, COLS, 0, 0, 0, 0);
  make_labels(good_lb, N, -1, 0);

  const char *p = tmp_path("trunc-images");
  make_images(p, N, ROWS, COLS, 7, 0, 0, 0);
  EXPECT_FAIL(p, good_lb, PIX, p, "truncated", "76 bytes", "found 69");
  p = tmp_path("trunc-images.gz");
  make_images(p, N, ROWS, COLS, 7, 0, 0, 1);
  EXPECT_FAIL(p, good_lb, PIX, p, "truncated", "76 bytes", "found 69", "uncompressed");
  p = tmp_path("trunc-header");
  make_images(p, 0, 0, 0, 6, 0, 0, 0);
  EXPECT_FAIL(p, good_lb, PIX, p, "truncated");
  p = tmp_path("long-images");
  make_images(p, N, ROWS, COLS, 0, 3, 0, 0);
  EXPECT_FAIL(p, good_lb, PIX, p, "too long", "76 bytes", "found 79");

  /* Dims whose product overflows 64 bits. */
  unsigned char huge[16];
  be32(huge, 0x00000803);
  be32(huge + 4, 0xFFFFFFFF), be32(huge + 8, 0xFFFFFFFF), be32(huge + 12, 0xFFFFFFFF);
  p = tmp_path("huge-images");
  write_bytes(p, huge, sizeof huge);
  EXPECT_FAIL(p, good_lb, PIX, p, "too large");
  be32(huge + 4, 0x7FFFFFFF), be32(huge + 8, 1), be32(huge + 12, PIX);
  write_bytes(p, huge, sizeof huge); /* a header promising 25 GB, and no data */
  EXPECT_FAIL(p, tmp_path("huge-labels"), PIX, "cannot open"); /* headers come first */
  unsigned char lab[8];
  be32(lab, 0x00000801), be32(lab + 4, 0x7FFFFFFF);
  write_bytes(tmp_path("huge-labels"), lab, sizeof lab);
  EXPECT_FAIL(p, tmp_path("huge-labels"), PIX, p, "truncated", "25769803780 bytes", "found 16");

  p = tmp_path("magic-images");
  make_images(p, N, ROWS, COLS, 0, 0, 0x12345678, 0);
  EXPECT_FAIL(p, good_lb, PIX, p, "bad magic 0x12345678", "0x00000803");
  p = tmp_path("float-images");
  make_images(p, N, ROWS, COLS, 0, 0, 0x00000D03, 0);
  EXPECT_FAIL(p, good_lb, PIX, p, "0x0D");
  /* Swapped arguments: a labels file where images are expected and back. */
  EXPECT_FAIL(good_lb, good_im, PIX, good_lb, "bad magic 0x00000801");

  p = tmp_path("short-labels");
  make_labels(p, N - 1, -1, 0);
  EXPECT_FAIL(good_im, p, PIX, "5 samples", "4 labels", p);
  EXPECT_FAIL(good_im, good_lb, 100, good_im, "3x4 = 12 values per sample", "needs 100");
  p = tmp_path("bad-labels");
  make_labels(p, N, 2, 0);
  EXPECT_FAIL(good_im, p, PIX, p, "label 10", "index 2", "10 classes");

  p = tmp_path("no-such-file");
  EXPECT_FAIL(p, good_lb, PIX, "cannot open", p, "No such file");
  EXPECT_FAIL(good_im, p, PIX, "cannot open", p, "No such file");

  /* A gzip stream with its body corrupted: zlib's error comes through. */
  p = tmp_path("corrupt.gz");
  make_images(p, N, ROWS, COLS, 0, 0, 0, 1);
  FILE *f = fopen(p, "r+b");
  fseek(f, 12, SEEK_SET);
  fwrite("\xff\xff\xff\xff\xff\xff", 1, 6, f);
  fclose(f);
  EXPECT_FAIL(p, good_lb, PIX, p);
}

int main(void) {
  make_tmpdir("rt_idx");
  check_round_trip(0);
  check_round_trip(1);
  check_large();
  check_errors();
  return finish("runtime_io_idx");
}
