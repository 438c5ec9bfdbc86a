# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection module's NFS items (issue 14) on a consumer whose share is a real temporary directory: each change
as the integration tests run it (--check, real, again: changed=0, --check again: changed=0). The stat probe really
runs; mount, umount and losetup are answered by the host below, which keeps the mount table and the loop devices'
sysfs entries (backing_file, size) in temporary files, as the kernel would."""

from __future__ import annotations

import os
import subprocess

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _nfs_connection
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs
from ansible_collections.ember.blockstore.plugins.modules import connection, initiator_info
from modrun import run_module

SHARE = "198.18.0.21:/srv/ember-nfs"
MIB = 2**20
LOOP = "loop4093"  # a number no real loop device of the test host has


class Consumer:
    takes_stdin = True

    def __init__(self, tmp_path):
        self.mountinfo = tmp_path / "mountinfo"
        self.mountinfo.write_text("")
        self.sys_block = tmp_path / "sys-block"
        self.sys_block.mkdir()
        self.commands = []

    def __call__(self, args, data=None):
        self.commands.append(args)
        cmd = args[3:] if args[0] == "timeout" else args
        if cmd[0] == "mount":
            with open(self.mountinfo, "a") as handle:
                handle.write("701 27 0:64 / %s rw,relatime - nfs4 %s rw,vers=4.2\n" % (cmd[-1], cmd[-2]))
            return 0, "", ""
        if cmd[0] == "umount":
            lines = [line for line in self.mountinfo.read_text().splitlines() if (" %s " % cmd[-1]) not in line]
            self.mountinfo.write_text("".join(line + "\n" for line in lines))
            return 0, "", ""
        if cmd[0] == "losetup":
            loop = self.sys_block / LOOP
            if cmd[1] == "--find":
                (loop / "loop").mkdir(parents=True)
                (loop / "loop" / "backing_file").write_text(cmd[-1] + "\n")
                (loop / "size").write_text("%d\n" % (os.path.getsize(cmd[-1]) // 512))
                return 0, "/dev/%s\n" % LOOP, ""
            if cmd[1] == "--set-capacity":
                backing = (loop / "loop" / "backing_file").read_text().strip()
                (loop / "size").write_text("%d\n" % (os.path.getsize(backing) // 512))
                return 0, "", ""
            if cmd[1] == "--detach":
                for path in ((loop / "loop" / "backing_file"), (loop / "size")):
                    path.unlink()
                (loop / "loop").rmdir()
                loop.rmdir()
                return 0, "", ""
        if cmd[0] == "udevadm":
            return 0, "", ""
        proc = subprocess.run(args, capture_output=True, text=True, input=data, check=False)
        return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture()
def consumer(tmp_path, monkeypatch):
    host = Consumer(tmp_path)
    monkeypatch.setattr(nfs, "MOUNTINFO", str(host.mountinfo))
    monkeypatch.setattr(_nfs_connection, "SYS_BLOCK", str(host.sys_block))
    monkeypatch.setattr(_nfs_connection, "LINK_DIR", str(tmp_path / "dev-ember"))
    return host


def item(tmp_path, **changes):
    return dict({"driver_volume_type": "nfs", "volume": "n1", "size_bytes": 8 * MIB, "mount_point_base":
                 str(tmp_path / "mnt"), "data": {"export": SHARE, "name": "volume-n1", "format": "raw",
                                                 "options": "rw,hard,vers=4.2"}}, **changes)


def four_steps(monkeypatch, capsys, host, args):
    results = []
    for check_mode, want in ((True, True), (False, True), (False, False), (True, False)):
        run = run_module(monkeypatch, capsys, connection, args, answer=host, check_mode=check_mode)
        assert not run.failed, run.result
        assert run.result["changed"] == want, (check_mode, run.result)
        results.append(run.result)
    return results[1]


def test_an_nfs_volume_is_attached_extended_and_detached(monkeypatch, capsys, consumer, tmp_path):
    path = nfs.mount_point(SHARE, str(tmp_path / "mnt"))
    os.makedirs(path)
    with open(os.path.join(path, "volume-n1"), "wb") as handle:
        handle.truncate(8 * MIB)
    link = str(tmp_path / "dev-ember" / "n1")

    result = four_steps(monkeypatch, capsys, consumer, {"connections": [item(tmp_path)]})
    (att,) = result["connections"]
    assert (att["action"], att["device"], att["real_device"], att["size_bytes"]) == (
        "attach", link, "/dev/" + LOOP, 8 * MIB)
    assert (att["driver_volume_type"], att["export"], att["mount_point"], att["target_iqn"]) == (
        "nfs", SHARE, path, None)
    assert os.readlink(link) == "/dev/" + LOOP
    finds = [c for c in consumer.commands if "--find" in c]
    assert finds == [["losetup", "--find", "--show", "--direct-io=on", os.path.join(path, "volume-n1")]]
    mounts = [c for c in consumer.commands if c[:1] == ["timeout"] and c[3] == "mount"]
    assert len(mounts) == 1 and mounts[0][-3:] == ["rw,hard,vers=4.2", SHARE, path]
    # what the gather reports, so the next run sends no item
    facts = run_module(monkeypatch, capsys, initiator_info, {}, answer=consumer)
    (seen,) = facts.result["nfs_attachments"]
    assert (seen["volume"], seen["loop_device"], seen["size_bytes"], seen["share_hash"]) == (
        "n1", "/dev/" + LOOP, 8 * MIB, os.path.basename(path))

    # the storage node grew the file: the loop device is re-read
    with open(os.path.join(path, "volume-n1"), "r+b") as handle:
        handle.truncate(12 * MIB)
    result = four_steps(monkeypatch, capsys, consumer, {"connections": [item(tmp_path, size_bytes=12 * MIB)]})
    assert (result["connections"][0]["action"], result["connections"][0]["size_bytes"]) == ("resize", 12 * MIB)
    assert [c for c in consumer.commands if "--set-capacity" in c] == [["losetup", "--set-capacity", "/dev/" + LOOP]]

    # detach: the loop device, the link, the share's mount (nothing else of it is attached)
    result = four_steps(monkeypatch, capsys, consumer, {"connections": [item(tmp_path, state="absent")]})
    assert result["connections"][0]["action"] == "detach"
    assert not os.path.lexists(link) and not (consumer.sys_block / LOOP).exists()
    assert consumer.mountinfo.read_text() == ""
    assert [c[3:] for c in consumer.commands if c[:1] == ["timeout"] and c[3] == "umount"] == [["umount", path]]


def test_a_missing_volume_file_and_bad_items_are_named(monkeypatch, capsys, consumer, tmp_path):
    os.makedirs(nfs.mount_point(SHARE, str(tmp_path / "mnt")))
    run = run_module(monkeypatch, capsys, connection, {"connections": [item(tmp_path)]}, answer=consumer)
    assert run.failed and "volume-n1 is not on share %s" % SHARE in run.result["msg"], run.result
    for bad, field in ((dict(item(tmp_path)["data"], export="nas:/srv"), "connections[0].data.export"),
                       (dict(item(tmp_path)["data"], name="volume-other"), "connections[0].data.name"),
                       (dict(item(tmp_path)["data"], format="qcow2"), "connections[0].data.format"),
                       (dict(item(tmp_path)["data"], options="rw,ro"), "connections[0].data.options")):
        before = len(consumer.commands)
        run = run_module(monkeypatch, capsys, connection, {"connections": [item(tmp_path, data=bad)]},
                         answer=consumer)
        assert run.failed and field in run.result["msg"], (field, run.result)
        assert consumer.commands[before:] == []  # refused before anything ran
    run = run_module(monkeypatch, capsys, connection, {"connections": [{"volume": "n1"}]}, answer=consumer)
    assert run.failed and "connections[0].target_iqn: required for driver_volume_type iscsi" in run.result["msg"]


def test_a_loop_device_in_use_is_not_detached_without_force(monkeypatch, capsys, consumer, tmp_path):
    path = nfs.mount_point(SHARE, str(tmp_path / "mnt"))
    os.makedirs(path)
    with open(os.path.join(path, "volume-n1"), "wb") as handle:
        handle.truncate(8 * MIB)
    assert not run_module(monkeypatch, capsys, connection, {"connections": [item(tmp_path)]}, answer=consumer).failed
    monkeypatch.setattr(_nfs_connection, "device_in_use", lambda loop: ["/srv/data"])
    run = run_module(monkeypatch, capsys, connection, {"connections": [item(tmp_path, state="absent")]},
                     answer=consumer)
    assert run.failed and "is in use (/srv/data)" in run.result["msg"] and "force" in run.result["msg"], run.result
    assert (consumer.sys_block / LOOP).exists()
    forced = run_module(monkeypatch, capsys, connection, {"connections": [item(tmp_path, state="absent")],
                                                          "force": True}, answer=consumer)
    assert not forced.failed and not (consumer.sys_block / LOOP).exists(), forced.result
