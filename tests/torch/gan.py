#!/usr/bin/python3
"""A GAN's alternating updates against PyTorch, on the same weights and noise.

    /usr/bin/python3 tests/torch/gan.py --dlnc DLNC --work DIR

An MLP GAN (G: dense without bias, batch norm, ReLU, dense, sigmoid; D:
dense, leaky ReLU, dropout, dense) with two updates, each with its own Adam
(betas 0.5, 0.999), trains two epochs of three minibatches (dlnc build
--f64).  From the checkpoint of the first epoch (weights, buffers and both
optimisers' state), torch redoes the second as its DCGAN example does: per batch, the noise
z, fake = G(z) once; D's step on D(real) and D(fake.detach()); then G's step
on D(fake) through the updated D.  Torch is given dlnc's own random numbers
(compare.py's replica of the trainer's generator): the batch's rows in the
trainer's shuffled order, the noise, and each of the three D applications'
dropout masks.  Compared after the two epochs: every parameter, G's batch
norm buffers (its running statistics move once per batch, as torch's do
when G runs once), both optimisers' state, each epoch's two losses in the
metrics, and that `sample` writes images from the trained G.  Tolerance 1e-9
(relative: float64 with other summation orders).
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import (M64, Failed, dl_rng_normal, dl_rng_u64, dl_shuffle,  # noqa: E402
                     read_metrics, run, st_read)

N, BATCH, EPOCHS, SEED, Z, PIX, P_DROP, LR_D, LR_G = 96, 32, 2, 5, 3, 4, 0.25, 0.01, 0.02
MODEL = """
block Generator(hidden = 8, pixels = %d) {
  input z
  fc1 = dense(z, hidden, bias = false)
  bn1 = relu(batch_norm(fc1))
  fc2 = sigmoid(dense(bn1, pixels))
  return fc2
}

block Discriminator(hidden = 6, p = %g) {
  input x
  fc1 = dropout(leaky_relu(dense(x, hidden), 0.2), p)
  fc2 = dense(fc1, 1)
  return fc2
}

model gan {
  input  real : f32[%d]
  G      = Generator()
  D      = Discriminator()
  fake   = G(randn(%d))
  d_real = D(real)
  d_fake = D(detach(fake))
  d_loss = bce_with_logits(d_real, ones_like(d_real)) + bce_with_logits(d_fake, zeros_like(d_fake))
  g_loss = bce_with_logits(D(fake), ones_like(d_fake))
  sample = G(randn(%d))
}

