# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import copy
import json
import math
import random
import time

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._schedule import (
    FILTERS,
    AvailabilityZoneFilter,
    CapabilitiesFilter,
    CapacityFilter,
    CapacityWeigher,
    PoolState,
    RequestSpec,
    ScheduleError,
    bool_from_string,
    extra_specs_match,
    load_pools,
    max_over_subscription_ratio,
    plan,
    validate_requests,
    validate_volume_types,
)

MiB, GiB, TiB = 2**20, 2**30, 2**40
EXTENT = 4 * MiB


def pool_facts(pid="stor1@lvm", *, thin=False, total=100 * GiB, free=100 * GiB, provisioned=None, allocated=0,
               az="az1", reserved=0, mosr=20.0, extent=EXTENT, volumes=(), **caps):
    """Pool facts as the backend_facts module reports them."""
    host, backend = pid.split("@")
    capabilities = {
        "volume_backend_name": backend, "storage_protocol": "iSCSI", "thin_provisioning_support": thin,
        "thick_provisioning_support": not thin, "availability_zone": az, "reserved_percentage": reserved,
        "max_over_subscription_ratio": mosr, "multiattach": True,
    }
    capabilities.update(caps)
    return {
        "id": pid, "host": host, "backend": backend, "driver": "lvm_thin" if thin else "lvm", "vg": "ember-vg",
        "thin_pool": "thinpool" if thin else None, "extent_size_bytes": extent, "total_bytes": total,
        "free_bytes": free, "provisioned_bytes": allocated if provisioned is None else provisioned,
        "allocated_bytes": allocated, "capabilities": capabilities, "volumes": list(volumes),
    }


def state(**kwargs):
    return PoolState(pool_facts(**kwargs))


def spec(size, **kwargs):
    return RequestSpec(name="v1", size=size, **kwargs)


def existing(name, size, volume_type=None, attached_to=None):
    vol = {"name": name, "size_bytes": size, "volume_type": volume_type}
    if attached_to is not None:
        vol["attached_to"] = attached_to
    return vol


TYPES = {
    "fast": {"extra_specs": {"thin_provisioning_support": "<is> True"}, "description": "thin, over-subscribed"},
    "bulk": {"extra_specs": {"volume_backend_name": "lvm"}},
    "thick": {"extra_specs": {"provisioning:type": "thick"}},
    "shared": {"extra_specs": {"multiattach": "<is> True"}},
}


def by_name(result):
    return {v["name"]: v for v in result["volumes"]}


def schedule_error(*args, **kwargs):
    with pytest.raises(ScheduleError) as excinfo:
        plan(*args, **kwargs)
    return excinfo.value


# --------------------------------------------------------------------------------------------------------------
# AvailabilityZoneFilter
# --------------------------------------------------------------------------------------------------------------

class TestAvailabilityZoneFilter:
    def test_no_zone_requested_passes_every_pool(self):
        assert AvailabilityZoneFilter.passes(state(az="az1"), spec(GiB)) == (True, "")
        assert AvailabilityZoneFilter.passes(state(az=None), spec(GiB)) == (True, "")

    def test_single_zone(self):
        assert AvailabilityZoneFilter.passes(state(az="az1"), spec(GiB, availability_zones=("az1",)))[0]
        ok, reason = AvailabilityZoneFilter.passes(state(az="az1"), spec(GiB, availability_zones=("az2",)))
        assert not ok
        assert reason == "AvailabilityZoneFilter: pool is in az1, volume asks az2"

    def test_list_of_zones(self):
        assert AvailabilityZoneFilter.passes(state(az="az3"), spec(GiB, availability_zones=("az2", "az3")))[0]
        ok, reason = AvailabilityZoneFilter.passes(state(az="az1"), spec(GiB, availability_zones=("az2", "az3")))
        assert not ok
        assert reason == "AvailabilityZoneFilter: pool is in az1, volume asks one of az2, az3"

    def test_pool_without_zone_fails_a_zone_request(self):
        ok, reason = AvailabilityZoneFilter.passes(state(az=None), spec(GiB, availability_zones=("az1",)))
        assert not ok
        assert "pool is in None" in reason


# --------------------------------------------------------------------------------------------------------------
# CapacityFilter
# --------------------------------------------------------------------------------------------------------------

class TestCapacityFilterThick:
    def test_fits_exactly(self):
        assert CapacityFilter.passes(state(free=20 * GiB), spec(20 * GiB)) == (True, "")

    def test_one_extent_too_many(self):
        ok, reason = CapacityFilter.passes(state(free=20 * GiB), spec(20 * GiB + 1))
        assert not ok
        assert reason == "CapacityFilter: needs 20 GiB, usable 20 GiB (free 20 GiB - reserved 0%)"

    def test_size_is_rounded_up_to_the_extent(self):
        pool = state(free=8 * MiB, total=8 * MiB)
        assert CapacityFilter.passes(pool, spec(4 * MiB + 1))[0]  # 8 MiB after rounding
        pool = state(free=8 * MiB - 1, total=8 * MiB)
        assert not CapacityFilter.passes(pool, spec(4 * MiB + 1))[0]
        assert CapacityFilter.passes(state(free=5, total=10, extent=None), spec(5))[0]

    def test_reserved_percentage_is_floored_and_subtracted(self):
        pool = state(total=100 * GiB, free=int(3.8 * GiB), reserved=10, extent=None)
        assert pool.reserved_bytes == 10 * GiB
        ok, reason = CapacityFilter.passes(pool, spec(20 * GiB))
        assert not ok
        assert reason == "CapacityFilter: needs 20 GiB, usable -6.2 GiB (free 3.8 GiB - reserved 10%)"
        pool = state(total=1001, free=1001, reserved=10, extent=None)
        assert pool.reserved_bytes == 100  # floor(100.1)
        assert CapacityFilter.passes(pool, spec(901))[0]
        assert not CapacityFilter.passes(pool, spec(902))[0]

    def test_reserved_example_from_the_docs(self):
        pool = state(total=4 * GiB, free=int(3.8 * GiB), reserved=10, extent=None)
        _ok, reason = CapacityFilter.passes(pool, spec(20 * GiB))
        assert reason == "CapacityFilter: needs 20 GiB, usable 3.4 GiB (free 3.8 GiB - reserved 10%)"

    def test_thick_pool_ignores_the_over_subscription_ratio(self):
        pool = state(thin=False, free=10 * GiB, mosr=20.0)
        assert pool.mosr == 1.0
        assert not CapacityFilter.passes(pool, spec(11 * GiB))[0]


