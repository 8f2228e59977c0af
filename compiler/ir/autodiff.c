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
 * stop-gradient op (detach, a constant) cuts the chain. */
static void mark_wants(ad_ctx *ad) {
  ir_graph *g = ad->g;
  for (int id = 0; id < ad->nforward; id++) {
    ir_node *n = &g->nodes[id];
    ad->wants[id] = n->op == OP_PARAM;
    if (ir_op_has(n->op, OPF_STOP_GRAD)) continue;
    for (int k = 0; k < n->nin; k++)
      if (ad->wants[n->in[k]]) ad->wants[id] = 1;
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
  mark_wants(&ad);
  int root = g->total_loss;
  ad.group = g->nodes[root].group;
  int seed = ad_node(&ad, OP_GRAD_SEED, NULL, 0, root, -1);
  ad_accumulate(&ad, root, seed);
  for (int id = nf - 1; id >= 0; id--) {
    ad.group = g->nodes[id].group;
    int dy = total_grad(&ad, id); /* may add an ADDN: g->nodes may move */
    if (dy < 0) continue;
    ir_node *n = &g->nodes[id];
    if (n->op == OP_PARAM) {
      g->params[n->leaf.index].grad = dy;
      continue;
    }
    const op_info *info = op_info_of(n->op);
    if (info->backward) info->backward(&ad, id, dy);
  }
  for (int i = 0; i < nf; i++) free(ad.lists[i]);
  free(ad.lists);
  free(ad.ncontrib);
  free(ad.capcontrib);
  free(ad.wants);
  return ir_verify(g);
}
