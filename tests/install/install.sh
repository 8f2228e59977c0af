#!/bin/sh
# install.sh SRC WORK: see CMakeLists.txt here.
set -eu
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

# a copy of the sources, built and installed, then deleted with its build tree
mkdir copy
cp -R "$src/CMakeLists.txt" "$src/cmake" "$src/compiler" "$src/runtime" copy/
mkdir copy/docs && cp -R "$src/docs/man" copy/docs/
prefix=$work/prefix
cmake -S copy -B copy/build -DDLNC_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" > configure.log 2>&1 || { cat configure.log; fail "configure"; }
cmake --build copy/build -j2 > build.log 2>&1 || { tail -30 build.log; fail "build"; }
cmake --install copy/build > install.log 2>&1 || { tail -30 install.log; fail "install"; }
rm -rf copy
for f in bin/dlnc share/dlnc/runtime/dl_model.h share/dlnc/runtime/gemm.c include/dlnc/dl_model.h \
         lib/libdlnc_runtime.a lib/libdlnc_runtime.so lib/libdlnc_runtime_f64.a \
         lib/libdlnc_runtime_f64.so lib/pkgconfig/dlnc.pc lib/pkgconfig/dlnc-f64.pc \
         lib/cmake/dlnc/dlncConfig.cmake lib/cmake/dlnc/dlncConfigVersion.cmake \
         share/man/man1/dlnc.1 share/man/man1/dlnc-trainer.1; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
grep -q '^\.TH "dlnc" "1"' "$prefix/share/man/man1/dlnc.1" || fail "dlnc.1 is not a man page"

# the installed dlnc, with nothing of the checkout: its runtime is the prefix's
export DLNC_CACHE="$work/cache"
unset DLNC_RUNTIME || true
dlnc=$prefix/bin/dlnc
"$dlnc" --version > version.txt
version=$(sed -n 's/^#define DL_VERSION "\(.*\)"$/\1/p' "$src/runtime/dl_model.h")
grep -qx "dlnc $version" version.txt || fail "dlnc --version: $(cat version.txt), expected dlnc $version"
grep -q "^runtime: $prefix/bin/../share/dlnc/runtime\$" version.txt ||
  fail "the installed dlnc reads another runtime: $(cat version.txt)"
mkdir -p model/data
cp "$src/examples/xor.dln" model/
cp "$src/examples/data/xor.csv" model/data/
# the runtime prebuilt at install time: the first build compiles only the model
ls "$prefix"/lib/dlnc/prebuilt/runtime-*.a > /dev/null || fail "no prebuilt runtime in $prefix/lib/dlnc/prebuilt"
grep -q "^prebuilt: $prefix/bin/../lib/dlnc/prebuilt\$" version.txt || fail "dlnc --version: $(cat version.txt)"
"$dlnc" build -v model/xor.dln -o xor 2> build.log || { cat build.log; fail "build"; }
grep -q "reusing the prebuilt runtime $prefix/bin/../lib/dlnc/prebuilt/runtime-" build.log ||
  fail "the installed prebuilt runtime is not used: $(grep -v '^[a-z/]*cc \|^clang' build.log)"
./xor train --epochs 200 --save xor.st > train.log || { cat train.log; fail "training"; }
./xor --version | grep -q "dlnc $version, f32, CPU target native" || fail "xor --version: $(./xor --version)"

# --target: a portable level runs here; a feature this CPU lacks is refused
"$dlnc" build --target x86-64-v3 model/xor.dln -o xor_v3
./xor_v3 --version | grep -q "CPU target x86-64-v3" || fail "xor_v3 --version: $(./xor_v3 --version)"
./xor_v3 eval --load xor.st > /dev/null || fail "an x86-64-v3 trainer does not run here"
if "$dlnc" build --target pentium model/xor.dln -o bad 2> target.err; then fail "--target pentium accepted"; fi
grep -q "unknown --target 'pentium'" target.err || fail "--target pentium: $(cat target.err)"
if grep -qw fma4 /proc/cpuinfo; then
  echo "note: this CPU has FMA4; the refusal of a trainer built for it is not checked here"
else
  DLNC_CFLAGS_EXTRA=-mfma4 "$dlnc" build model/xor.dln -o xor_fma4
  if ./xor_fma4 --help > /dev/null 2> refuse.err; then fail "a trainer built for FMA4 started"; fi
  grep -q "this CPU lacks fma4" refuse.err || fail "the FMA4 trainer's refusal: $(cat refuse.err)"
fi

# embedding through pkg-config (shared) and find_package (static)
"$dlnc" emit model/xor.dln -o gen
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --modversion dlnc | grep -qx "$version" || fail "pkg-config dlnc: $(pkg-config --modversion dlnc)"
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Werror -iquote gen "$src/tests/install/app.c" gen/xor.c \
  $(pkg-config --cflags --libs dlnc) -o app_pc
LD_LIBRARY_PATH="$prefix/lib" ./app_pc xor.st > app_pc.txt || fail "app (pkg-config) failed"
printf '0,0\n0,1\n1,0\n1,1\n' | ./xor predict --load xor.st > predict.txt
diff predict.txt app_pc.txt > /dev/null || {
  # the library is compiled with other flags than the trainer: allow rounding
  paste -d' ' predict.txt app_pc.txt | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5) exit 1 }' ||
    fail "the embedded model predicts $(cat app_pc.txt | tr '\n' ' '), the trainer $(cat predict.txt | tr '\n' ' ')"
}
mkdir cm
cp "$src/tests/install/app.c" cm/
cat > cm/CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(app C)
find_package(dlnc REQUIRED)
add_executable(app app.c ${GEN}/xor.c)
target_include_directories(app PRIVATE ${GEN})
target_link_libraries(app PRIVATE dlnc::runtime_static)
CMAKE
cmake -S cm -B cm/build -DCMAKE_PREFIX_PATH="$prefix" -DGEN="$work/gen" > cm.log 2>&1 ||
  { cat cm.log; fail "find_package(dlnc)"; }
cmake --build cm/build > cmb.log 2>&1 || { cat cmb.log; fail "building with dlnc::runtime_static"; }
./cm/build/app xor.st > app_cm.txt || fail "app (find_package) failed"
cmp -s app_pc.txt app_cm.txt || fail "the static and shared runtimes predict differently"
echo "install: dlnc $version installed, relocated runtime used, trainers and embedding work"
