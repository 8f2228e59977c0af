/* fuse.c: decides which ops are computed inside another op's kernel.
 *   dense -> activation:       the activation is the GEMM's epilogue (with the bias)
 *   conv_out -> activation:    applied in conv_out's transpose pass (with the bias)
 *   norm -> activation:        applied in the normalising pass
 *   activation grad -> db:     the activation's derivative and the bias gradient
 *                              share one pass over dy
 *   maxpool grad -> act grad:  act' applied where the pool routes dy
 * Both need the second op to run in place on the first one's buffer (memplan
 * decided that) and to come right after it, so nothing reads in between.
 * Then per-sample chains, one job over the batch instead of one per op:
 *   im2col -> conv2d -> conv_out   each sample's columns, product and NCHW
 *                                  output while they are in cache
 *   conv2d_dcol -> col2im          each sample's column gradient, then its
 *                                  scatter back into dx
 * (i[9] of the chain's head says so; conv.c emits the chain.) */
#include "passes.h"

static int epilogue_act(ir_op op) {
  return op == OP_RELU || op == OP_LEAKY_RELU || op == OP_SIGMOID || op == OP_TANH;
}

int fuse_chain_length(const ir_graph *g, int id) {
  const ir_node *a = &g->nodes[id];
  if (id + 1 >= g->nnodes) return 1;
  const ir_node *b = a + 1;
  if (b->in[0] != id || b->group != a->group) return 1;
  if (a->op == OP_IM2COL && b->op == OP_CONV2D && id + 2 < g->nnodes) {
    const ir_node *c = a + 2;
    return c->op == OP_CONV_OUT && c->in[0] == id + 1 && c->group == a->group ? 3 : 1;
  }
  return a->op == OP_CONV2D_DCOL && b->op == OP_COL2IM ? 2 : 1;
}

void fuse(ir_graph *g) {
  for (int id = 0; id + 1 < g->nnodes; id++) {
    ir_node *a = &g->nodes[id], *b = &g->nodes[id + 1];
    if (a->fused || b->in[0] != id || b->group != a->group) continue;
    if ((a->op == OP_DENSE || a->op == OP_CONV_OUT || a->op == OP_NORM) && epilogue_act(b->op) &&
        b->storage == STORE_ALIAS &&
        b->alias_of == id) {
      a->i[1] = b->id + 1;
      b->fused = 1;
    } else if (a->op == OP_MAXPOOL_GRAD && b->op == OP_ACT_GRAD && b->in[1] == a->in[1] &&
               b->storage == STORE_ALIAS && b->alias_of == id) {
      /* the pool's input is the activation's output: dx is zero but at each
       * window's maximum, where act' of that same value multiplies dy */
      a->i[10] = b->id + 1;
      b->fused = 1;
    } else if (a->op == OP_ACT_GRAD && b->op == OP_DENSE_DB && a->i[0] != OP_GELU) {
      a->i[1] = 1;
      a->fused = 1;
    }
  }
  for (int id = 0; id < g->nnodes; id++) {
    int len = fuse_chain_length(g, id);
    if (len == 1) continue;
    g->nodes[id].i[9] = 1;
    for (int k = 1; k < len; k++) g->nodes[id + k].fused = 1;
    id += len - 1;
  }
}
