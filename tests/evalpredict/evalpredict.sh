#!/bin/sh
# eval's per-class accuracy and confusion matrix (text and --json), and
# predict's --proba, --top, --header and --labelled, on a small three-class
# classifier trained for a few epochs on generated points; plus the errors.
# usage: evalpredict.sh DLNC PYTHON WORKDIR
set -eu
dlnc=$1 py=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*"; for f in out err; do [ -f $f ] && { echo "--- $f"; head -20 $f; }; done; exit 1; }

# Points in [-1, 1]^2 labelled by the third of the circle their angle is in.
gen() {
  awk -v seed="$1" -v n="$2" 'BEGIN {
    srand(seed); print "x0,x1,y"; pi = atan2(0, -1)
    for (i = 0; i < n; i++) {
      a = 2 * rand() - 1; b = 2 * rand() - 1
      t = atan2(b, a) + pi; c = int(t / (2 * pi / 3)); if (c > 2) c = 2
      printf "%.4f,%.4f,%d\n", a, b, c
    }
  }'
}
gen 1 600 >train.csv
gen 2 150 >test.csv
"$dlnc" build "$here/three_class.dln" -o ./model || fail "build"
./model train --data . --save m.st >train.log 2>&1 || { cat train.log; fail "train"; }

# ---- eval, text and JSON -------------------------------------------------
./model eval --load m.st --data . >out 2>err || fail "eval"
./model eval --load m.st --data . --json >eval.json 2>err || fail "eval --json"
tail -n +2 test.csv >rows.csv                     # the test rows with labels
cut -d, -f1-2 rows.csv >inputs.csv                # the inputs alone
./model predict --load m.st <inputs.csv >pred 2>err || fail "predict"
./model predict --load m.st --proba <inputs.csv >proba 2>err || fail "predict --proba"
./model predict --load m.st --top 3 <inputs.csv >top3 2>err || fail "predict --top 3"
./model predict --load m.st --top 2 <inputs.csv >top2 2>err || fail "predict --top 2"

"$py" - out eval.json rows.csv pred proba top3 top2 <<'PY' || fail "eval/predict checks"
import json, sys
import numpy as np
text, js, rows, pred, proba, top3, top2 = [open(f).read() for f in sys.argv[1:]]
lines = text.splitlines()
head = lines[0].split()
acc = float(head[head.index("test_acc") + 1])
n = int(head[head.index("samples") + 1])
# the text matrix: the lines after "confusion matrix", first field the true class
at = [i for i, l in enumerate(lines) if l.startswith("confusion matrix")][0]
conf = np.array([[int(v) for v in l.split()[1:]] for l in lines[at + 2:at + 5]])
per_text = [float(l.split()[3]) for l in lines[2:5]]
assert conf.sum() == n == 150, (conf.sum(), n)
assert abs(np.trace(conf) / conf.sum() - acc) < 6e-5, (np.trace(conf) / conf.sum(), acc)
j = json.loads(js)
assert j["samples"] == n and j["classes"] == 3 and j["decisions"] == n
assert (np.array(j["confusion"]) == conf).all(), (j["confusion"], conf)
assert abs(j["accuracy"] - acc) < 6e-5 and abs(j["loss"] - float(head[1])) < 1e-5 * max(1, j["loss"])
# per-class accuracy recomputed from predict's classes on the same rows
y = np.array([int(l.split(",")[2]) for l in rows.split()])
p = np.array([int(v) for v in pred.split()])
assert len(p) == len(y) == n
mine = np.zeros((3, 3), int)
for t, q in zip(y, p): mine[t, q] += 1
assert (mine == conf).all(), (mine, conf)
for c in range(3):
    want = (p[y == c] == c).mean()
    assert abs(j["class_accuracy"][c] - want) < 1e-9, (c, j["class_accuracy"][c], want)
    assert abs(per_text[c] - want) < 6e-5, (c, per_text[c], want)
    assert j["class_counts"][c] == (y == c).sum()
