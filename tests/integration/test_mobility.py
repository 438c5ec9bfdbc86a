"""Data mobility on the lab (make test-full): migration and retype, volumes from and to images, manage/unmanage,
group snapshots. One scenario: each converge carries every feature's change of that phase, and every converge is
checked as an operator checks it (--check, real, again changed=0, --check again changed=0).

Volumes of the scenario, next to the lab's declared ones (stor1's pools are in az1, stor2's in az2):

- mig01 (bulk, az1): 64 MiB of random data; the plan refuses its move to az2 without ``migration_policy``, then it
  migrates stor1 -> stor2 with ``on-demand`` (sha256 read on the LV before and after; the source goes only after the
  verified switch).
- mig02 (bulk, az1): migrated to az2 by a run in which stor2 (the destination) is killed in the middle of the copy:
  the source stays the volume (data and ledger), and the next run resumes on the copy and finishes.
- mig03 (bulk, az2 = stor2 thick): retyped to ``fast`` (thin): it migrates into stor2's thin pool.
- mig04 (fast, az2 = stor2 thin): retyped to ``fast-qos`` (the same extra specs, QoS added): the same LV, no copy.
- img01 (fast, az1): from a qcow2 made on the controller (random data at known offsets, holes elsewhere); reads
  back ``qemu-img convert -O raw`` of the image. The image module writes it to a compressed qcow2 in a store on stor1
  (sha256 sidecar), and img02 (bulk) is made from that file: byte for byte img01. A wrong checksum and a volume
  smaller than the image's virtual size are refused before any LV is made.
- m1: an LV made by hand on stor1 (ember-thick/ember_manage_m1, random data, no tags). Refused while open and under a
  name already taken; managed under its own LV name (data intact, tagged, ledger, report), attached to client1 (the
  export's backing store is the LV itself), detached, unmanaged (tags gone, LV and data intact).
- g1 (fast, az1 = stor1 thin) and g2 (bulk, az2 = stor2 thick) in group grp, both attached to client1 with ext4 and a
  writer that keeps a counter in both (g1 first, then g2, each fsync'd and renamed): the group snapshot s1, taken with
  the writer running, shows the same counter in both members; once detached the group is reverted to it.

At the end every volume of the scenario is deleted (cascade), the image removed and the hand-made LV too, so the
scenarios after this one find the lab as the earlier ones left it.
"""

import copy
import hashlib
import json
import os
import subprocess
import time

import pytest
import yaml
from lab_helpers import ROOT, StreamedRun, four_steps, module_play, plan_of, run_playbook, vm

pytestmark = [pytest.mark.lab, pytest.mark.full]

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
MiB = 2**20
STORAGE = ("stor1", "stor2")
PREFIX = "iqn.2026-11.io.ember.blockstore:"
LEDGER = "/var/lib/ember-blockstore/ledger.json"
TYPES = copy.deepcopy(_LAB_VARS["blockstore_volume_types"])
TYPES["fast-qos"] = {"description": "fast, with a read IOPS limit",
                     "extra_specs": dict(TYPES["fast"]["extra_specs"]), "qos_specs": {"read_iops_sec": "2000"}}
ON_DEMAND = {"migration_policy": "on-demand"}
# Manage
MVG, MLV, MSIZE = "ember-thick", "ember_manage_m1", 64 * MiB
MDEV = "/dev/%s/%s" % (MVG, MLV)
# Images
VIRTUAL = 64 * MiB
STORE = "/var/lib/ember-blockstore/image-store"
# Groups
MOUNTS = {"g1": "/mnt/ember-g1", "g2": "/mnt/ember-g2"}
STOP = "/run/ember-groups-writer.stop"
FREEZE_TIMEOUT = 120  # under TCG a module run takes 4-15 s: the frozen window is about three of them
# EMBER_MOBILITY_STATE=<dir> keeps the scenario's inputs and measured values there, so a later pytest run on the same
# lab (EMBER_LAB_REUSE=1, -k <phase>) resumes the scenario instead of starting it again.
STATE_DIR = os.environ.get("EMBER_MOBILITY_STATE")


