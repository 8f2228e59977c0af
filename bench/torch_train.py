#!/usr/bin/python3
"""PyTorch twins of the benchmark models, timed like the dlnc trainers.

    /usr/bin/python3 bench/torch_train.py WORKLOAD --data DIR [--threads T]
        [--epochs N] [--seed S] [--json FILE]

WORKLOAD is one of SPECS below (mlp, tiny, wide, cnn, lstm, transformer, and
the generative vae, gan, autoencoder of bench/torch_gen.py); each
is the same model as its .dln file (same layers, activations, initialisation,
loss, optimiser, learning rate, gradient clipping, batch).
The data are loaded into memory as float32 tensors (lstm, transformer: int64
byte ids), shuffled each epoch and cut into batch tensors before the clock
starts (so the process holds the data set twice: as loaded and as batches);
only the loop over the batches (zero_grad, forward, loss, backward, clip,
step) is timed.  Prints one line per epoch; --json writes a summary (samples/s per
epoch, the mean training loss, and which BLAS kernel and CPU capability torch
used).

bench/run imports SPECS from here (without importing torch) to count flops.
Run it with Debian's /usr/bin/python3, which has python3-torch; bench/run sets
the thread and OpenBLAS environment variables for it.
"""
import argparse
import gzip
import json
import math
import os
import pathlib
import struct
import sys
import time

# Layer widths (input first), hidden activation, loss, optimiser, batch and
# initialisation of each workload, as in its .dln file.  Biases start at zero
# (dlnc's rule for every init but torch_default, which is torch's own default
# for weights and biases).  A workload with "convs" has an image input of
# shape "input" ([C, H, W]) and, before its dense layers "dims", one
# conv2d(channels, kernel, padding) -> act -> maxpool(pool) block per entry of
# "convs" (stride 1, dilation 1, bias), then flatten; dims[0] is the flattened
# size.  A workload with "lstm" is a byte-level language model instead:
# embedding(vocab -> embed), one nn.LSTM layer of width "lstm" (batch_first,
# zero initial state per sample), dense layers "dims" at every position, and
# cross-entropy over all seq positions; its samples are "seq" bytes of text.
# A workload with "heads" is a byte-level decoder-only Transformer on the same
# text: embedding(vocab -> embed) plus a learned position table, "blocks"
# pre-LayerNorm blocks (causal self-attention of "heads" heads, a GELU MLP of
# width "mlp", dropout "dropout" on each branch), a final LayerNorm and dense
# layers "dims" at every position.
SPECS = {
    "mlp": dict(dln="examples/fashion_mlp.dln", dims=[784, 256, 128, 10], act="relu",
                loss="cross_entropy", opt="adam", lr=1e-3, batch=64, init="he_normal",
                data="fashion-mnist"),
    "tiny": dict(dln="bench/tiny.dln", dims=[2, 16, 16, 1], act="tanh", loss="mse",
                 opt="sgd", lr=0.05, batch=1, init="xavier_uniform", data="tiny.csv"),
    "wide": dict(dln="bench/wide.dln", dims=[2048, 2048, 2048, 10], act="relu",
                 loss="cross_entropy", opt="adam", lr=1e-3, batch=256, init="he_normal",
                 data="wide-*.idx"),
    "cnn": dict(dln="examples/fashion_cnn.dln", input=[1, 28, 28],
                convs=[(16, 5, 2), (32, 5, 2)], pool=2, dims=[32 * 7 * 7, 128, 10],
                act="relu", loss="cross_entropy", opt="sgd", lr=0.01, momentum=0.9,
                batch=64, init="torch_default", data="fashion-mnist"),
    "lstm": dict(dln="examples/char_lstm.dln", seq=128, vocab=256, embed=64, lstm=256,
                 dims=[256, 256], loss="cross_entropy", opt="adam", lr=2e-3, clip=5,
                 batch=32, init="torch_default", data="fortunes", text_to=0.95),
    "transformer": dict(dln="examples/char_transformer.dln", seq=128, vocab=256, embed=128,
                        heads=4, blocks=2, mlp=512, dropout=0.1, dims=[128, 256],
                        loss="cross_entropy", opt="adamw", lr=1e-3, clip=1, batch=32,
                        init="torch_default", data="fortunes", text_to=0.95),
    # Generative models (bench/torch_gen.py builds and steps them): images
    # only, no label.  "passes" lists, for the flop count, each application
    # of a stack of dense layers in one training step: its widths, whether
    # the step computes its weights' gradient, and which layers' input
    # gradient it needs ("all", "not_first" or "none").
    "vae": dict(dln="examples/fashion_vae.dln", gen="vae", epochs=10, opt="adam", lr=1e-3,
                batch=128, init="torch_default", data="fashion-mnist",
                passes=[([784, 400, 40], True, "not_first"),  # fc1, then mu and logvar
                        ([20, 400, 784], True, "all")]),      # dec, back to z
    "gan": dict(dln="examples/fashion_gan.dln", gen="gan", epochs=20, opt="adam", lr=2e-4,
                beta1=0.5, noise=100, batch=64, init="torch_default", data="fashion-mnist",
                passes=[([100, 256, 512, 784], True, "not_first"),  # G(z)
                        ([784, 512, 256, 1], True, "not_first"),    # D(real)
                        ([784, 512, 256, 1], True, "not_first"),    # D(detach(fake))
                        ([784, 512, 256, 1], False, "all")]),       # D(fake), G's step
    "autoencoder": dict(dln="examples/fashion_autoencoder.dln", gen="autoencoder", epochs=10,
                        opt="adam", lr=1e-3, batch=128, init="torch_default",
                        data="fashion-mnist",
                        passes=[([784, 256, 64, 256, 784], True, "not_first")]),
}


