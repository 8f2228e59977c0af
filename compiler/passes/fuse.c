/* fuse.c: decides which ops are computed inside another op's kernel.
 *   dense -> activation:       the activation is the GEMM's epilogue (with the bias)
 *   conv_out -> activation:    applied in conv_out's transpose pass (with the bias)
 *   activation grad -> db:     the activation's derivative and the bias gradient
 *                              share one pass over dy
 * Both need the second op to run in place on the first one's buffer (memplan
 * decided that) and to come right after it, so nothing reads in between. */
#include "passes.h"

static int epilogue_act(ir_op op) {
  return op == OP_RELU || op == OP_LEAKY_RELU || op == OP_SIGMOID || op == OP_TANH;
}

void fuse(ir_graph *g) {
  for (int id = 0; id + 1 < g->nnodes; id++) {
    ir_node *a = &g->nodes[id], *b = &g->nodes[id + 1];
    if (a->fused || b->in[0] != id || b->group != a->group) continue;
    if ((a->op == OP_DENSE || a->op == OP_CONV_OUT) && epilogue_act(b->op) && b->storage == STORE_ALIAS &&
        b->alias_of == id) {
      a->i[1] = b->id + 1;
      b->fused = 1;
    } else if (a->op == OP_ACT_GRAD && b->op == OP_DENSE_DB && a->i[0] != OP_GELU) {
      a->i[1] = 1;
      a->fused = 1;
    }
  }
}
