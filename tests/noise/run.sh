#!/bin/sh
# Noise in a trained model (randn_like, rand_like): for one seed, training
# with 1 and 2 threads saves byte-identical checkpoints (each draw is a hash
# of seed, step, site and element, never of which thread drew it), and two
# runs with one seed are identical; a model whose noise is left out trains
# differently (the noise is drawn and used).
# usage: run.sh DLNC SRCDIR WORKDIR
set -eu
dlnc=$1 src=$2 work=$3
mkdir -p "$work"
cd "$work"
"$dlnc" build "$src/vae.dln" -o vae
sed 's/ + softplus(s) \* randn_like(mu) + 0.1 \* rand_like(mu)//' "$src/vae.dln" > plain.dln
"$dlnc" build plain.dln -o plain
data=$src/../../examples
./vae train --data "$data" --seed 3 --threads 1 --save t1.st >/dev/null
./vae train --data "$data" --seed 3 --threads 2 --save t2.st >/dev/null
./vae train --data "$data" --seed 3 --threads 2 --save t3.st >/dev/null
./plain train --data "$data" --seed 3 --threads 1 --save p.st >/dev/null
fail=0
cmp t1.st t2.st || { echo "FAIL: 1 and 2 threads differ"; fail=1; }
cmp t2.st t3.st || { echo "FAIL: two runs with one seed differ"; fail=1; }
if cmp -s t1.st p.st; then echo "FAIL: the noise changed nothing"; fail=1; fi
# randn(d...), rand(d...): the same checks, and another seed draws otherwise
"$dlnc" build "$src/shaped.dln" -o shaped
./shaped train --data "$data" --seed 3 --threads 1 --save s1.st >/dev/null
./shaped train --data "$data" --seed 3 --threads 2 --save s2.st >/dev/null
./shaped train --data "$data" --seed 4 --threads 1 --save s4.st >/dev/null
cmp s1.st s2.st || { echo "FAIL: randn(): 1 and 2 threads differ"; fail=1; }
if cmp -s s1.st s4.st; then echo "FAIL: randn(): two seeds train alike"; fail=1; fi
[ $fail = 0 ] && echo passed
exit $fail
