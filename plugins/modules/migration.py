#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: migration
short_description: One step of a generic volume migration between two LVM storage nodes
version_added: 0.3.0
description:
  - "Moves a volume's data to another storage node as Cinder's C(_migrate_volume_generic)
    (cinder/volume/manager.py) does: a new volume on the destination, the data copied over iSCSI, the identity
    switched, the source deleted. Each run does one O(step) for a list of volumes on this node; the
    C(blockstore) role's C(migrate.yml) runs the steps in order on the two nodes of each migration, and the plan
    (P(ember.blockstore.plan#filter)) decides what to migrate (O(migrations[].name) with C(migration_policy:
    on-demand)) and resumes or rolls back what an interrupted run left."
  - "V(target) (destination): C(lvcreate) of C(migrate-<name>), O(migrations[].size_bytes) (thin in
    O(migrations[].thin_pool) when given), tagged C(ember.blockstore), C(ember.migrating=<name>) and
    C(ember.migration_source=<source pool id>), never C(ember.volume=<name>)."
  - "V(export) (source): a live-only tgt target C(<target_prefix>migrate-<name>), LUN 1 on the source LV
    C(volume-<name>) made read-only (tgt's C(readonly) parameter), an ACL of exactly
    O(migrations[].initiator_address) and a CHAP account C(migrate-<name>) with the secret
    O(migrations[].chap_password) (the role makes a random one per run; it is never returned or logged, and is
    on C(tgtadm)'s command line only while that command runs, as C(tgt-admin) passes every target's). It is made
    again on every run."
  - "V(copy) (destination): open-iscsi login to O(migrations[].target_iqn) at O(migrations[].portal) (the secret
    goes into the node record file, not on a command line; C(node.startup manual)), then 4 MiB blocks read with
    O_DIRECT and written with O_DIRECT to C(migrate-<name>), zero blocks skipped on a thin destination; the
    SHA-256 of what was read is returned and recorded as C(ember.migration_sha256=<hex>); logout and node record
    deleted, also after a failure."
  - "V(verify) (source): the SHA-256 of the first O(migrations[].size_bytes) of C(volume-<name>); a digest
    other than O(migrations[].sha256) fails the item (the destination stays a migration target, the source is
    untouched)."
  - "V(switch_destination) (destination): a copy whose recorded digest is O(migrations[].sha256) is retagged as
    the volume (C(ember.volume=<name>), type, backend, description and metadata, C(ember.migrated_from=<source
    pool id>)) and renamed C(volume-<name>). V(switch_source) (source): the temporary target removed (with
    O(migrations[].force) the volume's own export too), the LV retagged C(ember.migrated=<destination pool id>)
    without C(ember.volume=<name>) and renamed C(migrated-<name>)."
  - "V(cleanup) (source) deletes the switched-away C(migrated-<name>), V(rollback) (destination) an unfinished
    copy C(migrate-<name>); a thick LV is wiped first as O(migrations[].volume_clear) says (as the volume module
    deletes), a thin one is not (the pool zeroes blocks before reuse)."
  - Every step is idempotent (a step already done changes nothing) and holds the host lock while it runs.
author: ember.blockstore contributors (@ember-blockstore)
options:
  step:
    description: The step to run on this node for every item.
    type: str
    required: true
    choices: [target, export, copy, verify, switch_destination, switch_source, cleanup, rollback]
  migrations:
    description: The volumes, one item each.
    type: list
    elements: dict
    required: true
    suboptions:
      name: {description: The volume's name., type: str, required: true}
      vg: {description: The volume group of this node's side of the migration., type: str, required: true}
      thin_pool: {description: "The thin pool of this node's side (thin LVs), else omitted.", type: str}
      size_bytes: {description: "The bytes to create (V(target)) or to copy and hash (V(copy), V(verify)).",
                   type: int}
      source_pool_id: {description: "The source pool, recorded in the tags (V(target), V(switch_destination)).",
                       type: str}
      destination_pool_id: {description: "The destination pool (V(switch_source)), for the tag.", type: str}
      volume_type: {description: The volume type the volume has after the switch., type: str}
      backend: {description: The destination backend's name (its C(ember.backend=) tag)., type: str}
      description: {description: "The volume's description, kept across the switch.", type: str}
      metadata: {description: "The volume's metadata, kept across the switch.", type: dict}
      sha256: {description: "The verified digest (V(verify), V(switch_destination)).", type: str}
      portal: {description: "The source's portal, C(<address>:<port>) (V(copy)).", type: str}
      target_iqn: {description: "The temporary target (V(copy)).", type: str}
      chap_username: {description: "The temporary target's CHAP user (V(copy)).", type: str}
      chap_password: {description: "The temporary target's CHAP secret (V(export), V(copy)); at least 12
                      characters.", type: str}
      initiator_address: {description: "The destination's storage address, the only one the ACL admits
                          (V(export)).", type: str}
      lv_name: {description: "The LV to delete (V(cleanup), V(rollback)); default C(migrated-<name>) or
                C(migrate-<name>).", type: str}
      volume_clear: {description: How a thick LV is wiped before it is deleted., type: str,
                     choices: [zero, none], default: zero}
      volume_clear_size: {description: "Bytes to wipe (0 = all; units accepted, a bare number is MiB as in
                          Cinder).", type: raw, default: 0}
      force: {description: "V(switch_source): also remove the volume's own export (the operator froze its
                           consumers' data).", type: bool, default: false}
  target_prefix:
    description: The prefix of target IQNs (the temporary target is C(<target_prefix>migrate-<name>)).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
  timeout:
    description: Seconds to wait for the LUN's device after the login (V(copy)).
    type: int
    default: 60
  lock_timeout:
    description: Seconds to wait for the host lock.
    type: int
    default: 1800
attributes:
  check_mode: {support: full, description: Reports what each step would change; nothing is created or copied.}
  diff_mode: {support: none, description: No diff is returned.}
notes:
  - Only LVM backends (V(lvm), V(lvm_thin)); the plan refuses NFS volumes.
  - Data is consistent only when nothing writes the source while it is copied; the plan refuses an attached
    volume unless C(force=true).
seealso:
  - module: ember.blockstore.volume
  - module: ember.blockstore.ledger
"""

EXAMPLES = r"""
- name: Create the destination copies on this node
  ember.blockstore.migration:
    step: target
    migrations:
      - {name: db01-data, vg: ember-thin, thin_pool: thinpool, size_bytes: 10737418240,
         source_pool_id: stor1@lvm-thick}
"""

RETURN = r"""
migrations:
  description: One result per item, in order.
  type: list
  elements: dict
  returned: always
  contains:
    name: {description: The volume., type: str, sample: db01-data}
    step: {description: The step., type: str, sample: copy}
    changed: {description: Whether this item changed the node., type: bool}
    done: {description: "What the step did, or found done already.", type: str, sample: copied}
    lv_name: {description: The LV the step worked on., type: str, sample: migrate-db01-data}
    sha256: {description: "The SHA-256 of the bytes read (V(copy), V(verify)); null otherwise.", type: str}
    written_bytes: {description: "V(copy): bytes written to the destination.", type: int}
    skipped_zero_bytes: {description: "V(copy): zero bytes not written (thin destination).", type: int}
    target_iqn: {description: "V(export): the temporary target.", type: str}
    chap_username: {description: "V(export): its CHAP user.", type: str}
    wipe: {description: "V(cleanup), V(rollback): how the LV was wiped (zero, none, skipped ...).", type: str}
    failed: {description: "Set when this item failed (the items after it are not attempted).", type: bool}
    msg: {description: "Why this item failed.", type: str}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils import _migration
from ansible_collections.ember.blockstore.plugins.module_utils._migration import (
    MIGRATED_TAG,
    MIGRATING_TAG,
    MIGRATION_SHA_TAG,
    MIGRATION_SOURCE_TAG,
    MigrationError,
    migrated_lv_name,
    target_lv_name,
    target_tags,
    temp_target_iqn,
    volume_tags,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    BUSY_STATUS_TAGS,
    CREATING_TAG,
    DEFAULT_TARGET_PREFIX,
    MANAGED_TAG,
    VOLUME_TAG,
    NameError_,
    encode_tag_text,
    lv_name,
    tgt_conf_path,
    validate_chap_secret,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError, Runner
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_clear_size
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import Iscsiadm, device_path
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt

ITEM = dict(
    name=dict(type="str", required=True), vg=dict(type="str", required=True), thin_pool=dict(type="str"),
    size_bytes=dict(type="int"), source_pool_id=dict(type="str"), destination_pool_id=dict(type="str"),
    volume_type=dict(type="str"), backend=dict(type="str"), description=dict(type="str"),
    metadata=dict(type="dict"), sha256=dict(type="str"), portal=dict(type="str"), target_iqn=dict(type="str"),
    chap_username=dict(type="str"), chap_password=dict(type="str", no_log=True), initiator_address=dict(type="str"),
    lv_name=dict(type="str"), volume_clear=dict(type="str", choices=["zero", "none"], default="zero"),
    volume_clear_size=dict(type="raw", default=0), force=dict(type="bool", default=False),
)
NEEDS = {"target": ("size_bytes", "source_pool_id"), "export": ("initiator_address", "chap_password"),
         "copy": ("size_bytes", "portal", "target_iqn", "chap_username", "chap_password"),
         "verify": ("size_bytes", "sha256"), "switch_destination": (),
         "switch_source": ("destination_pool_id",), "cleanup": (), "rollback": ()}


class Steps:
    """The steps over one node's LVM and tgt state (see module_utils/_migration.py)."""

    def __init__(self, module, runner, prefix):
        self.module = module
        self.check = module.check_mode
        self.lvm = Lvm(runner)
        self.tgt = Tgt(runner)
        self.iscsi = Iscsiadm(runner)
        self.runner = runner
        self.prefix = prefix
        self.state = self.lvm.state()

    def lv(self, vg, name):
        return self.state.lv(vg, name)

    def target(self, item, out):
        name, vg = item["name"], item["vg"]
        found = self.lv(vg, target_lv_name(name)) or self.lv(vg, lv_name(name))
        if found is not None and MIGRATING_TAG + name in found["tags"]:
            if found["size_bytes"] < item["size_bytes"]:
                raise MigrationError("%s/%s is %d bytes, smaller than the volume (%d): roll the migration back and "
                                     "run again" % (vg, found["name"], found["size_bytes"], item["size_bytes"]))
            out.update(done="exists", lv_name=found["name"])
            return
        if found is not None:
            raise MigrationError("%s/%s exists and is not this migration's copy of %s; nothing was changed"
                                 % (vg, found["name"], name))
        out.update(changed=True, done="created", lv_name=target_lv_name(name))
        if not self.check:
            args = ["lvcreate", "--yes", "--wipesignatures", "y", "-n", target_lv_name(name)]
            for tag in target_tags(name, item["source_pool_id"]):
                args += ["--addtag", tag]
            if item.get("thin_pool"):
                args += ["--thin", "--virtualsize", "%db" % item["size_bytes"], "%s/%s" % (vg, item["thin_pool"])]
            else:
                args += ["--size", "%db" % item["size_bytes"], vg]
            self.runner.run(args)
            self.lvm.settle()

    def _remove_temp_target(self, iqn, user, live):
        if iqn in live:
            self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "delete", "--force", "--tid",
                             str(live[iqn]["tid"])])
        self.tgt.delete_account(user)

    def export(self, item, out, live):
        name, vg = item["name"], item["vg"]
        source = self.lv(vg, lv_name(name))
        if source is None or VOLUME_TAG + name not in source["tags"]:
            raise MigrationError("the source volume %s/%s is not here; nothing was exported" % (vg, lv_name(name)))
        # A create (image, clone) or a restore that did not finish: its data is not the volume's yet, and the
        # source is what lets that run be finished. Finish it first (run without the move), then migrate.
        busy = [t for t in source["tags"] if t == CREATING_TAG or t in BUSY_STATUS_TAGS]
        if busy:
            raise MigrationError("the source volume %s/%s is not complete (%s): finish its create or restore first; "
                                 "nothing was exported" % (vg, source["name"], ", ".join(busy)))
        iqn, user = temp_target_iqn(self.prefix, name), target_lv_name(name)
        out.update(changed=True, done="exported", target_iqn=iqn, chap_username=user, lv_name=source["name"])
        if self.check:
            return
        self._remove_temp_target(iqn, user, live)
        secret = item["chap_password"]
        tid = max([t["tid"] for t in live.values()] + [0]) + 1
        base = ["tgtadm", "--lld", "iscsi"]
        self.runner.run(base + ["--mode", "target", "--op", "new", "--tid", str(tid), "--targetname", iqn])
        self.runner.run(base + ["--mode", "logicalunit", "--op", "new", "--tid", str(tid), "--lun", "1",
                                "--backing-store", _migration.device_path(vg, lv_name(name))])
        self.runner.run(base + ["--mode", "logicalunit", "--op", "update", "--tid", str(tid), "--lun", "1",
                                "--params", "readonly=1"])
        self.runner.run(base + ["--mode", "target", "--op", "bind", "--tid", str(tid), "--initiator-address",
                                item["initiator_address"]])
        self.runner.run(base + ["--mode", "account", "--op", "new", "--user", user, "--password", secret])
        self.runner.run(base + ["--mode", "account", "--op", "bind", "--tid", str(tid), "--user", user])
        live[iqn] = {"tid": tid}

    def copy(self, item, out):
        name, vg = item["name"], item["vg"]
        dest = self.lv(vg, target_lv_name(name))
        if dest is None and self.check:  # the target step only predicted it in this check run
            out.update(lv_name=target_lv_name(name), changed=True, done="copied")
            return
        if dest is None or MIGRATING_TAG + name not in dest["tags"]:
            raise MigrationError("the destination copy %s/%s is missing: run the target step first"
                                 % (vg, target_lv_name(name)))
        out.update(lv_name=dest["name"], changed=True, done="copied")
        if self.check:
            return
        iqn, portal = item["target_iqn"], item["portal"]
        # A session or record an interrupted run left is dropped first: the target was made again with a new secret.
        self.iscsi.logout(iqn, portal)
        self.iscsi.delete_node(iqn, portal)
        try:
            self.iscsi.login(iqn, portal, item["chap_username"], item["chap_password"],
                             settings_extra=(("node.startup", "manual"),))
            device = self.iscsi.wait_for_device(device_path(portal, iqn, 1), self.module.params["timeout"])
            if device is None:
                raise MigrationError("the LUN of %s did not appear at %s within %d s"
                                     % (iqn, device_path(portal, iqn, 1), self.module.params["timeout"]))
            copied = _migration.stream_copy(device, _migration.device_path(vg, dest["name"]), item["size_bytes"],
                                            # zero blocks are skipped only on a thin copy that maps nothing
                                            # yet: a copy made again (resumed, or after a digest mismatch) may
                                            # hold old data where the source now has zeros
                                            skip_zero=bool(dest["pool_lv"]) and not dest.get("data_percent"))
        finally:
            self.iscsi.logout(iqn, portal)
            self.iscsi.delete_node(iqn, portal)
        old = [t for t in dest["tags"] if t.startswith(MIGRATION_SHA_TAG)]
        self.lvm.change_tags(vg, dest["name"], add=[MIGRATION_SHA_TAG + copied["sha256"]], delete=old)
        out.update(sha256=copied["sha256"], written_bytes=copied["written_bytes"],
                   skipped_zero_bytes=copied["skipped_zero_bytes"])

    def verify(self, item, out):
        name, vg = item["name"], item["vg"]
        source = self.lv(vg, lv_name(name))
        if source is None or VOLUME_TAG + name not in source["tags"]:
            raise MigrationError("the source volume %s/%s is not here" % (vg, lv_name(name)))
        out.update(lv_name=source["name"], done="verified")
        if self.check:
            return
        sha = _migration.digest(_migration.device_path(vg, source["name"]), item["size_bytes"])
        out["sha256"] = sha
        if sha != item["sha256"]:
            raise MigrationError("the copy differs from the source: SHA-256 %s read from the source, %s copied; the "
                                 "source stays the volume and the copy a migration target (was the volume written "
                                 "during the copy?)" % (sha, item["sha256"]))

    def switch_destination(self, item, out):
        """Retag the verified copy as the volume (keeping its migration tags), rename it ``volume-<name>``, then
        drop the migration tags: a crash between two of the three commands leaves an LV the next plan reads (a
        copy still, or the volume on two pools with ``migrated_from``: finished)."""
        name, vg = item["name"], item["vg"]
        want = volume_tags(item) if item.get("source_pool_id") else None
        done = self.lv(vg, lv_name(name))
        if done is not None and VOLUME_TAG + name in done["tags"]:
            leftover = [t for t in done["tags"]
                        if t.startswith((MIGRATING_TAG, MIGRATION_SOURCE_TAG, MIGRATION_SHA_TAG))]
            out.update(done="switched" if leftover else "switched already", lv_name=done["name"],
                       changed=bool(leftover))
            if leftover and not self.check:
                self.lvm.change_tags(vg, done["name"], delete=leftover)
            return
        copy = self.lv(vg, target_lv_name(name))
        if copy is None or MIGRATING_TAG + name not in copy["tags"]:
            raise MigrationError("no migration copy of %s in %s" % (name, vg))
        if not item.get("sha256") or MIGRATION_SHA_TAG + item["sha256"] not in copy["tags"]:
            raise MigrationError("%s/%s does not record the verified digest %s; it is not switched"
                                 % (vg, copy["name"], item.get("sha256")))
        if want is None:
            raise MigrationError("migrations[].source_pool_id is needed to switch %s" % name)
        out.update(changed=True, done="switched", lv_name=lv_name(name))
        if self.check:
            return
        keep = [t for t in copy["tags"] if t.startswith((MIGRATING_TAG, MIGRATION_SOURCE_TAG, MIGRATION_SHA_TAG))]
        self.lvm.change_tags(vg, copy["name"], add=[t for t in want if t not in copy["tags"]],
                             delete=[t for t in copy["tags"] if t not in want and t not in keep])
        self.runner.run(["lvrename", vg, copy["name"], lv_name(name)])
        self.lvm.change_tags(vg, lv_name(name), delete=keep)

    def switch_source(self, item, out, live):
        name, vg = item["name"], item["vg"]
        iqn, user = temp_target_iqn(self.prefix, name), target_lv_name(name)
        if iqn in live:
            out.update(changed=True)
            if not self.check:
                self._remove_temp_target(iqn, user, live)
        own = self.prefix + lv_name(name)
        if own in live or _exists(tgt_conf_path(name)):
            if not item["force"]:
                raise MigrationError("%s is still exported as %s; the plan migrates an exported volume only with "
                                     "force: true" % (name, own))
            out.update(changed=True)
            if not self.check:
                self.tgt.remove_export(own, tgt_conf_path(name), live, force=True)
        gone = self.lv(vg, migrated_lv_name(name))
        source = self.lv(vg, lv_name(name))
        if gone is not None and source is None:
            out.update(done="switched already", lv_name=gone["name"])
            return
        if source is None:
            raise MigrationError("neither %s/%s nor %s/%s is here" % (vg, lv_name(name), vg, migrated_lv_name(name)))
        out.update(changed=True, done="switched", lv_name=migrated_lv_name(name))
        if self.check:
            return
        tag = MIGRATED_TAG + encode_tag_text(item["destination_pool_id"])
        if tag not in source["tags"]:
            self.lvm.change_tags(vg, source["name"], add=[tag], delete=[VOLUME_TAG + name])
        self.runner.run(["lvrename", vg, source["name"], migrated_lv_name(name)])

    def remove(self, item, out, marker):
        name, vg = item["name"], item["vg"]
        default = migrated_lv_name(name) if marker == MIGRATED_TAG else target_lv_name(name)
        found = self.lv(vg, item.get("lv_name") or default)
        if found is None:
            out.update(done="absent", lv_name=item.get("lv_name") or default)
            return
        if MANAGED_TAG not in found["tags"] or not any(t.startswith(marker) for t in found["tags"]) \
                or (marker == MIGRATING_TAG and MIGRATING_TAG + name not in found["tags"]):
            raise MigrationError("%s/%s is not a migration LV of %s (no %s tag); it is left alone"
                                 % (vg, found["name"], name, marker + "..."))
        if VOLUME_TAG + name in found["tags"]:
            raise MigrationError("%s/%s still carries %s%s; it is not deleted" % (vg, found["name"], VOLUME_TAG, name))
        out.update(changed=True, done="deleted", lv_name=found["name"])
        if found["pool_lv"]:
            out["wipe"] = "skipped: thin pool zeroes blocks before reuse"
        elif item["volume_clear"] == "zero":
            out["wipe"] = "zero"
        else:
            out["wipe"] = "none"
        if self.check:
            return
        if out["wipe"] == "zero":
            clear = parse_clear_size(item.get("volume_clear_size") or 0, "volume_clear_size")
            self.lvm.clear(_migration.device_path(vg, found["name"]), found["size_bytes"], clear)
        self.lvm.remove(vg, found["name"])


def _exists(path):
    try:
        with open(path):
            return True
    except OSError:
        return False


def main():
    module = AnsibleModule(argument_spec=dict(
        step=dict(type="str", required=True, choices=list(_migration.STEPS)),
        migrations=dict(type="list", elements="dict", required=True, options=ITEM),
        target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
        timeout=dict(type="int", default=60), lock_timeout=dict(type="int", default=1800),
    ), supports_check_mode=True)
    params, step = module.params, module.params["step"]
    errors = []
    for index, item in enumerate(params["migrations"]):
        field = "migrations[%d]" % index
        try:
            validate_volume_name(item["name"], field + ".name")
            parse_clear_size(item.get("volume_clear_size") or 0, field + ".volume_clear_size")
            if item.get("chap_password") is not None:
                validate_chap_secret(item["chap_password"], field + ".chap_password")
        except (NameError_, SizeError) as exc:
            errors.append(str(exc))
        missing = [key for key in NEEDS[step] if item.get(key) in (None, "")]
        if missing:
            errors.append("%s: step %s needs %s" % (field, step, ", ".join("%s.%s" % (field, k) for k in missing)))
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    runner = Runner(module, lock=True)
    steps = Steps(module, runner, params["target_prefix"])
    live = steps.tgt.show_if_running() if step in ("export", "switch_source") else {}
    results, failed = [], []
    for item in params["migrations"]:
        out = {"name": item["name"], "step": step, "changed": False, "done": None, "lv_name": None, "sha256": None}
        try:
            if step in ("export", "switch_source"):
                getattr(steps, step)(item, out, live)
            elif step in ("cleanup", "rollback"):
                steps.remove(item, out, MIGRATED_TAG if step == "cleanup" else MIGRATING_TAG)
            else:
                getattr(steps, step)(item, out)
        except (MigrationError, CommandError, OSError) as exc:
            out.update(failed=True, msg="%s: %s" % (item["name"], exc))
            failed.append(out["msg"])
        results.append(out)
        if failed:
            break
    changed = any(r["changed"] for r in results)
    if failed:
        module.fail_json(msg="migration step %s: %s" % (step, "; ".join(failed)), changed=changed,
                         migrations=results)
    module.exit_json(changed=changed, migrations=results)


if __name__ == "__main__":
    main()
