#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attachment_info
short_description: Report the project's iSCSI exports and connections as the storage node and the consumer see them
version_added: 0.3.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - "The storage view (a storage node): one item per target of the project: each target file
    C(/etc/tgt/conf.d/ember-volume-<name>.conf) that carries the project's header, and each live tgt target whose
    IQN starts with O(target_prefix) but has no such file (RV(storage[].managed=false)). Reads the files and, when
    tgtd runs, C(tgtadm --op show) for the targets and C(tgtadm --op show --mode portal) for the portals. It
    reports the LUN, the ACL, the initiators the file records, the CHAP user (never a secret), the sessions and
    whether the live target is what its file says."
  - "The consumer view (a consumer): one item per open-iscsi session or node record of a target whose IQN starts
    with O(target_prefix), from C(iscsiadm -m session) and C(iscsiadm -m node), with the device (the
    C(/dev/disk/by-path/) link of LUN 1), its size and users from sysfs and C(/proc/mounts), and the dm-multipath
    map that holds it, if any, with the state of each path (SCSI device state from sysfs, path state in the map
    from C(dmsetup status <map>); the C(multipath) command is not used)."
  - A missing tool is not an error; RV(messages) says what was not read and why.
  - Read-only; never reports C(changed). Commands run as argument lists, never through a shell.
extends_documentation_fragment:
  - ember.blockstore.attributes
  - ember.blockstore.attributes.info_module
options:
  volume:
    description: Report only the exports and connections of these volumes (names as in the inventory). All of the
      project's when omitted.
    type: list
    elements: str
  view:
    description:
      - Which side to report.
      - "V(auto): the storage view when C(tgtadm) is installed and tgtd runs or target files of the project exist,
        the consumer view when C(iscsiadm) is installed; both when both."
      - "V(storage) or V(consumer): that view only; when its tool is missing the view is empty and RV(messages)
        says why."
    type: str
    choices: [auto, storage, consumer]
    default: auto
  target_prefix:
    description:
      - IQN prefix of the project's targets, as the other modules take it; validated. A target file of the
        project is reported whatever its IQN; live targets without a file, sessions and node records only when
        their IQN starts with it.
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
seealso:
  - module: ember.blockstore.attachment
  - module: ember.blockstore.connection
  - module: ember.blockstore.initiator_info
  - module: ember.blockstore.volume_info
"""

EXAMPLES = r"""
- name: Report the exports of a storage node and the connections of a consumer
  ember.blockstore.attachment_info:
  register: att

- name: Fail when a live target differs from its file
  ansible.builtin.assert:
    that: att.storage | rejectattr('file_matches_live', 'equalto', true) | list | length == 0
    fail_msg: "{{ att.storage | rejectattr('file_matches_live', 'equalto', true) | map(attribute='problems') }}"

- name: Report one volume's connection on a consumer
  ember.blockstore.attachment_info:
    volume: [db01-data]
    view: consumer
  register: db01

- name: Fail when a multipath path is not active
  ansible.builtin.assert:
    that: >-
      db01.consumer | selectattr('multipath') | map(attribute='multipath.paths') | flatten
      | rejectattr('dm_state', 'equalto', 'active') | list | length == 0
"""

RETURN = r"""
views:
  description: The views read, V(storage) and/or V(consumer).
  returned: always
  type: list
  elements: str
  sample: [storage]
messages:
  description: What was not read and why (a missing tool, tgtd not running); empty when everything was read.
  returned: always
  type: list
  elements: str
  sample: ["iscsiadm is not installed: no consumer view"]
