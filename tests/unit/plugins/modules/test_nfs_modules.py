# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The volume and snapshot modules on an NFS share that is a real temporary directory (issue 14): each change runs
as the integration tests run a scenario, ``--check``, then for real, then again (``changed=0``), then ``--check``
again (``changed=0``), and the files on the share are checked after each real run. The module's commands really
run (truncate, fallocate, cp, stat), except the mount, which the test answers by adding the share to the mount
table the driver reads."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs
from ansible_collections.ember.blockstore.plugins.modules import (
    backend_info,
    snapshot,
    snapshot_info,
    volume,
    volume_info,
)
from modrun import run_module

SHARE = "198.18.0.5:/srv/ember"
MIB = 1024 * 1024


class Host:
    """Runs the commands for real, except ``mount`` (the share is a directory: the mount table gets its line)."""

    takes_stdin = True

    def __init__(self, mountinfo):
        self.mountinfo = mountinfo
        self.commands = []

    def __call__(self, args, data=None):
        self.commands.append(args)
        if "mount" in args and args[0] == "timeout":
            with open(self.mountinfo, "a") as handle:
                handle.write("701 27 0:64 / %s rw,relatime - nfs4 %s rw,vers=4.2\n" % (args[-1], args[-2]))
            return 0, "", ""
        proc = subprocess.run(args, capture_output=True, text=True, input=data, check=False)
        return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture()
def host(tmp_path, monkeypatch):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("")
    monkeypatch.setattr(nfs, "MOUNTINFO", str(mountinfo))
    return Host(str(mountinfo))


@pytest.fixture()
def backends(tmp_path):
    return [{"name": "nfs1", "driver": "nfs", "shares": [SHARE], "mount_point_base": str(tmp_path / "mnt")}]


def share_dir(backends):
    return nfs.mount_point(SHARE, backends[0]["mount_point_base"])


def four_steps(monkeypatch, capsys, host, module, args, changed=True):
    """check, real, again, check again: the first two report ``changed``, the last two nothing; returns the real
    run's result."""
    results = []
    for check_mode, want in ((True, changed), (False, changed), (False, False), (True, False)):
        run = run_module(monkeypatch, capsys, module, args, answer=host, check_mode=check_mode)
        assert not run.failed, run.result
        assert run.result["changed"] == want, (check_mode, run.result)
        results.append(run.result)
    return results[1]


def sidecar(backends, name):
    with open(os.path.join(share_dir(backends), "volume-%s.info" % name)) as handle:
        return json.load(handle)


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def write(path, data, offset=0):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def test_a_volume_lives_through_create_extend_snapshot_revert_and_delete(
        monkeypatch, capsys, host, backends, tmp_path):
    vg = {"vg": SHARE, "backend": "nfs1", "backends": backends}
    # create: the share is mounted by the first real run (check mode predicts it), the file is sparse
    result = four_steps(monkeypatch, capsys, host, volume, dict(vg, name="db01", size="8MiB", volume_type="fast"))
    assert result["mounts"] == [{"share": SHARE, "backend": "nfs1", "mount_point": share_dir(backends),
                                 "action": "mount", "changed": True}]
    (item,) = result["volumes"]
    assert (item["action"], item["size_bytes"], item["allocation"]) == ("create", 8 * MIB, "sparse")
    path = os.path.join(share_dir(backends), "volume-db01")
    assert os.path.getsize(path) == 8 * MIB and os.stat(path).st_blocks == 0
    assert sidecar(backends, "db01")["volume_type"] == "fast"
    mounts = [c for c in host.commands if "mount" in c and c[0] == "timeout"]
    assert len(mounts) == 1
    write(path, b"first" * 1000)
    first = digest(path)

    # extend
    result = four_steps(monkeypatch, capsys, host, volume, dict(vg, name="db01", size="12MiB"))
    assert result["volumes"][0]["action"] == "extend" and os.path.getsize(path) == 12 * MIB
    first = digest(path)

    # snapshot, then the volume changes
    snap_args = {"backends": backends, "name": "s1", "volume": "db01", "vg": SHARE}
    result = four_steps(monkeypatch, capsys, host, snapshot, snap_args)
    assert result["snapshots"][0]["action"] == "create"
    snap = os.path.join(share_dir(backends), "volume-db01.snap-s1")
    assert digest(snap) == first
    write(path, b"second" * 1000)
    assert digest(path) != first

    # revert: the volume is the snapshot's content again; the same request again changes nothing
    result = four_steps(monkeypatch, capsys, host, snapshot, dict(snap_args, state="reverted"))
    assert result["snapshots"][0]["action"] == "revert" and digest(path) == first
    assert sidecar(backends, "db01")["snapshots"]["s1"]["reverted"] is True

    # backend_info sees the volume and its snapshot
    info_args = {"backends": backends, "host": "stor3", "ledger_path": str(tmp_path / "ledger.json")}
    run = run_module(monkeypatch, capsys, backend_info, info_args, answer=host)
    (pool,) = run.result["pools"]
    assert pool["volumes"][0]["name"] == "db01" and pool["volumes"][0]["snapshots"] == ["s1"]
    assert pool["provisioned_bytes"] == 24 * MIB

    # delete with cascade: nothing of the volume is left on the share
    result = four_steps(monkeypatch, capsys, host, volume, dict(vg, name="db01", state="absent", cascade=True))
    assert result["volumes"][0]["action"] == "delete"
    assert os.listdir(share_dir(backends)) == []


