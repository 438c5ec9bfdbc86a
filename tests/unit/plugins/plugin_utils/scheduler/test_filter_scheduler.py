# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plan() (filter_scheduler.py): placement, consumption, existing volumes, deletions, order independence, zones,
pinned placements and scale. Capacities are worked out in the tests from Cinder's formulas."""

from __future__ import annotations

import copy
import json
import math
import random
import time

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import (
    FILTERS,
    placement_order,
    plan,
)
from scheduler_helpers import (
    EXTENT,
    TYPES,
    GiB,
    MiB,
    TiB,
    by_name,
    existing,
    placements,
    pool_facts,
    schedule_error,
)


def test_filters_run_in_cinders_default_order():
    assert [f.name for f in FILTERS] == ["AvailabilityZoneFilter", "CapacityFilter", "CapabilitiesFilter"]


# --------------------------------------------------------------------------------------------------------------
# Placement
# --------------------------------------------------------------------------------------------------------------

class TestPlacement:
    def test_spreads_to_the_most_free_by_default(self):
        pools = [pool_facts("stor1@lvm", free=50 * GiB), pool_facts("stor2@lvm", free=80 * GiB)]
        result = plan([{"name": "db01", "size": "10GiB"}], pools)
        vol = result["volumes"][0]
        assert vol["action"] == "create"
        assert vol["pool_id"] == "stor2@lvm"
        assert vol["host"] == "stor2"
        assert vol["reason"] == "placed: weight 1.00 (virtual free 80 GiB) over 1 other pool"

    def test_negative_multiplier_stacks(self):
        pools = [pool_facts("stor1@lvm", free=50 * GiB), pool_facts("stor2@lvm", free=80 * GiB)]
        result = plan([{"name": "db01", "size": "10GiB"}], pools, weight_multiplier=-1.0)
        assert result["volumes"][0]["pool_id"] == "stor1@lvm"
        assert result["volumes"][0]["reason"] == "placed: weight 0.00 (virtual free 50 GiB) over 1 other pool"

    def test_ties_go_to_the_lowest_pool_id(self):
        pools = [pool_facts(pid) for pid in ("stor3@lvm", "stor1@lvm", "stor2@lvm")]
        result = plan([{"name": "db01", "size": "10GiB"}], pools)
        assert result["volumes"][0]["pool_id"] == "stor1@lvm"
        assert result["volumes"][0]["reason"] == "placed: weight 0.00 (virtual free 100 GiB) over 2 other pools"
        result = plan([{"name": "db01", "size": "10GiB"}], pools, weight_multiplier=0)
        assert result["volumes"][0]["pool_id"] == "stor1@lvm"

    def test_consumption_sends_the_next_volume_elsewhere(self):
        pools = [pool_facts("stor1@lvm", free=100 * GiB), pool_facts("stor2@lvm", free=90 * GiB)]
        vols = [{"name": "a", "size": "30GiB"}, {"name": "b", "size": "30GiB"}, {"name": "c", "size": "30GiB"}]
        result = plan(vols, pools)
        assert [v["pool_id"] for v in result["volumes"]] == ["stor1@lvm", "stor2@lvm", "stor1@lvm"]
        assert result["pools"] == [
            {"id": "stor1@lvm", "free_bytes": 40 * GiB, "provisioned_bytes": 60 * GiB, "allocated_bytes": 60 * GiB},
            {"id": "stor2@lvm", "free_bytes": 60 * GiB, "provisioned_bytes": 40 * GiB, "allocated_bytes": 40 * GiB},
        ]

    def test_consumption_on_a_thin_pool_takes_the_full_size_from_free(self):
        # as Cinder's consume_from_volume: free drops by the full size, provisioned grows; the thin path of the
        # CapacityFilter does not read free, so the second volume still fits: (100 - 0) * 20 - 500 >= 500
        pools = [pool_facts("stor1@lvm-thin", thin=True, total=100 * GiB, free=100 * GiB, mosr=20.0)]
        vols = [{"name": "a", "size": "500GiB"}, {"name": "b", "size": "500GiB"}]
        result = plan(vols, pools)
        assert result["pools"][0]["free_bytes"] == -900 * GiB
        assert result["pools"][0]["provisioned_bytes"] == 1000 * GiB
        assert [v["pool_id"] for v in result["volumes"]] == ["stor1@lvm-thin"] * 2

    def test_created_size_is_rounded_to_the_chosen_pools_extent(self):
        pools = [pool_facts("stor1@lvm", extent=EXTENT), pool_facts("stor2@lvm", extent=32 * MiB, free=int(99.5 * GiB))]
        result = plan([{"name": "a", "size": "1G"}, {"name": "b", "size": "1G"}], pools)
        a, b = result["volumes"]
        assert (a["pool_id"], a["size_bytes"], a["requested_size_bytes"]) == ("stor1@lvm", 1002438656, 10**9)
        assert (b["pool_id"], b["size_bytes"]) == ("stor2@lvm", 1006632960)
        assert result["pools"][0]["allocated_bytes"] == 1002438656

    def test_filters_then_weigher(self):
        pools = [
            pool_facts("stor1@lvm", free=500 * GiB, az="az2"),  # most free, wrong zone
            pool_facts("stor2@lvm-thin", thin=True, free=20 * GiB),
            pool_facts("stor3@lvm", free=30 * GiB),
            pool_facts("stor4@lvm", free=5 * GiB),  # too small
        ]
        result = plan([{"name": "db01", "size": "10GiB", "volume_type": "bulk", "availability_zone": "az1"}],
                      pools, TYPES)
        vol = result["volumes"][0]
        assert vol["pool_id"] == "stor3@lvm"
        assert vol["reason"] == "placed: weight 0.00 (virtual free 30 GiB) the only pool that passed"
        assert vol["extra_specs"] == {"volume_backend_name": "lvm"}
        assert vol["availability_zone"] == "az1"

    def test_thin_type_prefers_virtual_free(self):
        pools = [pool_facts("stor1@lvm", free=90 * GiB, volume_backend_name="any"),
                 pool_facts("stor2@lvm-thin", thin=True, total=50 * GiB, free=40 * GiB, mosr=10.0,
                            volume_backend_name="any")]
        result = plan([{"name": "db01", "size": "10GiB"}], pools)
        assert result["volumes"][0]["pool_id"] == "stor2@lvm-thin"
        # thin: (50 - 0) * 10 - 10 provisioned (the 10 GiB used) = 490 GiB, against min(90, 100 - 10) = 90 GiB
        assert "virtual free 490 GiB" in result["volumes"][0]["reason"]
        result = plan([{"name": "db01", "size": "10GiB", "volume_type": "thick"}], pools, TYPES)
        assert result["volumes"][0]["pool_id"] == "stor1@lvm"

    def test_infinite_pools_come_last_but_are_used(self):
        pools = [pool_facts("nfs1@nfs", free="infinite"), pool_facts("stor1@lvm", free=10 * GiB)]
        result = plan([{"name": "a", "size": "5GiB"}, {"name": "b", "size": "5GiB"}, {"name": "c", "size": "5GiB"}],
                      pools)
        assert [v["pool_id"] for v in result["volumes"]] == ["stor1@lvm", "stor1@lvm", "nfs1@nfs"]
        assert result["volumes"][2]["reason"] == "placed: weight 0.00 (virtual free unknown) the only pool that passed"
        assert result["pools"][0]["free_bytes"] == "infinite"
        assert result["pools"][0]["allocated_bytes"] == 5 * GiB

    def test_default_volume_type_applies_to_new_volumes(self):
        pools = [pool_facts("stor1@lvm", free=90 * GiB), pool_facts("stor2@lvm-thin", thin=True, free=10 * GiB)]
        result = plan([{"name": "a", "size": "1GiB"}, {"name": "b", "size": "1GiB", "volume_type": "bulk"}], pools,
                      TYPES, default_volume_type="fast")
        a, b = result["volumes"]
        assert (a["volume_type"], a["pool_id"]) == ("fast", "stor2@lvm-thin")
        assert (b["volume_type"], b["pool_id"]) == ("bulk", "stor1@lvm")

    def test_pools_with_different_extents_in_one_group(self):
        pools = [pool_facts("stor1@lvm", total=8 * MiB, free=8 * MiB, extent=8 * MiB),
                 pool_facts("stor2@lvm", total=8 * MiB, free=8 * MiB - 1, extent=MiB)]
        result = plan([{"name": "a", "size": "5MiB"}, {"name": "b", "size": "5MiB"}], pools)
        assert [(v["pool_id"], v["size_bytes"]) for v in result["volumes"]] == [
            ("stor1@lvm", 8 * MiB), ("stor2@lvm", 5 * MiB)]


