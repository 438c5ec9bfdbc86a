#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_info
short_description: Report the volumes of a storage node with Cinder's fields and statuses
version_added: 0.3.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - Runs on a storage node. Reports the volumes the project manages there (LVs C(volume-<name>) tagged
    C(ember.blockstore) and C(ember.volume=<name>)) and the volumes this node's copy of the placement ledger
    (see M(ember.blockstore.ledger)) places on O(host) although their LV is missing, with the fields of Cinder's
    volume where they make sense.
  - Reads the LVM state with one C(vgs) and one C(lvs) call, the ember target files in C(/etc/tgt/conf.d/), the
    live tgt targets (one C(tgtadm) call; none when tgtd does not run) and the ledger file. The export facts are
    those M(ember.blockstore.backend_info) reports.
  - "The status, as Cinder names it; the first row that applies:"
  - "V(deleting): the ledger places the volume on O(host) with status V(deleting) (a delete was planned and has
    not been recorded as done)."
  - "V(creating): the LV is missing and the ledger places the volume on O(host) with status V(creating)."
  - "V(error): the LV is missing and the ledger places the volume on O(host) with status V(available)."
  - "V(error), V(extending), V(backing-up), V(restoring-backup), V(creating) or V(deleting): the LV carries the tag
    C(ember.status=<status>). This module only reads that tag: no module sets it yet (the backup module will set
    V(backing-up) and V(restoring-backup)). Another value is ignored, with a warning."
  - "V(reverting): the LV carries the tag C(ember.reverting=<snapshot>) (M(ember.blockstore.snapshot) reverts it
    to that snapshot, or a revert was interrupted and the next C(state=reverted) run finishes it)."
  - "V(creating): the LV carries the tag C(ember.creating)."
  - "V(in-use): a target file of the project or a live tgt target exports the volume."
  - "V(available): otherwise."
  - "Volumes of V(nfs) backends (given in O(backends)): the files C(volume-<name>) with their sidecar on each share
    that is mounted (each probed within a time bound first; a share that is not mounted or does not answer is
    warned about and its volumes are not reported), O(host)'s ledger placements on a share without a sidecar as
    V(error) (or V(creating)). Their status comes from the sidecar - V(creating), V(deleting), V(backing-up),
    V(restoring-backup) (the M(ember.blockstore.backup) module reads or writes the file), V(reverting) (an
    unfinished revert), V(error) (the sidecar without its file), else V(available): the storage node cannot see the
    consumers' loop devices, so an attached NFS volume is not V(in-use) here (the consumer's
    M(ember.blockstore.initiator_info) reports it). C(pool) is the share, C(lv_name) the file's name and C(device)
    its path on the storage node. Without LVM backends in O(backends), LVM and tgt are not read."
  - Read-only; never reports C(changed).
extends_documentation_fragment:
  - ember.blockstore.attributes
  - ember.blockstore.attributes.info_module
options:
  name:
    description: Report only these volumes (names as in the inventory). All of them when omitted.
    type: list
    elements: str
  host:
    description:
      - Name of this storage node as the inventory knows it (the ledger records placements by inventory host
        name); returned as RV(volumes[].host).
      - Defaults to the node's host name, which may differ from its inventory name; then the ledger's placements
        on this node are not recognised (no V(creating), V(deleting) or V(error) from the ledger).
    type: str
  backends:
    description:
      - The backends of this storage node (the host's C(blockstore_backends), as M(ember.blockstore.backend_info)
        takes them). Optional; used for RV(volumes[].availability_zone) and for the backend of a volume whose LV
        and ledger entry do not name one.
    type: list
    elements: dict
    default: []
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
  ledger_path:
    description: Path of this node's copy of the placement ledger (see M(ember.blockstore.ledger)).
    type: path
    default: /var/lib/ember-blockstore/ledger.json
  target_prefix:
    description:
      - IQN prefix of the project's targets, as the other modules take it; validated. A volume's export is found
        by what it exports, whatever its IQN (a target file of the project for the LV, or a live target whose
        LUN 1 is the LV), as M(ember.blockstore.backend_info) finds it.
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
seealso:
  - module: ember.blockstore.volume
  - module: ember.blockstore.snapshot_info
  - module: ember.blockstore.backend_info
"""

EXAMPLES = r"""
- name: Report every volume of this storage node
  ember.blockstore.volume_info:
    host: "{{ inventory_hostname }}"
    backends: "{{ blockstore_backends }}"
  register: node

- name: Report two volumes
  ember.blockstore.volume_info:
    name: [db01-data, logs01]
    host: "{{ inventory_hostname }}"
  register: two

- name: Fail when a volume is in error
  ansible.builtin.assert:
    that: node.volumes | selectattr('status', 'equalto', 'error') | list | length == 0
