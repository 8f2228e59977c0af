#!/bin/sh
# Data-parallel training (docs/distributed.md): checkpoints of mpirun -np 1,
# 2 and 4 are byte-identical to a one-process trainer built without --mpi at
# the same --shards, for a model with dropout, a convolutional one, two with
# batch norm (statistics over the global batch: SyncBatchNorm), one with
# shared weights, one with gradient clipping and one with spectral and
# weight norm, with the gradients' buckets
# exchanged during backward or after it; evaluation shared out among the
# ranks with the numbers of one process (the epoch lines, metrics, early
# stopping and --save-best);
# resuming with another process count stays exact (an epoch boundary and the
# middle of an epoch); the errors: a process count that does not divide the
# shards, a rank that dies and one that hangs, a trainer started by
# another MPI's launcher.
# With MPI = mpich, with MPICH (dlnc build under MPICC=mpicc.mpich,
# mpirun.mpich), whatever mpicc and mpirun are: the same checks but for the
# shared weights, clipping and wrappers and the empty ranks at -np 8, which
# test dlnc's code more than MPI's, and over fewer models (one per way a
# step runs: plain, lanes, updates); without MPICH that case is skipped
# (exit 77, CTest's SKIP_RETURN_CODE), never passed.
# usage: mpi.sh DLNC WORKDIR SOURCE_DIR [MPI]
set -eu
dlnc=$1 work=$2 src=$3 mpi=${4:-default}
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
if [ "$mpi" = mpich ]; then
  if ! command -v mpicc.mpich >/dev/null || ! command -v mpirun.mpich >/dev/null; then
    echo "SKIP: MPICH is not installed (apt-get install mpich libmpich-dev; scripts/setup.sh does)"
    exit 77
  fi
  export MPICC=mpicc.mpich
  run="mpirun.mpich" # hydra: runs as root and oversubscribes without flags
# Open MPI as root needs --allow-run-as-root, and 4 ranks on 2 cores
# --oversubscribe; in a container, its shared-memory transport's
# single-copy mode (ptrace-based CMA) may be forbidden: copy in and out
elif mpirun --version 2>/dev/null | grep -q "Open MPI"; then
  run="mpirun --allow-run-as-root --oversubscribe"
  export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
else
  run="mpirun" # MPICH's hydra
fi
# the MPI the trainers link is the one asked for (MPICC is not ignored)
linked() {
  case $mpi in
  mpich) ldd "$1" | grep -q libmpich || fail "$1 does not link MPICH: $(ldd "$1")" ;;
  esac
}
same() { cmp "$1" "$2" >/dev/null || fail "$3: $1 and $2 differ"; }
full=1 steps="dropout_regression conv_images norm_regression conv_bn"
updates="gan_updates updates_bn carry_lstm"
[ "$mpi" = mpich ] && full=0 steps="dropout_regression conv_bn" updates=gan_updates

sh "$src/tests/e2e/conv_images.sh" 96 > conv_images.csv
cp "$src/tests/e2e/conv_images.dln" "$src/tests/e2e/conv_bn.dln" .

for model in $steps; do
  data=$src/tests/e2e
  case $model in conv_*) data=$PWD ;; esac
  "$dlnc" build "$data/$model.dln" -o ./plain
  # MPI's flags as the compile steps take them (MPICH's -compile-info has
  # the link flags too, which clang would call unused)
  "$dlnc" build --mpi "$data/$model.dln" -o ./mpi 2>build.txt || fail "$model: $(cat build.txt)"
  ! grep -q warning build.txt || fail "$model: dlnc build --mpi warned: $(cat build.txt)"
  linked ./mpi
  ./plain train --data "$data" --epochs 2 --shards 4 --save plain.st >/dev/null
  ./plain train --data "$data" --epochs 2 --shards 4 --threads 2 --save plain_t2.st >/dev/null
  same plain.st plain_t2.st "$model: --shards 4, 1 and 2 threads"
  for p in 1 2 4; do
    $run -np $p ./mpi train --data "$data" --epochs 2 --shards 4 --save np$p.st >out$p.txt
    same plain.st np$p.st "$model: mpirun -np $p against one process"
    # only rank 0 prints: one line per epoch
    [ "$(grep -c '^epoch' out$p.txt)" = 2 ] || fail "$model: -np $p printed $(cat out$p.txt)"
  done
  # a bucket per line (DDP-style overlap with many exchanges), and no overlap
  DLNC_MPI_BUCKET=1 $run -np 4 ./mpi train --data "$data" --epochs 2 --shards 4 \
    --save b1.st >/dev/null
  same plain.st b1.st "$model: -np 4, a bucket per line"
  DLNC_MPI_OVERLAP=0 $run -np 2 ./mpi train --data "$data" --epochs 2 --shards 4 \
    --save b0.st >/dev/null
  same plain.st b0.st "$model: -np 2 without overlap"
  # resume with another process count: 4 -> 2 at an epoch boundary
  $run -np 4 ./mpi train --data "$data" --epochs 1 --shards 4 --save half.st >/dev/null
  $run -np 2 ./mpi train --data "$data" --epochs 2 --shards 4 --resume half.st \
    --save resumed.st >/dev/null
  same plain.st resumed.st "$model: 1 epoch at -np 4, resumed at -np 2"
