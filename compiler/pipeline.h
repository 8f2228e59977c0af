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
#endif
