#!/usr/bin/python3
"""Score generated Fashion-MNIST images: an FID-style distance and the class histogram.

    /usr/bin/python3 scripts/gan_score.py --classifier CKPT [--model mlp|cnn]
        [--data DIR] SAMPLES.idx [SAMPLES.idx ...]
    /usr/bin/python3 scripts/gan_score.py --classifier CKPT --baselines
    /usr/bin/python3 scripts/gan_score.py --self-check

CKPT is a checkpoint dlnc saved (safetensors, PyTorch's tensor names) of
examples/fashion_mlp.dln (--model mlp, the default) or examples/fashion_cnn.dln
(--model cnn); it is loaded into the same network written with torch.nn by
load_state_dict(strict=True).  The features are the classifier's penultimate
layer (after its ReLU: 128 values for both).  For each SAMPLES file (an IDX
file of unsigned bytes, n x 28 x 28, as `BIN sample --out` and
scripts/torch_twin.py --samples write it; pixels / 255 as the data's
scale = 1/255) the script prints
  - the Frechet distance between Gaussians fitted to the features of the
    10,000 Fashion-MNIST test images and of the samples:
        |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1^1/2 S2 S1^1/2))
    (the trace of the square root is the sum of the square roots of the
    eigenvalues of S1^1/2 S2 S1^1/2, symmetric positive semi-definite; S1^1/2
    from numpy's eigh): 0 for identical statistics, larger for worse samples;
    like FID, but with a small Fashion-MNIST classifier's features instead of
    Inception's, so its values are comparable only with the same checkpoint;
  - the histogram of the classes the classifier predicts for the samples (a
    mode-collapsed generator puts most of them in a few classes).
--baselines prints the distance's scale for this checkpoint instead: test
images against themselves, against 10,000 training images, and against
uniform noise.  --self-check tests the distance and the checkpoint reader
(exit 77, "skipped", without numpy or torch).  Needs numpy and torch only
(no scipy, no safetensors package: the format is read with json and numpy).
"""
import argparse
import gzip
import json
import os
import struct
import sys

FASHION = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
             "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


# ---- files --------------------------------------------------------------------

def read_safetensors(path):
    """({name: numpy array}, metadata) of a dlnc checkpoint, by dlnc's own
    numpy reader (tools/dlnc_checkpoint.py: Debian has no safetensors)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
    from dlnc_checkpoint import load
    try:
        return load(path)
    except (OSError, ValueError) as e:
        sys.exit(str(e))


def write_safetensors(path, tensors):
    """The inverse of read_safetensors (for the self-check)."""
    import numpy as np
    names = {np.dtype(v): k for k, v in ST_DTYPES.items()}
    header, off, parts = {}, 0, []
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()  # (which makes a scalar 1-d: a keeps its shape)
        header[name] = {"dtype": names[a.dtype],
                        "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        parts.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(parts))


def read_idx(path):
    """An IDX file of unsigned bytes (gzipped if *.gz) as a numpy array."""
    import numpy as np
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        sys.exit(f"{path}: not an IDX file (too short)")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    count = 1
    for d in dims:
        count *= d
    if len(data) - 4 - 4 * ndim != count:
        sys.exit(f"{path}: {len(data) - 4 - 4 * ndim} bytes of data for a header of {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def images(path):
    """An IDX file of 28 x 28 images as float32 [n, 784] in [0, 1]."""
    import numpy as np
    a = read_idx(path)
    if a.ndim < 2 or a[0].size != 784:
        sys.exit(f"{path}: images of shape {list(a.shape[1:])}, expected 28 x 28")
    x = a.reshape(a.shape[0], 784).astype(np.float32)
    x *= np.float32(1 / 255)  # as dlnc's idx(..., scale = 1/255)
    return x


# ---- the classifier -------------------------------------------------------------

def classifier(kind):
    """The torch.nn twin of examples/fashion_mlp.dln or fashion_cnn.dln, with
    the .dln's binding names; forward returns (penultimate features, logits)."""
    import torch
    from torch import nn
    F = nn.functional

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.h1, self.h2, self.logits = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

        def forward(self, x):
            f = F.relu(self.h2(F.relu(self.h1(x))))
            return f, self.logits(f)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 16, 5, padding=2)
            self.c2 = nn.Conv2d(16, 32, 5, padding=2)
            self.h, self.logits = nn.Linear(32 * 7 * 7, 128), nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x.reshape(-1, 1, 28, 28))), 2)
            x = F.max_pool2d(F.relu(self.c2(x)), 2)
            f = F.relu(self.h(torch.flatten(x, 1)))
            return f, self.logits(f)
    return {"mlp": MLP, "cnn": CNN}[kind]()


