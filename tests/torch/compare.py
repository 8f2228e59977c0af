"""Whole models and every optimiser against PyTorch, on the same weights.

usage: /usr/bin/python3 compare.py --dlnc DLNC --work DIR CASE
       /usr/bin/python3 compare.py --list

For CASE (see CASES below) this writes MODEL.dln (and the data when the case
needs generated data) into DIR, builds it with `dlnc build [--f64]`, and
trains with `batch = full`, so every epoch is one optimiser step on a
deterministic gradient:

  A  BIN train --epochs 1 --save s1           then
     BIN train --resume s1 --epochs K --save sK
     torch loads s1's parameters *and optimiser state* and takes K-1 steps.
  B  s0 = s1's parameters with fresh optimiser state (epoch 0, step 0);
     BIN train --resume s0 --epochs K --save f
     torch takes K steps from s0 with a freshly made torch.optim optimiser
     (this covers the first step: momentum buffer start, Adam's t = 1,
     Adagrad's initial accumulator).

Compared: every parameter, buffer (batch norm's running statistics and
num_batches_tracked, which must also load into the torch modules by name,
shape and dtype) and optimiser state tensor, the step counter, the metrics'
train_loss (the full-batch loss with penalties before the step, in training
mode), test_loss (after the step) and lr of every epoch, `BIN eval` and
`BIN predict` on sK (evaluation mode: batch norm on its running statistics).
Errors are per tensor: max|dlnc - torch| / max|torch|.
On a tensor mismatch the A chain is rerun one epoch at a time to name the
first step that differs.

Exit status: 0 pass, 1 fail, 77 when torch is missing (CTest: skipped).
"""
import argparse
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import warnings

EXAMPLE_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "..", "..", "examples", "data"))
REG_TRAIN = os.path.join(EXAMPLE_DATA, "regression_train.csv")   # 800 rows: 4 inputs, 1 target
REG_TEST = os.path.join(EXAMPLE_DATA, "regression_test.csv")

# ---- models: .dln model-block text and the same network in torch -----------
# fwd(L, x) -> (out, pred) where `out` is what the loss takes and `pred` what
# `BIN predict` prints (sigmoid(z) for bce_with_logits).  L maps a layer name
# to its torch.nn.Linear, or torch.nn.Conv2d when the checkpoint's weight is
# 4-D; `convs` gives a conv layer's stride, padding, dilation and groups (the
# checkpoint has only the kernel and channels); `norms` gives the normalisation
# layers as (torch.nn class, its arguments).  `params` lists the checkpoint's
# parameter names (its buffers are the torch modules' buffers); `input` is the
# per-sample input shape (4,) unless given, and x comes to fwd as [N, *input].

def _m_mlp(L, x, F, T):
    h1 = F.gelu(L["h1"](x))
    h2 = T.tanh(L["h2"](h1))
    p = L["pred"](h2)
    return p, p


def _m_softplus(L, x, F, T):
    h1 = F.softplus(L["h1"](x))
    h2 = F.softplus(L["h2"](h1), beta=3, threshold=1.5)
    p = L["pred"](h2)
    return p, p


def _m_math(L, x, F, T):
    a = T.exp(L["a"](x))
    b = T.log(T.sigmoid(L["b"](x)))
    c = T.sqrt(T.sigmoid(L["c"](x)))
    d = T.square(L["d"](x))
    e = T.abs(L["e"](x))
    f = T.clamp(L["f"](x), min=-0.5, max=0.5)
    g = T.clamp(L["g"](x), min=0)
    k = T.clamp(L["k"](x), max=0.2)
    h = T.tanh(L["h"](T.cat([a, b, c, d, e, f, g, k], dim=1)))
    p = L["pred"](h)
    return p, p


def _m_arith(L, x, F, T):
    a = L["a"](x)
    b = T.sigmoid(L["b"](x)) + 0.5
    h = T.tanh(a / b + (1 - a) - 2 / b + (a - 0.25))
    p = L["pred"](h)
    return p, p


def _m_detach(L, x, F, T):
    a = T.tanh(L["a"](x))
    b = T.tanh(L["b"](a))
    c = b * a.detach() + T.full_like(a, 0.5) * b + T.ones_like(a)
    p = L["pred"](c)
    return p, p


def _m_vae(L, x, F, T):
    h = T.tanh(L["enc"](x))
    mu, logvar = L["mu"](h), L["logvar"](h)
    p = L["pred"](T.tanh(L["dec"](mu)))
    return (p, mu, logvar), p


def _m_vae_noise(L, x, F, T):
    h = T.tanh(L["enc"](x))
    mu, logvar = L["mu"](h), L["logvar"](h)
    z = mu + T.exp(0.5 * logvar) * noise_like(mu, T)
    p = L["pred"](T.tanh(L["dec"](z)))
    return (p, mu, logvar), p


def _m_reduce(L, x, F, T):
    a = L["a"](x).reshape(-1, 3, 4)
    s = (a * a).sum(dim=2)
    m = T.tanh(a).mean(dim=(1, 2), keepdim=True).reshape(-1, 1)
    t = a.sum(dim=(1, 2)).reshape(-1, 1) / 12
    p = L["pred"](T.cat([s, m, t, a.mean(dim=2)], dim=1))
    return p, p


def _m_classifier(L, x, F, T):
    a = F.relu(L["a"](x))
    b = F.leaky_relu(L["b"](x), 0.2)
    c = T.cat([a, b], dim=1)
    d = T.tanh(L["d"](c))
    r = d + L["r"](d)
    m = r * T.tanh(L["m"](a))
    g = 0.5 * m - r / 4
    z = L["logits"](g)
    return z, z


def _m_binary(L, x, F, T):
    h = T.tanh(L["h"](x))
    p = T.sigmoid(L["p"](h))
    return p, p


def _m_binary_logits(L, x, F, T):
    h = F.relu(L["h"](x))
    z = L["z"](h)
    return z, T.sigmoid(z)


def _m_mae(L, x, F, T):
    h = T.tanh(-L["h"](x))
    p = L["pred"](h) - L["pred_2"](x)
    return p, p


def _m_penalties(L, x, F, T):
    h1 = T.tanh(L["h1"](x))
    h2 = F.relu(L["h2"](h1))
    h3 = T.tanh(L["h3"](h2))
    p = L["pred"](h3)
    return p, p


def _m_nobias(L, x, F, T):
    h1 = T.tanh(L["h1"](x))
    h2 = F.relu(L["h2"](h1))
    p = L["pred"](h2)
    return p, p


def _m_softmax(L, x, F, T):
    s = F.softmax(L["s"](x), dim=-1)
    h = T.tanh(L["h"](s))
    p = L["pred"](h)
    return p, p


def _m_opt(L, x, F, T):
    h1 = T.tanh(L["h1"](x))
    h2 = F.relu(L["h2"](h1))
    p = L["pred"](h2)
    return p, p


def _m_cnn(L, x, F, T):
    c1 = F.max_pool2d(F.relu(L["c1"](x)), 2)
    c2 = F.max_pool2d(F.relu(L["c2"](c1)), 2)
    h = F.relu(L["h"](T.flatten(c2, 1)))
    z = L["logits"](h)
    return z, z


def _rnn_names(layer, bidirectional=False, bias=True):
    """torch's parameter names of a one-layer nn.LSTM/GRU/RNN called `layer`."""
    kinds = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    return ["%s.%s_l0%s" % (layer, k, sfx) for sfx in ([""] + ["_reverse"] * bidirectional)
            for k in kinds]


def _m_lstm(L, x, F, T):
    h1, _ = L["h1"](x)
    _, (hn, _) = L["h2"](h1)
    z = L["logits"](T.cat([T.flatten(h1, 1), hn[0], hn[1]], 1))
    return z, z


def _m_gru(L, x, F, T):
    h1, _ = L["h1"](x)
    _, hn = L["h2"](h1)
    z = L["logits"](T.cat([T.flatten(h1, 1), hn[0]], 1))
    return z, z


def _m_rnn(L, x, F, T):
    h1, _ = L["h1"](x)
    h2, _ = L["h2"](h1)
    z = L["logits"](T.flatten(h2, 1))
    return z, z


def _sinusoidal(n_pos, dim, T):
    pos = T.arange(n_pos, dtype=T.float64)[:, None]
    i = T.arange(dim)
    angle = pos / T.pow(10000.0, (i - i % 2).double() / dim)
    return T.where(i % 2 == 0, T.sin(angle), T.cos(angle))


def _m_attention(L, x, F, T):
    n = x.shape[1]
    causal = T.triu(T.ones(n, n, dtype=T.bool), 1)
    u = L["a"](x)
    a = x + L["a_2"](u, u, u, attn_mask=causal, need_weights=False)[0]
    h = a + L["h_3"](F.gelu(L["h_2"](L["h"](a))))
    z = L["logits"](T.flatten(h + _sinusoidal(n, x.shape[2], T), 1))
    return z, z


