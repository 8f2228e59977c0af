/* schedule.c: what each update of a batch computes, for a model with
 * several updates (a GAN's discriminator and generator steps).
 *
 * Each batch runs the updates in order.  Update k runs the forward
 * function of every line (group) its total loss needs that is either not
 * computed yet in this batch or stale: it depends on a parameter that an
 * update since its last computation has changed.  So G(z) is computed once
 * and D(fake) again after D's step, as torch's DCGAN loop does, and batch
 * norm's running statistics move once per forward computation.  Then the
 * update's backward functions run, in reverse line order.  Noise and
 * dropout are keyed on ctx->step, the batch counter, so a recomputation
 * draws what the first computation drew.
 *
 * The order of every node execution this gives (schedule_sequence) is what
 * the memory plan computes liveness on: a value stays live until its last
 * reader in any update.  Groups no update needs (a head no loss reads) run
 * after all of them, in forward() only.
 *
 * Without updates there is one order, the lines' own; only the lines the
 * total loss and the prediction need run in a step (g->loss_runs): a
 * generator's lines (`sample = dec(randn(20))`) run only when sampling. */
#include "schedule.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

/* need[grp]: group grp must run for the roots' values (a total loss, the
 * prediction) and the forward values that update k's backward nodes read
 * (k = -1 without updates), closed over the groups that a needed group's
 * nodes read (a group's function computes all of them).  A leaf (a
 * parameter, the input) makes no group run: a block's weights belong to its
 * first application's line, which the generator's application never needs. */
static void mark_needed(const ir_graph *g, const int *roots, int nroots, int k, unsigned char *need) {
  char *anc = xcalloc((size_t)g->nnodes, 1);
  for (int r = 0; r < nroots; r++)
    if (roots[r] >= 0) anc[roots[r]] = 1;
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = &g->nodes[id];
    if (n->backward && n->update == k)
      for (int j = 0; j < n->nin; j++)
        if (!g->nodes[n->in[j]].backward) anc[n->in[j]] = 1;
  }
  for (int id = g->nnodes - 1; id >= 0; id--)
    if (anc[id] && !g->nodes[id].backward)
      for (int j = 0; j < g->nodes[id].nin; j++) anc[g->nodes[id].in[j]] = 1;
  memset(need, 0, (size_t)g->ngroups);
  for (int id = 0; id < g->nnodes; id++)
    if (anc[id] && !g->nodes[id].backward && !ir_op_has(g->nodes[id].op, OPF_LEAF))
      need[g->nodes[id].group] = 1;
  for (int changed = 1; changed;) {
    changed = 0;
    for (int id = 0; id < g->nnodes; id++) {
      const ir_node *n = &g->nodes[id];
      if (n->backward || !need[n->group] || ir_op_has(n->op, OPF_LEAF)) continue;
      for (int j = 0; j < n->nin; j++) {
        const ir_node *x = &g->nodes[n->in[j]];
        if (!need[x->group] && !ir_op_has(x->op, OPF_LEAF)) need[x->group] = changed = 1;
      }
    }
  }
  free(anc);
}

/* Without updates: the groups compute_grads and forward() run. */
static int schedule_single(ir_graph *g) {
  int roots[] = {g->total_loss, g->loss, g->pred};
  free(g->loss_runs);
  g->loss_runs = xcalloc((size_t)g->ngroups, 1);
  if (g->total_loss < 0 && g->pred < 0) {
    memset(g->loss_runs, 1, (size_t)g->ngroups);  /* nothing to aim at: every line */
    return 0;
  }
  mark_needed(g, roots, 3, -1, g->loss_runs);
  return 0;
}

