#!/bin/sh
# scripts/plot_metrics on a real --metrics file: examples/xor.dln trained
# twice into one file (seeds 5 and 6, 3 and 4 epochs), then plotted.
#   - PNG: the signature and a plausible size;
#   - SVG: parses as XML and carries the four series' titles and the run's
#     seed (the last run by default, --run 1 the first);
#   - a model without accuracy plots only the loss; misuse is refused.
# usage: run.sh DLNC SOURCE_DIR WORK.  Exit 77 (skip) without gnuplot.
set -u
dlnc=$1
src=$2
work=$3
plot="$src/scripts/plot_metrics"
fail() { echo "FAIL [plot]: $*" >&2; exit 1; }
command -v gnuplot >/dev/null 2>&1 || { echo "gnuplot not installed (scripts/setup.sh deps)"; exit 77; }
rm -rf "$work"
mkdir -p "$work" && cd "$work" || fail "cannot enter $work"
"$dlnc" build "$src/examples/xor.dln" -o xor >build.log 2>&1 || { cat build.log; fail "dlnc build"; }
./xor train --epochs 3 --seed 5 --metrics m.jsonl >/dev/null || fail "train run 1"
./xor train --epochs 4 --seed 6 --metrics m.jsonl >/dev/null || fail "train run 2"
[ "$(grep -c '^{"run":' m.jsonl)" -eq 2 ] || fail "expected two header records: $(cat m.jsonl)"

"$plot" m.jsonl -o last.png >/dev/null || fail "plot to PNG"
"$plot" m.jsonl -o last.svg >/dev/null || fail "plot to SVG"
"$plot" m.jsonl -o first.svg --run 1 >/dev/null || fail "plot run 1 to SVG"
# PNG: the 8-byte signature, and more than an empty canvas
[ "$(head -c 8 last.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "last.png is not a PNG"
[ "$(wc -c <last.png)" -gt 10000 ] || fail "last.png is only $(wc -c <last.png) bytes"
/usr/bin/python3 - last.svg first.svg <<'PY' || fail "SVG check"
import sys
import xml.etree.ElementTree as ET
def texts(path):
    root = ET.parse(path).getroot()          # raises if not XML
    assert root.tag.endswith("svg"), root.tag
    paths = [e for e in root.iter() if e.tag.endswith("path")]
    assert len(paths) >= 4, "%s: %d paths" % (path, len(paths))
    return " ".join(t for e in root.iter() for t in [e.text] if t)
last, first = texts(sys.argv[1]), texts(sys.argv[2])
for series in ("train loss", "test loss", "train acc", "test acc"):
    assert series in last, "%s lacks the series '%s'" % (sys.argv[1], series)
assert "seed 6" in last and "seed 5" not in last, "default run is not the last: " + last[:200]
assert "seed 5" in first and "seed 6" not in first, "--run 1 is not the first: " + first[:200]
PY

# without accuracy: loss only
printf '%s\n' '{"epoch":1,"train_loss":1.5,"test_loss":1.7}' '{"epoch":2,"train_loss":1.2,"test_loss":1.4}' >reg.jsonl
"$plot" reg.jsonl -o reg.svg >/dev/null || fail "plot a file without header or accuracy"
grep -q "train loss" reg.svg && ! grep -q "train acc" reg.svg || fail "reg.svg: wrong series"

# misuse: a clear error, no crash
"$plot" m.jsonl --run 3 -o x.svg 2>err && fail "--run 3 of 2 accepted"
grep -q "has 2 runs" err || fail "--run 3: $(cat err)"
"$plot" m.jsonl -o x.pdf 2>err && fail ".pdf accepted"
grep -q "must be .png or .svg" err || fail ".pdf: $(cat err)"
echo "plot: ok"
