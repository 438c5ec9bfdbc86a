# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The consumer side of an attach (the ``connection`` module): validate the items, read the host, decide per item
(``login``, ``rescan``, ``resize``, ``logout`` or ``none``; pure) and apply through :class:`drivers.iscsiadm.Iscsiadm`.

An item with ``qos`` (Cinder front-end QoS keys, see :mod:`_qos`) also gets its device's cgroup v2 io.max line
in the cgroup of ``qos_cgroup`` (a slice or unit), written only when it differs.

Mutual CHAP: an item with ``target_auth_username`` and ``target_auth_password`` (the ``connection_info`` of an
attachment with ``mutual_chap``) logs in with the target's credentials in the node record as well, so iscsid
refuses a target that cannot prove them. An existing session is never logged in again for it: when its record
lacks those credentials or holds others, the record is updated (``action: update``) and they apply from the
session's next login (a reconnect after the target was reloaded, a reboot). A CHAP item without them clears
inbound credentials a record holds (mutual CHAP was turned off: the target no longer has an account to prove
itself with, so the next login would fail)."""

from __future__ import annotations

import os
import time

from ansible_collections.ember.blockstore.plugins.module_utils import _qos
from ansible_collections.ember.blockstore.plugins.module_utils._address import portal as valid_portal
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import DEFAULT_MOUNT_POINT_BASE
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    validate_chap_secret,
    validate_chap_username,
    validate_iqn,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_connection import is_nfs, validate_nfs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    MULTIPATH_OPENERS,
    MULTIPATHD_PIDFILE,
    NODE_DIRS,
    SECRET_IN_KEY,
    SYS_BLOCK,
    USERNAME_IN_KEY,
    device_in_use,
    device_path,
    device_size,
    multipath_map,
    multipathd_running,
    normalize_portal,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import PENDING_SECRET

__all__ = ["ITEM_OPTIONS", "validate", "real_device", "read_host", "decide", "ConnectionApplier", "secrets_of_state"]

ITEM_OPTIONS = dict(
    driver_volume_type=dict(type="str", choices=["iscsi", "nfs"], default="iscsi"),
    target_iqn=dict(type="str"),
    target_portal=dict(type="str"),
    target_portals=dict(type="list", elements="str"),
    target_lun=dict(type="int", default=1),
    auth_method=dict(type="str", choices=["CHAP", "None"], default="CHAP"),
    auth_username=dict(type="str"),
    auth_password=dict(type="str", no_log=True),
    target_auth_username=dict(type="str"),
    target_auth_password=dict(type="str", no_log=True),
    volume=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    qos=dict(type="dict"),
    qos_cgroup=dict(type="str", default=_qos.DEFAULT_CGROUP),
    force=dict(type="bool", default=False),
    size_bytes=dict(type="int"),
    data=dict(type="dict"),
    mount_point_base=dict(type="str", default=DEFAULT_MOUNT_POINT_BASE),
)


# open-iscsi's node.session.timeo.replacement_timeout for the sessions of a multipath item (seconds).
MULTIPATH_REPLACEMENT_TIMEOUT = 15


def validate(connections, field="connections", check_mode=False):
    """Errors (naming the field) for any value that would reach iscsiadm's command line or a node record."""
    errors = []
    for index, item in enumerate(connections):
        where = "%s[%d]" % (field, index)
        if is_nfs(item):
            errors.extend(validate_nfs(item, where))
            if item.get("qos") is not None:
                errors.append("%s.qos: QoS limits are not applied to NFS volumes (their loop devices)" % where)
            continue
        missing = [key for key in ("target_iqn", "target_portal") if not item.get(key)]
        if missing:
            errors.append("%s.%s: required for driver_volume_type iscsi" % (where, missing[0]))
            continue
        try:
            validate_iqn(item["target_iqn"], where + ".target_iqn")
            valid_portal(item["target_portal"], where + ".target_portal")
            for number, other in enumerate(item.get("target_portals") or []):
                valid_portal(other, "%s.target_portals[%d]" % (where, number))
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
            if item.get("target_auth_username") is not None:
                validate_chap_username(item["target_auth_username"], where + ".target_auth_username")
            if item.get("target_auth_password") is not None and not (
                    check_mode and item["target_auth_password"] == PENDING_SECRET):
                validate_chap_secret(item["target_auth_password"], where + ".target_auth_password")
            if item.get("qos") is not None:
                _qos.validate_qos_specs(item["qos"], where + ".qos")
            _qos.validate_cgroup_unit(_unit(item), where + ".qos_cgroup")
        except NameError_ as exc:
            errors.append(str(exc))
            continue
        if item["state"] == "present" and item["auth_method"] == "CHAP" and not (
                item["auth_username"] and item["auth_password"]):
            errors.append("%s: auth_username and auth_password are required for CHAP (target %s)"
                          % (where, item["target_iqn"]))
        error = _mutual_problem(item, where)
        if error:
            errors.append(error)
    return errors


