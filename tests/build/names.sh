#!/bin/sh
# Every model name that check accepts builds and trains, however hostile to C:
# names of system and runtime headers (a generated NAME.h must not shadow
# them), of libc, runtime and generated identifiers, C keywords, the longest
# name allowed.  The names check refuses are refused at the model's name.
# Also: the README's embedding command compiles a model named after a
# system and a runtime header.
# usage: names.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2 rt=$3
rm -rf "$work"
mkdir -p "$work/data"
cd "$work"
# (What is tested is dlnc itself, sanitized in a DLNC_SANITIZE build; the
# trainers it builds here are not, and -O0 keeps their builds short.)
export DLNC_CFLAGS_EXTRA=-O0
printf '0,0,0\n0,1,1\n1,0,1\n1,1,0\n' > data/xor.csv
model() { # NAME [LAYER]: a tiny model; LAYER names its hidden layer
  cat <<EOM
model $1 {
  input x : f32[2]
  label y : f32[1]
  ${2:-h} = tanh(dense(x, 4))
  p = sigmoid(dense(${2:-h}, 1))
  loss = binary_cross_entropy(p, y)
}
train $1 {
  data = csv("data/xor.csv")
  batch = full
  epochs = 1
  optimizer = sgd(lr = 0.1)
}
EOM
}
long=$(printf 'm%.0s' $(seq 128))
fail=0
for name in math stdio stdint string zlib pthread kernels rng json jv data gemm trainer main int \
    static forward backward compute_grads loss_only tensors ST ACT_PER_SAMPLE EOF NULL errno free X "$long"; do
  model "$name" > "$name.dln"
  if ! "$dlnc" build "$name.dln" -o "./$name.bin" 2> "$name.log" || ! "./$name.bin" train >> "$name.log" 2>&1; then
    echo "FAIL: model '$name' does not build and train:"; cat "$name.log"; fail=1
  fi
  rm -f "$name.bin"
done

# refused, each with a diagnostic at the model's name (line 1, column 7)
refuse() { # FILE MESSAGE-PART
  if "$dlnc" check "$1" 2> err.txt; then echo "FAIL: check accepts $1"; fail=1; return; fi
  grep -q "^$1:1:7: error: .*$2" err.txt || { echo "FAIL: $1:"; cat err.txt; fail=1; }
}
for name in dl dl_ctx dl_model dl_ops DL_X Dl _x __builtin; do
  model "$name" > "bad_$name.dln"
  refuse "bad_$name.dln" "'"
done
model "m$long" > too_long.dln
refuse too_long.dln "at most 128 characters"
model "$long$long" > too_long.dln   # 256 characters: NAME_main.c would be too long a file name
refuse too_long.dln "at most 128 characters"
model forward new > clash.dln
refuse clash.dln "forward_new would clash with the forward function of layer 'new'"

# the README's embedding command's include flags, with the model named after
# system and runtime headers (tests/e2e/embed.sh links and runs that command)
for name in math stdio kernels; do
  mkdir -p "gen_$name"
  "$dlnc" emit "$name.dln" -o "gen_$name"
  printf '#include <math.h>\n#include <stdio.h>\n#include "%s.h"\nint main(void) { %s_free(%s_new(1, 0, 0)); return (int)sqrt(0.0) + %s_INPUT_SIZE + (stdout == 0); }\n' \
    "$name" "$name" "$name" "$(echo "$name" | tr a-z A-Z)" > "app_$name.c"
  for src in "app_$name.c" "gen_$name/$name.c" "gen_$name/${name}_main.c"; do
    cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -D_GNU_SOURCE -iquote "gen_$name" -I"$rt" "$src" ||
      { echo "FAIL: embedding a model named $name: $src"; fail=1; }
  done
done
[ $fail = 0 ] && echo "names: every accepted model name builds and trains; the others are refused at the name"
exit $fail