storage:
  description: The project's targets on this storage node, sorted by target IQN; empty without the storage view.
  returned: always
  type: list
  elements: dict
  contains:
    volume: {description: "Volume name (from the file name, else the IQN C(<prefix>volume-<name>)); null when
                           neither names one.", type: str, sample: db01-data}
    target_iqn: {description: Target IQN., type: str, sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
    managed: {description: "Whether a target file with the project's header describes the target; false for a
                            live target in the project's namespace without one (the modules never change it).",
              type: bool, sample: true}
    conf_path: {description: Path of the target file; null when not managed., type: str,
                sample: /etc/tgt/conf.d/ember-volume-db01-data.conf}
    live:
      description: Whether tgtd has the target now (false when tgtd does not run).
      type: bool
      sample: true
    tid: {description: tgt target id; null when not live., type: int, sample: 1}
    state: {description: "tgt's state of the target (V(ready), V(offline)); null when not live.", type: str,
            sample: ready}
    portals: {description: "The portals tgtd listens on (C(address:port)), the same for every target; empty when
                            tgtd does not run.", type: list, elements: str, sample: ["198.18.0.11:3260"]}
    lun: {description: LUN of the volume in the target (always 1; LUN 0 is tgt's controller)., type: int,
          sample: 1}
    backing_store: {description: "Backing store of LUN 1: the live target's, else the file's; null when the live
                                  target has no LUN 1.", type: str, sample: /dev/ember-thin/volume-db01-data}
    size_bytes: {description: "Size of LUN 1 in bytes as tgtadm shows it: a whole number of megabytes of 10^6 bytes,
                               so within about 1 MB of the exact size; null when not live.", type: int,
                 sample: 1074000000}
    backing_size_bytes: {description: "Exact size in bytes of the backing store on this node (sysfs); null when it
                                       cannot be read.", type: int, sample: 1073741824}
    acl:
      description: "The ACL: initiator addresses (and names, or V(ALL)) the live target admits, else those the
        file binds."
      type: list
      elements: str
      sample: [198.18.0.21]
    initiators: {description: "Initiator IQNs the file records (C(# initiator-name) lines); empty without a
                               file.", type: list, elements: str, sample: ["iqn.1993-08.org.debian:01:ed703fed4dfd"]}
    chap_username: {description: "CHAP user the initiators log in with (the file's C(incominguser), else the live
                                   target's incoming account); null when none. Never a secret.", type: str,
                    sample: ember_db01_data_c6f08c3f}
    mutual_chap: {description: "Whether the file has an C(outgoinguser) line or the live target an outgoing
                                account (mutual CHAP).", type: bool, sample: false}
    sessions:
      description: One item per I_T nexus (iSCSI session) of the live target.
      type: list
      elements: dict
      contains:
        nexus: {description: tgt's I_T nexus id., type: int, sample: 1}
        initiator: {description: Initiator IQN., type: str, sample: "iqn.1993-08.org.debian:01:ed703fed4dfd"}
        alias: {description: Initiator alias; null when it sends none., type: str, sample: client1}
        addresses: {description: IP address of each connection of the session., type: list, elements: str,
                    sample: [198.18.0.21]}
    file_matches_live: {description: "Whether the live target is what its file says (LUN 1 backing store, ACL,
                                       incoming and outgoing CHAP users); false when not live; null without a
                                       file.", type: bool, sample: true}
    problems: {description: "What differs between the file and the live target (empty when they match), or why
                             the target is not the project's.", type: list, elements: str, sample: []}
consumer:
  description: The project's sessions and node records on this consumer, sorted by target IQN and portal; empty
    without the consumer view.
  returned: always
  type: list
  elements: dict
  contains:
    volume: {description: "Volume name from the IQN (C(<prefix>volume-<name>)); null when it names none.",
             type: str, sample: db01-data}
    target_iqn: {description: Target IQN., type: str, sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
    portal: {description: "Portal, C(address:port) (C([address]:port) for IPv6).", type: str,
             sample: "198.18.0.11:3260"}
    logged_in: {description: Whether a session to the target through the portal exists., type: bool, sample: true}
    node_record: {description: Whether open-iscsi has a node record for the target and portal., type: bool,
                  sample: true}
    device:
      description: "The C(/dev/disk/by-path/) link of LUN 1; null when it does not exist."
      type: str
      sample: "/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-iqn.2026-11.io.ember.blockstore:volume-db01-data-lun-1"
    real_device: {description: The kernel device the link points to; null without a device., type: str,
                  sample: /dev/sdb}
    size_bytes: {description: "Size of the device in bytes (sysfs C(size) x 512); null without a device.",
                 type: int, sample: 1073741824}
    in_use:
      description: Mount points of the device or its partitions, and C(holder:<device>) for each device-mapper
        or LVM holder of it.
      type: list
      elements: str
      sample: [/srv/db]
    multipath:
      description: The dm-multipath map that holds the device; null when none does.
      type: dict
      contains:
        name: {description: Map name., type: str, sample: mpatha}
        device: {description: "C(/dev/mapper/<name>).", type: str, sample: /dev/mapper/mpatha}
        dm_device: {description: "C(/dev/dm-<n>).", type: str, sample: /dev/dm-0}
        in_use: {description: "Mount points and holders of the map, as RV(consumer[].in_use).", type: list,
                 elements: str, sample: [/srv/db]}
        paths:
          description: One item per path (SCSI device) of the map.
          type: list
          elements: dict
          contains:
            device: {description: The path's device., type: str, sample: /dev/sdb}
            state: {description: "SCSI device state from sysfs (V(running), V(offline), V(blocked),
                                  V(transport-offline), ...); null when unreadable.", type: str, sample: running}
            dm_state: {description: "State of the path in the map, V(active) or V(failed); null when the map's
                                     status was not read (see RV(consumer[].multipath.dm_status_error)).",
                       type: str, sample: active}
            failures: {description: Fail count of the path in the map; null when not read., type: int, sample: 0}
            group_state: {description: "State of the path's priority group, V(active), V(enabled) or
                                        V(disabled); null when not read.", type: str, sample: active}
        dm_status_error:
          description: Why the map's status was not read (C(dmsetup) missing or failing); null when it was.
          type: str
          sample: null
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._attachment_info import (
    consumer_records,
    consumer_view,
    parse_show_details,
    read_block_facts,
    storage_view,
)
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import read_conf_files
from ansible_collections.ember.blockstore.plugins.module_utils._batch import read_state
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    validate_target_prefix,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import Iscsiadm, device_in_use
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import HEADER, Tgt, parse_show

SHOW = ["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"]


def real_device(path):
    return os.path.realpath(path) if os.path.exists(path) else None


def backing_size(path):
    real = real_device(path)
    return read_block_facts(os.path.basename(real))["size_bytes"] if real else None


def read_storage(module, runner, view, prefix, names, messages):
    """The storage items, or None when this is not a storage node (``view`` auto)."""
    if not module.get_bin_path("tgtadm"):
        if view == "storage":
            messages.append("tgtadm is not installed: no storage view")
        return None
    try:
        files = read_conf_files()
    except OSError as exc:
        module.fail_json(msg="cannot read the target files: %s" % exc)
    tgt = Tgt(runner)
    running = tgt.running()
    if view == "auto" and not running and not any(text.startswith(HEADER) for text in files.values()):
        return None
    live, details, portals = {}, {}, []
    if running:
        (_rc, out, _err), portals = read_state(module, lambda: (runner.run(SHOW), tgt.portals()))
        live, details = parse_show(out), parse_show_details(out)
    else:
        messages.append("tgtd is not running: targets are reported from their files only (live: false)")
    return storage_view(files, live, details, portals, prefix, names, backing_size=backing_size)


def read_consumer(module, runner, view, prefix, names, messages):
    """The consumer items, or None when this is not a consumer (``view`` auto)."""
    if not module.get_bin_path("iscsiadm"):
        if view == "consumer":
            messages.append("iscsiadm is not installed: no consumer view")
        return None
    iscsi = Iscsiadm(runner)
    sessions, nodes = read_state(module, lambda: (iscsi.sessions(), iscsi.nodes()))
    dmsetup = module.get_bin_path("dmsetup")

    def dm_status(name):
        if not dmsetup:
            return None, "dmsetup is not installed: the paths' states in the map are not read"
        if name.startswith("-"):
            return None, "map name %r is not read" % name
        rc, out, err = runner.run(["dmsetup", "status", name], check=False)
        if rc != 0:
            return None, "dmsetup status %s failed (rc=%s): %s" % (name, rc, (err or out).strip())
        return out, None

    records = consumer_records(sessions, nodes, prefix, names)
    return consumer_view(records, real_device, device_in_use, dm_status)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            volume=dict(type="list", elements="str"),
            view=dict(type="str", choices=["auto", "storage", "consumer"], default="auto"),
            target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        validate_target_prefix(params["target_prefix"])
        names = None
        if params["volume"] is not None:
            names = {validate_volume_name(n, "volume[%d]" % i) for i, n in enumerate(params["volume"])}
    except (NameError_, ValueError) as exc:
        module.fail_json(msg=str(exc))
    runner = Runner(module)
    messages, views = [], []
    storage = consumer = None
    if params["view"] in ("auto", "storage"):
        storage = read_storage(module, runner, params["view"], params["target_prefix"], names, messages)
    if params["view"] in ("auto", "consumer"):
        consumer = read_consumer(module, runner, params["view"], params["target_prefix"], names, messages)
    if storage is not None:
        views.append("storage")
    if consumer is not None:
        views.append("consumer")
    if not views and params["view"] == "auto":
        messages.append("neither tgtadm (with tgtd running or target files of the project) nor iscsiadm is "
                        "here: nothing to report")
    module.exit_json(changed=False, views=views, messages=messages, storage=storage or [], consumer=consumer or [])


if __name__ == "__main__":
    main()
