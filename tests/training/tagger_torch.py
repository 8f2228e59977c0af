"""A sequence tagger (tagger.dln: one_hot -> GRU -> dense -> cross-entropy
over every position) against PyTorch, in float64, on the same weights.

usage: /usr/bin/python3 tagger_torch.py --dlnc DLNC --work DIR

Writes 48 rows of tagger_gen.awk's task as CSV (12 token ids, then 12 tags),
builds tagger.dln's model with `batch = full` and `dlnc build --f64`, trains
one step to get initial weights (s1), then from those weights with fresh Adam
state (s0) K steps; torch.nn.GRU + Linear, loaded from s0, takes the same K
steps with torch.optim.Adam.  Compared: every parameter and Adam state
tensor (relative error below 1e-9), and the per-epoch train_loss (1e-7: the
metrics file has 9 significant digits).  Exit 0 pass, 1 fail, 77 without torch.
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
import compare  # noqa: E402  (st_read, st_write, run, read_metrics)

T, V, N, H, K, LR = 12, 4, 3, 16, 5, 0.01


def write_data(path, n, seed):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            x = [rng.randrange(V) for _ in range(T)]
            y = [(x[t] + (x[t - 1] if t else 0)) % N for t in range(T)]
            f.write(",".join(map(str, x + y)) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlnc", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
    except ImportError:
        print("torch or numpy missing: skipped")
        return 77
    torch.set_default_dtype(torch.float64)
    os.makedirs(a.work, exist_ok=True)
    P = lambda f: os.path.join(a.work, f)  # noqa: E731
    for f in os.listdir(a.work):
        if f.endswith((".jsonl", ".st")):
            os.remove(P(f))
    write_data(P("train.csv"), 48, 5)
    with open(P("tagger.dln"), "w") as f:
        f.write("model tagger {\n  input  x : class[%d, %d]\n  label  y : class[%d, %d]\n"
                "  h      = gru(one_hot(x), %d)\n  logits = dense(h, %d)\n"
                "  loss   = cross_entropy(logits, y)\n}\n\ntrain tagger {\n"
                "  data      = csv(\"train.csv\")\n  batch     = full\n  epochs    = %d\n"
                "  optimizer = adam(lr = %g)\n  seed      = 3\n}\n" % (T, V, T, N, H, N, K, LR))
    binp = P("tagger")
    compare.run([a.dlnc, "build", "--f64", P("tagger.dln"), "-o", binp])
    compare.run([binp, "train", "--data", a.work, "--epochs", "1", "--save", P("s1.st")])
    s1, meta1, dtypes = compare.st_read(P("s1.st"))
    params = [k for k in s1 if not k.endswith((".exp_avg", ".exp_avg_sq"))]
    s0 = {k: (s1[k] if k in params else np.zeros_like(s1[k])) for k in s1}
    meta0 = {k: v for k, v in dict(meta1, epoch="0", step="0").items() if k != "crc32"}
    compare.st_write(P("s0.st"), s0, dtypes, meta0)
    compare.run([binp, "train", "--data", a.work, "--resume", P("s0.st"), "--epochs", str(K),
                 "--save", P("f.st"), "--metrics", P("m.jsonl")])
    got, _, _ = compare.st_read(P("f.st"))
    metrics = compare.read_metrics(P("m.jsonl"))

    # torch: the same network, weights and steps
    rows = np.loadtxt(P("train.csv"), delimiter=",", dtype=np.int64, ndmin=2)
    x = torch.nn.functional.one_hot(torch.from_numpy(rows[:, :T]), V).double()
    y = torch.from_numpy(rows[:, T:])
    gru = torch.nn.GRU(V, H, batch_first=True)
    lin = torch.nn.Linear(H, N)
    mods = {"h": gru, "logits": lin}
    with torch.no_grad():
        for k in params:
            layer, name = k.split(".", 1)
            getattr(mods[layer], name).copy_(torch.from_numpy(s0[k]))
    named = {"%s.%s" % (l, n): p for l, m in mods.items() for n, p in m.named_parameters()}
    if sorted(named) != sorted(params):
        print("FAIL: checkpoint parameters %s, torch's %s" % (sorted(params), sorted(named)))
        return 1
    opt = torch.optim.Adam(list(named.values()), lr=LR)
    losses = []
    for _ in range(K):
        opt.zero_grad()
        h, _ = gru(x)
        loss = torch.nn.functional.cross_entropy(lin(h).reshape(-1, N), y.reshape(-1))
        loss.backward()
        losses.append(loss.item())
        opt.step()

    worst, bad = 0.0, []
    def rel(what, g, w, tol=1e-9):
        nonlocal worst
        e = float(np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-30))
        worst = max(worst, e)
        if not e < tol:
            bad.append("%s: relative error %.3g" % (what, e))
    for k, p in named.items():
        rel(k, got[k], p.detach().numpy())
        st = opt.state[p]
        rel(k + ".exp_avg", got[k + ".exp_avg"], st["exp_avg"].numpy())
        rel(k + ".exp_avg_sq", got[k + ".exp_avg_sq"], st["exp_avg_sq"].numpy())
    for e in range(1, K + 1):
        # the metrics file prints 9 significant digits
        rel("train_loss of epoch %d" % e, np.array(metrics[e]["train_loss"]),
            np.array(losses[e - 1]), 1e-7)
    if bad:
        print("FAIL:\n  " + "\n  ".join(bad))
        return 1
    print("tagger: %d Adam steps match torch (largest relative error %.3g)" % (K, worst))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except compare.Failed as e:
        print("FAIL: %s" % e)
        sys.exit(1)