class TestCapacityFilterThin:
    def test_over_subscription_lets_more_than_free_through(self):
        pool = state(thin=True, total=100 * GiB, free=10 * GiB, mosr=20.0)
        assert CapacityFilter.passes(pool, spec(200 * GiB))[0]
        ok, reason = CapacityFilter.passes(pool, spec(201 * GiB))
        assert not ok
        assert reason == ("CapacityFilter: needs 201 GiB, usable 10 GiB x max_over_subscription_ratio 20.00 = "
                          "200 GiB (free 10 GiB - reserved 0%)")

    def test_provisioned_ratio(self):
        pool = state(thin=True, total=100 * GiB, free=50 * GiB, provisioned=1990 * GiB, mosr=20.0)
        assert CapacityFilter.passes(pool, spec(10 * GiB))[0]  # (1990 + 10) / 100 == 20: not above
        ok, reason = CapacityFilter.passes(pool, spec(10 * GiB + 1))
        assert not ok
        assert reason.startswith("CapacityFilter: provisioned ratio (1.94 TiB + 10 GiB) / 100 GiB = 20.00004 exceeds "
                                 "max_over_subscription_ratio 20.00")

    def test_provisioned_defaults_to_allocated(self):
        facts = pool_facts(thin=True, total=100 * GiB, free=50 * GiB, allocated=1990 * GiB, mosr=20.0)
        del facts["provisioned_bytes"]
        pool = PoolState(facts)
        assert pool.provisioned == 1990 * GiB
        assert not CapacityFilter.passes(pool, spec(11 * GiB))[0]

    def test_auto_ratio(self):
        # 1 + provisioned / (used + 1), in GiB as in Cinder: 1 + 50 / (9 + 1) = 6
        pool = state(thin=True, total=100 * GiB, free=91 * GiB, provisioned=50 * GiB, mosr="auto", extent=None)
        assert pool.mosr == pytest.approx(6.0)
        assert CapacityFilter.passes(pool, spec(91 * GiB * 6))[0]
        assert not CapacityFilter.passes(pool, spec(91 * GiB * 6 + GiB))[0]

    def test_auto_ratio_is_20_on_an_empty_pool(self):
        assert state(thin=True, provisioned=0, mosr="auto").mosr == 20.0

    def test_ratio_below_one_fails_a_thin_pool(self):
        pool = state(thin=True, total=100 * GiB, free=100 * GiB, mosr=0.5)
        ok, reason = CapacityFilter.passes(pool, spec(GiB))
        assert not ok
        assert reason == "CapacityFilter: thin pool with max_over_subscription_ratio 0.50, below the minimum of 1"

    def test_provisioning_type_thick_forces_the_thick_path(self):
        pool = state(thin=True, total=100 * GiB, free=10 * GiB, mosr=20.0)
        thick = {"provisioning:type": "thick"}
        assert CapacityFilter.passes(pool, spec(20 * GiB))[0]
        ok, reason = CapacityFilter.passes(pool, spec(20 * GiB, extra_specs=thick))
        assert not ok
        assert reason == "CapacityFilter: needs 20 GiB, usable 10 GiB (free 10 GiB - reserved 0%)"
        assert CapacityFilter.passes(pool, spec(10 * GiB, extra_specs=thick))[0]
        # a thin pool with a ratio < 1 still takes thick volumes
        assert CapacityFilter.passes(state(thin=True, mosr=0.5), spec(GiB, extra_specs=thick))[0]
        assert spec(1, extra_specs={"provisioning:type": "thin"}).thin

    def test_thin_capability_given_as_a_string(self):
        pool = state(thin="True", total=100 * GiB, free=10 * GiB, mosr=20.0)
        assert pool.thin_support
        assert CapacityFilter.passes(pool, spec(100 * GiB))[0]