class TestDeterminism:
    def make(self):
        rng = random.Random(42)
        pools = [pool_facts(f"stor{i:02d}@{'lvm-thin' if i % 2 else 'lvm'}", thin=bool(i % 2),
                            total=1000 * GiB, free=rng.randint(100, 900) * GiB, az=f"az{i % 3}",
                            provisioned=rng.randint(0, 2000) * GiB, mosr=rng.choice([2.0, 20.0, "auto"]),
                            reserved=rng.choice([0, 5, 10]))
                 for i in range(24)]
        vols = [{"name": f"v{i:03d}", "size": f"{rng.randint(1, 40)}GiB",
                 "volume_type": rng.choice([None, "fast", "bulk", "thick"]),
                 "availability_zone": rng.choice([None, "az1", ["az0", "az2"]])} for i in range(150)]
        return vols, pools

    def test_same_input_same_plan(self):
        vols, pools = self.make()
        first = plan(vols, pools, TYPES)
        assert plan(copy.deepcopy(vols), copy.deepcopy(pools), TYPES) == first

    def test_pool_order_does_not_matter(self):
        vols, pools = self.make()
        first = plan(vols, pools, TYPES)
        for seed in range(3):
            shuffled = pools[:]
            random.Random(seed).shuffle(shuffled)
            assert plan(vols, shuffled, TYPES) == first

    def test_inputs_are_not_modified(self):
        vols, pools = self.make()
        before = copy.deepcopy((vols, pools))
        plan(vols, pools, TYPES)
        assert (vols, pools) == before


# --------------------------------------------------------------------------------------------------------------
# plan(): existing volumes
# --------------------------------------------------------------------------------------------------------------