def _mutual_problem(item, where):
    """What is wrong with an item's mutual CHAP credentials (``target_auth_*``), or None."""
    user, secret = item.get("target_auth_username"), item.get("target_auth_password")
    if user is None and secret is None:
        return None
    if user is None or secret is None:
        return ("%s: target_auth_username and target_auth_password go together (mutual CHAP, target %s)"
                % (where, item["target_iqn"]))
    if item["auth_method"] != "CHAP":
        return ("%s.target_auth_username: mutual CHAP needs auth_method CHAP (target %s)"
                % (where, item["target_iqn"]))
    if secret == item.get("auth_password") and secret != PENDING_SECRET:
        return ("%s.target_auth_password: equals auth_password; open-iscsi refuses a target that answers with the "
                "initiator's own secret (RFC 3720 8.2.1), so mutual CHAP needs two secrets (target %s)"
                % (where, item["target_iqn"]))
    return None


def _target_auth(item):
    """``(username_in, password_in)`` an item wants in its node record: both None without mutual CHAP."""
    if item.get("target_auth_username") is None:
        return None, None
    return item["target_auth_username"], item["target_auth_password"]


def _manages_target_auth(item):
    """Whether the item says what the inbound credentials of its record are (a CHAP login item; an item of a live
    session made for QoS only has ``auth_method: None`` and says nothing about them)."""
    return item["state"] == "present" and item["auth_method"] == "CHAP"


def real_device(path):
    """The kernel device ``path`` (a by-path link) points to, or None when it does not exist."""
    return os.path.realpath(path) if os.path.exists(path) else None


def _where(item):
    portal = normalize_portal(item["target_portal"])
    return portal, (item["target_iqn"], portal), device_path(portal, item["target_iqn"], item["target_lun"])


def portals_of(item):
    """Every portal of an item, normalised, each once: ``target_portal`` first, then ``target_portals``."""
    found = [normalize_portal(item["target_portal"])]
    for other in item.get("target_portals") or []:
        other = normalize_portal(other)
        if other not in found:
            found.append(other)
    return found


def _multipath(item):
    """Whether a present item logs in on several portals and uses the dm-multipath map over them."""
    return item["state"] == "present" and len(portals_of(item)) > 1


def _paths(item):
    """``[(portal, by-path device)]`` of every portal of an item."""
    return [(p, device_path(p, item["target_iqn"], item["target_lun"])) for p in portals_of(item)]


def _target_keys(iqn, keys):
    """The ``(iqn, portal)`` keys of ``keys`` (sessions or node records) that belong to target ``iqn``, sorted."""
    return sorted(key for key in keys if key[0] == iqn)


def _wants_qos(item):
    return item["state"] == "present" and item.get("qos") is not None


def _unit(item):
    return item.get("qos_cgroup") or _qos.DEFAULT_CGROUP


def _read_text(path):
    with open(path) as handle:
        return handle.read()


