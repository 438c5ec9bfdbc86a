# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_volume.decide`` (the volume module's pure decision) over LVM state captured on the lab.

stor1: ember-thick/volume-a (managed, 1002438656 B = 239 extents, COW snapshot snap-a), ember-thin/thinpool with
volume-b (managed thin, 1 GiB, thin snapshot snap-b). converged: ember-thick/volume-logs01 (256 MiB),
volume-scratch01 (512 MiB); ember-thin/thinpool with volume-archive01 (2 GiB) and volume-db01-data (1 GiB).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._metadata import (
    DESCRIPTION_TAG,
    METADATA_TAG,
    description_tags,
    metadata_tags,
    read_meta,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import decode_tag_text, encode_tag_text
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import (
    _SNAPSHOT_ONLY,
    decode_description,
    encode_description,
)
from ansible_collections.ember.blockstore.plugins.module_utils._volume import (
    ITEM_OPTIONS,
    VolumeApplier,
    decide,
    exported_volumes,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import lvm as lvm_driver
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm, LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_show, render_conf

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
MiB, GiB = 2**20, 2**30
EXTENT = 4194304
A_SIZE = 1002438656  # lv_size of volume-a in lvs_stor1.json
B_SIZE = 1073741824  # lv_size of volume-b in lvs_stor1.json


def text(name):
    return (FIXTURES / name).read_text()


def lvm_state(which, edit=None):
    """LVM state from the captured JSON; ``edit(rows)`` may change the raw ``lvs`` rows first."""
    data = json.loads(text("lvm/lvs_%s.json" % which))
    if edit:
        edit(data["report"][0]["lv"])
    return LvmState(parse_vgs(text("lvm/vgs_%s.json" % which)), parse_lvs(json.dumps(data)))


def item(**kwargs):
    """A validated item as AnsibleModule hands it over: every option present, defaults filled in."""
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update(kwargs)
    return out


@pytest.fixture(scope="module")
def stor1():
    return lvm_state("stor1")


@pytest.fixture(scope="module")
def converged():
    return lvm_state("converged")


def one(items, state, exported=None, **kwargs):
    actions, errors = decide(items if isinstance(items, list) else [items], state, exported or {}, **kwargs)
    return actions, errors


# --- present -----------------------------------------------------------------------------------------------------

def test_create_thick(converged):
    actions, errors = one(item(name="web01", size="256MiB", vg="ember-thick", volume_type="bulk",
                               backend="lvm-thick"), converged)
    assert errors == []
    (act,) = actions
    assert act["action"] == "create"
    assert act["size_bytes"] == 256 * MiB
    assert act["previous_size_bytes"] is None
    assert act["lv_name"] == "volume-web01"
    assert act["device"] == "/dev/ember-thick/volume-web01"
    assert act["status"] == "available"
    assert act["exported"] is None
    assert act["snapshots"] == []
    assert act["thin_pool"] is None
    assert act["volume_type"] == "bulk" and act["backend"] == "lvm-thick"


def test_create_thin(converged):
    actions, errors = one(item(name="db02-data", size="1GiB", vg="ember-thin", thin_pool="thinpool",
                               volume_type="fast"), converged)
    assert errors == []
    (act,) = actions
    assert (act["action"], act["size_bytes"], act["thin_pool"]) == ("create", GiB, "thinpool")
    assert act["device"] == "/dev/ember-thin/volume-db02-data"


def test_create_rounds_up_to_whole_extents(converged):
    (act,), errors = one(item(name="new", size="1G", vg="ember-thick"), converged)
    assert errors == []
    assert act["size_bytes"] == A_SIZE == 239 * EXTENT  # what lvcreate made of 1G for volume-a
    (act,), dummy = one(item(name="new", size="1B", vg="ember-thick"), converged)
    assert act["size_bytes"] == EXTENT


@pytest.mark.parametrize("size", [1, "1", 1.0, "1GiB", "1073741824B"])
def test_a_bare_size_is_gib_as_in_cinder(converged, size):
    (act,), errors = one(item(name="new", size=size, vg="ember-thick"), converged)
    assert errors == []
    assert act["size_bytes"] == GiB  # 2**30, a whole number of 4 MiB extents


def test_same_size_after_extent_rounding_is_none(stor1):
    # volume-a was created with size 1G: 10**9 bytes became 1002438656; asking 1G again changes nothing.
    (act,), errors = one(item(name="a", size="1G", vg="ember-thick"), stor1)
    assert errors == []
    assert act["action"] == "none"
    assert act["size_bytes"] == act["previous_size_bytes"] == A_SIZE
    assert act["status"] == "available"
    assert act["snapshots"] == ["snap-a"]


@pytest.mark.parametrize("size", ["%dB" % A_SIZE, "%d b" % A_SIZE, "1G", "1000MB", "%dB" % (A_SIZE - EXTENT + 1)])
def test_sizes_that_round_to_the_current_size_are_none(stor1, size):
    (act,), errors = one(item(name="a", size=size, vg="ember-thick"), stor1)
    assert errors == []
    assert act["action"] == "none"


def test_thin_same_size_is_none(stor1):
    (act,), errors = one(item(name="b", size="1GiB", vg="ember-thin", thin_pool="thinpool"), stor1)
    assert errors == []
    assert (act["action"], act["size_bytes"], act["previous_size_bytes"]) == ("none", B_SIZE, B_SIZE)
    assert act["snapshots"] == ["snap-b"]


def test_extend(stor1):
    (act,), errors = one(item(name="a", size="1GiB", vg="ember-thick"), stor1)
    assert errors == []
    assert act["action"] == "extend"
    assert act["size_bytes"] == GiB
    assert act["previous_size_bytes"] == A_SIZE


def test_extend_by_one_byte_takes_a_whole_extent(stor1):
    (act,), dummy = one(item(name="a", size="%dB" % (A_SIZE + 1), vg="ember-thick"), stor1)
    assert (act["action"], act["size_bytes"]) == ("extend", A_SIZE + EXTENT)


def test_extend_thin(converged):
    (act,), errors = one(item(name="db01-data", size="2GiB", vg="ember-thin", thin_pool="thinpool"), converged)
    assert errors == []
    assert (act["action"], act["size_bytes"], act["previous_size_bytes"]) == ("extend", 2 * GiB, GiB)


def test_shrink_is_an_error_naming_both_sizes(stor1):
    actions, errors = one(item(name="a", size="512MiB", vg="ember-thick"), stor1)
    assert actions == []
    assert errors == ["volumes[0].size: 512MiB (512 MiB) is smaller than volume a's current size 956 MiB; "
                      "volumes are never shrunk"]


def test_shrink_error_uses_the_field_name(converged):
    dummy, errors = one(item(name="archive01", size="1GiB", vg="ember-thin", thin_pool="thinpool"), converged,
                        field="volume")
    assert errors == ["volume[0].size: 1GiB (1 GiB) is smaller than volume archive01's current size 2 GiB; "
                      "volumes are never shrunk"]


def test_exported_existing_volume_is_in_use(converged):
    exported = {"db01-data": PREFIX + "volume-db01-data"}
    (act,), errors = one(item(name="db01-data", size="1GiB", vg="ember-thin", thin_pool="thinpool"), converged,
                         exported)
    assert errors == []
    assert act["action"] == "none"
    assert act["status"] == "in-use"
    assert act["exported"] == PREFIX + "volume-db01-data"


def test_volume_clear_size_is_parsed(converged):
    (act,), errors = one(item(name="scratch01", state="absent", vg="ember-thick", volume_clear_size="1MiB"),
                         converged)
    assert errors == []
    assert act["volume_clear_size_bytes"] == MiB


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0), ("0", 0), (100, 100 * MiB), ("100", 100 * MiB), ("512KiB", 512 * 1024), ("1GiB", 1024 * MiB),
    ("100B", 100), (1.5, 3 * MiB // 2)])
def test_volume_clear_size_is_mib_as_in_cinder(converged, value, expected):
    (act,), errors = one(item(name="scratch01", state="absent", vg="ember-thick", volume_clear_size=value),
                         converged)
    assert errors == []
    assert act["volume_clear_size_bytes"] == expected


def test_volume_clear_size_negative(converged):
    dummy, errors = one(item(name="scratch01", state="absent", vg="ember-thick", volume_clear_size="-5"), converged)
    assert errors == ["volumes[0].volume_clear_size: '-5' is negative; a size is 0 or more"]


class _Runner:
    """Records commands; every command succeeds."""

    def __init__(self):
        self.commands = []
        self.module = self

    def get_bin_path(self, name):
        return None

    def run(self, args, check=True):
        self.commands.append(args)
        return 0, "", ""


def _dd_counts(runner):
    return [next(a for a in cmd if a.startswith("count=")) for cmd in runner.commands if cmd[0] == "dd"]


@pytest.mark.parametrize(("size", "clear", "count", "wiped"), [
    (256 * MiB, 0, "count=256", 256 * MiB),  # 0 = the whole volume
    (256 * MiB, 100 * MiB, "count=100", 100 * MiB),  # Cinder's volume_clear_size = 100
    (256 * MiB, 100, "count=1", MiB),  # 100 bytes: one whole MiB (it wrote nothing before)
    (256 * MiB, 1024 * MiB, "count=256", 256 * MiB),  # never more than the volume
    (4 * MiB + 5, 0, "count=4", 4 * MiB),
])
def test_lvm_clear_counts(size, clear, count, wiped):
    runner = _Runner()
    assert Lvm(runner).clear("/dev/ember-thick/volume-x", size, clear) == (wiped, "dd")
    assert _dd_counts(runner) == [count]


class _Tools(_Runner):
    """ionice and blkdiscard are installed; blkdiscard answers ``rc``."""

    def __init__(self, rc):
        super().__init__()
        self.rc = rc

    def get_bin_path(self, name):
        return "/usr/bin/" + name

    def run(self, args, check=True):
        self.commands.append(args)
        return (self.rc if "blkdiscard" in args else 0), "", ""


def test_clear_uses_blkdiscard_zeroout_for_the_same_bytes():
    runner = _Tools(rc=0)
    assert Lvm(runner).clear("/dev/ember-thick/volume-x", 256 * MiB, 100 * MiB) == (100 * MiB, "blkdiscard --zeroout")
    assert runner.commands == [["/usr/bin/ionice", "-c3", "blkdiscard", "--zeroout", "--offset", "0", "--length",
                                str(100 * MiB), "/dev/ember-thick/volume-x"]]


def test_clear_falls_back_to_dd_when_blkdiscard_fails():
    runner = _Tools(rc=1)  # e.g. an old util-linux without --zeroout
    assert Lvm(runner).clear("/dev/ember-thick/volume-x", 256 * MiB) == (256 * MiB, "dd")
    assert [c[2] for c in runner.commands] == ["blkdiscard", "dd"]  # after /usr/bin/ionice -c3
    assert runner.commands[1][2:] == ["dd", "if=/dev/zero", "of=/dev/ember-thick/volume-x", "bs=1M", "count=256",
                                      "oflag=direct", "conv=fdatasync"]


def _delete_action(**kwargs):
    act = {"name": "x", "vg": "ember-thick", "lv_name": "volume-x", "device": "/dev/ember-thick/volume-x",
           "exported": None, "snapshots": [], "thin_pool": None, "volume_clear": "zero",
           "previous_size_bytes": 256 * MiB, "volume_clear_size_bytes": 0}
    act.update(kwargs)
    return act


def test_a_wipe_is_reported_only_when_it_wrote_zeros():
    runner = _Runner()
    applier = VolumeApplier(Lvm(runner), None, PREFIX)
    act = _delete_action(volume_clear_size_bytes=100 * MiB)
    applier.delete(act)
    assert (act["wipe"], act["wiped_bytes"]) == ("zero", 100 * MiB)
    act = _delete_action(previous_size_bytes=512 * 1024)  # smaller than the 1 MiB dd block: nothing written
    applier.delete(act)
    assert act["wiped_bytes"] == 0
    assert act["wipe"].startswith("skipped: ")
    act = _delete_action(volume_clear="none")
    applier.delete(act)
    assert (act["wipe"], act["wiped_bytes"]) == ("none", 0)
    act = _delete_action(thin_pool="thinpool")
    applier.delete(act)
    assert act["wipe"].startswith("skipped: ") and act["wiped_bytes"] == 0


# --- refused -----------------------------------------------------------------------------------------------------

def _unmanage(name):
    def edit(rows):
        for row in rows:
            if row["lv_name"] == name:
                row["lv_tags"] = ""
    return edit


@pytest.mark.parametrize("state", ["present", "absent"])
def test_unmanaged_lv_is_refused(state):
    st = lvm_state("stor1", _unmanage("volume-b"))
    actions, errors = one(item(name="b", size="2GiB", vg="ember-thin", thin_pool="thinpool", state=state,
                               force=True, cascade=True), st)
    assert actions == []
    assert errors == ["volumes[0]: LV ember-thin/volume-b exists but is not managed by ember.blockstore (it needs "
                      "both tags 'ember.blockstore' and 'ember.volume=b'); refusing to touch it"]


@pytest.mark.parametrize("tags", ["ember.blockstore", "ember.volume=b", "ember.blockstore,ember.volume=c",
                                  "ember.blockstore,ember.volume=volume-b"])
def test_one_tag_is_not_managed(tags):
    # "Managed" means both tags, the volume tag naming this very LV (issue 7).
    def edit(rows):
        for row in rows:
            if row["lv_name"] == "volume-b":
                row["lv_tags"] = tags
    st = lvm_state("stor1", edit)
    actions, errors = one(item(name="b", state="absent", vg="ember-thin", thin_pool="thinpool", force=True,
                               cascade=True), st)
    assert actions == []
    assert "exists but is not managed by ember.blockstore" in errors[0]


def _tag(name, tags):
    def edit(rows):
        for row in rows:
            if row["lv_name"] == name:
                row["lv_tags"] = tags
    return edit


def test_a_backup_base_goes_with_its_volume_without_cascade():
    # snap-a stands for the backup module's kept base of volume a (ember.backup=<backup>, no ember.snapshot=):
    # not a user's snapshot, so no cascade is needed and the delete removes it first; the backups stay in the store.
    st = lvm_state("stor1", _tag("snap-a", "ember.blockstore,ember.backup=nightly,ember.volume=a"))
    (act,), errors = one(item(name="a", state="absent", vg="ember-thick"), st)
    assert errors == []
    assert (act["action"], act["snapshots"], act["backup_bases"]) == ("delete", [], ["snap-a"])
    # Another volume's base is not this volume's: it stays foreign here.
    st = lvm_state("stor1", _tag("snap-a", "ember.blockstore,ember.backup=nightly,ember.volume=b"))
    actions, errors = one(item(name="a", state="absent", vg="ember-thick", cascade=True), st)
    assert actions == [] and "not ember.blockstore's (snap-a" in errors[0]


@pytest.mark.parametrize("status", ["backing-up", "restoring-backup"])
def test_a_volume_being_backed_up_or_restored_is_not_extended_or_deleted(stor1, status):
    tags = next(r for r in json.loads(text("lvm/lvs_stor1.json"))["report"][0]["lv"]
                if r["lv_name"] == "volume-b")["lv_tags"]
    st = lvm_state("stor1", _tag("volume-b", tags + ",ember.status=" + status))
    actions, errors = one(item(name="b", state="absent", vg="ember-thin", thin_pool="thinpool", force=True,
                               cascade=True), st)
    assert actions == [] and errors == ["volumes[0]: volume b is %s (its tag says so); delete it when that has "
                                        "finished (a run that died leaves the tag: the backup module's next run "
                                        "clears it)" % status]
    actions, errors = one(item(name="b", size="64GiB", vg="ember-thin", thin_pool="thinpool"), st)
    assert actions == [] and errors == ["volumes[0].size: volume b is %s (its tag says so); extend it when that "
                                        "has finished" % status]


def test_thin_to_thick_is_refused(stor1):
    actions, errors = one(item(name="b", size="1GiB", vg="ember-thin"), stor1)
    assert actions == []
    assert errors == ["volumes[0]: volume b exists as a thin (pool thinpool) LV in ember-thin; it cannot move to "
                      "a thick LV"]


def test_thick_to_thin_is_refused():
    # stor1's volume-a row moved into ember-thin (which has a thin pool) as a thick LV.
    def edit(rows):
        for row in rows:
            if row["lv_name"] == "volume-a":
                row["vg_name"] = "ember-thin"
    st = lvm_state("stor1", edit)
    actions, errors = one(item(name="a", size="1G", vg="ember-thin", thin_pool="thinpool"), st)
    assert actions == []
    assert errors == ["volumes[0]: volume a exists as a thick LV in ember-thin; it cannot move to thin pool "
                      "thinpool"]


def test_thin_to_another_pool_is_refused():
    # A second pool in ember-thin: the captured thinpool row under another name.
    def edit(rows):
        rows.append(dict(next(r for r in rows if r["lv_name"] == "thinpool"), lv_name="pool2"))
    st = lvm_state("stor1", edit)
    actions, errors = one(item(name="b", size="1GiB", vg="ember-thin", thin_pool="pool2"), st)
    assert actions == []
    assert errors == ["volumes[0]: volume b exists as a thin (pool thinpool) LV in ember-thin; it cannot move to "
                      "thin pool pool2"]


def test_missing_vg_is_an_error(stor1):
    actions, errors = one(item(name="x", size="1GiB", vg="ember-fast"), stor1)
    assert actions == []
    assert errors == ["volumes[0].vg: volume group 'ember-fast' does not exist on this host"]


def test_missing_vg_is_predicted_in_check_mode(stor1):
    (act,), errors = one(item(name="x", size="1G", vg="ember-fast"), stor1, predict_missing=True)
    assert errors == []
    assert act["action"] == "create"
    assert act["size_bytes"] == A_SIZE  # default 4 MiB extent when the VG does not exist yet
    assert act["device"] == "/dev/ember-fast/volume-x"


def test_missing_thin_pool_is_an_error(stor1):
    actions, errors = one(item(name="x", size="1GiB", vg="ember-thick", thin_pool="thinpool"), stor1)
    assert actions == []
    assert errors == ["volumes[0].thin_pool: thin pool ember-thick/thinpool does not exist"]


def test_missing_thin_pool_is_predicted_in_check_mode(stor1):
    (act,), errors = one(item(name="x", size="1GiB", vg="ember-thick", thin_pool="thinpool"), stor1,
                         predict_missing=True)
    assert errors == []
    assert (act["action"], act["size_bytes"], act["thin_pool"]) == ("create", GiB, "thinpool")


def test_thin_pool_that_is_not_a_thin_pool_is_an_error(stor1):
    actions, errors = one(item(name="x", size="1GiB", vg="ember-thick", thin_pool="volume-a"), stor1)
    assert actions == []
    assert len(errors) == 1 and errors[0].startswith("volumes[0].thin_pool:")


def test_size_is_required_when_present(stor1):
    actions, errors = one(item(name="x", vg="ember-thick"), stor1)
    assert actions == []
    assert errors == ["volumes[0].size: required when state is present (volume x)"]


@pytest.mark.parametrize("size", [0, "0", "0GiB"])
def test_zero_size_is_an_error(stor1, size):
    actions, errors = one(item(name="x", size=size, vg="ember-thick"), stor1)
    assert actions == []
    assert errors == ["volumes[0].size: %r must be greater than zero" % (size,)]


# --- absent ------------------------------------------------------------------------------------------------------

def test_delete(converged):
    (act,), errors = one(item(name="scratch01", state="absent", vg="ember-thick"), converged)
    assert errors == []
    assert act["action"] == "delete"
    assert act["status"] == "deleted"
    assert act["size_bytes"] is None
    assert act["previous_size_bytes"] == 536870912
    assert act["device"] == "/dev/ember-thick/volume-scratch01"
    assert act["snapshots"] == []
    assert act["exported"] is None


def test_delete_in_use_needs_force(converged):
    exported = {"logs01": PREFIX + "volume-logs01"}
    actions, errors = one(item(name="logs01", state="absent", vg="ember-thick"), converged, exported)
    assert actions == []
    assert errors == ["volumes[0]: volume logs01 is in-use (exported as %svolume-logs01); detach it first or set "
                      "force: true" % PREFIX]
    (act,), errors = one(item(name="logs01", state="absent", vg="ember-thick", force=True), converged, exported)
    assert errors == []
    assert act["action"] == "delete"
    assert act["exported"] == PREFIX + "volume-logs01"
    assert act["previous_size_bytes"] == 268435456


def test_delete_with_snapshots_needs_cascade(stor1):
    actions, errors = one(item(name="a", state="absent", vg="ember-thick"), stor1)
    assert actions == []
    assert errors == ["volumes[0]: volume a has snapshots (snap-a); delete them first or set cascade: true"]
    # snap-a was made by hand (no tags): cascade never deletes a snapshot that is not the project's.
    actions, errors = one(item(name="a", state="absent", vg="ember-thick", cascade=True), stor1)
    assert actions == []
    assert errors == ["volumes[0]: volume a has snapshots that are not ember.blockstore's (snap-a: no "
                      "'ember.blockstore', 'ember.volume=a' and 'ember.snapshot=<name>' tags); cascade deletes only "
                      "the project's snapshots, so remove these by hand first"]

    def tag_snapshot(rows):
        for row in rows:
            if row["lv_name"] == "snap-a":
                row["lv_tags"] = "ember.blockstore,ember.snapshot=snap-a,ember.volume=a"
    (act,), errors = one(item(name="a", state="absent", vg="ember-thick", cascade=True),
                         lvm_state("stor1", tag_snapshot))
    assert errors == []
    assert (act["action"], act["snapshots"], act["previous_size_bytes"]) == ("delete", ["snap-a"], A_SIZE)


@pytest.mark.parametrize("tags", ["ember.blockstore", "ember.blockstore,ember.volume=a",
                                  "ember.blockstore,ember.snapshot=s", "ember.volume=a,ember.snapshot=s",
                                  "ember.blockstore,ember.volume=b,ember.snapshot=s",
                                  "ember.blockstore,ember.volume=a,ember.snapshot="])
def test_cascade_needs_every_snapshot_tag(tags):
    def edit(rows):
        for row in rows:
            if row["lv_name"] == "snap-a":
                row["lv_tags"] = tags
    actions, errors = one(item(name="a", state="absent", vg="ember-thick", cascade=True), lvm_state("stor1", edit))
    assert actions == []
    assert "not ember.blockstore's (snap-a" in errors[0]


def test_a_volume_exported_by_a_foreign_target_is_not_deleted(converged):
    actions, errors = one(item(name="logs01", state="absent", vg="ember-thick", force=True), converged,
                          foreign={"logs01": PREFIX + "volume-logs01"})
    assert actions == []
    assert errors == ["volumes[0]: target %svolume-logs01 has volume logs01's IQN but is not managed by "
                      "ember.blockstore; it is never removed, so the volume is not deleted" % PREFIX]


def test_delete_thin_with_thin_snapshot_needs_cascade(stor1):
    actions, errors = one(item(name="b", state="absent", vg="ember-thin", thin_pool="thinpool"), stor1)
    assert actions == []
    assert errors == ["volumes[0]: volume b has snapshots (snap-b); delete them first or set cascade: true"]


def test_in_use_is_checked_before_snapshots(stor1):
    dummy, errors = one(item(name="a", state="absent", vg="ember-thick"), stor1, {"a": PREFIX + "volume-a"})
    assert errors == ["volumes[0]: volume a is in-use (exported as %svolume-a); detach it first or set force: "
                      "true" % PREFIX]


@pytest.mark.parametrize("vg", ["ember-thick", "no-such-vg"])
def test_absent_volume_that_does_not_exist(stor1, vg):
    (act,), errors = one(item(name="gone", state="absent", vg=vg), stor1)
    assert errors == []
    assert act["action"] == "absent"
    assert act["status"] == "absent"
    assert act["size_bytes"] is None and act["previous_size_bytes"] is None


# --- item validation ---------------------------------------------------------------------------------------------

def test_duplicate_names(converged):
    actions, errors = one([item(name="logs01", size="256MiB", vg="ember-thick"),
                           item(name="logs01", size="512MiB", vg="ember-thick")], converged)
    assert errors == ["volumes[1].name: 'logs01' is listed twice"]
    assert [a["name"] for a in actions] == ["logs01"]


@pytest.mark.parametrize(("bad", "message"), [
    ({"size": "ten"}, "volumes[1].size: 'ten' is not a size"),
    ({"size": "10 GiX"}, "volumes[1].size: '10 GiX' has an unknown unit 'GiX'"),
    ({"size": -1}, "volumes[1].size: -1 is negative"),
    ({"size": True}, "volumes[1].size: True is not a size"),
    ({"name": "Bad_Name"}, "volumes[1].name: 'Bad_Name' is not a valid volume name"),
    ({"name": "x-"}, "volumes[1].name: 'x-' is not a valid volume name"),
    ({"name": "x" * 64}, "volumes[1].name: '%s' is not a valid volume name" % ("x" * 64)),
    ({"volume_type": "no spaces"}, "volumes[1].volume_type: 'no spaces' is not a valid volume type name"),
    ({"volume_clear_size": "lots"}, "volumes[1].volume_clear_size: 'lots' is not a size"),
])
def test_bad_items_name_the_field(converged, bad, message):
    good = item(name="web01", size="256MiB", vg="ember-thick")
    actions, errors = one([good, item(**{**good, "name": "web02", **bad})], converged)
    assert len(errors) == 1
    assert errors[0].startswith(message)
    assert [a["name"] for a in actions] == ["web01"]


def test_every_bad_item_is_reported(converged):
    dummy, errors = one([item(name="A", size="1GiB", vg="ember-thick"),
                         item(name="ok", size="x", vg="ember-thick"),
                         item(name="scratch01", size="1MiB", vg="ember-thick")], converged)
    assert [e.split(":")[0] for e in errors] == ["volumes[0].name", "volumes[1].size", "volumes[2].size"]


def test_batch_keeps_request_order(converged):
    actions, errors = one([
        item(name="web01", size="256MiB", vg="ember-thick"),
        item(name="scratch01", size="512MiB", vg="ember-thick"),
        item(name="archive01", size="3GiB", vg="ember-thin", thin_pool="thinpool"),
        item(name="logs01", state="absent", vg="ember-thick"),
        item(name="old", state="absent", vg="ember-thick"),
    ], converged)
    assert errors == []
    assert [(a["name"], a["action"]) for a in actions] == [
        ("web01", "create"), ("scratch01", "none"), ("archive01", "extend"), ("logs01", "delete"),
        ("old", "absent")]


# --- exported_volumes --------------------------------------------------------------------------------------------

def _conf(name):
    iqn = PREFIX + "volume-" + name
    return render_conf(iqn, "/dev/vg/volume-" + name, [], "ember_" + name.replace("-", "_"), "Secret_123456",
                       volume=name, addresses=["198.18.0.21"])


def test_exported_volumes_live_targets_and_files():
    live = parse_show(text("tgt/show_two_targets.txt"))
    files = {"/etc/tgt/conf.d/ember-volume-%s.conf" % n: _conf(n) for n in ("db01-data", "scratch01")}
    files["/etc/tgt/conf.d/ember-volume-archive01.conf"] = "<target %svolume-archive01>\n</target>\n" % PREFIX
    ours, foreign = exported_volumes(["db01-data", "logs01", "scratch01", "archive01"], live, PREFIX,
                                     read=files.get)
    # Ours: a file with the marker (with or without a live target). Foreign: logs01 is live without a file,
    # archive01 has a file without the marker.
    assert ours == {"db01-data": PREFIX + "volume-db01-data", "scratch01": PREFIX + "volume-scratch01"}
    assert foreign == {"logs01": PREFIX + "volume-logs01", "archive01": PREFIX + "volume-archive01"}


def test_exported_volumes_other_prefix_and_no_files():
    live = parse_show(text("tgt/show_two_targets.txt"))
    assert exported_volumes(["db01-data"], live, "iqn.2010-10.org.openstack:", read=lambda p: None) == ({}, {})
    assert exported_volumes([], live, PREFIX, read=lambda p: "x") == ({}, {})
    # A file of ours for another prefix's IQN is not this target's.
    assert exported_volumes(["db01-data"], {}, "iqn.2010-10.org.openstack:", read=lambda p: _conf("db01-data")) == (
        {}, {"db01-data": "iqn.2010-10.org.openstack:volume-db01-data"})


def test_exported_volumes_asks_for_the_volume_conf_path():
    asked = []
    exported_volumes(["db01-data"], {}, PREFIX, read=asked.append)
    assert asked == ["/etc/tgt/conf.d/ember-volume-db01-data.conf"]


# --- batched apply (one lvm shell for creates and extends) ------------------------------------------------------

class _LvmWorld:
    """A storage node's LVM as the driver sees it: ``lvs``/``vgs`` answer from rows that ``lvcreate``/``lvextend``
    change, whether they run alone or as lines on an ``lvm`` shell's stdin. ``refuse``: LV names whose commands
    fail (LVM prints the error on stderr and goes on with the next line, as its shell does)."""

    def __init__(self, refuse=()):
        self.rows = json.loads(text("lvm/lvs_converged.json"))["report"][0]["lv"]
        self.refuse = set(refuse)
        self.commands = []
        self.module = self

    def get_bin_path(self, name):
        return None

    def run(self, args, check=True, ok_rcs=(0,), data=None):
        self.commands.append(list(args))
        if args[0] == "lvm":
            failed = [self._change(line.split()) for line in data.splitlines()]
            return (5 if any(failed) else 0), "", "".join(failed)
        if args[0] in ("lvcreate", "lvextend", "lvchange"):
            err = self._change(list(args))
            if err and check:
                raise CommandError(list(args), 5, "", err)
            return (5 if err else 0), "", err
        if args[0] == "vgs":
            return 0, text("lvm/vgs_converged.json"), ""
        if args[0] == "lvs":
            return 0, json.dumps({"report": [{"lv": self.rows}]}), ""
        return 0, "", ""

    def _change(self, args):
        name = args[args.index("-n") + 1] if "-n" in args else args[-1].split("/")[1]
        if name in self.refuse:
            return "  Volume group \"ember-thick\" has insufficient free space for %s.\n" % name
        if args[0] == "lvchange":
            row = next(r for r in self.rows if r["lv_name"] == name)
            gone = {args[i + 1] for i, a in enumerate(args) if a == "--deltag"}
            tags = [t for t in row["lv_tags"].split(",") if t and t not in gone]
            row["lv_tags"] = ",".join(tags + [args[i + 1] for i, a in enumerate(args) if a == "--addtag"])
            return ""
        size = next(args[i + 1] for i, a in enumerate(args) if a in ("--size", "--virtualsize"))[:-1]
        if args[0] == "lvextend":
            next(r for r in self.rows if r["lv_name"] == name)["lv_size"] = size
            return ""
        tags = [args[i + 1] for i, a in enumerate(args) if a == "--addtag"]
        vg = args[-1].split("/")[0]
        self.rows.append(dict(self.rows[0], lv_name=name, vg_name=vg, lv_size=size, lv_tags=",".join(tags),
                              lv_path="/dev/%s/%s" % (vg, name)))
        return ""


def _batch(world, items):
    actions, errors = one(items, lvm_state("converged"))
    assert errors == []
    return actions, VolumeApplier(Lvm(world), None, PREFIX).apply_batch(actions)


def test_creates_and_extends_go_through_one_lvm_shell(converged):
    world = _LvmWorld()
    items = [item(name="new%d" % i, size="64MiB", vg="ember-thick", volume_type="bulk", backend="lvm-thick")
             for i in range(5)] + [item(name="logs01", size="512MiB", vg="ember-thick")]
    actions, outcomes = _batch(world, items)
    assert [(a["name"], e) for a, e in outcomes] == [(a["name"], None) for a in actions]
    assert [c[0] for c in world.commands] == ["lvm", "vgs", "lvs", "udevadm"]  # one process for six changes
    rows = {r["lv_name"]: r for r in world.rows}
    assert all(rows["volume-new%d" % i]["lv_size"] == str(64 * MiB) for i in range(5))
    assert "ember.blockstore" in rows["volume-new0"]["lv_tags"].split(",")
    assert rows["volume-logs01"]["lv_size"] == str(512 * MiB)


def test_a_change_that_did_not_take_effect_runs_again_alone_and_fails_with_its_own_error(converged):
    world = _LvmWorld(refuse={"volume-new1"})
    items = [item(name="new%d" % i, size="64MiB", vg="ember-thick") for i in range(3)]
    actions, outcomes = _batch(world, items)
    assert [a["name"] for a, e in outcomes if e is None] == ["new0", "new2"]
    ((failed, exc),) = [(a, e) for a, e in outcomes if e is not None]
    assert failed["name"] == "new1"
    assert "insufficient free space for volume-new1" in str(exc)
    assert [c[0] for c in world.commands] == ["lvm", "vgs", "lvs", "lvcreate", "udevadm"]
    assert world.commands[3][world.commands[3].index("-n") + 1] == "volume-new1"


def test_deletes_stop_at_the_first_failure(monkeypatch):
    class Failing(_Runner):
        def run(self, args, check=True, **kwargs):
            self.commands.append(args)
            if args[0] == "lvremove" and args[-1] == "ember-thick/volume-b":
                return 5, "", "  Logical volume ember-thick/volume-b in use."
            return 0, "", ""
    runner = Failing()
    acts = [_delete_action(name=n, lv_name="volume-" + n, volume_clear="none", action="delete") for n in "abc"]
    monkeypatch.setattr(lvm_driver.time, "sleep", lambda seconds: None)  # lvremove's retries
    outcomes = VolumeApplier(Lvm(runner), None, PREFIX).apply_batch(acts)
    assert [(a["name"], e is None) for a, e in outcomes] == [("a", True), ("b", False)]  # c not attempted
    assert not any(c[-1] == "ember-thick/volume-c" for c in runner.commands)


@pytest.mark.parametrize("word", ["two words", "quo'te", 'dq"', "back\\slash", "#hash", "", "new\nline"])
def test_the_lvm_shell_refuses_an_argument_it_would_split(word):
    world = _LvmWorld()
    with pytest.raises(ValueError, match="cannot be passed through the lvm shell"):
        Lvm(world).run_script([["lvcreate", "-n", word]])
    assert world.commands == []


# --- sources (clone a volume, or make one from a snapshot) -------------------------------------------------------
# lvs_snap.json (derived, see cases/snapshot.yml): ember-thick/volume-a with snap-a+daily (ember.volume_size) and
# snap-a+weekly (COW 100 MiB), ember-thin/volume-b with the thin snap-b+nightly; vgs_stor1: ember-thick has
# 3183476736 B free. lvs_snap_sources.json adds volume-a2 (a clone of a), volume-a4 (an interrupted thick clone with
# its clone-snap-a4 left), volume-raw (untagged) and volume-b4 (an interrupted thin volume from snap-b+nightly).

@pytest.fixture(scope="module")
def snaps():
    return LvmState(parse_vgs(text("lvm/vgs_stor1.json")), parse_lvs(text("lvm/lvs_snap.json")))


@pytest.fixture(scope="module")
def sources():
    return LvmState(parse_vgs(text("lvm/vgs_stor1.json")), parse_lvs(text("lvm/lvs_snap_sources.json")))


def test_thin_clone_defaults_to_the_source_size(snaps):
    (act,), errors = one(item(name="b2", vg="ember-thin", thin_pool="thinpool", source={"volume": "b"}), snaps)
    assert errors == []
    assert act["action"] == "create" and act["from_source"] and not act["resume"]
    assert act["size_bytes"] == act["source_size_bytes"] == act["origin_size_bytes"] == B_SIZE
    assert act["source"] == {"volume": "b", "snapshot": None}
    assert act["source_lv"] == "volume-b"
    assert act["copy_method"] is None and act["temp_snapshot"] is None


def test_thin_from_a_snapshot_bigger_than_it(snaps):
    (act,), errors = one(item(name="b3", size="2GiB", vg="ember-thin", thin_pool="thinpool",
                              source={"volume": "b", "snapshot": "nightly"}), snaps)
    assert errors == []
    assert act["source_lv"] == "snap-b+nightly"
    assert (act["size_bytes"], act["origin_size_bytes"]) == (2 * GiB, B_SIZE)


def test_thick_clone_copies_from_a_temporary_snapshot(snaps):
    (act,), errors = one(item(name="a2", vg="ember-thick", source={"volume": "a"}), snaps)
    assert errors == []
    assert act["copy_method"] == "dd"
    assert act["temp_snapshot"] == "clone-snap-a2" and not act["leftover_temp"]
    assert act["size_bytes"] == act["source_size_bytes"] == A_SIZE


def test_thick_from_a_snapshot_uses_the_recorded_volume_size_not_the_cow_size(snaps):
    # snap-a+weekly's LV is its 100 MiB COW store; the volume was A_SIZE when it was taken.
    (act,), errors = one(item(name="a3", vg="ember-thick", source={"volume": "a", "snapshot": "weekly"}), snaps)
    assert errors == []
    assert act["source_lv"] == "snap-a+weekly" and act["temp_snapshot"] is None
    assert act["size_bytes"] == act["source_size_bytes"] == A_SIZE
    assert act["copy_method"] == "dd"


def test_size_smaller_than_the_source_names_the_field_and_both_sizes(snaps):
    actions, errors = one(item(name="a3", size="512MiB", vg="ember-thick",
                               source={"volume": "a", "snapshot": "daily"}), snaps)
    assert actions == []
    (error,) = errors
    assert error.startswith("volumes[0].size: '512MiB' (512 MiB) is smaller than its source's size 956 MiB")
    assert "snapshot daily of volume a" in error


def test_a_size_in_between_is_rounded_to_extents(snaps):
    (act,), errors = one(item(name="a2", size="1G", vg="ember-thick", source={"volume": "a"}), snaps)
    assert errors == [] and act["size_bytes"] == A_SIZE


def test_existing_volume_with_a_source_is_left_as_it_is(sources):
    (act,), errors = one(item(name="a2", vg="ember-thick", source={"volume": "b", "snapshot": "nope"}), sources)
    assert errors == []  # the source is not even looked at
    assert act["action"] == "none" and not act["from_source"]
    assert act["source"] == {"volume": "a", "snapshot": None}  # what the LV records
    assert act["size_bytes"] == A_SIZE and act["copy_method"] is None


def test_existing_volume_with_a_source_is_still_extended(sources):
    (act,), errors = one(item(name="a2", size="2GiB", vg="ember-thick", source={"volume": "a"}), sources)
    assert errors == [] and act["action"] == "extend" and act["size_bytes"] == 2 * GiB


def test_a_plain_volume_returns_no_source(converged):
    (act,), errors = one(item(name="logs01", size="256MiB", vg="ember-thick"), converged)
    assert errors == [] and act["source"] is None and act["copy_method"] is None


def test_an_interrupted_thick_clone_is_redone_and_its_leftover_removed(sources):
    (act,), errors = one(item(name="a4", vg="ember-thick", source={"volume": "a"}), sources)
    assert errors == []
    assert act["action"] == "create" and act["resume"] and act["from_source"]
    assert act["temp_snapshot"] == "clone-snap-a4" and act["leftover_temp"]
    assert act["previous_size_bytes"] == act["size_bytes"] == A_SIZE


def test_an_interrupted_clone_is_finished_from_its_recorded_source_whatever_the_request(sources):
    (act,), errors = one(item(name="a4", size="1GiB", vg="ember-thick"), sources)
    assert errors == []
    assert act["resume"] and act["source"] == {"volume": "a", "snapshot": None}
    assert act["size_bytes"] == GiB  # extended after the copy


def test_an_interrupted_thin_volume_needs_no_source(sources):
    state = LvmState(sources.vgs, [lv for lv in sources.lvs if lv["name"] != "snap-b+nightly"])
    (act,), errors = one(item(name="b4", size="1GiB", vg="ember-thin", thin_pool="thinpool"), state)
    assert errors == []
    assert act["resume"] and act["source_lv"] is None and act["copy_method"] is None
    assert act["source"] == {"volume": "b", "snapshot": "nightly"}


def test_an_interrupted_thick_copy_whose_source_is_gone_is_an_error(sources):
    state = LvmState(sources.vgs, [lv for lv in sources.lvs if lv["name"] not in ("volume-a", "clone-snap-a4")])
    actions, errors = one(item(name="a4", vg="ember-thick"), state)
    assert actions == []
    (error,) = errors
    assert "volume 'a' does not exist" in error and "volume a4 is half made from volume a" in error


def test_creating_tag_without_a_recorded_source_is_an_error(sources):
    state = LvmState(sources.vgs, [dict(lv, tags=[t for t in lv["tags"] if not t.startswith("ember.source=")])
                                   if lv["name"] == "volume-a4" else lv for lv in sources.lvs])
    actions, errors = one(item(name="a4", size="1G", vg="ember-thick"), state)
    assert actions == [] and "records no source" in errors[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(vg="ember-thick", source={"volume": "nope"}),
     "volumes[0].source.volume: volume 'nope' does not exist in volume group ember-thick"),
    (dict(vg="ember-thick", source={"volume": "raw"}),
     "volumes[0].source.volume: LV ember-thick/volume-raw exists but is not an ember.blockstore volume"),
    (dict(vg="ember-thick", source={"volume": "a", "snapshot": "hourly"}),
     "volumes[0].source.snapshot: volume a has no snapshot 'hourly'"),
    (dict(vg="ember-thick", source={"volume": "a", "snapshot": "manual"}),  # untagged LV: not ours
     "volumes[0].source.snapshot: volume a has no snapshot 'manual'"),
    (dict(vg="ember-thick", source={"volume": "b"}),
     "volumes[0].source.volume: volume 'b' is in volume group ember-thin, not ember-thick"),
    (dict(vg="ember-thin", source={"volume": "b"}),
     "volumes[0].source.volume: volume 'b' is thin (pool thinpool), but volume new is thick"),
    (dict(vg="ember-thick", thin_pool="thinpool", source={"volume": "a"}, size="1GiB"),
     "volumes[0].thin_pool: thin pool ember-thick/thinpool does not exist"),
    (dict(vg="ember-thick", source={"volume": "new"}), "volumes[0].source.volume: 'new' is the volume itself"),
    (dict(vg="ember-thick", source={"volume": "A"}), "volumes[0].source.volume: 'A' is not a valid volume name"),
    (dict(vg="ember-thick", source={"volume": "a", "snapshot": "Bad!"}),
     "volumes[0].source.snapshot: 'Bad!' is not a valid snapshot name"),
    (dict(vg="ember-thin", thin_pool="thinpool", source={"volume": "b4"}),
     "volumes[0].source.volume: volume 'b4' is itself still being created from its source"),
    (dict(vg="ember-thick"), "volumes[0].size: required when state is present"),
])
def test_source_errors_name_the_field_and_value(sources, kwargs, message):
    actions, errors = one(item(name="new", **kwargs), sources)
    assert actions == []
    (error,) = errors
    assert error.startswith(message), error


