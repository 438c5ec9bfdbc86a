"""NFS volumes on the lab (issue 14; make test-full, after test_backups on the same lab).

client1 serves NFS (playbooks/nfs_server.yml with inventories/lab-nfs: /srv/ember-nfs to stor1 and client1 only,
root squashed) and stor1 gets the nfs backend nfs1 on that share (inventories/lab-nfs, layered on inventories/lab).
One volume, n1, goes through create and attach to client1 (a loop device, /dev/ember/n1), a write, a snapshot and
an extend while attached, a clone and a volume from its snapshot, detach and delete, each converge checked as the
other scenarios are (--check, real, again: changed=0, --check again: changed=0) and the data by sha256 on client1's
device and on the server's files. The same runs place an LVM-typed and an NFS-typed volume on their backends. While
n1 is attached and holds data, the backup module backs it up with force (from a temporary copy on the share) into a
store on stor1 and restores it into a new NFS volume, sha256 equal. Then
a small share (a 32 MiB tmpfs exported by client1) that fills up and a share whose server does not answer fail with
a clear error and leave no file behind, and stor2, which is not in the export's client list, cannot mount the share.
"""

import copy
import hashlib
import os

import pytest
import yaml
from lab_helpers import ROOT, four_steps, module_play, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.full]

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
with open(os.path.join(ROOT, "inventories", "lab-nfs", "host_vars", "stor1.yml")) as _handle:
    _NFS_BACKENDS = yaml.safe_load(_handle)["blockstore_backends"]
with open(os.path.join(ROOT, "inventories", "lab-nfs", "group_vars", "all.yml")) as _handle:
    TYPES = yaml.safe_load(_handle)["blockstore_volume_types"]
NFS_INVENTORY = os.path.join(ROOT, "inventories", "lab-nfs")
MiB = 2**20
SHARE, EXPORT = "198.18.0.21:/srv/ember-nfs", "/srv/ember-nfs"
SMALL_SHARE, SMALL_EXPORT = "198.18.0.21:/srv/ember-nfs-small", "/srv/ember-nfs-small"
GONE_SHARE = "198.18.0.99:/srv/ember-gone"  # no host has this address: the mount cannot finish
BASE = "/var/lib/ember-blockstore/mnt"
BACKUP_STORE = "/var/tmp/ember-nfs-bk-store"
SHARED = {}


def mount_point(share):
    """Where stor1 and client1 mount a share (drivers.nfs.mount_point)."""
    return "%s/%s" % (BASE, hashlib.sha256(share.encode()).hexdigest()[:32])


def inventory(*extra):
    """The lab's volumes (as converged by the earlier scenarios) plus ``extra``, the types with "files"."""
    return {"blockstore_volumes": copy.deepcopy(_LAB_VARS["blockstore_volumes"]) + list(extra),
            "blockstore_volume_types": TYPES}


def n1(**changes):
    return dict({"name": "n1", "size": "64MiB", "volume_type": "files", "attachments": [{"host": "client1"}]},
                **changes)


def layer(tmp_path, *backends):
    """One more inventory source after inventories/lab-nfs: stor1 with nfs1's backends plus ``backends``."""
    path = tmp_path / ("layer-%d" % len(os.listdir(tmp_path)))
    (path / "host_vars").mkdir(parents=True)
    (path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"blockstore_storage": {"hosts": {
        "stor1": {}}}}}}))
    (path / "host_vars" / "stor1.yml").write_text(yaml.safe_dump({"blockstore_backends": _NFS_BACKENDS
                                                                  + list(backends)}))
    return [NFS_INVENTORY, str(path)]


def sha(lab, host, path, mib=None):
    count = "bs=1M count=%d" % mib if mib else "bs=4M"
    return lab.ssh(host, "dd if=%s %s iflag=direct status=none | sha256sum" % (path, count)).stdout.split()[0]


def files(lab, export=EXPORT):
    """The names on a share, as the server (client1) sees its exported directory."""
    return sorted(lab.ssh("client1", "ls -a %s" % export).stdout.split())


