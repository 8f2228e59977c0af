/* trainer_internal.h: shared between the trainer's source files (trainer.c,
 * trainer_train.c, trainer_eval.c, trainer_gradcheck.c, trainer_sample.c, trainer_export.c,
 * trainer_common.c, trainer_finite.c, trainer_signal.c, checkpoint.c, ctx.c).
 * Not part of the contract with generated code.  The calls go one way:
 * trainer.c calls the commands (dl_tr_cmd_*), the commands call the shared
 * services (trainer_common.c, checkpoint.c, trainer_finite.c,
 * trainer_signal.c), and nothing calls back. */
#ifndef DL_TRAINER_INTERNAL_H
#define DL_TRAINER_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "data.h"
#include "dl_model.h"

/* Random streams.  Large constants keep them apart from the small stream
 * numbers (dropout sites) generated code uses. */
#define DL_STREAM_INIT 0x494E495400000000ull     /* + tensor index: initialisers */
#define DL_STREAM_SHUFFLE 0x5348554600000000ull  /* epoch permutations           */
#define DL_STREAM_GC_X 0x4743580000000000ull     /* gradcheck inputs             */
#define DL_STREAM_GC_Y 0x4743590000000000ull     /* gradcheck labels             */
#define DL_STREAM_SAMPLE 0x53414D5000000000ull   /* sample: draw i of a run      */

/* Exit codes.  A run stopped by a signal (SIGINT, SIGTERM, SIGHUP,
 * SIGPIPE) exits with 128 + its number, as a shell reports a process the
 * signal killed. */
enum { DL_EXIT_OK = 0, DL_EXIT_FAIL = 1, DL_EXIT_USAGE = 2, DL_EXIT_SIGNAL_BASE = 128 };

/* The parsed command line. */
typedef struct dl_opts {
  const char *prog;         /* argv[0], for messages                   */
  const char *cmd;          /* train, eval, predict, gradcheck, sample */
  const char *data_dir;     /* --data, else the model's default         */
  const char *save, *resume, *load, *metrics;
  const char *onnx;         /* export --onnx FILE                      */
  int epochs, batch, threads;
  int save_every;           /* --save-every: also checkpoint every N optimiser steps (0 = off) */
  double lr, eps, tol;
  int eval_mode;            /* gradcheck --mode eval                    */
  int length;               /* sample --length: bytes to generate       */
  double temperature;       /* sample --temperature (> 0)               */
  const char *prompt;       /* sample --prompt ("" when not given)       */
  int count;                /* sample --count of a generator: images      */
  const char *out;          /* sample --out of a generator: the IDX file  */
  uint64_t seed;
  int seed_given;           /* --seed was on the command line           */
  int lr_given;             /* --lr was: it sets every update's rate    */
  int json;                 /* eval --json: one JSON object             */
  int proba;                /* predict --proba: class probabilities      */
  int top;                  /* predict --top K (0: off)                 */
  int header;               /* predict --header: skip the first line    */
  int labelled;             /* predict --labelled: label fields follow  */
  int argc;                 /* the command line, for the metrics header */
  char **argv;
  int validation_given;     /* --validation was on the command line      */
  double validation;        /* --validation F: the last F of the train rows are held out (0: none) */
  const char *early_stop;   /* --early-stop METRIC, or NULL              */
  int patience;             /* --patience N: epochs without improvement  */
  double min_delta;         /* --min-delta X: what counts as improvement */
  const char *save_best;    /* --save-best FILE, or NULL                 */
  int shards;               /* --shards S: micro-shards of a batch (trainer_shard.c) */
  int dist_stats;           /* --dist-stats: print the exchanges' cost at the end */
} dl_opts;


/* Load the train (which=0), test (which=1) or validation (which=2) data of the model into d.
 * Returns 1 if loaded, 0 if the model has no such data, -1 on error
 * (message printed). */
int dl_tr_load_data(const dl_model_desc *m, const dl_opts *o, int which, dl_dataset *d);

/* Rows per batch: --batch, or the whole set (n) when it is 0; -1 with a
 * message when that does not fit the context. */
int dl_tr_capacity(const dl_model_desc *m, int batch, int64_t n);

/* A context with the thread pool of --threads; NULL with a message printed. */
dl_ctx *dl_tr_ctx_open(const dl_model_desc *m, const dl_opts *o, int capacity);
void dl_tr_ctx_close(dl_ctx *ctx);

