#!/usr/bin/python3
"""Truncated backpropagation through time against PyTorch.

    /usr/bin/python3 tests/torch/tbptt.py --dlnc DLNC --work DIR

A byte-level LSTM language model with `carry = true` (dlnc build --f64)
trains one epoch on a generated text with batch 3, and that epoch is redone
in torch from the same weights: the windows streamed as the trainer streams
them (row r of batch b is window r*L + b, L = n // 3; the windows left over
make a last, shorter batch that starts from zeros), each batch starting from
the state its rows ended the previous batch with, detached, and one SGD
step per batch.  Then `eval --batch 1` carries the state through the whole
test text, which torch computes as one long sequence.  Weights and losses
must agree to 1e-9 (relative).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Failed, run, st_read  # noqa: E402

T, V, E, H, BATCH, LR = 8, 16, 5, 6, 3, 0.5
MODEL = """
model tbptt {
  input  x : class[%d, %d]
  label  y : class[%d, %d]
  e      = embedding(x, %d)
  h      = lstm(e, %d, carry = true)
  logits = dense(h, %d)
  loss   = cross_entropy(logits, y)
}

train tbptt {
  data      = text("text.bin", to = 0.75)
  test      = text("text.bin", from = 0.75)
  batch     = %d
  optimizer = sgd(lr = %g)
  seed      = 5
}
""" % (T, V, T, V, E, H, V, BATCH, LR)


def make_text(n=700):
    """Bytes in 0..15 with structure an LSTM can use: a counter, a period-5
    pattern and their sum, interleaved."""
    out, k = bytearray(), 0
    while len(out) < n:
        out += bytes([k % 16, (k * 3) % 5, (k + (k * 3) % 5) % 16])
        k += 1
    return bytes(out[:n])


def windows(data):
    n = (len(data) - 1) // T
    xs = [list(data[i * T:i * T + T]) for i in range(n)]
    ys = [list(data[i * T + 1:i * T + T + 1]) for i in range(n)]
    return xs, ys


def check(dlnc, work):
    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.set_default_dtype(torch.float64)
    os.makedirs(work, exist_ok=True)
    P = lambda f: os.path.join(work, f)  # noqa: E731
    text = make_text()
    with open(P("text.bin"), "wb") as f:
        f.write(text)
    with open(P("tbptt.dln"), "w") as f:
        f.write(MODEL)
    binp = P("tbptt")
    run([dlnc, "build", "--f64", P("tbptt.dln"), "-o", binp])
    run([binp, "train", "--epochs", "1", "--data", work, "--save", P("s1.safetensors")])
    out = run([binp, "train", "--resume", P("s1.safetensors"), "--epochs", "2", "--data", work,
               "--save", P("s2.safetensors")])
    s1, _, _ = st_read(P("s1.safetensors"))
    s2, _, _ = st_read(P("s2.safetensors"))

    emb = torch.nn.Embedding(V, E)
    lstm = torch.nn.LSTM(E, H, batch_first=True)
    lin = torch.nn.Linear(H, V)
    mods = {"e": emb, "h": lstm, "logits": lin}
    for name, m in mods.items():
        m.load_state_dict({k: torch.from_numpy(s1[name + "." + k].copy()) for k in m.state_dict()})
    params = [p for m in mods.values() for p in m.parameters()]

    def forward(x, state):
        hs, state = lstm(emb(torch.tensor(x)), state)
        return lin(hs), state

    # epoch 2, streamed as the trainer streams it
    cut = int(0.75 * len(text))
    xs, ys = windows(text[:cut])
    n, L = len(xs), len(xs) // BATCH
    state, losses = None, []
    for b in range((n + BATCH - 1) // BATCH):
        rows = [r * L + b for r in range(BATCH)] if b < L else list(range(L * BATCH, n))
        if b >= L:
            state = None
        logits, new = forward([xs[i] for i in rows], state)
        loss = F.cross_entropy(logits.reshape(-1, V), torch.tensor([ys[i] for i in rows]).reshape(-1))
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
        state = tuple(s.detach() for s in new)
        losses.append(loss.item() * len(rows))
    worst = 0.0
    for name, m in mods.items():
        for k, p in m.state_dict().items():
            want, got = p.numpy(), s2[name + "." + k]
            err = float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-12))
            worst = max(worst, err)
            if err > 1e-9:
                raise Failed("%s.%s after the streamed epoch: relative error %.3g" % (name, k, err))
    train_loss = sum(losses) / n
    got = float(out.split("train_loss")[-1].split()[0])
    if abs(got - train_loss) > 1e-4 * abs(train_loss):
        raise Failed("epoch 2 train_loss %.6f, torch %.6f" % (got, train_loss))

    # eval --batch 1: one stream through the whole test part
    ev = run([binp, "eval", "--load", P("s2.safetensors"), "--data", work, "--batch", "1"]).split()
    got = float(ev[ev.index("test_loss") + 1])
    for name, m in mods.items():
        m.load_state_dict({k: torch.from_numpy(s2[name + "." + k].copy()) for k in m.state_dict()})
    txs, tys = windows(text[cut:])
    with torch.no_grad():
        flat_x = [t for w in txs for t in w]
        flat_y = [t for w in tys for t in w]
        logits, _ = forward([flat_x], None)
        want = F.cross_entropy(logits.reshape(-1, V), torch.tensor(flat_y)).item()
    if abs(got - want) > 1e-6 * abs(want):
        raise Failed("streamed eval loss %.9g, torch over the whole text %.9g" % (got, want))
    print("tbptt: weights after the streamed epoch within %.2g of torch's; eval %.9g vs %.9g"
          % (worst, got, want))
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
        print("FAIL tbptt: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
