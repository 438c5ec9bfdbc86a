#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot
short_description: Create, delete and revert to snapshots of block storage volumes on an LVM storage node
version_added: 0.3.0
description:
  - Manages LVM snapshots of the volumes the P(ember.blockstore.volume#module) module made, as Cinder's LVM driver
    does (C(cinder/volume/drivers/lvm.py) C(create_snapshot), C(delete_snapshot), C(revert_to_snapshot)). Option
    names are those of openstack.cloud's C(volume_snapshot) (O(snapshots[].name), O(snapshots[].volume),
    O(snapshots[].force), O(snapshots[].state)).
  - "The snapshot LV is C(snap-<volume>+<name>) in the volume's VG (C(+) is allowed by LVM and cannot occur in a
    volume or snapshot name, so no two snapshots and no volume share an LV name), tagged C(ember.blockstore),
    C(ember.volume=<volume>), C(ember.snapshot=<name>) and C(ember.volume_size=<bytes>) (the volume's size when
    it was taken). The volume module's C(cascade) deletes only LVs with these tags; LVs without them are never
    touched here."
  - A thick volume's snapshot is a COW snapshot (C(lvcreate --snapshot --size)) whose COW store is the volume's
    size unless O(snapshots[].cow_size) says less, so by default it cannot overflow (Cinder's choice). A thin
    volume's snapshot is a thin snapshot in the same pool (C(lvcreate --snapshot) without a size); it keeps LVM's
    skip-activation flag, as in Cinder.
  - O(snapshots[].state=absent) deletes the snapshot (C(lvremove)).
  - "O(snapshots[].state=reverted) reverts the volume to the snapshot, as Cinder's revert-to-snapshot: only when
    the volume is not exported (not attached) and not open on the node, only when its size equals its size when the
    snapshot was taken, and only to its latest snapshot (by LVM creation time, C(lv_time)) unless
    O(snapshots[].force=true). The snapshot is merged into the volume (C(lvconvert --merge), which consumes it) and
    then re-created with the same name, as Cinder does, tagged C(ember.reverted)."
  - "Idempotence of a revert: a snapshot tagged C(ember.reverted) that is still the volume's latest snapshot means
    the volume was reverted to it, so the same request again changes nothing. After a newer snapshot is taken (or
    the snapshot is deleted and taken again) the same request reverts again. While a revert runs the volume carries
    C(ember.reverting=<name>); a run interrupted after the merge is finished by the next run with the same request."
  - Batch form (O(snapshots)) handles many snapshots in one module run; the single form (O(name), O(volume), ...)
    handles one. Every item is validated and decided before the first change; one bad item changes nothing.
  - "NFS backends: an item whose O(snapshots[].vg) is one of the shares of an V(nfs) backend of O(backends) is a
    snapshot of a volume file on that share (see M(ember.blockstore.volume)): a sparse copy
    C(volume-<volume>.snap-<name>) made with C(cp --reflink=auto --sparse=always) through a temporary file (instant
    where the server's filesystem has reflink), recorded in the volume's sidecar with the volume's size and the time.
    The storage node cannot see a consumer's loop device: O(snapshots[].attached) says the volume is attached, and
    then a snapshot is refused unless O(snapshots[].force=true) (it is crash-consistent only).
    O(snapshots[].state=reverted) copies the snapshot back over the volume (temporary file, then rename), refused
    while attached, only to the latest snapshot unless O(snapshots[].force=true), only when the sizes are equal; the
    snapshot stays, marked reverted (the same request again changes nothing until a newer snapshot is taken).
    O(snapshots[].cow_size) is checked but not used (there is no COW store). A share not mounted is mounted first
    (RV(mounts))."
  - "Group snapshots (Cinder's C(create_group_snapshot) in C(cinder/volume/manager.py), whose generic path takes
    each member's snapshot in turn, as the LVM driver has no group support): items with O(snapshots[].group) are
    ordinary snapshots that also carry C(ember.group=<group>)."
author: ember.blockstore contributors (@ember-blockstore)
options:
  snapshots:
    description: Snapshots to manage in one run. Mutually exclusive with O(name).
    type: list
    elements: dict
    suboptions:
      name:
        description: "Snapshot name: 1-63 lowercase letters, digits, C(.) or C(-), starting and ending with a
          letter or digit; the device-mapper name of its LV (C(<vg>-snap-<volume>+<name>), C(-) doubled) must
          fit in 127 characters."
        type: str
        required: true
      volume: {description: "Name of the volume (as given to the volume module).", type: str, required: true}
      vg: {description: "Volume group that holds the volume; for a volume of an V(nfs) backend of O(backends), the
             share (C(server:/export)) that holds its file.", type: str, required: true}
      state:
        description: Desired state; V(reverted) reverts the volume to this snapshot.
        type: str
        choices: [present, absent, reverted]
        default: present
      cow_size:
        description:
          - COW store size of a thick volume's snapshot, in the units of the volume module's C(size) (V(512MiB),
            V(1G) = 10^9 bytes, a bare number is GiB). Rounded up to whole extents; more than zero and at most the
            volume's size.
          - "Default the volume's size (Cinder's choice: the snapshot cannot overflow). An error for a thin volume
            (its snapshots use the pool). Used when the snapshot is created; an existing snapshot is not resized."
        type: raw
      force:
        description: With O(snapshots[].state=reverted), revert to a snapshot that is not the volume's latest.
        type: bool
        default: false
      description:
        description:
          - Free text (ASCII, one line, at most 255 characters) kept in an C(ember.description=) tag (characters a
            tag cannot hold are written as C(#XX)). A different description on an existing snapshot updates the tag.
        type: str
      attached:
        description:
          - Whether the volume is attached to a consumer now (the plan knows the attachments). Read for the volumes
            of V(nfs) backends only, whose consumers attach the file with a loop device the storage node cannot see;
            a snapshot of an attached volume is refused unless O(snapshots[].force=true), a revert always. An LVM
            volume's attachment is read from its export.
        type: bool
        default: false
        version_added: 0.3.0
      group:
        description:
          - "The group snapshot this snapshot is part of (a C(blockstore_groups) name; a volume name's rules): a new
            snapshot is tagged C(ember.group=<group>). An existing snapshot of that name that carries no such tag,
            or another group's, is refused (it was not taken with the group). Not for V(nfs) backends."
          - The snapshot module does not freeze anything; the M(ember.blockstore.freeze) module on the consumers
            does, before this module runs (the blockstore role's C(groups) tasks).
        type: str
        version_added: 0.3.0
  name: {description: Single form; see O(snapshots)., type: str}
  volume: {description: Single form; see O(snapshots)., type: str}
  vg: {description: Single form; see O(snapshots)., type: str}
  state: {description: Single form; see O(snapshots)., type: str, choices: [present, absent, reverted],
          default: present}
  cow_size: {description: Single form; see O(snapshots)., type: raw}
  force: {description: Single form; see O(snapshots)., type: bool, default: false}
  description: {description: Single form; see O(snapshots)., type: str}
  attached: {description: Single form; see O(snapshots)., type: bool, default: false, version_added: 0.3.0}
  group: {description: Single form; see O(snapshots)., type: str, version_added: 0.3.0}
  target_prefix:
    description: IQN prefix of the targets that export volumes (a volume exported is not reverted).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
  backends:
    description:
      - The backends of this storage node (the host's C(blockstore_backends)), validated as
        M(ember.blockstore.backend_info) validates its O(ember.blockstore.backend_info#module:backends).
      - Needed for the snapshots of volumes of V(nfs) backends (the items whose O(snapshots[].vg) is one of their
        shares); LVM items do not read it.
    type: list
    elements: dict
    default: []
    version_added: 0.3.0
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
    details: In check mode a snapshot of a volume that does not exist yet is predicted to be created (the volume
      module creates the volume earlier in the same run).
  diff_mode:
    support: full
    details: The diff shows each changed snapshot's state (and description) before and after.
notes:
  - "Errors before any change, each naming the item's field and value: invalid names, a device-mapper name over
    127 characters, O(snapshots[].cow_size) zero, negative, malformed, larger than the volume or given for a thin
    volume, a snapshot listed twice, a missing or foreign volume, an LV of the snapshot's name that is not the
    project's, a revert while the volume is exported or open, to a missing snapshot, to one that is not the latest
    (without O(snapshots[].force)), after the volume's size changed, or with other changes of the same volume's
    snapshots in the same run."
seealso:
  - module: ember.blockstore.volume
"""

EXAMPLES = r"""
- name: Snapshot a thick volume (COW store as big as the volume)
  ember.blockstore.snapshot:
    name: nightly
    volume: db01-data
    vg: ember-thick

- name: Several snapshots in one run, one with a smaller COW store
  ember.blockstore.snapshot:
    snapshots:
      - {name: before-upgrade, volume: web01, vg: ember-thick, cow_size: 512MiB, description: before the upgrade}
      - {name: nightly, volume: db02, vg: ember-thin}
      - {name: old, volume: db02, vg: ember-thin, state: absent}

- name: Revert a detached volume to its latest snapshot
  ember.blockstore.snapshot:
    name: before-upgrade
    volume: web01
    vg: ember-thick
    state: reverted
"""

RETURN = r"""
snapshots:
  description: One result per requested snapshot, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Snapshot name., type: str, sample: nightly}
    volume: {description: Volume name., type: str, sample: db01-data}
    vg: {description: Volume group., type: str, sample: ember-thick}
    lv_name: {description: "LV name of the snapshot (for an V(nfs) backend its file name,
                            C(volume-<volume>.snap-<name>)).", type: str, sample: snap-db01-data+nightly}
    action:
      description: "V(create), V(update) (description), V(none), V(delete), V(absent) (nothing to delete) or
        V(revert)."
      type: str
      sample: create
    changed: {description: Whether this item changed., type: bool, sample: true}
    status: {description: "V(available), V(deleted), V(absent) or V(reverted) (the volume was reverted to it, now
                           or before).", type: str, sample: available}
    thin: {description: "Whether it is a thin snapshot (in the volume's thin pool; true for the sparse copies of an
                         V(nfs) backend).", type: bool, sample: false}
    cow_size_bytes: {description: COW store size of a thick snapshot; null for a thin one or when absent., type: int,
                     sample: 1002438656}
    volume_size_bytes: {description: The volume's size (null when the volume does not exist)., type: int,
                        sample: 1002438656}
    created_at: {description: "When LVM created the snapshot LV (UTC, from C(lv_time)); null when it did not
                               exist before this run.", type: str, sample: "2026-11-20T10:11:12Z"}
    description: {description: The snapshot's description or null., type: str, sample: before the upgrade}
    group: {description: "The group snapshot it is part of (tag C(ember.group)), or null.", type: str, sample: db01,
            version_added: 0.3.0}
    device: {description: "Device path of the snapshot on the storage node (for an V(nfs) backend the path of its
                           file).", type: str, sample: /dev/ember-thick/snap-db01-data+nightly}
mounts:
  description: The shares of V(nfs) backends the items use, and whether this run mounted them (in check mode, would
    mount them); empty without NFS items.
  returned: always
  type: list
  elements: dict
  contains:
    share: {description: "The share, C(server:/export).", type: str, sample: "198.18.0.5:/srv/ember"}
    backend: {description: The nfs backend it belongs to., type: str, sample: nfs1}
    mount_point: {description: Where it is mounted., type: str,
                  sample: /var/lib/ember-blockstore/mnt/95333d527be211dcd23fd669dd426d51}
    action: {description: "V(mount) (mounted by this run, or in check mode it would be) or V(none).", type: str,
             sample: none}
    changed: {description: Whether the run mounted it., type: bool, sample: false}
  version_added: 0.3.0
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import node_backends, single_form
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, batch_form, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    is_volume_name,
    validate_target_prefix,
)
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_volume import (
    NfsSnapshotApplier,
    decide_snapshots,
    open_shares,
    route,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import (
    ITEM_OPTIONS,
    SnapshotApplier,
    decide,
)
from ansible_collections.ember.blockstore.plugins.module_utils._volume import exported_volumes
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import Nfs, NfsError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt

RESULT_KEYS = ("name", "volume", "vg", "lv_name", "action", "changed", "status", "thin", "cow_size_bytes",
               "volume_size_bytes", "created_at", "description", "device", "group")
CHANGES = ("create", "update", "delete", "revert")


def argument_spec():
    return dict(snapshots=dict(type="list", elements="dict", options=ITEM_OPTIONS),
                target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
                backends=dict(type="list", elements="dict", default=[]), **single_form(ITEM_OPTIONS))


def result_of(act):
    out = {key: act.get(key) for key in RESULT_KEYS}
    out["changed"] = act["action"] in CHANGES
    return out


def describe(act):
    return "snapshot %s of volume %s" % (act["name"], act["volume"])


def diff_of(actions):
    diff = {"before": {}, "after": {}}
    for act in actions:
        if act["action"] not in CHANGES:
            continue
        key = "%s/%s" % (act["volume"], act["name"])
        before = "absent" if act["action"] == "create" else "present"
        after = {"delete": "absent", "revert": "reverted"}.get(act["action"], "present")
        diff["before"][key] = {"state": before, "description": act.get("previous_description")}
        diff["after"][key] = {"state": after, "description": act.get("description")}
        if act["action"] == "revert":
            diff["before"][key]["description"] = act.get("description")
    return diff


def nfs_shares(batch, runner, routed, mount):
    """:func:`_nfs_volume.open_shares` of the shares the NFS items use; a share that cannot be used fails the
    module, naming it."""
    wanted = {share: cfg for cfg, share in routed.values()}
    try:
        return open_shares(Nfs(runner), wanted, mount)
    except NfsError as exc:
        batch.fail(str(exc), mounts=[], **exc.context())


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           **batch_form("snapshots", "name", required_by={"name": ("volume", "vg")}))
    params = module.params
    batch = Batch(module, "snapshots", result_of, describe, ITEM_OPTIONS, "snapshot")
    try:
        validate_target_prefix(params["target_prefix"])
        configs = node_backends(params["backends"], "backends")
    except (NameError_, ValueError) as exc:
        batch.fail(str(exc))
    # Items on a share of an nfs backend are the NFS code's; every other item is an LVM snapshot, as before.
    routed, errors = route(batch.items, configs, batch.field)
    errors += ["%s[%d].group: %s is on a share of an nfs backend; group snapshots are taken of LVM volumes only"
               % (batch.field, index, batch.items[index]["volume"]) for index in sorted(routed)
               if batch.items[index].get("group") is not None]
    if errors:
        batch.fail("; ".join(errors), errors=errors)

    runner = Runner(module, lock=True)
    lvm_indexes = [index for index in range(len(batch.items)) if index not in routed]
    by_index, errors, lvm = {}, [], None
    if lvm_indexes or not routed:
        lvm, tgt = Lvm(runner), Tgt(runner)
        items = [batch.items[index] for index in lvm_indexes]
        # Only a revert asks whether its volume is exported: the targets are read only then.
        names = sorted({i["volume"] for i in items
                        if i.get("state") == "reverted" and is_volume_name(i.get("volume"))})
        state, live = read_state(module, lambda: (lvm.state(times=True), tgt.show_if_running() if names else {}))
        exported, foreign = exported_volumes(names, live, params["target_prefix"])
        lvm_actions, errors = decide(items, state, exported, field=batch.field, foreign=foreign,
                                     predict_missing=module.check_mode, indexes=lvm_indexes)
        by_index.update(zip(lvm_indexes, lvm_actions))
    views = {}
    if routed:
        # Decided first over the shares as they are (one not mounted predicted empty): a bad item fails before the
        # first change, a mount included. A real run then mounts what it needs and decides again over what is there.
        views = nfs_shares(batch, runner, routed, mount=False)
        nfs_actions, nfs_errors = decide_snapshots(routed, batch.items, views, batch.field,
                                                   predict_missing=module.check_mode)
        if errors or nfs_errors:
            batch.fail("; ".join(errors + nfs_errors), errors=errors + nfs_errors)
        if not module.check_mode and any(view.predicted for view in views.values()):
            views = nfs_shares(batch, runner, routed, mount=True)
            nfs_actions, nfs_errors = decide_snapshots(routed, batch.items, views, batch.field)
            if nfs_errors:
                batch.fail("; ".join(nfs_errors), errors=nfs_errors, mounts=[v.result() for v in views.values()])
        by_index.update(zip(sorted(routed), nfs_actions))
    actions = batch.decided([by_index[index] for index in sorted(by_index)], errors)

    # --- apply: the one place the snapshot appliers run (check mode: nothing is applied) ---
    lvm_applier = SnapshotApplier(lvm) if lvm else None
    nfs_applier = NfsSnapshotApplier(Nfs(runner), views) if routed else None
    results = batch.apply_each(actions, lambda act: (nfs_applier if act.get("nfs") else lvm_applier).apply(act))
    # --- end of apply ---

    mounts = [view.result() for view in views.values()]
    module.exit_json(changed=batch.changed(results) or any(m["changed"] for m in mounts), snapshots=results,
                     diff=diff_of(actions), mounts=mounts)


if __name__ == "__main__":
    main()
