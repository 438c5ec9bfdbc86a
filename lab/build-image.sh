#!/usr/bin/env bash
# Build the lab's Debian base image once and cache it outside the repository.
# Output: $LAB_IMAGE_DIR/{base.raw,vmlinuz,initrd.img,stamp}. Rebuilt when any input changes: this script,
# firstboot.sh, common.sh, the suite, the mirror or the lab's SSH key (all hashed into the stamp).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lab/common.sh
. "$here/common.sh"

mirror="$(lab_mirror)"
mkdir -p "$LAB_CACHE" "$LAB_IMAGE_DIR"
[ -f "$LAB_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C ember-lab -f "$LAB_KEY"
stamp_want="$({ cat "$here/build-image.sh" "$here/firstboot.sh" "$here/common.sh" "$LAB_KEY.pub"
                printf 'suite=%s\nmirror=%s\n' "$LAB_SUITE" "$mirror"; } | sha256sum | cut -c1-16)"
if [ -f "$LAB_IMAGE_DIR/stamp" ] && [ "$(cat "$LAB_IMAGE_DIR/stamp")" = "$stamp_want" ] \
   && [ -f "$LAB_IMAGE_DIR/base.raw" ]; then
  log "image cached: $LAB_IMAGE_DIR (stamp $stamp_want)"
  exit 0
fi
for tool in debootstrap mkfs.ext4 qemu-img; do
  command -v "$tool" >/dev/null || die "$tool not found (run: make deps-lab)"
done
# debootstrap downloads the way the host's apt does, through its proxy when one is configured.
if [ -z "${http_proxy:-}" ]; then
  eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
  [ -z "${http_proxy:-}" ] || export http_proxy
fi

start=$(date +%s)
work="$LAB_CACHE/build.$$"
rootfs="$work/rootfs"
trap 'rm -rf "$work"' EXIT
mkdir -p "$rootfs"
pkgs=linux-image-cloud-amd64,initramfs-tools,systemd-sysv,udev,kmod,lvm2,thin-provisioning-tools,tgt,open-iscsi
pkgs=$pkgs,nfs-kernel-server,nfs-common,openssh-server,python3,python3-apt,iproute2,ifupdown,isc-dhcp-client,sudo
# dm-multipath over the two storage networks (the iscsi_initiator role would install it otherwise).
pkgs=$pkgs,multipath-tools
log "debootstrap $LAB_SUITE (minbase) from $mirror into $rootfs"
debootstrap --variant=minbase --include="$pkgs" "$LAB_SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

# The backup store's zstd codec (the backup module falls back to zlib without it). Installed with apt in the
# chroot after debootstrap: listed in --include, debootstrap failed to configure the base packages (five times,
# naming python3-zstandard) on this mirror; apt-get in the finished chroot installs it in seconds.
# qemu-utils: qemu-img for volumes from images and the image module (not in --include either, for the same reason).
log "apt-get install python3-zstandard qemu-utils"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  python3-zstandard qemu-utils \
  >"$work/apt.log" 2>&1 || { umount "$rootfs/proc"; tail -n 30 "$work/apt.log" >&2; die "apt-get install failed"; }
umount "$rootfs/proc"

log "configuring the image"
install -d -m 700 "$rootfs/root/.ssh"
install -m 600 "$LAB_KEY.pub" "$rootfs/root/.ssh/authorized_keys"
cat >"$rootfs/etc/network/interfaces" <<'IF'
auto lo
iface lo inet loopback
auto eth0
iface eth0 inet dhcp
source /etc/network/interfaces.d/*
IF
echo '/dev/vda / ext4 defaults,noatime 0 1' >"$rootfs/etc/fstab"
echo ember-lab >"$rootfs/etc/hostname"
# Identity is made per VM at first boot (machine-id, SSH host keys, initiator name): clones must not share them.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs"/etc/ssh/ssh_host_* "$rootfs/etc/iscsi/initiatorname.iscsi"
install -m 755 "$here/firstboot.sh" "$rootfs/usr/local/sbin/ember-firstboot"
cat >"$rootfs/etc/systemd/system/ember-firstboot.service" <<'UNIT'
[Unit]
Description=ember lab: per-VM identity and storage network from the kernel command line
DefaultDependencies=no
After=local-fs.target
Before=network-pre.target ssh.service iscsid.service open-iscsi.service tgt.service
Wants=network-pre.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ember-firstboot
RemainAfterExit=yes
[Install]
WantedBy=sysinit.target
UNIT
ln -sf /etc/systemd/system/ember-firstboot.service "$rootfs/etc/systemd/system/sysinit.target.wants/ember-firstboot.service"
# Quiet, fast boots: no apt timers, no serial getty waits on DNS, ssh allows root by key.
rm -f "$rootfs"/etc/systemd/system/timers.target.wants/apt-daily*.timer
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin prohibit-password/; s/^#\?UseDNS.*/UseDNS no/' "$rootfs/etc/ssh/sshd_config"
# iscsi_tcp and dm modules load on demand; load them early so the first task does not wait.
printf '%s\n' dm_thin_pool dm_snapshot iscsi_tcp >"$rootfs/etc/modules-load.d/ember.conf"
echo 'nameserver 10.0.2.3' >"$rootfs/etc/resolv.conf"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

cp -L "$rootfs/vmlinuz" "$work/vmlinuz"
cp -L "$rootfs/initrd.img" "$work/initrd.img"
log "mkfs.ext4 -d (2.5 GiB sparse)"
rm -f "$work/base.raw"
truncate -s 2560M "$work/base.raw"
mkfs.ext4 -q -F -L ember-root -d "$rootfs" "$work/base.raw"
mv "$work/base.raw" "$work/vmlinuz" "$work/initrd.img" "$LAB_IMAGE_DIR/"
echo "$stamp_want" >"$LAB_IMAGE_DIR/stamp"
log "image built in $(( $(date +%s) - start )) s: $LAB_IMAGE_DIR"
echo "$(( $(date +%s) - start ))" >"$LAB_IMAGE_DIR/build-seconds"
