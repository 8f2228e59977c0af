#!/bin/sh
# trainer_cli.sh CASE BINDIR WORKDIR
# Drives the trainer executables built from trainer_lin_model.c:
#   trainer_lin (f32 regression), trainer_lin_f64, trainer_lin_badgrad_f64,
#   trainer_lin_wide (4 inputs: other shapes), trainer_lin_w40_f64 (40 inputs),
#   trainer_cls (f32 classifier),
#   trainer_cls_idx (classifier on IDX bytes scaled by 1/255, no test set).
set -u
case_name=$1
bin=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "FAIL [$case_name]: $*" >&2; exit 1; }

# run CMD...: stdout -> out, stderr -> err, exit code -> rc (stdin untouched)
run() { "$@" >out 2>err; rc=$?; }
show() { echo "--- stdout"; cat out; echo "--- stderr"; cat err; } >&2
expect_rc() { [ "$rc" -eq "$1" ] || { show; fail "$2: exit $rc, expected $1"; }; }
expect_fail() { [ "$rc" -ne 0 ] || { show; fail "$1: exit 0, expected failure"; }; }
expect_in() { grep -q -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_not_in() { ! grep -q -e "$2" "$1" || { show; fail "$1 has '$2'"; }; }
expect_fixed() { grep -q -F -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }

lin=$bin/trainer_lin
cls=$bin/trainer_cls

rm -rf "$work"
mkdir -p "$work/reg" "$work/cls" || fail "cannot create $work"
cd "$work" || fail "cannot enter $work"
gen() { awk -v kind="$1" -v n="$2" -v seed="$3" -f "$here/trainer_gen.awk"; }
gen reg 200 1 >reg/train.csv
gen reg 50 2 >reg/test.csv
gen cls 200 1 >cls/train.csv
gen cls 50 2 >cls/test.csv

# The "step" metadata of a checkpoint.
ckpt_step() { grep -a -o '"step":"[0-9]*"' "$1" | tr -dc 0-9; }
# Field $2 of summary line "epoch $3/..." in file $1.
summary_field() {
  awk -v key="$2" -v ep="$3" '$1 == "epoch" && index($2, ep "/") == 1 {
    for (i = 1; i < NF; i++) if ($i == key) print $(i + 1) }' "$1"
}

case_train() {
  run "$lin" train --data reg --epochs 6
  expect_rc 0 "train"
  [ "$(grep -c '^epoch [1-6]/6  train_loss [0-9.]*  test_loss [0-9.]*  [0-9.]* s  [0-9]* samples/s$' out)" -eq 6 ] ||
    { show; fail "expected 6 well-formed summary lines"; }
  [ -s err ] && { show; fail "stderr not quiet without a terminal"; }
  first=$(summary_field out train_loss 1)
  last=$(summary_field out train_loss 6)
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 5) }' || fail "train_loss $first -> $last did not drop 5x"
  last_test=$(summary_field out test_loss 6)
  awk -v a="$last_test" 'BEGIN { exit !(a < 0.05) }' || fail "test_loss $last_test not < 0.05"

  # Batches of 16 over 200 rows: 12 full + 1 partial = 13 steps an epoch.
  run "$lin" train --data reg --epochs 2 --save b16.st
  expect_rc 0 "train --batch default"
  [ "$(ckpt_step b16.st)" = 26 ] || fail "step after 2 epochs of 13 batches is $(ckpt_step b16.st), not 26"
  # --batch 0: the whole set, one step an epoch.
  run "$lin" train --data reg --epochs 3 --batch 0 --save full.st
  expect_rc 0 "train --batch 0"
  [ "$(ckpt_step full.st)" = 3 ] || fail "full batch: step $(ckpt_step full.st), not 3"
  run "$lin" train --data reg --epochs 2 --batch 7 --threads 2
  expect_rc 0 "train --batch 7 --threads 2"
}

