# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NFS driver against a real temporary directory standing in for a mounted share: truncate, fallocate, dd and
cp really run there (nfs_helpers.LocalModule). Only the mount table, the mount command, statvfs and the failures of
a full share or an old server are given by the tests."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs
from nfs_helpers import LocalModule, StatVfs, command_hook, mountinfo_line, sha256, write_pattern

MIB = 1024 * 1024
SHARE = "198.18.0.5:/srv/ember"


@pytest.fixture()
def module():
    return LocalModule()


@pytest.fixture()
def mountinfo(tmp_path, monkeypatch):
    """The mount table the driver reads (a file standing in for /proc/self/mountinfo), empty at first."""
    path = tmp_path / "mountinfo"
    path.write_text("22 27 0:21 / /proc rw,relatime - proc proc rw\n")
    monkeypatch.setattr(nfs, "MOUNTINFO", str(path))
    return path


@pytest.fixture()
def share(tmp_path, module, mountinfo):
    """The share, "mounted": a directory at its mount point under a base, listed in the mount table."""
    base = tmp_path / "mnt"
    path = nfs.mount_point(SHARE, str(base))
    os.makedirs(path)
    with open(mountinfo, "a") as handle:
        handle.write(mountinfo_line(SHARE, path))
    return nfs.NfsShare(nfs.Nfs(Runner(module)), SHARE, path)


def record(name, size, **kwargs):
    return nfs.new_record(name, size, **kwargs)


def listing(share):
    return sorted(os.listdir(share.path))


def allocated(path):
    return os.stat(path).st_blocks * 512


def info(share, name):
    with open(os.path.join(share.path, nfs.info_file(name))) as handle:
        return json.load(handle)


def fill(share, name, size, seed=1):
    """A volume of ``size`` bytes holding a pattern (what a consumer would have written)."""
    rec = record(name, size)
    share.create_volume(rec, sparse=True)
    write_pattern(os.path.join(share.path, nfs.volume_file(name)), size, seed)
    return rec


# --- names and mount points --------------------------------------------------------------------------------------

def test_the_mount_point_is_a_stable_hash_of_the_share_under_the_base():
    one = nfs.mount_point(SHARE, "/var/lib/ember-blockstore/mnt")
    assert one == nfs.mount_point(SHARE, "/var/lib/ember-blockstore/mnt")
    assert os.path.dirname(one) == "/var/lib/ember-blockstore/mnt"
    name = os.path.basename(one)
    assert len(name) == 32 and all(c in "0123456789abcdef" for c in name)
    assert nfs.mount_point("198.18.0.5:/srv/other", "/b") != nfs.mount_point(SHARE, "/b")


def test_file_names():
    assert nfs.volume_file("db01") == "volume-db01"
    assert nfs.info_file("db01") == "volume-db01.info"
    assert nfs.snapshot_file("db01", "nightly") == "volume-db01.snap-nightly"
    assert nfs.temp_file("volume-db01") == ".volume-db01.tmp"


@pytest.mark.parametrize("name, fragment", [
    ("db.info", "would be read as a sidecar"),
    ("db.snap-x", "would be read as a snapshot of another volume"),
    ("-db", "is not a valid volume name"),
])
def test_volume_names_that_would_collide_on_a_share_are_refused(name, fragment):
    with pytest.raises(NameError_, match=fragment):
        nfs.validate_nfs_volume_name(name, "volumes[0].name")


def test_parse_mountinfo_unescapes_paths_and_reads_type_and_source():
    text = ("36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
            + mountinfo_line("[fd00::5]:/srv/x", "/var/lib/ember-blockstore/mnt/abc"))
    mounts = nfs.parse_mountinfo(text)
    assert mounts[0]["mount_point"] == "/mnt/with space" and mounts[0]["fstype"] == "ext3"
    assert mounts[1] == {"mount_point": "/var/lib/ember-blockstore/mnt/abc", "fstype": "nfs4",
                         "source": "[fd00::5]:/srv/x", "options": "rw,relatime"}


# --- mounting ----------------------------------------------------------------------------------------------------

