/* schedule.c: learning-rate schedules; see schedule.h. */
#include "schedule.h"
#include <math.h>

/* M_PI is POSIX, not C11. */
static const double PI = 3.14159265358979323846;

/* The epoch part, without warm-up.  Closed forms (not PyTorch's recursive
 * updates) so the value is a pure function of the epoch and a resumed run
 * gets exactly the rate a straight run would have used. */
static double epoch_lr(const dl_schedule *s, double base_lr, int epoch, int total_epochs) {
  switch (s->kind) {
  case DL_SCHED_STEP:
    /* step_size <= 0 would divide by zero: treat it as "never decays". */
    if (s->step_size <= 0) return base_lr;
    return base_lr * pow(s->gamma, (double)(epoch / s->step_size));
  case DL_SCHED_EXPONENTIAL:
    return base_lr * pow(s->gamma, (double)epoch);
  case DL_SCHED_COSINE: {
    int t_max = s->t_max > 0 ? s->t_max : total_epochs;
    if (t_max <= 0) t_max = 1;
    double c = cos(PI * (double)epoch / (double)t_max);
    return s->eta_min + (base_lr - s->eta_min) * (1.0 + c) / 2.0;
  }
  case DL_SCHED_CONSTANT:
  default:
    return base_lr;
  }
}

static double warmup_factor(int64_t warmup_steps, int64_t step) {
  if (warmup_steps <= 0) return 1.0;
  double f = (double)(step + 1) / (double)warmup_steps;
  return f < 1.0 ? f : 1.0;
}

double dl_sched_lr(const dl_schedule *s, double base_lr, int epoch, int total_epochs,
                   int64_t step) {
  return epoch_lr(s, base_lr, epoch, total_epochs) * warmup_factor(s->warmup_steps, step);
}

const char *dl_sched_name(dl_sched_kind k) {
  switch (k) {
  case DL_SCHED_STEP: return "step";
  case DL_SCHED_EXPONENTIAL: return "exponential";
  case DL_SCHED_COSINE: return "cosine";
  case DL_SCHED_CONSTANT: default: return "constant";
  }
}
