#!/usr/bin/env bash
# Crash and boot one lab VM with its disks kept (for crash tests and for reproducing one by hand):
#   lab/vm.sh kill NAME   power the VM off at once (SIGKILL to its QEMU: no shutdown, no flush by the guest)
#   lab/vm.sh boot NAME   start it again with the same command line and disks, and wait until SSH answers
#   lab/vm.sh status NAME prints running or stopped
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lab/common.sh
. "$here/common.sh"
action="${1:?usage: lab/vm.sh kill|boot|status NAME}"
name="${2:?usage: lab/vm.sh kill|boot|status NAME}"
[ -f "$LAB_RUN/$name.cmd" ] || die "$name is not a VM of the running lab ($LAB_RUN/$name.cmd missing)"

running() {
  [ -f "$LAB_RUN/$name.pid" ] || return 1
  local pid
  pid="$(cat "$LAB_RUN/$name.pid")"
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$LAB_RUN/$name.qcow2"
}

case "$action" in
  status)
    if running; then echo running; else echo stopped; fi ;;
  kill)
    if running; then
      pid="$(cat "$LAB_RUN/$name.pid")"
      kill -9 "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$LAB_RUN/$name.pid"
      log "killed $name (pid $pid, SIGKILL)"
    else
      log "$name is not running"
    fi ;;
  boot)
    running && die "$name is already running"
    start=$(date +%s)
    bash -c "$(cat "$LAB_RUN/$name.cmd")"
    port="$(cat "$LAB_RUN/$name.port")"
    deadline=$(( start + ${EMBER_LAB_BOOT_TIMEOUT:-420} ))
    until ssh -i "$LAB_KEY" "${LAB_SSH_OPTS[@]}" -o ConnectTimeout=5 -p "$port" root@127.0.0.1 \
        "test -f /etc/ember-identity" 2>/dev/null; do
      [ "$(date +%s)" -gt "$deadline" ] && die "$name did not answer on SSH in time"
      sleep 3
    done
    log "$name booted again in $(( $(date +%s) - start )) s" ;;
  *) die "unknown action $action (kill, boot or status)" ;;
esac
