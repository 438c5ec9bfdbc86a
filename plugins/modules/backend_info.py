#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backend_info
short_description: Report the pools of a storage node, their capacity, capabilities and volumes
version_added: 0.2.0
description:
  - Reads the LVM state of a storage node with one C(vgs) and one C(lvs) call, the ember target files in
    C(/etc/tgt/conf.d/) and the live tgt targets, and reports one pool per declared backend in the shape the
    P(ember.blockstore.schedule#filter) filter consumes.
  - Pool statistics follow Cinder's LVM driver. Thick (V(lvm)) pools report the volume group's size and free
    space; thin (V(lvm_thin)) pools report the thin pool's data size, its free data space and, as
    C(provisioned_bytes), the sum of the virtual sizes of its thin volumes.
  - Only LVs tagged both C(ember.blockstore) and C(ember.volume=<name>) (and named C(volume-<name>)) are reported
    as volumes; other LVs only count as used space.
  - Names in the project's namespace that something else holds are reported as C(clashes), so that the plan
    refuses an inventory volume of that name before any change (M(ember.blockstore.volume) and
    M(ember.blockstore.attachment) would refuse it on this host only, later). These are LVs named
    C(volume-<name>) in the backend's volume group without both tags, live tgt targets named
    C(<target_prefix>volume-<name>) without the project's target file, and files at
    C(/etc/tgt/conf.d/ember-volume-<name>.conf) without the project's marker.
  - Every option is validated (backend, volume group, thin pool and device names, sizes, labels) and bounded;
    a bad value fails the module with a message naming the field, before any command.
  - In check mode, a volume group or thin pool that does not exist yet is predicted from the sizes of its
    physical volumes, so that a C(--check) run of a new host can plan; such pools have RV(pools[].predicted=true).
  - "NFS backends (driver V(nfs), issue 14): one pool per share, with the id C(<host>@<backend>#<share>) (Cinder's
    C(host@backend#pool), the share as the pool) and the share as its RV(pools[].vg) (what the
    M(ember.blockstore.volume) and M(ember.blockstore.snapshot) modules take as an item's C(vg)). A share is looked up
    in C(/proc/self/mountinfo) at C(<mount_point_base>/<hash of the share>); a mounted one is probed with C(stat -f)
    within a time bound (a server that does not answer is a problem naming the share, and then no pool of the node is
    reported), and its capacity read with C(statvfs). As Cinder's NFS driver reports it: C(provisioned_bytes) is the
    sum of the apparent sizes of the volume and snapshot files when the backend is sparse (thin provisioning
    support), the used space when it preallocates; C(allocated_bytes) the blocks those files hold. The volumes are
    the files C(volume-<name>) with a sidecar C(volume-<name>.info) (a sidecar that cannot be read is a problem:
    its volume is unknown, never absent); a C(volume-<name>) file without one is a clash. This module never mounts:
    a share that is not mounted is reported with RV(pools[].exists=false) and no capacity (the volume and snapshot
    modules mount it when they use it, and so does M(ember.blockstore.volume) with
    O(ember.blockstore.volume#module:mount_shares), which the C(blockstore) role runs before it gathers again); in
    check mode such a share is RV(pools[].predicted=true), empty, with the capacity V(unknown) (Cinder's value for a
    backend that cannot tell; the scheduler's CapacityFilter lets it pass) so a C(--check) run can plan its
    volumes. Without LVM backends, LVM and tgt are not read."
  - Read-only; never reports C(changed).
  - This module was called C(ember.blockstore.backend_facts) before release 0.2.0 (it never returned
    C(ansible_facts), so by Ansible's naming convention it is an C(_info) module). The old name
    still redirects here, with a deprecation warning, until it is removed in release 1.0.0.
author: ember.blockstore contributors (@ember-blockstore)
options:
  backends:
    description: The backends of this storage node (the host's C(blockstore_backends)).
    type: list
    elements: dict
    required: true
    suboptions:
      name: {description: "Backend name, unique on the host.", type: str, required: true}
      driver: {description: "V(lvm) (thick LVs in a VG), V(lvm_thin) (thin LVs in a thin pool) or V(nfs) (files
                 on NFS shares).", type: str,
               choices: [lvm, lvm_thin, nfs], default: lvm}
      vg: {description: "Volume group name; required for V(lvm) and V(lvm_thin), refused for V(nfs).", type: str}
      pvs: {description: Physical volumes of the VG (used to predict size in check mode)., type: list,
            elements: str, default: []}
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
          - "Thin pool data size: C(NN%VG) or a size with unit (V(3GiB))."
          - The alias C(pool_size) is its name before release 0.2.0; it is deprecated and will be removed
            in release 1.0.0.
        type: str
        default: 95%VG
        aliases: [pool_size]
      availability_zone: {description: Availability zone of the backend., type: str, default: nova}
      reserved_percentage: {description: Percent of total capacity kept free (Cinder's reserved_percentage).,
                            type: int, default: 0}
      max_over_subscription_ratio: {description: "Thin over-subscription ratio (a number > 0; 1.0 means none) or
                                                  V(auto).", type: raw, default: 20.0}
      volume_backend_name: {description: "Name matched by the C(volume_backend_name) extra spec; defaults to
                              O(backends[].name).", type: str}
      capabilities: {description: Extra capabilities reported to the scheduler (matched by extra specs).,
                     type: dict, default: {}}
      volume_clear: {description: How deleted thick volumes are wiped., type: str, choices: [zero, none],
                     default: zero}
      volume_clear_size: {description: "Start of a deleted thick volume to wipe, as Cinder's
                            C(volume_clear_size): a bare number is MiB, or a size with unit (V(512MiB));
                            V(0) = the whole volume.", type: str, default: "0"}
      mutual_chap: {description: "Exports of the backend's volumes use mutual CHAP (unless the volume type says
                      otherwise).", type: bool, default: false}
      shares:
        description:
          - "V(nfs) only, and required there: the NFS shares that hold the backend's volumes, each C(server:/export)
            (the server an IP address, IPv6 in brackets; the export an absolute normalized path). Each share is a
            pool."
        type: list
        elements: str
        version_added: 0.3.0
      mount_options:
        description: "V(nfs) only. nfs(5) mount options of the shares (each letters, digits and C(_ . = : -); not
          V(ro))."
        type: list
        elements: str
        default: [rw, hard, noatime, vers=4.2]
        version_added: 0.3.0
      mount_point_base:
        description: "V(nfs) only. Directory under which each share is mounted, at C(<mount_point_base>/<first 32 hex
          digits of the share's SHA-256>) (Cinder's C(nfs_mount_point_base))."
        type: str
        default: /var/lib/ember-blockstore/mnt
        version_added: 0.3.0
      sparse:
        description: "V(nfs) only. Volumes are sparse files (Cinder's C(nfs_sparsed_volumes)): the pools report thin
          provisioning support; V(false) allocates every volume's blocks when it is made (thick)."
        type: bool
        default: true
        version_added: 0.3.0
  host:
    description: Name of this host as the inventory knows it (pool ids are C(<host>@<backend>)).
    type: str
    required: true
  ledger_path:
    description: Path of this node's copy of the placement ledger (see M(ember.blockstore.ledger)).
    type: path
    default: /var/lib/ember-blockstore/ledger.json
  target_prefix:
    description: IQN prefix of the targets (to find targets that clash with the project's names).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
  manage_lvs:
    description:
      - Names of existing LVs that manage requests of the inventory name on this host (C(blockstore_volumes[].manage),
        Cinder's C(manage_existing)). Each LVM pool then reports the ones of its volume group in
        RV(pools[].manageable), tagged or not, so that the plan decides the manage before any change. The C(blockstore)
        role passes it only when the inventory has manage requests for this host.
      - Each found LV costs one C(findmnt) run (is it mounted?).
    type: list
    elements: str
    default: []
    version_added: 0.3.0
extends_documentation_fragment:
  - ember.blockstore.attributes
  - ember.blockstore.attributes.info_module
seealso:
  - module: ember.blockstore.volume
"""

EXAMPLES = r"""
- name: Report the pools of this storage node
  ember.blockstore.backend_info:
    backends: "{{ blockstore_backends }}"
    host: "{{ inventory_hostname }}"
  register: backends
"""

RETURN = r"""
pools:
  description: One pool per backend.
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: "C(<host>@<backend>); for a share of an V(nfs) backend C(<host>@<backend>#<share>).", type: str,
         sample: stor1@lvm-thin}
    host: {description: Inventory host., type: str, sample: stor1}
    backend: {description: Backend name., type: str, sample: lvm-thin}
    driver: {description: "V(lvm), V(lvm_thin) or V(nfs).", type: str, sample: lvm_thin}
    vg: {description: "Volume group; for an V(nfs) pool its share (the volume and snapshot modules take it as an item's
                       C(vg)).", type: str, sample: ember-thin}
    share: {description: "The share (C(server:/export)) of an V(nfs) pool; null for LVM.", type: str, sample: null,
            version_added: 0.3.0}
    mount_point: {description: "Where the share of an V(nfs) pool is (to be) mounted; null for LVM.", type: str,
                  sample: null, version_added: 0.3.0}
    mount_options: {description: "The nfs(5) options of an V(nfs) pool's backend (what a consumer mounts the share
                      with); null for LVM.", type: list, elements: str,
                    sample: [rw, hard, noatime, vers=4.2], version_added: 0.3.0}
    mount_point_base: {description: "The V(nfs) pool's backend's C(mount_point_base) (a consumer mounts the share at
                         the same path); null for LVM.", type: str,
                       sample: /var/lib/ember-blockstore/mnt, version_added: 0.3.0}
    thin_pool: {description: Thin pool LV or null., type: str, sample: thinpool}
    exists: {description: "Whether the VG (and thin pool) exist; for an V(nfs) pool, whether the share is mounted.",
             type: bool, sample: true}
    predicted: {description: "True when sizes are predicted (check mode, pool not created yet).", type: bool,
                sample: false}
    extent_size_bytes: {description: "LVM extent size in bytes (sizes are rounded up to it); 1 MiB for an V(nfs)
                                      pool.", type: int, sample: 4194304}
    total_bytes: {description: "Capacity in bytes; V(unknown) for a share of an V(nfs) backend predicted in check
                    mode (RV(pools[].predicted)).", type: raw, sample: 8053063680}
    free_bytes: {description: "Free capacity in bytes; V(unknown) as RV(pools[].total_bytes).", type: raw,
                 sample: 7516192768}
    allocated_bytes: {description: Used capacity in bytes., type: int, sample: 536870912}
    provisioned_bytes: {description: "Sum of the sizes of the volumes (thin; an V(nfs) pool that is sparse: the
                                      apparent sizes of its volume and snapshot files) or used capacity (thick).",
                        type: int, sample: 21474836480}
    data_percent: {description: Thin pool data usage in percent (thin only)., type: float, sample: 6.67}
    metadata_percent: {description: Thin pool metadata usage in percent (thin only)., type: float, sample: 10.94}
    capabilities: {description: "Reported to the scheduler: volume_backend_name, storage_protocol, driver,
                   thin_provisioning_support, thick_provisioning_support, availability_zone, reserved_percentage,
                   max_over_subscription_ratio, multiattach, plus the backend's capabilities. An V(nfs) pool reports
                   storage_protocol nfs, thin provisioning support when its backend is sparse, and no multiattach.",
                   type: dict,
                   sample: {volume_backend_name: lvm-thin, storage_protocol: iSCSI, driver: lvm_thin,
                            thin_provisioning_support: true, thick_provisioning_support: false,
                            availability_zone: az1, reserved_percentage: 10, max_over_subscription_ratio: 20.0,
                            multiattach: false}}
    volume_clear: {description: The backend's wipe method., type: str, sample: zero}
    volume_clear_size_bytes: {description: Bytes wiped on delete (0 = all)., type: int, sample: 0}
    mutual_chap: {description: "The backend's O(backends[].mutual_chap).", type: bool, sample: false}
    volumes:
      description: Managed volumes in the pool.
      type: list
      elements: dict
      contains:
        name: {description: Volume name., type: str, sample: db01-data}
        lv_name: {description: "LV name (for an V(nfs) volume its file name).", type: str, sample: volume-db01-data}
        size_bytes: {description: Size in bytes., type: int, sample: 10737418240}
        volume_type: {description: Volume type recorded at creation., type: str, sample: fast}
        status: {description: "V(available) or V(in-use) (a target file or a live target exports it); for an V(nfs)
                 volume V(available), V(creating) or V(deleting) (a run stopped while making or deleting it) or
                 V(error) (its sidecar is there, its file missing).", type: str, sample: in-use}
        attached_to: {description: Initiator IQNs the volume is exported to (recorded in its target file)., type: list,
                      elements: str, sample: ["iqn.1993-08.org.debian:01:9263f289471f"]}
        sessions: {description: Initiator IQNs logged in now., type: list, elements: str,
                   sample: ["iqn.1993-08.org.debian:01:9263f289471f"]}
        target_iqn: {description: IQN of the volume's export; null when not exported., type: str,
                     sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
        initiator_addresses: {description: Addresses in the target file's ACL., type: list, elements: str,
                              sample: [198.18.0.21]}
        export_ok: {description: "Whether the live target matches its file (LUN 1 on this LV, the file's CHAP
                    account, the file's ACL) and presents the LV's size.", type: bool, sample: true}
        mutual_chap: {description: "Whether the volume's target file has an outgoing (mutual CHAP) account.",
                      type: bool, sample: false}
        snapshots: {description: Names of LVs whose origin is this volume., type: list, elements: str, sample: []}
        managed_snapshots:
          description: The snapshots the P(ember.blockstore.snapshot#module) module made of this volume, by name.
          type: list
          elements: dict
          contains:
            name: {description: Snapshot name., type: str, sample: nightly}
            lv_name: {description: LV name., type: str, sample: snap-db01-data+nightly}
            volume_size_bytes: {description: The volume's size when the snapshot was taken., type: int,
                                sample: 10737418240}
            cow_size_bytes: {description: COW store size of a thick volume's snapshot; null for a thin one., type: int,
                             sample: 10737418240}
            reverted: {description: Whether the volume was reverted to this snapshot (tag C(ember.reverted)).,
                       type: bool, sample: false}
            description: {description: The snapshot's description or null., type: str, sample: before the upgrade}
            created_at: {description: LVM creation time (seconds since the epoch) or null., type: int,
                         sample: 1796025600}
            latest: {description: "Whether no other snapshot of the volume is as new or newer (every creation time
                     known): a revert without C(force) is to this one only.", type: bool, sample: true}
            group: {description: "The group snapshot (O(ember.blockstore.snapshot#module:snapshots[].group)) it was
                    taken as part of (tag C(ember.group)), or null.", type: str, sample: db01, version_added: 0.3.0}
        device: {description: "Device path on the storage node (for an V(nfs) volume the path of its file).", type: str,
                 sample: /dev/ember-thin/volume-db01-data}
        description: {description: "The volume's description (C(ember.vdesc) tag, decoded), or null.", type: str,
                      sample: Write-ahead log of db01}
        metadata: {description: "The volume's metadata (C(ember.meta) tags, decoded); empty when it has none.",
                   type: dict, sample: {owner: team-db}}
        migrated_from: {description: "The pool the volume was migrated from (C(ember.migrated_from) tag), or
                        null.", type: str, sample: stor1@lvm-thick, version_added: 0.3.0}
    migration_lvs:
      description: "LVs of unfinished or finished migrations in this pool (M(ember.blockstore.migration)): C(name)
        (the volume), C(lv_name), C(role) (V(target), a destination copy C(migrate-<name>); V(migrated), a
        switched-away source C(migrated-<name>)), C(size_bytes), C(path), and C(source_pool_id) and C(sha256) (a
        finished copy's digest, else null) for a target or C(destination_pool_id) for a migrated one. Empty for
        V(nfs) pools."
      type: list
      elements: dict
    manageable:
      description:
        - "Only with O(manage_lvs): the LVs it names that are in the pool's volume group (sorted by name), each with
          C(name), C(vg), C(size_bytes) (exact), C(thin), C(pool_lv), C(in_pool) (a thin volume of the pool's thin
          pool, or a plain LV for a thick pool), C(kind) (V(linear), V(thin) or LVM's segment type), C(open)
          (C(lv_attr)'s sixth character, what C(lv_device_open) reports), C(holders) (the devices in its
          C(/sys/class/block/<dev>/holders)), C(mounted) (its mount points, from C(findmnt)), C(snapshot_of) (the
          origin of a snapshot LV, else null), C(snapshots) (LVs whose origin it is), C(tags) (every tag),
          C(managed_as) (the volume it is, when it carries the project's tags, else null) and C(path)."
      type: list
      elements: dict
      returned: when O(manage_lvs) is given
      version_added: 0.3.0
    clashes:
      description: "Names in the project's namespace held by something that is not the project's: C(kind) (C(lv),
        C(target) or C(file)), C(host), C(volume) (the volume name it clashes with), and C(vg), C(lv_name), C(tags)
        for an LV, C(target_iqn), C(path), C(reason) for a target, or C(vg) (the share), C(lv_name) (the file name),
        C(path), C(reason) for a C(volume-<name>) file on a share without its sidecar. Target clashes are host-wide
        and repeated in every pool of the host."
      type: list
      elements: dict
problems:
  description:
    - Damaged LVM state found on this node, one item per problem; for an V(nfs) backend a share that does not
      answer or cannot be read, or a sidecar that cannot be read. A node with problems is not scheduled on and
      its volumes are not touched; the plan names each problem.
  returned: always
  type: list
  elements: dict
  contains:
    backend: {description: Backend name., type: str, sample: lvm-thin}
    vg: {description: "Volume group (for an V(nfs) backend the share).", type: str, sample: ember-thin}
    device: {description: "The device concerned (a PV; for an V(nfs) backend the mount point), or null.", type: str,
             sample: /dev/vdb}
    message: {description: "What is wrong, as LVM said it.", type: str}
    repair: {description: The command or step that repairs it (run by the operator)., type: str}
  sample: []
ledger:
  description: This node's copy of the placement ledger (C(generation), C(volumes), C(written_by), C(written_at));
    generation 0 and no volumes when the node has none.
  returned: always
  type: dict
  sample: {generation: 0, volumes: {}}
ledger_error:
  description: Why the ledger could not be read, or null.
  returned: always
  type: str
  sample: null
tgt:
  description: State of the tgt daemon, C(running) (tgtadm answers), C(configured) (the include line and the
    ember.blockstore systemd drop-in are present), C(ready) (both) and C(portals) (the addresses it listens on,
    as C(addr:port); empty when it is not running).
  returned: always
  type: dict
  sample: {running: true, configured: true, ready: true}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import (
    NODE_BACKEND_REQUIRED_IF,
    node_backend_options,
)
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import (
    backend_configs,
    manageable_lvs,
    nfs_pool_facts,
    nfs_problems,
    pool_facts,
    problems_of,
    read_conf_files,
    read_exports,
    read_shares,
    tgt_configured,
)
from ansible_collections.ember.blockstore.plugins.module_utils._batch import read_state
from ansible_collections.ember.blockstore.plugins.module_utils._ledger import LEDGER_PATH, LedgerError, read_ledger
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    validate_lv_name,
    validate_target_prefix,
    validate_text,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs as nfs_driver
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm, LvmState
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt


def mounts_of(runner, path):
    """The mount points of the block device at ``path`` (``findmnt --source``; exit code 1: none)."""
    rc, out, _err = runner.run(["findmnt", "--noheadings", "--output", "TARGET", "--source", path], check=False)
    return [line.strip() for line in out.splitlines() if line.strip()] if rc == 0 else []


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backends=dict(type="list", elements="dict", required=True, options=node_backend_options(),
                          required_if=NODE_BACKEND_REQUIRED_IF),
            host=dict(type="str", required=True),
            ledger_path=dict(type="path", default=LEDGER_PATH),
            target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
            manage_lvs=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    host = module.params["host"]
    try:
        validate_text(host, "host", what="host name")
        validate_target_prefix(module.params["target_prefix"])
        configs = backend_configs(module.params["backends"], host)
        for index, name in enumerate(module.params["manage_lvs"]):
            validate_lv_name(name, "manage_lvs[%d]" % index)
    except (NameError_, ValueError) as exc:
        module.fail_json(msg=str(exc))

    try:
        ledger, ledger_error = read_ledger(module.params["ledger_path"]), None
    except LedgerError as exc:
        ledger, ledger_error = None, str(exc)
    runner = Runner(module)
    lvm, tgt = Lvm(runner), Tgt(runner)
    lvm_configs = [cfg for cfg in configs if cfg["driver"] != "nfs"]
    nfs_configs = [cfg for cfg in configs if cfg["driver"] == "nfs"]

    def read():
        state, messages = lvm.state(tolerant=True, times=True)  # times: which snapshot is the latest
        pv_rows = lvm.pvs()
        running = tgt.running()
        live = tgt.show_if_running() if running else {}
        portals = tgt.portals() if running else []
        return state, messages, pv_rows, running, live, portals

    if lvm_configs or not nfs_configs:
        state, messages, pv_rows, running, live, portals = read_state(module, read)
        problems = problems_of(lvm_configs, state, pv_rows, messages)
    else:  # a node with NFS backends only: no LVM or tgt to read (the tools may not be installed)
        state, running, live, portals, problems = LvmState({}, []), False, {}, [], []
    shares = read_shares(nfs_driver.Nfs(runner), nfs_configs)
    for cfg, share, path, share_state, _capacity, error in shares:
        problems.extend(nfs_problems(cfg, share, path, share_state, error))
    configured = tgt_configured()
    pools = []
    # Pools of a damaged VG or a share that does not answer are not reported: nothing may be scheduled on them or
    # touched there.
    if not problems:
        files = read_conf_files()
        exports = read_exports(files=files)
        by_backend = {}
        for cfg, share, path, share_state, capacity, _error in shares:
            pool = nfs_pool_facts(host, cfg, share, path, share_state, capacity, predict=module.check_mode)
            by_backend.setdefault(cfg["name"], []).append(pool)
        try:
            for cfg in configs:
                if cfg["driver"] == "nfs":
                    pools.extend(by_backend.get(cfg["name"], []))
                else:
                    pools.append(pool_facts(host, cfg, state, exports, live, module.check_mode,
                                            module.params["target_prefix"], files))
        except SizeError as exc:
            module.fail_json(msg="backend_info on %s: %s" % (host, exc))
        if module.params["manage_lvs"]:
            by_name = {cfg["name"]: cfg for cfg in lvm_configs}
            for pool in pools:
                if pool["backend"] in by_name:
                    pool["manageable"] = manageable_lvs(by_name[pool["backend"]], state, module.params["manage_lvs"],
                                                        lambda path: mounts_of(runner, path))
    module.exit_json(changed=False, pools=pools, problems=problems, ledger=ledger, ledger_error=ledger_error,
                     tgt={"running": running, "configured": configured, "ready": running and configured,
                          "portals": portals})


if __name__ == "__main__":
    main()