def test_a_share_that_is_not_mounted_is_mounted_then_probed(tmp_path, module, mountinfo):
    path = nfs.mount_point(SHARE, str(tmp_path / "mnt"))

    def mount(args):
        with open(mountinfo, "a") as handle:
            handle.write(mountinfo_line(args[-2], args[-1]))
        return 0, "", ""
    module.hooks.append(command_hook("mount", mount))
    driver = nfs.Nfs(Runner(module))
    assert driver.ensure_mounted(SHARE, path, ["rw", "hard", "noatime", "vers=4.2"]) == "mount"
    assert module.ran("mount") == [["timeout", "--kill-after=5", "60", "mount", "-t", "nfs", "-o",
                                    "rw,hard,noatime,vers=4.2", SHARE, path]]
    assert module.ran("stat") == [["timeout", "--kill-after=5", "15", "stat", "--file-system", "--format=%T", path]]
    assert os.path.isdir(path)
    assert driver.ensure_mounted(SHARE, path, ["rw"]) == "mounted"
    assert len(module.ran("mount")) == 1


def test_check_mode_does_not_mount(tmp_path, module, mountinfo):
    path = nfs.mount_point(SHARE, str(tmp_path / "mnt"))
    assert nfs.Nfs(Runner(module)).ensure_mounted(SHARE, path, ["rw"], check_mode=True) == "would mount"
    assert module.calls == [] and not os.path.exists(path)


def test_another_mount_on_the_mount_point_is_refused(tmp_path, module, mountinfo):
    path = nfs.mount_point(SHARE, str(tmp_path / "mnt"))
    mountinfo.write_text(mountinfo_line("198.18.0.9:/srv/other", path))
    with pytest.raises(nfs.NfsError, match=r"share 198\.18\.0\.5:/srv/ember: its mount point .* holds "
                                           r"198\.18\.0\.9:/srv/other \(nfs4\), not the share"):
        nfs.Nfs(Runner(module)).ensure_mounted(SHARE, path, ["rw"])


def test_an_unreachable_server_fails_the_mount_within_its_bound_naming_the_share(tmp_path, module, mountinfo):
    module.hooks.append(command_hook("mount", lambda args: (124, "", "")))
    with pytest.raises(nfs.NfsError, match=r"share 198\.18\.0\.5:/srv/ember: mount did not finish within 60 s"):
        nfs.Nfs(Runner(module)).ensure_mounted(SHARE, nfs.mount_point(SHARE, str(tmp_path / "mnt")), ["rw"])


def test_a_failed_mount_says_why(tmp_path, module, mountinfo):
    module.hooks.append(command_hook("mount", lambda args: (32, "", "mount.nfs: access denied by server while "
                                                                    "mounting 198.18.0.5:/srv/ember\n")))
    with pytest.raises(nfs.NfsError, match="mount at .* failed: mount.nfs: access denied by server") as info_:
        nfs.Nfs(Runner(module)).ensure_mounted(SHARE, nfs.mount_point(SHARE, str(tmp_path / "mnt")), ["rw"])
    assert info_.value.context()["rc"] == 32


def test_a_hung_mount_is_cut_by_the_probe_timeout(share, module, monkeypatch):
    """The probe really runs under timeout(1): a stat that hangs (here a sleep in its place) is killed after the
    bound and the error names the share."""
    monkeypatch.setattr(nfs, "PROBE_TIMEOUT", 1)

    def hang(args):
        if "stat" not in args:
            return None
        cut = args.index("stat")
        return LocalModule.run_command(LocalModule(), args[:cut] + ["sleep", "30"])
    module.hooks.append(hang)
    with pytest.raises(nfs.NfsError, match=r"share 198\.18\.0\.5:/srv/ember \(mounted at .*\) does not answer within "
                                           r"1 s: the NFS server is unreachable or hung"):
        share.nfs.ensure_mounted(SHARE, share.path, ["rw"])


# --- create ------------------------------------------------------------------------------------------------------

