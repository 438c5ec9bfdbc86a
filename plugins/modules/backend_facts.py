#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backend_facts
short_description: Report the pools of a storage node, their capacity, capabilities and volumes
version_added: 0.1.0
description:
  - Reads the LVM state of a storage node with one C(vgs) and one C(lvs) call, the ember target files in
    C(/etc/tgt/conf.d/) and the live tgt targets, and reports one pool per declared backend in the shape the
    P(ember.blockstore.schedule#filter) filter consumes.
  - Pool statistics follow Cinder's LVM driver. Thick (V(lvm)) pools report the volume group's size and free
    space; thin (V(lvm_thin)) pools report the thin pool's data size, its free data space and, as
    C(provisioned_bytes), the sum of the virtual sizes of its thin volumes.
  - Only LVs tagged both C(ember.blockstore) and C(ember.volume=<name>) (and named C(volume-<name>)) are reported
    as volumes; other LVs only count as used space.
  - Names in the project's namespace that something else holds are reported as C(clashes), so that the plan
    refuses an inventory volume of that name before any change (M(ember.blockstore.volume) and
    M(ember.blockstore.attachment) would refuse it on this host only, later). These are LVs named
    C(volume-<name>) in the backend's volume group without both tags, live tgt targets named
    C(<target_prefix>volume-<name>) without the project's target file, and files at
    C(/etc/tgt/conf.d/ember-volume-<name>.conf) without the project's marker.
  - Every option is validated (backend, volume group, thin pool and device names, sizes, labels) and bounded;
    a bad value fails the module with a message naming the field, before any command.
  - In check mode, a volume group or thin pool that does not exist yet is predicted from the sizes of its
    physical volumes, so that a C(--check) run of a new host can plan; such pools have RV(pools[].predicted=true).
  - Read-only; never reports C(changed).
author: ember.blockstore contributors (@ember-blockstore)
options:
  backends:
    description: The backends of this storage node (the host's C(blockstore_backends)).
    type: list
    elements: dict
    required: true
    suboptions:
      name: {description: "Backend name, unique on the host.", type: str, required: true}
      driver: {description: V(lvm) (thick LVs in a VG) or V(lvm_thin) (thin LVs in a thin pool)., type: str,
               choices: [lvm, lvm_thin], default: lvm}
      vg: {description: Volume group name., type: str, required: true}
      pvs: {description: Physical volumes of the VG (used to predict size in check mode)., type: list,
            elements: str, default: []}
      pool: {description: Thin pool LV name (V(lvm_thin) only)., type: str, default: thinpool}
      pool_size: {description: "Thin pool data size: C(NN%VG) or a size with unit (V(3GiB)).", type: str,
                  default: 95%VG}
      availability_zone: {description: Availability zone of the backend., type: str, default: nova}
      reserved_percentage: {description: Percent of total capacity kept free (Cinder's reserved_percentage).,
                            type: int, default: 0}
      max_over_subscription_ratio: {description: "Thin over-subscription ratio (float >= 1) or V(auto).",
                                    type: raw, default: 20.0}
      volume_backend_name: {description: "Name matched by the C(volume_backend_name) extra spec; defaults to
                              O(backends[].name).", type: str}
      capabilities: {description: Extra capabilities reported to the scheduler (matched by extra specs).,
                     type: dict, default: {}}
      volume_clear: {description: How deleted thick volumes are wiped., type: str, choices: [zero, none],
                     default: zero}
      volume_clear_size: {description: "Start of a deleted thick volume to wipe, as Cinder's
                            C(volume_clear_size): a bare number is MiB, or a size with unit (V(512MiB));
                            V(0) = the whole volume.", type: str, default: "0"}
  host:
    description: Name of this host as the inventory knows it (pool ids are C(<host>@<backend>)).
    type: str
    required: true
  ledger_path:
    description: Path of this node's copy of the placement ledger (see M(ember.blockstore.ledger)).
    type: path
    default: /var/lib/ember-blockstore/ledger.json
  target_prefix:
    description: IQN prefix of the targets (to find targets that clash with the project's names).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
extends_documentation_fragment:
  - ember.blockstore.attributes
  - ember.blockstore.attributes.info_module
seealso:
  - module: ember.blockstore.volume
"""

EXAMPLES = r"""
- name: Gather pool facts
  ember.blockstore.backend_facts:
    backends: "{{ blockstore_backends }}"
    host: "{{ inventory_hostname }}"
  register: facts
"""

RETURN = r"""
pools:
  description: One pool per backend.
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: "C(<host>@<backend>).", type: str, sample: stor1@lvm-thin}
    host: {description: Inventory host., type: str, sample: stor1}
    backend: {description: Backend name., type: str, sample: lvm-thin}
    driver: {description: V(lvm) or V(lvm_thin)., type: str, sample: lvm_thin}
    vg: {description: Volume group., type: str, sample: ember-thin}
    thin_pool: {description: Thin pool LV or null., type: str, sample: thinpool}
    exists: {description: Whether the VG (and thin pool) exist., type: bool, sample: true}
    predicted: {description: "True when sizes are predicted (check mode, pool not created yet).", type: bool,
                sample: false}
    extent_size_bytes: {description: LVM extent size in bytes., type: int, sample: 4194304}
    total_bytes: {description: Capacity in bytes., type: int, sample: 8053063680}
    free_bytes: {description: Free capacity in bytes., type: int, sample: 7516192768}
    allocated_bytes: {description: Used capacity in bytes., type: int, sample: 536870912}
    provisioned_bytes: {description: Sum of the sizes of the volumes (thin) or used capacity (thick)., type: int,
                        sample: 21474836480}
    data_percent: {description: Thin pool data usage in percent (thin only)., type: float, sample: 6.67}
    metadata_percent: {description: Thin pool metadata usage in percent (thin only)., type: float, sample: 10.94}
    capabilities: {description: "Reported to the scheduler: volume_backend_name, storage_protocol, driver,
                   thin_provisioning_support, thick_provisioning_support, availability_zone, reserved_percentage,
                   max_over_subscription_ratio, multiattach, plus the backend's capabilities.", type: dict,
                   sample: {volume_backend_name: lvm-thin, storage_protocol: iSCSI, driver: lvm_thin,
                            thin_provisioning_support: true, thick_provisioning_support: false,
                            availability_zone: az1, reserved_percentage: 10, max_over_subscription_ratio: 20.0,
                            multiattach: false}}
    volume_clear: {description: The backend's wipe method., type: str, sample: zero}
    volume_clear_size_bytes: {description: Bytes wiped on delete (0 = all)., type: int, sample: 0}
    volumes:
      description: Managed volumes in the pool.
      type: list
      elements: dict
      contains:
        name: {description: Volume name., type: str, sample: db01-data}
        lv_name: {description: LV name., type: str, sample: volume-db01-data}
        size_bytes: {description: Size in bytes., type: int, sample: 10737418240}
        volume_type: {description: Volume type recorded at creation., type: str, sample: fast}
        status: {description: V(available) or V(in-use) (a target file or a live target exports it)., type: str,
                 sample: in-use}
        attached_to: {description: Initiator IQNs the volume is exported to (recorded in its target file)., type: list,
                      elements: str, sample: ["iqn.1993-08.org.debian:01:9263f289471f"]}
        sessions: {description: Initiator IQNs logged in now., type: list, elements: str,
                   sample: ["iqn.1993-08.org.debian:01:9263f289471f"]}
        target_iqn: {description: IQN of the volume's export; null when not exported., type: str,
                     sample: "iqn.2026-11.io.ember.blockstore:volume-db01-data"}
        initiator_addresses: {description: Addresses in the target file's ACL., type: list, elements: str,
                              sample: [198.18.0.21]}
        export_ok: {description: "Whether the live target matches its file (LUN 1 on this LV, the file's CHAP
                    account, the file's ACL).", type: bool, sample: true}
        snapshots: {description: Names of LVs whose origin is this volume., type: list, elements: str, sample: []}
        device: {description: Device path on the storage node., type: str, sample: /dev/ember-thin/volume-db01-data}
    clashes:
      description: "Names in the project's namespace held by something that is not the project's: C(kind) (C(lv) or
        C(target)), C(host), C(volume) (the volume name it clashes with), and C(vg), C(lv_name), C(tags) for an LV
        or C(target_iqn), C(path), C(reason) for a target. Target clashes are host-wide and repeated in every pool
        of the host."
      type: list
      elements: dict
problems:
  description:
    - Damaged LVM state found on this node, one item per problem. A node with problems is not scheduled on and
      its volumes are not touched; the plan names each problem.
  returned: always
  type: list
  elements: dict
  contains:
    backend: {description: Backend name., type: str, sample: lvm-thin}
    vg: {description: Volume group., type: str, sample: ember-thin}
    device: {description: "The device concerned (a PV), or null.", type: str, sample: /dev/vdb}
    message: {description: "What is wrong, as LVM said it.", type: str}
    repair: {description: The command or step that repairs it (run by the operator)., type: str}
  sample: []
ledger:
  description: This node's copy of the placement ledger (C(generation), C(volumes), C(written_by), C(written_at));
    generation 0 and no volumes when the node has none.
  returned: always
  type: dict
  sample: {generation: 0, volumes: {}}
ledger_error:
  description: Why the ledger could not be read, or null.
  returned: always
  type: str
  sample: null
tgt:
  description: State of the tgt daemon, C(running) (tgtadm answers), C(configured) (the include line and the
    ember.blockstore systemd drop-in are present), C(ready) (both) and C(portals) (the addresses it listens on,
    as C(addr:port); empty when it is not running).
  returned: always
  type: dict
  sample: {running: true, configured: true, ready: true}
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._ledger import LEDGER_PATH, LedgerError, read_ledger
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    LV_PREFIX,
    TGT_CONF_DIR,
    NameError_,
    target_iqn,
    tgt_conf_path,
    validate_target_prefix,
    validate_text,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._portals import TGT_DROPIN_MARKER
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_clear_size
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import (
    DEFAULT_EXTENT,
    Lvm,
    backend_problems,
    block_device_size,
    predict_vg_size,
    thin_pool_size,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    HEADER,
    Tgt,
    is_managed_conf,
    parse_conf,
)

TGT_DROPIN = "/etc/systemd/system/tgt.service.d/ember-start-offline.conf"
TGT_INCLUDE = "include /etc/tgt/conf.d/*.conf"


def tgt_configured(targets_conf="/etc/tgt/targets.conf", dropin=TGT_DROPIN):
    """Whether the tgt_target role's configuration is in place and current (include line and the systemd
    drop-in of this release)."""
    try:
        with open(targets_conf) as handle:
            included = any(line.strip() == TGT_INCLUDE for line in handle)
        with open(dropin) as handle:
            current = handle.readline().rstrip("\n") == TGT_DROPIN_MARKER
    except OSError:
        return False
    return included and current and os.path.isdir("/etc/tgt/conf.d")


def read_conf_files(conf_dir=TGT_CONF_DIR):
    """``{path: text}`` of every ``ember-*.conf`` file in ``conf_dir``."""
    files = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(conf_dir), "ember-*.conf"))):
        with open(path) as handle:
            files[path] = handle.read()
    return files


def read_exports(conf_dir=TGT_CONF_DIR, files=None):
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
        if volume is not None and not lv["managed"]:
            out.append({"kind": "lv", "host": host, "volume": volume, "vg": vg, "lv_name": lv["name"],
                        "tags": list(lv["tags"])})
    return out


def pool_facts(host, cfg, lvm_state, exports, live, predict, prefix=DEFAULT_TARGET_PREFIX, files=None):
    """Facts of one backend's pool from one LVM snapshot (pure; unit tested with captured outputs). ``files``:
    ``{path: text}`` of the ember target files (for the target clashes; None = not known, none reported)."""
    vg = lvm_state.vgs.get(cfg["vg"])
    thin = cfg["driver"] == "lvm_thin"
    extent = vg["extent_size_bytes"] if vg else DEFAULT_EXTENT
    pool = {
        "id": "%s@%s" % (host, cfg["name"]), "host": host, "backend": cfg["name"], "driver": cfg["driver"],
        "vg": cfg["vg"], "thin_pool": cfg["thin_pool"], "exists": False, "predicted": False,
        "extent_size_bytes": extent, "total_bytes": 0, "free_bytes": 0, "allocated_bytes": 0,
        "provisioned_bytes": 0, "data_percent": None, "metadata_percent": None,
        "capabilities": dict(cfg.get("capabilities") or {}),
        "volume_clear": cfg["volume_clear"], "volume_clear_size_bytes": cfg["volume_clear_size_bytes"],
        "volumes": [],
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
        # A volume is exported (in-use) when it has a target file or a live target, as the volume module sees it.
        live_by_backing = {(t["luns"].get(1) or {}).get("backing_store"): iqn for iqn, t in live.items()}
        for lv in sorted(members, key=lambda item: item["volume"]):
            export = exports.get(lv["path"]) or {}
            iqn = export.get("iqn") or live_by_backing.get(lv["path"])
            target = live.get(iqn) or {}
            # Our files record the consumers' IQNs; a live target without a file (or bound by hand) may carry
            # name entries in its ACL.
            attached = sorted(export.get("initiators")
                              or [a for a in target.get("acl", []) if a.startswith(("iqn.", "eui.", "naa."))])
            # The export is as its file says: LUN 1 on this LV, the file's CHAP account bound, the file's ACL.
            export_ok = bool(export) and bool(target) \
                and (target["luns"].get(1) or {}).get("backing_store") == lv["path"] \
                and target["accounts"] == ([export["chap_username"]] if export.get("chap_username") else []) \
                and sorted(target.get("acl", [])) == sorted(export.get("addresses") or [])
            pool["volumes"].append({
                "name": lv["volume"], "lv_name": lv["name"], "size_bytes": lv["size_bytes"],
                "volume_type": lv["volume_type"], "status": "in-use" if iqn else "available",
                "attached_to": attached, "sessions": sorted(target.get("sessions", [])),
                "target_iqn": iqn, "initiator_addresses": sorted(export.get("addresses") or []),
                "export_ok": export_ok,
                "snapshots": sorted(s["name"] for s in lvm_state.snapshots_of(cfg["vg"], lv["name"])),
                "device": lv["path"],
            })
    elif predict:
        vg_size = vg["size_bytes"] if vg else predict_vg_size(
            [block_device_size(pv) or 0 for pv in cfg["pvs"]], extent)
        total = thin_pool_size(cfg["pool_size"], vg_size, extent) if thin else vg_size
        pool.update(predicted=True, total_bytes=total, free_bytes=total)
    return pool


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backends=dict(type="list", elements="dict", required=True, options=backend_options()),
            host=dict(type="str", required=True),
            ledger_path=dict(type="path", default=LEDGER_PATH),
            target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
        ),
        supports_check_mode=True,
    )
    host = module.params["host"]
    try:
        validate_text(host, "host", what="host name")
        validate_target_prefix(module.params["target_prefix"])
    except NameError_ as exc:
        module.fail_json(msg=str(exc))
    configs = []
    seen = set()
    for index, backend in enumerate(module.params["backends"]):
        try:
            cfg = backend_config(backend, field="backends[%d]" % index)
            cfg["volume_clear_size_bytes"] = parse_clear_size(cfg["volume_clear_size"],
                                                              "backends[%d].volume_clear_size" % index)
        except (ValueError, SizeError) as exc:
            module.fail_json(msg=str(exc))
        if cfg["name"] in seen:
            module.fail_json(msg="backends[%d].name: %r is used twice on host %s" % (index, cfg["name"], host))
        seen.add(cfg["name"])
        configs.append(cfg)

    try:
        ledger, ledger_error = read_ledger(module.params["ledger_path"]), None
    except LedgerError as exc:
        ledger, ledger_error = None, str(exc)
    runner = Runner(module)
    lvm, tgt = Lvm(runner), Tgt(runner)
    try:
        state, messages = lvm.state(tolerant=True)
        pv_rows = lvm.pvs()
        running = tgt.running()
        live = tgt.show_if_running() if running else {}
        portals = tgt.portals() if running else []
    except CommandError as exc:
        module.fail_json(msg=str(exc), **exc.context())
    problems = []
    for cfg in configs:
        backup = None
        if cfg["vg"] not in state.vgs:
            try:
                with open(os.path.join("/etc/lvm/backup", cfg["vg"])) as handle:
                    backup = handle.read()
            except OSError:
                backup = None
        problems.extend(backend_problems(cfg, state, pv_rows, messages, backup))
    configured = tgt_configured()
    pools = []
    # Pools of a damaged VG are not reported: nothing may be scheduled on them or touched there.
    if not problems:
        files = read_conf_files()
        exports = read_exports(files=files)
        try:
            pools = [pool_facts(host, cfg, state, exports, live, module.check_mode, module.params["target_prefix"],
                                files) for cfg in configs]
        except SizeError as exc:
            module.fail_json(msg="backend_facts on %s: %s" % (host, exc))
    module.exit_json(changed=False, pools=pools, problems=problems, ledger=ledger, ledger_error=ledger_error,
                     tgt={"running": running, "configured": configured, "ready": running and configured,
                          "portals": portals})


if __name__ == "__main__":
    main()
