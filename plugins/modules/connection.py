#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: connection
short_description: Attach volumes to a consumer (iSCSI login, or an NFS share and a loop device) and detach them
version_added: 0.1.0
description:
  - The consumer side of an attach, after os-brick's iSCSI connector. For each C(connection_info) returned by
    M(ember.blockstore.attachment) it creates the open-iscsi node record for that target and portal, sets CHAP
    and C(node.startup=automatic) (the session comes back after a reboot), logs in and waits until the device
    appears at its stable path C(/dev/disk/by-path/ip-<portal>-iscsi-<iqn>-lun-<lun>).
  - The CHAP secret is never put on a command line (C(ps) shows those to every local user). iscsiadm cannot read
    a value from a file or stdin, so the module writes the secret into the node record file that
    C(iscsiadm -o new) created (C(/etc/iscsi/nodes) or C(/var/lib/iscsi/nodes), mode 0600) and checks with
    C(iscsiadm -o show) that it is set. Only if that file cannot be found is the secret passed with C(-v), with a
    warning.
  - "Mutual CHAP: an item with O(connections[].target_auth_username) and O(connections[].target_auth_password)
    (in C(connection_info) of an attachment with C(mutual_chap)) also sets C(node.session.auth.username_in) and,
    in the record file like the initiator's secret, C(node.session.auth.password_in): iscsid then refuses a target
    that cannot prove that secret, and the module fails saying that mutual CHAP authentication of the target failed,
    naming the target (iscsiadm gives the same exit code when the target's ACL refuses the host; iscsid's log tells
    which)."
  - An existing session whose node record lacks the item's mutual CHAP credentials, or holds others, is not logged
    in again - the record is updated (V(update)) and the credentials apply from its next login (a reconnect, a
    reboot). A CHAP item without them clears the ones a record holds (mutual CHAP turned off on the target).
  - Every field is validated before any command (IQN, portal, LUN, CHAP user and secret); results and messages
    never contain the secret.
  - O(connections[].state=absent) logs out and deletes the node record. A device that is mounted or held (by
    LVM, dm, ...) is not logged out unless O(force=true).
  - An existing session is left as it is (not changed). When its device is missing (the target got its LUN live,
    after the session was made), the session is rescanned (C(iscsiadm -m node --rescan)) and the module waits for
    the device as after a login.
  - "QoS, as Cinder's front-end QoS: an item with O(connections[].qos) (Cinder's qos spec keys) gets the limits on
    its device in the cgroup v2 C(io.max) of the slice or unit O(connections[].qos_cgroup) (default
    C(system.slice)): every process in that cgroup, together, stays below them. The device's line is written only
    when it differs from the limits wanted, so a second run changes nothing. See the QoS section of
    docs/design.md for the mapping to io.max and what is refused."
  - When the io controller is not enabled for that cgroup, the module runs
    C(systemctl set-property --runtime <qos_cgroup> IOAccounting=yes) (systemd then enables it) and fails if io is
    still missing; a unit without a cgroup (not loaded or not active) or a host without cgroup v2 fails the module
    before any change.
  - "NFS volumes (O(connections[].driver_volume_type=nfs), the C(connection_info) of Cinder's NFS driver -
    O(connections[].data) holds C(export), C(name), C(format) and C(options)): the share is mounted read-write with
    C(options) at C(<mount_point_base>/<first 32 hex digits of the share's SHA-256>) (within a time bound: C(mount)
    under C(timeout), then a C(stat -f) probe, so a server that does not answer fails the item naming the share),
    the file C(volume-<name>) is attached with C(losetup --find --show --direct-io=on) (a loop device already bound
    to it, as C(/sys/block/loop*/loop/backing_file) shows, is reused) and the stable path C(/dev/ember/<volume>) is
    a symlink to the loop device (RV(connections[].device)). A loop device smaller than O(connections[].size_bytes)
    is re-read with C(losetup --set-capacity) (V(resize)). O(connections[].state=absent) detaches the loop device
    (C(losetup --detach), refused when it or a partition of it is mounted, held or open unless O(force) or
    O(connections[].force)), removes the link and unmounts the share when no other loop device uses a file on it.
    Loop devices, links and these mounts do not survive a reboot; the next converge run attaches the volume again."
