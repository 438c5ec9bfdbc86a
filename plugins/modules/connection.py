#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: connection
short_description: Log a consumer in to (or out of) exported volumes over iSCSI
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
  - Every field is validated before any command (IQN, portal, LUN, CHAP user and secret); results and messages
    never contain the secret.
  - O(connections[].state=absent) logs out and deletes the node record. A device that is mounted or held (by
    LVM, dm, ...) is not logged out unless O(force=true).
  - An existing session is left as it is (not changed). When its device is missing (the target got its LUN live,
    after the session was made), the session is rescanned (C(iscsiadm -m node --rescan)) and the module waits for
    the device as after a login.
author: ember.blockstore contributors (@ember-blockstore)
options:
  connections:
    description: Targets to log in to or out of.
    type: list
    elements: dict
    required: true
    suboptions:
      target_iqn: {description: Target IQN., type: str, required: true}
      target_portal: {description: "C(ip:port) of the target.", type: str, required: true}
      target_lun: {description: "LUN of the volume (0-16383).", type: int, default: 1}
      auth_method: {description: C(CHAP) or C(None)., type: str, choices: [CHAP, None], default: CHAP}
      auth_username: {description: "CHAP user (1-255 word characters).", type: str}
      auth_password: {description: "CHAP secret (12-255 word characters).", type: str}
      volume: {description: Volume name (for results)., type: str}
      state: {description: Desired state., type: str, choices: [present, absent], default: present}
  wait_timeout:
    description: Seconds to wait for the device after login (0-3600).
    type: int
    default: 60
  force:
    description: Log out even when the device is mounted or held.
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
    target_iqn: {description: Target IQN., type: str, sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
    target_portal: {description: Portal., type: str, sample: "198.18.0.11:3260"}
    action: {description: "V(login), V(rescan) (logged in but the LUN's device was missing), V(logout) or V(none).",
             type: str, sample: login}
    changed: {description: Whether this item changed., type: bool, sample: true}
    device: {description: Stable device path (by-path); null when logged out., type: str,
             sample: "/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-iqn.2026-11.io.ember.blockstore:volume-db01-data-\
               lun-1"}
    real_device: {description: Kernel device (/dev/sdX); null in check mode or when logged out., type: str,
                  sample: /dev/sda}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._connection import (
    ITEM_OPTIONS,
    ConnectionApplier,
    decide,
    read_host,
    validate,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import Iscsiadm

RESULT_KEYS = ("volume", "target_iqn", "target_portal", "action", "changed", "device", "real_device")


def result_of(act):
    return {key: act[key] for key in RESULT_KEYS}


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
    batch = Batch(module, "connections", result_of, lambda act: "connection to %s" % act["target_iqn"],
                  failed_changed=None)
    state = read_state(module, lambda: read_host(iscsi, batch.items))
    actions = batch.decided(*decide(batch.items, state, force=params["force"]))
    applier = ConnectionApplier(iscsi, params["wait_timeout"], module.warn)
    results = batch.apply_each(actions, applier.apply)
    module.exit_json(changed=batch.changed(results), connections=results)


if __name__ == "__main__":
    main()
