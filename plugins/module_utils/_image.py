# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action for the ``image`` module (a volume written to an image file), split as ``_backup`` splits
them: :func:`decide` is pure (one LVM state, the volumes' exports, the image store's files), :class:`ImageApplier`
runs the commands.

What Cinder does (``cinder/volume/volume_utils.py`` ``copy_volume_to_image`` -> ``image_utils.upload_volume``):
the volume must be ``available``, or ``in-use`` with ``force`` (``enable_force_upload``); its device is converted
with ``qemu-img convert`` to the image's format and uploaded. Here the image is a file ``<store>/<name>.<format>``
in an image store directory (local, or an NFS mount), written to ``.<name>.<format>.tmp``, fsynced and renamed,
with the sidecars ``<image>.sha256`` and ``<image>.json`` (``drivers.image.write_image_files``).

The data is read from a temporary snapshot, as the backup module reads a volume: ``imgtmp-<volume>+<image>``
(thick: a COW snapshot of the volume's size, which needs that much free in the VG; thin: a thin snapshot, activated
with ``-K``), tagged ``ember.blockstore``, ``ember.volume=<volume>`` and ``ember.image=<image>``, removed after the
write (also when it failed; a leftover is removed by the next run and by the volume's delete). So the image is one
instant of the volume; an exported or open volume is refused unless ``force`` (the image is then crash-consistent).

Idempotence: an image whose JSON sidecar names the same volume, volume group and format, and agrees with its
``.sha256`` sidecar and its file's size, is left as it is; ``force`` writes it again. An image file that exists
without a valid sidecar, or for another volume, is never replaced without ``force``. ``state: absent`` removes an
image and its sidecars (one without a valid sidecar only with ``force``).
"""

from __future__ import annotations

import os
import stat

from ansible_collections.ember.blockstore.plugins.module_utils import _backup
from ansible_collections.ember.blockstore.plugins.module_utils._info import STATUS_TAG
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    CREATING_TAG,
    IMAGE_SNAPSHOT_PREFIX,
    IMAGE_TAG,
    MANAGED_TAG,
    VOLUME_TAG,
    NameError_,
    show_value,
    validate_vg_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._size import format_size, round_up
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import dm_name_length, validate_snapshot_name
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.image import (
    FORMATS,
    QemuImg,
    read_record,
    remove_image_files,
    sha256_device,
    write_image_files,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import DEFAULT_EXTENT

__all__ = ["ITEM_OPTIONS", "STATES", "decide", "ImageApplier", "image_path", "temp_lv_name"]

STATES = ("present", "absent")
ITEM_OPTIONS = dict(
    name=dict(type="str", required=True),
    volume=dict(type="str"),
    vg=dict(type="str"),
    format=dict(type="str", choices=list(FORMATS), default="qcow2"),
    compress=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    state=dict(type="str", choices=list(STATES), default="present"),
)
_DM_NAME_MAX = 127


def image_path(store, name, fmt):
    """``<store>/<name>.<format>``."""
    return os.path.join(store, "%s.%s" % (name, fmt))


def temp_lv_name(volume, image):
    """The temporary snapshot an image is read from: ``imgtmp-<volume>+<image>`` (``+`` is in no name)."""
    return "%s%s+%s" % (IMAGE_SNAPSHOT_PREFIX, volume, image)


def _validate(item, where):
    state = item.get("state") or "present"
    if state not in STATES:
        raise NameError_("%s.state: %s is not one of %s" % (where, show_value(state), ", ".join(STATES)))
    validate_snapshot_name(item.get("name"), where + ".name", what="image")
    fmt = item.get("format") or "qcow2"
    if fmt not in FORMATS:
        raise NameError_("%s.format: %s is not one of %s" % (where, show_value(fmt), ", ".join(FORMATS)))
    for key in ("compress", "force"):
        if not isinstance(item.get(key, False), bool):
            raise NameError_("%s.%s: %s is not a boolean" % (where, key, show_value(item.get(key))))
    if item.get("compress") and fmt != "qcow2":
        raise NameError_("%s.compress: true needs format qcow2 (a raw image cannot be compressed); format is %s"
                         % (where, fmt))
    if state == "present":
        validate_volume_name(item.get("volume"), where + ".volume")
        if item.get("vg") is None:
            raise NameError_("%s.vg: required when state is present (the volume group of volume %s)"
                             % (where, item.get("volume")))
        validate_vg_name(item["vg"], where + ".vg")
    return state, fmt


def decide(items, lvm_state, exported, store, field="images", foreign=None, read=read_record):
    """Return ``(actions, errors)``.

    ``items``: option dicts (:data:`ITEM_OPTIONS`); ``lvm_state``: :class:`drivers.lvm.LvmState` (None when no
    item is present); ``exported``/``foreign``: ``{volume: iqn}`` of the volumes exported by a target of ours /
    another (``_volume.exported_volumes``); ``store``: the image store directory. Each action: the item plus
    ``action`` (create|none|delete|absent), ``path``, ``format``, ``status``, ``record`` (the JSON sidecar found, or
    None), ``in_use`` (why the volume is in use, or None) and for a create ``origin_lv``, ``temp_lv``, ``thin``,
    ``cow_size_bytes`` (thick), ``leftover_temp`` and ``size_bytes``."""
    actions, errors = [], []
    seen = {}
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, index)
        try:
            state, fmt = _validate(item, where)
        except NameError_ as exc:
            errors.append(str(exc))
            continue
        path = image_path(store, item["name"], fmt)
        if path in seen:
            errors.append("%s.name: image %s (%s) is listed twice (also %s)" % (where, item["name"], fmt, seen[path]))
            continue
        seen[path] = where
        record, problem = read(path)
        act = dict(item, state=state, format=fmt, path=path, record=record, problem=problem, action="none",
                   existed=record is not None or os.path.exists(path),
                   status="available" if record and not problem else "absent", in_use=None, size_bytes=None,
                   volume_sha256=(record or {}).get("volume_sha256"), file_sha256=(record or {}).get("file_sha256"),
                   temp_lv=None)
        if state == "absent":
            error = _decide_absent(act, where)
        else:
            error = _decide_present(act, where, lvm_state, exported, foreign or {})
        if error:
            errors.append(error)
            continue
        actions.append(act)
    return actions, errors


def _decide_absent(act, where):
    exists = act["record"] is not None or os.path.exists(act["path"])
    if not exists:
        act["action"] = "absent"
        return None
    if act["problem"] and act["record"] is None and not act.get("force"):
        return ("%s.name: %s is not an image this module wrote (%s); set force: true to delete it anyway"
                % (where, act["path"], act["problem"]))
    act.update(action="delete", status="deleted")
    return None


def _decide_present(act, where, lvm_state, exported, foreign):
    volume, vg_name, name = act["volume"], act["vg"], act["name"]
    record, problem = act["record"], act["problem"]
    same = record is not None and record.get("volume") == volume and record.get("vg") == vg_name \
        and record.get("format") == act["format"]
    if same and not problem and not act.get("force"):
        act["size_bytes"] = record.get("size_bytes")
        return None  # written by an earlier run: the same request changes nothing
    if (record is not None or os.path.exists(act["path"])) and not same and not act.get("force"):
        what = ("holds volume %s of %s" % (record.get("volume"), record.get("vg")) if record is not None and not
                problem else "has no valid sidecar: %s" % problem)
        return ("%s.name: image %s exists and %s; set force: true to replace it, or choose another name"
                % (where, act["path"], what))
    lv = lvm_state.volume(vg_name, volume)
    if lv is None:
        return "%s.volume: volume %s does not exist in volume group %s" % (where, show_value(volume), vg_name)
    if not lv["managed"]:
        return ("%s.volume: LV %s/%s exists but is not an ember.blockstore volume; refusing to read it"
                % (where, vg_name, lv["name"]))
    if CREATING_TAG in lv["tags"]:
        return ("%s.volume: volume %s is still being created (tag %s); write its image once it is complete"
                % (where, volume, CREATING_TAG))
    status = next((t[len(STATUS_TAG):] for t in lv["tags"] if t.startswith(STATUS_TAG)), None)
    if status not in (None, "backing-up"):
        return "%s.volume: volume %s is %s (tag %s%s); write its image when that has finished" % (
            where, volume, status, STATUS_TAG, status)
    iqn = exported.get(volume) or foreign.get(volume)
    in_use = ("exported as %s" % iqn) if iqn else (
        "open on the storage node (lv_attr %s)" % lv["attr"] if (lv.get("attr") or "      ")[5:6] == "o" else None)
    if in_use and not act.get("force"):
        return ("%s.volume: volume %s is in-use (%s); Cinder uploads an in-use volume only with force: detach it, or "
                "set force: true for a crash-consistent image from a snapshot" % (where, volume, in_use))
    temp = temp_lv_name(volume, name)
    if dm_name_length(vg_name, temp) > _DM_NAME_MAX:
        return ("%s.name: %s gives the temporary snapshot LV %s/%s, whose device-mapper name is longer than %d "
                "characters; use a shorter image name" % (where, show_value(name), vg_name, temp, _DM_NAME_MAX))
    leftover = lvm_state.lv(vg_name, temp)
    if leftover is not None:
        tags = leftover.get("tags") or []
        if not (MANAGED_TAG in tags and VOLUME_TAG + volume in tags and IMAGE_TAG + name in tags):
            values = (where, vg_name, temp, volume, name, MANAGED_TAG, VOLUME_TAG, volume, IMAGE_TAG, name)
            return ("%s: LV %s/%s exists but is not ember.blockstore's temporary snapshot of volume %s for image %s "
                    "(tags '%s', '%s%s', '%s%s'); refusing to touch it" % values)
    thin = bool(lv["pool_lv"])
    cow = None
    if not thin:
        vg = lvm_state.vgs.get(vg_name)
        cow = round_up(lv["size_bytes"], vg["extent_size_bytes"] if vg else DEFAULT_EXTENT)
        free = (vg["free_bytes"] if vg else 0) + (leftover["size_bytes"] if leftover else 0)
        if cow > free:
            return ("%s.volume: volume group %s has %s free; the temporary snapshot of volume %s needs %s (its size, "
                    "so that it cannot overflow while it is read)" % (where, vg_name, format_size(free), volume,
                                                                      format_size(cow)))
    act.update(action="create", status="available", in_use=in_use, origin_lv=lv["name"], temp_lv=temp, thin=thin,
               cow_size_bytes=cow, leftover_temp=leftover is not None, size_bytes=lv["size_bytes"],
               volume_sha256=None, file_sha256=None)
    return None


class ImageApplier:
    """Runs decided actions (``lvm``: :class:`drivers.lvm.Lvm`; ``store``: the image store directory)."""

    def __init__(self, lvm, store):
        self.lvm = lvm
        self.store = store

    def apply(self, act):
        if act["action"] == "create":
            self.write(act)
        elif act["action"] == "delete":
            act["removed"] = remove_image_files(act["path"])

    def write(self, act):
        """1. a leftover temporary snapshot removed; 2. the snapshot (thick: COW of the volume's size; thin: thin,
        activated with ``--ignoreactivationskip``); 3. the sha256 of the volume's raw content read from it; 4. the
        image written (``drivers.image.write_image_files``); 5. the snapshot removed, whatever happened."""
        vg, temp, volume = act["vg"], act["temp_lv"], act["volume"]
        if act["leftover_temp"]:
            self.lvm.remove(vg, temp)
        tags = [MANAGED_TAG, VOLUME_TAG + volume, IMAGE_TAG + act["name"]]
        self.lvm.create_snapshot(vg, act["origin_lv"], temp, tags, act["cow_size_bytes"])
        try:
            if act["thin"]:
                self.lvm.runner.run(["lvchange", "--activate", "y", "--ignoreactivationskip", "%s/%s" % (vg, temp)])
            self.lvm.settle()
            device = _backup.device_path(vg, temp)
            act["volume_sha256"] = sha256_device(device, act["size_bytes"])
            os.makedirs(self.store, mode=0o755, exist_ok=True)
            direct = stat.S_ISBLK(os.stat(device).st_mode)  # O_DIRECT on the LV (a test's file may not take it)
            record = write_image_files(QemuImg(self.lvm.runner), device, act["path"], act["format"],
                                       act.get("compress"), dict(volume=volume, vg=vg, size_bytes=act["size_bytes"],
                                                                 fmt=act["format"], compress=act.get("compress"),
                                                                 volume_sha256=act["volume_sha256"]), direct=direct)
            act.update(record=record, file_sha256=record["file_sha256"])
        finally:
            self.lvm.remove(vg, temp)
