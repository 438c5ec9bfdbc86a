# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action for the ``snapshot`` module, split as ``_volume`` splits them.

:func:`decide` is pure: from the requested items, one LVM state (read with creation times) and the volumes' exports
it returns what must change for every item, or the list of errors; nothing is applied unless every item is valid.
:class:`SnapshotApplier` then runs the commands through :class:`drivers.lvm.Lvm`.

What it follows in openstack/cinder (``cinder/volume/drivers/lvm.py`` and ``cinder/brick/local_dev/lvm.py``):

- ``create_snapshot``/``create_lv_snapshot``: ``lvcreate --name <snap> --snapshot <vg>/<volume>``, with
  ``-L <volume size>`` for a thick volume (the COW store is as big as the volume, so the snapshot cannot overflow)
  and without a size for a thin one (a thin snapshot in the pool, which LVM flags to skip activation; Cinder leaves
  the flag and activates with ``-K`` when it reads one).
- ``delete_snapshot``: ``lvremove -f`` (with retries and ``udevadm settle``), nothing when the LV is gone.
- ``revert_to_snapshot``: ``lvconvert --merge <vg>/<snap>`` (the snapshot is consumed), the volume deactivated and
  activated again, then the snapshot re-created. The API (``cinder/api/v3/volumes.py`` ``revert``,
  ``cinder/volume/api.py``) allows it only to the volume's latest snapshot, only when the volume is ``available``
  (not attached) and only when the volume's size equals the snapshot's ``volume_size``. Cinder refuses thin LVM
  (``NotImplementedError``, then a generic copy); LVM merges thin snapshots too, so here a thin volume is reverted
  the same way with its origin deactivated first (it is not exported, so nothing uses it).

Names. A snapshot's name is a volume name's kind (1-63 lowercase letters, digits, ``.``, ``-``); its LV is
``snap-<volume>+<name>`` in the volume's VG. ``+`` is a character LVM allows in names but neither name can contain,
so two (volume, snapshot) pairs never share an LV; ``volume-<volume>.snap-<name>`` was not used because it is also
the LV of a volume named ``<volume>.snap-<name>``. The ``snap-`` prefix is not LVM's reserved ``snapshot`` prefix
(Cinder escapes its ``snapshot-<id>`` names to ``_snapshot-<id>`` for that reason) and not our ``volume-`` one.
The device-mapper name ``<vg>-<lv>`` (``-`` doubled) must fit in 127 characters; a longer one is refused.