def test_a_thick_clone_needs_room_for_the_volume_and_its_temporary_snapshot(snaps):
    vgs = {name: dict(vg) for name, vg in snaps.vgs.items()}
    vgs["ember-thick"]["free_bytes"] = 2 * A_SIZE - EXTENT
    actions, errors = one(item(name="a2", vg="ember-thick", source={"volume": "a"}), LvmState(vgs, snaps.lvs))
    assert actions == []
    assert errors[0].startswith("volumes[0].source.volume: a thick clone of volume a needs 1.87 GiB free")
    vgs["ember-thick"]["free_bytes"] = 2 * A_SIZE
    (act,), errors = one(item(name="a2", vg="ember-thick", source={"volume": "a"}), LvmState(vgs, snaps.lvs))
    assert errors == []
    # A thick copy of a snapshot needs no temporary snapshot (and no check beyond lvcreate's own).
    vgs["ember-thick"]["free_bytes"] = 0
    (act,), errors = one(item(name="a3", vg="ember-thick", source={"volume": "a", "snapshot": "daily"}),
                         LvmState(vgs, snaps.lvs))
    assert errors == []


def test_a_redo_counts_the_leftover_snapshot_as_free(sources):
    vgs = {name: dict(vg) for name, vg in sources.vgs.items()}
    vgs["ember-thick"]["free_bytes"] = 0  # clone-snap-a4 holds the A_SIZE the new one needs
    (act,), errors = one(item(name="a4", vg="ember-thick"), LvmState(vgs, sources.lvs))
    assert errors == [] and act["leftover_temp"]


