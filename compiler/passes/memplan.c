/* memplan.c: one statically planned arena.
 *
 * The state block holds, per parameter: its values, its gradient and its
 * optimiser state; then the buffers (running statistics); its size is
 * fixed.  The activation block holds every other value.  A value whose only
 * reader is an elementwise op may be overwritten by it (in place);
 * otherwise values get offsets by first fit over their
 * live ranges in schedule order (node id order is the execution order: the
 * forward groups in order, then the backward groups in reverse).  Batched
 * values are planned in per-sample units, so the same plan serves any batch
 * size chosen at run time: the byte offset is per-sample offset x capacity. */
#include "passes.h"
#include <stdlib.h>
#include <string.h>

enum { ALIGN = 16 }; /* elements: 64 bytes in f32 for any capacity */

static size_t align_up(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

int optim_state_count(const ir_optim *o, const char **names); /* ops/optim.c */

static void plan_state(ir_graph *g) {
  size_t off = 0;
  for (int p = 0; p < g->nparams; p++) {
    g->params[p].offset = off;
    off = align_up(off + (size_t)g->params[p].numel);
  }
  for (int p = 0; p < g->nparams; p++) {
    g->params[p].grad_offset = off;
    off = align_up(off + (size_t)g->params[p].numel);
  }
  const char *names[3];
  int nstate = optim_state_count(&g->train.optim, names);
  for (int s = 0; s < nstate; s++)
    for (int p = 0; p < g->nparams; p++) {
      g->params[p].opt_offset[s] = off;
      off = align_up(off + (size_t)g->params[p].numel);
    }
  /* buffers last; a count is an int64, in the room of two floats (or a double) */
  for (int b = 0; b < g->nbuffers; b++) {
    ir_buffer *bf = &g->buffers[b];
    bf->offset = off;
    g->nodes[bf->node].offset = off;
    off = align_up(off + (size_t)(bf->is_count ? 2 : bf->numel));
  }
  g->state_elems = off;
  for (int p = 0; p < g->nparams; p++) {
    ir_node *pn = &g->nodes[g->params[p].node];
    pn->offset = g->params[p].offset;
    if (g->params[p].grad >= 0) {
      ir_node *gn = &g->nodes[g->params[p].grad];
      gn->storage = STORE_STATE;
      gn->offset = g->params[p].grad_offset;
    }
  }
}

static int in_place_op(ir_op op) {
  switch (op) {
  case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH: case OP_GELU:
  case OP_SCALE: case OP_DROPOUT: case OP_COPY: case OP_ACT_GRAD: case OP_DROPOUT_GRAD:
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_ADDN:
    return 1;
  default:
    return 0;
  }
}

static int root_of(const ir_graph *g, int id) {
  while (g->nodes[id].storage == STORE_ALIAS) id = g->nodes[id].alias_of;
  return id;
}

/* In place when the input is an activation buffer read by nothing else. */
static void plan_aliases(ir_graph *g, const int *consumers) {
  for (int id = 0; id < g->nnodes; id++) {
    ir_node *n = &g->nodes[id];
    if (n->storage != STORE_NONE) continue;
    n->storage = STORE_ACT; /* unless it can work in place: */
    if (n->nin == 0) continue;
    int in = n->in[0];
    ir_node *x = &g->nodes[in];
    int root = root_of(g, in);
    if (consumers[in] != 1 || g->nodes[root].storage != STORE_ACT) continue;
    if (x->batched != n->batched || ir_numel(x) != ir_numel(n)) continue;
    if (n->op == OP_MUL && n->in[1] == in) continue;
    n->storage = STORE_ALIAS;
    n->alias_of = in;
  }
}

typedef struct block {
  size_t off, size;
  int start, end;
} block;

/* Lowest offset where [off, off+size) is free over [start, end]. */
static size_t first_fit(const block *b, int nb, size_t size, int start, int end) {
  size_t off = 0;
  for (int moved = 1; moved;) {
    moved = 0;
    for (int k = 0; k < nb; k++) {
      if (b[k].end < start || b[k].start > end) continue;
      if (off < b[k].off + b[k].size && b[k].off < off + size) {
        off = align_up(b[k].off + b[k].size);
        moved = 1;
      }
    }
  }
  return off;
}

int memplan(ir_graph *g) {
  int n = g->nnodes;
  int *consumers = calloc((size_t)n, sizeof(int));
  int *end = malloc((size_t)n * sizeof(int)), *start = malloc((size_t)n * sizeof(int));
  block *blocks = malloc((size_t)n * sizeof(block));
  if (!consumers || !end || !start || !blocks) {
    free(consumers);
    free(end);
    free(start);
    free(blocks);
    return -1;
  }
  plan_state(g);
  for (int id = 0; id < n; id++) {
    ir_node *x = &g->nodes[id];
    end[id] = id;
    start[id] = id;
    x->pos = id;
    for (int k = 0; k < x->nin; k++) {
      consumers[x->in[k]]++;
      end[x->in[k]] = id;
    }
  }
  for (int id = 0; id < n; id++) {
    ir_node *x = &g->nodes[id];
    if (x->storage == STORE_NONE && !in_place_op(x->op)) x->storage = STORE_ACT;
  }
  plan_aliases(g, consumers);
  /* a per-sample chain (fuse.c) interleaves its nodes sample by sample:
   * everything it reads or writes is live from its first node to its last */
  for (int id = 0; id < n; id++) {
    int len = fuse_chain_length(g, id), last = id + len - 1;
    for (int k = id; len > 1 && k <= last; k++) {
      start[k] = id;
      if (end[k] < last) end[k] = last;
      for (int j = 0; j < g->nodes[k].nin; j++)
        if (end[g->nodes[k].in[j]] < last) end[g->nodes[k].in[j]] = last;
    }
    id = last;
  }
  /* a recurrent layer's carried state outlives the step: nothing else may use its room */
  for (int id = 0; id < n; id++)
    if (g->nodes[id].op == OP_RNN_CARRY) {
      start[id] = 0;
      end[id] = n;
    }
  /* a buffer lives until the last reader of any value computed in it */
  for (int id = n - 1; id >= 0; id--) {
    if (g->nodes[id].storage == STORE_ALIAS) {
      int r = root_of(g, id);
      if (end[id] > end[r]) end[r] = end[id];
    }
  }
  int nb = 0;
  size_t batched_top = 0, fixed_top = 0;
  for (int pass = 0; pass < 2; pass++) {
    nb = 0;
    for (int id = 0; id < n; id++) {
      ir_node *x = &g->nodes[id];
      if (x->storage != STORE_ACT || x->batched != (pass == 0)) continue;
      size_t size = (size_t)ir_numel(x);
      /* scalars and other unbatched values are small: keep them all live */
      int last = pass == 0 ? end[id] : n;
      x->offset = first_fit(blocks, nb, size, start[id], last);
      blocks[nb++] = (block){x->offset, size, start[id], last};
      size_t top = align_up(x->offset + size);
      if (pass == 0 && top > batched_top) batched_top = top;
      if (pass == 1 && top > fixed_top) fixed_top = top;
    }
  }
  for (int id = 0; id < n; id++) g->nodes[id].last_use = end[id];
  g->act_per_sample = batched_top;
  g->act_fixed = fixed_top;
  free(consumers);
  free(end);
  free(start);
  free(blocks);
  return 0;
}
