/* Embeds a generated model through its API (dropout_regression.h): loads a
 * checkpoint and predicts rows given on the command line, one per line, in
 * the format the trainer's `predict` prints, so the test can compare them. */
#include <stdio.h>
#include <stdlib.h>
#include "dropout_regression.h"

int main(int argc, char **argv) {
  char err[512];
  if (argc < 2) return 2;
  dropout_regression_model *m = dropout_regression_new(4, err, sizeof err);
  if (!m || dropout_regression_load(m, argv[1], err, sizeof err) != 0) {
    fprintf(stderr, "embed: %s\n", err);
    dropout_regression_free(m);
    return 1;
  }
  dl_real x[2 * DROPOUT_REGRESSION_INPUT_SIZE] = {0.1f, 0.2f, 0.3f, 0.4f, -1, 0, 1, 0.5f};
  dl_real out[2 * DROPOUT_REGRESSION_OUTPUT_SIZE];
  if (dropout_regression_predict(m, x, 2, out) != 0) return 1;
  for (int r = 0; r < 2; r++) printf("%.9g\n", (double)out[r]);
  dropout_regression_free(m);
  return 0;
}
