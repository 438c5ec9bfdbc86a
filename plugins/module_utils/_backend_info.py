# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ``backend_info`` module reports about a storage node: the backends' configs, the problems of their
VGs, the ember target files and the pools (pure over LVM and tgt state read through the drivers)."""

from __future__ import annotations

import glob
import os

from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config
from ansible_collections.ember.blockstore.plugins.module_utils._metadata import read_meta
from ansible_collections.ember.blockstore.plugins.module_utils._migration import (
    is_migration_lv,
    migrated_from,
    migration_lvs,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    GROUP_TAG,
    LV_PREFIX,
    SNAPSHOT_TAG,
    TGT_CONF_DIR,
    NameError_,
    is_managed_snapshot,
    target_iqn,
    tgt_conf_path,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._portals import TGT_DROPIN_MARKER
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_clear_size
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import (
    DESCRIPTION_TAG,
    REVERTED_TAG,
    SIZE_TAG,
    decode_description,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs as _nfs_driver
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import (
    DEFAULT_EXTENT,
    backend_problems,
    block_device_size,
    lv_usage,
    predict_vg_size,
    thin_pool_size,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import (
    SIZE_STEP,
    snapshot_file,
    volume_file,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    HEADER,
    identity_matches,
    is_managed_conf,
    lun_identity,
    parse_conf,
    shown_size,
)

__all__ = ["tgt_configured", "read_conf_files", "read_exports", "target_clashes", "lv_clashes", "pool_facts",
           "volume_facts", "live_backing_stores", "managed_snapshots", "backend_configs", "read_vg_backup",
           "problems_of", "nfs_pool_facts", "nfs_problems", "nfs_pool_id", "read_shares", "manageable_lvs",
           "read_holders"]

# Paths on the storage node (looked up when used, so the module tests can point them at a temporary directory).
TARGETS_CONF = "/etc/tgt/targets.conf"
TGT_DROPIN = "/etc/systemd/system/tgt.service.d/ember-start-offline.conf"
TGT_INCLUDE = "include /etc/tgt/conf.d/*.conf"
LVM_BACKUP_DIR = "/etc/lvm/backup"
SYS_CLASS_BLOCK = "/sys/class/block"


def tgt_configured(targets_conf=None, dropin=None):
    """Whether the tgt_target role's configuration is in place and current (include line and the systemd
    drop-in of this release)."""
    try:
        with open(targets_conf or TARGETS_CONF) as handle:
            included = any(line.strip() == TGT_INCLUDE for line in handle)
        with open(dropin or TGT_DROPIN) as handle:
            current = handle.readline().rstrip("\n") == TGT_DROPIN_MARKER
    except OSError:
        return False
    return included and current and os.path.isdir(TGT_CONF_DIR)


def read_conf_files(conf_dir=None):
    """``{path: text}`` of every ``ember-*.conf`` file in ``conf_dir`` (default :data:`TGT_CONF_DIR`)."""
    conf_dir = conf_dir or TGT_CONF_DIR
    files = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(conf_dir), "ember-*.conf"))):
        with open(path) as handle:
            files[path] = handle.read()
    return files


def read_exports(conf_dir=None, files=None):
    """``{backing_store_path: parsed conf}`` for every target file that carries the project's marker."""
    exports = {}
    for path, text in sorted((read_conf_files(conf_dir) if files is None else files).items()):
        if not text.startswith(HEADER):
            continue
        conf = parse_conf(text)
        if conf["backing_store"] and conf["iqn"] and is_managed_conf(text, conf["iqn"]):
            conf["path"] = path
            exports[conf["backing_store"]] = conf
    return exports


def _namespace_volume(name):
    """The volume name ``name`` (an LV name or the tail of an IQN) would be in the project's namespace, else None."""
    if not name.startswith(LV_PREFIX):
        return None
    try:
        return validate_volume_name(name[len(LV_PREFIX):])
    except NameError_:
        return None


