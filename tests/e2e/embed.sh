#!/bin/sh
# A user's C program includes NAME.h from `dlnc emit`, links the runtime,
# loads the trainer's checkpoint, and predicts what `BIN predict` predicts.
# usage: embed.sh DLNC WORKDIR RUNTIME_DIR CC
set -eu
dlnc=$1 work=$2 rt=$3 cc=$4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/gen"
cd "$work"
"$dlnc" build "$here/dropout_regression.dln" -o ./model
./model train --data "$here" --epochs 2 --save w.st >/dev/null
"$dlnc" emit "$here/dropout_regression.dln" -o gen
$cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -Igen -I"$rt" "$here/embed.c" gen/dropout_regression.c \
  $(ls "$rt"/*.c) -o embed -lz -lm -lpthread
./embed w.st > embedded.txt
printf '0.1,0.2,0.3,0.4\n-1,0,1,0.5\n' | ./model predict --load w.st > trainer.txt
diff trainer.txt embedded.txt || { echo "FAIL: the embedded model predicts differently"; exit 1; }
echo "embed: the API predicts exactly what the trainer predicts"
