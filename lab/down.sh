#!/usr/bin/env bash
# Stop the lab VMs and the VDE switch that lab/up.sh started (by their pid files only), and drop the overlays.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lab/common.sh
. "$here/common.sh"
[ -d "$LAB_RUN" ] || { log "no lab running"; exit 0; }
for pidfile in "$LAB_RUN"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  # Only stop a process that is still the one we started (qemu or vde_switch with our run dir in its arguments).
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$LAB_RUN"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $(basename "$pidfile" .pid) (pid $pid)"
  fi
  rm -f "$pidfile"
done
rm -rf "$LAB_RUN"
