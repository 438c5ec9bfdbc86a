#!/usr/bin/env bash
# Open a shell (or run a command) on a lab VM: lab/ssh.sh stor1 [command...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lab/common.sh
. "$here/common.sh"
name="${1:?usage: lab/ssh.sh NAME [command...]}"; shift
port="$(awk -v h="$name:" '$1==h {getline; print $2}' "$here/../inventories/lab/hosts.yml")"
[ -n "$port" ] || die "no port for $name in inventories/lab/hosts.yml (is the lab up?)"
exec ssh -i "$LAB_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  -p "$port" root@127.0.0.1 "$@"