def _m_conv_geometry(L, x, F, T):
    a = T.tanh(L["a"](x))
    b = L["b"](a)
    d = F.avg_pool2d(a, 3, stride=2, padding=1, count_include_pad=False)
    e = L["e"](d)
    s = T.sigmoid(b) * T.tanh(e)
    m = F.max_pool2d(s, 3, stride=2, padding=1)
    q = F.avg_pool2d(s, 3, stride=1, padding=1)
    r = L["r"](q)
    g = F.adaptive_avg_pool2d(s, 1).flatten(1)
    h = T.tanh(L["h"](T.cat([T.flatten(m, 1), T.flatten(r, 1), g], dim=1)))
    z = L["logits"](h)
    return z, z


def _m_bn1d(L, x, F, T):
    h = F.relu(L["h_2"](L["h"](x)))
    g = T.tanh(L["g_2"](L["g"](h)))
    p = L["pred"](g)
    return p, p


def _m_bn2d(L, x, F, T):
    c1 = F.relu(L["c1_2"](L["c1"](x)))
    p1 = F.max_pool2d(c1, 2)
    c2 = F.relu(L["c2_2"](L["c2"](p1)) + p1)
    h = T.tanh(L["h"](T.flatten(c2, 1)))
    z = L["logits"](h)
    return z, z


def _m_layer_norm(L, x, F, T):
    a = T.tanh(L["a_2"](L["a"](x)))
    h = F.relu(L["h_2"](L["h"](T.flatten(a, 1))))
    z = L["z_ln"](L["z"](h))
    z = L["logits"](z)
    return z, z


def _m_instance_norm(L, x, F, T):
    a = F.relu(L["a_2"](L["a"](x)))
    b = L["b_in"](L["b"](a))
    h = T.tanh(L["h"](T.flatten(b, 1)))
    z = L["logits"](h)
    return z, z


def _m_group_norm(L, x, F, T):
    a = F.relu(L["a_2"](L["a"](x)))
    b = L["b_gn"](L["b"](a))
    h = T.tanh(L["h_2"](L["h"](T.flatten(b, 1))))
    z = L["logits"](h)
    return z, z


def _m_resnet(L, x, F, T):
    stem = F.relu(L["stem_2"](L["stem"](x)))
    a1 = F.relu(L["a1_2"](L["a1"](stem)))
    r1 = F.relu(L["r1_2"](L["r1"](a1)) + stem)
    p1 = F.max_pool2d(r1, 2)
    a2 = F.relu(L["a2_2"](L["a2"](p1)))
    r2 = F.relu(L["r2_2"](L["r2"](a2)) + p1)
    g = F.adaptive_avg_pool2d(r2, 1).flatten(1)
    z = L["logits"](g)
    return z, z


def _m_wrapped(L, x, F, T):
    a = F.relu(L["a"](x))
    b = T.tanh(L["b"](a))
    h = F.relu(L["h"](T.flatten(F.max_pool2d(b, 2), 1)))
    z = L["logits"](h)
    return z, z


def _wrapped(wrap):
    """weight_norm / spectral_norm on two convs (one grouped, one without a
    bias) and a dense layer; the classifier stays plain."""
    w = "weight_g", "weight_v"
    if wrap == "spectral_norm":
        w = ("weight_orig",)
    return dict(data="img", input=(2, 6, 6), loss="cross_entropy", fwd=_m_wrapped,
                params=(["a." + n for n in w] + ["a.bias"] + ["b." + n for n in w]
                        + ["h." + n for n in w] + ["h.bias"] + _lw("logits")),
                convs={"a": dict(padding=1), "b": dict(padding=1, groups=2)},
                wraps={k: wrap for k in ("a", "b", "h")}, text="""
  input  x : f32[2, 6, 6]
  label  y : class[3]
  a      = relu(conv2d(x, 4, kernel = 3, padding = 1, %s = true))
  b      = tanh(conv2d(a, 4, kernel = 3, padding = 1, groups = 2, bias = false, %s = true))
  h      = relu(dense(flatten(maxpool(b, 2)), 12, %s = true))
  logits = dense(h, 3)
  loss   = cross_entropy(logits, y)""" % (wrap, wrap, wrap))


