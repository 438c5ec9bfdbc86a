# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots in the plan (``blockstore_volumes[].snapshots``): validation, the capacity they take on the
volume's pool, the revert rules checked before any change, cascade, and the quotas counted after the run."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.plan import quota_usage
from ansible_collections.ember.blockstore.plugins.plugin_utils.quotas import check_quotas, validate_quotas
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from scheduler_helpers import GiB, MiB, by_name, existing, pool_facts, schedule_error


def snap(name, volume_size=GiB, cow=GiB, reverted=False, latest=True, description=None, created=1000):
    return {"name": name, "lv_name": "snap-x+" + name, "volume_size_bytes": volume_size, "cow_size_bytes": cow,
            "reverted": reverted, "description": description, "created_at": created, "latest": latest}


def with_snaps(vol, *snaps):
    vol["managed_snapshots"] = list(snaps)
    return vol


def errors_of(*args, **kwargs):
    return [str(e) for e in schedule_error(*args, **kwargs).errors]


class TestValidation:
    @pytest.mark.parametrize("snapshots, expected", [
        ("nightly", "blockstore_volumes[0].snapshots: expected a list"),
        ([{"name": "Bad_Name"}], "blockstore_volumes[0].snapshots[0].name: 'Bad_Name' is not a valid snapshot name"),
        ([{"name": "a"}, {"name": "a"}], "blockstore_volumes[0].snapshots[1].name: 'a' is already listed"),
        ([{"name": "a", "state": "gone"}], "snapshots[0].state: 'gone' is not one of present, absent, reverted"),
        ([{"name": "a", "cow_size": "0"}], "snapshots[0].cow_size: '0' must be greater than zero"),
        ([{"name": "a", "cow_size": "2GiB"}], "snapshots[0].cow_size: '2GiB' (2147483648 bytes) is larger than"),
        ([{"name": "a", "cow_size": "lots"}], "snapshots[0].cow_size"),
        ([{"name": "a", "force": "yes"}], "snapshots[0].force: 'yes' is not a boolean"),
        ([{"name": "a", "description": "two\nlines"}], "snapshots[0].description"),
        ([{"name": "a", "colour": "red"}], "snapshots[0]: unknown key(s) colour; allowed: cow_size, description"),
        ([{"name": "a", "state": "reverted"}, {"name": "b", "state": "reverted"}], "2 snapshots with state: reverted"),
    ])
    def test_bad_snapshot_lists_are_refused_naming_the_field(self, snapshots, expected):
        errors = errors_of([{"name": "v", "size": "1GiB", "snapshots": snapshots}], [pool_facts()])
        assert any(expected in e for e in errors), errors

    def test_revert_of_an_attached_volume_is_refused(self):
        vol = {"name": "v", "size": "1GiB", "attachments": [{"host": "c1"}],
               "snapshots": [{"name": "a", "state": "reverted"}]}
        (error,) = errors_of([vol], [pool_facts()], consumers=["c1"])
        assert error.startswith("blockstore_volumes[0].snapshots[0].state: reverted, but the volume is attached to c1")

    def test_an_absent_volume_lists_no_present_snapshot(self):
        vol = {"name": "v", "state": "absent", "snapshots": [{"name": "a"}]}
        (error,) = errors_of([vol], [pool_facts()])
        assert "snapshots[0].state: 'present', but the volume is absent" in error

    def test_cascade_and_project_must_have_their_types(self):
        errors = errors_of([{"name": "v", "size": 1, "cascade": "yes", "project": ""}], [pool_facts()])
        assert any("blockstore_volumes[0].cascade: 'yes' is not a boolean" in e for e in errors)
        assert any("blockstore_volumes[0].project" in e for e in errors)


