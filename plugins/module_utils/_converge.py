# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn a plan (from ``plugin_utils/scheduler/filter_scheduler.plan``) into the batch items of each converge
phase, and build the report.

Pure functions over plain data, used through the ``ember.blockstore`` filters ``volume_items``,
``attachment_items``, ``disconnect_items`` and ``report_table`` in the ``blockstore`` role (the report itself
is built in ``plugin_utils/report.py``). Each phase runs its
module once per host with the whole list.
"""

from __future__ import annotations

import os

from ansible_collections.ember.blockstore.plugins.module_utils._argspec import (
    DEFAULT_MOUNT_OPTIONS,
    DEFAULT_MOUNT_POINT_BASE,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import DEFAULT_TARGET_PREFIX, lv_name, target_iqn
from ansible_collections.ember.blockstore.plugins.module_utils._qos import DEFAULT_CGROUP as DEFAULT_QOS_CGROUP
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.image import staged_path
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import normalize_portal
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import mount_point, volume_file

__all__ = ["manage_lvs", "volume_items", "image_uploads", "module_source", "snapshot_items", "group_snapshot_items",
           "freeze_items", "group_snapshots_pending", "attachment_items", "connect_items", "disconnect_items",
           "format_table", "nfs_connection_info", "is_nfs_entry", "attached_here", "share_hash"]


def is_nfs_entry(entry):
    """Whether a plan entry is a volume of an NFS backend (a file on a share: no iSCSI export)."""
    return entry.get("driver") == "nfs"


def share_hash(share):
    """The name of a share's mount point directory (:func:`drivers.nfs.mount_point`)."""
    return os.path.basename(mount_point(str(share), "/"))


def attached_here(facts, name, share):
    """The ``nfs_attachments`` entry of a consumer's gather (``facts``: its ``initiator_info`` result) for volume
    ``name`` on ``share``, or None: the link ``/dev/ember/<name>`` to a loop device bound to ``volume-<name>`` in
    the share's mount point."""
    for att in (facts or {}).get("nfs_attachments") or []:
        backing = str(att.get("backing_file") or "")
        if att.get("volume") == name and att.get("share_hash") == share_hash(share) \
                and os.path.basename(backing) == volume_file(name):
            return att
    return None


def nfs_connection_info(entry, pool, state="present"):
    """A ``connection`` item of an NFS volume: Cinder's NFS ``connection_info`` (``driver_volume_type: nfs``,
    ``data: {export, name, format, options}``) with the backend's ``mount_point_base`` (``pool``: the share's
    pool facts), so the consumer mounts the share where the storage node does."""
    share = (pool or {}).get("share") or entry["vg"]
    return {"driver_volume_type": "nfs", "volume": entry["name"], "state": state,
            "data": {"export": share, "name": volume_file(entry["name"]), "format": "raw",
                     "options": ",".join((pool or {}).get("mount_options") or DEFAULT_MOUNT_OPTIONS)},
            "mount_point_base": (pool or {}).get("mount_point_base") or DEFAULT_MOUNT_POINT_BASE}


def _pool_index(pools):
    return {pool["id"]: pool for pool in pools or []}


def _existing(pools, name):
    for pool in pools or []:
        for vol in pool.get("volumes", []):
            if vol["name"] == name:
                return pool, vol
    return None, None


def _in_bytes(num):
    """A byte count as the ``volume`` module reads it: with the unit ``B`` (a bare number there is GiB for
    ``size`` and MiB for ``volume_clear_size``, as in Cinder)."""
    return None if num is None else "%dB" % num


def manage_lvs(volumes, host):
    """The LV names the manage requests of ``volumes`` (``blockstore_volumes``) name on ``host``: each
    ``manage.lv`` whose ``manage.host`` is ``host``, and ``volume-<name>`` too with ``manage.rename`` (the LV a run
    renamed before it stopped). Malformed items are skipped (the plan refuses them). Sorted, each name once."""
    names = set()
    for item in volumes or []:
        manage = item.get("manage") if isinstance(item, dict) else None
        if not isinstance(manage, dict) or manage.get("host") != host or not isinstance(manage.get("lv"), str):
            continue
        names.add(manage["lv"])
        if manage.get("rename") is True and isinstance(item.get("name"), str):
            names.add(lv_name(item["name"]))
    return sorted(names)