/* A context sized for `cap` rows with the --load checkpoint's parameters
 * (params only), in eval mode; NULL with a message printed. */
dl_ctx *dl_tr_open_loaded(const dl_model_desc *m, const dl_opts *o, int cap);

/* The model reads token ids and labels every position with a token of the
 * same vocabulary (x : class[T, V], y : class[T, V]): its losses are also
 * reported in bits per character.  A tagger (y : class[T, N], tags rather
 * than tokens) is not. */
static inline int dl_tr_reports_bpc(const dl_model_desc *m) {
  return m->x_vocab > 0 && m->y_kind == DL_Y_CLASS && dl_model_y_len(m) == m->x_size &&
         m->y_size == m->x_vocab;
}

/* Bits per character of a mean cross-entropy in nats. */
static inline double dl_tr_bpc(double loss) { return loss / 0.69314718055994530942; }

/* Whether an accuracy means something: the prediction's loss is scored
 * against the model's label (a class label, or 0/1 or one-hot targets of a
 * binary or argmax head), not against a model value (an autoencoder). */
static inline int dl_tr_has_acc(const dl_model_desc *m) {
  return m->pred_kind != DL_PRED_VALUES && m->y_kind != DL_Y_NONE && !m->no_acc;
}

/* Adds the right answers among ctx->out's first n rows against the labels
 * gathered to *correct, and the decisions made to *total. */
void dl_tr_count_correct(const dl_ctx *ctx, int n, int64_t *correct, int64_t *total);

/* Loss and accuracy of ctx's parameters on d, eval mode. */
typedef struct dl_eval_result {
  double loss;              /* sample-weighted mean of batch losses    */
  double losses[DL_MAX_UPDATES]; /* with updates: each one's loss, likewise */
  double acc;               /* fraction right (of positions, with y_len > 1) */
  int has_acc;              /* dl_tr_has_acc                           */
} dl_eval_result;
/* What train's --dist-stats reports of its evaluations. */
typedef struct dl_eval_stats {
  int64_t *rank_rows;       /* [processes] the rows each rank evaluated */
  int64_t passes;
  double seconds;           /* their time on this rank */
  uint64_t digest;          /* FNV-1a of every result's bits: tests/mpi compares
                               the process counts' */
} dl_eval_stats;
int dl_tr_eval_stats_init(dl_eval_stats *st); /* 0, or -1 (out of memory) */
void dl_tr_eval_stats_free(dl_eval_stats *st);
/* A line on stderr: passes, time, rows by rank, digest. */
void dl_tr_eval_stats_report(const dl_eval_stats *st);
/* Under several processes (dist.h) each rank runs its share of the
 * batches and all end with the same bits, those of one process.  st (or
 * NULL) gets the pass counted. */
void dl_tr_evaluate(dl_ctx *ctx, const dl_dataset *d, int64_t *idx, dl_eval_result *r,
                    dl_eval_stats *st);
/* Update k's loss's name in the reports (metrics, summary, eval): its loss
 * binding's, or UPDATE.LOSS when an earlier update trains the same loss or
 * the name is loss, bpc or acc (test_loss, ... are the reports' own). */
void dl_tr_loss_key(const dl_model_desc *m, int k, char *buf, size_t len);
/* Update k's base learning rate: --lr if given (it sets every update's),
 * else its optimiser's; without updates, --lr or the optimiser's. */
static inline double dl_tr_base_lr(const dl_model_desc *m, const dl_opts *o, int k) {
  return o->lr_given || m->n_updates == 0 ? o->lr : m->updates[k].lr;
}
/* The index of the largest of v[0..n) (the first of equal ones). */
int64_t dl_tr_argmax(const dl_real *v, int64_t n);

/* Streaming, for a stateful model (recurrent layers with carry): the n
 * samples as `cap` streams of L = n / cap consecutive samples, batch b
 * holding sample b of each (row r: sample r*L + b), so that row r of a
 * batch continues row r of the batch before; the n - L*cap left over make
 * a last, shorter batch of their own.  The sample of row r of batch b, and
 * how the batch's carried state starts (dl_carry). */
int64_t dl_tr_stream_sample(int64_t n, int cap, int64_t batch, int r);
int dl_tr_stream_carry(int64_t n, int cap, int64_t batch);

/* ---- checkpoints with a position (checkpoint.c) ----------------------- */

