"""Torch parity of models with several updates (compare.py's cases `gan`, `gan_bn`).

A GAN-like model trained by two updates, each with its own
Adam(2e-4, betas=(0.5, 0.999)) over its own parameters, as torch's DCGAN
example: per batch the discriminator's step (its loss on real and detached
fake rows), then the generator's (the discriminator, already stepped, on
the fake rows again).  Without reusable blocks (issue 14 part A) the
discriminator is applied once to a pair [real, fake] of rows, which a
dense layer maps row by row with one weight; the generator's loss then also
holds bce(D(real), 1), whose gradient w.r.t. the generator is 0, so its
step is torch's errG step.  TODO once blocks merge: D(real) and D(fake) as
two applications of one Discriminator instance, against netD(real),
netD(fake.detach()) and netD(fake).

Full batch, K epochs = K alternating steps.  Chain B: s0 (s1's weights,
fresh optimiser state) to K, against torch from s0; chain A: resumed from
s1 with its optimiser state, against torch continuing from s1 (each Adam's
own step count restored).  Compared: every parameter and optimiser state
tensor, the step, the metrics' d_loss and g_loss (before each step) and
test_d_loss and test_g_loss (after it), and `BIN eval`'s losses; for
gan_bn also the batch norm buffers: the generator's lines are computed once
a batch and the discriminator's twice (num_batches_tracked 1 and 2 per
batch), as in torch's loop.
"""
import os

MODEL_TEXT = """
  input  x : f32[4]
  label  y : f32[1]
  fake   = tanh(dense(x, 4))                         # the generator: fake.*
  pair   = reshape(concat(x, fake), 2, 4)            # real and fake as two rows
  d      = dense(leaky_relu(dense(pair, 8), 0.2), 1) # the discriminator: d.*, d_2.*
  s      = sum(x)
  real01 = reshape(concat(ones_like(s), zeros_like(s)), 2, 1)
  d_loss = 2 * bce_with_logits(d, real01)
  g_loss = 2 * bce_with_logits(d, ones_like(d))"""

UPDATES = """
  discriminator = update(d_loss, params = d, optimizer = adam(2e-4, beta1 = 0.5))
  generator     = update(g_loss, params = fake, optimizer = adam(2e-4, beta1 = 0.5))"""

STATES = ["exp_avg", "exp_avg_sq"]

# case gan_bn: batch norm in both networks.  G's lines run once a batch, so
# its running statistics move once; D's run again for the generator's step,
# so they move twice, as torch's netD(fake.detach()) and netD(fake) do.
# D's batch norm normalises the pair's two rows as two channels
# (BatchNorm1d(2) on [N, 2, 8]).  G's first layer has no bias: batch norm
# takes it out, and its gradient and Adam state would compare rounding noise.
MODEL_TEXT_BN = """
  input  x : f32[4]
  label  y : f32[1]
  fake   = tanh(dense(relu(batch_norm(dense(x, 8, bias = false))), 4)) # fake, fake_2 (bn), fake_3
  pair   = reshape(concat(x, fake), 2, 4)
  d      = dense(leaky_relu(batch_norm(dense(pair, 8)), 0.2), 1)     # d, d_2 (bn), d_3
  s      = sum(x)
  real01 = reshape(concat(ones_like(s), zeros_like(s)), 2, 1)
  d_loss = 2 * bce_with_logits(d, real01)
  g_loss = 2 * bce_with_logits(d, ones_like(d))"""
LAYERS = {
    "gan": dict(text=MODEL_TEXT, G=["fake"], D=["d", "d_2"], bn=[]),
    "gan_bn": dict(text=MODEL_TEXT_BN, G=["fake", "fake_2", "fake_3"], D=["d", "d_2", "d_3"],
                   bn=["fake_2", "d_2"]),
}


