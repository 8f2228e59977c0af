#!/bin/sh
# A model trained by two updates (tests/e2e/gan_updates.dln: a GAN's
# discriminator and generator steps, with noise, dropout, batch norm,
# clipping, and a parameter large enough to be updated by several threads):
# the same seed gives bit-identical checkpoints, for 1 and 2 threads; 2
# epochs straight equal 1 epoch + resume, and equal a run resumed from a
# checkpoint taken in the middle of an epoch (every optimiser's state and
# the batch counter restored); metrics name each update's loss.
# usage: updates.sh DLNC WORKDIR
set -eu
dlnc=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
cd "$work"
rm -f ./*.st ./*.jsonl
fail() { echo "FAIL: $*"; exit 1; }
"$dlnc" build "$here/gan_updates.dln" -o ./gan
# autodiff per update, restricted to its parameters: the generator's step
# differentiates through d (dense_dx) but computes no weight gradient of d,
# and the discriminator's step none of fake's
"$dlnc" emit --ir "$here/gan_updates.dln" -o ./ir > ir.txt
grep -q 'dense_dx.*group=d bwd update=1' ir.txt || fail "no gradient through d in update 1"
grep -q 'dense_dw.*group=fake bwd update=1' ir.txt || fail "no gradient of fake.weight in update 1"
if grep -q 'dense_d[wb].*group=d bwd update=1\|dense_d[wbx].*group=fake bwd update=0' ir.txt; then
  fail "an update computes another update's gradients: $(grep 'group=d bwd update=1\|group=fake bwd update=0' ir.txt)"
fi
# G's lines run once a batch, d's again after the discriminator's step
grep -q '^update 1 generator .*runs: d g_loss$' ir.txt || fail "update 1 runs $(grep '^update 1' ir.txt)"
train() { ./gan train --data "$here" "$@" >/dev/null; }
train --epochs 2 --threads 1 --save straight1.st --metrics m.jsonl
train --epochs 2 --threads 1 --save straight2.st
train --epochs 1 --threads 1 --save half.st
train --epochs 2 --threads 1 --resume half.st --save resumed.st
train --epochs 2 --threads 2 --save threads2.st
cmp straight1.st straight2.st || fail "two identical runs differ"
cmp straight1.st resumed.st || fail "1 epoch + resume differs from 2 epochs"
cmp straight1.st threads2.st || fail "--threads 2 differs from --threads 1"
# every line of metrics names both losses
[ "$(grep -c '"d_loss":[0-9.e+-]*,"g_loss":[0-9.e+-]*' m.jsonl)" = 2 ] ||
  fail "metrics lack d_loss and g_loss: $(cat m.jsonl)"
grep -q '"test_g_loss"' m.jsonl || fail "metrics lack test_g_loss"
# the checkpoint holds both optimisers' state under torch's names
for t in d.weight.exp_avg d_2.bias.exp_avg_sq fake.weight.mu_product fake_2.weight.exp_avg; do
  grep -q "\"$t\"" straight1.st || fail "the checkpoint has no $t"
done
# a checkpoint from the middle of epoch 1 (--save-every 1, copied while the
# run is stopped), resumed to the end, ends as the straight run did
./gan train --data "$here" --epochs 2 --threads 1 --save every.st --save-every 1 >/dev/null 2>&1 &
pid=$!
i=0
until [ -f every.st ]; do
  i=$((i + 1))
  [ $i -gt 600 ] && { kill -KILL $pid; fail "no checkpoint after 30 s"; }
  sleep 0.05
done
sleep 0.1
kill -STOP $pid
cp every.st mid.st
kill -CONT $pid
wait $pid || fail "the run saving every step failed"
train --epochs 2 --threads 1 --resume mid.st --save from_mid.st --metrics from_mid.jsonl
cmp straight1.st from_mid.st || fail "resuming mid.st ($(grep -ao '"step":"[0-9]*"' mid.st | head -1)) differs from 2 epochs straight"
# and reports the same losses for the epoch it resumed in (each update's
# sum so far is in the checkpoint)
losses() { grep '"epoch"' "$1" | sed 's/,"seconds".*//'; }
[ "$(losses m.jsonl)" = "$(losses from_mid.jsonl)" ] ||
  fail "the resumed run reports other losses: $(losses from_mid.jsonl) for $(losses m.jsonl)"
cmp straight1.st every.st || fail "saving every step changed the result"
# a diverging run names the update's loss or tensor; --lr sets every update's rate
if ./gan train --data "$here" --epochs 1 --lr 1e30 >out.txt 2>err.txt; then fail "--lr 1e30 did not diverge"; fi
grep -q "error: training diverged at epoch 1, step [0-9]*: .* (lr 1e+30)" err.txt ||
  fail "divergence message: $(cat err.txt)"
./gan train --data "$here" --epochs 1 --lr 1e-5 --metrics lr.jsonl >/dev/null
grep '"epoch"' lr.jsonl | grep -q '"lr":1e-05' || fail "--lr did not set the rate: $(cat lr.jsonl)"
# a parameter no update trains is left alone, with a warning
sed 's/^  s      = sum(x)$/  s      = sum(x)\n  aux    = dense(x, 3)/' "$here/gan_updates.dln" > aux.dln
"$dlnc" check aux.dln 2>warn.txt || fail "aux.dln: $(cat warn.txt)"
grep -q "warning: no update trains 'aux.weight'" warn.txt || fail "no warning about aux: $(cat warn.txt)"
echo "updates: identical checkpoints across repeats, resume (also mid-epoch) and thread counts"