def module_source(name, source):
    """A plan entry's ``source`` as the volume module takes it: the keys given; an image with ``controller: true``
    is read from the staging file the role copied it to (:func:`image_uploads`)."""
    out = {key: value for key, value in source.items() if value is not None and key != "controller"}
    if source.get("controller"):
        out["image"] = staged_path(name, "upload")
    return out


def image_uploads(plan, host):
    """The controller files the role copies to ``host`` before its volume phase: ``[{"src", "dest", "volume"}]``
    for the volumes the plan creates there from an image with ``controller: true`` (``dest``: the staging file
    ``/var/lib/ember-blockstore/images/upload-<volume>``, which the role removes after the volume phase)."""
    out = []
    for entry in plan["volumes"]:
        source = entry.get("source") or {}
        if entry.get("host") == host and entry["action"] == "create" and source.get("controller"):
            out.append({"src": source["image"], "dest": staged_path(entry["name"], "upload"), "volume": entry["name"]})
    return out


def volume_items(plan, host, pools, phase="present"):
    """Items for the ``volume`` module on ``host``.

    ``phase="present"``: the volumes to create, extend or manage on ``host`` (the facts just read confirm the
    others, so a host with nothing to change gets no module run). ``phase="absent"``: volumes to delete, and to
    unmanage (after the consumers ran, with the deletes).
    """
    index = _pool_index(pools)
    items = []
    for entry in plan["volumes"]:
        if entry.get("host") != host:
            continue
        pool = index.get(entry["pool_id"], {})
        if phase == "present" and entry["state"] == "present" and entry["action"] in ("create", "extend", "update",
                                                                                      "retype",
                                                                                      "manage"):
            item = {"name": entry["name"], "size": _in_bytes(entry["size_bytes"]), "state": "present",
                    "vg": entry["vg"], "thin_pool": entry.get("thin_pool"),
                    "volume_type": entry.get("volume_type"), "backend": entry.get("backend")}
            if entry.get("retype_from"):  # retype in place: the volume module replaces the ember.type= tag
                item["retype"] = True
            for key in ("description", "metadata"):  # given: the exact state; not given: left as it is
                if entry.get(key) is not None:
                    item[key] = entry[key]
            if entry["action"] == "create" and entry.get("source"):
                item["source"] = module_source(entry["name"], entry["source"])
            if entry["action"] == "manage":
                item["manage"] = {"lv": entry["manage"]["lv"], "rename": bool(entry["manage"]["rename"])}
            items.append(item)
        elif phase == "absent" and entry["action"] == "delete":
            items.append({"name": entry["name"], "state": "absent", "vg": entry["vg"],
                          "thin_pool": entry.get("thin_pool"), "force": bool(entry.get("force")),
                          "cascade": bool(entry.get("cascade")),
                          "volume_clear": pool.get("volume_clear", "zero"),
                          "volume_clear_size": _in_bytes(pool.get("volume_clear_size_bytes", 0))})
        elif phase == "absent" and entry["action"] == "unmanage":
            items.append({"name": entry["name"], "state": "unmanaged", "vg": entry["vg"],
                          "thin_pool": entry.get("thin_pool")})
    return items


def snapshot_items(plan, host, groups=False):
    """Items for the ``snapshot`` module on ``host``: the snapshots the plan creates, updates (description),
    deletes or reverts to there (snapshots that are already as the inventory says get no item, so a run that
    changes nothing runs no snapshot module). The snapshots of a volume being deleted go with it (``cascade``).

    The members' snapshots of a group snapshot (``blockstore_groups``; the plan marks them with ``group``) are
    created apart, while the consumers are frozen: without ``groups`` their creates are left out, with
    ``groups=True`` only they are listed (with ``group``). Their deletes, reverts and description updates need no
    freeze and come in the first list."""
    items = []
    for entry in plan["volumes"]:
        if entry.get("host") != host or entry["state"] != "present":
            continue
        for snap in entry.get("snapshots") or []:
            if snap["action"] not in ("create", "update", "delete", "revert"):
                continue
            if (snap["action"] == "create" and snap.get("group") is not None) != bool(groups):
                continue
            item = {"name": snap["name"], "volume": entry["name"], "vg": entry["vg"], "state": snap["state"],
                    "force": bool(snap.get("force"))}
            # Only a COW size the inventory sets: by default the module takes the volume's size when it runs (after
            # this run's extend: the plan's number), so a check run does not compare it with the unextended volume.
            if snap["action"] == "create" and snap.get("cow_size_bytes") is not None and snap.get("cow_size_given"):
                item["cow_size"] = _in_bytes(snap["cow_size_bytes"])
            if snap.get("description") is not None:
                item["description"] = snap["description"]
            if snap.get("group") is not None:
                item["group"] = snap["group"]
            if is_nfs_entry(entry):
                # The storage node cannot see the consumers' loop devices: the plan says (their gather).
                item["attached"] = bool(entry.get("nfs_attached"))
            items.append(item)
    return items


