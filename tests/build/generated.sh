#!/bin/sh
# The generated C of every model the suite builds is warning-free under
# -Wall -Wextra -Werror: the examples (f32 and f64), the gradient-check
# models (f64, as they are built), the valid sema cases and the e2e and
# robustness models (f32).  -fsyntax-only, each file once per precision
# (and the model's file also as each of the halves that dlnc build compiles).
# usage: generated.sh DLNC WORKDIR RUNTIME_DIR CC SOURCE_DIR
set -eu
dlnc=$1 work=$2 rt=$3 cc=$4 src=$5
rm -rf "$work"
mkdir -p "$work"
fail=0 count=0
# check MODEL.dln PRECISION...: emit and compile in each precision (f32, f64)
check() {
  m=$1; shift
  for prec in "$@"; do
    out="$work/$(basename "$(dirname "$m")")_$(basename "$m" .dln)_$prec"
    flag=""
    [ "$prec" = f64 ] && flag=--f64
    # shellcheck disable=SC2086 # an empty flag is no word
    if ! "$dlnc" emit $flag "$m" -o "$out" 2> "$out.log"; then
      echo "FAIL: dlnc emit $flag $m:"; cat "$out.log"; fail=1; continue
    fi
    def=""
    [ "$prec" = f64 ] && def=-DDLNC_F64
    for c in "$out"/*.c; do
      # the model's file whole, and as the two halves dlnc build compiles
      parts=""
      case $c in *_main.c) ;; *) parts="-DDL_PART=1 -DDL_PART=2" ;; esac
      for part in "" $parts; do
        # shellcheck disable=SC2086
        $cc -std=c11 -fsyntax-only -Wall -Wextra -Werror $def $part -D_GNU_SOURCE -iquote "$out" -I"$rt" "$c" ||
          { echo "FAIL: $cc: warnings in the C of $m ($prec${part:+, $part}): $c"; fail=1; }
      done
      count=$((count + 1))
    done
  done
}
for m in "$src"/examples/*.dln; do check "$m" f32 f64; done
for m in "$src"/tests/gradcheck/*.dln; do check "$m" f64; done
for m in "$src"/tests/sema/sema_valid_*.dln "$src"/tests/e2e/*.dln "$src"/tests/robust/*.dln; do check "$m" f32; done
[ $fail = 0 ] && echo "generated: $count generated files compile warning-free under $cc"
exit $fail