/* Where in training a checkpoint was taken.  A checkpoint written in the
 * middle of an epoch records how many batches of that epoch were trained,
 * so a resumed run skips exactly those (the epoch's order is a pure function
 * of seed and epoch) and ends bit-identical to one that never stopped. */
typedef struct dl_ckpt_pos {
  int64_t epoch;            /* epochs completed                                 */
  int64_t step_in_epoch;    /* batches of epoch `epoch` (0-based) trained       */
  int64_t batch;            /* rows per batch of the run that saved it (0: unknown) */
  double loss_sum;          /* sum of loss * rows over those batches, so the
                               resumed epoch reports the same mean train loss  */
  int n_loss_sums;          /* with updates: each update's such sum            */
  double loss_sums[DL_MAX_UPDATES];
  int64_t acc_correct, acc_total; /* train_acc's counts over those batches
                               (saved as epoch_acc when acc_total > 0)          */
  /* The best epoch so far by the metric --save-best / --early-stop judge
   * by ("" when none), so a resumed run keeps judging against it. */
  char best_metric[16];
  double best_value;
  int64_t best_epoch;       /* 1-based epoch of best_value                 */
  int64_t best_since;       /* epochs since then without improvement        */
  /* schedule = plateau(...): its state (has_plateau 0: none saved) */
  int has_plateau;
  double plateau_scale;     /* the rate's factor so far (1: not reduced)    */
  double plateau_best;      /* the best metric so far                       */
  int64_t plateau_bad;      /* epochs since it improved                     */
} dl_ckpt_pos;

/* dl_ctx_save / dl_ctx_load with the position (pos may be NULL: epoch 0,
 * on load: not wanted).  Checkpoints without position metadata (older ones,
 * or other writers') load as epoch boundaries. */
int dl_ckpt_save(const dl_ctx *ctx, const char *path, const dl_ckpt_pos *pos, char *err,
                 size_t errlen);
int dl_ckpt_load(dl_ctx *ctx, const char *path, int params_only, dl_ckpt_pos *pos, char *err,
                 size_t errlen);

/* ---- micro-shards and processes (trainer_shard.c) --------------------- */

/* A step's gradient over S micro-shards of the batch, this process's S/P
 * of them, summed over all processes in one fixed tree (trainer_shard.c):
 * the same bits for every process count P dividing S. */
typedef struct dl_shards dl_shards;
/* NULL after a message: S not a power of 2, P not dividing it, more
 * shards than rows, or a model whose forward pass couples the samples. */
dl_shards *dl_tr_shards_open(const dl_model_desc *m, int S, int batch);
void dl_tr_shards_close(dl_shards *s);
/* Gathers and runs this process's shards of the nb rows at rows[], leaves
 * the batch's mean gradient in ctx's gradients on every process and returns
 * the batch's mean loss; with count_acc, adds train_acc's counts.  A model
 * with updates calls it once per update k in order (update -1: none), the
 * rows gathered at k = 0 and ctx holding the weights the updates before
 * wrote. */
double dl_tr_shards_grads(dl_shards *s, dl_ctx *ctx, const dl_dataset *d, const int64_t *rows,
                          int nb, int update, int count_acc, int64_t *correct, int64_t *total);
/* 1 if a process was asked to stop (a signal) by the time of the last
 * step's sum: then all know it after the same step, and stop there. */
int dl_tr_shards_stopping(const dl_shards *s);
/* --dist-stats: the exchanges' time and bytes per step, on stderr. */
void dl_tr_shards_report(const dl_shards *s);

/* A rank's micro-shards side by side, for batch norm over the global batch
 * (trainer_lanes.c): lane j has a context of its own (dl_tr_lanes_ctx),
 * whose rows the caller gathers; every lane runs compute_grads, taking
 * turns, and each DL_BATCH_SUM adds over all shards of all ranks. */
typedef struct dl_lanes dl_lanes;
/* 1 if the model's compute_grads sums over the batch (batch norm), its
 * updates reuse each other's forward passes, or its recurrent layers carry
 * their rows' states from batch to batch. */
int dl_tr_lanes_needed(const dl_model_desc *m);
/* L lanes of `rows` rows each; NULL after a message. */
dl_lanes *dl_tr_lanes_open(const dl_model_desc *m, int L, int rows);
void dl_tr_lanes_close(dl_lanes *z);
dl_ctx *dl_tr_lanes_ctx(dl_lanes *z, int j);
/* This step: lane j's rows (0: an empty shard), its share of the global
 * batch's rows, and the global batch's rows. */
