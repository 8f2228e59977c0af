#!/bin/sh
# How dlnc build compiles each file: under clang the model's C without
# partial and runtime unrolling (-mllvm flags) and the runtime without
# them; the runtime's cold files (trainer.c, json.c) at -O1 after -O3 and
# the hot ones (gemm.c, gemm_conv.c, data.c) at -O3 alone; under another compiler no
# -mllvm flag at all.  A stand-in compiler answers the macro query (as clang
# or as gcc) and fails every compile: -v has printed the commands by then.
# usage: optlevels.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
printf 'model m {\n  input x : f32[2]\n  label y : f32[1]\n  p = sigmoid(dense(x, 1))\n  loss = binary_cross_entropy(p, y)\n}\n' > m.dln
for kind in clang gcc; do
  cat > "fake-$kind" <<EOM
#!/bin/sh
for a in "\$@"; do
  if [ "\$a" = -dM ]; then
    [ $kind = clang ] && echo '#define __clang__ 1'
    echo '#define __GNUC__ 4'
    exit 0
  fi
done
exit 1
EOM
  chmod +x "fake-$kind"
done
fail() { echo "FAIL: $1"; cat "$log"; exit 1; }
line() { grep -- " -c [^ ]*/$1 " "$log" || fail "no compile of $1"; }
for kind in clang gcc; do
  log=$work/log-$kind.txt
  ! CC=$work/fake-$kind DLNC_CACHE=off "$dlnc" build -v m.dln -o m.bin 2> "$log" >/dev/null
  for f in m.c m_main.c; do
    if [ $kind = clang ]; then
      line $f | grep -q -- '-mllvm -unroll-allow-partial=false -mllvm -unroll-runtime=false' ||
        fail "clang compiles $f with partial unrolling"
    fi
  done
  ! grep -q -- -mllvm "$log" || [ $kind = clang ] || fail "a -mllvm flag for $kind"
  for f in gemm.c data.c trainer.c json.c; do
    ! line $f | grep -q -- -mllvm || fail "the runtime's $f without unrolling"
  done
  for f in trainer.c json.c; do line $f | grep -q -- '-O3 .* -O1 ' || fail "$f not at -O1"; done
  for f in gemm.c gemm_conv.c data.c; do ! line $f | grep -q -- ' -O1 ' || fail "$f at -O1"; done
done
echo "optlevels: model C without partial unrolling under clang, cold runtime files at -O1"