def target_clashes(host, live, files, prefix=DEFAULT_TARGET_PREFIX):
    """Targets named like the project's (``<prefix>volume-<name>``) without the project's file, and files at the
    project's path without its marker: ``[{kind: target, host, volume, target_iqn, path, reason}]``."""
    out = {}
    names = {iqn[len(prefix):] for iqn in live if iqn.startswith(prefix)}
    names |= {os.path.basename(path)[len("ember-"):-len(".conf")] for path in files}
    for lv in sorted(names):
        volume = _namespace_volume(lv)
        if volume is None:
            continue
        iqn, path = target_iqn(volume, prefix), tgt_conf_path(volume)
        text = files.get(path)
        if text is not None and not is_managed_conf(text, iqn):
            reason = "%s has no '%s' header for %s" % (path, HEADER.strip(), iqn)
        elif text is None and iqn in live:
            reason = "live target (tid %s) without the project's file %s" % (live[iqn].get("tid"), path)
        else:
            continue
        out[volume] = {"kind": "target", "host": host, "volume": volume, "target_iqn": iqn, "path": path,
                       "reason": reason}
    return [out[k] for k in sorted(out)]


def lv_clashes(host, vg, lvm_state):
    """LVs named ``volume-<name>`` in ``vg`` that are not the project's (both tags):
    ``[{kind: lv, host, volume, vg, lv_name, tags}]``."""
    out = []
    for lv in sorted(lvm_state.lvs, key=lambda item: item["name"]):
        volume = _namespace_volume(lv["name"]) if lv["vg"] == vg else None
        if volume is not None and not lv["managed"] and not is_migration_lv(lv):
            out.append({"kind": "lv", "host": host, "volume": volume, "vg": vg, "lv_name": lv["name"],
                        "tags": list(lv["tags"])})
    return out


def managed_snapshots(lvm_state, vg, lv, thin):
    """The snapshots the ``snapshot`` module made of the volume on ``lv`` (its tags, see module_utils/_snapshot.py),
    by name: ``name``, ``lv_name``, ``volume_size_bytes`` (the volume's size when it was taken),
    ``cow_size_bytes`` (a thick snapshot's COW store; None for a thin one), ``reverted`` (the volume was reverted
    to it), ``description``, ``created_at`` (epoch seconds or None) and ``latest`` (no other snapshot of the
    volume is as new or newer, every creation time known: the snapshot module reverts only to that one without
    ``force``) and ``group`` (the group snapshot it belongs to, tag ``ember.group=``, or None)."""
    out = []
    for snap in lvm_state.lvs:
        if snap["vg"] != vg or not is_managed_snapshot(snap, lv["volume"]):
            continue
        tags = snap["tags"]
        name = next(t[len(SNAPSHOT_TAG):] for t in tags if t.startswith(SNAPSHOT_TAG))
        size = next((t[len(SIZE_TAG):] for t in tags if t.startswith(SIZE_TAG)), "")
        description = next((t[len(DESCRIPTION_TAG):] for t in tags if t.startswith(DESCRIPTION_TAG)), None)
        out.append({"name": name, "lv_name": snap["name"],
                    "volume_size_bytes": int(size) if size.isdigit() else None,
                    "cow_size_bytes": None if thin else snap["size_bytes"],
                    "reverted": REVERTED_TAG in tags,
                    "description": None if description is None else decode_description(description),
                    "created_at": snap["time"], "latest": False,
                    "group": next((t[len(GROUP_TAG):] for t in tags if t.startswith(GROUP_TAG)), None)})
    out.sort(key=lambda item: item["name"])
    for item in out:  # the snapshot module's rule: no other snapshot as new or newer, every time known
        item["latest"] = item["created_at"] is not None and all(
            other["created_at"] is not None and other["created_at"] < item["created_at"]
            for other in out if other is not item)
    return out


