/* dl_model.h: the contract between code that dlnc generates and the runtime.
 *
 * A generated NAME.c defines one `dl_model_desc` (shapes, tensor table, memory
 * sizes, training defaults from the `train` block) and the step functions.
 * The runtime's trainer (trainer.c) drives it: it owns the arena, the data,
 * the epoch loop, checkpoints and the command line.  Nothing here knows which
 * model it runs.
 *
 * Memory: one block `state` (parameters, gradients, optimiser state,
 * buffers; fixed size) and one block `act` (activations and their
 * gradients; its size is act_elems_per_sample * capacity + act_elems_fixed).
 * Both are allocated once before training; a step allocates nothing.
 */
#ifndef DL_MODEL_H
#define DL_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "dl_real.h"

/* dlnc's version: the compiler's `--version`, the trainer's and the
 * installed packages' (CMakeLists.txt reads it from this line).  Generated
 * code and the runtime come from one release: the descriptor's layout is
 * not promised to stay the same between versions. */
#define DL_VERSION "0.14.0"

/* What the runtime was compiled for (dlnc build --target; the runtime's
 * own CMake libraries: the DLNC_RUNTIME_MARCH they were built with). */
#ifndef DL_TARGET
#define DL_TARGET "unknown"
#endif

enum { DL_MAX_DIMS = 6 };

/* What a tensor in the state block is.  Buffers are state that is not
 * trained (batch norm's running statistics): saved in checkpoints and
 * restored like parameters, but without gradient, optimiser state or
 * penalty; a count is a buffer holding one int64_t (torch's
 * num_batches_tracked) in the room of two dl_reals, saved as I64. */
typedef enum { DL_T_PARAM, DL_T_GRAD, DL_T_OPT, DL_T_BUFFER, DL_T_COUNT } dl_tensor_kind;

/* Parameter initialisers (PyTorch's definitions; fan_in/fan_out as torch computes them). */
typedef enum {
  DL_INIT_ZERO,
  DL_INIT_ONE,
  DL_INIT_HE_NORMAL,      /* N(0, 2/fan_in)             kaiming_normal_(relu)   */
  DL_INIT_HE_UNIFORM,     /* U(+-sqrt(6/fan_in))        kaiming_uniform_(relu)  */
  DL_INIT_XAVIER_NORMAL,  /* N(0, 2/(fan_in+fan_out))                           */
  DL_INIT_XAVIER_UNIFORM, /* U(+-sqrt(6/(fan_in+fan_out)))                      */
  DL_INIT_TORCH_DEFAULT,  /* U(+-1/sqrt(fan_in)): nn.Linear's weight and bias   */
  DL_INIT_ROW_NORM,       /* element r: the 2-norm of row r (index r of dim 0, all
                             other dims) of tensor init_src, initialised first:
                             weight_norm's g, so that g * v / ||v|| starts as v  */
  DL_INIT_UNIT_NORMAL,    /* N(0, 1), then divided by max(||.||, 1e-12) (torch's
                             normalize): spectral_norm's u and v buffers          */
  DL_INIT_NORMAL,         /* N(0, 1): nn.Embedding's weight                         */
} dl_init_kind;

typedef struct dl_tensor_desc {
  const char *name;         /* checkpoint name: "h1.weight", "h1.weight.exp_avg", ... */
  dl_tensor_kind kind;
  int ndim;
  int64_t shape[DL_MAX_DIMS];
  size_t offset;            /* element offset into ctx->state */
  size_t numel;
  dl_init_kind init;        /* params; buffers only DL_INIT_UNIT_NORMAL, else (and
                               optimiser state) they start at init_value */
  int64_t fan_in, fan_out;
  double init_value;        /* for DL_INIT_ZERO/ONE-like constant starts (e.g. adagrad's initial accumulator) */
  int line;                 /* .dln line that declared it */
  int init_src;             /* DL_INIT_ROW_NORM: index in the table of the tensor it
                               measures (not itself DL_INIT_ROW_NORM); else unused */
} dl_tensor_desc;

/* What a label is.  DL_Y_NONE: the model declares no label; it learns from
 * its inputs alone (an autoencoder), and its data are input values only. */
typedef enum { DL_Y_CLASS, DL_Y_REAL, DL_Y_NONE } dl_label_kind;