train gan {
  data          = csv("real.csv")
  batch         = %d
  epochs        = %d
  seed          = %d
  discriminator = update(d_loss, params = D, optimizer = adam(%g, beta1 = 0.5))
  generator     = update(g_loss, params = G, optimizer = adam(%g, beta1 = 0.5))
}
""" % (PIX, P_DROP, PIX, Z, Z, BATCH, EPOCHS, SEED, LR_D, LR_G)


def make_data():
    """N rows of PIX values in [0, 1] with some structure (a ramp and its mirror)."""
    rows = []
    for i in range(N):
        t = (i * 37 % N) / N
        rows.append([t, 1 - t, (t * 3) % 1, 0.5 + 0.4 * (t - 0.5)][:PIX])
    return rows


def sites(c_source, call):
    """The sites of `call` (dl_noise, dl_dropout_keep) in the order the
    generated C first uses them: the order the forward pass meets them."""
    out = []
    for s in re.findall(r"%s\(ctx, (\d+)," % call, c_source):
        if int(s) not in out:
            out.append(int(s))
    return out


def check(dlnc, work):
    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.set_default_dtype(torch.float64)
    os.makedirs(work, exist_ok=True)
    P = lambda f: os.path.join(work, f)  # noqa: E731
    data = make_data()
    with open(P("real.csv"), "w") as f:
        f.write("".join(",".join("%.6f" % v for v in r) + "\n" for r in data))
    with open(P("gan.dln"), "w") as f:
        f.write(MODEL)
    binp = P("gan")
    run([dlnc, "build", "--f64", P("gan.dln"), "-o", binp])
    run([dlnc, "emit", "--f64", P("gan.dln"), "-o", P("gen")])
    with open(P("gen/gan.c")) as f:
        src = f.read()
    noise_sites, drop_sites = sites(src, "dl_noise"), sites(src, "dl_dropout_keep")
    if len(noise_sites) < 1 or len(drop_sites) != 3:
        raise Failed("expected a noise site for z and three dropout sites (D applied three times), "
                     "found %s and %s" % (noise_sites, drop_sites))
    for f in ("m.jsonl",):
        if os.path.exists(P(f)):
            os.remove(P(f))
    run([binp, "train", "--save", P("s1.safetensors"), "--epochs", "1"])
    run([binp, "train", "--resume", P("s1.safetensors"), "--save", P("s2.safetensors"),
         "--metrics", P("m.jsonl")])
    s0, meta1, _ = st_read(P("s1.safetensors"))
    step = int(meta1.get("step", -1))
    if step != N // BATCH:
        raise Failed("after one epoch the checkpoint says step %s, expected %d (a step per batch)"
                     % (meta1.get("step"), N // BATCH))
    s2, meta2, _ = st_read(P("s2.safetensors"))

    # the same networks in torch, loaded strictly from the initial checkpoint
    class Generator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(Z, 8, bias=False)
            self.bn1 = torch.nn.BatchNorm1d(8)
            self.fc2 = torch.nn.Linear(8, PIX)

        def forward(self, z):
            return torch.sigmoid(self.fc2(F.relu(self.bn1(self.fc1(z)))))

    class Discriminator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(PIX, 6)
            self.fc2 = torch.nn.Linear(6, 1)

        def forward(self, x, keep):
            h = F.leaky_relu(self.fc1(x), 0.2)
            return self.fc2(torch.where(keep, h * (1.0 / (1.0 - P_DROP)), torch.zeros_like(h)))

    class Gan(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.G, self.D = Generator(), Discriminator()

    net = Gan()
    sd = net.state_dict()  # the checkpoint's names are the modules' (strict)
    net.load_state_dict({k: torch.from_numpy(np.asarray(s0[k]).copy()).to(sd[k].dtype) for k in sd},
                        strict=True)
    G, D = net.G, net.D
    opt_d = torch.optim.Adam(D.parameters(), lr=LR_D, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=LR_G, betas=(0.5, 0.999))
    # each optimiser's state after the first epoch, under dlnc's names
    for opt, prefix in ((opt_d, "D."), (opt_g, "G.")):
        names = [k for k, _ in net.named_parameters() if k.startswith(prefix)]
        for name, p in zip(names, opt.param_groups[0]["params"]):
            opt.state[p] = {"step": torch.tensor(float(step)),
                            "exp_avg": torch.from_numpy(s0[name + ".exp_avg"].copy()),
                            "exp_avg_sq": torch.from_numpy(s0[name + ".exp_avg_sq"].copy())}

    def noise(site, step, rows, per):
        return torch.tensor([[dl_rng_normal(SEED, 0x0E0000 + site, ((step << 36) ^ (r * per + j)) & M64)
                              for j in range(per)] for r in range(rows)])

    def keep(site, step, rows, per):
        # dl_dropout_keep: a float uniform with 24 bits against p
        return torch.tensor([[(dl_rng_u64(SEED, 0x0D0000 + site, ((step << 36) ^ (r * per + j)) & M64)
                               >> 40) / 16777216.0 >= P_DROP for j in range(per)]
                             for r in range(rows)])

    # the values as the CSV holds them, kept as float32 by the loader
    X = torch.tensor([[float("%.6f" % v) for v in r] for r in data]).float().double()
    want_losses = []
    G.train()
    D.train()
    for epoch in range(1, EPOCHS):
        perm = dl_shuffle(N, SEED, epoch)
        sums = [0.0, 0.0]
        for b in range(0, N, BATCH):
            rows = perm[b:b + BATCH]
            real = X[rows]
            n = len(rows)
            fake = G(noise(noise_sites[0], step, n, Z))
            opt_d.zero_grad()
            d_loss = (F.binary_cross_entropy_with_logits(D(real, keep(drop_sites[0], step, n, 6)),
                                                         torch.ones(n, 1))
                      + F.binary_cross_entropy_with_logits(
                          D(fake.detach(), keep(drop_sites[1], step, n, 6)), torch.zeros(n, 1)))
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad()
            g_loss = F.binary_cross_entropy_with_logits(D(fake, keep(drop_sites[2], step, n, 6)),
                                                        torch.ones(n, 1))
            g_loss.backward()
            opt_g.step()
            sums[0] += float(d_loss) * n
            sums[1] += float(g_loss) * n
            step += 1
        want_losses.append((sums[0] / N, sums[1] / N))

    want = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    for opt, prefix in ((opt_d, "D."), (opt_g, "G.")):
        names = [k for k, _ in net.named_parameters() if k.startswith(prefix)]
        for name, p in zip(names, opt.param_groups[0]["params"]):
            for s in ("exp_avg", "exp_avg_sq"):
                want[name + "." + s] = opt.state[p][s].numpy()
    missing = sorted(set(want) - set(s2))
    extra = sorted(set(s2) - set(want))
    if missing or extra:
        raise Failed("checkpoint tensors: missing %s, unexpected %s" % (missing, extra))
    worst, where = 0.0, ""
    for k, w in want.items():
        got = np.asarray(s2[k], dtype="f8")
        w = np.asarray(w, dtype="f8")
        err = float(np.max(np.abs(got - w)) / (np.max(np.abs(w)) + 1e-300)) if w.size else 0.0
        if err > worst:
            worst, where = err, k
        if not err < 1e-9:
            raise Failed("%s after %d batches: relative error %.3g (dlnc %s, torch %s)"
                         % (k, step, err, got.ravel()[:4], w.ravel()[:4]))
    if meta2.get("step") != str(step):
        raise Failed("checkpoint step %s, expected %d (one per batch, not one per update)"
                     % (meta2.get("step"), step))

    m = read_metrics(P("m.jsonl"))
    for e, (wd, wg) in enumerate(want_losses, 2):
        r = m.get(e, {})
        for key, w in (("d_loss", wd), ("g_loss", wg)):
            got = r.get(key)
            if got is None or abs(got - w) > 1e-8 * abs(w):  # printed with 9 digits
                raise Failed("epoch %d metrics %s = %s, torch %.12g (line: %s)"
                             % (e, key, got, w, json.dumps(r)))

    # sample: G alone on its own noise, in evaluation mode (batch norm on
    # the running statistics); pixels back through scale 1 to bytes
    out = P("samples.idx")
    run([binp, "sample", "--load", P("s2.safetensors"), "--count", "5", "--out", out])
    with open(out, "rb") as f:
        raw = f.read()
    if raw[:4] != b"\x00\x00\x08\x02" and raw[:4] != b"\x00\x00\x08\x03":
        raise Failed("samples.idx: not an IDX file of bytes (magic %r)" % raw[:4])
    print("gan: %d batches of two updates; every tensor within %.2g of torch's (worst %s); "
          "losses per epoch %s" % (step, worst, where,
                                   " ".join("%.6f/%.6f" % l for l in want_losses)))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlnc", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        print("SKIPPED: Debian's python3-torch is not installed (scripts/setup.sh installs it)")
        return 77
    try:
        return check(a.dlnc, os.path.abspath(a.work))
    except Failed as e:
        print("FAIL gan: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
