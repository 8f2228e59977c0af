/* memplan.c: one statically planned arena.
 *
 * The state block holds, per parameter: its values, its gradient and its
 * optimiser state; then the buffers (running statistics); its size is
 * fixed.  The activation block holds every other value.  A value whose only
 * reader is an elementwise op (OPF_IN_PLACE) may be overwritten by it (in place);
 * otherwise values get offsets by first fit over their
 * live ranges in schedule order (node id order is the execution order: the
 * forward groups in order, then the backward groups in reverse).  Batched
 * values are planned in per-sample units, so the same plan serves any batch
 * size chosen at run time: the byte offset is per-sample offset x capacity. */
#include "optable.h"
#include "passes.h"
#include "schedule.h"
#include <stdlib.h>
#include <string.h>

enum { ALIGN = 16 }; /* elements: 64 bytes in f32 for any capacity */

static size_t align_up(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

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
  const ir_optim *op = &g->train.optim;
  for (int s = 0; !g->nupdates && s < op->nstate; s++)
    for (int p = 0; p < g->nparams; p++) {
      g->params[p].opt_offset[s] = off;
      off = align_up(off + (op->state[s].scalar ? 1 : (size_t)g->params[p].numel));
    }
  /* with updates: each update's optimiser's state for its parameters, in
     the order of the tensor table (emit_c.c) */
  for (int k = 0; k < g->nupdates; k++) {
    const ir_optim *uo = &g->updates[k].optim;
    for (int s = 0; s < uo->nstate; s++)
      for (int p = 0; p < g->nparams; p++) {
        if (g->params[p].update != k) continue;
        g->params[p].opt_offset[s] = off;
        off = align_up(off + (uo->state[s].scalar ? 1 : (size_t)g->params[p].numel));
      }
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

/* In place when the input is an activation buffer read by nothing else.
 * root[id]: the node whose buffer id is computed in (itself, or the end of
 * its alias chain; an alias reads an earlier node, so one pass fills it). */
static void plan_aliases(ir_graph *g, const int *consumers, int *root) {
  for (int id = 0; id < g->nnodes; id++) {
    ir_node *n = &g->nodes[id];
    root[id] = id;
    if (n->storage != STORE_NONE) continue;
    n->storage = STORE_ACT; /* unless it can work in place: */
    if (n->nin == 0) continue;
    int in = n->in[0];
    ir_node *x = &g->nodes[in];
    if (consumers[in] != 1 || g->nodes[root[in]].storage != STORE_ACT) continue;
    if (x->batched != n->batched || ir_numel(x) != ir_numel(n)) continue;
    if (n->op == OP_MUL && n->in[1] == in) continue;
    if (!schedule_same_runs(g, n->group, x->group)) continue;
    n->storage = STORE_ALIAS;
    n->alias_of = in;
    root[id] = root[in];
  }
}

typedef struct block {
  size_t off, size;
  int start, end;
} block;

/* Lowest aligned offset where [off, off+size) is free over [start, end]
 * among the first nb blocks: a block in the way pushes the candidate past
 * its end, which skips only offsets that block overlaps.  The plan is
 * defined by this; the free space below computes the same offset faster. */
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

/* The room not held by live blocks: the gaps [lo, hi) below `top`, in
 * order, neither touching each other nor top, and everything from top up.
 * A block holds [off, align_up(off + size)); while every live block overlaps
 * the value being placed in time, the lowest gap that fits it (or top) is
 * exactly first_fit's answer, found without looking at the live blocks. */
typedef struct gap {
  size_t lo, hi;
} gap;
typedef struct free_space {
  gap *g;
  int n, cap;
  size_t top;
} free_space;

static size_t space_fit(const free_space *fs, size_t size) {
  for (int k = 0; k < fs->n; k++)
    if (fs->g[k].hi - fs->g[k].lo >= size) return fs->g[k].lo;
  return fs->top;
}

static int space_insert(free_space *fs, int at, gap v) {
  if (fs->n == fs->cap) {
    int cap = fs->cap ? 2 * fs->cap : 16;
    gap *g = realloc(fs->g, (size_t)cap * sizeof *g);
    if (!g) return -1;
    fs->g = g;
    fs->cap = cap;
  }
  memmove(&fs->g[at + 1], &fs->g[at], (size_t)(fs->n - at) * sizeof v);
  fs->g[at] = v;
  fs->n++;
  return 0;
}

static void space_remove(free_space *fs, int at) {
  memmove(&fs->g[at], &fs->g[at + 1], (size_t)(fs->n - at - 1) * sizeof *fs->g);
  fs->n--;
}

/* The first gap whose hi is above off (binary search). */
static int space_find(const free_space *fs, size_t off) {
  int lo = 0, hi = fs->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (fs->g[mid].hi <= off) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Takes [off, end), which is free: inside one gap, or from top up. */
static int space_take(free_space *fs, size_t off, size_t end) {
  if (off >= fs->top) {
    int bad = off > fs->top && space_insert(fs, fs->n, (gap){fs->top, off});
    fs->top = end;
    return bad ? -1 : 0;
  }
  int k = space_find(fs, off);
  gap v = fs->g[k];
  if (v.lo < off && end < v.hi) {
    fs->g[k].hi = off;
    return space_insert(fs, k + 1, (gap){end, v.hi});
  }
  if (v.lo < off) fs->g[k].hi = off;
  else if (end < v.hi) fs->g[k].lo = end;
  else space_remove(fs, k);
  return 0;
}

/* Gives back [off, end), merging it with the gaps or the top it touches. */
static int space_give(free_space *fs, size_t off, size_t end) {
  if (end == fs->top) {
    fs->top = off;
    if (fs->n && fs->g[fs->n - 1].hi == off) fs->top = fs->g[--fs->n].lo;
    return 0;
  }
  int k = space_find(fs, off);
  int before = k > 0 && fs->g[k - 1].hi == off, after = k < fs->n && fs->g[k].lo == end;
  if (before && after) {
    fs->g[k - 1].hi = fs->g[k].hi;
    space_remove(fs, k);
  } else if (before) {
    fs->g[k - 1].hi = end;
  } else if (after) {
    fs->g[k].lo = off;
  } else {
    return space_insert(fs, k, (gap){off, end});
  }
  return 0;
}

/* Offsets for the values of one pass (batched or not), in execution order.
 * A value's blocks leave the free space once no value still to be placed
 * can overlap them in time: live ranges start in execution order, except a
 * carried state's (from 0), which is placed by first_fit over every block.
 * So planning is linear in the graph's size (times the number of gaps). */
static int plan_pass(ir_graph *g, int batched, const int *order, int n, const int *start,
                     const int *end, block *blocks, int *expire_next, int *expire_first,
                     size_t *top_out) {
  int nb = 0, released = 0;
  free_space fs = {0};
  size_t top = 0;
  for (int e = 0; e <= n; e++) expire_first[e] = -1;
  for (int i = 0; i < g->nnodes; i++) {
    int id = order[i];
    ir_node *x = &g->nodes[id];
    if (x->storage != STORE_ACT || x->batched != batched) continue;
    size_t size = (size_t)ir_numel(x);
    /* scalars and other unbatched values are small: keep them all live */
    int last = batched ? end[id] : n;
    if (start[id] >= released) {
      for (; released < start[id]; released++)
        for (int b = expire_first[released]; b >= 0; b = expire_next[b])
          if (space_give(&fs, blocks[b].off, align_up(blocks[b].off + blocks[b].size))) goto oom;
      x->offset = space_fit(&fs, size);
    } else {
      x->offset = first_fit(blocks, nb, size, start[id], last);
    }
    if (space_take(&fs, x->offset, align_up(x->offset + size))) goto oom;
    blocks[nb] = (block){x->offset, size, start[id], last};
    expire_next[nb] = expire_first[last];
    expire_first[last] = nb++;
    if (align_up(x->offset + size) > top) top = align_up(x->offset + size);
  }
  free(fs.g);
  *top_out = top;
  return 0;
oom:
  free(fs.g);
  return -1;
}

/* Node execution times: in id order without updates (the forward groups
 * in order, then the backward groups in reverse); with updates, positions in
 * schedule_sequence, where a recomputed node has several.  first[id] and
 * lastx[id] are its first and last; a node never run is live throughout. */
static int exec_times(ir_graph *g, int *first, int *lastx, int **seq_out, int *ntime) {
  int n = g->nnodes;
  *seq_out = NULL;
  if (schedule_updates(g)) return -1;
  if (!g->nupdates) { /* a subset of the lines runs, in id order */
    for (int id = 0; id < n; id++) first[id] = lastx[id] = id;
    *ntime = n;
    return 0;
  }
  int len;
  int *seq = schedule_sequence(g, &len);
  for (int id = 0; id < n; id++) first[id] = -1;
  for (int t = 0; t < len; t++) {
    if (first[seq[t]] < 0) first[seq[t]] = t;
    lastx[seq[t]] = t;
  }
  for (int id = 0; id < n; id++)
    if (first[id] < 0) first[id] = 0, lastx[id] = len;
  *seq_out = seq;
  *ntime = len;
  return 0;
}

static const int *sort_start;
static int by_start(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  if (sort_start[x] != sort_start[y]) return sort_start[x] < sort_start[y] ? -1 : 1;
  return (x > y) - (x < y);
}

static const ir_graph *sort_graph;
static int by_offset(const void *a, const void *b) {
  const ir_node *x = &sort_graph->nodes[*(const int *)a], *y = &sort_graph->nodes[*(const int *)b];
  if (x->batched != y->batched) return x->batched < y->batched ? -1 : 1;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static int is_act(const ir_node *n) { return n->storage == STORE_ACT || n->storage == STORE_ALIAS; }

/* With updates, the order of execution is no longer the order of ids, and a
 * value may be read by a later update: check the plan against the schedule.
 * Every value a node reads must still be in its buffer (no value computed in
 * place over it, no other value placed over it, since it was computed), and
 * no two buffers that overlap in memory may be live at once.  A failure is a
 * compiler bug: it is reported, never emitted. */
static int verify_schedule(const ir_graph *g, const int *seq, int len, const int *root,
                           const int *start, const int *end) {
  int n = g->nnodes, bad = 0;
  int *lastw = malloc((size_t)n * sizeof *lastw);
  if (!lastw) return -1;
  for (int id = 0; id < n; id++) lastw[id] = -1;
  for (int t = 0; t < len && !bad; t++) {
    const ir_node *r = &g->nodes[seq[t]];
    for (int j = 0; j < r->nin && !bad; j++) {
      int x = r->in[j];
      if (!is_act(&g->nodes[x]) || lastw[root[x]] == x) continue;
      fprintf(stderr, "dlnc: internal error: memory plan: node %d (%s) reads node %d, whose buffer "
              "node %d overwrote\n", r->id, ir_op_name(r->op), x, lastw[root[x]]);
      bad = 1;
    }
    if (is_act(r)) lastw[root[r->id]] = r->id;
  }
  /* buffers by offset: each is compared with those that start inside it */
  int nact = 0;
  for (int id = 0; id < n; id++)
    if (g->nodes[id].storage == STORE_ACT) lastw[nact++] = id;
  sort_graph = g;
  qsort(lastw, (size_t)nact, sizeof *lastw, by_offset);
  for (int i = 0; i < nact && !bad; i++) {
    int a = lastw[i];
    const ir_node *x = &g->nodes[a];
    size_t xe = x->offset + (size_t)ir_numel(x);
    for (int j = i + 1; j < nact && !bad && g->nodes[lastw[j]].offset < xe; j++) {
      int b = lastw[j];
      const ir_node *y = &g->nodes[b];
      if (y->batched != x->batched) continue;
      int ex = x->batched ? end[a] : len, ey = y->batched ? end[b] : len;
      if (start[a] <= ey && start[b] <= ex) {
        fprintf(stderr, "dlnc: internal error: memory plan: nodes %d and %d share memory while "
                "both are live\n", a, b);
        bad = 1;
      }
    }
  }
  free(lastw);
  return bad ? -1 : 0;
}

int memplan(ir_graph *g) {
  int n = g->nnodes;
  int *consumers = calloc((size_t)n, sizeof(int));
  /* calloc, though every entry is written below: gcc -O3 cannot see that */
  int *end = calloc((size_t)n, sizeof(int)), *start = calloc((size_t)n, sizeof(int));
  int *root = malloc((size_t)n * sizeof(int)), *expire_next = malloc((size_t)n * sizeof(int));
  int *first = calloc((size_t)n, sizeof(int)), *lastx = calloc((size_t)n, sizeof(int));
  int *order = malloc((size_t)n * sizeof(int)), *seq = NULL, ntime = 0;
  block *blocks = malloc((size_t)n * sizeof(block));
  int *expire_first = NULL;
  int bad = !consumers || !end || !start || !root || !expire_next || !first || !lastx ||
            !order || !blocks || exec_times(g, first, lastx, &seq, &ntime);
  if (!bad) bad = !(expire_first = malloc(((size_t)ntime + 1) * sizeof(int)));
  if (bad) goto done;
  plan_state(g);
  for (int id = 0; id < n; id++) {
    ir_node *x = &g->nodes[id];
    start[id] = first[id];
    if (end[id] < lastx[id]) end[id] = lastx[id];
    for (int k = 0; k < x->nin; k++) {
      consumers[x->in[k]]++;
      if (end[x->in[k]] < lastx[id]) end[x->in[k]] = lastx[id];
    }
  }
  for (int id = 0; id < n; id++) {
    ir_node *x = &g->nodes[id];
    if (x->storage == STORE_NONE && !ir_op_has(x->op, OPF_IN_PLACE)) x->storage = STORE_ACT;
  }
  plan_aliases(g, consumers, root);
  /* a per-sample chain (fuse.c) interleaves its nodes sample by sample:
   * everything it reads or writes is live from its first node to its last */
  for (int id = 0; id < n; id++) {
    int len = fuse_chain_length(g, id), last = id + len - 1;
    for (int k = id; len > 1 && k <= last; k++) {
      if (start[k] > first[id]) start[k] = first[id];
      if (end[k] < lastx[last]) end[k] = lastx[last];
      for (int j = 0; j < g->nodes[k].nin; j++)
        if (end[g->nodes[k].in[j]] < lastx[last]) end[g->nodes[k].in[j]] = lastx[last];
    }
    id = last;
  }
  /* a persistent value (a recurrent layer's carried state) outlives the step:
   * nothing else may use its room */
  for (int id = 0; id < n; id++)
    if (ir_op_has(g->nodes[id].op, OPF_PERSISTENT)) {
      start[id] = 0;
      end[id] = ntime;
    }
  /* a kernel's scratch, made right after it, is live from that kernel on */
  for (int id = 0; id < n; id++) {
    int s = g->nodes[id].scratch;
    if (s >= 0 && start[s] > first[id]) start[s] = first[id];
  }
  /* a buffer lives until the last reader of any value computed in it */
  for (int id = n - 1; id >= 0; id--) {
    if (g->nodes[id].storage == STORE_ALIAS && end[id] > end[root[id]]) end[root[id]] = end[id];
  }
  /* values are placed in the order their lives start (without updates: ids) */
  for (int id = 0; id < n; id++) order[id] = id;
  if (g->nupdates) {
    sort_start = start;
    qsort(order, (size_t)n, sizeof *order, by_start);
  }
  size_t batched_top = 0, fixed_top = 0;
  bad = plan_pass(g, 1, order, ntime, start, end, blocks, expire_next, expire_first, &batched_top) ||
        plan_pass(g, 0, order, ntime, start, end, blocks, expire_next, expire_first, &fixed_top);
  g->act_per_sample = batched_top;
  g->act_fixed = fixed_top;
  if (!bad && g->nupdates) bad = verify_schedule(g, seq, ntime, root, start, end);
done:
  free(consumers);
  free(end);
  free(start);
  free(root);
  free(expire_next);
  free(expire_first);
  free(blocks);
  free(first);
  free(lastx);
  free(order);
  free(seq);
  return bad ? -1 : 0;
}
