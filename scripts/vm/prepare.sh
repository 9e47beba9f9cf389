#!/usr/bin/env bash
# Prepares what scripts/vm/run.sh boots, once, in a cache outside the checkout: qemu and
# busybox-static from Debian, and Debian's current kernel (the package behind linux-image-amd64)
# unpacked into a folder, never installed into this machine's /boot or /lib/modules.
# Prints the kernel's cache folder: vmlinux, initrd.gz, and root/ (the unpacked package).
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'test:vm: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

cache=${CALF_VM_CACHE:-/var/cache/calf-vm}
# What the initramfs loads before mounting this machine's root; their dependencies come from modules.dep.
modules=(virtio_pci 9pnet_virtio 9p overlay virtio_console)

updated=""
apt_update() {
  [ -n "$updated" ] && return
  say "apt-get update"
  apt-get update -qq
  updated=1
}

missing=()
for p in qemu-system-x86 busybox-static; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The versioned package (linux-image-6.1.0-NN-amd64) names the cache folder: a new Debian kernel
# gets a new folder, the same one is reused.
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'; }
pkg=$(kernel_package)
if [ -z "$pkg" ] || [ ! -e "$cache/$pkg/vmlinux" ]; then
  apt_update
  pkg=$(kernel_package)
  [ -n "$pkg" ] || die "apt knows no linux-image-amd64: is this Debian with the main component enabled?"
fi
dir=$cache/$pkg
kver=${pkg#linux-image-}

if [ ! -e "$dir/vmlinux" ]; then
  say "preparing $pkg in $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  # As root into a root-owned folder: apt's _apt sandbox user could not write there.
  (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
  dpkg-deb -x "$dir/${pkg}_"*.deb "$dir/root"
  rm "$dir/${pkg}_"*.deb
  # The package ships no modules.dep (postinst runs depmod); the guest's modprobe needs one.
  busybox depmod -b "$dir/root" "$kver"
  # qemu boots an ELF vmlinux directly, which saves the in-guest decompression (seconds under TCG).
  vmlinuz=$dir/root/boot/vmlinuz-$kver
  offset=$(LC_ALL=C grep -obUaP -m 1 '\xfd7zXZ\x00' "$vmlinuz" | awk -F: 'NR == 1 { print $1 }')
  [ -n "$offset" ] || die "no xz payload in $vmlinuz"
  # --single-stream stops at the end of the payload, before the bytes that follow it in vmlinuz.
  xz -dc --single-stream < <(tail -c +"$((offset + 1))" "$vmlinuz") > "$dir/vmlinux.new"
  cmp -s -n 4 <(printf '\177ELF') "$dir/vmlinux.new" || die "$vmlinuz did not decompress to an ELF vmlinux"
  # Renamed last: its presence means the folder is complete.
  mv "$dir/vmlinux.new" "$dir/vmlinux"
fi

# The initramfs is rebuilt whenever scripts/vm/init or the module list changed.
sum=$({ cat init; echo "${modules[*]}"; } | sha256sum)
if [ "$(cat "$dir/initrd.sum" 2>/dev/null)" != "$sum" ]; then
  say "building the initramfs"
  moddir=$dir/root/lib/modules/$kver
  declare -A seen=()
  order=()
  # Appends a module (a path as modules.dep names it) after everything it depends on.
  add() {
    [ -n "${seen[$1]:-}" ] && return
    seen[$1]=1
    local dep
    for dep in $(awk -v m="$1:" '$1 == m { $1 = ""; print }' "$moddir/modules.dep"); do add "$dep"; done
    order+=("$1")
  }
  for m in "${modules[@]}"; do
    path=$(awk -F: -v m="/$m.ko" 'substr($1, length($1) - length(m) + 1) == m { print $1; exit }' "$moddir/modules.dep")
    [ -n "$path" ] || die "$pkg has no module $m"
    add "$path"
  done
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT
  mkdir -p "$staging"/{bin,modules,proc,sys,dev}
  cp /bin/busybox "$staging/bin/"
  # Numbered so that /init loads them in dependency order with a plain glob.
  for i in "${!order[@]}"; do
    cp "$moddir/${order[$i]}" "$staging/modules/$(printf '%02d' "$i")-$(basename "${order[$i]}")"
  done
  install -m 755 init "$staging/init"
  # cpio reports its block count on stderr.
  (cd "$staging" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) > "$dir/initrd.gz"
  echo "$sum" > "$dir/initrd.sum"
fi

echo "$dir"
