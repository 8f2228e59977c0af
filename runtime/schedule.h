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

/* "constant", "step", "exponential" or "cosine". */
const char *dl_sched_name(dl_sched_kind k);

#endif