def live_backing_stores(live):
    """``{backing store path: target iqn}`` of LUN 1 of the live targets (``drivers.tgt.parse_show`` output)."""
    return {(t["luns"].get(1) or {}).get("backing_store"): iqn for iqn, t in live.items()}


def volume_facts(lv, lvm_state, exports, live, live_by_backing=None, thin=None):
    """What ``backend_info`` reports of one managed volume LV (pure): its size, type, export, snapshots, and its
    description and metadata (``_metadata.read_meta``).

    A volume is exported (``in-use``) when it has a target file or a live target, as the volume module sees it.
    ``exports``: :func:`read_exports`; ``live``: ``drivers.tgt.parse_show`` output; ``live_by_backing``:
    :func:`live_backing_stores` of ``live`` (computed when not given); ``thin``: whether the volume is thin
    (default: it is in a thin pool)."""
    if live_by_backing is None:
        live_by_backing = live_backing_stores(live)
    if thin is None:
        thin = bool(lv["pool_lv"])
    export = exports.get(lv["path"]) or {}
    iqn = export.get("iqn") or live_by_backing.get(lv["path"])
    target = live.get(iqn) or {}
    # Our files record the consumers' IQNs; a live target without a file (or bound by hand) may carry
    # name entries in its ACL.
    attached = sorted(export.get("initiators")
                      or [a for a in target.get("acl", []) if a.startswith(("iqn.", "eui.", "naa."))])
    # The export is as its file says: LUN 1 on this LV, the file's CHAP accounts bound (the outgoing one of mutual
    # CHAP too), the file's ACL.
    export_ok = bool(export) and bool(target) \
        and (target["luns"].get(1) or {}).get("backing_store") == lv["path"] \
        and target["accounts"] == ([export["chap_username"]] if export.get("chap_username") else []) \
        and target.get("outgoing_account") == export.get("target_chap_username") \
        and sorted(target.get("acl", [])) == sorted(export.get("addresses") or []) \
        and (target["luns"].get(1) or {}).get("size") in (None, shown_size(lv["size_bytes"])) \
        and _identity_ok(lv["volume"], export, target)
    description, metadata = read_meta(lv["tags"])
    return {
        "name": lv["volume"], "lv_name": lv["name"], "size_bytes": lv["size_bytes"],
        "volume_type": lv["volume_type"], "status": "in-use" if iqn else "available",
        "attached_to": attached, "sessions": sorted(target.get("sessions", [])),
        "target_iqn": iqn, "initiator_addresses": sorted(export.get("addresses") or []),
        "export_ok": export_ok, "mutual_chap": bool(export.get("target_chap_username")),
        "snapshots": sorted(s["name"] for s in lvm_state.snapshots_of(lv["vg"], lv["name"])),
        "managed_snapshots": managed_snapshots(lvm_state, lv["vg"], lv, thin),
        "device": lv["path"], "description": description, "metadata": metadata,
        "migrated_from": migrated_from(lv["tags"]),
    }


def _identity_ok(volume, export, target):
    """Whether an export has its LUN's stable SCSI identity (``lun_identity``): in its file, and live unless
    initiators are logged in (then the attachment module leaves the live LUN until the next reload, and the fast
    path need not list it every run)."""
    identity = lun_identity(volume)
    if (export.get("scsi_id"), export.get("scsi_sn")) != identity:
        return False
    return bool(target.get("sessions")) or identity_matches(target["luns"].get(1), identity)


