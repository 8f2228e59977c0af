/* progress.h: the trainer's progress bar (stderr, terminals only), its
 * per-epoch summary line (stdout) and the --metrics JSON lines. */
#ifndef DL_PROGRESS_H
#define DL_PROGRESS_H
#include <stdint.h>
#include <stdio.h>
#include "dl_model.h"

typedef struct dl_progress {
  int enabled;              /* stderr is a terminal                    */
  int drawn;                /* something is on the line to clear       */
  int epoch, epochs;        /* 1-based epoch being run, of epochs      */
  int64_t total;            /* samples in the epoch                    */
  int64_t skipped;          /* of those, done before this run (resumed): not in the rate */
  double t0, last;          /* epoch start, last redraw (seconds)      */
} dl_progress;

/* enabled = isatty(stderr) unless forced off (force_off != 0). */
void dl_progress_init(dl_progress *p, int force_off);
void dl_progress_begin(dl_progress *p, int epoch, int epochs, int64_t total);
/* The epoch resumes with `skipped` samples already trained (ETA's rate). */
void dl_progress_skip(dl_progress *p, int64_t skipped);
/* Redraws at most ~10 times a second; cheap to call every step. */
void dl_progress_update(dl_progress *p, int64_t done, double mean_loss);
/* The bar's ETA: seconds left in the epoch (done of total samples, the
 * first `skipped` of them trained before a resume, the others in `elapsed`
 * seconds) at its rate so far, and in the run (1-based epoch of epochs,
 * later ones at the same rate); -1 when nothing is known yet. */
void dl_progress_eta(double elapsed, int64_t skipped, int64_t done, int64_t total, int epoch,
                     int epochs, double *epoch_left, double *run_left);
/* Clears the bar so the summary line starts on a clean line. */
void dl_progress_end(dl_progress *p);

typedef struct dl_epoch_stats {
  int epoch, epochs;        /* 1-based epoch just finished, of epochs  */
  double train_loss;        /* sample-weighted mean over the epoch     */
  int has_bpc;              /* train_bpc (and test_bpc with has_test) valid:
                               a next-token model's losses in bits per byte */
  double train_bpc, test_bpc;
  int has_test;             /* test_loss valid                         */
  double test_loss;
  int has_acc;              /* test_acc valid                          */
  double test_acc;
  int has_train_acc;        /* train_acc valid                         */
  double train_acc;         /* of the training batches as they were trained */
  double seconds;           /* wall time of the epoch, eval included   */
  double samples_per_s;     /* training samples / training time        */
  double lr;                /* rate of the epoch's last step (the first update's) */
  int n_losses;             /* with updates: each update's loss, by its binding's name */
  const char *loss_names[DL_MAX_UPDATES];
  double train_losses[DL_MAX_UPDATES], test_losses[DL_MAX_UPDATES];
  /* A validation split or set (--validation, the train block's validation):
   * evaluated like the test set; val_rows held out, train_rows trained on. */
  int has_val, has_val_acc;
  double val_loss, val_acc;
  int64_t val_rows, train_rows;
} dl_epoch_stats;

/* `epoch 3/10  train_loss 0.3124  test_loss 0.3411  test_acc 0.8765  12.3 s  48712 samples/s`;
 * with has_bpc, train_bpc and test_bpc follow their losses. */
void dl_print_epoch(FILE *out, const dl_epoch_stats *s);
/* One JSON object and a newline, flushed; -1 if the write failed. */
int dl_metrics_append(FILE *out, const dl_epoch_stats *s);

/* What the header record of a metrics run says: enough to tell two runs
 * appended to one file apart, and to redo one. */
typedef struct dl_run_header {
  const char *model, *source;
  uint64_t seed;
  int threads, batch, epochs;
  double lr;
  const char *resume;       /* NULL: a fresh start                     */
  int argc;                 /* the whole command line (argv[0] first)  */
  char **argv;
} dl_run_header;

/* `{"run":{"model":...,"started":"2026-12-06T08:30:00Z","options":[...]}}`
 * and a newline, flushed; -1 if the write failed. */
int dl_metrics_header(FILE *out, const dl_run_header *h);

/* Monotonic clock in seconds. */
double dl_progress_now(void);

#endif
