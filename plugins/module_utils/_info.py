# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ``volume_info`` and ``snapshot_info`` modules report: Cinder's fields and statuses of the volumes and
snapshots the project manages on one storage node (pure over the state read through the drivers).

A volume's export facts come from :func:`_backend_info.volume_facts` (the same reading ``backend_info`` reports);
its status from that, its LV tags and this node's copy of the placement ledger:

======================================================  ==================
what the node shows (first that applies)                status
======================================================  ==================
the ledger places it here with status ``deleting``      ``deleting``
no LV, the ledger places it here as ``creating``        ``creating``
no LV, the ledger places it here as ``available``       ``error``
LV tag ``ember.status=<status>``                        ``<status>``
LV tag ``ember.reverting=<snapshot>`` (a revert runs)   ``reverting``
LV tag ``ember.creating``                               ``creating``
a target file or live target exports it                 ``in-use``
otherwise                                               ``available``
======================================================  ==================

``ember.status=`` takes the values of :data:`STATUS_TAG_VALUES`; no module sets it yet (the backup module will set
``backing-up`` and ``restoring-backup``, and extend ``extending``); another value is not a status and is ignored.
"""

from __future__ import annotations

import time

from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import (
    live_backing_stores,
    managed_snapshots,
    volume_facts,
)
from ansible_collections.ember.blockstore.plugins.module_utils._metadata import read_meta
from ansible_collections.ember.blockstore.plugins.module_utils._naming import lv_name
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import (
    REVERTING_TAG,
    decode_description,
    snapshot_lv_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import snapshot_file

__all__ = ["nfs_volumes_info", "nfs_snapshots_info",
           "STATUS_TAG", "STATUS_TAG_VALUES", "CREATING_TAG", "MULTIATTACH_TAG", "SOURCE_TAG", "LUN", "GIB",
           "iso_utc", "size_gib", "volume_status", "volumes_info", "snapshots_info", "snapshot_status"]

# Read-only here: tags another module sets on a volume LV to show a status Cinder has.
STATUS_TAG = "ember.status="
STATUS_TAG_VALUES = ("creating", "deleting", "error", "extending", "backing-up", "restoring-backup")
CREATING_TAG = "ember.creating"
MULTIATTACH_TAG = "ember.multiattach"
SOURCE_TAG = "ember.source="
# The attachment module exports each volume as LUN 1 (LUN 0 is tgt's controller).
LUN = 1
GIB = 1024 ** 3


def iso_utc(epoch):
    """``2026-11-20T10:05:00Z`` for seconds since the epoch; None for None."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch is not None else None