/* How the prediction head is read out (what `predict` prints, how accuracy is counted). */
typedef enum {
  DL_PRED_ARGMAX,   /* out holds logits or probabilities over classes: class = argmax   */
  DL_PRED_BINARY,   /* out holds probabilities in [0,1]: class = p > 0.5               */
  DL_PRED_VALUES,   /* out holds real values (regression): no accuracy                 */
} dl_pred_kind;

/* DL_DATA_TEXT: a file or a directory of files (concatenated), one token
 * per byte, cut into windows of x_size tokens labelled with the next byte
 * (data.h, dl_load_text). */
typedef enum { DL_DATA_NONE, DL_DATA_IDX, DL_DATA_CSV, DL_DATA_TEXT } dl_data_kind;

typedef struct dl_data_spec {
  dl_data_kind kind;
  const char *path[2];      /* IDX: images, labels.  CSV, text: path[0] only. Relative to --data. */
  double scale;             /* applied to inputs on the fly (IDX bytes, CSV values); not text */
  int header;               /* CSV: first row is a header to skip */
  int line;                 /* .dln line, for messages */
  double from, to;          /* text: the part used, bytes [floor(from*N), floor(to*N)) of
                               the N bytes; 0 <= from < to <= 1.  Last, so that
                               positional initialisers of the fields above still work. */
} dl_data_spec;

typedef enum { DL_SCHED_CONSTANT, DL_SCHED_STEP, DL_SCHED_EXPONENTIAL, DL_SCHED_COSINE,
               DL_SCHED_ONE_CYCLE, DL_SCHED_PLATEAU } dl_sched_kind;

typedef struct dl_schedule {
  dl_sched_kind kind;
  int step_size;            /* step: epochs between decays            */
  double gamma;             /* step, exponential: decay factor         */
  int t_max;                /* cosine: epochs of the half period (0 = total epochs) */
  double eta_min;           /* cosine: floor                           */
  int64_t warmup_steps;     /* linear warm-up over this many optimiser steps (0 = none) */
} dl_schedule;

/* The per-step schedules' settings, a struct of their own at the end of
 * dl_train_config (dl_schedule's positional initialisers stay complete).
 * per_step: cosine counts optimiser steps, not epochs (t_max in steps, 0 =
 * all of them).  one_cycle (torch's OneCycleLR, cos annealing, no momentum
 * cycling): from max_lr / div_factor up to max_lr over the first pct_start
 * of the steps, then down to max_lr / div_factor / final_div_factor; max_lr
 * 0 = the base rate. */
typedef struct dl_sched_steps {
  int per_step;
  double max_lr, pct_start, div_factor, final_div_factor;
  /* plateau (torch's ReduceLROnPlateau, threshold_mode rel, cooldown 0):
   * the rate times factor when `metric` has not improved by more than
   * threshold (relative) for more than patience epochs, not below min_lr. */
  double factor, min_lr, threshold;
  int patience;
  const char *metric;
} dl_sched_steps;

typedef struct dl_train_config {
  int batch;                /* 0 = full batch */
  int epochs;
  double lr;
  uint64_t seed;
  dl_schedule schedule;
  double clip_norm;         /* 0 = no clipping (applied inside apply_update) */
  const char *data_dir;     /* default for --data: the train block's data_dir, else the .dln's directory (absolute) */
  dl_data_spec train, test;
  /* Appended (older initialisers leave them zero: no validation, no early
   * stopping).  validation: the last fraction of the train rows held out,
   * or val_data, a separate set; early_stop: the metric (NULL: off). */
  double validation;
  dl_data_spec val_data;
  const char *early_stop;
  int patience;             /* 0: the trainer's default, 5              */
  double min_delta;
  dl_sched_steps sched_steps;
} dl_train_config;

struct dl_pool;

/* Recurrent layers with carry = true (truncated backpropagation through
 * time) when the trainer streams the data, row r of each batch continuing
 * row r of the batch before: OFF starts every batch from zeros and keeps
 * nothing (gradient checks, predict, sample); START starts from zeros and
 * keeps each row's final state; ON starts from the kept state. */
typedef enum { DL_CARRY_OFF, DL_CARRY_START, DL_CARRY_ON } dl_carry;

