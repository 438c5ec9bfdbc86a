# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action for the ``attachment`` module (the storage-node side of an attach).

One tgt target per volume (IQN ``<prefix>volume-<name>``), the LV as LUN 1, an ACL of exactly the
attachment's consumer addresses (their IQNs recorded beside; see :mod:`drivers.tgt` why) and per-volume CHAP,
persisted in ``/etc/tgt/conf.d/ember-volume-<name>.conf``. The CHAP secret comes from the inventory or is
generated once and then read back from the root-only file, so it is stable across runs.
"""

from __future__ import annotations

import ipaddress
import os

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    chap_username,
    lv_name,
    target_iqn,
    tgt_conf_path,
    validate_iqn,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import normalize_portal
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    generate_secret,
    parse_conf,
    render_conf,
    write_private,
)

__all__ = ["ITEM_OPTIONS", "decide", "apply", "read_file", "connection_info"]

ITEM_OPTIONS = dict(
    volume=dict(type="str", required=True),
    vg=dict(type="str", required=True),
    initiators=dict(type="list", elements="str", default=[]),
    initiator_addresses=dict(type="list", elements="str", default=[]),
    chap_username=dict(type="str"),
    chap_password=dict(type="str", no_log=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)

PENDING_SECRET = "(generated when applied)"


def read_file(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _address(value, field):
    """An initiator address as tgt's ``initiator-address`` takes it: an IP address or a network (CIDR)."""
    try:
        if "/" in str(value):
            return str(ipaddress.ip_network(str(value), strict=False))
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise NameError_("%s: %r is not an IP address or network" % (field, value)) from None


def _word(value, field):
    if not value or not all(c.isalnum() or c == "_" for c in value):
        raise NameError_("%s: must be letters, digits or '_' (tgt's config parser expects word characters)" % field)
    return value


def decide(items, lvm_state, live, prefix, read=read_file, field="attachments", predict_missing=False):
    """Return ``(actions, errors)``; pure apart from ``read`` (the target files). With ``predict_missing``
    (check mode) a volume that does not exist yet is assumed to be created by an earlier task."""
    actions, errors = [], []
    seen = set()
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, index)
        try:
            name = validate_volume_name(item["volume"], where + ".volume")
            initiators = sorted({validate_iqn(i, "%s.initiators[%d]" % (where, n))
                                 for n, i in enumerate(item.get("initiators") or [])})
            addresses = sorted({_address(a, "%s.initiator_addresses[%d]" % (where, n))
                                for n, a in enumerate(item.get("initiator_addresses") or [])})
            if item.get("chap_username"):
                _word(item["chap_username"], where + ".chap_username")
            if item.get("chap_password"):
                _word(item["chap_password"], where + ".chap_password")
        except NameError_ as exc:
            errors.append(str(exc))
            continue
        if name in seen:
            errors.append("%s.volume: %r is listed twice" % (where, name))
            continue
        seen.add(name)
        iqn = target_iqn(name, prefix)
        path = tgt_conf_path(name)
        text = read(path)
        current = parse_conf(text) if text else None
        target = live.get(iqn)
        act = {"volume": name, "vg": item["vg"], "target_iqn": iqn, "conf_path": path, "state": item["state"],
               "initiators": initiators, "initiator_addresses": addresses, "action": "none",
               "sessions": sorted((target or {}).get("sessions", []))}
        if item["state"] == "absent":
            if target is not None or text is not None:
                act["action"] = "unexport"
            actions.append(act)
            continue
        if not initiators:
            errors.append("%s.initiators: at least one initiator IQN is needed to export volume %s (the ACL)"
                          % (where, name))
            continue
        if not addresses:
            errors.append("%s.initiator_addresses: at least one consumer address is needed to export volume %s; "
                          "without one tgt admits every address" % (where, name))
            continue
        lv = lvm_state.volume(item["vg"], name)
        if (lv is None and not predict_missing) or (lv is not None and not lv["managed"]):
            errors.append("%s.volume: volume %s does not exist in VG %s%s" % (
                where, name, item["vg"], "" if lv is None else " as a managed LV"))
            continue
        user = item.get("chap_username") or (current or {}).get("chap_username") or chap_username(name)
        secret = item.get("chap_password") or (current or {}).get("chap_password")
        generated = secret is None
        backing = "/dev/%s/%s" % (item["vg"], lv_name(name))
        act.update(backing_store=backing, chap_username=user, chap_password=secret, generated=generated)
        desired = render_conf(iqn, backing, initiators, user, secret or PENDING_SECRET, volume=name,
                              addresses=addresses)
        file_ok = text == desired
        lun_and_account_ok = bool(target) and (target["luns"].get(1) or {}).get("backing_store") == backing \
            and target["accounts"] == [user]
        if not file_ok or not (lun_and_account_ok and sorted(target["acl"]) == addresses):
            act["action"] = "export" if target is None and text is None else "update"
        # A live target whose LUN and CHAP account (and secret) are right only needs its ACL changed: that is
        # done live, without dropping the sessions of consumers that stay in the ACL.
        act["acl_only"] = lun_and_account_ok and not generated and (current or {}).get("chap_password") == secret
        act["tid"] = (target or {}).get("tid")
        act["live_acl"] = list((target or {}).get("acl", []))
        act["write_file"] = not file_ok
        act["desired"] = desired
        actions.append(act)
    return actions, errors