class TestExistingVolumes:
    def test_sticky(self):
        pools = [pool_facts("stor1@lvm", free=90 * GiB),
                 pool_facts("stor2@lvm", free=10 * GiB, volumes=[existing("db01", 10 * GiB, "bulk")])]
        result = plan([{"name": "db01", "size": "10GiB", "volume_type": "bulk"}], pools, TYPES)
        vol = result["volumes"][0]
        assert vol["action"] == "none"
        assert vol["pool_id"] == "stor2@lvm"
        assert (vol["size_bytes"], vol["current_size_bytes"]) == (10 * GiB, 10 * GiB)
        assert vol["reason"] == "existing"
        assert result["pools"][1]["free_bytes"] == 10 * GiB

    def test_extent_rounding_keeps_a_decimal_size_idempotent(self):
        pools = [pool_facts(volumes=[existing("db01", 1002438656)])]
        vol = plan([{"name": "db01", "size": "1G"}], pools)["volumes"][0]
        assert vol["action"] == "none"
        assert vol["size_bytes"] == 1002438656
        assert vol["requested_size_bytes"] == 10**9

    def test_extend_checks_and_consumes_only_the_growth(self):
        pools = [pool_facts("stor1@lvm", free=15 * GiB, volumes=[existing("db01", 10 * GiB)]),
                 pool_facts("stor2@lvm", free=11 * GiB)]
        result = plan([{"name": "new", "size": "10GiB"}, {"name": "db01", "size": "20GiB"}], pools)
        new, db01 = result["volumes"]
        assert db01["action"] == "extend"
        assert (db01["pool_id"], db01["size_bytes"], db01["current_size_bytes"]) == ("stor1@lvm", 20 * GiB, 10 * GiB)
        assert db01["reason"] == "existing; extend by 10 GiB"
        # the extend is consumed before the new volume is placed, although it comes later in the inventory
        assert new["pool_id"] == "stor2@lvm"
        assert result["pools"][0] == {"id": "stor1@lvm", "free_bytes": 5 * GiB, "provisioned_bytes": 95 * GiB,
                                      "allocated_bytes": 95 * GiB}

    def test_extend_that_does_not_fit(self):
        pools = [pool_facts("stor1@lvm", free=5 * GiB, volumes=[existing("db01", 10 * GiB)]),
                 pool_facts("stor2@lvm", free=90 * GiB)]
        err = schedule_error([{"name": "db01", "size": "20GiB"}], pools)
        assert str(err) == ("No valid backend for db01: extend from 10 GiB to 20 GiB stays on stor1@lvm: "
                            "CapacityFilter: needs 10 GiB, virtual free 5 GiB = min(free 5 GiB, total 100 GiB - "
                            "reserved 0% - provisioned 95 GiB)")

    def test_extend_on_thin_uses_the_ratio(self):
        pools = [pool_facts("stor1@lvm-thin", thin=True, free=5 * GiB, mosr=20.0,
                            volumes=[existing("db01", 10 * GiB, "fast")])]
        result = plan([{"name": "db01", "size": "60GiB", "volume_type": "fast"}], pools, TYPES)
        assert result["volumes"][0]["action"] == "extend"

    def test_never_shrink(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", 20 * GiB)])]
        err = schedule_error([{"name": "db01", "size": "10GiB"}], pools)
        assert str(err) == ("blockstore_volumes[0].size: volumes never shrink: db01 is 20 GiB (21474836480 bytes) on "
                            "stor1@lvm, inventory asks 10 GiB (10737418240 bytes)")

    def test_same_name_on_two_pools(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB)]),
                 pool_facts("stor2@lvm", volumes=[existing("db01", GiB)])]
        err = schedule_error([{"name": "db01", "size": "1GiB"}], pools)
        assert str(err) == ("blockstore_volumes[0].name: 'db01' exists on several pools (stor1@lvm, stor2@lvm); "
                            "a volume name must be unique")

    def test_duplicate_that_is_not_in_the_inventory_is_only_listed(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB)]),
                 pool_facts("stor2@lvm", volumes=[existing("db01", GiB)])]
        assert [u["pool_id"] for u in plan([], pools)["unmanaged"]] == ["stor1@lvm", "stor2@lvm"]

    def test_type_comes_from_the_existing_volume_unless_given(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB, "bulk")])]
        vol = plan([{"name": "db01", "size": "1GiB"}], pools, TYPES, default_volume_type="fast")["volumes"][0]
        assert (vol["volume_type"], vol["extra_specs"]) == ("bulk", {"volume_backend_name": "lvm"})

    def test_retype_the_pool_does_not_satisfy_is_refused_without_a_migration_policy(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB, "bulk")])]
        err = schedule_error([{"name": "db01", "size": "1GiB", "volume_type": "fast"}], pools, TYPES)
        assert str(err) == ("blockstore_volumes[0]: db01 exists on stor1@lvm, which no longer fits: volume_type "
                            "bulk -> fast: thin_provisioning_support: pool reports False, type fast wants "
                            "'<is> True'; volumes are not moved unless asked: set migration_policy: on-demand to "
                            "migrate it")

    def test_untyped_existing_volume_takes_the_requested_type(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB)])]
        vol = plan([{"name": "db01", "size": "1GiB", "volume_type": "fast"}], pools, TYPES)["volumes"][0]
        assert (vol["action"], vol["volume_type"]) == ("none", "fast")

    def test_volumes_are_not_moved_between_zones(self):
        pools = [pool_facts("stor1@lvm", az="az1", volumes=[existing("db01", GiB)])]
        err = schedule_error([{"name": "db01", "size": "1GiB", "availability_zone": ["az2", "az3"]}], pools)
        assert str(err) == ("blockstore_volumes[0]: db01 exists on stor1@lvm, which no longer fits: "
                            "availability_zone: the pool is in az1, the inventory asks az2, az3; volumes are not "
                            "moved unless asked: set migration_policy: on-demand to migrate it")
        assert plan([{"name": "db01", "size": "1GiB", "availability_zone": "az1"}], pools)["volumes"][0]["action"] \
            == "none"

    def test_multiattach_checked_against_the_existing_type(self):
        two = [{"host": "app01"}, {"host": "app02"}]
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB, "bulk"), existing("db02", GiB, "shared")])]
        err = schedule_error([{"name": "db01", "size": "1GiB", "attachments": two}], pools, TYPES)
        assert str(err).startswith(
            "blockstore_volumes[0].attachments: 2 hosts (app01, app02), but volume type bulk does not allow")
        vol = plan([{"name": "db02", "size": "1GiB", "attachments": two}], pools, TYPES)["volumes"][0]
        assert vol["attachments"] == ["app01", "app02"]


