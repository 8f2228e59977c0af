/* trainer_export.c: the `export` command: a checkpoint's inference graph as
 * an ONNX file (onnx.c).  The model is refused before anything is read when
 * one of its ops has no ONNX mapping (the compiler's message names the op
 * and its .dln line), and the target is checked before the checkpoint is
 * loaded, so a bad --onnx costs nothing and never leaves a broken file. */
#include "atomic_file.h"
#include "onnx.h"
#include "trainer_internal.h"

#include <stdio.h>
#include <sys/stat.h>

/* 1 if a and b name one existing file (links followed). */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int dl_tr_cmd_export(const dl_model_desc *m, const dl_opts *o) {
  char err[1024];
  if (dl_onnx_refusal(m, err, sizeof err)) {
    fprintf(stderr, "%s\nerror: export: model '%s' cannot be written as ONNX; nothing was written\n",
            err, m->name);
    return DL_EXIT_FAIL;
  }
  if (same_file(o->onnx, o->load)) {
    fprintf(stderr, "error: --onnx %s is the checkpoint --load reads; it would be replaced\n",
            o->onnx);
    return DL_EXIT_FAIL;
  }
  if (dl_af_check(o->onnx, err, sizeof err)) {
    fprintf(stderr, "error: --onnx %s: %s\n", o->onnx, err);
    return DL_EXIT_FAIL;
  }
  dl_ctx *ctx = dl_tr_open_loaded(m, o, 1);
  if (!ctx) return DL_EXIT_FAIL;
  int rc = dl_onnx_save(ctx, o->onnx, err, sizeof err);
  dl_tr_ctx_close(ctx);
  if (rc) {
    fprintf(stderr, "error: export: %s\n", err);
    return DL_EXIT_FAIL;
  }
  fprintf(stderr, "exported %s to %s (ONNX opset 17, float32)\n", o->load, o->onnx);
  return DL_EXIT_OK;
}
