#!/usr/bin/python3
"""The PyTorch twins of the generative examples (scripts/torch_twin.py,
bench/torch_gen.py), quickly: their tensors carry the names dlnc gives the
.dln's layers (so checkpoints load either way, strict), the VAE learns (two
short epochs: the training loss falls, the test loss in nats per image ends
below an untrained decoder's 784 ln 2 = 543), the GAN trains, writes samples
as an IDX file of 28 x 28 bytes, and a checkpoint it saved samples the same
images again after --load.  Exit 77 (skipped) without torch or Fashion-MNIST.

usage: twins.py WORKDIR
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWIN = os.path.join(ROOT, "scripts", "torch_twin.py")
FASHION = "/usr/share/datasets/fashion-mnist"

# The tensor names of each example (from the .dln's bindings and blocks).
NAMES = {
    "autoencoder": ["enc1", "code", "dec1", "recon"],
    "vae": ["fc1", "mu", "logvar", "dec.fc3", "dec.fc4"],
    "gan": ["G.fc1", "G.fc1_2", "G.fc2", "G.fc2_2", "G.fc3", "D.fc1", "D.fc2", "D.fc3"],
}
NORMS = {"G.fc1_2", "G.fc2_2"}  # batch_norm: running statistics too
NOBIAS = {"G.fc1", "G.fc2"}     # dense(..., bias = false)


def run(*args):
    p = subprocess.run(["/usr/bin/python3", TWIN] + list(args), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: torch_twin.py {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


def main():
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"SKIPPED: {e}")
        sys.exit(77)
    if not os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        print(f"SKIPPED: no Fashion-MNIST in {FASHION}")
        sys.exit(77)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import gan_score
    import torch_gen
    from torch_train import SPECS
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    fails = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            fails.append(what)

    for name, layers in NAMES.items():
        got = set(torch_gen.make(name, SPECS[name])[0].state_dict())
        want = set()
        for l in layers:
            want |= {f"{l}.weight"} | (set() if l in NOBIAS else {f"{l}.bias"})
            if l in NORMS:
                want |= {f"{l}.running_mean", f"{l}.running_var", f"{l}.num_batches_tracked"}
        check(got == want, f"{name}: tensor names {sorted(got ^ want) or 'as the .dln'}")

    m = os.path.join(work, "vae.jsonl")
    if os.path.exists(m):
        os.remove(m)
    run("vae", "--epochs", "2", "--limit", "4096", "--metrics", m)
    with open(m) as f:
        recs = [r for r in map(json.loads, f) if "epoch" in r]
    check(recs[1]["train_loss"] < recs[0]["train_loss"],
          f"vae: training loss falls ({recs[0]['train_loss']:.1f}, {recs[1]['train_loss']:.1f})")
    check(recs[1]["test_loss"] < 543, f"vae: test loss {recs[1]['test_loss']:.1f} nats per image")
    check(abs(recs[1]["test_loss"] - recs[1]["test_bce"] - recs[1]["test_kl"]) < 1e-3,
          "vae: loss = BCE + KL")

    st, s1, s2 = (os.path.join(work, f) for f in ("gan.st", "gan1.idx", "gan2.idx"))
    run("gan", "--epochs", "1", "--limit", "640", "--seed", "5", "--save", st,
        "--samples", s1, "--count", "50")
    run("gan", "--epochs", "0", "--limit", "64", "--seed", "5", "--load", st,
        "--samples", s2, "--count", "50")
    a, b = gan_score.read_idx(s1), gan_score.read_idx(s2)
    check(a.shape == (50, 28, 28), f"gan: samples of shape {a.shape}")
    check((a == b).all(), "gan: a saved checkpoint samples the same images after --load")
    check(a.std() > 0, "gan: the samples are not constant")
    if fails:
        print(f"{len(fails)} check(s) failed")
        sys.exit(1)
    print("passed")


if __name__ == "__main__":
    main()
