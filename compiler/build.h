/* build.h: `dlnc build` and `dlnc emit`'s output checks (build.c). */
#ifndef DLNC_BUILD_H
#define DLNC_BUILD_H
#include "ir.h"

/* Emits and compiles a trainer executable at `out` (`in`: the model's
 * source, which out must not be). 0, or -1 after a message. */
int build_trainer(ir_graph *g, const char *in, const char *out, int debug, int f64, int verbose);
/* 0 if `dlnc emit` may write NAME.c, NAME.h and NAME_main.c into dir: none
 * of them is the source `in`, a directory or another non-regular file. */
int build_check_emit(const char *dir, const char *name, const char *in);
#endif