def test_a_sparse_volume_takes_no_blocks(share):
    rec = record("db01", 64 * MIB, volume_type="fast", backend="nfs1", metadata={"owner": "db"})
    assert share.create_volume(rec, sparse=True) == "sparse"
    path = os.path.join(share.path, "volume-db01")
    assert os.path.getsize(path) == 64 * MIB and allocated(path) == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert listing(share) == ["volume-db01", "volume-db01.info"]
    data = info(share, "db01")
    assert data["ember.blockstore"] == "nfs-volume" and data["status"] == "available"
    assert (data["name"], data["size_bytes"], data["volume_type"], data["backend"], data["metadata"]) == (
        "db01", 64 * MIB, "fast", "nfs1", {"owner": "db"})
    assert stat.S_IMODE(os.stat(os.path.join(share.path, "volume-db01.info")).st_mode) == 0o600


def test_a_preallocated_volume_holds_all_its_blocks(share, module):
    assert share.create_volume(record("db02", 8 * MIB), sparse=False) == "fallocate"
    path = os.path.join(share.path, "volume-db02")
    assert os.path.getsize(path) == 8 * MIB and allocated(path) >= 8 * MIB
    assert module.ran("fallocate") == [["fallocate", "--offset", "0", "--length", str(8 * MIB),
                                        os.path.join(share.path, ".volume-db02.tmp")]]


def test_without_fallocate_zeros_are_written_with_dd(share, module):
    module.hooks.append(command_hook("fallocate", lambda args: (
        1, "", "fallocate: fallocate failed: Operation not supported\n")))
    assert share.create_volume(record("db03", 3 * MIB), sparse=False) == "dd"
    path = os.path.join(share.path, "volume-db03")
    assert os.path.getsize(path) == 3 * MIB and allocated(path) >= 3 * MIB
    (dd,) = module.ran("dd")
    assert dd[1:] == ["if=/dev/zero", "of=%s/.volume-db03.tmp" % share.path, "bs=1M", "seek=0",
                      "count=%d" % (3 * MIB), "oflag=seek_bytes", "iflag=count_bytes", "conv=notrunc,fsync",
                      "status=none"]


def test_a_full_share_leaves_no_partial_file_and_names_the_share_and_its_free_bytes(share, module, monkeypatch):
    """fallocate runs out of space after writing part of the temp file: the temp file and the sidecar the create
    wrote are removed."""
    monkeypatch.setattr(nfs, "statvfs", lambda path: StatVfs(4096, 1 << 20, 1 << 20))

    def partial(args):
        with open(args[-1], "r+b") as handle:
            handle.write(b"x" * MIB)
        return 1, "", "fallocate: fallocate failed: No space left on device\n"
    module.hooks.append(command_hook("fallocate", partial))
    with pytest.raises(nfs.NfsError) as info_:
        share.create_volume(record("db04", 16 * MIB), sparse=False)
    message = str(info_.value)
    assert "creating volume db04 (16 MiB) on share 198.18.0.5:/srv/ember failed: no space left" in message
    assert "the share has 4294967296 bytes (4 GiB) free; nothing partial was left behind" in message
    assert listing(share) == []


def test_a_failed_sparse_create_leaves_nothing(share, module):
    module.hooks.append(command_hook("truncate", lambda args: (1, "", "truncate: Input/output error\n")))
    with pytest.raises(nfs.NfsError, match="creating volume db05 .* failed: truncate: Input/output error"):
        share.create_volume(record("db05", MIB), sparse=True)
    assert listing(share) == []


def test_a_preallocated_volume_bigger_than_the_free_space_is_refused_before_writing(share, module, monkeypatch):
    monkeypatch.setattr(nfs, "statvfs", lambda path: StatVfs(4096, 1 << 20, 256))
    with pytest.raises(nfs.NfsError, match=r"needs 8388608 bytes \(8 MiB\) allocated; the share has 1048576 bytes "
                                           r"\(1 MiB\) free; nothing was written"):
        share.create_volume(record("db06", 8 * MIB), sparse=False)
    assert listing(share) == [] and module.calls == []


def test_an_existing_file_is_never_overwritten(share):
    open(os.path.join(share.path, "volume-db07"), "w").close()
    with pytest.raises(nfs.NfsError, match="exists already; it is never overwritten"):
        share.create_volume(record("db07", MIB), sparse=True)
    assert listing(share) == ["volume-db07"]


