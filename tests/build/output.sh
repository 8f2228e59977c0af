#!/bin/sh
# Where `dlnc build -o` and `dlnc emit -o` write: never over the model's
# source, a runtime file, a directory or a non-regular file; a symbolic link
# stays a link to the new executable; a failed build leaves the old one.
# usage: output.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2 rt=$3
rm -rf "$work"
mkdir -p "$work/src"
cd "$work"
cp -r "$rt" rt
export DLNC_RUNTIME="$work/rt"
# (What is tested is dlnc itself, sanitized in a DLNC_SANITIZE build; the
# trainers it builds here are not, and -O0 keeps their builds short.)
export DLNC_CFLAGS_EXTRA=-O0
model() {
  printf 'model %s {\n  input x : f32[2]\n  label y : f32[1]\n  p = sigmoid(dense(x, 1))\n  loss = binary_cross_entropy(p, y)\n}\n' "$1"
}
model m > m.dln
fail=0
bad() { echo "FAIL: $*"; fail=1; }
listing() { find . -mindepth 1 ! -name err.txt -printf '%p %s %T@\n' | sort | md5sum; }
# refused WHAT MESSAGE CMD...: CMD fails (exit 1) with MESSAGE on stderr, and changes nothing
refused() {
  what=$1 msg=$2; shift 2
  before=$(listing)
  set +e; timeout 60 "$@" 2> err.txt; status=$?; set -e
  [ $status = 1 ] || bad "$what: exit $status, not 1"
  grep -q "$msg" err.txt || { bad "$what: no message '$msg'"; cat err.txt; }
  [ "$(listing)" = "$before" ] || bad "$what: files changed"
}
cp m.dln m.orig
refused "-o the source" "is the model's source file" "$dlnc" build m.dln -o m.dln
refused "-o the source by another name" "is the model's source file" "$dlnc" build m.dln -o ./src/../m.dln
ln m.dln hard.dln
refused "-o a hard link to the source" "is the model's source file" "$dlnc" build m.dln -o hard.dln
ln -s m.dln soft.dln
refused "-o a symbolic link to the source" "is the model's source file" "$dlnc" build m.dln -o soft.dln
refused "-o a directory" "is a directory" "$dlnc" build m.dln -o src
refused "-o a runtime file" "is a file of the runtime" "$dlnc" build m.dln -o rt/json.h
mkfifo fifo
refused "-o a FIFO" "not a regular file" "$dlnc" build m.dln -o fifo
cmp -s m.dln m.orig || bad "the source changed"

# a symbolic link: the file it names is replaced, the link stays
echo old > target.bin
ln -s target.bin link.bin
"$dlnc" build m.dln -o link.bin
[ -L link.bin ] || bad "the link was replaced"
./target.bin --help > /dev/null || bad "the link's target is not the executable"

# a failed build leaves the previous executable as it was, and no temporary file
cp target.bin keep.bin
if CC=false "$dlnc" build m.dln -o target.bin 2> err.txt; then bad "CC=false succeeded"; fi
cmp -s target.bin keep.bin || bad "a failed build changed the executable"
[ -z "$(ls -a | grep dlnc-)" ] || bad "temporary files left: $(ls -a | grep dlnc-)"

# emit: not over the source (a model named m in m.c, emitted into its own directory)
model m > src/m.c
cp src/m.c m.c.orig
refused "emit over the source" "is the model's source file" "$dlnc" emit src/m.c -o src
cmp -s src/m.c m.c.orig || bad "emit overwrote its source"
mkdir -p gen/m.h
refused "emit over a directory" "is a directory" "$dlnc" emit m.dln -o gen
"$dlnc" emit m.dln -o gen2 && [ -f gen2/m.c ] && [ -f gen2/m.h ] && [ -f gen2/m_main.c ] || bad "emit into a new directory"
[ $fail = 0 ] && echo "output: -o never replaces an input or a non-file; links stay; failures keep the old executable"
exit $fail
