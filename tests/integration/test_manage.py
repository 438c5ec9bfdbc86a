"""Manage and unmanage an existing LV on the lab (Cinder's manage_existing / unmanage; make test-full).

An LV made by hand on stor1 (ember-thick, 64 MiB of random data, no tags) is managed as volume m1 through
site.yml (blockstore_volumes[].manage, without rename: it keeps its name). Each converge is checked as the other
scenarios are: --check, real, again (changed=0), --check again (changed=0). After the manage the LV carries the
project's tags (and ember.own_name), its data is unchanged (sha256), the report lists it available and stor1's
ledger records it. It is then attached to client1 (the export's backing store is the LV under its own name, the
data read on client1 is the same), detached, and unmanaged: every ember.* tag is gone, the LV and its data are
intact, the ledger drops it, and a run with the same inventory changes nothing. Refusals (an open LV, a name
already taken) stop the plan before any change.

Not run by the author (the lab was in use); written against inventories/lab and docs/lab.md.
"""

import copy
import json
import os

import pytest
import yaml
from lab_helpers import ROOT, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.full]

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
VG, LV, NAME, SIZE = "ember-thick", "ember_manage_m1", "m1", 64 * 2**20
DEVICE = "/dev/%s/%s" % (VG, LV)
LEDGER = "/var/lib/ember-blockstore/ledger.json"
IQN = "iqn.2026-11.io.ember.blockstore:volume-" + NAME


def inventory(*extra):
    return {"blockstore_volumes": copy.deepcopy(_LAB_VARS["blockstore_volumes"]) + list(extra)}


def m1(**changes):
    return dict({"name": NAME, "volume_type": "bulk",
                 "manage": {"lv": LV, "host": "stor1", "backend": "lvm-thick"}}, **changes)


