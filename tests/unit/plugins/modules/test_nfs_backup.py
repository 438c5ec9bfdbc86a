# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup module on volumes of an nfs backend (issues 13 and 14), with a real temporary directory standing in
for the mounted share and another for the store: the module's commands really run (cp, stat, truncate), except
the mount, which the test answers by adding the share to the mount table the driver reads. Each change runs as the
integration tests run a scenario: ``--check``, for real, again (``changed=0``), ``--check`` again (``changed=0``)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import backup_store, nfs
from ansible_collections.ember.blockstore.plugins.modules import backend_info, backup, snapshot, volume
from modrun import run_module

SHARE = "198.18.0.5:/srv/ember"
MIB = 1024 * 1024
LVM_COMMANDS = ("vgs", "lvs", "lvm", "lvcreate", "lvchange", "lvremove", "tgtadm", "thin_delta", "dmsetup")


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

    def ran(self, program):
        return [c for c in self.commands if program in c[:5]]


@pytest.fixture()
def host(tmp_path, monkeypatch):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("")
    monkeypatch.setattr(nfs, "MOUNTINFO", str(mountinfo))
    return Host(str(mountinfo))


@pytest.fixture()
def backends(tmp_path):
    return [{"name": "nfs1", "driver": "nfs", "shares": [SHARE], "mount_point_base": str(tmp_path / "mnt")}]


@pytest.fixture()
def store(tmp_path):
    return str(tmp_path / "store")


def share_dir(backends):
    return nfs.mount_point(SHARE, backends[0]["mount_point_base"])


def path_of(backends, name):
    return os.path.join(share_dir(backends), name)


def run(monkeypatch, capsys, host, module, args, check_mode=False):
    return run_module(monkeypatch, capsys, module, args, answer=host, check_mode=check_mode)


def four_steps(monkeypatch, capsys, host, module, args, changed=True):
    """check, real, again, check again: the first two report ``changed``, the last two nothing; returns the real
    run's result."""
    results = []
    for check_mode, want in ((True, changed), (False, changed), (False, False), (True, False)):
        result = run(monkeypatch, capsys, host, module, args, check_mode=check_mode)
        assert not result.failed, result.result
        assert result.result["changed"] == want, (check_mode, result.result)
        results.append(result.result)
    return results[1]


def sidecar(backends, name):
    with open(path_of(backends, "volume-%s.info" % name)) as handle:
        return json.load(handle)


def digest(path, length=None):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(length) if length else handle.read()).hexdigest()


def write(path, data, offset=0):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def make_volume(monkeypatch, capsys, host, backends, name, size="8MiB", data=None):
    """A sparse volume made by the volume module (the share mounted by its first run), ``data`` written at 1 MiB."""
    result = run(monkeypatch, capsys, host, volume, {"backends": backends, "name": name, "size": size, "vg": SHARE})
    assert not result.failed, result.result
    if data is not None:
        write(path_of(backends, "volume-" + name), data, offset=MIB)
    return path_of(backends, "volume-" + name)


def args(backends, store, **item):
    return dict({"backends": backends, "store": store, "vg": SHARE, "volume": "db01", "chunk_size": "64KiB",
                 "whole_sha256": True}, **item)


def no_lvm(host):
    return not [c for c in host.commands if c[0] in LVM_COMMANDS]


def test_a_detached_volume_is_read_in_place(monkeypatch, capsys, host, backends, store):
    path = make_volume(monkeypatch, capsys, host, backends, "db01", data=os.urandom(2 * MIB))
    result = four_steps(monkeypatch, capsys, host, backup, args(backends, store, name="b1"))
    (item,) = result["backups"]
    assert (item["action"], item["status"], item["share"], item["size_bytes"], item["method"]) == (
        "create", "available", SHARE, 8 * MIB, "full")
    assert item["sha256"] == digest(path) and item["snapshot"] == SHARE + "/volume-db01"
    # zero chunks are stored as nothing: 2 MiB of data in 64 KiB chunks
    assert (item["stats"]["chunks_new"], item["stats"]["chunks_zero"]) == (32, 96), item["stats"]
    assert result["mounts"] == [{"share": SHARE, "backend": "nfs1", "mount_point": share_dir(backends),
                                 "action": "none", "changed": False}]
    with open(os.path.join(store, "backups", "db01", "b1.json")) as handle:
        assert json.load(handle)["source"] == SHARE + "/volume-db01"
    assert not host.ran("cp"), "a detached volume is not copied"
    assert sidecar(backends, "db01")["status"] == "available"
    assert no_lvm(host), host.commands
    # an incremental one reads every chunk (no changed-block tracking) and writes only the new chunks
    write(path, b"x" * 4096, offset=5 * MIB)
    result = four_steps(monkeypatch, capsys, host, backup, args(backends, store, name="b2", is_incremental=True))
    (item,) = result["backups"]
    assert (item["incremental"], item["parent"], item["method"]) == (True, "b1", "full")
    assert "every chunk is read" in item["note"]
    assert (item["stats"]["bytes_read"], item["stats"]["chunks_new"]) == (8 * MIB, 1), item["stats"]
    assert item["sha256"] == digest(path)