def group_snapshot_items(plan, host):
    """The ``snapshot`` module's items on ``host`` for the group snapshots the plan creates (taken while the
    consumers are frozen): :func:`snapshot_items` with ``groups=True``."""
    return snapshot_items(plan, host, groups=True)


def freeze_items(plan, host):
    """What the ``freeze`` module freezes on consumer ``host`` before the group snapshots are taken: ``{"volumes":
    [names], "timeout": seconds}`` (every group with a snapshot to create and ``freeze: true`` that has a volume
    the consumer is, or is to be, attached to; the shortest ``freeze_timeout`` of them), or None."""
    volumes, timeouts = [], []
    for group in plan.get("groups") or []:
        spot = (group.get("freeze_consumers") or {}).get(host)
        if spot:
            volumes.extend(v for v in spot["volumes"] if v not in volumes)
            timeouts.append(spot["timeout"])
    if not volumes:
        return None
    return {"volumes": volumes, "timeout": min(timeouts)}


def group_snapshots_pending(plan):
    """Whether the plan creates a group snapshot (the role's ``groups`` tasks run only then)."""
    return any(snap["action"] == "create" for group in plan.get("groups") or [] for snap in group["snapshots"])


def _export_current(vol, item, consumers, sessions, portals=None, consumer_facts=None):
    """Whether the export of ``vol`` (facts) already is what ``item`` asks and every consumer is logged in: with
    ``portals`` (the storage node's, when it has several) and ``consumer_facts`` (``{consumer: initiator_info}``),
    logged in on every portal with one dm-multipath map over the sessions (:func:`_fully_connected`), so a path or
    a map that went missing gets the export listed and the consumer its connection item again."""
    if not vol or not vol.get("target_iqn") or not vol.get("export_ok"):
        return False
    if sorted(vol.get("attached_to") or []) != item["initiators"]:
        return False
    if "initiator_addresses" in item and sorted(vol.get("initiator_addresses") or []) != item["initiator_addresses"]:
        return False
    if bool(vol.get("mutual_chap")) != bool(item.get("mutual_chap")):
        return False
    if portals and consumer_facts is not None:
        return all(_fully_connected(vol["target_iqn"], portals, consumer_facts.get(c)) for c in consumers)
    return all(vol["target_iqn"] in (sessions.get(c) or ()) for c in consumers)


def _mutual_chap(entry, pools):
    """Whether the export of ``entry`` uses mutual CHAP: its volume type's ``mutual_chap`` when set, else its
    backend's (the pool facts)."""
    if entry.get("mutual_chap") is not None:
        return bool(entry["mutual_chap"])
    for pool in pools or []:
        if pool.get("id") == entry.get("pool_id"):
            return bool(pool.get("mutual_chap"))
    return False


def _addresses_of(addresses, consumer):
    """A consumer's storage addresses from ``addresses`` (``{consumer: address or [addresses]}``): a list, empty
    when it has none (one address, as earlier releases passed it, is a list of one)."""
    value = (addresses or {}).get(consumer)
    if value in (None, ""):
        return []
    return [a for a in value if a not in (None, "")] if isinstance(value, (list, tuple)) else [value]


