#!/bin/sh
# emit.sh DLNC SRCDIR            compare every model's generated C with its golden
# emit.sh DLNC SRCDIR --update   rewrite the goldens from dlnc's output (read
#                                `git diff tests/golden` before committing it)
# The models: SRCDIR/examples/*.dln and SRCDIR/tests/gradcheck/*.dln.  Their
# goldens live in c/AREA_NAME/.  The generated C names the model's data
# directory by its absolute path, so SRCDIR is written as @SRCDIR@ there:
# the goldens hold in any checkout.
set -u
dlnc=$1 src=$2 update=${3-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0 checked=0
for model in "$src"/examples/*.dln "$src"/tests/gradcheck/*.dln; do
  area=$(basename "$(dirname "$model")")
  name=$(basename "$model" .dln)
  out=$tmp/${area}_$name
  if ! "$dlnc" emit "$model" -o "$out" >"$tmp/log" 2>&1; then
    echo "FAIL: dlnc emit $model:" >&2
    cat "$tmp/log" >&2
    failed=$((failed + 1))
    continue
  fi
  for f in "$out"/*; do
    sed "s#$src#@SRCDIR@#g" "$f" >"$f.tmp" && mv "$f.tmp" "$f"
  done
  golden=$here/c/${area}_$name
  if [ "$update" = --update ]; then
    rm -rf "$golden" && mkdir -p "$here/c" && cp -r "$out" "$golden"
  elif ! diff -ru "$golden" "$out" >"$tmp/diff" 2>&1; then
    echo "FAIL: the C generated for $model differs from its golden:" >&2
    head -n 60 "$tmp/diff" >&2
    failed=$((failed + 1))
  fi
  checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || { echo "FAIL: no models found under $src" >&2; exit 1; }
if [ "$failed" -gt 0 ]; then
  echo "$failed of $checked models' generated C differ from the goldens" >&2
  echo "(after an intended change: sh tests/golden/emit.sh build/dlnc \"\$PWD\" --update)" >&2
  exit 1
fi
[ "$update" = --update ] && echo "rewrote the goldens of $checked models" ||
  echo "the generated C of $checked models matches the goldens"
