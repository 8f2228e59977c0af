#!/bin/sh
# edges.sh DLNC WORKDIR: builds a model whose prediction is exp, log, sqrt,
# square, abs and clamp(min = -1, max = 2) of its three inputs, trains it
# one step (the zero-weighted dense only gives it a parameter), and checks
# predict's values on rows that reach each op's edge cases against torch's
# float32 results: exp(100) = inf, exp(88.5) and exp(-87.2) outside
# dl_exp's clamped range, exp(-100) = 0 (the trainer flushes denormals),
# log(0) = -inf, log and sqrt of a negative = NaN.
set -u
dlnc=$1 work=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/d" && cd "$work" || fail "cannot use $work"
cat >m.dln <<'DLN'
model edges {
  input  x : f32[3]
  label  y : f32[18]
  out    = concat(exp(x), log(x), sqrt(x), square(x), abs(x), clamp(x, min = -1, max = 2)) + 0 * dense(x, 18)
  loss   = mse(out, y)
}
train edges {
  data      = csv("train.csv", header = true)
  epochs    = 1
  optimizer = sgd(lr = 0.1)
}
DLN
{
  echo x1,x2,x3,y1,y2,y3,y4,y5,y6,y7,y8,y9,y10,y11,y12,y13,y14,y15,y16,y17,y18
  for i in 1 2 3 4; do echo 0.5,0.5,0.5,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1; done
} >d/train.csv
"$dlnc" build m.dln -o m >build.out 2>&1 || { cat build.out >&2; fail "dlnc build"; }
./m train --data d --save c.st >train.out 2>&1 || { cat train.out >&2; fail "train"; }
printf '0,1,-1\n100,-100,4\n88.5,-87.2,0.25\n' | ./m predict --load c.st >pred.out 2>pred.err ||
  { cat pred.err >&2; fail "predict"; }
# expected per row: exp x3, log x3, sqrt x3, square x3, abs x3, clamp x3,
# torch's float32 values (%.9g) but exp(-100): torch's 3.78e-44 is a denormal
cat >want <<'W'
1 2.71828175 0.36787945 -inf 0 nan 0 1 nan 0 1 1 0 1 1 0 1 -1
inf 0 54.5981522 4.60517025 nan 1.38629436 10 nan 2 10000 10000 16 100 100 4 2 -1 2
2.72308792e+38 1.34748048e-38 1.28402543 4.48300266 nan -1.38629436 9.407444 nan 0.5 7832.25 7603.83936 0.0625 88.5 87.1999969 0.25 2 -1 0.25
W
[ "$(wc -l <pred.out)" -eq 3 ] || { cat pred.out >&2; fail "expected 3 prediction rows"; }
tr ',' ' ' <pred.out | paste -d '|' - want | awk -F'|' '
  { n = split($1, got, " "); m = split($2, ref, " ")
    if (n != m) { print "row " NR ": " n " values, expected " m; bad = 1; next }
    for (i = 1; i <= n; i++) {
      g = got[i]; e = ref[i]
      if (e == "nan") ok = tolower(g) ~ /nan/
      else if (e == "inf" || e == "-inf") ok = g == e
      else { d = g - e; if (d < 0) d = -d; a = e < 0 ? -e : e; ok = tolower(g) !~ /inf|nan/ && d <= 1e-6 * (a > 1 ? a : 1) }
      if (!ok) { print "row " NR " value " i ": got " g ", expected " e; bad = 1 } } }
  END { exit bad }' || { cat pred.out >&2; fail "predictions differ"; }
echo "edges ok"