def read_host(iscsi, items):
    """What the decision needs from the consumer: ``sessions`` and ``nodes`` (``{(target_iqn, portal)}``, from
    iscsiadm), ``devices`` (``{by-path: kernel device or None}`` of every item), ``in_use`` (``{by-path:
    [mount points and holders]}`` of the logged-in devices to log out) and, for the items with ``qos``,
    ``cgroups`` (``{unit: {path, io} or {error}}``, :func:`_qos.resolve_cgroup`) and ``qos`` (``{by-path:
    {device: MAJ:MIN, current: io.max limits} or {error}}`` of the devices already there)."""
    sessions = {(s["target_iqn"], s["portal"]) for s in iscsi.sessions()}
    nodes = {(n["target_iqn"], n["portal"]) for n in iscsi.nodes()}
    devices, in_use, cgroups, qos, records, sizes, maps = {}, {}, {}, {}, {}, {}, {}
    sys_block = getattr(iscsi, "sys_block", SYS_BLOCK)
    for item in items:
        portal, key, path = _where(item)
        iqn = item["target_iqn"]
        for _other, other_path in _paths(item):
            devices[other_path] = real_device(other_path)
        if item["state"] == "absent":
            # A logout covers every portal the consumer has a session or a record on (a node that had several
            # storage addresses, or had another one earlier); the map over those sessions is flushed first.
            for other in _target_keys(iqn, sessions | nodes):
                other_path = device_path(other[1], iqn, item["target_lun"])
                devices.setdefault(other_path, real_device(other_path))
            session_devices = [devices[device_path(k[1], iqn, item["target_lun"])]
                               for k in _target_keys(iqn, sessions)]
            maps[iqn] = multipath_map(session_devices, sys_block)
            users = []
            ignore = (maps[iqn]["dm"],) if maps[iqn] else ()
            if maps[iqn]:
                users.extend(device_in_use(maps[iqn]["real_device"]))
            for dev in session_devices:
                if dev is not None:
                    users.extend(u for u in device_in_use(dev, ignore_holders=ignore,
                                                          ignore_openers=MULTIPATH_OPENERS if ignore else ())
                                 if u not in users)
            if users:
                in_use[path] = users
        elif _multipath(item):
            maps[iqn] = multipath_map([devices[p] for _portal, p in _paths(item)], sys_block)
        target = _target_device(item, devices, maps)
        if target is not None:
            sizes[path] = device_size(target, sys_block)
        if _manages_target_auth(item) and key in sessions and key not in records:
            records[key] = _inbound(iscsi, item["target_iqn"], portal)
        if not _wants_qos(item):
            continue
        unit = _unit(item)
        if unit not in cgroups:
            try:
                cgroups[unit] = _qos.resolve_cgroup(iscsi.runner, unit)
            except _qos.CgroupError as exc:
                cgroups[unit] = {"error": str(exc)}
        cgroup = cgroups[unit]
        if key not in sessions or target is None or "error" in cgroup:
            continue
        try:
            number = _qos.device_number(target)
            current = _qos.limits_of(_read_text(os.path.join(cgroup["path"], "io.max")), number) \
                if cgroup["io"] else {}
        except (OSError, ValueError) as exc:
            qos[path] = {"error": "cannot read the io.max limits of %s (%s): %s" % (path, target, exc)}
        else:
            qos[path] = {"device": number, "current": current}
    multipathd = multipathd_running(getattr(iscsi, "multipathd_pidfile", None) or MULTIPATHD_PIDFILE) \
        if any(_multipath(item) for item in items) else None
    return {"sessions": sessions, "nodes": nodes, "devices": devices, "in_use": in_use, "cgroups": cgroups,
            "qos": qos, "records": records, "sizes": sizes, "maps": maps, "multipathd": multipathd}


def _target_device(item, devices, maps):
    """The kernel device a present item's volume is used through: the dm-multipath map (``/dev/dm-N``) over its
    paths with several portals (None until it holds every path), else the by-path device's."""
    if _multipath(item):
        found = maps.get(item["target_iqn"])
        return found["real_device"] if found and found["complete"] else None
    return devices.get(_where(item)[2])


def _inbound(iscsi, target_iqn, portal):
    """``(username_in, password_in)`` of a logged-in node's record file (None for an unset value), or None when
    the record file is not found or cannot be read (then the record is left as it is)."""
    try:
        values = iscsi.read_record(target_iqn, portal)
    except (OSError, UnicodeDecodeError):
        return None
    if values is None:
        return None
    return tuple(values.get(key) if values.get(key) not in ("", "<empty>") else None
                 for key in (USERNAME_IN_KEY, SECRET_IN_KEY))


def secrets_of_state(state):
    """The target secrets read from node records (for the module's ``no_log_values``)."""
    return {rec[1] for rec in (state.get("records") or {}).values() if rec and rec[1]}