def attachment_items(plan, host, initiators, pools=None, phase="present", addresses=None, sessions=None,
                     consumer_results=None, forced=False, portals=None, consumer_facts=None):
    """Items for the ``attachment`` module on ``host``.

    ``initiators``: ``{consumer inventory host: initiator IQN}``; ``addresses``: ``{consumer: storage-network
    address, or the list of its storage addresses}`` (every one is bound in the ACL: a consumer with several
    logs in on each portal from the address its routing picks). ``phase="present"``: one export per attached
    volume with the ACL of its consumers' addresses and IQNs. ``phase="absent"``: exports of volumes being
    deleted. ``phase="detach"`` (the remove phase, after the consumers ran): exports that lose attachments (the
    plan's ``detach``), narrowed to what stays, or removed when nothing stays; ``consumer_results``
    (``{consumer: its connection result}``) confirms each logout, and ``forced`` selects the removals that drop
    a session of an initiator outside the inventory (or the others). While a consumer is being detached, the
    present phase keeps it in the ACL.

    ``sessions`` (``{consumer: [target IQNs it is logged in to]}``, from ``initiator_info``) together with
    ``pools`` (the host's facts) leaves out exports that are already right with every consumer logged in, so a
    host with nothing to change gets no module run; without them every attached volume is listed. ``portals``
    (this node's portals, when it has several storage addresses) and ``consumer_facts`` (``{consumer:
    initiator_info result}``): a consumer counts as logged in only with a session on every portal and one
    dm-multipath map over them.
    """
    items = []
    for entry in plan["volumes"]:
        if entry.get("host") != host or is_nfs_entry(entry):  # NFS volumes: the consumer mounts the share
            continue
        if phase == "present" and entry["action"] == "migrate":
            continue  # its LV is on the destination only after the switch: exported there by the next run
        if phase == "present" and entry["state"] == "present" and entry.get("attachments"):
            missing = [c for c in entry["attachments"] if not initiators.get(c)]
            if missing:
                raise ValueError("volume %s: attachment host(s) %s have no initiator IQN (is the "
                                 "iscsi_initiator role applied to them?)" % (entry["name"], ", ".join(missing)))
            item = {"volume": entry["name"], "vg": entry["vg"], "state": "present",
                    "initiators": sorted({initiators[c] for c in entry["attachments"]})}
            if _mutual_chap(entry, pools):
                item["mutual_chap"] = True
            if addresses is not None:
                no_address = [c for c in entry["attachments"] if not _addresses_of(addresses, c)]
                if no_address:
                    raise ValueError("volume %s: attachment host(s) %s have no blockstore_storage_ip (their address "
                                     "on the storage network, bound in the target's ACL)"
                                     % (entry["name"], ", ".join(no_address)))
                item["initiator_addresses"] = sorted({a for c in entry["attachments"]
                                                      for a in _addresses_of(addresses, c)})
            if entry.get("detach"):
                # Consumers being detached log out first: their ACL entries go in the remove phase (phase="detach").
                _pool, vol = _existing(pools, entry["name"])
                item["initiators"] = sorted(set(item["initiators"]) | {d["initiator"] for d in entry["detach"]})
                if "initiator_addresses" in item:
                    item["initiator_addresses"] = sorted(set(item["initiator_addresses"])
                                                         | set((vol or {}).get("initiator_addresses") or []))
            # A volume created or extended in this run is always listed: the facts predate the change (an
            # extended LV's live LUN must be reopened at its new size).
            if sessions is not None and entry["action"] not in ("create", "extend"):
                _pool, vol = _existing(pools, entry["name"])
                if _export_current(vol, item, entry["attachments"], sessions, portals if portals and len(portals) > 1
                                   else None, consumer_facts):
                    continue
            items.append(item)
        elif phase == "absent" and entry["action"] == "delete":
            _pool, vol = _existing(pools, entry["name"])
            if vol and vol.get("target_iqn"):
                items.append({"volume": entry["name"], "vg": entry["vg"], "state": "absent"})
        elif phase == "detach" and entry["state"] == "present" and entry.get("detach"):
            item = _detach_item(entry, pools, initiators, addresses, consumer_results)
            if item is not None and bool(item.pop("forced")) == bool(forced):
                items.append(item)
    return items


