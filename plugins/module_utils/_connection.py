# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The consumer side of an attach (the ``connection`` module): validate the items, read the host, decide per item
(``login``, ``rescan``, ``logout`` or ``none``; pure) and apply through :class:`drivers.iscsiadm.Iscsiadm`."""

from __future__ import annotations

import os

from ansible_collections.ember.blockstore.plugins.module_utils._address import portal as valid_portal
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    validate_chap_secret,
    validate_chap_username,
    validate_iqn,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    NODE_DIRS,
    device_in_use,
    device_path,
    normalize_portal,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import PENDING_SECRET

__all__ = ["ITEM_OPTIONS", "validate", "real_device", "read_host", "decide", "ConnectionApplier"]

ITEM_OPTIONS = dict(
    target_iqn=dict(type="str", required=True),
    target_portal=dict(type="str", required=True),
    target_lun=dict(type="int", default=1),
    auth_method=dict(type="str", choices=["CHAP", "None"], default="CHAP"),
    auth_username=dict(type="str"),
    auth_password=dict(type="str", no_log=True),
    volume=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


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


def real_device(path):
    """The kernel device ``path`` (a by-path link) points to, or None when it does not exist."""
    return os.path.realpath(path) if os.path.exists(path) else None


def _where(item):
    portal = normalize_portal(item["target_portal"])
    return portal, (item["target_iqn"], portal), device_path(portal, item["target_iqn"], item["target_lun"])


def read_host(iscsi, items):
    """What the decision needs from the consumer: ``sessions`` and ``nodes`` (``{(target_iqn, portal)}``, from
    iscsiadm), ``devices`` (``{by-path: kernel device or None}`` of every item) and ``in_use`` (``{by-path:
    [mount points and holders]}`` of the logged-in devices to log out)."""
    sessions = {(s["target_iqn"], s["portal"]) for s in iscsi.sessions()}
    nodes = {(n["target_iqn"], n["portal"]) for n in iscsi.nodes()}
    devices, in_use = {}, {}
    for item in items:
        _portal, key, path = _where(item)
        devices[path] = real_device(path)
        if item["state"] == "absent" and key in sessions and devices[path] is not None:
            in_use[path] = device_in_use(devices[path])
    return {"sessions": sessions, "nodes": nodes, "devices": devices, "in_use": in_use}


def decide(items, state, force=False):
    """``(actions, errors)`` from validated items and :func:`read_host` (pure). Each action is the item with its
    normalised ``target_portal``, its by-path ``device``, ``action`` and ``changed``, and ``real_device`` when
    logged in. An existing session is left as it is; one whose device is missing is rescanned. A logout of a
    device in use (without ``force``) is ``refused``: it fails at its turn, after the items before it."""
    actions = []
    for item in items:
        portal, key, path = _where(item)
        act = dict(item, target_portal=portal, path=path, action="none", changed=False, device=None,
                   real_device=None, logout=False)
        if item["state"] == "present":
            act["device"] = path
            if key not in state["sessions"]:
                act.update(action="login", changed=True)
            else:
                act["real_device"] = state["devices"].get(path)
                if act["real_device"] is None:
                    # Logged in, but the LUN is not there (it was added to the target live): rescan the session.
                    act.update(action="rescan", changed=True)
        elif key in state["sessions"] or key in state["nodes"]:
            act.update(action="logout", changed=True, logout=key in state["sessions"])
            users = state["in_use"].get(path)
            if users and not force:
                act["refused"] = "%s (%s) is in use (%s); unmount it first or set force: true" % (
                    path, item["target_iqn"], ", ".join(users))
        actions.append(act)
    return actions, []


class ConnectionApplier:
    """Runs the decided actions (``iscsi``: drivers.iscsiadm.Iscsiadm); ``warn(text)`` is the module's warn."""

    def __init__(self, iscsi, wait_timeout, warn):
        self.iscsi = iscsi
        self.wait_timeout = wait_timeout
        self.warn = warn

    def apply(self, act):
        iqn, portal = act["target_iqn"], act["target_portal"]
        if act["action"] == "rescan":
            self.iscsi.rescan(iqn, portal)
            self.wait(act)
        elif act["action"] == "login":
            via = self.iscsi.login(iqn, portal, act["auth_username"], act["auth_password"], act["auth_method"])
            if via == "argv":
                self.warn("the node record of %s was not found under %s: the CHAP secret was passed on iscsiadm's "
                          "command line" % (iqn, " or ".join(NODE_DIRS)))
            self.wait(act)
        elif act["action"] == "logout":
            if act["logout"]:
                self.iscsi.logout(iqn, portal)
            self.iscsi.delete_node(iqn, portal)

    def wait(self, act):
        """Wait for the device after a login or rescan; RuntimeError when it does not appear in time."""
        real = self.iscsi.wait_for_device(act["path"], self.wait_timeout)
        if real is None:
            raise RuntimeError("logged in to %s but %s did not appear within %d s"
                               % (act["target_iqn"], act["path"], self.wait_timeout))
        act["real_device"] = real
