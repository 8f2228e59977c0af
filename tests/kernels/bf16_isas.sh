#!/bin/sh
# The bf16 GEMMs (runtime/gemm_bf16.c, and gemm.c and gemm_conv.c in that mode) compile
# warning-free under -Wall -Wextra -Werror for every code path, whatever this
# machine runs: the native vdpbf16ps kernel (AVX512_BF16, which must then be
# in the object code), AVX-512 and AVX2 emulation, and portable C.
# usage: bf16_isas.sh CC RUNTIME_DIR WORKDIR
set -eu
cc=$1 rt=$2 work=$3
mkdir -p "$work"
fail=0
for isa in "-mavx512f -mavx512bf16 -mavx512vl" "-mavx512f -mavx512bw -mavx512vl" "-mavx2 -mfma" "-mno-avx"; do
  # shellcheck disable=SC2086 # the flags are words
  $cc -std=c11 -O2 $isa -Wall -Wextra -Werror -D_GNU_SOURCE -DDL_GEMM_BF16 -I"$rt" \
    -S "$rt/gemm_bf16.c" -o "$work/bf16.s" || { echo "FAIL: $cc $isa: gemm_bf16.c"; fail=1; continue; }
  # shellcheck disable=SC2086
  $cc -std=c11 -fsyntax-only $isa -Wall -Wextra -Werror -D_GNU_SOURCE -DDL_GEMM_BF16 -I"$rt" \
    "$rt/gemm.c" "$rt/gemm_conv.c" || { echo "FAIL: $cc $isa: gemm.c, gemm_conv.c"; fail=1; }
  n=$(grep -c vdpbf16ps "$work/bf16.s" || true)
  case $isa in
    *avx512bf16*) [ "$n" -gt 0 ] || { echo "FAIL: $cc $isa: no vdpbf16ps in the native kernel"; fail=1; } ;;
    *) [ "$n" = 0 ] || { echo "FAIL: $cc $isa: vdpbf16ps without avx512bf16"; fail=1; } ;;
  esac
done
[ $fail = 0 ] && echo "bf16_isas: $cc compiles every bf16 path warning-free (native kernel: vdpbf16ps)"
exit $fail
