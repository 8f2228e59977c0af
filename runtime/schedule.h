/* schedule.h: learning-rate schedules (PyTorch's StepLR, ExponentialLR,
 * CosineAnnealingLR in closed form) and linear warm-up. */
#ifndef DL_SCHEDULE_H
#define DL_SCHEDULE_H
#include <stdint.h>
#include "dl_model.h"

/* Learning rate for an optimiser step taken during epoch `epoch` (0-based)
 * when `step` steps were taken before it:
 *   base_lr * schedule(epoch) * min(1, (step+1)/warmup_steps).
 * total_epochs stands in for the cosine half period when s->t_max is 0. */
double dl_sched_lr(const dl_schedule *s, double base_lr, int epoch, int total_epochs,
                   int64_t step);

/* The same with the optimiser steps of an epoch known, which the per-step
 * schedules (cosine per_step, one_cycle) need: their rate is a function of
 * the step, over epochs * steps_per_epoch steps in all. */
double dl_sched_lr_steps(const dl_schedule *s, const dl_sched_steps *p, double base_lr, int epoch,
                         int total_epochs, int64_t step, int64_t steps_per_epoch);

/* "constant", "step", "exponential", "cosine" or "one_cycle". */
const char *dl_sched_name(dl_sched_kind k);

#endif