def four_steps(lab, tmp_path, extra_vars):
    """--check, real, again, --check again; the first two change something, the last two nothing."""
    check = run_playbook(lab, check=True, extra_vars=extra_vars, tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    assert check.changed > 0
    run = run_playbook(lab, extra_vars=extra_vars, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed > 0
    again = run_playbook(lab, extra_vars=extra_vars, tmp_path=tmp_path)
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed == 0, sorted(again.changed_tasks())
    check_again = run_playbook(lab, check=True, extra_vars=extra_vars, tmp_path=tmp_path)
    assert check_again.rc == 0, check_again.stdout[-3000:]
    assert check_again.changed == 0, sorted(check_again.changed_tasks())
    return run


def lv_row(lab):
    out = lab.ssh("stor1", "lvs --reportformat json --units b --nosuffix -o lv_name,lv_size,lv_tags %s/%s" % (VG, LV))
    row = json.loads(out.stdout)["report"][0]["lv"][0]
    return int(row["lv_size"]), sorted(t for t in row["lv_tags"].split(",") if t)


def sha(lab):
    return lab.ssh("stor1", "sha256sum %s" % DEVICE).stdout.split()[0]


def ledger(lab):
    return json.loads(lab.ssh("stor1", "cat %s" % LEDGER).stdout)["volumes"]


def report_rows(run):
    facts = run.task("Build the report")["localhost"]["ansible_facts"]
    return {row["volume"]: row for row in facts["blockstore_report"]["rows"]}


@pytest.fixture(scope="module")
def hand_made_lv(lab):
    """The LV made by hand, with random data; removed at the end (it is not the project's after the unmanage)."""
    lab.ssh("stor1", "lvremove -y %s/%s >/dev/null 2>&1; lvcreate -y -L %db -n %s %s >/dev/null && "
                     "dd if=/dev/urandom of=%s bs=1M count=64 oflag=direct status=none && udevadm settle"
            % (VG, LV, SIZE, LV, VG, DEVICE))
    before = sha(lab)
    yield before
    lab.ssh("stor1", "lvremove -y %s/%s" % (VG, LV), check=False)


def test_an_open_lv_is_refused_before_any_change(lab, tmp_path, hand_made_lv):
    # Holding the device open (a process on stor1) makes it in use: the plan names host and VG and changes nothing.
    holder = lab.ssh("stor1", "nohup sleep 600 < %s >/dev/null 2>&1 & echo $!" % DEVICE).stdout.strip()
    try:
        before = lab.state()
        run = run_playbook(lab, extra_vars=inventory(m1()), tmp_path=tmp_path)
        assert run.rc != 0
        assert "manage.lv: LV %s on stor1 in VG %s is in use by the host (open" % (LV, VG) in run.messages()
        assert lab.state() == before
    finally:
        lab.ssh("stor1", "kill %s" % holder, check=False)
    assert lv_row(lab)[1] == []


def test_a_name_already_taken_is_refused(lab, tmp_path, hand_made_lv):
    # The lab's scratch01 entry is replaced by the manage request of that name (a second entry would be refused
    # first, as a duplicate name).
    vols = [v for v in inventory()["blockstore_volumes"] if v["name"] != "scratch01"]
    run = run_playbook(lab, extra_vars={"blockstore_volumes": vols + [m1(name="scratch01")]}, tmp_path=tmp_path)
    assert run.rc != 0
    assert "a volume named scratch01 already exists" in run.messages()


def test_manage_keeps_the_data_and_tags_the_lv(lab, tmp_path, hand_made_lv):
    run = four_steps(lab, tmp_path, inventory(m1()))
    assert run.task("Create and extend volumes")["stor1"]["volumes"][0]["action"] == "manage"
    size, tags = lv_row(lab)
    assert size == SIZE
    assert tags == sorted(["ember.blockstore", "ember.volume=" + NAME, "ember.type=bulk", "ember.backend=lvm-thick",
                           "ember.own_name"])
    assert sha(lab) == hand_made_lv
    assert ledger(lab)[NAME] == {"host": "stor1", "pool_id": "stor1@lvm-thick", "status": "available"}
    row = report_rows(run)[NAME]
    assert (row["action"], row["state"], row["pool"], row["size_bytes"]) == \
        ("manage", "available", "stor1@lvm-thick", SIZE)
    again = run_playbook(lab, extra_vars=inventory(m1()), tmp_path=tmp_path)
    assert report_rows(again)[NAME]["action"] == "none"


def test_the_managed_lv_is_attached_under_its_own_name(lab, tmp_path, hand_made_lv):
    four_steps(lab, tmp_path, inventory(m1(attachments=[{"host": "client1"}])))
    conf = lab.ssh("stor1", "cat /etc/tgt/conf.d/ember-volume-%s.conf" % NAME).stdout
    assert "backing-store %s" % DEVICE in conf
    path = lab.ssh("client1", "ls /dev/disk/by-path/ | grep -F '%s-lun-1' | head -1" % IQN).stdout.strip()
    assert path, "no by-path device of %s on client1" % IQN
    seen = lab.ssh("client1", "sha256sum /dev/disk/by-path/%s" % path).stdout.split()[0]
    assert seen == hand_made_lv
    four_steps(lab, tmp_path, inventory(m1()))  # detached again
    assert lab.ssh("stor1", "test -e /etc/tgt/conf.d/ember-volume-%s.conf" % NAME, check=False).returncode != 0


def test_unmanage_removes_the_tags_and_keeps_the_lv_and_its_data(lab, tmp_path, hand_made_lv):
    run = four_steps(lab, tmp_path, inventory({"name": NAME, "state": "unmanaged"}))
    assert run.task("Delete volumes (wiped as the backend's volume_clear says)")["stor1"]["volumes"][0]["action"] \
        == "unmanage"
    size, tags = lv_row(lab)
    assert (size, tags) == (SIZE, [])
    assert sha(lab) == hand_made_lv
    assert NAME not in ledger(lab)
    assert report_rows(run)[NAME]["state"] == "unmanaged"
    # Taken out of the inventory, the LV is nobody's: it is not reported, and nothing changes.
    plain = run_playbook(lab, extra_vars=inventory(), tmp_path=tmp_path)
    assert plain.rc == 0 and plain.changed == 0, sorted(plain.changed_tasks())
    assert NAME not in report_rows(plain)
