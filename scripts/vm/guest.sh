#!/usr/bin/env bash
# Stage 2 of calf's test VM: PID 1 in this machine's userland (read-only over 9p under a tmpfs
# overlay), in the checkout. Our job: make the guest look like an attendee's cgroup-v2-only VM, run
# `npm run level ARGS`, hand its exit code to the host through the share, and power off.
# Usage (from the job file scripts/vm/run.sh writes, which also exports CALF_TEST_SLOW):
#   guest.sh KERNEL_DIR BOARD_ARGS…        (KERNEL_DIR: prepare.sh's cache folder, read through the host root)
#   guest.sh KERNEL_DIR --exec CMD ARGS…   CMD instead of the board, set up the same way
set -euo pipefail
share=/run/calf-vm
kernel=$1
shift
# The kernel starts PID 1 with almost no environment. CI=true also keeps npm from looking for updates.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export CI=true CALF_IN_VM=1 CALF_EXPECT_CGROUP=v2
# The one writable share: what a command leaves here reaches the host's run folder (CALF_VM_KEEP keeps it).
export CALF_VM_SHARE=$share
# Tells the host the VM booted: its boot timeout stops here.
: > "$share/started"

# From here on everything goes to the virtio port the host tails, live.
for port in /sys/class/virtio-ports/*; do
  [ "$(cat "$port/name")" = out ] && exec >"/dev/${port##*/}" 2>&1
done
# PID 1 must not exit (the kernel would panic): power off instead, whatever happens below.
trap 'sync; echo o > /proc/sysrq-trigger; sleep 60' EXIT

mount -t cgroup2 cgroup2 /sys/fs/cgroup
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
# An overlayfs cannot be an overlay's upperdir, and calf's tests put their stores under $TMPDIR.
# A tmpfs of its own rather than one over /tmp, which would hide a checkout that lives there.
export TMPDIR=/calf-vm-tmp
mkdir -p "$TMPDIR"
mount -t tmpfs -o mode=1777 tmpfs "$TMPDIR"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
# devtmpfs makes device nodes only; bash's <(…) and some tools want these links.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
ip link set lo up

# This kernel's modules live in the cache, not in this machine's /lib/modules; without kmod
# installed, busybox's modprobe reads the modules.dep that prepare.sh made.
mkdir -p /lib/modules
ln -sfn "$kernel/root/lib/modules/$(uname -r)" "/lib/modules/$(uname -r)"
for tool in modprobe lsmod rmmod; do
  command -v "$tool" >/dev/null || ln -s /bin/busybox "/usr/local/sbin/$tool"
done
# The kernel loads a module on first use (a bridge, a veth: levels 07 and 08) by running the
# modprobe /proc/sys/kernel/modprobe names, /sbin/modprobe, which this userland may lack.
command -v modprobe > /proc/sys/kernel/modprobe

fs=$(stat -fc %T /sys/fs/cgroup)
echo "test:vm: guest kernel $(uname -r), /sys/fs/cgroup is $fs, controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
if [ "$fs" != cgroup2fs ]; then
  echo "test:vm: the guest must be cgroup-v2 only, and /sys/fs/cgroup is $fs"
  exit 1
fi

# Run the board the way a login shell on Ubuntu 24.04 runs: systemd puts it in a session scope,
# a cgroup that is not the root and holds other processes (the session's). calf must work from
# there, its cgroups at calf/<id> at the root of the tree, never under its caller's: v2 lets no
# cgroup that holds processes hand controllers to children ("no internal processes").
slice=/sys/fs/cgroup/user.slice
session=$slice/user-0.slice/session-1.scope
mkdir -p "$session"
echo "+memory +pids" > "$slice/cgroup.subtree_control"
sleep 2147483647 &
sibling=$!
echo "$sibling" > "$session/cgroup.procs"

code=0
# No board arguments with CALF_VM_DEMOS set: only the demos. --exec CMD: that command instead of the board.
if [ $# -gt 0 ] || [ -z "${CALF_VM_DEMOS:-}" ]; then
  (
    echo "$BASHPID" > "$session/cgroup.procs"
    echo "test:vm: the board runs in cgroup $(cut -d: -f3 /proc/self/cgroup), beside process $sibling"
    if [ "${1:-}" = --exec ]; then shift; "$@"; else npm run level -- "$@"; fi
  ) || code=$?
fi
# The demos CALF_VM_DEMOS names (run.sh), from the same session scope: their cgroup-v2 columns.
# Side by side, as npm test replays them (each in namespaces and a store of its own): one after
# the other they were ~155 s of CI's VM step, mostly waiting on containers' sleeps. Each demo's
# output is kept whole and printed when all are done, so two replays don't interleave.
demos=()
for level in ${CALF_VM_DEMOS:-}; do
  (
    echo "$BASHPID" > "$session/cgroup.procs"
    npm run demo -- "$level" --check > "$TMPDIR/demo-$level.out" 2>&1
  ) &
  demos+=("$!:$level")
done
for d in "${demos[@]}"; do
  wait "${d%%:*}" || code=1
  cat "$TMPDIR/demo-${d#*:}.out"
done
kill "$sibling" || true
# The board names its jest log, which lives in this VM's $TMPDIR: the host keeps a copy.
cp "$TMPDIR/calf-board.log" "$share/" || true
echo "$code" > "$share/exit"
