#!/usr/bin/env bash
# Starts node many times inside the test VM, the ways the board does, and counts how each start
# ended: a reproducer for a Node that crashes under emulation (issue 22), far cheaper than boards.
#   bash scripts/vm/run.sh --exec bash scripts/vm/node-starts.sh SECONDS [WORKERS] [KINDS]
# SECONDS: how long to keep starting; WORKERS (default 2, the board's two jest workers): loops
# side by side; KINDS (default all, comma-separated): node, tsx, run, fast, cleanup, opt (see below).
# In the VM's share (CALF_VM_KEEP=1 keeps the run folder): starts.tsv (one line a start: worker,
# kind, exit code, seconds), crashes.log (the kernel's lines about them), and the first few core
# dumps with their command lines, for gdb on the host (the guest runs the host's node).
set -uo pipefail
cd "$(dirname "$0")/../.."
budget=${1:?usage: node-starts.sh SECONDS [WORKERS] [KINDS]}
workers=${2:-2}
kinds=${3:-node,tsx,run,fast,cleanup}
share=${CALF_VM_SHARE:-$(mktemp -d)}
keep_cores=${CALF_KEEP_CORES:-4}
target=solutions/$(ls solutions | grep -E '^[0-9]{2}-' | sort | tail -n 1)

export CALF_STORAGE_DRIVER=vfs # the driver of the crashed runs: a copy, no overlay mount
tsx=(node --import tsx "$target/calf.ts")

cores=${TMPDIR:-/tmp}/cores
mkdir -p "$cores" "$share/cores"
# Only in the VM: the core pattern is the kernel's, and the host's is not ours to change.
if [ -n "${CALF_IN_VM:-}" ]; then
  ulimit -c unlimited
  # %e the thread's name, %p pid, %i tid, %s signal. Written to guest RAM first: few are kept.
  echo "$cores/core.%e.%p.%i.%s" > /proc/sys/kernel/core_pattern
fi

# One start of a kind, its output to $1.
start() {
  case $2 in
    node) node -e 0 ;; # the cheapest start
    tsx) "${tsx[@]}" images ;; # calf through tsx: loads and compiles all of calf, as each check's calf does
    run) "${tsx[@]}" run busybox echo hi ;; # the crashed kind: calf, then its init stage (a bundle), vfs
    fast) node bin/calf.cjs run busybox echo hi ;; # the same through the bundled entry, no tsx
    cleanup) "${tsx[@]}" cleanup ;;
    opt) node -e 'let s=0;for(let i=0;i<3e6;i++)s+=Math.sqrt(i)*(i&7);if(!(s>0))process.exit(3)' ;; # hot JIT code
    *) echo "unknown kind $2"; return 2 ;;
  esac >"$1" 2>&1
}

worker() {
  local w=$1 out=${TMPDIR:-/tmp}/starts-out.$1 kind rc t0 t1 i=0
  # a calf root each: one worker's cleanup must not meet another's running container
  export CALF_ROOT=${TMPDIR:-/tmp}/calf-starts-root.$w
  "${tsx[@]}" load -i build/images/busybox >/dev/null || { echo "node-starts: could not load busybox into $CALF_ROOT"; return 1; }
  IFS=, read -ra list <<<"$kinds"
  while [ "$SECONDS" -lt "$budget" ]; do
    kind=${list[$((i % ${#list[@]}))]}
    i=$((i + 1))
    t0=$EPOCHREALTIME
    start "$out" "$kind"
    rc=$?
    t1=$EPOCHREALTIME
    printf '%s\t%s\t%s\t%s\n' "$w" "$kind" "$rc" "$(awk "BEGIN { print $t1 - $t0 }")" >> "$share/starts.tsv"
    if [ "$rc" != 0 ]; then
      { echo "== worker $w, $kind, exit $rc, $(date +%T)"; tail -n 20 "$out"; } >> "$share/failures.log"
    fi
    # keep the first few cores, each with what was running
    for core in "$cores"/core.*; do
      [ -e "$core" ] || continue
      if [ "$(ls "$share/cores" | grep -c '^core')" -lt "$keep_cores" ]; then
        echo "$kind (worker $w, exit $rc)" > "$share/cores/${core##*/}.txt"
        cp --sparse=always "$core" "$share/cores/"
      fi
      rm -f "$core"
    done
  done
  "${tsx[@]}" cleanup >/dev/null 2>&1
  rm -rf "$CALF_ROOT"
}

SECONDS=0
echo "node-starts: $workers workers, ${budget}s, kinds $kinds, target $target, CPU flags: $(grep -m 1 -ow 'avx\|avx2\|avx512f\|fma\|f16c\|vaes' /proc/cpuinfo | tr '\n' ' ')"
pids=()
for w in $(seq "$workers"); do worker "$w" & pids+=($!); done
wait "${pids[@]}"
: > "$share/crashes.log"
[ -z "${CALF_IN_VM:-}" ] || dmesg | grep -E 'segfault|trap|general protection|invalid opcode' > "$share/crashes.log"

# The summary: starts and failures per kind, and the exit codes seen.
awk -F'\t' '{ n[$2]++; t[$2] += $4; if ($3 != 0) { bad[$2]++; codes[$2] = codes[$2] " " $3 } }
  END { for (k in n) printf "node-starts: %-8s %5d starts, %3d failed (exit%s), %.1f s each\n", k, n[k], bad[k], codes[k] ? codes[k] : " -", t[k] / n[k] }' "$share/starts.tsv"
echo "node-starts: kernel lines about crashes: $(wc -l < "$share/crashes.log")"
head -n 20 "$share/crashes.log"
ls "$share/cores"
