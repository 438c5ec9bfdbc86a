# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Group snapshots (``blockstore_groups``) in the plan, over the lab's gathers of ``test_plan``: validation before
any change, the member snapshots they become, the items of each phase (storage nodes, consumers to freeze), the
plan's lines and the report's."""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.plan import blockstore_plan, report
from ansible_collections.ember.blockstore.plugins.module_utils import _converge
from ansible_collections.ember.blockstore.plugins.plugin_utils.groups import (
    expand_volumes,
    freeze_failures,
    plan_lines,
    validate_groups,
)
from test_plan import CONSUMERS, HOSTS, STOR1, STOR2, TYPES, UNREACHABLE, by_name, gather, gathers, volumes

IQN = "iqn.1993-08.org.debian:01:d53fc39a07f1"  # client1 in the captured tgt state
GiB = 2**30


def group(*snapshots, members=("db01-data", "db02-data"), **extra):
    return dict({"name": "db", "volumes": list(members),
                 "snapshots": [s if isinstance(s, dict) else {"name": s} for s in snapshots]}, **extra)


def run(groups, vols=None, gathers_=None, **kwargs):
    kwargs.setdefault("consumer_initiators", {"client1": IQN})
    return blockstore_plan(gathers() if gathers_ is None else gathers_, HOSTS, volumes() if vols is None else vols,
                           volume_types=TYPES, consumers=CONSUMERS, groups=groups, **kwargs)


def refused(groups, **kwargs):
    with pytest.raises(AnsibleFilterError) as err:
        run(groups, **kwargs)
    assert "nothing was changed" in str(err.value) or "No valid backend" in str(err.value) or "state" in str(err.value)
    return str(err.value)


def with_snapshots(pools, snaps):
    """``pools`` (pool facts) with ``snaps`` (``{volume: [(name, group, latest)]}``) as their managed snapshots."""
    pools = copy.deepcopy(pools)
    for pool in pools:
        for vol in pool["volumes"]:
            vol["managed_snapshots"] = [
                {"name": name, "lv_name": "snap-%s+%s" % (vol["name"], name), "volume_size_bytes": vol["size_bytes"],
                 "cow_size_bytes": None, "reverted": False, "description": None, "created_at": 1796025600 + i,
                 "latest": latest, "group": grp}
                for i, (name, grp, latest) in enumerate(snaps.get(vol["name"], []))]
    return pools


def detached(vols, *names):
    for item in vols:
        if item["name"] in names:
            item.pop("attachments", None)
    return vols


# --- without groups nothing changes ----------------------------------------------------------------------------

def test_no_groups_plans_exactly_as_before():
    before = blockstore_plan(gathers(), HOSTS, volumes(), volume_types=TYPES, consumers=CONSUMERS)
    after = run([])
    assert after == before
    assert "groups" not in after
    assert not _converge.group_snapshots_pending(before)
    assert plan_lines(before) == []


def test_expand_leaves_the_inventory_alone():
    vols = volumes()
    original = copy.deepcopy(vols)
    clean, errors = validate_groups([group("s1")], vols)
    assert errors == []
    expanded, injected = expand_volumes(vols, clean)
    assert vols == original
    assert [s["name"] for s in expanded[0]["snapshots"]] == ["s1"]
    assert injected == {(0, 0): ("blockstore_groups[0].snapshots[0]", "db01-data"),
                        (1, 0): ("blockstore_groups[0].snapshots[0]", "db02-data")}


# --- a new group snapshot --------------------------------------------------------------------------------------

def test_a_new_group_snapshot_is_a_snapshot_of_each_member_taken_apart():
    plan = run([group({"name": "s1", "description": "before upgrade"})])
    entries = by_name(plan)
    for name in ("db01-data", "db02-data"):
        snap = next(s for s in entries[name]["snapshots"] if s["name"] == "s1")
        assert (snap["action"], snap["group"], snap["description"]) == ("create", "db", "before upgrade")
    # The converge's snapshot phase leaves them out; the group phase lists them, one storage node each.
    assert _converge.snapshot_items(plan, "stor1") == []
    assert _converge.group_snapshot_items(plan, "stor1") == [
        {"name": "s1", "volume": "db01-data", "vg": "ember-thin", "state": "present", "force": False,
         "description": "before upgrade", "group": "db"}]
    assert [i["volume"] for i in _converge.group_snapshot_items(plan, "stor2")] == ["db02-data"]
    assert _converge.group_snapshots_pending(plan)
    # client1 has both attached: it freezes both, for at most the default 30 s.
    assert _converge.freeze_items(plan, "client1") == {"volumes": ["db01-data", "db02-data"], "timeout": 30}
    section = plan["groups"][0]
    assert section["snapshots"][0]["action"] == "create"
    assert [(m["volume"], m["host"]) for m in section["snapshots"][0]["members"]] == [
        ("db01-data", "stor1"), ("db02-data", "stor2")]
    line = plan_lines(plan)[0]
    assert line.startswith("group db snapshot s1: create | stor1: db01-data (create); stor2: db02-data (create)")
    assert "freeze on client1 for at most 30 s" in line


def test_a_thick_member_gets_a_cow_store_of_its_size_and_counts_against_the_pool():
    plan = run([group("s1", members=("logs01", "scratch01"), freeze_timeout=10)])
    # No cow_size in the items: the snapshot module sizes the COW store as the volume when it runs (Cinder's
    # choice); the plan reserves that much on the pool.
    items = _converge.group_snapshot_items(plan, "stor1")
    assert [(i["volume"], "cow_size" in i, i["group"]) for i in items] == [
        ("logs01", False, "db"), ("scratch01", False, "db")]
    snaps = {e["name"]: e["snapshots"][0]["cow_size_bytes"] for e in plan["volumes"]
             if e["name"] in ("logs01", "scratch01")}
    assert snaps == {"logs01": 268435456, "scratch01": 536870912}
    # logs01 is attached to client1 (scratch01 to nobody): only it is frozen there, for at most 10 s.
    assert _converge.freeze_items(plan, "client1") == {"volumes": ["logs01"], "timeout": 10}
    thick = next(p for p in plan["pools"] if p["id"] == "stor1@lvm-thick")
    alone = next(p for p in run([])["pools"] if p["id"] == "stor1@lvm-thick")
    assert alone["free_bytes"] - thick["free_bytes"] == 268435456 + 536870912


def test_freeze_false_freezes_nobody():
    plan = run([group("s1", freeze=False)])
    assert _converge.group_snapshots_pending(plan)
    assert _converge.freeze_items(plan, "client1") is None
    assert "no freeze (crash-consistent)" in plan_lines(plan)[0]


def test_a_consumer_attached_now_but_not_in_the_inventory_is_frozen_too():
    # db01-data's export on stor1 lists client1's initiator (the gather); the inventory no longer attaches it.
    pools = copy.deepcopy(STOR1)
    for pool in pools:
        for vol in pool["volumes"]:
            if vol["name"] == "scratch01":
                vol["attached_to"] = [IQN]
    plan = run([group("s1", members=("scratch01",))], gathers_=gathers(stor1=gather(pools)))
    assert _converge.freeze_items(plan, "client1") == {"volumes": ["scratch01"], "timeout": 30}


# --- idempotence -------------------------------------------------------------------------------------------------

def test_all_members_have_it_nothing_to_do():
    snaps = {"db01-data": [("s1", "db", True)], "db02-data": [("s1", "db", True)]}
    plan = run([group("s1")],
               gathers_=gathers(gather(with_snapshots(STOR1, snaps)), gather(with_snapshots(STOR2, snaps))))
    assert plan["groups"][0]["snapshots"][0]["action"] == "none"
    assert not _converge.group_snapshots_pending(plan)
    assert _converge.freeze_items(plan, "client1") is None
    assert _converge.group_snapshot_items(plan, "stor1") == _converge.snapshot_items(plan, "stor1") == []
    assert report(plan)["groups"] == ["group db snapshot s1: exists"]


def test_a_member_added_later_gets_the_snapshot_and_the_plan_says_it_is_partial():
    snaps = {"db01-data": [("s1", "db", True)]}
    plan = run([group("s1")], gathers_=gathers(gather(with_snapshots(STOR1, snaps))))
    snap = plan["groups"][0]["snapshots"][0]
    assert (snap["action"], snap["partial"]) == ("create", True)
    assert [m["action"] for m in snap["members"]] == ["none", "create"]
    assert "not of the same point in time" in plan_lines(plan)[0]


def test_delete_goes_with_the_other_snapshot_changes():
    snaps = {"db01-data": [("s1", "db", True)], "db02-data": [("s1", "db", True)]}
    plan = run([group({"name": "s1", "state": "absent"})],
               gathers_=gathers(gather(with_snapshots(STOR1, snaps)), gather(with_snapshots(STOR2, snaps))))
    assert plan["groups"][0]["snapshots"][0]["action"] == "delete"
    assert not _converge.group_snapshots_pending(plan)
    assert _converge.snapshot_items(plan, "stor1") == [
        {"name": "s1", "volume": "db01-data", "vg": "ember-thin", "state": "absent", "force": False, "group": "db"}]


def test_revert_of_detached_members_to_their_latest():
    snaps = {"archive01": [("s0", None, False), ("s1", "grp", True)], "scratch01": [("s1", "grp", True)]}
    grp = {"name": "grp", "volumes": ["archive01", "scratch01"], "snapshots": [{"name": "s1", "state": "reverted"}]}
    plan = run([grp], gathers_=gathers(gather(with_snapshots(STOR1, snaps))))
    assert plan["groups"][0]["snapshots"][0]["action"] == "revert"
    assert sorted((i["volume"], i["state"]) for i in _converge.snapshot_items(plan, "stor1")) == [
        ("archive01", "reverted"), ("scratch01", "reverted")]


# --- refused before any change ---------------------------------------------------------------------------------

def test_revert_of_an_attached_member_names_the_group_field():
    snaps = {"db01-data": [("s1", "db", True)], "db02-data": [("s1", "db", True)]}
    msg = refused([group({"name": "s1", "state": "reverted"})],
                  gathers_=gathers(gather(with_snapshots(STOR1, snaps)), gather(with_snapshots(STOR2, snaps))))
    assert "blockstore_groups[0].snapshots[0] (volume db01-data).state: reverted, but the volume is attached" in msg
    assert "blockstore_volumes[0].snapshots" not in msg


def test_revert_to_a_group_snapshot_that_is_not_the_latest_is_refused():
    snaps = {"archive01": [("s1", "grp", False), ("later", None, True)], "scratch01": [("s1", "grp", True)]}
    grp = {"name": "grp", "volumes": ["archive01", "scratch01"], "snapshots": [{"name": "s1", "state": "reverted"}]}
    msg = refused([grp], gathers_=gathers(gather(with_snapshots(STOR1, snaps))))
    assert "blockstore_groups[0].snapshots[0] (volume archive01).state: reverted: s1 is not archive01's latest" in msg


@pytest.mark.parametrize(("groups", "expected"), [
    ("db", "blockstore_groups: expected a list of groups ({name, volumes, snapshots}), got str"),
    ([group("s1", members=("nope",))], "blockstore_groups[0].volumes[0]: 'nope' is not a volume of blockstore_volumes"),
    ([group("s1"), dict(group("s2", members=("db02-data",)), name="other")],
     "blockstore_groups[1].volumes[0]: volume db02-data is already in group db (blockstore_groups[0])"),
    ([group("s1", members=("db01-data", "db01-data"))],
     "blockstore_groups[0].volumes[1]: volume db01-data is listed twice"),
    ([group("s1", members=())], "blockstore_groups[0].volumes: expected a non-empty list of volume names"),
    ([group("s1"), group("s2", members=("web01",))],
     "blockstore_groups[1].name: 'db' is already the name of blockstore_groups[0]"),
    ([group("s1", freeze_timeout=0)], "blockstore_groups[0].freeze_timeout: 0 is not a whole number of seconds"),
    ([group("s1", freeze_timeout="30")], "blockstore_groups[0].freeze_timeout: '30' is not a whole number"),
    ([group("s1", freeze="yes")], "blockstore_groups[0].freeze: 'yes' is not a boolean"),
    ([group("s1", consistent=True)], "blockstore_groups[0]: unknown key(s) consistent; allowed: description, freeze,"),
    ([group({"name": "S 1"})], "blockstore_groups[0].snapshots[0].name: 'S 1' is not a valid snapshot name"),
    ([group({"name": "s1", "state": "gone"})], "blockstore_groups[0].snapshots[0].state: 'gone' is not one of present"),
    ([group("s1", "s1")],
     "blockstore_groups[0].snapshots[1].name: 's1' is already listed as blockstore_groups[0].snapshots[0]"),
    ([group({"name": "a", "state": "reverted"}, {"name": "b", "state": "reverted"})],
     "blockstore_groups[0].snapshots: 2 snapshots with state: reverted"),
    ([dict(group("s1"), name="Bad_Name")], "blockstore_groups[0].name: 'Bad_Name' is not a valid group name"),
])
def test_bad_groups_are_refused_naming_field_and_value(groups, expected):
    assert expected in refused(groups)


def test_a_group_snapshot_name_a_member_lists_itself_is_refused():
    vols = volumes()
    vols[0]["snapshots"] = [{"name": "s1"}]
    msg = refused([group("s1")], vols=vols)
    assert ("blockstore_groups[0].snapshots[0].name: 's1' is also a snapshot volume db01-data lists itself" in msg)


def test_an_absent_member_is_refused():
    vols = volumes()
    vols[4]["state"] = "absent"
    assert "volume scratch01 is declared absent" in refused([group("s1", members=("scratch01",))], vols=vols)


def test_a_member_on_a_host_that_did_not_report_is_refused_even_with_allow_partial():
    msg = refused([group("s1")], gathers_=gathers(stor2=UNREACHABLE), allow_partial=True)
    assert ("blockstore_groups[0].volumes[1]: volume db02-data is on storage host stor2, which did not report; a "
            "group snapshot is taken of all its volumes or none") in msg


def test_an_existing_snapshot_of_the_name_outside_the_group_is_refused():
    snaps = {"db01-data": [("s1", None, True)]}
    msg = refused([group("s1")], gathers_=gathers(gather(with_snapshots(STOR1, snaps))))
    assert ("blockstore_groups[0].snapshots[0].name: volume db01-data already has a snapshot s1 that was not taken "
            "with a group") in msg


# --- the run's other steps ---------------------------------------------------------------------------------------

def test_freeze_failures_blocks_on_any_consumer_that_did_not_freeze():
    plan = run([group("s1")])
    assert freeze_failures(plan, {"client1": {"changed": True, "mount_points": ["/srv/a"]}}) == []
    for result in ({"failed": True, "msg": "nothing was frozen"}, {"unreachable": True}, {"skipped": True}, {}):
        assert freeze_failures(plan, {"client1": result}) == ["client1"]
    assert freeze_failures(plan, {}) == ["client1"]
    assert freeze_failures(run([group("s1", freeze=False)]), {}) == []


def test_report_shows_what_was_taken_and_the_frozen_window():
    plan = run([group("s1")])
    taken = {"stor1": {"snapshots": [{"name": "s1", "volume": "db01-data", "group": "db", "action": "create"}]},
             "stor2": {"snapshots": [{"name": "s1", "volume": "db02-data", "group": "db", "action": "create"}]}}
    thaw = {"client1": {"changed": True, "mount_points": ["/srv/a", "/srv/b"], "maps": [], "frozen_at": 1796025600.0,
                        "frozen_seconds": 3.25, "expired": False}}
    out = report(plan, group_results=taken, thaw_results=thaw)
    assert out["groups"] == ["group db snapshot s1: taken on 2 volume(s)",
                             "consumer client1: /srv/a, /srv/b frozen for 3.2 s"]
    assert not [e for e in out["errors"] if "group" in e]
    half = report(plan, group_results={"stor1": taken["stor1"], "stor2": {"failed": True, "msg": "boom"}},
                  thaw_results=thaw)
    assert "group db snapshot s1: NOT taken on db02-data" in half["groups"]
    assert "group db snapshot s1 was not taken on db02-data (see the group snapshot tasks)" in half["errors"]
    failed_item = {"stor1": taken["stor1"],
                   "stor2": {"failed": True, "snapshots": [dict(taken["stor2"]["snapshots"][0], failed=True)]}}
    assert "group db snapshot s1: NOT taken on db02-data" in report(plan, group_results=failed_item)["groups"]
    assert report(plan, check_mode=True)["groups"] == ["group db snapshot s1: would be taken on 2 volume(s)"]