class TestCapacityFilterSpecialValues:
    @pytest.mark.parametrize("free", ["infinite", "unknown"])
    def test_infinite_or_unknown_free_passes(self, free):
        assert CapacityFilter.passes(state(free=free), spec(100 * TiB)) == (True, "")

    def test_free_not_reported_fails(self):
        ok, reason = CapacityFilter.passes(state(free=None), spec(GiB))
        assert not ok
        assert reason == "CapacityFilter: free capacity not reported"

    @pytest.mark.parametrize("total", ["infinite", "unknown"])
    def test_unknown_total_passes_only_without_reserve(self, total):
        assert CapacityFilter.passes(state(total=total, free=GiB, reserved=0), spec(100 * GiB))[0]
        ok, reason = CapacityFilter.passes(state(total=total, free=GiB, reserved=5), spec(GiB))
        assert not ok
        assert reason == f"CapacityFilter: total capacity is {total}, so reserved 5% cannot be computed"

    @pytest.mark.parametrize("total", [0, -1])
    def test_total_not_positive_fails(self, total):
        ok, reason = CapacityFilter.passes(state(total=total, free=10 * GiB), spec(GiB))
        assert not ok
        assert reason.startswith("CapacityFilter: total capacity is ")

    def test_zero_size_passes(self):
        assert CapacityFilter.passes(state(free=0), spec(0))[0]


def test_max_over_subscription_ratio():
    assert max_over_subscription_ratio(20.0, False, 100, 50, 10) == 1.0
    assert max_over_subscription_ratio(5, True, 100, 50, 10) == 5.0
    assert max_over_subscription_ratio("1.5", True, 100, 50, 10) == 1.5
    assert max_over_subscription_ratio(None, True, 100, 50, 10) == 20.0
    assert max_over_subscription_ratio(0, True, 100, 50, 10) == 20.0
    assert max_over_subscription_ratio("auto", True, "unknown", 50, 10) == 1.0
    assert max_over_subscription_ratio("auto", True, 100 * GiB, 100 * GiB, 0) == 20.0
    assert max_over_subscription_ratio("auto", True, 100 * GiB, 100 * GiB, 10 * GiB) == 11.0
    with pytest.raises(ValueError):
        max_over_subscription_ratio("lots", True, 100, 50, 10)
    with pytest.raises(TypeError):
        max_over_subscription_ratio(True, True, 100, 50, 10)


# --------------------------------------------------------------------------------------------------------------
# extra_specs_ops and CapabilitiesFilter
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "req", "matches"), [
    # '=' is numeric "at least", as in Cinder
    (10, "= 5", True),
    (5, "= 5", True),
    (4, "= 5", False),
    ("10", "= 5", True),
    ("5.0", "== 5", True),
    (5, "== 6", False),
    (5, "!= 6", True),
    (5, "!= 5", False),
    (5, ">= 5", True),
    (4, ">= 5", False),
    (5, "<= 5", True),
    (6, "<= 5", False),
    (True, ">= 1", True),
    ("abc", "== 5", False),  # not a number: no match, no error
    # string comparisons
    ("abc", "s== abc", True),
    ("abc", "s== abd", False),
    ("abc", "s!= abd", True),
    ("abc", "s!= abc", False),
    ("abc", "s< abd", True),
    ("abd", "s< abc", False),
    ("abc", "s<= abc", True),
    ("abd", "s> abc", True),
    ("abc", "s> abc", False),
    ("abc", "s>= abc", True),
    ("abb", "s>= abc", False),
    (5, "s< 6", False),  # TypeError in Cinder; no match here
    # substring
    ("lvm-thin", "<in> thin", True),
    ("lvm", "<in> thin", False),
    (5, "<in> 5", False),
    # booleans
    (True, "<is> True", True),
    (True, "<is> true", True),
    ("True", "<is> True", True),
    ("yes", "<is> True", True),
    ("1", "<is> True", True),
    (False, "<is> True", False),
    (False, "<is> False", True),
    ("off", "<is> False", True),
    # any of
    ("b", "<or> a <or> b", True),
    ("a", "<or> a <or> b <or> c", True),
    ("c", "<or> a <or> b <or> c", True),
    ("d", "<or> a <or> b <or> c", False),
    ("a", "<or> a", True),
    ("b", "<or> a", False),
    (True, "<or> True <or> False", False),  # compared as reported, like Cinder
    # no operator: plain equality with the capability as reported
    ("lvm-thin", "lvm-thin", True),
    ("lvm", "lvm-thin", False),
    ("two words", "two words", True),
    (True, "True", False),
    (10, "10", False),
    # only the first word after an operator counts
    ("5", "== 5 6", True),
    # None
    (None, "<is> True", False),
    (None, "s== x", False),
    (None, None, True),
    ("x", None, False),
    ("", "", True),
])
def test_extra_specs_match(value, req, matches):
    assert extra_specs_match(value, req) is matches


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("t", True), ("TRUE", True), (" on ", True), ("y", True), (1, True),
    ("false", False), ("no", False), ("", False), ("maybe", False), (0, False), (None, False),
])
def test_bool_from_string(value, expected):
    assert bool_from_string(value) is expected