def test_the_share_is_exported_to_its_client_list_only(lab, tmp_path):
    # The small share for the full-share test: a 32 MiB tmpfs (fsid: an NFS export of a filesystem without a
    # device needs one), mounted before the export is written.
    lab.ssh("client1", "mkdir -p %s && (findmnt %s >/dev/null || mount -t tmpfs -o size=32m,mode=0770,uid=65534,"
                       "gid=65534 ember-small %s)" % (SMALL_EXPORT, SMALL_EXPORT, SMALL_EXPORT))
    exports = [{"path": EXPORT, "clients": ["198.18.0.11", "198.18.0.21"]},
               {"path": SMALL_EXPORT, "clients": ["198.18.0.11", "198.18.0.21"], "options": ["fsid=4711"]}]
    run = run_playbook(lab, playbook="playbooks/nfs_server.yml", extra_vars={"blockstore_nfs_exports": exports},
                       tmp_path=tmp_path, inventories=[NFS_INVENTORY])
    assert run.rc == 0, run.stdout[-3000:]
    # exportfs -s: a line per exported path and client (the backup store's export of test_backups may be there too).
    shown = [line.split()[1] for line in lab.ssh("client1", "exportfs -s").stdout.splitlines()
             if len(line.split()) == 2 and line.split()[0] == EXPORT]
    assert sorted(client.split("(")[0] for client in shown) == ["198.18.0.11", "198.18.0.21"], shown
    assert all("root_squash" in client and "no_root_squash" not in client for client in shown), shown
    # stor2 is not in the client list: the server refuses its mount.
    refused = lab.ssh("stor2", "mkdir -p /mnt/ember-probe && timeout 60 mount -t nfs -o vers=4.2 %s /mnt/ember-probe"
                      % SHARE, check=False)
    assert refused.returncode != 0, refused.stdout
    assert "denied" in (refused.stderr + refused.stdout).lower(), refused.stderr
    assert lab.ssh("stor2", "findmnt /mnt/ember-probe", check=False).returncode != 0
    lab.ssh("stor2", "rmdir /mnt/ember-probe", check=False)


def test_an_nfs_volume_is_created_and_attached_and_types_choose_the_backend(lab, tmp_path):
    extra = inventory(n1(), {"name": "mix-nfs", "size": "16MiB", "volume_type": "files"},
                      {"name": "mix-lvm", "size": "16MiB", "volume_type": "bulk"})
    four_steps(lab, tmp_path, extra, inventories=[NFS_INVENTORY])
    # stor1 mounted the share; the volumes are files on it with their sidecars (the server's view).
    assert lab.ssh("stor1", "findmnt -n -o FSTYPE %s" % mount_point(SHARE)).stdout.strip().startswith("nfs")
    on_share = files(lab)
    for name in ("n1", "mix-nfs"):
        assert "volume-%s" % name in on_share and "volume-%s.info" % name in on_share, on_share
    assert "volume-mix-lvm" not in on_share
    lvs = {**lab.managed_lvs("stor1"), **lab.managed_lvs("stor2")}
    assert "mix-lvm" in lvs and lvs["mix-lvm"][0] == "ember-thick", lvs
    assert "n1" not in lvs and "mix-nfs" not in lvs
    # client1: the share mounted at the same path, the file on a loop device, /dev/ember/n1 of the volume's size.
    assert lab.ssh("client1", "findmnt -n -o FSTYPE %s" % mount_point(SHARE)).stdout.strip().startswith("nfs")
    loop = lab.ssh("client1", "readlink -f /dev/ember/n1").stdout.strip()
    assert loop.startswith("/dev/loop"), loop
    assert "%s/volume-n1" % mount_point(SHARE) in lab.ssh("client1", "losetup -j %s/volume-n1"
                                                          % mount_point(SHARE)).stdout
    assert int(lab.ssh("client1", "blockdev --getsize64 /dev/ember/n1").stdout) == 64 * MiB
    # Written through the loop device: the file on the server holds the same bytes.
    lab.ssh("client1", "dd if=/dev/urandom of=/dev/ember/n1 bs=1M count=8 seek=4 oflag=direct conv=notrunc "
                       "status=none && sync")
    SHARED["n1"] = sha(lab, "client1", "/dev/ember/n1")
    assert sha(lab, "client1", "%s/volume-n1" % EXPORT) == SHARED["n1"]


