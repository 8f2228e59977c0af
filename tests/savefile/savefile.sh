#!/bin/sh
# savefile.sh CASE DLNC LIN WORKDIR [TOK]
# Where checkpoints go and what a run leaves behind, from the command line:
#   targets  --save at a directory, a FIFO, /dev/null, a missing directory,
#            a name too long: refused before the first epoch; a symlink
#            followed and kept; the umask's permissions; leftovers of a
#            killed save removed; a target that turns into a directory mid-run
#   metrics  a failed metrics write: the epoch's checkpoint first, then the
#            error with its reason
#   sigpipe  stdout closed under the trainer (train | head -1): stop, save
#   hup      SIGHUP stops like SIGTERM; ignored (nohup), it stays ignored
#   predict  the training scale (0 too) and the loader's float range;
#            checkpoints holding NaN refused by eval, predict and sample
# LIN is tests/trainer's hand-written model with the LIN_RAISE hook
# (LIN_RAISE="STEP:SIGNAL" raises SIGNAL in optimiser step STEP); TOK its
# next-token model (trainer_tok).
set -u
case_name=$1
dlnc=$2
lin=$3
work=$4
tok=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
trainer_dir=$(cd "$here/../trainer" && pwd)

fail() { echo "FAIL [savefile $case_name]: $*" >&2; exit 1; }

