# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action for the ``volume`` module, split as community.crypto's luks_device splits them.

:func:`decide` is pure: from the requested items and one LVM snapshot it returns what must change for every
item, or the list of errors; nothing is applied unless every item is valid. :class:`VolumeApplier` then runs
the commands. Check mode stops after :func:`decide`, so ``--check`` predicts exactly what a real run does.
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    MANAGED_TAG,
    VOLUME_TAG,
    NameError_,
    is_managed_snapshot,
    lv_name,
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
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import DEFAULT_EXTENT
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import is_managed_conf, read_file

__all__ = ["ITEM_OPTIONS", "decide", "VolumeApplier", "exported_volumes"]

ITEM_OPTIONS = dict(
    name=dict(type="str", required=True),
    size=dict(type="raw"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    vg=dict(type="str", required=True),
    thin_pool=dict(type="str"),
    volume_type=dict(type="str"),
    backend=dict(type="str"),
    volume_clear=dict(type="str", choices=["zero", "none"], default="zero"),
    volume_clear_size=dict(type="raw", default=0),
    force=dict(type="bool", default=False),
    cascade=dict(type="bool", default=False),
)


def decide(items, lvm_state, exported, field="volumes", predict_missing=False, foreign=None):
    """Return ``(actions, errors)``.

    ``items``: validated option dicts (``ITEM_OPTIONS``). ``lvm_state``: :class:`drivers.lvm.LvmState`.
    ``exported``: ``{volume name: target iqn}`` of volumes that have an export of ours (a marked file, maybe a
    live target). ``foreign``: ``{volume name: target iqn}`` of targets with the volume's IQN that are not ours
    (a volume exported by one of them is not deleted). ``predict_missing``: in check mode a VG or thin pool that
    the roles would create is not an error.
    Each action: the item plus ``action`` (create|extend|none|delete|absent), ``size_bytes`` (after),
    ``previous_size_bytes``, ``lv_name``, ``device``, ``exported`` (iqn or None), ``snapshots``.
    """
    actions, errors = [], []
    seen = set()
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, index)
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
        except (NameError_, SizeError) as exc:
            errors.append(str(exc))
            continue
        if name in seen:
            errors.append("%s.name: %r is listed twice" % (where, name))
            continue
        seen.add(name)
        vg = lvm_state.vgs.get(item["vg"])
        lv = lvm_state.volume(item["vg"], name)
        act = dict(item, name=name, lv_name=lv_name(name), action="none", size_bytes=None,
                   previous_size_bytes=lv["size_bytes"] if lv else None, volume_clear_size_bytes=clear_size,
                   device="/dev/%s/%s" % (item["vg"], lv_name(name)), exported=exported.get(name),
                   snapshots=[], status="available" if lv else "absent")
        if lv and not lv["managed"]:
            errors.append("%s: LV %s/%s exists but is not managed by ember.blockstore (it needs both tags '%s' "
                          "and '%s%s'); refusing to touch it" % (where, item["vg"], lv["name"], MANAGED_TAG,
                                                                 VOLUME_TAG, name))
            continue
        foreign_snapshots = []
        if lv:
            snaps = lvm_state.snapshots_of(item["vg"], lv["name"])
            act["snapshots"] = sorted(s["name"] for s in snaps)
            foreign_snapshots = sorted(s["name"] for s in snaps if not is_managed_snapshot(s, name))
            if act["exported"]:
                act["status"] = "in-use"
        if item["state"] == "present":
            if size is None:
                errors.append("%s.size: required when state is present (volume %s)" % (where, name))
                continue
            if size <= 0:
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
            want = round_up(size, extent)
            if lv is None:
                act.update(action="create", size_bytes=want, status="available")
            else:
                is_thin = bool(lv["pool_lv"])
                if is_thin != bool(item.get("thin_pool")) or (is_thin and lv["pool_lv"] != item["thin_pool"]):
                    errors.append("%s: volume %s exists as a %s LV in %s; it cannot move to %s" % (
                        where, name, "thin (pool %s)" % lv["pool_lv"] if is_thin else "thick", item["vg"],
                        "thin pool %s" % item["thin_pool"] if item.get("thin_pool") else "a thick LV"))
                    continue
                if want > lv["size_bytes"]:
                    act.update(action="extend", size_bytes=want)
                elif want < lv["size_bytes"]:
                    errors.append("%s.size: %s (%s) is smaller than volume %s's current size %s; volumes are "
                                  "never shrunk" % (where, item["size"], format_size(want), name,
                                                    format_size(lv["size_bytes"])))
                    continue
                else:
                    act["size_bytes"] = lv["size_bytes"]
        else:
            if lv is not None:
                if name in (foreign or {}):
                    errors.append("%s: target %s has volume %s's IQN but is not managed by ember.blockstore; it is "
                                  "never removed, so the volume is not deleted" % (where, foreign[name], name))
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
    return actions, errors


