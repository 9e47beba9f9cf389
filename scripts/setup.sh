#!/usr/bin/env bash
# Sets up calf on Debian or Ubuntu, as root: system packages, npm packages, test images.
# Idempotent: each step checks first, so running it again is cheap. Used by the Vagrantfile,
# by .ci/run, and by hand (`npm run setup` once node_modules exists, else `bash scripts/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(uname -s)" = Linux ] || die "calf needs Linux: run this inside the workshop VM (vagrant up)"
[ "$(id -u)" = 0 ] || die "run as root (sudo -i): it installs packages, and calf needs root anyway"

# busybox-static: the test images' userland. gcc + libc6-dev: static test helpers (gcc -static).
# iproute2: network levels. skopeo, umoci: tests that load images made by other tools.
# libseccomp2: level 12 loads its seccomp filter through libseccomp (koffi).
# docker-registry (distribution 2.8) and openssl: level 13's tests run a real registry with token
# auth (openssl makes the token signing certificate); skopeo pushes the test images to it.
packages=(busybox-static gcc libc6-dev iproute2 skopeo umoci tar libseccomp2 docker-registry openssl)
# Level 17 runs calf-runtime under real engines: podman with its conmon and CNI plugins, and
# containerd (with ctr); runc is what they run otherwise, and what the bench compares with.
packages+=(podman conmon containernetworking-plugins containerd runc)
# The other architecture's C headers and compiler proper (cc1, in its cpp package: ~50 MB installed,
# 13 MB to download, not the 160 MB of the whole cross gcc): test/lib/abi.test.ts checks every
# syscall number, ioctl and struct layout calf uses against both x86_64's and arm64's headers.
case "$(dpkg --print-architecture)" in
  amd64) packages+=(cpp-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross) ;;
  arm64) packages+=(cpp-x86-64-linux-gnu libc6-dev-amd64-cross linux-libc-dev-amd64-cross) ;;
esac
# chromium: npm test opens the slides in it (scripts/slides-check.ts). Debian's is a real deb;
# Ubuntu ships Chromium only as a snap, so there the browser check says it is skipped.
if . /etc/os-release 2>/dev/null && [ "${ID:-}" = debian ]; then packages+=(chromium); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The docker-registry package enables a registry service of its own (on :5000, every interface);
# calf's tests start their registries in network namespaces of their own and need none.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
  say "disabling the docker-registry service (the tests start their own registries)"
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
# Likewise containerd's package starts a system containerd; level 17's tests start their own, on
# a socket and root in a directory they made.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet containerd 2>/dev/null; then
  say "disabling the containerd service (level 17's tests start their own)"
  systemctl disable --now containerd >/dev/null 2>&1 || true
fi

command -v node >/dev/null || die "Node.js is missing: install a current LTS (the Vagrantfile installs Node 24)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=11)?0:1)' \
  || die "Node.js $(node --version) is too old: calf needs 20.11 or later (22 or 24 recommended)"

# npm ci only when package-lock.json changed since the last install.
stamp=node_modules/.calf-lock.sha256
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  sha256sum package-lock.json > "$stamp"
fi

# The READMEs say `tsx levels/NN-name/calf.ts …`: give root the project's tsx when it has none.
if ! command -v tsx >/dev/null; then
  say "linking /usr/local/bin/tsx to node_modules/.bin/tsx"
  ln -sfn "$PWD/node_modules/.bin/tsx" /usr/local/bin/tsx
fi

# Test images as OCI layouts in build/images, loaded into calf's store (/var/lib/calf, or $CALF_ROOT).
say "test images"
npx tsx scripts/build-images.ts --load
say "done: try  npm run level 0"
