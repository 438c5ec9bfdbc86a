#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: Create, extend and delete block storage volumes on an LVM storage node
version_added: 0.1.0
description:
  - Manages volumes as LVM logical volumes named C(volume-<name>) and tagged C(ember.blockstore),
    C(ember.volume=<name>), C(ember.type=<volume type>) and C(ember.backend=<backend>); LVs without both the
    C(ember.blockstore) and the C(ember.volume=<name>) tag are never touched.
  - Thick volumes (C(lvcreate --size)) or thin volumes in a thin pool (C(lvcreate --thin --virtualsize)).
    Sizes are rounded up to whole LVM extents, as LVM does, so a repeated run with the same size is a no-op.
  - A bigger size extends the volume (C(lvextend)); a smaller one is an error (volumes are never shrunk).
  - O(volumes[].state=absent) deletes the volume. A volume that is exported (in-use) needs
    O(volumes[].force=true), and then its target is removed first (only a target whose file carries the project's
    marker; a volume exported by another target is not deleted); a volume with snapshots needs
    O(volumes[].cascade=true), which deletes only snapshots tagged C(ember.blockstore), C(ember.volume=<name>) and
    C(ember.snapshot=<snapshot>). Thick volumes are wiped before
    deletion as Cinder's C(volume_clear=zero) does (C(blkdiscard --zeroout), else C(dd) from /dev/zero); thin
    volumes are not (the thin pool zeroes blocks before it hands them out again).
  - Batch form (O(volumes)) handles many volumes in one module run; the single form (O(name), O(size), ...)
    handles one. Every item is validated and decided before the first change; one bad item changes nothing.