def _decide_qos(act, state, where):
    """Set ``qos`` (the io.max limits wanted, None when the item does not manage them), ``qos_changed`` and what
    :meth:`ConnectionApplier.apply_qos` needs; returns an error or None."""
    requested = act["qos_requested"]
    act.update(qos=None, qos_changed=False, qos_path=None)
    if act["state"] != "present" or requested is None:
        return None
    wanted = act["qos"] = _qos.validate_qos_specs(requested)
    cgroup = (state.get("cgroups") or {}).get(_unit(act)) or {"error": "its cgroup was not read"}
    if "error" in cgroup:
        return "%s.qos_cgroup: %s" % (where, cgroup["error"])
    act["qos_path"] = cgroup["path"]
    if act["action"] in ("login", "rescan"):
        # A disk that appears gets a new request queue: the kernel keeps no io.max line for it yet.
        act["qos_changed"] = bool(wanted)
    else:
        info = (state.get("qos") or {}).get(act["path"]) or {"error": "its io.max limits were not read"}
        if "error" in info:
            return "%s.qos: %s" % (where, info["error"])
        act["qos_changed"] = info["current"] != wanted
    if act["qos_changed"]:
        act["changed"] = True
    return None


def _decide_multipath(act, item, state, where, check_mode):
    """The decision of a present item with several portals (dm-multipath): ``login`` on the portals without a
    session (``login_portals``), ``rescan`` of the sessions whose device is missing or whose map is not there or
    lacks a path (``rescan_portals``), ``resize`` when the map is smaller than the volume, else ``none``; the
    ``device`` is the map's ``/dev/mapper/<name>``. Returns an error or None."""
    iqn = item["target_iqn"]
    paths = _paths(item)
    act["paths"] = [p for _portal, p in paths]
    if not state.get("multipathd") and not check_mode:
        return ("%s.target_portals: target %s is reached on %d portals (%s); using them needs dm-multipath, and "
                "multipathd does not run on this host: install the multipath-tools package and start multipathd "
                "(the ember.blockstore.iscsi_initiator role does with iscsi_initiator_multipath: true), or give "
                "one portal" % (where, iqn, len(paths), ", ".join(p for p, _path in paths)))
    found = (state.get("maps") or {}).get(iqn)
    missing = [p for p, _path in paths if (iqn, p) not in state["sessions"]]
    act["session_portals"] = [p for p, _path in paths if (iqn, p) in state["sessions"]]
    if missing:
        act.update(action="login", changed=True, login_portals=missing)
        act["device"] = found["device"] if found else None
        return None
    no_device = [p for p, path in paths if state["devices"].get(path) is None]
    if no_device or not found or not found["complete"]:
        # Logged in everywhere, but a LUN is not there, or multipathd has not (yet) made the map over every path:
        # rescan (the uevents make multipathd look at the paths again) and wait for the map.
        act.update(action="rescan", changed=True, rescan_portals=no_device or [p for p, _path in paths])
        act["device"] = found["device"] if found else None
        return None
    act.update(device=found["device"], real_device=found["real_device"], multipath=found["name"])
    act["size_bytes"] = (state.get("sizes") or {}).get(act["path"])
    if item.get("size_bytes") and (act["size_bytes"] or 0) < item["size_bytes"]:
        act.update(action="resize", changed=True, rescan_portals=[p for p, _path in paths])
    return None