/* The run-time state of one model instance. */
typedef struct dl_ctx {
  const struct dl_model_desc *m;
  dl_real *state;           /* params, grads, optimiser state          */
  dl_real *act;             /* activations, capacity samples            */
  int capacity;             /* batch rows the act block was sized for   */
  dl_real *x;               /* [capacity, x_size] current batch inputs  */
  int32_t *y_class;         /* [capacity, max(1, y_len)] when y_kind == DL_Y_CLASS */
  dl_real *y_real;          /* [capacity, y_size] when DL_Y_REAL        */
  dl_real *out;             /* [capacity, out_size] predictions         */
  double lr;                /* learning rate for the next update        */
  int64_t step;             /* optimiser steps taken so far             */
  uint64_t seed;            /* dropout masks hash (seed, step, site, i) */
  int train_mode;           /* 1: dropout on, batch norm on the batch's statistics */
  int carry;                /* dl_carry: how recurrent layers with carry = true start */
  int track_stats;          /* with train_mode: batch norm updates its running
                               statistics, spectral norm runs its power iteration
                               (a training step; not gradcheck) */
  struct dl_pool *pool;     /* worker threads, or NULL                  */
  /* Called by compute_grads with k once every gradient whose grad_ready
     (dl_model_desc) is >= k is final: the backward functions run from the
     model's last line to its first.  NULL: not called. */
  void (*grads_ready)(struct dl_ctx *ctx, int k);
  void *grads_arg;          /* grads_ready's own                       */
  int shard;                /* the micro-shard of the batch these rows are
                               (train --shards; 0 otherwise): joins the
                               dropout and noise streams, so a draw is keyed
                               by the sample's place in the global batch,
                               whichever process runs it                  */
  /* Batch norm over the global batch when a step runs over micro-shards
     (SyncBatchNorm's meaning; trainer_shard.c): v[0..k), sums over this
     shard's n rows, becomes the same sums over every shard's rows, on every
     rank.  weighted: the values are gradients of this shard's loss (the
     mean over its own rows), so each shard's sums count times its share of
     the global batch's rows, and the total comes back divided by this
     shard's share.  NULL: the batch is these n rows. */
  void (*batch_sum)(struct dl_ctx *ctx, double *v, size_t k, int weighted);
  void *batch_sum_arg;      /* batch_sum's own                          */
  int batch_rows;           /* with batch_sum: the global batch's rows  */
} dl_ctx;

/* The rows of the batch batch norm's statistics are over: n, or every
 * micro-shard's with ctx->batch_sum. */
#define DL_BATCH_ROWS(ctx, n) ((ctx)->batch_sum ? (ctx)->batch_rows : (n))
/* Sums over this shard's rows into the global batch's (ctx->batch_sum). */
#define DL_BATCH_SUM(ctx, v, k, weighted)                                       \
  do {                                                                          \
    if ((ctx)->batch_sum) (ctx)->batch_sum((ctx), (v), (k), (weighted));        \
  } while (0)

/* compute_grads's announcement that the gradients whose grad_ready is >= k
 * are final (dl_model_desc.grad_ready). */
#define DL_GRADS_READY(ctx, k)                                                  \
  do {                                                                          \
    if ((ctx)->grads_ready) (ctx)->grads_ready((ctx), (k));                     \
  } while (0)

/* One update of the train block (`discriminator = update(d_loss, params
 * = D, optimizer = adam(2e-4, beta1 = 0.5))`): a loss, its parameters and
 * its optimiser.  The trainer runs every update in order on each batch;
 * they share ctx->step (the batches trained), so every update of a batch
 * draws the same noise and dropout masks. */
typedef struct dl_update_desc {
  const char *name;         /* the update's name: "discriminator"      */
  const char *loss_name;    /* the loss binding it trains: "d_loss"    */
  double lr;                /* its optimiser's learning rate           */
  /* Its forward (reusing what an earlier update of this batch computed and
     did not change since) and backward: the gradients of its parameters;
     returns its loss with penalties. */
  double (*compute_grads)(dl_ctx *ctx, int n);
  /* Clipping and its optimiser's pass over its parameters with ctx->lr, at
     step ctx->step + 1; does not advance ctx->step.  Nonzero if a value it
     wrote is not finite. */
  int (*apply_update)(dl_ctx *ctx);
  /* Its loss with penalties from scratch, forward only (gradient checks). */
  double (*loss_only)(dl_ctx *ctx, int n);
  /* Its data loss as the last forward() computed it (evaluation). */
  double (*loss)(dl_ctx *ctx);
  int n_params;             /* the parameters it trains: their indexes in */
  const int *params;        /* the tensor table                           */
} dl_update_desc;

