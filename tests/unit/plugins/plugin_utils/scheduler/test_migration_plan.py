# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retype and migration in the plan (``migration_policy``, ``backend``): retype in place when the pool still
satisfies the new type, refusals naming what changed, destinations chosen by the filters and the weigher, the
leftovers of interrupted migrations (resume, rollback, finish, cleanup), and independence of the order."""

from __future__ import annotations

import itertools

import pytest
from ansible_collections.ember.blockstore.plugins.filter.plan import quota_usage
from ansible_collections.ember.blockstore.plugins.plugin_utils.quotas import check_quotas, validate_quotas
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from scheduler_helpers import GiB, by_name, existing, pool_facts, schedule_error

TYPES = {
    "thick": {"extra_specs": {"volume_backend_name": "lvm"}},
    "thick-gold": {"extra_specs": {"volume_backend_name": "lvm"}, "qos_specs": {"read_iops_sec": "500"}},
    "thin": {"extra_specs": {"volume_backend_name": "thin", "thin_provisioning_support": "<is> True"}},
    "any": {"extra_specs": {}},
    "any-thin": {"extra_specs": {"provisioning:type": "thin"}},
}


def pools(*extra, v1=None, stor2_free=100 * GiB):
    """stor1@lvm (az1, thick) holding ``v1`` (1 GiB, type thick unless given), stor2@lvm (az2, thick),
    stor2@thin (az2, thin) and stor3@lvm (az2, thick, less free)."""
    vol = v1 if v1 is not None else existing("v1", GiB, "thick")
    return [pool_facts("stor1@lvm", az="az1", volumes=[vol]),
            pool_facts("stor2@lvm", az="az2", free=stor2_free),
            pool_facts("stor2@thin", az="az2", thin=True),
            pool_facts("stor3@lvm", az="az2", free=50 * GiB), *extra]


def errors_of(*args, **kwargs):
    return [str(e) for e in schedule_error(*args, **kwargs).errors]


class TestValidation:
    @pytest.mark.parametrize("item, expected", [
        ({"migration_policy": "always"}, "blockstore_volumes[0].migration_policy: 'always' is not one of never, "
                                         "on-demand"),
        ({"backend": "stor1"}, "blockstore_volumes[0].backend: 'stor1' is not a pool as Cinder names it"),
        ({"backend": 7}, "blockstore_volumes[0].backend: 7 is not a pool"),
        ({"backend": "stor1@lvm#a b"}, "blockstore_volumes[0].backend: 'stor1@lvm#a b' is not a pool"),
    ])
    def test_bad_values_are_refused_naming_field_and_value(self, item, expected):
        errors = errors_of([dict({"name": "v9", "size": 1}, **item)], pools())
        assert any(e.startswith(expected) for e in errors), errors


class TestRetypeInPlace:
    def test_a_type_the_pool_still_satisfies_only_changes_the_tag(self):
        result = plan([{"name": "v1", "size": 1, "volume_type": "thick-gold"}], pools(), TYPES)
        v1 = by_name(result)["v1"]
        assert (v1["action"], v1["pool_id"], v1["retype_from"], v1["volume_type"]) == \
            ("retype", "stor1@lvm", "thick", "thick-gold")
        assert v1["qos_specs"] == {"read_iops_sec": "500"}  # QoS follows the new type on the consumers
        assert v1["migration"] is None and result["migrations"] == []
        assert "retype in place from thick" in v1["reason"]

    def test_retype_with_an_extend_is_an_extend_that_retypes(self):
        v1 = by_name(plan([{"name": "v1", "size": 2, "volume_type": "any"}], pools(), TYPES))["v1"]
        assert (v1["action"], v1["retype_from"], v1["size_bytes"]) == ("extend", "thick", 2 * GiB)

    def test_the_same_type_is_no_retype(self):
        v1 = by_name(plan([{"name": "v1", "size": 1, "volume_type": "thick"}], pools(), TYPES))["v1"]
        assert (v1["action"], v1["retype_from"]) == ("none", None)

    def test_a_type_asking_for_thin_provisioning_does_not_fit_a_thick_pool(self):
        (error,) = errors_of([{"name": "v1", "size": 1, "volume_type": "any-thin"}], pools(), TYPES)
        assert "volume_type thick -> any-thin: provisioning:type thin, the pool is thick" in error


class TestRefusedWithoutPolicy:
    @pytest.mark.parametrize("item, change", [
        ({"availability_zone": "az2"}, "availability_zone: the pool is in az1, the inventory asks az2"),
        ({"volume_type": "thin"}, "volume_type thick -> thin: volume_backend_name: pool reports 'lvm', type thin "
                                  "wants 'thin'"),
        ({"backend": "stor2@lvm"}, "backend: pinned to stor2@lvm"),
    ])
    def test_the_error_names_volume_change_pool_and_the_policy(self, item, change):
        (error,) = errors_of([dict({"name": "v1", "size": 1}, **item)], pools(), TYPES)
        assert error.startswith("blockstore_volumes[0]: v1 exists on stor1@lvm, which no longer fits: ")
        assert change in error
        assert error.endswith("set migration_policy: on-demand to migrate it")

    def test_migration_policy_never_is_the_default(self):
        errors = errors_of([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "never"}],
                           pools(), TYPES)
        assert "set migration_policy: on-demand" in errors[0]


class TestMigrate:
    def test_zone_change_migrates_to_the_pool_the_weigher_picks(self):
        result = plan([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"}],
                      pools(), TYPES)
        v1 = by_name(result)["v1"]
        # type thick pins volume_backend_name lvm: stor2@thin fails the CapabilitiesFilter; stor2@lvm has the most
        # free capacity (CapacityWeigher, spreading)
        assert (v1["action"], v1["pool_id"], v1["host"], v1["size_bytes"]) == ("migrate", "stor2@lvm", "stor2", GiB)
        (mig,) = result["migrations"]
        assert (mig["action"], mig["source"]["pool_id"], mig["destination"]["pool_id"]) == \
            ("migrate", "stor1@lvm", "stor2@lvm")
        assert mig["size_bytes"] == GiB and mig["resume"] is False
        assert mig["changes"] == ["availability_zone: the pool is in az1, the inventory asks az2"]
        assert v1["migration"]["destination"] == mig["destination"]

    def test_capacity_is_consumed_on_the_destination_and_not_freed_on_the_source(self):
        result = plan([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"}],
                      pools(), TYPES)
        usage = {p["id"]: p for p in result["pools"]}
        assert usage["stor2@lvm"]["provisioned_bytes"] == GiB
        assert usage["stor1@lvm"]["free_bytes"] == 100 * GiB  # the source's LV is freed only after the switch

    def test_thick_to_thin_type_migrates_to_a_thin_pool(self):
        result = plan([{"name": "v1", "size": 1, "volume_type": "thin", "migration_policy": "on-demand"}],
                      pools(), TYPES)
        v1 = by_name(result)["v1"]
        assert (v1["action"], v1["pool_id"], v1["thin_pool"], v1["volume_type"]) == \
            ("migrate", "stor2@thin", "thinpool", "thin")
        assert result["migrations"][0]["previous_volume_type"] == "thick"

    def test_the_source_pool_is_never_the_destination(self):
        only = [pool_facts("stor1@lvm", az="az1", volumes=[existing("v1", GiB, "thick")])]
        (error,) = errors_of([{"name": "v1", "size": 1, "backend": "stor1@lvm#x", "migration_policy": "on-demand"}],
                             only, TYPES)
        assert "stor1@lvm#x" in error and "no pool of the storage hosts that reported" in error
        (error,) = errors_of([{"name": "v1", "size": 1, "availability_zone": "az2",
                               "migration_policy": "on-demand"}], only, TYPES)
        assert error.startswith("No valid backend for v1 (migration from stor1@lvm: availability_zone")
        assert "stor1@lvm: the volume's current pool" in error

    def test_no_room_anywhere_else_is_refused(self):
        tight = [pool_facts("stor1@lvm", az="az1", volumes=[existing("v1", 8 * GiB, "thick")]),
                 pool_facts("stor2@lvm", az="az2", total=4 * GiB)]
        (error,) = errors_of([{"name": "v1", "size": 8, "availability_zone": "az2",
                               "migration_policy": "on-demand"}], tight, TYPES)
        assert "No valid backend for v1" in error and "stor2@lvm: CapacityFilter" in error

    def test_pin_names_the_destination(self):
        result = plan([{"name": "v1", "size": 1, "backend": "stor3@lvm", "migration_policy": "on-demand"}],
                      pools(), TYPES)
        assert by_name(result)["v1"]["pool_id"] == "stor3@lvm"
        assert "pinned pool stor3@lvm" in by_name(result)["v1"]["reason"]

    def test_pin_in_cinder_form_with_the_pool_name(self):
        # Cinder's LVM driver reports one pool named after volume_backend_name: host@backend#backend
        v1 = by_name(plan([{"name": "v1", "size": 1, "backend": "stor1@lvm#lvm"}], pools(), TYPES))["v1"]
        assert (v1["action"], v1["pool_id"]) == ("none", "stor1@lvm")

    def test_pin_to_a_pool_the_type_does_not_fit_is_refused(self):
        (error,) = errors_of([{"name": "v1", "size": 1, "backend": "stor2@thin", "migration_policy": "on-demand"}],
                             pools(), TYPES)
        assert error.startswith("blockstore_volumes[0].backend: No valid backend for v1: migration from stor1@lvm to "
                                "stor2@thin: CapabilitiesFilter")

    def test_attached_volume_is_refused_unless_forced(self):
        vol = existing("v1", GiB, "thick", attached_to=["iqn.2004-10.com.example:c1"])
        item = {"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"}
        (error,) = errors_of([item], pools(v1=vol), TYPES)
        assert error == ("blockstore_volumes[0]: v1 on stor1@lvm must migrate but is attached "
                         "(iqn.2004-10.com.example:c1); detach it first, or set force: true once the consumers no "
                         "longer write to it (the copy is only consistent if its data is frozen)")
        result = plan([dict(item, force=True)], pools(v1=vol), TYPES)
        assert result["migrations"][0]["force"] is True
        assert result["migrations"][0]["attached"] == ["iqn.2004-10.com.example:c1"]

    def test_inventory_attachment_counts_too(self):
        item = {"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand",
                "attachments": [{"host": "c1"}]}
        (error,) = errors_of([item], pools(), TYPES, consumers=["c1"])
        assert "must migrate but is attached (c1)" in error

    def test_volume_with_snapshots_is_refused_naming_them(self):
        vol = existing("v1", GiB, "thick")
        vol["managed_snapshots"] = [{"name": "s1"}, {"name": "s0"}]
        (error,) = errors_of([{"name": "v1", "size": 1, "availability_zone": "az2",
                               "migration_policy": "on-demand"}], pools(v1=vol), TYPES)
        assert error == ("blockstore_volumes[0]: v1 on stor1@lvm has snapshot(s) s0, s1; Cinder refuses to migrate "
                         "a volume with snapshots: delete them first")

    def test_a_volume_managed_under_its_own_lv_name_is_refused(self):
        vol = existing("v1", GiB, "thick")
        vol["lv_name"] = "legacy_db"  # managed without rename (ember.own_name)
        (error,) = errors_of([{"name": "v1", "size": 1, "availability_zone": "az2",
                               "migration_policy": "on-demand"}], pools(v1=vol), TYPES)
        assert error.startswith("blockstore_volumes[0]: v1 on stor1@lvm is the LV legacy_db, managed under its own "
                                "name; migration moves volume-<name> LVs only"), error
        vol["lv_name"] = "volume-v1"
        result = plan([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"}],
                      pools(v1=vol), TYPES)
        assert by_name(result)["v1"]["action"] == "migrate"

    def test_extend_in_the_same_run_is_refused(self):
        (error,) = errors_of([{"name": "v1", "size": 2, "availability_zone": "az2",
                               "migration_policy": "on-demand"}], pools(), TYPES)
        assert error == "blockstore_volumes[0].size: v1 migrates in this run; extend it in a later run"

    def test_a_clone_of_a_migrating_volume_waits(self):
        (error,) = errors_of([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"},
                              {"name": "v2", "source": {"volume": "v1"}}], pools(), TYPES)
        assert "v1 is migrated in the same run (action migrate)" in error

    def test_quotas_count_a_migrating_volume_once(self):
        result = plan([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"}],
                      pools(), TYPES)
        usage = quota_usage(result, pools())
        assert [u["size_bytes"] for u in usage] == [GiB]
        assert check_quotas(usage, validate_quotas({"volumes": 1, "gigabytes": 1})) == []

    def test_independent_of_inventory_and_pool_order(self):
        vols = [existing("a", 3 * GiB, "thick"), existing("b", 2 * GiB, "thick"), existing("c", 2 * GiB, "thick")]
        facts = [pool_facts("stor1@lvm", az="az1", volumes=vols),
                 pool_facts("stor2@lvm", az="az2", total=5 * GiB),
                 pool_facts("stor3@lvm", az="az2", total=4 * GiB)]
        items = [{"name": n, "size": {"a": 3, "b": 2, "c": 2}[n], "availability_zone": "az2",
                  "migration_policy": "on-demand"} for n in "abc"]
        seen = set()
        for order in itertools.permutations(items):
            for pool_order in (facts, facts[::-1]):
                result = plan(list(order), pool_order, TYPES)
                seen.add(tuple(sorted((m["name"], m["destination"]["pool_id"]) for m in result["migrations"])))
        assert seen == {(("a", "stor2@lvm"), ("b", "stor3@lvm"), ("c", "stor2@lvm"))}


def target_lv(name, size=GiB, source="stor1@lvm"):
    return {"name": name, "lv_name": "migrate-" + name, "role": "target", "size_bytes": size,
            "source_pool_id": source, "sha256": None}


class TestLeftovers:
    def test_a_migration_resumes_on_the_pool_holding_its_destination_lv(self):
        facts = pools()
        facts[3]["migration_lvs"] = [target_lv("v1")]  # stor3@lvm: the weigher would pick stor2@lvm
        result = plan([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"}],
                      facts, TYPES)
        (mig,) = result["migrations"]
        assert (mig["destination"]["pool_id"], mig["resume"]) == ("stor3@lvm", True)
        assert {p["id"]: p["provisioned_bytes"] for p in result["pools"]}["stor3@lvm"] == 50 * GiB  # not twice

    def test_a_destination_lv_no_migration_wants_is_rolled_back(self):
        facts = pools()
        facts[3]["migration_lvs"] = [target_lv("v1")]
        result = plan([{"name": "v1", "size": 1}], facts, TYPES)
        (step,) = result["migrations"]
        assert (step["action"], step["destination"]["pool_id"], step["lv_name"]) == \
            ("rollback", "stor3@lvm", "migrate-v1")
        assert by_name(result)["v1"]["action"] == "none"

    def test_a_destination_lv_without_its_volume_is_kept(self):
        facts = pools()
        facts[3]["migration_lvs"] = [target_lv("gone")]
        (step,) = plan([{"name": "v1", "size": 1}], facts, TYPES)["migrations"]
        assert step["action"] == "keep" and "kept" in step["reason"]

    def test_a_volume_on_two_pools_after_an_interrupted_switch_is_finished(self):
        moved = existing("v1", GiB, "thick")
        moved["migrated_from"] = "stor1@lvm"
        facts = pools()
        facts[1]["volumes"] = [moved]
        result = plan([{"name": "v1", "size": 1, "availability_zone": "az2", "migration_policy": "on-demand"}],
                      facts, TYPES)
        assert (by_name(result)["v1"]["action"], by_name(result)["v1"]["pool_id"]) == ("none", "stor2@lvm")
        (step,) = result["migrations"]
        assert (step["action"], step["source"]["pool_id"], step["destination"]["pool_id"]) == \
            ("finish", "stor1@lvm", "stor2@lvm")

    def test_two_copies_without_the_record_stay_an_error(self):
        facts = pools()
        facts[1]["volumes"] = [existing("v1", GiB, "thick")]
        (error,) = errors_of([{"name": "v1", "size": 1}], facts, TYPES)
        assert "exists on several pools" in error

    def test_a_switched_away_source_is_cleaned_up_only_when_the_volume_is_on_its_destination(self):
        facts = pools(v1=existing("other", GiB, "thick"))
        facts[1]["volumes"] = [existing("v1", GiB, "thick")]
        facts[0]["migration_lvs"] = [{"name": "v1", "lv_name": "migrated-v1", "role": "migrated",
                                      "size_bytes": GiB, "destination_pool_id": "stor2@lvm"},
                                     {"name": "v2", "lv_name": "migrated-v2", "role": "migrated",
                                      "size_bytes": GiB, "destination_pool_id": "stor2@lvm"}]
        steps = plan([{"name": "v1", "size": 1}], facts, TYPES)["migrations"]
        assert [(s["name"], s["action"]) for s in steps] == [("v1", "cleanup"), ("v2", "keep")]
        assert steps[0]["source"]["volume_clear"] == "zero"