def cleared(detach, consumer_results):
    """Whether the storage node may take ``detach``'s initiator out of the export: it has no session, or its
    consumer's ``connection`` task ran, did not fail and logged out of the target, or it is no inventory consumer
    and the detach is forced. ``consumer_results``: ``{consumer: the registered connection result}``."""
    if not detach.get("connected"):
        return True
    host = detach.get("host")
    if host is None:
        return bool(detach.get("force"))
    result = (consumer_results or {}).get(host)
    if not isinstance(result, dict) or result.get("skipped") or result.get("failed") or result.get("unreachable"):
        return False
    return any(item.get("target_iqn") == detach.get("target_iqn") and item.get("action") in ("logout", "none")
               and not item.get("failed") for item in result.get("connections") or [])


def _detach_item(entry, pools, initiators, addresses, consumer_results):
    """The export of ``entry`` after its detaches (the remove phase, after the consumers logged out): the ACL of
    the attachments that stay plus the detached initiators whose logout is not confirmed (:func:`cleared`), or
    ``state: absent`` when nothing stays. ``forced``: an unexport that drops the session of an initiator that is
    no inventory consumer (the volume's ``force``). None when nothing changes."""
    _pool, vol = _existing(pools, entry["name"])
    if not vol or not vol.get("target_iqn"):
        return None
    done = [d for d in entry["detach"] if cleared(d, consumer_results)]
    if not done:
        return None
    keep = {initiators[c] for c in entry.get("attachments") or [] if initiators.get(c)}
    keep |= {d["initiator"] for d in entry["detach"] if d not in done}
    if not keep:
        forced = any(d["connected"] and d["host"] is None for d in done)
        return {"volume": entry["name"], "vg": entry["vg"], "state": "absent", "forced": forced}
    item = {"volume": entry["name"], "vg": entry["vg"], "state": "present", "initiators": sorted(keep),
            "forced": False}
    if addresses is not None:
        # Addresses of the consumers that stay; those of detached initiators whose logout is not confirmed stay
        # too (the facts do not say which address belongs to which initiator, so all current ones are kept then).
        wanted = {a for c in entry.get("attachments") or [] for a in _addresses_of(addresses, c)}
        if len(done) < len(entry["detach"]):
            wanted |= set(vol.get("initiator_addresses") or [])
        item["initiator_addresses"] = sorted(wanted)
    return item


def _fully_connected(iqn, target_portals, consumer_facts):
    """Whether the consumer (its ``initiator_info`` result) has a session with a device on every portal of
    ``target_portals`` and one dm-multipath map holds them all (``multipath`` of each session)."""
    found = {}
    for session in (consumer_facts or {}).get("sessions") or []:
        if session.get("target_iqn") == iqn and session.get("device"):
            found[normalize_portal(session.get("portal") or "")] = session.get("multipath")
    maps = {found.get(normalize_portal(p)) for p in target_portals}
    return all(normalize_portal(p) in found for p in target_portals) and len(maps) == 1 and None not in maps


def _all_portals(host, portals, storage_portals):
    """The portals of storage node ``host``: ``storage_portals[host]`` (``{host: [ip:port]}``) when it lists
    several, else None (one portal: ``portals[host]``)."""
    listed = [normalize_portal(p) for p in (storage_portals or {}).get(host) or []]
    return listed if len(listed) > 1 else None