class TestAbsent:
    def test_delete_existing(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("old", 5 * GiB, "bulk")])]
        result = plan([{"name": "old", "state": "absent"}], pools, TYPES)
        vol = result["volumes"][0]
        assert vol["action"] == "delete"
        assert (vol["pool_id"], vol["host"], vol["vg"]) == ("stor1@lvm", "stor1", "ember-vg")
        assert (vol["size_bytes"], vol["current_size_bytes"], vol["volume_type"]) == (None, 5 * GiB, "bulk")
        assert vol["reason"] == "existing; delete"
        assert result["unmanaged"] == []
        # deletions free nothing during the plan: they run after creations
        assert result["pools"][0]["free_bytes"] == 100 * GiB

    def test_in_use_needs_force(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("old", GiB, attached_to=["app01", "app02"])])]
        err = schedule_error([{"name": "old", "state": "absent"}], pools)
        assert str(err) == ("blockstore_volumes[0]: old on stor1@lvm is in-use (attached to app01, app02); set "
                            "force: true to detach and delete it")
        vol = plan([{"name": "old", "state": "absent", "force": True}], pools)["volumes"][0]
        assert vol["action"] == "delete"
        assert vol["force"] is True
        assert vol["reason"] == "existing; delete (forced, attached to app01, app02)"

    def test_not_in_use_when_attached_to_is_empty(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("old", GiB, attached_to=[])])]
        assert plan([{"name": "old", "state": "absent"}], pools)["volumes"][0]["action"] == "delete"

    def test_absent_and_missing(self):
        vol = plan([{"name": "gone", "state": "absent", "size": "1GiB"}], [pool_facts()])["volumes"][0]
        assert vol["action"] == "absent"
        assert vol["reason"] == "does not exist"
        assert all(vol[k] is None for k in ("pool_id", "host", "backend", "driver", "vg", "thin_pool",
                                            "availability_zone", "size_bytes", "current_size_bytes"))
        assert vol["requested_size_bytes"] == GiB


def test_unmanaged_volumes_are_listed_and_left_alone():
    pools = [pool_facts("stor2@lvm", volumes=[existing("zeta", GiB), existing("alpha", 2 * GiB, "bulk")]),
             pool_facts("stor1@lvm", volumes=[existing("db01", GiB)])]
    result = plan([{"name": "db01", "size": "1GiB"}], pools)
    assert result["unmanaged"] == [
        {"name": "alpha", "pool_id": "stor2@lvm", "host": "stor2", "backend": "lvm", "size_bytes": 2 * GiB,
         "volume_type": "bulk", "reason": "not in inventory"},
        {"name": "zeta", "pool_id": "stor2@lvm", "host": "stor2", "backend": "lvm", "size_bytes": GiB,
         "volume_type": None, "reason": "not in inventory"},
    ]
    assert [v["name"] for v in result["volumes"]] == ["db01"]


def test_output_shape_and_json_types():
    pools = [pool_facts("stor1@lvm-thin", thin=True, volumes=[existing("db01", GiB, "fast")]),
             pool_facts("stor2@lvm", free="unknown", volumes=[existing("old", GiB), existing("stray", GiB)])]
    vols = [
        {"name": "db01", "size": "2GiB", "volume_type": "fast", "description": "database"},
        {"name": "db02", "size": 5, "volume_type": "shared", "attachments": [{"host": "a"}, {"host": "b"}],
         "availability_zone": ["az1"]},
        {"name": "old", "state": "absent"},
        {"name": "never", "state": "absent"},
        {"name": "same", "size": "1GiB", "state": "present", "force": False},
    ]
    result = plan(vols, pools, TYPES, consumers=["a", "b"])
    assert set(result) == {"volumes", "unmanaged", "pools", "migrations"}
    assert result["migrations"] == []
    keys = {"name", "state", "action", "size_bytes", "requested_size_bytes", "current_size_bytes", "volume_type",
            "extra_specs", "availability_zone", "host", "backend", "pool_id", "driver", "vg", "thin_pool",
            "attachments", "force", "description", "cascade", "snapshots", "project", "source", "qos_specs",
            "qos_cgroups", "metadata", "reason", "detach_force", "detach",
            "mutual_chap", "retype_from", "migration", "migration_policy"}
    assert all(set(v) == keys for v in result["volumes"])
    assert [v["action"] for v in result["volumes"]] == ["extend", "create", "delete", "absent", "create"]
    db01 = result["volumes"][0]
    assert (db01["description"], db01["driver"], db01["thin_pool"]) == ("database", "lvm_thin", "thinpool")
    assert result["volumes"][1]["attachments"] == ["a", "b"]
    assert result["volumes"][4]["description"] is None
    assert [u["name"] for u in result["unmanaged"]] == ["stray"]

    def plain(obj):
        if isinstance(obj, dict):
            return type(obj) in (dict,) and all(type(k) in (str,) and plain(v) for k, v in obj.items())
        if isinstance(obj, list):
            return type(obj) in (list,) and all(plain(v) for v in obj)
        return obj is None or type(obj) in (str, int, float, bool)

    assert plain(result)
    assert json.loads(json.dumps(result)) == result


# --------------------------------------------------------------------------------------------------------------
# Validation


# --------------------------------------------------------------------------------------------------------------
# Thin over-subscription inside one plan (Cinder >= 21.0)
# --------------------------------------------------------------------------------------------------------------