def test_a_clone_and_a_volume_from_a_snapshot(monkeypatch, capsys, host, backends):
    vg = {"vg": SHARE}
    four_steps(monkeypatch, capsys, host, volume, dict(vg, backends=backends, name="src", size="4MiB"))
    path = os.path.join(share_dir(backends), "volume-src")
    write(path, os.urandom(MIB), offset=MIB)
    four_steps(monkeypatch, capsys, host, snapshot, {"backends": backends, "name": "s", "volume": "src", "vg": SHARE})
    before = digest(path)
    write(path, os.urandom(MIB))
    after = digest(path)
    result = four_steps(monkeypatch, capsys, host, volume,
                        {"backends": backends, "volumes": [
                            dict(vg, name="clone", source={"volume": "src"}),
                            dict(vg, name="restored", size="6MiB", source={"volume": "src", "snapshot": "s"})]})
    assert [v["action"] for v in result["volumes"]] == ["create", "create"]
    assert digest(os.path.join(share_dir(backends), "volume-clone")) == after
    restored = os.path.join(share_dir(backends), "volume-restored")
    assert os.path.getsize(restored) == 6 * MIB
    with open(restored, "rb") as handle:
        assert hashlib.sha256(handle.read(4 * MIB)).hexdigest() == before
    assert sidecar(backends, "restored")["source"] == {"volume": "src", "snapshot": "s"}


def test_check_mode_changes_nothing_on_the_host(monkeypatch, capsys, host, backends, tmp_path):
    run = run_module(monkeypatch, capsys, volume, {"backends": backends, "name": "db01", "size": 1, "vg": SHARE},
                     answer=host, check_mode=True)
    assert run.result["changed"] is True and host.commands == []
    assert not os.path.exists(tmp_path / "mnt")


def test_mount_shares_mounts_every_share_of_the_nfs_backends(monkeypatch, capsys, host, backends):
    """What the blockstore role's gather phase runs on a node whose NFS pools are not mounted: no items, every share
    mounted (check mode predicts it), no LVM read (an NFS-only node may have no LVM tools)."""
    args = {"volumes": [], "backends": backends, "mount_shares": True}
    result = four_steps(monkeypatch, capsys, host, volume, args)
    assert result["volumes"] == []
    assert result["mounts"] == [{"share": SHARE, "backend": "nfs1", "mount_point": share_dir(backends),
                                 "action": "mount", "changed": True}]
    assert os.path.isdir(share_dir(backends))
    assert not [c for c in host.commands if c[0] in ("vgs", "lvs", "lvm", "tgtadm")], host.commands
    assert len([c for c in host.commands if "mount" in c and c[0] == "timeout"]) == 1


def test_mount_shares_names_a_share_that_does_not_answer(monkeypatch, capsys, host, backends):
    """A mount that the time bound kills (timeout exits 124) fails the module naming the share; nothing else runs."""
    def hung(args, data=None):
        host.commands.append(args)
        if args[0] == "timeout":
            return 124, "", ""
        return 0, "", ""
    hung.takes_stdin = True
    run = run_module(monkeypatch, capsys, volume, {"volumes": [], "backends": backends, "mount_shares": True},
                     answer=hung)
    assert run.failed and SHARE in run.result["msg"] and "did not finish within 60 s" in run.result["msg"], run.result
    assert [c[3] for c in host.commands] == ["mount"]


def test_volume_info_and_snapshot_info_report_nfs_volumes(monkeypatch, capsys, host, backends, tmp_path):
    """Cinder's fields of NFS volumes and snapshots, read from the share's sidecars; an NFS-only node reads no LVM."""
    monkeypatch.setattr("ansible_collections.ember.blockstore.plugins.module_utils._ledger.LEDGER_PATH",
                        str(tmp_path / "ledger.json"), raising=False)
    vg = {"vg": SHARE, "backend": "nfs1", "backends": backends}
    four_steps(monkeypatch, capsys, host, volume, dict(vg, name="db01", size="8MiB", volume_type="files",
                                                       description="files here"))
    four_steps(monkeypatch, capsys, host, snapshot, {"backends": backends, "name": "s1", "volume": "db01",
                                                     "vg": SHARE, "description": "first"})
    before = len(host.commands)
    info = run_module(monkeypatch, capsys, volume_info, {"backends": backends, "host": "stor3",
                                                         "ledger_path": str(tmp_path / "ledger.json")}, answer=host)
    assert not info.failed, info.result
    (vol,) = info.result["volumes"]
    assert (vol["name"], vol["size_bytes"], vol["size"], vol["status"], vol["backend"], vol["pool"]) == (
        "db01", 8 * MIB, 1, "available", "nfs1", SHARE)
    assert (vol["volume_type"], vol["description"], vol["snapshots"], vol["lv_name"]) == (
        "files", "files here", ["s1"], "volume-db01")
    assert vol["device"] == os.path.join(share_dir(backends), "volume-db01")
    snaps = run_module(monkeypatch, capsys, snapshot_info, {"backends": backends}, answer=host)
    assert not snaps.failed, snaps.result
    (snap,) = snaps.result["snapshots"]
    assert (snap["id"], snap["size_bytes"], snap["cow_size_bytes"], snap["status"], snap["description"]) == (
        "db01+s1", 8 * MIB, None, "available", "first")
    assert not [c for c in host.commands[before:] if c[0] in ("vgs", "lvs", "tgtadm")], host.commands[before:]
    # a share that is not mounted is warned about, never reported empty
    monkeypatch.setattr(nfs, "MOUNTINFO", str(tmp_path / "empty-mountinfo"))
    (tmp_path / "empty-mountinfo").write_text("")
    gone = run_module(monkeypatch, capsys, volume_info, {"backends": backends, "host": "stor3",
                                                         "ledger_path": str(tmp_path / "ledger.json")}, answer=host)
    assert gone.result["volumes"] == [] and any(SHARE in w and "not mounted" in w for w in gone.warnings)
