#!/bin/sh
# Same seed and threads => bit-identical weights; 2 epochs straight and
# 1 epoch + save + resume to 2 => bit-identical weights; and the GEMMs never
# split a reduction across threads, so 1 and 2 threads agree too; for a
# model with dropout, one with normalisation layers (running statistics) and
# a convolutional one.
# usage: determinism.sh DLNC WORKDIR
set -eu
dlnc=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
cd "$work"
sh "$here/conv_images.sh" 320 > conv_images.csv
cp "$here/conv_images.dln" .   # beside its data
for model in dropout_regression norm_regression conv_images; do
  data=$here
  [ "$model" = conv_images ] && data=$PWD
  "$dlnc" build "$data/$model.dln" -o ./model
  train() { ./model train --data "$data" "$@" >/dev/null; }
  train --epochs 2 --threads 1 --save straight1.st
  train --epochs 2 --threads 1 --save straight2.st
  train --epochs 1 --threads 1 --save half.st
  train --epochs 2 --threads 1 --resume half.st --save resumed.st
  train --epochs 2 --threads 2 --save threads2.st
  cmp straight1.st straight2.st || { echo "FAIL: $model: two identical runs differ"; exit 1; }
  cmp straight1.st resumed.st || { echo "FAIL: $model: 1 epoch + resume differs from 2 epochs"; exit 1; }
  cmp straight1.st threads2.st || { echo "FAIL: $model: --threads 2 differs from --threads 1"; exit 1; }
  train --epochs 2 --threads 1 --seed 7 --save seed7.st
  if cmp -s straight1.st seed7.st; then echo "FAIL: $model: --seed has no effect"; exit 1; fi
done
echo "determinism: identical checkpoints across repeats, resume and thread counts"