class TestThinOverSubscriptionInOnePlan:
    """A thin pool with ratio N takes N x its usable size (total - reserve) in one plan, whatever its real free
    space, because each placement adds to provisioned and the thin path reads provisioned, not free."""

    @pytest.mark.parametrize(("ratio", "reserved", "size_gib"), [(10.0, 10, 2), (20.0, 0, 1), (2.5, 20, 4),
                                                                 (1.0, 5, 1)])
    def test_n_times_usable_then_the_provisioned_ratio_reason(self, ratio, reserved, size_gib):
        total = 16 * GiB
        usable = total - total * reserved // 100  # total - floor(total * reserved% / 100)
        capacity = math.floor(usable * ratio)  # (total - reserved) * ratio, provisioned 0
        size = size_gib * GiB
        fits = capacity // size
        pools = [pool_facts("stor1@lvm-thin", thin=True, total=total, free=GiB, provisioned=0, allocated=15 * GiB,
                            reserved=reserved, mosr=ratio)]
        vols = [{"name": f"v{i:03d}", "size": size_gib} for i in range(fits)]
        result = plan(vols, pools)
        assert all(v["pool_id"] == "stor1@lvm-thin" for v in result["volumes"])
        assert result["pools"][0]["provisioned_bytes"] == fits * size
        assert fits * size > 10 * (GiB - 0)  # far more than the 1 GiB really free
        err = schedule_error(vols + [{"name": "zz-one-more", "size": size_gib}], pools)
        ratio_now = (fits * size + size) / usable
        assert str(err) == (
            f"No valid backend for zz-one-more: stor1@lvm-thin: CapacityFilter: provisioned ratio (provisioned "
            f"{fits * size // GiB} GiB + {size_gib} GiB) / (total 16 GiB - reserved {reserved}%) = "
            f"{ratio_now:.2f} exceeds max_over_subscription_ratio {ratio:.2f}")

    def test_twenty_small_volumes_on_a_small_pool_with_ratio_ten(self):
        # The case: 4 GiB thin pool, 1 GiB really free, ratio 10: 40 GiB may be provisioned.
        pools = [pool_facts("stor1@lvm-thin", thin=True, total=4 * GiB, free=GiB, provisioned=0, mosr=10.0)]
        result = plan([{"name": f"small{i:02d}", "size": 2} for i in range(20)], pools)
        assert len({v["pool_id"] for v in result["volumes"]}) == 1
        assert result["pools"][0]["provisioned_bytes"] == 40 * GiB

    def test_exact_to_the_byte_within_one_plan(self):
        # total 1000 MiB (250 extents), 7% reserved: floor(1000 MiB * 7 / 100) = 70 MiB; ratio 3: 2790 MiB
        total = 1000 * MiB
        capacity = (total - total * 7 // 100) * 3
        assert capacity == 2790 * MiB
        pools = [pool_facts("stor1@lvm-thin", thin=True, total=total, provisioned=0, reserved=7, mosr=3.0,
                            extent=MiB)]
        vols = [{"name": "a", "size": "2000MiB"}, {"name": "b", "size": "790MiB"}]
        assert plan(vols, pools)["pools"][0]["provisioned_bytes"] == capacity
        err = schedule_error(vols[:1] + [{"name": "b", "size": "791MiB"}], pools)
        assert "No valid backend for b: stor1@lvm-thin: CapacityFilter: provisioned ratio" in str(err)

    def test_existing_provisioned_counts(self):
        # 100 GiB pool, ratio 2, 150 GiB of thin volumes already: 50 GiB more
        pools = [pool_facts("stor1@lvm-thin", thin=True, total=100 * GiB, free=80 * GiB, provisioned=150 * GiB,
                            mosr=2.0)]
        assert plan([{"name": "a", "size": 50}], pools)["volumes"][0]["action"] == "create"
        assert "provisioned ratio" in str(schedule_error([{"name": "a", "size": "50GiB"},
                                                         {"name": "b", "size": "4MiB"}], pools))

    def test_thick_request_on_a_thin_pool_uses_free_and_provisioned(self):
        # thick type on a thin pool: min(free, total - reserved - provisioned), as Cinder >= 21.0
        pools = [pool_facts("stor1@lvm-thin", thin=True, total=100 * GiB, free=90 * GiB, provisioned=60 * GiB,
                            mosr=20.0)]
        result = plan([{"name": "a", "size": 40, "volume_type": "thick"}], pools, TYPES)
        assert result["volumes"][0]["pool_id"] == "stor1@lvm-thin"
        err = schedule_error([{"name": "a", "size": 40, "volume_type": "thick"},
                              {"name": "b", "size": "4MiB", "volume_type": "thick"}], pools, TYPES)
        assert "No valid backend for b: stor1@lvm-thin: CapacityFilter: thick request on a thin pool" in str(err)


# --------------------------------------------------------------------------------------------------------------
# Order independence (a deliberate difference from Cinder, which places requests as they arrive)
# --------------------------------------------------------------------------------------------------------------

class TestOrderIndependence:
    def make(self, seed=5):
        rng = random.Random(seed)
        pools = [pool_facts(f"stor{i:02d}@{'lvm-thin' if i % 2 else 'lvm'}", thin=bool(i % 2),
                            total=rng.randint(300, 600) * GiB, free=rng.randint(150, 250) * GiB,
                            az=f"az{i % 3}", provisioned=rng.randint(0, 800) * GiB if i % 2 else None,
                            mosr=rng.choice([1.5, 4.0, "auto"]), reserved=rng.choice([0, 5, 10]),
                            volumes=[existing(f"ex{i:02d}", 5 * GiB, "fast" if i % 2 else "bulk")])
                 for i in range(16)]
        vols = [{"name": f"v{i:03d}", "size": f"{rng.choice([1, 2, 3, 5, 8, 13])}GiB",
                 "volume_type": rng.choice([None, "fast", "bulk", "thick"]),
                 "availability_zone": rng.choice([None, "az1", ["az0", "az2"]])} for i in range(120)]
        vols += [{"name": f"ex{i:02d}", "size": f"{5 + i % 3}GiB", "volume_type": "fast" if i % 2 else "bulk"}
                 for i in range(16)]
        return vols, pools

    def test_twenty_shuffles_give_the_identical_plan(self):
        vols, pools = self.make()
        first = plan(vols, pools, TYPES)
        assert sum(v["action"] == "create" for v in first["volumes"]) == 120
        reference = placements(first)
        for seed in range(20):
            shuffled = vols[:]
            random.Random(seed).shuffle(shuffled)
            result = plan(shuffled, pools, TYPES)
            assert placements(result) == reference, seed
            assert result["pools"] == first["pools"]
            assert [v["name"] for v in result["volumes"]] == [v["name"] for v in shuffled]  # inventory order

    def test_a_small_volume_listed_first_does_not_take_the_pool_a_big_one_needs(self):
        pools = [pool_facts("stor1@lvm", free=10 * GiB), pool_facts("stor2@lvm", free=6 * GiB)]
        small, big = {"name": "small", "size": 4}, {"name": "big", "size": 10}
        # in list order (Cinder's way) small would go to stor1 (most free) and big would fit nowhere
        for vols in ([small, big], [big, small]):
            result = by_name(plan(vols, pools))
            assert (result["big"]["pool_id"], result["small"]["pool_id"]) == ("stor1@lvm", "stor2@lvm")

    def test_placement_order(self):
        class Req:
            def __init__(self, name, size):
                self.name, self.size = name, size
        new = [(False, Req("b", 5)), (False, Req("a", 5)), (True, Req("z", 1)), (False, Req("c", 9)),
               (True, Req("y", 7))]
        assert [r.name for dummy, r in placement_order(new)] == ["y", "z", "c", "a", "b"]

    def test_failures_do_not_depend_on_the_order_either(self):
        # two extends on one pool, room for one: the one checked first (by name) wins, in any list order
        pools = [pool_facts("stor1@lvm", free=10 * GiB, volumes=[existing("a", GiB), existing("b", GiB)])]
        for vols in ([{"name": "a", "size": 9}, {"name": "b", "size": 9}],
                     [{"name": "b", "size": 9}, {"name": "a", "size": 9}]):
            err = schedule_error(vols, pools)
            assert str(err).startswith("No valid backend for b: extend from 1 GiB to 9 GiB stays on stor1@lvm")


# --------------------------------------------------------------------------------------------------------------
# No valid backend
# --------------------------------------------------------------------------------------------------------------

class TestNoValidBackend:
    POOLS = (
        pool_facts("stor4@lvm", free=GiB),
        pool_facts("stor1@lvm", az="az2"),
        pool_facts("stor3@lvm-thin", thin=True, provisioned=0),
        pool_facts("stor2@lvm", total=100 * GiB, free=int(3.8 * GiB), reserved=10),
    )

    def test_message_names_every_pool_with_its_first_reason(self):
        err = schedule_error([{"name": "db01", "size": "20GiB", "volume_type": "bulk", "availability_zone": "az1"}],
                             self.POOLS, TYPES)
        assert str(err) == (
            "No valid backend for db01: "
            "stor1@lvm: AvailabilityZoneFilter: pool is in az2, volume asks az1; "
            "stor2@lvm: CapacityFilter: needs 20 GiB, virtual free -6.2 GiB = min(free 3.8 GiB, total 100 GiB - "
            "reserved 10% - provisioned 96.2 GiB); "
            "stor3@lvm-thin: CapabilitiesFilter: volume_backend_name: pool reports 'lvm-thin', type bulk wants 'lvm'; "
            "stor4@lvm: CapacityFilter: needs 20 GiB, virtual free 1 GiB = min(free 1 GiB, total 100 GiB - "
            "reserved 0% - provisioned 99 GiB)")

    def test_capacity_is_reported_before_capabilities(self):
        err = schedule_error([{"name": "db01", "size": "2GiB", "volume_type": "fast"}], self.POOLS[:1], TYPES)
        assert str(err).startswith("No valid backend for db01: stor4@lvm: CapacityFilter: needs 2 GiB")

    def test_every_unplaceable_volume_is_reported(self):
        vols = [{"name": "big1", "size": "3TiB"}, {"name": "ok", "size": "1GiB"}, {"name": "big2", "size": "4TiB"}]
        err = schedule_error(vols, self.POOLS)
        assert len(err.errors) == 2
        # largest first: big2 is tried before big1
        assert err.errors[0].startswith("No valid backend for big2: stor1@lvm: CapacityFilter: needs 4 TiB")
        assert err.errors[1].startswith("No valid backend for big1: stor1@lvm: CapacityFilter: needs 3 TiB")
        assert ("stor3@lvm-thin: CapacityFilter: provisioned ratio (provisioned 0 B + 4 TiB) / (total 100 GiB - "
                "reserved 0%) = 40.96 exceeds max_over_subscription_ratio 20.00") in err.errors[0]
        assert str(err) == "\n".join(err.errors)

    def test_no_pools(self):
        err = schedule_error([{"name": "db01", "size": "1GiB"}], [])
        assert str(err) == "No valid backend for db01: no pools reported"

    def test_nothing_to_place_needs_no_pools(self):
        assert plan([], []) == {"volumes": [], "unmanaged": [], "pools": [], "migrations": []}
        assert plan(None, None)["volumes"] == []

    def test_many_pools_are_counted_per_filter(self):
        pools = [pool_facts(f"stor{i:02d}@lvm", free=GiB, az="az2" if i < 3 else "az1") for i in range(10)]
        err = schedule_error([{"name": "db01", "size": 5, "availability_zone": "az1"}], pools)
        assert str(err) == (
            "No valid backend for db01: AvailabilityZoneFilter on 3 pools (stor00@lvm: pool is in az2, volume asks "
            "az1; stor01@lvm: pool is in az2, volume asks az1; and 1 more), CapacityFilter on 7 pools (stor03@lvm: "
            "needs 5 GiB, virtual free 1 GiB = min(free 1 GiB, total 100 GiB - reserved 0% - provisioned 99 GiB); "
            "stor04@lvm: needs 5 GiB, virtual free 1 GiB = min(free 1 GiB, total 100 GiB - reserved 0% - "
            "provisioned 99 GiB); and 5 more)")

    def test_a_thousand_unplaceable_volumes_over_a_thousand_pools(self):
        # pools in 3 zones, a third of them thin; volumes of 3 types and 2 zone requests; none fits anywhere
        # every fifth pool is big enough but matches neither type (CapabilitiesFilter); the others are full
        # (CapacityFilter); half the volumes ask for az1 (AvailabilityZoneFilter on the pools of other zones)
        pools = [pool_facts(f"stor{i:04d}@big", total=TiB, az=f"az{i % 4}") if i % 5 == 0 else
                 pool_facts(f"stor{i:04d}@{'lvm-thin' if i % 3 == 0 else 'lvm'}", thin=i % 3 == 0,
                            total=10 * GiB, free=GiB, provisioned=200 * GiB if i % 3 == 0 else None,
                            mosr=20.0, az=f"az{i % 4}")
                 for i in range(1000)]
        vols = [{"name": f"vol{i:04d}", "size": 20 + i % 7, "volume_type": ("fast", "bulk")[i % 2],
                 **({"availability_zone": "az1"} if i % 3 else {})} for i in range(1000)]
        start = time.perf_counter()
        err = schedule_error(vols, pools, TYPES)
        elapsed = time.perf_counter() - start
        message = str(err)
        assert len(message.encode()) < 8 * 1024, len(message)
        for flt in ("AvailabilityZoneFilter", "CapacityFilter", "CapabilitiesFilter"):
            assert flt in message
        assert message.count("\n") < 30
        assert "No valid backend for 997 more volumes" in message
        assert message.splitlines()[-1] == ("Filters that rejected pools: AvailabilityZoneFilter, CapacityFilter, "
                                            "CapabilitiesFilter")
        assert len(err.errors) == 1000  # one per volume, each short
        assert max(len(e) for e in err.errors) < 2000
        assert elapsed < 10, elapsed

    def test_other_problems_are_bounded_too(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing(f"v{i:04d}", 20 * GiB) for i in range(2000)])]
        err = schedule_error([{"name": f"v{i:04d}", "size": 10} for i in range(2000)], pools)
        assert len(err.errors) == 2000
        assert len(str(err)) < 8 * 1024
        assert str(err).endswith("... and 1992 more problems")


