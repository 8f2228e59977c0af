/* pipeline.h: the stages of dlnc, end to end, for the driver. */
#ifndef DLNC_PIPELINE_H
#define DLNC_PIPELINE_H
#include <stdio.h>
#include "ir.h"

/* Reads, parses and checks FILE; NULL if it could not be read or had errors
 * (reported through diag).  With `plan`, also differentiates, plans memory
 * and fuses, ready for emission.  With ast_out, the syntax tree is dumped
 * there (dlnc check --ast). */
ir_graph *pipeline_compile(const char *path, int plan, FILE *ast_out);
/* Emits and compiles a trainer executable at `out` (`in`: the model's
 * source, which out must not be). 0, or -1 after a message. */
int pipeline_build(ir_graph *g, const char *in, const char *out, int debug, int f64, int verbose);
/* 0 if `dlnc emit` may write NAME.c, NAME.h and NAME_main.c into dir: none
 * of them is the source `in`, a directory or another non-regular file. */
int pipeline_check_emit(const char *dir, const char *name, const char *in);
#endif