def conv_shapes(spec):
    """(C, OC, K, OH, OW) of each conv2d of a workload, and the flattened size
    after its last maxpool."""
    (c, h, w), pool, out = spec["input"], spec["pool"], []
    for oc, k, pad in spec["convs"]:
        oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1  # stride 1, dilation 1
        out.append((c, oc, k, oh, ow))
        c, h, w = oc, oh // pool, ow // pool
    return out, c * h * w


def flops_per_sample(spec):
    """Model flops of one training sample: 2 x the multiply-adds of the conv
    and dense layers.  Forward: 2*in*out per dense layer, 2*OC*OH*OW*C*K*K per
    conv2d (C input channels, OC output channels, K x K kernel, OH x OW output).
    Backward: the forward figure again for dW and again for dx (2x forward),
    except that the network's first layer computes no dx (no input gradient).
    Activations, pooling, loss and optimiser are not counted.
    lstm: per position, 2*4H*(E+H) for the LSTM's gates (input E, hidden H)
    plus 2*in*out per dense layer, times seq positions; the embedding is a
    lookup (0 flops), so the LSTM's dx counts and the backward is exactly
    2x the forward.
    transformer: per position and block, 2*D*3D (q, k, v projections) +
    2*D*D (output projection) + 2*2*D*F (the MLP, width F) + 2*2*T*D for the
    attention itself (q.k and p.v over all T positions, though the causal mask
    leaves half of them out), plus 2*in*out per dense layer at the end, times
    T positions; embedding, positions, norms and softmax 0; backward 2x
    forward."""
    if "passes" in spec:
        total = 0
        for dims, dw, dx in spec["passes"]:
            fwd = [2 * a * b for a, b in zip(dims, dims[1:])]
            total += sum(fwd) + (sum(fwd) if dw else 0)
            total += {"all": sum(fwd), "not_first": sum(fwd[1:]), "none": 0}[dx]
        return total
    if "heads" in spec:
        t, d, f, dims = spec["seq"], spec["embed"], spec["mlp"], spec["dims"]
        block = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * f + 2 * 2 * t * d
        fwd = spec["blocks"] * block + sum(2 * a * b for a, b in zip(dims, dims[1:]))
        return 3 * t * fwd
    if "lstm" in spec:
        e, h, dims = spec["embed"], spec["lstm"], spec["dims"]
        fwd = 2 * 4 * h * (e + h) + sum(2 * a * b for a, b in zip(dims, dims[1:]))
        return 3 * spec["seq"] * fwd
    fwd = []
    if "convs" in spec:
        convs, flat = conv_shapes(spec)
        assert flat == spec["dims"][0], (flat, spec["dims"])
        fwd += [2 * oc * oh * ow * c * k * k for c, oc, k, oh, ow in convs]
    dims = spec["dims"]
    fwd += [2 * a * b for a, b in zip(dims, dims[1:])]
    return sum(fwd) + sum(fwd) + sum(fwd[1:])


