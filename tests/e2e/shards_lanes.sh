#!/bin/sh
# Models whose shards run side by side in lanes (trainer_lanes.c) under
# train --shards S: batch norm (each shard's statistics are the global
# batch's: SyncBatchNorm's meaning), a train block of two updates, and an
# LSTM with carry = true.  A run at --shards 8 ends within rounding of the
# run at --shards 1 (per-shard statistics, over 4 to 7 rows, would be far
# off), and its bits do not depend on the thread count; a short last batch
# with empty shards trains; in f64 the two runs agree to 1e-9.  The models:
# dense features (norm_regression), a convolution's channels with spectral
# norm (conv_bn), two updates (updates_bn), carried state (carry_lstm).
# tests/mpi checks the same over 1, 2, 4 and 8 processes.
# usage: shards_lanes.sh DLNC WORKDIR SOURCE_DIR
set -eu
dlnc=$1 work=$2 src=$3
here=$src/tests/e2e
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
sh "$here/conv_images.sh" 200 > conv_images.csv
sh "$here/carry_text.sh" 400 > text.bin
cp "$here/conv_bn.dln" "$here/carry_lstm.dln" .
for model in norm_regression conv_bn updates_bn carry_lstm; do
  data=$here
  case $model in conv_bn | carry_lstm) data=$PWD ;; esac
  "$dlnc" build "$data/$model.dln" -o ./model
  train() { ./model train --data "$data" --epochs 2 "$@" >/dev/null; }
  ./model train --data "$data" --epochs 2 --shards 1 --save s1.st > s1.txt
  ./model train --data "$data" --epochs 2 --shards 8 --save s8.st > s8.txt
  # the test set's loss, evaluated as without shards (carry_lstm streams
  # its test text as rows of a whole batch), to rounding
  awk '{ for (i = 1; i < NF; i++) if ($i == "test_loss") print $(i + 1) }' s1.txt > l1.txt
  awk '{ for (i = 1; i < NF; i++) if ($i == "test_loss") print $(i + 1) }' s8.txt > l8.txt
  paste l1.txt l8.txt | awk '{ d = $1 - $2; if (d < -0.0011 || d > 0.0011) exit 1 }' ||
    fail "$model: test_loss at --shards 8 ($(cat l8.txt)) is not --shards 1's ($(cat l1.txt))"
  train --shards 8 --threads 2 --save s8t2.st
  cmp s8.st s8t2.st >/dev/null || fail "$model: --shards 8 at 2 threads differs from 1 thread"
  /usr/bin/python3 "$here/close.py" "$src" s1.st s8.st 2e-4 ||
    fail "$model: --shards 8 is not --shards 1's training"
  # a short last batch leaves shards empty (800 rows in batches of 14: 2
  # rows for 8 shards; conv_bn's 200: 4; carry_lstm's 119 windows: 7); one
  # epoch: batch norm over 2 rows amplifies rounding, and in f32 a second
  # epoch parts the runs by more than the shards do (f64 below)
  ./model train --data "$data" --epochs 1 --shards 8 --batch 14 --save e8.st >/dev/null
  ./model train --data "$data" --epochs 1 --shards 1 --batch 14 --save e1.st >/dev/null
  /usr/bin/python3 "$here/close.py" "$src" e1.st e8.st 2e-3 ||
    fail "$model: --shards 8 with empty shards is not --shards 1's training"
done
# in f64 the two differ only by the order of the additions
"$dlnc" build --f64 conv_bn.dln -o ./model64
./model64 train --data . --epochs 1 --shards 1 --save f1.st >/dev/null
./model64 train --data . --epochs 1 --shards 4 --save f4.st >/dev/null
/usr/bin/python3 "$here/close.py" "$src" f1.st f4.st 1e-10 || fail "conv_bn: f64 --shards 4 is not --shards 1"
"$dlnc" build --f64 "$here/norm_regression.dln" -o ./model64
./model64 train --data "$here" --epochs 2 --batch 14 --shards 1 --save f1.st >/dev/null
./model64 train --data "$here" --epochs 2 --batch 14 --shards 8 --save f8.st >/dev/null
/usr/bin/python3 "$here/close.py" "$src" f1.st f8.st 1e-9 ||
  fail "norm_regression: f64 --shards 8 with empty shards is not --shards 1"
echo "shards_lanes: --shards 8 trains as --shards 1, the same bits at 1 and 2 threads"
