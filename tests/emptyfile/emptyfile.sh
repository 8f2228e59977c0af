#!/bin/sh
# usage: emptyfile.sh DLNC FRONT_DIR WORKDIR
set -u
dlnc=$1 front=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
cp "$front/empty.dln" "$front/comments_only.dln" "$front/bom.dln" .
for f in empty comments_only; do
  "$dlnc" check $f.dln >out 2>err || fail "check $f.dln exited $?"
  [ -s out ] || [ -s err ] && fail "check $f.dln printed something"
  "$dlnc" emit $f.dln -o gen_$f >out 2>err
  [ $? = 1 ] || fail "emit $f.dln did not exit 1"
  grep -qx "$f.dln: error: no model to build: the file has no model block (model NAME { ... })" err ||
    { cat err; fail "emit $f.dln: no clear message"; }
  [ -e gen_$f ] && fail "emit $f.dln created its output directory"
  "$dlnc" build $f.dln -o bin_$f >out 2>err
  [ $? = 1 ] || fail "build $f.dln did not exit 1"
  grep -q "no model to build" err || { cat err; fail "build $f.dln: no clear message"; }
  [ -e bin_$f ] && fail "build $f.dln wrote a binary"
done
"$dlnc" emit bom.dln -o gen_bom 2>err || { cat err; fail "a file with a byte order mark does not emit"; }
grep -q "from bom.dln" gen_bom/m.c || fail "bom.dln: no C"
echo "emptyfile: empty programs check, and emit and build refuse them clearly"
