"""Retype and migration on the lab (make test-full; NOT RUN YET: written without the lab, check it on the first run).

Volumes of their own (mig01, mig02), next to the lab's declared ones: stor1's pools are in az1, stor2's in az2
(inventories/lab/host_vars). A detached thick volume in az1 moves to stor2 when its zone becomes az2 (only with
migration_policy: on-demand), keeps its data (sha256 read on the LV before and after), and its source LV goes only
after the switch; a thick -> thin retype migrates to stor2's thin pool; a QoS-only retype changes the type tag and
nothing else; a destination killed in the middle of the copy leaves the source authoritative and the next run
finishes the migration. Every converge is check -> real -> again changed=0 -> check changed=0.
"""

import copy
import json
import os
import subprocess
import time

import pytest
import yaml
from lab_helpers import ROOT, StreamedRun, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.full]

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
STORAGE = ("stor1", "stor2")
TYPES = copy.deepcopy(_LAB_VARS["blockstore_volume_types"])
TYPES["fast-qos"] = {"description": "fast, with a read IOPS limit",
                     "extra_specs": dict(TYPES["fast"]["extra_specs"]), "qos_specs": {"read_iops_sec": "2000"}}
MIG = {"mig01": {"name": "mig01", "size": "256MiB", "volume_type": "bulk", "availability_zone": "az1"},
       "mig02": {"name": "mig02", "size": "512MiB", "volume_type": "bulk", "availability_zone": "az1"}}


def inventory(**changes):
    """The lab's declared volumes plus mig01 and mig02 with ``changes`` ({name: {key: value}}) applied."""
    vols = copy.deepcopy(_LAB_VARS["blockstore_volumes"])
    for name, base in MIG.items():
        vols.append(dict(base, **changes.get(name, {})))
    return {"blockstore_volumes": vols, "blockstore_volume_types": TYPES}


def vm(action, name):
    subprocess.run([os.path.join(ROOT, "lab", "vm.sh"), action, name], check=True, timeout=900)


def lvs(lab, host):
    """Every LV of ``host``: {lv name: {"vg", "size", "tags", "uuid", "pool"}}."""
    out = lab.ssh(host, "lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_tags,lv_uuid,"
                        "pool_lv 2>/dev/null").stdout
    return {row["lv_name"]: {"vg": row["vg_name"], "size": int(row["lv_size"]), "tags": row["lv_tags"].split(","),
                             "uuid": row["lv_uuid"], "pool": row["pool_lv"] or None}
            for row in json.loads(out)["report"][0]["lv"]}


def where(lab, name, hosts=STORAGE):
    """[(host, vg, lv facts)] of every LV that is the volume ``name`` (tags ember.blockstore + ember.volume=)."""
    found = []
    for host in hosts:
        for lv_name, lv in lvs(lab, host).items():
            if lv_name == "volume-" + name and "ember.volume=" + name in lv["tags"]:
                found.append((host, lv["vg"], lv))
    return found


def leftovers(lab):
    """Migration LVs (migrate-*, migrated-*) on the storage nodes."""
    return {(host, lv_name) for host in STORAGE for lv_name in lvs(lab, host)
            if lv_name.startswith(("migrate-", "migrated-"))}


def sha(lab, name):
    ((host, vg, _lv),) = where(lab, name)
    return lab.ssh(host, "dd if=/dev/%s/volume-%s bs=4M iflag=direct status=none | sha256sum" % (vg, name)
                   ).stdout.split()[0]


def ledger(lab, host):
    return json.loads(lab.ssh(host, "cat /var/lib/ember-blockstore/ledger.json").stdout)


def converge(lab, tmp_path, extra, expect_change=True):
    """check -> real -> again (changed=0) -> check (changed=0); returns the real run."""
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    real = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert real.rc == 0, real.stdout[-3000:]
    if expect_change:
        assert real.changed > 0
    again = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed == 0, again.changed_tasks()
    check_again = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check_again.rc == 0, check_again.stdout[-3000:]
    assert check_again.changed == 0, check_again.changed_tasks()
    return check, real


def plan_of(run):
    return run.task("Plan every volume before any change (hosts that reported, placement ledger, scheduler)")[
        "localhost"]["ansible_facts"]["blockstore_plan"]


def task_order(run):
    return [task["task"]["name"].split(" : ")[-1] for play in run.data.get("plays", []) for task in play["tasks"]]


def test_create_the_volumes_and_write_data(lab, tmp_path):
    converge(lab, tmp_path, inventory())
    for name in MIG:
        ((host, vg, _lv),) = where(lab, name)
        assert host == "stor1" and vg == "ember-thick"
        lab.ssh(host, "dd if=/dev/urandom of=/dev/%s/volume-%s bs=1M count=64 oflag=direct conv=fsync status=none"
                % (vg, name))


def test_without_the_policy_the_plan_refuses_and_changes_nothing(lab, tmp_path):
    before = lab.state()
    run = run_playbook(lab, extra_vars=inventory(mig01={"availability_zone": "az2"}), tmp_path=tmp_path)
    assert run.rc != 0
    text = run.stdout
    assert "mig01 exists on stor1@lvm-thick, which no longer fits" in text
    assert "availability_zone: the pool is in az1, the inventory asks az2" in text
    assert "set migration_policy: on-demand to migrate it" in text
    assert lab.state() == before


