#!/bin/sh
# trainer_tok.sh CASE BINDIR WORKDIR
# Drives the trainer executables built from trainer_tok_model.c, a bigram
# next-token model (x : class[8, 128], y : class[8, 128]) on text data
# "corpus" (the first 80% to train, the rest to test):
#   trainer_tok (f32), trainer_tok_f64,
#   trainer_tok_last (one label per sample, CSV rows of token ids),
#   trainer_tok_last_text (the same declaring text data: refused).
# The corpus repeats "abcdefg\n", whose every byte has one successor: a
# trained bigram predicts it perfectly, and samples it back.
set -u
case_name=$1
bin=$2
work=$3

fail() { echo "FAIL [tok $case_name]: $*" >&2; exit 1; }

run() { "$@" >out 2>err; rc=$?; }
show() { echo "--- stdout"; cat out; echo "--- stderr"; cat err; } >&2
expect_rc() { [ "$rc" -eq "$1" ] || { show; fail "$2: exit $rc, expected $1"; }; }
expect_in() { grep -q -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_not_in() { ! grep -q -e "$2" "$1" || { show; fail "$1 has '$2'"; }; }
expect_fixed() { grep -q -F -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }

tok=$bin/trainer_tok

rm -rf "$work"
mkdir -p "$work/corpus" || fail "cannot create $work"
cd "$work" || fail "cannot enter $work"
# 150 lines plain, 50 gzipped, an index file and a symlink that are skipped
i=0
while [ $i -lt 150 ]; do echo abcdefg; i=$((i + 1)); done >corpus/a.txt
head -n 50 corpus/a.txt | gzip >corpus/b.gz
printf '\377\376\375' >corpus/a.dat
ln -s a.txt corpus/c.u8
# 200 * 8 = 1600 bytes: train [0, 1280) = 159 samples, test [1280, 1600) = 39

trained() { run "$tok" train --epochs 3 --save t.st "$@"; expect_rc 0 "train"; }

case_train() {
  trained --metrics m.jsonl
  num='[0-9][0-9.]*'
  [ "$(grep -c "^epoch [1-3]/3  train_loss $num  train_bpc $num  test_loss $num  test_bpc $num  test_acc $num  train_acc $num  $num s  $num samples/s\$" out)" -eq 3 ] ||
    { show; fail "expected 3 summary lines with bits per character"; }
  # bpc = loss / ln 2
  awk '$1 == "epoch" { d = $4 / log(2) - $6; if (d > 1e-3 || d < -1e-3) exit 1 }' out ||
    fail "train_bpc is not train_loss / ln 2"
  awk '$1 == "epoch" && $2 == "3/3" { exit !($10 < 0.1 && $12 == 1) }' out ||
    { show; fail "the bigram did not learn the corpus"; }
  num='[0-9][0-9.e-]*'
  re="^\\{\"epoch\":[1-3],\"train_loss\":$num,\"train_bpc\":$num,\"test_loss\":$num,\"test_bpc\":$num,\"train_acc\":$num,\"test_acc\":$num,\"seconds\":$num,\"samples_per_s\":$num,\"lr\":$num\\}\$"
  [ "$(grep -c -E "$re" m.jsonl)" -eq 3 ] || { cat m.jsonl >&2; fail "malformed metrics lines"; }
  # batches of 16 over 159 samples: 10 steps an epoch
  grep -a -q '"step":"30"' t.st || fail "not 30 steps in 3 epochs (159 train samples?)"
}

case_eval() {
  trained
  run "$tok" eval --load t.st
  expect_rc 0 "eval"
  expect_in out '^test_loss [0-9.e-]*  test_bpc [0-9.e-]*  test_acc 1.0000  samples 39$'
  # 128 classes: per-class lines for the classes present, the matrix left to --json
  expect_in out '^   97  *[0-9][0-9]*  *[0-9][0-9]*  1.0000$'
  expect_in out '^confusion matrix: 128 classes, too many to print here (see --json)$'
  run "$tok" eval --load t.st --json
  expect_rc 0 "eval --json"
  # every position is a decision: 39 samples of 8 positions
  expect_in out '"accuracy": 1, "classes": 128, "decisions": 312, '
  # accuracy counts positions: in "ab\nac\n" an 'a' is followed by b or c
  # alike, so a bigram gets 5 of every 6 positions right at best
  mkdir -p alt/corpus
  i=0
  while [ $i -lt 300 ]; do printf 'ab\nac\n'; i=$((i + 1)); done >alt/corpus/x
  run "$tok" train --data alt --epochs 5 --save alt.st
  expect_rc 0 "train on alt"
  run "$tok" eval --load alt.st --data alt --batch 5
  expect_rc 0 "eval alt"
  acc=$(awk '{ print $6 }' out)
  awk -v a="$acc" 'BEGIN { exit !(a > 0.78 && a < 0.88) }' || { show; fail "test_acc $acc, expected about 5/6"; }
}

case_predict() {
  trained
  # a b c d e f g \n -> b c d e f g \n a, a class per position
  printf '97,98,99,100,101,102,103,10\n\n10,97,98,99,100,101,102,103\n' >in.csv
  "$tok" predict --load t.st <in.csv >out 2>err; rc=$?
  expect_rc 0 "predict"
  [ "$(cat out)" = "98 99 100 101 102 103 10 97
97 98 99 100 101 102 103 10" ] || { show; fail "per-position predictions"; }
  # --top 1 per position: the class, then its probability; --labelled takes
  # the 8 label fields after the 8 inputs (one per position) and ignores them
  "$tok" predict --load t.st --top 1 <in.csv >out 2>err; rc=$?
  expect_rc 0 "predict --top 1"
  [ "$(sed 's/:[0-9.e-]*//g' out)" = "98 99 100 101 102 103 10 97
97 98 99 100 101 102 103 10" ] || { show; fail "per-position --top 1"; }
  printf '97,98,99,100,101,102,103,10,98,99,100,101,102,103,10,97\n' |
    "$tok" predict --load t.st --labelled >out 2>err; rc=$?
  expect_rc 0 "predict --labelled"
  [ "$(cat out)" = "98 99 100 101 102 103 10 97" ] || { show; fail "per-position --labelled"; }
  printf '97,98,99,100,101,102,103,10,98,99,100,101,102,103,10,200\n' |
    "$tok" predict --load t.st --labelled >out 2>err; rc=$?
  expect_rc 1 "predict --labelled, label out of range"
  expect_fixed err "stdin:1:16: error: class label 200 is out of range [0, 128)"
  printf '97,98.5,99,100,101,102,103,10\n' | "$tok" predict --load t.st >out 2>err; rc=$?
  expect_rc 1 "non-integer id"
  expect_fixed err "stdin:1:2: error: 98.5 is not a token id (an integer in [0, 128))"
  printf '97,98,99,100,101,102,103,10\n97,98,99,100,101,102,103,128\n' | "$tok" predict --load t.st >out 2>err; rc=$?
  expect_rc 1 "id out of range"
  expect_fixed err "stdin:2:8: error: 128 is not a token id"
  printf '97,98,99\n' | "$tok" predict --load t.st >out 2>err; rc=$?
  expect_rc 1 "short row"
  expect_fixed err "stdin:1:4: error: expected 8 values, got 3"
  # one label per sample: one class a line
  printf '1,2,3,4,5,6,7,8,9\n8,7,6,5,4,3,2,1,2\n' >train.csv
  run "$bin/trainer_tok_last" train --epochs 30 --lr 5 --save last.st
  expect_rc 0 "train one-label model on CSV ids"
  printf '0,0,0,0,0,0,0,8\n0,0,0,0,0,0,0,1\n' | "$bin/trainer_tok_last" predict --load last.st >out 2>err
  [ "$(tr '\n' ' ' <out)" = "9 2 " ] || { show; fail "one-label predictions"; }
}

case_sample() {
  trained
  run "$tok" sample --load t.st --length 16 --temperature 0.01
  expect_rc 0 "sample"
  [ "$(cat out)" = "abcdefg
abcdefg" ] || { show; fail "near-argmax sample from a newline"; }
  [ -s err ] && { show; fail "sample wrote to stderr"; }
  # the prompt is printed, then continued; a trailing newline ends the output
  run "$tok" sample --load t.st --length 5 --temperature 0.01 --prompt "xxcd"
  expect_rc 0 "sample with a prompt"
  [ "$(od -An -c out | tr -d ' \n')" = 'xxcdefg\na\n' ] || { show; fail "prompt continued: $(od -c out)"; }
  # longer than the window of 8: it slides
  run "$tok" sample --load t.st --length 100 --temperature 0.01 --prompt "abcdefg
abcdefg
ab"
  [ "$(tail -n 2 out | head -n 1)" = "abcdefg" ] || { show; fail "sliding window"; }
  # reproducible: the same seed, the same text; default seed 1
  run "$tok" train --epochs 1 --lr 0.3 --save weak.st
  run "$tok" sample --load weak.st --length 200
  cp out s1
  run "$tok" sample --load weak.st --length 200 --seed 1 --threads 2
  cmp -s out s1 || fail "--seed 1 differs from the default"
  run "$tok" sample --load weak.st --length 200 --seed 2
  cmp -s out s1 && fail "--seed 2 gave the same text"
  [ "$(head -c 200 s1 | wc -c)" -eq 200 ] || fail "200 bytes expected"
  run "$tok" sample --load t.st --length 0 --prompt hi
  expect_rc 0 "--length 0"
  [ "$(cat out)" = "hi" ] || fail "--length 0 prints the prompt only"
  # errors
  run "$tok" sample --load t.st --temperature 0
  expect_rc 2 "--temperature 0"
  expect_fixed err "--temperature: expected a positive number"
  run "$tok" sample --load t.st --length -1
  expect_rc 2 "--length -1"
  run "$tok" sample --length 3
  expect_rc 2 "no --load"
  expect_fixed err "--load FILE is required"
  run "$tok" sample --load t.st --prompt "$(printf 'ok\303\251')"
  expect_rc 2 "prompt outside the vocabulary"
  expect_fixed err "--prompt: byte 3 (0xc3) is outside the vocabulary of model 'tok' (128 tokens)"
  run "$tok" sample --load missing.st
  expect_rc 1 "missing checkpoint"
  expect_fixed err "missing.st"
  # a model that is not next-token shaped cannot sample, and does not list it
  run "$bin/trainer_tok_last" sample --load t.st
  expect_rc 2 "sample on a one-label model"
  expect_fixed err "cannot sample: it has 1 label(s) per sample for 8 input tokens"
  run "$bin/trainer_tok_last" --help
  expect_not_in out '^  sample '
  run "$bin/trainer_tok_last" bogus
  expect_fixed err "(commands: train, eval, predict, gradcheck, export;"
  run "$tok" --help
  expect_in out '^  sample '
  run "$tok" sample --help
  expect_rc 0 "sample --help"
  for o in load seed length temperature prompt; do expect_in out "^  --$o "; done
  expect_fixed out "(default: 500)"
  expect_not_in out "^  --batch "
}

case_gradcheck() {
  # the model aborts on an input that is not a token id
  run "$bin/trainer_tok_f64" gradcheck --batch 3
  expect_rc 0 "gradcheck"
  expect_in out '^bigram.weight  checked 64  max_rel_err '
}

case_errors() {
  run "$bin/trainer_tok_last_text" train
  expect_rc 1 "text data for a one-label model"
  expect_fixed err "tok.dln:5: train data: text data needs token inputs and a label per position"
  expect_fixed err "it has 1 label(s) per sample for 8 input tokens"
  printf 'abc\ndef\nd\303\251j\303\240\n' >corpus/z.txt
  run "$tok" train
  expect_rc 1 "byte outside the vocabulary"
  expect_fixed err "cannot load the train data declared at tok.dln:5: "
  expect_fixed err "corpus/z.txt:3: byte 0xc3 is outside the vocabulary of 128 tokens"
  rm corpus/z.txt
  run "$tok" train --data nowhere
  expect_rc 1 "missing corpus"
  expect_fixed err "nowhere/corpus"
  # 12 bytes: the train part (9) holds a sample of 8, the test part (3) none
  mkdir -p small/corpus && printf 'abcdefghijkl' >small/corpus/a
  run "$tok" train --data small
  expect_rc 1 "corpus too short for the test part"
  expect_fixed err "tok.dln:6: small/corpus: text too short for sequences of 8"
  # CSV token ids for a one-label model: out of range, not integers
  printf '1,2,3,4,5,6,7,200,9\n' >train.csv
  run "$bin/trainer_tok_last" train
  expect_rc 1 "id out of range in CSV"
  expect_fixed err "sample 1, input 8 (counting from 1): 200 is not a token id, an integer in [0, 128)"
  expect_fixed err "train.csv"
  printf '1,2,3,4,5,6,7,0.5,9\n' >train.csv
  run "$bin/trainer_tok_last" train
  expect_rc 1 "non-integer id in CSV"
  expect_fixed err "0.5 is not a token id"
}

case "$case_name" in
  train | eval | predict | sample | gradcheck | errors) "case_$case_name" ;;
  *) fail "unknown case" ;;
esac
echo "ok [tok $case_name]"