def pool_facts(host, cfg, lvm_state, exports, live, predict, prefix=DEFAULT_TARGET_PREFIX, files=None):
    """Facts of one backend's pool from one LVM snapshot (pure; unit tested with captured outputs). ``files``:
    ``{path: text}`` of the ember target files (for the target clashes; None = not known, none reported)."""
    vg = lvm_state.vgs.get(cfg["vg"])
    thin = cfg["driver"] == "lvm_thin"
    extent = vg["extent_size_bytes"] if vg else DEFAULT_EXTENT
    pool = {
        "id": "%s@%s" % (host, cfg["name"]), "host": host, "backend": cfg["name"], "driver": cfg["driver"],
        "vg": cfg["vg"], "thin_pool": cfg["thin_pool"], "share": None, "mount_point": None, "exists": False,
        "predicted": False, "mount_options": None, "mount_point_base": None,
        "extent_size_bytes": extent, "total_bytes": 0, "free_bytes": 0, "allocated_bytes": 0,
        "provisioned_bytes": 0, "data_percent": None, "metadata_percent": None,
        "capabilities": dict(cfg.get("capabilities") or {}),
        "volume_clear": cfg["volume_clear"], "volume_clear_size_bytes": cfg["volume_clear_size_bytes"],
        "mutual_chap": bool(cfg.get("mutual_chap")), "volumes": [], "migration_lvs": [],
        # Target clashes need the target files; a caller that does not give them (None) gets LV clashes only.
        "clashes": lv_clashes(host, cfg["vg"], lvm_state) + (
            target_clashes(host, live, files, prefix) if files is not None else []),
    }
    pool["capabilities"].update({
        "volume_backend_name": cfg["volume_backend_name"], "storage_protocol": "iSCSI", "driver": cfg["driver"],
        "thin_provisioning_support": thin, "thick_provisioning_support": not thin,
        "availability_zone": cfg["availability_zone"], "reserved_percentage": cfg["reserved_percentage"],
        "max_over_subscription_ratio": cfg["max_over_subscription_ratio"], "multiattach": True,
    })
    pool_lv = lvm_state.lv(cfg["vg"], cfg["thin_pool"]) if (vg and thin) else None
    if vg and (not thin or pool_lv):
        pool["exists"] = True
        members = lvm_state.managed_in(cfg["vg"], cfg["thin_pool"])
        if thin:
            total = pool_lv["size_bytes"]
            used = int(round(total * (pool_lv["data_percent"] or 0.0) / 100.0))
            pool.update(total_bytes=total, free_bytes=total - used, allocated_bytes=used,
                        data_percent=pool_lv["data_percent"], metadata_percent=pool_lv["metadata_percent"],
                        provisioned_bytes=sum(lv["size_bytes"] for lv in lvm_state.lvs
                                              if lv["vg"] == cfg["vg"] and lv["pool_lv"] == cfg["thin_pool"]))
        else:
            used = vg["size_bytes"] - vg["free_bytes"]
            pool.update(total_bytes=vg["size_bytes"], free_bytes=vg["free_bytes"], allocated_bytes=used,
                        provisioned_bytes=used)
        live_by_backing = live_backing_stores(live)
        for lv in sorted(members, key=lambda item: item["volume"]):
            pool["volumes"].append(volume_facts(lv, lvm_state, exports, live, live_by_backing, thin))
        pool["migration_lvs"] = migration_lvs(lvm_state, cfg["vg"], cfg["thin_pool"] if thin else None)
    elif predict:
        vg_size = vg["size_bytes"] if vg else predict_vg_size(
            [block_device_size(pv) or 0 for pv in cfg["pvs"]], extent)
        total = thin_pool_size(cfg["thin_pool_size"], vg_size, extent) if thin else vg_size
        pool.update(predicted=True, total_bytes=total, free_bytes=total)
    return pool


def backend_configs(backends, host):
    """The validated config of every backend (:func:`_argspec.backend_config` plus ``volume_clear_size_bytes``).
    Raises ValueError naming the field (``backends[0].vg``), or a name used twice."""
    configs = []
    seen = set()
    for index, backend in enumerate(backends):
        try:
            cfg = backend_config(backend, field="backends[%d]" % index)
            cfg["volume_clear_size_bytes"] = parse_clear_size(cfg["volume_clear_size"],
                                                              "backends[%d].volume_clear_size" % index)
        except SizeError as exc:
            raise ValueError(str(exc)) from None
        if cfg["name"] in seen:
            raise ValueError("backends[%d].name: %r is used twice on host %s" % (index, cfg["name"], host))
        seen.add(cfg["name"])
        configs.append(cfg)
    return configs


