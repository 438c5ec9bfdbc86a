# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action of the ``volume`` and ``snapshot`` modules for the volumes of ``nfs`` backends (issue 14),
split as ``_volume`` and ``_snapshot`` split them for LVM: :func:`decide_volumes` and :func:`decide_snapshots` are
pure over the shares' states (:class:`drivers.nfs.ShareState`), and nothing is applied unless every item is valid;
:class:`NfsVolumeApplier` and :class:`NfsSnapshotApplier` then run the driver's operations.

Which items are NFS items (:func:`route`): the modules take the storage node's backends (``backends``, the host's
``blockstore_backends``); an item whose ``vg`` is one of the shares of an ``nfs`` backend there (the share is the
pool of an NFS backend, as the VG is an LVM backend's: backend_info reports it as the pool's ``vg``, so the plan
passes it unchanged) is handled here, every other item by the LVM code as before. A volume item's ``backend``, when
given, must be that backend.

Semantics follow Cinder's NFS driver and the project's LVM ones: sizes are rounded up to whole MiB; a volume is never
shrunk; a volume with snapshots is deleted only with ``cascade``; a volume made from a source (a clone, or a volume
from a snapshot) is a sparse copy of the source on the same share (``cp --reflink=auto``), at least the source's
size; a snapshot is a sparse copy of the volume, and one of a volume the caller says is attached (the storage node
cannot see a consumer's loop device: the plan knows the attachments) is refused unless ``force`` (it is
crash-consistent only); a revert copies the snapshot back over the volume, only to the latest snapshot unless
``force``, only when the sizes are equal, never while attached. Interrupted operations are finished by the next run
(the sidecar's ``creating``, ``deleting`` and ``reverting``).
"""

from __future__ import annotations

import os
import time

from ansible_collections.ember.blockstore.plugins.module_utils._argspec import canonical_share
from ansible_collections.ember.blockstore.plugins.module_utils._metadata import (
    validate_description,
    validate_metadata,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    show_value,
    validate_backend_name,
    validate_text,
    validate_type_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils._size import (
    SizeError,
    format_size,
    parse_clear_size,
    parse_volume_size,
    round_up,
)
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import validate_snapshot_name
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import (
    BUSY_STATUSES,
    SIZE_STEP,
    NfsError,
    NfsShare,
    ShareState,
    info_file,
    mount_point,
    new_record,
    read_share,
    snapshot_file,
    validate_nfs_volume_name,
    volume_file,
)

__all__ = ["route", "open_shares", "ShareView", "decide_volumes", "decide_snapshots", "NfsVolumeApplier",
           "NfsSnapshotApplier", "WIPE_SKIPPED"]

WIPE_SKIPPED = "skipped: the file is unlinked on the share (its blocks go back to the server, which hands out zeroed " \
               "blocks to new files)"


def _share_of(value):
    try:
        return canonical_share(value)
    except (NameError_, ValueError):
        return None


def route(items, configs, field, with_backend=False):
    """``({index: (cfg, share)}, errors)``: the items that belong to an ``nfs`` backend of ``configs`` (their
    ``vg`` is one of its shares, canonical form). With ``with_backend`` (volume items) an item whose ``backend``
    names an nfs backend must give one of its shares, and one on a share must not name another backend. Without
    any nfs backend every item is the LVM code's (nothing is checked here)."""
    nfs = {cfg["name"]: cfg for cfg in configs if cfg["driver"] == "nfs"}
    if not nfs:
        return {}, []
    owners = {share: cfg for cfg in nfs.values() for share in cfg["shares"]}
    routed, errors = {}, []
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, index)
        vg = item.get("vg")
        share = _share_of(vg) if isinstance(vg, str) else None
        if share is None and isinstance(vg, str) and ":/" in vg:  # meant as a share (no VG name has ":/")
            try:
                canonical_share(vg, where + ".vg")
            except (NameError_, ValueError) as exc:
                errors.append(str(exc))
                continue
        backend = item.get("backend") if with_backend else None
        if backend in nfs:
            cfg = nfs[backend]
            if share not in cfg["shares"]:
                errors.append("%s.vg: %s is not a share of nfs backend %s (its shares: %s); give the share that holds "
                              "the volume" % (where, show_value(vg), backend, ", ".join(cfg["shares"])))
                continue
        elif share is not None:
            cfg = owners.get(share)
            if cfg is None:
                errors.append("%s.vg: %s is not a share of any nfs backend of this node (backends: %s)"
                              % (where, show_value(vg), ", ".join(sorted(nfs))))
                continue
            if backend is not None:
                errors.append("%s.backend: %s is not backend %s, whose share %s holds the volume"
                              % (where, show_value(backend), cfg["name"], share))
                continue
        else:
            continue
        routed[index] = (cfg, share)
    return routed, errors


