#!/bin/sh
# A user's C program includes NAME.h from `dlnc emit`, links the runtime,
# loads the trainer's checkpoint, and predicts what `BIN predict` predicts.
# usage: embed.sh DLNC WORKDIR RUNTIME_DIR CC
set -eu
dlnc=$1 work=$2 rt=$3 cc=$4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/gen"
cd "$work"
CC=$cc "$dlnc" build "$here/dropout_regression.dln" -o ./model
./model train --data "$here" --epochs 2 --save w.st >/dev/null
"$dlnc" emit "$here/dropout_regression.dln" -o gen
# With the compiler and flags `dlnc build` uses, the predictions are bit-identical; with
# other flags (no FMA, another vector width) they agree to float rounding.
build() { # OUT FLAGS...
  out=$1; shift
  $cc -std=c11 "$@" -Wall -Wextra -Werror -D_GNU_SOURCE -iquote gen -I"$rt" "$here/embed.c" \
    gen/dropout_regression.c $(ls "$rt"/*.c) -o "$out" -lpng -lz -lm -lpthread
}
build embed_native -O3 -march=native -fno-math-errno -fno-trapping-math
build embed_portable -O2
./embed_native w.st > embedded.txt
./embed_portable w.st > portable.txt
printf '0.1,0.2,0.3,0.4\n-1,0,1,0.5\n' | ./model predict --load w.st > trainer.txt
diff trainer.txt embedded.txt || { echo "FAIL: the embedded model predicts differently"; exit 1; }
paste -d' ' trainer.txt portable.txt | awk '
  { d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1
    if (d > 1e-5 * (m > 1 ? m : 1)) { print "FAIL: -O2 build predicts " $2 ", trainer " $1; bad = 1 } }
  END { exit bad }' || exit 1
echo "embed: the API predicts exactly what the trainer predicts (and within 1e-5 at -O2)"