author: ember.blockstore contributors (@ember-blockstore)
notes:
  - The io.max limits (and a runtime IOAccounting) last until the next reboot; after a reboot the sessions come
    back by themselves (C(node.startup=automatic)) but without limits, until the next run of this module (the
    converge) writes them again.
  - An item without O(connections[].qos) leaves io.max alone; O(connections[].qos={}) clears the device's limits in
    that cgroup (a MAJ:MIN can be reused by another disk, so limits are removed only when asked).
  - A logout needs no io.max change - the limits belong to the disk; when the disk goes away after the logout, the
    kernel drops the limits with it (see docs/design.md).
options:
  connections:
    description: Targets to log in to or out of.
    type: list
    elements: dict
    required: true
    suboptions:
      driver_volume_type:
        description: "C(connection_info)'s C(driver_volume_type) - V(iscsi) (a target to log in to) or V(nfs) (a file on
          an NFS share to attach with a loop device: O(connections[].data))."
        type: str
        choices: [iscsi, nfs]
        default: iscsi
        version_added: 0.3.0
      target_iqn: {description: "Target IQN; required for V(iscsi).", type: str}
      target_portal: {description: "C(ip:port) of the target; required for V(iscsi).", type: str}
      target_portals:
        description:
          - "Every portal of the target (os-brick's C(target_portals)), O(connections[].target_portal) among them.
            With more than one, the module logs in on each, waits for the dm-multipath map that holds the
            sessions' devices (sysfs: a holder C(dm-N) whose C(dm/uuid) starts with C(mpath-)) and returns its
            C(/dev/mapper/<name>) as C(device); multipathd must run (package C(multipath-tools)), else the item
            fails before any change."
          - A logout (O(connections[].state=absent)) always covers every portal the host has a session or node
            record on for the target, and flushes the map over them first (C(multipath -f)).
        type: list
        elements: str
        version_added: 0.3.0
      target_lun: {description: "LUN of the volume (0-16383).", type: int, default: 1}
      auth_method: {description: C(CHAP) or C(None)., type: str, choices: [CHAP, None], default: CHAP}
      auth_username: {description: "CHAP user (1-255 word characters).", type: str}
      auth_password: {description: "CHAP secret (12-255 word characters).", type: str}
      target_auth_username: {description: "Mutual CHAP - the target's CHAP user (1-255 word characters),
                             C(node.session.auth.username_in). Together with
                             O(connections[].target_auth_password).", type: str, version_added: 0.3.0}
      target_auth_password: {description: "Mutual CHAP - the target's CHAP secret (12-255 word characters, not
                             O(connections[].auth_password)), C(node.session.auth.password_in).", type: str,
                             version_added: 0.3.0}
      volume: {description: Volume name (for results)., type: str}
      state: {description: Desired state., type: str, choices: [present, absent], default: present}
      qos:
        description:
          - "Front-end QoS limits of the volume, as Cinder's qos specs: V(read_bytes_sec), V(write_bytes_sec),
            V(read_iops_sec), V(write_iops_sec) (integers of at least 2, or strings of digits as Cinder stores
            them) and optionally V(consumer) (V(front-end) or V(both); V(back-end) is refused: tgt cannot
            throttle)."
          - "Refused, never ignored: V(total_iops_sec) and V(total_bytes_sec) (io.max limits reads and writes
            separately: give the read and write pair), the bursts C(*_sec_max), the capacity-based C(*_per_gb)
            keys, V(size_iops_sec) and any other key."
          - "V({}) removes the device's limits in that cgroup; omitted (null), io.max is not touched. Ignored with
            O(connections[].state=absent)."
        type: dict
      qos_cgroup:
        description:
          - The systemd slice or unit whose cgroup gets the limits (its C(ControlGroup) under /sys/fs/cgroup), e.g.
            V(system.slice), V(machine.slice) or V(app.service). Used only with O(connections[].qos).
        type: str
        default: system.slice
      force:
        description:
          - With O(connections[].state=absent), log out of this target even when its device is mounted, held or
            open (as O(force) does for every item).
        type: bool
        default: false
      size_bytes:
        description:
          - The volume's size in bytes. A logged-in device that is smaller (the volume was extended while attached)
            is rescanned (C(iscsiadm -m node -T ... --rescan), action C(resize)) until the kernel shows this size,
            within O(wait_timeout); the module fails when it does not (the target did not present the new size).
          - Never shrinks anything; a device larger than this is left alone.
        type: int
      data:
        description:
          - "V(nfs) only, and required there - C(connection_info.data) of Cinder's NFS driver: C(export) (the share,
            C(server:/export) with an IP address), C(name) (the file, C(volume-<volume>)), C(format) (V(raw) only)
            and C(options) (the nfs(5) mount options, comma-separated; not V(ro); default
            C(rw,hard,noatime,vers=4.2)). O(connections[].volume) is required with it."
        type: dict
        version_added: 0.3.0
      mount_point_base:
        description: "V(nfs) only. Directory under which the share is mounted, at C(<mount_point_base>/<first 32 hex
          digits of the share's SHA-256>) (the storage node's path for it)."
        type: str
        default: /var/lib/ember-blockstore/mnt
        version_added: 0.3.0
  wait_timeout:
    description: Seconds to wait for the device after login (0-3600).
    type: int
    default: 60
  force:
    description: Log out even when the device is mounted, held (device-mapper, md, LVM on top) or open by a process.
    type: bool
    default: false
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Log in to exported volumes
  ember.blockstore.connection:
    connections: "{{ export.attachments | map(attribute='connection_info') | list }}"
  no_log: true

