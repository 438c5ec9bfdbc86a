#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: freeze
short_description: Freeze and thaw a consumer's file systems on block storage volumes, with a safety net
version_added: 0.3.0
description:
  - "Quiesces a consumer's use of volumes for a group snapshot (C(blockstore_groups)), as Nova's quiesce does for
    Cinder's group snapshots of an instance's volumes (the guest agent runs C(fsfreeze)); the blockstore role runs
    it on every consumer of a group's volumes, takes the snapshots on the storage nodes
    (M(ember.blockstore.snapshot) with C(group)) and thaws, always."
  - "O(state=frozen): each volume's iSCSI session (C(iscsiadm -m session -P 3): the target
    C(<target_prefix>volume-<name>), the disk of its LUN 1 on each portal) and each of O(devices) are looked up with
    C(lsblk --json --paths); a dm-multipath map over the disks is the device used. Every file system mounted in
    the tree below that device (partitions, LVM, dm-crypt included) is frozen with C(fsfreeze -f). A device with
    no mounted file system is suspended with C(dmsetup suspend) when it is a device-mapper map; a plain disk with
    nothing mounted is refused (nothing would hold its writers), before anything is frozen."
  - "Safety net: before the first freeze a detached watchdog (C(setsid -f /bin/sh -c ...)) is started that waits
    O(timeout) seconds and then, if this freeze is still in place, runs C(fsfreeze -u) and C(dmsetup resume) itself
    and marks the freeze expired - a controller that dies before the thaw leaves the consumer frozen for
    O(timeout) seconds at most. The normal thaw cancels it (it removes the state file the watchdog checks)."
  - "The freeze is recorded in C(/run/ember-blockstore/freeze/<name>.<token>.json) (what, since when, O(owner)):
    a second O(state=frozen) with the same O(name) and O(owner) changes nothing; another owner's is refused."
  - "O(state=thawed): C(fsfreeze -u) of each frozen mount point and C(dmsetup resume) of each suspended map of the
    freezes named O(name), then their state files are removed. RV(frozen_seconds) is how long the freeze lasted;
    RV(expired) says the watchdog thawed first (the snapshots taken after it may not be consistent). Nothing to
    thaw is no change."
  - Volumes without a session on this host are not attached here and are listed in RV(not_attached).
author: ember.blockstore contributors (@ember-blockstore)
options:
  name:
    description: "The freeze's name (1-63 lowercase letters, digits, C(.) or C(-)); the blockstore role uses
      V(groups)."
    type: str
    default: groups
  state:
    description: V(frozen) freezes, V(thawed) thaws.
    type: str
    choices: [frozen, thawed]
    required: true
  volumes:
    description: Volumes (as named in C(blockstore_volumes)) whose iSCSI devices on this host are frozen.
    type: list
    elements: str
    default: []
  devices:
    description: "Other block devices to freeze (paths under C(/dev), e.g. C(/dev/mapper/<wwid>),
      C(/dev/disk/by-path/...)), looked up with C(lsblk) as the volumes' disks are."
    type: list
    elements: str
    default: []
  timeout:
    description: "Seconds after which the watchdog thaws by itself (1-3600). The frozen window is bounded by it."
    type: int
    default: 30
  owner:
    description: Who freezes (the blockstore role gives its run id); a freeze of the same name by another owner is
      refused.
    type: str
  target_prefix:
    description: IQN prefix of the volumes' targets.
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
    details: Looks the devices up and says what would be frozen or thawed; freezes and thaws nothing.
  diff_mode:
    support: none
notes:
  - "Errors before anything is frozen, naming the field and the value: an invalid O(name), O(timeout) outside
    1-3600, an invalid volume name or device path, a device lsblk does not know, a device with no mounted file
    system that is not a device-mapper map, a freeze of the same name by another O(owner). A failure while freezing
    thaws what this run froze before it fails."
  - "A frozen file system blocks every writer (and C(sync)) until it is thawed: keep O(timeout) short. Reads go
    on."
  - Needs C(fsfreeze), C(setsid) (util-linux), C(lsblk), C(dmsetup) and C(iscsiadm) (for O(volumes)).
seealso:
  - module: ember.blockstore.snapshot
"""

EXAMPLES = r"""
- name: Freeze the file systems on two volumes for at most 30 s
  ember.blockstore.freeze:
    state: frozen
    volumes: [db01-data, db01-log]
    timeout: 30
    owner: run-2026-12-01T10:00:00Z

- name: Thaw them
  ember.blockstore.freeze:
    state: thawed
"""

RETURN = r"""
frozen:
  description: "The devices frozen (or with O(state=thawed), thawed), one per volume or device."
  returned: always
  type: list
  elements: dict
  contains:
    volume: {description: The volume (or the device path given in O(devices))., type: str, sample: db01-data}
    device: {description: The device it is used through (a dm-multipath map or the disk)., type: str,
             sample: /dev/sdb}
    mount_points: {description: Its mounted file systems (frozen with fsfreeze)., type: list, elements: str,
                   sample: [/srv/db]}
    suspended: {description: "The device-mapper map suspended instead (nothing mounted), or null.", type: str,
                sample: null}
mount_points:
  description: Every mount point frozen or thawed.
  returned: always
  type: list
  elements: str
  sample: [/srv/db, /srv/log]
maps:
  description: Every device-mapper map suspended or resumed.
  returned: always
  type: list
  elements: str
  sample: []
not_attached:
  description: Volumes of O(volumes) without an iSCSI session on this host (nothing to freeze).
  returned: always
  type: list
  elements: str
  sample: []
frozen_at:
  description: When the freeze began (seconds since the epoch), or null.
  returned: always
  type: float
  sample: 1796025600.25
