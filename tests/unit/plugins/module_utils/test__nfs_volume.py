# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_nfs_volume``: routing items to NFS, the decisions over a share's state (read from a real temporary directory
with ``drivers.nfs.read_share``) and the appliers finishing what an interrupted run left (sidecar ``creating``,
``deleting``, ``reverting``)."""

from __future__ import annotations

import json
import os
import sys

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _nfs_volume as nv
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import node_backends
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "drivers"))
from nfs_helpers import LocalModule, sha256, write_pattern  # noqa: E402

MIB = 1024 * 1024
SHARE = "198.18.0.5:/srv/ember"
OTHER = "198.18.0.6:/srv/ember"


@pytest.fixture()
def cfg(tmp_path):
    (one,) = node_backends([{"name": "nfs1", "driver": "nfs", "shares": [SHARE, OTHER],
                             "mount_point_base": str(tmp_path / "mnt")}])
    return one


@pytest.fixture()
def path(cfg):
    where = nfs.mount_point(SHARE, cfg["mount_point_base"])
    os.makedirs(where)
    return where


@pytest.fixture()
def share(path):
    return nfs.NfsShare(nfs.Nfs(Runner(LocalModule())), SHARE, path)


def views(cfg, path):
    return {SHARE: nv.ShareView(cfg, SHARE, path, nfs.read_share(SHARE, path), "none")}


def item(**values):
    out = {"name": "db01", "size": "4MiB", "state": "present", "vg": SHARE, "thin_pool": None, "volume_type": None,
           "backend": None, "volume_clear": "zero", "volume_clear_size": 0, "force": False, "cascade": False,
           "source": None, "description": None, "metadata": None}
    out.update(values)
    return out


def snap_item(**values):
    out = {"name": "s1", "volume": "db01", "vg": SHARE, "state": "present", "cow_size": None, "force": False,
           "description": None, "attached": False}
    out.update(values)
    return out


def volumes(cfg, path, *items):
    return nv.decide_volumes({i: (cfg, SHARE) for i in range(len(items))}, list(items), views(cfg, path))


def snapshots(cfg, path, *items, predict=False):
    return nv.decide_snapshots({i: (cfg, SHARE) for i in range(len(items))}, list(items), views(cfg, path),
                               predict_missing=predict)


def errors_of(result):
    return "; ".join(result[1])


def sidecar(path, name):
    with open(os.path.join(path, nfs.info_file(name))) as handle:
        return json.load(handle)


def set_sidecar(share, name, **changes):
    rec = nfs.parse_info(open(os.path.join(share.path, nfs.info_file(name))).read(), name)
    rec.update(changes)
    share.write_info(rec)


# --- routing -------------------------------------------------------------------------------------------------------

def test_route_sends_items_on_a_share_of_an_nfs_backend_to_nfs_and_the_rest_to_lvm(cfg):
    (lvm,) = node_backends([{"name": "thick", "vg": "ember-thick"}])
    items = [item(vg="ember-thick"), item(vg=SHARE), item(vg="[::ffff:198.18.0.6]:/srv/x"),
             item(vg="198.18.0.6:/srv/ember/")]
    routed, errors = nv.route(items, [lvm, cfg], "volumes", with_backend=True)
    assert routed == {1: (cfg, SHARE)}
    assert errors == [
        "volumes[2].vg: '[::ffff:198.18.0.6]:/srv/x' is not a share of any nfs backend of this node (backends: nfs1)",
        "volumes[3].vg (export): '/srv/ember/' is not a normalized path below / (no . or .., no //, no trailing /, "
        "not / itself)"]
    assert nv.route(items, [lvm], "volumes") == ({}, [])  # no nfs backend: all LVM, nothing checked here


def test_route_checks_the_backend_named(cfg):
    (lvm,) = node_backends([{"name": "thick", "vg": "ember-thick"}])
    routed, errors = nv.route([item(backend="thick"), item(backend="nfs1", vg=OTHER)], [lvm, cfg], "volumes",
                              with_backend=True)
    assert routed == {1: (cfg, OTHER)}
    assert errors == ["volumes[0].backend: 'thick' is not backend nfs1, whose share 198.18.0.5:/srv/ember holds the "
                      "volume"]


# --- volumes --------------------------------------------------------------------------------------------------------

def test_item_errors_name_the_field(cfg, path, share):
    share.create_volume(nfs.new_record("db02", 2 * MIB), sparse=True)
    actions, errors = volumes(cfg, path, item(size=0), item(name="db01", thin_pool="tp"), item(name="x.info"),
                              item(name="db02", size="1MiB"), item(name="db03", size=None),
                              item(name="db04", source={"volume": "nope"}), item(name="db02", size="2MiB"),
                              item(name="db05", metadata={"k": 1}))
    assert actions == []
    assert errors == [
        "volumes[0].size: 0 must be greater than zero",
        "volumes[1].thin_pool: 'tp' is given, but backend nfs1 (driver nfs) has no thin pool; its volumes are sparse "
        "files when the backend's sparse is true",
        "volumes[2].name: 'x.info' cannot be the name of a volume on an nfs backend: its file volume-x.info would be "
        "read as a sidecar; choose a name that does not end in '.info' or contain '.snap-'",
        "volumes[3].size: 1MiB (1 MiB) is smaller than volume db02's current size 2 MiB; volumes are never shrunk",
        "volumes[4].size: required when state is present (volume db03)",
        "volumes[5].source.volume: volume 'nope' does not exist on share 198.18.0.5:/srv/ember (no sidecar "
        "volume-nope.info); a source must be on the new volume's share",
        "volumes[6].name: 'db02' is listed twice",
        "volumes[7].metadata['k']: 1 is a number; quote it in YAML ('1') to make it a string, not a string "
        "(metadata values are strings, as in Cinder)",
    ]


def test_sizes_are_whole_mib_and_metadata_changes_are_updates(cfg, path, share):
    share.create_volume(nfs.new_record("db02", 2 * MIB, description="old", metadata={"a": "1"}), sparse=True)
    actions, errors = volumes(cfg, path, item(size="1000000B"), item(name="db02", size="2MiB", metadata={"b": "2"}),
                              item(name="db02x", size="2MiB"))
    assert errors == []
    assert [(a["action"], a["size_bytes"]) for a in actions] == [
        ("create", MIB), ("update", 2 * MIB), ("create", 2 * MIB)]
    assert (actions[1]["description"], actions[1]["metadata"], actions[1]["previous_metadata"]) == (
        "old", {"b": "2"}, {"a": "1"})


def test_a_source_must_not_change_in_the_run_that_copies_it(cfg, path, share):
    share.create_volume(nfs.new_record("src", 2 * MIB), sparse=True)
    _actions, errors = volumes(cfg, path, item(name="src", size="3MiB"), item(name="copy", source={"volume": "src"}),
                               item(name="new", size="1MiB"), item(name="copy2", source={"volume": "new"}),
                               item(name="copy3", size="1MiB", source={"volume": "src"}))
    assert errors == [
        "volumes[3].source.volume: volume 'new' is created in this same run (volumes[2]); a source must exist before "
        "the run: create it in an earlier task",
        "volumes[4].size: '1MiB' (1 MiB) is smaller than its source's size 2 MiB (volume src); a volume made from a "
        "source is at least as big (Cinder refuses a smaller one)",
        "volumes[1].source.volume: volume 'src' is extended in this same run (volumes[0]); a source must not change "
        "in the run that copies it: extend it in an earlier or a later task"]


def test_an_unreadable_sidecar_or_a_missing_file_is_never_recreated(cfg, path, share):
    with open(os.path.join(path, "volume-db01.info"), "w") as handle:
        handle.write("{}")
    share.create_volume(nfs.new_record("db02", MIB), sparse=True)
    os.unlink(os.path.join(path, "volume-db02"))
    _actions, errors = volumes(cfg, path, item(), item(name="db02", size="1MiB"))
    assert "volumes[0]: sidecar %s/volume-db01.info on share %s cannot be read: no 'ember.blockstore': " \
           "'nfs-volume' mark; the volume is unknown" % (path, SHARE) in errors[0]
    assert errors[1] == ("volumes[1]: volume db02's sidecar is on share %s but its file %s/volume-db02 is missing; it "
                         "is not re-created empty: restore the file, or delete the volume (state: absent)"
                         % (SHARE, path))


def test_an_interrupted_create_is_finished(cfg, path, share):
    """A sidecar left ``creating``: without its file the volume is made again; with it (the rename was done) only
    the sidecar is finished, grown when asked bigger."""
    module = LocalModule()
    share = nfs.NfsShare(nfs.Nfs(Runner(module)), SHARE, path)
    share.create_volume(nfs.new_record("done", 2 * MIB), sparse=True)
    set_sidecar(share, "done", status="creating")
    share.write_info(nfs.new_record("lost", 2 * MIB))  # status creating, no file
    open(os.path.join(path, ".volume-lost.tmp"), "w").close()
    actions, errors = volumes(cfg, path, item(name="done", size="3MiB"), item(name="lost", size=None))
    assert errors == []
    assert [(a["action"], a["resume"], a["size_bytes"]) for a in actions] == [("create", True, 3 * MIB),
                                                                              ("create", True, 2 * MIB)]
    applier = nv.NfsVolumeApplier(share.nfs, views(cfg, path))
    assert [exc for _act, exc in applier.apply_batch(actions)] == [None, None]
    assert sidecar(path, "done")["status"] == sidecar(path, "lost")["status"] == "available"
    assert os.path.getsize(os.path.join(path, "volume-done")) == 3 * MIB
    assert sorted(os.listdir(path)) == ["volume-done", "volume-done.info", "volume-lost", "volume-lost.info"]


def test_an_interrupted_delete_is_finished_and_refuses_present(cfg, path, share):
    share.create_volume(nfs.new_record("db01", MIB), sparse=True)
    set_sidecar(share, "db01", status="deleting")
    _actions, errors = volumes(cfg, path, item())
    assert errors == ["volumes[0]: volume db01 on share %s was being deleted when a run stopped (its sidecar says "
                      "deleting); declare it absent to finish the delete" % SHARE]
    actions, errors = volumes(cfg, path, item(state="absent"))
    assert errors == [] and actions[0]["action"] == "delete"
    nv.NfsVolumeApplier(share.nfs, views(cfg, path)).apply_batch(actions)
    assert os.listdir(path) == []


def test_a_failed_delete_stops_the_deletes_after_it(cfg, path, share, monkeypatch):
    for name in ("a", "b"):
        share.create_volume(nfs.new_record(name, MIB), sparse=True)
    actions, errors = volumes(cfg, path, item(name="a", state="absent"), item(name="b", state="absent"))
    assert errors == []

    def fail(self, record):
        raise nfs.NfsError("deleting volume %s failed" % record["name"], SHARE)
    monkeypatch.setattr(nfs.NfsShare, "delete_volume", fail)
    outcomes = nv.NfsVolumeApplier(share.nfs, views(cfg, path)).apply_batch(actions)
    assert [(act["name"], str(exc)) for act, exc in outcomes] == [("a", "deleting volume a failed")]


# --- snapshots ------------------------------------------------------------------------------------------------------

def test_snapshot_decisions(cfg, path, share):
    rec = nfs.new_record("db01", 2 * MIB)
    share.create_volume(rec, sparse=True)
    share.create_snapshot(rec, "old")
    share.create_snapshot(rec, "new")
    open(os.path.join(path, "volume-db01.snap-stray"), "w").close()
    actions, errors = snapshots(cfg, path, snap_item(), snap_item(name="old", state="absent"),
                                snap_item(name="gone", state="absent"), snap_item(name="stray"),
                                snap_item(name="s2", cow_size="3MiB"), snap_item(name="s3", volume="nope"),
                                snap_item(name="new", description="d"))
    assert [(a["name"], a["action"]) for a in actions] == [("s1", "create"), ("old", "delete"), ("gone", "absent"),
                                                           ("new", "update")]
    assert errors == [
        "snapshots[3]: %s/volume-db01.snap-stray exists on share %s but is not recorded as a snapshot in volume "
        "db01's sidecar; refusing to touch it" % (path, SHARE),
        "snapshots[4].cow_size: '3MiB' (3 MiB) is more than volume db01's size 2 MiB, the most its snapshot can use",
        "snapshots[5].volume: volume 'nope' does not exist on share %s (no sidecar volume-nope.info)" % SHARE]
    actions, errors = snapshots(cfg, path, snap_item(name="new", state="reverted"), snap_item(name="s9"))
    assert errors == ["snapshots[1]: volume db01 is reverted to new in the same run; change its other snapshots in "
                      "another run (the revert depends on which snapshot is the latest)"]


def test_revert_needs_equal_sizes_and_an_interrupted_one_is_finished(cfg, path, share):
    rec = nfs.new_record("db01", 2 * MIB)
    share.create_volume(rec, sparse=True)
    volume = os.path.join(path, "volume-db01")
    write_pattern(volume, 2 * MIB, seed=1)
    share.create_snapshot(rec, "s1")
    original = sha256(volume)
    share.extend_volume(rec, 2 * MIB, 3 * MIB, sparse=True)
    _actions, errors = snapshots(cfg, path, snap_item(state="reverted"))
    assert errors == ["snapshots[0]: volume db01 is 3 MiB but was 2 MiB when snapshot s1 was taken; Cinder reverts "
                      "only when the sizes are equal"]
    os.truncate(volume, 2 * MIB)
    write_pattern(volume, MIB, seed=2)
    set_sidecar(share, "db01", size_bytes=2 * MIB, reverting="s1")  # a run stopped during the copy back
    _actions, errors = snapshots(cfg, path, snap_item(name="s2"))
    assert errors == ["snapshots[0]: a revert of volume db01 to snapshot s1 was interrupted; finish it first (state: "
                      "reverted, name: s1)"]
    actions, errors = snapshots(cfg, path, snap_item(state="reverted", attached=False))
    assert errors == [] and (actions[0]["action"], actions[0]["resume"]) == ("revert", True)
    nv.NfsSnapshotApplier(share.nfs, views(cfg, path)).apply(actions[0])
    assert sha256(volume) == original
    assert sidecar(path, "db01")["reverting"] is None and sidecar(path, "db01")["snapshots"]["s1"]["reverted"]


def test_an_interrupted_snapshot_is_taken_again(cfg, path, share):
    rec = nfs.new_record("db01", MIB)
    share.create_volume(rec, sparse=True)
    share.create_snapshot(rec, "s1")
    set_sidecar(share, "db01", snapshots={"s1": dict(sidecar(path, "db01")["snapshots"]["s1"], status="creating")})
    os.unlink(os.path.join(path, "volume-db01.snap-s1"))
    actions, errors = snapshots(cfg, path, snap_item())
    assert errors == [] and (actions[0]["action"], actions[0]["resume"]) == ("create", True)
    nv.NfsSnapshotApplier(share.nfs, views(cfg, path)).apply(actions[0])
    assert sidecar(path, "db01")["snapshots"]["s1"]["status"] == "available"
    assert os.path.exists(os.path.join(path, "volume-db01.snap-s1"))


def test_check_mode_predicts_a_snapshot_of_a_volume_to_be_created(cfg, path):
    actions, errors = snapshots(cfg, path, snap_item(volume="later"), predict=True)
    assert errors == [] and actions[0]["action"] == "create"
