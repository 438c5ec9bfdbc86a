#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attachment
short_description: Export volumes over iSCSI (tgt) to named initiators with CHAP
version_added: 0.1.0
description:
  - The storage-node side of an attach, as Cinder's tgt target helper does it. Each volume gets its own target
    C(<target_prefix>volume-<name>) with the LV as LUN 1, an ACL of the consumers' storage addresses, and a
    per-volume CHAP account. The consumers' initiator IQNs are recorded in the file (as comments) and reported.
  - Why addresses and not names - measured on tgt 1.0.85 (Debian 12) - a login is admitted when its address
    B(or) its initiator name is in the ACL, and C(tgt-admin) binds every address when a file lists none. Name
    entries would admit anyone presenting the consumer's (public) IQN; so at least one address is required and
    names are not bound.
  - The target is written to C(/etc/tgt/conf.d/ember-volume-<name>.conf) (mode 0600, it holds the secret) and
    applied with C(tgt-admin --update), so a tgt restart or a reboot keeps it.
  - The CHAP password comes from O(attachments[].chap_password) (at least 12 word characters) or is generated
    once (32 random letters and digits, 190 bits) and read back from the file on later runs.
  - "Mutual CHAP, with O(attachments[].mutual_chap=true): the target proves itself to the consumer too (tgt's
    C(outgoinguser)), with its own user (O(attachments[].target_chap_username), default
    C(ember_<volume>_<8 hex>_target)) and secret (O(attachments[].target_chap_password), generated once like the
    initiator's and kept in the same root-only file). The two users and the two secrets must differ (RFC 3720
    8.2.1; open-iscsi refuses a target that answers with the initiator's secret). Turning it on or off, or changing
    the target's user or secret, reloads the target: refused while initiators are logged in unless O(force=true)."
  - Only targets whose file carries the project's marker (the C(# Managed by ember.blockstore) header naming the
    target) are changed or removed. A live target, or a file at the volume's path, with the volume's IQN but
    without the marker is a clash; the module fails before any change and leaves it alone.
  - Changes are made in an order that never admits more than before (the live ACL is narrowed before it is
    widened; a target whose CHAP account must change is deleted before its account) and the live target is read
    back after every change. If it lacks its CHAP account, its ACL is emptied (tgtd then admits nobody) and the
    module fails.
  - A live target that is as its file says but has no LUN 1 (tgtd loaded it before its LV was active) gets the
    LUN added live (C(tgtadm --op new --mode logicalunit)); logged-in sessions stay and
    M(ember.blockstore.connection) rescans them. Any other difference needs a reload, and the error says which.
  - C(state=absent) removes the live target and its file. A target with logged-in initiators is not removed or
    reloaded unless O(force=true); log the consumer out first (M(ember.blockstore.connection)).
  - Returns C(connection_info) per volume for M(ember.blockstore.connection). It contains the CHAP password (the
    only place a secret is returned; every message and failure masks it), so register the result with
    C(no_log) in playbooks that print results.