class TestCapabilitiesFilter:
    def test_no_extra_specs_passes(self):
        assert CapabilitiesFilter.passes(state(), spec(GiB)) == (True, "")
        assert CapabilitiesFilter.passes(state(), spec(GiB, extra_specs={})) == (True, "")

    def test_unscoped_key(self):
        pool = state(pid="stor1@lvm-thin")
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"volume_backend_name": "lvm-thin"}))[0]
        ok, reason = CapabilitiesFilter.passes(pool, spec(GiB, volume_type="bulk",
                                                          extra_specs={"volume_backend_name": "lvm"}))
        assert not ok
        assert reason == "CapabilitiesFilter: volume_backend_name: pool reports 'lvm-thin', type bulk wants 'lvm'"

    def test_capabilities_scope(self):
        pool = state(thin=True)
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={
            "capabilities:thin_provisioning_support": "<is> True"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={
            "capabilities:thin_provisioning_support": "<is> False"}))[0]

    def test_other_scopes_are_ignored(self):
        specs = {"provisioning:type": "thick", "qos:read_iops_sec": "1000", "vendor:feature": "<is> True",
                 "volume_backend_name": "lvm"}
        assert CapabilitiesFilter.passes(state(), spec(GiB, extra_specs=specs)) == (True, "")

    def test_missing_capability_fails(self):
        ok, reason = CapabilitiesFilter.passes(state(), spec(GiB, volume_type="gold",
                                                             extra_specs={"compression": "<is> True"}))
        assert not ok
        assert reason == ("CapabilitiesFilter: pool does not report capability 'compression' "
                          "(type gold wants '<is> True')")
        assert not CapabilitiesFilter.passes(state(), spec(GiB, extra_specs={"capabilities:nope": "x"}))[0]

    def test_nested_capabilities(self):
        pool = state(tier={"media": "ssd", "level": 2})
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"capabilities:tier:media": "ssd"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"capabilities:tier:level": ">= 2"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"capabilities:tier:media": "hdd"}))[0]
        ok, reason = CapabilitiesFilter.passes(state(), spec(GiB, extra_specs={"capabilities:storage_protocol:x": "y"}))
        assert not ok
        assert "does not report capability 'storage_protocol:x'" in reason

    def test_list_capability_matches_any_element(self):
        pool = state(storage_protocol=["iSCSI", "iSER"])
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "iSER"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "<in> SC"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "<or> FC <or> iSCSI"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "FC"}))[0]

    def test_every_spec_must_match(self):
        pool = state(pid="stor1@lvm-thin", thin=True)
        specs = {"volume_backend_name": "lvm-thin", "thin_provisioning_support": "<is> True",
                 "multiattach": "<is> False"}
        ok, reason = CapabilitiesFilter.passes(pool, spec(GiB, extra_specs=specs))
        assert not ok
        assert reason.startswith("CapabilitiesFilter: multiattach: pool reports True")

    def test_plain_value_against_a_boolean_capability_explains_the_operator(self):
        ok, reason = CapabilitiesFilter.passes(state(), spec(GiB, volume_type="shared",
                                                             extra_specs={"multiattach": "True"}))
        assert not ok
        assert reason == ("CapabilitiesFilter: multiattach: pool reports True, type shared wants 'True'; without an "
                          "operator values are compared as they are: use '<is> True' or '== True'")

    def test_numeric_operators_on_capabilities(self):
        pool = state(reserved=10, max_iops=5000)
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"max_iops": "= 4000"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"max_iops": "= 6000"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"reserved_percentage": "<= 10"}))[0]


def test_filters_run_in_cinders_default_order():
    assert [f.name for f in FILTERS] == ["AvailabilityZoneFilter", "CapacityFilter", "CapabilitiesFilter"]


# --------------------------------------------------------------------------------------------------------------
# CapacityWeigher
# --------------------------------------------------------------------------------------------------------------

class TestCapacityWeigher:
    def test_thin_virtual_free(self):
        pool = state(thin=True, total=100 * GiB, free=40 * GiB, provisioned=300 * GiB, reserved=10, mosr=5.0)
        assert CapacityWeigher.virtual_free(pool, True) == 90 * GiB * 5 - 300 * GiB
        # provisioning:type thick on a thin pool: min(free, total - reserved - provisioned)
        assert CapacityWeigher.virtual_free(pool, False) == -210 * GiB

    def test_thick_virtual_free(self):
        pool = state(total=100 * GiB, free=40 * GiB, provisioned=30 * GiB, reserved=10)
        assert CapacityWeigher.virtual_free(pool, False) == 40 * GiB  # min(40, 100 - 10 - 30)
        pool = state(total=100 * GiB, free=80 * GiB, provisioned=30 * GiB, reserved=10)
        assert CapacityWeigher.virtual_free(pool, False) == 60 * GiB
        assert CapacityWeigher.virtual_free(pool, True) == 60 * GiB  # no thin support

    @pytest.mark.parametrize(("free", "total"), [("infinite", 100), ("unknown", 100), (50, "unknown")])
    def test_infinite_is_none(self, free, total):
        assert CapacityWeigher.virtual_free(state(free=free, total=total), True) is None

    def test_weigh_normalises(self):
        assert CapacityWeigher.weigh([10, 20, 30]) == [0.0, 0.5, 1.0]
        assert CapacityWeigher.weigh([10, 20, 30], 2.0) == [0.0, 1.0, 2.0]
        assert CapacityWeigher.weigh([10, 20, 30], -1.0) == [-0.0, -0.5, -1.0]
        assert CapacityWeigher.weigh([7, 7]) == [0.0, 0.0]
        assert CapacityWeigher.weigh([]) == []

    def test_weigh_infinite_comes_last_either_way(self):
        spread = CapacityWeigher.weigh([None, 10, 20], 1.0)
        assert spread[0] == min(spread)
        stack = CapacityWeigher.weigh([None, 10, 20], -1.0)
        assert stack[0] == min(stack)
        assert stack[1] == max(stack)
        assert CapacityWeigher.weigh([None, None], 1.0) == [0.0, 0.0]
        assert CapacityWeigher.weigh([None, None], -1.0) == [0.0, 0.0]
        assert CapacityWeigher.weigh([None, 5, 5], -1.0) == [-1.0, 0.0, 0.0]

    def test_best_agrees_with_weigh(self):
        rng = random.Random(7)
        for _trial in range(2000):
            n = rng.randint(1, 8)
            values = [None if rng.random() < 0.15 else rng.choice([rng.randint(-5, 5), rng.randint(0, 3) * GiB])
                      for _value in range(n)]
            multiplier = rng.choice([1.0, -1.0, 2.5, -0.5, 0.0])
            weights = CapacityWeigher.weigh(values, multiplier)
            index, weight = CapacityWeigher.best(values, multiplier)
            assert index == weights.index(max(weights)), (values, multiplier)
            assert weight == pytest.approx(max(weights)), (values, multiplier)

    def test_best_needs_values(self):
        with pytest.raises(ValueError):
            CapacityWeigher.best([])


