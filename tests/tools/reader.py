#!/usr/bin/python3
"""reader.py DLNC SRC WORK: tools/dlnc_checkpoint.py against a real checkpoint.

examples/xor.dln (tanh(dense 8), sigmoid(dense 1)) is trained for 50 epochs;
the reader's tensors must load with load_state_dict(strict=True) into the
same network in torch.nn and predict what `BIN predict` prints, the
metadata must name the model and the step, and damaged copies (truncated,
a header that is not JSON, offsets outside the file) must raise ValueError
naming the file.
"""
import os
import shutil
import subprocess
import sys


def main(dlnc, src, work):
    try:
        import torch
    except ImportError:
        print("SKIPPED: Debian's python3-torch is not installed (scripts/setup.sh installs it)")
        return 77
    sys.path.insert(0, os.path.join(src, "tools"))
    from dlnc_checkpoint import load
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "data"))
    shutil.copy(os.path.join(src, "examples", "xor.dln"), work)
    shutil.copy(os.path.join(src, "examples", "data", "xor.csv"), os.path.join(work, "data"))
    binp, ckpt = os.path.join(work, "xor"), os.path.join(work, "xor.st")
    subprocess.run([dlnc, "build", os.path.join(work, "xor.dln"), "-o", binp], check=True)
    subprocess.run([binp, "train", "--epochs", "50", "--save", ckpt], check=True,
                   stdout=subprocess.DEVNULL)
    tensors, meta = load(ckpt)
    if meta.get("model") != "xor" or meta.get("step") != "50":
        print("FAIL: metadata %r" % meta)
        return 1
    net = torch.nn.ModuleDict({"h": torch.nn.Linear(2, 8), "p": torch.nn.Linear(8, 1)})
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()
                         if k in net.state_dict()}, strict=True)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    with torch.no_grad():
        want = torch.sigmoid(net["p"](torch.tanh(net["h"](x)))).view(-1).tolist()
    out = subprocess.run([binp, "predict", "--load", ckpt], input="0,0\n0,1\n1,0\n1,1\n",
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    got = [float(v) for v in out.split()]
    if len(got) != 4 or max(abs(a - b) for a, b in zip(got, want)) > 1e-5:
        print("FAIL: torch with the reader's tensors predicts %s, the trainer %s" % (want, got))
        return 1
    with open(ckpt, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    damaged = {"truncated": blob[:len(blob) // 2],
               "header": blob[:8] + b"{" * n + blob[8 + n:],
               "offsets": blob[:8 + n - 40] + blob[8 + n:]}
    for what, data in damaged.items():
        path = os.path.join(work, what + ".st")
        with open(path, "wb") as f:
            f.write(data)
        try:
            load(path)
        except ValueError as e:
            if path not in str(e):
                print("FAIL: the %s file's error does not name it: %s" % (what, e))
                return 1
        else:
            print("FAIL: the %s checkpoint was read without an error" % what)
            return 1
    print("reader: %d tensors loaded strictly into torch.nn; predictions within 1e-5; "
          "damaged files refused" % len(tensors))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
