#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup
short_description: Back up, verify, restore and prune block storage volumes in a content-addressed backup store
version_added: 0.3.0
description:
  - Runs on a storage node. Backs up the volumes the P(ember.blockstore.volume#module) module made into a backup
    store, a directory (local or an NFS mount) given by O(store), as Cinder's chunked backup drivers do
    (C(cinder/backup/chunkeddriver.py)). Option names are those of openstack.cloud's C(volume_backup)
    (O(backups[].name), O(backups[].volume), O(backups[].snapshot), O(backups[].is_incremental),
    O(backups[].force), O(backups[].metadata), O(backups[].description), O(backups[].state)).
  - "The store: C(chunks/<aa>/<sha256>) holds each distinct chunk once, named by the sha256 of its uncompressed
    bytes (zstd level 1 when the C(zstandard) Python package is on the node, else zlib, raw when that does not
    shrink it; zero chunks are not stored), C(backups/<volume>/<name>.json) one manifest per backup (written
    atomically) listing every chunk, so each backup restores on its own; C(lock) is locked shared by backups,
    restores and verifies and exclusive by deletes and garbage collection."
  - "O(backups[].state=present) backs up the volume from a snapshot, so an attached volume is backed up as it was
    at that instant (Cinder's C(force) for in-use volumes is not needed): a thick volume from a temporary COW
    snapshot C(bktmp-<volume>+<name>) (removed after), a thin one from a thin snapshot C(bkbase-<volume>+<name>)
    that is kept as the base of its next incremental backup (the previous base is removed once the new manifest is
    written); or from the snapshot module's snapshot O(backups[].snapshot). The volume carries the tag
    C(ember.status=backing-up) meanwhile (M(ember.blockstore.volume_info) reports V(backing-up)). A backup name
    that exists is not backed up again."
  - "O(backups[].is_incremental=true): a thin volume whose previous backup's base snapshot is kept reads only the
    chunks that overlap the blocks C(thin_delta) reports changed since (a metadata snapshot of the pool is reserved
    and always released); otherwise (a thick volume, no base) every chunk is read and only new chunks are written.
    With no earlier backup the backup is a full one, and RV(backups[].note) says so."
  - O(backups[].state=verified) re-reads, decompresses and checks every chunk of backup O(backups[].name), or of
    every backup of the volume, and fails naming each missing or corrupt chunk. It reads only.
  - "O(backups[].state=restored) writes backup O(backups[].name) of O(backups[].volume) onto the existing volume
    O(backups[].restore_to) (same size or larger) in O(backups[].vg): refused while that volume is exported or
    open on the node, and onto a volume that may hold data unless O(backups[].force=true) (a volume tagged
    C(ember.creating), being created from the backup, needs no force). Every chunk is checked before it is written;
    nothing is written when a chunk is missing. The target carries C(ember.status=restoring-backup) meanwhile and
    C(ember.restored=<volume>+<name>) after, so the same request again changes nothing (with O(backups[].force=true)
    it restores again)."
  - "O(backups[].state=absent) deletes backup O(backups[].name), or with O(backups[].keep_last),
    O(backups[].keep_daily) and O(backups[].keep_weekly) prunes the volume's backups to those kept (restic's rules:
    the N newest, the newest of each of the N latest days, of the N latest ISO weeks, in UTC). Chunks no backup
    references any more are deleted by one garbage collection after all items, under the exclusive lock."
  - Batch form (O(backups)) handles many backups in one module run; the single form (O(volume), O(name), ...)
    handles one. Every item is validated and decided before the first change; one bad item changes nothing.
  - "NFS backends (driver V(nfs) in O(backends)): an item whose O(backups[].vg) is one of the shares
    (C(server:/export)) of an V(nfs) backend of O(backends) is a volume file on that share (see
    M(ember.blockstore.volume)); the share is mounted first when it is not (RV(mounts)), within the driver's time
    bounds. V(present) reads the file C(volume-<volume>) (or, with O(backups[].snapshot), the snapshot's file); the
    storage node cannot see a consumer's loop device, so O(backups[].attached) says whether the volume is attached:
    a detached volume is read in place, an attached one only with O(backups[].force=true), from a temporary sparse
    copy C(.bktmp-<volume>+<name>) on the share (C(cp --reflink=auto --sparse=always)), crash-consistent, removed
    after (a copy left by a run that died is removed by the next backup of the volume). There is no changed-block
    tracking: O(backups[].is_incremental=true) reads every chunk and writes only the new ones. The volume's sidecar
    says V(backing-up) meanwhile."
  - "V(restored) onto an NFS volume writes into the file of O(backups[].restore_to) (on the share O(backups[].vg))
    in place: it must exist, be detached (O(backups[].attached=false)) and be at least the backup's size. A file that
    holds no allocated block (a new sparse volume) needs no force and its zero chunks are skipped (they stay holes);
    any other needs O(backups[].force=true) and gets every chunk. The sidecar says V(restoring-backup) meanwhile and
    C(restored: <volume>+<name>) after, so the same request again changes nothing. V(absent) and V(verified) read and
    write the store only. A node whose O(backends) are all V(nfs) runs no LVM command."
author: ember.blockstore contributors (@ember-blockstore)
options:
  backups:
    description: Backups to manage in one run. Mutually exclusive with O(volume).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - "Backup name: 1-63 lowercase letters, digits, C(.) or C(-), starting and ending with a letter or digit;
            unique per volume in the store."
          - Required, except with O(backups[].state=verified) (then every backup of the volume is verified) and
            with O(backups[].state=absent) and a C(keep_*) option (pruning).
        type: str
      volume: {description: "Name of the volume (as given to the volume module).", type: str, required: true}
      vg:
        description:
          - Volume group of the volume (V(present)) or of O(backups[].restore_to) (V(restored)); required for those.
          - With V(absent), the base snapshots the deleted backups kept in this VG are removed too.
          - For a volume of an V(nfs) backend of O(backends), the share (C(server:/export)) that holds its file.
        type: str
      state:
        description: Desired state.
        type: str
        choices: [present, absent, verified, restored]
        default: present
      snapshot:
        description: Back up this existing snapshot of the volume (made by the snapshot module) instead of a
          temporary snapshot.
        type: str
      is_incremental:
        description: Base the backup on the volume's previous one (see the description).
        type: bool
        default: false
      force:
        description:
          - With V(restored), overwrite a volume that may hold data, or restore again a volume restored from this
            backup before.
          - With V(present), back up an attached volume of an V(nfs) backend (O(backups[].attached=true)) from a
            temporary copy of its file (crash-consistent only).
        type: bool
        default: false
      metadata:
        description: Free key/value strings kept in the manifest (Cinder's limits on keys and values).
        type: dict
      description:
        description: Free text (at most 255 printable characters) kept in the manifest.
        type: str
      cow_size:
        description:
          - COW store size of a thick volume's temporary snapshot, in the units of the volume module's C(size) (a
            bare number is GiB). Default the volume's size. The backup is refused when the VG has less free space.
        type: raw
      restore_to:
        description: With V(restored), the existing volume (in O(backups[].vg)) to write the backup onto.
        type: str
      keep_last: {description: "With V(absent), prune: keep the N newest backups.", type: int}
      keep_daily: {description: "With V(absent), prune: keep the newest backup of each of the N latest days.",
                   type: int}
      keep_weekly: {description: "With V(absent), prune: keep the newest backup of each of the N latest ISO
                                  weeks.", type: int}
      attached:
        description:
          - Whether the volume (V(present)) or O(backups[].restore_to) (V(restored)) is attached to a consumer now
            (the plan or the inventory knows the attachments). Read for the volumes of V(nfs) backends only, whose
            consumers attach the file with a loop device the storage node cannot see; a backup of an attached volume
            needs O(backups[].force=true), a restore onto one is refused. An LVM volume's attachment is read from its
            export.
        type: bool
        default: false
        version_added: 0.3.0
  name: {description: Single form; see O(backups)., type: str}
  volume: {description: Single form; see O(backups)., type: str}
  vg: {description: Single form; see O(backups)., type: str}
  state: {description: Single form; see O(backups)., type: str, choices: [present, absent, verified, restored],
          default: present}
  snapshot: {description: Single form; see O(backups)., type: str}
  is_incremental: {description: Single form; see O(backups)., type: bool, default: false}
  force: {description: Single form; see O(backups)., type: bool, default: false}
  metadata: {description: Single form; see O(backups)., type: dict}
  description: {description: Single form; see O(backups)., type: str}
  cow_size: {description: Single form; see O(backups)., type: raw}
  restore_to: {description: Single form; see O(backups)., type: str}
  keep_last: {description: Single form; see O(backups)., type: int}
  keep_daily: {description: Single form; see O(backups)., type: int}
  keep_weekly: {description: Single form; see O(backups)., type: int}
  attached: {description: Single form; see O(backups)., type: bool, default: false, version_added: 0.3.0}
  store:
    description: Path of the backup store directory (made, mode 0700, by the first backup).
    type: path
    required: true
  chunk_size:
    description: Chunk size of new backups (V(4MiB), V(1MiB), ...; a bare number is bytes); a multiple of 4 KiB
      from 64 KiB to 64 MiB. An incremental backup reads only changed chunks when its parent has the same size.
    type: raw
    default: 4MiB
  whole_sha256:
    description:
      - "Also hash the whole volume as it is read (a full backup's RV(backups[].sha256), what C(sha256sum) of the
        device prints). Off by default: it is a second SHA-256 pass over every byte, which halves the throughput on
        a CPU-bound node; RV(backups[].digest) covers the whole volume without it."
    type: bool
    default: false
    version_added: 0.3.0
  lock_timeout:
    description: Seconds to wait for the host lock and for the store lock.
    type: int
    default: 1800
  target_prefix:
    description: IQN prefix of the targets that export volumes (a volume exported is not restored onto).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
  backends:
    description:
      - The backends of this storage node (the host's C(blockstore_backends)), validated as
        M(ember.blockstore.backend_info) validates its O(ember.blockstore.backend_info#module:backends).
      - Needed for the volumes of V(nfs) backends (the items whose O(backups[].vg) is one of their shares). With
        V(nfs) backends given, the LVM state is read only when an item of another backend needs it.
    type: list
    elements: dict
    default: []
    version_added: 0.3.0
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
    details: Decides every item (and refuses what would fail) without a change; a verify does not run in check mode.
  diff_mode:
    support: full
    details: The diff shows each backup created or deleted and each restore target's source before and after.
notes:
  - "Errors before any change, each naming the item's field and value: invalid names, a missing or foreign volume
    or snapshot, a thick volume whose VG has less free space than the COW size, a volume busy with another
    status, a restore onto a missing, smaller, exported or open volume or onto data without force, a missing
    backup to verify or restore, C(keep_*) that keep nothing, a name together with C(keep_*); for a volume of an
    V(nfs) backend, a missing, foreign or busy volume or file, an attached volume without force, a restore onto an
    attached, smaller or non-empty file without force, and a share that does not answer (named)."
  - Requirements on the storage node for thin incremental backups, C(thin_delta) (thin-provisioning-tools) and
    C(dmsetup); optional, the C(zstandard) Python package (python3-zstandard) for zstd compression.
seealso:
  - module: ember.blockstore.backup_info
  - module: ember.blockstore.snapshot
  - module: ember.blockstore.volume
"""

EXAMPLES = r"""
- name: Nightly incremental backup of a thin volume into an NFS-mounted store
  ember.blockstore.backup:
    volume: db01-data
    vg: ember-thin
    name: "nightly-{{ now(utc=true, fmt='%Y%m%d') }}"
    is_incremental: true
    store: /srv/ember-backups

- name: Verify every backup of a volume
  ember.blockstore.backup:
    volume: db01-data
    state: verified
    store: /srv/ember-backups

- name: Prune to 7 daily and 4 weekly backups
  ember.blockstore.backup:
    volume: db01-data
    vg: ember-thin
    state: absent
    keep_daily: 7
    keep_weekly: 4
    store: /srv/ember-backups

- name: Back up an attached volume of an NFS backend from a temporary copy (crash-consistent)
  ember.blockstore.backup:
    volume: files01
    vg: "198.18.0.21:/srv/ember-nfs"
    name: nightly-20261120
    attached: true
    force: true
    backends: "{{ blockstore_backends }}"
    store: /srv/ember-backups

- name: Restore a backup onto a detached volume, overwriting it
  ember.blockstore.backup:
    volume: db01-data
    name: nightly-20261120
    state: restored
    restore_to: db01-data
    vg: ember-thin
    force: true
    store: /srv/ember-backups
"""

RETURN = r"""
backups:
  description: One result per requested item, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Backup name (null for a prune)., type: str, sample: nightly-20261120}
    volume: {description: Volume name., type: str, sample: db01-data}
    vg: {description: Volume group given., type: str, sample: ember-thin}
    action: {description: "V(create), V(none), V(verify), V(restore), V(delete), V(prune) or V(absent) (nothing to
                           delete).", type: str, sample: create}
    changed: {description: Whether this item changed., type: bool, sample: true}
    status: {description: "V(available), V(absent), V(deleted), V(pruned), V(verified), V(corrupt) or
                           V(restored).", type: str, sample: available}
    size_bytes: {description: Size of the backed-up volume; null when unknown., type: int, sample: 1073741824}
    chunk_size: {description: Chunk size of the backup in bytes., type: int, sample: 4194304}
    parent: {description: "The backup an incremental one was based on (informational: every backup restores on its
                           own), or null.", type: str, sample: nightly-20261119}
    incremental: {description: Whether the backup is incremental., type: bool, sample: true}
    method: {description: "V(full) (every chunk read) or V(thin_delta) (only the chunks thin_delta reported
                           changed).", type: str, sample: thin_delta}
    note: {description: "Why an incremental backup read everything or was a full one, or null.", type: str,
           sample: "is_incremental: volume db01-data has no earlier backup: this is a full backup"}
    created_at: {description: "When the backup was taken (UTC); null when it is not there.", type: str,
                 sample: "2026-11-20T01:00:12Z"}
    digest: {description: "sha256 over the chunks' sha256 digests in order (a zero chunk counts as the sha256 of
                           its zeros): identifies the content without reading it.", type: str,
             sample: 9f2c7c0d6b1b8a1e0e5c1d3b6a1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f}
    sha256: {description: "sha256 of the whole volume when the backup read every byte; of what was written for a
                           restore; else null.", type: str,
             sample: 3b5d5c3712955042212316173ccf37be800a7b2a2b8a0c3d46b5c0e0c0f0e0d0}
    stats:
      description: "What the backup did: V(bytes_read), V(bytes_written) (to the store, compressed),
        V(chunks_new), V(chunks_reused), V(chunks_zero); null before it ran."
      type: dict
      sample: {bytes_read: 8388608, bytes_written: 1204, chunks_new: 1, chunks_reused: 254, chunks_zero: 1}
    codec: {description: "Codec of the backup's new chunks: V(zstd), V(zlib) or V(raw).", type: str, sample: zstd}
    description: {description: The backup's description or null., type: str, sample: before the upgrade}
    metadata: {description: The backup's metadata., type: dict, sample: {ticket: CHG-1234}}
    snapshot: {description: "The LV read (C(<vg>/<lv>)); for a volume of an V(nfs) backend the file read
                            (C(<share>/<file>): the volume's, its snapshot's or the temporary copy's).", type: str,
               sample: ember-thin/bkbase-db01-data+nightly}
    restore_to: {description: The volume restored onto (state restored)., type: str, sample: db01-data}
    bytes_written: {description: Bytes written onto the restore target; null otherwise., type: int,
                    sample: 1073741824}
    problems:
      description: "Missing or corrupt chunks found by a verify or a restore: each C({sha256, path, problem})
        (a verify adds C(backups), the backups that need it)."
      type: list
      elements: dict
      sample: [{sha256: 0c1f..., path: /srv/ember-backups/chunks/0c/0c1f..., problem: missing}]
    deleted: {description: Names of the backups deleted., type: list, elements: str, sample: [nightly-20261101]}
    share: {description: "The share (C(server:/export)) of a volume of an V(nfs) backend; null otherwise.",
            type: str, sample: "198.18.0.21:/srv/ember-nfs", version_added: 0.3.0}
gc:
  description: "Garbage collection after deletes (C(chunks_deleted), C(bytes_freed), C(temp_files_removed),
    C(chunks_kept)), or null when none ran."
  returned: always
  type: dict
  sample: {chunks_deleted: 12, bytes_freed: 30412800, temp_files_removed: 0, chunks_kept: 2301}
mounts:
  description: The shares of V(nfs) backends the backups and restores use, and whether this run mounted them (in
    check mode, would mount them); empty without NFS items.
  returned: always
  type: list
  elements: dict
  contains:
    share: {description: "The share, C(server:/export).", type: str, sample: "198.18.0.21:/srv/ember-nfs"}
    backend: {description: The nfs backend it belongs to., type: str, sample: nfs1}
    mount_point: {description: "Where it is mounted: C(<mount_point_base>/<first 32 hex digits of the share's
                               SHA-256>).", type: str,
                  sample: /var/lib/ember-blockstore/mnt/95333d527be211dcd23fd669dd426d51}
    action: {description: "V(mount) (mounted by this run, or in check mode it would be) or V(none) (it was
                           mounted).", type: str, sample: none}
    changed: {description: Whether the run mounted it., type: bool, sample: false}
  version_added: 0.3.0
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import node_backends, single_form
from ansible_collections.ember.blockstore.plugins.module_utils._backup import (
    ITEM_OPTIONS,
    BackupApplier,
    decide,
    read_catalog,
)
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, batch_form, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    is_volume_name,
    validate_target_prefix,
)
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_volume import open_shares, route
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_size
from ansible_collections.ember.blockstore.plugins.module_utils._volume import exported_volumes
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.backup_store import (
    ChunkStore,
    StoreError,
    validate_chunk_size,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.dmthin import ThinDelta, ThinDeltaError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import Nfs, NfsError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt

RESULT_KEYS = ("name", "volume", "vg", "action", "changed", "status", "size_bytes", "chunk_size", "parent",
               "incremental", "method", "note", "created_at", "digest", "sha256", "stats", "codec", "description",
               "metadata", "snapshot", "restore_to", "bytes_written", "problems", "deleted", "share")
CHANGES = ("create", "restore", "delete", "prune")


def argument_spec():
    return dict(backups=dict(type="list", elements="dict", options=ITEM_OPTIONS),
                store=dict(type="path", required=True), chunk_size=dict(type="raw", default="4MiB"),
                lock_timeout=dict(type="int", default=1800), whole_sha256=dict(type="bool", default=False),
                target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
                backends=dict(type="list", elements="dict", default=[]), **single_form(ITEM_OPTIONS))


def result_of(act):
    out = {key: act.get(key) for key in RESULT_KEYS}
    out["changed"] = act["action"] in CHANGES
    return out


def describe(act):
    if act.get("name") is None:
        return "backups of volume %s" % act["volume"]
    return "backup %s of volume %s" % (act["name"], act["volume"])


def diff_of(actions):
    diff = {"before": {}, "after": {}}
    for act in actions:
        if act["action"] not in CHANGES:
            continue
        if act["action"] == "restore":
            key = "volume %s" % act["restore_to"]
            before = [t.split("=", 1)[1] for t in act["target_tags"] if t.startswith("ember.restored=")]
            if act.get("nfs"):
                before = [act["previous_restored"]] if act.get("previous_restored") else []
            diff["before"][key] = {"restored_from": before[0] if before else None}
            diff["after"][key] = {"restored_from": "%s+%s" % (act["volume"], act["name"])}
            continue
        names = [act["name"]] if act["action"] == "create" else act["deleted"]
        for name in names:
            key = "%s/%s" % (act["volume"], name)
            diff["before"][key] = "absent" if act["action"] == "create" else "present"
            diff["after"][key] = "present" if act["action"] == "create" else "absent"
    return diff


def uses_lvm(item):
    """Whether an item that is not an NFS volume's reads the LVM state (a verify, or a delete without vg, does
    not)."""
    state = item.get("state") or "present"
    return state in ("present", "restored") or (state == "absent" and item.get("vg") is not None)


def nfs_views(batch, runner, routed, mount):
    """:func:`_nfs_volume.open_shares` of the shares the NFS backups and restores use; a share that cannot be used
    fails the module, naming it."""
    wanted = {share: cfg for cfg, share in routed.values()}
    try:
        return open_shares(Nfs(runner), wanted, mount)
    except NfsError as exc:
        batch.fail(str(exc), mounts=[], **exc.context())


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           **batch_form("backups", "volume"))
    params = module.params
    batch = Batch(module, "backups", result_of, describe, ITEM_OPTIONS, "backup",
                  catch=(CommandError, RuntimeError, StoreError, ThinDeltaError, OSError))
    try:
        validate_target_prefix(params["target_prefix"])
        chunk_size = validate_chunk_size(parse_size(params["chunk_size"], "chunk_size"))
        if not os.path.isabs(params["store"]):
            raise NameError_("store: %r is not an absolute path" % params["store"])
        configs = node_backends(params["backends"], "backends")
    except (NameError_, SizeError, ValueError) as exc:
        batch.fail(str(exc))
    # Items on a share of an nfs backend are volume files (_nfs_backup); every other item is an LV, as before.
    routed, errors = route(batch.items, configs, batch.field)
    if errors:
        batch.fail("; ".join(errors), errors=errors)
    store = ChunkStore(params["store"], lock_timeout=params["lock_timeout"])

    runner = Runner(module, lock=True)
    lvm, tgt, state, exported, foreign = None, None, None, {}, {}
    others = [item for index, item in enumerate(batch.items) if index not in routed]
    # Without nfs backends the LVM state is read as it always was; with them, only when an LVM item needs it (an
    # NFS-only node never runs an LVM command).
    if any(uses_lvm(item) for item in others) or not any(cfg["driver"] == "nfs" for cfg in configs):
        lvm, tgt = Lvm(runner), Tgt(runner)
        # Only a restore asks whether its target is exported: the targets are read only then.
        targets = sorted({i["restore_to"] for i in others
                          if i.get("state") == "restored" and is_volume_name(i.get("restore_to"))})
        state, live = read_state(module, lambda: (lvm.state(), tgt.show_if_running() if targets else {}))
        exported, foreign = exported_volumes(targets, live, params["target_prefix"])
    try:
        catalog, unreadable = read_catalog(store, sorted({i["volume"] for i in batch.items
                                                          if is_volume_name(i.get("volume"))}))
    except (StoreError, OSError) as exc:
        batch.fail("backup store %s cannot be read: %s" % (store.path, exc))
    for _volume, errors in sorted(unreadable.items()):
        for error in errors:
            module.warn("backup store: %s" % error["error"])
    # The shares of the NFS backups and restores: decided first over the shares as they are (one not mounted is
    # predicted), so a bad item fails before the first change, a mount included; a real run then mounts what it
    # needs and decides again over what is there.
    active = {index: routed[index] for index in routed
              if (batch.items[index].get("state") or "present") in ("present", "restored")}
    views = nfs_views(batch, runner, active, mount=False) if active else {}

    def decided():
        nfs = {index: (share, views.get(share) if index in active else None) for index, (_cfg, share) in routed.items()}
        return decide(batch.items, state, catalog, exported, chunk_size, field=batch.field, foreign=foreign,
                      unreadable=unreadable, nfs=nfs)

    actions, errors = decided()
    if not errors and not module.check_mode and any(view.predicted for view in views.values()):
        views = nfs_views(batch, runner, active, mount=True)
        actions, errors = decided()
        if errors:
            batch.fail("; ".join(errors), errors=errors, mounts=[v.result() for v in views.values()])
    actions = batch.decided(actions, errors)

    # --- apply: the one place the backup applier runs (check mode: nothing is applied) ---
    if not module.check_mode and any(a["action"] == "create" for a in actions):
        try:
            store.create()
        except OSError as exc:
            batch.fail("backup store %s cannot be made: %s" % (store.path, exc.strerror or exc))
    applier = BackupApplier(lvm, ThinDelta(runner) if lvm else None, store, whole_sha256=params["whole_sha256"],
                            nfs=Nfs(runner), views=views)
    results = batch.apply_each(actions, applier.apply)
    gc = None
    if not module.check_mode and any(a["action"] in ("delete", "prune") for a in actions):
        try:
            gc = store.gc()
        except (StoreError, OSError) as exc:
            module.fail_json(msg="backups deleted, but the garbage collection of %s failed: %s" % (store.path, exc),
                             backups=results)
    # --- end of apply ---

    mounts = [view.result() for view in views.values()]
    module.exit_json(changed=batch.changed(results) or any(m["changed"] for m in mounts), backups=results, gc=gc,
                     diff=diff_of(actions), mounts=mounts)


if __name__ == "__main__":
    main()
