#!/bin/sh
# A trainer built with `dlnc build --debug` (ASan + UBSan) trains, saves,
# resumes, evaluates and predicts without a sanitizer report, also over
# micro-shards in lanes; the f64 debug build passes the gradient check.
# usage: sanitizers.sh DLNC WORKDIR
set -eu
dlnc=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
cd "$work"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for model in dropout_regression norm_regression; do
  "$dlnc" build --debug "$here/$model.dln" -o ./model_debug
  ./model_debug train --data "$here" --epochs 1 --threads 2 --save a.st >/dev/null
  ./model_debug train --data "$here" --epochs 2 --threads 2 --resume a.st --save b.st >/dev/null
  ./model_debug eval --data "$here" --load b.st
  printf '0.1,0.2,0.3,0.4\n-1,0,1,0.5\n' | ./model_debug predict --load b.st
  "$dlnc" build --debug --f64 "$here/$model.dln" -o ./model_debug64
  ./model_debug64 gradcheck --batch 2
done
./model_debug64 gradcheck --batch 2 --mode eval
# micro-shards side by side in lanes (trainer_lanes.c: a thread and a
# context each), with empty shards in the last batch: batch norm's sums
# over the shards (norm_regression), two updates, carried state
./model_debug train --data "$here" --epochs 1 --threads 2 --shards 8 --batch 14 >/dev/null
"$dlnc" build --debug "$here/updates_bn.dln" -o ./updates_bn_debug
./updates_bn_debug train --data "$here" --epochs 1 --threads 2 --shards 4 --batch 14 >/dev/null
sh "$here/carry_text.sh" 200 > text.bin
cp "$here/carry_lstm.dln" .
"$dlnc" build --debug carry_lstm.dln -o ./carry_debug
./carry_debug train --data . --epochs 1 --threads 2 --shards 4 >/dev/null
# two updates (a GAN's steps): train, resume, eval, predict; their gradients
"$dlnc" build --debug "$here/gan_updates.dln" -o ./gan_debug
./gan_debug train --data "$here" --epochs 1 --threads 2 --save g1.st >/dev/null
./gan_debug train --data "$here" --epochs 2 --threads 2 --resume g1.st --save g2.st >/dev/null
./gan_debug eval --data "$here" --load g2.st
printf '0.1,0.2,0.3,0.4\n' | ./gan_debug predict --load g2.st
"$dlnc" build --debug --f64 "$here/../gradcheck/updates.dln" -o ./updates_debug64
./updates_debug64 gradcheck --batch 2
echo "sanitizers: clean"