case_metrics() {
  # On a terminal (script(1) gives one) the bar shows the epoch's ETA and,
  # before the last epoch, the run's; off a terminal there is no bar.
  if command -v script >/dev/null 2>&1; then
    script -qec "$lin train --data reg --epochs 2 --batch 4" /dev/null >tty.out 2>&1 </dev/null
    grep -a -q 'epoch 1/2 \[.*  ETA [0-9]*:[0-9][0-9] (run [0-9]*:[0-9][0-9])' tty.out ||
      { cat -v tty.out >&2; fail "no ETA on the bar of epoch 1"; }
    grep -a -q 'epoch 2/2 \[.*  ETA [0-9]*:[0-9][0-9]' tty.out || fail "no ETA on epoch 2's bar"
    run "$lin" train --data reg --epochs 2 --batch 4
    expect_not_in err ETA
  fi
  run "$lin" train --data reg --epochs 4 --metrics m.jsonl
  expect_rc 0 "train --metrics"
  # a header record, then one line an epoch
  [ "$(wc -l <m.jsonl)" -eq 5 ] || fail "expected 5 metrics lines, got $(wc -l <m.jsonl)"
  head -n 1 m.jsonl >head.json
  for k in '"run":{"model":"lin"' '"dlnc":"[0-9.]*"' '"seed":[0-9]*' '"threads":[0-9]*' \
           '"batch":[0-9]*' '"epochs":4' '"lr":0.05' '"resume":null' \
           '"started":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"' \
           '"options":\["--data","reg","--epochs","4","--metrics","m.jsonl"\]'; do
    grep -q -E "$k" head.json || fail "header record lacks $k: $(cat head.json)"
  done
  num='-?[0-9][0-9.e+-]*'
  re="^\\{\"epoch\":[1-4],\"train_loss\":$num,\"test_loss\":$num,\"seconds\":$num,\"samples_per_s\":$num,\"lr\":$num\\}\$"
  [ "$(grep -c -E "$re" m.jsonl)" -eq 4 ] || { cat m.jsonl >&2; fail "malformed metrics lines"; }
  [ "$(grep -o '"epoch":[0-9]*' m.jsonl | tr -dc '0-9\n' | tr '\n' ' ')" = "1 2 3 4 " ] ||
    fail "epochs not 1..4 in order"
  expect_not_in m.jsonl test_acc        # regression: no accuracy
  expect_not_in m.jsonl train_acc
  expect_not_in out train_acc
  # StepLR(step_size 1, gamma 0.7) on lr 0.05, warm-up long over.
  lrs=$(grep '"epoch"' m.jsonl | grep -o '"lr":[^}]*' | cut -d: -f2 | tr '\n' ' ')
  [ "$lrs" = "0.05 0.035 0.0245 0.01715 " ] || fail "lr per epoch '$lrs'"
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' m.jsonl || fail "not JSON"
  fi
  # Appends; a classifier reports accuracy.
  run "$cls" train --data cls --epochs 2 --lr 0.5 --metrics m.jsonl
  expect_rc 0 "classifier --metrics"
  [ "$(wc -l <m.jsonl)" -eq 8 ] || fail "metrics not appended"
  [ "$(grep -c '^{"run":' m.jsonl)" -eq 2 ] || fail "not one header record a run"
  [ "$(grep -c '"train_acc":[01][.0-9e-]*,"test_acc"' m.jsonl)" -eq 2 ] || { cat m.jsonl >&2; fail "train_acc missing"; }
  [ "$(grep -c '^epoch [12]/2 .* test_acc [01][.0-9]*  train_acc [01][.0-9]*  ' out)" -eq 2 ] || { show; fail "train_acc not in the epoch lines"; }
  sed -n 6p m.jsonl | grep -q '"options":\["--data","cls"' || fail "the second run's header: $(sed -n 6p m.jsonl)"
  [ "$(grep -c '"test_acc":[01][.0-9e-]*,' m.jsonl)" -eq 2 ] || { cat m.jsonl >&2; fail "test_acc missing"; }
}

# A checkpoint from the middle of an epoch carries train_acc's counts and
# the loss sum: resumed, the epoch reports the same line as a straight run.
# The run saves after every step of a long epoch; a copy is taken while it
# is stopped (wherever that is, the lines must agree).
resume_metrics() {
  mkdir -p big
  gen cls 5000 3 >big/train.csv
  cp cls/test.csv big/test.csv
  "$cls" train --data big --epochs 1 --batch 1 --save every.st --save-every 1 >/dev/null 2>&1 &
  pid=$!
  i=0
  until [ -f every.st ]; do
    i=$((i + 1))
    [ $i -gt 600 ] && { kill -KILL $pid; fail "no checkpoint after 30 s"; }
    sleep 0.05
  done
  sleep 0.2
  kill -STOP $pid
  cp every.st mid.st
  kill -KILL $pid
  kill -CONT $pid
  wait $pid
  run "$cls" train --data big --epochs 1 --batch 1 --metrics straight.jsonl
  expect_rc 0 "1 epoch straight"
  run "$cls" train --data big --epochs 1 --batch 1 --resume mid.st --metrics resumed.jsonl
  expect_rc 0 "resume mid-epoch"
  grep -q '"resume":"mid.st"' resumed.jsonl || fail "the header lacks the resume file: $(head -n 1 resumed.jsonl)"
  strip() { grep '"epoch"' "$1" | sed 's/,"seconds".*//'; }
  grep -q train_acc straight.jsonl || fail "no train_acc: $(cat straight.jsonl)"
  [ "$(strip straight.jsonl)" = "$(strip resumed.jsonl)" ] ||
    fail "resumed at step $(ckpt_step mid.st): $(strip resumed.jsonl), straight $(strip straight.jsonl)"
  # the headers differ only in the start time and the options
  hdr() { head -n 1 "$1" | sed 's/,"resume".*//'; }
  [ "$(hdr straight.jsonl)" = "$(hdr resumed.jsonl)" ] || fail "headers: $(hdr straight.jsonl) vs $(hdr resumed.jsonl)"
}