def test_a_foreign_lv_named_like_the_temporary_snapshot_is_refused(snaps):
    foreign = dict(snaps.lv("ember-thick", "snap-a"), name="clone-snap-a2", tags=[])
    actions, errors = one(item(name="a2", vg="ember-thick", source={"volume": "a"}),
                          LvmState(snaps.vgs, snaps.lvs + [foreign]))
    assert actions == [] and "clone-snap-a2 exists but is not ember.blockstore's temporary" in errors[0]


def test_a_temporary_snapshot_name_too_long_for_device_mapper_is_refused():
    vg = "v" * 60
    state = LvmState({vg: {"name": vg, "size_bytes": 100 * GiB, "free_bytes": 100 * GiB,
                           "extent_size_bytes": EXTENT}},
                     [dict(parse_lvs(text("lvm/lvs_snap.json"))[4], vg=vg)])
    actions, errors = one(item(name="n" * 60, vg=vg, source={"volume": "a"}), state)
    assert actions == [] and "device-mapper name is 134 characters" in errors[0]


@pytest.mark.parametrize("first, why", [
    (dict(name="n1", size="1GiB", vg="ember-thick"), "is created in this same run (volumes[0])"),
    (dict(name="n1", state="absent", vg="ember-thick"), "does not exist"),  # nothing to delete: it is missing
])
def test_a_source_created_in_the_same_run_is_refused(snaps, first, why):
    actions, errors = one([item(**first), item(name="n2", vg="ember-thick", source={"volume": "n1"})], snaps)
    assert len(errors) == 1 and errors[0].startswith("volumes[1].source.volume: volume 'n1' ")
    assert why in errors[0]


