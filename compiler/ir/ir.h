/* ir.h: the graph IR.
 *
 * A program is one graph of nodes; each node produces one tensor value.
 * Values carry a static shape.  `batched` values have an implicit leading
 * batch dimension whose size is only known at run time (the trainer's
 * --batch); every other dimension is a compile-time constant.  Scalars
 * (losses) are unbatched with ndim 0.
 *
 * Forward nodes come from lowering the AST (lower.c); autodiff (autodiff.c)
 * appends backward nodes to the same graph, recording for each which group
 * (source binding) it belongs to, so that the scheduler can emit one forward
 * and one backward function per layer.  Parameters live outside the node list
 * in `params`: each owns its initialiser, penalties and optimiser state, and a
 * parameter may be read by several nodes (shared weights).
 */
#ifndef DLNC_IR_H
#define DLNC_IR_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "diag.h"

enum { IR_MAX_IN = 8, IR_MAX_DIMS = 6 };
enum { IR_OPTIM_ARGS = 16, IR_OPTIM_STATES = 3 }; /* see ir_optim */

/* Facts about an op that generic passes ask (the flags column of ops.def). */
enum {
  OPF_IN_PLACE = 1 << 0,      /* may compute in its first input's buffer when it is that
                                 value's only reader (memplan.c) */
  OPF_EPILOGUE_ACT = 1 << 1,  /* an activation whose derivative is a function of its
                                 output: an epilogue host applies it in its own pass, and
                                 dense's bias gradient applies its derivative (fuse.c) */
  OPF_EPILOGUE_HOST = 1 << 2, /* applies the epilogue activation that follows it (fuse.c;
                                 its emitter reads n->epilogue) */
  OPF_CHAIN_HEAD = 1 << 3,    /* starts a per-sample chain: the nodes that follow, each
                                 reading the one before, */
  OPF_CHAIN_LINK = 1 << 4,    /*   any number of links */
  OPF_CHAIN_END = 1 << 5,     /*   and one end, run as one job over the batch (fuse.c), */
  OPF_CHAIN_TAIL = 1 << 11,   /*   and after an end's fused epilogue, one tail reading it */
  OPF_PERSISTENT = 1 << 6,    /* outlives a step (carried state): the memory plan never
                                 reuses its room, and the model is stateful */
  OPF_LOSS = 1 << 7,          /* a data loss: (pred, target) -> scalar mean */
  OPF_SAME_SHAPE = 1 << 8,    /* its output and every input have one shape (ir_verify) */
  OPF_STOP_GRAD = 1 << 9,     /* no gradient passes through it (detach, constants): autodiff
                                 never computes d loss / d its output (autodiff.c) */
  OPF_LEAF = 1 << 10,         /* a value a step reads and never computes (input, label,
                                 parameter, buffer): it makes no line run (schedule.c) */
  OPF_SHAPE_LIKE = 1 << 12,   /* may take its shape from fill.like, a value it never
                                 reads: lints count that value as used (program.c) */
};

/* The ops, one IR_OP row each in ops.def (name, flags, backward and emit
 * functions). */
typedef enum {
#define IR_OP(id, name, flags, backward, emit) OP_##id,
#include "ops.def"
  OP_COUNT
} ir_op;

/* Each op's flags as a constant, OPF_OF_RELU: a family file states with
 * _Static_assert the flags its emitter relies on, so ops.def and the
 * emitter cannot drift apart. */
enum {
#define IR_OP(id, name, flags, backward, emit) OPF_OF_##id = (flags),
#include "ops.def"
};

/* ---- attributes: one struct per op family, ir_<member>_attr, declared by
 * the family's IR_ATTR row in ops.def (which says which file owns it and
 * what each field means) and written by that file.  Its ops use the member
 * <member> of ir_node's union. */
#define IR_ATTR(member, ...) typedef struct ir_##member##_attr { __VA_ARGS__ } ir_##member##_attr;
#include "ops.def"

typedef enum { STORE_NONE, STORE_ACT, STORE_STATE, STORE_INPUT, STORE_LABEL, STORE_ALIAS } ir_storage;

typedef struct ir_node {
  int id;
  ir_op op;
  int in[IR_MAX_IN];
  int nin;
  int batched;                 /* leading run-time batch dim              */
  int ndim;
  int64_t dims[IR_MAX_DIMS];   /* per-sample dims when batched            */
  union {                      /* the op's attributes (ops.def's IR_ATTR rows) */
#define IR_ATTR(member, ...) ir_##member##_attr member;
#include "ops.def"
  };
  const char *name;            /* binding name (forward) for comments     */
  dl_loc loc;
  int group;                   /* index into graph->groups                 */
  int backward;                /* 1 if made by autodiff                    */
  int update;                  /* backward: the update (g->updates) whose gradients it
                                  computes; 0 without updates */
  int needs_label;             /* depends on the labels                    */
  /* Edges that are not inputs, because they point at a later node; ir_verify
   * checks them and ir_dump prints them.  Never attribute slots of the op. */
  int scratch;                 /* the OP_SCRATCH node this node's kernel works in, or -1
                                  (made right after it: the scan's packed W_hh) */
  int fused_in;                /* computed inside this node's kernel, or -1 */
  int epilogue;                /* the node this node's kernel computes last (a fused
                                  activation or activation gradient), or -1 */
  int chain;                   /* heads a per-sample chain of this many nodes (0: none) */
  /* memory (passes/memplan.c) */
  ir_storage storage;
  size_t offset;               /* per-sample elements if batched, else elements */
  int alias_of;                /* STORE_ALIAS: computed in place in this node's buffer */
} ir_node;

