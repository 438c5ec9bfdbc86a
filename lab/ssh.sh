#!/usr/bin/env bash
# Open a shell (or run a command) on a lab VM: lab/ssh.sh stor1 [command...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lab/common.sh
. "$here/common.sh"
name="${1:?usage: lab/ssh.sh NAME [command...]}"; shift
[ -f "$LAB_RUN/$name.port" ] || die "no port file $LAB_RUN/$name.port (is the lab up? is $name a lab VM?)"
port="$(cat "$LAB_RUN/$name.port")"
exec ssh -i "$LAB_KEY" "${LAB_SSH_OPTS[@]}" -p "$port" root@127.0.0.1 "$@"
