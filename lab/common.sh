# Shared settings for the lab scripts (sourced, not executed).
# shellcheck shell=bash
LAB_CACHE="${EMBER_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ember-blockstore}"
LAB_IMAGE_DIR="$LAB_CACHE/image"
LAB_RUN="${EMBER_LAB_RUN:-$LAB_CACHE/run}"
LAB_KEY="$LAB_CACHE/id_ed25519"
LAB_SUITE="${EMBER_LAB_SUITE:-bookworm}"
LAB_MIRROR="${EMBER_LAB_MIRROR:-http://deb.debian.org/debian}"
# name  role     az   storage-ip    extra-disks
LAB_VMS="stor1:storage:az1:198.18.0.11:2 stor2:storage:az2:198.18.0.12:2 client1:consumer::198.18.0.21:0"
LAB_DISK_SIZE="${EMBER_LAB_DISK_SIZE:-4G}"
LAB_MEM="${EMBER_LAB_MEM:-1024}"
# QEMU cache mode of every lab disk: writeback honours the guest's flushes (crash tests depend on it).
LAB_DISK_CACHE="${EMBER_LAB_DISK_CACHE:-writeback}"
log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