def test_a_snapshot_and_an_extend_while_attached(lab, tmp_path):
    # A snapshot of an attached NFS volume needs force (crash-consistent); the extend reaches the consumer's loop
    # device (losetup --set-capacity) in the same run.
    extra = inventory(n1(size="96MiB", snapshots=[{"name": "s1", "force": True}]),
                      {"name": "mix-nfs", "size": "16MiB", "volume_type": "files"},
                      {"name": "mix-lvm", "size": "16MiB", "volume_type": "bulk"})
    four_steps(lab, tmp_path, extra, inventories=[NFS_INVENTORY])
    assert "volume-n1.snap-s1" in files(lab)
    assert int(lab.ssh("client1", "blockdev --getsize64 /dev/ember/n1").stdout) == 96 * MiB
    assert sha(lab, "client1", "/dev/ember/n1", mib=64) == SHARED["n1"]
    assert sha(lab, "client1", "%s/volume-n1.snap-s1" % EXPORT, mib=64) == SHARED["n1"]


def stor1_module(lab, tmp_path, module, args, name):
    """One run of ``module`` on stor1 (a playbook of one task); its result."""
    run = run_playbook(lab, playbook=module_play(tmp_path, "stor1", module, args, name=name), tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    return run.task(name)["stor1"]


def test_a_backup_of_the_attached_volume_restores_into_a_new_nfs_volume(lab, tmp_path):
    # n1 is attached to client1 and holds data: its backup needs force, and reads a temporary copy on the share.
    want = sha(lab, "client1", "/dev/ember/n1")
    common = {"backends": _NFS_BACKENDS, "vg": SHARE, "store": BACKUP_STORE, "volume": "n1", "name": "bk1"}
    done = stor1_module(lab, tmp_path, "ember.blockstore.backup",
                        dict(common, attached=True, force=True, whole_sha256=True), "nfs-backup")
    (item,) = done["backups"]
    assert (item["action"], item["sha256"], item["snapshot"]) == ("create", want, SHARE + "/.bktmp-n1+bk1"), item
    assert not [f for f in files(lab) if f.startswith(".bktmp-")], files(lab)
    # Restored into a new sparse NFS volume of the same size (no force: it holds no block yet).
    volume = {"backends": _NFS_BACKENDS, "vg": SHARE, "name": "bk1r"}
    stor1_module(lab, tmp_path, "ember.blockstore.volume", dict(volume, size="96MiB"), "nfs-restore-target")
    done = stor1_module(lab, tmp_path, "ember.blockstore.backup",
                        dict(common, state="restored", restore_to="bk1r"), "nfs-restore")
    assert done["backups"][0]["sha256"] == want, done["backups"][0]
    assert sha(lab, "client1", "%s/volume-bk1r" % EXPORT) == want
    stor1_module(lab, tmp_path, "ember.blockstore.volume", dict(volume, state="absent"), "nfs-restore-cleanup")
    lab.ssh("stor1", "rm -rf %s" % BACKUP_STORE)


def test_a_clone_and_a_volume_from_the_snapshot_then_detach(lab, tmp_path):
    extra = inventory(n1(size="96MiB", attachments=[], snapshots=[{"name": "s1", "force": True}]),
                      {"name": "c1", "volume_type": "files", "source": {"volume": "n1"}},
                      {"name": "r1", "volume_type": "files", "source": {"volume": "n1", "snapshot": "s1"}},
                      {"name": "mix-nfs", "state": "absent"}, {"name": "mix-lvm", "state": "absent"})
    four_steps(lab, tmp_path, extra, inventories=[NFS_INVENTORY])
    on_share = files(lab)
    assert "volume-c1" in on_share and "volume-r1" in on_share and "volume-mix-nfs" not in on_share, on_share
    assert not [f for f in on_share if f.endswith(".tmp")], on_share
    for name in ("c1", "r1"):
        assert sha(lab, "client1", "%s/volume-%s" % (EXPORT, name), mib=64) == SHARED["n1"], name
    # Detached: no link, no loop device on the file, and the share is unmounted on client1 (nothing else of it).
    assert lab.ssh("client1", "test -e /dev/ember/n1", check=False).returncode != 0
    assert lab.ssh("client1", "losetup -a").stdout.count("volume-n1") == 0
    assert lab.ssh("client1", "findmnt %s" % mount_point(SHARE), check=False).returncode != 0
    assert "mix-lvm" not in {**lab.managed_lvs("stor1"), **lab.managed_lvs("stor2")}


def test_nfs_volumes_are_deleted_with_their_snapshots(lab, tmp_path):
    extra = inventory({"name": "n1", "state": "absent", "cascade": True}, {"name": "c1", "state": "absent"},
                      {"name": "r1", "state": "absent"})
    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path, inventories=[NFS_INVENTORY])
    assert run.rc == 0, run.stdout[-3000:]
    assert not [f for f in files(lab) if f.startswith("volume-") or f.startswith(".volume-")], files(lab)
    again = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path, inventories=[NFS_INVENTORY])
    assert again.rc == 0 and again.changed == 0, sorted(again.changed_tasks())