def test_zone_change_migrates_with_on_demand_and_keeps_the_data(lab, tmp_path):
    digest = sha(lab, "mig01")
    extra = inventory(mig01={"availability_zone": "az2", "migration_policy": "on-demand"})
    check, real = converge(lab, tmp_path, extra)
    (entry,) = [v for v in plan_of(check)["volumes"] if v["name"] == "mig01"]
    assert (entry["action"], entry["host"], entry["pool_id"]) == ("migrate", "stor2", "stor2@lvm-thick")
    assert [(h, vg) for h, vg, _lv in where(lab, "mig01")] == [("stor2", "ember-thick")]
    assert sha(lab, "mig01") == digest
    assert not leftovers(lab)
    # The source went only after the switch: the ledger write, then both retags, then the delete.
    order = task_order(real)
    assert order.index("Verify the sources against the copies (SHA-256)") \
        < order.index("Record the verified migrations on their destination in the ledger (compare-and-swap)") \
        < order.index("Make the destination copies the volumes") \
        < order.index("Switch the sources away (temporary targets removed, LVs retagged and renamed migrated-<name>)") \
        < order.index("Delete the switched-away sources (wiped as their backend's volume_clear says)")
    verify = real.task("Verify the sources against the copies (SHA-256)")["stor1"]["migrations"][0]
    assert verify["sha256"] == digest
    for host in STORAGE:
        assert ledger(lab, host)["volumes"]["mig01"]["pool_id"] == "stor2@lvm-thick"
    # No temporary target or node record is left.
    assert "migrate-mig01" not in lab.ssh("stor1", "tgtadm --lld iscsi --mode target --op show").stdout
    assert "migrate-mig01" not in lab.ssh("stor2", "iscsiadm -m node 2>/dev/null; true").stdout


def test_retype_thick_to_thin_migrates(lab, tmp_path):
    digest = sha(lab, "mig01")
    extra = inventory(mig01={"availability_zone": "az2", "migration_policy": "on-demand", "volume_type": "fast"})
    converge(lab, tmp_path, extra)
    ((host, vg, lv),) = where(lab, "mig01")
    assert (host, vg, lv["pool"]) == ("stor2", "ember-thin", "thinpool")
    assert "ember.type=fast" in lv["tags"] and "ember.migrated_from=stor2#40lvm-thick" in lv["tags"]
    assert sha(lab, "mig01") == digest
    assert not leftovers(lab)


def test_qos_only_retype_does_not_move_data(lab, tmp_path):
    ((_host, _vg, before),) = where(lab, "mig01")
    extra = inventory(mig01={"availability_zone": "az2", "migration_policy": "on-demand", "volume_type": "fast-qos"})
    check, real = converge(lab, tmp_path, extra)
    (entry,) = [v for v in plan_of(check)["volumes"] if v["name"] == "mig01"]
    assert (entry["action"], entry["retype_from"]) == ("retype", "fast")
    ((host, _vg, after),) = where(lab, "mig01")
    assert host == "stor2" and after["uuid"] == before["uuid"]  # the same LV
    assert "ember.type=fast-qos" in after["tags"] and "ember.type=fast" not in after["tags"]
    assert not [t for t in task_order(real) if t.startswith("Copy the data")]


def test_a_destination_killed_mid_copy_leaves_the_source_and_the_next_run_finishes(lab, tmp_path):
    extra = inventory(mig01={"availability_zone": "az2", "migration_policy": "on-demand", "volume_type": "fast-qos"},
                      mig02={"availability_zone": "az2", "migration_policy": "on-demand"})
    digest = sha(lab, "mig02")
    run = StreamedRun(tmp_path, extra_vars=extra)
    run.wait_for("TASK [ember.blockstore.blockstore : Copy the data onto the destination")
    deadline = time.monotonic() + 300  # the copy is under way once the destination has a session
    while time.monotonic() < deadline:
        if "migrate-mig02" in lab.ssh("stor2", "iscsiadm -m session 2>/dev/null; true", check=False).stdout:
            break
        time.sleep(0.5)
    time.sleep(2)
    vm("kill", "stor2")
    assert run.wait() != 0
    # The source is still the volume, with its data; the ledger (on stor1) still places it there.
    assert [(h, vg) for h, vg, _lv in where(lab, "mig02", hosts=("stor1",))] == [("stor1", "ember-thick")]
    assert lab.ssh("stor1", "dd if=/dev/ember-thick/volume-mig02 bs=4M iflag=direct status=none | sha256sum"
                   ).stdout.split()[0] == digest
    assert ledger(lab, "stor1")["volumes"]["mig02"]["host"] == "stor1"
    vm("boot", "stor2")
    # The next run resumes on the destination copy the killed run made, then finishes.
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    (mig,) = [m for m in plan_of(check)["migrations"] if m["name"] == "mig02"]
    assert mig["action"] == "migrate" and mig["destination"]["host"] == "stor2"
    converge(lab, tmp_path, extra)
    assert [(h, vg) for h, vg, _lv in where(lab, "mig02")] == [("stor2", "ember-thick")]
    assert sha(lab, "mig02") == digest
    assert not leftovers(lab)
