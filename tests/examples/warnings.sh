#!/bin/sh
# The generated C of an example compiles warning-free (-Wall -Wextra -Werror)
# under both gcc and clang, in f32 and f64.
# usage: warnings.sh DLNC MODEL.dln WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 model=$2 work=$3 rt=$4
name=$(basename "$model" .dln)
mkdir -p "$work"
"$dlnc" emit "$model" -o "$work"
for cc in gcc clang; do
  for prec in "" -DDLNC_F64; do
    for src in "$work/$name.c" "$work/${name}_main.c"; do
      $cc -std=c11 -O2 -Wall -Wextra -Werror $prec -D_GNU_SOURCE -I"$work" -I"$rt" -c "$src" -o "$work/out.o"
    done
  done
done
echo "$name: generated C is warning-free under gcc and clang"