int schedule_updates(ir_graph *g) {
  if (!g->nupdates) return schedule_single(g);
  int ng = g->ngroups;
  uint32_t *dep = xcalloc((size_t)g->nnodes, sizeof *dep), *gdep = xcalloc((size_t)ng, sizeof *gdep);
  /* dep[id]: the updates whose parameters id's value depends on (through
     detach too: a value, unlike a gradient, is not cut by it) */
  for (int id = 0; id < g->nnodes; id++) {
    const ir_node *n = &g->nodes[id];
    if (n->backward) continue;
    if (n->op == OP_PARAM && g->params[n->leaf.index].update >= 0)
      dep[id] = 1u << g->params[n->leaf.index].update;
    for (int j = 0; j < n->nin; j++) dep[id] |= dep[n->in[j]];
    gdep[n->group] |= dep[id];
  }
  int *last = xcalloc((size_t)ng, sizeof *last);
  for (int grp = 0; grp < ng; grp++) last[grp] = -1;
  unsigned char *ran = xcalloc((size_t)ng, 1);
  for (int k = 0; k < g->nupdates; k++) {
    unsigned char *runs = g->updates[k].runs = xcalloc((size_t)ng, 1);
    int roots[] = {g->updates[k].total_loss};
    mark_needed(g, roots, 1, k, runs);
    for (int grp = 0; grp < ng; grp++) {
      if (!runs[grp]) continue;
      uint32_t changed = 0; /* the updates applied since grp was last computed */
      for (int j = last[grp]; j >= 0 && j < k; j++) changed |= 1u << j;
      if (last[grp] >= 0 && !(gdep[grp] & changed)) runs[grp] = 0; /* still valid: reused */
      else last[grp] = k, ran[grp] = 1;
    }
  }
  g->tail_runs = xcalloc((size_t)ng, 1);
  for (int grp = 0; grp < ng; grp++) g->tail_runs[grp] = !ran[grp] && grp != g->penalty_group;
  free(ran);
  free(last);
  free(gdep);
  free(dep);
  return 0;
}

int schedule_same_runs(const ir_graph *g, int ga, int gb) {
  if (!g->nupdates || ga == gb) return 1;
  for (int k = 0; k < g->nupdates; k++)
    if (g->updates[k].runs[ga] != g->updates[k].runs[gb]) return 0;
  return g->tail_runs[ga] == g->tail_runs[gb];
}

/* Appends the nodes of group grp that are forward (or update k's backward ones). */
static void append_group(const ir_graph *g, const int *first, const int *next, int grp, int backward,
                         int k, int *seq, int *len) {
  for (int id = first[grp]; id >= 0; id = next[id]) {
    const ir_node *n = &g->nodes[id];
    if (n->backward == backward && (!backward || n->update == k)) seq[(*len)++] = id;
  }
}

int *schedule_sequence(const ir_graph *g, int *len) {
  int n = g->nnodes, ng = g->ngroups;
  int *seq = xcalloc((size_t)(2 * g->nupdates + 1) * (size_t)n, sizeof *seq);
  int *first = xcalloc((size_t)ng, sizeof *first), *next = xcalloc((size_t)n, sizeof *next);
  int *lastn = xcalloc((size_t)ng, sizeof *lastn);
  for (int grp = 0; grp < ng; grp++) first[grp] = lastn[grp] = -1;
  for (int id = 0; id < n; id++) {
    int grp = g->nodes[id].group;
    next[id] = -1;
    if (lastn[grp] < 0) first[grp] = id;
    else next[lastn[grp]] = id;
    lastn[grp] = id;
  }
  *len = 0;
  for (int k = 0; k < g->nupdates; k++) {
    for (int grp = 0; grp < ng; grp++)
      if (g->updates[k].runs[grp]) append_group(g, first, next, grp, 0, k, seq, len);
    for (int grp = ng - 1; grp >= 0; grp--) append_group(g, first, next, grp, 1, k, seq, len);
  }
  for (int grp = 0; grp < ng; grp++)
    if (g->tail_runs[grp]) append_group(g, first, next, grp, 0, 0, seq, len);
  free(first);
  free(next);
  free(lastn);
  return seq;
}
