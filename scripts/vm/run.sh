#!/usr/bin/env bash
# `npm run test:vm -- ARGS`: `npm run level -- ARGS` inside a throwaway cgroup-v2-only VM (qemu, Debian's
# kernel, this machine's userland read-only over 9p), for the code paths a cgroup-v1 machine cannot
# test. Streams the board's output live and exits with its exit code. See scripts/vm/README.md.
# `run.sh --exec CMD ARGS…` runs CMD in the same guest instead of the board (a reproducer, a look around).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'test:vm: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

boot_timeout=${CALF_VM_BOOT_TIMEOUT:-120}
run_timeout=${CALF_VM_TIMEOUT:-2700}
# Kept after the run for inspection: the VM's console (kernel, stage 1) and the board's jest log.
console_copy=/tmp/calf-vm-console.log
jest_copy=/tmp/calf-vm-board.log

[ "$(uname -s)" = Linux ] || die "the test VM needs a Linux host (qemu, 9p)"
[ "$(id -u)" = 0 ] || die "run as root (sudo -i): it installs packages and boots a VM"
# The guest has no network: everything the board needs must be on this machine already.
[ -d node_modules ] || die "node_modules is missing: run npm run setup (or npm ci) first, the VM has no network"
# The guest sees build/images as it is here: images older than their sources fail checks for no
# reason of the kernel's (the board would refuse them too, minutes into an emulated boot).
[ "${1:-}" = --exec ] || npx tsx scripts/build-images.ts --check || exit 1

kernel=$(bash scripts/vm/prepare.sh)
[ "${1:-}" != --exec ] || what="the command ${2:-}"

run=$(mktemp -d /tmp/calf-vm.XXXXXX)
qemu=""
tailer=""
# Best effort, on every way out: stop what we started (by pid), keep the logs, remove the run folder.
cleanup() {
  set +e
  [ -n "$qemu" ] && kill "$qemu" 2>/dev/null && wait "$qemu"
  [ -n "$tailer" ] && kill "$tailer" 2>/dev/null && wait "$tailer"
  cp "$run/console.log" "$console_copy"
  cp "$run/calf-board.log" "$jest_copy" 2>/dev/null || rm -f "$jest_copy"
  if [ -n "${CALF_VM_KEEP:-}" ]; then say "kept the run folder $run"; else rm -rf "$run"; fi
}
trap cleanup EXIT
trap 'say "interrupted: stopping the VM"; exit 130' INT
trap 'say "terminated: stopping the VM"; exit 143' TERM

# Says why the VM failed, with the end of its console (kernel messages, stage 1's errors), and exits.
vm_failed() {
  say "$1"
  panic=$(grep -m 1 'Kernel panic' "$run/console.log" || true)
  [ -z "$panic" ] || say "the guest kernel panicked: ${panic#*] }"
  if [ -s "$run/console.log" ]; then
    say "last lines of the VM console ($console_copy):"
    tail -n 40 "$run/console.log" >&2
  else
    say "the VM console is empty"
  fi
  exit 1
}

# Only real KVM boots a stock kernel; PVM (/sys/module/kvm_pvm) cannot, so emulate there. Emulated,
# calf runs ~15x slower (a one-container check takes ~10 s): the tests stretch their timeouts by
# CALF_TEST_SLOW.
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ]; then
  accel=(-accel kvm -cpu host)
  slow=${CALF_TEST_SLOW:-1}
else
  accel=(-accel "${CALF_VM_TCG:-tcg,thread=multi,tb-size=512}" -cpu "${CALF_VM_CPU:-max}")
  slow=${CALF_TEST_SLOW:-4}
fi

# Stage 1 (scripts/vm/init) runs this file once the guest's root is up.
# CALF_VM_DEMOS="9 10": after the board, replay those levels' demos there too (npm run demo N
# --check): the cgroup-v2 columns of their transcripts, which a v1 machine skips.
printf 'export CALF_TEST_SLOW=%q CALF_VM_DEMOS=%q\ncd %q && exec bash scripts/vm/guest.sh %q %s\n' "$slow" "${CALF_VM_DEMOS:-}" "$PWD" "$kernel" "${*@Q}" > "$run/job"
: > "$run/out"
: > "$run/console.log"

# The board's output comes through a virtio port into a file we tail (a stdio chardev with stdin at
# /dev/null makes guest writes hang). The kernel logs verbosely to the console file: it costs nothing
# measurable and shows where a hang was. panic=-1 with -no-reboot: a guest panic ends qemu at once.
qemu-system-x86_64 -M pc -m "${CALF_VM_MEMORY:-2G}" -smp 2 "${accel[@]}" \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$kernel/vmlinux" -initrd "$kernel/initrd.gz" \
  -append 'console=ttyS0 panic=-1 cgroup_no_v1=all' \
  -serial "file:$run/console.log" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
  -virtfs "local,path=$run,mount_tag=xfer,security_model=passthrough" \
  -device virtio-serial-pci -chardev "file,id=out,path=$run/out" -device virtserialport,chardev=out,name=out \
  </dev/null &
qemu=$!
SECONDS=0
tail -n +1 -f --pid="$qemu" "$run/out" &
tailer=$!

while kill -0 "$qemu" 2>/dev/null; do
  if [ ! -e "$run/started" ] && [ "$SECONDS" -ge "$boot_timeout" ]; then
    vm_failed "the VM did not boot within ${boot_timeout}s (CALF_VM_BOOT_TIMEOUT)"
  fi
  [ "$SECONDS" -lt "$run_timeout" ] || vm_failed "the VM run took longer than ${run_timeout}s (CALF_VM_TIMEOUT)"
  sleep 1
done
wait "$qemu" || vm_failed "qemu failed (exit $?)"
qemu=""
# tail stops by itself once qemu is gone, after printing what was left.
wait "$tailer"
tailer=""

# A program that crashes in the guest (Node: issue 22) gets a line from its kernel: said here, so
# that a check it failed is not taken for calf's behaviour. The lines name the program and pid,
# where it faulted, and (segfault) in which file.
crashes=$(grep -E ': segfault at |traps: ' "$run/console.log" | sed -E 's/^\[ *[0-9.]+\] //' || true)
if [ -n "$crashes" ]; then
  say "the guest kernel saw $(wc -l <<<"$crashes") crash(es), a program's own, not a failed expectation:"
  head -n 10 <<<"$crashes" | sed 's/^/    /' >&2
fi

[ -s "$run/exit" ] || vm_failed "the VM stopped before the board finished (no exit code from the guest)"
code=$(cat "$run/exit")
# The board exits 0, 1 or 2; above 128 its own process was killed (npm and tsx pass 128+N on).
if [ "$code" -gt 128 ] && [ -z "${what:-}" ]; then
  say "the board's own process was killed by SIG$(kill -l "$((code - 128))" 2>/dev/null || echo "$((code - 128))"): not calf's doing, run it again"
fi
say "${what:-the board} exited $code in the VM (${SECONDS}s from boot to power-off; jest log: $jest_copy)"
exit "$code"