author: ember.blockstore contributors (@ember-blockstore)
options:
  volumes:
    description: Volumes to manage in one run. Mutually exclusive with O(name).
    type: list
    elements: dict
    suboptions:
      name: {description: "Volume name: 1-63 lowercase letters, digits, C(.) or C(-).", type: str, required: true}
      size:
        description:
          - Size with unit (V(10GiB), V(512MiB), V(1G) = 10^9 bytes, V(1073741824B)) or a bare number of GiB
            (V(10) is 10 GiB, as in Cinder and openstack.cloud's C(volume) module).
          - Required when O(volumes[].state=present).
        type: raw
      state: {description: Desired state., type: str, choices: [present, absent], default: present}
      vg: {description: Volume group that holds the volume., type: str, required: true}
      thin_pool: {description: "Thin pool LV in O(volumes[].vg); omit for a thick volume.", type: str}
      volume_type: {description: Volume type name recorded in the LV tags., type: str}
      backend: {description: Backend name recorded in the LV tags., type: str}
      volume_clear: {description: How a deleted thick volume is wiped., type: str, choices: [zero, none],
                     default: zero}
      volume_clear_size:
        description:
          - How much of the start of a deleted thick volume to wipe, as Cinder's C(volume_clear_size). A bare
            number is MiB (C(100) is 100 MiB), or a size with unit (C(512MiB), C(1GiB)); C(0) is the whole volume.
          - Rounded up to whole MiB and never more than the volume.
        type: raw
        default: 0
      force: {description: Delete even when exported (the export is removed first)., type: bool, default: false}
      cascade: {description: Delete the volume's snapshots too., type: bool, default: false}
  name: {description: Single form; see O(volumes)., type: str}
  size: {description: Single form; see O(volumes)., type: raw}
  state: {description: Single form; see O(volumes)., type: str, choices: [present, absent], default: present}
  vg: {description: Single form; see O(volumes)., type: str}
  thin_pool: {description: Single form; see O(volumes)., type: str}
  volume_type: {description: Single form; see O(volumes)., type: str}
  backend: {description: Single form; see O(volumes)., type: str}
  volume_clear: {description: Single form; see O(volumes)., type: str, choices: [zero, none], default: zero}
  volume_clear_size: {description: Single form; see O(volumes)., type: raw, default: 0}
  force: {description: Single form; see O(volumes)., type: bool, default: false}
  cascade: {description: Single form; see O(volumes)., type: bool, default: false}
  target_prefix:
    description: IQN prefix of the targets that export volumes (to find a volume's export).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows each changed volume's size and state before and after.
seealso:
  - module: ember.blockstore.backend_info
  - module: ember.blockstore.attachment
"""

EXAMPLES = r"""
- name: Create a thin 10 GiB volume
  ember.blockstore.volume:
    name: db01-data
    size: 10GiB
    vg: ember-thin
    thin_pool: thinpool
    volume_type: fast

- name: Converge many volumes in one run
  ember.blockstore.volume:
    volumes:
      - {name: web01, size: 2GiB, vg: ember-thick}
      - {name: old-scratch, state: absent, vg: ember-thick}

- name: Delete a volume that is still exported (its target is removed first) and its snapshots
  ember.blockstore.volume:
    name: old-db
    vg: ember-thin
    thin_pool: thinpool
    state: absent
    force: true
    cascade: true
"""

RETURN = r"""
volumes:
  description: One result per requested volume, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Volume name., type: str, sample: db01-data}
    lv_name: {description: LV name., type: str, sample: volume-db01-data}
    vg: {description: Volume group., type: str, sample: ember-thin}
    thin_pool: {description: Thin pool or null., type: str, sample: thinpool}
    backend: {description: Backend name., type: str, sample: lvm-thin}
    volume_type: {description: Volume type., type: str, sample: fast}
    action: {description: "V(create), V(extend), V(none), V(delete) or V(absent) (nothing to delete).",
             type: str, sample: create}
    changed: {description: Whether this item changed., type: bool, sample: true}
    size_bytes: {description: Size after the run (extent-rounded); null when deleted or absent., type: int,
                 sample: 10737418240}
    previous_size_bytes: {description: Size before the run; null when it did not exist., type: int,
                          sample: null}
    status: {description: "V(available), V(in-use) (exported), V(deleted) or V(absent).", type: str,
             sample: available}
    device: {description: Device path on the storage node., type: str, sample: /dev/ember-thin/volume-db01-data}
    wipe: {description: "How a deleted volume was wiped: V(zero) only when zeros were written, V(none), or
                         V(skipped) with the reason.", type: str, returned: when deleted, sample: zero}
    wiped_bytes: {description: Bytes made zero., type: int, returned: when deleted, sample: 2147483648}
    wipe_method: {description: "How the zeros were made: V(blkdiscard --zeroout) (the kernel's BLKZEROOUT, reads
                                return zeros) or V(dd) (zeros written from /dev/zero, when blkdiscard is missing or
                                fails); null when nothing was written.", type: str, returned: when deleted,
                   sample: blkdiscard --zeroout}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import single_form
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, batch_form, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    is_volume_name,
    validate_target_prefix,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils._volume import (
    ITEM_OPTIONS,
    VolumeApplier,
    decide,
    exported_volumes,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt

RESULT_KEYS = ("name", "lv_name", "vg", "thin_pool", "backend", "volume_type", "action", "changed", "size_bytes",
               "previous_size_bytes", "status", "device", "wipe", "wiped_bytes", "wipe_method")


def argument_spec():
    return dict(volumes=dict(type="list", elements="dict", options=ITEM_OPTIONS),
                target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX), **single_form(ITEM_OPTIONS))


def result_of(act):
    out = {key: act.get(key) for key in RESULT_KEYS
           if key in act or key not in ("wipe", "wiped_bytes", "wipe_method")}
    out["changed"] = act["action"] in ("create", "extend", "delete")
    return out


def diff_of(actions):
    diff = {"before": {}, "after": {}}
    for act in actions:
        if act["action"] in ("create", "extend", "delete"):
            diff["before"][act["name"]] = {"size_bytes": act["previous_size_bytes"],
                                           "state": "absent" if act["previous_size_bytes"] is None else "present"}
            diff["after"][act["name"]] = {"size_bytes": act["size_bytes"],
                                          "state": "absent" if act["action"] == "delete" else "present"}
    return diff


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           **batch_form("volumes", "name", required_by={"name": "vg"}))
    params = module.params
    batch = Batch(module, "volumes", result_of, lambda act: "volume %s" % act["name"], ITEM_OPTIONS, "volume")
    try:
        validate_target_prefix(params["target_prefix"])
    except NameError_ as exc:
        batch.fail(str(exc))

    runner = Runner(module, lock=True)
    lvm, tgt = Lvm(runner), Tgt(runner)
    state, live = read_state(module, lambda: (lvm.state(), tgt.show_if_running()))
    exported, foreign = exported_volumes([i["name"] for i in batch.items if isinstance(i.get("name"), str)
                                          and is_volume_name(i["name"])], live, params["target_prefix"])
    actions = batch.decided(*decide(batch.items, state, exported, field=batch.field,
                                    predict_missing=module.check_mode, foreign=foreign))

    # --- apply: the one place the volume applier runs (check mode: nothing is applied) ---
    applier = VolumeApplier(lvm, tgt, params["target_prefix"])
    results = batch.apply_batched(actions, applier.apply_batch)
    # --- end of apply ---

    module.exit_json(changed=batch.changed(results), volumes=results, diff=diff_of(actions))


if __name__ == "__main__":
    main()
