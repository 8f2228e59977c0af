/* autodiff.c: reverse-mode differentiation as a pass over the graph.
 *
 * Walks the forward nodes from the loss back to the parameters, asks each
 * op's backward rule (compiler/ops/) for the nodes that compute its inputs'
 * gradients, and sums several contributions to one value with an ADDN
 * node.  Backward nodes are appended to the same graph, in the group of the
 * forward node they differentiate, so the scheduler can emit one backward
 * function per layer.  Nothing here knows about any particular model. */
#include "autodiff.h"
#include <stdlib.h>
#include <string.h>

struct ad_ctx {
  ir_graph *g;
  int nforward;
  int *ncontrib, *capcontrib, **lists; /* per forward value: its gradient contributions */
  char *wants;       /* value depends on a parameter                            */
  int group;         /* group of the node being differentiated                  */
};

ir_graph *ad_graph(ad_ctx *ad) { return ad->g; }

int ad_wants(ad_ctx *ad, int value) { return value < ad->nforward && ad->wants[value]; }

int ad_node(ad_ctx *ad, ir_op op, const int *in, int nin, int like, int group) {
  int id = ir_add(ad->g, op, in, nin, group < 0 ? ad->group : group, ad->g->nodes[like].loc);
  ir_node *n = &ad->g->nodes[id];
  ir_copy_shape(n, &ad->g->nodes[like]);
  n->backward = 1;
  n->name = ad->g->nodes[like].name;
  return id;
}

void ad_accumulate(ad_ctx *ad, int value, int grad) {
  if (!ad_wants(ad, value)) return;
  if (ad->ncontrib[value] == ad->capcontrib[value]) {
    ad->capcontrib[value] = ad->capcontrib[value] ? 2 * ad->capcontrib[value] : 2;
    ad->lists[value] = realloc(ad->lists[value], (size_t)ad->capcontrib[value] * sizeof(int));
    if (!ad->lists[value]) {
      fprintf(stderr, "dlnc: out of memory\n");
      exit(1);
    }
  }
  ad->lists[value][ad->ncontrib[value]++] = grad;
}

/* The gradient of `value`: its single contribution, or the sum of several. */
static int total_grad(ad_ctx *ad, int value) {
  int n = ad->ncontrib[value];
  if (n == 0) return -1;
  if (n == 1) return ad->lists[value][0];
  /* ADDN takes at most IR_MAX_IN inputs: chain when there are more */
  int acc = ad->lists[value][0], k = 1;
  while (k < n) {
    int in[IR_MAX_IN], m = 0;
    in[m++] = acc;
    while (k < n && m < IR_MAX_IN) in[m++] = ad->lists[value][k++];
    acc = ad_node(ad, OP_ADDN, in, m, value, -1);
  }
  return acc;
}

/* wants[v]: some parameter is upstream of v, so d loss / d v is needed; a
 * stop-gradient op (detach, a constant) cuts the chain.  With updates only
 * update upd's parameters count: its step computes no other gradient, yet
 * a gradient still flows through the other parameters' layers (the
 * generator's step through the discriminator). */
static void mark_wants(ad_ctx *ad, int upd) {
  ir_graph *g = ad->g;
  for (int id = 0; id < ad->nforward; id++) {
    ir_node *n = &g->nodes[id];
    ad->wants[id] = n->op == OP_PARAM && (upd < 0 || g->params[n->leaf.index].update == upd);
    if (ir_op_has(n->op, OPF_STOP_GRAD)) continue;
    for (int k = 0; k < n->nin; k++)
      if (ad->wants[n->in[k]]) ad->wants[id] = 1;
  }
}

/* Appends the backward nodes of d root / d (the wanted values). */
static void differentiate(ad_ctx *ad, int root) {
  ir_graph *g = ad->g;
  ad->group = g->nodes[root].group;
  int seed = ad_node(ad, OP_GRAD_SEED, NULL, 0, root, -1);
  ad_accumulate(ad, root, seed);
  for (int id = ad->nforward - 1; id >= 0; id--) {
    ad->group = g->nodes[id].group;
    int dy = total_grad(ad, id);
    if (dy < 0) continue;
    const ir_node *n = &g->nodes[id];
    if (n->op == OP_PARAM) {
      g->params[n->leaf.index].grad = dy;
      continue;
    }
    const op_info *info = op_info_of(n->op);
    if (info->backward) info->backward(ad, id, dy);
  }
}

int autodiff(ir_graph *g) {
  ad_ctx ad = {0};
  ad.g = g;
  ad.nforward = g->nnodes;
  int nf = g->nnodes;
  ad.wants = calloc((size_t)nf, 1);
  ad.ncontrib = calloc((size_t)nf, sizeof(int));
  ad.capcontrib = calloc((size_t)nf, sizeof(int));
  ad.lists = calloc((size_t)nf, sizeof(int *));
  if (!ad.wants || !ad.ncontrib || !ad.capcontrib || !ad.lists) {
    fprintf(stderr, "dlnc: out of memory\n");
    exit(1);
  }
  if (!g->nupdates) {
    mark_wants(&ad, -1);
    differentiate(&ad, g->total_loss);
  }
  /* each update once, its backward nodes marked with it (emit_c.c writes
     one backward function per update and line) */
  for (int k = 0; k < g->nupdates; k++) {
    int first = g->nnodes;
    memset(ad.ncontrib, 0, (size_t)nf * sizeof(int));
    mark_wants(&ad, k);
    differentiate(&ad, g->updates[k].total_loss);
    for (int id = first; id < g->nnodes; id++) g->nodes[id].update = k;
  }
  for (int i = 0; i < nf; i++) free(ad.lists[i]);
  free(ad.lists);
  free(ad.ncontrib);
  free(ad.capcontrib);
  free(ad.wants);
  return ir_verify(g);
}