done

# a train block with updates (each shard's lane keeps its rows' values from
# one update to the next): a GAN with noise, batch norm, dropout and
# clipping; and an LSTM with carry = true (each lane keeps its rows' states)
sh "$src/tests/e2e/carry_text.sh" 400 > text.bin
cp "$src/tests/e2e/carry_lstm.dln" .
for model in $updates; do
  data=$src/tests/e2e
  [ "$model" = carry_lstm ] && data=$PWD
  "$dlnc" build "$data/$model.dln" -o ./plain
  "$dlnc" build --mpi "$data/$model.dln" -o ./mpi
  ./plain train --data "$data" --epochs 2 --shards 4 --save plain.st >/dev/null
  for p in 2 4; do
    $run -np $p ./mpi train --data "$data" --epochs 2 --shards 4 --save np$p.st >/dev/null
    same plain.st np$p.st "$model: mpirun -np $p against one process"
  done
done

# evaluation shared out among the ranks (eval_split.dln, 16 rows a batch
# over --shards 4: evaluation batches of 4 rows): 103 test rows are 26
# batches, the last of 3 rows, 13 + 13 at -np 2 and 6 + 7 + 6 + 7 at -np 4;
# the 30 validation rows 8 batches, the last of 2.  Every rank ends with the
# numbers of one process, bit for bit (--dist-stats' digest of every
# result), so the epoch lines, the metrics, early stopping (val_acc stalls
# after epoch 1: it stops at epoch 3) and the best and last checkpoints are
# those of one process.
rows() { # N SEED: N rows of 12 values in [0, 1) and a class from the first 4
  awk -v n="$1" -v s="$2" 'BEGIN { for (r = 0; r < n; r++) { line = ""; t = 0;
       for (i = 0; i < 12; i++) { s = (s * 1103515245 + 12345) % 2147483648; v = s / 2147483648;
         line = line sprintf("%.4f,", v); if (i < 4) t += v }
       print line (t < 1.6 ? 0 : t < 2.4 ? 1 : 2) } }'
}
rows 200 777 > eval_train.csv
rows 103 4242 > eval_test.csv
cp "$src/tests/mpi/eval_split.dln" .
"$dlnc" build eval_split.dln -o ./eplain
"$dlnc" build --mpi eval_split.dln -o ./empi
linked ./empi
eargs="--data . --shards 4 --validation 0.15 --early-stop val_acc --patience 2 --dist-stats"
untimed() { # the epoch lines and metrics without their times
  sed 's/  [0-9.]* s  [0-9]* samples\/s$//' "$1" > "$1.u"
  grep -v '^{"run"' "$2" | sed 's/"seconds":[^,]*,"samples_per_s":[^,]*,//' > "$2.u"
}
digest() { sed -n 's/^evaluation: .*; results \([0-9a-f]*\)$/\1/p' "$1"; }
rm -f m1.jsonl
./eplain train $eargs --save-best best1.st --save last1.st --metrics m1.jsonl >e1.txt 2>s1.txt
untimed e1.txt m1.jsonl
epochs=$(grep -c '^epoch' e1.txt)
[ "$epochs" = 3 ] && grep -q "^stopped early at epoch 3: val_acc" e1.txt ||
  fail "eval_split: expected an early stop at epoch 3: $(cat e1.txt)"
