/* trainer_best.c: the metric --early-stop and --save-best judge epochs by,
 * and the best epoch so far (as Keras's EarlyStopping: an epoch improves
 * when it beats the best by more than --min-delta, lower for a loss, higher
 * for an accuracy; --patience epochs in a row that do not end the run).
 * The best travels in checkpoints (dl_ckpt_pos), so a resumed run judges
 * against the same best as one that never stopped. */
#include "progress.h"
#include "trainer_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The metrics one can judge by, what each needs, which way is better. */
static const struct metric_def {
  const char *name;
  int maximise;
} METRICS[] = {
    {"val_loss", 0}, {"val_acc", 1}, {"test_loss", 0}, {"test_acc", 1}, {"train_loss", 0},
};
enum { N_METRICS = (int)(sizeof METRICS / sizeof METRICS[0]) };

static const struct metric_def *find_metric(const char *name) {
  for (int i = 0; name && i < N_METRICS; i++)
    if (strcmp(METRICS[i].name, name) == 0) return &METRICS[i];
  return NULL;
}

int dl_tr_metric_known(const char *name) { return find_metric(name) != NULL; }

int dl_tr_metric_maximise(const char *name) {
  const struct metric_def *d = find_metric(name);
  return d && d->maximise;
}

/* The metric's value in s, or NaN when the epoch has none. */
double dl_tr_metric_value(const char *name, const dl_epoch_stats *s) {
  if (!strcmp(name, "train_loss")) return s->train_loss;
  if (!strcmp(name, "test_loss")) return s->has_test ? s->test_loss : NAN;
  if (!strcmp(name, "test_acc")) return s->has_acc ? s->test_acc : NAN;
  if (!strcmp(name, "val_loss")) return s->has_val ? s->val_loss : NAN;
  if (!strcmp(name, "val_acc")) return s->has_val_acc ? s->val_acc : NAN;
  return NAN;
}

/* Whether the run can report the metric: NULL if so, else why not. */
const char *dl_tr_metric_missing(const char *name, int has_val, int has_test, int has_acc) {
  if (!strncmp(name, "val_", 4) && !has_val)
    return "there is no validation set (give --validation F, or validation in the train block)";
  if (!strncmp(name, "test_", 5) && !has_test) return "the model has no test set";
  if (strstr(name, "_acc") && !has_acc) return "the model reports no accuracy";
  return NULL;
}

/* Epoch e's value v against the best in pos: 1 if it is the new best. */
int dl_tr_best_update(dl_ckpt_pos *pos, const char *metric, double min_delta, int64_t epoch,
                      double v) {
  const struct metric_def *d = find_metric(metric);
  int first = strcmp(pos->best_metric, metric) != 0;
  int better = isfinite(v) && (first || (d && d->maximise ? v > pos->best_value + min_delta
                                                          : v < pos->best_value - min_delta));
  if (better) {
    snprintf(pos->best_metric, sizeof pos->best_metric, "%s", metric);
    pos->best_value = v;
    pos->best_epoch = epoch;
    pos->best_since = 0;
  } else if (!first) {
    pos->best_since++;
  }
  return better;
}
