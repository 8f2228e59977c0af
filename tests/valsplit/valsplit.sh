#!/bin/sh
# valsplit.sh DLNC WORKDIR: --validation, --early-stop, --save-best.
set -u
dlnc=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$@" >out 2>err; rc=$?; }
show() { echo "--- stdout"; cat out; echo "--- stderr"; cat err; } >&2
expect_rc() { [ "$rc" -eq "$1" ] || { show; fail "$2: exit $rc, expected $1"; }; }
expect_fixed() { grep -q -F -e "$2" "$1" || { show; fail "$1 lacks '$2'"; }; }
expect_not_in() { ! grep -q -F -e "$2" "$1" || { show; fail "$1 has '$2'"; }; }

rm -rf "$work" && mkdir -p "$work" && cd "$work" || fail "no work dir"
# 40 rows on a grid, label 1 when a*b > 0; rows 30..39 (the last quarter,
# the validation set of --validation 0.25) have their labels flipped.
awk 'BEGIN { for (i = 0; i < 40; i++) { a = (i * 7 % 20) / 10 - 0.95; b = (i * 13 % 20) / 10 - 0.95
             l = a * b > 0; if (i >= 30) l = 1 - l; print a "," b "," l } }' > train.csv
awk 'BEGIN { for (i = 0; i < 20; i++) { a = (i * 3 % 20) / 10 - 0.9; b = (i * 11 % 20) / 10 - 0.85
             print a "," b "," (a * b > 0) } }' > test.csv
"$dlnc" build "$here/cls.dln" -o cls >out 2>err || { show; fail "dlnc build"; }

# 1. split sizes: the last F of the rows are held out, the rest trains
run ./cls train --data . --validation 0.25 --epochs 1 --metrics m1.json
expect_rc 0 "--validation 0.25"
expect_fixed m1.json '"val_rows":10,"train_rows":30'
expect_fixed out 'val_loss '
expect_fixed out 'val_acc '
run ./cls train --data . --validation 0.1 --epochs 1 --metrics m2.json
expect_fixed m2.json '"val_rows":4,"train_rows":36'
# without --validation: no val fields
run ./cls train --data . --epochs 1 --metrics m3.json
expect_not_in m3.json 'val_loss'
expect_not_in out 'val_loss'

# 2. early stopping: the mislabelled validation set's loss rises
run ./cls train --data . --validation 0.25 --early-stop val_loss --patience 3 --save-best best.st --metrics es.json
expect_rc 0 "early stop"
expect_fixed out 'stopped early at epoch '
expect_fixed out 'val_loss has not improved for 3 epochs (best '
stop=$(sed -n 's/^stopped early at epoch \([0-9]*\):.*/\1/p' out)
best=$(sed -n 's/.*(best [0-9.]* at epoch \([0-9]*\))$/\1/p' out)
[ -n "$stop" ] && [ "$stop" -lt 40 ] || fail "did not stop early (stop '$stop')"
[ "$best" -eq $((stop - 3)) ] || fail "best epoch $best, stopped at $stop with patience 3"
# epoch records (the run's header record {"run": ...} is not one)
[ "$(grep -c '"epoch"' es.json)" -eq "$stop" ] || fail "metrics has $(grep -c '"epoch"' es.json) epochs, stopped at $stop"

# 3. --save-best holds the best epoch's checkpoint: the same as a run of
# exactly that many epochs saving with --save (byte for byte: same
# weights, position and best-so-far metadata)
run ./cls train --data . --validation 0.25 --early-stop val_loss --patience 3 --epochs "$best" --save at_best.st
expect_rc 0 "run to the best epoch"
cmp -s best.st at_best.st || fail "--save-best differs from the checkpoint of epoch $best"

# 4. resume keeps the best: stop after 1 epoch past the best, resume
run ./cls train --data . --validation 0.25 --early-stop val_loss --patience 3 --epochs $((best + 1)) \
    --save r.st --save-best rbest.st
expect_rc 0 "first part"
run ./cls train --data . --validation 0.25 --early-stop val_loss --patience 3 --resume r.st --save r.st \
    --save-best rbest.st
expect_rc 0 "resumed"
expect_fixed out "stopped early at epoch $stop: val_loss has not improved for 3 epochs"
cmp -s rbest.st best.st || fail "the resumed run's best checkpoint differs"
# resuming the stopped run trains nothing more
run ./cls train --data . --validation 0.25 --early-stop val_loss --patience 3 --resume r.st --save r.st
expect_rc 0 "resuming a run that stopped early"
expect_fixed err "stopped early at epoch $stop (val_loss has not improved for 3 epochs, --patience 3): nothing to train"
expect_not_in out 'epoch '

# the best so far is covered by the checkpoint's CRC
sed 's/"best":"val_loss/"best":"val_lozz/' best.st > bad.st
run ./cls train --data . --resume bad.st --epochs 3
expect_rc 1 "a checkpoint whose 'best' was changed"
expect_fixed err 'is corrupted'

# 5. default patience 5, and --min-delta large: nothing improves after epoch 1
run ./cls train --data . --validation 0.25 --early-stop train_loss --min-delta 100
expect_fixed out 'stopped early at epoch 6: train_loss has not improved for 5 epochs (best'
expect_fixed out 'at epoch 1)'