# --------------------------------------------------------------------------------------------------------------
# plan(): placement
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
            {"id": "stor2@lvm", "free_bytes": 60 * GiB, "provisioned_bytes": 30 * GiB, "allocated_bytes": 30 * GiB},
        ]

    def test_consumption_on_a_thin_pool_takes_the_full_size_from_free(self):
        pools = [pool_facts("stor1@lvm-thin", thin=True, total=100 * GiB, free=100 * GiB, mosr=20.0)]
        vols = [{"name": "a", "size": "500GiB"}, {"name": "b", "size": "500GiB"}]
        result = plan(vols[:1], pools)
        assert result["pools"][0]["free_bytes"] == -400 * GiB  # as Cinder's consume_from_volume
        assert result["pools"][0]["provisioned_bytes"] == 500 * GiB
        err = schedule_error(vols, pools)
        assert err.errors == [("No valid backend for b: stor1@lvm-thin: CapacityFilter: needs 500 GiB, "
                               "usable -400 GiB x max_over_subscription_ratio 20.00 = -7.81 TiB "
                               "(free -400 GiB - reserved 0%)")]

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
        assert "virtual free 500 GiB" in result["volumes"][0]["reason"]
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
        result = plan([{"name": "a", "size": 5 * MiB}, {"name": "b", "size": 5 * MiB}], pools)
        assert [(v["pool_id"], v["size_bytes"]) for v in result["volumes"]] == [
            ("stor1@lvm", 8 * MiB), ("stor2@lvm", 5 * MiB)]


class TestNoValidBackend:
    POOLS = (
        pool_facts("stor4@lvm", free=GiB),
        pool_facts("stor1@lvm", az="az2"),
        pool_facts("stor3@lvm-thin", thin=True),
        pool_facts("stor2@lvm", total=100 * GiB, free=int(3.8 * GiB), reserved=10),
    )

    def test_message_names_every_pool_with_its_first_reason(self):
        err = schedule_error([{"name": "db01", "size": "20GiB", "volume_type": "bulk", "availability_zone": "az1"}],
                             self.POOLS, TYPES)
        assert str(err) == (
            "No valid backend for db01: "
            "stor1@lvm: AvailabilityZoneFilter: pool is in az2, volume asks az1; "
            "stor2@lvm: CapacityFilter: needs 20 GiB, usable -6.2 GiB (free 3.8 GiB - reserved 10%); "
            "stor3@lvm-thin: CapabilitiesFilter: volume_backend_name: pool reports 'lvm-thin', type bulk wants 'lvm'; "
            "stor4@lvm: CapacityFilter: needs 20 GiB, usable 1 GiB (free 1 GiB - reserved 0%)")

    def test_capacity_is_reported_before_capabilities(self):
        err = schedule_error([{"name": "db01", "size": "2GiB", "volume_type": "fast"}], self.POOLS[:1], TYPES)
        assert str(err).startswith("No valid backend for db01: stor4@lvm: CapacityFilter: needs 2 GiB")

    def test_every_unplaceable_volume_is_reported(self):
        vols = [{"name": "big1", "size": "3TiB"}, {"name": "ok", "size": "1GiB"}, {"name": "big2", "size": "4TiB"}]
        err = schedule_error(vols, self.POOLS)
        assert len(err.errors) == 2
        assert err.errors[0].startswith("No valid backend for big1: stor1@lvm: CapacityFilter: needs 3 TiB")
        assert err.errors[1].startswith("No valid backend for big2: stor1@lvm: CapacityFilter: needs 4 TiB")
        assert "stor3@lvm-thin: CapacityFilter: provisioned ratio (1 GiB + 4 TiB) / 100 GiB = 40.97 exceeds" \
            in err.errors[1]
        assert str(err) == "\n".join(err.errors)

    def test_no_pools(self):
        err = schedule_error([{"name": "db01", "size": "1GiB"}], [])
        assert str(err) == "No valid backend for db01: no pools reported"

    def test_nothing_to_place_needs_no_pools(self):
        assert plan([], []) == {"volumes": [], "unmanaged": [], "pools": []}
        assert plan(None, None)["volumes"] == []


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
        assert result["pools"][0] == {"id": "stor1@lvm", "free_bytes": 5 * GiB, "provisioned_bytes": 10 * GiB,
                                      "allocated_bytes": 10 * GiB}

    def test_extend_that_does_not_fit(self):
        pools = [pool_facts("stor1@lvm", free=5 * GiB, volumes=[existing("db01", 10 * GiB)]),
                 pool_facts("stor2@lvm", free=90 * GiB)]
        err = schedule_error([{"name": "db01", "size": "20GiB"}], pools)
        assert str(err) == ("No valid backend for db01: extend from 10 GiB to 20 GiB stays on stor1@lvm: "
                            "CapacityFilter: needs 10 GiB, usable 5 GiB (free 5 GiB - reserved 0%)")

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

    def test_retype_is_refused(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB, "bulk")])]
        err = schedule_error([{"name": "db01", "size": "1GiB", "volume_type": "fast"}], pools, TYPES)
        assert str(err) == ("blockstore_volumes[0].volume_type: db01 exists on stor1@lvm with volume type bulk, "
                            "inventory asks fast; changing the type (retype) is not supported")

    def test_untyped_existing_volume_takes_the_requested_type(self):
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB)])]
        vol = plan([{"name": "db01", "size": "1GiB", "volume_type": "fast"}], pools, TYPES)["volumes"][0]
        assert (vol["action"], vol["volume_type"]) == ("none", "fast")

    def test_volumes_are_not_moved_between_zones(self):
        pools = [pool_facts("stor1@lvm", az="az1", volumes=[existing("db01", GiB)])]
        err = schedule_error([{"name": "db01", "size": "1GiB", "availability_zone": ["az2", "az3"]}], pools)
        assert str(err) == ("blockstore_volumes[0].availability_zone: db01 exists on stor1@lvm in zone az1, "
                            "inventory asks az2, az3; volumes are not moved")
        assert plan([{"name": "db01", "size": "1GiB", "availability_zone": "az1"}], pools)["volumes"][0]["action"] \
            == "none"

    def test_multiattach_checked_against_the_existing_type(self):
        two = [{"host": "app01"}, {"host": "app02"}]
        pools = [pool_facts("stor1@lvm", volumes=[existing("db01", GiB, "bulk"), existing("db02", GiB, "shared")])]
        err = schedule_error([{"name": "db01", "size": "1GiB", "attachments": two}], pools, TYPES)
        assert str(err).startswith("blockstore_volumes[0].attachments: 2 hosts, but volume type bulk does not allow")
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
        {"name": "db02", "size": 5 * GiB, "volume_type": "shared", "attachments": [{"host": "a"}, {"host": "b"}],
         "availability_zone": ["az1"]},
        {"name": "old", "state": "absent"},
        {"name": "never", "state": "absent"},
        {"name": "same", "size": "1GiB", "state": "present", "force": False},
    ]
    result = plan(vols, pools, TYPES, consumers=["a", "b"])
    assert set(result) == {"volumes", "unmanaged", "pools"}
    keys = {"name", "state", "action", "size_bytes", "requested_size_bytes", "current_size_bytes", "volume_type",
            "extra_specs", "availability_zone", "host", "backend", "pool_id", "driver", "vg", "thin_pool",
            "attachments", "force", "description", "reason"}
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