def test_a_source_deleted_or_extended_in_the_same_run_is_refused(sources):
    items = [item(name="n2", vg="ember-thick", source={"volume": "a2"}),
             item(name="a2", state="absent", vg="ember-thick"),
             item(name="n4", vg="ember-thin", thin_pool="thinpool", source={"volume": "b"}),
             item(name="b", size="2GiB", vg="ember-thin", thin_pool="thinpool")]
    actions, errors = one(items, sources)
    assert errors == [
        "volumes[0].source.volume: volume 'a2' is deleted in this same run (volumes[1]); it cannot be a source",
        "volumes[2].source.volume: volume 'b' is extended in this same run (volumes[3]); a source must not change "
        "in the run that copies it: extend it in an earlier or a later task"]


def test_a_source_unchanged_in_the_same_run_is_fine(snaps):
    items = [item(name="a", size="1G", vg="ember-thick"), item(name="a2", vg="ember-thick", source={"volume": "a"})]
    actions, errors = one(items, snaps)
    assert errors == [] and [a["action"] for a in actions] == ["none", "create"]


def test_check_mode_still_refuses_a_source_in_a_missing_vg(snaps):
    actions, errors = one(item(name="n", vg="ember-new", source={"volume": "a"}), snaps, predict_missing=True)
    assert actions == [] and "volumes[0].source.volume: volume 'a' is in volume group ember-thick" in errors[0]


