#!/bin/sh
# A block with randn_like and dropout applied twice (block_sites.dln): the
# generated C must draw each application's noise at a site of its own, so
# the two applications differ (N(x) - N(x) is not zero), as torch's two
# calls of one module do.
# usage: block_sites.sh DLNC SRCDIR WORKDIR
set -eu
dlnc=$1 src=$2 work=$3
mkdir -p "$work"
"$dlnc" emit "$src/block_sites.dln" -o "$work"
c="$work/block_sites.c"
noise=$(grep -o 'dl_noise(ctx, [0-9]*' "$c" | sort -u | wc -l)
drop=$(grep -o 'dl_dropout_keep(ctx, [0-9]*' "$c" | sort -u | wc -l)
if [ "$noise" -ne 2 ] || [ "$drop" -ne 2 ]; then
  echo "FAIL: expected 2 randn_like sites and 2 dropout sites, found $noise and $drop" >&2
  exit 1
fi
echo "ok: two applications, two noise sites and two dropout sites"