def test_an_attached_volume_needs_force(monkeypatch, capsys, host, backends, store):
    make_volume(monkeypatch, capsys, host, backends, "db01", data=b"data" * 1000)
    before = sidecar(backends, "db01")
    result = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", attached=True))
    assert result.failed
    assert "volume db01 is attached (attached: true)" in result.msg and "force: true" in result.msg, result.msg
    assert result.msg.startswith("backup[0]: volume db01 is attached"), result.msg
    assert not os.path.exists(store) and sidecar(backends, "db01") == before
    assert sorted(os.listdir(share_dir(backends))) == ["volume-db01", "volume-db01.info"]


def test_an_attached_volume_with_force_is_read_from_a_temporary_copy(monkeypatch, capsys, host, backends, store):
    path = make_volume(monkeypatch, capsys, host, backends, "db01", data=os.urandom(MIB))
    seen = []
    original = backup_store.ChunkStore.backup

    def spying(self, device, *a, **kw):
        seen.append((device, os.path.exists(device), sidecar(backends, "db01")["status"]))
        return original(self, device, *a, **kw)

    monkeypatch.setattr(backup_store.ChunkStore, "backup", spying)
    result = four_steps(monkeypatch, capsys, host, backup, args(backends, store, name="b1", attached=True, force=True))
    (item,) = result["backups"]
    copy = path_of(backends, ".bktmp-db01+b1")
    assert seen == [(copy, True, "backing-up")]
    assert item["snapshot"] == SHARE + "/.bktmp-db01+b1" and item["sha256"] == digest(path)
    (cp,) = host.ran("cp")
    assert cp == ["cp", "--reflink=auto", "--sparse=always", path, copy]
    assert not os.path.exists(copy)
    assert sidecar(backends, "db01")["status"] == "available"
    assert no_lvm(host), host.commands


def test_a_temporary_copy_left_by_a_dead_run_is_no_clash_and_the_next_backup_removes_it(
        monkeypatch, capsys, host, backends, store, tmp_path):
    make_volume(monkeypatch, capsys, host, backends, "db01", data=b"data")
    leftover = path_of(backends, ".bktmp-db01+old")
    with open(leftover, "wb") as handle:
        handle.write(b"left by a run that died")
    other = path_of(backends, ".bktmp-db01x+old")  # another volume's copy stays
    with open(other, "wb") as handle:
        handle.write(b"x")
    info = run(monkeypatch, capsys, host, backend_info,
               {"backends": backends, "host": "stor3", "ledger_path": str(tmp_path / "ledger.json")})
    (pool,) = info.result["pools"]
    assert pool["clashes"] == [] and [v["name"] for v in pool["volumes"]] == ["db01"]
    result = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1"))
    assert not result.failed and result.result["changed"], result.result
    assert not os.path.exists(leftover) and os.path.exists(other)


def test_a_volume_delete_removes_a_leftover_copy(monkeypatch, capsys, host, backends):
    make_volume(monkeypatch, capsys, host, backends, "db01")
    with open(path_of(backends, ".bktmp-db01+old"), "wb") as handle:
        handle.write(b"x")
    result = run(monkeypatch, capsys, host, volume, {"backends": backends, "name": "db01", "vg": SHARE,
                                                     "state": "absent"})
    assert not result.failed, result.result
    assert os.listdir(share_dir(backends)) == []


def restore_args(backends, store, **item):
    return args(backends, store, **dict({"name": "b1", "state": "restored", "restore_to": "r1"}, **item))


