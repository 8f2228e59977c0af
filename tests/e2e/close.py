#!/usr/bin/python3
"""close.py SRC A.st B.st TOL: every tensor of checkpoint A is within TOL of
B's, relative to the tensor's largest magnitude (numpy alone, through
tools/dlnc_checkpoint.py); prints the worst and exits 1 past TOL."""
import os
import sys


def main(src, a_path, b_path, tol):
    sys.path.insert(0, os.path.join(src, "tools"))
    from dlnc_checkpoint import load
    a, _ = load(a_path)
    b, _ = load(b_path)
    if sorted(a) != sorted(b):
        print("FAIL: %s and %s hold different tensors" % (a_path, b_path))
        return 1
    worst, where = 0.0, ""
    for name in sorted(a):
        x, y = a[name].astype("f8"), b[name].astype("f8")
        scale = max(abs(x).max() if x.size else 0.0, 1e-12)
        d = abs(x - y).max() / scale if x.size else 0.0
        if d > worst:
            worst, where = d, name
    print("worst relative difference %.3g (%s)" % (worst, where))
    return 1 if worst > float(tol) else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