class Shared(dict):
    """Values measured in one phase and checked in a later one (persisted under STATE_DIR when it is set)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if STATE_DIR:
            with open(os.path.join(STATE_DIR, "shared.json"), "w") as handle:
                json.dump(self, handle)


SHARED = Shared()


def vol(name, size, volume_type, zone, **changes):
    return dict({"name": name, "size": size, "volume_type": volume_type, "availability_zone": zone}, **changes)


def m1(**changes):
    return dict({"name": "m1", "volume_type": "bulk", "manage": {"lv": MLV, "host": "stor1", "backend": "lvm-thick"}},
                **changes)


def scenario(phase, **changes):
    """The lab's declared volumes plus the scenario's, as they are in ``phase`` (1 created, 2 moved and snapshotted,
    3 detached with mig02 moving, 4 reverted and unmanaged, 5 deleted); ``changes`` ({name: {key: value}}) on top."""
    image = SHARED.get("controller_image")
    attached = [{"host": "client1"}] if phase <= 2 else []
    vols = {
        "mig01": vol("mig01", "256MiB", "bulk", "az2" if phase >= 2 else "az1", **(ON_DEMAND if phase >= 2 else {})),
        "mig02": vol("mig02", "512MiB", "bulk", "az2" if phase >= 3 else "az1", **(ON_DEMAND if phase >= 3 else {})),
        "mig03": vol("mig03", "256MiB", "fast" if phase >= 2 else "bulk", "az2", **(ON_DEMAND if phase >= 2 else {})),
        "mig04": vol("mig04", "128MiB", "fast-qos" if phase >= 2 else "fast", "az2"),
        "img01": vol("img01", "128MiB", "fast", "az1", source={"image": image, "controller": True}),
        "m1": m1(attachments=[{"host": "client1"}]) if phase == 2 else m1(),
        "g1": vol("g1", "64MiB", "fast", "az1", attachments=attached),
        "g2": vol("g2", "64MiB", "bulk", "az2", attachments=attached),
    }
    if phase >= 2:
        vols["img02"] = vol("img02", "128MiB", "bulk", "az1", source={
            "image": STORE + "/golden.qcow2", "format": "qcow2", "checksum": "sha256:" + SHARED["file_sha256"]})
    if phase >= 4:
        vols["m1"] = {"name": "m1", "state": "unmanaged"}
    if phase >= 5:
        vols = {name: {"name": name, "state": "absent", "cascade": True} for name in vols if name != "m1"}
    for name, change in changes.items():
        if change is None:
            vols.pop(name, None)
        else:
            vols[name] = dict(vols.get(name, {"name": name}), **change)
    out = {"blockstore_volumes": copy.deepcopy(_LAB_VARS["blockstore_volumes"]) + list(vols.values()),
           "blockstore_volume_types": TYPES}
    if phase < 5:
        snapshots = [] if phase == 1 else [
            {"name": "s1", "state": "reverted" if phase >= 4 else "present", "description": "writer running"}]
        out["blockstore_groups"] = [{"name": "grp", "volumes": ["g1", "g2"], "freeze_timeout": FREEZE_TIMEOUT,
                                     "snapshots": snapshots}]
    return out


# --- what the lab shows -------------------------------------------------------------------------------------------

def lvs(lab, host):
    """Every LV of ``host``: {lv name: {"vg", "size", "tags", "uuid", "pool"}}."""
    out = lab.ssh(host, "lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_tags,lv_uuid,"
                        "pool_lv 2>/dev/null").stdout
    return {row["lv_name"]: {"vg": row["vg_name"], "size": int(row["lv_size"]), "tags": row["lv_tags"].split(","),
                             "uuid": row["lv_uuid"], "pool": row["pool_lv"] or None}
            for row in json.loads(out)["report"][0]["lv"]}


def where(lab, name, hosts=STORAGE):
    """[(host, vg, lv facts)] of every LV that is the volume ``name`` (volume-<name> tagged ember.volume=<name>)."""
    return [(host, lv["vg"], lv) for host in hosts for lv_name, lv in lvs(lab, host).items()
            if lv_name == "volume-" + name and "ember.volume=" + name in lv["tags"]]


def leftovers(lab):
    """Migration LVs (migrate-*, migrated-*) on the storage nodes."""
    return {(host, lv_name) for host in STORAGE for lv_name in lvs(lab, host)
            if lv_name.startswith(("migrate-", "migrated-"))}


def sha(lab, name, size=None):
    """sha256 of the volume ``name`` (its first ``size`` bytes when given)."""
    ((host, vg, _lv),) = where(lab, name)
    head = "| head -c %d " % size if size else ""
    return lab.ssh(host, "dd if=/dev/%s/volume-%s bs=4M iflag=direct status=none %s| sha256sum"
                   % (vg, name, head)).stdout.split()[0]


def ledger(lab, host):
    return json.loads(lab.ssh(host, "cat " + LEDGER).stdout)["volumes"]


def plan_entry(run, name):
    (entry,) = [v for v in plan_of(run)["volumes"] if v["name"] == name]
    return entry


def task_order(run):
    return [task["task"]["name"].split(" : ")[-1] for play in run.data.get("plays", []) for task in play["tasks"]]


def items(run, task, key="volumes"):
    """{volume name: (host, item)} of a task's per-host result lists (snapshot items by their volume)."""
    out = {}
    for host, result in run.task(task).items():
        for item in result.get(key) or []:
            out[item["volume"] if key == "snapshots" else item["name"]] = (host, item)
    return out