case_resume() {
  resume_metrics
  for t in 1 2; do
    run "$lin" train --data reg --epochs 2 --threads $t --save straight$t.st
    expect_rc 0 "2 epochs straight"
    run "$lin" train --data reg --epochs 1 --threads $t --save half$t.st
    expect_rc 0 "1 epoch"
    run "$lin" train --data reg --epochs 2 --threads $t --resume half$t.st --save resumed$t.st
    expect_rc 0 "resume to 2"
    expect_in out '^epoch 2/2 '
    expect_not_in out '^epoch 1/2 '
    cmp straight$t.st resumed$t.st || fail "threads $t: 2 straight != 1 + resume to 2"
    cmp -s straight$t.st half$t.st && fail "1-epoch and 2-epoch checkpoints are identical"
  done
  # Nothing left to train: a note, success.
  run "$lin" train --data reg --epochs 2 --resume straight1.st
  expect_rc 0 "resume already complete"
  expect_in err "nothing to train"
  # The resumed seed wins over --seed, with a note.
  run "$lin" train --data reg --epochs 2 --seed 99 --resume half1.st --save s99.st
  expect_rc 0 "resume with --seed"
  expect_in err "note: --seed 99 ignored"
  cmp straight1.st s99.st || fail "--seed changed a resumed run"
}

case_eval() {
  run "$lin" train --data reg --epochs 5 --save reg.st
  expect_rc 0 "train"
  want=$(summary_field out test_loss 5)
  run "$lin" eval --load reg.st --data reg
  expect_rc 0 "eval"
  expect_in out '^test_loss [0-9.e-]*  samples 50$'
  got=$(awk '{ print $2 }' out)
  awk -v a="$want" -v b="$got" 'BEGIN { d = a - b; exit !(d < 6e-5 && d > -6e-5) }' ||
    fail "eval loss $got != last epoch's test_loss $want"
  run "$cls" train --data cls --epochs 5 --lr 0.5 --save cls.st
  expect_rc 0 "train classifier"
  run "$cls" eval --load cls.st --data cls --batch 7
  expect_rc 0 "eval classifier"
  expect_in out '^test_loss [0-9.e-]*  test_acc [0-9.]*  samples 50$'
  acc=$(awk '{ print $4 }' out)
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.85 && a <= 1) }' || fail "test_acc $acc"
  run "$cls" eval --data cls
  expect_rc 2 "eval without --load"
}

case_predict() {
  run "$lin" train --data reg --epochs 20 --save reg.st
  expect_rc 0 "train"
  printf '0.5,0.5,0.5\n\n1,0,0\r\n' >in.csv
  "$lin" predict --load reg.st <in.csv >out 2>err; rc=$?
  expect_rc 0 "predict"
  [ "$(wc -l <out)" -eq 2 ] || { show; fail "expected 2 prediction lines (blank line skipped)"; }
  # y1 = 2a - b + c/2 + 1, y2 = -a + 3c - 1/2: (1.75, 0.5) and (3, -1.5)
  awk -F, 'NF != 2 { exit 1 }
    NR == 1 && (($1 - 1.75)^2 > 0.01 || ($2 - 0.5)^2 > 0.01) { exit 1 }
    NR == 2 && (($1 - 3)^2 > 0.01 || ($2 + 1.5)^2 > 0.01) { exit 1 }' out ||
    { show; fail "predictions off"; }
  # Batching does not change the answers.
  cp out batched
  "$lin" predict --load reg.st --batch 1 <in.csv >out 2>err || fail "predict --batch 1"
  cmp out batched || fail "--batch 1 predictions differ"
  run "$cls" train --data cls --epochs 10 --lr 0.5 --save cls.st
  expect_rc 0 "train classifier"
  printf '1,0,0\n-1,0,1\n0.9,0.5,-0.2\n' | "$cls" predict --load cls.st >out 2>err
  [ "$(tr '\n' ' ' <out)" = "1 0 1 " ] || { show; fail "class predictions"; }
  printf '1,2,3\n1,x,3\n' | "$lin" predict --load reg.st >out 2>err; rc=$?
  expect_rc 1 "malformed row"
  expect_fixed err "stdin:2:2: error"
  printf '1,2\n' | "$lin" predict --load reg.st >out 2>err; rc=$?
  expect_rc 1 "short row"
  expect_fixed err "stdin:1:3: error: expected 3 values, got 2"
}

