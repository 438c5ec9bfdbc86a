"""Group snapshots on the lab (blockstore_groups; make test-full, after test_backups on the same lab).

Two volumes of one group on two storage nodes, one thin (g1 on stor1, az1) and one thick (g2 on stor2, az2), both
attached to client1 with ext4 mounted (on the dm-multipath map when the lab has its second storage network, else on
the by-path device). A writer on client1 loops: the counter into g1's file, fsync, rename; the same into g2's file,
so g1's counter is always g2's or one more, and after a freeze of g1 then g2 (the freeze module freezes in mount
point order) both files of one point in time hold the same value. The group snapshot is taken with the writer
running (--check, real, again: changed=0, --check again: changed=0); each member's snapshot is mounted read-only on
its storage node and both counters are equal. Then the writer stops, the volumes are unmounted and detached, and
the group is reverted to the snapshot (the same four steps): both volumes read the snapshot's counter again. Last,
the volumes are deleted with their snapshots, so test_nfs finds the lab as the earlier scenarios left it.

Written without a lab at hand (the lab was in use): it has not run yet.
"""

import copy
import os
import time

import pytest
import yaml
from lab_helpers import ROOT, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.full]

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
PREFIX = "iqn.2026-11.io.ember.blockstore:"
MOUNTS = {"g1": "/mnt/ember-g1", "g2": "/mnt/ember-g2"}
STOP = "/run/ember-groups-writer.stop"
TIMEOUT = 120  # under TCG a module run takes 4-15 s: the frozen window is about three of them
SHARED = {}


def member(name, attached=True, **changes):
    vol = {"name": name, "size": "64MiB", "volume_type": "fast" if name == "g1" else "bulk",
           "availability_zone": "az1" if name == "g1" else "az2"}
    if attached:
        vol["attachments"] = [{"host": "client1"}]
    return dict(vol, **changes)


def inventory(snapshot_state=None, attached=True, members=None):
    """The lab's volumes plus g1 and g2, and the group grp with snapshot s1 in ``snapshot_state`` (no snapshot when
    None)."""
    extra = members if members is not None else [member("g1", attached), member("g2", attached)]
    out = {"blockstore_volumes": copy.deepcopy(_LAB_VARS["blockstore_volumes"]) + extra}
    group = {"name": "grp", "volumes": ["g1", "g2"], "freeze_timeout": TIMEOUT, "snapshots": []}
    if snapshot_state is not None:
        group["snapshots"] = [{"name": "s1", "state": snapshot_state, "description": "writer running"}]
    if members is None:
        out["blockstore_groups"] = [group]
    return out


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
    return check, run, again


def where(lab, name):
    """(host, vg, pool_lv) of a volume."""
    for host in ("stor1", "stor2"):
        found = lab.managed_lvs(host).get(name)
        if found:
            return host, found[0], found[2]
    raise AssertionError("volume %s is on no storage node" % name)


def client_device(lab, name):
    """The device client1 uses for a volume: the dm-multipath map over its paths, else the disk of its by-path
    link (the lab with one storage network)."""
    out = lab.ssh("client1", "dev=$(readlink -f $(ls /dev/disk/by-path/*-iscsi-%svolume-%s-lun-1 | head -n 1)) && "
                             "map=$(lsblk -nrpo NAME,TYPE $dev | awk '$2 == \"mpath\" {print $1; exit}') && "
                             "echo ${map:-$dev}" % (PREFIX, name)).stdout.strip()
    assert out.startswith("/dev/"), out
    return out


def read_on_storage(lab, name, lv, thin):
    """The counter file of ``name``'s LV ``lv`` read on its storage node, mounted read-only (a thin snapshot is
    activated with -K first, as it skips activation, and deactivated after)."""
    host, vg, _pool = where(lab, name)
    dev = "/dev/%s/%s" % (vg, lv)
    activate = "lvchange -ay -K %s/%s && " % (vg, lv) if thin else ""
    deactivate = " ; lvchange -an %s/%s" % (vg, lv) if thin and lv.startswith("snap-") else ""
    out = lab.ssh(host, "%smkdir -p /mnt/ember-read && mount -o ro,noload %s /mnt/ember-read && "
                        "cat /mnt/ember-read/counter; rc=$?; umount /mnt/ember-read%s; exit $rc"
                  % (activate, dev, deactivate)).stdout.strip()
    return int(out)


def counters_on_client(lab):
    return tuple(int(lab.ssh("client1", "cat %s/counter" % MOUNTS[n]).stdout.strip()) for n in ("g1", "g2"))