def report_rows(run):
    facts = run.task("Build the report")["localhost"]["ansible_facts"]
    return {row["volume"]: row for row in facts["blockstore_report"]["rows"]}


def m1_row(lab):
    out = lab.ssh("stor1", "lvs --reportformat json --units b --nosuffix -o lv_size,lv_tags %s/%s" % (MVG, MLV))
    row = json.loads(out.stdout)["report"][0]["lv"][0]
    return int(row["lv_size"]), sorted(t for t in row["lv_tags"].split(",") if t)


def m1_sha(lab):
    return lab.ssh("stor1", "sha256sum " + MDEV).stdout.split()[0]


def client_device(lab, name):
    """The device client1 uses for a volume: the dm-multipath map over its paths, else its by-path disk."""
    out = lab.ssh("client1", "dev=$(readlink -f $(ls /dev/disk/by-path/*-iscsi-%svolume-%s-lun-1 | head -n 1)) && "
                             "map=$(lsblk -nrpo NAME,TYPE $dev | awk '$2 == \"mpath\" {print $1; exit}') && "
                             "echo ${map:-$dev}" % (PREFIX, name)).stdout.strip()
    assert out.startswith("/dev/"), out
    return out


def read_counter(lab, name, lv, thin):
    """The counter file of ``name``'s LV ``lv``, mounted read-only on its storage node (a thin snapshot is activated
    with -K first, as it skips activation, and deactivated after)."""
    ((host, vg, _lv),) = where(lab, name)
    activate = "lvchange -ay -K %s/%s && " % (vg, lv) if thin else ""
    deactivate = " ; lvchange -an %s/%s" % (vg, lv) if thin and lv.startswith("snap-") else ""
    out = lab.ssh(host, "%smkdir -p /mnt/ember-read && mount -o ro,noload /dev/%s/%s /mnt/ember-read && "
                        "cat /mnt/ember-read/counter; rc=$?; umount /mnt/ember-read%s; exit $rc"
                  % (activate, vg, lv, deactivate)).stdout.strip()
    return int(out)


def counters_on_client(lab):
    return tuple(int(lab.ssh("client1", "cat %s/counter" % MOUNTS[n]).stdout.strip()) for n in ("g1", "g2"))


