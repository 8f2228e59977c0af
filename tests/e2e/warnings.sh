#!/bin/sh
# The compiler's and the runtime's own sources compile warning-free
# (-Wall -Wextra -Werror) under both gcc and clang; the runtime in f32 and f64.
# usage: warnings.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 build=$2
status=0
for cc in gcc clang; do
  for f in "$src"/compiler/*.c "$src"/compiler/*/*.c; do
    $cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -D_POSIX_C_SOURCE=200809L \
      -DDLNC_RUNTIME_DIR='"x"' -I"$src/compiler" -I"$src/compiler/base" -I"$src/compiler/front" \
      -I"$src/compiler/lower" -I"$src/compiler/ir" -I"$src/compiler/ops" -I"$src/compiler/passes" \
      -I"$src/compiler/emit" -I"$build" "$f" || status=1
  done
  for prec in "" -DDLNC_F64; do
    for f in "$src"/runtime/*.c; do
      $cc -std=c11 -O2 -march=native -Wall -Wextra -Werror $prec -D_GNU_SOURCE -I"$src/runtime" \
        -c "$f" -o /dev/null || status=1
    done
  done
  # dist.c's MPI half (dlnc build --mpi), where Open MPI is installed, and
  # with MPICH's headers where MPICH is (its -compile-info: the whole
  # command; its -I words)
  if mpi=$(mpicc --showme:compile 2>/dev/null); then
    # shellcheck disable=SC2086
    $cc -std=c11 -O2 -Wall -Wextra -Werror -DDL_MPI $mpi -D_GNU_SOURCE -I"$src/runtime" \
      -c "$src/runtime/dist.c" -o /dev/null || status=1
  fi
  if mpich=$(mpicc.mpich -compile-info 2>/dev/null); then
    mpich=$(printf '%s\n' $mpich | grep '^-I' | tr '\n' ' ')
    # shellcheck disable=SC2086
    $cc -std=c11 -O2 -Wall -Wextra -Werror -DDL_MPI $mpich -D_GNU_SOURCE -I"$src/runtime" \
      -c "$src/runtime/dist.c" -o /dev/null || status=1
  fi
done
[ $status = 0 ] && echo "compiler and runtime sources are warning-free under gcc and clang"
exit $status
