/* fuse.c: decides which ops are computed inside another op's kernel.  What
 * may fuse is a property of each op (its OPF_* flags in ir/ops.def):
 * an epilogue host followed by an epilogue activation,
 *   dense -> activation:       the activation is the GEMM's epilogue (with the bias)
 *   conv_out -> activation:    applied in conv_out's transpose pass (with the bias)
 *   norm -> activation:        applied in the normalising pass
 *   activation grad -> db:     the activation's derivative and the bias gradient
 *                              share one pass over dy
 *   maxpool grad -> act grad:  act' applied where the pool routes dy
 * Both need the second op to run in place on the first one's buffer (memplan
 * decided that) and to come right after it, so nothing reads in between.
 * Then per-sample chains (OPF_CHAIN_*), one job over the batch instead of one per op:
 *   conv_pad -> conv2d -> conv_out [-> act] [-> pool]
 *                                  each sample's padded image, product,
 *                                  output and its pooling while they are in
 *                                  cache (without conv_out: a convolution's
 *                                  input gradient)
 *   conv2d_dcol -> col2im          each sample's column gradient, then its
 *                                  scatter back into dx
 * (the head's `chain` says so; conv.c emits the chain.)  Each fusion is an
 * edge of ir_node (fused_in, epilogue), never an attribute slot of the op. */
#include "passes.h"

/* Whether node id + 1 continues a chain whose previous node is id. */
static int chain_next(const ir_graph *g, int id, unsigned flag) {
  const ir_node *a = &g->nodes[id], *b = a + 1;
  return id + 1 < g->nnodes && ir_op_has(b->op, flag) && b->in[0] == id && b->group == a->group;
}

/* Whether node id + 1 is an activation that fuse() makes id's epilogue: it
 * runs in place on id's buffer (memplan decided that) right after it. */
static int epilogue_next(const ir_graph *g, int id) {
  const ir_node *a = &g->nodes[id], *b = a + 1;
  return id + 1 < g->nnodes && ir_op_has(a->op, OPF_EPILOGUE_HOST) &&
         ir_op_has(b->op, OPF_EPILOGUE_ACT) && b->in[0] == id && b->group == a->group &&
         b->storage == STORE_ALIAS && b->alias_of == id;
}

/* A head, any links and an end, each reading the one before (the OPF_CHAIN_*
 * flags); a link that may also end a chain ends it when no end follows:
 * conv_pad -> conv2d -> conv_out, conv_pad -> conv2d (a transposed
 * convolution: dx) and conv2d_dcol -> col2im; then, when the end's
 * epilogue activation follows it, a tail reading that (a pool):
 * conv_pad -> conv2d -> conv_out [-> relu] -> maxpool. */
int fuse_chain_length(const ir_graph *g, int id) {
  if (!ir_op_has(g->nodes[id].op, OPF_CHAIN_HEAD)) return 1;
  int last = id;
  while (chain_next(g, last, OPF_CHAIN_LINK)) last++;
  if (!chain_next(g, last, OPF_CHAIN_END))
    return last > id && ir_op_has(g->nodes[last].op, OPF_CHAIN_END) ? last + 1 - id : 1;
  int end = last + 1;
  return epilogue_next(g, end) && chain_next(g, end + 1, OPF_CHAIN_TAIL) ? end + 3 - id
                                                                         : end + 1 - id;
}

int fuse(ir_graph *g) {
  for (int id = 0; id + 1 < g->nnodes; id++) {
    ir_node *a = &g->nodes[id], *b = &g->nodes[id + 1];
    if (a->fused_in >= 0 || b->in[0] != id || b->group != a->group) continue;
    if (ir_op_has(a->op, OPF_EPILOGUE_HOST) && ir_op_has(b->op, OPF_EPILOGUE_ACT) &&
        b->storage == STORE_ALIAS &&
        b->alias_of == id) {
      a->epilogue = b->id;
      b->fused_in = id;
    } else if (a->op == OP_MAXPOOL_GRAD && b->op == OP_ACT_GRAD && b->in[1] == a->in[1] &&
               b->storage == STORE_ALIAS && b->alias_of == id) {
      /* the pool's input is the activation's output: dx is zero but at each
       * window's maximum, where act' of that same value multiplies dy */
      a->epilogue = b->id;
      b->fused_in = id;
    } else if (a->op == OP_ACT_GRAD && b->op == OP_DENSE_DB && ir_op_has(a->act.fwd, OPF_EPILOGUE_ACT)) {
      a->fused_in = b->id;
    }
  }
  for (int id = 0; id < g->nnodes; id++) {
    int len = fuse_chain_length(g, id);
    if (len == 1) continue;
    g->nodes[id].chain = len;
    /* every member but an epilogue, which stays fused into its host */
    for (int k = 1; k < len; k++)
      if (g->nodes[id + k].fused_in < 0) g->nodes[id + k].fused_in = id;
    id += len - 1;
  }
  return ir_verify(g);
}
