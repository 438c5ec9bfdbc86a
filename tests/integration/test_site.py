"""The vertical slice on the lab: site.yml schedules, creates, exports and attaches volumes for real.

Tests run in file order and build on each other (one lab per session): check mode on fresh hosts, the real run,
two no-op runs, data through iSCSI across a tgt restart, ACL and CHAP refusals, removal from the inventory,
deletion, and a volume too big for every pool. Each asserts the state on the hosts, not only Ansible's output.
"""

import copy
import json
import os
import subprocess

import pytest
import yaml
from lab_helpers import ROOT, plan_of, run_playbook

pytestmark = pytest.mark.lab

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
DECLARED = _LAB_VARS["blockstore_volumes"]
NAMES = {v["name"] for v in DECLARED}
DECLARED_BY_NAME = {v["name"]: v for v in DECLARED}
TYPES = _LAB_VARS["blockstore_volume_types"]
ATTACHED = sorted(v["name"] for v in DECLARED if v.get("attachments"))
POOL_VG = {"lvm-thick": "ember-thick", "lvm-thin": "ember-thin"}
SHARED = {}


def volumes_with(changes):
    """The lab's declared volumes with some entries replaced (by name) or dropped (value None)."""
    out = []
    for vol in copy.deepcopy(DECLARED):
        if vol["name"] in changes:
            if changes[vol["name"]] is not None:
                out.append(changes[vol["name"]])
        else:
            out.append(vol)
    return out


def all_managed(lab):
    return {host: lab.managed_lvs(host) for host in ("stor1", "stor2")}


def test_check_mode_on_fresh_hosts_predicts_and_changes_nothing(lab):
    before = lab.state()
    run = run_playbook(lab, check=True)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    lab.timings["check_run_fresh_seconds"] = round(run.seconds, 1)
    predicted = set()
    for result in run.task("Create and extend volumes").values():
        predicted |= {v["name"] for v in result["volumes"] if v["action"] == "create"}
    assert predicted == NAMES
    assert run.changed > 0
    assert lab.state() == before
    SHARED["check_changed"] = run.changed_tasks()


def test_real_run_creates_exactly_the_declared_volumes_where_planned(lab):
    run = run_playbook(lab)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    lab.timings["first_run_seconds"] = round(run.seconds, 1)
    # Check mode on the fresh hosts predicted every task that changed something (the thin pools included).
    unpredicted = run.changed_tasks() - SHARED.get("check_changed", set())
    assert not unpredicted, sorted(unpredicted)
    plan = plan_of(run)
    SHARED["plan"] = plan
    managed = all_managed(lab)
    on_hosts = {name: host for host, vols in managed.items() for name in vols}
    assert set(on_hosts) == NAMES
    for entry in plan["volumes"]:
        host, backend = entry["pool_id"].split("@")
        vg, size, pool_lv = managed[host][entry["name"]]
        assert on_hosts[entry["name"]] == host == entry["host"]
        assert vg == POOL_VG[backend]
        assert (pool_lv == "thinpool") == (backend == "lvm-thin")
        assert size == entry["size_bytes"]
    # Availability zones: az1 is stor1, az2 is stor2.
    declared = {v["name"]: v for v in DECLARED}
    for name, host in on_hosts.items():
        zone = declared[name].get("availability_zone")
        if zone:
            assert host == {"az1": "stor1", "az2": "stor2"}[zone]
    # Attached volumes are logged in on client1 with a device at the stable path.
    sessions = lab.ssh("client1", "iscsiadm -m session").stdout
    for name in ATTACHED:
        assert "volume-%s " % name in sessions
    # Connection results are no_log (CHAP secrets); the report carries the devices.
    rows = run.task("Build the report")["localhost"]["ansible_facts"]["blockstore_report"]["rows"]
    assert {r["volume"]: r["state"] for r in rows} == {
        v["name"]: "in-use" if v.get("attachments") else "available" for v in DECLARED}
    SHARED["devices"] = {r["volume"]: r["device"].split(":", 1)[1] for r in rows if r["device"] != "-"}
    assert sorted(SHARED["devices"]) == ATTACHED
    for path in SHARED["devices"].values():
        lab.ssh("client1", "test -b %s" % path)


