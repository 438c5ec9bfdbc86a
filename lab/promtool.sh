#!/usr/bin/env bash
# Print the path of promtool (Debian's prometheus package), extracted once into the lab cache without installing
# the package (no daemon, no root needed when the apt lists are there): the tests check the metrics textfile with
# `promtool check metrics`. Uses a promtool already on PATH when there is one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lab/common.sh
. "$here/common.sh"
if command -v promtool >/dev/null; then command -v promtool; exit 0; fi
dir="$LAB_CACHE/promtool"
if [ ! -x "$dir/usr/bin/promtool" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
    [ "$(id -u)" = 0 ] || die "apt-get download prometheus failed (refresh the apt lists as root: apt-get update)"
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download prometheus >/dev/null) || die "apt-get download prometheus failed"
  fi
  mkdir -p "$dir.new"
  dpkg-deb -x "$work"/prometheus_*.deb "$dir.new"
  rm -rf "$dir" && mv "$dir.new" "$dir"
fi
echo "$dir/usr/bin/promtool"
