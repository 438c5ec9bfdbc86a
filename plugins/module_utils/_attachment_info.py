# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ``attachment_info`` module reports: the project's exports as the storage node holds them (target files
and live tgt targets) and its connections as a consumer holds them (open-iscsi sessions and node records, the
devices, dm-multipath maps over them).

Parsers and assembly are pure (text and dicts in, result items out). The readers of sysfs take their root as an
argument (default :data:`SYS_CLASS_BLOCK`, looked up at call time) so the tests can point them at a tree of files.
The drivers' parsers are reused (``tgt.parse_show``, ``tgt.parse_conf``, ``iscsiadm.parse_sessions``/``parse_nodes``);
what they do not extract is parsed here: per I_T nexus sessions, incoming and outgoing CHAP accounts of a live
target, the ACL a target file binds, and the status of a dm-multipath map (``dmsetup status``).
"""

from __future__ import annotations

import os
import re

from ansible_collections.ember.blockstore.plugins.module_utils._naming import LV_PREFIX, is_volume_name
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import device_path, normalize_portal
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import read_text as _read
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import is_managed_conf, parse_conf

__all__ = ["SYS_CLASS_BLOCK", "TGT_MB", "LUN", "parse_show_details", "conf_acl", "conf_outgoing_user",
           "parse_multipath_status", "volume_of_iqn", "live_problems", "storage_view", "consumer_records",
           "read_block_facts", "read_multipath", "consumer_view"]

SYS_CLASS_BLOCK = "/sys/class/block"
# tgtadm prints a LUN's size as a whole number of megabytes of 10^6 bytes (usr/target.c print_disksize: an
# integer approximation of size / 10^6), so its figure is within about 1 MB of the device's size.
TGT_MB = 1000 * 1000
LUN = 1  # the volume's LUN in its target (LUN 0 is tgt's controller)
SECTOR = 512  # /sys/class/block/<dev>/size counts 512-byte sectors whatever the device's block size
# dm-multipath path states in the map's status (drivers/md/dm-mpath.c multipath_status).
_DM_PATH_STATES = {"A": "active", "F": "failed"}
_DM_GROUP_STATES = {"A": "active", "E": "enabled", "D": "disabled"}


# --- parsers -------------------------------------------------------------------------------------------------------

def parse_show_details(text):
    """What ``tgt.parse_show`` does not keep of ``tgtadm --lld iscsi --mode target --op show``:
    ``{iqn: {nexuses: [{nexus, initiator, alias, addresses}], incoming: [user], outgoing: [user]}}``.

    ``nexuses``: one per I_T nexus (an iSCSI session), with the IP address of each of its connections; ``alias`` is
    None when the initiator sends none (tgt prints ``none``). ``incoming``/``outgoing``: the CHAP accounts bound to
    the target; tgt prints the outgoing one (mutual CHAP) as ``<user> (outgoing)``."""
    targets = {}
    target = None
    section = None
    nexus = None
    for raw in text.splitlines():
        line = raw.strip()
        match = re.match(r"^Target (\d+): (\S+)$", raw)
        if match:
            target = {"nexuses": [], "incoming": [], "outgoing": []}
            targets[match.group(2)] = target
            section = nexus = None
            continue
        if target is None or not line:
            continue
        if re.match(r"^[A-Z][A-Za-z_ ]+ information:$", line):
            section = line[:-len(" information:")]
            nexus = None
            continue
        if section == "I_T nexus":
            if line.startswith("I_T nexus:"):
                nexus = {"nexus": int(line.split(":", 1)[1]), "initiator": None, "alias": None, "addresses": []}
                target["nexuses"].append(nexus)
            elif nexus is not None and line.startswith("Initiator:"):
                match = re.match(r"^Initiator:\s+(\S+)(?:\s+alias:\s+(\S+))?", line)
                nexus["initiator"] = match.group(1)
                nexus["alias"] = None if match.group(2) in (None, "none") else match.group(2)
            elif nexus is not None and line.startswith("IP Address:"):
                address = line.split(":", 1)[1].strip()
                if address not in nexus["addresses"]:
                    nexus["addresses"].append(address)
        elif section == "Account":
            match = re.match(r"^(\S+)\s+\(outgoing\)$", line)
            if match:
                target["outgoing"].append(match.group(1))
            else:
                target["incoming"].append(line.split()[0])
    return targets


def conf_acl(text):
    """The ACL ``tgt-admin`` binds from one target file: its ``initiator-address`` entries, or ``ALL`` when it
    has none (tgt-admin's default), followed by its ``initiator-name`` directives (the project records IQNs as
    ``# initiator-name`` comments, which bind nothing)."""
    addresses = parse_conf(text)["addresses"]
    names = re.findall(r"(?m)^\s*initiator-name\s+(\S+)\s*$", text)
    return (addresses or ["ALL"]) + names


def conf_outgoing_user(text):
    """The user of a target file's ``outgoinguser`` line (mutual CHAP), or None. The secret is never read."""
    match = re.search(r"(?m)^\s*outgoinguser\s+(\S+)", text)
    return match.group(1) if match else None


class _Tokens:
    """The words of one status line, taken in order; ValueError naming the line when they run out or a count is
    not a number."""

    def __init__(self, words, line):
        self.words = words
        self.line = line.strip()
        self.pos = 0

    def take(self, count=1):
        if self.pos + count > len(self.words):
            raise ValueError("truncated multipath status: %r" % self.line)
        out = self.words[self.pos:self.pos + count]
        self.pos += count
        return out

    def number(self):
        value = self.take()[0]
        if not value.isdigit():
            raise ValueError("expected a number, not %r, in %r" % (value, self.line))
        return int(value)


def parse_multipath_status(text):
    """The path states of a dm-multipath map from ``dmsetup status <map>`` (drivers/md/dm-mpath.c
    ``multipath_status``, STATUSTYPE_INFO): ``{"<major>:<minor>": {dm_state, failures, group, group_state}}``.

    ``dm_state`` is ``active`` or ``failed`` (A/F), ``failures`` the path's fail count, ``group`` the 1-based
    priority group and ``group_state`` ``active``, ``enabled`` or ``disabled`` (A/E/D). A line may start with the
    map's name (``dmsetup status`` without a name). Raises ValueError on anything that is not a multipath status."""
    paths = {}
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty dmsetup status")
    for line in lines:
        words = line.split()
        if words[0].endswith(":"):
            words = words[1:]
        if len(words) < 3 or words[2] != "multipath":
            raise ValueError("not a multipath map: %r" % line.strip())
        tokens = _Tokens(words[3:], line)
        tokens.take(tokens.number())  # features
        tokens.take(tokens.number())  # hardware handler
        groups = tokens.number()
        tokens.number()  # the next (or current) priority group
        for group in range(1, groups + 1):
            group_state = tokens.take()[0]
            tokens.take(tokens.number())  # path selector status of the group
            count, info_args = tokens.number(), tokens.number()
            for _path in range(count):
                dev, state, failures = tokens.take(3)
                if state not in _DM_PATH_STATES or not failures.isdigit():
                    raise ValueError("unexpected path %s %s %s in %r" % (dev, state, failures, line.strip()))
                tokens.take(info_args)
                paths[dev] = {"dm_state": _DM_PATH_STATES[state], "failures": int(failures), "group": group,
                              "group_state": _DM_GROUP_STATES.get(group_state, group_state)}
    return paths


def volume_of_iqn(iqn, prefix):
    """The volume an IQN of the project names (``<prefix>volume-<name>``), or None."""
    if not iqn.startswith(prefix):
        return None
    tail = iqn[len(prefix):]
    if not tail.startswith(LV_PREFIX):
        return None
    name = tail[len(LV_PREFIX):]
    return name if is_volume_name(name) else None


def _conf_volume(path):
    """The volume a target file's name names (``ember-volume-<name>.conf``), or None."""
    base = os.path.basename(path)
    if not (base.startswith("ember-" + LV_PREFIX) and base.endswith(".conf")):
        return None
    name = base[len("ember-" + LV_PREFIX):-len(".conf")]
    return name if is_volume_name(name) else None


# --- storage view --------------------------------------------------------------------------------------------------

def live_problems(conf, live, details):
    """What differs between a target file and its live target: a list of sentences, empty when the live target's
    LUN 1 backing store, ACL and CHAP accounts (incoming and outgoing users) are the file's.

    ``conf``: ``{backing_store, acl, chap_username, outgoing_user}`` of the file; ``live``: the ``parse_show``
    entry or None; ``details``: the :func:`parse_show_details` entry."""
    if live is None:
        return ["the target is not live"]
    problems = []
    backing = (live["luns"].get(LUN) or {}).get("backing_store")
    if backing != conf["backing_store"]:
        problems.append("LUN %d is %s, not %s" % (LUN, backing or "missing", conf["backing_store"]))
    if sorted(live["acl"]) != sorted(conf["acl"]):
        problems.append("ACL is %s, not %s" % (sorted(live["acl"]) or "empty", sorted(conf["acl"])))
    want = [conf["chap_username"]] if conf["chap_username"] else []
    incoming = sorted(details["incoming"])
    if incoming != want:
        problems.append("incoming CHAP accounts are %s, not %s" % (incoming or "none", want or "none"))
    want = [conf["outgoing_user"]] if conf["outgoing_user"] else []
    if details["outgoing"] != want:
        problems.append("outgoing CHAP account is %s, not %s" % (details["outgoing"] or "none", want or "none"))
    return problems


def _size_bytes(text):
    """Bytes of tgtadm's ``1074 MB`` (megabytes of 10^6 bytes), or None."""
    match = re.match(r"^(\d+)\s*MB$", text or "")
    return int(match.group(1)) * TGT_MB if match else None


def storage_view(files, live, details, portals, prefix, names=None, backing_size=None):
    """One item per target of the project on a storage node, sorted by target IQN.

    ``files``: ``{path: text}`` of the ``ember-*.conf`` target files; those with the project's header
    (``tgt.is_managed_conf``) are the project's targets. ``live``/``details``: ``tgt.parse_show`` and
    :func:`parse_show_details` of ``tgtadm --op show`` (``{}`` when tgtd does not run). A live target whose IQN
    starts with ``prefix`` and has no such file is reported with ``managed: false``. ``portals``: what tgtd
    listens on. ``names``: report only these volumes. ``backing_size(path)``: the exact size in bytes of a
    backing store, or None (default: not read). No secret is read from a file or returned."""
    entries = {}
    for path, text in sorted(files.items()):
        conf = parse_conf(text)
        if not conf["iqn"] or not is_managed_conf(text, conf["iqn"]):
            continue
        entries[conf["iqn"]] = {"path": path, "volume": _conf_volume(path) or volume_of_iqn(conf["iqn"], prefix),
                                "backing_store": conf["backing_store"], "acl": conf_acl(text),
                                "initiators": sorted(set(conf["initiators"])), "chap_username": conf["chap_username"],
                                "outgoing_user": conf_outgoing_user(text)}
    for iqn in live:
        if iqn.startswith(prefix) and iqn not in entries:
            entries[iqn] = None
    out = []
    for iqn in sorted(entries):
        conf = entries[iqn]
        target = live.get(iqn)
        detail = details.get(iqn) or {"nexuses": [], "incoming": [], "outgoing": []}
        volume = conf["volume"] if conf else volume_of_iqn(iqn, prefix)
        if names is not None and volume not in names:
            continue
        lun = (target["luns"].get(LUN) or {}) if target else {}
        backing_store = lun.get("backing_store") if target else conf["backing_store"]
        if conf:
            problems = live_problems(conf, target, detail)
        else:
            problems = ["no target file of the project for this target"]
        out.append({
            "volume": volume, "target_iqn": iqn, "managed": conf is not None,
            "conf_path": conf["path"] if conf else None, "live": target is not None,
            "tid": target["tid"] if target else None, "state": target["state"] if target else None,
            "portals": list(portals), "lun": LUN, "backing_store": backing_store,
            "size_bytes": _size_bytes(lun.get("size")),
            "backing_size_bytes": backing_size(backing_store) if backing_size and backing_store else None,
            "acl": list(target["acl"]) if target else list(conf["acl"]),
            "initiators": conf["initiators"] if conf else [],
            "chap_username": conf["chap_username"] if conf else (detail["incoming"] or [None])[0],
            "mutual_chap": bool((conf and conf["outgoing_user"]) or detail["outgoing"]),
            "sessions": [{"nexus": n["nexus"], "initiator": n["initiator"], "alias": n["alias"],
                          "addresses": list(n["addresses"])} for n in detail["nexuses"]],
            "file_matches_live": not problems if conf else None,
            "problems": problems,
        })
    return out


# --- consumer view -------------------------------------------------------------------------------------------------

def consumer_records(sessions, nodes, prefix, names=None):
    """One item per (target IQN, portal) of the project's targets that has a session or a node record, sorted:
    ``{volume, target_iqn, portal, logged_in, node_record, device}`` (``device``: the by-path link of LUN 1 through
    that portal, whether it exists or not). ``sessions``/``nodes``: ``iscsiadm.parse_sessions``/``parse_nodes``."""
    records = {}
    for kind, items in (("logged_in", sessions), ("node_record", nodes)):
        for item in items:
            if not item["target_iqn"].startswith(prefix):
                continue
            portal = normalize_portal(item["portal"])
            key = (item["target_iqn"], portal)
            volume = volume_of_iqn(item["target_iqn"], prefix)
            if names is not None and volume not in names:
                continue
            record = records.setdefault(key, {"volume": volume, "target_iqn": item["target_iqn"], "portal": portal,
                                              "logged_in": False, "node_record": False,
                                              "device": device_path(portal, item["target_iqn"], LUN)})
            record[kind] = True
    return [records[key] for key in sorted(records)]


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def read_block_facts(name, sys_block=None):
    """``{size_bytes, holders, dev}`` of the block device ``name`` (``sdb``, ``dm-0``) from sysfs: size in bytes
    (512-byte sectors x 512), the names of its holders and its ``major:minor``; None values when unreadable."""
    base = os.path.join(sys_block or SYS_CLASS_BLOCK, name)
    sectors = _read(os.path.join(base, "size"))
    return {"size_bytes": int(sectors) * SECTOR if sectors and sectors.isdigit() else None,
            "holders": _listdir(os.path.join(base, "holders")), "dev": _read(os.path.join(base, "dev"))}


def read_multipath(name, sys_block=None):
    """The dm-multipath map ``name`` (``dm-3``) from sysfs, or None when it is not one (its ``dm/uuid`` does not
    start with ``mpath-``): ``{name, dm, uuid, paths: [{name, dev, state}]}`` with each path's SCSI device state
    (``/sys/class/block/<sd>/device/state``: ``running``, ``offline``, ``blocked``, ``transport-offline``...)."""
    base = os.path.join(sys_block or SYS_CLASS_BLOCK, name)
    uuid = _read(os.path.join(base, "dm", "uuid")) or ""
    if not uuid.startswith("mpath-"):
        return None
    paths = []
    for slave in _listdir(os.path.join(base, "slaves")):
        facts = read_block_facts(slave, sys_block)
        paths.append({"name": slave, "dev": facts["dev"],
                      "state": _read(os.path.join(sys_block or SYS_CLASS_BLOCK, slave, "device", "state"))})
    return {"name": _read(os.path.join(base, "dm", "name")), "dm": name, "uuid": uuid, "paths": paths}


def _multipath_item(mpath, status_text, status_error, in_use):
    """The ``multipath`` result of a map read by :func:`read_multipath` and its ``dmsetup status`` (text, or None
    with ``status_error`` saying why it was not read)."""
    states, error = {}, status_error
    if status_text is not None:
        try:
            states = parse_multipath_status(status_text)
        except ValueError as exc:
            error = "dmsetup status of %s is not read: %s" % (mpath["name"], exc)
    paths = []
    for path in mpath["paths"]:
        dm = states.get(path["dev"]) or {}
        paths.append({"device": "/dev/%s" % path["name"], "state": path["state"], "dm_state": dm.get("dm_state"),
                      "failures": dm.get("failures"), "group_state": dm.get("group_state")})
    return {"name": mpath["name"], "device": "/dev/mapper/%s" % mpath["name"], "dm_device": "/dev/%s" % mpath["dm"],
            "in_use": list(in_use), "paths": paths, "dm_status_error": error}


def consumer_view(records, resolve, in_use, dm_status, sys_block=None):
    """The consumer items: each of :func:`consumer_records` with ``real_device`` (``resolve(by_path)``: the kernel
    device or None), ``size_bytes``, ``in_use`` (``in_use(real_device)``: mount points and ``holder:<dev>``
    entries, as ``iscsiadm.device_in_use`` returns them) and ``multipath`` (None, or the dm-multipath map that
    holds the device, with each path's SCSI state and, from ``dm_status(map name)`` -> ``(text, error)``, its
    state in the map). A map's status is read once however many records it holds."""
    statuses = {}
    out = []
    for record in records:
        real = resolve(record["device"])
        item = dict(record, device=record["device"] if real else None, real_device=real, size_bytes=None,
                    in_use=[], multipath=None)
        if real:
            name = os.path.basename(real)
            facts = read_block_facts(name, sys_block)
            item["size_bytes"] = facts["size_bytes"]
            item["in_use"] = list(in_use(real))
            for holder in facts["holders"]:
                mpath = read_multipath(holder, sys_block)
                if mpath is None:
                    continue
                if mpath["name"] not in statuses:
                    statuses[mpath["name"]] = dm_status(mpath["name"]) if mpath["name"] else (
                        None, "the map %s has no name in sysfs" % holder)
                text, error = statuses[mpath["name"]]
                item["multipath"] = _multipath_item(mpath, text, error, in_use("/dev/%s" % holder))
                break
        out.append(item)
    return out
