#!/bin/sh
# Batch norm under micro-shards (train --shards S, SyncBatchNorm's meaning):
# each shard's statistics are the global batch's, so a run at --shards 8
# ends within rounding of the run at --shards 1 (per-shard statistics, over
# 4 to 7 rows, would be far off); its bits do not depend on the thread
# count; a short last batch with empty shards trains; in f64 the two runs
# agree to 1e-10; for dense features
# (norm_regression) and a convolution's channels with spectral norm
# (conv_bn).  tests/mpi checks the same over 1, 2, 4 and 8 processes.
# usage: shards_batch_norm.sh DLNC WORKDIR SOURCE_DIR
set -eu
dlnc=$1 work=$2 src=$3
here=$src/tests/e2e
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
sh "$here/conv_images.sh" 200 > conv_images.csv
cp "$here/conv_bn.dln" .
for model in norm_regression conv_bn; do
  data=$here
  [ "$model" = conv_bn ] && data=$PWD
  "$dlnc" build "$data/$model.dln" -o ./model
  train() { ./model train --data "$data" --epochs 2 "$@" >/dev/null; }
  train --shards 1 --save s1.st
  train --shards 8 --save s8.st
  train --shards 8 --threads 2 --save s8t2.st
  cmp s8.st s8t2.st >/dev/null || fail "$model: --shards 8 at 2 threads differs from 1 thread"
  /usr/bin/python3 "$here/close.py" "$src" s1.st s8.st 2e-4 ||
    fail "$model: --shards 8 is not --shards 1's training"
  # the last batch of 2 rows leaves 6 of 8 shards empty
  train --shards 8 --batch 8 --save e8.st
  train --shards 1 --batch 8 --save e1.st
  /usr/bin/python3 "$here/close.py" "$src" e1.st e8.st 2e-3 ||
    fail "$model: --shards 8 with empty shards is not --shards 1's training"
done
# in f64 the two differ only by the order of the additions
"$dlnc" build --f64 conv_bn.dln -o ./model64
./model64 train --data . --epochs 1 --shards 1 --save f1.st >/dev/null
./model64 train --data . --epochs 1 --shards 4 --save f4.st >/dev/null
/usr/bin/python3 "$here/close.py" "$src" f1.st f4.st 1e-10 || fail "conv_bn: f64 --shards 4 is not --shards 1"
echo "shards_batch_norm: --shards 8 trains as --shards 1, the same bits at 1 and 2 threads"