def _blocks_module(torch, F):
    """The torch twin of case blocks: an nn.Module with nested submodules
    (Encoder.inner, a ModuleList R) whose attribute names are the block
    bindings, so dlnc's checkpoint loads into it with strict=True."""
    nn = torch.nn

    class Mlp(nn.Module):
        def __init__(self, n_in, units, slope):
            super().__init__()
            self.h = nn.Linear(n_in, units)
            self.out = nn.Linear(units, units)
            self.slope = slope

        def forward(self, x):
            return self.out(F.leaky_relu(self.h(x), self.slope))

    class Encoder(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.inner = Mlp(4, width, 0.1)
            self.mu = nn.Linear(width, 3)

        def forward(self, x):
            a = torch.tanh(self.inner(x))
            b = torch.tanh(self.inner(torch.tanh(x)) + a)   # inner applied twice
            return self.mu(b), b

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.E = Encoder(8)
            self.R = nn.ModuleList([Mlp(8, 8, 0.2) for _ in range(2)])
            self.pred = nn.Linear(14, 1)

        def forward(self, x):
            mu, b = self.E(x)
            c, d = self.E(torch.tanh(x) * 0.5)              # E applied twice
            r = b + d
            for m in self.R:
                r = m(r)
            p = self.pred(torch.cat([r, mu, c], dim=1))
            return p, p

    return Twin()


def _blocks_bn_module(torch, F):
    """The twin of case blocks_bn: one block with batch norm, its instance N
    applied twice (both applications move N's running statistics, in order)."""
    nn = torch.nn

    class Normed(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.Linear(4, 6, bias=False)  # a bias before batch norm has no gradient
            self.h_2 = nn.BatchNorm1d(6)

        def forward(self, x):
            return torch.relu(self.h_2(self.h(x)))

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.N = Normed()
            self.pred = nn.Linear(12, 1)

        def forward(self, x):
            a = self.N(x)
            b = self.N(torch.tanh(x) * 2)
            p = self.pred(torch.cat([a, b], dim=1))
            return p, p

    return Twin()


def _lw(*names, bias=True):
    out = []
    for n in names:
        out.append(n + ".weight")
        if bias:
            out.append(n + ".bias")
    return out


MODELS = {
    # several updates (a GAN's alternating D and G steps): updates.py trains and compares it
    "gan": dict(custom="updates", text=None),
    "gan_bn": dict(custom="updates", text=None),
    # reusable blocks: nested instances, shared weights (E and E.inner each
    # applied twice), repeat(); the torch twin is one nn.Module (`module`)
    # a block with batch norm applied twice: shared running statistics
    "blocks_bn": dict(data="reg", loss="mse", module=_blocks_bn_module, fwd=lambda L, x, F, T: L(x),
                      params=["N.h.weight"] + _lw("N.h_2", "pred"), blocks="""
block Normed(units = 6) {
  input x
  h = relu(batch_norm(dense(x, units, bias = false)))
  return h
}
""", text="""
  input  x : f32[4]
  label  y : f32[1]
  N      = Normed()
  a      = N(x)
  b      = N(tanh(x) * 2)
  pred   = dense(concat(a, b), 1)
  loss   = mse(pred, y)"""),
    "blocks": dict(data="reg", loss="mse", module=_blocks_module, fwd=lambda L, x, F, T: L(x),
                   params=(_lw("E.inner.h", "E.inner.out", "E.mu", "R.0.h", "R.0.out", "R.1.h",
                               "R.1.out", "pred")), blocks="""
block Mlp(units = 8, slope = 0.1) {
  input x
  h   = leaky_relu(dense(x, units), slope)
  out = dense(h, units)
  return out
}

block Encoder(width = 4) {
  input x : f32[4]
  inner = Mlp(units = width)
  a     = tanh(inner(x))
  b     = tanh(inner(tanh(x)) + a)
  mu    = dense(b, 3)
  return mu, b
}
""", text="""
  input  x : f32[4]
  label  y : f32[1]
  E      = Encoder(width = 8)
  R      = repeat(Mlp(8, slope = 0.2), 2)
  mu, b  = E(x)
  c, d   = E(tanh(x) * 0.5)
  r      = R(b + d)
  pred   = dense(concat(r, mu, c), 1)
  loss   = mse(pred, y)"""),
    "mlp": dict(data="reg", loss="mse", fwd=_m_mlp, params=_lw("h1", "h2", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  h1     = gelu(dense(x, 16))
  h2     = tanh(dense(h1, 12))
  pred   = dense(h2, 1)
  loss   = mse(pred, y)"""),
    # beta * x crosses threshold = 1.5 for some samples and units: both branches
    "softplus": dict(data="reg", loss="mse", fwd=_m_softplus, params=_lw("h1", "h2", "pred"),
                     text="""
  input  x : f32[4]
  label  y : f32[1]
  h1     = softplus(dense(x, 16))
  h2     = softplus(dense(h1, 12), beta = 3, threshold = 1.5)
  pred   = dense(h2, 1)
  loss   = mse(pred, y)"""),
    # clamp's bounds lie inside the range of its inputs: both sides of each
    "math": dict(data="reg", loss="mse", fwd=_m_math,
                 params=_lw("a", "b", "c", "d", "e", "f", "g", "k", "h", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  a      = exp(dense(x, 6))
  b      = log(sigmoid(dense(x, 6)))
  c      = sqrt(sigmoid(dense(x, 6)))
  d      = square(dense(x, 6))
  e      = abs(dense(x, 6))
  f      = clamp(dense(x, 6), min = -0.5, max = 0.5)
  g      = clamp(dense(x, 6), min = 0)
  k      = clamp(dense(x, 6), max = 0.2)
  h      = tanh(dense(concat(a, b, c, d, e, f, g, k), 8))
  pred   = dense(h, 1)
  loss   = mse(pred, y)"""),
    # a's layer gets its gradient only through b: the detached path carries none
    "detach": dict(data="reg", loss="mse", fwd=_m_detach, params=_lw("a", "b", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  a      = tanh(dense(x, 12))
  b      = tanh(dense(a, 12))
  c      = b * detach(a) + full_like(a, 0.5) * b + ones_like(a)
  pred   = dense(c, 1)
  loss   = mse(pred, y)"""),
    # a VAE's loss: reconstruction plus kl_normal (the mean over the batch of
    # pytorch/examples/vae's per-sample KLD); the decoder reads mu (no noise)
    "vae": dict(data="reg", loss="mse_kl", fwd=_m_vae, params=_lw("enc", "mu", "logvar", "dec", "pred"),
                text="""
  input  x : f32[4]
  label  y : f32[1]
  enc    = tanh(dense(x, 12))
  mu     = dense(enc, 3)
  logvar = dense(enc, 3)
  dec    = tanh(dense(mu, 8))
  pred   = dense(dec, 1)
  loss   = mse(pred, y) + kl_normal(mu, logvar)"""),
    # the same with the reparametrisation trick: torch is given dlnc's draws
    # (noise_like), in training, evaluation and predict alike
    "vae_noise": dict(data="reg", loss="mse_kl", fwd=_m_vae_noise, noise=True,
                      params=_lw("enc", "mu", "logvar", "dec", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  enc    = tanh(dense(x, 12))
  mu     = dense(enc, 3)
  logvar = dense(enc, 3)
  z      = mu + exp(0.5 * logvar) * randn_like(mu)
  dec    = tanh(dense(z, 8))
  pred   = dense(dec, 1)
  loss   = mse(pred, y) + kl_normal(mu, logvar)"""),
    # a / b, c - a, c / b, a - c, a + c (arith.c)
    "arith": dict(data="reg", loss="mse", fwd=_m_arith, params=_lw("a", "b", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  a      = dense(x, 8)
  b      = sigmoid(dense(x, 8)) + 0.5
  h      = tanh(a / b + (1 - a) - 2 / b + (a - 0.25))
  pred   = dense(h, 1)
  loss   = mse(pred, y)"""),
    # sum and mean over the last dim and over all of a sample's (reduce.c)
    "reduce": dict(data="reg", loss="mse", fwd=_m_reduce, params=_lw("a", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  a      = reshape(dense(x, 12), 3, 4)
  s      = sum(a * a, dims = 1)
  m      = mean(tanh(a))
  t      = sum(a) / 12
  pred   = dense(concat(s, m, t, mean(a, dims = 1)), 1)
  loss   = mse(pred, y)"""),
    "classifier": dict(data="cls", loss="cross_entropy", fwd=_m_classifier,
                       params=_lw("a", "b", "d", "r", "m", "logits"), text="""
  input  x : f32[4]
  label  y : class[3]
  a      = relu(dense(x, 12))
  b      = leaky_relu(dense(x, 8), slope = 0.2)
  c      = concat(a, b)
  d      = tanh(dense(c, 10))
  r      = d + dense(d, 10)
  m      = r * tanh(dense(a, 10))
  g      = 0.5 * m - r / 4
  logits = dense(g, 3)
  loss   = cross_entropy(logits, y)"""),
    "binary": dict(data="bin", loss="bce", fwd=_m_binary, params=_lw("h", "p"), text="""
  input  x : f32[4]
  label  y : f32[1]
  h      = tanh(dense(x, 8))
  p      = sigmoid(dense(h, 1))
  loss   = binary_cross_entropy(p, y)"""),
    "binary_logits": dict(data="bin", loss="bce_logits", fwd=_m_binary_logits,
                          params=_lw("h", "z"), text="""
  input  x : f32[4]
  label  y : f32[1]
  h      = relu(dense(x, 8))
  z      = dense(h, 1)
  loss   = bce_with_logits(z, y)"""),
    "mae": dict(data="reg", loss="mae", fwd=_m_mae, params=_lw("h", "pred", "pred_2"), text="""
  input  x : f32[4]
  label  y : f32[1]
  h      = tanh(-dense(x, 16))
  pred   = dense(h, 1) - dense(x, 1)
  loss   = mae(pred, y)"""),
    "penalties": dict(data="reg", loss="mse", fwd=_m_penalties,
                      params=_lw("h1", "h2", "h3", "pred"),
                      penalties={"h1": (1e-3, 0.0), "h2": (0.0, 1e-2), "h3": (2e-3, 5e-3)},
                      text="""
  input  x : f32[4]
  label  y : f32[1]
  h1     = tanh(dense(x, 16, l1 = 1e-3))
  h2     = relu(dense(h1, 8, l2 = 1e-2))
  h3     = tanh(dense(h2, 8, l1 = 2e-3, l2 = 5e-3))
  pred   = dense(h3, 1)
  loss   = mse(pred, y)"""),
    "nobias": dict(data="reg", loss="mse", fwd=_m_nobias,
                   params=_lw("h1", bias=False) + _lw("h2") + _lw("pred", bias=False), text="""
  input  x : f32[4]
  label  y : f32[1]
  h1     = tanh(dense(x, 16, bias = false))
  h2     = relu(dense(h1, 8))
  pred   = dense(h2, 1, bias = false)
  loss   = mse(pred, y)"""),
    "softmax": dict(data="reg", loss="mse", fwd=_m_softmax, params=_lw("s", "h", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  s      = softmax(dense(x, 6))
  h      = tanh(dense(s, 8))
  pred   = dense(h, 1)
  loss   = mse(pred, y)"""),
    "opt": dict(data="reg", loss="mse", fwd=_m_opt, params=_lw("h1", "h2", "pred"), text="""
  input  x : f32[4]
  label  y : f32[1]
  h1     = tanh(dense(x, 16))
  h2     = relu(dense(h1, 8))
  pred   = dense(h2, 1)
  loss   = mse(pred, y)"""),
    # examples/fashion_cnn.dln at 8x8
    "cnn": dict(data="img", input=(1, 8, 8), loss="cross_entropy", fwd=_m_cnn,
                params=_lw("c1", "c2", "h", "logits"),
                convs={"c1": dict(padding=1), "c2": dict(padding=1)}, text="""
  input  x : f32[1, 8, 8]
  label  y : class[3]
  c1     = maxpool(relu(conv2d(x, 6, kernel = 3, padding = 1)), 2)
  c2     = maxpool(relu(conv2d(c1, 8, kernel = 3, padding = 1)), 2)
  h      = relu(dense(flatten(c2), 16))
  logits = dense(h, 3)
  loss   = cross_entropy(logits, y)"""),
    # every geometry argument; per-sample sizes in the comments
    "conv_geometry": dict(data="img", input=(2, 7, 7), loss="cross_entropy", fwd=_m_conv_geometry,
                          params=(_lw("a", bias=False) + _lw("b", "e") + _lw("r", bias=False)
                                  + _lw("h", "logits")),
                          convs={"a": dict(padding=1, groups=2),
                                 "b": dict(stride=2, padding=2, dilation=2),
                                 "e": dict(groups=2),
                                 "r": dict(stride=2)},
                          penalties={"a": (0.0, 1e-3), "b": (1e-3, 0.0)}, text="""
  input  x : f32[2, 7, 7]
  label  y : class[3]
  # [4, 7, 7], grouped
  a      = tanh(conv2d(x, 4, kernel = 3, padding = 1, groups = 2, bias = false, l2 = 1e-3))
  # [6, 4, 4]
  b      = conv2d(a, 6, kernel = 3, stride = 2, padding = 2, dilation = 2, l1 = 1e-3)
  # [4, 4, 4]
  d      = avgpool(a, 3, stride = 2, padding = 1, count_include_pad = false)
  # [6, 4, 4]: 1x1 and grouped, no im2col
  e      = conv2d(d, 6, kernel = 1, groups = 2)
  # often negative: a padded maxpool window must not take the padding as 0
  s      = sigmoid(b) * tanh(e)
  # [6, 2, 2]: stride < kernel, padded
  m      = maxpool(s, 3, stride = 2, padding = 1)
  # [6, 4, 4]: padding counted
  q      = avgpool(s, 3, stride = 1, padding = 1)
  # [4, 2, 2]: 1x1 with stride 2 goes through im2col; (4 - 1) / 2 + 1 rounds
  # down, so q's last row and column are not used
  r      = conv2d(q, 4, kernel = 1, stride = 2, bias = false)
  g      = global_avgpool(s)
  h      = tanh(dense(concat(flatten(m), flatten(r), g), 12))
  logits = dense(h, 3)
  loss   = cross_entropy(logits, y)"""),
    # recurrent layers (torch.nn.LSTM/GRU/RNN, batch_first) on 6 steps of 5
    # features: the image rows as a sequence
    "lstm": dict(data="img", input=(6, 5), loss="cross_entropy", fwd=_m_lstm,
                 params=_rnn_names("h1") + _rnn_names("h2", True) + _lw("logits"),
                 rnns={"h1": ("LSTM", {}),
                                            "h2": ("LSTM", dict(bidirectional=True))}, text="""
  input  x : f32[6, 5]
  label  y : class[3]
  h1     = lstm(x, 8)
  h2     = lstm(h1, 4, bidirectional = true, last = true)
  logits = dense(concat(flatten(h1), h2), 3)
  loss   = cross_entropy(logits, y)"""),
    "gru": dict(data="img", input=(6, 5), loss="cross_entropy", fwd=_m_gru,
                params=_rnn_names("h1", True) + _rnn_names("h2", bias=False) + _lw("logits"),
                rnns={"h1": ("GRU", dict(bidirectional=True)),
                                           "h2": ("GRU", dict(bias=False))}, text="""
  input  x : f32[6, 5]
  label  y : class[3]
  h1     = gru(x, 6, bidirectional = true)
  h2     = gru(h1, 5, bias = false, last = true)
  logits = dense(concat(flatten(h1), h2), 3)
  loss   = cross_entropy(logits, y)"""),
    "rnn": dict(data="img", input=(6, 5), loss="cross_entropy", fwd=_m_rnn,
                params=_rnn_names("h1") + _rnn_names("h2", True) + _lw("logits"),
                rnns={"h1": ("RNN", dict(nonlinearity="relu")),
                                           "h2": ("RNN", dict(bidirectional=True))}, text="""
  input  x : f32[6, 5]
  label  y : class[3]
  h1     = rnn(x, 8, activation = relu)
  h2     = rnn(h1, 4, bidirectional = true)
  logits = dense(flatten(h2), 3)
  loss   = cross_entropy(logits, y)"""),
    # a pre-LayerNorm Transformer block (nn.MultiheadAttention, causal) and
    # sinusoidal positions on 6 steps of 8 features
    "attention": dict(data="img", input=(6, 8), loss="cross_entropy", fwd=_m_attention,
                      params=_lw("a", "h", "h_2", "h_3", "logits")
                      + ["a_2." + k for k in ("in_proj_weight", "in_proj_bias", "out_proj.weight",
                                              "out_proj.bias")],
                      norms={"a": ("LayerNorm", dict(normalized_shape=8)),
                             "h": ("LayerNorm", dict(normalized_shape=8))},
                      attns={"a_2": 2}, text="""
  input  x : f32[6, 8]
  label  y : class[3]
  a      = x + attention(layer_norm(x, dims = 1), 2, causal = true)
  h      = a + dense(gelu(dense(layer_norm(a, dims = 1), 16)), 8)
  logits = dense(flatten(positional(h)), 3)
  loss   = cross_entropy(logits, y)"""),
    # normalisation: each layer's norm takes the binding's next name (h_2)
    # unless it has neither parameters nor buffers.  A bias right before a
    # per-channel norm has a zero gradient (the norm takes the mean out), so
    # its optimiser state would compare rounding noise: those layers have none.
    "bn1d": dict(data="reg", loss="mse", fwd=_m_bn1d,
                 params=["h.weight"] + _lw("h_2") + ["g.weight"] + _lw("pred"),
                 norms={"h_2": ("BatchNorm1d", dict(num_features=16)),
                        "g_2": ("BatchNorm1d", dict(num_features=8, momentum=0.3, eps=1e-3,
                                                    affine=False))}, text="""
  input  x : f32[4]
  label  y : f32[1]
  h      = relu(batch_norm(dense(x, 16, bias = false)))
  g      = tanh(batch_norm(dense(h, 8, bias = false), momentum = 0.3, eps = 1e-3, affine = false))
  pred   = dense(g, 1)
  loss   = mse(pred, y)"""),
    "bn2d": dict(data="img", input=(2, 8, 8), loss="cross_entropy", fwd=_m_bn2d,
                 params=["c1.weight"] + _lw("c1_2") + ["c2.weight"] + _lw("c2_2", "h", "logits"),
                 convs={"c1": dict(padding=1), "c2": dict(padding=1)},
                 norms={"c1_2": ("BatchNorm2d", dict(num_features=6)),
                        "c2_2": ("BatchNorm2d", dict(num_features=6, momentum=0.2))}, text="""
  input  x : f32[2, 8, 8]
  label  y : class[3]
  c1     = relu(batch_norm(conv2d(x, 6, kernel = 3, padding = 1, bias = false)))
  p1     = maxpool(c1, 2)
  # a residual block
  c2     = relu(batch_norm(conv2d(p1, 6, kernel = 3, padding = 1, bias = false), momentum = 0.2) + p1)
  h      = tanh(dense(flatten(c2), 12))
  logits = dense(h, 3)
  loss   = cross_entropy(logits, y)"""),
    # examples/fashion_resnet.dln at 8x8: a stem, two residual blocks (at 8x8
    # and after a maxpool at 4x4), global average pooling, a linear classifier
    "resnet": dict(data="img", input=(1, 8, 8), loss="cross_entropy", fwd=_m_resnet,
                   params=(["stem.weight"] + _lw("stem_2") + ["a1.weight"] + _lw("a1_2")
                           + ["r1.weight"] + _lw("r1_2") + ["a2.weight"] + _lw("a2_2")
                           + ["r2.weight"] + _lw("r2_2", "logits")),
                   convs={k: dict(padding=1) for k in ("stem", "a1", "r1", "a2", "r2")},
                   norms={k + "_2": ("BatchNorm2d", dict(num_features=6))
                          for k in ("stem", "a1", "r1", "a2", "r2")}, text="""
  input  x : f32[1, 8, 8]
  label  y : class[3]
  # [6, 8, 8]
  stem   = relu(batch_norm(conv2d(x, 6, kernel = 3, padding = 1, bias = false)))
  a1     = relu(batch_norm(conv2d(stem, 6, kernel = 3, padding = 1, bias = false)))
  r1     = relu(batch_norm(conv2d(a1, 6, kernel = 3, padding = 1, bias = false)) + stem)
  # [6, 4, 4]
  p1     = maxpool(r1, 2)
  a2     = relu(batch_norm(conv2d(p1, 6, kernel = 3, padding = 1, bias = false)))
  r2     = relu(batch_norm(conv2d(a2, 6, kernel = 3, padding = 1, bias = false)) + p1)
  # [6]
  logits = dense(global_avgpool(r2), 3)
  loss   = cross_entropy(logits, y)"""),
    # parameter wrappers: torch.nn.utils.weight_norm / spectral_norm (`wraps`)
    "weight_norm": _wrapped("weight_norm"),
    "spectral_norm": _wrapped("spectral_norm"),
    "layer_norm": dict(data="img", input=(2, 6, 6), loss="cross_entropy", fwd=_m_layer_norm,
                       params=_lw("a", "a_2", "h", "h_2") + ["z.weight"] + _lw("logits"),
                       convs={"a": dict(padding=1)},
                       norms={"a_2": ("LayerNorm", dict(normalized_shape=(3, 6, 6))),
                              "h_2": ("LayerNorm", dict(normalized_shape=12, eps=1e-3)),
                              "z_ln": ("LayerNorm", dict(normalized_shape=8,
                                                         elementwise_affine=False))}, text="""
  input  x : f32[2, 6, 6]
  label  y : class[3]
  # over [3, 6, 6]: weight and bias [3, 6, 6]
  a      = tanh(layer_norm(conv2d(x, 3, kernel = 3, padding = 1)))
  h      = relu(layer_norm(dense(flatten(a), 12), eps = 1e-3))
  z      = layer_norm(dense(h, 8, bias = false), affine = false)
  logits = dense(z, 3)
  loss   = cross_entropy(logits, y)"""),
    "instance_norm": dict(data="img", input=(2, 6, 6), loss="cross_entropy", fwd=_m_instance_norm,
                          params=["a.weight"] + _lw("a_2") + ["b.weight"] + _lw("h", "logits"),
                          convs={"a": dict(padding=1), "b": dict(padding=1)},
                          norms={"a_2": ("InstanceNorm2d", dict(num_features=4, affine=True)),
                                 "b_in": ("InstanceNorm2d", dict(num_features=4, eps=1e-3))},
                          text="""
  input  x : f32[2, 6, 6]
  label  y : class[3]
  a      = relu(instance_norm(conv2d(x, 4, kernel = 3, padding = 1, bias = false), affine = true))
  b      = instance_norm(conv2d(a, 4, kernel = 3, padding = 1, bias = false), eps = 1e-3)
  h      = tanh(dense(flatten(b), 12))
  logits = dense(h, 3)
  loss   = cross_entropy(logits, y)"""),
    "group_norm": dict(data="img", input=(2, 6, 6), loss="cross_entropy", fwd=_m_group_norm,
                       params=_lw("a", "a_2", "b", "h", "h_2", "logits"),
                       convs={"a": dict(padding=1), "b": dict(padding=1)},
                       norms={"a_2": ("GroupNorm", dict(num_groups=3, num_channels=6)),
                              "b_gn": ("GroupNorm", dict(num_groups=1, num_channels=4,
                                                         affine=False)),
                              "h_2": ("GroupNorm", dict(num_groups=4, num_channels=12, eps=1e-3))},
                       text="""
  input  x : f32[2, 6, 6]
  label  y : class[3]
  a      = relu(group_norm(conv2d(x, 6, kernel = 3, padding = 1), 3))
  b      = group_norm(conv2d(a, 4, kernel = 3, padding = 1), 1, affine = false)
  # group norm of features [12]: 4 groups of 3
  h      = tanh(group_norm(dense(flatten(b), 12), 4, eps = 1e-3))
  logits = dense(h, 3)
  loss   = cross_entropy(logits, y)"""),
}

# ---- cases ------------------------------------------------------------------
# opt: (kind, {dln keyword: value}); only the keywords given are written to
# the .dln and passed to torch, so dlnc's defaults are checked against
# torch's.  sched: (kind, {keyword: value}).  train: extra train-block lines.

CASES = {
    # two updates, each with its own Adam(2e-4, beta1 = 0.5): updates.py
    "gan": dict(model="gan"),
    "gan_bn": dict(model="gan_bn"),
    # models
    "mlp_regression": dict(model="mlp", opt=("adam", {"lr": 5e-3})),
    "classifier": dict(model="classifier", opt=("sgd", {"lr": 0.2, "momentum": 0.9}), threads=2),
    "binary": dict(model="binary", opt=("sgd", {"lr": 0.5})),
    "binary_logits": dict(model="binary_logits", opt=("adam", {"lr": 0.01})),
    "mae_regression": dict(model="mae", opt=("sgd", {"lr": 0.05})),
    "penalties": dict(model="penalties", opt=("sgd", {"lr": 0.1, "momentum": 0.5}),
                      train={"l2": 1e-3, "l1": 1e-4}),
    "nobias": dict(model="nobias", opt=("adam", {"lr": 0.01})),
    "softmax": dict(model="softmax", opt=("sgd", {"lr": 0.2})),
    "softplus": dict(model="softplus", opt=("adam", {"lr": 0.01})),
    "math": dict(model="math", opt=("adam", {"lr": 0.01})),
    "vae": dict(model="vae", opt=("adam", {"lr": 0.01})),
    "vae_noise": dict(model="vae_noise", opt=("adam", {"lr": 0.01})),
    "detach": dict(model="detach", opt=("sgd", {"lr": 0.1})),
    "arith": dict(model="arith", opt=("adam", {"lr": 0.01})),
    "reduce": dict(model="reduce", opt=("adam", {"lr": 0.01})),
    "blocks": dict(model="blocks", opt=("adam", {"lr": 0.01})),
    "blocks_bn": dict(model="blocks_bn", opt=("sgd", {"lr": 0.1, "momentum": 0.9})),
    # optimisers
    "sgd": dict(model="opt", opt=("sgd", {"lr": 0.1})),
    "sgd_momentum": dict(model="opt", opt=("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3})),
    "sgd_nesterov": dict(model="opt", opt=("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True,
                                                   "weight_decay": 0.01})),
    "adam": dict(model="opt", opt=("adam", {"lr": 0.01})),
    "adam_weight_decay": dict(model="opt", opt=("adam", {"lr": 0.01, "beta1": 0.85, "beta2": 0.995,
                                                         "eps": 1e-6, "weight_decay": 0.05})),
    "adamw": dict(model="opt", opt=("adamw", {"lr": 0.01, "weight_decay": 0.1})),
    "rmsprop": dict(model="opt", opt=("rmsprop", {"lr": 0.01})),
    "rmsprop_centered": dict(model="opt", opt=("rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6,
                                                           "momentum": 0.5, "centered": True,
                                                           "weight_decay": 0.01})),
    "adagrad": dict(model="opt", opt=("adagrad", {"lr": 0.1, "lr_decay": 0.05,
                                                  "initial_accumulator_value": 0.1,
                                                  "weight_decay": 0.01})),
    "nadam": dict(model="opt", opt=("nadam", {})),  # every default, lr = 2e-3 included
    "nadam_args": dict(model="opt", opt=("nadam", {"lr": 0.01, "beta1": 0.85, "beta2": 0.99,
                                                   "eps": 1e-6, "weight_decay": 0.02,
                                                   "momentum_decay": 0.05})),
    # training features
    "sched_step": dict(model="opt", opt=("sgd", {"lr": 0.1, "momentum": 0.9}),
                       sched=("step", {"step_size": 2, "gamma": 0.5})),
    "sched_exponential": dict(model="opt", opt=("adamw", {"lr": 0.02}),  # adamw's default decay
                              sched=("exponential", {"gamma": 0.7})),
    "sched_cosine": dict(model="opt", opt=("sgd", {"lr": 0.1}),
                         sched=("cosine", {"eta_min": 0.01})),
    "warmup": dict(model="opt", opt=("sgd", {"lr": 0.1, "momentum": 0.9}),
                   sched=("exponential", {"gamma": 0.9}), train={"warmup": 4}),
    "clip": dict(model="opt", opt=("sgd", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
                 train={"clip": 0.453}),  # clips some steps, not others (checked below)
    # convolutions
    "cnn": dict(model="cnn", opt=("sgd", {"lr": 0.05, "momentum": 0.9})),
    "conv_geometry": dict(model="conv_geometry", opt=("adam", {"lr": 0.01}), threads=2),
    # recurrent layers
    "lstm": dict(model="lstm", opt=("adam", {"lr": 0.01}), threads=2),
    "gru": dict(model="gru", opt=("sgd", {"lr": 0.1, "momentum": 0.9})),
    "rnn": dict(model="rnn", opt=("rmsprop", {"lr": 0.005})),
    "attention": dict(model="attention", opt=("adamw", {"lr": 0.01}), threads=2),
    # normalisation (weight decay reaches the norms' parameters too, as in torch.optim)
    "batch_norm_1d": dict(model="bn1d", opt=("adam", {"lr": 0.01})),
    "batch_norm_2d": dict(model="bn2d", opt=("sgd", {"lr": 0.05, "momentum": 0.9,
                                                    "weight_decay": 0.01}), threads=2),
    "resnet": dict(model="resnet", opt=("sgd", {"lr": 0.05, "momentum": 0.9})),
    "layer_norm": dict(model="layer_norm", opt=("adam", {"lr": 0.01})),
    # parameter wrappers (weight decay reaches weight_g/weight_v and weight_orig)
    "weight_norm": dict(model="weight_norm", opt=("adam", {"lr": 0.01, "weight_decay": 0.01})),
    "spectral_norm": dict(model="spectral_norm", opt=("sgd", {"lr": 0.1, "momentum": 0.9,
                                                              "weight_decay": 0.01})),
    "instance_norm": dict(model="instance_norm", opt=("adamw", {"lr": 0.01})),
    "group_norm": dict(model="group_norm", opt=("rmsprop", {"lr": 0.005, "momentum": 0.5}),
                       threads=2),
    # single precision
    "classifier_f32": dict(model="classifier", opt=("adam", {"lr": 0.01}), f64=False, tol=1e-4),
    "cnn_f32": dict(model="cnn", opt=("sgd", {"lr": 0.05, "momentum": 0.9}), f64=False, tol=1e-4),
    "batch_norm_2d_f32": dict(model="bn2d", opt=("sgd", {"lr": 0.05, "momentum": 0.9}), f64=False,
                              tol=1e-4),
}

K = 5          # epochs (= optimiser steps) in total
N_PREDICT = 8  # rows fed to `predict`


def dln_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def dln_call(kind, kw):
    return "%s(%s)" % (kind, ", ".join("%s = %s" % (k, dln_value(v)) for k, v in kw.items()))


# ---- data -------------------------------------------------------------------

def write_generated(path, n, kind, seed):
    """Deterministic 4-feature data: 3 classes (cls) or a 0/1 target (bin)."""
    rnd = random.Random(seed)
    lines = []
    for _ in range(n):
        x = [rnd.uniform(-1.5, 1.5) for _ in range(4)]
        if kind == "cls":
            s = [x[0] + 0.5 * x[1], x[2] - x[0] * x[3], 0.8 * x[3] - x[1] + 0.3]
            s = [v + rnd.gauss(0, 0.3) for v in s]
            y = "%d" % max(range(3), key=lambda k: s[k])
        else:
            y = "1" if x[0] * x[1] - x[2] + 0.5 * x[3] + rnd.gauss(0, 0.3) > 0 else "0"
        lines.append(",".join("%.6f" % v for v in x) + "," + y)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_images(path, n, shape, seed):
    """Deterministic C x H x W images in 3 classes: a horizontal bar, a vertical
    bar or a diagonal, each at a random place, weaker in later channels, plus
    noise; a row is the C*H*W values (C, H, W order) then the class."""
    rnd = random.Random(seed)
    C, H, W = shape if len(shape) == 3 else (1,) + tuple(shape)
    lines = []
    for _ in range(n):
        y = rnd.randrange(3)
        r, c, off = rnd.randrange(H), rnd.randrange(W), rnd.randrange(-2, 3)
        on = [(i == r, j == c, i - j == off)[y] for i in range(H) for j in range(W)]
        x = [(1.0 - 0.6 * ch) * v + rnd.gauss(0, 0.3) for ch in range(C) for v in on]
        lines.append(",".join("%.6f" % v for v in x) + ",%d" % y)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def read_csv(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


# ---- safetensors (struct + json; the `safetensors` package is not needed) -----

# I64: batch norm's num_batches_tracked, a scalar as in torch's state_dict
ST_NP = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}


def st_read(path):
    import numpy as np
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    hdr = json.loads(b[8:8 + n].decode("utf-8"))
    meta = hdr.pop("__metadata__", {})
    out, dtypes = {}, {}
    for k, v in hdr.items():
        s, e = v["data_offsets"]
        arr = np.frombuffer(b[8 + n + s:8 + n + e], dtype=ST_NP[v["dtype"]]).reshape(v["shape"])
        out[k] = arr.astype("<f8")
        dtypes[k] = v["dtype"]
    return out, meta, dtypes


def st_write(path, tensors, dtypes, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for k in sorted(tensors):
        blob = tensors[k].astype(ST_NP[dtypes[k]]).tobytes()
        header[k] = {"dtype": dtypes[k], "shape": list(tensors[k].shape),
                     "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- dlnc's noise, drawn again here --------------------------------------------
# randn_like / rand_like draw element k of a batch from a hash of (seed,
# step, site, k) (runtime/rng.h, dl_noise in runtime/dl_ops.h), so torch can
# be given the very same numbers: the same splitmix64 finaliser on uint64,
# Box-Muller with Python's math (the C library's log, sqrt and cos, as the
# trainer's).  k counts from 0 in every batch the trainer runs: the train
# step's, each chunk of an evaluation, each chunk of `predict`.

M64 = (1 << 64) - 1


def dl_rng_u64(seed, stream, index):
    z = ((seed * 0x9E3779B97F4A7C15) & M64) ^ (((stream + 0x632BE59BD9B4E019) & M64)
                                               * 0xBF58476D1CE4E5B9 & M64)
    z = (z + index * 0x94D049BB133111EB + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def dl_rng_uniform(seed, stream, index):
    return (dl_rng_u64(seed, stream, index) >> 11) * (1.0 / 9007199254740992.0)


def dl_rng_normal(seed, stream, index):
    u1 = dl_rng_uniform(seed, stream, 2 * index)
    u2 = dl_rng_uniform(seed, stream, 2 * index + 1)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(6.283185307179586476925286766559 * u2)


class Noise:
    """Where the trainer is when torch's forward runs: its seed, its step
    (ctx->step: optimiser steps done), the rows of each batch it runs, and
    the noise sites of the generated C in the order the forward meets them."""
    seed, step, chunk, sites, calls = 7, 0, None, [], 0

    @classmethod
    def at(cls, step, chunk):
        cls.step, cls.chunk, cls.calls = step, chunk, 0


def dl_shuffle(n, seed, epoch):
    """The trainer's order of the training rows in an epoch (shuffle in
    runtime/trainer_train.c: Fisher-Yates from the identity, draw i of epoch
    e at index e*n + i of the stream DL_STREAM_SHUFFLE).  Only noise sees it:
    the full-batch loss and gradient are means over the rows."""
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = dl_rng_u64(seed, 0x5348554600000000, epoch * n + i) % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def noise_like(t, T, normal=True):
    """dlnc's randn_like(t) (rand_like with normal = False) for the batch t."""
    site = Noise.sites[Noise.calls]
    Noise.calls += 1
    n, per = t.shape[0], t[0].numel()
    chunk = Noise.chunk or n
    draw = dl_rng_normal if normal else dl_rng_uniform
    vals = [draw(Noise.seed, 0x0E0000 + site, ((Noise.step << 36) ^ ((r % chunk) * per + j)) & M64)
            for r in range(n) for j in range(per)]
    return T.tensor(vals, dtype=t.dtype).reshape(t.shape)


# ---- running things ------------------------------------------------------------

class Failed(Exception):
    pass


def run(cmd, stdin=None):
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 0:
        raise Failed("command failed (exit %d): %s\n--- stdout\n%s--- stderr\n%s"
                     % (p.returncode, " ".join(cmd), p.stdout, p.stderr))
    return p.stdout


def read_metrics(path):
    by_epoch = {}
    with open(path) as f:
        for ln in f:
            if ln.strip():
                r = json.loads(ln)
                if "epoch" in r:  # not a run's header record
                    by_epoch[r["epoch"]] = r
    return by_epoch


# ---- the torch side ------------------------------------------------------------

def state_names(kind, hp):
    if kind == "sgd":
        return ["momentum_buffer"] if hp.get("momentum", 0) > 0 else []
    if kind in ("adam", "adamw"):
        return ["exp_avg", "exp_avg_sq"]
    if kind == "rmsprop":
        return (["square_avg"] + (["momentum_buffer"] if hp.get("momentum", 0) > 0 else [])
                + (["grad_avg"] if hp.get("centered") else []))
    if kind == "adagrad":
        return ["sum"]
    if kind == "nadam":
        return ["mu_product", "exp_avg", "exp_avg_sq"]
    raise ValueError(kind)


def make_norms(model):
    """A ModuleDict with the model's normalisation layers (torch.nn classes)."""
    import torch
    torch.set_default_dtype(torch.float64)
    L = torch.nn.ModuleDict()
    for name, (cls, kw) in model.get("norms", {}).items():
        L[name] = getattr(torch.nn, cls)(**kw)
    return L


def buffer_names(model):
    """torch's names of the model's buffers (running_mean, ...), as the checkpoint must have them."""
    if "module" in model:
        import torch
        import torch.nn.functional as F
        torch.set_default_dtype(torch.float64)
        return [n for n, _ in model["module"](torch, F).named_buffers()]
    return ([n + "." + b for n, m in make_norms(model).items() for b, _ in m.named_buffers()]
            + [n + "." + b for n, w in model.get("wraps", {}).items() if w == "spectral_norm"
               for b in ("weight_u", "weight_v")])


class Torch:
    def __init__(self, case, data, params0):
        import numpy as np
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F
        self.case = case
        self.model = MODELS[case["model"]]
        self.data = data
        torch.set_default_dtype(torch.float64)
        if "module" in self.model:
            self.L = self.model["module"](torch, F)
            ref = self.L.state_dict()
            want = sorted(list(self.model["params"]) + buffer_names(self.model))
            if sorted(ref) != want:
                raise Failed("the torch twin's state_dict has %s, the checkpoint %s"
                             % (sorted(ref), want))
            sd = {k: torch.from_numpy(np.asarray(params0[k]).copy()).to(ref[k].dtype) for k in ref}
            self.L.load_state_dict(sd, strict=True)
            return
        self.L = make_norms(self.model)
        for layer, heads in self.model.get("attns", {}).items():
            d = params0[layer + ".out_proj.weight"].shape[0]
            self.L[layer] = torch.nn.MultiheadAttention(d, heads, batch_first=True)
        for layer, (cls, kw) in self.model.get("rnns", {}).items():
            w = params0[layer + ".weight_ih_l0"]
            gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[cls]
            self.L[layer] = getattr(torch.nn, cls)(w.shape[1], w.shape[0] // gates,
                                                   batch_first=True, **kw)
        wraps = self.model.get("wraps", {})
        for name in self.model["params"]:
            layer = name.split(".")[0]
            # a wrapped layer's weight: weight_v (weight_norm) or weight_orig (spectral_norm)
            if name.endswith((".weight", ".weight_v", ".weight_orig")):
                w = params0[name]
                bias = (layer + ".bias") in params0
                if w.ndim == 4:
                    # [out, in/groups, k, k]: the geometry comes from the model entry
                    geo = self.model["convs"][layer]
                    self.L[layer] = torch.nn.Conv2d(w.shape[1] * geo.get("groups", 1), w.shape[0],
                                                    w.shape[2], bias=bias, **geo)
                elif layer not in self.L:
                    self.L[layer] = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias)
                if wraps.get(layer) == "weight_norm":
                    torch.nn.utils.weight_norm(self.L[layer])
                elif wraps.get(layer) == "spectral_norm":
                    torch.nn.utils.spectral_norm(self.L[layer])
        # the checkpoint's parameters and buffers must be exactly the modules' state_dict
        ref = self.L.state_dict()
        sd = {k: torch.from_numpy(np.asarray(params0[k]).copy()).to(ref[k].dtype) for k in ref}
        self.L.load_state_dict(sd, strict=True)

    def named(self):
        if "module" in self.model:
            return list(self.L.named_parameters())
        return [(n + "." + pn, p) for n, m in self.L.items() for pn, p in m.named_parameters()]

    def buffers(self):
        if "module" in self.model:
            return list(self.L.named_buffers())
        return [(n + "." + bn, b) for n, m in self.L.items() for bn, b in m.named_buffers()]

    def forward(self, x):
        return self.model["fwd"](self.L, x, self.F, self.torch)

    def data_loss(self, out, y):
        F, kind = self.F, self.model["loss"]
        if kind == "mse":
            return F.mse_loss(out, y)
        if kind == "mse_kl":
            pred, mu, logvar = out
            kld = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
            return F.mse_loss(pred, y) + kld.mean()
        if kind == "mae":
            return F.l1_loss(out, y)
        if kind == "bce":
            return F.binary_cross_entropy(out, y)
        if kind == "bce_logits":
            return F.binary_cross_entropy_with_logits(out, y)
        return F.cross_entropy(out, y.long().view(-1))

    def penalty(self):
        g = self.case.get("train", {})
        gl1, gl2 = g.get("l1", 0.0), g.get("l2", 0.0)
        pen = 0.0
        for n, m in ([] if "module" in self.model else self.L.items()):
            if n in self.model.get("norms", {}):
                continue  # no penalty on a norm's scale (dlnc: not a weight matrix)
            l1, l2 = self.model.get("penalties", {}).get(n, (0.0, 0.0))
            l1, l2 = l1 + gl1, l2 + gl2
            if l1:
                pen = pen + l1 * m.weight.abs().sum()
            if l2:
                pen = pen + l2 * (m.weight ** 2).sum()
        return pen

    def make_opt(self, state=None, step=0):
        torch = self.torch
        kind, hp = self.case["opt"]
        kw = dict(hp)
        if kind in ("adam", "adamw", "nadam"):
            b1, b2 = kw.pop("beta1", 0.9), kw.pop("beta2", 0.999)
            if "beta1" in hp or "beta2" in hp:
                kw["betas"] = (b1, b2)
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad,
               "nadam": torch.optim.NAdam}[kind]
        if kind == "nadam":
            # torch 1.13's single-tensor NAdam multiplies mu into the next
            # product twice; its foreach path (and torch 2) follow the
            # documented formula, as dlnc does
            kw["foreach"] = True
        params = [p for _, p in self.named()]
        opt = cls(params, **kw)
        if state is not None:
            for name, p in self.named():
                st = {s: torch.from_numpy(state[name + "." + s].copy()) for s in state_names(kind, hp)}
                if kind in ("adam", "adamw", "adagrad", "nadam"):
                    st["step"] = torch.tensor(float(step))
                elif kind == "rmsprop":
                    st["step"] = step
                opt.state[p] = st
        return opt

    def make_sched(self, opt, start_epoch):
        """torch's scheduler, stepped once per epoch from epoch 0 to start_epoch."""
        sched = self.case.get("sched")
        if not sched:
            return None
        lrs = self.torch.optim.lr_scheduler
        kind, kw = sched
        if kind == "step":
            s = lrs.StepLR(opt, step_size=kw["step_size"], gamma=kw.get("gamma", 0.1))
        elif kind == "exponential":
            s = lrs.ExponentialLR(opt, gamma=kw["gamma"])
        elif kind == "cosine":
            s = lrs.CosineAnnealingLR(opt, T_max=kw.get("t_max", K), eta_min=kw.get("eta_min", 0.0))
        else:
            raise ValueError(kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(start_epoch):
                s.step()
        assert s.last_epoch == start_epoch
        return s

    def snapshot(self, opt):
        kind, hp = self.case["opt"]
        snap = {n: p.detach().numpy().copy() for n, p in self.named() + self.buffers()}
        for n, p in self.named():
            for s in state_names(kind, hp):
                snap[n + "." + s] = opt.state[p][s].detach().numpy().copy()
        return snap

    def train(self, start_epoch, state=None):
        """Steps from start_epoch to K; per step: loss before, lr, test loss after, snapshot."""
        torch = self.torch
        opt = self.make_opt(state, start_epoch)
        sched = self.make_sched(opt, start_epoch)
        warm = self.case.get("train", {}).get("warmup", 0)
        clip = self.case.get("train", {}).get("clip")
        X, Y, Xt, Yt = self.data
        hist = []
        for epoch in range(start_epoch, K):
            step = epoch  # full batch: one step per epoch
            sched_lr = [g["lr"] for g in opt.param_groups]
            f = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
            for g in opt.param_groups:
                g["lr"] = g["lr"] * f
            lr = opt.param_groups[0]["lr"]
            opt.zero_grad()
            self.L.train()  # batch norm: the batch's statistics, running ones updated
            Noise.at(step, None)
            if self.model.get("noise"):  # row r of the batch draws noise k = r * size + j
                perm = torch.tensor(dl_shuffle(X.shape[0], Noise.seed, epoch))
                out, _ = self.forward(X[perm])
                loss = self.data_loss(out, Y[perm]) + self.penalty()
            else:
                out, _ = self.forward(X)
                loss = self.data_loss(out, Y) + self.penalty()
            loss.backward()
            norm = math.sqrt(sum(float((p.grad ** 2).sum()) for _, p in self.named()))
            if clip:
                torch.nn.utils.clip_grad_norm_([p for _, p in self.named()], clip)
            opt.step()
            for g, l in zip(opt.param_groups, sched_lr):
                g["lr"] = l
            if sched:
                sched.step()
            self.L.eval()  # as the trainer evaluates: batch norm on its running statistics
            Noise.at(step + 1, X.shape[0])  # in the training run's batches, after the step
            with torch.no_grad():
                tl = float(self.data_loss(self.forward(Xt)[0], Yt))
            hist.append(dict(epoch=epoch + 1, loss=float(loss), lr=lr, test_loss=tl, norm=norm,
                             snap=self.snapshot(opt)))
        return hist


# ---- comparisons -------------------------------------------------------------

class Report:
    def __init__(self, tol):
        self.tol = tol
        self.fails = []
        self.worst = {}

    def rel(self, what, got, want, tol=None, where=""):
        import numpy as np
        tol = self.tol if tol is None else tol
        if got is None:
            self.fails.append("%s%s: missing or null (not finite), torch has %r" % (what, where, want))
            return False
        got, want = np.asarray(got, dtype="f8"), np.asarray(want, dtype="f8")
        if got.shape != want.shape:
            self.fails.append("%s%s: shape %s, torch has %s" % (what, where, got.shape, want.shape))
            return False
        ab = float(np.max(np.abs(got - want))) if got.size else 0.0
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        r = ab / scale if scale > 0 else (0.0 if ab == 0 else math.inf)
        if not np.all(np.isfinite(got)):
            r = math.inf
        cat = what.split(" ")[0]
        if r > self.worst.get(cat, (-1,))[0]:
            self.worst[cat] = (r, what + where)
        if not r < tol:
            self.fails.append("%s%s: max abs err %.3g, rel err %.3g (tol %g)"
                              % (what, where, ab, r, tol))
            return False
        return True


def compare_ckpt(rep, label, path, snap, names, want_step, buffers=()):
    got, meta, _ = st_read(path)
    ok = True
    missing = sorted(set(names) - set(got))
    extra = sorted(set(got) - set(names))
    if missing or extra:
        rep.fails.append("%s: tensors missing %s, unexpected %s" % (label, missing, extra))
        ok = False
    for n in names:
        if n in got:
            kind = "buffer" if n in buffers else "param" if n.count(".") == 1 else "state"
            ok &= rep.rel("%s %s" % (kind, n), got[n], snap[n], where=" [%s]" % label)
    if meta.get("step") != str(want_step) or meta.get("epoch") != str(want_step):
        rep.fails.append("%s: metadata epoch %s step %s, expected %d (one step per full-batch epoch)"
                         % (label, meta.get("epoch"), meta.get("step"), want_step))
        ok = False
    return ok


def compare_metrics(rep, label, path, hist):
    m = read_metrics(path)
    for h in hist:
        e = h["epoch"]
        if e not in m:
            rep.fails.append("%s: no metrics line for epoch %d" % (label, e))
            continue
        r = m[e]
        where = " [%s epoch %d]" % (label, e)
        rep.rel("train_loss", r.get("train_loss"), h["loss"], where=where)
        rep.rel("lr", r.get("lr"), h["lr"], where=where)
        rep.rel("test_loss", r.get("test_loss"), h["test_loss"], where=where)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlnc")
    ap.add_argument("--work")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="?")
    a = ap.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    if a.case not in CASES:
        print("unknown case %r; cases: %s" % (a.case, " ".join(CASES)))
        return 2
    try:
        import numpy  # noqa: F401
        import torch
    except ImportError:
        print("SKIPPED: Debian's python3-torch is not installed (scripts/setup.sh installs it)")
        return 77
    try:
        custom = MODELS[CASES[a.case]["model"]].get("custom")
        if custom:  # a case with its own training loop (updates.py), given this module's helpers
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            mod = __import__(custom)
            return getattr(mod, "check_" + a.case)(a.case, sys.modules[__name__], a.dlnc,
                                                   os.path.abspath(a.work))
        return check(a.case, CASES[a.case], a.dlnc, os.path.abspath(a.work))
    except Failed as e:
        print("FAIL %s: %s" % (a.case, e))
        return 1


def check(name, case, dlnc, work):
    import numpy as np
    import torch
    os.makedirs(work, exist_ok=True)
    for f in os.listdir(work):
        if f.endswith((".jsonl", ".safetensors")):
            os.remove(os.path.join(work, f))
    model = MODELS[case["model"]]
    f64 = case.get("f64", True)
    tol = case.get("tol", 1e-6)
    kind, hp = case["opt"]

    # data
    if model["data"] == "reg":
        train_csv, test_csv = REG_TRAIN, REG_TEST
    else:
        train_csv = os.path.join(work, model["data"] + "_train.csv")
        test_csv = os.path.join(work, model["data"] + "_test.csv")
        # more test rows than the full batch: eval runs a full and a partial batch
        for path, n, seed in ((train_csv, 240, 11), (test_csv, 300, 12)):
            if model["data"] == "img":
                write_images(path, n, model["input"], seed)
            else:
                write_generated(path, n, model["data"], seed)
    shape = tuple(model.get("input", (4,)))
    n_in = int(np.prod(shape))

    def load(path):
        # The trainer's datasets hold CSV values as float (runtime/data.h,
        # x_f32 and y_real), also in an --f64 build: round them the same way.
        rows = [[float(v) for v in ln.split(",")] for ln in read_csv(path)]
        t = torch.tensor(rows, dtype=torch.float64).float().double()
        return t[:, :n_in].reshape(-1, *shape), t[:, n_in:]
    X, Y = load(train_csv)
    Xt, Yt = load(test_csv)

    # the .dln and the trainer
    mname = "t_" + name
    lines = ["  data      = csv(\"%s\")" % train_csv, "  test      = csv(\"%s\")" % test_csv,
             "  batch     = full", "  epochs    = %d" % K, "  seed      = 7",
             "  optimizer = %s" % dln_call(kind, hp)]
    if case.get("sched"):
        lines.append("  schedule  = %s" % dln_call(*case["sched"]))
    for k, v in case.get("train", {}).items():
        lines.append("  %-9s = %s" % (k, dln_value(v)))
    dln = os.path.join(work, mname + ".dln")
    with open(dln, "w") as f:
        f.write("# written by tests/torch/compare.py, case %s\n%smodel %s {%s\n}\n\ntrain %s {\n%s\n}\n"
                % (name, model.get("blocks", ""), mname, model["text"], mname, "\n".join(lines)))
    binp = os.path.join(work, mname)
    run([dlnc, "build"] + (["--f64"] if f64 else []) + [dln, "-o", binp])
    if model.get("noise"):
        # the noise sites, in the order the forward pass draws them
        gen = os.path.join(work, "gen")
        run([dlnc, "emit"] + (["--f64"] if f64 else []) + [dln, "-o", gen])
        with open(os.path.join(gen, mname + ".c")) as f:
            Noise.sites = [int(v) for v in re.findall(r"noise of site (\d+)", f.read())]
        if not Noise.sites:
            raise Failed("the generated C draws no noise: expected a randn_like site")

    P = lambda f: os.path.join(work, f)  # noqa: E731
    thr = ["--threads", str(case["threads"])] if case.get("threads") else []
    run([binp, "train", "--epochs", "1", "--save", P("s1.safetensors"), "--metrics", P("m.jsonl")])
    run([binp, "train", "--resume", P("s1.safetensors"), "--epochs", str(K), "--save",
         P("sK.safetensors"), "--metrics", P("m.jsonl")] + thr)

    s1, meta1, dtypes = st_read(P("s1.safetensors"))
    snames = state_names(kind, hp)
    buffers = buffer_names(model)
    names = (list(model["params"]) + buffers
             + [p + "." + s for p in model["params"] for s in snames])
    if sorted(s1) != sorted(names):
        raise Failed("s1.safetensors has tensors %s, expected %s" % (sorted(s1), sorted(names)))
    want_dtype = "F64" if f64 else "F32"
    # torch's num_batches_tracked is an int64 scalar: so is dlnc's
    want = {n: "I64" if n.endswith(".num_batches_tracked") else want_dtype for n in names}
    if dtypes != want:
        raise Failed("s1.safetensors dtypes %s, expected %s" % (dtypes, want))

    # s0: s1's weights and buffers with fresh optimiser state, before any step
    # (torch's start: zeros, adagrad's accumulator value, nadam's mu_product 1)
    init = hp.get("initial_accumulator_value", 0.0) if kind == "adagrad" else 0.0
    s0 = {n: (s1[n] if n in model["params"] or n in buffers else
              np.full_like(s1[n], 1.0 if n.endswith(".mu_product") else init))
          for n in names}
    # a hand-made checkpoint carries no CRC (the trainer checks one only if present)
    meta0 = {k: v for k, v in dict(meta1, epoch="0", step="0").items() if k != "crc32"}
    st_write(P("s0.safetensors"), s0, dtypes, meta0)
    run([binp, "train", "--resume", P("s0.safetensors"), "--epochs", str(K), "--save",
         P("f.safetensors"), "--metrics", P("mf.jsonl")])

    rep = Report(tol)
    data = (X, Y, Xt, Yt)

    # chain B: fresh optimiser, K steps
    tb = Torch(case, data, s0)
    hb = tb.train(0)
    compare_ckpt(rep, "fresh start, after step %d" % K, P("f.safetensors"), hb[-1]["snap"], names, K,
                 buffers)
    compare_metrics(rep, "fresh start", P("mf.jsonl"), hb)

    # chain A: resume from s1 with its optimiser state, K-1 steps
    ta = Torch(case, data, s1)
    ha = ta.train(1, state=s1)
    okA = compare_ckpt(rep, "resumed from s1, after step %d" % K, P("sK.safetensors"),
                       ha[-1]["snap"], names, K, buffers)
    compare_metrics(rep, "resumed", P("m.jsonl"), ha)
    if not okA:
        # name the first step that differs: rerun the chain one epoch at a time
        prev = P("s1.safetensors")
        for h in ha[:-1]:
            e = h["epoch"]
            cur = P("step%d.safetensors" % e)
            run([binp, "train", "--resume", prev, "--epochs", str(e), "--save", cur])
            sub = Report(tol)
            if not compare_ckpt(sub, "resumed, step %d" % e, cur, h["snap"], names, e, buffers):
                rep.fails.append("first differing step of the resumed chain: %d; there: %s"
                                 % (e, "; ".join(sub.fails[:4])))
                break
            prev = cur
        else:
            rep.fails.append("first differing step of the resumed chain: %d (the last)" % K)

    # eval on sK: the test set's data loss (no penalties) and accuracy, in
    # evaluation mode (batch norm on its running statistics)
    ta.L.eval()
    Noise.at(K, None)  # `eval` runs the whole test set as one batch (batch = full)
    with torch.no_grad():
        out_t, pred_t = ta.forward(Xt)
    with torch.no_grad():
        want_loss = float(ta.data_loss(out_t, Yt))
    ev = run([binp, "eval", "--load", P("sK.safetensors")]).split()
    got = dict(zip(ev[0::2], ev[1::2]))
    rep.rel("eval test_loss", float(got.get("test_loss", "nan")), want_loss, tol=max(tol, 1e-5))
    lossk = model["loss"]
    if lossk in ("cross_entropy", "bce", "bce_logits"):
        if lossk == "cross_entropy":
            acc = float((out_t.argmax(1) == Yt.view(-1).long()).double().mean())
        else:
            acc = float(((pred_t > 0.5) == (Yt > 0.5)).double().mean())
        if abs(float(got.get("test_acc", "nan")) - acc) > 1e-4:
            rep.fails.append("eval test_acc %s, torch %.4f" % (got.get("test_acc"), acc))

    # predict on sK: the first test rows' inputs
    rows = [",".join(ln.split(",")[:n_in]) for ln in read_csv(test_csv)[:N_PREDICT]]
    # predict reads its rows as the CSV loader reads training data: float32
    # values, in every build
    xp = torch.tensor([[float(v) for v in r.split(",")] for r in rows],
                      dtype=torch.float64).reshape(-1, *shape).float().double()
    Noise.at(K, None)
    with torch.no_grad():
        out_p, pred_p = ta.forward(xp)
    pr = run([binp, "predict", "--load", P("sK.safetensors")], stdin="\n".join(rows) + "\n").split()
    if len(pr) != N_PREDICT:
        rep.fails.append("predict printed %d lines for %d rows" % (len(pr), N_PREDICT))
    elif lossk == "cross_entropy":
        want = out_p.argmax(1).tolist()
        gotc = [int(v) for v in pr]
        if gotc != want:
            rep.fails.append("predict classes %s, torch argmax %s" % (gotc, want))
    else:
        gotv = [float(v) for v in pr]
        # regression values are printed with %.9g, probabilities with %.6g
        ptol = max(tol, 2e-6 if lossk in ("bce", "bce_logits") else 1e-6)
        rep.rel("predict", gotv, pred_p.view(-1).tolist(), tol=ptol)

    if case.get("train", {}).get("clip"):
        norms = ["%.3g" % h["norm"] for h in hb]
        clipped = [h["norm"] > case["train"]["clip"] for h in hb]
        if all(clipped) or not any(clipped):
            rep.fails.append("the clip case should clip some steps and not others, but the gradient "
                             "norms are %s for clip = %g: adjust the case"
                             % (" ".join(norms), case["train"]["clip"]))
        print("gradient norms before clipping (fresh chain): %s" % " ".join(norms))

    print("case %s: %s, %s, K = %d steps, tolerance %g" % (name, "f64" if f64 else "f32",
                                                             dln_call(kind, hp), K, tol))
    for cat, (r, what) in sorted(rep.worst.items()):
        print("  max rel err %-11s %.3g  (%s)" % (cat, r, what))
    if rep.fails:
        print("FAIL %s: %d mismatch(es):" % (name, len(rep.fails)))
        for f in rep.fails[:40]:
            print("  " + f)
        return 1
    print("PASS %s" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
