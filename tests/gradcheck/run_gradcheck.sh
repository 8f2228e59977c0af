#!/bin/sh
# Builds a model in double precision and checks every parameter's gradient
# against central finite differences (the trainer's `gradcheck` command).
# A line "# gradcheck-args: ..." in the model adds options (e.g. --mode eval).
# usage: run_gradcheck.sh DLNC MODEL.dln WORKDIR
set -eu
dlnc=$1 model=$2 work=$3
name=$(basename "$model" .dln)
args=$(sed -n 's/^# gradcheck-args: //p' "$model")
mkdir -p "$work"
"$dlnc" build --f64 "$model" -o "$work/$name"
# shellcheck disable=SC2086 # the extra options are words
"$work/$name" gradcheck --batch 3 --tol 1e-6 $args