typedef enum { INIT_DEFAULT = -1 } ir_init_default; /* use the train block's init */

typedef struct ir_param {
  char *name;                  /* checkpoint name: "h1.weight"            */
  int node;                    /* its OP_PARAM node                       */
  int grad;                    /* node holding its final gradient (-1 if unused) */
  int ndim;
  int64_t dims[IR_MAX_DIMS];
  int64_t numel, fan_in, fan_out;
  int init;                    /* dl_init_kind, or INIT_DEFAULT           */
  int init_src;                /* DL_INIT_ROW_NORM: the parameter it measures */
  double l1, l2;               /* per-layer penalties (added to global)   */
  int is_weight;               /* global l1/l2 and weight decay apply     */
  int line;
  int update;                  /* the update (g->updates) that trains it, or -1 (none;
                                  always -1 without updates: the one implicit update) */
  size_t offset, grad_offset;  /* in the state block                      */
  size_t opt_offset[IR_OPTIM_STATES]; /* optimiser state buffers          */
} ir_param;

/* A buffer is state that is not trained (batch norm's running statistics):
 * saved in checkpoints and restored on load, but it has no gradient, no
 * optimiser state and no penalty.  Its node is an OP_BUFFER leaf. */
typedef struct ir_buffer {
  char *name;                  /* checkpoint name: "bn.running_mean"      */
  int node;                    /* its OP_BUFFER node                      */
  int ndim;                    /* 0 for a scalar                          */
  int64_t dims[IR_MAX_DIMS];
  int64_t numel;
  int init_kind;               /* DL_INIT_ZERO: every element is `init`;
                                  DL_INIT_UNIT_NORMAL: a random unit vector */
  double init;                 /* every element's initial value           */
  int is_count;                /* one int64 (num_batches_tracked), not reals */
  int line;
  size_t offset;               /* in the state block                      */
} ir_buffer;

/* A group is one source binding: it becomes one forward and one backward function. */
typedef struct ir_group {
  char *name;                  /* binding name                            */
  int line;
  char *text;                  /* the source line, for comments           */
  int needs_label;
} ir_group;

/* The optimiser, as ops/optim.c's table lowered it: which row, its keyword
 * arguments, and the state it keeps per parameter, so that the memory plan
 * and the tensor table need no optimiser names. */
typedef struct ir_optim_state {
  const char *name;            /* torch's name: the checkpoint has W.<name> */
  double init;                 /* its start value (adagrad's accumulator) */
  int scalar;                  /* one number per parameter, not per weight */
} ir_optim_state;

typedef struct ir_optim {
  int kind;                    /* its row in ops/optim.c's table (0: sgd) */
  double lr;
  double arg[IR_OPTIM_ARGS];   /* the other arguments, by optim.c's A_* */
  int nstate;
  ir_optim_state state[IR_OPTIM_STATES];
  int line;
} ir_optim;

/* An update of the train block, `NAME = update(LOSS, params = P, optimizer = OPT)`:
 * each batch runs the updates in order, each differentiating its own loss
 * with respect to its own parameters only (autodiff.c) and stepping its own
 * optimiser.  A model without updates has none (g->nupdates == 0): the
 * single implicit update of g->total_loss with g->train.optim. */
enum { IR_MAX_UPDATES = 16 };
typedef struct ir_update {
  const char *name;            /* the train block's binding: "discriminator" (interned) */
  const char *loss_name;       /* the loss binding it trains: "d_loss" (interned) */
  int loss;                    /* the loss node                             */
  int total_loss;              /* loss + its parameters' penalties (differentiated) */
  ir_optim optim;
  int line;
  /* the schedule (passes/schedule.c): runs[grp] is 1 if forward_GRP runs in
     this update's compute_grads (first computed, or stale: it depends on a
     parameter an earlier update of the batch changed) */
  unsigned char *runs;
} ir_update;

typedef struct ir_data {
  int kind;                    /* dl_data_kind */
  char *path[2];
  double scale;
  int header;
  double from, to;             /* text: the part of the corpus used */
  int line;
} ir_data;

