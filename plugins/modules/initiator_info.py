#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: initiator_info
short_description: Report a consumer's iSCSI initiator, its sessions and node records
version_added: 0.2.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - The consumer side of the gather phase, in one module run. Reads the initiator name from
    C(/etc/iscsi/initiatorname.iscsi), whether iscsid runs, the open-iscsi sessions and node records, and the stable
    device path of LUN 1 of each session.
  - The C(blockstore) role runs the C(iscsi_initiator) role only when this shows something missing, and logs in
    only to the volumes that have no session yet, so a consumer with nothing to change costs this one module run.
  - "The NFS volumes attached here (issue 14): each link C(/dev/ember/<volume>) to a loop device bound to a file
    (C(/sys/block/loop*/loop/backing_file): sysfs only, the NFS server is never asked, so a share that does not
    answer cannot block the gather), with the loop device's size, so that the role attaches or re-reads
    (after an extend) only what is missing."
  - Read-only; never reports C(changed).
extends_documentation_fragment:
  - ember.blockstore.attributes
  - ember.blockstore.attributes.info_module
options:
  initiator_name_file:
    description: Where open-iscsi keeps the initiator name.
    type: path
    default: /etc/iscsi/initiatorname.iscsi
"""

EXAMPLES = r"""
- name: Read the consumer's iSCSI state
  ember.blockstore.initiator_info:
  register: consumer
"""

RETURN = r"""
installed:
  description: Whether open-iscsi (iscsiadm) is installed.
  type: bool
  returned: always
initiator_iqn:
  description: The initiator name in the file, or an empty string when there is none.
  type: str
  returned: always
  sample: iqn.1993-08.org.debian:01:d53fc39a07f1
iscsid_running:
  description: Whether the iscsid daemon runs (its pid file names a live process).
  type: bool
  returned: always
sessions:
  description: Logged-in sessions.
  type: list
  elements: dict
  returned: always
  contains:
    target_iqn: {description: Target IQN., type: str}
    portal: {description: "C(ip:port) as iscsiadm shows it.", type: str}
    device: {description: "Stable path of LUN 1 when it exists, else null.", type: str}
    size_bytes:
      description: "Size of LUN 1's device as the kernel sees it (bytes; null without a device): after a volume
        grew, smaller than the volume until the session is rescanned."
      type: int
    multipath:
      description: "Name of the dm-multipath map that holds LUN 1's device (a holder whose C(dm/uuid) starts with
        C(mpath-)), or null: the blockstore role logs in again to a volume of a node with several portals until
        every portal has a session in one map."
      type: str
      version_added: 0.3.0
multipathd_running:
  description: Whether multipathd runs (its pid file names a live process).
  type: bool
  returned: always
  version_added: 0.3.0
multipath_configured:
  description: Whether the iscsi_initiator role's dm-multipath settings are there
    (C(/etc/multipath/conf.d/ember-blockstore.conf)).
  type: bool
  returned: always
  version_added: 0.3.0
nfs_attachments:
  description: NFS volumes attached with a loop device (the M(ember.blockstore.connection) module's
    C(/dev/ember/<volume>) links).
  type: list
  elements: dict
  returned: always
  version_added: 0.3.0
  contains:
    volume: {description: Volume name (the link's name)., type: str, sample: db03-data}
    device: {description: "The stable path, C(/dev/ember/<volume>).", type: str, sample: /dev/ember/db03-data}
    loop_device: {description: The loop device the link points to., type: str, sample: /dev/loop0}
    backing_file: {description: "The file it is bound to, C(<mount point>/volume-<name>).", type: str,
                   sample: /var/lib/ember-blockstore/mnt/95333d527be211dcd23fd669dd426d51/volume-db03-data}
    share_hash: {description: "The mount point's directory name, the first 32 hex digits of the share's SHA-256.",
                 type: str, sample: 95333d527be211dcd23fd669dd426d51}
    size_bytes: {description: The loop device's size as the kernel shows it (bytes)., type: int, sample: 268435456}
nodes:
  description: Node records (targets the consumer logs in to at boot).
  type: list
  elements: dict
  returned: always
  contains:
    target_iqn: {description: Target IQN., type: str}
    portal: {description: "C(ip:port).", type: str}
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_connection import attached_volumes
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    Iscsiadm,
    device_path,
    device_size,
    multipath_map,
    multipathd_running,
)

# The iscsi_initiator role's dm-multipath settings (blockstore_multipath).
MULTIPATH_DROPIN = "/etc/multipath/conf.d/ember-blockstore.conf"
PID_FILES = ("/run/iscsid.pid", "/var/run/iscsid.pid")


def read_initiator_name(path):
    """The ``InitiatorName=`` value of ``path``, or ``""``."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        return ""
    match = re.search(r"(?m)^InitiatorName=(\S+)\s*$", text)
    return match.group(1) if match else ""


def iscsid_running(pid_files=None):
    for path in pid_files or PID_FILES:
        try:
            with open(path) as handle:
                pid = int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if os.path.exists("/proc/%d" % pid):
            return True
    return False


def main():
    module = AnsibleModule(argument_spec=dict(initiator_name_file=dict(type="path",
                                                                       default="/etc/iscsi/initiatorname.iscsi")),
                           supports_check_mode=True)
    if not module.get_bin_path("iscsiadm"):
        module.exit_json(changed=False, installed=False, initiator_iqn="", iscsid_running=False, sessions=[],
                         nodes=[], multipathd_running=multipathd_running(),
                         multipath_configured=os.path.exists(MULTIPATH_DROPIN), nfs_attachments=attached_volumes())
    iscsi = Iscsiadm(Runner(module))
    try:
        sessions = iscsi.sessions()
        nodes = iscsi.nodes()
    except CommandError as exc:
        module.fail_json(msg=str(exc), **exc.context())
    out = []
    for session in sessions:
        path = device_path(session["portal"], session["target_iqn"], 1)
        exists = os.path.exists(path)
        found = multipath_map([os.path.realpath(path)]) if exists else None
        out.append({"target_iqn": session["target_iqn"], "portal": session["portal"],
                    "device": path if exists else None,
                    "size_bytes": device_size(os.path.realpath(path)) if exists else None,
                    "multipath": found["name"] if found else None})
    name = read_initiator_name(module.params["initiator_name_file"])
    module.exit_json(changed=False, installed=True, initiator_iqn=name, iscsid_running=iscsid_running(), sessions=out,
                     nodes=[{"target_iqn": n["target_iqn"], "portal": n["portal"]} for n in nodes],
                     multipathd_running=multipathd_running(), multipath_configured=os.path.exists(MULTIPATH_DROPIN),
                     nfs_attachments=attached_volumes())


if __name__ == "__main__":
    main()
