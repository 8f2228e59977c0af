#!/bin/sh
# usage: names.sh DLNC WORKDIR
set -u
dlnc=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
awk 'BEGIN { for (i = 0; i < 16; i++) printf "%d,%d,%d,%d,%g\n", i % 2, i % 3, i % 5, i % 7, (i % 4) / 4 }' > names.csv
"$dlnc" build "$here/names.dln" -o ./names || fail "the model does not build"
./names train --data . --save w.st > out.txt 2> err.txt || { cat err.txt; fail "training or saving failed"; }
# the checkpoint's header (JSON) names every tensor once
for t in h.weight h.bias h_4.weight h_4.bias h_5.weight h_5.bias h_5.running_mean h_5.running_var \
         h_5.num_batches_tracked h_2.weight h_2.bias h_3.weight h_3.bias h_3_2.weight h_3_2.bias \
         penalties.weight penalties.bias; do
  n=$(head -c 65536 w.st | grep -a -o "\"$t\"" | wc -l)
  [ "$n" = 1 ] || fail "tensor $t appears $n times in the checkpoint"
done
./names eval --load w.st --data . > /dev/null 2> err.txt || { cat err.txt; fail "the checkpoint does not load"; }
echo "names: every layer has its own name"