class Gan:
    def __init__(self, case, params, state=None, step=0):
        import numpy as np
        import torch
        torch.set_default_dtype(torch.float64)
        self.torch, self.F = torch, torch.nn.functional
        self.bn = case == "gan_bn"
        nn = torch.nn
        if self.bn:
            mods = {"fake": nn.Linear(4, 8, bias=False), "fake_2": nn.BatchNorm1d(8), "fake_3": nn.Linear(8, 4),
                    "d": nn.Linear(4, 8), "d_2": nn.BatchNorm1d(2), "d_3": nn.Linear(8, 1)}
        else:
            mods = {"fake": nn.Linear(4, 4), "d": nn.Linear(4, 8), "d_2": nn.Linear(8, 1)}
        self.L = nn.ModuleDict(mods)
        ref = self.L.state_dict()
        self.L.load_state_dict({k: torch.from_numpy(np.asarray(params[k]).copy()).to(ref[k].dtype)
                                for k in ref}, strict=True)
        self.by_name = dict((n + "." + pn, p) for n, m in self.L.items()
                            for pn, p in m.named_parameters())
        lay = LAYERS[case]
        self.gp = [n for n in self.by_name if n.split(".")[0] in lay["G"]]
        self.dp = [n for n in self.by_name if n.split(".")[0] in lay["D"]]
        self.bufs = [n + "." + b for n, m in self.L.items() for b, _ in m.named_buffers()]
        self.opt_d = torch.optim.Adam([self.by_name[n] for n in self.dp], lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam([self.by_name[n] for n in self.gp], lr=2e-4, betas=(0.5, 0.999))
        if state is not None:
            for opt, names in ((self.opt_d, self.dp), (self.opt_g, self.gp)):
                for n in names:
                    st = {s: torch.from_numpy(state[n + "." + s].copy()) for s in STATES}
                    st["step"] = torch.tensor(float(step))
                    opt.state[self.by_name[n]] = st

    def gen(self, X):
        T, L = self.torch, self.L
        if self.bn:
            return T.tanh(L["fake_3"](T.relu(L["fake_2"](L["fake"](X)))))
        return T.tanh(L["fake"](X))

    def disc(self, pair):
        L = self.L
        if self.bn:
            return L["d_3"](self.F.leaky_relu(L["d_2"](L["d"](pair)), 0.2))
        return L["d_2"](self.F.leaky_relu(L["d"](pair), 0.2))

    def losses(self, X):
        """d_loss and g_loss of the current weights (no step)."""
        T, F = self.torch, self.F
        fake = self.gen(X)
        out = self.disc(T.stack([X, fake], 1))
        tgt = T.cat([T.ones_like(out[:, :1]), T.zeros_like(out[:, 1:])], 1)
        return 2 * F.binary_cross_entropy_with_logits(out, tgt), \
            2 * F.binary_cross_entropy_with_logits(out, T.ones_like(out))

    def step(self, X):
        T, F = self.torch, self.F
        fake = self.gen(X)                      # G(z), once
        self.opt_d.zero_grad()
        out = self.disc(T.stack([X, fake.detach()], 1))       # D(real), D(fake.detach())
        tgt = T.cat([T.ones_like(out[:, :1]), T.zeros_like(out[:, 1:])], 1)
        d_loss = 2 * F.binary_cross_entropy_with_logits(out, tgt)
        d_loss.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        out = self.disc(T.stack([X, fake], 1))                # the stepped D on G(z)
        g_loss = 2 * F.binary_cross_entropy_with_logits(out, T.ones_like(out))
        g_loss.backward()
        self.opt_g.step()
        return float(d_loss), float(g_loss)

    def snapshot(self):
        snap = {n: p.detach().numpy().copy() for n, p in self.by_name.items()}
        sd = self.L.state_dict()
        for n in self.bufs:
            snap[n] = sd[n].detach().numpy().copy()
        for opt, names in ((self.opt_d, self.dp), (self.opt_g, self.gp)):
            for n in names:
                for s in STATES:
                    snap[n + "." + s] = opt.state[self.by_name[n]][s].detach().numpy().copy()
        return snap

    def train(self, start, K, X, Xt):
        hist = []
        for epoch in range(start, K):
            self.L.train()
            d, g = self.step(X)
            self.L.eval()  # as the trainer evaluates: batch norm on its running statistics
            with self.torch.no_grad():
                td, tg = self.losses(Xt)
            hist.append(dict(epoch=epoch + 1, d_loss=d, g_loss=g, test_d_loss=float(td),
                             test_g_loss=float(tg)))
        return hist


def check_gan_bn(name, c, dlnc, work):
    return check_gan(name, c, dlnc, work)


def check_gan(name, c, dlnc, work):
    """c: compare.py's helpers (run, st_read, st_write, read_metrics, Report, Failed, K, ...)."""
    import numpy as np
    import torch
    os.makedirs(work, exist_ok=True)
    for f in os.listdir(work):
        if f.endswith((".jsonl", ".safetensors")):
            os.remove(os.path.join(work, f))
    K = c.K
    P = lambda f: os.path.join(work, f)  # noqa: E731

    def load(path):
        rows = [[float(v) for v in ln.split(",")] for ln in c.read_csv(path)]
        return torch.tensor(rows, dtype=torch.float64).float().double()[:, :4]
    X, Xt = load(c.REG_TRAIN), load(c.REG_TEST)
    mname = "t_" + name
    dln = P(mname + ".dln")
    with open(dln, "w") as f:
        f.write("# written by tests/torch/updates.py, case %s\nmodel %s {%s\n}\n\ntrain %s {\n"
                "  data   = csv(\"%s\")\n  test   = csv(\"%s\")\n  batch  = full\n  epochs = %d\n"
                "  seed   = 7%s\n}\n" % (name, mname, LAYERS[name]["text"], mname, c.REG_TRAIN,
                                         c.REG_TEST, K, UPDATES))
    binp = P(mname)
    c.run([dlnc, "build", "--f64", dln, "-o", binp])
    c.run([binp, "train", "--epochs", "1", "--save", P("s1.safetensors")])
    c.run([binp, "train", "--resume", P("s1.safetensors"), "--epochs", str(K), "--save",
           P("sK.safetensors"), "--metrics", P("m.jsonl")])
    s1, meta1, dtypes = c.st_read(P("s1.safetensors"))
    probe = Gan(name, s1)
    params = probe.gp + probe.dp
    names = params + probe.bufs + [p + "." + s for p in params for s in STATES]
    if sorted(s1) != sorted(names):
        raise c.Failed("s1.safetensors has tensors %s, expected %s" % (sorted(s1), sorted(names)))
    s0 = {n: (s1[n] if n in params or n in probe.bufs else np.zeros_like(s1[n])) for n in names}
    meta0 = {k: v for k, v in dict(meta1, epoch="0", step="0").items() if k != "crc32"}
    c.st_write(P("s0.safetensors"), s0, dtypes, meta0)
    c.run([binp, "train", "--resume", P("s0.safetensors"), "--epochs", str(K), "--save",
           P("f.safetensors"), "--metrics", P("mf.jsonl")])

    rep = c.Report(1e-6)

    def compare(label, path, snap, metrics, hist):
        got, meta, _ = c.st_read(path)
        for n in names:
            kind = "param" if n in params else "buffer" if n in probe.bufs else "state"
            rep.rel(kind + " " + n, got.get(n), snap[n], where=" [%s]" % label)
        if meta.get("step") != str(K):
            rep.fails.append("%s: metadata step %s, expected %d" % (label, meta.get("step"), K))
        m = c.read_metrics(metrics)
        for h in hist:
            r = m.get(h["epoch"], {})
            for key in ("d_loss", "g_loss", "test_d_loss", "test_g_loss"):
                rep.rel(key, r.get(key), h[key], where=" [%s epoch %d]" % (label, h["epoch"]))

    tb = Gan(name, s0)
    hb = tb.train(0, K, X, Xt)
    compare("fresh start", P("f.safetensors"), tb.snapshot(), P("mf.jsonl"), hb)
    ta = Gan(name, s1, state=s1, step=1)
    ha = ta.train(1, K, X, Xt)
    compare("resumed from s1", P("sK.safetensors"), ta.snapshot(), P("m.jsonl"), ha)
    ev = c.run([binp, "eval", "--load", P("sK.safetensors")]).split()
    got = dict(zip(ev[0::2], ev[1::2]))
    ta.L.eval()
    with torch.no_grad():
        td, tg = ta.losses(Xt)
    rep.rel("eval test_d_loss", float(got.get("test_d_loss", "nan")), float(td), tol=1e-5)
    rep.rel("eval test_g_loss", float(got.get("test_g_loss", "nan")), float(tg), tol=1e-5)
    print("case %s: two updates, adam(2e-4, beta1 = 0.5) each, K = %d steps" % (name, K))
    for cat, (r, what) in sorted(rep.worst.items()):
        print("  max rel err %-11s %.3g  (%s)" % (cat, r, what))
    if rep.fails:
        print("FAIL %s: %d mismatch(es):" % (name, len(rep.fails)))
        for f in rep.fails[:40]:
            print("  " + f)
        return 1
    print("PASS %s" % name)
    return 0
