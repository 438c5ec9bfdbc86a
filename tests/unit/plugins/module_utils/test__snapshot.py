# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_snapshot.decide`` (the snapshot module's pure decision) and its naming helpers.

State: lvm/lvs_snap.json, DERIVED from the lab capture lvm/lvs_stor1.json (lv_time added to every row, rows added
for the project's snapshots; see tests/unit/plugins/modules/cases/snapshot.yml): ember-thick/volume-a
(1002438656 B) with snap-a (untagged), snap-a+daily (10:05), snap-a+weekly (10:10, COW 100 MiB), snap-a+manual
(untagged, 10:15); ember-thin/volume-b (1 GiB) with snap-b (untagged) and snap-b+nightly (11:00).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._naming import is_managed_snapshot
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import (
    ITEM_OPTIONS,
    decide,
    decode_description,
    dm_name_length,
    encode_description,
    snapshot_lv_name,
    snapshot_tags,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import (
    LvmState,
    parse_lv_time,
    parse_lvs,
    parse_vgs,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
A_SIZE = 1002438656
IQN_A = "iqn.2026-11.io.ember.blockstore:volume-a"


def state(edit=None, name="lvs_snap.json"):
    """LVM state from the fixture; ``edit(rows by lv_name)`` may change the raw rows first."""
    doc = json.loads((FIXTURES / "lvm" / name).read_text())
    rows = doc["report"][0]["lv"]
    if edit:
        edit({r["lv_name"]: r for r in rows})
    return LvmState(parse_vgs((FIXTURES / "lvm/vgs_stor1.json").read_text()), parse_lvs(json.dumps(doc)))


def item(**values):
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update(values)
    return out


def one(exported=None, lvm=None, **values):
    return decide([item(**values)], lvm or state(), exported or {})


# --- naming ----------------------------------------------------------------------------------------------------------

def test_lv_name_cannot_collide_with_a_volume_or_another_snapshot():
    assert snapshot_lv_name("a", "daily") == "snap-a+daily"
    # With a '.' separator these two would share an LV; '+' is in neither name.
    assert snapshot_lv_name("a.b", "c") != snapshot_lv_name("a", "b.c")
    assert not snapshot_lv_name("a", "x").startswith(("volume-", "snapshot"))


def test_dm_name_length_doubles_dashes():
    assert dm_name_length("ember-thick", "snap-a+daily") == len("ember--thick-snap--a+daily")


def test_description_round_trip_and_tag_characters():
    text = "before: the upgrade #2 (50%)"
    encoded = encode_description(text)
    assert " " not in encoded and "(" not in encoded and "%" not in encoded
    assert decode_description(encoded) == text


def test_tags_make_a_managed_snapshot():
    lv = {"tags": snapshot_tags("a", "daily", A_SIZE)}
    assert is_managed_snapshot(lv, "a")
    assert "ember.volume_size=1002438656" in lv["tags"]


@pytest.mark.parametrize(("text", "epoch"), [
    ("2026-11-20 10:05:00 +0000", 1795169100),
    ("2026-11-20 11:05:00 +0100", 1795169100),
    ("", None),
    ("Fri Nov 20 10:05:00 2026", None),
])
def test_parse_lv_time(text, epoch):
    assert parse_lv_time(text) == epoch


# --- decisions -------------------------------------------------------------------------------------------------------

def test_present_existing_is_none_and_missing_is_create_with_the_volume_size():
    actions, errors = decide([item(name="daily", volume="a", vg="ember-thick"),
                              item(name="hourly", volume="a", vg="ember-thick"),
                              item(name="hourly", volume="b", vg="ember-thin")], state(), {})
    assert errors == []
    assert [(a["action"], a["cow_size_bytes"], a["thin"]) for a in actions] == [
        ("none", A_SIZE, False), ("create", A_SIZE, False), ("create", None, True)]


def test_cow_size_is_rounded_up_to_extents():
    (act,), errors = one(name="hourly", volume="a", vg="ember-thick", cow_size="1MiB")
    assert errors == [] and act["cow_size_bytes"] == 4 * 2**20


def test_absent_missing_is_absent_and_existing_is_delete():
    actions, errors = decide([item(name="gone", volume="a", vg="ember-thick", state="absent"),
                              item(name="nightly", volume="b", vg="ember-thin", state="absent")], state(), {})
    assert errors == [] and [a["action"] for a in actions] == ["absent", "delete"]


def test_revert_to_the_latest():
    (act,), errors = one(name="weekly", volume="a", vg="ember-thick", state="reverted")
    assert errors == [] and act["action"] == "revert" and act["resume"] is False
    assert act["description"] == "before upgrade"


def test_revert_done_is_none():
    (act,), errors = one(name="weekly", volume="a", vg="ember-thick", state="reverted",
                         lvm=state(name="lvs_snap_reverted.json"))
    assert errors == [] and (act["action"], act["status"]) == ("none", "reverted")


def test_a_newer_snapshot_makes_a_done_revert_a_new_one():
    def newer(rows):
        rows["snap-a+daily"]["lv_time"] = "2026-11-20 13:00:00 +0000"
    lvm = state(newer, name="lvs_snap_reverted.json")
    (act,), errors = one(name="weekly", volume="a", vg="ember-thick", state="reverted", force=True, lvm=lvm)
    assert errors == [] and act["action"] == "revert"


def test_interrupted_revert_is_resumed():
    (act,), errors = one(name="weekly", volume="a", vg="ember-thick", state="reverted",
                         lvm=state(name="lvs_snap_merged_weekly.json"))
    assert errors == [] and act["action"] == "revert" and act["resume"] is True


def test_a_revert_whose_merge_never_ran_is_done_again_whole():
    def failed_lvconvert(rows):
        rows["volume-a"]["lv_tags"] += ",ember.reverting=weekly"
    (act,), errors = one(name="weekly", volume="a", vg="ember-thick", state="reverted", lvm=state(failed_lvconvert))
    assert errors == [] and act["action"] == "revert" and act["resume"] is False


def test_foreign_snapshots_do_not_count_for_latest():
    # snap-a+manual (untagged, 10:15) is newer than weekly (10:10) but not ours.
    (act,), errors = one(name="weekly", volume="a", vg="ember-thick", state="reverted")
    assert errors == []


def test_force_reverts_to_an_older_snapshot():
    (act,), errors = one(name="daily", volume="a", vg="ember-thick", state="reverted", force=True)
    assert errors == [] and act["action"] == "revert"


def test_check_nothing_is_decided_when_one_item_is_bad():
    actions, errors = decide([item(name="hourly", volume="a", vg="ember-thick"),
                              item(name="hourly", volume="b", vg="ember-thin", cow_size="1GiB")], state(), {})
    assert len(errors) == 1 and errors[0].startswith("snapshots[1].cow_size")


# --- bad input: each rejected by decide (before any command), naming the field and the value -------------------------

def _open(rows):
    rows["volume-a"]["lv_attr"] = "owi-aos---"


def _grown(rows):
    rows["volume-a"]["lv_size"] = str(A_SIZE + 4194304)


def _tie(rows):
    rows["snap-a+daily"]["lv_time"] = rows["snap-a+weekly"]["lv_time"]


def _unmanaged(rows):
    rows["volume-a"]["lv_tags"] = ""


def _pending(rows):
    rows["volume-a"]["lv_tags"] += ",ember.reverting=daily"


def _origin_merging(rows):
    rows["volume-b"]["lv_attr"] = "Owi-a-tz--"


def _merging(rows):
    rows["snap-a+weekly"]["lv_attr"] = "Swi-a-s---"


LONG = "n" * 63

BAD = [
    # (id, item values, exported, state edit, field, value shown)
    ("unknown_volume", dict(name="x", volume="zzz", vg="ember-thick"), None, None, ".volume", "'zzz'"),
    ("missing_volume", dict(name="x", volume=None, vg="ember-thick"), None, None, ".volume", "None"),
    ("volume_name_invalid", dict(name="x", volume="A_B", vg="ember-thick"), None, None, ".volume", "'A_B'"),
    ("name_uppercase", dict(name="Daily", volume="a", vg="ember-thick"), None, None, ".name", "'Daily'"),
    ("name_with_space", dict(name="my snap", volume="a", vg="ember-thick"), None, None, ".name", "'my snap'"),
    ("name_empty", dict(name="", volume="a", vg="ember-thick"), None, None, ".name", "''"),
    ("name_too_long_for_dm", dict(name=LONG, volume="v" * 63, vg="ember-thick"), None, None, ".name", LONG[:20]),
    ("vg_invalid", dict(name="x", volume="a", vg="-vg"), None, None, ".vg", "'-vg'"),
    ("cow_size_zero", dict(name="x", volume="a", vg="ember-thick", cow_size=0), None, None, ".cow_size", "0"),
    ("cow_size_negative", dict(name="x", volume="a", vg="ember-thick", cow_size="-1GiB"), None, None, ".cow_size",
     "'-1GiB'"),
    ("cow_size_garbage", dict(name="x", volume="a", vg="ember-thick", cow_size="lots"), None, None, ".cow_size",
     "'lots'"),
    ("cow_size_unit", dict(name="x", volume="a", vg="ember-thick", cow_size="10 parsecs"), None, None, ".cow_size",
     "'10 parsecs'"),
    ("cow_size_bool", dict(name="x", volume="a", vg="ember-thick", cow_size=True), None, None, ".cow_size", "True"),
    ("cow_size_over_volume", dict(name="x", volume="a", vg="ember-thick", cow_size="2GiB"), None, None, ".cow_size",
     "'2GiB'"),
    ("cow_size_on_thin", dict(name="x", volume="b", vg="ember-thin", cow_size="1GiB"), None, None, ".cow_size",
     "'1GiB'"),
    ("cow_size_on_existing_thin", dict(name="nightly", volume="b", vg="ember-thin", cow_size="1GiB"), None, None,
     ".cow_size", "'1GiB'"),
    ("state_invalid", dict(name="x", volume="a", vg="ember-thick", state="frozen"), None, None, ".state",
     "'frozen'"),
    ("force_not_bool", dict(name="x", volume="a", vg="ember-thick", force="maybe"), None, None, ".force", "'maybe'"),
    ("description_newline", dict(name="x", volume="a", vg="ember-thick", description="a\nb"), None, None,
     ".description", "'a\\nb'"),
    ("description_too_long", dict(name="x", volume="a", vg="ember-thick", description="d" * 256), None, None,
     ".description", "ddd"),
    ("revert_missing_snapshot", dict(name="gone", volume="a", vg="ember-thick", state="reverted"), None, None,
     ".name", "'gone'"),
    ("revert_unknown_volume", dict(name="x", volume="zzz", vg="ember-thick", state="reverted"), None, None,
     ".volume", "'zzz'"),
    ("revert_not_latest", dict(name="daily", volume="a", vg="ember-thick", state="reverted"), None, None, ".name",
     "daily"),
    ("revert_latest_unknown", dict(name="weekly", volume="a", vg="ember-thick", state="reverted"), None, _tie,
     ".name", "weekly"),
    ("revert_exported", dict(name="weekly", volume="a", vg="ember-thick", state="reverted"), {"a": IQN_A}, None,
     "]: volume a", IQN_A),
    ("revert_open", dict(name="weekly", volume="a", vg="ember-thick", state="reverted"), None, _open,
     "]: volume a", "owi-aos---"),
    ("revert_size_changed", dict(name="weekly", volume="a", vg="ember-thick", state="reverted"), None, _grown,
     "]: volume a", "960 MiB"),
    ("revert_merging", dict(name="weekly", volume="a", vg="ember-thick", state="reverted"), None, _merging,
     "]: a snapshot is still being merged into volume a", "owi-a-s---"),
    ("revert_other_pending", dict(name="weekly", volume="a", vg="ember-thick", state="reverted"), None, _pending,
     "]: a revert of volume a", "daily"),
    ("revert_thin_merge_deferred", dict(name="nightly", volume="b", vg="ember-thin", state="reverted"), None,
     _origin_merging, "]: a snapshot is still being merged into volume b", "Owi-a-tz--"),
    ("create_while_merging", dict(name="x", volume="b", vg="ember-thin"), None, _origin_merging,
     "]: a snapshot is being merged into volume b", "Owi-a-tz--"),
    ("create_while_revert_pending", dict(name="x", volume="a", vg="ember-thick"), None, _pending,
     "]: a revert of volume a", "daily"),
    ("delete_foreign_lv", dict(name="manual", volume="a", vg="ember-thick", state="absent"), None, None,
     "]: LV ember-thick/snap-a+manual", "manual"),
    ("delete_ours_under_another_volume", dict(name="daily", volume="b", vg="ember-thick", state="absent"), None,
     lambda rows: rows["snap-a+daily"].update(lv_name="snap-b+daily"), "]: LV ember-thick/snap-b+daily", "daily"),
    ("snapshot_of_unmanaged_volume", dict(name="x", volume="a", vg="ember-thick"), None, _unmanaged, ".volume",
     "volume-a"),
]


@pytest.mark.parametrize(("values", "exported", "edit", "field", "shown"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD])
def test_bad_input_is_rejected_naming_field_and_value(values, exported, edit, field, shown):
    actions, errors = one(exported=exported, lvm=state(edit), **values)
    assert actions == [] and len(errors) == 1, errors
    assert errors[0].startswith("snapshots[0]"), errors[0]
    assert field in errors[0] and shown in errors[0], errors[0]


def test_at_least_fifteen_distinct_bad_inputs():
    assert len({case[0] for case in BAD}) == len(BAD) >= 15


def test_duplicate_in_one_batch():
    actions, errors = decide([item(name="x", volume="a", vg="ember-thick"),
                              item(name="x", volume="a", vg="ember-thick", state="absent")], state(), {})
    assert errors == ["snapshots[1].name: snapshot 'x' of volume a is listed twice (also snapshots[0])"]


def test_other_changes_with_a_revert_of_the_same_volume():
    actions, errors = decide([item(name="weekly", volume="a", vg="ember-thick", state="reverted"),
                              item(name="hourly", volume="a", vg="ember-thick")], state(), {})
    assert len(errors) == 1 and errors[0].startswith("snapshots[1]: volume a is reverted to weekly")


def test_foreign_target_counts_as_in_use():
    actions, errors = decide([item(name="weekly", volume="a", vg="ember-thick", state="reverted")], state(), {},
                             foreign={"a": IQN_A})
    assert actions == [] and len(errors) == 1 and IQN_A in errors[0]


def test_check_mode_predicts_a_snapshot_of_a_volume_created_in_the_same_run():
    request = [item(name="nightly", volume="brand-new", vg="ember-thick")]
    actions, errors = decide(request, state(), {})
    assert actions == [] and "volume 'brand-new' does not exist in volume group ember-thick" in errors[0]
    actions, errors = decide(request, state(), {}, predict_missing=True)
    assert errors == [] and [(a["action"], a["status"]) for a in actions] == [("create", "available")]
    # A revert of a volume that does not exist is never predicted.
    actions, errors = decide([item(name="nightly", volume="brand-new", vg="ember-thick", state="reverted")],
                             state(), {}, predict_missing=True)
    assert actions == [] and "there is nothing to revert" in errors[0]
