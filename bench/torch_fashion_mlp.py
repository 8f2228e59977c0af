#!/usr/bin/python3
"""PyTorch reference for examples/fashion_mlp.dln (--model mlp) and
examples/fashion_cnn.dln (--model cnn): test accuracy per epoch.

mlp: 784-256-128-10 with ReLU, cross-entropy loss, Adam lr 1e-3, batch 64,
shuffled every epoch (last partial batch kept), inputs = pixels / 255.
Weights he_normal (kaiming_normal_, fan_in, relu gain), biases zero,
unless --init torch_default.
cnn: conv 1->16 5x5 pad 2, ReLU, maxpool 2, conv 16->32 5x5 pad 2, ReLU,
maxpool 2, 1568-128-10 ReLU, cross-entropy, SGD lr 0.01 momentum 0.9,
batch 64, torch's default init (the .dln's torch_default).

Run with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 bench/torch_fashion_mlp.py --epochs 10 --seed 1 --metrics out.jsonl
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def load_idx(path):
    """Read a gzipped IDX file into a numpy array (uint8 data only)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        sys.exit(f"{path}: size does not match header {dims}")
    return arr.reshape(dims)


def load_split(data_dir, prefix):
    images = load_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = load_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def make_model(init):
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )
    if init == "he_normal":
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return model


@torch.no_grad()
def evaluate(model, loss_fn, x, y, batch=1000):
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, x.shape[0], batch):
        logits = model(x[i:i + batch])
        total_loss += loss_fn(logits, y[i:i + batch]).item() * logits.shape[0]
        correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return total_loss / x.shape[0], correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", choices=["he_normal", "torch_default"], default="he_normal")
    ap.add_argument("--metrics", metavar="FILE", help="append one JSON line per epoch")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    n = x_train.shape[0]

    if args.model == "cnn":
        x_train, x_test = x_train.view(-1, 1, 28, 28), x_test.view(-1, 1, 28, 28)
        model = make_cnn()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
        model = make_model(args.init)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)

    metrics = open(args.metrics, "w") if args.metrics else None
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"train {n}, test {x_test.shape[0]}, init {args.init}, seed {args.seed}", flush=True)
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, args.batch):   # last partial batch kept
            idx = perm[i:i + args.batch]
            xb, yb = x_train[idx], y_train[idx]
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        seconds = time.perf_counter() - t0
        train_loss = total / n
        test_loss, test_acc = evaluate(model, loss_fn, x_test, y_test)
        rec = {"epoch": epoch, "train_loss": round(train_loss, 6),
               "test_loss": round(test_loss, 6), "test_acc": round(test_acc, 6),
               "seconds": round(seconds, 3), "samples_per_s": round(n / seconds, 1)}
        print(f"epoch {epoch:3d}  train_loss {train_loss:.4f}  test_loss {test_loss:.4f}  "
              f"test_acc {test_acc:.4f}  {seconds:.2f}s  {n / seconds:.0f} samples/s", flush=True)
        if metrics:
            metrics.write(json.dumps(rec) + "\n")
            metrics.flush()
    if metrics:
        metrics.close()


if __name__ == "__main__":
    main()