def test_second_run_changes_nothing(lab):
    run = run_playbook(lab)
    assert run.rc == 0, run.stdout[-3000:]
    lab.timings["noop_run_seconds"] = round(run.seconds, 1)
    assert run.changed_by_host() == {h: 0 for h in run.stats}, run.changed_by_host()
    # The fast path: a run with nothing to change costs one module run per host (its gather).
    assert run.module_runs() == {"stor1": 1, "stor2": 1, "client1": 1, "localhost": 0}, run.module_runs()


def test_check_run_after_converge_changes_nothing(lab):
    before = lab.state()
    run = run_playbook(lab, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed == 0, run.changed_by_host()
    assert lab.state() == before


def test_data_survives_tgt_restart(lab):
    sums = {}
    for name in ATTACHED:
        dev = SHARED["devices"][name]
        out = lab.ssh("client1", "set -e; head -c 64M /dev/urandom > /tmp/%s.bin; sha256sum < /tmp/%s.bin; "
                                 "dd if=/tmp/%s.bin of=%s bs=1M oflag=direct conv=fsync status=none; rm /tmp/%s.bin"
                      % (name, name, name, dev, name)).stdout
        sums[name] = out.split()[0]
    for host in ("stor1", "stor2"):
        lab.ssh(host, "systemctl restart tgt")
    # Targets come back from the persistent files; sessions recover on their own (node.startup automatic).
    for host in ("stor1", "stor2"):
        conf = lab.ssh(host, "ls /etc/tgt/conf.d").stdout.split()
        shown = lab.ssh(host, "tgtadm --lld iscsi --mode target --op show").stdout
        for name in conf:
            assert name.startswith("ember-volume-")
            assert "iqn.2026-11.io.ember.blockstore:%s" % name[len("ember-"):-len(".conf")] in shown
    for name in ATTACHED:
        dev = SHARED["devices"][name]
        out = lab.ssh("client1", "for i in $(seq 60); do dd if=%s of=/dev/null bs=4k count=1 iflag=direct "
                                 "status=none 2>/dev/null && break; sleep 2; done; "
                                 "dd if=%s bs=1M count=64 iflag=direct status=none | sha256sum" % (dev, dev)).stdout
        assert out.split()[0] == sums[name], name
    SHARED["sums"] = sums


def test_inventory_snapshots_revert_and_volumes_from_sources(lab, tmp_path):
    # Snapshots declared under volumes: check -> real -> again (changed=0); then data written after the snapshot,
    # a revert declared in the inventory, and the data reads back as the snapshot's; again and check change
    # nothing. scratch01 (thick, with a smaller COW store) and archive01 (thin) are detached on stor1; logs01
    # (thick, attached) gets a snapshot too, which the cascade delete further down removes with it.
    devices = {"scratch01": "/dev/ember-thick/volume-scratch01", "archive01": "/dev/ember-thin/volume-archive01"}

    def declared(revert):
        state = "reverted" if revert else "present"
        return {"blockstore_volumes": volumes_with({
            "scratch01": dict(DECLARED_BY_NAME["scratch01"], snapshots=[
                {"name": "s1", "cow_size": "128MiB", "state": state, "description": "before the upgrade"}]),
            "archive01": dict(DECLARED_BY_NAME["archive01"], snapshots=[{"name": "s1", "state": state}]),
            "logs01": dict(DECLARED_BY_NAME["logs01"], snapshots=[{"name": "s1"}]),
        })}

    def write_random():
        return lab.ssh("stor1", "set -e; head -c 16M /dev/urandom > /tmp/s.bin; for d in %s; do dd if=/tmp/s.bin "
                                "of=$d bs=1M oflag=direct conv=fsync status=none; done; sha256sum < /tmp/s.bin"
                       % " ".join(devices.values())).stdout.split()[0]

    def read_back():
        read = "dd if=%s bs=1M count=16 iflag=direct status=none | sha256sum"
        return {v: lab.ssh("stor1", read % d).stdout.split()[0] for v, d in devices.items()}

    def actions(run):
        return sorted((s["volume"], s["name"], s["action"])
                      for s in run.task("Take, delete and revert to snapshots")["stor1"]["snapshots"])

    taken = write_random()
    before = lab.state()
    check = run_playbook(lab, check=True, extra_vars=declared(False), tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    assert actions(check) == [("archive01", "s1", "create"), ("logs01", "s1", "create"),
                              ("scratch01", "s1", "create")]
    assert lab.state() == before
    run = run_playbook(lab, extra_vars=declared(False), tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed_by_host() == {"stor1": 1, "stor2": 0, "client1": 0, "localhost": 0}, run.changed_by_host()
    snaps = lab.managed_snapshots("stor1")
    assert sorted(snaps) == [("archive01", "s1"), ("logs01", "s1"), ("scratch01", "s1")]
    assert snaps[("scratch01", "s1")]["size"] == 128 * 2**20 and snaps[("scratch01", "s1")]["pool_lv"] is None
    assert "ember.description=before+the+upgrade" not in snaps[("scratch01", "s1")]["tags"]
    assert "ember.description=before#20the#20upgrade" in snaps[("scratch01", "s1")]["tags"]
    assert snaps[("archive01", "s1")]["pool_lv"] == "thinpool"
    assert snaps[("logs01", "s1")]["size"] == lab.managed_lvs("stor1")["logs01"][1]  # COW default: the volume's size
    again = run_playbook(lab, extra_vars=declared(False), tmp_path=tmp_path)
    assert again.rc == 0 and again.changed == 0, again.changed_by_host()

    assert write_random() != taken
    revert = run_playbook(lab, extra_vars=declared(True), tmp_path=tmp_path)
    assert revert.rc == 0, revert.stdout[-3000:]
    assert actions(revert) == [("archive01", "s1", "revert"), ("scratch01", "s1", "revert")]
    assert read_back() == {v: taken for v in devices}
    after = lab.state()
    again = run_playbook(lab, extra_vars=declared(True), tmp_path=tmp_path)
    assert again.rc == 0 and again.changed == 0, again.changed_by_host()
    check = run_playbook(lab, check=True, extra_vars=declared(True), tmp_path=tmp_path)
    assert check.rc == 0 and check.changed == 0, check.changed_by_host()
    assert lab.state() == after
    SHARED["snapshot_data"] = taken

    # Volumes made from sources, with the snapshots no longer listed (they are not deleted by omission): a thick
    # clone (through a temporary snapshot, copied with dd), a thin clone and a thin volume from a snapshot,
    # bigger than it. Check -> real -> again -> check; each reads back the source's data.
    made = {"clone01": {"name": "clone01", "source": {"volume": "scratch01"}},
            "clone02": {"name": "clone02", "source": {"volume": "archive01"}},
            "fromsnap01": {"name": "fromsnap01", "size": "3GiB", "source": {"volume": "archive01", "snapshot": "s1"}}}
    sourced = {"blockstore_volumes": copy.deepcopy(DECLARED) + list(made.values())}
    before = lab.state()
    check = run_playbook(lab, check=True, extra_vars=sourced, tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    predicted = {v["name"]: v for v in check.task("Create and extend volumes")["stor1"]["volumes"]}
    assert {n: predicted[n]["action"] for n in made} == {n: "create" for n in made}
    assert lab.state() == before
    run = run_playbook(lab, extra_vars=sourced, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    created = {v["name"]: v for v in run.task("Create and extend volumes")["stor1"]["volumes"]}
    assert {n: (created[n]["action"], created[n]["copy_method"]) for n in made} == {
        "clone01": ("create", "dd"), "clone02": ("create", None), "fromsnap01": ("create", None)}
    managed = lab.managed_lvs("stor1")
    assert managed["clone01"] == ("ember-thick", managed["scratch01"][1], None)
    assert managed["clone02"] == ("ember-thin", managed["archive01"][1], "thinpool")
    assert managed["fromsnap01"] == ("ember-thin", 3 * 2**30, "thinpool")
    read = "dd if=/dev/%s/volume-%s bs=1M count=16 iflag=direct status=none | sha256sum"
    for name, (vg, _size, _pool) in ((n, managed[n]) for n in made):
        assert lab.ssh("stor1", read % (vg, name)).stdout.split()[0] == taken, name
    lvs = lab.ssh("stor1", "lvs --noheadings -o lv_name,lv_tags").stdout
    assert "clone-snap-" not in lvs and "ember.creating" not in lvs  # the temporary snapshot is gone
    assert sorted(lab.managed_snapshots("stor1")) == sorted(snaps)
    again = run_playbook(lab, extra_vars=sourced, tmp_path=tmp_path)
    assert again.rc == 0 and again.changed == 0, again.changed_by_host()
    check = run_playbook(lab, check=True, extra_vars=sourced, tmp_path=tmp_path)
    assert check.rc == 0 and check.changed == 0, check.changed_by_host()


QOS_WBPS = 2 * 2**20  # bytes/s (the lab's unthrottled iSCSI write is about 10 MB/s)
# Runs on the consumer: four direct-I/O dd writers in cgroup argv[1] to device argv[2] (at most 192 MiB), and
# prints the bytes written to device argv[3] (MAJ:MIN) in argv[1]'s parent (io.stat wbytes) over 5 s after 1 s.
QOS_RATE_SCRIPT = """
import os, subprocess, sys, time
cgroup, device, number = sys.argv[1:4]
path = "/sys/fs/cgroup/" + cgroup
os.makedirs(path, exist_ok=True)

def written():
    with open(os.path.join(os.path.dirname(path), "io.stat")) as handle:
        for line in handle:
            fields = line.split()
            if fields and fields[0] == number:
                return int(next(f for f in fields if f.startswith("wbytes="))[7:])
    return 0

def join():
    with open(path + "/cgroup.procs", "w") as handle:
        handle.write("0")

writers = [subprocess.Popen(["dd", "if=/dev/zero", "of=" + device, "bs=1M", "count=48", "seek=%d" % (i * 48),
                             "oflag=direct", "status=none"], preexec_fn=join) for i in range(4)]
time.sleep(1)
b0, t0 = written(), time.monotonic()
time.sleep(5)
b1, t1 = written(), time.monotonic()
for writer in writers:
    writer.kill()
for writer in writers:
    writer.wait()
os.rmdir(path)
print(b1 - b0, t1 - t0)
"""


def qos_write_rate(lab, cgroup, device, number):
    """Bytes per second that four direct-I/O writers in ``cgroup`` (under /sys/fs/cgroup) get on ``device``."""
    out = lab.ssh("client1", "python3 - %s %s %s <<'PY'\n%sPY" % (cgroup, device, number, QOS_RATE_SCRIPT)).stdout
    written, seconds = out.split()
    return int(written) / float(seconds)


def test_qos_throttles_the_consumer_and_metadata_is_kept_with_the_volume(lab, tmp_path):
    # A volume type with Cinder's front-end QoS (write_bytes_sec) on a new attached volume: the consumer's
    # system.slice gets its io.max line, and a direct-I/O write from that slice runs at the limit (within 10 %).
    # In the same runs scratch01 gets a description and metadata (kept in LV tags, updated in place).
    # Check -> real -> again -> check, then a metadata change is one update.
    types = dict(copy.deepcopy(TYPES), limited={"extra_specs": {"volume_backend_name": "lvm-thin"},
                                                "qos_specs": {"write_bytes_sec": str(QOS_WBPS)}})
    meta = {"owner": "web team", "tier": "gold=1"}

    def declared(metadata):
        return {"blockstore_volume_types": types, "blockstore_volumes": volumes_with({
            "scratch01": dict(DECLARED_BY_NAME["scratch01"], description="scratch space, été", metadata=metadata),
        }) + [{"name": "qos01", "size": "256MiB", "volume_type": "limited", "availability_zone": "az1",
               "attachments": [{"host": "client1"}]}]}

    before = lab.state()
    check = run_playbook(lab, check=True, extra_vars=declared(meta), tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    assert lab.state() == before
    run = run_playbook(lab, extra_vars=declared(meta), tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    # The connection result is no_log (CHAP secrets): the device comes from the report, the limit from the host.
    rows = run.task("Build the report")["localhost"]["ansible_facts"]["blockstore_report"]["rows"]
    (path,) = [r["device"].split(":", 1)[1] for r in rows if r["volume"] == "qos01"]
    device = lab.ssh("client1", "readlink -f %s" % path).stdout.strip()
    number = lab.ssh("client1", "cat /sys/class/block/%s/dev" % device.rsplit("/", 1)[1]).stdout.strip()
    line = lab.ssh("client1", "grep '^%s ' /sys/fs/cgroup/system.slice/io.max" % number).stdout.split()
    assert line == [number, "rbps=max", "wbps=%d" % QOS_WBPS, "riops=max", "wiops=max"], line

    # Writers run in a child cgroup of system.slice (the lab has no D-Bus for systemd-run; a process cannot join
    # system.slice itself, an inner node with controllers): system.slice's io.max applies to its subtree. Four
    # direct-I/O writers keep requests queued (one dd waits for each write, and under load its rate falls below
    # the limit by the device's own latency); the rate is the parent's io.stat over 5 s after 1 s of warm-up. The
    # same writers in a cgroup outside system.slice, in the same run, are the unthrottled baseline.
    limited = qos_write_rate(lab, "system.slice/ember-qos-test", device, number)
    assert abs(limited - QOS_WBPS) <= 0.1 * QOS_WBPS, limited
    free = qos_write_rate(lab, "ember-qos-free", device, number)
    assert free >= 1.5 * limited, (free, limited)
    tags = lab.ssh("stor1", "lvs --noheadings -o lv_tags ember-thick/volume-scratch01").stdout.strip().split(",")
    assert "ember.meta=owner=web#20team" in tags and "ember.meta=tier=gold#3D1" in tags, tags
    assert [t for t in tags if t.startswith("ember.vdesc=")] == ["ember.vdesc=scratch#20space#2C#20#C3#A9t#C3#A9"]
    again = run_playbook(lab, extra_vars=declared(meta), tmp_path=tmp_path)
    assert again.rc == 0 and again.changed == 0, again.changed_by_host()
    check = run_playbook(lab, check=True, extra_vars=declared(meta), tmp_path=tmp_path)
    assert check.rc == 0 and check.changed == 0, check.changed_by_host()
    update = run_playbook(lab, extra_vars=declared({"owner": "db team"}), tmp_path=tmp_path)
    assert update.rc == 0 and update.changed_by_host()["stor1"] == 1, update.changed_by_host()
    (item,) = [v for v in update.task("Create and extend volumes")["stor1"]["volumes"] if v["name"] == "scratch01"]
    assert (item["action"], item["metadata"]) == ("update", {"owner": "db team"})
    tags = lab.ssh("stor1", "lvs --noheadings -o lv_tags ember-thick/volume-scratch01").stdout.strip().split(",")
    assert [t for t in tags if t.startswith("ember.meta=")] == ["ember.meta=owner=db#20team"], tags


def test_info_modules_report_cinders_fields(lab, tmp_path):
    # volume_info and snapshot_info on stor1 after the scenarios above: statuses, description and metadata,
    # sources, snapshots and live attachments as Cinder reports them; read-only (nothing changes).
    playbook = tmp_path / "info.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "stor1", "gather_facts": False, "tasks": [
        {"name": "volumes", "ember.blockstore.volume_info": {"host": "stor1"}},
        {"name": "snapshots", "ember.blockstore.snapshot_info": {"volume": ["scratch01", "archive01"]}}]}]))
    before = lab.state()
    run = run_playbook(lab, playbook=str(playbook))
    assert run.rc == 0 and run.changed == 0, run.stdout[-3000:]
    assert lab.state() == before
    volumes = {v["name"]: v for v in run.task("volumes")["stor1"]["volumes"]}
    assert set(lab.managed_lvs("stor1")) <= set(volumes)
    scratch = volumes["scratch01"]
    assert (scratch["status"], scratch["description"], scratch["metadata"]) == (
        "available", "scratch space, été", {"owner": "db team"})
    assert scratch["snapshots"] == ["s1"] and scratch["size_bytes"] == lab.managed_lvs("stor1")["scratch01"][1]
    assert "scratch01" in str(volumes["clone01"]["source"]) and "s1" in str(volumes["fromsnap01"]["source"])
    qos = volumes["qos01"]
    assert qos["status"] == "in-use" and [a["connected"] for a in qos["attachments"]] == [True], qos
    snaps = {(s["volume"], s["name"]): s for s in run.task("snapshots")["stor1"]["snapshots"]}
    assert sorted(snaps) == [("archive01", "s1"), ("scratch01", "s1")]
    assert snaps[("scratch01", "s1")]["cow_size_bytes"] == 128 * 2**20 and snaps[("scratch01", "s1")]["reverted"]
    assert snaps[("archive01", "s1")]["cow_size_bytes"] is None
    assert {s["status"] for s in snaps.values()} == {"available"}


def test_target_loaded_without_its_lun_gets_it_live(lab):
    # What a boot race does (tgtd loading a target before its LV is active): the consumer is logged in to a
    # target that has no LUN 1. The run adds the LUN live (no reload, the session stays) and the consumer rescans.
    name, iqn, portal = "db02-data", "iqn.2026-11.io.ember.blockstore:volume-db02-data", "198.18.0.12:3260"
    lab.ssh("client1", "iscsiadm -m node -T %s -p %s --logout" % (iqn, portal))
    lab.ssh("stor2", "tid=$(tgtadm --lld iscsi --op show --mode target | sed -n 's/^Target \\([0-9]*\\): %s$/\\1/p'); "
                     "tgtadm --lld iscsi --op delete --mode logicalunit --tid $tid --lun 1" % iqn)
    lab.ssh("client1", "iscsiadm -m node -T %s -p %s --login" % (iqn, portal))
    sid = lab.ssh("client1", "iscsiadm -m session | grep ' %s '" % iqn).stdout.split()[1]
    assert lab.ssh("client1", "test -e %s" % SHARED["devices"][name], check=False).returncode != 0
    run = run_playbook(lab)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed_by_host() == {"stor2": 1, "client1": 1, "stor1": 0, "localhost": 0}, run.changed_by_host()
    assert lab.ssh("client1", "iscsiadm -m session | grep ' %s '" % iqn).stdout.split()[1] == sid  # not dropped
    out = lab.ssh("client1", "dd if=%s bs=1M count=64 iflag=direct status=none | sha256sum"
                  % SHARED["devices"][name]).stdout
    assert out.split()[0] == SHARED["sums"][name]


def _probe_login(lab, host, target, portal, initiator, user, secret):
    """Try a login from ``host`` through a separate iface that presents ``initiator``; returns iscsiadm's rc.
    The probe session (if any) is logged out and every record it made is deleted."""
    script = f"""
set -u
systemctl start iscsid
iscsiadm -m iface -I probe -o new >/dev/null 2>&1 || true
iscsiadm -m iface -I probe -o update -n iface.initiatorname -v {initiator} >/dev/null
iscsiadm -m node -T {target} -p {portal} -I probe -o new >/dev/null
iscsiadm -m node -T {target} -p {portal} -I probe -o update -n node.session.auth.authmethod -v CHAP \\
  -n node.session.auth.username -v {user} -n node.session.auth.password -v {secret} >/dev/null
iscsiadm -m node -T {target} -p {portal} -I probe --login >/dev/null 2>&1
rc=$?
iscsiadm -m node -T {target} -p {portal} -I probe --logout >/dev/null 2>&1
iscsiadm -m node -T {target} -p {portal} -I probe -o delete >/dev/null 2>&1
iscsiadm -m iface -I probe -o delete >/dev/null 2>&1
exit $rc
"""
    return lab.ssh(host, script, check=False).returncode


def test_acl_and_chap_are_enforced(lab):
    name = "db01-data"
    entry = next(e for e in SHARED["plan"]["volumes"] if e["name"] == name)
    assert entry["host"] == "stor1"
    conf = lab.ssh("stor1", f"cat /etc/tgt/conf.d/ember-volume-{name}.conf").stdout
    lines = [line.split() for line in conf.splitlines() if line.strip()]
    target = next(w[1].rstrip(">") for w in lines if w[0] == "<target")
    user, secret = next(w[1:3] for w in lines if w[0] == "incominguser")
    # The ACL binds client1's storage address; its IQN is recorded, not bound (tgt matches address OR name).
    assert [w[1] for w in lines if w[0] == "initiator-address"] == ["198.18.0.21"]
    assert not [w for w in lines if w[0] == "initiator-name"]
    client_iqn = next(w[2] for w in lines if w[:2] == ["#", "initiator-name"])
    iqn_file = "/etc/iscsi/initiatorname.iscsi"
    assert client_iqn == lab.ssh("client1", f"sed -n 's/^InitiatorName=//p' {iqn_file}").stdout.strip()
    stor2_iqn = lab.ssh("stor2", "sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi").stdout.strip()
    assert stor2_iqn and stor2_iqn != client_iqn
    portal = "198.18.0.11:3260"
    # Control: client1 with the right secret gets a second session (so the refusals below are real).
    assert _probe_login(lab, "client1", target, portal, client_iqn, user, secret) == 0
    # The consumer with a wrong CHAP secret is refused.
    assert _probe_login(lab, "client1", target, portal, client_iqn, user, "Wrong" + secret[5:]) != 0
    # A host that is not in the ACL cannot log in, even with the right secret, under its own name or the
    # consumer's.
    assert _probe_login(lab, "stor2", target, portal, stor2_iqn, user, secret) != 0
    assert _probe_login(lab, "stor2", target, portal, client_iqn, user, secret) != 0
    # The consumer's own session was not disturbed.
    assert f"volume-{name} " in lab.ssh("client1", "iscsiadm -m session").stdout


def test_a_saved_plan_applies_exactly_and_is_refused_once_a_host_changed(lab, tmp_path):
    # Reviewable plans: a check run saves the plan, a later run applies exactly that file; once a run has changed
    # the hosts, the same file is refused before any change, naming what changed.
    path = str(tmp_path / "plan.json")
    extra = {"blockstore_volumes": DECLARED + [{"name": "planned01", "size": "64MiB", "volume_type": "bulk",
                                                "availability_zone": "az1"}], "blockstore_plan_out": path}
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    with open(path) as handle:
        saved = json.load(handle)
    (planned,) = [v for v in saved["volumes"] if v["action"] != "none"]
    assert (planned["name"], planned["action"], planned["size_bytes"]) == ("planned01", "create", 64 * 2**20)
    assert "planned01" not in all_managed(lab)[planned["host"]]
    extra = dict(extra, blockstore_plan_out="", blockstore_plan_in=path)
    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    vg, size, _pool = all_managed(lab)[planned["host"]]["planned01"]
    assert (vg, size) == (POOL_VG[planned["pool_id"].split("@")[1]], planned["size_bytes"])
    before = lab.state()
    again = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert again.rc != 0
    text = again.messages()
    assert "The saved plan is refused, nothing was changed" in text
    assert "storage host %s: ledger generation" % planned["host"] in text
    assert "volume planned01 was created since the plan was made" in text
    assert lab.state() == before


def test_volume_removed_from_inventory_is_kept_and_reported(lab, tmp_path):
    before = all_managed(lab)
    run = run_playbook(lab, extra_vars={"blockstore_volumes": volumes_with({"scratch01": None})}, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed == 0, run.changed_by_host()
    assert all_managed(lab) == before
    rows = run.task("Build the report")["localhost"]["ansible_facts"]["blockstore_report"]["rows"]
    assert {"volume": "scratch01", "status": "not in inventory"}.items() <= [
        r for r in rows if r["volume"] == "scratch01"][0].items()


def test_deleting_an_attached_volume_needs_force_and_changes_nothing_without(lab, tmp_path):
    before = lab.state()
    absent = {"name": "logs01", "state": "absent"}
    run = run_playbook(lab, extra_vars={"blockstore_volumes": volumes_with({"logs01": absent})}, tmp_path=tmp_path)
    assert run.rc != 0
    assert "logs01" in run.messages() and "force" in run.messages()
    assert lab.state() == before


METRICS_DIR = "/var/lib/prometheus/node-exporter"


def metrics_of(lab, host, promtool):
    """The metrics file of ``host``, after `promtool check metrics` accepted it: {"name{labels}": value}."""
    text = lab.ssh(host, "cat %s/ember_blockstore.prom" % METRICS_DIR).stdout
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (check, text)
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _sep, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_state_absent_logs_out_unexports_and_deletes_wiped(lab, tmp_path):
    # This run and the next also write the node_exporter textfile (blockstore_metrics_dir): promtool accepts it,
    # it shows the pools after the delete, and the run after it leaves it unchanged.
    # logs01 has a snapshot (test_inventory_snapshots_revert_and_volumes_from_sources): cascade deletes it with it.
    absent = {"name": "logs01", "state": "absent", "force": True}
    unchanged = lab.state()
    refused = run_playbook(lab, extra_vars={"blockstore_volumes": volumes_with({"logs01": absent})},
                           tmp_path=tmp_path)
    assert refused.rc != 0 and "logs01 on stor1@lvm-thick has snapshot(s) s1; set cascade: true" in refused.messages()
    assert lab.state() == unchanged
    absent["cascade"] = True
    extra = {"blockstore_volumes": volumes_with({"logs01": absent}), "blockstore_metrics_dir": METRICS_DIR}
    lab.ssh("stor1", "rm -rf /var/lib/prometheus", check=False)
    size = lab.managed_lvs("stor1")["logs01"][1]
    # check -> real -> again -> check: the check run predicts the cascade delete and changes nothing.
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    assert lab.state() == unchanged
    planned = {v["name"]: v for v in check.task("Plan every volume before any change (hosts that reported, "
                                                "placement ledger, scheduler)")["localhost"]["ansible_facts"]
               ["blockstore_plan"]["volumes"]}
    assert planned["logs01"]["action"] == "delete"
    assert [(s["name"], s["action"]) for s in planned["logs01"]["snapshots"]] == [("s1", "delete")]
    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    deleted = run.task("Delete volumes (wiped as the backend's volume_clear says)")["stor1"]["volumes"]
    assert [(d["name"], d["action"], d["wipe"], d["wiped_bytes"], d["wipe_method"]) for d in deleted] == [
        ("logs01", "delete", "zero", size, "blkdiscard --zeroout")]
    assert "logs01" not in lab.managed_lvs("stor1")
    assert not [key for key in lab.managed_snapshots("stor1") if key[0] == "logs01"]
    assert "snap-logs01" not in lab.ssh("stor1", "lvs --noheadings -o lv_name").stdout
    assert "volume-logs01" not in lab.ssh("stor1", "tgtadm --lld iscsi --mode target --op show").stdout
    assert "ember-volume-logs01.conf" not in lab.ssh("stor1", "ls /etc/tgt/conf.d").stdout
    assert "volume-logs01" not in lab.ssh("client1", "iscsiadm -m session 2>/dev/null; iscsiadm -m node "
                                                     "2>/dev/null; true").stdout
    promtool = subprocess.run([os.path.join(ROOT, "lab", "promtool.sh")], capture_output=True, text=True,
                              check=True).stdout.strip()
    metrics = {host: metrics_of(lab, host, promtool) for host in ("stor1", "stor2")}
    for host, samples in metrics.items():
        managed = lab.managed_lvs(host)
        # One size sample per managed volume on the host, with its size on the host; none for logs01.
        sizes = {key.split('volume="')[1].split('"')[0]: value for key, value in samples.items()
                 if key.startswith("ember_blockstore_volume_size_bytes{")}
        assert sizes == {name: float(size) for name, (_vg, size, _pool) in managed.items()}, (host, samples)
        for backend in POOL_VG:
            key = ('ember_blockstore_pool_capacity_bytes{pool="%s@%s",backend="%s"' % (host, backend, backend))
            assert [k for k in samples if k.startswith(key)], (host, backend, sorted(samples))
    again = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed == 0, (again.changed_by_host(), sorted(again.changed_tasks()),
                                [(t["task"]["name"], r) for p in again.data["plays"] for t in p["tasks"]
                                 for h, r in t["hosts"].items() if h == "stor1" and r.get("changed")])
    for host in ("stor1", "stor2"):
        assert metrics_of(lab, host, promtool) == metrics[host], host
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check.rc == 0 and check.changed == 0, (check.changed_by_host(), sorted(check.changed_tasks()))


def test_volume_too_big_for_every_pool_fails_before_any_change(lab, tmp_path):
    before = lab.state()
    huge = {"name": "huge01", "size": "100GiB", "volume_type": "bulk"}
    vols = volumes_with({"logs01": {"name": "logs01", "state": "absent"}}) + [huge]
    run = run_playbook(lab, extra_vars={"blockstore_volumes": vols}, tmp_path=tmp_path)
    assert run.rc != 0
    text = run.messages()
    assert "No valid backend for huge01:" in text
    # Every pool is named with the first filter that rejected it (Cinder's order: AZ, capacity, capabilities).
    for pool in ("stor1@lvm-thick", "stor1@lvm-thin", "stor2@lvm-thick", "stor2@lvm-thin"):
        assert f"{pool}: CapacityFilter: " in text
    assert lab.state() == before
