#!/bin/sh
# The table of warnings in docs/language.md (between <!-- lints --> and
# <!-- /lints -->) is the one `dlnc lints` prints from compiler/base/lints.def:
# the same names, defaults and texts, in the same order.
# usage: lints.sh DLNC LANGUAGE.md
set -eu
dlnc=$1 doc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$dlnc" lints | sed 's/^\([^ ]*\)  *\([a-z]*\)  *\(.*\)$/| `\1` | \2 | \3 |/' >"$tmp/want"
sed -n '/^<!-- lints -->$/,/^<!-- \/lints -->$/p' "$doc" | grep '^| `' >"$tmp/got" || true
[ -s "$tmp/want" ] || { echo "FAIL: dlnc lints printed nothing" >&2; exit 1; }
if ! cmp -s "$tmp/want" "$tmp/got"; then
  diff -u "$tmp/want" "$tmp/got" >&2
  echo "FAIL: the table of warnings in $doc differs from 'dlnc lints'" >&2
  exit 1
fi
