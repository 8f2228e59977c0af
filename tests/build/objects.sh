#!/bin/sh
# The model's objects in the build cache: a second build of an unchanged
# model compiles nothing (both of its objects come from the cache, named by
# -v) and its trainer trains bit-identically to the first (and to one built
# without the cache, from the model's C compiled whole); a changed model
# is compiled again; a damaged object is noticed, rebuilt and repaired; two
# builds at once on a cold cache both succeed and leave usable entries.
# usage: objects.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2 rt=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# (-O0: the trainers' speed is not what is tested, and it keeps the builds short)
export DLNC_CFLAGS_EXTRA=-O0
data=$(cd "$rt/../examples/data" && pwd)
model() { # model HIDDEN: a small regression model
  cat <<EOM
model m {
  input x : f32[4]
  label y : f32[1]
  h = tanh(layer_norm(dense(x, $1)))
  pred = dense(h, 1)
  loss = mse(pred, y)
}
train m {
  data = csv("$data/regression_train.csv")
  test = csv("$data/regression_test.csv")
  batch = 50
  epochs = 2
  optimizer = adam(lr = 0.01)
}
EOM
}
model 16 > m.dln
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# build CACHE LOG BIN: builds m with -v; fails the test if the build fails
build() {
  DLNC_CACHE=$1 "$dlnc" build -v m.dln -o "$3" 2> "$2" || { bad "build with cache $1 failed:"; cat "$2"; }
  [ -x "$3" ] || bad "no executable $3"
}
compiles() { grep -c -- "-c .*/m\.c -o\|-c .*/m_main\.c -o" "$1" || true; }
reuses() { grep -c "reusing the cached object" "$1" || true; }
objects() { ls "$1" | grep -c '^model-[0-9a-f]*\.o$' || true; }
trains() { # trains BIN CHECKPOINT
  "./$1" train --threads 1 --save "$2" > /dev/null || bad "$1 does not train"
}

# cold, then the same model again: nothing compiled, the same training
build c1 first.log first.bin
build c1 second.log second.bin
# (m.c twice, its two halves at once, and m_main.c)
[ "$(compiles first.log)" = 3 ] || bad "the first build did not compile the model's three objects"
[ "$(grep -c -- "-DDL_PART=1 -c .*/m\.c\|-DDL_PART=2 -c .*/m\.c" first.log)" = 2 ] ||
  bad "the first build did not compile m.c as its two halves"
[ "$(compiles second.log)" = 0 ] || { bad "the second build compiled the model again"; cat second.log; }
[ "$(reuses second.log)" = 3 ] || bad "the second build did not name the three cached objects"
[ "$(objects c1)" = 3 ] || bad "c1 holds $(objects c1) model objects, not 3"
for o in c1/model-*.o; do [ -f "$o.sum" ] || bad "no stamp beside $o"; done
trains first.bin first.st
trains second.bin second.st
cmp first.st second.st || bad "the trainer linked from cached objects trains differently"
# the C compiled whole, as `dlnc emit` users do, trains the same as the halves
# (with dlnc's compiler and flags: those of its m_main.c compile)
mkdir whole
"$dlnc" emit m.dln -o whole
cc_flags=$(grep -- "-c .*/m_main\.c -o" first.log | sed 's/ -c .*//')
# shellcheck disable=SC2086 # the flags are words
{ $cc_flags -c whole/m.c -o whole/m.o && $cc_flags -c whole/m_main.c -o whole/m_main.o &&
  $cc_flags whole/m.o whole/m_main.o "$(ls c1/runtime-*.a)" -o whole.bin -lpng -lz -lm -lpthread; } ||
  bad "the whole C does not build"
trains whole.bin whole.st
cmp first.st whole.st || bad "the two halves train differently from the whole C"

# a changed model is compiled again (its main file, the same text, is not)
model 8 > m.dln
build c1 changed.log changed.bin
[ "$(compiles changed.log)" = 2 ] || bad "the changed model was not compiled again"
[ "$(objects c1)" = 5 ] || bad "c1 holds $(objects c1) model objects, not 5"
trains changed.bin changed.st
if cmp -s first.st changed.st; then bad "the changed model trains as the first did"; fi
model 16 > m.dln

# damaged objects: truncated, then the same size of garbage; each is
# noticed, rebuilt and replaced, and the build after that reuses it again
obj=$(grep "m\.c: reusing" second.log | head -1 | sed 's/.*cached object //')
[ -f "$obj" ] || bad "the log names no cached object for m.c"
for damage in truncate garbage; do
  size=$(wc -c < "$obj")
  if [ $damage = truncate ]; then head -c 100 "$obj" > t && mv t "$obj"
  else head -c "$size" /dev/urandom > t && mv t "$obj"; fi
  build c1 damaged.log damaged.bin
  grep -q "warning: the cached object .* is damaged" damaged.log || { bad "$damage: no warning"; cat damaged.log; }
  [ "$(compiles damaged.log)" = 1 ] || bad "$damage: the object was not rebuilt"
  build c1 after.log after.bin
  [ "$(compiles after.log)" = 0 ] || bad "$damage: the entry was not repaired"
  if grep -q warning after.log; then bad "$damage: still warns"; cat after.log; fi
  trains after.bin after.st
  cmp first.st after.st || bad "$damage: the repaired object trains differently"
done

# two builds at once on a cold cache
DLNC_CACHE=c2 "$dlnc" build m.dln -o p1.bin 2> p1.log & p1=$!
DLNC_CACHE=c2 "$dlnc" build m.dln -o p2.bin 2> p2.log & p2=$!
wait $p1 || { bad "concurrent build 1"; cat p1.log; }
wait $p2 || { bad "concurrent build 2"; cat p2.log; }
[ -x p1.bin ] && [ -x p2.bin ] || bad "a concurrent build left no executable"
[ "$(objects c2)" = 3 ] || bad "c2 holds $(objects c2) model objects, not 3"
[ "$(ls c2 | grep -c tmp)" = 0 ] || bad "temporary files left in the cache: $(ls c2)"
build c2 after.log after.bin
[ "$(compiles after.log)" = 0 ] || bad "the concurrent builds' objects are not reused"
if grep -q warning after.log; then bad "the concurrent builds' objects are damaged"; cat after.log; fi

# no cache: the model is compiled every time
build off off1.log off1.bin
[ "$(compiles off1.log)" = 3 ] || bad "DLNC_CACHE=off did not compile the model"

[ $fail = 0 ] && echo "objects: an unchanged model's objects come from the cache and train identically; changed and damaged ones are rebuilt; concurrent builds agree"
exit $fail