def connect_items(export_results, initiator, sessions=None, plan=None, consumer=None, portals=None,
                  prefix=DEFAULT_TARGET_PREFIX, consumer_facts=None, storage_portals=None, pools=None):
    """``connection_info`` of every export (from the attachment results of all storage nodes) whose ACL
    holds ``initiator``: what a consumer logs in to. ``sessions``: target IQNs the consumer is already logged
    in to (left out).

    With ``plan``, ``consumer`` (its inventory name) and ``portals`` (``{storage host: storage IP}``), a volume
    whose type has QoS specs carries them (``qos``, and the attachment's ``qos_cgroup``), and a volume with QoS
    the consumer is already logged in to gets an item of its own (``auth_method: None``: an existing session is
    never logged in again), so the connection module checks its io.max limits: a consumer with QoS volumes runs
    the module in every run (the limits are not in the gathered facts, and a reboot drops them).

    ``consumer_facts`` (the consumer's ``initiator_info`` result): a volume of the plan whose device on this
    consumer is smaller than the volume (it was extended while attached) gets an item with ``size_bytes``, so the
    connection module rescans the session (online extend); every item of a planned volume carries its size.

    dm-multipath: an export whose ``connection_info`` has ``target_portals`` (a storage node with several storage
    addresses) gives an item with them (one item per volume: the module logs in on each portal and uses the map,
    so QoS, size and detach apply once, to the map). Such a volume counts as connected only when
    ``consumer_facts`` shows a session with a device on every portal, all in one map; otherwise it gets its item
    again (a portal that was down at the last run is logged in now). ``storage_portals`` (``{storage host:
    [ip:port, ...]}``) gives the QoS and resize items of a node with several portals their ``target_portals``.

    NFS volumes (``pools``: every storage node's pool facts): a volume of an NFS pool that the plan attaches to
    ``consumer`` gets an item (:func:`nfs_connection_info`) unless ``consumer_facts`` show it attached already (the
    link to a loop device bound to its file) with a loop device at least the volume's size; a smaller one gets an
    item too (the module re-reads it: online extend). So a run that changes nothing gives no item."""
    qos = {}
    for entry in (plan or {}).get("volumes", []):
        if entry["state"] == "present" and entry.get("qos_specs") and consumer in (entry.get("attachments") or []):
            qos[entry["name"]] = entry
    items = []
    logged_in = set(sessions or ())
    # A consumer being detached stays in the export until it logged out (disconnect_items): never log it in.
    leaving = {entry["name"] for entry in (plan or {}).get("volumes", [])
               if any(d["initiator"] == initiator for d in entry.get("detach") or [])}
    for result in export_results or []:
        for att in (result or {}).get("attachments", []) or []:
            info = att.get("connection_info")
            if not info or initiator not in info.get("initiators", []) or info.get("volume") in leaving:
                continue
            several = len(info.get("target_portals") or []) > 1
            connected = _fully_connected(info["target_iqn"], info["target_portals"], consumer_facts) if several \
                else info["target_iqn"] in logged_in
            if not connected:
                item = {"target_iqn": info["target_iqn"], "target_portal": info["target_portal"],
                        "target_lun": info["target_lun"], "auth_method": info["auth_method"],
                        "auth_username": info["auth_username"], "auth_password": info["auth_password"],
                        "volume": info["volume"], "state": "present"}
                if several:
                    item["target_portals"] = list(info["target_portals"])
                if info.get("target_auth_username"):  # mutual CHAP: what the target proves itself with
                    item["target_auth_username"] = info["target_auth_username"]
                    item["target_auth_password"] = info["target_auth_password"]
                items.append(item)
    listed = {item["volume"] for item in items}
    for name, entry in sorted(qos.items()):
        iqn = target_iqn(name, prefix)
        if name not in listed and iqn in logged_in and entry.get("host") in (portals or {}):
            items.append(_session_item(iqn, name, entry["host"], portals, storage_portals))
    by_id = {pool.get("id"): pool for pool in pools or []}
    for entry in (plan or {}).get("volumes", []):
        if not is_nfs_entry(entry) or entry["state"] != "present" or consumer not in (entry.get("attachments") or []) \
                or entry["name"] in leaving or entry.get("action") not in ("create", "extend", "update", "none"):
            continue
        pool = by_id.get(entry.get("pool_id"))
        if pool is None:
            continue
        here = attached_here(consumer_facts, entry["name"], pool.get("share") or entry["vg"])
        if here is not None and (here.get("size_bytes") or 0) >= (entry.get("size_bytes") or 0):
            continue
        items.append(nfs_connection_info(entry, pool))
    planned = {}
    for entry in (plan or {}).get("volumes", []):
        if entry["state"] == "present" and consumer in (entry.get("attachments") or []) and entry.get("size_bytes"):
            planned[entry["name"]] = entry
    listed = {item["volume"] for item in items}
    for session in (consumer_facts or {}).get("sessions") or []:
        iqn = session.get("target_iqn") or ""
        name = iqn[len(prefix) + len("volume-"):] if iqn.startswith(prefix + "volume-") else None
        entry = planned.get(name)
        if entry is None or name in listed or session.get("size_bytes") is None or iqn not in logged_in:
            continue
        if session["size_bytes"] < entry["size_bytes"] and entry.get("host") in (portals or {}):
            items.append(_session_item(iqn, name, entry["host"], portals, storage_portals))
            listed.add(name)
    for item in items:
        if item["volume"] in planned:
            item["size_bytes"] = planned[item["volume"]]["size_bytes"]
        entry = qos.get(item["volume"])
        if entry is not None:
            item["qos"] = dict(entry["qos_specs"])
            item["qos_cgroup"] = (entry.get("qos_cgroups") or {}).get(consumer) or DEFAULT_QOS_CGROUP
    return sorted(items, key=lambda item: item["volume"])