def load_classifier(path, kind):
    """The classifier with a dlnc checkpoint's parameters (its optimiser state,
    `h1.weight.exp_avg` and the like, is left out; every parameter of the
    network must be there: strict=True)."""
    import torch
    net = classifier(kind)
    tensors, meta = read_safetensors(path)
    want = net.state_dict()
    state = {k: torch.from_numpy(v).to(want[k].dtype) for k, v in tensors.items() if k in want}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        sys.exit(f"{path}: not a checkpoint of the {kind} classifier: {e}")
    return net.eval()


def features(net, x, batch=2000):
    """(features float64 [n, d], predicted classes [n]) of images x."""
    import numpy as np
    import torch
    fs, ps = [], []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            f, logits = net(torch.from_numpy(x[i:i + batch]))
            fs.append(f.double().numpy())
            ps.append(logits.argmax(1).numpy())
    return np.concatenate(fs), np.concatenate(ps)


# ---- the distance ----------------------------------------------------------------

def gaussian(f):
    """Mean and covariance (unbiased, as FID's np.cov) of features [n, d]."""
    import numpy as np
    return f.mean(0), np.cov(f, rowvar=False)


def sqrtm_psd(s):
    """The square root of a symmetric positive semi-definite matrix (eigh;
    eigenvalues that rounding made negative count as 0)."""
    import numpy as np
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet(mu1, s1, mu2, s2):
    """The Frechet distance between N(mu1, s1) and N(mu2, s2)."""
    import numpy as np
    r = sqrtm_psd(s1)
    m = r @ s2 @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(w, 0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


# ---- reports -----------------------------------------------------------------------

def histogram_table(pred):
    import numpy as np
    counts = np.bincount(pred, minlength=10)
    n = counts.sum()
    p = counts / n
    nz = p[p > 0]
    entropy = float(-(nz * np.log2(nz)).sum())
    lines = ["| class | name | samples | share |", "|--:|---|--:|--:|"]
    lines += [f"| {c} | {CLASSES[c]} | {counts[c]} | {100 * p[c]:.1f}% |" for c in range(10)]
    lines.append(f"\nclass entropy {entropy:.3f} bits (10 equal classes: {np.log2(10):.3f}); "
                 f"largest class {100 * p.max():.1f}%, smallest {100 * p.min():.1f}%")
    return "\n".join(lines)


def score(args):
    import numpy as np
    net = load_classifier(args.classifier, args.model)
    test = images(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"))
    ft, pt = features(net, test)
    ref = gaussian(ft)
    print(f"classifier {args.classifier} ({args.model}): test accuracy "
          f"{float((pt == labels).mean()):.4f}, {ft.shape[1]} features")
    if args.baselines:
        train = images(os.path.join(args.data, "train-images-idx3-ubyte.gz"))[:test.shape[0]]
        noise = np.random.default_rng(0).integers(0, 256, size=test.shape).astype(np.float32) / 255
        for name, x in (("test images themselves", test),
                        (f"the first {train.shape[0]} training images", train),
                        ("uniform noise (10,000 images)", noise)):
            fd = frechet(*ref, *gaussian(features(net, x)[0]))
            print(f"FD(test, {name}) = {max(fd, 0.0):.4f}")  # not -0.0000 from rounding
    for path in args.samples:
        x = images(path)
        f, p = features(net, x)
        print(f"\n{path}: {x.shape[0]} samples")
        if x.shape[0] < 2 * f.shape[1]:
            print(f"warning: fewer samples than twice the {f.shape[1]} features: the "
                  "covariance is poorly estimated")
        print(f"FD(test, samples) = {max(frechet(*ref, *gaussian(f)), 0.0):.4f}")
        print(histogram_table(p))


def self_check():
    """Checks that could fail: the distance against closed forms, its
    symmetry and growth with a shift, an independent trace computation, and
    the checkpoint reader and classifier loading round trip."""
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print(f"SKIPPED: {e} (gan_score.py needs numpy and torch)")
        sys.exit(77)
    import tempfile
    rng = np.random.default_rng(1)
    fails = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            fails.append(what)

    d = 16
    a = rng.normal(size=(4000, d)) @ rng.normal(size=(d, d))
    ga = gaussian(a)
    check(abs(frechet(*ga, *ga)) < 1e-8 * np.trace(ga[1]), "FD(X, X) = 0")
    shift = rng.normal(size=d)
    fd = [frechet(*ga, *gaussian(a + s * shift)) for s in (0.5, 1, 2)]
    check(all(abs(v - s * s * shift @ shift) < 1e-8 * (1 + v) for v, s in zip(fd, (0.5, 1, 2))),
          "FD(X, X + s) = |s|^2 (the covariance unchanged)")
    check(fd[0] < fd[1] < fd[2], "FD grows with the shift")
    # diagonal covariances: sum((sqrt(a) - sqrt(b))^2) + |mu1 - mu2|^2
    va, vb = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    ma, mb = rng.normal(size=d), rng.normal(size=d)
    want = float(((ma - mb) ** 2).sum() + ((np.sqrt(va) - np.sqrt(vb)) ** 2).sum())
    got = frechet(ma, np.diag(va), mb, np.diag(vb))
    check(abs(got - want) < 1e-10 * want, f"diagonal closed form ({got:.10f} vs {want:.10f})")
    # general covariances: tr sqrt(S1 S2) from the eigenvalues of S1 S2 directly
    b = rng.normal(size=(3000, d)) @ rng.normal(size=(d, d)) + 1
    gb = gaussian(b)
    other = float(np.sqrt(np.clip(np.linalg.eigvals(ga[1] @ gb[1]).real, 0, None)).sum())
    want = float((ga[0] - gb[0]) @ (ga[0] - gb[0]) + np.trace(ga[1]) + np.trace(gb[1]) - 2 * other)
    got = frechet(*ga, *gb)
    check(abs(got - want) < 1e-8 * want, f"general covariances ({got:.6f} vs {want:.6f})")
    check(abs(got - frechet(*gb, *ga)) < 1e-8 * got, "symmetric")
    # singular covariance (fewer samples than dimensions): finite and >= 0
    few = gaussian(a[:8])
    v = frechet(*ga, *few)
    check(np.isfinite(v) and v >= 0, f"singular covariance gives a finite distance ({v:.4f})")

    # a checkpoint as dlnc writes one (parameters, optimiser state, an I64
    # buffer, metadata) loads into the classifier, strict
    torch.manual_seed(0)
    for kind in ("mlp", "cnn"):
        net = classifier(kind)
        ts = {k: v.numpy() for k, v in net.state_dict().items()}
        ts.update({k + ".exp_avg": np.zeros_like(v) for k, v in list(ts.items())})
        ts["step_count"] = np.array(7, dtype=np.int64)
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "c.st")
            write_safetensors(p, ts)
            back, _ = read_safetensors(p)
            check(all(np.array_equal(back[k], v) and back[k].dtype == v.dtype
                      for k, v in ts.items()), f"safetensors round trip ({kind})")
            loaded = load_classifier(p, kind)
        x = rng.uniform(size=(50, 784)).astype(np.float32)
        f1, p1 = features(net.eval(), x)
        f2, p2 = features(loaded, x)
        check(np.array_equal(f1, f2) and np.array_equal(p1, p2) and f1.shape == (50, 128),
              f"a loaded {kind} classifier computes the same 128 features")

    # on real images when Debian's Fashion-MNIST is there: a random MLP's
    # features already tell test images from uniform noise
    path = os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")
    if os.path.exists(path):
        x = images(path)
        net = classifier("mlp").eval()
        g1 = gaussian(features(net, x[:5000])[0])
        g2 = gaussian(features(net, x[5000:])[0])
        noise = rng.integers(0, 256, size=(5000, 784)).astype(np.float32) / 255
        g3 = gaussian(features(net, noise)[0])
        near, far = frechet(*g1, *g2), frechet(*g1, *g3)
        check(near < 0.1 * far, f"test half vs test half {near:.4f} << test vs noise {far:.4f}")
    else:
        print(f"note: {path} is missing: the real-image check is left out")
    if fails:
        print(f"{len(fails)} check(s) failed")
        sys.exit(1)
    print("passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("samples", nargs="*", metavar="SAMPLES.idx")
    ap.add_argument("--classifier", metavar="CKPT", help="a dlnc checkpoint of the classifier")
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                    help="examples/fashion_mlp.dln (default) or fashion_cnn.dln")
    ap.add_argument("--data", default=FASHION, help="Fashion-MNIST's directory")
    ap.add_argument("--baselines", action="store_true",
                    help="the distance from the test images to themselves, training images, noise")
    ap.add_argument("--self-check", action="store_true", help="test this script")
    args = ap.parse_args()
    if args.self_check:
        self_check()
        return
    if not args.classifier or not (args.samples or args.baselines):
        ap.error("give --classifier CKPT and SAMPLES.idx files (or --baselines)")
    score(args)


if __name__ == "__main__":
    main()
