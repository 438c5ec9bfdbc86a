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
  - "Snapshots of the volumes of V(nfs) backends, when O(backends) lists them: the files
    C(volume-<volume>.snap-<name>) recorded in their volume's sidecar on each mounted share (probed within a time
    bound first; a share that is not mounted or does not answer is warned about and left out). They have no COW
    store (C(cow_size_bytes) null); C(lv_name) is the file's name. Without LVM backends in O(backends), LVM is
    not read."
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
  backends:
    description:
      - The backends of this storage node (the host's C(blockstore_backends), as M(ember.blockstore.backend_info)
        takes them). Optional; the snapshots of the volumes of its V(nfs) backends are read from their shares.
    type: list
    elements: dict
    default: []
    version_added: 0.3.0
    suboptions:
      name: {description: "Backend name, unique on the host.", type: str, required: true}
      driver: {description: "V(lvm) (thick LVs in a VG), V(lvm_thin) (thin LVs in a thin pool) or V(nfs) (files on
                 NFS shares).", type: str, choices: [lvm, lvm_thin, nfs], default: lvm}
      vg: {description: "Volume group name; required for V(lvm) and V(lvm_thin), refused for V(nfs).", type: str}
      pvs: {description: Physical volumes of the VG (not used here)., type: list, elements: str, default: []}
      thin_pool:
        description:
          - Thin pool LV name (V(lvm_thin) only).
          - The alias C(pool) is its name before release 0.2.0; it is deprecated and will be removed in
            release 1.0.0.
        type: str
        default: thinpool
        aliases: [pool]
      thin_pool_size:
        description:
          - Thin pool data size (not used here).
          - The alias C(pool_size) is its name before release 0.2.0; it is deprecated and will be removed
            in release 1.0.0.
        type: str
        default: 95%VG
        aliases: [pool_size]
      availability_zone: {description: Availability zone of the backend., type: str, default: nova}
      reserved_percentage: {description: Not used here., type: int, default: 0}
      max_over_subscription_ratio: {description: Not used here., type: raw, default: 20.0}
      volume_backend_name: {description: Not used here., type: str}
      capabilities: {description: Not used here., type: dict, default: {}}
      volume_clear: {description: Not used here., type: str, choices: [zero, none], default: zero}
      volume_clear_size: {description: Not used here., type: str, default: "0"}
      mutual_chap: {description: Not used here., type: bool, default: false}
      shares: {description: "V(nfs) only, and required there - the backend's NFS shares (C(server:/export)); each
                 mounted one is read.", type: list, elements: str, version_added: 0.3.0}
      mount_options: {description: Not used here (V(nfs))., type: list, elements: str,
                      default: [rw, hard, noatime, vers=4.2], version_added: 0.3.0}
      mount_point_base: {description: "V(nfs) only. Where the shares are mounted (C(<base>/<hash of the share>)).",
                         type: str, default: /var/lib/ember-blockstore/mnt, version_added: 0.3.0}
      sparse: {description: Not used here (V(nfs))., type: bool, default: true, version_added: 0.3.0}
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
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import BACKEND_REQUIRED_IF, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import (
    backend_configs,
    only_nfs,
    readable_shares,
)
from ansible_collections.ember.blockstore.plugins.module_utils._batch import read_state
from ansible_collections.ember.blockstore.plugins.module_utils._info import nfs_snapshots_info, snapshots_info
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, validate_volume_name
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import validate_snapshot_name
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm, LvmState
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import Nfs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str"),
            volume=dict(type="list", elements="str"),
            backends=dict(type="list", elements="dict", default=[], options=backend_options(),
                          required_if=BACKEND_REQUIRED_IF),
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
        configs = backend_configs(params["backends"], "localhost")
    except (NameError_, ValueError) as exc:
        module.fail_json(msg=str(exc))
    runner = Runner(module)
    found = []
    for _cfg, _share, share_state in readable_shares(module, Nfs(runner), configs, "snapshots"):
        found.extend(nfs_snapshots_info(share_state, names, volumes))
    if not only_nfs(configs):
        lvm = Lvm(runner)
        state, messages = read_state(module, lambda: lvm.state(tolerant=True, times=True))
    else:  # NFS backends only: no LVM to read
        state, messages = LvmState({}, []), []
    for line in messages:
        module.warn("LVM: %s" % line.strip())
    snapshots = sorted(snapshots_info(state, names, volumes) + found, key=lambda s: (s["volume"], s["name"]))
    module.exit_json(changed=False, snapshots=snapshots)


if __name__ == "__main__":
    main()