class ShareView:
    """One share as a module run sees it: its backend config, mount point, state and what the run does to mount
    it (``mount_action``: ``none`` when it was mounted, ``mount`` when mounted now or, in check mode, predicted)."""

    def __init__(self, cfg, share, path, state, mount_action, predicted=False):
        self.cfg = cfg
        self.share = share
        self.path = path
        self.state = state
        self.mount_action = mount_action
        self.predicted = predicted

    def result(self):
        return {"share": self.share, "backend": self.cfg["name"], "mount_point": self.path,
                "action": self.mount_action, "changed": self.mount_action == "mount"}


def _read(share, path):
    try:
        return read_share(share, path)
    except OSError as exc:
        raise NfsError("share %s (mounted at %s) cannot be listed: %s" % (share, path, exc.strerror or exc),
                       share) from None


def open_shares(nfs, wanted, mount):
    """``{share: ShareView}`` of ``wanted`` (``{share: cfg}``). A share that is mounted is probed and read; one that
    is not is mounted first when ``mount`` (a real run), else (check mode, or the first pass of a real run, before
    any change) predicted empty. Raises :class:`drivers.nfs.NfsError` naming the share."""
    views = {}
    for share, cfg in sorted(wanted.items()):
        path = mount_point(share, cfg["mount_point_base"])
        if nfs.mounted(share, path):
            nfs.probe(share, path)
            views[share] = ShareView(cfg, share, path, _read(share, path), "none")
        elif not mount:
            views[share] = ShareView(cfg, share, path, ShareState.empty(share, path), "mount", predicted=True)
        else:
            nfs.mount(share, path, cfg["mount_options"])
            nfs.probe(share, path)
            views[share] = ShareView(cfg, share, path, _read(share, path), "mount")
    return views


def _current_size(rec):
    return (rec.get("file") or {}).get("size_bytes", rec["size_bytes"])