def test_source_tag_round_trip():
    from ansible_collections.ember.blockstore.plugins.module_utils._volume import recorded_source, source_tag
    for source in ({"volume": "a", "snapshot": None}, {"volume": "db.01-x", "snapshot": "n.1"}):
        tag = source_tag(source)
        assert tag.startswith("ember.source=")
        assert recorded_source({"tags": ["ember.blockstore", tag]}) == source
    assert recorded_source({"tags": ["ember.blockstore"]}) is None
    assert recorded_source(None) is None


# --- applying creates from a source ------------------------------------------------------------------------------

class _Recorder(_Runner):
    def run(self, args, check=True, **kwargs):
        self.commands.append(list(args))
        if args[0] in ("vgs", "lvs"):
            return 0, text("lvm/%s_snap.json" % args[0]) if args[0] == "lvs" else text("lvm/vgs_stor1.json"), ""
        return 0, "", ""


def test_sources_run_after_the_batched_creates_and_before_the_deletes(snaps):
    items = [item(name="a3", vg="ember-thick", source={"volume": "a", "snapshot": "daily"}),
             item(name="gone", state="absent", vg="ember-thick"),
             item(name="plain", size="64MiB", vg="ember-thick"),
             item(name="b2", vg="ember-thin", thin_pool="thinpool", source={"volume": "b"})]
    actions, errors = one(items, snaps)
    assert errors == []
    runner = _Recorder()
    VolumeApplier(Lvm(runner), None, PREFIX).apply_batch(actions)
    firsts = [(c[0], c[c.index("-n") + 1] if "-n" in c else c[c.index("--name") + 1] if "--name" in c else c[-1])
              for c in runner.commands if c[0] in ("lvm", "lvcreate", "dd")]
    # plain goes through the lvm shell (the read-back does not show it: it runs again alone); then a3, then b2
    assert [f[0] for f in firsts[:1]] == ["lvm"]
    order = [name for cmd, name in firsts if cmd == "lvcreate"]
    assert order == ["volume-plain", "volume-a3", "volume-b2"]


