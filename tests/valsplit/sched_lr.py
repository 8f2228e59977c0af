"""sched_lr.py METRICS KIND EPOCHS STEPS_PER_EPOCH LR [ARGS...]: the lr column
of a dlnc --metrics file (the rate of each epoch's last optimiser step)
against torch's scheduler stepped once per optimiser step:
  one_cycle MAX_LR PCT_START DIV FINAL_DIV  torch.optim.lr_scheduler.OneCycleLR
                                            (cos annealing, no momentum cycling)
  cosine                                    CosineAnnealingLR(T_max = all steps)
  plateau FACTOR PATIENCE METRIC MIN_LR     ReduceLROnPlateau fed the metric column
                                            (mode max for accuracies), once an epoch"""
import json
import sys

import torch

path, kind, epochs, nb, lr = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
# epoch records only (each run starts with a header record {"run": ...})
rows = [r for r in (json.loads(line) for line in open(path) if line.strip()) if "epoch" in r]
total = epochs * nb
opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
if kind == "plateau":
    factor, patience, metric, min_lr = float(sys.argv[6]), int(sys.argv[7]), sys.argv[8], float(sys.argv[9])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max" if metric.endswith("acc") else "min",
                                                       factor=factor, patience=patience, min_lr=min_lr)
    want = []
    for row in rows:
        want.append(opt.param_groups[0]["lr"])
        sched.step(row[metric])
    if min(want) == max(want):
        sys.exit(f"FAIL plateau: the rate was never reduced ({want[0]}): the test shows nothing")
    nb = 1
elif kind == "one_cycle":
    max_lr, pct, div, fdiv = map(float, sys.argv[6:10])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=pct,
                                                div_factor=div, final_div_factor=fdiv,
                                                anneal_strategy="cos", cycle_momentum=False)
else:
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
if kind != "plateau":
    want = []
    for k in range(total):
        if (k + 1) % nb == 0:
            want.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
assert len(rows) == epochs, f"{len(rows)} epochs in {path}, expected {epochs}"
worst = 0.0
for e, (row, w) in enumerate(zip(rows, want)):
    err = abs(row["lr"] - w) / max(abs(w), 1e-30)
    worst = max(worst, err)
    if err > 1e-8:  # the metrics print 9 significant digits
        sys.exit(f"FAIL {kind}: epoch {e + 1} lr {row['lr']!r}, torch {w!r}")
print(f"{kind}: {epochs} epochs match torch (worst relative error {worst:.2e})")