assert 0 < acc < 1, "want some errors for a meaningful matrix: " + str(acc)
# --proba: rows sum to 1, argmax is the class
P = np.array([[float(v) for v in l.split(",")] for l in proba.split()])
assert P.shape == (n, 3)
assert np.abs(P.sum(1) - 1).max() < 1e-5, np.abs(P.sum(1) - 1).max()
assert (P.argmax(1) == p).all()
# --top: class:prob pairs, most likely first, the first the class, the probabilities --proba's
for K, txt in ((3, top3), (2, top2)):
    T = [[(int(a), float(b)) for a, b in (kv.split(":") for kv in l.split(","))] for l in txt.split()]
    assert len(T) == n and all(len(r) == K for r in T)
    for r, prow, cls in zip(T, P, p):
        assert r[0][0] == cls
        assert all(r[i][1] >= r[i + 1][1] for i in range(K - 1)), r
        assert len({c for c, _ in r}) == K
        for c, q in r: assert abs(q - prow[c]) < 1e-6, (q, prow[c])
PY

# ---- --header and --labelled: the same predictions -----------------------
./model predict --load m.st --header <test.csv >out 2>err && fail "a labelled row accepted as inputs"
grep -q "stdin:2:3: error: expected 2 values, got 3 (a labelled row? see --labelled)" err ||
  fail "unlabelled predict of a labelled row: message"
./model predict --load m.st --labelled <rows.csv >out 2>err || fail "predict --labelled"
cmp out pred || fail "--labelled predictions differ"
./model predict --load m.st --labelled --header <test.csv >out 2>err || fail "--labelled --header"
cmp out pred || fail "--labelled --header predictions differ"
{ echo "x0,x1"; cat inputs.csv; } | ./model predict --load m.st --header >out 2>err || fail "--header"
cmp out pred || fail "--header predictions differ"
./model predict --load m.st --labelled --proba <rows.csv >out 2>err || fail "--labelled --proba"
cmp out proba || fail "--labelled --proba differs"

# ---- errors ------------------------------------------------------------
expect_err() { # RC MESSAGE: the last command's status and a line of err
  [ "$rc" -eq "$1" ] || fail "exit status $rc, wanted $1 (for: $2)"
  grep -qF -- "$2" err || fail "no message: $2"
}
rc=0; ./model predict --load m.st --top 0 <inputs.csv >out 2>err || rc=$?
expect_err 2 "error: --top: expected an integer in [1, "
rc=0; ./model predict --load m.st --top 4 <inputs.csv >out 2>err || rc=$?
expect_err 2 "error: predict: --top 4: model 'three_class' has only 3 classes"
rc=0; ./model predict --load m.st --top 2 --proba <inputs.csv >out 2>err || rc=$?
expect_err 2 "--proba and --top are two outputs"
rc=0; ./model predict --load m.st --proba=1 <inputs.csv >out 2>err || rc=$?
expect_err 2 "error: predict: --proba takes no value"
rc=0; printf '0.1,0.2,1\n0.3,0.4,3\n' | ./model predict --load m.st --labelled >out 2>err || rc=$?
expect_err 1 "stdin:2:3: error: class label 3 is out of range [0, 3)"
rc=0; printf '0.1,0.2,1.5\n' | ./model predict --load m.st --labelled >out 2>err || rc=$?
expect_err 1 "stdin:1:3: error: class label 1.5 is not an integer in [0, 3)"
rc=0; printf 'x,y\n0.1,0.2\n' | ./model predict --load m.st --labelled --header >out 2>err || rc=$?
expect_err 1 "stdin:2:3: error: expected 3 fields (2 input values, then 1 label fields), got 2"
rc=0; printf '0.1,zz,1\n' | ./model predict --load m.st --labelled >out 2>err || rc=$?
expect_err 1 "stdin:1:2: error: malformed number"
rc=0; ./model eval --load m.st --data . --json=1 >out 2>err || rc=$?
expect_err 2 "error: eval: --json takes no value"

