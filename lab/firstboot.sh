#!/bin/sh
# Runs at every boot of a lab VM (each run starts from a fresh overlay). Reads from the kernel command line:
#   ember.hostname=NAME ember.storage_ip=A.B.C.D/24 [ember.storage_ip2=A.B.C.D/24]
# and gives the VM its own machine-id, SSH host keys, iSCSI initiator name and storage-network address(es): eth1,
# and eth2 on the second storage network when the lab has one.
set -eu
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
name="$(arg ember.hostname)"
ip="$(arg ember.storage_ip)"
ip2="$(arg ember.storage_ip2)"
[ -n "$name" ] || exit 0
[ -f /etc/ember-identity ] && [ "$(cat /etc/ember-identity)" = "$name" ] && exit 0
echo "$name" >/etc/hostname
hostname "$name"
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >/etc/hosts
if [ ! -s /etc/machine-id ]; then
  tr -d '-' </proc/sys/kernel/random/uuid >/etc/machine-id
fi
rm -f /etc/ssh/ssh_host_*
ssh-keygen -A >/dev/null
mkdir -p /etc/iscsi
echo "InitiatorName=iqn.1993-08.org.debian:01:$(tr -d '-' </proc/sys/kernel/random/uuid | cut -c1-12)" \
  >/etc/iscsi/initiatorname.iscsi
if [ -n "$ip" ]; then
  mkdir -p /etc/network/interfaces.d
  printf 'auto eth1\niface eth1 inet static\n    address %s\n' "$ip" >/etc/network/interfaces.d/eth1
fi
if [ -n "$ip2" ]; then
  mkdir -p /etc/network/interfaces.d
  printf 'auto eth2\niface eth2 inet static\n    address %s\n' "$ip2" >/etc/network/interfaces.d/eth2
fi
echo "$name" >/etc/ember-identity
