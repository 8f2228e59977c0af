#!/bin/sh
# Builds an example and trains it; fails unless the last epoch's metric
# passes the bound.
# usage: train.sh DLNC MODEL.dln WORKDIR EPOCHS METRIC OP BOUND [NTRAIN NTEST]
#   METRIC is a key of the --metrics JSON (test_acc, test_loss); OP is ge or le.
#   NTRAIN NTEST: train on the first NTRAIN samples of the model's IDX data
#   and test on the first NTEST (the sanitizer build: every kernel still runs,
#   in a fraction of the time).
set -eu
dlnc=$1 model=$2 work=$3 epochs=$4 metric=$5 op=$6 bound=$7
ntrain=${8:-} ntest=${9:-}
name=$(basename "$model" .dln)
mkdir -p "$work"
rm -f "$work/metrics.jsonl"

# be32 N: N as 4 big-endian bytes (octal escapes for printf).
be32() { printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }

# idx_head SRC DST N: the first N records of the gzipped IDX file SRC, as a
# gzipped IDX file DST.  An IDX header is 0 0 TYPE NDIM, then NDIM 32-bit
# big-endian sizes, the first of them the record count (rewritten to N).
idx_head() {
  set -- "$1" "$2" "$3" $(gzip -dc "$1" | head -c 40 | od -An -tu1 -v |
    awk '{ for (i = 1; i <= NF; i++) b[++n] = $i }
         END { rec = 1
               for (d = 2; d <= b[4]; d++) { o = 4 * d; rec *= ((b[o+1] * 256 + b[o+2]) * 256 + b[o+3]) * 256 + b[o+4] }
               print 4 + 4 * b[4], rec }')
  # now $4: the header's length, $5: bytes per record
  {
    gzip -dc "$1" | head -c 4
    printf "$(be32 "$3")"
    gzip -dc "$1" | head -c "$4" | tail -c +9
    gzip -dc "$1" | tail -c +$(($4 + 1)) | head -c $(($3 * $5))
  } | gzip -1 >"$2"
}

# The subsets: the model's idx(IMAGES, LABELS) (or idx(IMAGES)) files, from its data_dir (else
# the directory of the .dln), cut to the first NTRAIN / NTEST samples.
data=
if [ -n "$ntrain" ]; then
  src=$(sed -n 's/^ *data_dir *= *"\(.*\)".*/\1/p' "$model")
  [ -n "$src" ] || src=$(dirname "$model")
  data="$work/data"
  mkdir -p "$data"
  # (the labels file is optional: a model without a label reads images alone)
  sed -n -e 's/^ *data *= *idx("\([^"]*\)"\(, *"\([^"]*\)"\)\{0,1\}.*/'"$ntrain"' \1 \3/p' \
         -e 's/^ *test *= *idx("\([^"]*\)"\(, *"\([^"]*\)"\)\{0,1\}.*/'"$ntest"' \1 \3/p' "$model" >"$work/idx.list"
  [ -s "$work/idx.list" ] || { echo "$model: no idx(...) data to cut"; exit 1; }
  while read -r n images labels; do
    idx_head "$src/$images" "$data/$images" "$n"
    [ -z "$labels" ] || idx_head "$src/$labels" "$data/$labels" "$n"
  done <"$work/idx.list"
fi

"$dlnc" build "$model" -o "$work/$name"
"$work/$name" train ${data:+--data "$data"} --epochs "$epochs" --threads 2 --metrics "$work/metrics.jsonl" --save "$work/$name.safetensors"
value=$(tail -n 1 "$work/metrics.jsonl" | sed -n "s/.*\"$metric\":\([-0-9.eE+]*\).*/\1/p")
[ -n "$value" ] || { echo "no $metric in $work/metrics.jsonl"; exit 1; }
echo "$name: $metric after $epochs epochs${ntrain:+ on $ntrain samples} = $value (must be $op $bound)"
awk -v v="$value" -v b="$bound" -v op="$op" 'BEGIN { ok = (op == "ge") ? (v >= b) : (v <= b); exit ok ? 0 : 1 }'
# the checkpoint evaluates to the same figure
"$work/$name" eval --load "$work/$name.safetensors" ${data:+--data "$data"}
