#!/bin/sh
# usage: scale.sh DLNC WORKDIR LINES
set -u
dlnc=$1 work=$2 n=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
awk -v n="$n" 'BEGIN {
  print "model big {\n  input x : f32[4]\n  label y : f32[4]\n  h0 = x"
  for (i = 1; i < n; i++) printf "  h%d = h%d + relu(dense(h%d, 4, l2 = 0.001))\n", i, i - 1, i - 1
  printf "  loss = mse(h%d, y)\n}\ntrain big {\n  optimizer = adam(lr = 1e-3)\n}\n", n - 1
}' > big.dln
timeout 60 "$dlnc" emit big.dln -o gen
rc=$?
[ $rc = 124 ] && { echo "FAIL: $n lines took more than 60 s"; exit 1; }
[ $rc = 0 ] || { echo "FAIL: dlnc emit exited $rc"; exit 1; }
grep -q "^DL_SPLIT void forward_h$((n - 1))(" gen/big.c || { echo "FAIL: the last line has no function"; exit 1; }
echo "scale: $n lines emitted"