case_idx() {
  mkdir -p idx
  # IDX headers: ubyte images [400, 3], ubyte labels [400] (big-endian dims).
  { printf '\000\000\010\002\000\000\001\220\000\000\000\003'
    printf "$(gen idxx 400 3)"; } >idx/train-x.idx
  { printf '\000\000\010\001\000\000\001\220'
    printf "$(gen idxy 400 3)"; } >idx/train-y.idx
  [ "$(wc -c <idx/train-x.idx)" -eq 1212 ] || fail "generated IDX images have the wrong size"
  run "$bin/trainer_cls_idx" train --data idx --epochs 40 --lr 2 --batch 20 --save idx.st --metrics m.jsonl
  expect_rc 0 "train on IDX"
  expect_in out '^epoch 40/40  train_loss [0-9.]*  [0-9.]* s  [0-9]* samples/s$'
  expect_not_in out 'test_'
  expect_not_in m.jsonl 'test_'
  run "$bin/trainer_cls_idx" eval --load idx.st --data idx
  expect_rc 0 "eval without a test set"
  expect_in err "no test data; evaluating on the train data"
  expect_in out '^train_loss [0-9.e-]*  train_acc [0-9.]*  samples 400$'
  acc=$(awk '{ print $4 }' out)
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "train_acc $acc"
  # Raw bytes in, scaled as in training: 40+40-20 = 60 is class 0, which an
  # unscaled input (60 >> 128/255) would get wrong.
  printf '200,200,10
40,40,20
10,20,250
' | "$bin/trainer_cls_idx" predict --load idx.st >out 2>err
  [ "$(tr '\n' ' ' <out)" = "1 0 0 " ] || { show; fail "predict on raw bytes"; }
  # A corrupt label file is reported with its path and the .dln line.
  printf '\000\000\010\001\000\000\001\220\001' >idx/train-y.idx
  run "$bin/trainer_cls_idx" train --data idx
  expect_rc 1 "truncated IDX labels"
  expect_fixed err "train-y.idx"
  expect_fixed err "lin.dln:5"
}

case_errors() {
  run "$lin" train --data nonexistent
  expect_rc 1 "missing data"
  expect_fixed err "nonexistent/train.csv"
  expect_fixed err "lin.dln:5"
  run "$lin" train --data "$work/reg" --epochs 1 --save good.st
  expect_rc 0 "train"
  head -c 100 good.st >trunc.st
  run "$lin" eval --load trunc.st --data reg
  expect_rc 1 "truncated checkpoint"
  expect_fixed err "trunc.st"
  echo "not a checkpoint" >junk.st
  run "$lin" train --data reg --resume junk.st
  expect_rc 1 "junk checkpoint"
  expect_fixed err "junk.st"
  run "$bin/trainer_lin_wide" predict --load good.st </dev/null
  expect_rc 1 "checkpoint of other shapes"
  expect_fixed err "good.st: tensor 'lin.weight' has shape [2, 3] but model 'lin' expects [2, 4]"
  run "$lin" train --bogus
  expect_rc 2 "unknown option"
  expect_fixed err "unknown option '--bogus' (see"
  # did-you-mean on the flags: a typo, another tool's spelling, a value given inline
  run "$lin" train --epoch 2
  expect_rc 2 "misspelt option"
  expect_fixed err "unknown option '--epoch'; did you mean '--epochs'?"
  run "$lin" train --batch-size=8
  expect_rc 2 "Keras spelling of --batch"
  expect_fixed err "unknown option '--batch-size=8'; did you mean '--batch'?"
  run "$lin" eval --lr 0.1
  expect_rc 2 "an option of another command"
  expect_fixed err "unknown option '--lr' (see"
  for bad in "--epochs abc" "--epochs 0" "--batch -1" "--lr nan" "--seed -1" "--threads x" "--epochs"; do
    # shellcheck disable=SC2086
    run "$lin" train $bad
    expect_rc 2 "train $bad"
    expect_fixed err "--"
  done
  run "$lin" frobnicate
  expect_rc 2 "unknown command"
  run "$lin"
  expect_rc 2 "no command"
  printf 'x1,x2,x3,y1,y2\n1,2,3,4,5\n1,2,oops,4,5\n' >reg/bad.csv
  mkdir -p badset && cp reg/bad.csv badset/train.csv
  run "$lin" train --data badset
  expect_fail "bad CSV"
  expect_fixed err "badset/train.csv"
}

