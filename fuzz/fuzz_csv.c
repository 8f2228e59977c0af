/* fuzz_csv.c: dl_load_csv on a CSV file, and dl_parse_csv_row (the
 * `predict` command's row parser) on its first line.
 *
 * Input layout (gen_corpus.c writes seeds in it):
 *   byte 0   flags: bit 0 header row, bit 1 class labels (else real values)
 *   byte 1   x_size - 1 in the low 4 bits, y_size - 1 in the high 4 bits
 *   rest     the CSV file */
#include <float.h>
#include <math.h>
#include <string.h>

#include "data.h"
#include "fuzz_util.h"

enum { HEAD = 2 };

static fuzz_file csv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_file_open(&csv, "csv");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD) return 0;
  int header = data[0] & 1, is_class = (data[0] >> 1) & 1;
  int64_t x_size = (data[1] & 15) + 1, y_size = (data[1] >> 4) + 1;
  const uint8_t *text = data + HEAD;
  size_t len = size - HEAD;

  /* dl_parse_csv_row takes a NUL-terminated line */
  char *line = malloc(len + 1);
  dl_real row[16];
  int64_t bad_col = 0;
  if (!line) abort();
  memcpy(line, text, len);
  line[len] = 0;
  double bad_val = 0;
  int got = dl_parse_csv_row(line, row, x_size, &bad_col, &bad_val);
  if (got < 0 && (bad_col < 1 || bad_col > (int64_t)len + 1)) abort();
  if (got == -2 && !(fabs(bad_val) > FLT_MAX)) abort();
  for (int i = 0; got > 0 && i < got && i < x_size; i++)
    if (!isfinite(row[i]) || row[i] != (dl_real)(float)row[i]) abort();
  free(line);

  fuzz_file_set(&csv, text, len);
  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_csv(&d, csv.path, header, 0.5, x_size, is_class, y_size, err, sizeof err);
  fuzz_say("dl_load_csv", rc, err);
  if (rc == 0) {
    if (d.n < 1 || !d.x_f32 || (is_class ? !d.y_class : !d.y_real)) abort();
    int64_t idx[2] = {0, d.n - 1};
    dl_real x[2 * 16], y_real[2 * 16];
    int32_t y_class[2];
    dl_dataset_gather(&d, idx, 2, x, y_class, y_real);
    if (is_class)
      for (int i = 0; i < 2; i++)
        if (y_class[i] < 0 || y_class[i] >= y_size) abort();
    dl_dataset_free(&d);
  } else if (!err[0]) {
    abort(); /* a failure must come with a message */
  }
  return 0;
}