def test_two_volumes_on_two_nodes_are_attached_and_mounted(lab, tmp_path):
    run = run_playbook(lab, extra_vars=inventory(), tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    # A group without snapshots adds no task: the group play's include is skipped.
    assert not [r for r in run.task("Freeze, snapshot, thaw").values() if not r.get("skipped")]
    assert where(lab, "g1")[0] == "stor1" and where(lab, "g1")[2] is not None  # thin
    assert where(lab, "g2")[0] == "stor2" and where(lab, "g2")[2] is None  # thick
    for name, mount in MOUNTS.items():
        dev = client_device(lab, name)
        lab.ssh("client1", "mkfs.ext4 -q -F %s && mkdir -p %s && mount %s %s && echo 0 > %s/counter && sync"
                % (dev, mount, dev, mount, mount))
    # The writer: g1 first, then g2, each written to a temporary file, fsync'd, renamed over the counter.
    script = ("i=0; while [ ! -e %s ]; do i=$((i+1)); "
              "for m in %s %s; do echo $i > $m/counter.tmp && sync $m/counter.tmp && mv $m/counter.tmp $m/counter; "
              "done; done" % (STOP, MOUNTS["g1"], MOUNTS["g2"]))
    lab.ssh("client1", "rm -f %s; setsid sh -c '%s' </dev/null >/dev/null 2>&1 &" % (STOP, script))
    deadline = time.monotonic() + 120
    while counters_on_client(lab)[1] < 5:
        assert time.monotonic() < deadline, "the writer does not write"
        time.sleep(2)


def test_the_group_snapshot_is_of_one_point_in_time(lab, tmp_path):
    check, run, _again = four_steps(lab, tmp_path, inventory("present"))
    # The check run froze nothing (the freeze module in check mode) and predicted both snapshots.
    predicted = check.task("Freeze the file systems on the group volumes")["client1"]
    assert predicted["mount_points"] == [MOUNTS["g1"], MOUNTS["g2"]] and predicted["frozen_at"] is None, predicted
    # The real run: client1 froze both file systems, each node took its member's snapshot, client1 thawed.
    frozen = run.task("Freeze the file systems on the group volumes")["client1"]
    assert frozen["changed"] and frozen["mount_points"] == [MOUNTS["g1"], MOUNTS["g2"]], frozen
    taken = {}
    for host, result in run.task("Take the group snapshots").items():
        for item in result.get("snapshots") or []:
            taken[item["volume"]] = (host, item["action"], item["group"])
    assert taken == {"g1": ("stor1", "create", "grp"), "g2": ("stor2", "create", "grp")}, taken
    thawed = run.task("Thaw the file systems on the group volumes")["client1"]
    assert thawed["changed"] and not thawed["expired"], thawed
    assert 0 < thawed["frozen_seconds"] < TIMEOUT, thawed
    SHARED["frozen_seconds"] = thawed["frozen_seconds"]
    lab.timings["group_snapshot_frozen_seconds"] = thawed["frozen_seconds"]
    report = "\n".join(str(m) for m in run.task("Report")["localhost"]["msg"])
    assert "group grp snapshot s1: taken on 2 volume(s)" in report, report
    assert "consumer client1: %s, %s frozen for" % (MOUNTS["g1"], MOUNTS["g2"]) in report, report
    # Nothing is left frozen: the writer goes on, and no freeze state or watchdog is left on client1.
    before = counters_on_client(lab)
    time.sleep(5)
    assert counters_on_client(lab)[1] > before[1]
    assert lab.ssh("client1", "ls /run/ember-blockstore/freeze/ 2>/dev/null | wc -l").stdout.strip() == "0"
    # Each member's snapshot carries the group's tag, and both read the same counter.
    for host, name in (("stor1", "g1"), ("stor2", "g2")):
        snap = lab.managed_snapshots(host)[(name, "s1")]
        assert "ember.group=grp" in snap["tags"], snap
    g1 = read_on_storage(lab, "g1", "snap-g1+s1", thin=True)
    g2 = read_on_storage(lab, "g2", "snap-g2+s1", thin=False)
    assert g1 == g2 > 0, (g1, g2)
    SHARED["counter"] = g1


def test_the_group_is_reverted_once_detached(lab, tmp_path):
    lab.ssh("client1", "touch %s" % STOP)
    time.sleep(3)
    stopped = counters_on_client(lab)
    assert stopped[0] == stopped[1] > SHARED["counter"], (stopped, SHARED)
    lab.ssh("client1", "umount %s && umount %s" % (MOUNTS["g1"], MOUNTS["g2"]))
    # Detached first (a revert needs available volumes), then reverted.
    four_steps(lab, tmp_path, inventory("present", attached=False))
    _check, run, _again = four_steps(lab, tmp_path, inventory("reverted", attached=False))
    reverted = {item["volume"]: item["action"] for result in run.task("Take, delete and revert to snapshots").values()
                for item in result.get("snapshots") or []}
    assert reverted == {"g1": "revert", "g2": "revert"}, reverted
    # Nothing was frozen for it (no group snapshot was created).
    assert not [r for r in run.task("Freeze, snapshot, thaw").values() if not r.get("skipped")]
    assert read_on_storage(lab, "g1", "volume-g1", thin=True) == SHARED["counter"]
    assert read_on_storage(lab, "g2", "volume-g2", thin=False) == SHARED["counter"]
    # The snapshot was re-created as it was, with its group's tag.
    for host, name in (("stor1", "g1"), ("stor2", "g2")):
        snap = lab.managed_snapshots(host)[(name, "s1")]
        assert "ember.group=grp" in snap["tags"] and "ember.reverted" in snap["tags"], snap


def test_the_group_volumes_are_deleted_with_their_snapshots(lab, tmp_path):
    gone = [member("g1", False, state="absent", cascade=True), member("g2", False, state="absent", cascade=True)]
    run = run_playbook(lab, extra_vars=inventory(members=gone), tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    for host in ("stor1", "stor2"):
        assert not {k for k in lab.managed_snapshots(host) if k[0] in ("g1", "g2")}
        assert not {k for k in lab.managed_lvs(host) if k in ("g1", "g2")}
    lab.ssh("client1", "rmdir %s %s; rm -f %s" % (MOUNTS["g1"], MOUNTS["g2"], STOP), check=False)
