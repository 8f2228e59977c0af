#!/bin/sh
# SIGTERM, SIGINT or SIGHUP to `dlnc build` while its compilers run: dlnc
# stops them (with their own children), removes its temporary directory and
# partial output, and dies of that signal.
# usage: signals.sh DLNC WORKDIR RUNTIME_DIR
set -eu
dlnc=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
printf 'model m {\n  input x : f32[2]\n  label y : f32[1]\n  p = sigmoid(dense(x, 1))\n  loss = binary_cross_entropy(p, y)\n}\n' > m.dln
fail=0
# alive PID: running (a zombie waiting for init to reap it is gone)
alive() { st=$(ps -o stat= -p "$1" 2> /dev/null) && [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
bad() { echo "FAIL: $*"; fail=1; }
# a compiler that takes its time: runs the real one, then sleeps (its own child)
cat > slowcc.sh <<EOM
#!/bin/sh
${CC:-cc} "\$@" || exit 1
sleep 60
EOM
chmod +x slowcc.sh
for sig in TERM INT HUP; do
  mkdir -p "tmp_$sig" "out_$sig"
  # cold: every runtime file is being compiled when the signal comes
  # (env: a shell starts a background job with SIGINT ignored, and dlnc keeps
  # ignored signals ignored)
  TMPDIR="$work/tmp_$sig" DLNC_CACHE=off CC=./slowcc.sh env --default-signal=INT "$dlnc" build m.dln -o "out_$sig/m.bin" 2> "err_$sig.txt" &
  pid=$!
  # wait for the compilers (children of dlnc) to be running
  kids=""
  for i in $(seq 100); do
    kids=$(ps -o pid= --ppid $pid | tr '\n' ' ')
    [ -n "$kids" ] && break
    sleep 0.1
  done
  [ -n "$kids" ] || bad "$sig: no compiler started"
  sleep 0.5
  kids=$(ps -o pid= --ppid $pid | tr '\n' ' ')
  # and the compilers' own children (each compiler leads a process group)
  sleeps=$(ps -e -o pid= -o pgid= | awk -v k=" $kids " 'index(k, " " $2 " ") && $1 != $2 {print $1}' | tr '\n' ' ')
  [ -n "$sleeps" ] || bad "$sig: the compilers have no children"
  kill -$sig $pid
  set +e; wait $pid; status=$?; set -e
  case $sig in TERM) want=143 ;; INT) want=130 ;; HUP) want=129 ;; esac
  [ $status = $want ] || { bad "$sig: exit $status, not $want"; cat "err_$sig.txt"; }
  # every compiler and its children gone within 10 s
  for i in $(seq 100); do
    alive=""
    for k in $kids $sleeps; do alive "$k" && alive="$alive $k"; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  [ -z "$alive" ] || { bad "$sig: processes left running:$alive"; for k in $alive; do kill "$k" 2> /dev/null || true; done; }
  [ -z "$(ls -A "tmp_$sig")" ] || bad "$sig: temporary files left: $(ls -A "tmp_$sig")"
  [ -z "$(ls -A "out_$sig")" ] || bad "$sig: output left: $(ls -A "out_$sig")"
  if grep -q "error" "err_$sig.txt"; then bad "$sig: errors printed"; cat "err_$sig.txt"; fi
done
[ $fail = 0 ] && echo "signals: a stopped build stops its compilers and leaves nothing behind"
exit $fail