void dl_tr_lanes_set(dl_lanes *z, int j, int n, double w, int batch_rows);
/* Parameters, buffers and step settings into every lane; the buffers (a
 * training step's running statistics) back from a lane that ran (-1: none). */
void dl_tr_lanes_load(dl_lanes *z, const dl_ctx *from);
int dl_tr_lanes_store(dl_lanes *z, dl_ctx *to);
/* Runs every lane with rows to the end of compute_grads (the model's or an
 * update's). */
void dl_tr_lanes_run(dl_lanes *z, double (*compute_grads)(dl_ctx *ctx, int n));
double dl_tr_lanes_loss(const dl_lanes *z, int j);

/* ---- the best epoch (trainer_best.c) ---------------------------------- */

struct dl_epoch_stats;
/* 1 if name is one of --early-stop's metrics. */
int dl_tr_metric_known(const char *name);
/* 1 if higher is better (an accuracy), 0 for a loss. */
int dl_tr_metric_maximise(const char *name);
/* The metric's value in an epoch's stats, NaN when it has none. */
double dl_tr_metric_value(const char *name, const struct dl_epoch_stats *s);
/* NULL if a run with these sets can report the metric, else why not. */
const char *dl_tr_metric_missing(const char *name, int has_val, int has_test, int has_acc);
/* Judge epoch `epoch` (1-based) with value v against pos's best; 1 if it
 * is the new best, else the epochs since the best grow by one. */
int dl_tr_best_update(dl_ckpt_pos *pos, const char *metric, double min_delta, int64_t epoch,
                      double v);

/* ---- NaN and Inf (trainer_finite.c) ----------------------------------- */

/* The first tensor of `kind` holding a NaN or an infinity, or NULL; *bad
 * gets the first such value (to say nan, inf or -inf).  One read of each
 * element, vectorised. */
const dl_tensor_desc *dl_tr_find_nonfinite(const dl_ctx *ctx, dl_tensor_kind kind, double *bad);
/* 1 if the n values at p are all finite. */
int dl_tr_all_finite(const dl_real *p, size_t n);
/* "nan", "inf" or "-inf" (or "finite"). */
const char *dl_tr_nonfinite_name(double v);

/* ---- SIGINT, SIGTERM, SIGHUP, SIGPIPE (trainer_signal.c) --------------- */

/* From here on these signals only set a flag (a second SIGINT, SIGTERM or
 * SIGHUP ends the process at once, saying what became of a save in
 * progress at `save`, which may be NULL), and SIGXFSZ is ignored so that a
 * file size limit makes a checkpoint write fail with EFBIG instead of
 * killing the trainer mid-save. */
void dl_tr_signals_catch(const char *save);
/* The previous dispositions back. */
void dl_tr_signals_restore(void);
/* 1 around a checkpoint save, 0 after it. */
void dl_tr_signals_saving(int on);
/* The signal that asked the run to stop, or 0. */
int dl_tr_stop_signal(void);

int dl_tr_cmd_train(const dl_model_desc *m, const dl_opts *o);
int dl_tr_cmd_eval(const dl_model_desc *m, const dl_opts *o);
int dl_tr_cmd_predict(const dl_model_desc *m, const dl_opts *o);
int dl_tr_cmd_gradcheck(const dl_model_desc *m, const dl_opts *o);
int dl_tr_cmd_sample(const dl_model_desc *m, const dl_opts *o);
/* `sample` of a model with a generator (trainer_generate.c): --count
 * images to --out (IDX) and its .png grid. */
int dl_tr_cmd_generate(const dl_model_desc *m, const dl_opts *o);
enum { DL_GENERATE_MAX_COUNT = 1000000 };
int dl_tr_cmd_export(const dl_model_desc *m, const dl_opts *o);

/* 1 if `sample` can run on the model: token inputs, a label per position
 * over the same tokens, logits out (a next-token model).  Else 0 and, when
 * why is not NULL, what is missing. */
int dl_tr_can_sample(const dl_model_desc *m, char *why, size_t len);
/* A draw from softmax(logits[0..n) / temperature) with u uniform in [0, 1)
 * (inverse CDF, in order); temperature > 0, a tiny one picks the largest
 * logit (equal largest ones by u).  -1 if a logit is NaN or infinite. */
int64_t dl_tr_draw(const dl_real *logits, int64_t n, double temperature, double u);

#endif