timeout:
  description: The watchdog's timeout (seconds).
  returned: always
  type: int
  sample: 30
frozen_seconds:
  description: With O(state=thawed), how long the freeze lasted (until this thaw, or O(timeout) when the watchdog
    thawed first); null otherwise or when nothing was frozen.
  returned: always
  type: float
  sample: 4.2
expired:
  description: With O(state=thawed), whether the watchdog had thawed before this run (the window went over
    O(timeout)).
  returned: always
  type: bool
  sample: false
not_frozen:
  description: Mount points that were not frozen any more when they were thawed.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._freeze import (
    FreezeError,
    Freezer,
    resolve,
    validate_request,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import DEFAULT_TARGET_PREFIX
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner

TOOLS = ("fsfreeze", "dmsetup", "setsid", "sh", "iscsiadm", "lsblk")


def argument_spec():
    return dict(name=dict(type="str", default="groups"),
                state=dict(type="str", choices=["frozen", "thawed"], required=True),
                volumes=dict(type="list", elements="str", default=[]),
                devices=dict(type="list", elements="str", default=[]),
                timeout=dict(type="int", default=30),
                owner=dict(type="str"),
                target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX))


def empty_result(timeout):
    return dict(changed=False, frozen=[], mount_points=[], maps=[], not_attached=[], frozen_at=None,
                timeout=timeout, frozen_seconds=None, expired=False, not_frozen=[])


def finish(module, result):
    """``exit_json`` with every result key named."""
    module.exit_json(changed=result["changed"], frozen=result["frozen"], mount_points=result["mount_points"],
                     maps=result["maps"], not_attached=result["not_attached"], frozen_at=result["frozen_at"],
                     timeout=result["timeout"], frozen_seconds=result["frozen_seconds"], expired=result["expired"],
                     not_frozen=result["not_frozen"])


def items_of(plan):
    return [{"volume": p["volume"], "device": p["device"], "mount_points": p["mount_points"],
             "suspended": p["suspend"]} for p in plan]


def do_freeze(module, freezer, params, result):
    active, dummy = freezer.state_files(params["name"])
    for path in active:
        record = freezer.read(path)
        if record.get("owner") != params["owner"]:
            module.fail_json(msg="name: %r is frozen already by %s since %s (its thaw, state: thawed, comes first)"
                             % (params["name"], record.get("owner") or "another run",
                                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.get("frozen_at") or 0))),
                             **result)
        result.update(mount_points=record.get("mount_points") or [], maps=record.get("maps") or [],
                      frozen_at=record.get("frozen_at"), timeout=record.get("timeout"))
        finish(module, result)
    disks, missing = {}, []
    if params["volumes"]:
        disks, missing = freezer.disks(params["volumes"], params["target_prefix"])
    for device in params["devices"]:
        disks[device] = [device]
    result["not_attached"] = missing
    if not disks:
        finish(module, result)
    plan, errors = resolve(disks, freezer.lsblk([d for ds in disks.values() for d in ds]))
    if errors:
        module.fail_json(msg="nothing was frozen: " + "; ".join(errors), errors=errors, **result)
    result.update(frozen=items_of(plan), mount_points=sorted({m for p in plan for m in p["mount_points"]}),
                  maps=sorted({p["suspend"] for p in plan if p["suspend"]}), changed=bool(plan))
    if module.check_mode or not plan:
        finish(module, result)
    record = freezer.freeze(params["name"], params["owner"], params["timeout"], plan)
    result["frozen_at"] = record["frozen_at"]
    finish(module, result)


def do_thaw(module, freezer, params, result):
    active, expired = freezer.state_files(params["name"])
    problems = []
    for path in expired:
        record = freezer.read(path)
        result.update(expired=True, frozen_seconds=float(record.get("timeout") or 0),
                      frozen_at=record.get("frozen_at"), timeout=record.get("timeout"))
        result["mount_points"] += record.get("mount_points") or []
        result["maps"] += record.get("maps") or []
        if not module.check_mode:
            os.unlink(path)
        result["changed"] = True
    for path in active:
        record = freezer.read(path)
        result.update(frozen_at=record.get("frozen_at"), timeout=record.get("timeout"), changed=True)
        result["mount_points"] += record.get("mount_points") or []
        result["maps"] += record.get("maps") or []
        if module.check_mode:
            continue
        dummy, trouble, not_frozen = freezer.thaw(path)
        problems += trouble
        result["not_frozen"] += not_frozen
        if not result["expired"]:
            result["frozen_seconds"] = round(time.time() - float(record.get("frozen_at") or time.time()), 3)
    if problems:
        module.fail_json(msg="thaw incomplete (the watchdog tries again at its deadline): " + "; ".join(problems),
                         errors=problems, **result)
    finish(module, result)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    result = empty_result(params["timeout"])
    try:
        validate_request(params)
    except FreezeError as exc:
        module.fail_json(msg=str(exc), **result)
    bins = {}
    for tool in TOOLS:
        if tool == "iscsiadm" and not params["volumes"]:
            continue
        path = module.get_bin_path(tool)
        if path is None and (params["state"] == "frozen" or tool in ("fsfreeze", "dmsetup")):
            module.fail_json(msg="%s is not installed on this host (util-linux, dmsetup, open-iscsi)" % tool,
                             **result)
        bins[tool] = path
    freezer = Freezer(Runner(module), bins)
    try:
        if params["state"] == "frozen":
            do_freeze(module, freezer, params, result)
        else:
            do_thaw(module, freezer, params, result)
    except (CommandError, FreezeError) as exc:
        context = exc.context() if isinstance(exc, CommandError) else {}
        module.fail_json(msg=str(exc), **dict(result, **context))


if __name__ == "__main__":
    main()
