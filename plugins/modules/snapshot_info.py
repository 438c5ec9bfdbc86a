#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot_info
short_description: Report the volume snapshots of a storage node with Cinder's fields and statuses
version_added: 0.3.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - Runs on a storage node. Reports the snapshots the project manages there, as M(ember.blockstore.snapshot) makes
    them (LVs C(snap-<volume>+<name>) tagged C(ember.blockstore), C(ember.volume=<volume>) and
    C(ember.snapshot=<name>)), with the fields of Cinder's snapshot where they make sense.
  - Reads the LVM state with one C(vgs) and one C(lvs) call.
  - "The status, as Cinder names it; the first row that applies:"
  - "V(restoring): the snapshot is being merged into its volume (C(lvconvert --merge) of a revert): C(S) is the
    first character of its C(lv_attr), or, for a thin snapshot whose merge LVM deferred, its volume shows C(O)
    there and carries C(ember.reverting=<name>)."
  - "V(error): a thick (COW) snapshot that overflowed: LVM marks it invalid (C(I), the fifth C(lv_attr)
    character) or its COW store is 100% used."
  - "V(available): otherwise."
  - Read-only; never reports C(changed).
extends_documentation_fragment:
  - ember.blockstore.attributes
  - ember.blockstore.attributes.info_module
options:
  name:
    description: Report only snapshots of these names. All of them when omitted.
    type: list
    elements: str
  volume:
    description: Report only the snapshots of these volumes. Those of every volume when omitted.
    type: list
    elements: str
seealso:
  - module: ember.blockstore.snapshot
  - module: ember.blockstore.volume_info
"""

EXAMPLES = r"""
- name: Report every snapshot of this storage node
  ember.blockstore.snapshot_info:
  register: snaps

- name: Report the snapshots of one volume
  ember.blockstore.snapshot_info:
    volume: db01-data
  register: db01_snaps
"""

RETURN = r"""
snapshots:
  description: The snapshots, sorted by volume and name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Snapshot name., type: str, sample: nightly}
    id: {description: "Snapshot id: C(<volume>+<name>) (a name is unique per volume).", type: str,
         sample: db01-data+nightly}
    volume: {description: Name of the volume it is a snapshot of., type: str, sample: db01-data}
    size: {description: "The volume's size when the snapshot was taken (Cinder's C(volume_size)), in GiB rounded up
                         to a whole GiB; null when not known.", type: int, sample: 10}
    size_bytes: {description: "The volume's size when the snapshot was taken, in bytes (C(ember.volume_size) tag;
                               for a thin snapshot without it, its own size); null when not known.", type: int,
                 sample: 10737418240}
    cow_size_bytes: {description: "Size of a thick snapshot's COW store (its LV size); null for a thin snapshot
                                   (it shares the thin pool).", type: int, sample: 10737418240}
    status: {description: "V(available), V(error) or V(restoring) (see the module's description).", type: str,
             sample: available}
    description: {description: "Description (C(ember.description) tag) decoded, or null.", type: str,
                  sample: before upgrade}
    created_at: {description: "Creation time of the LV (C(lv_time)), ISO 8601 in UTC; null when its time is not in
                               LVM's default format.", type: str, sample: "2026-11-20T10:05:00Z"}
    reverted: {description: "Whether it was re-created by a revert of its volume (C(ember.reverted) tag).",
               type: bool, sample: false}
    lv_name: {description: LV name., type: str, sample: snap-db01-data+nightly}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._batch import read_state
from ansible_collections.ember.blockstore.plugins.module_utils._info import snapshots_info
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, validate_volume_name
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import validate_snapshot_name
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str"),
            volume=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        names = volumes = None
        if params["name"] is not None:
            names = [validate_snapshot_name(n, "name[%d]" % i) for i, n in enumerate(params["name"])]
        if params["volume"] is not None:
            volumes = [validate_volume_name(v, "volume[%d]" % i) for i, v in enumerate(params["volume"])]
    except NameError_ as exc:
        module.fail_json(msg=str(exc))
    lvm = Lvm(Runner(module))
    state, messages = read_state(module, lambda: lvm.state(tolerant=True, times=True))
    for line in messages:
        module.warn("LVM: %s" % line.strip())
    module.exit_json(changed=False, snapshots=snapshots_info(state, names, volumes))


if __name__ == "__main__":
    main()
