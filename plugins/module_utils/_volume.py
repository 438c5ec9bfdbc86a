# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action for the ``volume`` module, split as community.crypto's luks_device splits them.

:func:`decide` is pure: from the requested items and one LVM snapshot it returns what must change for every
item, or the list of errors; nothing is applied unless every item is valid. :class:`VolumeApplier` then runs
the commands. Check mode stops after :func:`decide`, so ``--check`` predicts exactly what a real run does.

Sources (``source: {volume: A}`` a clone, ``source: {volume: A, snapshot: S}`` from A's snapshot S), as Cinder's
LVM driver makes them (``cinder/volume/drivers/lvm.py`` ``create_cloned_volume``, ``create_volume_from_snapshot``):

- thin: a thin snapshot of A (or of S's LV) named as the new volume, with the volume's tags (not a snapshot's),
  ``lvchange --setactivationskip n``, activated, ``lvextend`` when the requested size is bigger; the pool shares
  the blocks;
- thick: the new LV is created at its size, then ``dd`` copies S's LV, or for a clone a temporary COW snapshot
  ``clone-snap-<new volume>`` of A (COW size A's size, Cinder's choice; A may stay attached), removed after the
  copy.

The new LV records its source in ``ember.source=<A>`` or ``<A>+<S>`` and carries ``ember.creating`` until its
data is complete: a run that finds that tag finishes it (thick: the copy is done again from the recorded source,
a leftover temporary snapshot removed and made again; thin: activation and extend). A source is used only when
the LV is created; an existing volume keeps what it is (its recorded source is returned).

Order: items with a source are not put into the batched ``lvm`` shell; they run alone, after the plain creates and
extends and before the deletes. A source must exist before the run: a source volume that the same run creates,
extends or deletes is refused (create it in an earlier task), so the order of the list never matters.
"""

from __future__ import annotations

import os

from ansible_collections.ember.blockstore.plugins.module_utils._metadata import (
    MAX_TAG_CHARS,
    METADATA_TAG,
    description_tags,
    is_meta_tag,
    metadata_tags,
    read_meta,
    tags_size,
    validate_description,
    validate_metadata,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    BUSY_STATUS_TAGS,
    CLONE_SNAPSHOT_PREFIX,
    CLONE_TAG,
    CREATING_TAG,
    EMBER_TAG_PREFIX,
    LV_PREFIX,
    MANAGED_TAG,
    OWN_NAME_TAG,
    SOURCE_TAG,
    TYPE_TAG,
    VOLUME_TAG,
    NameError_,
    is_backup_base,
    is_image_snapshot,
    is_managed_snapshot,
    lv_name,
    show_value,
    target_iqn,
    tgt_conf_path,
    validate_backend_name,
    validate_lv_name,
    validate_type_name,
    validate_vg_name,
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
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import (
    SIZE_TAG,
    decode_description,
    dm_name_length,
    encode_description,
    snapshot_lv_name,
    validate_snapshot_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import image as driver
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.image import (
    FORMATS,
    ImageError,
    QemuImg,
    short_sha,
    validate_checksum,
    validate_format,
    validate_location,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import DEFAULT_EXTENT, Lvm, lv_usage
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import is_managed_conf, read_file

__all__ = ["ITEM_OPTIONS", "SOURCE_OPTIONS", "MANAGE_OPTIONS", "STATES", "manage_problem", "decide", "VolumeApplier",
           "exported_volumes", "source_tag", "recorded_source", "clone_snapshot_name", "image_items", "stage_images",
           "remove_staged", "IMAGE_SOURCE"]

SOURCE_OPTIONS = dict(
    volume=dict(type="str"),
    snapshot=dict(type="str"),
    image=dict(type="str"),
    format=dict(type="str", choices=list(FORMATS)),
    checksum=dict(type="str"),
)
# ``ember.source=image:<first 16 hex digits of the image file's sha256>``: ``:`` is in no volume name.
IMAGE_SOURCE = "image:"

# Cinder's manage_existing of the LVM driver: an existing LV of the item's VG becomes the volume.
MANAGE_OPTIONS = dict(
    lv=dict(type="str", required=True),
    rename=dict(type="bool", default=False),
)
# unmanaged: Cinder's unmanage (the LV and its data stay, the project's tags go).
STATES = ["present", "absent", "unmanaged"]

ITEM_OPTIONS = dict(
    name=dict(type="str", required=True),
    size=dict(type="raw"),
    state=dict(type="str", choices=STATES, default="present"),
    vg=dict(type="str", required=True),
    thin_pool=dict(type="str"),
    volume_type=dict(type="str"),
    backend=dict(type="str"),
    volume_clear=dict(type="str", choices=["zero", "none"], default="zero"),
    volume_clear_size=dict(type="raw", default=0),
    force=dict(type="bool", default=False),
    cascade=dict(type="bool", default=False),
    source=dict(type="dict", options=SOURCE_OPTIONS),
    description=dict(type="str"),
    metadata=dict(type="dict"),
    retype=dict(type="bool", default=False),
    manage=dict(type="dict", options=MANAGE_OPTIONS),
)
# device-mapper's DM_NAME_LEN is 128: ``<vg>-<lv>`` with ``-`` doubled must fit in 127 characters.
_DM_NAME_MAX = 127


def source_tag(source):
    """The ``ember.source=`` tag of a source dict: ``<volume>`` or ``<volume>+<snapshot>`` (``+`` is in neither
    name), encoded as snapshot descriptions are; an image's: ``image:<first 16 hex digits of its sha256>``."""
    if source.get("image") is not None or source.get("sha256"):
        return SOURCE_TAG + IMAGE_SOURCE + short_sha(source["sha256"])
    value = source["volume"] if not source.get("snapshot") else "%s+%s" % (source["volume"], source["snapshot"])
    return SOURCE_TAG + encode_description(value)


def recorded_source(lv):
    """The source an LV records (``{"volume", "snapshot"}``; an image: ``{"volume": None, "snapshot": None,
    "image": None, "sha256": <16 hex digits>}``), or None."""
    value = next((t[len(SOURCE_TAG):] for t in (lv or {}).get("tags") or [] if t.startswith(SOURCE_TAG)), None)
    if not value:
        return None
    if value.startswith(IMAGE_SOURCE):
        return {"volume": None, "snapshot": None, "image": None, "sha256": value[len(IMAGE_SOURCE):]}
    volume, _sep, snapshot = decode_description(value).partition("+")
    return {"volume": volume, "snapshot": snapshot or None}


def clone_snapshot_name(volume):
    """LV of the temporary COW snapshot a thick clone copies from: ``clone-snap-<new volume>``."""
    return CLONE_SNAPSHOT_PREFIX + volume


def _is_clone_snapshot(lv, volume):
    tags = lv.get("tags") or []
    return MANAGED_TAG in tags and CLONE_TAG + volume in tags


def decide(items, lvm_state, exported, field="volumes", predict_missing=False, foreign=None, indexes=None,
           images=None):
    """Return ``(actions, errors)``.

    ``items``: validated option dicts (``ITEM_OPTIONS``). ``lvm_state``: :class:`drivers.lvm.LvmState`.
    ``exported``: ``{volume name: target iqn}`` of volumes that have an export of ours (a marked file, maybe a
    live target). ``foreign``: ``{volume name: target iqn}`` of targets with the volume's IQN that are not ours
    (a volume exported by one of them is not deleted). ``predict_missing``: in check mode a VG or thin pool that
    the roles would create is not an error.
    Each action: the item plus ``action`` (create|extend|none|delete|absent), ``size_bytes`` (after),
    ``previous_size_bytes``, ``lv_name``, ``device``, ``exported`` (iqn or None), ``snapshots``, ``source`` (the
    source dict of a create from a source, else the source the LV records, else None), ``copy_method`` (``dd`` for
    a thick volume copied from its source, else None); a create from a source also ``from_source`` (True),
    ``resume`` (the LV exists with ``ember.creating``: finish it), ``source_lv``, ``source_size_bytes``,
    ``origin_size_bytes`` (thin: the size the new LV has before its extend), ``temp_snapshot`` and
    ``leftover_temp`` (thick clone). ``indexes``: the position in the module's list of each of ``items`` (the
    volume module gives this function its LVM items only when others are an NFS backend's), for the messages.

    An image source (``source: {image: ...}``): ``images`` is ``{volume name: image}`` of the images the module
    staged (:func:`stage_images`: ``path``, ``sha256``, ``format``, ``virtual_size_bytes``, or ``error``); a
    volume without one there is decided without the image's checks (the module decides again once they are
    staged; check mode with a URL never downloads). Its action has ``copy_method`` ``qemu-img convert``, ``image``
    (that dict) and ``target_is_zero`` (a new thin LV, or an interrupted one with no data block yet).
    """
    actions, errors = [], []
    if indexes is None:
        indexes = list(range(len(items)))
    seen = set()
    listed = {}
    for index, item in enumerate(items):
        if isinstance(item.get("name"), str) and isinstance(item.get("vg"), str):
            listed.setdefault((item["vg"], item["name"]), ("%s[%d]" % (field, indexes[index]), item.get("state")))
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, indexes[index])
        try:
            name = validate_volume_name(item["name"], where + ".name")
            validate_vg_name(item["vg"], where + ".vg")
            if item.get("thin_pool") is not None:
                validate_lv_name(item["thin_pool"], where + ".thin_pool")
            if item.get("backend") is not None:
                validate_backend_name(item["backend"], where + ".backend")
            if item.get("volume_type"):
                validate_type_name(item["volume_type"], where + ".volume_type")
            size = None
            if item.get("size") is not None:
                size = parse_volume_size(item["size"], where + ".size")
            clear_size = parse_clear_size(item.get("volume_clear_size") or 0, where + ".volume_clear_size")
            source = _validate_source(item.get("source"), where + ".source")
            description = validate_description(item.get("description"), where + ".description")
            metadata = validate_metadata(item.get("metadata"), where + ".metadata")
        except (NameError_, SizeError) as exc:
            errors.append(str(exc))
            continue
        if name in seen:
            errors.append("%s.name: %r is listed twice" % (where, name))
            continue
        seen.add(name)
        vg = lvm_state.vgs.get(item["vg"])
        lv = lvm_state.volume(item["vg"], name)
        here = lv["name"] if lv else lv_name(name)  # a volume managed without rename keeps its LV's name
        act = dict(item, name=name, lv_name=here, action="none", size_bytes=None,
                   previous_size_bytes=lv["size_bytes"] if lv else None, volume_clear_size_bytes=clear_size,
                   device="/dev/%s/%s" % (item["vg"], here), exported=exported.get(name),
                   snapshots=[], status="available" if lv else "absent", source=recorded_source(lv),
                   copy_method=None, from_source=False, item_field=where, description=None, metadata={},
                   meta_tags=[], tags_add=[], tags_delete=[])
        act["previous_description"], act["previous_metadata"] = read_meta(lv["tags"] if lv else [])
        if item["state"] == "unmanaged":
            error = _decide_unmanage(act, where, lv, lvm_state, foreign)
            if error:
                errors.append(error)
            else:
                actions.append(act)
            continue
        if item["state"] == "present" and item.get("manage") and lv is None:
            error = _decide_manage(act, where, item["manage"], size, lvm_state, vg) \
                or _decide_meta(act, where, None, description, metadata)
            if error:
                errors.append(error)
            else:
                actions.append(act)
            continue
        if lv and not lv["managed"]:
            errors.append("%s: LV %s/%s exists but is not managed by ember.blockstore (it needs both tags '%s' "
                          "and '%s%s'); refusing to touch it" % (where, item["vg"], lv["name"], MANAGED_TAG,
                                                                 VOLUME_TAG, name))
            continue
        foreign_snapshots = []
        act["backup_bases"] = []
        if lv:
            snaps = lvm_state.snapshots_of(item["vg"], lv["name"])
            # The backup module's kept bases are not the user's snapshots: they go with the volume (its backups
            # stay in the store), without cascade.
            act["backup_bases"] = sorted(s["name"] for s in snaps
                                         if is_backup_base(s, name) or is_image_snapshot(s, name))
            snaps = [s for s in snaps if s["name"] not in act["backup_bases"]]
            act["snapshots"] = sorted(s["name"] for s in snaps)
            foreign_snapshots = sorted(s["name"] for s in snaps if not is_managed_snapshot(s, name))
            if act["exported"]:
                act["status"] = "in-use"
        if item["state"] == "present":
            resume = bool(lv and CREATING_TAG in lv["tags"])
            if size is None and source is None and not resume:
                errors.append("%s.size: required when state is present (volume %s)" % (where, name))
                continue
            if size is None and source is not None and source.get("image") is not None and lv is None:
                errors.append("%s.size: required with an image source (volume %s; at least the image's virtual "
                              "size)" % (where, name))
                continue
            if size is not None and size <= 0:
                errors.append("%s.size: %r must be greater than zero" % (where, item["size"]))
                continue
            if vg is None and lv is None and not predict_missing:
                errors.append("%s.vg: volume group %r does not exist on this host" % (where, item["vg"]))
                continue
            if item.get("thin_pool") and vg is not None:
                pool_lv = lvm_state.lv(item["vg"], item["thin_pool"])
                if pool_lv is not None and pool_lv["segtype"] != "thin-pool":
                    errors.append("%s.thin_pool: %s/%s is a %s LV, not a thin pool" % (
                        where, item["vg"], item["thin_pool"], pool_lv["segtype"] or "plain"))
                    continue
                if pool_lv is None and not predict_missing:
                    errors.append("%s.thin_pool: thin pool %s/%s does not exist"
                                  % (where, item["vg"], item["thin_pool"]))
                    continue
            extent = vg["extent_size_bytes"] if vg else DEFAULT_EXTENT
            if lv is None and source is not None and source.get("image") is not None:
                error = _decide_image(act, where, source, round_up(size, extent), images)
                if error:
                    errors.append(error)
                    continue
            elif lv is None and source is not None:
                error = _decide_source(act, where, source, size, extent, lvm_state, vg, listed)
                if error:
                    errors.append(error)
                    continue
            elif lv is None:
                act.update(action="create", size_bytes=round_up(size, extent), status="available")
            else:
                is_thin = bool(lv["pool_lv"])
                if is_thin != bool(item.get("thin_pool")) or (is_thin and lv["pool_lv"] != item["thin_pool"]):
                    errors.append("%s: volume %s exists as a %s LV in %s; it cannot move to %s" % (
                        where, name, "thin (pool %s)" % lv["pool_lv"] if is_thin else "thick", item["vg"],
                        "thin pool %s" % item["thin_pool"] if item.get("thin_pool") else "a thick LV"))
                    continue
                want = round_up(size, extent) if size is not None else lv["size_bytes"]
                if want < lv["size_bytes"]:
                    errors.append("%s.size: %s (%s) is smaller than volume %s's current size %s; volumes are "
                                  "never shrunk" % (where, item["size"], format_size(want), name,
                                                    format_size(lv["size_bytes"])))
                    continue
                if resume:
                    error = _decide_resume(act, where, lv, want, extent, lvm_state, vg, listed, source, images)
                    if error:
                        errors.append(error)
                        continue
                elif want > lv["size_bytes"]:
                    busy = _busy(lv)
                    if busy:
                        errors.append("%s.size: volume %s is %s (its tag says so); extend it when that has finished"
                                      % (where, name, busy))
                        continue
                    act.update(action="extend", size_bytes=want)
                else:
                    act["size_bytes"] = lv["size_bytes"]
            error = _decide_meta(act, where, lv, description, metadata)
            if error:
                errors.append(error)
                continue
            _decide_retype(act, item, lv)
        else:
            if lv is not None:
                if name in (foreign or {}):
                    errors.append("%s: target %s has volume %s's IQN but is not managed by ember.blockstore; it is "
                                  "never removed, so the volume is not deleted" % (where, foreign[name], name))
                    continue
                busy = _busy(lv)
                if busy:
                    errors.append("%s: volume %s is %s (its tag says so); delete it when that has finished (a run "
                                  "that died leaves the tag: the backup module's next run clears it)"
                                  % (where, name, busy))
                    continue
                if act["exported"] and not item.get("force"):
                    errors.append("%s: volume %s is in-use (exported as %s); detach it first or set force: true"
                                  % (where, name, act["exported"]))
                    continue
                if act["snapshots"] and not item.get("cascade"):
                    errors.append("%s: volume %s has snapshots (%s); delete them first or set cascade: true"
                                  % (where, name, ", ".join(act["snapshots"])))
                    continue
                if foreign_snapshots:
                    errors.append("%s: volume %s has snapshots that are not ember.blockstore's (%s: no '%s', '%s%s' "
                                  "and '%s<name>' tags); cascade deletes only the project's snapshots, so remove "
                                  "these by hand first" % (where, name, ", ".join(foreign_snapshots), MANAGED_TAG,
                                                           VOLUME_TAG, name, "ember.snapshot="))
                    continue
                act.update(action="delete", size_bytes=None, status="deleted")
            else:
                act["action"] = "absent"
        actions.append(act)
    decided = {(a["vg"], a["name"]): a for a in actions}
    for act in actions:
        if not act["from_source"] or not act.get("source_lv"):
            continue
        other = decided.get((act["vg"], act["source"]["volume"]))
        if other is not None and other["action"] == "extend":
            errors.append("%s.source.volume: volume %r is extended in this same run (%s); a source must not change "
                          "in the run that copies it: extend it in an earlier or a later task"
                          % (act["item_field"], act["source"]["volume"], other["item_field"]))
    return actions, errors


def _decide_retype(act, item, lv):
    """Retype in place (``retype``, Cinder's ``retype`` when the volume's host still satisfies the new type, so no
    data moves): an existing volume whose ``ember.type=`` tag is not ``volume_type`` gets it replaced; ``none``
    becomes ``update``. Sets ``retype_tag`` (the tag wanted) and ``retyped_from`` (the type it had)."""
    act["retyped_from"] = None
    if not item.get("retype") or lv is None or not item.get("volume_type"):
        return
    want = TYPE_TAG + item["volume_type"]
    if want in lv["tags"]:
        return
    act["retype_tag"] = want
    act["retyped_from"] = lv["volume_type"]
    act["tags_add"] = act["tags_add"] + [want]
    act["tags_delete"] = act["tags_delete"] + [t for t in lv["tags"] if t.startswith(TYPE_TAG)]
    if act["action"] == "none":
        act["action"] = "update"


def _decide_manage(act, where, manage, size, lvm_state, vg):
    """Cinder's ``manage_existing`` and ``manage_existing_get_size`` of the LVM driver
    (``cinder/volume/drivers/lvm.py``) for one item whose volume does not exist yet: the LV ``manage.lv`` of the
    item's VG becomes the volume. Its size is the LV's exact size in bytes (Cinder rounds it up to whole GiB); a
    bigger ``size`` extends it after the manage, a smaller one is refused (volumes never shrink). Refused before any
    change: the LV is missing, carries a tag of the project (``ember.*``), is open (a mount, a holder or a process:
    ``lv_attr``'s sixth character), is a snapshot or has snapshots, is neither a plain LV nor a thin volume, is not
    in the item's thin pool (or is thin for a thick item), or is named ``volume-<other volume>``. With ``rename``,
    an LV ``volume-<name>`` without tags is the one a run renamed and stopped before tagging: it is finished.
    Sets ``action`` (``manage``), ``managed_lv`` (the LV before the run), ``rename``, ``lv_name`` and ``device``
    (after the run), ``size_bytes`` and ``previous_size_bytes``; returns an error message or None."""
    field = where + ".manage"
    vg_name, name = act["vg"], act["name"]
    try:
        wanted = validate_lv_name(manage.get("lv"), field + ".lv")
    except NameError_ as exc:
        return str(exc)
    rename = bool(manage.get("rename"))
    target = lv_name(name)
    lv = lvm_state.lv(vg_name, wanted)
    if lv is None and rename:
        renamed = lvm_state.lv(vg_name, target)
        if renamed is not None and not any(t.startswith(EMBER_TAG_PREFIX) for t in renamed["tags"]):
            lv = renamed  # renamed by a run that stopped before it tagged the LV
    if lv is None:
        return ("%s.lv: LV %r not found in volume group %s on this host; nothing to manage"
                % (field, wanted, vg_name))
    if lv["name"].startswith(LV_PREFIX) and lv["name"] != target:
        return ("%s.lv: LV %s/%s is named as the LV of volume %s (volume-<name>); manage it under that name or "
                "rename it first" % (field, vg_name, lv["name"], lv["name"][len(LV_PREFIX):]))
    ours = [t for t in lv["tags"] if t.startswith(EMBER_TAG_PREFIX)]
    if ours:
        held = next((t[len(VOLUME_TAG):] for t in ours if t.startswith(VOLUME_TAG)), None)
        return ("%s.lv: LV %s/%s is already managed by ember.blockstore%s (tags: %s); unmanage it first "
                "(state: unmanaged) to manage it under another name"
                % (field, vg_name, lv["name"], " as volume %s" % held if held else "", ", ".join(ours)))
    problem = manage_problem(lv, lvm_state, act.get("thin_pool"))
    if problem:
        return "%s.lv: LV %s/%s %s" % (field, vg_name, lv["name"], problem)
    extent = vg["extent_size_bytes"] if vg else DEFAULT_EXTENT
    want = round_up(size, extent) if size is not None else lv["size_bytes"]
    if want < lv["size_bytes"]:
        return ("%s.size: %s (%s) is smaller than LV %s/%s (%s, %d bytes); volumes never shrink"
                % (where, show_value(act.get("size")), format_size(want), vg_name, lv["name"],
                   format_size(lv["size_bytes"]), lv["size_bytes"]))
    after = target if rename else lv["name"]
    act.update(action="manage", size_bytes=max(want, lv["size_bytes"]), previous_size_bytes=lv["size_bytes"],
               managed_lv=lv["name"], rename=rename, lv_name=after, device="/dev/%s/%s" % (vg_name, after),
               status="available")
    return None


def manage_problem(lv, lvm_state, thin_pool=None):
    """Why an existing LV cannot become a volume (manage), or None: it is open, a snapshot or the origin of
    snapshots, not a plain LV or thin volume, or not of the kind of the pool (a thin volume of ``thin_pool``, or
    a plain LV when ``thin_pool`` is None). ``lv``: a ``drivers.lvm.parse_lvs`` row."""
    usage = lv_usage(lv, lvm_state)
    if usage["open"]:
        return "is open (in use on this host: mounted, held by another device or opened by a process)"
    if usage["snapshot_of"]:
        return "is a snapshot of %s; manage the origin, not its snapshots" % usage["snapshot_of"]
    if usage["snapshots"]:
        return "has snapshots (%s); remove them first" % ", ".join(usage["snapshots"])
    if usage["kind"] not in ("linear", "thin"):
        return "is a %s LV, not a plain LV or a thin volume" % (lv.get("segtype") or usage["kind"])
    if thin_pool and lv.get("pool_lv") != thin_pool:
        return ("is %s; the backend's volumes are thin volumes of thin pool %s"
                % ("thin (pool %s)" % lv["pool_lv"] if lv.get("pool_lv") else "a thick LV", thin_pool))
    if not thin_pool and lv.get("pool_lv"):
        return "is a thin volume (pool %s); the backend's volumes are thick LVs" % lv["pool_lv"]
    return None


def _decide_unmanage(act, where, lv, lvm_state, foreign):
    """Cinder's unmanage: the volume's LV loses every tag of the project (``ember.*``), the LV and its data stay.
    An LV that is not a volume of the project (already unmanaged) is ``none``. Refused: the volume is exported (a
    target of ours or a foreign one with its IQN), a backup or restore runs on it, or it has snapshots (each LV
    whose origin it is, named; Cinder's API refuses to unmanage a volume with snapshots)."""
    act["status"] = "unmanaged"
    if lv is None or not lv["managed"]:
        act.update(action="none", lv_name=act["lv_name"] if lv is None else lv["name"])
        return None
    name = act["name"]
    target = act["exported"] or (foreign or {}).get(name)
    if target:
        return ("%s.state: unmanaged: volume %s is exported as %s (in-use); detach it first, Cinder unmanages only "
                "an available volume" % (where, name, target))
    busy = _busy(lv)
    if busy:
        return "%s.state: unmanaged: volume %s is %s (its tag says so); unmanage it when that has finished" % (
            where, name, busy)
    snaps = sorted(s["name"] for s in lvm_state.lvs if s["vg"] == lv["vg"] and s["origin"] == lv["name"])
    if snaps:
        return ("%s.state: unmanaged: volume %s has snapshots (%s); delete them first (Cinder does not unmanage a "
                "volume with snapshots)" % (where, name, ", ".join(snaps)))
    act.update(action="unmanage", size_bytes=lv["size_bytes"],
               tags_delete=[t for t in lv["tags"] if t.startswith(EMBER_TAG_PREFIX)])
    return None


def _busy(lv):
    """What a running backup or restore says of the LV (``backing-up``, ``restoring-backup``), or None."""
    return next((t.split("=", 1)[1] for t in lv["tags"] if t in BUSY_STATUS_TAGS), None)


def _validate_source(source, where):
    """``{"volume", "snapshot"}`` of an item's ``source`` (names validated), or for an image ``{"volume": None,
    "snapshot": None, "image", "url", "path", "format", "checksum"}``, or None; raises NameError_."""
    if source is None:
        return None
    if not isinstance(source, dict):
        raise NameError_("%s: %s is not a dict with volume (and snapshot), or image" % (where, show_value(source)))
    if source.get("image") is not None:
        given = [key for key in ("volume", "snapshot") if source.get(key) is not None]
        if given:
            raise NameError_("%s.%s: %s is given with image; a volume is made from an image or from a volume, not "
                             "both" % (where, given[0], show_value(source[given[0]])))
        location = validate_location(source["image"], where + ".image")
        return dict(location, volume=None, snapshot=None, image=source["image"],
                    format=validate_format(source.get("format"), where + ".format"),
                    checksum=validate_checksum(source.get("checksum"), where + ".checksum"))
    for key in ("format", "checksum"):
        if source.get(key) is not None:
            raise NameError_("%s.%s: %s applies to an image source only (source.image)"
                             % (where, key, show_value(source[key])))
    if source.get("volume") is None:
        raise NameError_("%s: %s names no volume and no image; give source.volume (a clone or, with snapshot, from "
                         "a snapshot) or source.image" % (where, show_value(source)))
    volume = validate_volume_name(source.get("volume"), where + ".volume")
    snapshot = source.get("snapshot")
    if snapshot is not None:
        validate_snapshot_name(snapshot, where + ".snapshot")
    return {"volume": volume, "snapshot": snapshot}


def _decide_meta(act, where, lv, description, metadata):
    """The description and metadata tags a present volume ends with (``_metadata``): ``description`` or
    ``metadata`` None leaves that part as the LV has it (its tags untouched); given, it is the whole desired state
    (``""`` removes the description, keys not listed are removed: Cinder's ``update_volume_metadata`` with
    ``delete=True``). Sets ``description``, ``metadata`` (after the run), ``meta_tags`` (all of them),
    ``tags_add``/``tags_delete`` (against the LV's tags) and turns ``none`` into ``update`` when tags change.
    Returns an error message or None."""
    have = [t for t in (lv["tags"] if lv else []) if is_meta_tag(t)]
    old_desc, old_meta = act["previous_description"], act["previous_metadata"]
    if description is None:
        desc_tags = [t for t in have if not t.startswith(METADATA_TAG)]
        act["description"] = old_desc
    else:
        desc_tags = description_tags(description)
        act["description"] = description or None
    if metadata is None:
        meta_tags = [t for t in have if t.startswith(METADATA_TAG)]
        act["metadata"] = dict(old_meta)
    else:
        meta_tags = metadata_tags(metadata)
        act["metadata"] = dict(metadata)
    want = desc_tags + meta_tags
    if (description is not None or metadata is not None) and tags_size(want) > MAX_TAG_CHARS:
        return ("%s: the description and metadata of volume %s take %d characters in LV tags (encoded: characters "
                "other than letters, digits and _+.-/: take 3 each, more for non-ASCII); a volume holds at most %d, "
                "as they live in LVM's VG metadata: shorten them" % (where, act["name"], tags_size(want),
                                                                     MAX_TAG_CHARS))
    act.update(meta_tags=want, tags_add=[t for t in want if t not in have],
               tags_delete=[t for t in have if t not in want])
    if lv is not None and act["action"] == "none" and (act["tags_add"] or act["tags_delete"]):
        act["action"] = "update"
    return None


def _decide_image(act, where, source, want, images, existing=None, recorded=None):
    """A create from an image (or, with ``existing``, the rest of one that was interrupted): the image staged on
    this node (``images[name]``, :func:`stage_images`) must not be bigger than the volume (Cinder's
    ``check_virtual_size``), must match ``checksum`` and, for an interrupted one, the recorded sha256 digits
    (``recorded``). Sets the action's fields; returns an error message or None."""
    field = where + ".source.image"
    name = act["name"]
    if existing is not None:
        want = max(want, existing["size_bytes"])
    image = (images or {}).get(name)
    if image is not None:
        if image.get("error"):
            return "%s: %s" % (field, image["error"])
        if source.get("checksum") and image["sha256"] != source["checksum"]:
            return ("%s.checksum: image %s has sha256 %s, not %s as given; refusing it"
                    % (where + ".source", source["image"], image["sha256"], source["checksum"]))
        if recorded and not image["sha256"].startswith(recorded):
            values = (field, name, IMAGE_SOURCE, recorded, CREATING_TAG, source["image"], image["sha256"])
            return ("%s: volume %s is half written from image %s%s (tag %s), but %s has sha256 %s; give the same "
                    "image, or delete the volume (state: absent)" % values)
        if image["virtual_size_bytes"] > want:
            return ("%s: image %s has a virtual size of %s (%d bytes), bigger than volume %s's %s (%d bytes); give a "
                    "size of at least the image's" % (field, source["image"], format_size(image["virtual_size_bytes"]),
                                                      image["virtual_size_bytes"], name, format_size(want), want))
    thin = bool(act.get("thin_pool"))
    known_zero = thin and (existing is None or existing.get("data_percent") == 0.0)
    result = {"volume": None, "snapshot": None, "image": source["image"],
              "sha256": image["sha256"] if image and not image.get("error") else recorded}
    act.update(action="create", size_bytes=want, status=act["status"] if existing else "available",
               source=result, from_source=True, resume=existing is not None, source_lv=None,
               source_size_bytes=image["virtual_size_bytes"] if image else None,
               origin_size_bytes=existing["size_bytes"] if existing else want, copy_method="qemu-img convert",
               temp_snapshot=None, leftover_temp=False, image=image, image_source=source, target_is_zero=known_zero)
    return None


def _describe(source):
    if source.get("snapshot"):
        return "snapshot %s of volume %s" % (source["snapshot"], source["volume"])
    return "volume %s" % source["volume"]


def _decide_source(act, where, source, size, extent, lvm_state, vg, listed, existing=None):
    """A create from ``source`` (or, with ``existing``, the rest of one that was interrupted): checks the source
    and sets the action's fields; returns an error message or None. Nothing here reads more than ``lvm_state``."""
    field = where + ".source"
    vg_name, name, volume = act["vg"], act["name"], source["volume"]
    if volume == name:
        return "%s.volume: %r is the volume itself; a volume cannot be made from itself" % (field, volume)
    other = listed.get((vg_name, volume))
    src_lv = lvm_state.volume(vg_name, volume)
    if src_lv is None:
        if other is not None and other[1] == "present":
            return ("%s.volume: volume %r is created in this same run (%s); a source must exist before the run: "
                    "create it in an earlier task" % (field, volume, other[0]))
        elsewhere = sorted(lv["vg"] for lv in lvm_state.lvs if lv["managed"] and lv["volume"] == volume)
        if elsewhere:
            return ("%s.volume: volume %r is in volume group %s, not %s; a source must be in the new volume's "
                    "volume group (and thin pool)" % (field, volume, ", ".join(elsewhere), vg_name))
        return ("%s.volume: volume %r does not exist in volume group %s (no LV %s/%s)"
                % (field, volume, vg_name, vg_name, lv_name(volume)))
    if not src_lv["managed"]:
        return ("%s.volume: LV %s/%s exists but is not an ember.blockstore volume; refusing to copy it"
                % (field, vg_name, src_lv["name"]))
    if other is not None and other[1] == "absent":
        return ("%s.volume: volume %r is deleted in this same run (%s); it cannot be a source"
                % (field, volume, other[0]))
    pool = act.get("thin_pool") or None
    if src_lv["pool_lv"] != pool:
        return ("%s.volume: volume %r is %s, but volume %s is %s; a source must be in the same thin pool (or both "
                "thick)" % (field, volume, "thin (pool %s)" % src_lv["pool_lv"] if src_lv["pool_lv"] else "thick",
                            name, "thin (pool %s)" % pool if pool else "thick"))
    if CREATING_TAG in src_lv["tags"]:
        return ("%s.volume: volume %r is itself still being created from its source (tag %s); run again to "
                "finish it first" % (field, volume, CREATING_TAG))
    if source.get("snapshot"):
        snap_name = snapshot_lv_name(volume, source["snapshot"])
        snap = lvm_state.lv(vg_name, snap_name)
        tags = (snap or {}).get("tags") or []
        if snap is None or not is_managed_snapshot(snap, volume) or "ember.snapshot=" + source["snapshot"] not in tags:
            return ("%s.snapshot: volume %s has no snapshot %r (no ember.blockstore snapshot LV %s/%s)"
                    % (field, volume, source["snapshot"], vg_name, snap_name))
        recorded = next((t[len(SIZE_TAG):] for t in tags if t.startswith(SIZE_TAG)), None)
        if recorded and recorded.isdigit():
            source_size = int(recorded)
        elif snap["pool_lv"]:
            source_size = snap["size_bytes"]
        else:
            return ("%s.snapshot: snapshot LV %s/%s has no %s tag: the size of its volume is unknown"
                    % (field, vg_name, snap_name, SIZE_TAG))
        source_lv, origin_size = snap_name, snap["size_bytes"]
    else:
        source_size = origin_size = src_lv["size_bytes"]
        source_lv = src_lv["name"]
    want = round_up(size, extent) if size is not None else round_up(source_size, extent)
    if want < source_size:
        return ("%s.size: %s (%s) is smaller than its source's size %s (%s); a volume made from a source is at "
                "least as big (Cinder refuses a smaller one)" % (where, show_value(act.get("size")), format_size(want),
                                                                 format_size(source_size), _describe(source)))
    if existing is not None:
        want = max(want, existing["size_bytes"])
    act.update(action="create", size_bytes=want, status=act["status"] if existing else "available",
               source=dict(source), from_source=True, resume=existing is not None, source_lv=source_lv,
               source_size_bytes=source_size, origin_size_bytes=existing["size_bytes"] if existing else origin_size,
               copy_method=None if pool else "dd", temp_snapshot=None, leftover_temp=False)
    if pool or source.get("snapshot"):
        return None
    temp = clone_snapshot_name(name)
    if dm_name_length(vg_name, temp) > _DM_NAME_MAX:
        return ("%s.name: %r gives the temporary snapshot LV %s/%s of its clone, whose device-mapper name is %d "
                "characters (at most %d); use a shorter volume name"
                % (where, name, vg_name, temp, dm_name_length(vg_name, temp), _DM_NAME_MAX))
    leftover = lvm_state.lv(vg_name, temp)
    if leftover is not None and not _is_clone_snapshot(leftover, name):
        return ("%s: LV %s/%s exists but is not ember.blockstore's temporary clone snapshot of volume %s (tags '%s' "
                "and '%s%s'); refusing to touch it" % (where, vg_name, temp, name, MANAGED_TAG, CLONE_TAG, name))
    cow = round_up(src_lv["size_bytes"], extent)
    need = cow + (0 if existing is not None else want)
    free = (vg["free_bytes"] if vg else 0) + (leftover["size_bytes"] if leftover else 0)
    if free < need:
        parts = "a temporary COW snapshot of %s" % format_size(cow)
        if existing is None:
            parts = "the new volume of %s and %s" % (format_size(want), parts)
        return ("%s.volume: a thick clone of volume %s needs %s free in volume group %s (%s); it has %s"
                % (field, volume, format_size(need), vg_name, parts, format_size(free)))
    act.update(temp_snapshot=temp, leftover_temp=leftover is not None)
    return None


def _decide_resume(act, where, lv, want, extent, lvm_state, vg, listed, given=None, images=None):
    """An LV with ``ember.creating``: a create from a source that was interrupted. Thick: the copy is done again
    from the recorded source (which must still be there); thin: the data is already shared, only activation and
    extend are left (the source is not needed). From an image (thick or thin): the item must give the image
    again (``given``), the same one (its sha256 starts with the recorded digits), and it is written again."""
    source = recorded_source(lv)
    if source is None:
        return ("%s: volume %s carries %s but records no source (%s...); delete it (state: absent) and create "
                "it again" % (where, act["name"], CREATING_TAG, SOURCE_TAG))
    if source.get("sha256"):
        if given is None or given.get("image") is None:
            return ("%s.source.image: volume %s is half written from image %s%s (tag %s); give that image again as "
                    "source.image to finish it, or delete it (state: absent)"
                    % (where, act["name"], IMAGE_SOURCE, source["sha256"], CREATING_TAG))
        return _decide_image(act, where, given, want, images, existing=lv, recorded=source["sha256"])
    if lv["pool_lv"]:
        act.update(action="create", size_bytes=want, from_source=True, resume=True, source=source, source_lv=None,
                   source_size_bytes=None, origin_size_bytes=lv["size_bytes"], copy_method=None,
                   temp_snapshot=None, leftover_temp=False)
        return None
    error = _decide_source(act, where, source, want, extent, lvm_state, vg, listed, existing=lv)
    if error:
        return ("%s (volume %s is half made from %s, tag %s: it is copied again from there; or delete it with "
                "state: absent)" % (error, act["name"], _describe(source), CREATING_TAG))
    return None


class VolumeApplier:
    """Runs the commands for decided actions (``lvm``: drivers.lvm.Lvm, ``tgt``: drivers.tgt.Tgt)."""

    def __init__(self, lvm, tgt, target_prefix):
        self.lvm = lvm
        self.tgt = tgt
        self.target_prefix = target_prefix

    def apply_batch(self, actions):
        """Apply every decided action, LVM's changes batched. Returns ``[(act, error)]`` in the order of
        ``actions`` for the items attempted (``error`` None when done, else the CommandError/RuntimeError).

        Creates, extends and updates (description and metadata tags: one ``lvchange`` per LV) go through one
        ``lvm`` shell process (:meth:`Lvm.run_script`), then one read-back checks each one's effect (the LV exists,
        carries the managed tag, has at least the size, carries the wanted description and metadata tags and none
        of the old ones); what is missing of an item's effect is run again on its own, so its error is its own (a
        create that failed left no LV, an extend that failed left the size). A command the shell cannot take (more
        than :data:`drivers.lvm.SHELL_MAX_WORDS` words: many metadata keys) is not put into it and runs on its own
        the same way. udev is settled once. Creates from a source run next, one by one in
        request order (each is several commands, a copy among them; one that fails does not stop the others).
        Deletes run one by one afterwards (each removes its export and wipes its device); the first failed delete
        stops the batch, and the items after it are not attempted (not in the list)."""
        outcomes = {}
        changes = [a for a in actions if a["action"] in ("create", "extend", "update") and not a.get("from_source")]
        if changes:
            script = [args for act in changes for args in self._commands(act)]
            self.lvm.run_script([args for args in script if Lvm.fits_shell(args)])
            state = self.lvm.state()
            for act in changes:
                try:
                    for args in self._commands(act, state.volume(act["vg"], act["name"])):
                        self.lvm.runner.run(args)
                    outcomes[id(act)] = None
                except (CommandError, RuntimeError) as exc:
                    outcomes[id(act)] = exc
            self.lvm.settle()
        for act in actions:
            if act["action"] in ("manage", "unmanage"):
                try:
                    self.manage(act)
                    outcomes[id(act)] = None
                except (CommandError, RuntimeError) as exc:
                    outcomes[id(act)] = exc
        for act in actions:
            if act["action"] == "create" and act.get("from_source"):
                try:
                    self.create_from_source(act)
                    outcomes[id(act)] = None
                except (CommandError, RuntimeError) as exc:
                    outcomes[id(act)] = exc
        for act in actions:
            if act["action"] == "delete":
                try:
                    self.delete(act)
                    outcomes[id(act)] = None
                except (CommandError, RuntimeError) as exc:
                    outcomes[id(act)] = exc
                    break
            elif act["action"] not in ("create", "extend", "update") and id(act) not in outcomes:
                outcomes[id(act)] = None
        return [(act, outcomes[id(act)]) for act in actions if id(act) in outcomes]

    _UNREAD = object()

    def _commands(self, act, lv=_UNREAD):
        """The commands of a plain create, extend or update. With ``lv`` (the volume's LV read back after the
        ``lvm`` shell ran, or None when it is missing): only what is still missing of its effect."""
        vg, name = act["vg"], act["name"]
        if lv is self._UNREAD:
            present, size, tags = act["action"] != "create", act.get("previous_size_bytes") or 0, None
        else:
            present = lv is not None and MANAGED_TAG in lv["tags"]
            size, tags = (lv["size_bytes"], lv["tags"]) if lv is not None else (0, [])
        if not present and act["action"] != "create":
            raise RuntimeError("volume LV %s/%s is missing after the lvm shell ran" % (vg, act["lv_name"]))
        if not present:
            return [self.lvm.create_args(vg, name, act["size_bytes"], thin_pool=act.get("thin_pool"),
                                         volume_type=act.get("volume_type"), backend=act.get("backend"),
                                         extra_tags=act["meta_tags"])]
        commands = []
        if size < act["size_bytes"]:
            commands.append(self.lvm.extend_args(vg, name, act["size_bytes"], act["lv_name"]))
        if tags is None:
            add, delete = act["tags_add"], act["tags_delete"]
        else:
            add = [t for t in act["meta_tags"] if t not in tags]
            delete = [t for t in tags if is_meta_tag(t) and t not in act["meta_tags"]]
            want = act.get("retype_tag")
            if want:
                add += [want] if want not in tags else []
                delete += [t for t in tags if t.startswith(TYPE_TAG) and t != want]
        change = self.lvm.change_tags_args(vg, act["lv_name"], add=add, delete=delete)
        return commands + ([change] if change else [])

    def apply(self, act):
        if act["action"] == "create" and act.get("from_source"):
            self.create_from_source(act)
        elif act["action"] in ("create", "extend", "update"):
            for args in self._commands(act):
                self.lvm.runner.run(args)
            if act["action"] == "create":
                self.lvm.settle()
        elif act["action"] == "delete":
            self.delete(act)
        elif act["action"] in ("manage", "unmanage"):
            self.manage(act)

    def manage(self, act):
        """Manage (``lvrename`` to ``volume-<name>`` when asked, then one ``lvchange --addtag`` with the volume's
        tags, ``ember.own_name`` when it keeps its name, description and metadata; ``lvchange --setactivationskip n``
        and ``--activate y`` when the LV is inactive; ``lvextend`` when a bigger size is asked) or unmanage (one
        ``lvchange --deltag`` of each ``ember.*`` tag) one volume. The LV is read again first: one that was opened
        since the module decided is not managed (RuntimeError)."""
        vg = act["vg"]
        if act["action"] == "unmanage":
            self.lvm.change_tags(vg, act["lv_name"], delete=act["tags_delete"])
            return
        current = self.lvm.state().lv(vg, act["managed_lv"])
        if current is None:
            raise RuntimeError("LV %s/%s is gone since the module read it" % (vg, act["managed_lv"]))
        usage = lv_usage(current, None)
        if usage["open"]:
            raise RuntimeError("LV %s/%s was opened since the module read it (mounted, held or opened by a process): "
                               "not managed" % (vg, act["managed_lv"]))
        if act["managed_lv"] != act["lv_name"]:
            self.lvm.runner.run(Lvm.rename_args(vg, act["managed_lv"], act["lv_name"]))
        tags = Lvm.tags(act["name"], act.get("volume_type"), act.get("backend"))
        tags += ([] if act["lv_name"].startswith(LV_PREFIX) else [OWN_NAME_TAG]) + act["meta_tags"]
        self.lvm.change_tags(vg, act["lv_name"], add=tags)
        if not usage["active"]:
            # Activated as the volumes of the project are: exports and copies open /dev/<vg>/<lv>.
            if usage["skips_activation"]:
                self.lvm.set_activation_skip(vg, act["lv_name"], False)
            self.lvm.activate(vg, act["lv_name"])
        if act["size_bytes"] > act["previous_size_bytes"]:
            self.lvm.extend(vg, act["name"], act["size_bytes"], act["lv_name"])
        self.lvm.settle()

    def create_from_source(self, act):
        """Create (or, with ``resume``, finish) a volume from its source; ``ember.creating`` is removed last.

        Thin: ``lvcreate --snapshot --name volume-<name>`` of the source LV with the volume's tags plus
        ``ember.source=`` and ``ember.creating``, ``lvchange --setactivationskip n``, ``lvchange -ay``,
        ``lvextend`` when the size asked for is bigger. Thick: ``lvcreate`` at the volume's size with the same tags;
        the source is S's LV (activated) or a temporary COW snapshot of A (a leftover one removed first); ``dd``;
        the temporary snapshot removed (also when the copy failed; the tag then stays for the next run);
        ``lvextend`` when an interrupted volume is asked bigger."""
        vg, lv, name = act["vg"], act["lv_name"], act["name"]
        marks = [source_tag(act["source"]), CREATING_TAG]
        tags = Lvm.tags(name, act.get("volume_type"), act.get("backend")) + marks + act["meta_tags"]
        if act.get("image_source") is not None:
            self._write_image(act, marks)
        elif act.get("thin_pool"):
            if not act["resume"]:
                self.lvm.create_snapshot(vg, act["source_lv"], lv, tags)
            self.lvm.set_activation_skip(vg, lv, False)
            self.lvm.activate(vg, lv)
            if act["size_bytes"] > act["origin_size_bytes"]:
                self.lvm.extend(vg, name, act["size_bytes"])
        else:
            if act["resume"]:
                self.lvm.activate(vg, lv)
            else:
                self.lvm.create(vg, name, act["size_bytes"], volume_type=act.get("volume_type"),
                                backend=act.get("backend"), extra_tags=marks + act["meta_tags"])
            temp = act.get("temp_snapshot")
            if temp:
                if act.get("leftover_temp"):
                    self.lvm.remove(vg, temp)
                self.lvm.create_snapshot(vg, act["source_lv"], temp, [MANAGED_TAG, CLONE_TAG + name],
                                         act["source_size_bytes"])
                copy_from = temp
            else:
                self.lvm.activate(vg, act["source_lv"])
                copy_from = act["source_lv"]
            self.lvm.settle()
            try:
                act["copy_method"] = self.lvm.copy("/dev/%s/%s" % (vg, copy_from), act["device"],
                                                   act["source_size_bytes"])
            except CommandError:
                if temp:
                    try:
                        self.lvm.remove(vg, temp)
                    except CommandError:
                        pass  # the next run removes it: the copy's error is the one to report
                raise
            if temp:
                self.lvm.remove(vg, temp)
            if act["size_bytes"] > act["origin_size_bytes"] and act["resume"]:
                self.lvm.extend(vg, name, act["size_bytes"])
        if act["resume"]:  # the description and metadata asked for now
            self.lvm.change_tags(vg, lv, add=act["tags_add"], delete=[CREATING_TAG] + act["tags_delete"])
        else:
            self.lvm.change_tags(vg, lv, delete=[CREATING_TAG])
        self.lvm.settle()

    def _write_image(self, act, marks):
        """A volume from an image (Cinder's ``copy_image_to_volume``): ``lvcreate`` (thick or thin) with the
        volume's tags, ``ember.source=image:<digits>`` and ``ember.creating`` (an interrupted one: activated and
        extended to the size asked), then ``qemu-img convert`` of the staged image onto the LV
        (``--target-is-zero`` on a thin LV that holds no data block: nothing but the image's data is written).
        ``ember.creating`` is removed by the caller once the write succeeded."""
        vg, lv, name = act["vg"], act["lv_name"], act["name"]
        image = act.get("image")
        if not image or image.get("error") or not image.get("path"):
            raise RuntimeError("image %s of volume %s was not staged on this node" % (act["source"]["image"], name))
        if act["resume"]:
            self.lvm.activate(vg, lv)
            if act["size_bytes"] > act["origin_size_bytes"]:
                self.lvm.extend(vg, name, act["size_bytes"])
            self.lvm.settle()
        else:
            self.lvm.create(vg, name, act["size_bytes"], thin_pool=act.get("thin_pool"),
                            volume_type=act.get("volume_type"), backend=act.get("backend"),
                            extra_tags=marks + act["meta_tags"])
        act["copy_method"] = QemuImg(self.lvm.runner).to_device(image["path"], image["format"], act["device"],
                                                                target_is_zero=act["target_is_zero"])

    def delete(self, act):
        if act["exported"]:
            live = self.tgt.show_if_running()
            self.tgt.remove_export(act["exported"], tgt_conf_path(act["name"]), live, force=True)
        for snap in act["snapshots"] + act.get("backup_bases", []):
            self.lvm.remove(act["vg"], snap)
        act["wiped_bytes"] = 0
        act["wipe_method"] = None
        if act.get("thin_pool"):
            act["wipe"] = "skipped: thin pool zeroes blocks before reuse"
        elif act.get("volume_clear", "zero") == "zero":
            self.lvm.activate(act["vg"], act["lv_name"])
            wiped, method = self.lvm.clear(act["device"], act["previous_size_bytes"],
                                           act.get("volume_clear_size_bytes") or 0)
            act["wiped_bytes"] = wiped
            act["wipe_method"] = method
            # Never report a wipe that did not write anything (a volume smaller than the 1 MiB dd block).
            act["wipe"] = "zero" if act["wiped_bytes"] else "skipped: volume smaller than 1 MiB, nothing written"
        else:
            act["wipe"] = "none"
        self.lvm.remove(act["vg"], act["lv_name"])


def image_items(items, lvm_state):
    """The items that need their image on this node: present, ``source.image`` given, and their LV missing or
    carrying ``ember.creating`` (a source is used only at creation)."""
    out = []
    for item in items:
        source = item.get("source")
        if item.get("state", "present") != "present" or not isinstance(source, dict) or source.get("image") is None:
            continue
        if not isinstance(item.get("vg"), str) or not isinstance(item.get("name"), str):
            continue
        lv = lvm_state.volume(item["vg"], item["name"])
        if lv is None or CREATING_TAG in lv["tags"]:
            out.append(item)
    return out


def stage_images(items, lvm_state, qemu, check_mode, fetch=None):
    """``{volume name: image}`` for :func:`decide`: each image of :func:`image_items` on this node, with ``path``,
    ``sha256`` (of the file), ``format``, ``virtual_size_bytes``, ``downloaded`` (a file of the staging directory,
    to remove after the run), or ``error``. A path is read where it is; a URL is downloaded into
    ``drivers.image.staged_path(<volume>)`` (``fetch``: :func:`drivers.image.download`), hashed on the way, at
    most the volume's size plus a tenth and 64 MiB (a qcow2 holds a little metadata); check mode downloads nothing
    (the URL's image is not checked). ``qemu-img info`` runs only on an image whose checksum matches (or when none
    is given). Items must have passed :func:`decide` once (their fields are valid)."""
    fetch = fetch or driver.download
    images = {}
    for item in image_items(items, lvm_state):
        source = item["source"]
        name = item["name"]
        location = validate_location(source["image"], "source.image")
        checksum = validate_checksum(source.get("checksum"), "source.checksum")
        lv = lvm_state.volume(item["vg"], name)
        size = parse_volume_size(item["size"]) if item.get("size") is not None else lv["size_bytes"]
        downloaded = False
        try:
            if location["url"]:
                if check_mode:
                    continue
                path = driver.staged_path(name)
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                sha, _length = fetch(location["url"], path, size + size // 10 + 64 * 1024 * 1024)
                downloaded = True
            else:
                path = location["path"]
                if check_mode and not os.path.exists(path) and path == driver.staged_path(name, "upload"):
                    continue  # the role copies a controller's image there, but not in check mode
                if not os.path.isfile(path):
                    raise ImageError("%s is not a file on this storage node" % path)
                sha = driver.sha256_file(path)
            image = {"path": path, "sha256": sha, "downloaded": downloaded, "format": None,
                     "virtual_size_bytes": 0}
            if not checksum or checksum == sha:
                image.update(qemu.info(path, source.get("format")))
            images[name] = image
        except (ImageError, OSError) as exc:
            images[name] = {"error": str(exc), "path": path if downloaded else None, "downloaded": downloaded}
    return images


def remove_staged(images):
    """Remove the files :func:`stage_images` downloaded (the role removes the files it copied)."""
    for image in images.values():
        if image.get("downloaded") and image.get("path"):
            try:
                os.unlink(image["path"])
            except FileNotFoundError:
                pass


def exported_volumes(names, live, prefix, read=read_file):
    """``({name: iqn}, {name: iqn})``: the volumes among ``names`` exported by a target of ours (its file carries
    the project's marker), and those whose IQN belongs to a target that is not ours (a live target without our
    file, or a file at our path without the marker)."""
    ours, foreign = {}, {}
    for name in names:
        iqn = target_iqn(name, prefix)
        text = read(tgt_conf_path(name))
        if text is not None and is_managed_conf(text, iqn):
            ours[name] = iqn
        elif text is not None or iqn in live:
            foreign[name] = iqn
    return ours, foreign