def test_a_failed_copy_keeps_the_creating_tag_and_drops_the_temporary_snapshot(snaps):
    class FailingDd(_Runner):
        def run(self, args, check=True, **kwargs):
            self.commands.append(list(args))
            if args[0] == "dd":
                raise CommandError(list(args), 1, "", "dd: error writing\n")
            return 0, "", ""
    (act,), errors = one(item(name="a2", vg="ember-thick", source={"volume": "a"}), snaps)
    runner = FailingDd()
    ((done, exc),) = VolumeApplier(Lvm(runner), None, PREFIX).apply_batch([act])
    assert isinstance(exc, CommandError)
    assert ["lvremove", "--force", "ember-thick/clone-snap-a2"] in runner.commands
    assert not any(c[:2] == ["lvchange", "--deltag"] for c in runner.commands)


# --- description and metadata (LV tags ember.vdesc= and ember.meta=<key>=<value>) ---------------------------------

# lvm2 validate_tag (lib/misc/lvm-string.c): the characters a tag may hold.
LVM_TAG_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+/=!:&#")
TEXTS = ["plain", "", "a=b,c=d", "#23 is not an escape", "# leading hash", "spaces  and\nnew\r\nlines\t",
         "quotes ' \" \\ back", "ünïcödé ☃ 😀 日本語", "\x00\x7f\x80\uffff", "".join(chr(c) for c in range(128)),
         "%41 &amp; !bang @at", "ember.meta=x=y"]


