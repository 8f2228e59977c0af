#!/bin/sh
# training.sh CASE DLNC WORKDIR
# What a training step does, on generated trainers:
#   nonfinite_state  optimiser state or a buffer that overflows while the loss
#                    and the weights stay finite stops the run at that step
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

  # Batch norm: running_var is inf after step 1, everything else finite.
  mkdir -p bn
  awk 'BEGIN { for (i = 0; i < 16; i++) printf "%s,%d,%d\n", i % 2 ? "1e20" : "-1e20", i, i % 3 }' >bn/train.csv
  build overflow_bn ./bn_tr
  run ./bn_tr train --data bn
  expect_rc 1 "batch norm"
  expect_in err "^error: training diverged at epoch 1, step 1: buffer 'h.running_var' is inf (lr 0.01); nothing was saved (no --save)\$"
}

"case_$case_name"