class TestValidation:
    def errors(self, volumes, volume_types=..., **kwargs):
        # Ellipsis, not None, stands for the shared TYPES: None is itself a value under test (no types defined).
        if volume_types is ...:
            volume_types = TYPES
        return schedule_error(volumes, [pool_facts()], volume_types, **kwargs).errors

    def test_unknown_key(self):
        assert self.errors([{"name": "a", "size": 1, "sise": 2, "zone": "x"}]) == [
            ("blockstore_volumes[0]: unknown key(s) sise, zone; allowed: attachments, availability_zone, description, "
             "force, name, size, state, volume_type")]

    def test_metadata_is_refused_until_it_is_stored(self):
        # A key the hosts would not keep is an error, not silently dropped.
        (error,) = self.errors([{"name": "a", "size": 1, "metadata": {"app": "pg"}}])
        assert error.startswith("blockstore_volumes[0]: unknown key(s) metadata;")

    @pytest.mark.parametrize("name", [None, "", "DB01", "db_01", "-x", "x" * 64, 7])
    def test_bad_name(self, name):
        item = {"size": "1GiB"} if name is None else {"name": name, "size": "1GiB"}
        (error,) = self.errors([item])
        assert error.startswith(f"blockstore_volumes[0].name: {name!r} is not a valid volume name")

    @pytest.mark.parametrize(("size", "fragment"), [
        ("ten", "'ten' is not a size"), ("10 XiB", "unknown unit"), (-1, "is negative"), (True, "is not a size"),
        (0, "0 is zero"), ("0GiB", "'0GiB' is zero"),
    ])
    def test_bad_size(self, size, fragment):
        (error,) = self.errors([{"name": "ok", "size": "1GiB"}, {"name": "a", "size": size}])
        assert error.startswith("blockstore_volumes[1].size: ")
        assert fragment in error

    def test_size_required_when_present(self):
        assert self.errors([{"name": "a"}]) == [
            "blockstore_volumes[0].size: missing; a present volume needs a size such as 10GiB"]
        assert plan([{"name": "a", "state": "absent"}], [])["volumes"][0]["action"] == "absent"

    def test_unknown_volume_type(self):
        assert self.errors([{"name": "a", "size": 1, "volume_type": "fsat"}]) == [
            ("blockstore_volumes[0].volume_type: 'fsat' is not a defined volume type; defined: bulk, fast, shared, "
             "thick")]
        assert self.errors([{"name": "a", "size": 1, "volume_type": "fast"}], None) == [
            "blockstore_volumes[0].volume_type: 'fast' is not a defined volume type; defined: none"]

    def test_duplicate_names(self):
        assert self.errors([{"name": "a", "size": 1}, {"name": "b", "size": 1}, {"name": "a", "state": "absent"}]) == [
            "blockstore_volumes[2].name: 'a' is already used by blockstore_volumes[0]"]

    def test_wrong_types(self):
        errors = self.errors([
            "db01",
            {"name": "a", "size": 1, "state": "gone"},
            {"name": "b", "size": 1, "force": "yes"},
            {"name": "c", "size": 1, "description": 5},
            {"name": "d", "size": 1, "description": None},
            {"name": "e", "size": 1, "availability_zone": 5},
            {"name": "f", "size": 1, "availability_zone": ["az1", ""]},
        ])
        assert errors == [
            "blockstore_volumes[0]: expected a dict with at least a name, got str",
            "blockstore_volumes[1].state: 'gone' is not one of present, absent",
            "blockstore_volumes[2].force: 'yes' is not a boolean",
            "blockstore_volumes[3].description: 5 is not a string",
            "blockstore_volumes[5].availability_zone: 5 is not a zone name or a list of zone names",
            "blockstore_volumes[6].availability_zone: ['az1', ''] is not a zone name or a list of zone names",
        ]
        assert self.errors({"name": "a"}) == ["blockstore_volumes: expected a list of volumes, got dict"]

    def test_attachments_shape(self):
        errors = self.errors([
            {"name": "a", "size": 1, "attachments": {"host": "app01"}},
            {"name": "b", "size": 1, "attachments": ["app01"]},
            {"name": "c", "size": 1, "attachments": [{"host": "app01", "lun": 1}]},
            {"name": "d", "size": 1, "attachments": [{"hostname": "app01"}]},
            {"name": "e", "size": 1, "volume_type": "shared", "attachments": [{"host": "x"}, {"host": "x"}]},
        ])
        assert errors == [
            "blockstore_volumes[0].attachments: expected a list of {host: name}, got dict",
            "blockstore_volumes[1].attachments[0]: expected a dict {host: name}, got 'app01'",
            "blockstore_volumes[2].attachments[0]: unknown key(s) lun; allowed: host",
            "blockstore_volumes[3].attachments[0]: unknown key(s) hostname; allowed: host",
            "blockstore_volumes[3].attachments[0].host: None is not a host name",
            "blockstore_volumes[4].attachments[1].host: 'x' is listed twice",
        ]

    def test_consumers(self):
        vols = [{"name": "a", "size": 1, "attachments": [{"host": "app01"}, ], },
                {"name": "b", "size": 1, "attachments": [{"host": "app09"}]}]
        assert self.errors(vols, consumers=["app01", "app02"]) == [
            "blockstore_volumes[1].attachments[0].host: 'app09' is not a consumer host; known: app01, app02"]
        assert len(plan(vols, [pool_facts()])["volumes"]) == 2  # without consumers, any host name

    def test_multiattach(self):
        two = [{"host": "app01"}, {"host": "app02"}]
        assert self.errors([{"name": "a", "size": 1, "volume_type": "bulk", "attachments": two}]) == [
            ("blockstore_volumes[0].attachments: 2 hosts, but volume type bulk does not allow multiattach; add the "
             "extra spec multiattach: \"<is> True\" to it")]
        assert self.errors([{"name": "a", "size": 1, "attachments": two}]) == [
            ("blockstore_volumes[0].attachments: 2 hosts, but a volume without a volume type cannot be multiattached; "
             "use a type with the extra spec multiattach: \"<is> True\"")]
        assert self.errors([{"name": "a", "size": 1, "attachments": two}], default_volume_type="bulk") == [
            ("blockstore_volumes[0].attachments: 2 hosts, but volume type bulk does not allow multiattach; add the "
             "extra spec multiattach: \"<is> True\" to it")]
        types = dict(TYPES, loose={"extra_specs": {"multiattach": "True"}})
        assert len(self.errors([{"name": "a", "size": 1, "volume_type": "loose", "attachments": two}], types)) == 1
        result = plan([{"name": "a", "size": 1, "volume_type": "shared", "attachments": two},
                       {"name": "b", "size": 1, "attachments": two}], [pool_facts()], TYPES,
                      default_volume_type="shared")
        assert [v["volume_type"] for v in result["volumes"]] == ["shared", "shared"]
        assert plan([{"name": "a", "size": 1, "volume_type": "bulk", "attachments": two[:1]}], [pool_facts()],
                    TYPES)["volumes"][0]["attachments"] == ["app01"]

    def test_all_problems_are_collected(self):
        errors = self.errors([{"name": "A", "size": "x"}, {"name": "b", "size": 1, "volume_type": "nope", "x": 1}])
        assert len(errors) == 4
        assert errors[0].startswith("blockstore_volumes[0].name")
        assert errors[1].startswith("blockstore_volumes[0].size")
        assert errors[2].startswith("blockstore_volumes[1]: unknown key(s) x")
        assert errors[3].startswith("blockstore_volumes[1].volume_type")

    def test_validation_comes_before_scheduling(self):
        err = schedule_error([{"name": "huge", "size": "1PiB"}, {"name": "bad name", "size": "1GiB"}], [pool_facts()])
        assert len(err.errors) == 1
        assert err.errors[0].startswith("blockstore_volumes[1].name: 'bad name' is not a valid volume name")

    def test_options(self):
        assert schedule_error([], [], TYPES, default_volume_type="gold").errors == [
            "default_volume_type: 'gold' is not a defined volume type; defined: bulk, fast, shared, thick"]
        for bad in (True, "1", float("nan"), float("inf"), None):
            assert schedule_error([], [], weight_multiplier=bad).errors == [
                f"weight_multiplier: {bad!r} is not a finite number"]
        assert schedule_error([], [], consumers="app01").errors == ["consumers: 'app01' is not a list of host names"]

    def test_error_type(self):
        assert issubclass(ScheduleError, ValueError)
        assert ScheduleError("one").errors == ["one"]
        assert str(ScheduleError(["one", "two"])) == "one\ntwo"