@pytest.mark.parametrize("value", TEXTS)
def test_tag_text_round_trips_and_fits_an_lvm_tag(value):
    encoded = encode_tag_text(value)
    assert decode_tag_text(encoded) == value
    assert set(encoded) <= LVM_TAG_CHARS
    assert "=" not in encoded and "," not in encoded
    assert Lvm.fits_shell(["lvchange", "--addtag", METADATA_TAG + encoded + "=" + encoded, "vg/lv"])


def test_random_text_round_trips():
    rng = random.Random(20261120)
    alphabet = "aZ09=,#:/.-_+ \n\t'\"\\%&!@é☃😀"
    for _round in range(500):
        value = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 40)))
        assert decode_tag_text(encode_tag_text(value)) == value


def test_snapshot_descriptions_are_encoded_as_before():
    assert encode_description("before upgrade, a=b #1") == "before#20upgrade#2C#20a=b#20#231"
    assert decode_description("before#20upgrade#2C#20a=b#20#231") == "before upgrade, a=b #1"


@pytest.mark.parametrize("metadata", [{}, {"a": ""}, {"k=ey": "v=al=ue", "#": "#", "x y": "ünï\ncode"}])
def test_metadata_tags_read_back(metadata):
    tags = metadata_tags(metadata) + description_tags("a description, with = and #")
    assert read_meta(tags) == ("a description, with = and #", metadata)
    assert all(t.count("=") == 2 for t in tags if t.startswith(METADATA_TAG))


