/* fuzz_idx.c: dl_load_idx on an images file and a labels file.
 *
 * Input layout (gen_corpus.c writes seeds in it):
 *   byte 0     flags: bit 0 gzip the images file, bit 1 gzip the labels file
 *   byte 1     x_size - 1 (the model's input elements per sample)
 *   byte 2     n_classes - 1
 *   bytes 3-4  length of the images file (little-endian; clamped)
 *   rest       the images file, then the labels file
 * With the gzip bits clear the bytes are written as they are (so a fuzzed
 * gzip stream is read too); with them set the harness compresses them first,
 * so the loader also sees well-formed gzip around fuzzed IDX contents. */
#include <zlib.h>

#include "data.h"
#include "fuzz_util.h"

enum { HEAD = 5 };

static fuzz_file images, labels;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_file_open(&images, "images");
  fuzz_file_open(&labels, "labels");
  return 0;
}

/* Writes data to f, gzip-compressed when gz. */
static void put(fuzz_file *f, const uint8_t *data, size_t n, int gz) {
  if (!gz) {
    fuzz_file_set(f, data, n);
    return;
  }
  z_stream z = {0};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  uLong cap = deflateBound(&z, (uLong)n);
  uint8_t *buf = malloc(cap);
  if (!buf) abort();
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)n;
  z.next_out = buf;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  fuzz_file_set(f, buf, z.total_out);
  deflateEnd(&z);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD || size > (1 << 20)) return 0;
  int flags = data[0];
  int64_t x_size = data[1] + 1, n_classes = data[2] + 1;
  size_t rest = size - HEAD, n_images = fuzz_u16(data + 3);
  if (n_images > rest) n_images = rest;
  put(&images, data + HEAD, n_images, flags & 1);
  put(&labels, data + HEAD + n_images, rest - n_images, flags & 2);

  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_idx(&d, images.path, labels.path, 1.0 / 255, x_size, n_classes, err, sizeof err);
  fuzz_say("dl_load_idx", rc, err);
  if (rc == 0) {
    /* Every row and label must be readable: gather the first and last rows. */
    if (d.n < 1 || d.x_size != x_size || d.y_size != n_classes || !d.x_u8 || !d.y_class) abort();
    int64_t idx[2] = {0, d.n - 1};
    dl_real *x = malloc(2 * (size_t)x_size * sizeof *x);
    int32_t y[2];
    if (!x) abort();
    dl_dataset_gather(&d, idx, 2, x, y, NULL);
    for (int i = 0; i < 2; i++)
      if (y[i] < 0 || y[i] >= n_classes) abort();
    free(x);
    dl_dataset_free(&d);
  } else if (!err[0]) {
    abort(); /* a failure must come with a message */
  }
  return 0;
}
