# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``backup`` module's decisions for the volumes of ``nfs`` backends (issue 14): pure, over a share's state
(:class:`_nfs_volume.ShareView`); :func:`_backup.decide` calls them for the items :func:`_nfs_volume.route` gives
to an nfs backend (their ``vg`` is one of its shares), and :class:`_backup.BackupApplier` applies them.

A backup reads the volume's file (``volume-<name>``), or the file of one of its snapshots (``snapshot``). The storage
node cannot see a consumer's loop device: the caller says whether the volume is attached (``attached``, from the
plan or the inventory). A detached volume is read in place; an attached one only with ``force`` (as Cinder's NFS
driver, which backs up an in-use volume only from a snapshot it cannot take without the consumer's help), from a
temporary sparse copy on the share (``.bktmp-<volume>+<backup>``, ``cp --reflink=auto --sparse=always``: instant
where the server's filesystem has reflink), crash-consistent, removed after. There is no changed-block tracking:
an incremental backup reads every chunk and writes only the new ones. While the backup reads the volume its sidecar
says ``backing-up``.

A restore writes into the target volume's file in place (which exists, is detached and at least the backup's size);
a file holding no allocated block (a fresh sparse volume: it reads as zeros, nothing can be lost) needs no ``force``
and its zero chunks are skipped (they stay holes); any other file needs ``force`` (it may hold data) and gets every
chunk, zeros included. The sidecar says ``restoring-backup`` meanwhile and ``restored: <volume>+<backup>`` after,
the record that makes the same request again a no-op (the LVM ``ember.restored=`` tag).
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._naming import show_value
from ansible_collections.ember.blockstore.plugins.module_utils._size import format_size
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import (
    BACKUP_COPY_PREFIX,
    backup_copy_file,
    info_file,
    snapshot_file,
    volume_file,
)

__all__ = ["decide_present", "decide_restored", "restored_record", "NOTE_INCREMENTAL"]

NOTE_INCREMENTAL = ("incremental without changed-block tracking (a volume of an nfs backend): every chunk is read, "
                    "only new chunks are written")


def restored_record(volume, backup):
    """The sidecar's ``restored`` value of a volume restored from backup ``backup`` of ``volume``."""
    return "%s+%s" % (volume, backup)


def _volume(where, field, view, name):
    """``(record, None)`` of volume ``name`` on the share, or ``(None, error)`` naming ``field``, the volume and the
    share."""
    state = view.state
    if name in state.broken:
        return None, "%s: %s; the volume is unknown, so it is not touched" % (where, state.broken[name])
    if name in state.foreign:
        return None, ("%s.%s: %s exists on share %s but is not managed by ember.blockstore (no sidecar %s); refusing "
                      "to touch it" % (where, field, state.foreign[name], view.share, info_file(name)))
    rec = state.volumes.get(name)
    if rec is None:
        return None, ("%s.%s: volume %s does not exist on share %s (no sidecar %s)"
                      % (where, field, show_value(name), view.share, info_file(name)))
    if rec.get("file") is None:
        return None, ("%s.%s: volume %s's sidecar is on share %s but its file %s is missing"
                      % (where, field, name, view.share, rec["path"]))
    return rec, None


def _busy(where, field, view, rec, own):
    """An error when the volume is not available (``own``: the status a run of the same kind that died left, which
    the next run takes over), else None."""
    if rec["status"] not in ("available", own):
        return ("%s.%s: volume %s on share %s is %s (its sidecar says so); run again when that has finished"
                % (where, field, rec["name"], view.share, rec["status"]))
    if rec.get("reverting"):
        return ("%s.%s: a revert of volume %s to snapshot %s was interrupted; finish it first (snapshot module, "
                "state: reverted)" % (where, field, rec["name"], rec["reverting"]))
    return None


def decide_present(act, where, view, manifests, by_name, chunk_size):
    """A backup of an NFS volume (``act``: the item with ``_backup.decide``'s result fields). Sets ``action``
    ``create`` and what the applier needs: ``record`` (the volume's sidecar record), ``source_path`` (the file read
    in place) or ``temp_copy`` (the temporary copy's name, attached with force), ``stale_copies`` (copies a run that
    died left). Returns an error naming the field and the value, or None."""
    volume, name = act["volume"], act["name"]
    if name in by_name:
        return None  # the backup exists: nothing to do (a backup is never rewritten)
    if act.get("cow_size") is not None:
        return ("%s.cow_size: %s is given, but volume %s is on share %s (an nfs backend): no COW snapshot is made; "
                "remove cow_size" % (where, show_value(act["cow_size"]), volume, view.share))
    act.update(action="create", status="available", chunk_size=chunk_size, method="full", temp_copy=None,
               source_path=None, stale_copies=[], record=None, incremental=bool(act.get("is_incremental")),
               snapshot=_read(view, volume_file(volume)))
    _incremental(act, manifests)
    if view.predicted:  # check mode, the share not mounted yet: the real run mounts it and reads the volume
        act["note"] = ("share %s is not mounted; check mode cannot read volume %s there (the real run mounts it)"
                       % (view.share, volume))
        return None
    rec, error = _volume(where, "volume", view, volume)
    if error:
        return error
    error = _busy(where, "volume", view, rec, "backing-up")
    if error:
        return error
    act.update(record=rec, stale_copies=[f for f in sorted(view.state.files)
                                         if f.startswith(BACKUP_COPY_PREFIX + volume + "+")])
    if act.get("snapshot_name"):
        wanted = act["snapshot_name"]
        entry = rec["snapshots"].get(wanted)
        if entry is None or entry["status"] != "available" or entry.get("file") is None:
            return ("%s.snapshot: volume %s has no snapshot %s on share %s (no file %s recorded in its sidecar)"
                    % (where, volume, show_value(wanted), view.share, snapshot_file(volume, wanted)))
        act.update(source_path=entry["path"], size_bytes=entry["file"]["size_bytes"],
                   snapshot=_read(view, snapshot_file(volume, wanted)))
        return None
    act["size_bytes"] = rec["file"]["size_bytes"]
    if act.get("attached"):
        if not act.get("force"):
            return ("%s: volume %s is attached (attached: true): a backup of an attached NFS volume copies its file "
                    "while the consumer may be writing to it, so it is crash-consistent only; detach it first, or set "
                    "force: true to back it up from a temporary copy anyway" % (where, volume))
        copy = backup_copy_file(volume, name)
        act.update(temp_copy=copy, snapshot=_read(view, copy))
    else:
        act.update(source_path=rec["path"], snapshot=_read(view, volume_file(volume)))
    return None


def _read(view, name):
    """What a backup reads, as its result's and manifest's ``snapshot``/``source``: ``<share>/<file>``."""
    return "%s/%s" % (view.share, name)


def _incremental(act, manifests):
    if not act.get("is_incremental"):
        return
    if manifests:
        act.update(parent=manifests[-1]["name"], note=NOTE_INCREMENTAL)
    else:
        act.update(incremental=False,
                   note="is_incremental: volume %s has no earlier backup: this is a full backup" % act["volume"])


def decide_restored(act, where, view, manifest):
    """A restore of backup ``manifest`` onto the NFS volume ``restore_to``. Sets ``action`` ``restore`` (or leaves
    ``none`` when the sidecar records this backup restored already) with ``record``, ``target_path``,
    ``known_zero`` and ``previous_restored``. Returns an error naming the field and the value, or None."""
    volume, name, target = act["volume"], act["name"], act["restore_to"]
    act.update(manifest=manifest, record=None, target_path=None, known_zero=False, previous_restored=None,
               target_tags=[])
    if view.predicted:
        act.update(action="restore", status="restored",
                   note="share %s is not mounted; check mode cannot read volume %s there (the real run mounts it)"
                   % (view.share, target))
        return None
    rec, error = _volume(where, "restore_to", view, target)
    if error:
        return error
    allocated = rec["file"]["allocated_bytes"]
    act.update(record=rec, target_path=rec["path"], known_zero=allocated == 0, previous_restored=rec.get("restored"),
               status="available")
    if rec.get("restored") == restored_record(volume, name) and not act.get("force"):
        act["status"] = "restored"
        return None  # restored by an earlier run: the same request changes nothing
    error = _busy(where, "restore_to", view, rec, "restoring-backup")
    if error:
        return error
    if rec["file"]["size_bytes"] < manifest["size_bytes"]:
        return ("%s.restore_to: volume %s on share %s is %s, smaller than backup %s of volume %s (%s); extend it first"
                % (where, target, view.share, format_size(rec["file"]["size_bytes"]), name, volume,
                   format_size(manifest["size_bytes"])))
    if act.get("attached"):
        return ("%s.restore_to: volume %s is attached (attached: true); Cinder restores only to an available volume: "
                "detach it first" % (where, target))
    if allocated and not act.get("force"):
        return ("%s.restore_to: volume %s on share %s holds %s of allocated blocks and may hold data; set force: true "
                "to overwrite it with backup %s of volume %s" % (where, target, view.share, format_size(allocated),
                                                                 name, volume))
    act.update(action="restore", status="restored")
    return None
