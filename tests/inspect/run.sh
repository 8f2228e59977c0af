#!/bin/sh
# run.sh DLNC SRC WORK [--update]: see CMakeLists.txt here.
set -eu
dlnc=$1 src=$2 work=$3
here=$src/tests/inspect
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
cd "$src"

for m in fashion_mlp norms; do
  "$dlnc" summary "examples/$m.dln" > "$work/$m.txt"
  if [ "${4:-}" = --update ]; then cp "$work/$m.txt" "$here/$m.txt"; fi
  diff -u "$here/$m.txt" "$work/$m.txt" || fail "dlnc summary examples/$m.dln differs from tests/inspect/$m.txt"
  # the rows' parameters add up to the total line
  awk '/^-+$/ { part++; next }
       part == 1 { gsub(",", "", $NF); sum += $NF }
       /^parameters:/ { t = $2; gsub(",", "", t); if (t != sum) { print "rows " sum " total " t; exit 1 } }' \
    "$work/$m.txt" || fail "$m: the rows do not add up to the total"
done
# fashion_mlp: 784-256-128-10 with biases, as torch counts it
want=$((784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10))
got=$(sed -n 's/^parameters: \([0-9,]*\) .*/\1/p' "$work/fashion_mlp.txt" | tr -d ,)
[ "$got" = "$want" ] || fail "fashion_mlp: $got parameters, torch's nn.Linear layers have $want"

command -v dot > /dev/null || fail "Graphviz's dot is missing (scripts/setup.sh installs graphviz)"
for f in examples/*.dln; do
  b=$(basename "$f" .dln)
  "$dlnc" graph "$f" -o "$work/$b.dot" || fail "dlnc graph $f"
  dot -Tsvg "$work/$b.dot" -o "$work/$b.svg" || fail "dot rejects the graph of $f"
  "$dlnc" graph --backward "$f" > "$work/${b}_bwd.dot" || fail "dlnc graph --backward $f"
  dot -Tsvg "$work/${b}_bwd.dot" -o "$work/${b}_bwd.svg" || fail "dot rejects the backward graph of $f"
  grep -q 'style="dashed' "$work/${b}_bwd.dot" || fail "$f: --backward shows no gradient op"
  if grep -q 'style="dashed' "$work/$b.dot"; then fail "$f: the forward graph shows gradient ops"; fi
done
for p in h1.weight h1.bias h2.weight h2.bias logits.weight logits.bias; do
  grep -q "label=\"$p\\\\n" "$work/fashion_mlp.dot" || fail "fashion_mlp's graph lacks parameter $p"
done

# errors: an unwritable -o, a model with errors
if "$dlnc" graph examples/xor.dln -o "$work/no/such/dir/g.dot" 2> "$work/err.txt"; then
  fail "graph -o into a missing directory succeeded"
fi
grep -q "cannot write $work/no/such/dir/g.dot" "$work/err.txt" || fail "graph -o: $(cat "$work/err.txt")"
printf 'model m {\n  input x : f32[4]\n  h = dense(x, 0)\n}\n' > "$work/bad.dln"
if "$dlnc" summary "$work/bad.dln" 2> "$work/err.txt"; then fail "summary of a bad model succeeded"; fi
grep -q "bad.dln:3:" "$work/err.txt" || fail "summary's error: $(cat "$work/err.txt")"
echo "inspect: summaries match, every example's graph renders"
