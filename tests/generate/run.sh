#!/bin/sh
# `BIN sample` of a model with a generator (a binding `sample` of noise and
# parameters): the IDX file (header, size, values mapped back through the
# data's scale), the PNG grid (signature, size, pixels: pngcheck.py), the
# same files for a seed and others for another, the shapes refused, and
# clear errors for bad options, outputs and checkpoints.  The text models'
# `sample` is tests/trainer's trainer_tok.
# usage: run.sh DLNC SRCDIR WORKDIR
set -eu
dlnc=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
/usr/bin/python3 "$src/../unsup/gen.py" .
fail=0
bad() { echo "FAIL: $*"; fail=1; }
size() { wc -c < "$1" | tr -d ' '; }
header() { od -An -tx1 -N16 "$1" | tr -d ' \n'; }
# fails CMD...: CMD must exit 1 or 2 with a message in err.txt matching $want
fails() {
  if "$@" > out.txt 2> err.txt; then bad "'$*' succeeded"; return; fi
  grep -q -- "$want" err.txt || { bad "'$*': no '$want' in:"; cat err.txt; }
}
for m in gen levels square notimage; do "$dlnc" build "$src/$m.dln" -o $m 2>/dev/null; done
./gen train --data . --save gen.st > /dev/null
./gen sample --load gen.st --count 10 --out s.idx > out.txt
grep -q "wrote 10 samples of 28 x 28 to s.idx and s.png" out.txt || { bad "gen sample:"; cat out.txt; }
[ "$(header s.idx)" = 000008030000000a0000001c0000001c ] || bad "IDX header $(header s.idx)"
[ "$(size s.idx)" = $((16 + 10 * 784)) ] || bad "IDX size $(size s.idx)"
/usr/bin/python3 "$src/pngcheck.py" s.png s.idx $((4 * 29 + 1)) $((3 * 29 + 1)) || fail=1
# the same seed (the train block's, 5), the same files; another, others
./gen sample --load gen.st --count 10 --out again > /dev/null
cmp s.idx again && cmp s.png again.png || bad "two runs with one seed differ"
./gen sample --load gen.st --count 10 --out s5.idx --seed 5 > /dev/null
cmp s.idx s5.idx || bad "--seed 5 differs from the default seed 5"
./gen sample --load gen.st --count 10 --out s6.idx --seed 6 > /dev/null
if cmp -s s.idx s6.idx; then bad "--seed 6 draws what seed 5 does"; fi
# chunks of 3 (4 steps of noise): still 10 images, other draws per chunk
./gen sample --load gen.st --count 10 --batch 3 --threads 2 --out c.idx > /dev/null
[ "$(size c.idx)" = "$(size s.idx)" ] || bad "chunked IDX size $(size c.idx)"
# FILE's extension is the last name's: a dot in a directory is not one
mkdir d.v1
./gen sample --load gen.st --count 2 --out d.v1/x > /dev/null
[ -f d.v1/x ] && [ -f d.v1/x.png ] || bad "--out d.v1/x: $(ls d.v1)"
# known values: 0.5 / (1/100) = 50, 3 clamps to 255, -1 to 0; [2, 12] images
./levels train --data . --save levels.st > /dev/null
./levels sample --load levels.st --count 3 --out lv.idx > /dev/null
[ "$(header lv.idx)" = 0000080300000003000000020000000c ] || bad "levels header $(header lv.idx)"
want=$(awk 'BEGIN { for (i = 0; i < 6; i++) printf "32323232ffffffff00000000" }')
[ "$(od -An -tx1 -j16 lv.idx | tr -d ' \n')" = "$want" ] || bad "levels values $(od -An -tx1 -j16 lv.idx)"
/usr/bin/python3 "$src/pngcheck.py" lv.png lv.idx $((2 * 13 + 1)) $((2 * 3 + 1)) || fail=1
# [1, H, W] samples, a labelled model: train and eval unchanged, sample works
./square train --data . --save sq.st > sq.txt
grep -q test_acc sq.txt || bad "square: no test_acc: $(cat sq.txt)"
./square sample --load sq.st --count 1 --out sq > /dev/null
[ "$(header sq)" = 00000803000000010000000500000007 ] || bad "[1, 5, 7] header $(header sq)"
/usr/bin/python3 "$src/pngcheck.py" sq.png sq 9 7 || fail=1
# errors
want="expected an integer in \[1, 1000000\], got '0'"; fails ./gen sample --load gen.st --count 0 --out e.idx
want="got '1000001'"; fails ./gen sample --load gen.st --count 1000001 --out e.idx
want="--count N is required"; fails ./gen sample --load gen.st --out e.idx
want="--out FILE is required"; fails ./gen sample --load gen.st --count 2
want="directory $work/nodir does not exist"; fails ./gen sample --load gen.st --count 2 --out "$work/nodir/e.idx"
want="cannot write $work: it is a directory"; fails ./gen sample --load gen.st --count 2 --out "$work"
want="the PNG grid would be written over the IDX file"; fails ./gen sample --load gen.st --count 2 --out e.png
want="saved from model 'levels', but this is model 'gen'"; fails ./gen sample --load levels.st --count 2 --out e.idx
want="unknown option '--length'"; fails ./gen sample --load gen.st --count 2 --out e.idx --length 3
./notimage train --data . --save ni.st > /dev/null
want="its 'sample' has shape \[3, 4, 4\], which is not an image"; fails ./notimage sample --load ni.st --count 2 --out e.idx
# a model with neither a generator nor tokens says so, whatever the options
"$dlnc" build "$src/../unsup/ae.dln" -o ae
want="model 'ae' from .*ae.dln cannot sample: its inputs are real values, not tokens; sample needs a next-token model (x : class\[T, V\], y : class\[T, V\]) or a generator (a binding 'sample' of noise and parameters)"
fails ./ae sample --load gen.st --count 2 --out e.idx
ls e.* e 2>/dev/null && bad "a failed sample left files"
[ $fail = 0 ] && echo "generate: passed"
exit $fail
