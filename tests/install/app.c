/* app.c: an embedding program built against the installed runtime
 * (tests/install/install.sh): loads the XOR checkpoint, prints the four
 * probabilities. */
#include <stdio.h>
#include "xor.h"

int main(int argc, char **argv) {
  char err[256];
  if (argc != 2) return 2;
  xor_model *m = xor_new(4, err, sizeof err);
  if (!m || xor_load(m, argv[1], err, sizeof err)) {
    fprintf(stderr, "app: %s\n", err);
    return 1;
  }
  const dl_real x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
  dl_real out[4];
  if (xor_predict(m, x, 4, out)) return 1;
  for (int i = 0; i < 4; i++) printf("%.6g\n", (double)out[i]);
  xor_free(m);
  return 0;
}