def apply(act, tgt, live, force=False):
    """Run the decided change for one item. Raises drivers' CommandError or RuntimeError with a readable text."""
    if act["action"] == "unexport":
        if act["sessions"] and not force:
            raise RuntimeError("target %s has logged-in initiators (%s); log them out first or set force: true"
                               % (act["target_iqn"], ", ".join(act["sessions"])))
        tgt.remove_export(act["target_iqn"], act["conf_path"], live, force=force)
        return
    if act["action"] in ("export", "update"):
        if act["generated"]:
            act["chap_password"] = generate_secret()
            act["desired"] = act["desired"].replace(PENDING_SECRET, act["chap_password"])
        # Refuse before writing: a written file would make the next run believe the target is already right.
        if not act["acl_only"] and act["sessions"] and not force and act["target_iqn"] in live:
            raise RuntimeError("target %s must be reloaded but has logged-in initiators (%s); log them out "
                               "first or set force: true (their sessions drop)" %
                               (act["target_iqn"], ", ".join(act["sessions"])))
        if act["write_file"]:
            os.makedirs(os.path.dirname(act["conf_path"]), exist_ok=True)
            write_private(act["conf_path"], act["desired"])
        if act["acl_only"]:
            act["desired_acl"] = act["initiator_addresses"]
            tgt.set_acl(act["tid"], act["live_acl"], act["desired_acl"])
            return
        # tgt-admin keeps an existing account as it is: drop it so the file's secret is the one in force.
        tgt.delete_account(act["chap_username"])
        tgt.update(act["target_iqn"], force=bool(act["sessions"]))
        after = tgt.show().get(act["target_iqn"])
        if not after or (after["luns"].get(1) or {}).get("backing_store") != act["backing_store"]:
            raise RuntimeError("target %s has no LUN 1 on %s after tgt-admin --update"
                               % (act["target_iqn"], act["backing_store"]))


def connection_info(act, portal):
    """What the consumer needs to log in (os-brick's iSCSI connection_info keys)."""
    if act["state"] == "absent":
        return None
    return {
        "driver_volume_type": "iscsi",
        "target_iqn": act["target_iqn"],
        "target_portal": normalize_portal(portal),
        "target_lun": 1,
        "auth_method": "CHAP",
        "auth_username": act["chap_username"],
        "auth_password": act["chap_password"] or PENDING_SECRET,
        "volume": act["volume"],
        "initiators": act["initiators"],
        "initiator_addresses": act["initiator_addresses"],
    }