def test_restore_round_trip_into_a_fresh_sparse_volume_and_into_a_used_one(monkeypatch, capsys, host, backends,
                                                                           store):
    data = os.urandom(MIB)
    source = make_volume(monkeypatch, capsys, host, backends, "db01", data=data)
    run(monkeypatch, capsys, host, backup, args(backends, store, name="b1"))
    want = digest(source)
    target = make_volume(monkeypatch, capsys, host, backends, "r1")
    assert os.stat(target).st_blocks == 0
    # a fresh sparse file: no force needed, the zero chunks stay holes
    result = four_steps(monkeypatch, capsys, host, backup, restore_args(backends, store))
    (item,) = result["backups"]
    assert (item["action"], item["status"], item["restore_to"], item["share"]) == ("restore", "restored", "r1", SHARE)
    assert item["sha256"] == want == digest(target) and item["bytes_written"] == MIB
    assert os.stat(target).st_blocks * 512 <= 2 * MIB, "the zero chunks were skipped"
    info = sidecar(backends, "r1")
    assert (info["status"], info["restored"]) == ("available", "db01+b1")
    assert result["diff"] == {"before": {"volume r1": {"restored_from": None}},
                              "after": {"volume r1": {"restored_from": "db01+b1"}}}
    # a file that holds data needs force; then every chunk is written, zeros included
    write(target, b"\xff" * MIB, offset=4 * MIB)
    refused = run(monkeypatch, capsys, host, backup, restore_args(backends, store, name="b2"))
    assert refused.failed and "has no backup 'b2'" in refused.msg, refused.msg
    run(monkeypatch, capsys, host, backup, args(backends, store, name="b2"))
    refused = run(monkeypatch, capsys, host, backup, restore_args(backends, store, name="b2"))
    assert refused.failed, refused.result
    assert "backup[0].restore_to: volume r1 on share %s holds" % SHARE in refused.msg, refused.msg
    assert "force: true" in refused.msg
    result = run(monkeypatch, capsys, host, backup, restore_args(backends, store, name="b2", force=True))
    assert not result.failed and result.result["changed"], result.result
    (item,) = result.result["backups"]
    assert item["sha256"] == want == digest(target) and item["bytes_written"] == 8 * MIB
    assert sidecar(backends, "r1")["restored"] == "db01+b2"
    # the same request again: a no-op (without force)
    again = run(monkeypatch, capsys, host, backup, restore_args(backends, store, name="b2"))
    assert not again.failed and not again.result["changed"], again.result
    assert again.result["backups"][0]["status"] == "restored"
    assert no_lvm(host), host.commands
    # the record survives the volume module's own sidecar writes (an extend)
    extend = run(monkeypatch, capsys, host, volume, {"backends": backends, "name": "r1", "vg": SHARE, "size": "16MiB"})
    assert not extend.failed, extend.result
    assert sidecar(backends, "r1")["restored"] == "db01+b2"


def test_restore_refuses_an_attached_a_smaller_and_a_missing_target(monkeypatch, capsys, host, backends, store):
    make_volume(monkeypatch, capsys, host, backends, "db01", size="8MiB", data=b"data")
    run(monkeypatch, capsys, host, backup, args(backends, store, name="b1"))
    make_volume(monkeypatch, capsys, host, backends, "r1", size="8MiB")
    make_volume(monkeypatch, capsys, host, backends, "small", size="4MiB")
    attached = run(monkeypatch, capsys, host, backup, restore_args(backends, store, attached=True))
    assert attached.failed and "backup[0].restore_to: volume r1 is attached (attached: true)" in attached.msg
    smaller = run(monkeypatch, capsys, host, backup, restore_args(backends, store, restore_to="small"))
    assert smaller.failed and "backup[0].restore_to: volume small on share %s is 4 MiB, smaller than backup b1" \
        % SHARE in smaller.msg, smaller.msg
    missing = run(monkeypatch, capsys, host, backup, restore_args(backends, store, restore_to="nope"))
    assert missing.failed and "backup[0].restore_to: volume 'nope' does not exist on share %s" % SHARE \
        in missing.msg, missing.msg
    assert sidecar(backends, "r1").get("restored") is None