author: ember.blockstore contributors (@ember-blockstore)
options:
  attachments:
    description: Exports to manage in one run. Mutually exclusive with O(volume).
    type: list
    elements: dict
    suboptions:
      volume: {description: Volume name., type: str, required: true}
      vg: {description: Volume group of the volume., type: str, required: true}
      initiators: {description: "Initiator IQNs of the consumers (recorded with the export, reported as
                   C(attached_to)); at least one when O(attachments[].state=present).", type: list, elements: str,
                   default: []}
      initiator_addresses: {description: "Consumer host addresses allowed to log in: the ACL (an IPv6 zone id only
                            of interface-name characters). A network only with O(allow_networks). At least one when
                            O(attachments[].state=present).", type: list, elements: str, default: []}
      chap_username: {description: "CHAP user (1-255 word characters); default
                      C(ember_<volume>_<8 hex of its sha256>). Each export needs its own (tgt accounts are
                      global).", type: str}
      chap_password: {description: "CHAP secret (12-255 word characters); generated once when omitted.",
                      type: str}
      mutual_chap: {description: "Mutual CHAP: the target also authenticates itself to the consumer with
                    O(attachments[].target_chap_username) and O(attachments[].target_chap_password).", type: bool,
                    default: false, version_added: 0.3.0}
      target_chap_username: {description: "With O(attachments[].mutual_chap), the target's CHAP user (tgt's
                             C(outgoinguser), 1-255 word characters, not the initiator's); default
                             C(ember_<volume>_<8 hex of its sha256>_target). Each export needs its own.", type: str,
                             version_added: 0.3.0}
      target_chap_password: {description: "With O(attachments[].mutual_chap), the target's CHAP secret (12-255 word
                             characters, not the initiator's); generated once when omitted.", type: str,
                             version_added: 0.3.0}
      state: {description: Desired state., type: str, choices: [present, absent], default: present}
  volume: {description: Single form; see O(attachments)., type: str}
  vg: {description: Single form; see O(attachments)., type: str}
  initiators: {description: Single form; see O(attachments)., type: list, elements: str, default: []}
  initiator_addresses: {description: Single form; see O(attachments)., type: list, elements: str, default: []}
  chap_username: {description: Single form; see O(attachments)., type: str}
  chap_password: {description: Single form; see O(attachments)., type: str}
  mutual_chap: {description: Single form; see O(attachments)., type: bool, default: false, version_added: 0.3.0}
  target_chap_username: {description: Single form; see O(attachments)., type: str, version_added: 0.3.0}
  target_chap_password: {description: Single form; see O(attachments)., type: str, version_added: 0.3.0}
  state: {description: Single form; see O(attachments)., type: str, choices: [present, absent], default: present}
  portal:
    description: "Address (C(ip), C(ip:port) or C([ipv6]:port)) consumers reach this node's targets on, the
      storage network."
    type: str
    required: true
  portals:
    description:
      - "Every portal consumers reach this node's targets on when it has several storage addresses
        (dm-multipath): each C(ip), C(ip:port) or C([ipv6]:port). With more than one (O(portal) is taken as the
        first when it is not listed), C(connection_info) carries them as C(target_portals) (os-brick's key) and
        the consumer logs in on each."
    type: list
    elements: str
    version_added: 0.3.0
  target_prefix:
    description: "IQN prefix of the targets: C(iqn.yyyy-mm.<reversed domain>:) (RFC 3720), at most 153 bytes so
      that every C(<prefix>volume-<name>) fits in 223."
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
  allow_networks:
    description: >-
      Allow networks (CIDR) in O(attachments[].initiator_addresses). Without it every entry is a host address.
    type: bool
    default: false
  acl_min_prefix_ipv4:
    description: With O(allow_networks), the widest IPv4 network an ACL may bind (prefix length, 8-32).
    type: int
    default: 24
  acl_min_prefix_ipv6:
    description: With O(allow_networks), the widest IPv6 network an ACL may bind (prefix length, 16-128).
    type: int
    default: 64
  force:
    description: Reload or remove targets even when initiators are logged in (their sessions drop).
    type: bool
    default: false
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows each volume's export state before and after.
"""

EXAMPLES = r"""
- name: Export a volume to one consumer
  ember.blockstore.attachment:
    volume: db01-data
    vg: ember-thin
    initiators: [iqn.1993-08.org.debian:01:9263f289471f]
    initiator_addresses: [198.18.0.21]
    portal: 198.18.0.11
  register: export
  no_log: true

- name: Export a volume with mutual CHAP (the consumer also checks the target's secret)
  ember.blockstore.attachment:
    volume: db01-data
    vg: ember-thin
    initiators: [iqn.1993-08.org.debian:01:9263f289471f]
    initiator_addresses: [198.18.0.21]
    mutual_chap: true
    portal: 198.18.0.11
  register: export
  no_log: true

- name: Remove an export even while the consumer is still logged in (its session drops)
  ember.blockstore.attachment:
    volume: db01-data
    vg: ember-thin
    state: absent
    portal: 198.18.0.11
    force: true
"""

RETURN = r"""
attachments:
  description: One result per item, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    volume: {description: Volume name., type: str, sample: db01-data}
    target_iqn: {description: Target IQN., type: str, sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
    action: {description: "V(export), V(update), V(unexport) or V(none).", type: str, sample: export}
    changed: {description: Whether this item changed., type: bool, sample: true}
    initiators: {description: Initiator IQNs recorded with the export., type: list, elements: str,
                 sample: ["iqn.1993-08.org.debian:01:9263f289471f"]}
    initiator_addresses: {description: Initiator addresses in the ACL., type: list, elements: str,
                          sample: [198.18.0.21]}
    sessions: {description: Initiators logged in before the run., type: list, elements: str, sample: []}
    connection_info:
      description: "Login data: driver_volume_type, target_iqn, target_portal, target_lun, auth_method,
        auth_username, auth_password, volume, initiators, initiator_addresses. With mutual CHAP also
        target_auth_username and target_auth_password (the target's credentials; absent without it). With several
        O(portals) also target_portals (every portal, target_portal first; absent with one). Null when absent."
      type: dict
      sample:
        driver_volume_type: iscsi
        target_iqn: "iqn.2026-11.io.ember.blockstore:volume-db01-data"
        target_portal: "198.18.0.11:3260"
        target_lun: 1
        auth_method: CHAP
        auth_username: ember_db01-data_1a2b3c4d
        auth_password: "********"
        volume: db01-data
        initiators: ["iqn.1993-08.org.debian:01:9263f289471f"]
        initiator_addresses: [198.18.0.21]
"""

from ansible.module_utils.basic import AnsibleModule, remove_values
from ansible_collections.ember.blockstore.plugins.module_utils._address import check_min_prefix, portal
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import single_form
from ansible_collections.ember.blockstore.plugins.module_utils._attachment import (
    ITEM_OPTIONS,
    apply,
    connection_info,
    decide,
    diff_of,
    secrets_of,
)
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, batch_form, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    validate_target_prefix,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt


def result_of(act, portal, portals=None):
    return {"volume": act["volume"], "target_iqn": act["target_iqn"], "action": act["action"],
            "changed": act["action"] != "none", "initiators": act["initiators"],
            "initiator_addresses": act["initiator_addresses"], "sessions": act["sessions"],
            "connection_info": connection_info(act, portal, portals)}


def main():
    module = AnsibleModule(
        argument_spec=dict(attachments=dict(type="list", elements="dict", options=ITEM_OPTIONS),
                           portal=dict(type="str", required=True),
                           portals=dict(type="list", elements="str"),
                           target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
                           allow_networks=dict(type="bool", default=False),
                           acl_min_prefix_ipv4=dict(type="int", default=24),
                           acl_min_prefix_ipv6=dict(type="int", default=64),
                           force=dict(type="bool", default=False), **single_form(ITEM_OPTIONS)),
        supports_check_mode=True, **batch_form("attachments", "volume", required_by={"volume": "vg"}))
    params = module.params
    # Options that reach the target files or the consumers' command lines are validated before any command.
    try:
        target_portal = portal(params["portal"], "portal")
        all_portals = [portal(p, "portals[%d]" % n) for n, p in enumerate(params["portals"] or [])]
        validate_target_prefix(params["target_prefix"])
        min_prefix = check_min_prefix((params["acl_min_prefix_ipv4"], params["acl_min_prefix_ipv6"]),
                                      "acl_min_prefix")
    except NameError_ as exc:
        module.fail_json(msg=str(exc), errors=[str(exc)], attachments=[])
    batch = Batch(module, "attachments", lambda act: result_of(act, target_portal, all_portals),
                  lambda act: "attachment of %s" % act["volume"], ITEM_OPTIONS, "attachment",
                  catch=(CommandError, RuntimeError, ValueError))
    runner = Runner(module, lock=True)
    tgt = Tgt(runner)
    state, live = read_state(module, lambda: (Lvm(runner).state(), tgt.show_if_running()))
    actions, errors = decide(batch.items, state, live, params["target_prefix"], field=batch.field,
                             predict_missing=module.check_mode, allow_networks=params["allow_networks"],
                             min_prefix=min_prefix)
    # Every secret known (given, read from a target file) is masked in any message from here on.
    module.no_log_values.update(secrets_of(actions))
    if not errors and not module.check_mode and any(a["state"] == "present" for a in actions) \
            and not tgt.running():
        errors.append("tgtd is not running on this host; apply the ember.blockstore.tgt_target role first")
    actions = batch.decided(actions, errors)

    def apply_one(act):
        try:
            apply(act, tgt, live, force=params["force"])
        finally:
            module.no_log_values.update(secrets_of([act]))  # a generated secret, in a failure too

    results = batch.apply_each(actions, apply_one)
    for act in actions:
        if act.get("identity_pending") and act.get("write_file") and act["action"] != "none":
            module.warn("target %s: LUN 1 keeps its previous SCSI identity (tgt's tid-derived default) while "
                        "initiators are logged in (%s); its file now sets the stable one, which applies at the "
                        "target's next reload or tgt restart: a dm-multipath consumer should detach and attach the "
                        "volume once before that" % (act["target_iqn"], ", ".join(act["sessions"])))
    # connection_info.auth_password is the one place a secret is returned on purpose (the consumer logs in with
    # it; the role registers this result with no_log). Everything else stays masked, the invocation included.
    returned = secrets_of(actions)
    invocation = {"module_args": remove_values(params, module.no_log_values)}
    module.no_log_values.difference_update(returned)
    module.exit_json(changed=batch.changed(results), attachments=results, diff=diff_of(actions),
                     invocation=invocation)


if __name__ == "__main__":
    main()