def _when(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def _foreign_error(where, view, name):
    return ("%s: %s exists on share %s but is not managed by ember.blockstore (no sidecar %s); refusing to touch it"
            % (where, view.state.foreign[name], view.share, info_file(name)))


# --- volumes -------------------------------------------------------------------------------------------------------

def _validate_source(source, where):
    if source is None:
        return None
    if not isinstance(source, dict):
        raise NameError_("%s: %s is not a dict with volume (and snapshot)" % (where, show_value(source)))
    if source.get("image") is not None:
        raise NameError_("%s.image: %s is given, but a volume of an nfs backend is not made from an image (only LVM "
                         "backends' volumes are)" % (where, show_value(source["image"])))
    volume = validate_volume_name(source.get("volume"), where + ".volume")
    snapshot = source.get("snapshot")
    if snapshot is not None:
        validate_snapshot_name(snapshot, where + ".snapshot")
    return {"volume": volume, "snapshot": snapshot}


def decide_volumes(routed, items, views, field="volumes"):
    """``(actions, errors)`` for the volume items routed to NFS (``routed``: :func:`route`'s, ``views``:
    :func:`open_shares`'). Each action carries the keys of ``_volume.decide``'s (so the module returns the same
    shape) plus ``nfs`` (True), ``share``, ``allocation``, ``record`` (the sidecar record, None for a new volume),
    ``source_path`` and ``source_size_bytes`` for a copy."""
    actions, errors, seen = [], [], set()
    listed = {}
    for index in sorted(routed):
        item = items[index]
        if isinstance(item.get("name"), str):
            listed.setdefault((routed[index][1], item["name"]), ("%s[%d]" % (field, index), item.get("state")))
    for index in sorted(routed):
        cfg, share = routed[index]
        item, where, view = items[index], "%s[%d]" % (field, index), views[routed[index][1]]
        try:
            name = validate_nfs_volume_name(item.get("name"), where + ".name")
            if item.get("backend") is not None:
                validate_backend_name(item["backend"], where + ".backend")
            if item.get("volume_type"):
                validate_type_name(item["volume_type"], where + ".volume_type")
            size = parse_volume_size(item["size"], where + ".size") if item.get("size") is not None else None
            parse_clear_size(item.get("volume_clear_size") or 0, where + ".volume_clear_size")
            source = _validate_source(item.get("source"), where + ".source")
            description = validate_description(item.get("description"), where + ".description")
            metadata = validate_metadata(item.get("metadata"), where + ".metadata")
        except (NameError_, SizeError) as exc:
            errors.append(str(exc))
            continue
        if item.get("thin_pool") is not None:
            errors.append("%s.thin_pool: %s is given, but backend %s (driver nfs) has no thin pool; its volumes are "
                          "sparse files when the backend's sparse is true" % (where, show_value(item["thin_pool"]),
                                                                              cfg["name"]))
            continue
        if (share, name) in seen:
            errors.append("%s.name: %r is listed twice" % (where, name))
            continue
        seen.add((share, name))
        state = view.state
        if name in state.broken:
            errors.append("%s: %s; the volume is unknown, so it is not touched (restore the sidecar or remove the "
                          "volume's files by hand)" % (where, state.broken[name]))
            continue
        if name in state.foreign:
            errors.append(_foreign_error(where, view, name))
            continue
        rec = state.volumes.get(name)
        current = _current_size(rec) if rec else None
        act = dict(item, name=name, nfs=True, share=share, vg=share, backend=item.get("backend") or cfg["name"],
                   volume_type=item.get("volume_type") or (rec or {}).get("volume_type"),
                   thin_pool=None, lv_name=volume_file(name), action="none", size_bytes=None,
                   previous_size_bytes=current, device=os.path.join(view.path, volume_file(name)), exported=None,
                   snapshots=sorted(rec["snapshots"]) if rec else [],
                   status="available" if rec else "absent", source=(rec or {}).get("source"), copy_method=None,
                   from_source=False, resume=False, item_field=where, allocation=None, record=rec,
                   sparse=cfg["sparse"], previous_description=(rec or {}).get("description"),
                   previous_metadata=dict((rec or {}).get("metadata") or {}), description=None, metadata={})
        if item.get("state", "present") == "present":
            error = _decide_present(act, where, rec, size, source, view, listed)
            if not error:
                _decide_meta(act, rec, description, metadata)
        else:
            error = _decide_absent(act, where, rec)
        if error:
            errors.append(error)
            continue
        actions.append(act)
    decided = {(a["share"], a["name"]): a for a in actions}
    for act in actions:
        if act["from_source"] and act.get("source_path"):
            other = decided.get((act["share"], act["source"]["volume"]))
            if other is not None and other["action"] == "extend":
                errors.append("%s.source.volume: volume %r is extended in this same run (%s); a source must not change "
                              "in the run that copies it: extend it in an earlier or a later task"
                              % (act["item_field"], act["source"]["volume"], other["item_field"]))
    return actions, errors


def _decide_present(act, where, rec, size, source, view, listed):
    name = act["name"]
    if rec is not None and rec["status"] == "deleting":
        return ("%s: volume %s on share %s was being deleted when a run stopped (its sidecar says deleting); "
                "declare it absent to finish the delete" % (where, name, view.share))
    resume = rec is not None and rec["status"] == "creating"
    if size is None and source is None and not resume:
        return "%s.size: required when state is present (volume %s)" % (where, name)
    if size is not None and size <= 0:
        return "%s.size: %r must be greater than zero" % (where, act["size"])
    if rec is None or (resume and rec.get("file") is None):
        source = source if rec is None else rec.get("source")
        if source is not None:
            return _decide_source(act, where, source, size, view, listed, rec)
        want = round_up(size if size is not None else rec["size_bytes"], SIZE_STEP)
        act.update(action="create", size_bytes=want, status="available", resume=resume)
    else:
        if rec.get("file") is None:
            return ("%s: volume %s's sidecar is on share %s but its file %s is missing; it is not re-created empty: "
                    "restore the file, or delete the volume (state: absent)" % (where, name, view.share, act["device"]))
        current = rec["file"]["size_bytes"]
        want = round_up(size, SIZE_STEP) if size is not None else current
        if want < current:
            return ("%s.size: %s (%s) is smaller than volume %s's current size %s; volumes are never shrunk"
                    % (where, act["size"], format_size(want), name, format_size(current)))
        if resume:
            act.update(action="create", size_bytes=want, resume=True, status="available",
                       from_source=rec.get("source") is not None)
        elif want > current:
            if rec["status"] in BUSY_STATUSES:
                return ("%s.size: volume %s on share %s is %s (its sidecar says so); extend it when that has finished"
                        % (where, name, view.share, rec["status"]))
            act.update(action="extend", size_bytes=want)
        else:
            act["size_bytes"] = current
    return None


def _decide_meta(act, rec, description, metadata):
    """The description and metadata after the run (the sidecar's; given, the whole desired state, as for LVM:
    ``""`` removes the description, keys not listed are removed); an existing volume whose description or metadata
    differ is updated (action ``update`` when nothing else changes)."""
    old_desc, old_meta = act["previous_description"], act["previous_metadata"]
    act["description"] = old_desc if description is None else (description or None)
    act["metadata"] = dict(old_meta) if metadata is None else dict(metadata)
    if rec is not None and act["action"] == "none" and (act["description"], act["metadata"]) != (old_desc, old_meta):
        act["action"] = "update"


def _decide_source(act, where, source, size, view, listed, rec):
    """A volume made from ``source`` on the same share (or the rest of one whose copy was interrupted)."""
    field = where + ".source"
    name, volume, share = act["name"], source["volume"], view.share
    if volume == name:
        return "%s.volume: %r is the volume itself; a volume cannot be made from itself" % (field, volume)
    other = listed.get((share, volume))
    src = view.state.volumes.get(volume)
    if src is None:
        if other is not None and other[1] == "present":
            return ("%s.volume: volume %r is created in this same run (%s); a source must exist before the run: "
                    "create it in an earlier task" % (field, volume, other[0]))
        return ("%s.volume: volume %r does not exist on share %s (no sidecar %s); a source must be on the new "
                "volume's share" % (field, volume, share, info_file(volume)))
    if other is not None and other[1] == "absent":
        return ("%s.volume: volume %r is deleted in this same run (%s); it cannot be a source"
                % (field, volume, other[0]))
    if src["status"] != "available" or src.get("file") is None:
        return ("%s.volume: volume %r on share %s is not available (status %s%s); run again when it is"
                % (field, volume, share, src["status"], "" if src.get("file") else ", its file is missing"))
    snapshot = source.get("snapshot")
    if snapshot:
        entry = src["snapshots"].get(snapshot)
        if entry is None or entry["status"] != "available" or entry.get("file") is None:
            return ("%s.snapshot: volume %s has no snapshot %r on share %s (no file %s recorded in its sidecar)"
                    % (field, volume, snapshot, share, snapshot_file(volume, snapshot)))
        source_size, source_path = entry["volume_size_bytes"], entry["path"]
    else:
        source_size, source_path = src["file"]["size_bytes"], src["path"]
    want = round_up(size, SIZE_STEP) if size is not None else round_up(source_size, SIZE_STEP)
    if want < source_size:
        what = ("snapshot %s of volume %s" % (snapshot, volume)) if snapshot else "volume %s" % volume
        return ("%s.size: %s (%s) is smaller than its source's size %s (%s); a volume made from a source is at "
                "least as big (Cinder refuses a smaller one)" % (where, show_value(act.get("size")), format_size(want),
                                                                 format_size(source_size), what))
    act.update(action="create", size_bytes=want, status="available", source={"volume": volume, "snapshot": snapshot},
               from_source=True, resume=rec is not None, source_path=source_path, source_size_bytes=source_size,
               copy_method="cp")
    return None


def _decide_absent(act, where, rec):
    if rec is None:
        act["action"] = "absent"
        return None
    if rec["status"] in BUSY_STATUSES:
        return ("%s: volume %s is %s (its sidecar says so); delete it when that has finished (a run that died leaves "
                "the status: the backup module's next run of the volume clears it)"
                % (where, act["name"], rec["status"]))
    if act["snapshots"] and not act.get("cascade"):
        return ("%s: volume %s has snapshots (%s); delete them first or set cascade: true"
                % (where, act["name"], ", ".join(act["snapshots"])))
    act.update(action="delete", size_bytes=None, status="deleted")
    return None


# --- snapshots ------------------------------------------------------------------------------------------------------

def _latest(rec, name):
    """Whether snapshot ``name`` is the volume's latest (no other snapshot was taken after it: its sequence, kept
    in the sidecar, is the highest)."""
    mine = rec["snapshots"][name].get("sequence") or 0
    return all((entry.get("sequence") or 0) < mine for snap, entry in rec["snapshots"].items() if snap != name)


def decide_snapshots(routed, items, views, field="snapshots", predict_missing=False):
    """``(actions, errors)`` for the snapshot items routed to NFS. Each action carries the keys of
    ``_snapshot.decide``'s plus ``nfs``, ``share`` and ``record``; ``predict_missing`` (check mode): a snapshot
    of a volume that does not exist yet is predicted to be created (the volume module creates it earlier in the same
    run)."""
    actions, errors, seen = [], [], {}
    for index in sorted(routed):
        cfg, share = routed[index]
        item, where, view = items[index], "%s[%d]" % (field, index), views[share]
        try:
            name = validate_snapshot_name(item.get("name"), where + ".name")
            volume = validate_nfs_volume_name(item.get("volume"), where + ".volume")
            if item.get("description") is not None:
                validate_text(item["description"], where + ".description", 255, "description")
            cow = parse_volume_size(item["cow_size"], where + ".cow_size") if item.get("cow_size") is not None else None
            if cow is not None and cow <= 0:
                raise SizeError("%s.cow_size: %s must be greater than zero" % (where, show_value(item["cow_size"])))
            for flag in ("force", "attached"):
                if not isinstance(item.get(flag, False), bool):
                    raise NameError_("%s.%s: %s is not a boolean" % (where, flag, show_value(item.get(flag))))
        except (NameError_, SizeError) as exc:
            errors.append(str(exc))
            continue
        key = (share, volume, name)
        if key in seen:
            errors.append("%s.name: snapshot %r of volume %s is listed twice (also %s)"
                          % (where, name, volume, seen[key]))
            continue
        seen[key] = where
        state = view.state
        if volume in state.broken:
            errors.append("%s: %s; the volume is unknown, so its snapshots are not touched"
                          % (where, state.broken[volume]))
            continue
        rec = state.volumes.get(volume)
        entry = (rec or {}).get("snapshots", {}).get(name)
        act = dict(item, name=name, volume=volume, vg=share, share=share, nfs=True, record=rec, sparse=cfg["sparse"],
                   lv_name=snapshot_file(volume, name), origin_lv=volume_file(volume), action="none", thin=True,
                   cow_size_bytes=None, volume_size_bytes=_current_size(rec) if rec else None,
                   created_at=_when(entry["created_at"]) if entry and entry["status"] == "available" else None,
                   status="available" if entry else "absent", resume=False, item_field=where,
                   device=os.path.join(view.path, snapshot_file(volume, name)))
        state_ = item.get("state", "present")
        if state_ == "present":
            error = _snap_present(act, where, rec, entry, cow, view, predict_missing)
        elif state_ == "absent":
            if entry is None:
                act["action"] = "absent"
            else:
                act.update(action="delete", status="deleted")
            error = None
        else:
            error = _snap_revert(act, where, rec, entry, view)
        if error:
            errors.append(error)
            continue
        actions.append(act)
    reverts = {(a["share"], a["volume"]): a for a in actions if a["action"] == "revert"}
    for act in actions:
        first = reverts.get((act["share"], act["volume"]))
        if first is not None and first is not act and act["action"] != "none":
            errors.append("%s: volume %s is reverted to %s in the same run; change its other snapshots in another run "
                          "(the revert depends on which snapshot is the latest)"
                          % (act["item_field"], act["volume"], first["name"]))
    return actions, errors


def _snap_present(act, where, rec, entry, cow, view, predict_missing):
    name, volume = act["name"], act["volume"]
    if entry is not None and entry["status"] == "available":
        if entry.get("file") is None:
            return ("%s: snapshot %s of volume %s is recorded on share %s but its file %s is missing; delete it "
                    "(state: absent) and take it again" % (where, name, volume, view.share, act["device"]))
        act["previous_description"] = entry.get("description")
        if act.get("description") is not None and act["description"] != entry.get("description"):
            act["action"] = "update"
        else:
            act["description"] = entry.get("description")
        return None
    if rec is None:
        if predict_missing:
            act.update(action="create", status="available", previous_description=None)
            return None
        return ("%s.volume: volume %s does not exist on share %s (no sidecar %s)"
                % (where, show_value(volume), view.share, info_file(volume)))
    if rec["status"] != "available" or rec.get("file") is None:
        return ("%s.volume: volume %s on share %s is not available (status %s%s); run again when it is"
                % (where, volume, view.share, rec["status"], "" if rec.get("file") else ", its file is missing"))
    if rec.get("reverting"):
        return ("%s: a revert of volume %s to snapshot %s was interrupted; finish it first (state: reverted, name: "
                "%s)" % (where, volume, rec["reverting"], rec["reverting"]))
    if entry is None and os.path.basename(act["device"]) in view.state.files:
        return ("%s: %s exists on share %s but is not recorded as a snapshot in volume %s's sidecar; refusing to touch "
                "it" % (where, act["device"], view.share, volume))
    if act.get("attached") and not act.get("force"):
        return ("%s: volume %s is attached (attached: true): a snapshot of an attached NFS volume copies its file "
                "while the consumer may be writing to it, so it is crash-consistent only; detach it first, or set "
                "force: true to take it anyway" % (where, volume))
    size = _current_size(rec)
    if cow is not None and round_up(cow, SIZE_STEP) > round_up(size, SIZE_STEP):
        return ("%s.cow_size: %s (%s) is more than volume %s's size %s, the most its snapshot can use"
                % (where, show_value(act["cow_size"]), format_size(cow), volume, format_size(size)))
    act.update(action="create", status="available", previous_description=None,
               resume=entry is not None and entry["status"] == "creating")
    return None


def _snap_revert(act, where, rec, entry, view):
    name, volume = act["name"], act["volume"]
    if rec is None:
        return ("%s.volume: volume %s does not exist on share %s; there is nothing to revert"
                % (where, show_value(volume), view.share))
    marker = rec.get("reverting")
    if marker is not None and marker != name:
        return ("%s: a revert of volume %s to snapshot %s was interrupted; finish it first (state: reverted, name: "
                "%s)" % (where, volume, marker, marker))
    if entry is None or entry["status"] != "available" or entry.get("file") is None:
        return ("%s.name: volume %s has no snapshot %s on share %s (no file %s recorded in its sidecar); there is "
                "nothing to revert to" % (where, volume, show_value(name), view.share, act["device"]))
    act["description"] = entry.get("description")
    if rec["status"] in BUSY_STATUSES:
        return ("%s: volume %s on share %s is %s (its sidecar says so); revert it when that has finished"
                % (where, volume, view.share, rec["status"]))
    if marker == name:  # interrupted: the copy is done again (the volume holds the old or the new content)
        act.update(action="revert", resume=True, status="reverted")
        return None
    if entry.get("reverted") and _latest(rec, name):
        act["status"] = "reverted"
        return None
    if act.get("attached"):
        return ("%s: volume %s is attached (attached: true); Cinder reverts only an available volume: detach it first"
                % (where, volume))
    if not _latest(rec, name) and not act.get("force"):
        newer = sorted(snap for snap, other in rec["snapshots"].items()
                       if snap != name and (other.get("sequence") or 0) >= (entry.get("sequence") or 0))
        return ("%s.name: %s is not volume %s's latest snapshot (newer: %s); Cinder reverts only to the latest: set "
                "force: true to revert to it anyway" % (where, name, volume, ", ".join(newer)))
    size = _current_size(rec)
    if entry["volume_size_bytes"] != size:
        return ("%s: volume %s is %s but was %s when snapshot %s was taken; Cinder reverts only when the sizes are "
                "equal" % (where, volume, format_size(size), format_size(entry["volume_size_bytes"]), name))
    act.update(action="revert", status="reverted")
    return None


# --- apply ----------------------------------------------------------------------------------------------------------

class NfsVolumeApplier:
    """Runs the decided NFS volume actions through :class:`drivers.nfs.NfsShare` (``nfs``: :class:`drivers.nfs.Nfs`,
    ``views``: :func:`open_shares`')."""

    def __init__(self, nfs, views):
        self.nfs = nfs
        self.views = views

    def _share(self, act):
        view = self.views[act["share"]]
        return NfsShare(self.nfs, view.share, view.path)

    def apply_batch(self, actions):
        """Creates, extends and updates in request order (one failing does not stop the others), then deletes (the
        first that fails stops them, as for LVM). Returns ``[(act, error or None)]`` for the items attempted."""
        outcomes = {}
        for act in actions:
            if act["action"] != "delete":
                outcomes[id(act)] = self._run(self.apply, act)
        for act in actions:
            if act["action"] == "delete":
                outcomes[id(act)] = self._run(self.apply, act)
                if outcomes[id(act)] is not None:
                    break
        return [(act, outcomes[id(act)]) for act in actions if id(act) in outcomes]

    @staticmethod
    def _run(func, act):
        try:
            func(act)
        except (NfsError, CommandError, OSError) as exc:
            return exc if isinstance(exc, (NfsError, CommandError)) else NfsError(str(exc), act.get("share"))
        return None

    def apply(self, act):
        share = self._share(act)
        rec = act["record"]
        if act["action"] == "create":
            if rec is not None and rec.get("file") is not None:  # interrupted after its file was complete
                rec.update(description=act["description"], metadata=act["metadata"])
                if act["size_bytes"] > rec["file"]["size_bytes"]:
                    act["allocation"] = share.extend_volume(rec, rec["file"]["size_bytes"], act["size_bytes"],
                                                            act["sparse"])
                rec["status"] = "available"
                share.write_info(rec)
                return
            rec = new_record(act["name"], act["size_bytes"], act.get("volume_type"), act["backend"],
                             act["description"], act["metadata"], act["source"] if act["from_source"] else None)
            if act["from_source"]:
                act["allocation"] = share.copy_volume(rec, act["source_path"], act["source_size_bytes"], act["sparse"])
            else:
                act["allocation"] = share.create_volume(rec, act["sparse"])
            act["record"] = rec
        elif act["action"] == "extend":
            rec.update(description=act["description"], metadata=act["metadata"])
            act["allocation"] = share.extend_volume(rec, act["previous_size_bytes"], act["size_bytes"], act["sparse"])
        elif act["action"] == "update":
            rec.update(description=act["description"], metadata=act["metadata"])
            share.write_info(rec)
        elif act["action"] == "delete":
            share.delete_volume(rec)
            act.update(wipe=WIPE_SKIPPED, wiped_bytes=0, wipe_method=None)


class NfsSnapshotApplier:
    """Runs the decided NFS snapshot actions through :class:`drivers.nfs.NfsShare`."""

    def __init__(self, nfs, views):
        self.nfs = nfs
        self.views = views

    def apply(self, act):
        view = self.views[act["share"]]
        share = NfsShare(self.nfs, view.share, view.path)
        rec = act["record"]
        if act["action"] == "create":
            if rec is None:  # predicted in check mode only; a real run reads the volume
                raise NfsError("volume %s does not exist on share %s" % (act["volume"], view.share), view.share)
            share.create_snapshot(rec, act["name"], act.get("description"))
        elif act["action"] == "update":
            rec["snapshots"][act["name"]]["description"] = act["description"]
            share.write_info(rec)
        elif act["action"] == "delete":
            share.delete_snapshot(rec, act["name"])
        elif act["action"] == "revert":
            share.revert_volume(rec, act["name"], act["sparse"])
