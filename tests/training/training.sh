#!/bin/sh
# training.sh CASE DLNC WORKDIR
# What a training step does, on generated trainers:
#   nonfinite_state  optimiser state or a buffer that overflows while the loss
#                    and the weights stay finite stops the run at that step
#   seq_labels       a class per position (label y : class[T, N]) from CSV:
#                    a sequence tagger trains to full accuracy; wrong rows
#                    are reported by row, column and position
#   unreached        parameters the loss does not depend on: a warning at
#                    check time, and the optimiser leaves them alone
set -u
case_name=$1
dlnc=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "FAIL [$case_name]: $*" >&2; exit 1; }
run() { "$@" >out 2>err; rc=$?; }
show() { echo "--- stdout"; cat out; echo "--- stderr"; cat err; } >&2
expect_rc() { [ "$rc" -eq "$1" ] || { show; fail "$2: exit $rc, expected $1"; }; }
expect_in() { grep -q -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_not_in() { ! grep -q -e "$2" "$1" || { show; fail "$1 has '$2'"; }; }
build() { # MODEL OUT
  "$dlnc" build "$here/$1.dln" -o "$2" >build.log 2>&1 || { cat build.log >&2; fail "dlnc build $1"; }
}

rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
cd "$work" || fail "cannot enter $work"

# ---- non-finite optimiser state and buffers -----------------------------------

case_nonfinite_state() {
  # Adam: exp_avg_sq is inf after step 1, the weights are not.
  mkdir -p adam
  awk 'BEGIN { for (i = 0; i < 16; i++) printf "1000,%d,5e18\n", 1000 + i }' >adam/train.csv
  build overflow_adam ./adam_tr
  run ./adam_tr train --data adam
  expect_rc 1 "adam without --save"
  expect_in err "^error: training diverged at epoch 1, step 1: optimiser state 'pred.weight.exp_avg_sq' is inf (lr 0.001); nothing was saved (no --save)\$"
  expect_not_in out "^epoch 1/2"
  run ./adam_tr train --data adam --save a.st
  expect_rc 1 "adam with --save"
  expect_in err "^error: training diverged at epoch 1, step 1: optimiser state 'pred.weight.exp_avg_sq' is inf (lr 0.001); no checkpoint was written to a.st yet\$"
  [ -e a.st ] && fail "a diverged run wrote a checkpoint"

  # The same after a good epoch, resumed: the step counts on from the
  # checkpoint's, and the checkpoint stays as it was.
  mkdir -p good
  awk 'BEGIN { for (i = 0; i < 16; i++) printf "%g,%g,%g\n", i / 16, 1 - i / 16, i / 8 }' >good/train.csv
  run ./adam_tr train --data good --epochs 1 --save g.st
  expect_rc 0 "adam on good data"
  cp g.st g.orig
  run ./adam_tr train --data adam --epochs 2 --resume g.st --save g.st
  expect_rc 1 "adam resumed on bad data"
  expect_in err "^error: training diverged at epoch 2, step 5: optimiser state 'pred.weight.exp_avg_sq' is inf (lr 0.001); the last checkpoint (g.st) is kept\$"
  cmp g.st g.orig || fail "a diverged run changed the checkpoint"

  # A parameter updated by two threads.
  mkdir -p wide
  awk 'BEGIN { for (i = 0; i < 16; i++) { for (j = 0; j < 64; j++) printf "%d,", 100000 + i + j
                                           for (j = 1; j < 512; j++) printf "5e18,"; print "5e18" } }' >wide/train.csv
  build overflow_wide ./wide_tr
  run ./wide_tr train --data wide --threads 2
  expect_rc 1 "wide adam, 2 threads"
  expect_in err "^error: training diverged at epoch 1, step 1: optimiser state 'pred.weight.exp_avg_sq' is inf (lr 0.001); nothing was saved (no --save)\$"

  # Batch norm: running_var is inf after step 1, everything else finite.
  mkdir -p bn
  awk 'BEGIN { for (i = 0; i < 16; i++) printf "%s,%d,%d\n", i % 2 ? "1e20" : "-1e20", i, i % 3 }' >bn/train.csv
  build overflow_bn ./bn_tr
  run ./bn_tr train --data bn
  expect_rc 1 "batch norm"
  expect_in err "^error: training diverged at epoch 1, step 1: buffer 'h.running_var' is inf (lr 0.01); nothing was saved (no --save)\$"
}

# ---- a class per position from CSV --------------------------------------------

