#!/bin/sh
# dlnc's options are whole words (`check -a` is an unknown option, not a
# file), `--` ends them, and what it reads as a .dln is bounded: a
# directory, /dev/zero, an endless FIFO, a file over 16 MiB, NUL bytes and
# binary garbage each end in a message and exit 1, soon.
# usage: inputs.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# expect STATUS MESSAGE CMD...: CMD exits STATUS within 30 s with MESSAGE on stderr
expect() {
  want=$1 msg=$2; shift 2
  set +e; timeout 30 "$@" > out.txt 2> err.txt; status=$?; set -e
  [ $status = "$want" ] || bad "$*: exit $status, not $want"
  grep -q -- "$msg" err.txt || { bad "$*: no message '$msg'"; head -c 500 err.txt; }
}
printf 'model m {\n  input x : f32[2]\n  label y : f32[1]\n  p = sigmoid(dense(x, 1))\n  loss = binary_cross_entropy(p, y)\n}\n' > ok.dln
cp ok.dln ./-dash.dln

for opt in -a -as --as --a -s -o; do
  expect 2 "unknown option '$opt'" "$dlnc" check "$opt" ok.dln
done
expect 2 "unknown option '--debu'" "$dlnc" build --debu ok.dln -o x
expect 2 "unknown option '--i'" "$dlnc" emit --i ok.dln -o gen
"$dlnc" check --ast ok.dln > /dev/null || bad "check --ast"
"$dlnc" check -- -dash.dln || bad "check -- -dash.dln"
expect 2 "unknown option '-dash.dln'" "$dlnc" check -dash.dln

expect 1 "is a directory" "$dlnc" check .
expect 1 "NUL byte" "$dlnc" check /dev/zero
printf 'model m {\0}\n' > nul.dln
expect 1 "NUL byte" "$dlnc" check nul.dln
truncate -s 17M big.dln
expect 1 "larger than 16 MiB" "$dlnc" check big.dln
mkfifo fifo
(yes 'x = 1' > fifo 2> /dev/null || true) &
expect 1 "larger than 16 MiB" "$dlnc" check fifo
wait
yes 'x = 1' | timeout 30 "$dlnc" check /dev/stdin 2> err.txt && bad "an endless pipe passed"
grep -q "larger than 16 MiB" err.txt || bad "an endless pipe: $(head -c 300 err.txt)"
# binary garbage without NUL bytes: diagnostics and exit 1, not a crash
awk 'BEGIN { srand(7); for (i = 0; i < 20000; i++) printf "%c", 1 + int(rand() * 255) }' > garbage.dln
expect 1 "error" "$dlnc" check garbage.dln
[ $fail = 0 ] && echo "inputs: options are whole words; every input is bounded and checked"
exit $fail