def read_vg_backup(vg):
    """LVM's metadata backup of ``vg`` (``/etc/lvm/backup/<vg>``), or None."""
    try:
        with open(os.path.join(LVM_BACKUP_DIR, vg)) as handle:
            return handle.read()
    except OSError:
        return None


def problems_of(configs, state, pv_rows, messages, read_backup=read_vg_backup):
    """Problems of the backends' VGs and PVs (:func:`drivers.lvm.backend_problems`); a VG that LVM does not
    report is looked up in LVM's metadata backup."""
    problems = []
    for cfg in configs:
        backup = read_backup(cfg["vg"]) if cfg["vg"] not in state.vgs else None
        problems.extend(backend_problems(cfg, state, pv_rows, messages, backup))
    return problems


# --- nfs backends (issue 14) ----------------------------------------------------------------------------------------

def nfs_pool_id(host, backend, share):
    """Pool id of one share of an nfs backend: ``<host>@<backend>#<share>``, Cinder's ``host@backend#pool`` with the
    share as the pool (as Cinder's NFS driver names its pools)."""
    return "%s@%s#%s" % (host, backend, share)


def _nfs_snapshots(rec):
    """``managed_snapshots`` of an NFS volume, in the LVM ones' shape (no COW store); ``latest``: the highest
    sequence (the order the snapshots were taken in, kept in the sidecar)."""
    done = {snap: entry for snap, entry in rec["snapshots"].items() if entry["status"] == "available"}
    out = []
    for snap, entry in sorted(done.items()):
        mine = entry.get("sequence") or 0
        out.append({"name": snap, "lv_name": snapshot_file(rec["name"], snap),
                    "volume_size_bytes": entry["volume_size_bytes"], "cow_size_bytes": None,
                    "reverted": bool(entry.get("reverted")), "description": entry.get("description"),
                    "created_at": entry.get("created_at") or None, "group": None,
                    "latest": all((other.get("sequence") or 0) < mine for name, other in done.items() if name != snap)})
    return out