def _session_item(iqn, name, host, portals, storage_portals):
    """An item for a volume the consumer is logged in to (QoS check, resize): no login (``auth_method: None``),
    every portal of its node when it has several."""
    item = {"target_iqn": iqn, "target_portal": normalize_portal(portals[host]), "target_lun": 1,
            "auth_method": "None", "volume": name, "state": "present"}
    every = _all_portals(host, portals, storage_portals)
    if every:
        item["target_portals"] = every
    return item


def disconnect_items(plan, pools, initiator, portals, prefix=DEFAULT_TARGET_PREFIX, consumer_facts=None):
    """Logouts for a consumer with IQN ``initiator``: volumes being deleted that are exported to it, and volumes
    whose plan detaches it (``force`` from the detach: a device in use is logged out too).
    ``portals``: ``{storage host: storage IP}``.

    NFS volumes: a detach (an ``absent`` :func:`nfs_connection_info` item) for each volume the plan detaches from
    this consumer, and for each volume being deleted that ``consumer_facts`` (its ``initiator_info`` result) show
    attached here (the plan deletes an attached volume only with ``force``)."""
    items = []
    by_id = {pool.get("id"): pool for pool in pools or []}
    for entry in plan["volumes"]:
        detach = [d for d in entry.get("detach") or [] if d["initiator"] == initiator]
        if is_nfs_entry(entry):
            pool = by_id.get(entry.get("pool_id"))
            share = (pool or {}).get("share") or entry["vg"]
            if detach:
                force = bool(detach[0]["force"])
            elif entry["action"] == "delete" and attached_here(consumer_facts, entry["name"], share):
                force = bool(entry.get("force"))
            else:
                continue
            items.append(dict(nfs_connection_info(entry, pool, state="absent"), force=force))
            continue
        if detach and entry.get("host") in (portals or {}):
            items.append({"target_iqn": detach[0].get("target_iqn") or target_iqn(entry["name"], prefix),
                          "target_portal": normalize_portal(portals[entry["host"]]), "volume": entry["name"],
                          "state": "absent", "force": bool(detach[0]["force"])})
            continue
        if entry["action"] != "delete":
            continue
        _pool, vol = _existing(pools, entry["name"])
        if not vol or initiator not in (vol.get("attached_to") or []):
            continue
        # The plan deletes an attached volume only with force: true, which logs out a device in use as well.
        items.append({"target_iqn": vol.get("target_iqn") or target_iqn(entry["name"], prefix),
                      "target_portal": normalize_portal(portals[entry["host"]]), "volume": entry["name"],
                      "state": "absent", "force": bool(entry.get("force"))})
    return items