def decide(items, state, force=False, field="connections", check_mode=False):
    """``(actions, errors)`` from validated items and :func:`read_host` (pure). Each action is the item with its
    normalised ``target_portal``, its by-path ``device``, ``action`` and ``changed``, and ``real_device`` when
    logged in. An existing session is left as it is; one whose device is missing is rescanned, one whose device is
    smaller than the item's ``size_bytes`` is rescanned for its new size (``resize``). A CHAP item of an
    existing session whose record's mutual CHAP credentials (``username_in``/``password_in``) are not the item's
    gets them written (``record_update``; ``action: update`` unless it is rescanned), without a new login. A logout
    of a device in use (without ``force``, or the item's own) is ``refused``: it fails at its turn, after the
    items before it.

    With ``qos`` (not None) a present item also carries the io.max limits wanted (``qos``) and whether they must
    be written (``qos_changed``, which makes the item ``changed``); ``qos: {}`` clears the device's limits, an item
    without ``qos`` leaves io.max alone. A slice or unit whose cgroup cannot carry io.max is an error (before any
    change)."""
    actions, errors = [], []
    for index, item in enumerate(items):
        portal, key, path = _where(item)
        act = dict(item, target_portal=portal, path=path, action="none", changed=False, device=None,
                   real_device=None, logout=False, record_update=False, qos_requested=item.get("qos"),
                   size_bytes=None, volume_size_bytes=item.get("size_bytes"), paths=[path], multipath=None,
                   target_portals=portals_of(item), login_portals=[portal], rescan_portals=[portal],
                   logout_keys=[], node_keys=[])
        if _multipath(item):
            error = _decide_multipath(act, item, state, "%s[%d]" % (field, index), check_mode)
            if error:
                errors.append(error)
            record = (state.get("records") or {}).get(key)
            if not error and _manages_target_auth(item) and record is not None and record != _target_auth(item):
                act.update(record_update=True, changed=True)
                if act["action"] == "none":
                    act["action"] = "update"
            error = error or _decide_qos(act, state, "%s[%d]" % (field, index))
            if error and error not in errors:
                errors.append(error)
            actions.append(act)
            continue
        if item["state"] == "present":
            act["device"] = path
            if key not in state["sessions"]:
                act.update(action="login", changed=True)
            else:
                act["real_device"] = state["devices"].get(path)
                act["size_bytes"] = (state.get("sizes") or {}).get(path)
                if act["real_device"] is None:
                    # Logged in, but the LUN is not there (it was added to the target live): rescan the session.
                    act.update(action="rescan", changed=True)
                elif item.get("size_bytes") and (act["size_bytes"] or 0) < item["size_bytes"]:
                    # The volume grew (online extend): the kernel reads the new capacity on a rescan.
                    act.update(action="resize", changed=True)
                record = (state.get("records") or {}).get(key)
                if _manages_target_auth(item) and record is not None and record != _target_auth(item):
                    # The session keeps what it logged in with; the record gets the credentials of the next login.
                    act.update(record_update=True, changed=True)
                    if act["action"] == "none":
                        act["action"] = "update"
        elif _target_keys(item["target_iqn"], state["sessions"] | state["nodes"]):
            # Every portal of the target: the sessions are logged out, the records deleted.
            found = (state.get("maps") or {}).get(item["target_iqn"])
            act.update(action="logout", changed=True,
                       logout=bool(_target_keys(item["target_iqn"], state["sessions"])),
                       logout_keys=_target_keys(item["target_iqn"], state["sessions"]),
                       node_keys=_target_keys(item["target_iqn"], state["sessions"] | state["nodes"]),
                       multipath=found["name"] if found else None)
            users = state["in_use"].get(path)
            if users and not (force or item.get("force")):
                act["refused"] = "%s (%s) is in use (%s); unmount it first or set force: true" % (
                    path, item["target_iqn"], ", ".join(users))
        error = _decide_qos(act, state, "%s[%d]" % (field, index))
        if error:
            errors.append(error)
        actions.append(act)
    return actions, errors