# --- extend ------------------------------------------------------------------------------------------------------

def test_extend_grows_and_never_shrinks(share):
    rec = fill(share, "db10", 2 * MIB)
    before = sha256(os.path.join(share.path, "volume-db10"))
    assert share.extend_volume(rec, 2 * MIB, 5 * MIB, sparse=True) == "sparse"
    path = os.path.join(share.path, "volume-db10")
    assert os.path.getsize(path) == 5 * MIB and info(share, "db10")["size_bytes"] == 5 * MIB
    with open(path, "rb") as handle:
        head = handle.read(2 * MIB)
    assert hashlib.sha256(head).hexdigest() == before
    for smaller in (5 * MIB, MIB):
        with pytest.raises(nfs.NfsError, match="volumes are never shrunk"):
            share.extend_volume(rec, 5 * MIB, smaller, sparse=True)
    assert os.path.getsize(path) == 5 * MIB


def test_extend_of_a_preallocated_volume_allocates_the_tail(share, module):
    rec = record("db11", 2 * MIB)
    share.create_volume(rec, sparse=False)
    assert share.extend_volume(rec, 2 * MIB, 6 * MIB, sparse=False) == "fallocate"
    path = os.path.join(share.path, "volume-db11")
    assert os.path.getsize(path) == 6 * MIB and allocated(path) >= 6 * MIB
    assert module.ran("fallocate")[-1] == ["fallocate", "--offset", str(2 * MIB), "--length", str(4 * MIB), path]


def test_a_failed_extend_puts_the_file_back_to_its_size(share, module):
    rec = record("db12", 2 * MIB)
    share.create_volume(rec, sparse=False)

    def grow_then_fail(args):
        os.truncate(args[-1], 3 * MIB)
        return 1, "", "fallocate: fallocate failed: No space left on device\n"
    module.hooks.append(command_hook("fallocate", grow_then_fail))
    with pytest.raises(nfs.NfsError, match="extending volume db12 from 2 MiB to 4 MiB on share .* no space left"):
        share.extend_volume(rec, 2 * MIB, 4 * MIB, sparse=False)
    assert os.path.getsize(os.path.join(share.path, "volume-db12")) == 2 * MIB
    assert info(share, "db12")["size_bytes"] == 2 * MIB


# --- snapshots, clones, revert ----------------------------------------------------------------------------------

def test_a_snapshot_is_a_sparse_copy_that_keeps_the_content(share):
    rec = fill(share, "db20", 4 * MIB, seed=1)
    volume = os.path.join(share.path, "volume-db20")
    original = sha256(volume)
    share.create_snapshot(rec, "nightly", description="before the upgrade")
    snap = os.path.join(share.path, "volume-db20.snap-nightly")
    assert sha256(snap) == original and os.path.getsize(snap) == 4 * MIB
    entry = info(share, "db20")["snapshots"]["nightly"]
    assert (entry["status"], entry["volume_size_bytes"], entry["description"], entry["reverted"]) == (
        "available", 4 * MIB, "before the upgrade", False)
    write_pattern(volume, MIB, seed=2)
    assert sha256(volume) != original and sha256(snap) == original
    assert not [f for f in listing(share) if f.endswith(".tmp")]


def test_a_snapshot_of_a_sparse_volume_stays_sparse(share):
    rec = record("db21", 64 * MIB)
    share.create_volume(rec, sparse=True)
    write_pattern(os.path.join(share.path, "volume-db21"), MIB)
    share.create_snapshot(rec, "s1")
    snap = os.path.join(share.path, "volume-db21.snap-s1")
    assert os.path.getsize(snap) == 64 * MIB and allocated(snap) <= 2 * MIB


def test_a_failed_snapshot_leaves_no_file_and_no_record(share, module):
    rec = fill(share, "db22", MIB)
    module.hooks.append(command_hook("cp", lambda args: (1, "", "cp: error writing: No space left on device\n")))
    with pytest.raises(nfs.NfsError, match="snapshot s1 of volume db22 on share .* no space left"):
        share.create_snapshot(rec, "s1")
    assert listing(share) == ["volume-db22", "volume-db22.info"]
    assert info(share, "db22")["snapshots"] == {}