# --------------------------------------------------------------------------------------------------------------
# Availability zones
# --------------------------------------------------------------------------------------------------------------

class TestAvailabilityZones:
    POOLS = [pool_facts("stor1@lvm", az="az1", free=10 * GiB), pool_facts("stor2@lvm", az="az2", free=90 * GiB),
             pool_facts("stor3@lvm", az="az3", free=50 * GiB)]
    TYPES = {"gold": {"extra_specs": {"RESKEY:availability_zones": "az1, az3"}},
             "nowhere": {"extra_specs": {"RESKEY:availability_zones": "az7,az8"}},
             "plain": {"extra_specs": {}}}

    def test_the_entry_carries_the_zone_each_volume_got(self):
        result = by_name(plan([{"name": "a", "size": 1}, {"name": "b", "size": 1, "availability_zone": "az3"}],
                              self.POOLS))
        assert (result["a"]["availability_zone"], result["b"]["availability_zone"]) == ("az2", "az3")

    def test_default_zone_applies_to_new_volumes_that_name_none(self):
        result = by_name(plan([{"name": "a", "size": 1}, {"name": "b", "size": 1, "availability_zone": "az3"}],
                              self.POOLS, default_availability_zone="az1"))
        assert (result["a"]["pool_id"], result["a"]["availability_zone"]) == ("stor1@lvm", "az1")
        assert result["b"]["availability_zone"] == "az3"

    def test_default_zone_does_not_move_existing_volumes(self):
        pools = self.POOLS[:1] + [pool_facts("stor2@lvm", az="az2", volumes=[existing("old", GiB)])]
        vol = plan([{"name": "old", "size": 1}], pools, default_availability_zone="az1")["volumes"][0]
        assert (vol["action"], vol["availability_zone"]) == ("none", "az2")

    def test_default_zone_nobody_reports_fails_with_the_filter(self):
        err = schedule_error([{"name": "a", "size": 1}], self.POOLS, default_availability_zone="nova")
        assert "AvailabilityZoneFilter: pool is in az1, volume asks nova" in str(err)

    def test_type_zones_restrict_placement(self):
        # gold allows az1 and az3: stor3 (50 GiB free) wins over stor2 (90 GiB, az2)
        vol = plan([{"name": "a", "size": 1, "volume_type": "gold"}], self.POOLS, self.TYPES)["volumes"][0]
        assert (vol["pool_id"], vol["availability_zone"]) == ("stor3@lvm", "az3")

    def test_type_zones_win_over_the_default_zone(self):
        # Cinder applies default_availability_zone only when the type does not restrict zones
        vol = plan([{"name": "a", "size": 1, "volume_type": "gold"}], self.POOLS, self.TYPES,
                   default_availability_zone="az2")["volumes"][0]
        assert vol["availability_zone"] == "az3"
        vol = plan([{"name": "a", "size": 1, "volume_type": "plain"}], self.POOLS, self.TYPES,
                   default_availability_zone="az2")["volumes"][0]
        assert vol["availability_zone"] == "az2"

    def test_a_zone_outside_the_types_zones_is_refused(self):
        err = schedule_error([{"name": "a", "size": 1, "volume_type": "gold", "availability_zone": "az2"}],
                             self.POOLS, self.TYPES)
        assert str(err) == ("blockstore_volumes[0].availability_zone: az2 is not a zone volume type gold allows "
                            "(RESKEY:availability_zones: az1, az3)")
        vol = plan([{"name": "a", "size": 1, "volume_type": "gold", "availability_zone": "az1"}], self.POOLS,
                   self.TYPES)["volumes"][0]
        assert vol["pool_id"] == "stor1@lvm"

    def test_type_zones_no_pool_reports(self):
        err = schedule_error([{"name": "a", "size": 1, "volume_type": "nowhere"}], self.POOLS, self.TYPES)
        assert str(err) == ("blockstore_volumes[0].volume_type: volume type nowhere allows only zone(s) az7, az8 "
                            "(RESKEY:availability_zones), and no pool reports any of them; pools report: az1, az2, "
                            "az3")

    def test_bad_default_zone(self):
        err = schedule_error([], [], default_availability_zone=5)
        assert str(err) == "blockstore_default_availability_zone: 5 is not a zone name"