def test_a_full_share_fails_naming_it_and_leaves_no_partial_file(lab, tmp_path):
    small = {"name": "nfs-small", "driver": "nfs", "shares": [SMALL_SHARE], "availability_zone": "az1"}
    types = dict(TYPES, **{"files-small": {"extra_specs": {"volume_backend_name": "nfs-small"}}})
    inventories = layer(tmp_path, small)
    first = dict(inventory({"name": "small-a", "size": "24MiB", "volume_type": "files-small"}),
                 blockstore_volume_types=types)
    run = run_playbook(lab, extra_vars=first, tmp_path=tmp_path, inventories=inventories)
    assert run.rc == 0, run.stdout[-3000:]
    # 20 MiB of data in small-a (written on the server): a copy of it does not fit in the 12 MiB left.
    lab.ssh("client1", "dd if=/dev/urandom of=%s/volume-small-a bs=1M count=20 conv=notrunc status=none && sync"
            % SMALL_EXPORT)
    full = dict(inventory({"name": "small-a", "size": "24MiB", "volume_type": "files-small"},
                          {"name": "small-b", "volume_type": "files-small", "source": {"volume": "small-a"}}),
                blockstore_volume_types=types)
    failed = run_playbook(lab, extra_vars=full, tmp_path=tmp_path, inventories=inventories)
    assert failed.rc != 0
    messages = failed.messages()
    assert SMALL_SHARE in messages and "free" in messages, messages[-3000:]
    left = files(lab, SMALL_EXPORT)
    assert not [f for f in left if "small-b" in f], left
    # The volume that was there is untouched and can go.
    gone = dict(inventory({"name": "small-a", "state": "absent"}), blockstore_volume_types=types)
    run = run_playbook(lab, extra_vars=gone, tmp_path=tmp_path, inventories=inventories)
    assert run.rc == 0, run.stdout[-3000:]
    assert not [f for f in files(lab, SMALL_EXPORT) if "small-" in f]


def test_a_share_that_does_not_answer_stops_the_run_naming_it(lab, tmp_path):
    before = lab.state()
    gone = {"name": "nfs-gone", "driver": "nfs", "shares": [GONE_SHARE], "availability_zone": "az1"}
    run = run_playbook(lab, extra_vars=inventory({"name": "g1", "size": "8MiB", "volume_type": "files"}),
                       tmp_path=tmp_path, inventories=layer(tmp_path, gone))
    assert run.rc != 0
    text = run.stdout + run.messages()
    # mount.nfs retries a server that does not answer; the bound (timeout 60) ends it, naming the share.
    assert GONE_SHARE in text and ("did not finish within 60 s" in text or "mount at" in text), text[-3000:]
    assert "stor1" in text and "nothing was changed" in text, text[-3000:]
    # Nothing was created anywhere: not g1 on the share of nfs1, nothing on the LVM nodes.
    assert "volume-g1" not in files(lab)
    assert lab.state() == before
    lab.ssh("stor1", "rmdir %s" % mount_point(GONE_SHARE), check=False)