def format_table(rows, columns=("volume", "size", "type", "pool", "zone", "action", "status", "attached_to", "device")):
    """Rows as aligned text lines (a header, a rule, one line per row)."""
    header = [c.replace("_", " ") for c in columns]
    cells = [[str(row.get(c, "-")) for c in columns] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return lines


def _migration_steps(plan, actions):
    return [m for m in plan.get("migrations") or [] if m["action"] in actions]


def _ok_names(results, done):
    """Names whose item in ``results`` (``{host: registered migration module result}``) is ``done`` and did not
    fail."""
    names = set()
    for result in (results or {}).values():
        for item in (result or {}).get("migrations") or []:
            if item.get("done") in done and not item.get("failed"):
                names.add(item["name"])
    return names


def _digests(results):
    return {item["name"]: item["sha256"] for result in (results or {}).values()
            for item in (result or {}).get("migrations") or [] if item.get("sha256") and not item.get("failed")}


def migration_items(plan, host, step, prefix=None, addresses=None, portals=None, secrets=None, results=None):
    """Items for the ``migration`` module's ``step`` on storage ``host`` (docs/design.md, "Migration"), from the
    plan's ``migrations``: ``target``, ``copy``, ``switch_destination`` and ``rollback`` on destinations;
    ``export``, ``verify``, ``switch_source`` and ``cleanup`` on sources.

    ``prefix``: ``blockstore_target_prefix``; ``addresses``: ``{storage host: its storage address}`` (the
    destination's, bound in the temporary target's ACL); ``portals``: ``{storage host: ip:port}`` (the source's,
    for the login); ``secrets``: ``{volume: the run's CHAP secret of its temporary target}``; ``results``:
    ``{step: {storage host: registered result}}`` of the steps that ran before (``copy`` for the digests to
    verify, ``verify`` for what may be switched, ``switch_destination`` for what may be switched away)."""
    results = results or {}
    items = []
    migrate = _migration_steps(plan, ("migrate",))
    if step in ("target", "copy"):
        for mig in migrate:
            dest, src = mig["destination"], mig["source"]
            if dest["host"] != host:
                continue
            item = {"name": mig["name"], "vg": dest["vg"]}
            if step == "target":
                item.update(thin_pool=dest["thin_pool"], size_bytes=mig["destination_size_bytes"],
                            source_pool_id=src["pool_id"])
            else:
                item.update(size_bytes=mig["size_bytes"], portal=portals[src["host"]],
                            target_iqn="%smigrate-%s" % (prefix, mig["name"]), chap_username="migrate-" + mig["name"],
                            chap_password=secrets[mig["name"]])
            items.append(item)
    elif step in ("export", "verify"):
        digests = _digests(results.get("copy"))
        for mig in migrate:
            src, dest = mig["source"], mig["destination"]
            if src["host"] != host:
                continue
            if step == "export":
                items.append({"name": mig["name"], "vg": src["vg"], "initiator_address": addresses[dest["host"]],
                              "chap_password": secrets[mig["name"]]})
            elif mig["name"] in digests:
                items.append({"name": mig["name"], "vg": src["vg"], "size_bytes": mig["size_bytes"],
                              "sha256": digests[mig["name"]]})
    elif step == "switch_destination":
        verified, digests = _ok_names(results.get("verify"), ("verified",)), _digests(results.get("copy"))
        for mig in migrate + _migration_steps(plan, ("finish",)):
            dest = mig["destination"]
            if dest["host"] != host or (mig["action"] == "migrate" and mig["name"] not in verified):
                continue
            item = {"name": mig["name"], "vg": dest["vg"]}
            if mig["action"] == "migrate":
                item.update(sha256=digests[mig["name"]], source_pool_id=mig["source"]["pool_id"],
                            volume_type=mig["volume_type"], backend=dest["backend"],
                            description=mig.get("description"), metadata=mig.get("metadata") or {})
            items.append(item)
    elif step in ("switch_source", "cleanup"):
        switched = _ok_names(results.get("switch_destination"), ("switched", "switched already"))
        for mig in _migration_steps(plan, ("migrate", "finish", "cleanup")):
            src = mig["source"]
            if src["host"] != host or (mig["action"] == "migrate" and mig["name"] not in switched):
                continue
            if step == "switch_source" and mig["action"] == "cleanup":
                continue
            item = {"name": mig["name"], "vg": src["vg"]}
            if step == "switch_source":
                item.update(destination_pool_id=mig["destination"]["pool_id"], force=bool(mig.get("force")))
            else:
                item.update(volume_clear=src["volume_clear"], volume_clear_size="%dB" % src["volume_clear_size_bytes"])
                if mig["action"] == "cleanup":
                    item["lv_name"] = mig["lv_name"]
            items.append(item)
    elif step == "rollback":
        for mig in _migration_steps(plan, ("rollback",)):
            dest = mig["destination"]
            if dest["host"] == host:
                items.append({"name": mig["name"], "vg": dest["vg"], "lv_name": mig["lv_name"],
                              "volume_clear": dest["volume_clear"],
                              "volume_clear_size": "%dB" % dest["volume_clear_size_bytes"]})
    else:
        raise ValueError("step %r is not a migration step" % (step,))
    return items
