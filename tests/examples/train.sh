#!/bin/sh
# Builds an example and trains it; fails unless the last epoch's metric
# passes the bound.  usage: train.sh DLNC MODEL.dln WORKDIR EPOCHS METRIC OP BOUND
#   METRIC is a key of the --metrics JSON (test_acc, test_loss); OP is ge or le.
set -eu
dlnc=$1 model=$2 work=$3 epochs=$4 metric=$5 op=$6 bound=$7
name=$(basename "$model" .dln)
mkdir -p "$work"
rm -f "$work/metrics.jsonl"
"$dlnc" build "$model" -o "$work/$name"
"$work/$name" train --epochs "$epochs" --threads 2 --metrics "$work/metrics.jsonl" --save "$work/$name.safetensors"
value=$(tail -n 1 "$work/metrics.jsonl" | sed -n "s/.*\"$metric\":\([-0-9.eE+]*\).*/\1/p")
[ -n "$value" ] || { echo "no $metric in $work/metrics.jsonl"; exit 1; }
echo "$name: $metric after $epochs epochs = $value (must be $op $bound)"
awk -v v="$value" -v b="$bound" -v op="$op" 'BEGIN { ok = (op == "ge") ? (v >= b) : (v <= b); exit ok ? 0 : 1 }'
# the checkpoint evaluates to the same figure
"$work/$name" eval --load "$work/$name.safetensors"
