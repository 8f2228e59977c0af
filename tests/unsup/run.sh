#!/bin/sh
# Models without a label (and metrics that fit the loss), one case a run:
#   data     an autoencoder on IDX images alone and on label-free CSV rows:
#            train, eval, predict, gradcheck; bad files are named
#   metrics  no accuracy without a label the loss is scored against (train
#            log, --metrics JSON, eval); a classifier keeps it; eval's loss is
#            the mean over every test sample whatever the batch
#   embed    the embedding API of a label-less model predicts what predict does
#   sanitize the same paths and a generator's sample under ASan and UBSan
# usage: run.sh CASE DLNC SRCDIR WORKDIR CC RUNTIME_DIR
set -eu
case=$1 dlnc=$2 src=$3 work=$4 cc=$5 rt=$6
rm -rf "$work"
mkdir -p "$work"
cd "$work"
/usr/bin/python3 "$src/gen.py" .
for f in ae dummy cls rows; do cp "$src/$f.dln" .; done
fail=0
bad() { echo "FAIL: $*"; fail=1; }
expect() { # WHAT PATTERN FILE
  grep -q -- "$2" "$3" || { bad "$1: no '$2' in:"; cat "$3"; }
}
expect_not() { # WHAT PATTERN FILE
  if grep -q -- "$2" "$3"; then bad "$1: '$2' in:"; cat "$3"; fi
}

case $case in
data)
  "$dlnc" build ae.dln -o ae
  ./ae train --save ae.st > train.txt
  expect "ae trains" "epoch 2/2  train_loss" train.txt
  ./ae eval --load ae.st > eval.txt
  expect "ae evaluates" "test_loss .*samples 37" eval.txt
  printf '%s\n' "$(seq -s, 1 64)" | ./ae predict --load ae.st > pred.txt
  [ "$(tr ',' '\n' < pred.txt | wc -l)" = 64 ] || bad "predict prints 64 values: $(cat pred.txt)"
  "$dlnc" build rows.dln -o rows
  ./rows train > rows.txt
  expect "csv rows of input values train" "epoch 1/1  train_loss" rows.txt
  # a row with a label column too many, a truncated IDX file, a missing one
  sed '3s/$/,1/' rows.csv > extra.csv && sed 's/rows.csv/extra.csv/' rows.dln > extra.dln
  "$dlnc" build extra.dln -o extra
  if ./extra train 2> extra.err; then bad "a row with 65 fields loads"; fi
  expect "extra field" "extra.csv:3: expected 64 fields, found 65 (a row holds 64 input values and no label" extra.err
  head -c 1000 test-images.idx > short.idx && sed 's/test-images.idx/short.idx/' ae.dln > short.dln
  "$dlnc" build short.dln -o short
  if ./short train 2> short.err; then bad "a truncated IDX file loads"; fi
  expect "truncated" "short.idx.*truncated" short.err
  if ./ae train --data /nonexistent 2> missing.err; then bad "missing files load"; fi
  expect "missing" "cannot load the train data declared at .*ae.dln:11: .*/nonexistent/train-images.gz" missing.err
  "$dlnc" build --f64 ae.dln -o ae64
  # (a loss of ~45 nats leaves the differences ~1e-9 of noise: a looser tol;
  # tests/gradcheck/unsupervised.dln checks at 1e-6)
  ./ae64 gradcheck --batch 3 --tol 1e-4 > gc.txt || { bad "gradcheck"; cat gc.txt; }
  ;;
metrics)
  "$dlnc" build ae.dln -o ae
  "$dlnc" build dummy.dln -o dummy
  "$dlnc" build cls.dln -o cls
  for m in ae dummy cls; do
    ./$m train --save $m.st --metrics $m.jsonl > $m.log
    ./$m eval --load $m.st > $m.eval
  done
  for m in ae dummy; do
    expect "$m: train log" "test_loss" $m.log
    expect_not "$m: train log" "test_acc" $m.log
    expect "$m: JSON" '"test_loss":' $m.jsonl
    expect_not "$m: JSON" '_acc"' $m.jsonl
    expect_not "$m: eval" "_acc" $m.eval
  done
  expect "cls: train log" "test_acc" cls.log
  expect "cls: JSON" '"test_acc":' cls.jsonl
  expect "cls: eval" "test_acc" cls.eval
  # the mean over all 37 test samples: batches of 5 (7 of them and one of 2),
  # of 16 and of all 37 agree; a plain mean of batch means would not
  for b in 5 16 37; do ./ae eval --load ae.st --batch $b | sed 's/.*test_loss \([^ ]*\).*/\1/' > l$b; done
  cmp -s l5 l37 && cmp -s l16 l37 || bad "eval's loss depends on the batch: $(cat l5 l16 l37)"
  # the loss as written: nats per image (64 pixels), not per pixel, over
  # every image, as numpy computes it from the checkpoint
  /usr/bin/python3 "$src/evalcheck.py" ae.st test-images.idx "$(cat l37)" || fail=1
  ;;
embed)
  "$dlnc" build ae.dln -o ae
  ./ae train --save ae.st > /dev/null
  mkdir -p gen
  "$dlnc" emit ae.dln -o gen
  $cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -iquote gen -I"$rt" "$src/embed.c" \
    gen/ae.c $(ls "$rt"/*.c) -o embed \
    -lpng -lz -lm -lpthread
  ./embed ae.st > embedded.txt
  awk 'BEGIN { for (k = 0; k < 64; k++) printf "%s%d", k ? "," : "", k % 7 * 10; print "" }' |
    ./ae predict --load ae.st > trainer.txt
  paste -d, trainer.txt embedded.txt | awk -F, '
    { for (k = 1; k <= 64; k++) { d = $k - $(k + 64); if (d < 0) d = -d
        if (d > 1e-5) { print "FAIL: value " k ": trainer " $k ", API " $(k + 64); bad = 1 } } }
    END { exit bad }' || fail=1
  ;;
sanitize)
  # ASan + UBSan (dlnc build --debug): IDX images alone, CSV rows of inputs
  # alone, and a generator's sample, without a report
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  "$dlnc" build --debug ae.dln -o ae 2>/dev/null
  ./ae train --threads 2 --save ae.st > /dev/null
  ./ae eval --load ae.st --batch 5 > /dev/null
  printf '%s\n' "$(seq -s, 1 64)" | ./ae predict --load ae.st > /dev/null
  "$dlnc" build --debug rows.dln -o rows 2>/dev/null
  ./rows train --save rows.st > /dev/null
  head -3 rows.csv | ./rows predict --load rows.st > /dev/null
  "$dlnc" build --debug "$src/../generate/gen.dln" -o gen 2>/dev/null
  ./gen train --data . --save gen.st > /dev/null
  ./gen sample --load gen.st --count 7 --batch 3 --threads 2 --out s.idx > /dev/null
  [ -f s.png ] || bad "no s.png"
  ;;
*) echo "unknown case $case"; exit 2 ;;
esac
[ $fail = 0 ] && echo "$case: passed"
exit $fail