typedef struct ir_train {
  int batch;                   /* 0 = full */
  int epochs;
  uint64_t seed;
  ir_optim optim;
  int init;                    /* default dl_init_kind */
  double l1, l2;               /* global penalties on weights */
  int sched_kind, sched_step_size, sched_t_max;
  double sched_gamma, sched_eta_min;
  int sched_per_step;          /* cosine(per_step = true)                 */
  double sched_max_lr, sched_pct_start, sched_div, sched_final_div; /* one_cycle */
  double plateau_factor, plateau_min_lr, plateau_threshold; /* plateau */
  int plateau_patience;
  const char *plateau_metric;  /* static: one of lower_plateau's names */
  int64_t warmup;
  double clip;
  char *data_dir;
  ir_data train, test;
  double validation;           /* held-out fraction of train (0: none)    */
  ir_data val;                 /* or a separate validation set            */
  char *early_stop;            /* metric, or NULL                         */
  int patience;                /* 0: default                              */
  double min_delta;
} ir_train;

/* A hash index from strings (owned elsewhere) to ints: the symbol table,
 * interned names.  Lookups and inserts are O(1) on average, so neither the
 * front end nor lowering is quadratic in the number of statements. */
typedef struct ir_names {
  const char **key;
  int *val;
  int cap, n;                  /* cap: 0 or a power of two */
} ir_names;
/* The value stored for key, or -1. */
int ir_names_get(const ir_names *t, const char *key);
/* Stores key -> val (replacing a value stored before); key must outlive t. */
void ir_names_put(ir_names *t, const char *key, int val);
void ir_names_free(ir_names *t);

typedef struct ir_graph {
  char *model_name;
  char *source_path;           /* as given to dlnc                         */
  char *source_dir;            /* absolute directory of the .dln           */
  ir_node *nodes;
  int nnodes, cap;
  ir_param *params;
  int nparams, param_cap;
  ir_group *groups;
  int ngroups, group_cap;
  ir_buffer *buffers;
  int nbuffers, buffer_cap;
  int input, label;            /* node ids                                 */
  int64_t input_vocab;         /* class[..., V] input (token ids): V; else 0 */
  int label_is_class;
  int64_t label_classes;       /* class[..., N] label: N                    */
  int loss;                    /* data loss node (scalar)                  */
  int total_loss;              /* loss + penalties (what is differentiated) */
  int pred;                    /* prediction head node                     */
  int pred_kind;               /* dl_pred_kind                             */
  int sample;                  /* the generator: the binding `sample`, which reads
                                  no input and no label (only noise and
                                  parameters), or -1                       */
  int ndropout;
  int penalty_group;           /* group of the L1/L2 penalties, or -1       */
  ir_update *updates;          /* the train block's updates, in order (none: the
                                  implicit one of total_loss)               */
  int nupdates;
  unsigned char *tail_runs;    /* with updates: [ngroups] forward groups no update
                                  runs (a head no loss reads), run by forward() last */
  unsigned char *loss_runs;    /* without updates: [ngroups] forward groups the total
                                  loss and the prediction need (compute_grads, forward);
                                  the rest (the generator's lines) runs only in generate() */
  ir_train train;
  char **strings;              /* names owned by the graph (ir_intern)     */
  int nstrings, string_cap;
  ir_names string_index;       /* strings by text                          */
  /* memory plan */
  size_t act_per_sample, act_fixed, state_elems;
} ir_graph;

ir_graph *ir_new(void);
void ir_free(ir_graph *g);
/* Appends a node; returns its id.  Shape is set by the caller. */
int ir_add(ir_graph *g, ir_op op, const int *in, int nin, int group, dl_loc loc);
ir_node *ir_at(ir_graph *g, int id);
int64_t ir_numel(const ir_node *n);          /* per-sample elements if batched */
int64_t ir_last_dim(const ir_node *n);
int64_t ir_rows(const ir_node *n);           /* product of all but the last dim (per sample) */
void ir_copy_shape(ir_node *dst, const ir_node *src);
int ir_add_group(ir_graph *g, const char *name, int line, const char *text);
int ir_add_param(ir_graph *g, const char *name, int ndim, const int64_t *dims, int line);
int ir_add_buffer(ir_graph *g, const char *name, int ndim, const int64_t *dims, int line);
const char *ir_op_name(ir_op op);
/* Whether op has every flag in `flags` (OPF_*). */
int ir_op_has(ir_op op, unsigned flags);
/* A node's shape as the user reads it, into buf: "[batch, 8, 16]", "[10]",
 * "scalar" (for diagnostics and the generated code's comments). */
const char *ir_shape_str(const ir_node *n, char *buf, size_t len);
int ir_is_loss(ir_op op);
/* Checks the graph's invariants (inputs defined before use, shapes consistent);
 * returns 0 or prints what is wrong and returns -1.  Run after each pass. */
int ir_verify(const ir_graph *g);
void ir_dump(const ir_graph *g, FILE *out);
char *ir_strdup(const char *s);
/* A copy of s owned by the graph (one per distinct string). */
const char *ir_intern(ir_graph *g, const char *s);

#endif