"""

RETURN = r"""
volumes:
  description: The volumes, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Volume name., type: str, sample: db01-data}
    id: {description: "Volume id: the name (a volume's inventory name is its identity).", type: str,
         sample: db01-data}
    size: {description: "Size in GiB, rounded up to a whole GiB as Cinder's integer size; null when the LV is
                         missing.", type: int, sample: 10}
    size_bytes: {description: Size in bytes; null when the LV is missing., type: int, sample: 10737418240}
    status: {description: "V(available), V(in-use), V(creating), V(deleting), V(error), V(extending),
                           V(reverting), V(backing-up) or V(restoring-backup) (see the module's description).",
             type: str,
             sample: in-use}
    volume_type: {description: "Volume type recorded at creation (C(ember.type) tag), or null.", type: str,
                  sample: fast}
    availability_zone: {description: "Availability zone of the volume's backend (from O(backends)), or null.",
                        type: str, sample: az1}
    backend: {description: "Backend name: the C(ember.backend) tag, else the ledger's pool id, else the backend of
                            O(backends) on the LV's VG and thin pool; or null.", type: str, sample: lvm-thin}
    pool: {description: "Where the LV lives: C(<vg>) (thick) or C(<vg>/<thin pool>) (thin); null when the LV is
                         missing.", type: str, sample: ember-thin/thinpool}
    host: {description: The storage node (O(host))., type: str, sample: stor1}
    bootable: {description: Always false (no image is written to a volume)., type: bool, sample: false}
    multiattach: {description: Whether the LV carries the C(ember.multiattach) tag., type: bool, sample: false}
    encrypted: {description: Always false (no encryption)., type: bool, sample: false}
    description: {description: "The volume's description (O(ember.blockstore.volume#module:volumes[].description),
                                its C(ember.vdesc) tag, decoded), or null.", type: str, sample: null}
    metadata: {description: "The volume's metadata (O(ember.blockstore.volume#module:volumes[].metadata), its
                             C(ember.meta=<key>=<value>) tags, decoded); empty when it has none.", type: dict,
               sample: {owner: team-db}}
    snapshots: {description: "Names of the project's snapshots of the volume.", type: list, elements: str,
                sample: [nightly]}
    source: {description: "The C(ember.source) tag (what the volume was created from), decoded, or null.",
             type: str, sample: null}
    attachments:
      description: One item per initiator the export admits (the IQNs its target file records) or that is
        logged in now; empty when the volume is not exported.
      type: list
      elements: dict
      contains:
        initiator: {description: Initiator IQN., type: str, sample: "iqn.1993-08.org.debian:01:9263f289471f"}
        target_iqn: {description: IQN of the volume's target., type: str,
                      sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
        lun: {description: LUN of the volume in the target (always 1)., type: int, sample: 1}
        allowed: {description: Whether the export's target file records this initiator., type: bool,
                  sample: true}
        connected: {description: Whether the initiator has a session now., type: bool, sample: true}
        addresses: {description: IP addresses of the initiator's connections now., type: list, elements: str,
                    sample: [198.18.0.21]}
    created_at: {description: "Creation time of the LV (C(lv_time)), ISO 8601 in UTC; null when the LV is
                               missing or its time is not in LVM's default format.", type: str,
                 sample: "2026-11-20T09:00:00Z"}
    lv_name: {description: LV name., type: str, sample: volume-db01-data}
    device: {description: Device path on the storage node; null when the LV is missing., type: str,
             sample: /dev/ember-thin/volume-db01-data}
ledger_error:
  description: Why the ledger could not be read (the statuses then come from the LVs and exports alone), or null.
  returned: always
  type: str
  sample: null
"""

import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import BACKEND_REQUIRED_IF, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import (
    backend_configs,
    nfs_pool_id,
    only_nfs,
    read_exports,
    readable_shares,
)
from ansible_collections.ember.blockstore.plugins.module_utils._batch import read_state
from ansible_collections.ember.blockstore.plugins.module_utils._info import nfs_volumes_info, volumes_info
from ansible_collections.ember.blockstore.plugins.module_utils._ledger import LEDGER_PATH, LedgerError, read_ledger
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    validate_target_prefix,
    validate_text,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm, LvmState
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import Nfs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str"),
            host=dict(type="str"),
            backends=dict(type="list", elements="dict", default=[], options=backend_options(),
                          required_if=BACKEND_REQUIRED_IF),
            ledger_path=dict(type="path", default=LEDGER_PATH),
            target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
        ),
        supports_check_mode=True,
    )
    params = module.params
    host = params["host"] or socket.gethostname()
    try:
        validate_text(host, "host", what="host name")
        validate_target_prefix(params["target_prefix"])
        names = None
        if params["name"] is not None:
            names = [validate_volume_name(n, "name[%d]" % i) for i, n in enumerate(params["name"])]
        configs = backend_configs(params["backends"], host)
    except (NameError_, ValueError) as exc:
        module.fail_json(msg=str(exc))

    try:
        ledger, ledger_error = read_ledger(params["ledger_path"]), None
    except LedgerError as exc:
        ledger, ledger_error = None, str(exc)
        module.warn("the placement ledger is not read: %s" % exc)
    runner = Runner(module)
    lvm, tgt = Lvm(runner), Tgt(runner)
    nfs_volumes = []
    for cfg, share, share_state in readable_shares(module, Nfs(runner), configs, "volumes"):
        nfs_volumes.extend(nfs_volumes_info(host, cfg, share, nfs_pool_id(host, cfg["name"], share), share_state,
                                            ledger, names))
    if not only_nfs(configs):
        (state, messages), live = read_state(module, lambda: (lvm.state(tolerant=True, times=True),
                                                              tgt.show_if_running()))
    else:  # NFS backends only: no LVM or tgt to read (the tools may not be installed)
        state, messages, live = LvmState({}, []), [], {}
    for line in messages:
        module.warn("LVM: %s" % line.strip())
    volumes, warnings = volumes_info(host, state, read_exports(), live, ledger, configs, names,
                                     elsewhere={v["name"] for v in nfs_volumes})
    for warning in warnings:
        module.warn(warning)
    volumes = sorted(volumes + nfs_volumes, key=lambda vol: vol["name"])
    module.exit_json(changed=False, volumes=volumes, ledger_error=ledger_error)


if __name__ == "__main__":
    main()
