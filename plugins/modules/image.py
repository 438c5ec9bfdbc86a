#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image
short_description: Write block storage volumes to image files (raw or qcow2) in an image store
version_added: 0.3.0
description:
  - Runs on a storage node. Writes a volume the P(ember.blockstore.volume#module) module made (a thick or thin LV)
    to an image file in an image store directory O(store) (local, or an NFS share the node mounts), as Cinder's
    C(copy_volume_to_image) does (C(cinder/volume/volume_utils.py), C(cinder/image/image_utils.py)
    C(upload_volume)). A volume is made from such an image with the volume module's
    O(ember.blockstore.volume#module:volumes[].source.image).
  - "The image is C(<store>/<name>.<format>): C(qemu-img convert -f raw -O <format>) (C(-c) with
    O(images[].compress)) from a temporary snapshot of the volume into C(.<name>.<format>.tmp) in the store, fsynced
    and renamed, with two sidecars: C(<image>.sha256) (the file's sha256, C(sha256sum) format) and C(<image>.json)
    (C(volume), C(vg), C(size_bytes), C(format), C(compress), C(created) in UTC, C(volume_sha256) the sha256 of the
    volume's raw content, C(file_sha256), C(file_size)). The JSON sidecar is written last."
  - "The volume is read from a temporary snapshot C(imgtmp-<volume>+<name>) (thick: a COW snapshot of the volume's
    size, which must be free in the volume group; thin: a thin snapshot) tagged C(ember.blockstore),
    C(ember.volume=<volume>) and C(ember.image=<name>), removed after the write whatever happened (a leftover one is
    removed by the next run, and by the volume's delete). A volume that is exported or open on the node is refused
    unless O(images[].force=true) (Cinder's C(force) upload of an in-use volume; the image is then
    crash-consistent). A volume being created, restored or reverted is refused."
  - "Idempotent: an image whose JSON sidecar names the same volume, volume group and format, and agrees with its
    C(.sha256) sidecar and its file's size, is not written again (V(none)); O(images[].force=true) writes it again.
    An image file that exists without a valid sidecar, or holds another volume, is replaced only with
    O(images[].force=true)."
  - O(images[].state=absent) removes an image and its sidecars; a file without a valid sidecar only with
    O(images[].force=true).
  - Batch form (O(images)) handles many images in one module run; the single form (O(name), O(volume), ...)
    handles one. Every item is validated and decided before the first change; one bad item changes nothing.
  - Volumes of V(nfs) backends are not written to images by this module yet.
author: ember.blockstore contributors (@ember-blockstore)
requirements:
  - qemu-img (Debian package qemu-utils) on the storage node
options:
  images:
    description: Images to manage in one run. Mutually exclusive with O(name).
    type: list
    elements: dict
    suboptions:
      name:
        description: "Image name: 1-63 lowercase letters, digits, C(.) or C(-), starting and ending with a letter or
          digit. The file is C(<store>/<name>.<format>)."
        type: str
        required: true
      volume: {description: "Name of the volume (as given to the volume module); required when
                            O(images[].state=present).", type: str}
      vg: {description: "Volume group of the volume; required when O(images[].state=present).", type: str}
      format: {description: Image format., type: str, choices: [raw, qcow2], default: qcow2}
      compress: {description: "Compress a V(qcow2) image (C(qemu-img convert -c), zlib clusters).", type: bool,
                 default: false}
      force:
        description:
          - Write the image of a volume that is exported or open (crash-consistent, from the snapshot).
          - Write an image again that exists (or replace a file without a valid sidecar, or holding another volume).
          - With O(images[].state=absent), delete a file that has no valid sidecar.
        type: bool
        default: false
      state: {description: Desired state., type: str, choices: [present, absent], default: present}
  name: {description: Single form; see O(images)., type: str}
  volume: {description: Single form; see O(images)., type: str}
  vg: {description: Single form; see O(images)., type: str}
  format: {description: Single form; see O(images)., type: str, choices: [raw, qcow2], default: qcow2}
  compress: {description: Single form; see O(images)., type: bool, default: false}
  force: {description: Single form; see O(images)., type: bool, default: false}
  state: {description: Single form; see O(images)., type: str, choices: [present, absent], default: present}
  store:
    description: "The image store: an absolute directory path on the storage node (made, mode 0755, when an image
      is written and it does not exist)."
    type: path
    required: true
  target_prefix:
    description: IQN prefix of the targets that export volumes (to find whether a volume is exported).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows each image written or deleted.
seealso:
  - module: ember.blockstore.volume
  - module: ember.blockstore.backup
"""

EXAMPLES = r"""
- name: Write volume web01 to a compressed qcow2 image on the node's image store
  ember.blockstore.image:
    name: web01-golden
    volume: web01
    vg: ember-thin
    store: /srv/images
    compress: true

- name: A raw image of an attached volume (crash-consistent), written again on every run
  ember.blockstore.image:
    images:
      - {name: db01-raw, volume: db01, vg: ember-thick, format: raw, force: true}
    store: /mnt/image-store

- name: Delete an image and its sidecars
  ember.blockstore.image:
    name: web01-golden
    state: absent
    store: /srv/images
"""

RETURN = r"""
images:
  description: One result per requested image, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Image name., type: str, sample: web01-golden}
    volume: {description: The volume written (null for an absent item that names none)., type: str, sample: web01}
    vg: {description: Its volume group., type: str, sample: ember-thin}
    path: {description: The image file., type: str, sample: /srv/images/web01-golden.qcow2}
    format: {description: "V(raw) or V(qcow2).", type: str, sample: qcow2}
    action: {description: "V(create) (written now), V(none) (written before), V(delete) or V(absent).", type: str,
             sample: create}
    changed: {description: Whether this item changed., type: bool, sample: true}
    status: {description: "V(available), V(deleted) or V(absent).", type: str, sample: available}
    size_bytes: {description: "The volume's size (the image's virtual size); null when unknown.", type: int,
                 sample: 1073741824}
    volume_sha256: {description: "sha256 of the volume's raw content when written (from the JSON sidecar for an
                                  image written before); null when not known.", type: str,
                    sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
    file_sha256: {description: "sha256 of the image file (its C(.sha256) sidecar).", type: str,
                  sample: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae}
    in_use: {description: "Why the volume was in use when it was written with force (exported, open), else null.",
             type: str, sample: null}
    temp_snapshot: {description: "The temporary snapshot LV the volume was read from (removed after), or null.",
                    type: str, sample: "imgtmp-web01+web01-golden"}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import single_form
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, batch_form, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._image import ITEM_OPTIONS, ImageApplier, decide
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    is_volume_name,
    validate_target_prefix,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner
from ansible_collections.ember.blockstore.plugins.module_utils._volume import exported_volumes
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.image import ImageError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt

RESULT_KEYS = ("name", "volume", "vg", "path", "format", "action", "changed", "status", "size_bytes",
               "volume_sha256", "file_sha256", "in_use")
CHANGES = ("create", "delete")


def argument_spec():
    return dict(images=dict(type="list", elements="dict", options=ITEM_OPTIONS),
                store=dict(type="path", required=True),
                target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX), **single_form(ITEM_OPTIONS))


def result_of(act):
    out = {key: act.get(key) for key in RESULT_KEYS}
    out["temp_snapshot"] = act.get("temp_lv")
    out["changed"] = act["action"] in CHANGES
    return out


def diff_of(actions):
    diff = {"before": {}, "after": {}}
    for act in actions:
        if act["action"] in CHANGES:
            key = os.path.basename(act["path"])  # the store is one directory: <name>.<format> is unique in it
            diff["before"][key] = "present" if act["existed"] else "absent"
            diff["after"][key] = "present" if act["action"] == "create" else "absent"
    return diff


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, **batch_form("images", "name"))
    params = module.params
    batch = Batch(module, "images", result_of, lambda act: "image %s" % act["name"], ITEM_OPTIONS, "image",
                  catch=(CommandError, RuntimeError, ImageError, OSError))
    try:
        validate_target_prefix(params["target_prefix"])
        if not os.path.isabs(params["store"]):
            raise NameError_("store: %r is not an absolute path" % params["store"])
    except NameError_ as exc:
        batch.fail(str(exc))
    runner = Runner(module, lock=True)
    lvm, state, exported, foreign = None, None, {}, {}
    present = [i for i in batch.items if (i.get("state") or "present") == "present"]
    if present:
        lvm, tgt = Lvm(runner), Tgt(runner)
        state, live = read_state(module, lambda: (lvm.state(), tgt.show_if_running()))
        exported, foreign = exported_volumes(sorted({i["volume"] for i in present if is_volume_name(i.get("volume"))}),
                                             live, params["target_prefix"])
    actions, errors = decide(batch.items, state, exported, params["store"], field=batch.field, foreign=foreign)
    actions = batch.decided(actions, errors)

    # --- apply: the one place the image applier runs (check mode: nothing is applied) ---
    results = batch.apply_each(actions, ImageApplier(lvm, params["store"]).apply)
    # --- end of apply ---
    module.exit_json(changed=batch.changed(results), images=results, diff=diff_of(actions))


if __name__ == "__main__":
    main()
