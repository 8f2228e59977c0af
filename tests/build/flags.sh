#!/bin/sh
# DLNC_CFLAGS_EXTRA reaches the compiler whole, however long its flags and
# however many: a 3000-character -D stays one flag with its value, and the
# 200th of 200 flags is passed.  (A C file checks the define's value.)
# usage: flags.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
printf 'model m {\n  input x : f32[2]\n  label y : f32[1]\n  p = sigmoid(dense(x, 1))\n  loss = binary_cross_entropy(p, y)\n}\n' > m.dln
long=$(printf 'x%.0s' $(seq 3000))
many=$(for i in $(seq 198); do printf ' -DDLNC_TEST_FLAG_%d' "$i"; done)
# the first flag makes the check (-D is applied before -include): the long
# value must be the 3000 x's, and the last define must be there
cat > check.h <<EOM
#if !defined(DLNC_TEST_LONG)
#error "the long flag of DLNC_CFLAGS_EXTRA is lost"
#endif
#if !defined(DLNC_TEST_FLAG_198)
#error "flag 198 of DLNC_CFLAGS_EXTRA is lost"
#endif
static const char dlnc_test_long[] = DLNC_TEST_LONG;
_Static_assert(sizeof dlnc_test_long == 3001, "DLNC_TEST_LONG was cut");
EOM
export DLNC_CFLAGS_EXTRA="${DLNC_CFLAGS_EXTRA:-} -O0 -include $work/check.h -DDLNC_TEST_LONG=\"$long\" $many"
"$dlnc" build -v m.dln -o m.bin 2> log.txt || { echo "FAIL: the build failed"; tail -c 2000 log.txt; exit 1; }
./m.bin --help > /dev/null
echo "flags: DLNC_CFLAGS_EXTRA reaches the compiler whole"