Tags on a snapshot LV: ``ember.blockstore``, ``ember.volume=<volume>``, ``ember.snapshot=<name>`` (what
:func:`_naming.is_managed_snapshot` recognises: the volume module's ``cascade`` deletes only these), ``ember.
volume_size=<bytes>`` (the volume's size when it was taken, Cinder's ``volume_size``), ``ember.description=<escaped
text>`` when given, and ``ember.reverted`` on a snapshot re-created by a revert.

Revert and idempotence. ``state: reverted`` is done when the snapshot carries ``ember.reverted`` (it was re-created
by a revert, so the volume was set to its content then) and is still the volume's latest snapshot: a second run
with the same input changes nothing. A snapshot taken after it (``force`` is then needed to revert) or the snapshot
deleted and taken again makes the next request a new revert. While a revert runs, the volume carries
``ember.reverting=<name>``: a run interrupted after the merge consumed the snapshot is finished by the next run
(the snapshot re-created, the marker removed) instead of failing on a missing snapshot.
"""

from __future__ import annotations

import re
import time

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    GROUP_TAG,
    MANAGED_TAG,
    SNAPSHOT_TAG,
    VOLUME_TAG,
    NameError_,
    decode_tag_text,
    encode_tag_text,
    is_managed_snapshot,
    lv_name,
    show_value,
    validate_text,
    validate_vg_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._size import (
    SizeError,
    format_size,
    parse_volume_size,
    round_up,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import DEFAULT_EXTENT

__all__ = ["ITEM_OPTIONS", "STATES", "decide", "SnapshotApplier", "snapshot_lv_name", "validate_snapshot_name",
           "encode_description", "decode_description", "SIZE_TAG", "DESCRIPTION_TAG", "REVERTED_TAG",
           "REVERTING_TAG", "SNAPSHOT_LV_PREFIX"]

STATES = ("present", "absent", "reverted")
ITEM_OPTIONS = dict(
    name=dict(type="str", required=True),
    volume=dict(type="str", required=True),
    vg=dict(type="str", required=True),
    state=dict(type="str", choices=list(STATES), default="present"),
    cow_size=dict(type="raw"),
    force=dict(type="bool", default=False),
    description=dict(type="str"),
    attached=dict(type="bool", default=False),
    group=dict(type="str"),
)

SNAPSHOT_LV_PREFIX = "snap-"
SIZE_TAG = "ember.volume_size="
DESCRIPTION_TAG = "ember.description="
REVERTED_TAG = "ember.reverted"
REVERTING_TAG = "ember.reverting="
# Tags that belong to a snapshot, never to a volume (a thin merge may leave them on the merged volume).
_SNAPSHOT_ONLY = (SNAPSHOT_TAG, SIZE_TAG, DESCRIPTION_TAG, REVERTING_TAG)
# device-mapper's DM_NAME_LEN is 128: ``<vg>-<lv>`` with ``-`` doubled must fit in 127 characters.
_DM_NAME_MAX = 127
_SNAPSHOT_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")
_MAX_DESCRIPTION = 255


def validate_snapshot_name(name, field="name", what="snapshot"):
    """Return ``name`` if it is a valid snapshot name (a volume name's rules), else raise :class:`NameError_`.
    ``what`` names the kind in the message (the backup module's names follow the same rules)."""
    if not isinstance(name, str) or not _SNAPSHOT_RE.fullmatch(name):
        raise NameError_("%s: %s is not a valid %s name; use 1-63 lowercase letters, digits, '.' or '-', "
                         "starting and ending with a letter or digit" % (field, show_value(name), what))
    return name


def snapshot_lv_name(volume, name):
    """LV name of snapshot ``name`` of ``volume``: ``snap-<volume>+<name>``."""
    return "%s%s+%s" % (SNAPSHOT_LV_PREFIX, volume, name)


def dm_name_length(vg, lv):
    """Length of the device-mapper name LVM gives ``vg/lv`` (``<vg>-<lv>``, each ``-`` doubled)."""
    return len(vg.replace("-", "--")) + 1 + len(lv.replace("-", "--"))


def encode_description(text):
    """A description as an LVM tag value: tag characters (``=`` too) kept, every other byte as ``#XX``
    (:func:`_naming.encode_tag_text`)."""
    return encode_tag_text(text, keep="=")


def decode_description(value):
    return decode_tag_text(value)


def _tag_value(lv, prefix):
    return next((t[len(prefix):] for t in lv.get("tags") or [] if t.startswith(prefix)), None)


def _is_ours(lv, volume, name):
    return is_managed_snapshot(lv, volume) and SNAPSHOT_TAG + name in (lv.get("tags") or [])


def _merging(lv):
    """A COW snapshot being merged shows ``S`` as the first ``lv_attr`` character (lvs(8))."""
    return (lv.get("attr") or "")[:1] == "S"


def _merging_into(lv):
    """An origin with a merge pending or running shows ``O`` as the first ``lv_attr`` character (lvs(8)); a thin
    snapshot whose merge LVM deferred keeps ``V``, so its origin is what tells."""
    return (lv.get("attr") or "")[:1] == "O"


def _is_open(lv):
    return (lv.get("attr") or "      ")[5:6] == "o"


def _when(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch is not None else None


def snapshot_tags(volume, name, volume_size, description=None, reverted=False, group=None):
    tags = [MANAGED_TAG, VOLUME_TAG + volume, SNAPSHOT_TAG + name, SIZE_TAG + str(volume_size)]
    if group:
        tags.append(GROUP_TAG + group)
    if description:
        tags.append(DESCRIPTION_TAG + encode_description(description))
    if reverted:
        tags.append(REVERTED_TAG)
    return tags


def _validate(item, where):
    """The item's own fields (no host state): ``(name, volume, cow_size or None)``; raises NameError_/SizeError."""
    if item.get("state") not in STATES:
        raise NameError_("%s.state: %s is not one of %s" % (where, show_value(item.get("state")), ", ".join(STATES)))
    name = validate_snapshot_name(item.get("name"), where + ".name")
    volume = validate_volume_name(item.get("volume"), where + ".volume")
    vg = validate_vg_name(item.get("vg"), where + ".vg")
    lv = snapshot_lv_name(volume, name)
    if dm_name_length(vg, lv) > _DM_NAME_MAX:
        raise NameError_("%s.name: %s gives the LV %s/%s, whose device-mapper name is %d characters (at most %d); "
                         "use a shorter snapshot name" % (where, show_value(name), vg, lv, dm_name_length(vg, lv),
                                                          _DM_NAME_MAX))
    if item.get("description") is not None:
        validate_text(item["description"], where + ".description", _MAX_DESCRIPTION, "description")
    cow = None
    if item.get("cow_size") is not None:
        cow = parse_volume_size(item["cow_size"], where + ".cow_size")
        if cow <= 0:
            raise SizeError("%s.cow_size: %s must be greater than zero" % (where, show_value(item["cow_size"])))
    if not isinstance(item.get("force", False), bool):
        raise NameError_("%s.force: %s is not a boolean" % (where, show_value(item.get("force"))))
    if item.get("group") is not None:
        validate_volume_name(item["group"], where + ".group")
    return name, volume, cow


def decide(items, lvm_state, exported, field="snapshots", foreign=None, predict_missing=False, indexes=None):
    """Return ``(actions, errors)``.

    ``items``: option dicts (``ITEM_OPTIONS``). ``lvm_state``: :class:`drivers.lvm.LvmState` read with creation
    times (``Lvm.state(times=True)``). ``exported``: ``{volume name: target iqn}`` of volumes exported by a target
    of ours, ``foreign``: those whose IQN a target not ours uses (both from ``_volume.exported_volumes``); a volume
    in either is in-use and is not reverted. ``predict_missing`` (check mode): a snapshot of a volume that does not
    exist yet is predicted to be created (the volume module creates the volume earlier in the same run).

    Each action: the item plus ``action`` (create|update|none|delete|absent|revert), ``lv_name``, ``origin_lv``,
    ``thin``, ``cow_size_bytes``, ``volume_size_bytes``, ``created_at``, ``status``, ``device``, and for a revert
    ``resume`` (finish an interrupted revert), ``volume_tags`` and ``snapshot_tags``. ``indexes``: the position in
    the module's list of each of ``items`` (the snapshot module gives this function its LVM items only when others
    are an NFS backend's), for the messages.
    """
    actions, errors = [], []
    if indexes is None:
        indexes = list(range(len(items)))
    seen = {}
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, indexes[index])
        try:
            name, volume, cow = _validate(item, where)
        except (NameError_, SizeError) as exc:
            errors.append(str(exc))
            continue
        vg_name = item["vg"]
        key = (vg_name, volume, name)
        if key in seen:
            errors.append("%s.name: snapshot %r of volume %s is listed twice (also %s)"
                          % (where, name, volume, seen[key]))
            continue
        seen[key] = where
        lv = snapshot_lv_name(volume, name)
        vol = lvm_state.volume(vg_name, volume)
        snap = lvm_state.lv(vg_name, lv)
        vg = lvm_state.vgs.get(vg_name)
        act = dict(item, name=name, volume=volume, lv_name=lv, action="none",
                   origin_lv=vol["name"] if vol else lv_name(volume),  # a managed LV may keep its own name
                   thin=bool(vol and vol["pool_lv"]), cow_size_bytes=None,
                   volume_size_bytes=vol["size_bytes"] if vol else None,
                   created_at=_when(snap["time"]) if snap else None, status="available" if snap else "absent",
                   device="/dev/%s/%s" % (vg_name, lv), resume=False)
        if snap is not None:
            act["thin"] = bool(snap["pool_lv"])
            act["cow_size_bytes"] = None if act["thin"] else snap["size_bytes"]
            if snap["pool_lv"] is None and snap["origin"] is None:
                act["thin"] = False
        state = item["state"]
        if snap is not None and not _is_ours(snap, volume, name):
            errors.append("%s: LV %s/%s exists but is not ember.blockstore's snapshot %s of volume %s (it needs the "
                          "tags '%s', '%s%s' and '%s%s'); refusing to touch it"
                          % (where, vg_name, lv, name, volume, MANAGED_TAG, VOLUME_TAG, volume, SNAPSHOT_TAG, name))
            continue
        if state == "present":
            if vol is None and snap is None and predict_missing:
                act.update(action="create", status="available", previous_description=None)
                error = None
            else:
                error = _decide_present(act, where, cow, vol, snap, vg, lvm_state)
        elif state == "absent":
            error = _decide_absent(act, where, snap)
        else:
            error = _decide_revert(act, where, vol, snap, lvm_state, exported, foreign or {})
        if error:
            errors.append(error)
            continue
        actions.append(act)
    reverts = {(a["vg"], a["volume"]): a for a in actions if a["action"] == "revert"}
    for act in actions:
        first = reverts.get((act["vg"], act["volume"]))
        if first is not None and first is not act and act["action"] != "none":
            errors.append("%s: volume %s is reverted to %s in the same run; change its other snapshots in another "
                          "run (the revert depends on which snapshot is the latest)"
                          % (_where_of(act, items, field, indexes), act["volume"], first["name"]))
    return actions, errors


def _where_of(act, items, field, indexes):
    for index, item in enumerate(items):
        if item.get("name") == act["name"] and item.get("volume") == act["volume"] and item.get("vg") == act["vg"]:
            return "%s[%d]" % (field, indexes[index])
    return field


def _decide_present(act, where, cow, vol, snap, vg, lvm_state):
    name, volume = act["name"], act["volume"]
    if snap is not None:
        have_group = _tag_value(snap, GROUP_TAG)
        if act.get("group") is not None and have_group != act["group"]:
            return ("%s.group: snapshot %s of volume %s exists but %s; refusing to count it as part of group %s "
                    "(delete it or give the group snapshot another name)"
                    % (where, name, volume, "belongs to group %s" % have_group if have_group else
                       "was not taken as part of a group", show_value(act["group"])))
        act["group"] = have_group
        if cow is not None and act["thin"]:
            return ("%s.cow_size: %s is given, but snapshot %s of volume %s is a thin snapshot (it shares the pool; "
                    "there is no COW size); remove cow_size" % (where, show_value(act["cow_size"]), name, volume))
        old = _tag_value(snap, DESCRIPTION_TAG)
        act["previous_description"] = decode_description(old) if old is not None else None
        act["snapshot_tags"] = list(snap["tags"])
        if act.get("description") is not None and act["description"] != act["previous_description"]:
            act["action"] = "update"
        else:
            act["description"] = act["previous_description"]
        return None
    if vol is None:
        return ("%s.volume: volume %s does not exist in volume group %s (no LV %s/%s)"
                % (where, show_value(volume), act["vg"], act["vg"], lv_name(volume)))
    if not vol["managed"]:
        return ("%s.volume: LV %s/%s exists but is not an ember.blockstore volume; refusing to snapshot it"
                % (where, act["vg"], vol["name"]))
    marker = _tag_value(vol, REVERTING_TAG)
    if marker is not None:
        return ("%s: a revert of volume %s to snapshot %s was interrupted; finish it first (state: reverted, name: "
                "%s)" % (where, volume, marker, marker))
    if _merging_into(vol):
        return ("%s: a snapshot is being merged into volume %s (lv_attr %s); run again when the merge has finished"
                % (where, volume, vol["attr"]))
    if act["thin"]:
        if cow is not None:
            return ("%s.cow_size: %s is given, but volume %s is thin (pool %s): its snapshots share the pool and "
                    "have no COW size; remove cow_size" % (where, show_value(act["cow_size"]), volume, vol["pool_lv"]))
    else:
        extent = vg["extent_size_bytes"] if vg else DEFAULT_EXTENT
        want = round_up(cow if cow is not None else vol["size_bytes"], extent)
        if want > round_up(vol["size_bytes"], extent):
            return ("%s.cow_size: %s (%s) is more than volume %s's size %s, the most its snapshot can use"
                    % (where, show_value(act["cow_size"]), format_size(want), volume, format_size(vol["size_bytes"])))
        act["cow_size_bytes"] = want
    act.update(action="create", status="available", previous_description=None)
    return None


def _decide_absent(act, where, snap):
    if snap is None:
        act["action"] = "absent"
        return None
    if _merging(snap):
        return ("%s: snapshot %s of volume %s is being merged into the volume (a revert); it is gone when the merge "
                "ends" % (where, act["name"], act["volume"]))
    act.update(action="delete", status="deleted")
    return None


def _decide_revert(act, where, vol, snap, lvm_state, exported, foreign):
    name, volume, vg = act["name"], act["volume"], act["vg"]
    if vol is None:
        return ("%s.volume: volume %s does not exist in volume group %s; there is nothing to revert"
                % (where, show_value(volume), vg))
    if not vol["managed"]:
        return ("%s.volume: LV %s/%s exists but is not an ember.blockstore volume; refusing to revert it"
                % (where, vg, vol["name"]))
    act["volume_tags"] = list(vol["tags"])
    marker = _tag_value(vol, REVERTING_TAG)
    if marker is not None and marker != name:
        return ("%s: a revert of volume %s to snapshot %s was interrupted; finish it first (state: reverted, name: "
                "%s)" % (where, volume, marker, marker))
    if (snap is not None and _merging(snap)) or _merging_into(vol):
        return ("%s: a snapshot is still being merged into volume %s (an earlier revert; lv_attr %s): LVM finishes "
                "it when the volume is next activated and nothing holds it open; run again then"
                % (where, volume, vol["attr"]))
    if marker == name and (snap is None or REVERTED_TAG in snap["tags"]):
        # An interrupted revert: the merge ran (the snapshot is gone or was re-created); finish it.
        act.update(action="revert", resume=True, status="reverted",
                   cow_size_bytes=None if act["thin"] else (snap["size_bytes"] if snap else vol["size_bytes"]),
                   snapshot_tags=list(snap["tags"]) if snap else None)
        act["description"] = decode_description(_tag_value(snap, DESCRIPTION_TAG) or "") if snap else None
        return None
    if snap is None:
        return ("%s.name: volume %s has no snapshot %s (no LV %s/%s); there is nothing to revert to"
                % (where, volume, show_value(name), vg, act["lv_name"]))
    ours = sorted((s for s in lvm_state.snapshots_of(vg, vol["name"]) if is_managed_snapshot(s, volume)),
                  key=lambda s: s["name"])
    newer = [s for s in ours if s is not snap and (s["time"] is None or snap["time"] is None
                                                   or s["time"] >= snap["time"])]
    if REVERTED_TAG in snap["tags"] and not newer:
        act["status"] = "reverted"
        return None
    iqn = exported.get(volume) or foreign.get(volume)
    if iqn:
        return ("%s: volume %s is in-use (exported as %s); Cinder reverts only an available volume: detach it "
                "first" % (where, volume, iqn))
    if _is_open(vol):
        return ("%s: volume %s is open on the storage node (lv_attr %s); close it first"
                % (where, volume, vol["attr"]))
    if newer and not act.get("force"):
        names = ", ".join(_tag_value(s, SNAPSHOT_TAG) or s["name"] for s in newer)
        if snap["time"] is None or any(s["time"] is None or s["time"] == snap["time"] for s in newer):
            return ("%s.name: cannot tell whether %s is volume %s's latest snapshot (creation times equal or "
                    "unknown: %s); set force: true to revert to it anyway" % (where, name, volume, names))
        return ("%s.name: %s is not volume %s's latest snapshot (newer: %s); Cinder reverts only to the latest: set "
                "force: true to revert to it anyway" % (where, name, volume, names))
    recorded = _tag_value(snap, SIZE_TAG)
    taken = int(recorded) if recorded and recorded.isdigit() else (snap["size_bytes"] if snap["pool_lv"] else None)
    if taken is not None and taken != vol["size_bytes"]:
        return ("%s: volume %s is %s but was %s when snapshot %s was taken; Cinder reverts only when the sizes are "
                "equal" % (where, volume, format_size(vol["size_bytes"]), format_size(taken), name))
    old = _tag_value(snap, DESCRIPTION_TAG)
    act.update(action="revert", status="reverted", snapshot_tags=list(snap["tags"]),
               description=decode_description(old) if old is not None else None)
    return None


class SnapshotApplier:
    """Runs the commands for decided actions (``lvm``: :class:`drivers.lvm.Lvm`)."""

    def __init__(self, lvm):
        self.lvm = lvm

    def apply(self, act):
        vg, lv = act["vg"], act["lv_name"]
        if act["action"] == "create":
            self.lvm.create_snapshot(vg, act["origin_lv"], lv,
                                     snapshot_tags(act["volume"], act["name"], act["volume_size_bytes"],
                                                   act.get("description"), group=act.get("group")),
                                     None if act["thin"] else act["cow_size_bytes"])
            self.lvm.settle()
        elif act["action"] == "update":
            old = [t for t in act["snapshot_tags"] if t.startswith(DESCRIPTION_TAG)]
            self.lvm.change_tags(vg, lv, add=[DESCRIPTION_TAG + encode_description(act["description"])], delete=old)
        elif act["action"] == "delete":
            self.lvm.remove(vg, lv)
        elif act["action"] == "revert":
            self.revert(act)

    def revert(self, act):
        """Revert ``act["volume"]`` to its snapshot (Cinder's ``revert_to_snapshot``), resumable:

        1. ``lvchange --addtag ember.reverting=<name>`` on the volume (an interrupted run is finished by the next);
        2. thick: ``lvconvert --merge <vg>/<snap>``, then ``lvchange -an`` and ``-ay`` of the volume as Cinder does
           (a merge LVM deferred starts at that activation); thin: ``lvchange -an`` of the volume first (LVM merges
           a thin snapshot at once only when the origin is inactive), ``lvconvert --merge``, ``lvchange
           --setactivationskip n`` (the merged LV was a thin snapshot, which skips activation) and ``lvchange -ay``;
        3. read back: the snapshot must be gone (else the merge was deferred or is still running: an error, the
           marker stays); the volume's tags are set back to what they were (a thin merge puts the snapshot's LV in
           the volume's place);
        4. the snapshot re-created as it was (same name, COW size, description) plus ``ember.reverted``, as Cinder
           re-creates it;
        5. ``lvchange --deltag ember.reverting=<name>``."""
        vg, vol, snap, name = act["vg"], act["origin_lv"], act["lv_name"], act["name"]
        if not act.get("resume"):
            if REVERTING_TAG + name not in act["volume_tags"]:  # else a run whose lvconvert failed left it
                self.lvm.change_tags(vg, vol, add=[REVERTING_TAG + name])
            if act["thin"]:
                self.lvm.deactivate(vg, vol)
                self.lvm.merge(vg, snap)
                self.lvm.set_activation_skip(vg, vol, False)
                self.lvm.activate(vg, vol)
            else:
                self.lvm.merge(vg, snap)
                self.lvm.deactivate(vg, vol)
                self.lvm.activate(vg, vol)
        state = self.lvm.state(times=True)
        left = state.lv(vg, snap)
        volume_lv = state.lv(vg, vol)
        if volume_lv is None:
            raise RuntimeError("volume LV %s/%s is gone after the merge of %s" % (vg, vol, snap))
        unmerged = left is not None and (not act.get("resume") or _merging(left) or REVERTED_TAG not in left["tags"])
        if unmerged or _merging_into(volume_lv):
            raise RuntimeError("the merge of %s/%s into %s has not finished (lv_attr %s): LVM completes it when the "
                               "volume is next activated and nothing holds it open; run again then"
                               % (vg, snap, vol, (left or volume_lv)["attr"]))
        if left is None:
            self.lvm.create_snapshot(vg, vol, snap,
                                     snapshot_tags(act["volume"], name, volume_lv["size_bytes"],
                                                   act.get("description"), reverted=True,
                                                   group=_tag_value({"tags": act.get("snapshot_tags") or []},
                                                                    GROUP_TAG)),
                                     None if act["thin"] else act["cow_size_bytes"] or volume_lv["size_bytes"])
        want = [t for t in act["volume_tags"] if not t.startswith(_SNAPSHOT_ONLY) and t != REVERTED_TAG]
        for tag in (MANAGED_TAG, VOLUME_TAG + act["volume"]):
            if tag not in want:
                want.append(tag)
        have = volume_lv["tags"]
        self.lvm.change_tags(vg, vol, add=[t for t in want if t not in have],
                             delete=[t for t in have if t not in want])
        self.lvm.settle()