enum { DL_MAX_UPDATES = 16 };

typedef struct dl_model_desc {
  const char *name;         /* model name in the .dln              */
  const char *source;       /* .dln path it was compiled from       */
  int x_ndim;
  int64_t x_shape[DL_MAX_DIMS];
  int64_t x_size;           /* elements per sample                  */
  int64_t x_vocab;          /* 0: inputs are real values; > 0: every input element is
                               a token id in [0, x_vocab), stored as a dl_real in
                               ctx->x (`x : class[T, V]`: x_size T, x_vocab V) */
  int stateful;             /* a recurrent layer has carry = true: the trainer streams
                               the data (no shuffling; row r of a batch continues row
                               r of the one before) and sets ctx->carry */
  dl_label_kind y_kind;
  int64_t y_size;           /* classes (DL_Y_CLASS) or elements      */
  int64_t y_len;            /* DL_Y_CLASS: labels per sample.  0 or 1: one; T: one per
                               position (`y : class[T, V]`: y_len T, y_size V), and
                               out[r] is [T, y_size], position-major */
  dl_pred_kind pred_kind;
  int64_t out_size;         /* prediction elements per sample (y_len * y_size for
                               per-position labels)                  */
  size_t state_elems;
  size_t act_elems_per_sample, act_elems_fixed;
  int n_tensors;            /* all tensors in the state block        */
  const dl_tensor_desc *tensors;
  dl_train_config defaults; /* from the train block                  */

  /* Forward and backward on ctx->x / labels for the first n rows: fills every
     gradient, returns the mean loss (with penalties).  No update. */
  double (*compute_grads)(dl_ctx *ctx, int n);
  /* Gradient clipping (if any) and one fused optimiser pass per parameter,
     with ctx->lr; increments ctx->step.  Returns nonzero if a weight or an
     optimiser state value it wrote is NaN or infinite, else 0. */
  int (*apply_update)(dl_ctx *ctx);
  /* Forward only (dropout and batch norm as ctx->train_mode says): writes
     ctx->out and returns the mean data loss of the batch (no penalties).
     Labels are read only when with_loss is nonzero. */
  double (*forward)(dl_ctx *ctx, int n, int with_loss);
  /* Loss as compute_grads sees it (with penalties), forward only: for gradient checks. */
  double (*loss_only)(dl_ctx *ctx, int n);
  /* The train block's updates, when it has any (n_updates > 0): then the
     trainer runs updates[0..n_updates) on every batch instead of the four
     entry points above, which are the first update's (forward excepted),
     and advances ctx->step once per batch.  0: one implicit update. */
  int n_updates;
  const dl_update_desc *updates;

  /* 1: no accuracy is reported, because the prediction's loss is not scored
     against the model's label (an autoencoder's reconstruction, or no label at
     all): a count of right answers would mean nothing.  0 in descriptors
     written before the field existed. */
  int no_acc;
  /* The model's generator, a binding `sample` that reads no input and no
     label (only noise and parameters), or NULL: computes n <= capacity rows
     of it (the noise keyed on ctx->seed and ctx->step) and copies them to
     dst [n, sample_size].  `BIN sample` writes them as images. */
  void (*generate)(dl_ctx *ctx, int n, dl_real *dst);
  int sample_ndim;
  int64_t sample_shape[DL_MAX_DIMS];
  int64_t sample_size;      /* values per sample                       */
  /* The inference graph in ONNX's terms, for `BIN export --onnx` (below);
     NULL in descriptors written before it existed. */
  const struct dl_onnx_graph *onnx;
  /* When compute_grads has finished each gradient, so that a data-parallel
     trainer can send it while backward goes on (DDP's buckets): entry i for
     the i-th DL_T_GRAD tensor of the table, k >= 1 when compute_grads's
     DL_GRADS_READY(ctx, k) says it is final, 0 when only its return does.
     NULL (with updates, or older descriptors): all only at the return. */
  const int *grad_ready;
} dl_model_desc;

/* Class labels per sample: y_len, where 0 (descriptors written before the
 * field existed) means one. */
static inline int64_t dl_model_y_len(const dl_model_desc *m) { return m->y_len > 1 ? m->y_len : 1; }

