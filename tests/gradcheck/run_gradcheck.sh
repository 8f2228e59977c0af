#!/bin/sh
# Builds a model in double precision and checks every parameter's gradient
# against central finite differences (the trainer's `gradcheck` command).
# A line "# gradcheck-args: ..." in the model adds options (e.g. --mode eval).
# With --f32: a float32 build, at gradcheck's f32 defaults (eps, tol and the
# rounding floor), which a correct model must pass too.
# usage: run_gradcheck.sh DLNC MODEL.dln WORKDIR [--f32]
set -eu
dlnc=$1 model=$2 work=$3
name=$(basename "$model" .dln)
args=$(sed -n 's/^# gradcheck-args: //p' "$model")
mkdir -p "$work"
if [ "${4-}" = --f32 ]; then
  "$dlnc" build -Wno-all "$model" -o "$work/$name"
  "$work/$name" gradcheck
  exit
fi
"$dlnc" build --f64 "$model" -o "$work/$name"
# shellcheck disable=SC2086 # the extra options are words
"$work/$name" gradcheck --batch 3 --tol 1e-6 $args