def test_description_tag_does_not_collide_with_the_snapshot_tags():
    assert not DESCRIPTION_TAG.startswith(_SNAPSHOT_ONLY) and not METADATA_TAG.startswith(_SNAPSHOT_ONLY)
    assert read_meta(["ember.description=snap#20desc", "ember.volume=a"]) == (None, {})


def _meta_state(tags):
    def edit(rows):
        row = next(r for r in rows if r["lv_name"] == "volume-logs01")
        row["lv_tags"] = ",".join(row["lv_tags"].split(",") + tags)
    return lvm_state("converged", edit)


LOGS01 = dict(name="logs01", size="256MiB", vg="ember-thick")


def test_create_carries_description_and_metadata(converged):
    (act,), errors = one(item(name="web01", size="256MiB", vg="ember-thick", description="Web tier",
                              metadata={"owner": "ops", "a b": "c=d"}), converged)
    assert errors == []
    assert act["action"] == "create" and act["description"] == "Web tier"
    assert act["meta_tags"] == ["ember.vdesc=Web#20tier", "ember.meta=a#20b=c#3Dd", "ember.meta=owner=ops"]
    assert act["previous_description"] is None and act["previous_metadata"] == {}


@pytest.mark.parametrize("given, action, add, delete", [
    (dict(), "none", [], []),
    (dict(metadata={"owner": "ops"}), "none", [], []),
    (dict(metadata={"owner": "ops", "tier": "gold"}), "update", ["ember.meta=tier=gold"], []),
    (dict(metadata={}), "update", [], ["ember.meta=owner=ops"]),
    (dict(description="Logs"), "none", [], []),
    (dict(description=""), "update", [], ["ember.vdesc=Logs"]),
    (dict(description="Other logs"), "update", ["ember.vdesc=Other#20logs"], ["ember.vdesc=Logs"]),
    (dict(size="512MiB", metadata={"owner": "dev"}), "extend", ["ember.meta=owner=dev"], ["ember.meta=owner=ops"]),
])
def test_existing_volume_tags_are_the_desired_state(given, action, add, delete):
    state = _meta_state(["ember.meta=owner=ops", "ember.vdesc=Logs"])
    (act,), errors = one(item(**dict(LOGS01, **given)), state)
    assert errors == []
    assert (act["action"], act["tags_add"], act["tags_delete"]) == (action, add, delete)
    assert act["previous_description"] == "Logs" and act["previous_metadata"] == {"owner": "ops"}


def test_a_deleted_volume_reports_no_description_or_metadata():
    state = _meta_state(["ember.meta=owner=ops", "ember.vdesc=Logs"])
    (act,), errors = one(item(name="logs01", vg="ember-thick", state="absent", volume_clear="none"), state)
    assert errors == [] and act["action"] == "delete"
    assert (act["description"], act["metadata"], act["previous_metadata"]) == (None, {}, {"owner": "ops"})


@pytest.mark.parametrize("given, message", [
    (dict(metadata={1: "x"}), "volumes[0].metadata: the key 1 is a number"),
    (dict(metadata={"k": True}), "volumes[0].metadata['k']: True is a boolean; quote it in YAML"),
    (dict(metadata={"k": None}), "volumes[0].metadata['k']: None is a NoneType, not a string"),
    (dict(metadata=["k"]), "volumes[0].metadata: ['k'] is a list, not a dict"),
    (dict(metadata={"": "x"}), "volumes[0].metadata: the key '' is not 1-255"),
    (dict(metadata={"k" * 256: "x"}), "volumes[0].metadata: the key 'kkk"),
    (dict(metadata={"k": "v" * 256}), "is longer than 255 characters"),
    (dict(metadata={"k%d" % i: "v" for i in range(65)}), "65 keys; a volume holds at most 64"),
    (dict(metadata={"k%d" % i: "#" * 40 for i in range(40)}), "take 5390 characters in LV tags"),
    (dict(description=5), "volumes[0].description: 5 is a number"),
    (dict(description="d" * 256), "longer than 255 characters"),
    (dict(description="a\u2028b"), "non-printable character"),
])
def test_description_and_metadata_errors(converged, given, message):
    actions, errors = one(item(**dict(LOGS01, **given)), converged)
    assert actions == [] and len(errors) == 1
    assert message in errors[0]


def test_limits_allow_cinder_maximums(converged):
    metadata = {"k%02d" % i + "x" * 252: "v" * 255 for i in range(3)}
    (act,), errors = one(item(**dict(LOGS01, description="d" * 255, metadata=metadata)), converged)
    assert errors == [] and act["action"] == "update" and len(act["tags_add"]) == 4


def test_updates_go_through_the_lvm_shell_and_are_read_back():
    world = _LvmWorld()
    items = [item(name="new0", size="64MiB", vg="ember-thick", metadata={"a": "b c"}),
             item(name="logs01", size="256MiB", vg="ember-thick", description="Logs, rotated")]
    actions, outcomes = _batch(world, items)
    assert [(a["action"], e) for a, e in outcomes] == [("create", None), ("update", None)]
    assert [c[0] for c in world.commands] == ["lvm", "vgs", "lvs", "udevadm"]
    tags = {r["lv_name"]: r["lv_tags"].split(",") for r in world.rows}
    assert "ember.meta=a=b#20c" in tags["volume-new0"] and "ember.vdesc=Logs#2C#20rotated" in tags["volume-logs01"]


def test_a_create_too_long_for_the_lvm_shell_runs_alone():
    world = _LvmWorld()
    items = [item(name="new0", size="64MiB", vg="ember-thick", metadata={"k%02d" % i: "v" for i in range(30)}),
             item(name="new1", size="64MiB", vg="ember-thick")]
    actions, outcomes = _batch(world, items)
    assert [e for _a, e in outcomes] == [None, None]
    assert [c[0] for c in world.commands] == ["lvm", "vgs", "lvs", "lvcreate", "udevadm"]
    assert "volume-new0" in world.commands[3] and "volume-new0" not in world.commands[0]
