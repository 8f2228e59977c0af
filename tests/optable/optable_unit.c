/* optable_unit.c: the op table's rows agree with what the passes assume of
 * them, and fuse.c's decisions are edges of ir_node that ir_verify checks,
 * never writes into an op's attributes. */
#include <stdlib.h>
#include <string.h>
#include "expect.h"
#include "ir.h"
#include "passes.h"

/* Appends node op reading `in` (nin of them) in group grp, shaped [B, 4]. */
static int add(ir_graph *g, ir_op op, int a, int b, int grp) {
  int in[2] = {a, b}, nin = (a >= 0) + (b >= 0);
  int id = ir_add(g, op, in, nin, grp, (dl_loc){1, 1});
  ir_node *n = ir_at(g, id);
  n->batched = 1;
  n->ndim = 1;
  n->dims[0] = 4;
  n->storage = STORE_ACT;
  return id;
}

static ir_graph *graph(void) {
  ir_graph *g = ir_new();
  ir_add_group(g, "a", 1, "a = ...");
  ir_add_group(g, "b", 2, "b = ...");
  return g;
}

/* Every op has one distinct name; the flags that work together are set together. */
static void test_table(void) {
  for (int a = 0; a < OP_COUNT; a++) {
    const char *name = ir_op_name((ir_op)a);
    EXPECT(name && strcmp(name, "?") != 0);
    for (int b = 0; b < a; b++) EXPECT(strcmp(name, ir_op_name((ir_op)b)) != 0);
    /* an epilogue activation runs in place on its host's output (memplan decides) */
    if (ir_op_has((ir_op)a, OPF_EPILOGUE_ACT)) EXPECT(ir_op_has((ir_op)a, OPF_IN_PLACE));
    /* a chain's head is neither a link nor an end */
    if (ir_op_has((ir_op)a, OPF_CHAIN_HEAD))
      EXPECT(!ir_op_has((ir_op)a, OPF_CHAIN_LINK) && !ir_op_has((ir_op)a, OPF_CHAIN_END));
  }
  EXPECT(ir_op_has(OP_RELU, OPF_EPILOGUE_ACT | OPF_IN_PLACE));
  EXPECT(!ir_op_has(OP_GELU, OPF_EPILOGUE_ACT)); /* its derivative reads its input */
  EXPECT(ir_op_has(OP_RNN_CARRY, OPF_PERSISTENT));
  EXPECT(ir_is_loss(OP_CROSS_ENTROPY) && !ir_is_loss(OP_PENALTY));
  EXPECT(!ir_op_has(OP_COUNT, 0)); /* out of the table: no flags, no name */
  EXPECT(strcmp(ir_op_name(OP_COUNT), "?") == 0);
}

/* dense -> relu (in place): relu is dense's epilogue; the edges check out. */
static void test_epilogue(void) {
  ir_graph *g = graph();
  int x = add(g, OP_INPUT, -1, -1, 0);
  int d = add(g, OP_DENSE, x, -1, 0);
  int r = add(g, OP_RELU, d, -1, 0);
  ir_at(g, r)->storage = STORE_ALIAS;
  ir_at(g, r)->alias_of = d;
  int gl = add(g, OP_GELU, r, -1, 1); /* not an epilogue activation */
  int d2 = add(g, OP_DENSE, gl, -1, 1);
  int e = add(g, OP_GELU, d2, -1, 1);
  ir_at(g, e)->storage = STORE_ALIAS;
  ir_at(g, e)->alias_of = d2;
  EXPECT(fuse(g) == 0);
  EXPECT(ir_at(g, d)->epilogue == r && ir_at(g, r)->fused_in == d);
  EXPECT(ir_at(g, d2)->epilogue == -1 && ir_at(g, e)->fused_in == -1);
  EXPECT(ir_verify(g) == 0);
  /* a dangling edge: the host names an epilogue that is not fused into it */
  ir_at(g, r)->fused_in = -1;
  EXPECT(ir_verify(g) == -1);
  ir_at(g, r)->fused_in = d;
  ir_at(g, d)->epilogue = 99;
  EXPECT(ir_verify(g) == -1);
  ir_free(g);
}

/* conv_pad -> conv2d -> conv_out in one group is a chain of 3; with the
 * conv_out in another group, conv_pad -> conv2d is a chain of 2 (conv2d may
 * end a chain, as a convolution's input gradient does); fuse marks them
 * without touching any op's attributes (the chain mark once shared a slot
 * with avgpool's count_pad). */