def image_module(lab, tmp_path, check=False, **args):
    play = module_play(tmp_path, "stor1", "ember.blockstore.image",
                       dict({"name": "golden", "volume": "img01", "vg": "ember-thin", "store": STORE,
                             "compress": True}, **args), name="image module")
    run = run_playbook(lab, playbook=play, check=check, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    return run.task("image module")["stor1"]


# --- the scenario ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def inputs(lab, tmp_path_factory):
    """The hand-made LV on stor1 and the qcow2 on the controller; the LV is removed at the end (after the unmanage
    it is nobody's)."""
    if subprocess.run(["qemu-img", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.fail("qemu-img is needed on the controller (bindep.txt: qemu-utils)")
    for host in STORAGE:
        assert lab.ssh(host, "qemu-img --version", check=False).returncode == 0, (
            "%s has no qemu-img: rebuild the lab image (lab/build-image.sh installs qemu-utils)" % host)
    if STATE_DIR and os.path.exists(os.path.join(STATE_DIR, "shared.json")):
        with open(os.path.join(STATE_DIR, "shared.json")) as handle:
            SHARED.update(json.load(handle))
        yield
        return
    work = tmp_path_factory.mktemp("images")
    if STATE_DIR:
        os.makedirs(STATE_DIR, exist_ok=True)
        work = type(work)(STATE_DIR)
    data = bytearray(VIRTUAL)
    data[0:4 * MiB] = os.urandom(4 * MiB)
    data[40 * MiB:42 * MiB] = os.urandom(2 * MiB)
    (work / "golden.raw").write_bytes(bytes(data))
    qcow = work / "golden.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(work / "golden.raw"), str(qcow)],
                   check=True)
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(qcow), str(work / "back.raw")], check=True)
    SHARED["controller_image"] = str(qcow)
    SHARED["image_raw_sha256"] = hashlib.sha256((work / "back.raw").read_bytes()).hexdigest()
    assert SHARED["image_raw_sha256"] == hashlib.sha256(bytes(data)).hexdigest()
    lab.ssh("stor1", "lvremove -y %s/%s >/dev/null 2>&1; lvcreate -y -L %db -n %s %s >/dev/null && "
                     "dd if=/dev/urandom of=%s bs=1M count=64 oflag=direct status=none && udevadm settle"
            % (MVG, MLV, MSIZE, MLV, MVG, MDEV))
    SHARED["m1_sha256"] = m1_sha(lab)
    yield
    if STATE_DIR:
        return  # a resumed scenario cleans up in its last run (test_phase5 removes the LV)
    mounts = "%s %s" % (MOUNTS["g1"], MOUNTS["g2"])
    lab.ssh("client1", "touch %s; umount %s; rmdir %s" % (STOP, mounts, mounts), check=False)
    lab.ssh("stor1", "lvremove -y %s/%s" % (MVG, MLV), check=False)


def test_manage_refusals_change_nothing(lab, tmp_path):
    # An open LV is in use by the host: the plan names host and VG and changes nothing.
    holder = lab.ssh("stor1", "nohup sleep 600 < %s >/dev/null 2>&1 & echo $!" % MDEV).stdout.strip()
    try:
        before = lab.state()
        run = run_playbook(lab, extra_vars=scenario(1), tmp_path=tmp_path)
        assert run.rc != 0
        assert "manage.lv: LV %s on stor1 in VG %s is in use by the host (open" % (MLV, MVG) in run.messages()
        assert lab.state() == before
    finally:
        lab.ssh("stor1", "kill %s" % holder, check=False)
    assert m1_row(lab)[1] == []
    # A name already taken (the lab's scratch01 replaced by the manage request of that name).
    extra = scenario(1, m1=None, scratch01=None)
    extra["blockstore_volumes"] = [v for v in extra["blockstore_volumes"] if v["name"] != "scratch01"] + [
        m1(name="scratch01")]
    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert run.rc != 0
    assert "a volume named scratch01 already exists" in run.messages()
    assert lab.state() == before


