/* The embedding API of a model without a label (ae.h): load a checkpoint
 * and reconstruct one fixed row, printed as `predict` does. */
#include <stdio.h>
#include <stdlib.h>
#include "ae.h"

int main(int argc, char **argv) {
  char err[512];
  if (argc < 2) return 2;
  ae_model *m = ae_new(2, err, sizeof err);
  if (!m || ae_load(m, argv[1], err, sizeof err) != 0) {
    fprintf(stderr, "embed: %s\n", err);
    ae_free(m);
    return 1;
  }
  dl_real x[AE_INPUT_SIZE], out[AE_OUTPUT_SIZE];
  /* the row 0,10,...,60,0,10,... as the trainer scales it (scale = 1/255) */
  for (int k = 0; k < AE_INPUT_SIZE; k++) x[k] = (dl_real)((double)(k % 7 * 10) * (1.0 / 255));
  if (ae_predict(m, x, 1, out) != 0) return 1;
  for (int k = 0; k < AE_OUTPUT_SIZE; k++) printf("%s%.6g", k ? "," : "", (double)out[k]);
  printf("\n");
  ae_free(m);
  return 0;
}
