/* inspect.h: `dlnc summary` and `dlnc graph` (inspect.c). */
#ifndef DLNC_INSPECT_H
#define DLNC_INSPECT_H
#include <stdio.h>
#include "ir.h"

/* A Keras-style table of a planned graph's bindings, parameters and memory
 * (f64: sizes in doubles). */
void inspect_summary(const ir_graph *g, int f64, FILE *out);
/* The graph as Graphviz DOT; backward: with the gradient ops. */
void inspect_graph(const ir_graph *g, int backward, FILE *out);
#endif
