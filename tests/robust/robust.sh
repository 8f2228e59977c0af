#!/bin/sh
# robust.sh CASE DLNC LIN WORKDIR
# Robustness of trainers:
#   nonfinite    NaN/Inf in the loss, a gradient or a weight: first bad step,
#                tensor named, exit 1, the last checkpoint kept
#   save_every   --save-every N: periodic checkpoints, usage errors
#   midepoch     a signal at an exact step (LIN's LIN_RAISE hook): saved
#                mid-epoch, resumed bit-identically
#   signals      kill -INT / kill -TERM of a generated trainer, then resume
#   faultkill    SIGKILL at pseudo-random moments, 30 times; a file size
#                limit making a save fail
#   data_errors  bad data files given to a --debug (ASan+UBSan) trainer
#   ckpt_errors  bad checkpoints given to a --debug trainer
# LIN is tests/trainer's hand-written model built with LIN_RAISE_ENV: without
# LIN_RAISE in the environment it is the plain trainer_lin.
set -u
case_name=$1
dlnc=$2
lin=$3
work=$4
here=$(cd "$(dirname "$0")" && pwd)
trainer_dir=$(cd "$here/../trainer" && pwd)

fail() { echo "FAIL [$case_name]: $*" >&2; exit 1; }

# run CMD...: stdout -> out, stderr -> err, exit code -> rc
run() { "$@" >out 2>err; rc=$?; }
show() { echo "--- stdout"; cat out; echo "--- stderr"; cat err; } >&2
expect_rc() { [ "$rc" -eq "$1" ] || { show; fail "$2: exit $rc, expected $1"; }; }
expect_in() { grep -q -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_fixed() { grep -q -F -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_not_in() { ! grep -q -e "$2" "$1" || { show; fail "$1 has '$2'"; }; }
# A sanitizer report goes to stderr and would not always change the exit code.
expect_clean() {
  expect_not_in err "AddressSanitizer"
  expect_not_in err "LeakSanitizer"
  expect_not_in err "runtime error:"
}
# expect_error WHAT FILE PART...: exit 1, a message naming FILE and each PART.
expect_error() {
  what=$1 file=$2
  shift 2
  expect_rc 1 "$what"
  expect_clean
  expect_fixed err "$file"
  for part in "$@"; do expect_fixed err "$part"; done
}

# Checkpoint metadata: "$2" of checkpoint $1.
ckpt_meta() { grep -a -o "\"$2\":\"[^\"]*\"" "$1" | head -n 1 | cut -d'"' -f4; }
# Field $2 of summary line "epoch $3/..." in file $1.
summary_field() {
  awk -v key="$2" -v ep="$3" '$1 == "epoch" && index($2, ep "/") == 1 {
    for (i = 1; i < NF; i++) if ($i == key) print $(i + 1) }' "$1"
}
no_temp_files() {
  for f in "$1".tmp.*; do [ -e "$f" ] && fail "temporary file $f left behind"; done
  return 0
}

# st_file HEADER DATA: a safetensors file by hand on stdout: the length, the
# JSON header (padded to a multiple of 8), then DATA (a printf format).
st_file() {
  hdr=$1
  while [ $((${#hdr} % 8)) -ne 0 ]; do hdr="$hdr "; done
  n=${#hdr}
  printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255)))"
  printf '\000\000\000\000%s' "$hdr"
  printf "$2"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
cd "$work" || fail "cannot enter $work"

gen() { awk -v kind="$1" -v n="$2" -v seed="$3" -f "$here/gen.awk"; }
# lin's data: a header, 3 inputs, 2 targets (tests/trainer/trainer_gen.awk).
lin_data() {
  mkdir -p "$1"
  awk -v kind=reg -v n=200 -v seed=1 -f "$trainer_dir/trainer_gen.awk" >"$1/train.csv"
  awk -v kind=reg -v n=50 -v seed=2 -f "$trainer_dir/trainer_gen.awk" >"$1/test.csv"
}
csv_data() { # DIR KIND NTRAIN
  mkdir -p "$1"
  gen "$2" "$3" 1 >"$1/train.csv"
  gen "$2" 64 2 >"$1/test.csv"
}
build() { # MODEL OUT [--debug]
  "$dlnc" build "$here/$1.dln" -o "$2" ${3:-} >build.log 2>&1 || { cat build.log >&2; fail "dlnc build $1 ${3:-}"; }
}

# ---- NaN and Inf ------------------------------------------------------------

case_nonfinite() {
  lin_data lin
  run "$lin" train --data lin --epochs 1 --save ck.st
  expect_rc 0 "lin: first epoch"
  cp ck.st ck.orig
  # One input of 1e38: the loss (a double in this model) stays finite, the
  # float gradient overflows.  Row 100 of 200 lands in step 14..26 of the
  # resumed epoch; the message names the gradient, not the weight it broke.
  mkdir -p big && cp lin/test.csv big/
  awk -F, 'NR == 100 { $1 = "1e38" } { print }' OFS=, lin/train.csv >big/train.csv
  run "$lin" train --data big --epochs 3 --resume ck.st --save ck.st
  expect_rc 1 "lin: overflowing gradient"
  expect_in err "^error: training diverged at epoch 2, step [0-9]*: gradient of 'lin.weight' is -\\{0,1\\}inf (lr [0-9.e+-]*); the last checkpoint (ck.st) is kept\$"
  cmp ck.st ck.orig || fail "a diverged run changed the checkpoint"
  # With a checkpoint every step: the last good step is on disk, not the bad one.
  run "$lin" train --data big --epochs 3 --resume ck.orig --save every.st --save-every 1
  expect_rc 1 "lin: overflowing gradient, --save-every 1"
  bad=$(sed -n 's/.*step \([0-9]*\): gradient.*/\1/p' err)
  [ -n "$bad" ] || { show; fail "no step in the message"; }
  [ "$(ckpt_meta every.st step)" = $((bad - 1)) ] ||
    fail "checkpoint at step $(ckpt_meta every.st step), the last good step was $((bad - 1))"
  run "$lin" eval --load every.st --data lin
  expect_rc 0 "the last good checkpoint loads"

  # A generated trainer: an update that overflows (the loss and the
  # gradients of step 1 are finite; lr * gradient is not).
  csv_data data reg 64
  build reg ./reg
  run ./reg train --data data --epochs 1 --save g.st
  expect_rc 0 "reg: first epoch"
  cp g.st g.orig
  run ./reg train --data data --epochs 2 --resume g.st --save g.st --save-every 1 --lr 1e38
  expect_rc 1 "reg: overflowing update"
  expect_in err "^error: training diverged at epoch 2, step 9: weight '[a-z0-9]*\\.weight' is -\\{0,1\\}inf (lr 1e+38); the last checkpoint (g.st) is kept\$"
  cmp g.st g.orig || fail "a diverged generated run changed the checkpoint"
  # A loss that overflows, on a fresh run: nothing is written.
  run ./reg train --data data --epochs 50 --lr 5 --save fresh.st
  expect_rc 1 "reg: diverging loss"
  expect_in err "^error: training diverged at epoch [0-9]*, step [0-9]*: loss is [-a-z]* (lr 5); no checkpoint was written to fresh.st yet\$"
  [ -e fresh.st ] && fail "a diverged first epoch wrote a checkpoint"
  no_temp_files g.st
}

# ---- --save-every -------------------------------------------------------------

case_save_every() {
  lin_data lin
  # 200 rows in batches of 16: 13 steps an epoch.
  run "$lin" train --data lin --epochs 2 --save straight.st
  expect_rc 0 "straight"
  run "$lin" train --data lin --epochs 2 --save every.st --save-every 5
  expect_rc 0 "--save-every 5"
  cmp straight.st every.st || fail "--save-every changed the result"
  # Killed (SIGKILL, no chance to save) in step 23: the checkpoint of step
  # 20 is the last, 7 batches into epoch 2, and resumes exactly.
  LIN_RAISE=23:9 "$lin" train --data lin --epochs 2 --save k.st --save-every 5 >out 2>err
  rc=$?
  expect_rc 137 "killed by SIGKILL"
  [ "$(ckpt_meta k.st step)" = 20 ] || fail "step $(ckpt_meta k.st step), expected 20"
  [ "$(ckpt_meta k.st epoch)" = 1 ] && [ "$(ckpt_meta k.st step_in_epoch)" = 7 ] ||
    fail "position $(ckpt_meta k.st epoch)/$(ckpt_meta k.st step_in_epoch), expected 1/7"
  run "$lin" eval --load k.st --data lin
  expect_rc 0 "eval of a mid-epoch checkpoint"
  run "$lin" train --data lin --epochs 2 --resume k.st --save resumed.st
  expect_rc 0 "resume from step 20"
  cmp straight.st resumed.st || fail "killed at step 23 + resume != 2 epochs straight"
  # Usage errors.
  for bad in "--save-every 5" "--save-every -1 --save x.st" "--save-every abc --save x.st" \
    "--lr abc --save-every 1 --save x.st" "--epochs -1 --save-every 1 --save x.st" "--save-every"; do
    # shellcheck disable=SC2086
    run "$lin" train --data lin $bad
    expect_rc 2 "train $bad"
    expect_in err "^error: .*--"
  done
  expect_fixed err "--save-every needs a value"
  run "$lin" train --data lin --save-every 5
  expect_fixed err "--save-every needs --save FILE"
  run "$lin" train --help
  expect_in out "^  --save-every N "
  no_temp_files every.st
}

# ---- a signal at an exact step --------------------------------------------------

case_midepoch() {
  lin_data lin
  run "$lin" train --data lin --epochs 2 --save straight2.st
  expect_rc 0 "2 epochs straight"
  cp out straight2.out
  # SIGINT (2) in step 20, 7 of 13 batches into epoch 2: ~1.5 epochs.
  LIN_RAISE=20:2 "$lin" train --data lin --epochs 2 --save mid.st >out 2>err
  rc=$?
  expect_rc 130 "SIGINT"
  expect_in err "^interrupted at epoch 2, step 20: saved mid.st\$"
  expect_in out "^epoch 1/2 "
  expect_not_in out "^epoch 2/2 "
  [ "$(ckpt_meta mid.st epoch)/$(ckpt_meta mid.st step_in_epoch)/$(ckpt_meta mid.st batch)" = 1/7/16 ] ||
    fail "mid-epoch position $(ckpt_meta mid.st epoch)/$(ckpt_meta mid.st step_in_epoch)/$(ckpt_meta mid.st batch)"
  run "$lin" train --data lin --epochs 2 --resume mid.st --save resumed.st
  expect_rc 0 "resume mid-epoch"
  cmp straight2.st resumed.st || fail "1.5 epochs + resume != 2 epochs straight"
  [ "$(summary_field out train_loss 2)" = "$(summary_field straight2.out train_loss 2)" ] ||
    fail "the resumed epoch's train_loss differs from the straight run's"
  # Another batch size cannot continue the cut epoch.
  run "$lin" train --data lin --epochs 2 --resume mid.st --batch 10
  expect_error "mid-epoch resume with another --batch" mid.st "batches of 16 rows" "--batch 16"
  # SIGTERM (15) in the last step of epoch 1: the epoch ends, is evaluated
  # and saved, then the run stops.
  run "$lin" train --data lin --epochs 3 --save straight3.st
  LIN_RAISE=13:15 "$lin" train --data lin --epochs 3 --save t.st >out 2>err
  rc=$?
  expect_rc 143 "SIGTERM"
  expect_in err "^interrupted at epoch 1, step 13: saved t.st\$"
  expect_in out "^epoch 1/3 "
  [ "$(ckpt_meta t.st epoch)/$(ckpt_meta t.st step_in_epoch)" = 1/0 ] || fail "SIGTERM position"
  run "$lin" train --data lin --epochs 3 --resume t.st --save t3.st
  expect_rc 0 "resume after SIGTERM"
  cmp straight3.st t3.st || fail "SIGTERM + resume != 3 epochs straight"
  # A checkpoint holding a NaN (not from this trainer, which never saves
  # one) is refused before training starts.
  meta='"__metadata__":{"format":"dlnc-checkpoint-1","model":"lin","epoch":"1","step":"13","seed":"7"}'
  w='"dtype":"F32","shape":[2,3]' b='"dtype":"F32","shape":[2]'
  st_file "{$meta,\"lin.weight\":{$w,\"data_offsets\":[0,24]},\"lin.bias\":{$b,\"data_offsets\":[24,32]},\"lin.weight.momentum_buffer\":{$w,\"data_offsets\":[32,56]},\"lin.bias.momentum_buffer\":{$b,\"data_offsets\":[56,64]}}" \
    "$(printf '\\000\\000\\200\\077%.0s' 1 2 3 4)\\000\\000\\300\\177$(printf '\\000\\000\\200\\077%.0s' 1 2 3 4 5 6 7 8 9 10 11)" >nan.st
  run "$lin" eval --load nan.st --data lin
  expect_error "eval of a NaN checkpoint" nan.st "tensor 'lin.weight' holds nan values"
  run "$lin" train --data lin --epochs 2 --resume nan.st
  expect_error "a NaN in a checkpoint" nan.st "tensor 'lin.weight' holds nan values"
  # No --save: nothing to keep, but still the message and the exit code.
  LIN_RAISE=5:2 "$lin" train --data lin --epochs 2 >out 2>err
  rc=$?
  expect_rc 130 "SIGINT without --save"
  expect_in err "^interrupted at epoch 1, step 5: nothing saved (no --save)\$"
  no_temp_files mid.st
}

# ---- real signals, from outside -----------------------------------------------------

# Starts a long run in the background with SIGINT at its default (shells
# start background jobs with it ignored, which the trainer honours).
start_long() { # CKPT
  env --default-signal=INT ./wide train --data data --epochs 100000 --save "$1" --save-every 1 \
    >out 2>err &
  pid=$!
}

# Waits until checkpoint $1 reaches epoch 1 (so the signal lands in epoch 2 or later).
wait_epoch1() {
  i=0
  while [ "$(ckpt_meta "$1" epoch 2>/dev/null)" != 1 ]; do
    i=$((i + 1))
    [ $i -gt 600 ] && { kill -KILL "$pid"; fail "no checkpoint of epoch 1 after 30 s"; }
    sleep 0.05
  done
}

# $1 was interrupted; resumed to 2 more epochs it must equal a straight run.
check_resumes() { # CKPT
  e=$(ckpt_meta "$1" epoch)
  run ./wide eval --load "$1" --data data
  expect_rc 0 "eval --load $1"
  run ./wide train --data data --epochs $((e + 2)) --resume "$1" --save "$1.resumed"
  expect_rc 0 "resume $1"
  run ./wide train --data data --epochs $((e + 2)) --save "straight$((e + 2)).st"
  expect_rc 0 "straight $((e + 2)) epochs"
  cmp "straight$((e + 2)).st" "$1.resumed" || fail "$1 + resume != $((e + 2)) epochs straight"
}

case_signals() {
  csv_data data wide 1024
  build wide ./wide
  for sig in INT TERM; do
    start_long "$sig.st"
    wait_epoch1 "$sig.st"
    kill -"$sig" "$pid"
    wait "$pid"
    rc=$?
    [ "$sig" = INT ] && want=130 || want=143
    expect_rc $want "kill -$sig"
    expect_in err "^interrupted at epoch [0-9]*, step [0-9]*: saved $sig.st\$"
    step=$(sed -n 's/.*step \([0-9]*\):.*/\1/p' err)
    [ "$(ckpt_meta "$sig.st" step)" = "$step" ] || fail "$sig: the message says step $step, the checkpoint $(ckpt_meta "$sig.st" step)"
    echo "kill -$sig: stopped at step $step, $(ckpt_meta "$sig.st" step_in_epoch) batches into epoch $(($(ckpt_meta "$sig.st" epoch) + 1))"
    check_resumes "$sig.st"
    no_temp_files "$sig.st"
  done
}

# ---- fault injection: SIGKILL at pseudo-random moments ------------------------------

case_faultkill() {
  csv_data data wide 1024
  build wide ./wide
  run ./wide train --data data --epochs 1 --save ck.st
  expect_rc 0 "first epoch"
  # Saving (~2 MB, fsync'd) takes most of each step with --save-every 1, so
  # most kills land in a save.  Delays are pseudo-random but the same every
  # run (an LCG from a fixed seed).
  seed=${ROBUST_SEED:-12345}
  last=$(ckpt_meta ck.st step)
  first=$last
  i=0
  while [ $i -lt 30 ]; do
    i=$((i + 1))
    seed=$(((seed * 1103515245 + 12345) % 2147483648))
    ms=$((20 + seed / 65536 % 250))
    ./wide train --data data --epochs 100000 --resume ck.st --save ck.st --save-every 1 >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' "$ms")"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    run ./wide eval --load ck.st --data data
    expect_rc 0 "kill $i (after $ms ms): the checkpoint does not load"
    expect_in out "^test_loss [0-9.e-]*  test_acc [0-9.]*  samples 64\$"
    step=$(ckpt_meta ck.st step)
    [ "$step" -ge "$last" ] || fail "kill $i: the checkpoint went back from step $last to $step"
    last=$step
  done
  [ "$last" -gt "$first" ] || fail "30 runs made no progress (step $first)"
  cut=$(find . -name 'ck.st.tmp.*' | wc -l)
  echo "30 kills: step $first -> $last; $cut kill(s) landed in a save (temporary file left)"
  rm -f ck.st.tmp.*
  # The end of it all equals an uninterrupted run.
  e=$(($(ckpt_meta ck.st epoch) + 1))
  run ./wide train --data data --epochs $e --resume ck.st --save final.st
  expect_rc 0 "resume to $e epochs"
  run ./wide train --data data --epochs $e --save straight.st
  expect_rc 0 "straight $e epochs"
  cmp final.st straight.st || fail "30 kills + resumes != $e epochs straight"

  # A file size limit (in 512-byte blocks, far below a checkpoint): the save
  # fails, the previous checkpoint stays as it was.
  cp ck.st ck.orig
  for extra in "" "--save-every 1"; do
    # shellcheck disable=SC2086
    (ulimit -f 200 && exec ./wide train --data data --epochs $((e + 5)) --resume ck.st --save ck.st $extra) >out 2>err
    rc=$?
    expect_error "save past the file size limit $extra" ck.st "cannot write checkpoint ck.st: File too large" \
      "the previous checkpoint there is unchanged"
    cmp ck.st ck.orig || fail "a failed save changed the checkpoint"
    no_temp_files ck.st
  done
  run ./wide train --data data --epochs $((e + 1)) --resume ck.st
  expect_rc 0 "the old checkpoint still resumes"
}

# ---- data files -------------------------------------------------------------------

be32() { # N as 4 big-endian bytes
  printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"
}
idx_images() { # N ROWS COLS SEED [DIMS]: [DIMS] is the magic's last byte (3)
  printf '\000\000\010'
  printf "$(printf '\\%03o' "${5:-3}")"
  be32 "$1"; be32 "$2"; be32 "$3"
  printf "$(awk -v kind=img -v n="$1" -v seed="$4" -v px=$(($2 * $3)) -f "$here/gen.awk")"
}
idx_labels() { # N SEED
  printf '\000\000\010\001'
  be32 "$1"
  printf "$(awk -v kind=lab -v n="$1" -v seed="$2" -f "$here/gen.awk")"
}
img_set() { # DIR
  mkdir -p "$1"
  idx_images 64 4 4 1 | gzip -n >"$1/train-images.gz"
  idx_labels 64 1 | gzip -n >"$1/train-labels.gz"
  idx_images 16 4 4 2 >"$1/test-images.idx"
  idx_labels 16 2 >"$1/test-labels.idx"
}
# bad_set NAME: a copy of the good set to spoil.
bad_set() { rm -rf "$1" && cp -r good "$1"; }

case_data_errors() {
  build img ./img --debug
  build reg ./reg --debug
  img_set good
  [ "$(gzip -dc good/train-images.gz | wc -c)" -eq $((16 + 64 * 16)) ] || fail "generated images have the wrong size"
  run ./img train --data good --epochs 2 --save good.st
  expect_rc 0 "img on good data"
  expect_clean

  bad_set missing && rm missing/train-images.gz
  run ./img train --data missing
  expect_error "missing images" missing/train-images.gz "cannot open" "No such file"
  bad_set trunc && gzip -dc good/train-images.gz | head -c 500 | gzip -n >trunc/train-images.gz
  run ./img train --data trunc
  expect_error "truncated images" trunc/train-images.gz "is truncated" "promises 1040 bytes (uncompressed), found 500"
  bad_set cutgz && head -c 100 good/train-images.gz >cutgz/train-images.gz
  run ./img train --data cutgz
  expect_error "gzip stream cut short" cutgz/train-images.gz
  expect_in err "truncated\\|unexpected end"
  bad_set garbage && head -c 3000 "$dlnc" >garbage/train-labels.gz
  run ./img train --data garbage
  expect_error "not gzip, not IDX" garbage/train-labels.gz "is not an IDX labels file: bad magic"
  bad_set magic && idx_images 64 4 4 1 1 | gzip -n >magic/train-images.gz
  run ./img train --data magic
  expect_error "wrong magic" magic/train-images.gz "bad magic 0x00000801 (expected 0x00000803)"
  bad_set count && idx_labels 63 1 | gzip -n >count/train-labels.gz
  run ./img train --data count
  expect_error "count mismatch" count/train-images.gz "holds 64 samples but labels file" \
    "count/train-labels.gz holds 63 labels"
  bad_set shape && idx_images 64 5 5 1 | gzip -n >shape/train-images.gz
  run ./img train --data shape
  expect_error "wrong sample shape" shape/train-images.gz "holds 5x5 = 25 values per sample, the model's input needs 16"
  bad_set label && { printf '\000\000\010\001'; be32 16; printf '\001\002\003\007'; head -c 12 /dev/zero; } >label/test-labels.idx
  run ./img train --data label
  expect_error "label out of range" label/test-labels.idx "label 7 at index 3 is out of range for 4 classes"
  bad_set ttrunc && head -c 100 good/test-images.idx >ttrunc/test-images.idx
  run ./img eval --load good.st --data ttrunc
  expect_error "eval: truncated test images" ttrunc/test-images.idx "is truncated"

  csv_data csv reg 64
  mkdir -p c1 c2 c3 c4 c5
  cp csv/test.csv c1/
  run ./reg train --data c1
  expect_error "missing CSV" c1/train.csv "cannot open" "No such file"
  awk -F, 'NR == 3 { NF = 4 } { print }' OFS=, csv/train.csv >c2/train.csv && cp csv/test.csv c2/
  run ./reg train --data c2
  expect_error "a short row" c2/train.csv "c2/train.csv:3: expected 5 fields, found 4"
  head -c 2000 "$dlnc" >c3/train.csv && cp csv/test.csv c3/
  run ./reg train --data c3
  expect_error "binary garbage" c3/train.csv "c3/train.csv:1:1:"
  : >c4/train.csv && cp csv/test.csv c4/
  run ./reg train --data c4
  expect_error "empty" c4/train.csv "holds no data rows"
  cp csv/train.csv c5/ && awk -F, 'NR == 9 { $2 = "nan" } { print }' OFS=, csv/test.csv >c5/test.csv
  run ./reg train --data c5
  expect_error "NaN in the data" c5/test.csv "c5/test.csv:9:2: not a finite number"
}

# ---- checkpoint files --------------------------------------------------------------

overwrite() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }

case_ckpt_errors() {
  build reg ./reg --debug
  build img ./img --debug
  csv_data data reg 64
  img_set imgs
  run ./reg train --data data --epochs 1 --save good.st
  expect_rc 0 "reg: train"
  run ./img train --data imgs --epochs 1 --save img.st
  expect_rc 0 "img: train"
  size=$(wc -c <good.st)

  run ./reg eval --load absent.st --data data
  expect_error "missing" absent.st "cannot open checkpoint" "No such file"
  : >empty.st
  run ./reg eval --load empty.st --data data
  expect_error "empty" empty.st "not a safetensors file (0 bytes)"
  head -c 60 good.st >head.st
  run ./reg train --resume head.st --data data
  expect_error "cut in the header" head.st "larger than the file" "truncated"
  head -c $((size - 10)) good.st >cut.st
  run ./reg eval --load cut.st --data data
  expect_error "cut in the data" cut.st "the file is truncated"
  cp good.st flip.st && overwrite flip.st $((size - 6)) '\377'
  run ./reg train --resume flip.st --data data --epochs 2
  expect_error "a flipped data byte" flip.st "is corrupted" "CRC-32"
  cp good.st meta.st
  at=$(grep -a -b -o '"seed":"3"' meta.st | head -n 1 | cut -d: -f1)
  overwrite meta.st $((at + 8)) '4'
  run ./reg eval --load meta.st --data data
  expect_error "a changed metadata number" meta.st "is corrupted"
  cp good.st json.st && overwrite json.st 8 '['
  run ./reg eval --load json.st --data data
  expect_error "a broken header" json.st "bad JSON header"
  st_file '{"foo":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' '\000\000\200\077' >foreign.st
  run ./reg eval --load foreign.st --data data
  expect_error "foreign tensors" foreign.st "does not match model 'reg'" "missing tensor(s) 'h1.weight'" \
    "unexpected tensor(s) 'foo'"
  run ./reg train --resume foreign.st --data data
  expect_error "foreign file" foreign.st "not a dlnc checkpoint"
  run ./reg train --resume img.st --data data
  expect_error "another model" img.st "saved from model 'img', but this is model 'reg'"
  sed 's/dense(x, 8)/dense(x, 16)/' "$here/reg.dln" >reg16.dln
  "$dlnc" build reg16.dln -o ./reg16 --debug >build.log 2>&1 || { cat build.log >&2; fail "build reg16"; }
  run ./reg16 eval --load good.st --data data
  expect_error "other shapes" good.st "tensor 'h1.weight' has shape [8, 4] but model 'reg' expects [16, 4]"
  run ./reg eval --load . --data data
  expect_error "a directory" "checkpoint ." "not a regular file"
  run ./reg eval --load good.st --data data
  expect_rc 0 "the good checkpoint still loads"
  expect_clean
}

case "$case_name" in
  nonfinite | save_every | midepoch | signals | faultkill | data_errors | ckpt_errors) "case_$case_name" ;;
  *) fail "unknown case" ;;
esac
echo "ok [$case_name]"
