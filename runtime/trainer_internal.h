/* trainer_internal.h: shared between the trainer's source files (trainer.c,
 * trainer_train.c, trainer_eval.c, trainer_gradcheck.c, ctx.c).  Not part of
 * the contract with generated code. */
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

/* Exit codes. */
enum { DL_EXIT_OK = 0, DL_EXIT_FAIL = 1, DL_EXIT_USAGE = 2 };

/* The parsed command line. */
typedef struct dl_opts {
  const char *prog;         /* argv[0], for messages                   */
  const char *cmd;          /* train, eval, predict, gradcheck         */
  const char *data_dir;     /* --data, else the model's default         */
  const char *save, *resume, *load, *metrics;
  int epochs, batch, threads;
  double lr, eps, tol;
  uint64_t seed;
  int seed_given;           /* --seed was on the command line           */
} dl_opts;

/* Load the train (which=0) or test (which=1) data of the model into d.
 * Returns 1 if loaded, 0 if the model has no such data, -1 on error
 * (message printed). */
int dl_tr_load_data(const dl_model_desc *m, const dl_opts *o, int which, dl_dataset *d);

/* Rows per batch: --batch, or the whole set (n) when it is 0; -1 with a
 * message when that does not fit the context. */
int dl_tr_capacity(const dl_model_desc *m, int batch, int64_t n);

/* A context with the thread pool of --threads; NULL with a message printed. */
dl_ctx *dl_tr_ctx_open(const dl_model_desc *m, const dl_opts *o, int capacity);
void dl_tr_ctx_close(dl_ctx *ctx);

/* Loss and accuracy of ctx's parameters on d, eval mode. */
typedef struct dl_eval_result {
  double loss;              /* sample-weighted mean of batch losses    */
  double acc;               /* fraction right                          */
  int has_acc;              /* 0 for DL_PRED_VALUES                    */
} dl_eval_result;
void dl_tr_evaluate(dl_ctx *ctx, const dl_dataset *d, int64_t *idx, dl_eval_result *r);

int dl_tr_cmd_train(const dl_model_desc *m, const dl_opts *o);
int dl_tr_cmd_eval(const dl_model_desc *m, const dl_opts *o);
int dl_tr_cmd_predict(const dl_model_desc *m, const dl_opts *o);
int dl_tr_cmd_gradcheck(const dl_model_desc *m, const dl_opts *o);

#endif