run() { "$@" >out 2>err; rc=$?; }
show() { echo "--- stdout"; cat out; echo "--- stderr"; cat err; } >&2
expect_rc() { [ "$rc" -eq "$1" ] || { show; fail "$2: exit $rc, expected $1"; }; }
expect_in() { grep -q -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_fixed() { grep -q -F -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_not_in() { ! grep -q -e "$2" "$1" || { show; fail "$1 has '$2'"; }; }
# Checkpoint metadata: "$2" of checkpoint $1.
ckpt_meta() { grep -a -o "\"$2\":\"[^\"]*\"" "$1" | head -n 1 | cut -d'"' -f4; }
no_temp_files() {
  for f in "$1".tmp.*; do [ -e "$f" ] && fail "temporary file $f left behind"; done
  return 0
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
cd "$work" || fail "cannot enter $work"

# lin's data (200 rows: 13 batches of 16 an epoch), in the current directory.
awk -v kind=reg -v n=200 -v seed=1 -f "$trainer_dir/trainer_gen.awk" >train.csv
awk -v kind=reg -v n=50 -v seed=2 -f "$trainer_dir/trainer_gen.awk" >test.csv

# ---- targets ------------------------------------------------------------------

# refused TARGET WHY: exit 1 before any epoch, the reason given.
refused() {
  run "$lin" train --epochs 2 --save "$1"
  expect_rc 1 "--save $1"
  expect_fixed err "error: --save $1: cannot save a checkpoint there: $2"
  [ -s out ] && { show; fail "--save $1: an epoch ran before the refusal"; }
  return 0
}

case_targets() {
  mkdir adir
  refused adir "it is a directory"
  mkfifo fifo
  refused fifo "it is a FIFO, not a regular file"
  [ -p fifo ] || fail "the FIFO was replaced"
  # A character device: never /dev/null itself where a broken trainer
  # could replace it (as root), but a node of our own.
  cdev=/dev/null
  if [ "$(id -u)" -eq 0 ]; then cdev=; mknod cdev c 1 3 2>/dev/null && cdev=cdev; fi
  if [ -n "$cdev" ]; then
    refused "$cdev" "it is a character device, not a regular file"
    [ -c "$cdev" ] || fail "$cdev is no longer a character device"
  fi
  refused nodir/ck.st "directory nodir does not exist"
  long=$(printf '%0250d' 0)
  refused "$long" "the name is too long"
  ln -s adir link_to_dir
  refused link_to_dir "it is a directory"
  if [ "$(id -u)" -ne 0 ]; then
    mkdir ro && chmod 555 ro
    refused ro/ck.st "cannot create a file in directory ro"
    chmod 755 ro
  fi

  # A link is followed to the file it names, and stays a link.
  mkdir real
  ln -s real/ck.st link.st
  run "$lin" train --epochs 2 --save link.st
  expect_rc 0 "--save through a dangling link"
  [ -L link.st ] || fail "the link was replaced"
  [ -f real/ck.st ] && [ ! -L real/ck.st ] || fail "real/ck.st is not a regular file"
  run "$lin" train --epochs 3 --resume link.st --save link.st
  expect_rc 0 "--resume and --save through the link"
  [ -L link.st ] && [ "$(ckpt_meta real/ck.st epoch)" = 3 ] || fail "the link's file was not updated"

  # Permissions: 0666 less the umask, as for any new file.
  (umask 027 && exec "$lin" train --epochs 1 --save perm.st) >out 2>err || { show; fail "umask 027"; }
  [ "$(stat -c %a perm.st)" = 640 ] || fail "mode $(stat -c %a perm.st), expected 640 (umask 027)"

  # A killed save's leftover goes with the next save to the same file.
  run "$lin" train --epochs 1 --save ck.st
  printf 'partial' >ck.st.tmp.Ab12Zz
  printf 'other' >ck.st.tmp.note
  run "$lin" train --epochs 2 --resume ck.st --save ck.st
  expect_rc 0 "resume over a leftover"
  [ -e ck.st.tmp.Ab12Zz ] && fail "the leftover of a killed save is still there"
  [ -e ck.st.tmp.note ] || fail "a file not named like a temporary file was removed"
  rm -f ck.st.tmp.note

  # The target turns into a directory while the run saves every step: the
  # save fails with the reason, and no "previous checkpoint is unchanged".
  "$lin" train --epochs 100000 --save mid.st --save-every 1 >out 2>err &
  pid=$!
  i=0
  until [ -f mid.st ]; do
    i=$((i + 1))
    [ $i -gt 600 ] && { kill -KILL $pid; fail "no checkpoint after 30 s"; }
    sleep 0.05
  done
  until mkdir mid.st 2>/dev/null; do rm -f mid.st; done
  wait $pid
  rc=$?
  expect_rc 1 "a directory in place of the checkpoint"
  expect_fixed err "error: cannot write checkpoint mid.st: it is a directory"
  expect_not_in err "unchanged"
  expect_not_in err "is kept"
  no_temp_files mid.st
  no_temp_files ck.st
}

# ---- metrics ----------------------------------------------------------------------

case_metrics() {
  # /dev/full: every write fails with ENOSPC.
  run "$lin" train --epochs 3 --save ck.st --metrics /dev/full
  expect_rc 1 "metrics to a full disk"
  expect_fixed err "error: writing metrics to /dev/full failed: No space left on device; the checkpoint of epoch 1 was saved to ck.st"
  expect_in out "^epoch 1/3 "
  [ "$(ckpt_meta ck.st epoch)" = 1 ] || fail "the epoch's checkpoint was not saved before the error"
  run "$lin" train --epochs 3 --metrics /dev/full
  expect_rc 1 "metrics to a full disk, no --save"
  expect_fixed err "error: writing metrics to /dev/full failed: No space left on device; nothing was saved (no --save)"
  # A place that cannot take metrics: refused before training.
  mkdir mdir
  run "$lin" train --epochs 3 --save ck2.st --metrics mdir
  expect_rc 1 "metrics to a directory"
  expect_fixed err "cannot open mdir for the metrics: Is a directory"
  [ -s out ] && { show; fail "an epoch ran before the refusal"; }
  [ -e ck2.st ] && fail "a checkpoint was written"
  return 0
}

# ---- SIGPIPE ------------------------------------------------------------------------

case_sigpipe() {
  run "$lin" train --epochs 2 --save straight.st
  expect_rc 0 "2 epochs straight"
  # SIGPIPE at an exact step (20: 7 of 13 batches into epoch 2).
  LIN_RAISE=20:13 "$lin" train --epochs 2 --save p.st >out 2>err
  rc=$?
  expect_rc 141 "SIGPIPE in step 20"
  expect_in err "^interrupted at epoch 2, step 20: saved p.st\$"
  [ "$(ckpt_meta p.st step)" = 20 ] || fail "checkpoint at step $(ckpt_meta p.st step), expected 20"
  run "$lin" train --epochs 2 --resume p.st --save resumed.st
  expect_rc 0 "resume after SIGPIPE"
  cmp straight.st resumed.st || fail "SIGPIPE + resume != 2 epochs straight"
  # A real pipe whose reader goes away after the first line.  Each epoch
  # saves (with fsync), so 100000 epochs outlast head by far.
  { "$lin" train --epochs 100000 --save pipe.st 2>err; echo $? >rc.txt; } | head -n 1 >out
  rc=$(cat rc.txt)
  expect_rc 141 "train | head -n 1"
  expect_in out "^epoch 1/100000 "
  expect_in err "^interrupted at epoch [0-9]*, step [0-9]*: saved pipe.st\$"
  step=$(sed -n 's/^interrupted at epoch [0-9]*, step \([0-9]*\):.*/\1/p' err)
  [ "$(ckpt_meta pipe.st step)" = "$step" ] || fail "the message says step $step, the checkpoint $(ckpt_meta pipe.st step)"
  no_temp_files pipe.st
}

# ---- SIGHUP ---------------------------------------------------------------------------

case_hup() {
  LIN_RAISE=20:1 "$lin" train --epochs 2 --save h.st >out 2>err
  rc=$?
  expect_rc 129 "SIGHUP in step 20"
  expect_in err "^interrupted at epoch 2, step 20: saved h.st\$"
  [ "$(ckpt_meta h.st epoch)/$(ckpt_meta h.st step_in_epoch)" = 1/7 ] || fail "SIGHUP position"
  # Under nohup (SIGHUP ignored) the run goes on.
  LIN_RAISE=5:1 env --ignore-signal=HUP "$lin" train --epochs 2 --save n.st >out 2>err
  rc=$?
  expect_rc 0 "SIGHUP ignored at start"
  [ "$(ckpt_meta n.st epoch)" = 2 ] || fail "the run with SIGHUP ignored did not finish"
}

# ---- predict, eval, sample -------------------------------------------------------------

# nan_copy FROM TO: FROM with its last value (4 bytes) a float NaN and its
# CRC key renamed, so only the value is wrong.
nan_copy() {
  sed 's/"crc32"/"crcXX"/' "$1" >"$2"
  size=$(wc -c <"$2")
  printf '\000\000\300\177' | dd of="$2" bs=1 seek=$((size - 4)) conv=notrunc 2>/dev/null
}

case_predict() {
  run "$lin" train --epochs 1 --save lin.st
  expect_rc 0 "train lin"
  # Past float range: refused as the training loader refuses it.
  printf '1,2,3\n1,-1e39,3\n' | "$lin" predict --load lin.st >out 2>err
  rc=$?
  expect_rc 1 "predict of -1e39"
  expect_fixed err "stdin:2:2: error: -1e+39 is out of float range"
  printf '1,2,1e39,0,0\n' >big.csv
  cat train.csv big.csv >train2.csv
  mkdir -p big && cp train2.csv big/train.csv && cp test.csv big/
  run "$lin" train --data big --epochs 1
  expect_rc 1 "training on 1e39"
  expect_fixed err "1e+39 is out of float range"

  # scale = 0: training saw only zeros, so must predict.
  cat >s0.dln <<'EOF'
model s0 {
  input  x : f32[3]
  label  y : f32[2]
  pred   = dense(x, 2)
  loss   = mse(pred, y)
}
train s0 {
  data      = csv("train.csv", header = true, scale = 0)
  batch     = 16
  epochs    = 1
  optimizer = sgd(lr = 0.01)
}
EOF
  "$dlnc" build s0.dln -o ./s0 >build.log 2>&1 || { cat build.log >&2; fail "dlnc build s0.dln"; }
  run ./s0 train --save s0.st
  expect_rc 0 "train s0"
  printf '0,0,0\n1,2,3\n-7,1e20,5\n' | ./s0 predict --load s0.st >out 2>err
  rc=$?
  expect_rc 0 "predict s0"
  [ "$(sort -u out | wc -l)" -eq 1 ] || { show; fail "with scale = 0 every row must predict alike"; }

  # NaN weights: every command that loads refuses them.
  nan_copy lin.st nan.st
  run "$lin" eval --load nan.st
  expect_rc 1 "eval of a NaN checkpoint"
  expect_in err "^error: --load: checkpoint nan.st: tensor '[a-z._]*' holds nan values"
  printf '1,2,3\n' | "$lin" predict --load nan.st >out 2>err
  rc=$?
  expect_rc 1 "predict with a NaN checkpoint"
  expect_in err "holds nan values"
  [ -s out ] && { show; fail "predict printed output"; }
  mkdir -p corpus
  i=0
  while [ $i -lt 200 ]; do echo abcdefg; i=$((i + 1)); done >corpus/a.txt
  run "$tok" train --epochs 1 --save tok.st
  expect_rc 0 "train tok"
  nan_copy tok.st toknan.st
  run "$tok" sample --load toknan.st --length 5
  expect_rc 1 "sample from a NaN checkpoint"
  expect_in err "holds nan values"
  run "$tok" sample --load tok.st --length 5
  expect_rc 0 "sample from the good checkpoint"
}

case "$case_name" in
  targets | metrics | sigpipe | hup | predict) "case_$case_name" ;;
  *) fail "unknown case" ;;
esac
echo "ok [savefile $case_name]"
