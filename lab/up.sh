#!/usr/bin/env bash
# Boot the built-in lab: stor1 + stor2 (storage nodes, two extra sparse disks each) and client1 (consumer).
# Management: QEMU user networking, SSH forwarded to 127.0.0.1:<free port>. Storage network 198.18.0.0/24 on a
# VDE switch that exists only between the guests, and (unless EMBER_LAB_SECOND_NET=0) a second one, 198.18.1.0/24,
# on a second switch (dm-multipath: two portals per storage node, two addresses per consumer). Every boot starts
# from fresh qcow2 overlays over the cached image.
# Writes inventories/lab/hosts.yml and $LAB_RUN/<name>.port with the ports it chose. Stop with lab/down.sh
# (stops only what this started).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=lab/common.sh
. "$here/common.sh"

"$here/build-image.sh"
for tool in qemu-system-x86_64 qemu-img vde_switch ssh; do
  command -v "$tool" >/dev/null || die "$tool not found (run: make deps)"
done
if [ -d "$LAB_RUN" ] && ls "$LAB_RUN"/*.pid >/dev/null 2>&1; then
  log "a lab is already running from $LAB_RUN; stopping it first"
  "$here/down.sh"
fi
rm -rf "$LAB_RUN"; mkdir -p "$LAB_RUN"
start=$(date +%s)

# Accelerator: KVM when it really boots a kernel, TCG otherwise (on PVM hosts KVM aborts or hangs; see LAB.md).
accel_cache="$LAB_CACHE/accel"
if [ -n "${EMBER_LAB_ACCEL:-}" ]; then
  accel="$EMBER_LAB_ACCEL"
elif [ -f "$accel_cache" ]; then
  accel="$(cat "$accel_cache")"
else
  accel=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    probe="$LAB_RUN/kvm-probe.log"
    timeout 15 qemu-system-x86_64 -accel kvm -cpu host -m 256 -display none -no-reboot -serial "file:$probe" \
      -kernel "$LAB_IMAGE_DIR/vmlinuz" -append "console=ttyS0 panic=-1" >/dev/null 2>&1 || true
    grep -q "Linux version" "$probe" 2>/dev/null && grep -q "Kernel panic" "$probe" && accel=kvm
  fi
  echo "$accel" >"$accel_cache"
fi
if [ "$accel" = kvm ]; then accel_args=(-accel kvm -cpu host); else accel_args=(-accel "tcg,thread=multi" -cpu max); fi
# vCPUs per VM (measured under TCG on this 2-core host, docs/lab.md): EMBER_LAB_SMP overrides.
LAB_SMP="${EMBER_LAB_SMP:-2}"
log "accelerator: $accel"

vde_switch -s "$LAB_RUN/vde.ctl" -d -p "$LAB_RUN/vde.pid" -M "$LAB_RUN/vde.mgmt" >/dev/null
for _ in $(seq 50); do [ -e "$LAB_RUN/vde.ctl/ctl" ] && break; sleep 0.1; done
if [ "$LAB_SECOND_NET" = 1 ]; then
  # The second storage network: its own switch, so cutting one network (ip link set down in a guest) leaves the
  # other's paths alone.
  vde_switch -s "$LAB_RUN/vde2.ctl" -d -p "$LAB_RUN/vde2.pid" -M "$LAB_RUN/vde2.mgmt" >/dev/null
  for _ in $(seq 50); do [ -e "$LAB_RUN/vde2.ctl/ctl" ] && break; sleep 0.1; done
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

declare -A port
for spec in $LAB_VMS; do
  IFS=: read -r name role az ip disks ip2 <<<"$spec"
  port[$name]=$(free_port)
  qemu-img create -q -f qcow2 -b "$LAB_IMAGE_DIR/base.raw" -F raw "$LAB_RUN/$name.qcow2"
  # cache=writeback: the guest's flushes reach the host file, so a VM killed with -9 keeps what tgt and the
  # placement ledger made durable with fsync (cache=unsafe dropped them; see docs/lab.md for the measured cost).
  drives=(-drive "file=$LAB_RUN/$name.qcow2,if=virtio,cache=$LAB_DISK_CACHE")
  # Data disks are sparse raw files: LVM writes its metadata with O_DIRECT and no flush, so the qcow2 metadata
  # that QEMU keeps in memory would be lost with a killed VM; raw files have none (measured, docs/lab.md).
  for i in $(seq 1 "$disks"); do
    truncate -s "$LAB_DISK_SIZE" "$LAB_RUN/$name-data$i.raw"
    drives+=(-drive "file=$LAB_RUN/$name-data$i.raw,format=raw,if=virtio,cache=$LAB_DISK_CACHE")
  done
  mac="52:54:00:18:00:$(printf '%02x' "${ip##*.}")"
  second=()
  append2=""
  if [ "$LAB_SECOND_NET" = 1 ] && [ -n "$ip2" ]; then
    # Added after the first storage NIC, so the guest names it eth2 (net.ifnames=0, PCI order).
    second=(-netdev "vde,id=stor2,sock=$LAB_RUN/vde2.ctl"
      -device "virtio-net-pci,netdev=stor2,mac=52:54:00:18:01:$(printf '%02x' "${ip2##*.}")")
    append2=" ember.storage_ip2=$ip2/24"
  fi
  args=(qemu-system-x86_64 "${accel_args[@]}" -m "$LAB_MEM" -smp "$LAB_SMP" -name "ember-$name"
    -display none -daemonize -pidfile "$LAB_RUN/$name.pid" -serial "file:$LAB_RUN/$name.console"
    -kernel "$LAB_IMAGE_DIR/vmlinuz" -initrd "$LAB_IMAGE_DIR/initrd.img"
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 ember.hostname=$name ember.storage_ip=$ip/24$append2"
    "${drives[@]}"
    -netdev "user,id=mgmt,hostfwd=tcp:127.0.0.1:${port[$name]}-:22" -device "virtio-net-pci,netdev=mgmt"
    -netdev "vde,id=stor,sock=$LAB_RUN/vde.ctl" -device "virtio-net-pci,netdev=stor,mac=$mac"
    "${second[@]}")
  # lab/vm.sh boots a killed VM again with the same command line and disks.
  printf '%q ' "${args[@]}" >"$LAB_RUN/$name.cmd"
  echo "${port[$name]}" >"$LAB_RUN/$name.port"   # read by lab/ssh.sh and lab/vm.sh
  "${args[@]}"
  log "started $name ($role${az:+, $az}, storage $ip${append2:+ and $ip2}, ssh 127.0.0.1:${port[$name]})"
done

ssh_opts=(-i "$LAB_KEY" "${LAB_SSH_OPTS[@]}" -o ConnectTimeout=5)
deadline=$(( $(date +%s) + ${EMBER_LAB_BOOT_TIMEOUT:-420} ))
for spec in $LAB_VMS; do
  name="${spec%%:*}"
  until ssh "${ssh_opts[@]}" -p "${port[$name]}" root@127.0.0.1 "test -f /etc/ember-identity" 2>/dev/null; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
      tail -n 20 "$LAB_RUN/$name.console" >&2 || true
      die "$name did not answer on SSH in time"
    fi
    sleep 3
  done
  log "$name answers on SSH"
done

inv="$repo/inventories/lab/hosts.yml"
mkdir -p "$(dirname "$inv")"
{
  echo "---"
  echo "# Written by lab/up.sh at $(date -u +%FT%TZ); ports change at every boot. Do not edit."
  echo "all:"
  echo "  vars:"
  echo "    ansible_host: 127.0.0.1"
  echo "    ansible_user: root"
  echo "    ansible_ssh_private_key_file: $LAB_KEY"
  echo "    ansible_ssh_common_args: ${LAB_SSH_OPTS[*]}"
  echo "    ansible_python_interpreter: /usr/bin/python3"
  echo "  children:"
  for group in storage consumer; do
    echo "    blockstore_${group/consumer/consumers}:"
    echo "      hosts:"
    for spec in $LAB_VMS; do
      IFS=: read -r name role az ip disks ip2 <<<"$spec"
      [ "$role" = "$group" ] || continue
      echo "        $name:"
      echo "          ansible_port: ${port[$name]}"
      echo "          blockstore_storage_ip: $ip"
      if [ "$LAB_SECOND_NET" = 1 ] && [ -n "$ip2" ]; then
        echo "          blockstore_storage_ips: [$ip, $ip2]"
      fi
    done
  done
} >"$inv"
echo "$(( $(date +%s) - start ))" >"$LAB_RUN/boot-seconds"
log "lab up in $(( $(date +%s) - start )) s; inventory: $inv"
