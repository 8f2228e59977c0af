#!/usr/bin/env python3
"""Generate examples/data/regression_{train,test}.csv (standard library only).

Each row: x0,x1,x2,x3,y with x uniform in [-1, 1] and
    y = sin(2*x0) + 0.5*x1*x2 - 0.3*x3 + N(0, 0.05^2)
No header, 6 decimals. Deterministic: fixed seed, so reruns give identical files.
"""
import math
import os
import random

SEED = 20240601
N_TRAIN, N_TEST = 800, 200
NOISE_SD = 0.05


def rows(rng, n):
    for _ in range(n):
        x = [rng.uniform(-1.0, 1.0) for _ in range(4)]
        y = math.sin(2 * x[0]) + 0.5 * x[1] * x[2] - 0.3 * x[3] + rng.gauss(0.0, NOISE_SD)
        yield x + [y]


def write(path, data):
    with open(path, "w", newline="\n") as f:
        for r in data:
            f.write(",".join(f"{v:.6f}" for v in r) + "\n")


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "data")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(SEED)
    write(os.path.join(out, "regression_train.csv"), rows(rng, N_TRAIN))
    write(os.path.join(out, "regression_test.csv"), rows(rng, N_TEST))


if __name__ == "__main__":
    main()
