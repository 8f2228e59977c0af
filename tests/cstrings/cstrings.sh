#!/bin/sh
# usage: cstrings.sh DLNC WORKDIR RUNTIME_DIR
# A model in a directory named "d??" (its absolute path is emitted as the
# data directory) reads "tri??/a \"q\" \\ é.csv": under -std=c11 an
# unescaped "??/" is a trigraph for a backslash, which would turn the path
# into another one (or, at the end of a string, into a syntax error).  Its
# lines hold "/*", "*/" and "??/" in comments, which are copied into the C.
set -eu
dlnc=$1 work=$2 rt=$3
rm -rf "$work"
dir="$work/d??"
mkdir -p "$dir/tri??" "$work/gen"
# a file name with a quote, a backslash and a UTF-8 character
data='a "q" \ é.csv'
printf '0,1,1\n1,0,1\n0,0,0\n1,1,0\n' > "$dir/tri??/$data"
cat > "$dir/m.dln" <<'DLN'
# /* not a comment opener in the C, ??/ not a line splice
model m {
  input x : f32[2]
  label y : f32[1]
  h    = relu(dense(x, 4))   # */ must not close the C comment ??/
  loss = mse(dense(h, 1), y) # é ??= ??) "quoted" \ backslash
}
train m {
  data   = csv("tri??/a \"q\" \\ é.csv")
  epochs = 1
}
DLN
cd "$work"
"$dlnc" emit "d??/m.dln" -o gen
for cc in gcc clang; do
  # -Wtrigraphs: no "??x" survives in strings or comments; -Wcomment: no "/*" inside a comment
  $cc -std=c11 -fsyntax-only -Wall -Wextra -Wtrigraphs -Wcomment -Werror -D_GNU_SOURCE \
    -Igen -I"$rt" gen/m.c gen/m_main.c
done
grep -q 'tri?\\?/a \\"q\\" \\\\ \\303\\251.csv' gen/m.c ||
  { echo "FAIL: the data path is not escaped as expected"; grep -n 'tri' gen/m.c; exit 1; }
"$dlnc" build "d??/m.dln" -o ./m
# the trainer, run from elsewhere, finds the file under its exact name
mkdir -p elsewhere && cd elsewhere
../m train > out.txt 2> err.txt || { echo "FAIL: training did not find its data"; cat err.txt; exit 1; }
grep -q 'epoch' out.txt || { echo "FAIL: no epoch line"; cat out.txt; exit 1; }
echo "cstrings: paths and source lines reach the C escaped"
