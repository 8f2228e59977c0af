#!/usr/bin/env python3
"""Generate examples/data/motif_{train,test}.csv (standard library only).

Each row: 24 tokens in 0..3 (say A, B, C, D), then the label: 1 if the
motif A B C (0, 1, 2, consecutive) occurs somewhere, else 0.  Half the rows
have it, planted at a random place; the others are random sequences that
happen not to contain it.  A model must remember what came before to see
it.  Deterministic: fixed seed, so reruns give identical files.
"""
import os
import random

SEED = 20261124
T, V = 24, 4
MOTIF = [0, 1, 2]
N_TRAIN, N_TEST = 4000, 1000


def has_motif(seq):
    return any(seq[i:i + len(MOTIF)] == MOTIF for i in range(len(seq) - len(MOTIF) + 1))


def row(rng):
    while True:
        seq = [rng.randrange(V) for _ in range(T)]
        if rng.random() < 0.5:
            at = rng.randrange(T - len(MOTIF) + 1)
            seq[at:at + len(MOTIF)] = MOTIF
            return seq, 1
        if not has_motif(seq):
            return seq, 0


def main():
    rng = random.Random(SEED)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "data")
    for name, n in (("motif_train.csv", N_TRAIN), ("motif_test.csv", N_TEST)):
        with open(os.path.join(out, name), "w") as f:
            for _ in range(n):
                seq, y = row(rng)
                f.write(",".join(str(t) for t in seq) + ",%d\n" % y)


if __name__ == "__main__":
    main()