class ConnectionApplier:
    """Runs the decided actions (``iscsi``: drivers.iscsiadm.Iscsiadm); ``warn(text)`` is the module's warn."""

    def __init__(self, iscsi, wait_timeout, warn, force=False):
        self.iscsi = iscsi
        self.wait_timeout = wait_timeout
        self.warn = warn
        self.force = force

    def apply(self, act):
        if act["action"] == "logout":
            self.logout(act)
        elif _multipath(act):
            self.apply_multipath(act)
        else:
            self.apply_single(act)
        if act["qos"] is not None:
            self.apply_qos(act)

    def logout(self, act):
        """Flush the dm-multipath map over the target's sessions (when there is one), then log out of every portal
        and delete every node record of the target."""
        iqn = act["target_iqn"]
        if act.get("multipath"):
            self.iscsi.flush_multipath(act["multipath"], force=bool(self.force or act.get("force")))
        for _iqn, portal in act["logout_keys"]:
            self.iscsi.logout(iqn, portal)
        for _iqn, portal in act["node_keys"]:
            self.iscsi.delete_node(iqn, portal)

    def _login(self, act, portal):
        username_in, password_in = _target_auth(act)
        extra = {}
        if _multipath(act):
            # A lost session hands its I/O to dm-multipath after this many seconds instead of open-iscsi's 120,
            # so the other path takes it over (Red Hat's DM Multipath guide: 5-15 s with multipath).
            extra["settings_extra"] = [("node.session.timeo.replacement_timeout", str(MULTIPATH_REPLACEMENT_TIMEOUT))]
        via = self.iscsi.login(act["target_iqn"], portal, act["auth_username"], act["auth_password"],
                               act["auth_method"], username_in=username_in, password_in=password_in, **extra)
        if via == "argv":
            self.warn("the node record of %s was not found under %s: the CHAP secret was passed on iscsiadm's "
                      "command line" % (act["target_iqn"], " or ".join(NODE_DIRS)))

    def apply_multipath(self, act):
        """Log in on (or rescan) the portals the decision named, wait for each path's device, then for the
        dm-multipath map holding all of them; ``resize`` grows the paths and then the map."""
        iqn = act["target_iqn"]
        if act.get("record_update"):
            username_in, password_in = _target_auth(act)
            for portal in act["session_portals"]:
                via = self.iscsi.set_target_auth(iqn, portal, username_in, password_in)
                if via == "argv":
                    self.warn("the node record of %s at %s was not found under %s: the target's CHAP secret was "
                              "passed on iscsiadm's command line" % (iqn, portal, " or ".join(NODE_DIRS)))
        if act["action"] == "login":
            for portal in act["login_portals"]:
                self._login(act, portal)
        elif act["action"] in ("rescan", "resize"):
            for portal in act["rescan_portals"]:
                self.iscsi.rescan(iqn, portal)
        if act["action"] == "none" or act["action"] == "update":
            return
        devices = []
        for path in act["paths"]:
            real = self.iscsi.wait_for_device(path, self.wait_timeout)
            if real is None:
                raise RuntimeError("logged in to %s but %s did not appear within %d s"
                                   % (iqn, path, self.wait_timeout))
            devices.append(real)
        if act["action"] == "resize":
            wanted = act["volume_size_bytes"]
            for real in devices:
                size = self.iscsi.wait_for_size(real, wanted, self.wait_timeout)
                if (size or 0) < wanted:
                    raise RuntimeError("%s shows %s bytes after the rescan of %s, not the volume's %d; the target "
                                       "did not present the new size: detach the volume and attach it again"
                                       % (real, size, iqn, wanted))
            self.iscsi.resize_multipath(act["multipath"])
        found = self.wait_for_map(act, devices)
        act.update(device=found["device"], real_device=found["real_device"], multipath=found["name"])
        act["size_bytes"] = device_size(found["real_device"], self.sys_block())
        if act["action"] == "resize" and (act["size_bytes"] or 0) < act["volume_size_bytes"]:
            act["size_bytes"] = self.iscsi.wait_for_size(found["real_device"], act["volume_size_bytes"],
                                                         self.wait_timeout)
            if (act["size_bytes"] or 0) < act["volume_size_bytes"]:
                raise RuntimeError("the dm-multipath map %s of %s shows %s bytes after multipathd resize, not the "
                                   "volume's %d" % (found["device"], iqn, act["size_bytes"],
                                                    act["volume_size_bytes"]))

    def sys_block(self):
        return getattr(self.iscsi, "sys_block", SYS_BLOCK)

    def wait_for_map(self, act, devices):
        """Wait (up to ``wait_timeout``) until one dm-multipath map holds every path device; RuntimeError naming
        what to check when it does not. When the first look finds no complete map, ``multipath <first path>``
        asks for it once: multipathd makes maps from the uevents of new paths, so a map that was flushed while its
        paths stayed (``multipath -F`` by hand; found on the lab) is not made again by a rescan alone."""
        deadline = time.monotonic() + self.wait_timeout
        asked = False
        while True:
            found = multipath_map(devices, self.sys_block())
            if found and found["complete"]:
                return found
            if not asked and devices:
                asked = True
                self.iscsi.create_multipath(devices[0])
                continue
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    "logged in to %s on %s, but %s within %d s: check that multipathd runs, that /etc/multipath.conf "
                    "does not blacklist these devices and that they report the same WWID (multipathd show paths; "
                    "/lib/udev/scsi_id -g -u -d /dev/sdX)"
                    % (act["target_iqn"], ", ".join(act["target_portals"]),
                       "the dm-multipath map %s does not hold all of %s" % (found["name"], ", ".join(devices))
                       if found else "no dm-multipath map holds %s" % ", ".join(devices), self.wait_timeout))
            self.iscsi.runner.run(["udevadm", "settle", "--timeout=5"], check=False)
            time.sleep(0.5)

    def apply_single(self, act):
        iqn, portal = act["target_iqn"], act["target_portal"]
        username_in, password_in = _target_auth(act)
        if act.get("record_update"):
            via = self.iscsi.set_target_auth(iqn, portal, username_in, password_in)
            if via == "argv":
                self.warn("the node record of %s was not found under %s: the target's CHAP secret was passed on "
                          "iscsiadm's command line" % (iqn, " or ".join(NODE_DIRS)))
        if act["action"] == "rescan":
            self.iscsi.rescan(iqn, portal)
            self.wait(act)
        elif act["action"] == "resize":
            self.iscsi.rescan(iqn, portal)
            wanted = act["volume_size_bytes"]
            act["size_bytes"] = self.iscsi.wait_for_size(act["real_device"], wanted, self.wait_timeout)
            if (act["size_bytes"] or 0) < wanted:
                raise RuntimeError("%s (%s) shows %s bytes after the rescan of %s, not the volume's %d; the target "
                                   "did not present the new size: detach the volume and attach it again"
                                   % (act["path"], act["real_device"], act["size_bytes"], iqn, wanted))
        elif act["action"] == "login":
            self._login(act, portal)
            self.wait(act)

    def apply_qos(self, act):
        """Write the device's io.max line in the item's cgroup when it differs from the limits wanted (read again
        here: after a login the device is new); sets ``qos_changed``. When the io controller is not enabled for
        that cgroup, systemd enables it (:func:`_qos.io_accounting_command`), only when there is a limit to set.
        RuntimeError when the kernel refuses the line or does not show it afterwards."""
        wanted, unit, cgroup = act["qos"], _unit(act), act["qos_path"]
        enabled = _qos.io_enabled(cgroup)
        if not enabled and wanted:
            args = _qos.io_accounting_command(unit)
            self.iscsi.runner.run(args)
            if not _qos.io_enabled(cgroup):
                raise RuntimeError("the io controller is still not enabled for %s (%s) after %s: enable it in "
                                   "the parent's cgroup.subtree_control, or name another slice in qos_cgroup"
                                   % (unit, cgroup, " ".join(args)))
            enabled = True
        act["qos_changed"] = False
        if enabled:
            io_max = os.path.join(cgroup, "io.max")
            try:
                number = _qos.device_number(act["real_device"])
                if _qos.io_max_differs(_read_text(io_max), number, wanted):
                    with open(io_max, "w") as handle:
                        handle.write(_qos.format_io_max(number, wanted) + "\n")
                    act["qos_changed"] = True
                    if _qos.io_max_differs(_read_text(io_max), number, wanted):
                        raise RuntimeError("%s does not show the limits %s for %s after writing them"
                                           % (io_max, _qos.format_io_max(number, wanted), act["real_device"]))
            except (OSError, ValueError) as exc:
                raise RuntimeError("cannot set the io.max limits of %s (%s) in %s: %s"
                                   % (act["path"], act["real_device"], io_max, exc)) from exc
        act["changed"] = act["action"] != "none" or act["qos_changed"]

    def wait(self, act):
        """Wait for the device after a login or rescan; RuntimeError when it does not appear in time."""
        real = self.iscsi.wait_for_device(act["path"], self.wait_timeout)
        if real is None:
            raise RuntimeError("logged in to %s but %s did not appear within %d s"
                               % (act["target_iqn"], act["path"], self.wait_timeout))
        act["real_device"] = real
        act["size_bytes"] = device_size(real)