def read_idx(path):
    """An IDX file (optionally gzipped) of unsigned bytes, as a numpy array."""
    import numpy as np
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_text(spec, data_dir):
    """(x, y) int64 [n, seq] as dlnc's text(".", to = text_to) makes them:
    every regular file of data_dir (not a symlink, not *.dat) in byte-wise
    name order, concatenated; bytes [0, floor(to*N)) cut into n = (len-1)//seq
    non-overlapping windows, each byte's label the byte after it.  (dlnc
    would also inflate *.gz files; the fortunes directory has none.)"""
    import numpy as np
    import torch
    paths = sorted((e.path for e in os.scandir(data_dir)
                    if e.is_file(follow_symlinks=False) and not e.name.endswith(".dat")),
                   key=os.fsencode)  # byte-wise, as dlnc's strcmp, whatever the locale
    text = b"".join(pathlib.Path(p).read_bytes() for p in paths)
    part = np.frombuffer(text, dtype=np.uint8)[:math.floor(spec["text_to"] * len(text))]
    seq = spec["seq"]
    n = (len(part) - 1) // seq
    x = part[:n * seq].reshape(n, seq).astype(np.int64)
    y = part[1:n * seq + 1].reshape(n, seq).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def load_data(name, data_dir):
    """(x, y) for a workload: x float32 [n, in] (or [n, C, H, W] for an image
    input), y int64 classes or float32 [n, 1]; lstm, transformer: see load_text."""
    import numpy as np
    import torch
    if "seq" in SPECS[name]:
        return load_text(SPECS[name], data_dir)
    if name == "tiny":
        a = np.loadtxt(os.path.join(data_dir, "tiny.csv"), delimiter=",", dtype=np.float32)
        return torch.from_numpy(a[:, :2].copy()), torch.from_numpy(a[:, 2:].copy())
    if "gen" in SPECS[name]:  # images alone, no label
        images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
        x = images.reshape(images.shape[0], -1).astype(np.float32)
        x *= np.float32(1 / 255)
        return torch.from_numpy(x), None
    if name in ("mlp", "cnn"):
        img, lab = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
    else:
        img, lab = "wide-images.idx", "wide-labels.idx"
    images = read_idx(os.path.join(data_dir, img))
    labels = read_idx(os.path.join(data_dir, lab))
    # Like dlnc's idx(..., scale = 1/255): the byte times the float 1/255
    # (in place: no second float copy of the data set).
    x = images.reshape([images.shape[0]] + SPECS[name].get("input", [-1])).astype(np.float32)
    x *= np.float32(1 / 255)
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


def token_loss(logits, y):
    """Cross-entropy, the mean over all batch x seq positions."""
    from torch import nn
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def make_lstm(spec):
    """embedding -> LSTM -> dense at every position, torch's default init
    throughout (nn.Embedding: N(0, 1)); the loss is token_loss."""
    import torch
    from torch import nn
    assert spec["init"] == "torch_default" and spec["opt"] == "adam" and len(spec["dims"]) == 2

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(spec["vocab"], spec["embed"])
            self.lstm = nn.LSTM(spec["embed"], spec["lstm"], batch_first=True)
            self.out = nn.Linear(*spec["dims"])

        def forward(self, x):
            return self.out(self.lstm(self.embed(x))[0])

    model = CharLSTM()
    return model, token_loss, torch.optim.Adam(model.parameters(), lr=spec["lr"])


def make_transformer(spec):
    """embedding + a learned position table (zeros at first), pre-LayerNorm
    blocks a = x + dropout(attention(norm(x))), a + dropout(dense(gelu(dense(
    norm(a))))), a final norm and dense at every position: the .dln's layers
    written out (nn.TransformerEncoderLayer would add a dropout after the
    GELU).  nn.MultiheadAttention with a causal mask and no dropout of its
    own, nn.LayerNorm (eps 1e-5), torch's default init throughout
    (nn.Embedding: N(0, 1)), AdamW; the loss is token_loss."""
    import torch
    from torch import nn
    assert spec["init"] == "torch_default" and spec["opt"] == "adamw" and len(spec["dims"]) == 2
    t, d = spec["seq"], spec["embed"]
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)  # True: may not attend

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(d)
            self.attn = nn.MultiheadAttention(d, spec["heads"], batch_first=True)
            self.drop1 = nn.Dropout(spec["dropout"])
            self.norm2 = nn.LayerNorm(d)
            self.up, self.down = nn.Linear(d, spec["mlp"]), nn.Linear(spec["mlp"], d)
            self.drop2 = nn.Dropout(spec["dropout"])

        def forward(self, x):
            u = self.norm1(x)
            a = x + self.drop1(self.attn(u, u, u, attn_mask=causal, need_weights=False)[0])
            return a + self.drop2(self.down(nn.functional.gelu(self.up(self.norm2(a)))))

    class CharTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(spec["vocab"], d)
            self.pos = nn.Parameter(torch.zeros(t, d))
            self.blocks = nn.Sequential(*[Block() for _ in range(spec["blocks"])])
            self.norm = nn.LayerNorm(d)
            self.out = nn.Linear(*spec["dims"])

        def forward(self, x):
            return self.out(self.norm(self.blocks(self.embed(x) + self.pos)))
    model = CharTransformer()
    return model, token_loss, torch.optim.AdamW(model.parameters(), lr=spec["lr"])


