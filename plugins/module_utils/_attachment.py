# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision and action for the ``attachment`` module (the storage-node side of an attach).

One tgt target per volume (IQN ``<prefix>volume-<name>``), the LV as LUN 1, an ACL of exactly the
attachment's consumer addresses (their IQNs recorded beside; see :mod:`drivers.tgt` why) and per-volume CHAP,
persisted in ``/etc/tgt/conf.d/ember-volume-<name>.conf``. The CHAP secret comes from the inventory or is
generated once and then read back from the root-only file, so it is stable across runs. With ``mutual_chap`` the
target also proves itself to the consumer (tgt's ``outgoinguser``): its own user and secret are kept and
generated the same way, and differ from the initiator's (RFC 3720 8.2.1; open-iscsi refuses a target that answers
with the initiator's secret).

Safety rules (docs/security.md):

- every value that reaches the target file (and so tgt-admin's shell) is validated first; one bad item fails
  the whole batch before any change;
- only targets whose file carries the project's marker are changed or removed; a live target or a file with
  the volume's IQN but without the marker is a clash and is left alone;
- a change is never weaker than the state before it: a live ACL is narrowed before it is widened, a target
  whose CHAP account must be replaced is deleted before its account, and after every change the live target is
  read back and checked (LUN 1, exactly the CHAP account, exactly the ACL); a target found without its CHAP
  account gets an empty ACL (tgtd then admits nobody) and the run fails.
"""

from __future__ import annotations

import os

from ansible_collections.ember.blockstore.plugins.module_utils._address import DEFAULT_MIN_PREFIX, acl_entry
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    chap_username,
    lv_name,
    target_chap_username,
    target_iqn,
    tgt_conf_path,
    validate_chap_secret,
    validate_chap_username,
    validate_iqn,
    validate_target_prefix,
    validate_vg_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import normalize_portal
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    HEADER,
    PENDING_SECRET,
    PENDING_TARGET_SECRET,
    bound_users,
    check_target,
    generate_secret,
    identity_matches,
    is_managed_conf,
    lun_identity,
    parse_conf,
    read_file,
    render_conf,
    shown_size,
    write_private,
)

__all__ = ["ITEM_OPTIONS", "decide", "apply", "read_file", "connection_info", "secrets_of", "diff_of"]

ITEM_OPTIONS = dict(
    volume=dict(type="str", required=True),
    vg=dict(type="str", required=True),
    initiators=dict(type="list", elements="str", default=[]),
    initiator_addresses=dict(type="list", elements="str", default=[]),
    chap_username=dict(type="str"),
    chap_password=dict(type="str", no_log=True),
    mutual_chap=dict(type="bool", default=False),
    target_chap_username=dict(type="str"),
    target_chap_password=dict(type="str", no_log=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


def _owner_problem(where, name, iqn, path, text, target):
    """A clash message when the target file or the live target of ``iqn`` is not the project's, else None."""
    if text is not None and not is_managed_conf(text, iqn):
        return ("%s.volume: %s exists but is not an ember.blockstore target file for %s (no '%s' header); it "
                "clashes with volume %s and is left alone" % (where, path, iqn, HEADER.strip(), name))
    if text is None and target is not None:
        return ("%s.volume: live target %s (tid %s) is not managed by ember.blockstore (no %s); it clashes with "
                "volume %s and is never changed or removed" % (where, iqn, target.get("tid"), path, name))
    return None


def decide(items, lvm_state, live, prefix, read=read_file, field="attachments", predict_missing=False,
           allow_networks=False, min_prefix=DEFAULT_MIN_PREFIX):
    """Return ``(actions, errors)``; pure apart from ``read`` (the target files). With ``predict_missing``
    (check mode) a volume that does not exist yet is assumed to be created by an earlier task. ACL entries are
    host addresses; networks only with ``allow_networks`` and never wider than ``min_prefix`` (IPv4, IPv6)."""
    actions, errors = [], []
    try:
        validate_target_prefix(prefix)
    except NameError_ as exc:
        return [], [str(exc)]
    seen = set()
    for index, item in enumerate(items):
        where = "%s[%d]" % (field, index)
        try:
            name = validate_volume_name(item["volume"], where + ".volume")
            validate_vg_name(item["vg"], where + ".vg")
            initiators = sorted({validate_iqn(i, "%s.initiators[%d]" % (where, n))
                                 for n, i in enumerate(item.get("initiators") or [])})
            addresses = sorted({acl_entry(a, "%s.initiator_addresses[%d]" % (where, n), allow_networks, min_prefix)
                                for n, a in enumerate(item.get("initiator_addresses") or [])})
            if item.get("chap_username") is not None:
                validate_chap_username(item["chap_username"], where + ".chap_username")
            if item.get("chap_password") is not None:
                validate_chap_secret(item["chap_password"], where + ".chap_password")
            if item.get("target_chap_username") is not None:
                validate_chap_username(item["target_chap_username"], where + ".target_chap_username")
            if item.get("target_chap_password") is not None:
                validate_chap_secret(item["target_chap_password"], where + ".target_chap_password")
        except NameError_ as exc:
            errors.append(str(exc))
            continue
        given = [key for key in ("target_chap_username", "target_chap_password") if item.get(key) is not None]
        if given and not item.get("mutual_chap"):
            errors.append("%s.%s: is set but mutual_chap is false; set mutual_chap: true for mutual CHAP or remove "
                          "it" % (where, given[0]))
            continue
        if name in seen:
            errors.append("%s.volume: %r is listed twice" % (where, name))
            continue
        seen.add(name)
        iqn = target_iqn(name, prefix)
        path = tgt_conf_path(name)
        text = read(path)
        target = live.get(iqn)
        clash = _owner_problem(where, name, iqn, path, text, target)
        if clash:
            errors.append(clash)
            continue
        current = parse_conf(text) if text else None
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
        try:
            validate_chap_username(user, "%s: the CHAP user in %s" % (where, path))
            if secret is not None:
                validate_chap_secret(secret, "%s: the CHAP secret in %s" % (where, path))
        except NameError_ as exc:
            errors.append("%s; set chap_username/chap_password or remove the incominguser line" % exc)
            continue
        shared = sorted(other for other, t in live.items() if other != iqn and user in bound_users(t))
        if shared:
            errors.append("%s.chap_username: %s is also bound to target(s) %s; tgt accounts are global, so each "
                          "export needs its own CHAP user" % (where, user, ", ".join(shared)))
            continue
        mutual = _decide_mutual(item, where, name, iqn, path, current, live, user, secret)
        if isinstance(mutual, str):
            errors.append(mutual)
            continue
        target_user, target_secret = mutual
        generated = secret is None
        target_generated = bool(target_user) and target_secret is None
        backing = "/dev/%s/%s" % (item["vg"], lv["name"] if lv else lv_name(name))  # managed LVs may keep theirs
        act.update(backing_store=backing, chap_username=user, chap_password=secret, generated=generated,
                   old_chap_username=(current or {}).get("chap_username"), mutual_chap=bool(target_user),
                   target_chap_username=target_user, target_chap_password=target_secret,
                   target_generated=target_generated,
                   old_target_chap_username=(current or {}).get("target_chap_username"))
        identity = lun_identity(name)
        desired = render_conf(iqn, backing, initiators, user, secret or PENDING_SECRET, volume=name,
                              addresses=addresses, target_chap_username=target_user,
                              target_chap_password=(target_secret or PENDING_TARGET_SECRET) if target_user else None,
                              scsi_id=identity[0], scsi_sn=identity[1])
        file_ok = text == desired
        # The outgoing (mutual CHAP) account: exactly the file's, with the file's secret, or none without mutual CHAP.
        outgoing_ok = bool(target) and target.get("outgoing_account") == target_user and not target_generated \
            and (current or {}).get("target_chap_password") == target_secret
        account_ok = bool(target) and target["accounts"] == [user] and not generated \
            and (current or {}).get("chap_password") == secret and outgoing_ok
        lun = (target or {}).get("luns", {}).get(1)
        # A live LUN 1 with another SCSI identity (a target loaded from a file written before the identity was
        # set: tgt's tid-derived default) needs a reload, which drops sessions. Without sessions it is reloaded
        # now; with sessions the file is written and the identity applies at the target's next reload (a tgt
        # restart), as the tid-derived one would change then anyway (``identity_pending``).
        identity_ok = identity_matches(lun, identity)
        act["identity_pending"] = bool(target) and not identity_ok and bool(act["sessions"])
        lun_and_account_ok = account_ok and (lun or {}).get("backing_store") == backing \
            and (identity_ok or act["identity_pending"])
        if not file_ok or not (lun_and_account_ok and sorted(target["acl"]) == addresses):
            act["action"] = "export" if target is None and text is None else "update"
        # A live target whose LUN and CHAP account (and secret) are right only needs its ACL changed: that is
        # done live, without dropping the sessions of consumers that stay in the ACL.
        act["acl_only"] = lun_and_account_ok
        # A live target that is right but has no LUN 1 (tgtd loaded it before its LV was active, e.g. at boot)
        # gets the LUN added live: the sessions stay, consumers rescan.
        act["lun_only"] = account_ok and lun is None and file_ok and sorted(target["acl"]) == addresses
        # A LUN that shows another size than its LV (the volume was extended while exported: tgtd keeps the size
        # it read at open) is refreshed live, with the sessions kept; consumers rescan (the connection module).
        act["refresh_size"] = bool(lun_and_account_ok and lv is not None and (lun or {}).get("size")
                                   and _megabytes(lun["size"]) < _megabytes(shown_size(lv["size_bytes"])))
        act["lun_size"] = shown_size(lv["size_bytes"]) if lv is not None else None
        if act["refresh_size"] and act["action"] == "none":
            act["action"] = "update"
        act["reason"] = _reload_reason(target, file_ok, account_ok, lun, backing, addresses, outgoing_ok,
                                       identity_ok)
        act["identity"] = list(identity)
        act["tid"] = (target or {}).get("tid")
        act["live_acl"] = list((target or {}).get("acl", []))
        act["write_file"] = not file_ok
        act["desired"] = desired
        actions.append(act)
    return actions, errors


def _decide_mutual(item, where, name, iqn, path, current, live, user, secret):
    """``(target user, target secret or None when it is to be generated)`` with ``mutual_chap``, ``(None, None)``
    without, or an error text. The user and secret come from the item, else from the target file, else the
    default user and a generated secret; the user is not the initiator's and no other target binds it (tgt accounts
    are global), the secret is not the initiator's."""
    if not item.get("mutual_chap"):
        return None, None
    target_user = item.get("target_chap_username") or (current or {}).get("target_chap_username") \
        or target_chap_username(name)
    target_secret = item.get("target_chap_password") or (current or {}).get("target_chap_password")
    try:
        validate_chap_username(target_user, "%s: the target's CHAP user in %s" % (where, path))
        if target_secret is not None:
            validate_chap_secret(target_secret, "%s: the target's CHAP secret in %s" % (where, path))
    except NameError_ as exc:
        return "%s; set target_chap_username/target_chap_password or remove the outgoinguser line" % exc
    if target_user == user:
        return ("%s.target_chap_username: %s is also the initiator's CHAP user; tgt accounts are global, so the two "
                "directions of mutual CHAP need two users" % (where, target_user))
    if target_secret is not None and target_secret == secret:
        return ("%s.target_chap_password: equals the initiator's CHAP secret (chap_password); the two directions of "
                "mutual CHAP need different secrets (RFC 3720 8.2.1; open-iscsi refuses a target that answers with "
                "the initiator's secret)" % where)
    shared = sorted(other for other, t in live.items() if other != iqn and target_user in bound_users(t))
    if shared:
        return ("%s.target_chap_username: %s is also bound to target(s) %s; tgt accounts are global, so each "
                "export needs its own target CHAP user" % (where, target_user, ", ".join(shared)))
    return target_user, target_secret


def _megabytes(shown):
    """The number in tgtadm's ``Size: N MB`` (-1 when it is not one): a LUN is refreshed only to grow (never
    shrink: a smaller LV than the LUN shows is left to the plan, which refuses shrinking)."""
    try:
        return int(str(shown).split()[0])
    except (ValueError, IndexError):
        return -1


def _reload_reason(target, file_ok, account_ok, lun, backing, addresses, outgoing_ok=True, identity_ok=True):
    """Why a live target is not as its file says (for the error when it cannot be reloaded), or None."""
    if target is None:
        return None
    reasons = []
    if not file_ok:
        reasons.append("its file changes")
    if not outgoing_ok:
        reasons.append("its mutual CHAP (outgoing) account or secret changes")
    elif not account_ok:
        reasons.append("its CHAP account or secret changes")
    if lun is None:
        reasons.append("LUN 1 is missing")
    elif lun.get("backing_store") != backing:
        reasons.append("LUN 1 is backed by %s, not %s" % (lun.get("backing_store"), backing))
    elif not identity_ok:
        reasons.append("LUN 1's SCSI identity (scsi_id/scsi_sn) changes")
    if sorted(target.get("acl", [])) != addresses:
        reasons.append("its ACL changes")
    return ", ".join(reasons) or None


def secrets_of(actions):
    """Every CHAP secret the actions hold (supplied, read from files or generated; the initiator's and, with mutual
    CHAP, the target's), for masking."""
    return {a[key] for a in actions for key in ("chap_password", "target_chap_password")
            if a.get(key) and a[key] not in (PENDING_SECRET, PENDING_TARGET_SECRET)}


def _fail_closed(act, tgt, after, problems, what):
    """The live target is not as its file says after ``what``. Narrow what it admits, then raise: without its
    CHAP account the target gets an empty ACL (tgtd admits nobody then); otherwise ACL entries that are not in
    the file are unbound."""
    iqn = act["target_iqn"]
    if after is not None:
        chap_ok = after["accounts"] == [act["chap_username"]]
        keep = [a for a in after["acl"] if a in act["initiator_addresses"]] if chap_ok else []
        if sorted(after["acl"]) != sorted(keep):
            tgt.set_acl(after["tid"], after["acl"], keep)
            problems = problems + ["its ACL was narrowed to %s so that it admits no one it should not"
                                   % (keep or "nothing (an empty ACL admits nobody)")]
    raise RuntimeError("target %s after %s: %s" % (iqn, what, "; ".join(problems)))


def _verify(act, tgt, what):
    after = tgt.show().get(act["target_iqn"])
    identity = None if act.get("identity_pending") or not act.get("identity") else tuple(act["identity"])
    problems = check_target(after, act["chap_username"], act["backing_store"], act["initiator_addresses"],
                            act.get("target_chap_username"), identity=identity)
    if problems:
        _fail_closed(act, tgt, after, problems, what)


def apply(act, tgt, live, force=False):
    """Run the decided change for one item. Raises drivers' CommandError or RuntimeError with a readable text.

    Order (never weaker than before): the file is written first (only what is in files survives a restart); an
    ACL-only change unbinds before it binds; any other change deletes the live target (refused by tgt-admin while
    initiators are connected, unless ``force``), then the CHAP account, and lets ``tgt-admin --update`` create
    both again from the file (the account before the ACL). A target that lacks only LUN 1 gets it added live
    (``lun_only``: nothing else changes, sessions stay). Every path ends by reading the target back."""
    if act["action"] == "unexport":
        if act["sessions"] and not force:
            raise RuntimeError("target %s has logged-in initiators (%s); log them out first or set force: true"
                               % (act["target_iqn"], ", ".join(act["sessions"])))
        tgt.remove_export(act["target_iqn"], act["conf_path"], live, force=force)
        return
    if act["action"] not in ("export", "update"):
        return
    iqn = act["target_iqn"]
    if act["generated"]:
        act["chap_password"] = generate_secret()
        act["desired"] = act["desired"].replace(PENDING_SECRET, act["chap_password"])
    if act.get("target_generated"):
        secret = generate_secret()
        while secret == act["chap_password"]:  # 190 bits each: never in practice, but never the same
            secret = generate_secret()
        act["target_chap_password"] = secret
        act["desired"] = act["desired"].replace(PENDING_TARGET_SECRET, secret)
    if act.get("lun_only"):
        tgt.add_lun(act["tid"], 1, act["backing_store"], identity=act.get("identity"))
        _verify(act, tgt, "adding LUN 1 live")
        return
    # Refuse before writing: a written file would make the next run believe the target is already right.
    if not act["acl_only"] and act["sessions"] and not force and iqn in live:
        raise RuntimeError("target %s must be reloaded (%s) but has logged-in initiators (%s); log them out "
                           "first or set force: true (their sessions drop)"
                           % (iqn, act.get("reason") or "it differs from its file", ", ".join(act["sessions"])))
    if act["write_file"]:
        os.makedirs(os.path.dirname(act["conf_path"]), exist_ok=True)
        write_private(act["conf_path"], act["desired"])
    if act["acl_only"]:
        act["desired_acl"] = act["initiator_addresses"]
        if act.get("refresh_size"):
            tgt.refresh_lun_size(act["tid"], 1, act["backing_store"])
            shown = (tgt.show().get(iqn, {}).get("luns", {}).get(1) or {}).get("size")
            if shown != act["lun_size"]:
                raise RuntimeError("target %s: LUN 1 shows %s after the live size refresh, not %s (the volume's "
                                   "size); detach the volume and run again" % (iqn, shown, act["lun_size"]))
        tgt.set_acl(act["tid"], act["live_acl"], act["desired_acl"])
        _verify(act, tgt, "the live ACL change")
        return
    if iqn in live:
        try:
            remaining = tgt.delete(iqn, force=bool(act["sessions"]) and force)
        except CommandError as exc:
            # tgt-admin skipped it (an initiator logged in since the decision): the target keeps its old
            # configuration. Say whether that still has its CHAP account.
            before = tgt.show().get(iqn)
            bound = before is not None and act["chap_username"] in before["accounts"]
            raise RuntimeError("target %s was not reloaded: %s; it keeps its previous configuration, with CHAP "
                               "account %s %s" % (iqn, exc.err or exc, act["chap_username"],
                                                  "bound" if bound else "NOT bound")) from None
    else:
        remaining = live
    # tgt-admin keeps an existing account as it is: drop it so the file's secret is the one in force (the outgoing
    # account of mutual CHAP too, and the one a file no longer names). Accounts are global; decide() refused a user
    # that another target binds.
    users = {act["chap_username"], act.get("old_chap_username") or act["chap_username"]}
    users.update(u for u in (act.get("target_chap_username"), act.get("old_target_chap_username")) if u)
    for user in sorted(users):
        if not any(user in bound_users(t) for other, t in remaining.items() if other != iqn):
            tgt.delete_account(user)
    tgt.update(iqn, force=bool(act["sessions"]) and force)
    _verify(act, tgt, "tgt-admin --update")


def connection_info(act, portal, portals=None):
    """What the consumer needs to log in (os-brick's iSCSI connection_info keys). With mutual CHAP also
    ``target_auth_username`` and ``target_auth_password``, the credentials the target proves itself with (os-brick
    and Cinder have no keys for it); without, those keys are absent. With several ``portals`` (a node with several
    storage addresses) also ``target_portals`` (os-brick's multipath key: every portal, ``portal`` first)."""
    if act["state"] == "absent":
        return None
    info = {
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
    every = [normalize_portal(portal)]
    for other in portals or []:
        if normalize_portal(other) not in every:
            every.append(normalize_portal(other))
    if len(every) > 1:
        info["target_portals"] = every
    if act.get("mutual_chap"):
        info["target_auth_username"] = act["target_chap_username"]
        info["target_auth_password"] = act["target_chap_password"] or PENDING_SECRET
    return info


def diff_of(actions):
    """Each changed volume's export state before and after (the module's ``diff``)."""
    diff = {"before": {}, "after": {}}
    for act in actions:
        if act["action"] != "none":
            diff["before"][act["volume"]] = "exported" if act["action"] != "export" else "absent"
            diff["after"][act["volume"]] = "absent" if act["action"] == "unexport" else \
                "exported to %s" % ", ".join(act["initiators"])
    return diff
