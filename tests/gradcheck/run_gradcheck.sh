#!/bin/sh
# Builds a model in double precision and checks every parameter's gradient
# against central finite differences (the trainer's `gradcheck` command).
# usage: run_gradcheck.sh DLNC MODEL.dln WORKDIR
set -eu
dlnc=$1 model=$2 work=$3
name=$(basename "$model" .dln)
mkdir -p "$work"
"$dlnc" build --f64 "$model" -o "$work/$name"
"$work/$name" gradcheck --batch 3 --tol 1e-6
