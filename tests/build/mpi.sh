#!/bin/sh
# dlnc build --mpi without MPI: a message saying what to install, and no
# executable.  (Every model can train data-parallel: batch norm, updates
# and carried state run in lanes, runtime/trainer_lanes.c.)
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
echo "mpi: --mpi without MPI says what to install, and leaves no executable"
