#!/bin/sh
# The prebuilt runtime (`dlnc prebuild`): a build whose compiler, flags, CPU
# and runtime sources match an entry of the prebuilt directory links it and
# compiles only the model, with a cache or without one (DLNC_CACHE=off, and
# nothing is written to a cache then); prebuilding again compiles nothing.
# A build that differs (an edited runtime, other flags), DLNC_PREBUILT=off
# or a damaged entry compiles the runtime instead.  The compiler is a
# wrapper that logs what it compiles and, with FAIL_COMPILE set, fails every
# compile (after the log, the macro query still answered): the fallbacks
# are seen without compiling the runtime again.
# usage: prebuilt.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2 rt=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
unset DLNC_PREBUILT DLNC_RUNTIME || true
real=$(command -v clang || command -v cc)
cat > cc <<EOM
#!/bin/sh
for a in "\$@"; do
  [ "\$a" = -dM ] && exec "$real" "\$@"
  case "\$a" in *.c) echo "\$a" >> "$work/compiled.txt" ;; esac
done
[ -z "\${FAIL_COMPILE:-}" ] || exit 1
exec "$real" "\$@"
EOM
chmod +x cc
export CC=$work/cc
cat > m.dln <<'EOM'
model m {
  input x : f32[2]
  label y : f32[1]
  p = sigmoid(dense(x, 1))
  loss = binary_cross_entropy(p, y)
}
train m {
  data = csv("m.csv")
  batch = 4
}
EOM
printf '0,0,0\n0,1,1\n1,0,1\n1,1,0\n' > m.csv
fail=0
bad() { echo "FAIL: $*"; fail=1; }
compiled() { grep -c "/$1\$" compiled.txt || true; }

# prebuild: one library and its stamp; again: the same path, nothing compiled
: > compiled.txt
"$dlnc" prebuild -o "$work/pre" > pre1.txt || bad "dlnc prebuild failed"
lib=$(cat pre1.txt)
[ -f "$lib" ] && [ -f "$lib.sum" ] || bad "no prebuilt library and stamp: $(ls pre)"
case $lib in "$work/pre/runtime-"*.a) ;; *) bad "prebuild printed '$lib'" ;; esac
[ "$(compiled gemm.c)" = 1 ] || bad "prebuild did not compile gemm.c"
: > compiled.txt
"$dlnc" prebuild -o "$work/pre" > pre2.txt || bad "dlnc prebuild again failed"
cmp -s pre1.txt pre2.txt || bad "prebuild again printed $(cat pre2.txt)"
[ ! -s compiled.txt ] || bad "prebuild again compiled $(cat compiled.txt)"
export DLNC_PREBUILT=$work/pre

# a matching build links it, without a cache and with one (left empty of runtimes)
for cache in off "$work/cache"; do
  : > compiled.txt
  DLNC_CACHE=$cache "$dlnc" build -v m.dln -o m.bin 2> build.log || { cat build.log; bad "build (cache $cache) failed"; }
  grep -q "reusing the prebuilt runtime $lib" build.log || bad "cache $cache: the prebuilt runtime is not used: $(grep -v '^/' build.log)"
  [ "$(compiled gemm.c)" = 0 ] || bad "cache $cache: the runtime was compiled"
  [ "$(compiled m.c)" = 2 ] || bad "cache $cache: the model was not compiled: $(cat compiled.txt)"
  ./m.bin train --epochs 2 > train.log 2>&1 || { cat train.log; bad "the trainer linked with the prebuilt runtime fails"; }
  rm -f m.bin
done
[ "$(ls cache | grep -c '^runtime-')" = 0 ] || bad "the prebuilt runtime was copied into the cache: $(ls cache)"

# try LABEL: with FAIL_COMPILE the build fails; it must have tried gemm.c
try() {
  : > compiled.txt
  ! FAIL_COMPILE=1 DLNC_CACHE=off "$dlnc" build -v m.dln -o m.bin 2> "$1.log" > /dev/null ||
    bad "$1: the build succeeded with a failing compiler"
  [ "$(compiled gemm.c)" = 1 ] || bad "$1: the runtime was not compiled (the prebuilt one used?)"
}
cp -R "$rt" rt2
echo '/* edited */' >> rt2/ctx.c
DLNC_RUNTIME=$work/rt2 try edited
DLNC_CFLAGS_EXTRA=-DPREBUILT_TEST try flags
DLNC_PREBUILT=off try off
printf 'x' >> "$lib"
try damaged
grep -q "prebuilt runtime $lib is damaged" damaged.log || bad "a damaged prebuilt runtime is not reported: $(grep -v '^/' damaged.log)"

# usage
! "$dlnc" prebuild m.dln 2> usage.txt || bad "prebuild took an input file"
grep -q "unexpected argument 'm.dln'" usage.txt || bad "prebuild m.dln: $(cat usage.txt)"
[ $fail = 0 ] && echo "prebuilt: used when it matches, a fallback compile otherwise"
exit $fail
