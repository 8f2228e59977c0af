#!/bin/sh
# run.sh DLNC [-C DIR] CASE.dln   check one golden (see CMakeLists.txt)
# run.sh DLNC --cli      check the command line's exit statuses
# run.sh DLNC [-C DIR] --update CASE.dln...   rewrite the goldens from dlnc's
#                                    output (read the diff before committing it)
# DLNC and DIR may be relative to the caller's directory; the check itself
# runs in DIR (default: this script's directory) so that the goldens hold
# stable file names, and CASE names a file there.
set -u
dlnc=$1
shift
case $dlnc in /*) ;; *) dlnc=$(pwd)/$dlnc ;; esac
dir=$(dirname "$0")
if [ "${1-}" = -C ]; then
  dir=$2
  shift 2
fi
cd "$dir" || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect STATUS CMD...: run CMD, compare its exit status.
expect() {
  want=$1
  shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  got=$?
  [ "$got" -eq "$want" ] || { cat "$tmp/err" >&2; fail "'$*' exited $got, expected $want"; }
}

if [ "$1" = --cli ]; then
  expect 0 "$dlnc" --help
  grep -q '^  check ' "$tmp/out" || fail "dlnc --help does not list check"
  expect 0 "$dlnc" check --help
  grep -q '^usage: dlnc check' "$tmp/out" || fail "dlnc check --help prints no usage"
  expect 2 "$dlnc"
  expect 2 "$dlnc" frobnicate all_constructs.dln
  expect 2 "$dlnc" check
  expect 2 "$dlnc" check --frobnicate all_constructs.dln
  expect 2 "$dlnc" check all_constructs.dln all_constructs.dln
  expect 1 "$dlnc" check no-such-file.dln
  grep -q "cannot open 'no-such-file.dln'" "$tmp/err" || fail "no message for a missing file"
  # its data file is not there: the one warning, and -Wno-data-file silences it
  expect 0 "$dlnc" check all_constructs.dln
  grep -q 'warning: data file .* \[-Wdata-file\]$' "$tmp/err" || fail "no -Wdata-file warning"
  expect 1 "$dlnc" check -Werror all_constructs.dln
  expect 2 "$dlnc" check -Wbogus all_constructs.dln
  grep -q "unknown warning option '-Wbogus'" "$tmp/err" || fail "no message for -Wbogus"
  expect 0 "$dlnc" lints
  grep -q '^softmax-cross-entropy ' "$tmp/out" || fail "dlnc lints does not list softmax-cross-entropy"
  expect 0 "$dlnc" check -Wno-data-file all_constructs.dln
  [ -s "$tmp/out" ] || [ -s "$tmp/err" ] && fail "dlnc check on a valid file printed something"
  exit 0
fi

# A case's flags for dlnc check (-Wno-NAME, -Werror): a line "# flags: ...".
# Most cases name data files that are not there: -Wdata-file is off unless
# a case turns it on.
flags() { echo "-Wno-data-file $(sed -n 's/^# flags: //p' "$1" | head -n 1)"; }

if [ "$1" = --update ]; then
  shift
  for f in "$@"; do
    # shellcheck disable=SC2046
    "$dlnc" check $(flags "$f") "$f" 2>"${f%.dln}.err" >/dev/null
    [ -f "${f%.dln}.ast" ] && "$dlnc" check --ast "$f" >"${f%.dln}.ast" 2>/dev/null
  done
  exit 0
fi

case=$1
golden=${case%.dln}.err
[ -f "$golden" ] || fail "$golden is missing"
want=0 # warnings alone (": warning:") leave the exit status 0
grep -q ': error: ' "$golden" && want=1
# shellcheck disable=SC2046
"$dlnc" check $(flags "$case") "$case" >"$tmp/out" 2>"$tmp/err"
got=$?
if ! cmp -s "$golden" "$tmp/err"; then
  diff -u "$golden" "$tmp/err" >&2
  fail "$case: stderr differs from $golden"
fi
[ "$got" -eq "$want" ] || fail "$case: exit status $got, expected $want"
[ -s "$tmp/out" ] && fail "$case: dlnc check printed on stdout"

ast=${case%.dln}.ast
if [ -f "$ast" ]; then
  "$dlnc" check --ast "$case" >"$tmp/out" 2>"$tmp/err"
  got=$?
  [ "$got" -eq 0 ] || { cat "$tmp/err" >&2; fail "$case: --ast exited $got"; }
  if ! cmp -s "$ast" "$tmp/out"; then
    diff -u "$ast" "$tmp/out" >&2
    fail "$case: --ast output differs from $ast"
  fi
fi
exit 0
