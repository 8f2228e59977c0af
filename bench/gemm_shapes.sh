#!/bin/sh
# bench/gemm_shapes.sh: list the GEMM calls of each bench/run workload's
# generated C, to derive or check bench/gemm_shapes.h (gemm_bench's table):
# per call, the generated function it is in (forward_*, backward_*, conv_*,
# attention_*), the `rows` it uses (batch or batch x positions) and the call
# with its arguments (pool, M, N, K, A, lda, B, ldb, C, ldc, accumulate).
# n is the batch; the loops around a call give its count per step.
# usage: bench/gemm_shapes.sh [DLNC] [WORKLOAD...]   (DLNC: build/dlnc)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dlnc=${1:-$root/build/dlnc}
[ $# -gt 0 ] && shift
models="mlp:examples/fashion_mlp.dln wide:bench/wide.dln cnn:examples/fashion_cnn.dln
lstm:examples/char_lstm.dln transformer:examples/char_transformer.dln
vae:examples/fashion_vae.dln gan:examples/fashion_gan.dln
autoencoder:examples/fashion_autoencoder.dln tiny:bench/tiny.dln"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in $models; do
  w=${m%%:*} f=${m#*:}
  if [ $# -gt 0 ]; then
    case " $* " in *" $w "*) ;; *) continue ;; esac
  fi
  echo "== $w ($f)"
  "$dlnc" emit "$root/$f" -o "$tmp/$w" 2>/dev/null
  # join each call's lines, then print it after its function and rows
  awk '/^(static )?void [a-z_0-9]+\(/ { fn = $0; sub(/\(.*/, "", fn); sub(/.* /, "", fn); rows = "" }
       /const int rows = / { rows = $0; sub(/^ */, "", rows) }
       /dl_gemm_[a-z_]+\(/ && !/^(static )?void/ { call = $0; while (call !~ /\);/ && (getline l) > 0) call = call " " l
         gsub(/  +/, " ", call); sub(/^ */, "", call); printf "%-24s %-24s %s\n", fn, rows, call }' \
    $(ls "$tmp/$w"/*.c | grep -v '_main\.c$') | sed 's/^/  /'
done