def test_phase1_create_manage_and_image(lab, tmp_path):
    check, real, _again = four_steps(lab, tmp_path, scenario(1))
    predicted = items(check, "Create and extend volumes")
    assert predicted["img01"][1]["action"] == "create" and \
        predicted["img01"][1]["copy_method"] == "qemu-img convert", predicted["img01"]
    done = items(real, "Create and extend volumes")
    placed = {name: (host, vg, lv["pool"]) for name in ("mig01", "mig02", "mig03", "mig04", "g1", "g2", "img01")
              for host, vg, lv in where(lab, name)}
    assert placed == {"mig01": ("stor1", "ember-thick", None), "mig02": ("stor1", "ember-thick", None),
                      "mig03": ("stor2", "ember-thick", None), "mig04": ("stor2", "ember-thin", "thinpool"),
                      "g1": ("stor1", "ember-thin", "thinpool"), "g2": ("stor2", "ember-thick", None),
                      "img01": ("stor1", "ember-thin", "thinpool")}, placed
    # img01 reads back the image's raw content, the rest of the volume is zeros, the staging copy is gone.
    img = done["img01"][1]
    with open(SHARED["controller_image"], "rb") as handle:
        assert img["source"]["sha256"] == hashlib.sha256(handle.read()).hexdigest(), img
    tags = lvs(lab, "stor1")["volume-img01"]["tags"]
    assert "ember.source=image:" + img["source"]["sha256"][:16] in tags and "ember.creating" not in tags, tags
    assert sha(lab, "img01", VIRTUAL) == SHARED["image_raw_sha256"]
    rest = lab.ssh("stor1", "tail -c %d /dev/ember-thin/volume-img01 | tr -d '\\000' | wc -c" % (64 * MiB)).stdout
    assert rest.strip() == "0"
    assert lab.ssh("stor1", "ls -A /var/lib/ember-blockstore/images/").stdout.strip() == ""
    # m1: managed under its own LV name, data intact, tagged, in the ledger and the report.
    assert done["m1"][1]["action"] == "manage"
    assert m1_row(lab) == (MSIZE, sorted(["ember.blockstore", "ember.volume=m1", "ember.type=bulk",
                                          "ember.backend=lvm-thick", "ember.own_name"]))
    assert m1_sha(lab) == SHARED["m1_sha256"]
    assert ledger(lab, "stor1")["m1"] == {"host": "stor1", "pool_id": "stor1@lvm-thick", "status": "available"}
    row = report_rows(real)["m1"]
    assert (row["action"], row["state"], row["pool"], row["size_bytes"]) == ("manage", "available",
                                                                             "stor1@lvm-thick", MSIZE)
    # A group without snapshots adds no freeze.
    assert not [r for r in real.task("Freeze, snapshot, thaw").values() if not r.get("skipped")]
    # Data for the migrations, file systems and the writer for the group.
    for name in ("mig01", "mig02", "mig03", "mig04"):
        ((host, vg, _lv),) = where(lab, name)
        lab.ssh(host, "dd if=/dev/urandom of=/dev/%s/volume-%s bs=1M count=64 oflag=direct conv=fsync status=none"
                % (vg, name))
        SHARED["sha_" + name] = sha(lab, name)
    for name, mount in MOUNTS.items():
        dev = client_device(lab, name)
        lab.ssh("client1", "mkfs.ext4 -q -F %s && mkdir -p %s && mount %s %s && echo 0 > %s/counter && sync"
                % (dev, mount, dev, mount, mount))
    script = ("i=0; while [ ! -e %s ]; do i=$((i+1)); "
              "for m in %s %s; do echo $i > $m/counter.tmp && sync $m/counter.tmp && mv $m/counter.tmp $m/counter; "
              "done; done" % (STOP, MOUNTS["g1"], MOUNTS["g2"]))
    lab.ssh("client1", "rm -f %s; setsid sh -c '%s' </dev/null >/dev/null 2>&1 &" % (STOP, script))
    deadline = time.monotonic() + 120
    while counters_on_client(lab)[1] < 5:
        assert time.monotonic() < deadline, "the writer does not write"
        time.sleep(2)


