/* registry_unit.c: what ops.def's rows make of the IR (ir.h, ir.c): the
 * IR_ATTR rows become ir_node's typed union members, and an op flagged
 * OPF_SAME_SHAPE is held to one shape by ir_verify with no case of its own. */
#include <stddef.h>
#include "expect.h"
#include "ir.h"

/* A family's attributes are its IR_ATTR row: a struct of its fields, a
 * member of the one union.  (No check names softplus, the demonstration
 * family, so that it can be removed and added again touching ops.def alone.) */
_Static_assert(sizeof(ir_reparam_attr) == sizeof(int), "reparam's IR_ATTR row: int wrt");
_Static_assert(offsetof(ir_node, rnn) == offsetof(ir_node, leaf), "one union of attributes");
_Static_assert(offsetof(ir_node, attn) == offsetof(ir_node, ew), "one union of attributes");
_Static_assert(OPF_OF_MUL & OPF_SAME_SHAPE, "a * b has the shape of a and b");

/* Appends op reading `in` (nin of them), shaped [B, d]. */
static int add(ir_graph *g, ir_op op, const int *in, int nin, int64_t d) {
  int id = ir_add(g, op, in, nin, 0, (dl_loc){1, 1});
  ir_node *n = ir_at(g, id);
  n->batched = 1;
  n->ndim = 1;
  n->dims[0] = d;
  return id;
}

/* op over inputs shaped [B, 4] and [B, d1] gives [B, dout]: what ir_verify says. */
static int verify(ir_op op, int nin, int64_t d1, int64_t dout) {
  ir_graph *g = ir_new();
  ir_add_group(g, "a", 1, "a = ...");
  int in[2];
  in[0] = add(g, OP_INPUT, NULL, 0, 4);
  in[1] = add(g, OP_INPUT, NULL, 0, d1);
  add(g, op, in, nin, dout);
  int r = ir_verify(g);
  ir_free(g);
  return r;
}

int main(void) {
  /* the IR_OP rows' names, as ir_dump and the generated comments print them */
  EXPECT_MSG(ir_op_name(OP_DROPOUT_GRAD), "dropout_grad");
  /* the flag alone is each op's shape rule: output and every input */
  EXPECT(verify(OP_MUL, 2, 4, 4) == 0);
  EXPECT(verify(OP_MUL, 2, 5, 4) == -1);  /* b unlike a */
  EXPECT(verify(OP_MUL, 2, 4, 3) == -1);  /* the product unlike both */
  EXPECT(verify(OP_GELU, 1, 9, 4) == 0);  /* in[1] is not an input of a 1-input op */
  EXPECT(verify(OP_GELU, 1, 9, 5) == -1);
  EXPECT(verify(OP_ADD, 2, 4, 4) == 0);
  EXPECT(verify(OP_ADD, 2, 6, 4) == -1);
  EXPECT(verify(OP_ADDN, 2, 6, 4) == -1);
  EXPECT(verify(OP_DROPOUT_GRAD, 1, 6, 5) == -1);
  /* an op without the flag and without a case: no shape rule */
  EXPECT(!ir_op_has(OP_CONCAT, OPF_SAME_SHAPE));
  EXPECT(verify(OP_CONCAT, 2, 6, 10) == 0);
  /* the flagged ops: elementwise, so none changes the shape or keeps a loss */
  for (int op = 0; op < OP_COUNT; op++)
    if (ir_op_has((ir_op)op, OPF_SAME_SHAPE)) EXPECT(!ir_is_loss((ir_op)op));
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures != 0;
}
