/* emit.h: C emission from the planned IR (see emit_c.c). */
#ifndef DLNC_EMIT_H
#define DLNC_EMIT_H
#include "ir.h"
/* Writes DIR/NAME.c, DIR/NAME.h and DIR/NAME_main.c; 0, or -1 after a message. */
int emit_c(ir_graph *g, const char *dir, int f64);
#endif