def size_gib(size_bytes):
    """Cinder's integer ``size``: whole GiB, rounded up; None for None."""
    return -(-size_bytes // GIB) if size_bytes is not None else None


def _tag_value(tags, prefix):
    return next((t[len(prefix):] for t in tags or [] if t.startswith(prefix)), None)


def volume_status(lv, exported, placement, host):
    """``(status, ignored tag value or None)`` of a volume (the table in this module's docstring).

    ``lv``: its LV (``drivers.lvm.parse_lvs`` row) or None; ``exported``: whether a target exports it;
    ``placement``: its ledger entry (``{host, pool_id, status}``) or None; ``host``: this node's name."""
    here = placement if placement and placement.get("host") == host else None
    if here and here["status"] == "deleting":
        return "deleting", None
    if lv is None:
        return ("creating" if here and here["status"] == "creating" else "error"), None
    tagged = _tag_value(lv["tags"], STATUS_TAG)
    if tagged in STATUS_TAG_VALUES:
        return tagged, None
    if _tag_value(lv["tags"], REVERTING_TAG) is not None:
        return "reverting", tagged
    if CREATING_TAG in lv["tags"]:
        return "creating", tagged
    return ("in-use" if exported else "available"), tagged


def _attachments(facts, live):
    """One item per initiator the export admits (its file's recorded IQNs) or that is logged in now."""
    iqn = facts["target_iqn"]
    target = live.get(iqn) or {}
    addresses = {}
    for conn in target.get("connections", []):
        addresses.setdefault(conn["initiator"], set()).add(conn["address"])
    sessions = set(facts["sessions"])
    out = []
    for initiator in sorted(set(facts["attached_to"]) | sessions):
        out.append({"initiator": initiator, "target_iqn": iqn, "lun": LUN,
                    "allowed": initiator in facts["attached_to"], "connected": initiator in sessions,
                    "addresses": sorted(addresses.get(initiator, ()))})
    return out


def _backend_of(lv, placement, configs):
    """The backend: the LV's ``ember.backend`` tag, else the pool id of the ledger's placement on this node, else
    the configured backend on the LV's VG (and thin pool)."""
    if lv is not None and lv["backend"]:
        return lv["backend"]
    if placement and "@" in placement.get("pool_id", ""):
        return placement["pool_id"].split("@", 1)[1].split("#", 1)[0]
    if lv is not None:
        for cfg in configs:
            thin = cfg["driver"] == "lvm_thin"
            if cfg["vg"] == lv["vg"] and (lv["pool_lv"] == cfg["thin_pool"] if thin else not lv["pool_lv"]):
                return cfg["name"]
    return None


def _ours(snapshots, volume):
    """The items of ``_backend_info.managed_snapshots`` that are LVs ``snap-<volume>+<name>`` (not the volume's
    own LV, which carries its snapshot's tags while a thin revert is unfinished)."""
    return [s for s in snapshots if s["lv_name"] == snapshot_lv_name(volume, s["name"])]


def _volume(name, host, lv, facts, status, placement, configs, live):
    backend = _backend_of(lv, placement, configs)
    zone = next((cfg["availability_zone"] for cfg in configs if cfg["name"] == backend), None)
    tags = lv["tags"] if lv is not None else []
    # The volume's own tags (the volume module's description and metadata); a snapshot's ember.description= is
    # not the volume's (a thin revert's merge may leave it on the volume LV for a while).
    description, metadata = read_meta(tags)
    source = _tag_value(tags, SOURCE_TAG)
    size = lv["size_bytes"] if lv is not None else None
    return {
        "name": name, "id": name, "size": size_gib(size), "size_bytes": size, "status": status,
        "volume_type": lv["volume_type"] if lv is not None else None, "availability_zone": zone,
        "backend": backend,
        "pool": (lv["vg"] + ("/" + lv["pool_lv"] if lv["pool_lv"] else "")) if lv is not None else None,
        "host": host, "bootable": False, "multiattach": MULTIATTACH_TAG in tags, "encrypted": False,
        "description": description, "metadata": metadata,
        "snapshots": [snap["name"] for snap in _ours(facts["managed_snapshots"], name)] if facts else [],
        "source": decode_description(source) if source else None,
        "attachments": _attachments(facts, live) if facts else [],
        "created_at": iso_utc(lv["time"]) if lv is not None else None,
        "lv_name": lv["name"] if lv is not None else lv_name(name), "device": lv["path"] if lv is not None else None,
    }


def volumes_info(host, lvm_state, exports, live, ledger, configs=(), names=None, elsewhere=()):
    """``(volumes, warnings)``: every managed volume LV on this node and every volume the ledger places on
    ``host`` without its LV, sorted by name (only ``names`` when given).

    ``exports``: ``_backend_info.read_exports()``; ``live``: ``drivers.tgt.parse_show`` output; ``ledger``: this
    node's ledger (``_ledger.read_ledger``) or None; ``configs``: the backends' configs
    (``_backend_info.backend_configs``), for the availability zone and a backend an LV does not name."""
    placements = (ledger or {}).get("volumes") or {}
    wanted = set(names) if names is not None else None
    live_by_backing = live_backing_stores(live)
    lvs = {}
    warnings = []
    for lv in lvm_state.lvs:
        if not lv["managed"] or (wanted is not None and lv["volume"] not in wanted):
            continue
        if lv["volume"] in lvs:
            other = lvs[lv["volume"]]
            warnings.append("volume %s has an LV in two volume groups (%s/%s and %s/%s); reporting %s"
                            % (lv["volume"], other["vg"], other["name"], lv["vg"], lv["name"], other["vg"]))
            continue
        lvs[lv["volume"]] = lv
    missing = {name for name, placement in placements.items()
               if placement.get("host") == host and name not in lvs and (wanted is None or name in wanted)
               and name not in elsewhere and "#" not in str(placement.get("pool_id"))}
    out = []
    for name in sorted(set(lvs) | missing):
        lv = lvs.get(name)
        facts = volume_facts(lv, lvm_state, exports, live, live_by_backing) if lv is not None else None
        status, ignored = volume_status(lv, bool(facts and facts["target_iqn"]), placements.get(name), host)
        if ignored is not None:
            warnings.append("volume %s: tag %s%s is not a status (%s); ignored"
                            % (name, STATUS_TAG, ignored, ", ".join(STATUS_TAG_VALUES)))
        placement = placements.get(name)
        here = placement if placement and placement.get("host") == host else None
        out.append(_volume(name, host, lv, facts, status, here, configs, live))
    return out, warnings


# --- snapshots ---------------------------------------------------------------------------------------------------

def _invalid(snap):
    """A thick (COW) snapshot that overflowed: LVM marks it invalid (``I``, the fifth ``lv_attr`` character) and
    its usage shows 100%."""
    attr = snap.get("attr") or ""
    return attr[4:5] == "I" or (not snap["pool_lv"] and (snap["data_percent"] or 0.0) >= 100.0)


def snapshot_status(snap, origin, name):
    """``restoring`` while it is merged into its volume (``lvconvert --merge`` of a revert: ``S`` as its first
    ``lv_attr`` character, or for a thin snapshot whose merge LVM deferred, its volume marked ``O`` and carrying
    ``ember.reverting=<name>``), ``error`` when it overflowed, else ``available``."""
    if (snap.get("attr") or "")[:1] == "S":
        return "restoring"
    if origin is not None and (origin.get("attr") or "")[:1] == "O" \
            and REVERTING_TAG + name in (origin.get("tags") or []):
        return "restoring"
    return "error" if _invalid(snap) else "available"


def snapshots_info(lvm_state, names=None, volumes=None):
    """The project's snapshots of the managed volumes on this node (``_backend_info.managed_snapshots``: LVs
    ``snap-<volume>+<name>`` with the tags :func:`_naming.is_managed_snapshot` asks for), sorted by volume and
    name; only ``names`` / of ``volumes`` when given."""
    out = []
    for vol in lvm_state.lvs:
        if not vol["managed"] or (volumes is not None and vol["volume"] not in volumes):
            continue
        thin = bool(vol["pool_lv"])
        for item in _ours(managed_snapshots(lvm_state, vol["vg"], vol, thin), vol["volume"]):
            if names is not None and item["name"] not in names:
                continue
            snap = lvm_state.lv(vol["vg"], item["lv_name"])
            # The volume's size when it was taken; a thin snapshot without the tag has the volume's size then.
            size = item["volume_size_bytes"]
            if size is None and thin:
                size = snap["size_bytes"]
            out.append({
                "name": item["name"], "id": "%s+%s" % (vol["volume"], item["name"]), "volume": vol["volume"],
                "size": size_gib(size), "size_bytes": size, "cow_size_bytes": item["cow_size_bytes"],
                "status": snapshot_status(snap, vol, item["name"]), "description": item["description"],
                "created_at": iso_utc(item["created_at"]), "reverted": item["reverted"], "lv_name": item["lv_name"],
            })
    return sorted(out, key=lambda item: (item["volume"], item["name"]))


# --- NFS backends (issue 14): the volumes are files with a sidecar on each share ------------------------------------

def _nfs_status(rec, placement, host):
    """Cinder's status of an NFS volume: the ledger's ``deleting``, the sidecar's ``creating``/``deleting``,
    ``reverting`` while its marker is set, ``error`` when the sidecar is there and the file is not, else
    ``available`` (the storage node cannot see the consumers' loop devices: a consumer's ``initiator_info`` shows
    what is attached)."""
    here = placement if placement and placement.get("host") == host else None
    if here and here["status"] == "deleting":
        return "deleting"
    if rec is None:
        return "creating" if here and here["status"] == "creating" else "error"
    if rec["status"] != "available":
        return rec["status"]
    if rec.get("reverting"):
        return "reverting"
    return "available" if rec.get("file") else "error"


def nfs_volumes_info(host, cfg, share, pool_id, state, ledger, names=None):
    """The volumes of one share of an nfs backend (``state``: ``drivers.nfs.read_share``), with the keys of
    :func:`volumes_info`'s, and the volumes the ledger places on ``pool_id`` whose sidecar is missing."""
    placements = (ledger or {}).get("volumes") or {}
    wanted = set(names) if names is not None else None
    out = []
    found = {name: rec for name, rec in state.volumes.items() if wanted is None or name in wanted}
    missing = {name for name, p in placements.items() if p.get("pool_id") == pool_id and name not in found
               and (wanted is None or name in wanted)}
    for name in sorted(set(found) | missing):
        rec = found.get(name)
        size = ((rec.get("file") or {}).get("size_bytes", rec["size_bytes"])) if rec else None
        source = (rec or {}).get("source") or None
        snapshots = sorted(n for n, e in ((rec or {}).get("snapshots") or {}).items() if e["status"] == "available")
        out.append({
            "name": name, "id": name, "size": size_gib(size), "size_bytes": size,
            "status": _nfs_status(rec, placements.get(name), host),
            "volume_type": (rec or {}).get("volume_type"), "availability_zone": cfg["availability_zone"],
            "backend": cfg["name"], "pool": share, "host": host, "bootable": False, "multiattach": False,
            "encrypted": False, "description": (rec or {}).get("description"),
            "metadata": dict((rec or {}).get("metadata") or {}), "snapshots": snapshots,
            "source": (source["volume"] + ("+" + source["snapshot"] if source.get("snapshot") else ""))
            if source else None,
            "attachments": [], "created_at": iso_utc((rec or {}).get("created_at") or None),
            "lv_name": lv_name(name), "device": (rec or {}).get("path"),
        })
    return out


def nfs_snapshots_info(state, names=None, volumes=None):
    """The snapshots of the NFS volumes of one share, with the keys of :func:`snapshots_info`'s (no COW store:
    ``cow_size_bytes`` null)."""
    out = []
    for volume, rec in sorted(state.volumes.items()):
        if volumes is not None and volume not in volumes:
            continue
        for name, snap in sorted((rec.get("snapshots") or {}).items()):
            if names is not None and name not in names:
                continue
            size = snap.get("volume_size_bytes")
            out.append({
                "name": name, "id": "%s+%s" % (volume, name), "volume": volume, "size": size_gib(size),
                "size_bytes": size, "cow_size_bytes": None,
                "status": "available" if snap["status"] == "available" else snap["status"],
                "description": snap.get("description"), "created_at": iso_utc(snap.get("created_at") or None),
                "reverted": bool(snap.get("reverted")), "lv_name": snapshot_file(volume, name),
            })
    return out
