/* fuzz_safetensors.c: the input is a safetensors file.  dl_st_read parses
 * and validates it, and every tensor it hands out is read in full; then
 * dl_ctx_load loads it as a checkpoint of the fixed model in fuzz_model.h,
 * once as `train --resume` does and once params-only as `eval` does. */
#include <string.h>

#include "fuzz_model.h"
#include "fuzz_util.h"
#include "safetensors.h"

static fuzz_file file;
static volatile unsigned sink; /* keeps the reads of tensor bytes */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_file_open(&file, "st");
  return 0;
}

/* Reads every byte a tensor claims, and checks lookups agree with it. */
static unsigned touch(const dl_st_file *f, const dl_st_tensor *t) {
  uint64_t numel = 1;
  for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
  const unsigned char *p = t->data;
  unsigned sum = 0;
  for (uint64_t i = 0; i < numel * dl_st_dtype_size(t->dtype); i++) sum += p[i];
  const dl_st_tensor *same = dl_st_find(f, t->name);
  if (!same || strcmp(same->name, t->name) != 0) abort();
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_file_set(&file, data, size);
  char err[512] = "";
  dl_st_file *f = dl_st_read(file.path, err, sizeof err);
  fuzz_say("dl_st_read", f ? 0 : -1, err);
  if (f) {
    for (int i = 0; i < dl_st_count(f); i++) sink += touch(f, dl_st_get(f, i));
    const char *keys[] = {"format", "model", "dtype", "epoch", "step", "seed"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
      const char *v = dl_st_meta_get(f, keys[k]);
      if (v) sink += (unsigned)strlen(v);
    }
    dl_st_close(f);
  } else if (!err[0]) {
    abort(); /* a failure must come with a message */
  }

  static dl_real state[STATE];
  dl_ctx ctx = {.m = &fuzz_model, .state = state};
  for (int params_only = 0; params_only < 2; params_only++) {
    int64_t epoch = -1;
    err[0] = 0;
    int rc = dl_ctx_load(&ctx, file.path, params_only, &epoch, err, sizeof err);
    fuzz_say(params_only ? "dl_ctx_load params_only" : "dl_ctx_load", rc, err);
    if (rc == 0) {
      if (!params_only && epoch < 0) abort(); /* a resumable checkpoint has counters */
    } else if (!err[0]) {
      abort();
    }
  }
  return 0;
}