# A regression model: --proba and --top refused with the reason; eval as before.
"$dlnc" build "$here/../../examples/regression.dln" -o ./reg || fail "build regression"
rc=0; echo 1 | ./reg predict --load m.st --proba >out 2>err || rc=$?
expect_err 2 "--proba: model 'regression' predicts values (regression or a reconstruction), not classes"
rc=0; echo 1 | ./reg predict --load m.st --top 1 >out 2>err || rc=$?
expect_err 2 "--top: model 'regression' predicts values"
# eval of a model without class accuracy: the loss line as before, and
# --json its loss with neither accuracy nor matrix.
./reg train --data "$here/../../examples" --epochs 1 --save reg.st >out 2>err || fail "train regression"
./reg eval --load reg.st --data "$here/../../examples" >out 2>err || fail "eval regression"
grep -q '^test_loss [0-9.e-]*  samples 200$' out || fail "regression eval text"
[ "$(wc -l <out)" -eq 1 ] || fail "regression eval prints one line"
./reg eval --load reg.st --data "$here/../../examples" --json >reg.json 2>err || fail "eval --json regression"
"$py" - out reg.json <<'PY' || fail "regression --json"
import json, sys
text, js = [open(f).read() for f in sys.argv[1:]]
j = json.loads(js)
assert set(j) == {"data", "samples", "loss"}, j
assert j["samples"] == 200 and abs(j["loss"] - float(text.split()[1])) < 1e-5 * max(1, j["loss"])
PY
# A model trained by two updates (a GAN's): --json gives each update's loss.
"$dlnc" build "$here/../e2e/gan_updates.dln" -o ./gan || fail "build gan"
./gan train --data "$here/../e2e" --epochs 1 --save gan.st >out 2>err || fail "train gan"
./gan eval --load gan.st --data "$here/../e2e" >out 2>err || fail "eval gan"
./gan eval --load gan.st --data "$here/../e2e" --json >gan.json 2>err || fail "eval --json gan"
"$py" - out gan.json <<'PY' || fail "gan --json"
import json, sys
text, js = [open(f).read() for f in sys.argv[1:]]
j = json.loads(js)
f = text.split()
kv = dict(zip(f[0::2], f[1::2]))
assert set(j["losses"]) == {"d_loss", "g_loss"}, j
for k in ("d_loss", "g_loss"):
    assert abs(j["losses"][k] - float(kv["test_" + k])) < 1e-5 * max(1, abs(j["losses"][k])), k
assert "classes" not in j and "confusion" not in j
PY

# A binary head with one output (xor): classes 0 and 1, a 2 x 2 matrix;
# --top 2 ranks them, --proba prints the probability predict prints.
"$dlnc" build "$here/../../examples/xor.dln" -o ./xor || fail "build xor"
./xor train --data "$here/../../examples" --save xor.st >out 2>err || fail "train xor"
./xor eval --load xor.st --data "$here/../../examples" --json >xor.json 2>err || fail "eval xor"
printf '0,0\n0,1\n1,0\n1,1\n0.6,0.3\n' >xor.in
./xor predict --load xor.st <xor.in >xor.plain 2>err || fail "predict xor"
./xor predict --load xor.st --proba <xor.in >out 2>err || fail "predict xor --proba"
cmp out xor.plain || fail "binary --proba differs from the probability"
./xor predict --load xor.st --top 2 <xor.in >xor.top 2>err || fail "predict xor --top 2"
"$py" - xor.json xor.plain xor.top <<'PY' || fail "xor checks"
import json, sys
js, plain, top = [open(f).read() for f in sys.argv[1:]]
j = json.loads(js)
assert j["classes"] == 2 and sum(map(sum, j["confusion"])) == j["samples"] == 4, j
assert abs((j["confusion"][0][0] + j["confusion"][1][1]) / 4 - j["accuracy"]) < 1e-9
for p, t in zip(plain.split(), top.split()):
    p = float(p)
    (c0, q0), (c1, q1) = [(int(a), float(b)) for a, b in (kv.split(":") for kv in t.split(","))]
    assert c0 == (1 if p > 0.5 else 0) and {c0, c1} == {0, 1} and q0 >= q1, (p, t)
    assert abs((q0 if c0 == 1 else q1) - p) < 1e-6, (p, t)
PY
echo "ok"
