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

typedef enum {
  /* leaves */
  OP_INPUT,         /* the batch's inputs (ctx->x)                          */
  OP_LABEL,         /* the batch's labels                                   */
  OP_PARAM,         /* a parameter (i[0] = index into graph->params)        */
  OP_GRAD_SEED,     /* d loss / d loss = 1                                  */
  OP_BUFFER,        /* state that is not trained (i[0] = index into graph->buffers) */
  /* forward */
  OP_DENSE,         /* y = x W^T (+ b)     in: x, W [, b]                    */
  OP_ADD,           /* a + b                                                */
  OP_SUB,           /* a - b                                                */
  OP_MUL,           /* a * b                                                */
  OP_SCALE,         /* a * f[0]                                             */
  OP_CONCAT,        /* along the last dim, any number of inputs             */
  OP_RELU, OP_LEAKY_RELU, OP_SIGMOID, OP_TANH, OP_GELU, /* f[0] = slope     */
  OP_SOFTMAX,       /* over the last dim                                    */
  OP_DROPOUT,       /* f[0] = p, i[0] = site (mask = hash(seed, step, site, i)) */
  OP_VIEW,          /* flatten, reshape: same data, other shape (no copy)   */
  OP_IM2COL,        /* [C,H,W] -> colT [OH*OW, C*KH*KW]; i[] = geometry (conv.c) */
  OP_CONV2D,        /* yT [OH*OW, OC] = colT W^T     in: colT, W; i[2] = groups */
  OP_CONV_OUT,      /* y [OC,OH,OW] = yT^T (+ b)     in: yT [, b]; i[1] = fused act + 1 */
  OP_MAXPOOL, OP_AVGPOOL, /* i[] = geometry; [C,H,W] -> [C,OH,OW] (or [C], global) */
  /* normalisation (norm.c): i[0] = kind, i[2] = statistics per sample, i[3] = affine,
   * f[0] = eps, f[1] = momentum */
  OP_NORM_STATS,    /* [2, ...] mean and 1/sqrt(var + eps)   in: x [, running mean, var, count] */
  OP_NORM,          /* y = (x - mean) * rstd (* w + b)       in: x, stats [, w, b]; i[1] = fused act + 1 */
  OP_MSE, OP_MAE, OP_BCE, OP_BCE_LOGITS, OP_CROSS_ENTROPY, /* (pred, target) -> scalar mean */
  OP_PENALTY,       /* f[0] = l1, f[1] = l2: l1 sum|W| + l2 sum W^2 -> scalar  */
  /* parameter wrappers (reparam.c): an unbatched weight computed from parameters */
  OP_WEIGHT_NORM,   /* W = g * v / ||v|| per row (dim 0)       in: g [R, 1...], v     */
  OP_SPECTRAL_NORM, /* W = W_orig / sigma, sigma = u . (W_orig v)   in: W_orig, u, v (buffers);
                       with ctx->track_stats, one power iteration updates u and v first */
  /* sequences (sequence.c, recurrent.c) */
  OP_EMBEDDING,     /* y[..., :] = W[ids[...], :]      in: ids (the token input), W [V, E] */
  OP_ONE_HOT,       /* y[..., v] = (v == ids[...])     in: ids                      */
  OP_RNN_SCAN,      /* the recurrence over time, all samples a step at a time
                       in: xg [T, G*H] (x W_ih^T + b_ih), W_hh [G*H, H] [, b_hh];
                       i[0] = cell (RNN_TANH, RNN_RELU, LSTM, GRU), i[1] = H, i[2] = reverse;
                       dims [T, SW]: what each step saves (h first, see recurrent.c) */
  OP_SCRATCH,       /* working memory a kernel keeps across its steps (unbatched, never reused) */
  OP_RNN_CARRY,     /* a scan's carried state [2, CW] per batch row (recurrent.c); never reused */
  OP_RNN_H,         /* the hidden states [T, H] (i[3] = 0) or the final one [H] (i[3] = 1)
                       of a scan   in: scan; i[0..2] as the scan's */
  OP_ATTENTION,     /* o [T, D]: softmax(q k^T / sqrt(dh)) v per head   in: qkv [T, 3D] [, ids];
                       i[0] = heads, i[1] = causal, i[2] = padding mask, i[3] = pad id */
  OP_POSITIONAL,    /* x + pe (sinusoidal) or x + W (learned)   in: x [, W] */
  /* backward */
  OP_ATTENTION_GRAD, /* dqkv   in: do, qkv [, ids]; i[] as OP_ATTENTION */
  OP_POSITIONAL_DW, /* dW = sum over the batch of dy   in: dy */
  OP_EMBEDDING_DW,  /* dW [V, E]: dW[ids[r]] += dy[r]   in: dy, ids                 */
  OP_RNN_SCAN_GRAD, /* backpropagation through time   in: dh (of OP_RNN_H), scan, W_hh;
                       i[] as OP_RNN_H; dims [T, GW]: per step the gradients of the
                       gate pre-activations and scratch (recurrent.c) */
  OP_RNN_DW,        /* dW_hh = sum over steps of dgates_t^T h_{t-1}   in: scan_grad, scan */
  OP_RNN_DB,        /* db_hh = sum over steps and samples of dgates   in: scan_grad */
  OP_DENSE_DX,      /* dx = dy W             in: dy, W                       */
  OP_DENSE_DW,      /* dW = dy^T x           in: dy, x                       */
  OP_DENSE_DB,      /* db = sum_rows dy      in: dy                          */
  OP_CONV_OUT_GRAD, /* dyT [OH*OW, OC] = dy^T        in: dy                  */
  OP_CONV2D_DW,     /* dW^T [G, CKg, OCg] = colT^T dyT   in: dyT, colT; i[2] = groups */
  OP_CONV2D_DW_T,   /* dW [OC, CKg] from dW^T            in: dW^T               */
  OP_CONV2D_DB,     /* db[oc] = sum over s, p of dy  in: dy (NCHW)           */
  OP_CONV2D_DCOL,   /* dcolT = dyT W                 in: dyT, W; i[2] = groups */
  OP_COL2IM,        /* im2col backward: adds the fields into dx   in: dcolT  */
  OP_MAXPOOL_GRAD,  /* in: dy, x (the first maximum of each window gets dy)  */
  OP_AVGPOOL_GRAD,  /* in: dy                                                */
  OP_NORM_SUMS,     /* [2, K]: sum dy, sum dy * xhat per channel over the batch   in: dy, x, stats */
  OP_NORM_DX,       /* in: dy, x, stats [, w] [, sums (batch norm)]                */
  OP_NORM_DW, OP_NORM_DB, /* rows 1 and 0 of the sums                 in: sums */
  OP_ACT_GRAD,      /* dx = dy * act'(...)   in: dy, saved; i[0] = forward op */
  OP_SOFTMAX_GRAD,  /* dx = y * (dy - sum(dy*y))   in: dy, y                 */
  OP_DROPOUT_GRAD,  /* dx = dy * mask / (1-p)      in: dy                    */
  OP_SLICE,         /* concat backward: last-dim columns [i[0], i[0]+dims[-1]) of in[0] */
  OP_LOSS_GRAD,     /* d pred     in: dscalar, pred, target; i[0] = loss op  */
  OP_LOSS_GRAD_TARGET, /* d target for mse/mae/bce when the target is computed */
  OP_PENALTY_GRAD,  /* dW of the penalty   in: dscalar, W; f as OP_PENALTY   */
  OP_SCALAR_GRAD,   /* d of a scalar through + - * scale:  in: dscalar; f[0] = factor */
  OP_WEIGHT_NORM_GRAD,   /* in: dW, g, v; i[0] = 0: dg, 1: dv              */
  OP_SPECTRAL_NORM_GRAD, /* d W_orig   in: dW, W_orig, u, v                  */
  OP_ADDN,          /* sum of its inputs (gradient accumulation)             */
  OP_COUNT
} ir_op;

