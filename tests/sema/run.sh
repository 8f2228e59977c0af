#!/bin/sh
# run.sh DLNC CASE.dln              check one semantic golden of this folder
# run.sh DLNC --update CASE.dln...  rewrite goldens (read every one after)
# The golden logic is tests/front/run.sh's, run on this folder.
here=$(dirname "$0")
dlnc=$1
shift
exec sh "$here/../front/run.sh" "$dlnc" -C "$here" "$@"