class TestCapacity:
    def test_a_new_thick_volume_reserves_its_snapshots_cow(self):
        # 3 GiB free: the volume (1 GiB) and a full-size COW (1 GiB) fit; with two snapshots they do not.
        pools = [pool_facts("stor1@lvm", total=3 * GiB)]
        one = plan([{"name": "v", "size": "1GiB", "snapshots": [{"name": "a"}]}], pools)
        (entry,) = one["volumes"]
        assert entry["snapshots"] == [{"name": "a", "state": "present", "action": "create",
                                       "cow_size_bytes": GiB, "cow_size_given": False, "description": None,
                                       "force": False}]
        assert one["pools"][0]["free_bytes"] == GiB
        three = [{"name": "v", "size": "1GiB", "snapshots": [{"name": n} for n in "abc"]}]
        assert "No valid backend" in str(schedule_error(three, pools))

    def test_a_smaller_cow_size_takes_less(self):
        pools = [pool_facts("stor1@lvm", total=3 * GiB)]
        result = plan([{"name": "v", "size": "1GiB", "snapshots": [{"name": n, "cow_size": "256MiB"}
                                                                   for n in "abcd"]}], pools)
        assert [s["cow_size_bytes"] for s in result["volumes"][0]["snapshots"]] == [256 * MiB] * 4
        assert result["pools"][0]["free_bytes"] == 3 * GiB - GiB - 4 * 256 * MiB

    def test_a_thin_snapshot_counts_the_volume_size_in_provisioned(self):
        pools = [pool_facts("stor1@thin", thin=True, total=10 * GiB, mosr=1.0)]
        result = plan([{"name": "v", "size": "4GiB", "snapshots": [{"name": "a"}]}], pools)
        assert result["volumes"][0]["snapshots"][0]["cow_size_bytes"] is None
        assert result["pools"][0]["provisioned_bytes"] == 8 * GiB
        # Two snapshots: 12 GiB provisioned over a 10 GiB pool at ratio 1.0 (the NoValidBackend report says so).
        rejected = schedule_error([{"name": "v", "size": "4GiB", "snapshots": [{"name": "a"}, {"name": "b"}]}], pools)
        assert "No valid backend" in str(rejected) and "v" in str(rejected)

    def test_cow_size_on_a_thin_pool_is_refused(self):
        pools = [pool_facts("stor1@thin", thin=True)]
        (error,) = errors_of([{"name": "v", "size": "1GiB", "snapshots": [{"name": "a", "cow_size": "1GiB"}]}],
                             pools)
        assert error == ("blockstore_volumes[0].snapshots[0].cow_size: v is on thin pool stor1@thin: its snapshots "
                         "share the pool and have no COW size")

    def test_a_snapshot_of_an_existing_volume_is_capacity_checked_on_its_pool(self):
        pools = [pool_facts("stor1@lvm", total=4 * GiB, free=GiB // 2, volumes=[existing("v", 3 * GiB)])]
        (error,) = errors_of([{"name": "v", "size": "3GiB", "snapshots": [{"name": "a"}]}], pools)
        assert error.startswith("No valid backend for v: new snapshot(s) needing 3 GiB stays on stor1@lvm")
        result = plan([{"name": "v", "size": "3GiB", "snapshots": [{"name": "a", "cow_size": "256MiB"}]}], pools)
        (entry,) = result["volumes"]
        assert (entry["action"], entry["snapshots"][0]["action"]) == ("none", "create")

    def test_existing_snapshots_change_nothing(self):
        vol = with_snaps(existing("v", GiB), snap("a", description="kept"))
        result = plan([{"name": "v", "size": "1GiB", "snapshots": [{"name": "a", "description": "kept"}]}],
                      [pool_facts(volumes=[vol])])
        assert [s["action"] for s in result["volumes"][0]["snapshots"]] == ["none"]
        changed = [{"name": "a", "description": "new"}, {"name": "b", "state": "absent"}]
        result = plan([{"name": "v", "size": "1GiB", "snapshots": changed}], [pool_facts(volumes=[vol])])
        assert [s["action"] for s in result["volumes"][0]["snapshots"]] == ["update", "absent"]


class TestRevert:
    def plan_revert(self, vol, **snapshot):
        item = {"name": "v", "size": "1GiB", "snapshots": [dict({"name": "a", "state": "reverted"}, **snapshot)]}
        return [item], [pool_facts(volumes=[vol])]

    def test_revert_to_the_latest(self):
        result = plan(*self.plan_revert(with_snaps(existing("v", GiB), snap("a"))))
        assert result["volumes"][0]["snapshots"][0]["action"] == "revert"

    def test_a_snapshot_already_reverted_to_is_left_alone(self):
        vol = with_snaps(existing("v", GiB), snap("a", reverted=True, latest=False), snap("b", created=2000))
        result = plan(*self.plan_revert(vol))
        assert result["volumes"][0]["snapshots"][0]["action"] == "none"

    @pytest.mark.parametrize("vol, snapshot, expected", [
        (existing("v", GiB), {}, "v on stor1@lvm has no snapshot a to revert to"),
        (with_snaps(existing("v", GiB, attached_to=["iqn.x"]), snap("a")), {}, "is in-use (attached to iqn.x)"),
        (with_snaps(existing("v", GiB), snap("a", volume_size=GiB // 2)), {}, "Cinder reverts only when the sizes"),
        (with_snaps(existing("v", GiB), snap("a", latest=False), snap("b")), {},
         "a is not v's latest snapshot (others: b)"),
    ])
    def test_refused_before_any_change(self, vol, snapshot, expected):
        (error,) = errors_of(*self.plan_revert(vol, **snapshot))
        assert error.startswith("blockstore_volumes[0].snapshots[0].state: reverted: ") and expected in error

    def test_force_reverts_to_an_older_snapshot(self):
        vol = with_snaps(existing("v", GiB), snap("a", latest=False), snap("b"))
        result = plan(*self.plan_revert(vol, force=True))
        assert result["volumes"][0]["snapshots"][0]["action"] == "revert"

    def test_no_revert_of_a_new_volume_or_with_an_extend_or_other_snapshot_changes(self):
        (error,) = errors_of([{"name": "v", "size": 1, "snapshots": [{"name": "a", "state": "reverted"}]}],
                             [pool_facts()])
        assert "v does not exist yet" in error
        vol = with_snaps(existing("v", GiB), snap("a"))
        (error,) = errors_of([{"name": "v", "size": 2, "snapshots": [{"name": "a", "state": "reverted"}]}],
                             [pool_facts(volumes=[vol])])
        assert "v is extended in the same run" in error
        (error,) = errors_of([{"name": "v", "size": 1, "snapshots": [{"name": "a", "state": "reverted"},
                                                                     {"name": "b"}]}], [pool_facts(volumes=[vol])])
        assert "snapshot(s) b of v change in the same run" in error


class TestCascade:
    def test_a_volume_with_snapshots_needs_cascade(self):
        vol = with_snaps(existing("v", GiB), snap("a"), snap("b"))
        (error,) = errors_of([{"name": "v", "state": "absent"}], [pool_facts(volumes=[vol])])
        assert error == ("blockstore_volumes[0]: v on stor1@lvm has snapshot(s) a, b; set cascade: true to delete "
                         "them with it (Cinder refuses to delete a volume with snapshots unless cascade)")
        result = plan([{"name": "v", "state": "absent", "cascade": True}], [pool_facts(volumes=[vol])])
        entry = by_name(result)["v"]
        assert entry["action"] == "delete" and entry["cascade"] is True
        assert [(s["name"], s["action"]) for s in entry["snapshots"]] == [("a", "delete"), ("b", "delete")]
        assert entry["reason"] == "existing; delete with snapshot(s) a, b (cascade)"


class TestQuotaUsage:
    def usage(self, vols, pools):
        return quota_usage(plan(vols, pools), pools)

    def test_counts_after_the_run(self):
        vol = with_snaps(existing("v", GiB), snap("kept"), snap("gone"))
        pools = [pool_facts(volumes=[vol, existing("stray", 2 * GiB)])]
        vols = [{"name": "v", "size": "2GiB", "project": "web",
                 "snapshots": [{"name": "gone", "state": "absent"}, {"name": "new"}]},
                {"name": "w", "size": "1GiB", "project": "db"}, {"name": "x", "state": "absent"}]
        usage = self.usage(vols, pools)
        assert usage == [
            {"name": "v", "project": "web", "volume_type": None, "size_bytes": 2 * GiB,
             "snapshots": [{"name": "kept", "size_bytes": GiB}, {"name": "new", "size_bytes": 2 * GiB}]},
            {"name": "w", "project": "db", "volume_type": None, "size_bytes": GiB, "snapshots": []},
            {"name": "stray", "project": None, "volume_type": None, "size_bytes": 2 * GiB, "snapshots": [],
             "counted_as": "unmanaged"}]
        limits = validate_quotas({"gigabytes": 6, "projects": {"web": {"gigabytes": 4, "snapshots": 2}}})
        errors = check_quotas(usage, limits)
        assert [e.split(":")[0] for e in errors] == ["blockstore_quotas.gigabytes",
                                                     "blockstore_quotas.projects.web.gigabytes"]
        # volumes v 2 + w 1 + stray 2, snapshots kept 1 + new 2 (at v's size after its extend): 8 GiB; web: 5 GiB.
        assert "limit 6 GiB, the inventory would use 8 GiB" in errors[0]
        assert "limit 4 GiB, the inventory would use 5 GiB" in errors[1]
        assert check_quotas(usage, validate_quotas({"gigabytes": 8, "projects": {"web": {"gigabytes": 5}}})) == []


def test_the_plan_filter_refuses_an_exceeded_quota_before_any_change():
    from ansible_collections.ember.blockstore.plugins.filter.plan import blockstore_plan

    gather = {"pools": [pool_facts()], "ledger": None, "problems": []}
    vols = [{"name": "a", "size": 1, "project": "web"}, {"name": "b", "size": 1, "project": "web"}]
    with pytest.raises(AnsibleFilterError) as excinfo:
        blockstore_plan({"stor1": gather}, ["stor1"], vols, quotas={"projects": {"web": {"volumes": 1}}})
    message = str(excinfo.value)
    assert message.startswith("The plan is refused, nothing was changed:")
    assert "blockstore_quotas.projects.web.volumes" in message and "limit 1" in message
    with pytest.raises(AnsibleFilterError) as excinfo:
        blockstore_plan({"stor1": gather}, ["stor1"], vols, quotas={"volumez": 1})
    assert "blockstore_quotas.volumez" in str(excinfo.value)
    result = blockstore_plan({"stor1": gather}, ["stor1"], vols, quotas={"projects": {"web": {"volumes": 2}}})
    assert [v["action"] for v in result["volumes"]] == ["create", "create"]


def test_snapshot_items_carry_only_changes():
    from ansible_collections.ember.blockstore.plugins.module_utils._converge import snapshot_items, volume_items

    kept = with_snaps(existing("v", GiB), snap("kept"), snap("old"))
    gone = with_snaps(existing("w", GiB), snap("x"))
    pools = [pool_facts(volumes=[kept, gone])]
    result = plan([{"name": "v", "size": 1, "snapshots": [{"name": "kept"}, {"name": "old", "state": "absent"},
                                                          {"name": "new", "cow_size": "256MiB", "description": "d"}]},
                   {"name": "w", "state": "absent", "cascade": True}], pools)
    assert snapshot_items(result, "stor1") == [
        {"name": "old", "volume": "v", "vg": "ember-vg", "state": "absent", "force": False},
        {"name": "new", "volume": "v", "vg": "ember-vg", "state": "present", "force": False,
         "cow_size": "%dB" % (256 * MiB), "description": "d"}]
    assert snapshot_items(result, "stor2") == []
    # Without cow_size in the inventory the item has none: the module takes the volume's size when it runs, after
    # the extend of the same run (in a check run that extend is only predicted).
    grown = plan([{"name": "v", "size": 2, "snapshots": [{"name": "n2"}]}], pools)
    (entry,) = grown["volumes"]
    assert (entry["action"], entry["snapshots"][-1]["cow_size_bytes"]) == ("extend", 2 * GiB)
    assert snapshot_items(grown, "stor1") == [
        {"name": "n2", "volume": "v", "vg": "ember-vg", "state": "present", "force": False}]
    (delete,) = volume_items(result, "stor1", pools, phase="absent")
    assert (delete["name"], delete["cascade"]) == ("w", True)


class TestSource:
    def pools(self, free=10 * GiB):
        src = with_snaps(existing("src", GiB, volume_type="bulk"), snap("s1", volume_size=GiB // 2))
        return [pool_facts("stor1@lvm", total=10 * GiB, free=free, volumes=[src]),
                pool_facts("stor2@lvm", total=100 * GiB)]

    def test_a_clone_goes_on_its_sources_pool_with_its_size_and_type(self):
        from ansible_collections.ember.blockstore.plugins.module_utils._converge import volume_items

        pools = self.pools()
        result = plan([{"name": "c", "source": {"volume": "src"}}], pools, TYPES_BULK)
        (entry,) = result["volumes"]
        assert (entry["action"], entry["pool_id"], entry["size_bytes"], entry["volume_type"]) == (
            "create", "stor1@lvm", GiB, "bulk")
        assert entry["reason"] == "clone of src on its pool stor1@lvm"
        (item,) = volume_items(result, "stor1", pools)
        assert item["source"] == {"volume": "src"} and item["size"] == "%dB" % GiB
        # The temporary COW snapshot of a thick clone is reserved as well: 1 GiB volume + 1 GiB COW.
        assert result["pools"][0]["free_bytes"] == 8 * GiB

    def test_from_a_snapshot_the_default_size_is_the_volumes_size_when_taken(self):
        result = plan([{"name": "c", "source": {"volume": "src", "snapshot": "s1"}, "size": "1GiB"},
                       {"name": "d", "source": {"volume": "src", "snapshot": "s1"}}], self.pools(), TYPES_BULK)
        assert [(v["size_bytes"], v["reason"]) for v in result["volumes"]] == [
            (GiB, "from snapshot s1 of src on its pool stor1@lvm"),
            (GiB // 2, "from snapshot s1 of src on its pool stor1@lvm")]

    @pytest.mark.parametrize("volume, expected", [
        ({"name": "c", "source": {"volume": "nope"}}, "blockstore_volumes[0].source.volume: volume 'nope' does "
                                                      "not exist on any storage host that reported"),
        ({"name": "c", "source": {"volume": "src", "snapshot": "s9"}}, "blockstore_volumes[0].source.snapshot: "
                                                                       "volume src on stor1@lvm has no snapshot 's9'"),
        ({"name": "c", "size": "512MiB", "source": {"volume": "src"}}, "blockstore_volumes[0].size: 512 MiB "
                                                                       "(536870912 bytes) is smaller than its source"),
        ({"name": "c", "source": {"volume": "c"}}, "blockstore_volumes[0].source.volume: 'c' is the volume itself"),
        ({"name": "c", "source": {"volume": "src", "colour": 1}}, "source: unknown key(s) colour"),
        ({"name": "c", "source": "src"}, "blockstore_volumes[0].source: expected {volume: name}"),
    ])
    def test_bad_sources_are_refused_before_any_change(self, volume, expected):
        errors = errors_of([volume], self.pools(), TYPES_BULK)
        assert any(e.startswith(expected) or expected in e for e in errors), errors

    def test_a_source_that_changes_in_the_same_run_is_refused(self):
        (error,) = errors_of([{"name": "src", "size": "2GiB"}, {"name": "c", "source": {"volume": "src"}}],
                             self.pools(), TYPES_BULK)
        assert error == ("blockstore_volumes[1].source.volume: src is extended in the same run (action extend); "
                         "make c from it in a later run")
        (error,) = errors_of([{"name": "n", "size": 1}, {"name": "c", "source": {"volume": "n"}}], self.pools(),
                             TYPES_BULK)
        assert "volume 'n' does not exist on any storage host that reported" in error

    def test_a_thick_clone_needs_room_for_the_temporary_snapshot(self):
        (error,) = errors_of([{"name": "c", "source": {"volume": "src"}}], self.pools(free=int(1.5 * GiB)),
                             TYPES_BULK)
        assert error.startswith("No valid backend for c (clone of src): it must go on stor1@lvm: ")

    def test_an_existing_volume_keeps_what_it_is(self):
        pools = self.pools()
        pools[0]["volumes"].append(existing("c", 3 * GiB, volume_type="bulk"))
        result = plan([{"name": "c", "source": {"volume": "src"}}], pools, TYPES_BULK)
        assert [(v["name"], v["action"], v["size_bytes"]) for v in result["volumes"]] == [("c", "none", 3 * GiB)]


TYPES_BULK = {"bulk": {"extra_specs": {}}}


def test_a_source_reverted_or_a_snapshot_deleted_in_the_same_run_is_refused():
    src = with_snaps(existing("src", GiB, volume_type="bulk"), snap("s1"))
    pools = [pool_facts("stor1@lvm", total=10 * GiB, volumes=[src])]
    reverted = {"name": "src", "size": "1GiB", "snapshots": [{"name": "s1", "state": "reverted"}]}
    (error,) = errors_of([reverted, {"name": "c", "source": {"volume": "src"}}], pools, TYPES_BULK)
    assert error == ("blockstore_volumes[1].source.volume: src is reverted in the same run (action revert); make c "
                     "from it in a later run")
    deleted = {"name": "src", "size": "1GiB", "snapshots": [{"name": "s1", "state": "absent"}]}
    (error,) = errors_of([deleted, {"name": "c", "source": {"volume": "src", "snapshot": "s1"}}], pools, TYPES_BULK)
    assert error.startswith("blockstore_volumes[1].source.snapshot: snapshot s1 of src is deleted in the same run")


@pytest.mark.parametrize("volume, expected", [
    ({"name": "v", "size": 1, "description": "two\nlines"}, "blockstore_volumes[0].description: 'two\\nlines' "
                                                            "contains the non-printable character"),
    ({"name": "v", "size": 1, "description": "x" * 300}, "blockstore_volumes[0].description: "),
    ({"name": "v", "size": 1, "availability_zone": []}, "availability_zone: [] is not a zone name or a non-empty"),
    ({"name": "v", "size": 1, "availability_zone": ["az1", "az1"]}, "names a zone twice"),
    ({"name": "v", "size": 1, "availability_zone": "az1\n"}, "with surrounding spaces or control characters"),
    ({"name": "v", "state": "absent", "source": {"volume": "w"}}, "blockstore_volumes[0].source: given for an "
                                                                  "absent volume"),
])
def test_text_zones_and_sources_are_checked(volume, expected):
    errors = errors_of([volume], [pool_facts()])
    assert len(errors) == 1 and expected in errors[0], errors


def test_a_bad_source_is_the_only_error():
    (error,) = errors_of([{"name": "v", "source": {"volume": "v"}}], [pool_facts()])
    assert error == "blockstore_volumes[0].source.volume: 'v' is the volume itself"


def test_description_and_metadata_are_updated_in_place_and_left_alone_when_not_given():
    from ansible_collections.ember.blockstore.plugins.module_utils._converge import volume_items

    vol = dict(existing("v", GiB), description="old", metadata={"app": "pg"})
    pools = [pool_facts(volumes=[vol])]
    same = plan([{"name": "v", "size": 1, "description": "old", "metadata": {"app": "pg"}}], pools)
    assert same["volumes"][0]["action"] == "none" and volume_items(same, "stor1", pools) == []
    unset = plan([{"name": "v", "size": 1}], pools)
    assert unset["volumes"][0]["action"] == "none"
    changed = plan([{"name": "v", "size": 1, "metadata": {"app": "pg", "tier": "gold"}}], pools)
    (entry,) = changed["volumes"]
    assert (entry["action"], entry["reason"]) == ("update", "existing; update metadata")
    (item,) = volume_items(changed, "stor1", pools)
    assert item["metadata"] == {"app": "pg", "tier": "gold"} and "description" not in item
    grown = plan([{"name": "v", "size": 2, "description": ""}], pools)
    assert grown["volumes"][0]["action"] == "extend"
    assert volume_items(grown, "stor1", pools)[0]["description"] == ""
