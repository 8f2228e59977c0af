#!/bin/sh
# The runtime cache: an entry is verified before use (a truncated or garbage
# library is rebuilt, with a warning, instead of breaking every later link),
# its key includes what the compiler predefines (the CPU's features under
# -march=native), an unusable cache directory means a build without it and
# a warning, and two builds sharing a cold cache both succeed and leave one
# good entry.
# usage: cache.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# (What is tested is dlnc itself, sanitized in a DLNC_SANITIZE build; the
# trainers it builds here are not, and -O0 keeps their builds short.)
export DLNC_CFLAGS_EXTRA=-O0
cat > m.dln <<'EOM'
model m {
  input x : f32[2]
  label y : f32[1]
  p = sigmoid(dense(x, 1))
  loss = binary_cross_entropy(p, y)
}
EOM
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# build CACHE LOG: builds m with the cache CACHE, -v on LOG; fails the test if the build fails
build() {
  DLNC_CACHE=$1 "$dlnc" build -v m.dln -o m.bin 2> "$2" || { bad "build with cache $1 failed:"; cat "$2"; }
  [ -x m.bin ] || bad "no executable"
  rm -f m.bin
}
runtime_compiles() { grep -c -- "-c .*/gemm\.c" "$1" || true; }
entries() { ls "$1" | grep -c '^runtime-[0-9a-f]*\.a$' || true; }

# cold, then warm: the second build compiles no runtime file
build c1 cold.log
build c1 warm.log
[ "$(runtime_compiles cold.log)" = 1 ] || bad "the cold build did not compile the runtime"
[ "$(runtime_compiles warm.log)" = 0 ] || bad "the warm build compiled the runtime again"
lib=$(ls c1/runtime-*.a)
[ -f "$lib.sum" ] || bad "no stamp beside $lib"

# damaged entries: truncated, then the same size of garbage; each is noticed,
# rebuilt and replaced, and the build after that is warm again
for damage in truncate garbage; do
  size=$(wc -c < "$lib")
  if [ $damage = truncate ]; then head -c 1000 "$lib" > t && mv t "$lib"
  else head -c "$size" /dev/urandom > t && mv t "$lib"; fi
  build c1 damaged.log
  grep -q "warning: the cached runtime .* is damaged" damaged.log || bad "$damage: no warning"
  [ "$(runtime_compiles damaged.log)" = 1 ] || bad "$damage: the runtime was not rebuilt"
  build c1 after.log
  [ "$(runtime_compiles after.log)" = 0 ] || bad "$damage: the entry was not repaired"
  if grep -q warning after.log; then bad "$damage: still warns"; cat after.log; fi
done
[ "$(entries c1)" = 1 ] || bad "c1 holds $(entries c1) entries"

# another CPU (or compiler): the same command line, other predefined macros
cat > cc.sh <<EOM
#!/bin/sh
exec ${CC:-cc} -D__DLNC_TEST_CPU_\${DLNC_TEST_CPU}__ "\$@"
EOM
chmod +x cc.sh
CC=./cc.sh DLNC_TEST_CPU=a build c1 cpu.log
[ "$(entries c1)" = 2 ] || bad "two CPUs share one cache entry"
[ "$(runtime_compiles cpu.log)" = 1 ] || bad "another CPU's build linked this one's runtime"

# an unusable cache directory: a warning, and the build succeeds without it
touch afile
for dir in afile; do
  build "$dir" unusable.log
  grep -q "warning: cannot use the build cache $dir" unusable.log || { bad "cache $dir: no warning"; cat unusable.log; }
  if grep -q "error" unusable.log; then bad "cache $dir: an error"; cat unusable.log; fi
done

# two builds at once on a cold cache
DLNC_CACHE=c3 "$dlnc" build m.dln -o m1.bin 2> p1.log & p1=$!
DLNC_CACHE=c3 "$dlnc" build m.dln -o m2.bin 2> p2.log & p2=$!
wait $p1 || { bad "concurrent build 1"; cat p1.log; }
wait $p2 || { bad "concurrent build 2"; cat p2.log; }
[ -x m1.bin ] && [ -x m2.bin ] || bad "a concurrent build left no executable"
[ "$(entries c3)" = 1 ] || bad "c3 holds $(entries c3) entries"
[ "$(ls c3 | grep -c tmp)" = 0 ] || bad "temporary files left in the cache: $(ls c3)"
build c3 after.log
[ "$(runtime_compiles after.log)" = 0 ] || bad "the concurrent builds' entry is not usable"
if grep -q warning after.log; then bad "the concurrent builds' entry is damaged"; cat after.log; fi

[ $fail = 0 ] && echo "cache: entries verified and repaired, keyed by the compiler's macros; unusable caches skipped; concurrent builds agree"
exit $fail