class TestVolumeTypeValidation:
    def test_valid(self):
        assert validate_volume_types(TYPES)["fast"] == {
            "extra_specs": {"thin_provisioning_support": "<is> True"}, "description": "thin, over-subscribed"}
        assert validate_volume_types({"plain": None}) == {"plain": {"extra_specs": {}, "description": None}}
        assert validate_volume_types(None) == {}

    def test_problems(self):
        with pytest.raises(ScheduleError) as excinfo:
            validate_volume_types({
                "bad name": {},
                "a": {"extra_specs": {"multiattach": True}, "qos": {}},
                "b": {"extra_specs": ["x"], "description": 3},
                "c": "fast",
            })
        assert excinfo.value.errors == [
            ("blockstore_volume_types: 'bad name' is not a valid volume type name; use letters, digits, '_', '.', "
             "'+' or '-'"),
            "blockstore_volume_types.a: unknown key(s) qos; allowed: description, extra_specs",
            ("blockstore_volume_types.a.extra_specs.multiattach: True is not a string; quote it, for example "
             "\"<is> True\" for a boolean or \"== True\" for a number"),
            "blockstore_volume_types.b.extra_specs: expected a dict, got list",
            "blockstore_volume_types.b.description: 3 is not a string",
            "blockstore_volume_types.c: expected a dict with extra_specs and description, got str",
        ]
        with pytest.raises(ScheduleError, match="^blockstore_volume_types: expected a dict"):
            validate_volume_types(["fast"])

    def test_validate_requests_directly(self):
        (req,) = validate_requests([{"name": "a", "size": "1GiB", "availability_zone": "az1"}],
                                   validate_volume_types(TYPES))
        assert (req.name, req.size, req.state, req.availability_zones, req.attachments, req.field) == (
            "a", GiB, "present", ("az1",), [], "blockstore_volumes[0]")


