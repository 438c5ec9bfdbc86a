# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action for the ``backup`` module, split as ``_snapshot`` splits them.

:func:`decide` is pure: from the requested items, one LVM state, the volumes' exports and the store's manifests
(:func:`read_catalog`) it returns what each item does, or the list of errors; nothing is applied unless every item
is valid. :class:`BackupApplier` runs the LVM commands through :class:`drivers.lvm.Lvm`, thin_delta through
:class:`drivers.dmthin.ThinDelta` and reads and writes the store through :class:`drivers.backup_store.ChunkStore`.

What Cinder does (``cinder/backup/chunkeddriver.py``, ``cinder/backup/manager.py``) and what is kept: a backup of
an attached volume is taken from a temporary snapshot (Cinder's ``force``); ``is_incremental`` bases a backup on the
volume's latest one (or a full backup when there is none); a restore goes to an existing volume at least as large.
Differences: chunks are content-addressed and every manifest lists all its chunks, so no backup needs its parent
to be restored and retention may delete any of them; an incremental backup of a thin volume reads only the blocks
thin_delta reports changed since the previous backup's snapshot (Cinder reads the whole volume).

LVs. A backup's temporary snapshot is ``bktmp-<volume>+<backup>`` (a thick volume: a COW snapshot, removed after
the backup; a thin one: a thin snapshot) and a thin volume's snapshot is kept after its backup as the base of the
next incremental one, renamed nothing: ``bkbase-<volume>+<backup>``. ``+`` is in no volume or backup name, so these
never collide with each other, with a volume (``volume-<name>``) or a snapshot (``snap-<volume>+<name>``); the
prefixes avoid LVM's reserved ``snapshot``/``pvmove``. Tags: ``ember.blockstore``, ``ember.volume=<volume>``,
``ember.backup=<backup>`` (no ``ember.snapshot=``: they are not snapshots of the snapshot module, so they never
count as a volume's latest snapshot for a revert). A base whose backup is gone from the store, or that a later
backup replaced, is removed by the next backup of the volume (or by the delete of its backup, given ``vg``).

Statuses: while a backup reads the volume it carries ``ember.status=backing-up``, a restore target
``ember.status=restoring-backup`` (what ``volume_info`` reports); a restored volume carries
``ember.restored=<volume>+<backup>`` (the record that makes the same restore request a no-op).
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils import _nfs_backup
from ansible_collections.ember.blockstore.plugins.module_utils._info import CREATING_TAG, STATUS_TAG
from ansible_collections.ember.blockstore.plugins.module_utils._metadata import (
    MetadataError,
    validate_description,
    validate_metadata,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    MANAGED_TAG,
    SNAPSHOT_TAG,
    VOLUME_TAG,
    NameError_,
    is_managed_snapshot,
    show_value,
    validate_vg_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._size import (
    SizeError,
    format_size,
    parse_volume_size,
    round_up,
)
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import (
    SIZE_TAG,
    dm_name_length,
    snapshot_lv_name,
    validate_snapshot_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.backup_store import StoreError, retained
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import DEFAULT_EXTENT
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import NfsShare

__all__ = ["ITEM_OPTIONS", "STATES", "BACKUP_TAG", "RESTORED_TAG", "BASE_PREFIX", "TEMP_PREFIX", "decide",
           "read_catalog", "BackupApplier", "base_lv_name", "temp_lv_name", "validate_backup_name", "device_path"]

STATES = ("present", "absent", "verified", "restored")
ITEM_OPTIONS = dict(
    name=dict(type="str"),
    volume=dict(type="str", required=True),
    vg=dict(type="str"),
    state=dict(type="str", choices=list(STATES), default="present"),
    snapshot=dict(type="str"),
    is_incremental=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    metadata=dict(type="dict"),
    description=dict(type="str"),
    cow_size=dict(type="raw"),
    restore_to=dict(type="str"),
    keep_last=dict(type="int"),
    keep_daily=dict(type="int"),
    keep_weekly=dict(type="int"),
    attached=dict(type="bool", default=False),
)

BACKUP_TAG = "ember.backup="
RESTORED_TAG = "ember.restored="
BASE_PREFIX = "bkbase-"
TEMP_PREFIX = "bktmp-"
BACKING_UP = STATUS_TAG + "backing-up"
RESTORING = STATUS_TAG + "restoring-backup"
_DM_NAME_MAX = 127
_KEEP = ("keep_last", "keep_daily", "keep_weekly")


def validate_backup_name(name, field="name"):
    """Return ``name`` if it is a valid backup name (a volume name's rules), else raise :class:`NameError_`."""
    return validate_snapshot_name(name, field, what="backup")


def base_lv_name(volume, backup):
    """LV of a thin volume's snapshot kept as the base of its next incremental backup."""
    return "%s%s+%s" % (BASE_PREFIX, volume, backup)


def temp_lv_name(volume, backup):
    """LV of a backup's temporary snapshot (thick: COW)."""
    return "%s%s+%s" % (TEMP_PREFIX, volume, backup)


def device_path(vg, lv):
    """Device path of an LV on the storage node (tests point it at files)."""
    return "/dev/%s/%s" % (vg, lv)


def _tag_value(lv, prefix):
    return next((t[len(prefix):] for t in (lv or {}).get("tags") or [] if t.startswith(prefix)), None)


def _is_open(lv):
    return (lv.get("attr") or "      ")[5:6] == "o"


def _is_active(lv):
    return (lv.get("attr") or "     ")[4:5] == "a"


def read_catalog(store, volumes):
    """``({volume: [manifest, oldest first]}, {volume: [{"path", "error"}]})`` for ``volumes`` (a store that does
    not exist yet has none)."""
    catalog, unreadable = {}, {}
    if not store.exists():
        return {v: [] for v in volumes}, {}
    for volume in volumes:
        errors = []
        catalog[volume] = store.manifests(volume, errors=errors)
        if errors:
            unreadable[volume] = errors
    return catalog, unreadable


def _backup_lvs(lvm_state, vg, volume, prefix):
    """The project's backup LVs (``prefix`` bkbase-/bktmp-) of ``volume`` in ``vg``: ``[(lv, backup name)]``."""
    out = []
    for lv in lvm_state.lvs:
        if lv["vg"] != vg or not lv["name"].startswith(prefix + volume + "+"):
            continue
        tags = lv.get("tags") or []
        backup = _tag_value(lv, BACKUP_TAG)
        if MANAGED_TAG in tags and VOLUME_TAG + volume in tags and backup \
                and lv["name"] == "%s%s+%s" % (prefix, volume, backup):
            out.append((lv, backup))
    return out


def _validate(item, where, nfs=False):
    """The item's own fields: raises NameError_/SizeError/MetadataError/ValueError naming the field. ``nfs``: the
    item's ``vg`` is a share of an nfs backend (checked by ``_nfs_volume.route``), not a volume group."""
    state = item.get("state") or "present"
    if state not in STATES:
        raise NameError_("%s.state: %s is not one of %s" % (where, show_value(state), ", ".join(STATES)))
    validate_volume_name(item.get("volume"), where + ".volume")
    keeps = {k: item.get(k) for k in _KEEP if item.get(k) is not None}
    for key, value in keeps.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise NameError_("%s.%s: %s is not a whole number of 0 or more" % (where, key, show_value(value)))
    if keeps and state != "absent":
        raise NameError_("%s: %s apply to state absent only (pruning)" % (where, ", ".join(sorted(keeps))))
    if item.get("name") is not None:
        validate_backup_name(item["name"], where + ".name")
    elif not (state == "absent" and keeps) and state != "verified":
        raise NameError_("%s.name: required when state is %s" % (where, state))
    if state == "absent" and keeps and item.get("name") is not None:
        raise NameError_("%s: name and %s exclude each other: name deletes one backup, keep_* prune the volume's "
                         "backups" % (where, "/".join(sorted(keeps))))
    if state == "absent" and keeps and not any(keeps.values()):
        raise NameError_("%s: %s keep no backup; delete backups by name instead" % (where, ", ".join(sorted(keeps))))
    if item.get("vg") is not None:
        if not nfs:
            validate_vg_name(item["vg"], where + ".vg")
    elif state in ("present", "restored"):
        raise NameError_("%s.vg: required when state is %s (the volume group of %s)"
                         % (where, state, "the volume" if state == "present" else "restore_to"))
    if state == "restored":
        validate_volume_name(item.get("restore_to"), where + ".restore_to")
    elif item.get("restore_to") is not None:
        raise NameError_("%s.restore_to: applies to state restored only" % where)
    if item.get("snapshot") is not None:
        if state != "present":
            raise NameError_("%s.snapshot: applies to state present only" % where)
        validate_backup_name(item["snapshot"], where + ".snapshot")
    validate_description(item.get("description"), where + ".description")
    validate_metadata(item.get("metadata"), where + ".metadata")
    if item.get("cow_size") is not None:
        if state != "present":
            raise NameError_("%s.cow_size: applies to state present only" % where)
        cow = parse_volume_size(item["cow_size"], where + ".cow_size")
        if cow <= 0:
            raise SizeError("%s.cow_size: %s must be greater than zero" % (where, show_value(item["cow_size"])))
    for key in ("is_incremental", "force", "attached"):
        if not isinstance(item.get(key, False), bool):
            raise NameError_("%s.%s: %s is not a boolean" % (where, key, show_value(item.get(key))))
    return state


def _from_manifest(act, manifest):
    """Copy what a manifest says into an action's result fields."""
    for key in ("size_bytes", "chunk_size", "parent", "incremental", "created_at", "digest", "sha256", "stats",
                "codec", "description", "metadata", "method"):
        act[key] = manifest.get(key)
    act["snapshot"] = manifest.get("source")


def decide(items, lvm_state, catalog, exported, chunk_size, field="backups", foreign=None, unreadable=None,
           nfs=None):
    """Return ``(actions, errors)``.

    ``items``: option dicts (``ITEM_OPTIONS``). ``lvm_state``: :class:`drivers.lvm.LvmState`. ``catalog``:
    ``{volume: [manifest]}`` of every volume the items name (:func:`read_catalog`), ``unreadable`` its
    unreadable manifests. ``exported``/``foreign``: ``{volume: iqn}`` of the ``restore_to`` volumes exported by a
    target of ours / another (``_volume.exported_volumes``). ``chunk_size``: bytes, for new backups.

    Each action: the item plus ``action`` (create|none|verify|restore|delete|prune|absent), the result fields
    (``status``, ``size_bytes``, ``parent``, ``method``, ``note``, ...) and what the applier needs: ``manifest``
    or ``manifests``, ``source_lv``, ``temp_lv``, ``new_base``, ``base`` (``(lv, manifest)`` for thin_delta),
    ``stale_lvs``, ``thin``, ``cow_size_bytes``, ``pool``, ``known_zero``, ``thin_target`` (zero chunks are
    discarded, not written), ``target_tags``.

    ``nfs``: ``{index: (share, view)}`` of the items on a share of an nfs backend (``_nfs_volume.route``; ``view``
    the share's ``_nfs_volume.ShareView`` for states present and restored, else None): their ``vg`` is the share,
    they are decided by ``_nfs_backup`` and their actions carry ``nfs`` (True) and ``share``. ``lvm_state`` may be
    None when no other item needs it (an NFS-only node reads no LVM).
    """
    actions, errors = [], []
    seen = {}
    unreadable = unreadable or {}
    nfs = nfs or {}
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, index)
        share, view = nfs.get(index, (None, None))
        try:
            state = _validate(item, where, nfs=share is not None)
        except (NameError_, SizeError, MetadataError) as exc:
            errors.append(str(exc))
            continue
        volume, name = item["volume"], item.get("name")
        key = (volume, name, state)
        if name is not None and key in seen:
            errors.append("%s.name: backup %r of volume %s is listed twice with state %s (also %s)"
                          % (where, name, volume, state, seen[key]))
            continue
        seen[key] = where
        manifests = catalog.get(volume) or []
        by_name = {m["name"]: m for m in manifests}
        # ``snapshot`` is an option (a snapshot's name) and a result (the LV read): the option is kept apart.
        act = dict(item, snapshot_name=item.get("snapshot"), state=state, action="none", status="absent",
                   size_bytes=None, chunk_size=None, parent=None, incremental=None, created_at=None, digest=None,
                   sha256=None, stats=None, codec=None, snapshot=None, method=None, note=None, bytes_written=None,
                   problems=[], deleted=[], stale_lvs=[], share=share, nfs=share is not None)
        if share is not None:
            act["vg"] = share
        if name in by_name:
            _from_manifest(act, by_name[name])
            act["status"] = "available"
        if share is not None and state == "present":
            error = _nfs_backup.decide_present(act, where, view, manifests, by_name, chunk_size)
        elif share is not None and state == "restored":
            error = (_nfs_backup.decide_restored(act, where, view, by_name[name]) if name in by_name else
                     "%s.name: volume %s has no backup %s in the store" % (where, volume, show_value(name)))
        else:
            decider = {"present": _decide_present, "absent": _decide_absent, "verified": _decide_verified,
                       "restored": _decide_restored}[state]
            error = decider(act, where, lvm_state, manifests, by_name, chunk_size, exported, foreign or {},
                            unreadable.get(volume) or [])
        if error:
            errors.append(error)
            continue
        actions.append(act)
    return actions, errors


def _decide_present(act, where, lvm_state, manifests, by_name, chunk_size, exported, foreign, unreadable):
    volume, name, vg_name = act["volume"], act["name"], act["vg"]
    if name in by_name:
        return None  # the backup exists: nothing to do (a backup is never rewritten)
    vol = lvm_state.volume(vg_name, volume)
    if vol is None:
        return ("%s.volume: volume %s does not exist in volume group %s" % (where, show_value(volume), vg_name))
    if not vol["managed"]:
        return ("%s.volume: LV %s/%s exists but is not an ember.blockstore volume; refusing to back it up"
                % (where, vg_name, vol["name"]))
    status = _tag_value(vol, STATUS_TAG)
    if status not in (None, "backing-up"):
        return ("%s: volume %s is %s (tag %s%s); back it up when that has finished"
                % (where, volume, status, STATUS_TAG, status))
    for lv_name in (base_lv_name(volume, name), temp_lv_name(volume, name)):
        if dm_name_length(vg_name, lv_name) > _DM_NAME_MAX:
            return ("%s.name: %s gives the LV %s/%s, whose device-mapper name is longer than %d characters; use a "
                    "shorter backup name" % (where, show_value(name), vg_name, lv_name, _DM_NAME_MAX))
        other = lvm_state.lv(vg_name, lv_name)
        if other is not None and _tag_value(other, BACKUP_TAG) != name:
            return ("%s: LV %s/%s exists but is not ember.blockstore's backup LV of %s (tags '%s', '%s%s', '%s%s'); "
                    "refusing to touch it" % (where, vg_name, lv_name, name, MANAGED_TAG, VOLUME_TAG, volume,
                                              BACKUP_TAG, name))
    thin = bool(vol["pool_lv"])
    act.update(action="create", status="available", size_bytes=vol["size_bytes"], chunk_size=chunk_size,
               thin=thin, pool=vol["pool_lv"], origin_lv=vol["name"], volume_tags=list(vol["tags"]),
               cow_size_bytes=None, temp_lv=None, new_base=None, base=None, old_bases=[],
               incremental=bool(act.get("is_incremental")), method="full")
    if act.get("snapshot_name"):
        wanted = act["snapshot_name"]
        snap = lvm_state.lv(vg_name, snapshot_lv_name(volume, wanted))
        if snap is None or not is_managed_snapshot(snap, volume) or SNAPSHOT_TAG + wanted not in snap["tags"]:
            return ("%s.snapshot: volume %s has no snapshot %s (no LV %s/%s of the snapshot module)"
                    % (where, volume, show_value(wanted), vg_name, snapshot_lv_name(volume, wanted)))
        recorded = _tag_value(snap, SIZE_TAG)
        if recorded and recorded.isdigit():
            act["size_bytes"] = int(recorded)
        act.update(source_lv=snap["name"], thin=bool(snap["pool_lv"]), source_active=_is_active(snap))
        if act.get("cow_size") is not None:
            return "%s.cow_size: applies to a temporary snapshot; none is made with snapshot" % where
    elif thin:
        if act.get("cow_size") is not None:
            return ("%s.cow_size: %s is given, but volume %s is thin (pool %s): its snapshot shares the pool; remove "
                    "cow_size" % (where, show_value(act["cow_size"]), volume, vol["pool_lv"]))
        act.update(source_lv=base_lv_name(volume, name), new_base=base_lv_name(volume, name), source_active=False)
    else:
        vg = lvm_state.vgs.get(vg_name)
        extent = vg["extent_size_bytes"] if vg else DEFAULT_EXTENT
        want = round_up(parse_volume_size(act["cow_size"]) if act.get("cow_size") is not None
                        else vol["size_bytes"], extent)
        free = vg["free_bytes"] if vg else 0
        if want > free:
            return ("%s: volume group %s has %s free; the temporary snapshot of volume %s needs %s (cow_size, default "
                    "the volume's size): free space in the VG or give a smaller cow_size"
                    % (where, vg_name, format_size(free), volume, format_size(want)))
        act.update(source_lv=temp_lv_name(volume, name), temp_lv=temp_lv_name(volume, name), cow_size_bytes=want,
                   source_active=True)
    act["snapshot"] = "%s/%s" % (vg_name, act["source_lv"])
    # Bases kept by earlier backups: the newest whose backup exists is the base of a thin_delta incremental; the
    # others (their backup deleted or replaced, or a run that died before its manifest) are removed after this one.
    bases = _backup_lvs(lvm_state, vg_name, volume, BASE_PREFIX)
    valid = sorted(((by_name[b]["created_at"], b, lv) for lv, b in bases if b in by_name and b != name),
                   key=lambda entry: entry[:2])
    base = valid[-1] if valid else None
    act["stale_lvs"] = [lv["name"] for lv, b in bases if b not in by_name and b != name] + \
        [lv["name"] for lv, b in _backup_lvs(lvm_state, vg_name, volume, TEMP_PREFIX) if b != name]
    if act["new_base"]:
        act["old_bases"] = [lv["name"] for _when, _b, lv in valid]
    if act.get("is_incremental"):
        if base and act["thin"] and base[2]["pool_lv"] == act["pool"] and \
                by_name[base[1]]["chunk_size"] == chunk_size:
            act.update(parent=base[1], base=(base[2]["name"], by_name[base[1]]), method="thin_delta")
        elif manifests:
            act["parent"] = manifests[-1]["name"]
            act["note"] = ("incremental without changed-block tracking (%s): every chunk is read, only new chunks are "
                           "written" % ("a thick volume" if not act["thin"] else "no base snapshot of backup %s"
                                        % manifests[-1]["name"]))
        else:
            act["incremental"] = False
            act["note"] = "is_incremental: volume %s has no earlier backup: this is a full backup" % volume
    return None


def _decide_absent(act, where, lvm_state, manifests, by_name, chunk_size, exported, foreign, unreadable):
    volume, name = act["volume"], act.get("name")
    if name is not None:
        if name not in by_name:
            act.update(action="absent", status="absent")
            return None
        doomed = [by_name[name]]
        act.update(action="delete", status="deleted")
    else:
        if unreadable:
            return ("%s: the store has manifests of volume %s that cannot be read (%s); fix or remove them before "
                    "pruning" % (where, volume, "; ".join(e["error"] for e in unreadable)))
        keep = retained(manifests, act.get("keep_last") or 0, act.get("keep_daily") or 0,
                        act.get("keep_weekly") or 0)
        doomed = [m for m in manifests if m["name"] not in keep]
        act.update(action="prune" if doomed else "none", status="pruned" if doomed else "available")
    act["manifests"] = doomed
    act["deleted"] = [m["name"] for m in doomed]
    names = set(act["deleted"])
    if act.get("vg") and not act["nfs"] and lvm_state is not None:
        act["stale_lvs"] = [lv["name"] for lv, b in _backup_lvs(lvm_state, act["vg"], volume, BASE_PREFIX)
                            if b in names]
    return None


def _decide_verified(act, where, lvm_state, manifests, by_name, chunk_size, exported, foreign, unreadable):
    volume, name = act["volume"], act.get("name")
    if name is not None:
        if name not in by_name:
            return "%s.name: volume %s has no backup %s in the store" % (where, volume, show_value(name))
        act["manifests"] = [by_name[name]]
    else:
        if unreadable:
            return ("%s: the store has manifests of volume %s that cannot be read: %s"
                    % (where, volume, "; ".join(e["error"] for e in unreadable)))
        if not manifests:
            return "%s.volume: volume %s has no backups in the store" % (where, volume)
        act["manifests"] = list(manifests)
    act.update(action="verify", status="verified")
    return None


def _decide_restored(act, where, lvm_state, manifests, by_name, chunk_size, exported, foreign, unreadable):
    volume, name, target, vg_name = act["volume"], act["name"], act["restore_to"], act["vg"]
    if name not in by_name:
        return "%s.name: volume %s has no backup %s in the store" % (where, volume, show_value(name))
    manifest = by_name[name]
    lv = lvm_state.volume(vg_name, target)
    if lv is None:
        return ("%s.restore_to: volume %s does not exist in volume group %s; create it first (at least %s)"
                % (where, show_value(target), vg_name, format_size(manifest["size_bytes"])))
    if not lv["managed"]:
        return ("%s.restore_to: LV %s/%s exists but is not an ember.blockstore volume; refusing to write it"
                % (where, vg_name, lv["name"]))
    act.update(manifest=manifest, target_lv=lv["name"], target_tags=list(lv["tags"]), status="available",
               known_zero=bool(lv["pool_lv"]) and lv.get("data_percent") == 0.0 and CREATING_TAG in lv["tags"],
               thin_target=bool(lv["pool_lv"]))
    if RESTORED_TAG + "%s+%s" % (volume, name) in lv["tags"] and not act.get("force"):
        act["status"] = "restored"
        return None  # restored by an earlier run: the same request changes nothing
    if lv["size_bytes"] < manifest["size_bytes"]:
        return ("%s.restore_to: volume %s is %s, smaller than backup %s of volume %s (%s); extend it first"
                % (where, target, format_size(lv["size_bytes"]), name, volume, format_size(manifest["size_bytes"])))
    iqn = exported.get(target) or foreign.get(target)
    if iqn:
        return ("%s.restore_to: volume %s is in-use (exported as %s); Cinder restores only to an available volume: "
                "detach it first" % (where, target, iqn))
    if _is_open(lv):
        return "%s.restore_to: volume %s is open on the storage node (lv_attr %s); close it first" % (
            where, target, lv["attr"])
    status = _tag_value(lv, STATUS_TAG)
    if status not in (None, "restoring-backup"):
        return "%s.restore_to: volume %s is %s; restore when that has finished" % (where, target, status)
    if CREATING_TAG not in lv["tags"] and not act.get("force"):
        return ("%s.restore_to: volume %s exists and may hold data; set force: true to overwrite it with backup %s "
                "of volume %s" % (where, target, name, volume))
    act.update(action="restore", status="restored")
    return None


class BackupApplier:
    """Runs decided actions (``lvm``: :class:`drivers.lvm.Lvm`, ``thin``: :class:`drivers.dmthin.ThinDelta`,
    ``store``: :class:`drivers.backup_store.ChunkStore`; ``whole_sha256``: a full backup also hashes the whole
    stream for the manifest's plain ``sha256``, a second pass over every byte). The actions of NFS volumes run
    through ``nfs`` (:class:`drivers.nfs.Nfs`) on the shares ``views`` (``{share: _nfs_volume.ShareView}``); ``lvm``
    and ``thin`` may be None when no action needs them."""

    def __init__(self, lvm, thin, store, whole_sha256=False, nfs=None, views=None):
        self.lvm = lvm
        self.thin = thin
        self.store = store
        self.whole_sha256 = whole_sha256
        self.nfs = nfs
        self.views = views or {}

    def apply(self, act):
        if act.get("nfs") and act["action"] in ("create", "restore"):
            (self.nfs_backup if act["action"] == "create" else self.nfs_restore)(act)
            return
        {"create": self.backup, "verify": self.verify, "restore": self.restore, "delete": self.delete,
         "prune": self.delete}.get(act["action"], lambda act: None)(act)

    def _share(self, act):
        view = self.views[act["share"]]
        return NfsShare(self.nfs, view.share, view.path)

    def nfs_backup(self, act):
        """A backup of an NFS volume's file: 1. copies a run that died left removed; 2. the sidecar's status
        ``backing-up``; 3. an attached volume (with force) copied to its temporary copy; 4. the store reads the file
        (or the copy, or the snapshot's file) and writes the manifest; 5. the copy removed and the status
        ``available`` again, whatever happened."""
        share, rec = self._share(act), act["record"]
        for copy in act["stale_copies"]:
            share.remove_backup_copy(copy)
        rec["status"] = "backing-up"
        share.write_info(rec)
        copy = None
        try:
            source = act["source_path"]
            if act["temp_copy"]:
                copy = act["temp_copy"]
                source = share.copy_for_backup(act["volume"], act["name"])
            manifest = self.store.backup(
                source, act["volume"], act["name"], chunk_size=act["chunk_size"], parent=_parent(self.store, act),
                incremental=act["incremental"], metadata=act.get("metadata"), description=act.get("description"),
                source=act["snapshot"], method=act["method"], whole_sha256=self.whole_sha256)
            _from_manifest(act, manifest)
        finally:
            try:
                if copy:
                    share.remove_backup_copy(copy)
            finally:
                rec["status"] = "available"
                share.write_info(rec)

    def nfs_restore(self, act):
        """A restore onto an NFS volume's file, in place: the sidecar says ``restoring-backup`` (and no longer
        names an earlier restore), the store writes the backup into the file (zero chunks skipped when it held no
        allocated block), then the sidecar's ``restored`` names this backup; its status is ``available`` again
        whatever happened."""
        share, rec = self._share(act), act["record"]
        rec.update(status="restoring-backup", restored=None)
        share.write_info(rec)
        try:
            result = self.store.restore(act["manifest"], act["target_path"], known_zero=act["known_zero"])
            act["sha256"] = result["sha256"]
            act["bytes_written"] = result["bytes_written"]
            rec["restored"] = _nfs_backup.restored_record(act["volume"], act["name"])
        except StoreError as exc:
            act["problems"] = getattr(exc, "problems", [])
            raise
        finally:
            rec["status"] = "available"
            share.write_info(rec)

    def _tags(self, act):
        return [MANAGED_TAG, VOLUME_TAG + act["volume"], BACKUP_TAG + act["name"]]

    def backup(self, act):
        """1. ``ember.status=backing-up`` on the volume; 2. the snapshot (thick: COW ``bktmp-``, thin:
        ``bkbase-``, activated with ``-K``), unless ``snapshot`` names one; 3. thin_delta against the base when the
        backup is a thin_delta incremental; 4. the store reads the snapshot and writes the manifest; 5. the temporary
        snapshot removed (thick), or the new base deactivated and the previous bases removed (thin); the status tag
        removed whatever happened. A failed backup removes its snapshot (a thin one is no base without its
        manifest)."""
        vg, volume = act["vg"], act["volume"]
        created = None
        self.lvm.change_tags(vg, act["origin_lv"], add=[] if BACKING_UP in act["volume_tags"] else [BACKING_UP])
        try:
            if act.get("temp_lv"):
                self.lvm.create_snapshot(vg, act["origin_lv"], act["temp_lv"], self._tags(act), act["cow_size_bytes"])
                created = act["temp_lv"]
                self.lvm.settle()
            elif act.get("new_base"):
                self.lvm.create_snapshot(vg, act["origin_lv"], act["new_base"], self._tags(act))
                created = act["new_base"]
            if act["thin"] and not act["source_active"]:
                self.lvm.runner.run(["lvchange", "--activate", "y", "--ignoreactivationskip",
                                     "%s/%s" % (vg, act["source_lv"])])
                self.lvm.settle()
            ranges = None
            if act.get("base"):
                base_lv, _manifest = act["base"]
                delta = self.thin.changed_ranges(vg, act["pool"], base_lv, act["source_lv"], act["size_bytes"])
                ranges = delta["ranges"]
            manifest = self.store.backup(
                device_path(vg, act["source_lv"]), volume, act["name"], chunk_size=act["chunk_size"],
                parent=act["base"][1] if act.get("base") else _parent(self.store, act),
                ranges=ranges, incremental=act["incremental"], metadata=act.get("metadata"),
                description=act.get("description"), source=act["snapshot"], method=act["method"],
                whole_sha256=self.whole_sha256)
            _from_manifest(act, manifest)
            if act["thin"] and not act["source_active"]:
                self.lvm.deactivate(vg, act["source_lv"])
            created = None if act.get("new_base") else created
            for lv in act["old_bases"] + act["stale_lvs"]:
                self.lvm.remove(vg, lv)
        finally:
            if created:
                self.lvm.remove(vg, created)
            self.lvm.change_tags(vg, act["origin_lv"], delete=[BACKING_UP])

    def verify(self, act):
        result = self.store.verify(act["manifests"])
        act["problems"] = result["problems"]
        if result["problems"]:
            act["status"] = "corrupt"
            raise StoreError("%d of %d chunk(s) missing or corrupt: %s" % (
                len(result["problems"]), result["chunks_checked"],
                "; ".join("%s (%s)" % (p["path"], p["problem"]) for p in result["problems"][:10])))

    def restore(self, act):
        """``ember.status=restoring-backup`` on the target, the store writes the backup onto it, then the target's
        ``ember.restored=`` tag names this backup; the status tag removed whatever happened."""
        vg, target = act["vg"], act["target_lv"]
        old = [t for t in act["target_tags"] if t.startswith(RESTORED_TAG)]
        self.lvm.change_tags(vg, target, add=[] if RESTORING in act["target_tags"] else [RESTORING])
        try:
            result = self.store.restore(act["manifest"], device_path(vg, target), known_zero=act["known_zero"],
                                        discard_zero=act.get("thin_target", False))
            act["sha256"] = result["sha256"]
            act["bytes_written"] = result["bytes_written"]
            self.lvm.change_tags(vg, target, add=[RESTORED_TAG + "%s+%s" % (act["volume"], act["name"])],
                                 delete=old)
        except StoreError as exc:
            act["problems"] = getattr(exc, "problems", [])
            raise
        finally:
            self.lvm.change_tags(vg, target, delete=[RESTORING])

    def delete(self, act):
        """Delete the manifests (garbage collection runs once after every item, see the module), then the bases
        those backups kept."""
        self.store.delete(act["manifests"], gc=False)
        for lv in act["stale_lvs"]:
            self.lvm.remove(act["vg"], lv)


def _parent(store, act):
    if not act.get("parent"):
        return None
    return store.load(act["volume"], act["parent"])