def nfs_pool_facts(host, cfg, share, path, state, capacity, predict=False):
    """Facts of one share of an nfs backend (pure): a pool per share, named :func:`nfs_pool_id`, its ``vg`` the
    share (what the volume and snapshot modules take as an item's ``vg``). ``state``: the share's
    :class:`drivers.nfs.ShareState` and ``capacity`` its ``drivers.nfs.capacity`` when it is mounted, else both
    None (``exists`` false, no capacity: nothing is placed there until it is mounted). With ``predict`` (check
    mode) a share that is not mounted is ``predicted``: empty, its capacity ``unknown`` (Cinder's value for a
    backend that cannot tell, which the CapacityFilter lets pass), so that a ``--check`` run before the share is
    mounted (the real run's gather mounts it) can plan its volumes.

    Capacity as Cinder's NFS driver reports it: total and free from statvfs; ``provisioned_bytes`` the sum of the
    apparent sizes of the volume and snapshot files when the backend is sparse (thin provisioning support), the
    used space (total - free) when it preallocates; ``allocated_bytes`` the blocks the files hold. The volumes
    have the LVM volumes' keys (no export: a consumer attaches an NFS volume's file itself)."""
    sparse = bool(cfg["sparse"])
    pool = {
        "id": nfs_pool_id(host, cfg["name"], share), "host": host, "backend": cfg["name"], "driver": "nfs",
        "vg": share, "thin_pool": None, "share": share, "mount_point": path, "exists": state is not None,
        "predicted": False, "extent_size_bytes": SIZE_STEP, "total_bytes": 0, "free_bytes": 0, "allocated_bytes": 0,
        "provisioned_bytes": 0, "data_percent": None, "metadata_percent": None,
        "capabilities": dict(cfg.get("capabilities") or {}),
        "volume_clear": cfg["volume_clear"], "volume_clear_size_bytes": cfg["volume_clear_size_bytes"],
        "mutual_chap": bool(cfg.get("mutual_chap")), "volumes": [], "migration_lvs": [], "clashes": [],
        # What a consumer mounts the share with, at the same path (the converge role's connection items).
        "mount_options": list(cfg["mount_options"]), "mount_point_base": cfg["mount_point_base"],
    }
    pool["capabilities"].update({
        "volume_backend_name": cfg["volume_backend_name"], "storage_protocol": "nfs", "driver": "nfs",
        "thin_provisioning_support": sparse, "thick_provisioning_support": not sparse,
        "availability_zone": cfg["availability_zone"], "reserved_percentage": cfg["reserved_percentage"],
        "max_over_subscription_ratio": cfg["max_over_subscription_ratio"], "multiattach": False,
    })
    if state is None:
        if predict:
            pool.update(predicted=True, total_bytes="unknown", free_bytes="unknown")
        return pool
    total, free = capacity["total_bytes"], capacity["free_bytes"]
    pool.update(total_bytes=total, free_bytes=free, allocated_bytes=state.allocated_bytes(),
                provisioned_bytes=state.provisioned_bytes() if sparse else max(0, total - free))
    for name, rec in sorted(state.volumes.items()):
        status = rec["status"] if rec["status"] != "available" else ("available" if rec["file"] else "error")
        pool["volumes"].append({
            "name": name, "lv_name": volume_file(name),
            "size_bytes": (rec["file"] or {}).get("size_bytes", rec["size_bytes"]),
            "volume_type": rec.get("volume_type"), "status": status, "attached_to": [], "sessions": [],
            "target_iqn": None, "initiator_addresses": [], "export_ok": False, "mutual_chap": False,
            "snapshots": sorted(snap for snap, entry in rec["snapshots"].items() if entry["status"] == "available"),
            "managed_snapshots": _nfs_snapshots(rec), "device": rec["path"],
            "description": rec.get("description"), "metadata": dict(rec.get("metadata") or {}),
        })
    pool["clashes"] = [{"kind": "file", "host": host, "volume": name, "vg": share, "lv_name": volume_file(name),
                        "path": path_, "reason": "%s on share %s has no sidecar %s.info: not ember.blockstore's"
                        % (volume_file(name), share, volume_file(name))}
                       for name, path_ in sorted(state.foreign.items())]
    return pool


def nfs_problems(cfg, share, path, state=None, error=None):
    """Problems of one share of an nfs backend, in the shape of :func:`problems_of`'s: the share does not answer or
    cannot be read (``error``), or a sidecar cannot be read (its volume is unknown, never absent)."""
    out = []
    if error is not None:
        out.append({"backend": cfg["name"], "vg": share, "device": path, "message": error,
                    "repair": "check the NFS server and the network (showmount -e, rpcinfo); if the server is gone for "
                              "good, umount -f -l %s" % path})
    for name, why in sorted((state.broken if state is not None else {}).items()):
        out.append({"backend": cfg["name"], "vg": share, "device": path, "message": why,
                    "repair": "restore %s/%s.info (the volume's state) or, if volume %s is not wanted, remove its "
                              "files by hand" % (path, volume_file(name), name)})
    return out


def readable_shares(module, nfs, configs, what):
    """``[(cfg, share, ShareState)]`` of the mounted shares that answered, for the info modules: of the nfs backends
    among ``configs`` (:func:`read_shares`); each other share is warned about, saying its ``what`` (e.g.
    "volumes") are not reported."""
    out = []
    for cfg, share, _path, share_state, _capacity, error in read_shares(nfs, [c for c in configs
                                                                              if c["driver"] == "nfs"]):
        if share_state is None:
            module.warn("share %s of backend %s: %s; its %s are not reported"
                        % (share, cfg["name"], error or "not mounted", what))
            continue
        out.append((cfg, share, share_state))
    return out


