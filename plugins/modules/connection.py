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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._address import portal as valid_portal
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    validate_chap_secret,
    validate_chap_username,
    validate_iqn,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    NODE_DIRS,
    Iscsiadm,
    device_in_use,
    device_path,
    normalize_portal,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import PENDING_SECRET


def validate(connections, field="connections", check_mode=False):
    """Errors (naming the field) for any value that would reach iscsiadm's command line or a node record."""
    errors = []
    for index, item in enumerate(connections):
        where = "%s[%d]" % (field, index)
        try:
            validate_iqn(item["target_iqn"], where + ".target_iqn")
            valid_portal(item["target_portal"], where + ".target_portal")
            if not 0 <= item["target_lun"] <= 16383:
                raise NameError_("%s.target_lun: %r is not a LUN (0-16383)" % (where, item["target_lun"]))
            if item.get("volume") is not None:
                validate_volume_name(item["volume"], where + ".volume")
            if item["auth_username"] is not None:
                validate_chap_username(item["auth_username"], where + ".auth_username")
            # In check mode the attachment module returns a placeholder for a secret it has not generated yet;
            # nothing logs in with it.
            if item["auth_password"] is not None and not (check_mode and item["auth_password"] == PENDING_SECRET):
                validate_chap_secret(item["auth_password"], where + ".auth_password")
        except NameError_ as exc:
            errors.append(str(exc))
            continue
        if item["state"] == "present" and item["auth_method"] == "CHAP" and not (
                item["auth_username"] and item["auth_password"]):
            errors.append("%s: auth_username and auth_password are required for CHAP (target %s)"
                          % (where, item["target_iqn"]))
    return errors


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connections=dict(type="list", elements="dict", required=True, options=dict(
                target_iqn=dict(type="str", required=True),
                target_portal=dict(type="str", required=True),
                target_lun=dict(type="int", default=1),
                auth_method=dict(type="str", choices=["CHAP", "None"], default="CHAP"),
                auth_username=dict(type="str"),
                auth_password=dict(type="str", no_log=True),
                volume=dict(type="str"),
                state=dict(type="str", choices=["present", "absent"], default="present"),
            )),
            wait_timeout=dict(type="int", default=60),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    runner = Runner(module, lock=True)
    iscsi = Iscsiadm(runner)
    errors = validate(module.params["connections"], check_mode=module.check_mode)
    if not 0 <= module.params["wait_timeout"] <= 3600:
        errors.append("wait_timeout: %r is not a number of seconds from 0 to 3600" % module.params["wait_timeout"])
    if errors:
        module.fail_json(msg="; ".join(errors), connections=[])
    try:
        sessions = {(s["target_iqn"], s["portal"]) for s in iscsi.sessions()}
        nodes = {(n["target_iqn"], n["portal"]) for n in iscsi.nodes()}
    except CommandError as exc:
        module.fail_json(msg=str(exc), **exc.context())

    results = []
    for item in module.params["connections"]:
        portal = normalize_portal(item["target_portal"])
        key = (item["target_iqn"], portal)
        path = device_path(portal, item["target_iqn"], item["target_lun"])
        res = {"volume": item["volume"], "target_iqn": item["target_iqn"], "target_portal": portal,
               "action": "none", "changed": False, "device": None, "real_device": None}
        try:
            if item["state"] == "present":
                res["device"] = path
                if key in sessions and not os.path.exists(path):
                    # Logged in, but the LUN is not there (it was added to the target live): rescan the session.
                    res.update(action="rescan", changed=True)
                    if not module.check_mode:
                        iscsi.rescan(item["target_iqn"], portal)
                if key not in sessions:
                    res.update(action="login", changed=True)
                    if not module.check_mode:
                        via = iscsi.login(item["target_iqn"], portal, item["auth_username"], item["auth_password"],
                                          item["auth_method"])
                        if via == "argv":
                            module.warn("the node record of %s was not found under %s: the CHAP secret was passed "
                                        "on iscsiadm's command line" % (item["target_iqn"], " or ".join(NODE_DIRS)))
                if not module.check_mode or key in sessions:
                    real = iscsi.wait_for_device(path, module.params["wait_timeout"] if not module.check_mode
                                                 else 0)
                    if real is None and not module.check_mode:
                        raise RuntimeError("logged in to %s but %s did not appear within %d s"
                                           % (item["target_iqn"], path, module.params["wait_timeout"]))
                    res["real_device"] = real
            elif key in sessions or key in nodes:
                res.update(action="logout", changed=True)
                if key in sessions and os.path.exists(path) and not module.params["force"]:
                    users = device_in_use(os.path.realpath(path))
                    if users:
                        raise RuntimeError("%s (%s) is in use (%s); unmount it first or set force: true"
                                           % (path, item["target_iqn"], ", ".join(users)))
                if not module.check_mode:
                    if key in sessions:
                        iscsi.logout(item["target_iqn"], portal)
                    iscsi.delete_node(item["target_iqn"], portal)
        except (CommandError, RuntimeError) as exc:
            results.append(dict(res, failed=True))
            extra = exc.context() if isinstance(exc, CommandError) else {}
            module.fail_json(msg="connection to %s: %s" % (item["target_iqn"], exc), connections=results, **extra)
        results.append(res)
    module.exit_json(changed=any(r["changed"] for r in results), connections=results)


if __name__ == "__main__":
    main()