def test_clone_and_volume_from_snapshot_copy_the_content(share):
    rec = fill(share, "db30", 3 * MIB, seed=7)
    original = sha256(os.path.join(share.path, "volume-db30"))
    share.create_snapshot(rec, "s1")
    write_pattern(os.path.join(share.path, "volume-db30"), MIB, seed=8)
    changed = sha256(os.path.join(share.path, "volume-db30"))
    clone = record("db31", 3 * MIB, source={"volume": "db30", "snapshot": None})
    share.copy_volume(clone, os.path.join(share.path, "volume-db30"), 3 * MIB, sparse=True)
    assert sha256(os.path.join(share.path, "volume-db31")) == changed
    restored = record("db32", 3 * MIB, source={"volume": "db30", "snapshot": "s1"})
    share.copy_volume(restored, os.path.join(share.path, "volume-db30.snap-s1"), 3 * MIB, sparse=True)
    assert sha256(os.path.join(share.path, "volume-db32")) == original
    assert info(share, "db32")["source"] == {"volume": "db30", "snapshot": "s1"}
    assert info(share, "db32")["status"] == "available"


def test_a_bigger_copy_keeps_the_source_bytes_and_grows_the_tail(share):
    fill(share, "db33", 2 * MIB, seed=3)
    source = os.path.join(share.path, "volume-db33")
    big = record("db34", 6 * MIB)
    assert share.copy_volume(big, source, 2 * MIB, sparse=True) == "sparse"
    target = os.path.join(share.path, "volume-db34")
    assert os.path.getsize(target) == 6 * MIB
    with open(target, "rb") as handle:
        head, tail = handle.read(2 * MIB), handle.read()
    assert hashlib.sha256(head).hexdigest() == sha256(source) and tail == b"\0" * (4 * MIB)


def test_a_copy_on_a_preallocating_backend_holds_all_its_blocks(share, module):
    rec = record("db35", 4 * MIB)
    share.create_volume(rec, sparse=True)
    write_pattern(os.path.join(share.path, "volume-db35"), MIB)
    thick = record("db36", 8 * MIB)
    assert share.copy_volume(thick, os.path.join(share.path, "volume-db35"), 4 * MIB, sparse=False) == "fallocate"
    target = os.path.join(share.path, "volume-db36")
    assert allocated(target) >= 8 * MIB
    assert module.ran("cp")[-1][:3] == ["cp", "--reflink=auto", "--sparse=never"]


def test_revert_copies_the_snapshot_back(share):
    rec = fill(share, "db40", 2 * MIB, seed=4)
    volume = os.path.join(share.path, "volume-db40")
    original = sha256(volume)
    share.create_snapshot(rec, "s1")
    share.create_snapshot(rec, "s2")
    write_pattern(volume, 2 * MIB, seed=5)
    share.revert_volume(rec, "s1", sparse=True)
    assert sha256(volume) == original
    data = info(share, "db40")
    assert data["reverting"] is None
    assert {k: v["reverted"] for k, v in data["snapshots"].items()} == {"s1": True, "s2": False}
    assert os.path.exists(os.path.join(share.path, "volume-db40.snap-s1"))
    assert not [f for f in listing(share) if f.endswith(".tmp")]


def test_a_failed_revert_leaves_the_volume_as_it_was(share, module):
    rec = fill(share, "db41", MIB, seed=4)
    share.create_snapshot(rec, "s1")
    volume = os.path.join(share.path, "volume-db41")
    write_pattern(volume, MIB, seed=6)
    now = sha256(volume)
    module.hooks.append(command_hook("cp", lambda args: (1, "", "cp: error reading: Input/output error\n")))
    with pytest.raises(nfs.NfsError, match="reverting volume db41 to snapshot s1 on share"):
        share.revert_volume(rec, "s1", sparse=True)
    assert sha256(volume) == now and info(share, "db41")["reverting"] is None
    assert not [f for f in listing(share) if f.endswith(".tmp")]


# --- delete ------------------------------------------------------------------------------------------------------