def only_nfs(configs):
    """Whether ``configs`` are all nfs backends (and there is one): then there is no LVM or tgt to read."""
    return bool(configs) and all(cfg["driver"] == "nfs" for cfg in configs)


def read_shares(nfs, configs):
    """``[(cfg, share, mount point, ShareState or None, capacity or None, error or None)]`` of every share of the
    nfs backends: a share not mounted has no state (nothing is mounted here: an info module changes nothing); a
    mounted one is probed within its time bound and read; one that does not answer or cannot be read has an error
    (a problem)."""
    out = []
    for cfg in configs:
        for share in cfg["shares"]:
            path = _nfs_driver.mount_point(share, cfg["mount_point_base"])
            try:
                if not nfs.mounted(share, path):
                    out.append((cfg, share, path, None, None, None))
                    continue
                nfs.probe(share, path)
                out.append((cfg, share, path, _nfs_driver.read_share(share, path), _nfs_driver.capacity(path), None))
            except _nfs_driver.NfsError as exc:
                out.append((cfg, share, path, None, None, str(exc)))
            except OSError as exc:
                out.append((cfg, share, path, None, None, "share %s (mounted at %s) cannot be read: %s"
                            % (share, path, exc.strerror or exc)))
    return out


# --- manage requests (Cinder's manage_existing) ----------------------------------------------------------------------

def read_holders(path):
    """The devices that hold the block device at ``path`` (``/sys/class/block/<dm-N>/holders``: a device-mapper
    map, an md array or a dm-crypt mapping built on it), sorted; empty when it has none or does not exist."""
    real = os.path.realpath(path or "")
    try:
        return sorted(os.listdir(os.path.join(SYS_CLASS_BLOCK, os.path.basename(real), "holders")))
    except OSError:
        return []


def manageable_lvs(cfg, lvm_state, names, mounts_of):
    """What ``backend_info`` reports of the LVs a manage request names (``names``), as each is in the volume group
    of the LVM backend ``cfg`` (an LV of another VG is not reported here), for the plan to decide the manage before
    any change (Cinder's ``manage_existing_get_size`` checks the reference the same way). Sorted by name; each:
    ``name``, ``vg``, ``size_bytes`` (exact, bytes), ``thin`` and ``pool_lv`` (a thin volume and its pool),
    ``in_pool`` (the LV is of the backend's kind: a thin volume of its thin pool, or a plain LV for a thick
    backend), ``kind`` (``linear``, ``thin`` or the segment type), ``open`` (``lv_attr``'s sixth character),
    ``holders`` (sysfs), ``mounted`` (``mounts_of(path)``: the mount points, from findmnt), ``snapshot_of`` (the
    origin of a snapshot LV), ``snapshots`` (LVs whose origin it is), ``tags`` (all of them), ``managed_as`` (the
    volume it already is, when it carries the project's tags) and ``path``."""
    out = []
    for name in sorted(set(names)):
        lv = lvm_state.lv(cfg["vg"], name)
        if lv is None:
            continue
        usage = lv_usage(lv, lvm_state)
        thin = usage["kind"] == "thin"
        in_pool = (thin and lv["pool_lv"] == cfg.get("thin_pool")) if cfg["driver"] == "lvm_thin" \
            else usage["kind"] == "linear"
        path = lv["path"] or "/dev/%s/%s" % (lv["vg"], lv["name"])
        out.append({"name": lv["name"], "vg": lv["vg"], "size_bytes": lv["size_bytes"], "thin": thin,
                    "pool_lv": lv["pool_lv"], "in_pool": bool(in_pool), "kind": usage["kind"], "open": usage["open"],
                    "holders": read_holders(path), "mounted": sorted(mounts_of(path)),
                    "snapshot_of": usage["snapshot_of"], "snapshots": usage["snapshots"], "tags": list(lv["tags"]),
                    "managed_as": lv["volume"] if lv["managed"] else None, "path": path})
    return out