static void test_chain(void) {
  ir_graph *g = graph();
  int x = add(g, OP_INPUT, -1, -1, 0);
  int c = add(g, OP_CONV_PAD, x, -1, 0);
  int y = add(g, OP_CONV2D, c, -1, 0);
  int o = add(g, OP_CONV_OUT, y, -1, 0);
  int c2 = add(g, OP_CONV_PAD, o, -1, 1);
  int y2 = add(g, OP_CONV2D, c2, -1, 1);
  add(g, OP_CONV_OUT, y2, -1, 0); /* another group: no chain */
  int dc = add(g, OP_CONV2D_DCOL, y2, -1, 1);
  int ci = add(g, OP_COL2IM, dc, -1, 1);
  for (int id = 0; id < g->nnodes; id++)
    g->nodes[id].conv = (ir_conv_attr){.kh = 3, .kw = 3, .sh = 1, .sw = 1, .groups = 1};
  ir_node *before = malloc((size_t)g->nnodes * sizeof *before);
  memcpy(before, g->nodes, (size_t)g->nnodes * sizeof *before);
  EXPECT(fuse_chain_length(g, c) == 3 && fuse_chain_length(g, c2) == 2);
  EXPECT(fuse_chain_length(g, y) == 1 && fuse_chain_length(g, dc) == 2);
  EXPECT(fuse(g) == 0);
  EXPECT(ir_at(g, c)->chain == 3 && ir_at(g, y)->fused_in == c && ir_at(g, o)->fused_in == c);
  EXPECT(ir_at(g, c2)->chain == 2 && ir_at(g, y2)->fused_in == c2);
  EXPECT(ir_at(g, dc)->chain == 2 && ir_at(g, ci)->fused_in == dc);
  for (int id = 0; id < g->nnodes; id++)
    EXPECT(memcmp(&before[id].conv, &g->nodes[id].conv, sizeof before[id].conv) == 0);
  ir_at(g, o)->fused_in = -1; /* a chain node that is not its head's */
  EXPECT(ir_verify(g) == -1);
  free(before);
  ir_free(g);
}

/* conv_pad -> conv2d -> conv_out -> relu (in place: conv_out's epilogue) ->
 * maxpool is a chain of 5 whose relu stays fused into conv_out; with the
 * relu in a buffer of its own, the pool stays out (a chain of 3). */
static void test_chain_tail(void) {
  for (int in_place = 0; in_place < 2; in_place++) {
    ir_graph *g = graph();
    int x = add(g, OP_INPUT, -1, -1, 0);
    int c = add(g, OP_CONV_PAD, x, -1, 0);
    int y = add(g, OP_CONV2D, c, -1, 0);
    int o = add(g, OP_CONV_OUT, y, -1, 0);
    int r = add(g, OP_RELU, o, -1, 0);
    int p = add(g, OP_MAXPOOL, r, -1, 0);
    if (in_place) {
      ir_at(g, r)->storage = STORE_ALIAS;
      ir_at(g, r)->alias_of = o;
    }
    EXPECT(fuse_chain_length(g, c) == (in_place ? 5 : 3));
    EXPECT(fuse(g) == 0);
    EXPECT(ir_at(g, c)->chain == (in_place ? 5 : 3));
    EXPECT(ir_at(g, r)->fused_in == (in_place ? o : -1));
    EXPECT(ir_at(g, p)->fused_in == (in_place ? c : -1));
    ir_free(g);
  }
}

/* A scratch edge must name an OP_SCRATCH node. */
static void test_scratch(void) {
  ir_graph *g = graph();
  int x = add(g, OP_INPUT, -1, -1, 0);
  int s = add(g, OP_RNN_SCAN, x, -1, 0);
  int w = add(g, OP_SCRATCH, -1, -1, 0);
  ir_at(g, s)->scratch = w;
  EXPECT(ir_verify(g) == 0);
  ir_at(g, s)->scratch = x;
  EXPECT(ir_verify(g) == -1);
  ir_at(g, s)->scratch = 7;
  EXPECT(ir_verify(g) == -1);
  ir_free(g);
}

int main(void) {
  (void)expect_contains; /* expect.h's message check: nothing here returns a message */
  test_table();
  test_epilogue();
  test_chain();
  test_chain_tail();
  test_scratch();
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures != 0;
}