# Field $2 of the last line of the metrics file $1.
metric() { tail -n 1 "$1" | sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p"; }

case_seq_labels() {
  mkdir -p data
  awk -v n=1000 -v seed=1 -f "$here/tagger_gen.awk" >data/train.csv
  awk -v n=200 -v seed=2 -f "$here/tagger_gen.awk" >data/test.csv
  build tagger ./tagger
  run ./tagger train --data data --metrics m.jsonl --save t.st
  expect_rc 0 "tagger"
  # measured: test_acc 1.0000 from epoch 3 of 6 on (0.74 after epoch 1)
  acc=$(metric m.jsonl test_acc)
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.99) }' || { show; fail "test_acc $acc after 6 epochs, expected >= 0.99"; }
  # tags are not tokens: no bits per character
  expect_not_in out "bpc"
  run ./tagger eval --load t.st --data data
  expect_rc 0 "eval"
  expect_in out "test_acc $(printf '%.4f' "$acc")"
  # predict: a tag for every position
  cut -d, -f1-12 data/test.csv | head -n 5 >in.csv
  ./tagger predict --load t.st <in.csv >pred.txt 2>err || { cat err >&2; fail "predict"; }
  cut -d, -f13-24 data/test.csv | head -n 5 | tr , ' ' >want.txt
  cmp pred.txt want.txt || { diff pred.txt want.txt >&2; fail "predict's tags differ from the data's"; }

  # Wrong rows.
  mkdir -p short range frac
  cp data/test.csv short/ && cp data/test.csv range/ && cp data/test.csv frac/
  awk -F, 'NR == 3 { NF = 13 } { print }' OFS=, data/train.csv >short/train.csv
  run ./tagger train --data short
  expect_rc 1 "one label in a row"
  expect_in err "short/train.csv:3: expected 24 fields, found 13 (a row holds 12 input values, then 12 class labels: one per position)\$"
  awk -F, 'NR == 2 { $20 = 3 } { print }' OFS=, data/train.csv >range/train.csv
  run ./tagger train --data range
  expect_rc 1 "a label out of range"
  expect_in err "range/train.csv:2:20: class label 3 (position 8 of 12) is out of range \[0, 3)\$"
  awk -F, 'NR == 4 { $24 = 1.5 } { print }' OFS=, data/train.csv >frac/train.csv
  run ./tagger train --data frac
  expect_rc 1 "a fractional label"
  expect_in err "frac/train.csv:4:24: class label 1.5 (position 12 of 12) is not an integer in \[0, 3)\$"
}

# ---- parameters the loss does not reach ---------------------------------------

# st_hex FILE NAME: the bytes of tensor NAME of safetensors FILE, in hex.
st_hex() {
  n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  off=$(dd if="$1" bs=1 skip=8 count="$n" 2>/dev/null |
    sed -n "s/.*\"$2\":{[^}]*\"data_offsets\":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/p")
  [ -n "$off" ] || fail "$1 has no tensor $2"
  set -- "$1" $off
  tail -c +$((8 + n + $2 + 1)) "$1" | head -c $(($3 - $2)) | od -v -An -tx1 | tr -d ' \n'
}

case_unreached() {
  "$dlnc" check "$here/unreached.dln" >out 2>err
  rc=$?
  expect_rc 0 "dlnc check"
  expect_in err "unreached.dln:8:12: warning: the loss does not depend on 'aux.weight', 'aux.bias': they get no gradient, and training leaves them as initialised \[-Wuntrained\]\$"
  [ "$(grep -c "warning: the loss" err)" = 1 ] || { show; fail "one untrained warning expected"; }
  expect_in err "unreached.dln:8:3: warning: .aux. is computed but reaches no loss, no sample and not the prediction \[-Wunused\]\$"
  mkdir -p data
  awk 'BEGIN { srand(3); for (i = 0; i < 64; i++) { a = rand(); b = rand(); printf "%g,%g,%g,%g,%g\n", a, b, 1 - a, a * b, a - b } }' >data/train.csv
  build unreached ./un
  run ./un train --data data --save one.st
  expect_rc 0 "epoch 1"
  run ./un train --data data --resume one.st --epochs 3 --save three.st
  expect_rc 0 "epochs 2-3"
  for t in aux.weight aux.bias; do
    [ "$(st_hex one.st $t)" = "$(st_hex three.st $t)" ] || fail "training moved $t"
    st_hex three.st $t.momentum_buffer | grep -q '^0*$' || fail "$t has momentum"
  done
  [ "$(st_hex one.st h.weight)" != "$(st_hex three.st h.weight)" ] || fail "h.weight did not train"
  st_hex three.st h.weight.momentum_buffer | grep -q '^0*$' && fail "h.weight has no momentum"
  return 0
}

"case_$case_name"