# --------------------------------------------------------------------------------------------------------------
# Pinned placements (the placement ledger)
# --------------------------------------------------------------------------------------------------------------

class TestPinned:
    POOLS = [pool_facts("stor1@lvm", free=10 * GiB), pool_facts("stor2@lvm", free=90 * GiB)]

    def test_a_pinned_volume_goes_to_its_pool(self):
        result = by_name(plan([{"name": "a", "size": 5}, {"name": "b", "size": 5}], self.POOLS,
                              pinned={"a": "stor1@lvm"}))
        assert result["a"]["pool_id"] == "stor1@lvm"
        assert result["a"]["reason"] == "finishing a create recorded on stor1@lvm in the placement ledger"
        assert result["b"]["pool_id"] == "stor2@lvm"

    def test_pinned_volumes_are_placed_first(self):
        # "big" (9 GiB) would be placed before the pinned 6 GiB one by size; pinned first keeps stor1 for it
        pools = [pool_facts("stor1@lvm", free=10 * GiB), pool_facts("stor2@lvm", free=9 * GiB)]
        result = by_name(plan([{"name": "big", "size": 9}, {"name": "pin", "size": 6}], pools,
                              pinned={"pin": "stor1@lvm"}))
        assert (result["pin"]["pool_id"], result["big"]["pool_id"]) == ("stor1@lvm", "stor2@lvm")

    def test_the_same_filters_apply(self):
        err = schedule_error([{"name": "a", "size": 20}], self.POOLS, pinned={"a": "stor1@lvm"})
        assert str(err).startswith("No valid backend for a: the placement ledger records it on stor1@lvm (a create "
                                   "that did not finish): CapacityFilter: needs 20 GiB")
        err = schedule_error([{"name": "a", "size": 1}], self.POOLS, pinned={"a": "stor9@lvm"})
        assert str(err) == ("No valid backend for a: the placement ledger records it on stor9@lvm (a create that "
                            "did not finish): did not report")

    def test_a_pin_of_an_existing_volume_is_ignored(self):
        pools = [pool_facts("stor2@lvm", volumes=[existing("a", GiB)])]
        vol = plan([{"name": "a", "size": 1}], pools, pinned={"a": "stor1@lvm"})["volumes"][0]
        assert (vol["action"], vol["pool_id"]) == ("none", "stor2@lvm")


