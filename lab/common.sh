# Shared settings for the lab scripts (sourced, not executed; tests/integration/lab_helpers.py reads
# LAB_SSH_OPTS from here too).
# shellcheck shell=bash disable=SC2034
LAB_CACHE="${EMBER_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ember-blockstore}"
LAB_IMAGE_DIR="$LAB_CACHE/image"
LAB_RUN="${EMBER_LAB_RUN:-$LAB_CACHE/run}"
LAB_KEY="$LAB_CACHE/id_ed25519"
LAB_SUITE="${EMBER_LAB_SUITE:-bookworm}"
# The Debian mirror for debootstrap: EMBER_LAB_MIRROR, else the host's own apt sources (see lab_mirror below).
LAB_MIRROR="${EMBER_LAB_MIRROR:-}"
# name  role     az   storage-ip    extra-disks  second-storage-ip
LAB_VMS="stor1:storage:az1:198.18.0.11:2:198.18.1.11 stor2:storage:az2:198.18.0.12:2:198.18.1.12"
LAB_VMS="$LAB_VMS client1:consumer::198.18.0.21:0:198.18.1.21"
# A second storage network (198.18.1.0/24, its own VDE switch, a second NIC on eth2 of every VM) for dm-multipath:
# each host lists both addresses in blockstore_storage_ips. Off by default (make lab, make demo, make test);
# EMBER_LAB_SECOND_NET=1 (make test-full) boots the lab with it.
LAB_SECOND_NET="${EMBER_LAB_SECOND_NET:-0}"
LAB_DISK_SIZE="${EMBER_LAB_DISK_SIZE:-4G}"
LAB_MEM="${EMBER_LAB_MEM:-1024}"
# QEMU cache mode of every lab disk: writeback honours the guest's flushes (crash tests depend on it).
LAB_DISK_CACHE="${EMBER_LAB_DISK_CACHE:-writeback}"
# SSH options for every connection to a lab VM (up.sh, ssh.sh, the inventory up.sh writes, lab_helpers.py).
# One option and its value per line, no quoting: lab_helpers.py parses this block.
LAB_SSH_OPTS=(
  -o StrictHostKeyChecking=no
  -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR
  -o BatchMode=yes
)
log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The mirror the host's apt uses for $LAB_SUITE main (deb822 and one-line sources alike, no download needed).
lab_mirror() {
  if [ -n "$LAB_MIRROR" ]; then echo "$LAB_MIRROR"; return; fi
  local uri
  # shellcheck disable=SC2016  # $(REPO_URI) is apt's own field syntax, not a shell expansion
  uri="$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
           'Identifier: Packages' 2>/dev/null | awk -v s="$LAB_SUITE" '$2 == s && $3 == "main" {print $1; exit}')"
  [ -n "$uri" ] || die "no apt source for '$LAB_SUITE main' on this host; set EMBER_LAB_MIRROR to a Debian mirror"
  echo "${uri%/}"
}