/* ---- the inference graph in ONNX's terms (emit_onnx.c writes it, onnx.c
 * turns it into a ModelProto with a checkpoint's weights) ----------------- */
enum { DL_ONNX_MAX_IN = 8, DL_ONNX_MAX_ATTRS = 6, DL_ONNX_MAX_INTS = 8 };
typedef enum { DL_ONNX_INT = 1, DL_ONNX_FLOAT, DL_ONNX_INTS } dl_onnx_attr_type;
typedef struct dl_onnx_attr {
  const char *name;
  dl_onnx_attr_type type;
  int n;                    /* DL_ONNX_INTS: how many of i                    */
  int64_t i[DL_ONNX_MAX_INTS]; /* DL_ONNX_INT: i[0]                         */
  double f;                 /* DL_ONNX_FLOAT                                  */
} dl_onnx_attr;
/* One NodeProto: op_type, its inputs (value names, "" for a missing
 * optional one), its one output, its attributes. */
typedef struct dl_onnx_node {
  const char *op, *out;
  int nin;
  const char *in[DL_ONNX_MAX_IN];
  int nattr;
  dl_onnx_attr attr[DL_ONNX_MAX_ATTRS];
} dl_onnx_node;
/* An initializer (float32 unless DL_ONNX_INIT_INT64S), shaped dims:
 * a state tensor by name (its values in any shape of as many elements, or
 * of a multiple of them: the values repeated),
 * an effective weight computed from state tensors, or a constant. */
typedef enum {
  DL_ONNX_INIT_STATE,        /* src[0]'s values                                 */
  DL_ONNX_INIT_WEIGHT_NORM,  /* g * v / ||v|| per row of dim 0: src g, v        */
  DL_ONNX_INIT_SPECTRAL_NORM,/* W / (u . W v): src W_orig, u, v                 */
  DL_ONNX_INIT_FILL,         /* every element is value                          */
  DL_ONNX_INIT_INT64S,       /* int64 ints[0 .. dims[0])                        */
} dl_onnx_init_kind;
typedef struct dl_onnx_init {
  const char *name;
  dl_onnx_init_kind kind;
  const char *src[3];
  int ndim;
  int64_t dims[DL_MAX_DIMS];
  double value;
  int64_t ints[DL_ONNX_MAX_INTS];
} dl_onnx_init;
typedef struct dl_onnx_graph {
  const char *refusal;      /* non-NULL: why the model cannot be exported
                               ("FILE:LINE:COL: ..."), and nothing else is set */
  const char *input, *output; /* value names; the input is [batch, x_shape...] */
  int out_ndim;
  int64_t out_dims[DL_MAX_DIMS]; /* per sample                               */
  const char *output_class; /* a classifier's second output: the int64 class
                               (ArgMax over the last axis), out_dims without
                               the last; else NULL                          */
  int n_nodes, n_inits;
  const dl_onnx_node *nodes;
  const dl_onnx_init *inits;
} dl_onnx_graph;

/* Allocate the state and act blocks for `capacity` rows; NULL on OOM (message in err). */
dl_ctx *dl_ctx_new(const dl_model_desc *m, int capacity, char *err, size_t errlen);
void dl_ctx_free(dl_ctx *ctx);
/* Initialise params from the model's initialisers and seed; zero grads;
 * optimiser state and buffers at their initial values. */
void dl_ctx_init_params(dl_ctx *ctx, uint64_t seed);

/* Checkpoints (safetensors).  Save writes every tensor but the gradients
 * (counts as I64 scalars, as torch's state_dict has them) plus metadata
 * (format, model, dtype, epoch, step, seed, position in an unfinished
 * epoch, CRC-32: see checkpoint.c) atomically.  Load checks names, shapes
 * and dtypes (F32 and F64 files both load, converted) and says what
 * differs; with params_only, optimiser state may be absent (eval, predict,
 * the embedding API); buffers never may.  Both return 0, or -1 with a message in err. */
int dl_ctx_save(const dl_ctx *ctx, const char *path, int64_t epoch, char *err, size_t errlen);
int dl_ctx_load(dl_ctx *ctx, const char *path, int params_only, int64_t *epoch,
                char *err, size_t errlen);

/* The trainer executable's main: train / eval / predict / gradcheck / sample. */
int dl_trainer_main(const dl_model_desc *m, int argc, char **argv);

#endif