def test_image_module_writes_the_volume_to_a_compressed_qcow2(lab, tmp_path):
    check = image_module(lab, tmp_path, check=True)
    assert check["changed"] and check["images"][0]["action"] == "create", check
    assert lab.ssh("stor1", "test -e %s/golden.qcow2" % STORE, check=False).returncode != 0
    (item,) = image_module(lab, tmp_path)["images"]
    assert item["action"] == "create" and item["path"] == STORE + "/golden.qcow2", item
    assert sorted(lab.ssh("stor1", "ls -A %s" % STORE).stdout.split()) == [
        "golden.qcow2", "golden.qcow2.json", "golden.qcow2.sha256"]
    record = json.loads(lab.ssh("stor1", "cat %s/golden.qcow2.json" % STORE).stdout)
    size = 128 * MiB
    assert record["volume_sha256"] == sha(lab, "img01") == item["volume_sha256"]
    assert (record["format"], record["compress"], record["size_bytes"]) == ("qcow2", True, size)
    assert lab.ssh("stor1", "cd %s && sha256sum -c golden.qcow2.sha256" % STORE).returncode == 0
    info = json.loads(lab.ssh("stor1", "qemu-img info --output=json %s/golden.qcow2" % STORE).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == size
    assert lab.ssh("stor1", "qemu-img compare -f qcow2 -F raw %s/golden.qcow2 /dev/ember-thin/volume-img01"
                   % STORE).returncode == 0
    assert not [lv for lv in lvs(lab, "stor1") if lv.startswith("imgtmp-")]
    SHARED["file_sha256"] = item["file_sha256"]
    again = image_module(lab, tmp_path)
    assert not again["changed"] and again["images"][0]["action"] == "none", again
    assert not image_module(lab, tmp_path, check=True)["changed"]


def test_refusals_before_phase2_change_nothing(lab, tmp_path):
    before = lab.state()
    # mig01 to az2 without migration_policy: the plan refuses and says why.
    run = run_playbook(lab, extra_vars=scenario(1, mig01={"availability_zone": "az2"}), tmp_path=tmp_path)
    assert run.rc != 0
    assert "mig01 exists on stor1@lvm-thick, which no longer fits" in run.stdout
    assert "availability_zone: the pool is in az1, the inventory asks az2" in run.stdout
    assert "set migration_policy: on-demand to migrate it" in run.stdout
    # An image of 128 MiB (virtual) into a 64 MiB volume, and a checksum that does not match: no LV is made.
    img02 = scenario(2)["blockstore_volumes"][-1]
    assert img02["name"] == "img02"
    small = scenario(1, img02=dict(img02, size="64MiB"))
    run = run_playbook(lab, extra_vars=small, tmp_path=tmp_path)
    assert run.rc != 0 and "has a virtual size of 128 MiB" in run.stdout, run.stdout[-3000:]
    wrong = scenario(1, img02=dict(img02, source=dict(img02["source"], checksum="sha256:" + "0" * 64)))
    run = run_playbook(lab, extra_vars=wrong, tmp_path=tmp_path)
    assert run.rc != 0 and "source.checksum" in run.stdout, run.stdout[-3000:]
    assert lab.state() == before


def test_phase2_migrate_retype_attach_group_snapshot_image_volume(lab, tmp_path):
    check, real, _again = four_steps(lab, tmp_path, scenario(2))
    entries = {name: plan_entry(check, name) for name in ("mig01", "mig03", "mig04")}
    assert (entries["mig01"]["action"], entries["mig01"]["host"], entries["mig01"]["pool_id"]) == \
        ("migrate", "stor2", "stor2@lvm-thick")
    assert (entries["mig03"]["action"], entries["mig03"]["pool_id"]) == ("migrate", "stor2@lvm-thin")
    assert (entries["mig04"]["action"], entries["mig04"]["retype_from"]) == ("retype", "fast")
    # Migration: the data is the same, nothing of the migration is left, the ledgers place the volumes.
    assert [(h, vg, lv["pool"]) for h, vg, lv in where(lab, "mig01")] == [("stor2", "ember-thick", None)]
    ((host, vg, lv),) = where(lab, "mig03")
    assert (host, vg, lv["pool"]) == ("stor2", "ember-thin", "thinpool")
    assert "ember.type=fast" in lv["tags"] and "ember.migrated_from=stor2#40lvm-thick" in lv["tags"], lv["tags"]
    for name in ("mig01", "mig03"):
        assert sha(lab, name) == SHARED["sha_" + name], name
    assert not leftovers(lab)
    order = task_order(real)
    assert order.index("Verify the sources against the copies (SHA-256)") \
        < order.index("Record the verified migrations on their destination in the ledger (compare-and-swap)") \
        < order.index("Make the destination copies the volumes") \
        < order.index("Switch the sources away (temporary targets removed, LVs retagged and renamed migrated-<name>)") \
        < order.index("Delete the switched-away sources (wiped as their backend's volume_clear says)")
    verified = {m["name"]: m["sha256"] for result in real.task("Verify the sources against the copies (SHA-256)")
                .values() for m in result.get("migrations") or []}
    assert verified == {"mig01": SHARED["sha_mig01"], "mig03": SHARED["sha_mig03"]}, verified
    for host in STORAGE:
        assert ledger(lab, host)["mig01"]["pool_id"] == "stor2@lvm-thick"
        assert ledger(lab, host)["mig03"]["pool_id"] == "stor2@lvm-thin"
    for host in STORAGE:
        assert "migrate-" not in lab.ssh(host, "tgtadm --lld iscsi --mode target --op show").stdout
        assert "migrate-" not in lab.ssh(host, "iscsiadm -m node 2>/dev/null; true").stdout
    # QoS-only retype: the same LV, retagged, no copy.
    ((_h, _vg, mig04),) = where(lab, "mig04")
    assert "ember.type=fast-qos" in mig04["tags"] and "ember.type=fast" not in mig04["tags"]
    assert sha(lab, "mig04") == SHARED["sha_mig04"]
    assert "mig04" not in {m["name"] for m in plan_of(check)["migrations"]}
    # img02 from the image file on stor1 reads back img01 byte for byte.
    assert items(real, "Create and extend volumes")["img02"][1]["vg"] == "ember-thick"
    assert sha(lab, "img02") == sha(lab, "img01")
    assert sha(lab, "img02", VIRTUAL) == SHARED["image_raw_sha256"]
    # m1 is exported under its own LV name and client1 reads its data.
    conf = lab.ssh("stor1", "cat /etc/tgt/conf.d/ember-volume-m1.conf").stdout
    assert "backing-store %s" % MDEV in conf
    assert lab.ssh("client1", "sha256sum %s" % client_device(lab, "m1")).stdout.split()[0] == SHARED["m1_sha256"]
    # The group snapshot: check mode froze nothing, the real run froze both file systems, each node took its member's
    # snapshot, client1 thawed within the bound.
    predicted = check.task("Freeze the file systems on the group volumes")["client1"]
    assert predicted["mount_points"] == [MOUNTS["g1"], MOUNTS["g2"]] and predicted["frozen_at"] is None, predicted
    frozen = real.task("Freeze the file systems on the group volumes")["client1"]
    assert frozen["changed"] and frozen["mount_points"] == [MOUNTS["g1"], MOUNTS["g2"]], frozen
    taken = {name: (host, item["action"], item["group"])
             for name, (host, item) in items(real, "Take the group snapshots", "snapshots").items()}
    assert taken == {"g1": ("stor1", "create", "grp"), "g2": ("stor2", "create", "grp")}, taken
    thawed = real.task("Thaw the file systems on the group volumes")["client1"]
    assert thawed["changed"] and not thawed["expired"] and 0 < thawed["frozen_seconds"] < FREEZE_TIMEOUT, thawed
    lab.timings["group_snapshot_frozen_seconds"] = thawed["frozen_seconds"]
    report = "\n".join(str(m) for m in real.task("Report")["localhost"]["msg"])
    assert "group grp snapshot s1: taken on 2 volume(s)" in report, report
    assert "consumer client1: %s, %s frozen for" % (MOUNTS["g1"], MOUNTS["g2"]) in report, report
    before = counters_on_client(lab)
    time.sleep(5)
    assert counters_on_client(lab)[1] > before[1], "the writer is still frozen"
    assert lab.ssh("client1", "ls /run/ember-blockstore/freeze/ 2>/dev/null | wc -l").stdout.strip() == "0"
    for host, name in (("stor1", "g1"), ("stor2", "g2")):
        assert "ember.group=grp" in lab.managed_snapshots(host)[(name, "s1")]["tags"]
    g1 = read_counter(lab, "g1", "snap-g1+s1", thin=True)
    g2 = read_counter(lab, "g2", "snap-g2+s1", thin=False)
    assert g1 == g2 > 0, (g1, g2)
    SHARED["counter"] = g1


def test_phase3_destination_killed_mid_copy_then_the_next_run_finishes(lab, tmp_path):
    # The writer stops and the file systems go: the phase detaches g1, g2 and m1.
    lab.ssh("client1", "touch %s" % STOP)
    time.sleep(3)
    stopped = counters_on_client(lab)
    assert stopped[0] == stopped[1] > SHARED["counter"], (stopped, SHARED)
    lab.ssh("client1", "umount %s && umount %s" % (MOUNTS["g1"], MOUNTS["g2"]))
    extra = scenario(3)
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
    # The source is still the volume, with its data; the ledger on stor1 still places it there.
    assert [(h, vg) for h, vg, _lv in where(lab, "mig02", hosts=("stor1",))] == [("stor1", "ember-thick")]
    assert lab.ssh("stor1", "dd if=/dev/ember-thick/volume-mig02 bs=4M iflag=direct status=none | sha256sum"
                   ).stdout.split()[0] == SHARED["sha_mig02"]
    assert ledger(lab, "stor1")["mig02"]["host"] == "stor1"
    vm("boot", "stor2")
    # The next run resumes on the copy the killed run made, then finishes.
    check, _real, _again = four_steps(lab, tmp_path, extra)
    (mig,) = [m for m in plan_of(check)["migrations"] if m["name"] == "mig02"]
    assert mig["action"] == "migrate" and mig["destination"]["host"] == "stor2", mig
    assert [(h, vg) for h, vg, _lv in where(lab, "mig02")] == [("stor2", "ember-thick")]
    assert sha(lab, "mig02") == SHARED["sha_mig02"]
    assert not leftovers(lab)
    assert lab.ssh("stor1", "test -e /etc/tgt/conf.d/ember-volume-m1.conf", check=False).returncode != 0


def test_phase4_group_revert_and_unmanage(lab, tmp_path):
    _check, real, _again = four_steps(lab, tmp_path, scenario(4))
    reverted = {name: item["action"] for name, (_h, item) in
                items(real, "Take, delete and revert to snapshots", "snapshots").items()}
    assert reverted == {"g1": "revert", "g2": "revert"}, reverted
    assert not [r for r in real.task("Freeze, snapshot, thaw").values() if not r.get("skipped")]
    assert read_counter(lab, "g1", "volume-g1", thin=True) == SHARED["counter"]
    assert read_counter(lab, "g2", "volume-g2", thin=False) == SHARED["counter"]
    for host, name in (("stor1", "g1"), ("stor2", "g2")):
        snap = lab.managed_snapshots(host)[(name, "s1")]
        assert "ember.group=grp" in snap["tags"] and "ember.reverted" in snap["tags"], snap
    # m1 unmanaged: tags gone, LV and data intact, out of the ledger, reported unmanaged.
    assert items(real, "Delete volumes (wiped as the backend's volume_clear says)")["m1"][1]["action"] == "unmanage"
    assert m1_row(lab) == (MSIZE, [])
    assert m1_sha(lab) == SHARED["m1_sha256"]
    assert "m1" not in ledger(lab, "stor1")
    assert report_rows(real)["m1"]["state"] == "unmanaged"
    # Taken out of the inventory the LV is nobody's: not reported, nothing changes.
    plain = run_playbook(lab, extra_vars=scenario(4, m1=None), tmp_path=tmp_path)
    assert plain.rc == 0 and plain.changed == 0, sorted(plain.changed_tasks())
    assert "m1" not in report_rows(plain)


def test_phase5_everything_of_the_scenario_is_deleted(lab, tmp_path):
    result = image_module(lab, tmp_path, state="absent")
    assert result["images"][0]["action"] == "delete", result
    assert lab.ssh("stor1", "ls -A %s" % STORE).stdout.strip() == ""
    run = run_playbook(lab, extra_vars=scenario(5), tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    names = {"mig01", "mig02", "mig03", "mig04", "img01", "img02", "g1", "g2"}
    for host in STORAGE:
        assert not names & set(lab.managed_lvs(host)), host
        assert not {k for k in lab.managed_snapshots(host) if k[0] in names}, host
    assert not leftovers(lab)
    if STATE_DIR:
        lab.ssh("stor1", "lvremove -y %s/%s" % (MVG, MLV))