def test_delete_removes_the_volume_its_snapshots_its_sidecar_and_temp_files(share):
    rec = fill(share, "db50", MIB)
    share.create_snapshot(rec, "s1")
    share.create_snapshot(rec, "s2")
    other = fill(share, "db51", MIB)
    open(os.path.join(share.path, ".volume-db50.tmp"), "w").close()
    share.delete_volume(rec)
    assert listing(share) == ["volume-db51", "volume-db51.info"]
    share.delete_snapshot(other, "missing")  # nothing there: nothing to do
    assert listing(share) == ["volume-db51", "volume-db51.info"]


def test_delete_snapshot_removes_its_file_and_record(share):
    rec = fill(share, "db52", MIB)
    share.create_snapshot(rec, "s1")
    share.delete_snapshot(rec, "s1")
    assert listing(share) == ["volume-db52", "volume-db52.info"] and info(share, "db52")["snapshots"] == {}


# --- reading a share and its capacity ---------------------------------------------------------------------------

def test_read_share_and_capacity(share, monkeypatch):
    monkeypatch.setattr(nfs, "statvfs", lambda path: StatVfs(4096, 2621440, 1310720))
    assert nfs.capacity(share.path) == {"total_bytes": 10 * 1024 ** 3, "free_bytes": 5 * 1024 ** 3}
    sparse = record("a", 64 * MIB)
    share.create_volume(sparse, sparse=True)
    thick = record("b", 4 * MIB)
    share.create_volume(thick, sparse=False)
    share.create_snapshot(thick, "s1")
    open(os.path.join(share.path, "volume-foreign"), "w").close()
    with open(os.path.join(share.path, "volume-bad.info"), "w") as handle:
        handle.write("{not json")
    open(os.path.join(share.path, ".volume-c.tmp"), "w").close()
    state = nfs.read_share(SHARE, share.path)
    assert sorted(state.volumes) == ["a", "b"]
    assert state.volumes["a"]["file"] == {"size_bytes": 64 * MIB, "allocated_bytes": 0}
    assert state.volumes["b"]["snapshots"]["s1"]["file"]["size_bytes"] == 4 * MIB
    assert state.provisioned_bytes() == 64 * MIB + 4 * MIB + 4 * MIB
    assert state.allocated_bytes() == sum(allocated(os.path.join(share.path, f))
                                          for f in ("volume-a", "volume-b", "volume-b.snap-s1"))
    assert 4 * MIB <= state.allocated_bytes() < 64 * MIB
    assert state.foreign == {"foreign": os.path.join(share.path, "volume-foreign")}
    assert list(state.broken) == ["bad"] and "cannot be read: not JSON" in state.broken["bad"]
    assert state.temps == [".volume-c.tmp"]


@pytest.mark.parametrize("text, fragment", [
    ('{"name": "x"}', "no 'ember.blockstore': 'nfs-volume' mark"),
    ('{"ember.blockstore": "nfs-volume", "name": "y", "status": "available", "size_bytes": 1}', "names volume 'y'"),
    ('{"ember.blockstore": "nfs-volume", "name": "x", "status": "gone", "size_bytes": 1}', "status: 'gone'"),
    ('{"ember.blockstore": "nfs-volume", "name": "x", "status": "available", "size_bytes": -1}', "size_bytes"),
    ('{"ember.blockstore": "nfs-volume", "name": "x", "status": "available", "size_bytes": 1, "snapshots": '
     '{"s": {"status": "available"}}}', "snapshots.s.volume_size_bytes"),
])
def test_a_sidecar_that_is_not_the_projects_is_refused(text, fragment):
    with pytest.raises(nfs.InfoError, match=fragment.replace("(", r"\(")):
        nfs.parse_info(text, "x")


def test_a_sidecar_round_trips():
    rec = nfs.new_record("x", MIB, volume_type="t", backend="b", description="d", metadata={"k": "v"},
                         source={"volume": "y", "snapshot": None})
    rec["snapshots"]["s"] = {"volume_size_bytes": MIB, "created_at": 5, "sequence": 1, "description": None,
                             "reverted": True, "status": "available"}
    parsed = nfs.parse_info(nfs.render_info(rec), "x")
    assert parsed == dict(rec, snapshots={"s": rec["snapshots"]["s"]})