# 6. misuse
run ./cls train --data . --save-best b.st
expect_rc 1 "--save-best without a metric"
expect_fixed err 'nothing to judge the best epoch by'
run ./cls train --data . --early-stop val_acc
expect_rc 1 "--early-stop val_acc without a validation set"
expect_fixed err 'there is no validation set'
run ./cls train --data . --early-stop accuracy
expect_rc 2 "bad metric"
expect_fixed err 'expected val_loss, val_acc, test_loss, test_acc or train_loss'
run ./cls train --data . --validation 1
expect_rc 2 "--validation 1"
run ./cls train --data . --validation 0.99
expect_rc 1 "--validation leaving no rows"
expect_fixed err "leaves no rows to train on"
run ./cls train --data . --patience 0
expect_rc 2 "--patience 0"
# 7. the train block: validation = F, early_stop, patience (as the options)
sed -e 's/^  seed      = 1$/  seed = 1\n  validation = 0.25\n  early_stop = val_loss\n  patience = 3/' \
    "$here/cls.dln" > blk.dln
grep -q 'early_stop = val_loss' blk.dln || fail "blk.dln not made"
"$dlnc" build blk.dln -o blk >out 2>err || { show; fail "dlnc build blk.dln"; }
run ./blk train --data . --metrics blk.json
expect_rc 0 "train block settings"
expect_fixed out "stopped early at epoch $stop: val_loss has not improved for 3 epochs"
expect_fixed blk.json '"val_rows":10,"train_rows":30'
# --validation overrides the block's fraction
run ./blk train --data . --validation 0.1 --epochs 1 --metrics blk2.json
expect_fixed blk2.json '"val_rows":4,"train_rows":36'
# a separate validation set: all 40 rows train
head -n 7 test.csv > val.csv
sed -e 's/^  seed      = 1$/  seed = 1\n  validation = csv("val.csv")/' "$here/cls.dln" > sep.dln
"$dlnc" build sep.dln -o sep >out 2>err || { show; fail "dlnc build sep.dln"; }
run ./sep train --data . --epochs 1 --metrics sep.json
expect_rc 0 "separate validation set"
expect_fixed sep.json '"val_rows":7,"train_rows":40'
run ./sep train --data . --epochs 1 --save-best sb.st
expect_rc 0 "--save-best judges by val_loss of the separate set"
[ -s sb.st ] || fail "--save-best wrote nothing"
# 8. per-step schedules against torch (40 rows, batch 4: 10 steps an epoch)
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  sed -e 's/^  seed      = 1$/  seed = 1\n  schedule = one_cycle(max_lr = 0.05, pct_start = 0.25)/' "$here/cls.dln" > oc.dln
  "$dlnc" build oc.dln -o oc >out 2>err || { show; fail "dlnc build oc.dln"; }
  run ./oc train --data . --epochs 12 --metrics oc.json
  expect_rc 0 "one_cycle"
  /usr/bin/python3 "$here/sched_lr.py" oc.json one_cycle 12 10 0.02 0.05 0.25 25 1e4 || fail "one_cycle vs torch"
  sed -e 's/^  seed      = 1$/  seed = 1\n  schedule = cosine(per_step = true)/' "$here/cls.dln" > cs.dln
  "$dlnc" build cs.dln -o cs >out 2>err || { show; fail "dlnc build cs.dln"; }
  run ./cs train --data . --epochs 7 --metrics cs.json
  expect_rc 0 "cosine per step"
  /usr/bin/python3 "$here/sched_lr.py" cs.json cosine 7 10 0.02 || fail "cosine per step vs torch"
  # plateau on the rising validation loss; resumed half-way, the same rates
  sed -e 's/^  seed      = 1$/  seed = 1\n  validation = 0.25\n  schedule = plateau(factor = 0.5, patience = 1, min_lr = 0.004)/' \
      "$here/cls.dln" > pl.dln
  "$dlnc" build pl.dln -o pl >out 2>err || { show; fail "dlnc build pl.dln"; }
  run ./pl train --data . --epochs 12 --metrics pl.json
  expect_rc 0 "plateau"
  /usr/bin/python3 "$here/sched_lr.py" pl.json plateau 12 10 0.02 0.5 1 val_loss 0.004 || fail "plateau vs torch"
  run ./pl train --data . --epochs 6 --save pl.st
  run ./pl train --data . --epochs 12 --resume pl.st --metrics pl2.json
  expect_rc 0 "plateau resumed"
  # epoch records only (each run starts with a header record)
  [ "$(grep '"epoch"' pl.json | cut -d, -f1 | tail -n 6; grep '"epoch"' pl.json | grep -o '"lr":[^}]*' | tail -n 6)" = \
    "$(grep '"epoch"' pl2.json | cut -d, -f1; grep '"epoch"' pl2.json | grep -o '"lr":[^}]*')" ] ||
    fail "a resumed plateau run's rates differ"
  run ./cls train --data . --epochs 1
  sed -e 's/^  seed      = 1$/  seed = 1\n  schedule = plateau(metric = val_acc)/' "$here/cls.dln" > pl3.dln
  "$dlnc" build pl3.dln -o pl3 >out 2>err || { show; fail "dlnc build pl3.dln"; }
  run ./pl3 train --data . --epochs 1
  expect_rc 1 "plateau on val_acc without a validation set"
  expect_fixed err "schedule plateau(metric = val_acc): there is no validation set"
else
  echo "valsplit: no torch (/usr/bin/python3): schedule parity skipped"
fi
echo "valsplit: ok"