# --------------------------------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------------------------------

def test_ten_thousand_requests_over_a_thousand_pools():
    pools = [pool_facts(f"stor{i:04d}@{'lvm-thin' if i % 2 else 'lvm'}", thin=bool(i % 2), total=10 * TiB,
                        free=(5000 + i) * GiB, provisioned=1000 * GiB if i % 2 else None, az=f"az{i % 3}",
                        reserved=10, mosr="auto" if i % 4 == 1 else 20.0,
                        volumes=[existing(f"ex-{i}-{j}", 10 * GiB, "fast") for j in range(3)])
             for i in range(1000)]
    vols = [{"name": f"v{i:05d}", "size": 1 + i % 50, "volume_type": "fast" if i % 2 else "bulk",
             **({"availability_zone": f"az{i % 3}"} if i % 5 == 0 else {})} for i in range(10000)]
    vols += [{"name": f"ex-{i}-0", "size": 10 + i % 2, "volume_type": "fast"} for i in range(1000)]
    start = time.perf_counter()
    result = plan(vols, pools, TYPES)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, elapsed
    actions = [v["action"] for v in result["volumes"]]
    assert actions.count("create") == 10000
    assert actions.count("extend") == 500
    assert actions.count("none") == 500
    assert len(result["unmanaged"]) == 2000
    hosts = {v["host"] for v in result["volumes"] if v["action"] == "create"}
    assert len(hosts) > 100  # spread
    assert not any(isinstance(p["free_bytes"], float) or math.isnan(p["free_bytes"]) for p in result["pools"])


def test_the_index_and_the_linear_path_choose_alike():
    """The bisection over the sorted (room, id) index picks what filtering and weighing every pool picks (the
    linear path, used for pools with mixed extents): the same plan with 1-byte-different extents forced."""
    rng = random.Random(11)
    for multiplier in (1.0, -1.0, 2.0):
        pools = [pool_facts(f"p{i:02d}@{'t' if i % 2 else 'k'}", thin=bool(i % 2), total=rng.randint(5, 60) * GiB,
                            free=rng.randint(1, 5) * GiB, provisioned=rng.randint(0, 40) * GiB if i % 2 else None,
                            mosr=rng.choice([1.0, 3.0]), reserved=rng.choice([0, 10]), extent=EXTENT)
                 for i in range(12)] + [pool_facts("p99@nfs", free="infinite", extent=EXTENT)]
        vols = [{"name": f"v{i:03d}", "size": f"{rng.randint(1, 40) * 256}MiB",
                 "volume_type": rng.choice([None, "thick"])} for i in range(150)]
        indexed = plan(vols, pools, TYPES, weight_multiplier=multiplier)
        mixed = copy.deepcopy(pools)
        mixed[-1]["extent_size_bytes"] = EXTENT // 2  # no shared extent: every group takes the linear path
        linear = plan(vols, mixed, TYPES, weight_multiplier=multiplier)
        assert placements(indexed) == placements(linear)
        assert [v["reason"] for v in indexed["volumes"]] == [v["reason"] for v in linear["volumes"]]


def test_excluded_volumes_are_validated_but_left_alone():
    """``exclude`` (volumes on a storage host that did not report): action ``unknown``, nothing consumed."""
    pools = [pool_facts("stor1@lvm", free=10 * GiB)]
    result = plan([{"name": "a", "size": 5}, {"name": "gone", "size": 50}], pools,
                  exclude={"gone": {"host": "stor9", "pool_id": "stor9@lvm", "reason": "host did not report"}})
    vol = by_name(result)["gone"]
    assert (vol["action"], vol["host"], vol["pool_id"], vol["reason"]) == (
        "unknown", "stor9", "stor9@lvm", "host did not report")
    assert result["pools"][0]["free_bytes"] == 5 * GiB
    with pytest.raises(Exception, match=r"blockstore_volumes\[1\]\.size"):
        plan([{"name": "a", "size": 5}, {"name": "gone", "size": "lots"}], pools, exclude={"gone": {}})