def make_model(spec):
    import torch
    from torch import nn
    if "lstm" in spec:
        return make_lstm(spec)
    if "heads" in spec:
        return make_transformer(spec)
    dims, layers = spec["dims"], []
    if "convs" in spec:
        # conv2d -> ReLU -> maxpool per block, then flatten; nn.Conv2d's own
        # init (dlnc's conv2d under init = torch_default is the same).
        assert spec["init"] == "torch_default" and spec["act"] == "relu"
        for (c, oc, k, _, _), (_, _, pad) in zip(conv_shapes(spec)[0], spec["convs"]):
            layers += [nn.Conv2d(c, oc, k, padding=pad), nn.ReLU(), nn.MaxPool2d(spec["pool"])]
        layers.append(nn.Flatten())
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        lin = nn.Linear(a, b)
        if spec["init"] == "he_normal":
            nn.init.kaiming_normal_(lin.weight, mode="fan_in", nonlinearity="relu")
        elif spec["init"] == "xavier_uniform":
            nn.init.xavier_uniform_(lin.weight)
        elif spec["init"] != "torch_default":  # torch_default: nn.Linear's own
            raise ValueError(spec["init"])
        if spec["init"] != "torch_default":
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(nn.ReLU() if spec["act"] == "relu" else nn.Tanh())
    model = nn.Sequential(*layers)
    loss_fn = nn.CrossEntropyLoss() if spec["loss"] == "cross_entropy" else nn.MSELoss()
    if spec["opt"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=spec["lr"],
                              momentum=spec.get("momentum", 0))
    return model, loss_fn, opt


def blas_info():
    """The OpenBLAS torch loaded and the kernel (core type) it chose."""
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return {"blas": lib.openblas_get_config().decode(),
                "blas_core": lib.openblas_get_corename().decode(),
                "blas_threads": lib.openblas_get_num_threads()}
    except (OSError, AttributeError):
        return {"blas": "not OpenBLAS", "blas_core": None, "blas_threads": None}


def cpu_capability(torch):
    """ATen's kernel dispatch level (AVX2, AVX512, ...)."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workload", choices=sorted(SPECS))
    ap.add_argument("--data", required=True, help="directory of the data files")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="write a summary as JSON")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    spec = SPECS[args.workload]
    x, y = load_data(args.workload, args.data)
    n, batch = x.shape[0], spec["batch"]
    if "gen" in spec:
        import torch_gen
        gen_step = torch_gen.make(spec["gen"], spec)[1]

        def step(xb, _yb):
            return gen_step(xb)["loss"]  # a float (D's loss for the GAN)
    else:
        model, loss_fn, opt = make_model(spec)
        params, clip = list(model.parameters()), spec.get("clip")

        def step(xb, yb):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            if clip:  # dlnc's clip = C: the total norm over all gradients
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            return loss.detach()
    gen = torch.Generator().manual_seed(args.seed)

    rates, losses_per_epoch = [], []
    batches = None
    for epoch in range(1, args.epochs + 1):
        del batches  # the previous epoch's batches go before the next are cut
        perm = torch.randperm(n, generator=gen)
        batches = [(x[perm[i:i + batch]], None if y is None else y[perm[i:i + batch]])
                   for i in range(0, n, batch)]
        losses = []
        t0 = time.perf_counter()
        for xb, yb in batches:
            losses.append(step(xb, yb))
        seconds = time.perf_counter() - t0
        # Mean over samples (the last batch may be partial), as dlnc reports it.
        sizes = torch.tensor([float(b[0].shape[0]) for b in batches])
        train_loss = float((torch.tensor([float(v) for v in losses]) * sizes).sum() / n)
        rates.append(n / seconds)
        losses_per_epoch.append(train_loss)
        print(f"epoch {epoch}  train_loss {train_loss:.6f}  {seconds:.3f}s  "
              f"{n / seconds:.1f} samples/s", flush=True)

    info = {
        "workload": args.workload, "threads": args.threads, "epochs": args.epochs,
        "samples": n, "samples_per_s": rates, "train_loss": losses_per_epoch,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "cpu_capability": cpu_capability(torch),
        "env": {k: os.environ.get(k) for k in
                ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                 "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "ATEN_CPU_CAPABILITY")},
    }
    info.update(blas_info())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(info, f)


if __name__ == "__main__":
    main()