- name: Log in with Cinder front-end QoS limits on the device, for the processes of system.slice
  ember.blockstore.connection:
    connections:
      - "{{ export.attachments[0].connection_info | combine({'qos': {'read_iops_sec': '500', 'write_iops_sec': '200',
           'write_bytes_sec': 52428800}}) }}"
  no_log: true

- name: Attach an NFS volume (Cinder's NFS connection_info) - /dev/ember/db02-data
  ember.blockstore.connection:
    connections:
      - driver_volume_type: nfs
        volume: db02-data
        data:
          export: "198.18.0.21:/srv/ember-nfs"
          name: volume-db02-data
          format: raw
          options: "rw,hard,noatime,vers=4.2"

- name: Log out of a volume even though it is still mounted (forced)
  ember.blockstore.connection:
    connections:
      - target_iqn: "iqn.2026-11.io.ember.blockstore:volume-old-scratch"
        target_portal: "198.18.0.11:3260"
        state: absent
    force: true
"""

RETURN = r"""
connections:
  description: One result per item, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    volume: {description: Volume name when given., type: str, sample: db01-data}
    driver_volume_type: {description: "V(iscsi) or V(nfs), as the item.", type: str, sample: iscsi,
                         version_added: 0.3.0}
    target_iqn: {description: "Target IQN (null for V(nfs)).", type: str,
                 sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
    target_portal: {description: "Portal (null for V(nfs)).", type: str, sample: "198.18.0.11:3260"}
    action: {description: "V(login), V(rescan) (logged in but the LUN's device was missing), V(resize) (the device
               was smaller than O(connections[].size_bytes); for V(nfs) the loop device re-read), V(update) (logged
               in; the node record's mutual CHAP credentials were updated for the next login), V(logout) or V(none);
               for V(nfs) also V(attach) (the share mounted, a loop device bound, the link made, as needed) and
               V(detach).", type: str, sample: login}
    changed: {description: Whether this item changed., type: bool, sample: true}
    device: {description: "Stable device path: by-path, or with several portals the dm-multipath map's
               C(/dev/mapper/<name>), or for V(nfs) C(/dev/ember/<volume>); null when logged out or detached.",
             type: str,
             sample: "/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-iqn.2026-11.io.ember.blockstore:volume-db01-data-\
               lun-1"}
    real_device: {description: "Kernel device (/dev/sdX, or /dev/dm-N for a dm-multipath map, or the loop device
                    /dev/loopN of an V(nfs) volume); null in check mode before an attach or when logged out.",
                  type: str, sample: /dev/sda}
    qos:
      description: "The io.max limits applied to the device (V(rbps), V(wbps), V(riops), V(wiops); only those set,
        V({}) none); null when the item has no O(connections[].qos) or is absent."
      type: dict
      sample: {riops: 500, wiops: 200, wbps: 52428800}
    qos_changed: {description: Whether the device's io.max line was (or in check mode would be) written., type: bool,
                  sample: false}
    size_bytes: {description: "Size of the device in bytes as the kernel shows it (after a resize, the new size);
                   null when there is no device.", type: int, sample: 1073741824}
    paths: {description: "The by-path device of each portal (one with a single portal); with several, C(device) is
              the dm-multipath map over them.", type: list, elements: str, version_added: 0.3.0,
            sample: ["/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-iqn.2026-11.io.ember.blockstore:volume-db01-data-\
              lun-1", "/dev/disk/by-path/ip-198.18.1.11:3260-iscsi-iqn.2026-11.io.ember.blockstore:volume-db01-data-\
              lun-1"]}
    multipath: {description: "Name of the dm-multipath map (C(/dev/mapper/<name>), the WWID with
                  C(user_friendly_names no)) the volume is used through (a logout: the map flushed); null without
                  one.", type: str, version_added: 0.3.0, sample: 36a5bd2c80e8890de377e9ef5b5a1c7d7}
    export: {description: "The share of an V(nfs) item, C(server:/export) (null for V(iscsi)).", type: str,
             version_added: 0.3.0, sample: "198.18.0.21:/srv/ember-nfs"}
    mount_point: {description: "Where the share of an V(nfs) item is mounted (null for V(iscsi)).", type: str,
                  version_added: 0.3.0, sample: /var/lib/ember-blockstore/mnt/95333d527be211dcd23fd669dd426d51}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._connection import (
    ITEM_OPTIONS,
    ConnectionApplier,
    decide,
    read_host,
    secrets_of_state,
    validate,
)
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_connection import (
    NfsConnectionApplier,
    decide_nfs,
    is_nfs,
    read_nfs,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import Iscsiadm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import Nfs, NfsError

RESULT_KEYS = ("volume", "driver_volume_type", "target_iqn", "target_portal", "action", "changed", "device",
               "real_device", "qos", "qos_changed", "size_bytes", "paths", "multipath", "export", "mount_point")
# What an iSCSI item returns for the keys of the NFS ones.
ISCSI_DEFAULTS = {"driver_volume_type": "iscsi", "export": None, "mount_point": None}


def result_of(act):
    return {key: act[key] if key in act else ISCSI_DEFAULTS.get(key) for key in RESULT_KEYS}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connections=dict(type="list", elements="dict", required=True, options=ITEM_OPTIONS),
            wait_timeout=dict(type="int", default=60),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = Runner(module, lock=True)
    iscsi = Iscsiadm(runner)
    errors = validate(params["connections"], check_mode=module.check_mode)
    if not 0 <= params["wait_timeout"] <= 3600:
        errors.append("wait_timeout: %r is not a number of seconds from 0 to 3600" % params["wait_timeout"])
    if errors:
        module.fail_json(msg="; ".join(errors), connections=[])
    # A failing item keeps the changed its decision said (a login may have happened before its device timed out).
    batch = Batch(module, "connections", result_of, describe, failed_changed=None)
    # iSCSI items as before (open-iscsi is read only when there are some); NFS items (driver_volume_type nfs) are
    # mounted and attached with a loop device (_nfs_connection).
    nfs_indexes = [index for index, item in enumerate(batch.items) if is_nfs(item)]
    iscsi_items = [item for index, item in enumerate(batch.items) if index not in nfs_indexes]
    by_index, errors = {}, []
    if iscsi_items:
        state = read_state(module, lambda: read_host(iscsi, iscsi_items))
        module.no_log_values.update(secrets_of_state(state))  # target secrets read from node records
        iscsi_actions, errors = decide(iscsi_items, state, force=params["force"], field=batch.field,
                                       check_mode=module.check_mode)
        by_index.update(zip([i for i in range(len(batch.items)) if i not in nfs_indexes], iscsi_actions))
    nfs = Nfs(runner)
    if nfs_indexes:
        try:
            nfs_state = read_state(module, lambda: read_nfs(nfs, [batch.items[i] for i in nfs_indexes]))
        except NfsError as exc:
            batch.fail(str(exc), **exc.context())
        by_index.update((i, decide_nfs(batch.items[i], nfs_state, force=params["force"])) for i in nfs_indexes)
    actions = batch.decided([by_index[index] for index in sorted(by_index)], errors)
    applier = ConnectionApplier(iscsi, params["wait_timeout"], module.warn, force=params["force"])
    nfs_applier = NfsConnectionApplier(nfs)
    results = batch.apply_each(actions, lambda act: (nfs_applier if is_nfs(act) else applier).apply(act))
    module.exit_json(changed=batch.changed(results), connections=results)


def describe(act):
    if is_nfs(act):
        return "NFS volume %s (share %s)" % (act["volume"], act["export"])
    return "connection to %s" % act["target_iqn"]


if __name__ == "__main__":
    main()