class VolumeApplier:
    """Runs the commands for decided actions (``lvm``: drivers.lvm.Lvm, ``tgt``: drivers.tgt.Tgt)."""

    def __init__(self, lvm, tgt, target_prefix):
        self.lvm = lvm
        self.tgt = tgt
        self.target_prefix = target_prefix

    def apply_batch(self, actions):
        """Apply every decided action, LVM's changes batched. Returns ``[(act, error)]`` in the order of
        ``actions`` for the items attempted (``error`` None when done, else the CommandError/RuntimeError).

        Creates and extends go through one ``lvm`` shell process (:meth:`Lvm.run_script`), then one read-back
        checks each one's effect (the LV exists, carries the managed tag, has at least the size); an item whose
        effect is missing is run again on its own, so its error is its own (a create that failed left no LV, an
        extend that failed left the size). udev is settled once. Deletes run one by one afterwards (each removes its
        export and wipes its device); the first failed delete stops the batch, and the items after it are not
        attempted (not in the list)."""
        outcomes = {}
        changes = [a for a in actions if a["action"] in ("create", "extend")]
        if changes:
            self.lvm.run_script([self._args(act) for act in changes])
            state = self.lvm.state()
            for act in changes:
                if self._took_effect(act, state):
                    outcomes[id(act)] = None
                    continue
                try:
                    self.apply(act)
                    outcomes[id(act)] = None
                except (CommandError, RuntimeError) as exc:
                    outcomes[id(act)] = exc
            self.lvm.settle()
        for act in actions:
            if act["action"] == "delete":
                try:
                    self.delete(act)
                    outcomes[id(act)] = None
                except (CommandError, RuntimeError) as exc:
                    outcomes[id(act)] = exc
                    break
            elif act["action"] not in ("create", "extend"):
                outcomes[id(act)] = None
        return [(act, outcomes[id(act)]) for act in actions if id(act) in outcomes]

    def _args(self, act):
        if act["action"] == "create":
            return self.lvm.create_args(act["vg"], act["name"], act["size_bytes"], thin_pool=act.get("thin_pool"),
                                        volume_type=act.get("volume_type"), backend=act.get("backend"))
        return self.lvm.extend_args(act["vg"], act["name"], act["size_bytes"])

    @staticmethod
    def _took_effect(act, state):
        lv = state.volume(act["vg"], act["name"])
        return lv is not None and MANAGED_TAG in lv["tags"] and lv["size_bytes"] >= act["size_bytes"]

    def apply(self, act):
        if act["action"] == "create":
            self.lvm.create(act["vg"], act["name"], act["size_bytes"], thin_pool=act.get("thin_pool"),
                            volume_type=act.get("volume_type"), backend=act.get("backend"))
        elif act["action"] == "extend":
            self.lvm.extend(act["vg"], act["name"], act["size_bytes"])
        elif act["action"] == "delete":
            self.delete(act)

    def delete(self, act):
        if act["exported"]:
            live = self.tgt.show_if_running()
            self.tgt.remove_export(act["exported"], tgt_conf_path(act["name"]), live, force=True)
        for snap in act["snapshots"]:
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