[ -n "$(digest s1.txt)" ] || fail "eval_split: no evaluation statistics: $(cat s1.txt)"
grep -q "rows evaluated by rank: 0:$((133 * epochs));" s1.txt || fail "one process: $(cat s1.txt)"
for p in 1 2 4; do
  rm -f m$p.jsonl.mpi
  $run -np $p ./empi train $eargs --save-best bestn.st --save lastn.st --metrics m$p.jsonl.mpi \
    >en.txt 2>sn.txt
  untimed en.txt m$p.jsonl.mpi
  same e1.txt.u en.txt.u "eval_split: -np $p's epoch lines"
  same m1.jsonl.u m$p.jsonl.mpi.u "eval_split: -np $p's metrics"
  same best1.st bestn.st "eval_split: -np $p's --save-best"
  same last1.st lastn.st "eval_split: -np $p's --save"
  [ "$(digest sn.txt)" = "$(digest s1.txt)" ] ||
    fail "eval_split: -np $p's evaluations differ from one process's: $(cat sn.txt s1.txt)"
  # each rank evaluated its share, no more (per epoch: test + validation rows)
  case $p in
  1) want="0:$((133 * epochs))" ;;
  2) want="0:$(((52 + 16) * epochs)) 1:$(((51 + 14) * epochs))" ;;
  4) want="0:$(((24 + 8) * epochs)) 1:$(((28 + 8) * epochs)) 2:$(((24 + 8) * epochs)) 3:$(((27 + 6) * epochs))" ;;
  esac
  grep -q "rows evaluated by rank: $want;" sn.txt || fail "eval_split: -np $p: want $want: $(cat sn.txt)"
done
# more ranks than batches: 2 validation rows are one batch, rank 3's alone
./eplain train --data . --shards 4 --validation 0.01 --epochs 2 --dist-stats --save v1.st \
  >/dev/null 2>s1.txt
$run -np 4 ./empi train --data . --shards 4 --validation 0.01 --epochs 2 --dist-stats \
  --save v4.st >/dev/null 2>sn.txt
same v1.st v4.st "eval_split: -np 4 with one validation batch"
[ "$(digest sn.txt)" = "$(digest s1.txt)" ] || fail "eval_split: one validation batch: $(cat sn.txt s1.txt)"
grep -q "rows evaluated by rank: 0:48 1:56 2:48 3:58;" sn.txt || fail "one validation batch: $(cat sn.txt)"

# shared weights (blocks: a block applied twice; a gradient is final only
# after its first application's backward, the last to run), gradient
# clipping (optim_adamw: the norm of the summed gradient), spectral and
# weight norm (wrappers)
for model in examples/blocks examples/optim_adamw tests/mpi/wrappers; do
  [ $full = 1 ] || break
  dir=$src/$(dirname "$model")
  "$dlnc" build "$src/$model.dln" -o ./plain
  "$dlnc" build --mpi "$src/$model.dln" -o ./mpi
  ./plain train --data "$dir" --epochs 2 --shards 4 --save plain.st >/dev/null
  DLNC_MPI_BUCKET=1 $run -np 4 ./mpi train --data "$dir" --epochs 2 --shards 4 \
    --save np4.st >/dev/null
  same plain.st np4.st "$model: -np 4, a bucket per line"
done

# the middle of an epoch: dropout_regression has 16 batches an epoch (800
# rows of 50); the run at -np 2 stopped after step 3 by its --save-every checkpoint
data=$src/tests/e2e
"$dlnc" build "$data/dropout_regression.dln" -o ./plain
"$dlnc" build --mpi "$data/dropout_regression.dln" -o ./mpi
./plain train --data "$data" --epochs 2 --shards 4 --save plain.st >/dev/null
$run -np 2 ./mpi train --data "$data" --epochs 2 --shards 4 --save-every 3 --save mid.st \
  >/dev/null
same plain.st mid.st "dropout_regression: -np 2 with --save-every"
DLNC_TEST_FAULT=die:0:4 $run -np 2 ./mpi train --data "$data" --epochs 2 --shards 4 \
  --save-every 3 --save cut.st >/dev/null 2>&1 && fail "a run whose rank 0 died succeeded"
$run -np 4 ./mpi train --data "$data" --epochs 2 --shards 4 --resume cut.st --save cut2.st \
  >/dev/null
same plain.st cut2.st "cut after step 3 at -np 2, resumed at -np 4"
# SIGTERM to rank 1 alone at its step 3: every rank stops after that step
# (the vote travels with the step's sums), rank 0 saves, all exit 143
DLNC_TEST_FAULT=signal:1:3 $run -np 2 ./mpi train --data "$data" --epochs 2 --shards 4 \
  --save sig.st >/dev/null 2>err.txt && fail "a run stopped by SIGTERM exited 0"
grep -q "interrupted at epoch 1, step 3: saved sig.st" err.txt || fail "no stop message: $(cat err.txt)"
$run -np 4 ./mpi train --data "$data" --epochs 2 --shards 4 --resume sig.st --save sig2.st \
  >/dev/null