def test_check_mode_predicts_and_changes_nothing(monkeypatch, capsys, host, backends, store):
    path = make_volume(monkeypatch, capsys, host, backends, "db01", data=b"data")
    # the share is not mounted (a new mount table): check mode predicts the mount and the backup, runs nothing
    host.mountinfo_before = open(host.mountinfo).read()
    with open(host.mountinfo, "w"):
        pass
    before = (sidecar(backends, "db01"), digest(path), sorted(os.listdir(share_dir(backends))))
    host.commands.clear()
    result = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", attached=True, force=True),
                 check_mode=True)
    assert not result.failed and result.result["changed"], result.result
    (item,) = result.result["backups"]
    assert item["action"] == "create" and "not mounted" in item["note"]
    assert result.result["mounts"][0]["action"] == "mount"
    assert host.commands == [] and not os.path.exists(store)
    # mounted: check mode reads the share and predicts the copy, still without a change
    with open(host.mountinfo, "w") as handle:
        handle.write(host.mountinfo_before)
    result = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", attached=True, force=True),
                 check_mode=True)
    assert result.result["backups"][0]["snapshot"] == SHARE + "/.bktmp-db01+b1"
    assert not host.ran("cp") and not os.path.exists(store)
    assert (sidecar(backends, "db01"), digest(path), sorted(os.listdir(share_dir(backends)))) == before


def test_errors_name_the_field_and_the_value(monkeypatch, capsys, host, backends, store):
    make_volume(monkeypatch, capsys, host, backends, "db01")
    missing = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", volume="nope"))
    assert missing.failed
    assert "backup[0].volume: volume 'nope' does not exist on share %s (no sidecar volume-nope.info)" % SHARE \
        in missing.msg, missing.msg
    other = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", vg="198.18.0.9:/srv/other"))
    assert other.failed and "backup[0].vg: '198.18.0.9:/srv/other' is not a share of any nfs backend" in other.msg
    cow = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", cow_size="1GiB"))
    assert cow.failed and "backup[0].cow_size: '1GiB' is given, but volume db01 is on share" in cow.msg, cow.msg
    snap = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", snapshot="s9"))
    assert snap.failed and "backup[0].snapshot: volume db01 has no snapshot 's9' on share" in snap.msg, snap.msg
    assert not os.path.exists(store)


def test_a_snapshot_is_backed_up_from_its_file(monkeypatch, capsys, host, backends, store):
    path = make_volume(monkeypatch, capsys, host, backends, "db01", data=os.urandom(MIB))
    result = run(monkeypatch, capsys, host, snapshot, {"backends": backends, "name": "s1", "volume": "db01",
                                                       "vg": SHARE})
    assert not result.failed, result.result
    want = digest(path)
    write(path, b"later" * 100)
    result = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1", snapshot="s1", attached=True))
    assert not result.failed, result.result
    (item,) = result.result["backups"]
    assert item["sha256"] == want and item["snapshot"] == SHARE + "/volume-db01.snap-s1"
    assert not host.ran("cp") or all(".bktmp" not in " ".join(c) for c in host.ran("cp"))


def test_the_volume_module_refuses_to_extend_or_delete_a_busy_volume(monkeypatch, capsys, host, backends, store):
    make_volume(monkeypatch, capsys, host, backends, "db01", data=b"data")
    info = sidecar(backends, "db01")
    info["status"] = "backing-up"  # what a backup that died leaves
    with open(path_of(backends, "volume-db01.info"), "w") as handle:
        json.dump(info, handle)
    vol = {"backends": backends, "name": "db01", "vg": SHARE}
    extend = run(monkeypatch, capsys, host, volume, dict(vol, size="16MiB"))
    assert extend.failed and "volume[0].size: volume db01 on share %s is backing-up" % SHARE in extend.msg, extend.msg
    delete = run(monkeypatch, capsys, host, volume, dict(vol, state="absent"))
    assert delete.failed and "volume db01 is backing-up" in delete.msg, delete.msg
    # the backup module's next run of the volume takes over and clears it
    result = run(monkeypatch, capsys, host, backup, args(backends, store, name="b1"))
    assert not result.failed, result.result
    assert sidecar(backends, "db01")["status"] == "available"
    extend = run(monkeypatch, capsys, host, volume, dict(vol, size="16MiB"))
    assert not extend.failed and extend.result["volumes"][0]["action"] == "extend", extend.result


def test_absent_and_verified_use_the_store_only(monkeypatch, capsys, host, backends, store):
    make_volume(monkeypatch, capsys, host, backends, "db01", data=b"data")
    run(monkeypatch, capsys, host, backup, args(backends, store, name="b1"))
    host.commands.clear()
    verified = run(monkeypatch, capsys, host, backup, {"backends": backends, "store": store, "volume": "db01",
                                                       "state": "verified"})
    assert not verified.failed and verified.result["backups"][0]["status"] == "verified", verified.result
    deleted = four_steps(monkeypatch, capsys, host, backup, args(backends, store, name="b1", state="absent"))
    assert deleted["backups"][0]["action"] == "delete" and deleted["mounts"] == []
    assert host.commands == [], "no mount, no probe, no LVM"