class TestPoolValidation:
    def test_valid(self):
        pools = load_pools([pool_facts("stor2@lvm"), pool_facts("stor1@lvm")])
        assert [p.id for p in pools] == ["stor1@lvm", "stor2@lvm"]

    def test_problems(self):
        bad = pool_facts("stor2@lvm")
        bad.update(total_bytes="lots", free_bytes=1.5, host=None)
        bad["capabilities"].update(reserved_percentage=150)
        thin = pool_facts("stor3@lvm-thin", thin=True, mosr="many")
        missing = pool_facts("stor4@lvm")
        del missing["total_bytes"]
        with pytest.raises(ScheduleError) as excinfo:
            load_pools([pool_facts("stor1@lvm"), pool_facts("stor1@lvm"), bad, thin, missing, "x"])
        assert excinfo.value.errors == [
            "pools[1].id: 'stor1@lvm' is also the id of pools[0]",
            "pools[2].host: None is not a non-empty string",
            "pools[2].total_bytes: 'lots' is not an integer number of bytes",
            "pools[2].free_bytes: 1.5 is not an integer number of bytes",
            "pools[2].capabilities.reserved_percentage: 150 is not a number from 0 to 100",
            "pools[3].capabilities.max_over_subscription_ratio: 'many' is not a number or 'auto'",
            "pools[4].total_bytes: missing",
            "pools[5]: expected a dict of pool facts, got str",
        ]
        with pytest.raises(ScheduleError, match=r"^pools: expected a list"):
            load_pools({"id": "x"})

    def test_bad_volume_facts(self):
        with pytest.raises(ScheduleError) as excinfo:
            load_pools([pool_facts(volumes=[{"size_bytes": 1}, {"name": "a", "size_bytes": "1G"}])])
        assert excinfo.value.errors == [
            "pools[0].volumes[0]: expected a dict with a string name, got {'size_bytes': 1}",
            "pools[0].volumes[1].size_bytes: '1G' is not an integer number of bytes",
        ]


# --------------------------------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------------------------------

def test_ten_thousand_requests_over_a_thousand_pools():
    pools = [pool_facts(f"stor{i:04d}@{'lvm-thin' if i % 2 else 'lvm'}", thin=bool(i % 2), total=10 * TiB,
                        free=(5000 + i) * GiB, provisioned=1000 * GiB, az=f"az{i % 3}", reserved=10,
                        mosr="auto" if i % 4 == 1 else 20.0,
                        volumes=[existing(f"ex-{i}-{j}", 10 * GiB, "fast") for j in range(3)])
             for i in range(1000)]
    vols = [{"name": f"v{i:05d}", "size": f"{1 + i % 50}GiB", "volume_type": "fast" if i % 2 else "bulk",
             **({"availability_zone": f"az{i % 3}"} if i % 5 == 0 else {})} for i in range(10000)]
    vols += [{"name": f"ex-{i}-0", "size": f"{10 + i % 2}GiB", "volume_type": "fast"} for i in range(1000)]
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