typedef enum { STORE_NONE, STORE_ACT, STORE_STATE, STORE_INPUT, STORE_LABEL, STORE_ALIAS } ir_storage;

typedef struct ir_node {
  int id;
  ir_op op;
  int in[IR_MAX_IN];
  int nin;
  int batched;                 /* leading run-time batch dim              */
  int ndim;
  int64_t dims[IR_MAX_DIMS];   /* per-sample dims when batched            */
  double f[4];
  int i[12];
  const char *name;            /* binding name (forward) for comments     */
  dl_loc loc;
  int group;                   /* index into graph->groups                 */
  int backward;                /* 1 if made by autodiff                    */
  int needs_label;             /* depends on the labels                    */
  int fused;                   /* computed inside another node's kernel    */
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
  size_t offset, grad_offset;  /* in the state block                      */
  size_t opt_offset[3];        /* optimiser state buffers                 */
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

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP, OPT_ADAGRAD } ir_optim_kind;

typedef struct ir_optim {
  ir_optim_kind kind;
  double lr, momentum, dampening, beta1, beta2, eps, weight_decay, alpha, lr_decay, init_acc;
  int nesterov, centered;
  int line;
} ir_optim;

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
  int64_t warmup;
  double clip;
  char *data_dir;
  ir_data train, test;
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
  int ndropout;
  int penalty_group;           /* group of the L1/L2 penalties, or -1       */
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
