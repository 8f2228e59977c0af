#!/bin/sh
# Runs one libFuzzer harness on its corpus (fuzz/corpus/NAME) plus SEEDS
# (more input files, copied to WORK/seeds).
#   run.sh replay  FUZZER CORPUS WORK [SEEDS...]   run every input once
#   run.sh SECONDS FUZZER CORPUS WORK [SEEDS...]   fuzz for SECONDS; new inputs
#                                                  go to WORK/new, crashes to WORK
# Fails on any crash, leak or timeout (5 s per input) and prints the input.
set -eu
mode=$1 fuzzer=$2 corpus=$3 work=$4
shift 4
name=$(basename "$fuzzer" | sed 's/^fuzz_//')
dict=$(cd "$(dirname "$0")/../.." && pwd)/fuzz/dict/$name.dict
rm -rf "$work/seeds" "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
mkdir -p "$work/new" "$work/seeds"
# each seed under a name of its own (two folders may both have a cls.dln):
# its parent folder's name, then its own
k=0
for f in "$@"; do
  k=$((k + 1))
  cp "$f" "$work/seeds/$k-$(basename "$(dirname "$f")")-$(basename "$f")"
done
set -- -timeout=5 -rss_limit_mb=2048 -close_fd_mask=2 -artifact_prefix="$work/" -print_final_stats=1
[ -f "$dict" ] && set -- "$@" -dict="$dict"
status=0
if [ "$mode" = replay ]; then
  "$fuzzer" "$@" -runs=0 "$corpus" "$work/seeds" || status=$?
else
  "$fuzzer" "$@" -max_total_time="$mode" "$work/new" "$corpus" "$work/seeds" || status=$?
fi
for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
  [ -f "$f" ] || continue
  echo "fuzz: found $f (reproduce: $fuzzer $f); base64:"
  base64 "$f"
done
exit $status