case_gradcheck() {
  run "$bin/trainer_lin_f64" gradcheck
  expect_rc 0 "gradcheck f64"
  expect_in out '^lin.weight  checked 6  max_rel_err '
  expect_in out '^lin.bias  checked 2  max_rel_err '
  run "$bin/trainer_lin_badgrad_f64" gradcheck --batch 3 --seed 5
  expect_rc 1 "gradcheck of a wrong gradient"
  expect_in out '^lin.bias  checked 2  max_rel_err .*FAILED'
  expect_not_in out '^lin.weight .*FAILED'
  run "$bin/trainer_lin_w40_f64" gradcheck --batch 5
  expect_rc 0 "gradcheck of 80 weights"
  expect_in out '^lin.weight  checked 64  max_rel_err '
  run "$lin" gradcheck
  expect_rc 0 "gradcheck f32"
  expect_in err "float32 build: gradients below .* are compared absolutely"
  expect_not_in out "FAILED"
  # f32's looser floor still catches a wrong gradient (the bias's, x1.5)
  run "$bin/trainer_lin_badgrad" gradcheck --batch 3 --seed 5
  expect_rc 1 "f32 gradcheck of a wrong gradient"
  expect_in out '^lin.bias  checked 2  max_rel_err .*FAILED'
  run "$bin/trainer_lin_f64" gradcheck --tol 0
  expect_rc 1 "gradcheck with zero tolerance"
}

case_diverge() {
  run "$lin" train --data reg --epochs 1 --save ck.st
  expect_rc 0 "train"
  cp ck.st ck.orig
  run "$lin" train --data reg --epochs 4 --resume ck.st --save ck.st --lr 1e30
  expect_rc 1 "diverging run"
  expect_in err '^error: training diverged at epoch [0-9]*, step [0-9]*: [a-z .'\'']* is [-a-z]* (lr [0-9.e+]*); the last checkpoint (ck.st) is kept$'
  cmp ck.st ck.orig || fail "checkpoint changed by a diverged run"
  run "$lin" train --data reg --epochs 4 --lr 1e30 --save fresh.st
  expect_rc 1 "diverging fresh run"
  expect_in err "training diverged"
  [ -e fresh.st ] && fail "a diverged first epoch wrote a checkpoint"
  return 0
}

case_help() {
  run "$lin" --help
  expect_rc 0 "--help"
  for c in train eval predict gradcheck export; do expect_in out "^  $c "; done
  run "$lin" export --help
  expect_rc 0 "export --help"
  for o in load onnx; do expect_in out "^  --$o "; done
  run "$lin" export --load x.st
  expect_rc 2 "export without --onnx"
  expect_fixed err "--onnx FILE is required"
  # a descriptor without an ONNX table (written by hand, as this one) is refused
  run "$lin" export --load x.st --onnx x.onnx
  expect_rc 1 "export of a model without an ONNX table"
  expect_fixed err "without an ONNX table"
  [ -e x.onnx ] && fail "a refused export wrote x.onnx"
  run "$lin" train --help
  expect_rc 0 "train --help"
  for o in data epochs batch lr seed threads save resume metrics; do expect_in out "^  --$o "; done
  expect_fixed out "--epochs N       total epochs (with --resume: the total, not additional) (default: 3)"
  expect_fixed out "(default: 16)"
  run "$lin" gradcheck --help
  expect_rc 0 "gradcheck --help"
  expect_in out "^  --eps "
  expect_not_in out "^  --save "
  run "$lin" eval --bogus --help
  expect_rc 0 "--help wins over a bad option"
}

case "$case_name" in
  train | metrics | resume | eval | predict | idx | errors | gradcheck | diverge | help) "case_$case_name" ;;
  *) fail "unknown case" ;;
esac
echo "ok [$case_name]"
