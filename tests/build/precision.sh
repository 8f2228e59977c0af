#!/bin/sh
# dlnc build --precision: f32 (default) or bf16; anything else, a missing
# value, or --precision with --f64 is a usage error (exit 2) that says why.
# A bf16 build compiles with -DDL_GEMM_BF16, gets a runtime library of its
# own in the cache, says so in --version, and trains a small classifier
# (generated blobs, 10 classes) to an accuracy close to the f32 build's,
# with losses that differ from it (the operands really are rounded).
# usage: precision.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export DLNC_CACHE="$work/cache"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# expect STATUS MESSAGE CMD...: CMD exits STATUS with MESSAGE on stderr
expect() {
  want=$1 msg=$2; shift 2
  set +e; "$@" > out.txt 2> err.txt; status=$?; set -e
  [ $status = "$want" ] || bad "$*: exit $status, not $want"
  grep -q -- "$msg" err.txt || { bad "$*: no message '$msg'"; head -c 500 err.txt; }
}

cat > m.dln <<'EOM'
model m {
  input x : f32[32]
  label y : class[10]
  h = relu(dense(x, 64))
  logits = dense(h, 10)
  loss = cross_entropy(logits, y)
}
train m {
  data = csv("train.csv")
  test = csv("test.csv")
  batch = 32
  epochs = 8
  optimizer = adam(lr = 3e-3)
  seed = 5
}
EOM
# 10 blobs in 32 dimensions, overlapping enough that accuracy is not 100%
awk -v seed=11 -v n=3000 'BEGIN {
  srand(seed)
  for (c = 0; c < 10; c++) for (d = 0; d < 32; d++) mu[c, d] = rand() * 2 - 1
  for (i = 0; i < n; i++) {
    c = int(rand() * 10); line = ""
    for (d = 0; d < 32; d++) line = line sprintf("%.5f,", mu[c, d] + (rand() + rand() + rand() - 1.5) * 1.6)
    print line c
  }
}' > all.csv
head -n 2500 all.csv > train.csv
tail -n 500 all.csv > test.csv

expect 2 "unknown --precision 'fp16'; the precisions are" "$dlnc" build --precision fp16 m.dln -o x
expect 2 "bf16 " "$dlnc" build --precision fp16 m.dln -o x
expect 2 "unknown --precision 'BF16'" "$dlnc" build --precision BF16 m.dln -o x
expect 2 "--precision needs a value" "$dlnc" build m.dln -o x --precision
expect 2 "--precision and --f64 do not go together" "$dlnc" build --precision bf16 --f64 m.dln -o x
expect 2 "--precision and --f64 do not go together" "$dlnc" build --f64 --precision f32 m.dln -o x
expect 2 "unknown option '--precision'" "$dlnc" emit --precision bf16 m.dln -o gen
[ -e x ] && bad "a refused build wrote its output"

"$dlnc" build --precision f32 m.dln -o f32.bin 2> log.txt || { bad "f32 build"; cat log.txt; }
"$dlnc" build -v --precision bf16 m.dln -o bf16.bin 2> log.txt || { bad "bf16 build"; cat log.txt; }
grep -q -- "-DDL_GEMM_BF16" log.txt || bad "the bf16 build does not compile with -DDL_GEMM_BF16"
[ "$(ls cache/runtime-*.a | wc -l)" = 2 ] || bad "f32 and bf16 do not have a runtime library each: $(ls cache)"
./f32.bin --version | grep -q ", f32, CPU target" || bad "f32 --version: $(./f32.bin --version)"
./bf16.bin --version | grep -Eq ", f32, GEMM operands bf16 \((emulated|avx512bf16)\), CPU target" ||
  bad "bf16 --version: $(./bf16.bin --version)"

./f32.bin train --threads 1 > f32.txt || bad "f32 training"
./bf16.bin train --threads 2 > bf16.txt || bad "bf16 training"
acc() { awk '/^epoch 8\/8/ { for (i = 1; i < NF; i++) if ($i == "test_acc") print $(i + 1) }' "$1"; }
a32=$(acc f32.txt) a16=$(acc bf16.txt)
echo "test accuracy after 8 epochs: f32 $a32, bf16 $a16"
awk -v a="$a32" -v b="$a16" 'BEGIN { exit !(a >= 0.8 && b >= 0.8 && b - a < 0.02 && a - b < 0.02) }' ||
  bad "bf16 accuracy $a16 is not within 2 points of f32's $a32 (or either is below 0.8)"
# every epoch's train and test loss (4 digits each): not all alike
l32=$(awk '/^epoch/ { print $4, $6 }' f32.txt) l16=$(awk '/^epoch/ { print $4, $6 }' bf16.txt)
[ -n "$l32" ] && [ "$l32" != "$l16" ] || bad "bf16 and f32 have the same losses: are the operands rounded?"
[ $fail = 0 ] && echo "precision: bad values refused; bf16 builds apart, trains close to f32"
exit $fail
