#!/usr/bin/python3
"""Train the PyTorch twin of a generative example on Fashion-MNIST.

    /usr/bin/python3 scripts/torch_twin.py vae|gan|autoencoder [--epochs N]
        [--seed S] [--threads T] [--data DIR] [--batch N] [--metrics FILE]
        [--samples FILE.idx] [--count N] [--sample-mode eval|train]
        [--save CKPT] [--load CKPT] [--limit N]

The twins (bench/torch_gen.py) have the .dln's layers, init, loss,
optimiser and batch.  Each epoch prints the mean training loss per image
and, for vae and autoencoder, the loss on the 10,000 test images: nats per
image, pytorch/examples/vae's convention (BCE summed over the pixels, plus
the KL term for the VAE), and samples/s of the training loop.  For the GAN
it prints D's and G's mean losses.  --samples writes --count generated
images (default 10,000) as an IDX file of unsigned bytes, the format of
Fashion-MNIST's image files, which scripts/gan_score.py reads, and the first
100 as a 10 x 10 PNG grid (FILE's name with .png for its extension).  --save
writes the twin's parameters and buffers as a safetensors file with dlnc's
tensor names; --load starts from such a file or from a dlnc checkpoint of
the same example (strict), so `--load dlnc.st --epochs 0 --samples s.idx`
samples dlnc's trained generator with torch.
--metrics appends one JSON line per epoch.  Runs at 1 thread unless told.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))
sys.path.insert(0, HERE)
import torch_gen  # noqa: E402
import gan_score  # noqa: E402  (its safetensors reader and writer)
from torch_train import SPECS, read_idx  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"


def write_idx(path, images):
    """uint8 images [n, h, w] as an (uncompressed, or gzipped for *.gz) IDX file."""
    n, h, w = images.shape
    data = bytes([0, 0, 8, 3]) + struct.pack(">III", n, h, w) + images.tobytes()
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(data)


def write_png_grid(path, images, cols=10):
    """The first cols x cols images as one grayscale PNG grid (8-bit, zlib;
    a 2-pixel black border between the images)."""
    import zlib
    import numpy as np
    imgs = images[:cols * cols]
    rows = (len(imgs) + cols - 1) // cols
    h, w = imgs.shape[1:]
    grid = np.zeros((rows * (h + 2) + 2, cols * (w + 2) + 2), dtype=np.uint8)
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        grid[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = im
    raw = b"".join(b"\0" + row.tobytes() for row in grid)  # filter 0 on each row

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack(">IIBBBBB", grid.shape[1], grid.shape[0], 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def load_images(data_dir, split):
    import numpy as np
    import torch
    x = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    x = x.reshape(x.shape[0], -1).astype(np.float32)
    x *= np.float32(1 / 255)  # as dlnc's idx(..., scale = 1/255)
    return torch.from_numpy(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("model", choices=["vae", "gan", "autoencoder"])
    ap.add_argument("--epochs", type=int, default=None, help="default: the .dln's")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--data", default=FASHION)
    ap.add_argument("--metrics", metavar="FILE")
    ap.add_argument("--limit", type=int, metavar="N",
                    help="train on the first N training images only (for tests)")
    ap.add_argument("--samples", metavar="FILE.idx")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--save", metavar="CKPT",
                    help="write the trained parameters and buffers (safetensors, dlnc's names)")
    ap.add_argument("--load", metavar="CKPT",
                    help="start from a checkpoint (dlnc's or --save's; strict); "
                         "with --epochs 0 only sample from it")
    ap.add_argument("--sample-mode", choices=["eval", "train"], default="eval",
                    help="GAN: batch norm on running (eval) or per-batch statistics")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    spec = dict(SPECS[args.model])
    batch = args.batch or spec["batch"]
    epochs = args.epochs if args.epochs is not None else spec["epochs"]
    x = load_images(args.data, "train")
    if args.limit:
        x = x[:args.limit]
    test = load_images(args.data, "t10k") if args.model != "gan" else None
    model, step, evaluate = torch_gen.make(args.model, spec)
    if args.load:
        tensors, _ = gan_score.read_safetensors(args.load)
        want = model.state_dict()
        model.load_state_dict({k: torch.from_numpy(v).to(want[k].dtype)
                               for k, v in tensors.items() if k in want}, strict=True)
    gen = torch.Generator().manual_seed(args.seed)
    n = x.shape[0]
    metrics = open(args.metrics, "a") if args.metrics else None

    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen)
        batches = [x[perm[i:i + batch]] for i in range(0, n, batch)]
        sums = {}
        t0 = time.perf_counter()
        for xb in batches:
            for k, v in step(xb).items():
                sums[k] = sums.get(k, 0.0) + v * xb.shape[0]
        secs = time.perf_counter() - t0
        rec = {"epoch": epoch, "samples_per_s": n / secs}
        rec.update({f"train_{k}": v / n for k, v in sums.items()})
        if evaluate:
            tsum = {}
            for i in range(0, test.shape[0], 1000):
                tb = test[i:i + 1000]
                for k, v in evaluate(tb).items():
                    tsum[k] = tsum.get(k, 0.0) + v * tb.shape[0]
            rec.update({f"test_{k}": v / test.shape[0] for k, v in tsum.items()})
        print(f"epoch {epoch}  " + "  ".join(
            f"{k} {v:.4f}" for k, v in rec.items() if k not in ("epoch", "samples_per_s"))
            + f"  {secs:.1f}s  {rec['samples_per_s']:.0f} samples/s", flush=True)
        if metrics:
            metrics.write(json.dumps(rec) + "\n")
            metrics.flush()

    if args.save:
        gan_score.write_safetensors(args.save, {k: v.detach().numpy()
                                                for k, v in model.state_dict().items()})
    if args.samples:
        if args.model == "gan":
            imgs = torch_gen.sample_gan(model, args.count, spec["noise"], args.sample_mode,
                                        args.seed)
        elif args.model == "vae":
            imgs = torch_gen.sample_vae(model, args.count, seed=args.seed)
        else:
            sys.exit("torch_twin: the autoencoder has no generator (no --samples)")
        write_idx(args.samples, imgs)
        png = os.path.splitext(args.samples)[0] + ".png"  # as `BIN sample` names its grid
        write_png_grid(png, imgs)
        print(f"wrote {args.count} samples to {args.samples} and the first 100 to {png}")


if __name__ == "__main__":
    main()
