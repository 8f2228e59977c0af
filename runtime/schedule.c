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

static double warmup_factor(int64_t warmup_steps, int64_t step);

/* Cosine annealing from start to end as pct goes 0 to 1 (torch's _annealing_cos). */
static double anneal_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (cos(PI * pct) + 1.0);
}

/* torch.optim.lr_scheduler.OneCycleLR (three_phase = False), the rate of
 * step `step` (0-based) of `total` steps, as its get_lr at step_num = step. */
static double one_cycle_lr(const dl_sched_steps *p, double base_lr,
                           int64_t step, int64_t total) {
  double max_lr = p->max_lr > 0 ? p->max_lr : base_lr;
  double initial = max_lr / p->div_factor, min_lr = initial / p->final_div_factor;
  double end1 = p->pct_start * (double)total - 1.0, end2 = (double)total - 1.0;
  double t = (double)(step < total ? step : total - 1);
  if (t <= end1) return anneal_cos(initial, max_lr, end1 > 0 ? t / end1 : 1.0);
  return anneal_cos(max_lr, min_lr, end2 > end1 ? (t - end1) / (end2 - end1) : 1.0);
}

/* The per-step schedules; -1 if s is not one. */
static double step_lr(const dl_schedule *s, const dl_sched_steps *p, double base_lr, int64_t step,
                      int64_t total) {
  if (!p) return -1.0;
  if (total < 1) total = 1;
  if (s->kind == DL_SCHED_ONE_CYCLE) return one_cycle_lr(p, base_lr, step, total);
  if (s->kind == DL_SCHED_COSINE && p->per_step) {
    int64_t t_max = s->t_max > 0 ? s->t_max : total;
    return s->eta_min + (base_lr - s->eta_min) * (1.0 + cos(PI * (double)step / (double)t_max)) / 2.0;
  }
  return -1.0;
}

double dl_sched_lr_steps(const dl_schedule *s, const dl_sched_steps *p, double base_lr, int epoch,
                         int total_epochs, int64_t step, int64_t steps_per_epoch) {
  double lr = step_lr(s, p, base_lr, step, (int64_t)total_epochs * steps_per_epoch);
  if (lr < 0) lr = epoch_lr(s, base_lr, epoch, total_epochs);
  return lr * warmup_factor(s->warmup_steps, step);
}

static double warmup_factor(int64_t warmup_steps, int64_t step) {
  if (warmup_steps <= 0) return 1.0;
  double f = (double)(step + 1) / (double)warmup_steps;
  return f < 1.0 ? f : 1.0;
}

double dl_sched_lr(const dl_schedule *s, double base_lr, int epoch, int total_epochs,
                   int64_t step) {
  return dl_sched_lr_steps(s, NULL, base_lr, epoch, total_epochs, step, 1);
}

const char *dl_sched_name(dl_sched_kind k) {
  switch (k) {
  case DL_SCHED_STEP: return "step";
  case DL_SCHED_EXPONENTIAL: return "exponential";
  case DL_SCHED_COSINE: return "cosine";
  case DL_SCHED_ONE_CYCLE: return "one_cycle";
  case DL_SCHED_PLATEAU: return "plateau";
  case DL_SCHED_CONSTANT: default: return "constant";
  }
}
