#!/bin/sh
# dlnc build --mpi without MPI: a message saying what to install, and no
# executable; and the models it refuses whatever is installed, at the
# construct with the line and a caret: carry = true (rows streamed from
# batch to batch).
# (tests/mpi trains with MPI where it is installed.)
# usage: mpi.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
printf 'model m {\n  input x : f32[2]\n  label y : f32[1]\n  p = sigmoid(dense(x, 1))\n  loss = binary_cross_entropy(p, y)\n}\n' > m.dln
if MPICC=/nonexistent/mpicc "$dlnc" build --mpi m.dln -o m.bin 2>err.txt; then
  fail "--mpi built without an mpicc"
fi
grep -q "error: --mpi: cannot get MPI's compile flags from '/nonexistent/mpicc' (install Open MPI" \
  err.txt || fail "no message: $(cat err.txt)"
[ ! -e m.bin ] || fail "an executable was left behind"
printf 'model r {\n  input x : class[8, 16]\n  label y : class[16]\n  h = gru(one_hot(x), 8, last = true, carry = true)\n  loss = cross_entropy(dense(h, 16), y)\n}\n' > r.dln
if MPICC=/nonexistent/mpicc "$dlnc" build --mpi r.dln -o r.bin 2>err.txt; then
  fail "--mpi built a model with carry = true"
fi
grep -q "^r.dln:4:[0-9]*: error: a recurrent layer with carry = true is not yet supported" err.txt ||
  fail "carry: $(cat err.txt)"
grep -q "^ *| *\^" err.txt || fail "no caret: $(cat err.txt)"
echo "mpi: --mpi without MPI says what to install; carry = true is refused at its call"
