# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CapacityWeigher (weights/capacity.py): Cinder's own cases (cinder/tests/unit/scheduler/test_capacity_weigher.py
over the hosts of cinder/tests/unit/scheduler/fakes.py ``SERVICE_STATES``), then this project's."""

from __future__ import annotations

import random

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.weights.capacity import CapacityWeigher
from scheduler_helpers import GiB, cinder_pool, state

# fakes.SERVICE_STATES, in GiB (max_over_subscription_ratio reported as strings, as there).
SERVICE_STATES = {
    "host1": dict(total_gb=1024, free_gb=1024, allocated_gb=0, provisioned_gb=0, mosr="1.0", thin=False,
                  reserved=10),
    "host2": dict(total_gb=2048, free_gb=300, allocated_gb=1748, provisioned_gb=1748, mosr="1.5", thin=True,
                  reserved=10),
    "host3": dict(total_gb=512, free_gb=256, allocated_gb=256, provisioned_gb=256, mosr="2.0", thin=False,
                  reserved=0),
    "host4": dict(total_gb=2048, free_gb=200, allocated_gb=1848, provisioned_gb=2047, mosr="1.0", thin=True,
                  reserved=5),
    "host5": dict(total_gb="infinite", free_gb="unknown", allocated_gb=1548, provisioned_gb=1548, mosr="1.0",
                  thin=True, reserved=5),
}
HOST5_VARIANTS = {  # test_capacity_weight_{free_unknown,cap_unknown,free_infinite,cap_infinite}
    "free_unknown": dict(total_gb=3000, free_gb="unknown"),
    "cap_unknown": dict(total_gb="unknown", free_gb=3000),
    "free_infinite": dict(total_gb=3000, free_gb="infinite"),
    "cap_infinite": dict(total_gb="infinite", free_gb=3000),
}
VOLUME_TYPES = {"thin": {"provisioning:type": "thin"}, "thick": {"provisioning:type": "thick"}, "empty": {},
                "no-specs": {}, "none": None}


def hosts(states):
    return {name: cinder_pool(f"{name}@lvm", **attrs) for name, attrs in states.items()}


def weighed(pools, multiplier, extra_specs):
    """[(weight, host)] best first, as OrderedHostWeightHandler sorts them (stable for equal weights)."""
    thin = (extra_specs or {}).get("provisioning:type") != "thick"
    names = list(pools)
    values = [CapacityWeigher.virtual_free(pools[n], thin) for n in names]
    weights = CapacityWeigher.weigh(values, multiplier)
    return sorted(zip(weights, names), key=lambda item: -item[0])


def test_virtual_free_of_the_fake_hosts():
    """Cinder >= 21.0 values, worked out from sched_utils.calculate_capacity_factors. (The comments in Cinder's
    test still show the pre-21.0 thin value of host2, 2048 * 1.5 - 1748 - 204 = 1120; the winners are the same.)
    Cinder floors the reserve to whole GiB; here it is floored to a byte (1024 GiB * 10% = 102.4 GiB)."""
    pools = hosts(SERVICE_STATES)
    vfree = {n: (CapacityWeigher.virtual_free(p, True), CapacityWeigher.virtual_free(p, False))
             for n, p in pools.items()}
    reserve1 = 1024 * GiB * 10 // 100
    assert vfree["host1"] == (1024 * GiB - reserve1, 1024 * GiB - reserve1)  # thick: min(1024, 1024 - 102.4 - 0)
    reserve2 = 2048 * GiB * 10 // 100
    assert vfree["host2"] == ((2048 * GiB - reserve2) * 3 // 2 - 1748 * GiB,  # (2048 - 204.8) * 1.5 - 1748
                              min(300 * GiB, 2048 * GiB - reserve2 - 1748 * GiB))  # thick request: 95.2 GiB
    assert vfree["host3"] == (256 * GiB, 256 * GiB)  # min(256, 512 - 0 - 256)
    reserve4 = 2048 * GiB * 5 // 100
    assert vfree["host4"] == ((2048 * GiB - reserve4) - 2047 * GiB,  # (2048 - 102.4) * 1.0 - 2047 < 0
                              min(200 * GiB, 2048 * GiB - reserve4 - 2047 * GiB))
    assert vfree["host5"] == (None, None)


@pytest.mark.parametrize(("volume_type", "winner"), [
    ("thin", "host2"), ("thick", "host1"), ("empty", "host2"), ("no-specs", "host2"), ("none", "host2")])
def test_cinder_default_of_spreading_first(volume_type, winner):
    best = weighed(hosts(SERVICE_STATES), 1.0, VOLUME_TYPES[volume_type])[0]
    assert best == (1.0, winner)


@pytest.mark.parametrize("volume_type", list(VOLUME_TYPES))
def test_cinder_capacity_weight_multiplier1(volume_type):
    best = weighed(hosts(SERVICE_STATES), -1.0, VOLUME_TYPES[volume_type])[0]
    assert best == (0.0, "host4")


@pytest.mark.parametrize(("volume_type", "winner"), [
    ("thin", "host2"), ("thick", "host1"), ("empty", "host2"), ("no-specs", "host2"), ("none", "host2")])
def test_cinder_capacity_weight_multiplier2(volume_type, winner):
    best = weighed(hosts(SERVICE_STATES), 2.0, VOLUME_TYPES[volume_type])[0]
    assert best == (2.0, winner)


def test_cinder_capacity_weight_no_unknown_or_infinite():
    states = {n: s for n, s in SERVICE_STATES.items() if n != "host5"}
    ranking = weighed(hosts(states), -1.0, None)
    assert ranking[0] == (0.0, "host4")
    assert ranking[-1] == (-1.0, "host2")


@pytest.mark.parametrize("variant", list(HOST5_VARIANTS))
def test_cinder_capacity_weight_infinite_or_unknown(variant):
    states = dict(SERVICE_STATES, host5=dict(SERVICE_STATES["host5"], **HOST5_VARIANTS[variant]))
    ranking = weighed(hosts(states), -1.0, None)
    assert ranking[0] == (0.0, "host4")
    assert ranking[-1] == (-1.0, "host5")


class TestProject:
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
