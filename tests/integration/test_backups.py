"""Backups on the lab (make test-full, after test_attachments on the same lab).

client1 exports the backup store over NFS (the nfs_export role, group blockstore_backup_hosts from an extra
inventory source), both storage nodes mount it (backup_store) and playbooks/backup.yml backs up the volumes whose
inventory entry has a backup policy. One volume of each kind: archive01 (thin: incremental through thin_delta) and
scratch01 (thick: every chunk read, only new chunks written). Every step asserts the hosts: manifests and chunks in
the store, sha256 of restored devices against the volume's sha256 at the backup's time, what verify names.
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
MiB = 2**20
STORE = "/var/lib/ember-blockstore/backup-store"
EXPORT = "/srv/ember-backups"
SHARED = {}


def volumes(**backup):
    """The lab's volumes, archive01 and scratch01 with a manual backup policy (``backup`` overrides), and two
    thin restore targets."""
    vols = copy.deepcopy(_LAB_VARS["blockstore_volumes"])
    for vol in vols:
        if vol["name"] in ("archive01", "scratch01"):
            vol["backup"] = dict({"policy": "manual"}, **backup.get(vol["name"], {}))
    vols += [{"name": "restore01", "size": "2GiB", "volume_type": "fast"},
             {"name": "restore02", "size": "2GiB", "volume_type": "fast"},
             {"name": "restore03", "size": "512MiB", "volume_type": "bulk"}]
    return {"blockstore_volumes": vols}


@pytest.fixture(scope="module")
def backup_hosts(tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "backup-hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"blockstore_backup_hosts": {"hosts": {"client1": {}}}}}}))
    return [str(path)]


def where(lab, name):
    """(host, vg, device) of a volume."""
    for host in ("stor1", "stor2"):
        found = lab.managed_lvs(host).get(name)
        if found:
            return host, found[0], "/dev/%s/volume-%s" % (found[0], name)
    raise AssertionError("volume %s is on no storage node" % name)


def sha(lab, name):
    host, _vg, dev = where(lab, name)
    return lab.ssh(host, "dd if=%s bs=4M iflag=direct status=none | sha256sum" % dev).stdout.split()[0]


def write(lab, name, offset_mib, mib):
    host, _vg, dev = where(lab, name)
    lab.ssh(host, "dd if=/dev/urandom of=%s bs=1M seek=%d count=%d oflag=direct conv=notrunc status=none"
            % (dev, offset_mib, mib))


def backup(lab, tmp_path, backup_hosts, name, **policy):
    run = run_playbook(lab, playbook="playbooks/backup.yml", extra_vars=dict(volumes(**policy),
                                                                             blockstore_backup_name=name),
                       tmp_path=tmp_path, inventories=backup_hosts)
    assert run.rc == 0, run.stdout[-3000:]
    found = {}
    for result in run.task("Back up").values():
        for item in result.get("backups") or []:
            found[item["volume"]] = item
    return run, found


def module(lab, tmp_path, host, args, check=False):
    """One backup module run on ``host`` (a playbook of one task)."""
    playbook = tmp_path / ("backup-module-%d.yml" % len(os.listdir(tmp_path)))
    playbook.write_text(yaml.safe_dump([{"hosts": host, "gather_facts": False, "tasks": [
        {"name": "backup module", "ember.blockstore.backup": args, "ignore_errors": True}]}]))
    run = run_playbook(lab, playbook=str(playbook), check=check, tmp_path=tmp_path)
    return run.task("backup module")[host]


def test_converge_makes_the_restore_targets(lab, tmp_path):
    run = run_playbook(lab, extra_vars=volumes(), tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    for name in ("restore01", "restore02", "restore03"):
        assert where(lab, name)


def test_full_backup_then_the_same_again_writes_no_chunk(lab, tmp_path, backup_hosts):
    write(lab, "archive01", 100, 32)
    write(lab, "scratch01", 8, 16)
    SHARED["a1"], SHARED["s1"] = sha(lab, "archive01"), sha(lab, "scratch01")
    run, found = backup(lab, tmp_path, backup_hosts, "b1")
    assert set(found) == {"archive01", "scratch01"}, found
    for name in ("archive01", "scratch01"):
        assert found[name]["name"] == "b1" and not found[name]["incremental"], found[name]
        assert found[name]["stats"]["bytes_written"] > 0
    # Only what was written is data; the rest of the thin volume reads as zeros and is stored as nothing (no
    # chunk file, null in the manifest).
    stats = found["archive01"]["stats"]
    assert 32 * MiB <= stats["bytes_written"] <= stats["chunks_new"] * (4 * MiB + 64), stats  # + chunk headers
    assert stats["chunks_zero"] >= 0.9 * 512, stats
    # The store is on client1's export; the storage nodes see it through their NFS mount.
    listing = lab.ssh("client1", "ls %s/backups/archive01 %s/backups/scratch01" % (EXPORT, EXPORT)).stdout
    assert "b1.json" in listing
    mounted = lab.ssh(where(lab, "archive01")[0], "findmnt -n -o SOURCE,FSTYPE %s" % STORE).stdout.split()
    assert mounted[0].endswith(":" + EXPORT) and mounted[1].startswith("nfs"), mounted
    assert "root_squash" in lab.ssh("client1", "exportfs -v").stdout
    # The same name again: nothing to do.
    again, found_again = backup(lab, tmp_path, backup_hosts, "b1")
    assert again.task("Back up")  # the module ran
    assert all(not item["changed"] for item in found_again.values()), found_again
    # A second backup of unchanged volumes writes no chunk (thin: nothing read since the kept base either).
    _run, found2 = backup(lab, tmp_path, backup_hosts, "b1-again", archive01={"incremental": True},
                          scratch01={"incremental": True})
    for name in ("archive01", "scratch01"):
        assert found2[name]["stats"]["bytes_written"] == 0, found2[name]["stats"]
        assert found2[name]["stats"]["chunks_new"] == 0, found2[name]["stats"]
    assert found2["archive01"]["stats"]["bytes_read"] == 0, found2["archive01"]["stats"]


def test_incremental_after_a_one_percent_change_reads_and_writes_little(lab, tmp_path, backup_hosts):
    size = 2 * 1024 * MiB
    write(lab, "archive01", 1024, 20)  # about 1 % of the 2 GiB volume
    SHARED["a2"] = sha(lab, "archive01")
    _run, found = backup(lab, tmp_path, backup_hosts, "b2")
    stats = found["archive01"]["stats"]
    lab.timings["incremental_read_ratio"] = round(stats["bytes_read"] / size, 4)
    lab.timings["incremental_written_ratio"] = round(stats["bytes_written"] / size, 4)
    assert found["archive01"]["incremental"] and found["archive01"]["parent"] == "b1-again", found["archive01"]
    assert stats["bytes_read"] <= 0.05 * size and stats["bytes_written"] <= 0.015 * size, stats


def test_each_backup_restores_to_the_volume_as_it_was(lab, tmp_path):
    for backup_name, target, expected in (("b1", "restore01", "a1"), ("b2", "restore02", "a2")):
        host, vg, _dev = where(lab, target)
        result = module(lab, tmp_path, host, {"store": STORE, "volume": "archive01", "name": backup_name,
                                              "state": "restored", "restore_to": target, "vg": vg, "force": True})
        assert not result.get("failed"), result
        assert sha(lab, target) == SHARED[expected], (backup_name, target)
    host, vg, _dev = where(lab, "restore03")
    result = module(lab, tmp_path, host, {"store": STORE, "volume": "scratch01", "name": "b1", "state": "restored",
                                          "restore_to": "restore03", "vg": vg, "force": True})
    assert not result.get("failed"), result
    assert sha(lab, "restore03") == SHARED["s1"]


def test_a_corrupt_chunk_is_named_by_verify_and_refused_by_restore(lab, tmp_path):
    host, vg, _dev = where(lab, "archive01")
    ok = module(lab, tmp_path, host, {"store": STORE, "volume": "archive01", "state": "verified"})
    assert not ok.get("failed"), ok
    manifest = json.loads(lab.ssh("client1", "cat %s/backups/archive01/b2.json" % EXPORT).stdout)
    chunk = next(c for c in reversed(manifest["chunks"]) if c)  # the chunk of the 1 % change
    path = "%s/chunks/%s/%s" % (EXPORT, chunk[:2], chunk)
    lab.ssh("client1", "cp -p %s /root/chunk.saved" % path)  # a 4 MiB chunk: too big for an ssh argument
    lab.ssh("client1", "printf 'XXXX' | dd of=%s bs=1 seek=20 conv=notrunc status=none" % path)
    try:
        bad = module(lab, tmp_path, host, {"store": STORE, "volume": "archive01", "name": "b2", "state": "verified"})
        assert bad.get("failed") and chunk in bad["msg"], bad
        host2, vg2, _dev = where(lab, "restore02")
        before = sha(lab, "restore02")
        refused = module(lab, tmp_path, host2, {"store": STORE, "volume": "archive01", "name": "b2",
                                                "state": "restored", "restore_to": "restore02", "vg": vg2,
                                                "force": True})
        assert refused.get("failed") and chunk in refused["msg"], refused
    finally:
        lab.ssh("client1", "cp -p /root/chunk.saved %s && rm -f /root/chunk.saved" % path)
    ok = module(lab, tmp_path, host, {"store": STORE, "volume": "archive01", "name": "b2", "state": "verified"})
    assert not ok.get("failed"), ok
    assert before  # restore02 was read before the refused restore


def test_prune_keeps_exactly_the_retained_set_and_each_still_restores(lab, tmp_path, backup_hosts):
    # keep_last 2 of b1, b1-again, b2 and the new b3: b2 and b3 stay.
    run = run_playbook(lab, playbook="playbooks/backup.yml",
                       extra_vars=dict(volumes(archive01={"keep_last": 2}), blockstore_backup_name="b3"),
                       tmp_path=tmp_path, inventories=backup_hosts)
    assert run.rc == 0, run.stdout[-3000:]
    kept = sorted(lab.ssh("client1", "ls %s/backups/archive01" % EXPORT).stdout.split())
    assert kept == ["b2.json", "b3.json"], kept
    host, vg, _dev = where(lab, "restore01")
    for name in ("b2", "b3"):
        result = module(lab, tmp_path, host, {"store": STORE, "volume": "archive01", "name": name,
                                              "state": "restored", "restore_to": "restore01", "vg": vg,
                                              "force": True})
        assert not result.get("failed"), result
        assert sha(lab, "restore01") == SHARED["a2"], name
    verified = module(lab, tmp_path, where(lab, "archive01")[0], {"store": STORE, "volume": "archive01",
                                                                  "state": "verified"})
    assert not verified.get("failed"), verified


def test_a_full_store_fails_cleanly(lab, tmp_path):
    # A 64 MiB store on archive01's node: its first backup (52 MiB of data) fits; after 20 MiB more of new data
    # the next one does not. It fails naming the store, leaves no manifest, and the first still verifies.
    host, vg, _dev = where(lab, "archive01")
    small = "/mnt/small-store"
    lab.ssh(host, "mkdir -p %s && mount -t tmpfs -o size=64m tmpfs %s" % (small, small))
    try:
        first = module(lab, tmp_path, host, {"store": small, "volume": "archive01", "name": "fits", "vg": vg})
        assert not first.get("failed"), first
        write(lab, "archive01", 1536, 20)
        full = module(lab, tmp_path, host, {"store": small, "volume": "archive01", "name": "big", "vg": vg})
        assert full.get("failed") and small in full["msg"], full
        assert lab.ssh(host, "ls %s/backups/archive01" % small).stdout.split() == ["fits.json"]
        still = module(lab, tmp_path, host, {"store": small, "volume": "archive01", "name": "fits",
                                             "state": "verified"})
        assert not still.get("failed"), still
        # Nothing of the failed backup is left on the node either: no temporary snapshot, no backing-up status.
        lvs = lab.ssh(host, "lvs --noheadings -o lv_name,lv_tags %s" % vg).stdout
        assert "bktmp-" not in lvs and "backing-up" not in lvs, lvs
    finally:
        lab.ssh(host, "umount %s; rmdir %s" % (small, small), check=False)