same plain.st sig2.st "stopped by SIGTERM after step 3 at -np 2, resumed at -np 4"
# --shards 4 on one process of the MPI build is the plain build's too
./mpi train --data "$data" --epochs 2 --shards 4 --save mpi1.st >/dev/null
same plain.st mpi1.st "the MPI build run without mpirun"

# a short last batch (800 rows in batches of 14: 2 rows left for 8 shards,
# shards 3 and 7): empty shards, whole ranks without rows (0 and 2 of 4)
./plain train --data "$data" --epochs 1 --batch 14 --shards 8 --save e8.st >/dev/null
DLNC_MPI_BUCKET=1 $run -np 4 ./mpi train --data "$data" --epochs 1 --batch 14 --shards 8 \
  --save e8_4.st >/dev/null
same e8.st e8_4.st "empty shards at -np 4"

# errors: 4 processes cannot share 2 shards
if $run -np 4 ./mpi train --data "$data" --epochs 1 --shards 2 >/dev/null 2>err.txt; then
  fail "-np 4 with --shards 2 succeeded"
fi
grep -q "the process count must divide the shard count (at most 2 processes, or --shards 4 or more)" \
  err.txt || fail "no message: $(cat err.txt)"
# 3 processes divide no power of 2
if $run -np 3 ./mpi train --data "$data" --epochs 1 >/dev/null 2>err.txt; then
  fail "-np 3 succeeded"
fi
grep -q "so it must be a power of 2 too (1, 2, 4, 8, ...)" err.txt || fail "no message: $(cat err.txt)"
# shards must be a power of 2 (a balanced tree)
if ./plain train --data "$data" --epochs 1 --shards 3 >/dev/null 2>err.txt; then
  fail "--shards 3 succeeded"
fi
grep -q "error: --shards 3: must be a power of 2" err.txt || fail "no message: $(cat err.txt)"
# lanes with a short last batch: 800 rows in batches of 14 leave 2 rows for
# 8 shards, so at -np 4 and -np 8 whole ranks have no rows; they still take
# part in every statistic's sum (replaying the sums of that kind of step:
# updates_bn's second update has 2 a step, its first 3), and get the
# running statistics
for model in norm_regression updates_bn; do
  "$dlnc" build "$data/$model.dln" -o ./plain
  "$dlnc" build --mpi "$data/$model.dln" -o ./mpi
  ./plain train --data "$data" --epochs 1 --batch 14 --shards 8 --save bn8.st >/dev/null
  for p in 4 8; do
    [ $full = 1 ] || [ $p = 4 ] || break
    $run -np $p ./mpi train --data "$data" --epochs 1 --batch 14 --shards 8 --save bn8_$p.st \
      >/dev/null
    same bn8.st bn8_$p.st "$model: empty ranks at -np $p"
  done
done

# a rank that dies, and one that hangs, in a step or as an evaluation
# starts (the others wait in its gather): the job ends nonzero, within the
# timeout
for fault in die:1:2 hang:1:2 eval-die:1:1 eval-hang:1:1; do
  start=$(date +%s)
  if DLNC_MPI_TIMEOUT=3 DLNC_TEST_FAULT=$fault timeout 60 $run -np 2 ./mpi train \
      --data "$data" --epochs 2 --shards 4 >/dev/null 2>err.txt; then
    fail "$fault: the job succeeded"
  fi
  took=$(( $(date +%s) - start ))
  [ "$took" -lt 30 ] || fail "$fault: took $took s to end"
  grep -q "rank 1: DLNC_TEST_FAULT" err.txt || fail "$fault: $(cat err.txt)"
  if [ "${fault%%:*}" = hang ] || [ "${fault%%:*}" = eval-hang ]; then
    grep -q "rank 0: error: no answer from rank 1 within 3 s" err.txt || fail "$fault: $(cat err.txt)"
  fi
done
# another MPI's launcher starts processes that each find themselves alone:
# refused, not P separate trainings writing the same files
if [ "$mpi" = mpich ] && command -v mpirun.openmpi >/dev/null; then
  if OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun.openmpi --allow-run-as-root \
      --oversubscribe -np 2 ./mpi train --data "$data" --epochs 1 --shards 4 >/dev/null 2>err.txt; then
    fail "an MPICH trainer under Open MPI's mpirun succeeded"
  fi
  grep -q "rank 0: error: the launcher started 2 processes (OMPI_COMM_WORLD_SIZE), but MPI sees one" \
    err.txt || fail "no message for another MPI's launcher: $(cat err.txt)"
fi
echo "mpi ($mpi): -np 1, 2, 4 byte-identical to one process; evaluation shared out, same numbers; resume across process counts; errors end the job"
