#!/bin/sh
# usage: signatures.sh DLNC LANGUAGE_MD
# Every table row of the language reference whose first cell shows a call,
# `NAME(ARG, ARG = DEFAULT, ...)`, is compared with `dlnc builtins`:
#  - argument names in order (a trailing `...` compares a prefix; a row
#    whose arguments start with `...` shows a variant and is skipped);
#  - an argument without a default is required, one with a default is not;
#  - a numeric, true or false default is the code's; a default in words
#    (`kernel`, `epochs`, `...`) is one the code derives (it prints `...`).
# And every function `dlnc builtins` lists has a documented signature.
set -u
dlnc=$1 doc=$2
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT
"$dlnc" builtins > "$tmp" || { echo "FAIL: dlnc builtins exited $?"; exit 1; }
awk '
function trim(s) { gsub(/^ +| +$/, "", s); return s }
function isnum(s) { return s ~ /^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
# the arguments of "NAME(ARGS)" into a[1..n]; returns n (-1: variadic "...")
function args(sig, a,   body, n, i, parts) {
  body = sig; sub(/^[a-z_0-9]+\(/, "", body); sub(/\).*$/, "", body)
  if (body == "...") return -1
  if (body == "") return 0
  n = split(body, parts, ",")
  for (i = 1; i <= n; i++) a[i] = trim(parts[i])
  return n
}
function argname(x) { sub(/ *=.*/, "", x); return x }
function argdef(x) { if (x !~ /=/) return ""; sub(/^[^=]*= */, "", x); return x }
function fail(msg) { print "FAIL: " msg; bad = 1 }
FNR == NR {                              # dlnc builtins
  name = $0; sub(/\(.*/, "", name)
  sig = $0; sub(/\)  keyword-only:.*/, ")", sig)
  code[name] = sig; order[++ncode] = name
  next
}
/^\| `/ {                                # a row of docs/language.md
  split($0, cells, "|"); cell = cells[2]
  while (match(cell, /`[a-z_0-9]+\([^`]*\)`/)) {
    sig = substr(cell, RSTART + 1, RLENGTH - 2); cell = substr(cell, RSTART + RLENGTH)
    name = sig; sub(/\(.*/, "", name)
    if (sig ~ /\(\.\.\./) continue       # a variant: dense(..., weight_norm = true)
    if (!(name in code)) { fail("docs line " FNR ": " name "() is not a function of dlnc"); continue }
    documented[name] = 1
    delete d; delete c
    nd = args(sig, d); nc = args(code[name], c)
    prefix = nd > 0 && d[nd] == "..."
    if (prefix) nd--
    if (nc < 0) {                        # variadic in the code: concat(a, b, ...)
      if (!prefix) fail("docs line " FNR ": " name "() takes any number of arguments, documented as " sig)
      continue
    }
    if (nd > nc || (!prefix && nd != nc)) {
      fail("docs line " FNR ": " sig " but dlnc has " code[name]); continue
    }
    for (i = 1; i <= nd; i++) {
      dn = argname(d[i]); cn = argname(c[i]); dd = argdef(d[i]); cd = argdef(c[i])
      if (dn != cn) { fail("docs line " FNR ": argument " i " of " name "() is documented as " dn ", dlnc calls it " cn); continue }
      if ((dd == "") != (cd == "")) { fail("docs line " FNR ": " name "(" dn ") is " (dd == "" ? "documented as required" : "documented as optional") ", dlnc has " c[i]); continue }
      if (dd == "") continue
      if (isnum(dd)) { if (!isnum(cd) || dd + 0 != cd + 0) fail("docs line " FNR ": " name "(" d[i] ") but dlnc has " c[i]) }
      else if (dd == "true" || dd == "false") { if (dd != cd) fail("docs line " FNR ": " name "(" d[i] ") but dlnc has " c[i]) }
      else if (cd != "...") fail("docs line " FNR ": " name "(" d[i] ") is derived in the docs, but dlnc has " c[i])
    }
  }
}
END {
  for (k = 1; k <= ncode; k++)
    if (!(order[k] in documented)) fail(order[k] "() is not documented: " code[order[k]])
  if (ncode < 30) fail("dlnc builtins listed only " ncode " functions")
  if (!bad) print "docs: " ncode " signatures agree with docs/language.md"
  exit bad
}' "$tmp" "$doc"
