# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CapacityFilter (filters/capacity_filter.py): Cinder's own test cases, then this project's.

Expected values are worked out in the tests from Cinder's formulas (capacity_filter.py ``backend_passes`` and
sched_utils.py ``calculate_capacity_factors``, Cinder >= 21.0):
thin ``(total - floor(total * pct / 100)) * ratio - provisioned >= size``; thick
``min(free, total - floor(total * pct / 100) - provisioned) >= size``.
"""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.capacity_filter import (
    CapacityFilter,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.host_manager import PoolState
from scheduler_helpers import EXTENT, GiB, MiB, TiB, cinder_pool, pool_facts, spec, state

THICK = {"provisioning:type": "thick"}

# cinder/tests/unit/scheduler/test_host_filters.py, CapacityFilterTestCase: (test name, requested GiB,
# FakeBackendState attributes, volume type extra specs, expected). Sizes are converted to bytes (every value is a
# whole or half GiB, so the conversion is exact). The ``capabilities:*_provisioning_support`` filter properties of
# those tests are not read by Cinder's CapacityFilter and are left out; ``thick_provisioning_support`` is not read
# either. An extend (``new_size``) is the growth here (100 - 50).
CINDER_CASES = [
    ("test_filter_passes", 100, dict(total_gb=500, free_gb=200), None, True),
    ("test_filter_passes_without_volume_id", 100, dict(total_gb=500, free_gb=200), None, True),
    ("test_filter_fails", 121, dict(total_gb=200, free_gb=120, reserved=20), None, False),
    ("test_filter_fails_free_capacity_None", 100, dict(free_gb=None), None, False),
    ("test_filter_with_size_0", 0, dict(total_gb=500, free_gb=200, provisioned_gb=1500, mosr=2.0, reserved=5,
                                        thin=True), None, True),
    ("test_filter_passes_infinite", 100, dict(free_gb="infinite"), None, True),
    ("test_filter_extend_request", 100 - 50, dict(free_gb=200, total_gb=500), None, True),
    ("test_filter_extend_request_negative", 50, dict(free_gb=49, total_gb=500), None, False),
    ("test_filter_passes_unknown", 100, dict(free_gb="unknown"), None, True),
    ("test_filter_passes_total_infinite", 100, dict(free_gb="infinite", total_gb="infinite", reserved=0), None,
     True),
    ("test_filter_passes_total_unknown", 100, dict(free_gb="unknown", total_gb="unknown", reserved=0), None, True),
    ("test_filter_fails_total_infinite", 100, dict(total_gb="infinite", reserved=5), None, False),
    ("test_filter_fails_total_unknown", 100, dict(total_gb="unknown", reserved=5), None, False),
    ("test_filter_fails_total_zero", 100, dict(total_gb=0, reserved=5), None, False),
    ("test_filter_thin_true_passes", 100, dict(total_gb=500, free_gb=200, provisioned_gb=500, mosr=2.0, reserved=5,
                                               thin=True), None, True),
    ("test_filter_thin_true_passes2", 2400, dict(total_gb=500, free_gb=200, provisioned_gb=7000, mosr=20,
                                                 reserved=5, thin=True), None, True),
    ("test_filter_thin_false_passes", 100, dict(total_gb=500, free_gb=200, provisioned_gb=300, mosr=1.0, reserved=5,
                                                thin=False), None, True),
    ("test_filter_over_subscription_less_than_1", 200, dict(total_gb=500, free_gb=100, provisioned_gb=400, mosr=0.8,
                                                            reserved=0, thin=True), None, False),
    ("test_filter_over_subscription_equal_to_1", 150, dict(total_gb=500, free_gb=200, provisioned_gb=400, mosr=1.0,
                                                           reserved=0, thin=True), None, False),
    ("test_filter_over_subscription_fails", 100, dict(total_gb=500, free_gb=200, provisioned_gb=700, mosr=1.5,
                                                      reserved=5, thin=True), None, False),
    ("test_filter_over_subscription_fails2", 2000, dict(total_gb=500, free_gb=30, provisioned_gb=9000, mosr=20,
                                                        reserved=0, thin=True), None, False),
    ("test_filter_reserved_thin_true_fails", 100, dict(total_gb=500, free_gb=100, provisioned_gb=1000, mosr=2.0,
                                                       reserved=5, thin=True), None, False),
    ("test_filter_reserved_thin_false_fails", 100, dict(total_gb=500, free_gb=100, provisioned_gb=400, mosr=1.0,
                                                        reserved=5, thin=False), None, False),
    ("test_filter_reserved_thin_thick_true_fails", 151, dict(total_gb=500, free_gb=0, provisioned_gb=800, mosr=2.0,
                                                             reserved=5, thin=True), None, False),
    ("test_filter_reserved_thin_thick_true_passes", 100, dict(total_gb=500, free_gb=125, provisioned_gb=400,
                                                              mosr=2.0, reserved=5, thin=True), None, True),
    ("test_filter_reserved_thin_true_passes", 100, dict(total_gb=500, free_gb=80, provisioned_gb=600, mosr=2.0,
                                                        reserved=5, thin=True), None, True),
    ("test_filter_reserved_thin_thick_true_fails2", 100, dict(total_gb=500, free_gb=99, provisioned_gb=1000,
                                                              mosr=2.0, reserved=5, thin=True), None, False),
    ("test_filter_reserved_thin_thick_true_passes2", 100, dict(total_gb=500, free_gb=100, provisioned_gb=400,
                                                               mosr=2.0, reserved=0, thin=True), None, True),
] + [
    (f"test_filter_provisioning_type[{i}]", 100, dict(total_gb=500, free_gb=100, provisioned_gb=400, mosr=2.0,
                                                      reserved=0, thin=True), specs, True)
    for i, specs in enumerate([{"provisioning:type": "thick"}, {"provisioning:type": "thin"}, {}, {}, None])
]


@pytest.mark.parametrize(("name", "size_gb", "pool", "extra_specs", "expected"), CINDER_CASES,
                         ids=[case[0] for case in CINDER_CASES])
def test_cinder_capacity_filter_cases(name, size_gb, pool, extra_specs, expected):
    ok, reason = CapacityFilter.passes(cinder_pool(**pool), spec(size_gb * GiB, extra_specs=extra_specs))
    assert ok is expected, reason
    assert (reason == "") is expected


def test_cinder_filter_current_backend_passes_is_the_planners_stickiness():
    """Cinder's test_filter_current_backend_passes (``vol_exists_on`` the pool: passes although 100 GiB do not
    fit in 10 GiB free). Here the filters never run for a volume that exists: the planner keeps it on its pool
    (see test_filter_scheduler.TestExistingVolumes.test_sticky_on_a_full_pool)."""
    assert not CapacityFilter.passes(cinder_pool(total_gb=100, free_gb=10), spec(100 * GiB))[0]


# --------------------------------------------------------------------------------------------------------------
# Thick path
# --------------------------------------------------------------------------------------------------------------

class TestThick:
    def test_fits_exactly(self):
        assert CapacityFilter.passes(state(free=20 * GiB), spec(20 * GiB)) == (True, "")

    def test_one_extent_too_many(self):
        # thick LVM pool: provisioned = total - free = 80 GiB; min(20 GiB, 100 - 0 - 80 GiB) = 20 GiB
        ok, reason = CapacityFilter.passes(state(free=20 * GiB), spec(20 * GiB + 1))
        assert not ok
        assert reason == ("CapacityFilter: needs 20 GiB, virtual free 20 GiB = min(free 20 GiB, total 100 GiB - "
                          "reserved 0% - provisioned 80 GiB)")

    def test_size_is_rounded_up_to_the_extent(self):
        assert CapacityFilter.passes(state(free=8 * MiB, total=8 * MiB), spec(4 * MiB + 1))[0]  # 8 MiB
        assert not CapacityFilter.passes(state(free=8 * MiB - 1, total=8 * MiB), spec(4 * MiB + 1))[0]
        assert CapacityFilter.passes(state(free=5, total=10, extent=None), spec(5))[0]

    @pytest.mark.parametrize(("total", "pct"), [(100 * GiB, 10), (1001, 10), (4 * GiB + 12345, 7),
                                                (3 * TiB + 1, 33), (10**12 + 7, 1)])
    def test_reserved_percentage_boundary_exact_to_the_byte(self, total, pct):
        # An LVM VG of ``total`` bytes with ``used`` bytes in LVs: free = total - used, provisioned = used.
        used = total // 3
        pool = state(total=total, free=total - used, reserved=pct, extent=None)
        reserved = total * pct // 100  # Cinder: math.floor(total * reserved_percentage / 100)
        room = min(total - used, total - reserved - used)  # min(free, total - reserved - provisioned)
        assert pool.reserved_bytes == reserved
        assert CapacityFilter.passes(pool, spec(room))[0]
        assert not CapacityFilter.passes(pool, spec(room + 1))[0]

    def test_reserve_in_the_message(self):
        # 100 GiB VG, 96.2 GiB used, 10% reserved: min(3.8 GiB, 100 - 10 - 96.2 GiB) = -6.2 GiB
        free = int(3.8 * GiB)
        ok, reason = CapacityFilter.passes(state(total=100 * GiB, free=free, reserved=10, extent=None), spec(GiB))
        assert not ok
        assert reason == ("CapacityFilter: needs 1 GiB, virtual free -6.2 GiB = min(free 3.8 GiB, total 100 GiB - "
                          "reserved 10% - provisioned 96.2 GiB)")

    def test_thick_pool_ignores_the_over_subscription_ratio(self):
        pool = state(thin=False, free=10 * GiB, mosr=20.0)
        assert pool.mosr == 1.0
        assert not CapacityFilter.passes(pool, spec(11 * GiB))[0]

    def test_thick_request_on_an_over_provisioned_thin_pool_is_refused(self):
        # thin pool 100 GiB, 10 GiB written, 150 GiB of thin volumes: a thick request takes the thick path,
        # min(free 90 GiB, 100 - 0 - 150 GiB) = -50 GiB: refused even though 90 GiB are free (Cinder >= 21.0).
        pool = state(thin=True, total=100 * GiB, free=90 * GiB, provisioned=150 * GiB)
        ok, reason = CapacityFilter.passes(pool, spec(GiB, extra_specs=THICK))
        assert not ok
        assert reason == ("CapacityFilter: thick request on a thin pool: needs 1 GiB, virtual free -50 GiB = "
                          "min(free 90 GiB, total 100 GiB - reserved 0% - provisioned 150 GiB)")
        assert CapacityFilter.passes(pool, spec(GiB))[0]  # thin: 100 * 20 - 150 GiB
        # not over-provisioned: free counts
        pool = state(thin=True, total=100 * GiB, free=90 * GiB, provisioned=60 * GiB)
        assert CapacityFilter.passes(pool, spec(40 * GiB, extra_specs=THICK))[0]  # min(90, 100 - 60) = 40
        assert not CapacityFilter.passes(pool, spec(40 * GiB + 1, extra_specs=THICK))[0]


# --------------------------------------------------------------------------------------------------------------
# Thin path
# --------------------------------------------------------------------------------------------------------------

class TestThin:
    def test_free_is_not_read(self):
        # (100 - 0) * 20 - 0 = 2000 GiB whether the pool is empty or full
        for free in (100 * GiB, 10 * GiB, 0, -5 * GiB):
            pool = state(thin=True, total=100 * GiB, free=free, provisioned=0, mosr=20.0, extent=None)
            assert CapacityFilter.passes(pool, spec(2000 * GiB))[0]
            assert not CapacityFilter.passes(pool, spec(2000 * GiB + 1))[0]

    def test_provisioned_ratio_boundary(self):
        pool = state(thin=True, total=100 * GiB, free=50 * GiB, provisioned=1990 * GiB, mosr=20.0)
        assert CapacityFilter.passes(pool, spec(10 * GiB))[0]  # (1990 + 10) / 100 == 20: not above
        ok, reason = CapacityFilter.passes(pool, spec(10 * GiB + 1))
        assert not ok
        assert reason == ("CapacityFilter: provisioned ratio (provisioned 1.94 TiB + 10 GiB) / (total 100 GiB - "
                          "reserved 0%) = 20.00004 exceeds max_over_subscription_ratio 20.00")

    @pytest.mark.parametrize(("total", "pct", "ratio", "provisioned"), [
        (100 * GiB, 10, 20.0, 0), (1001, 10, 3.0, 7), (4 * GiB + 12345, 7, 1.5, GiB), (10**12 + 7, 1, 1.0, 5),
        (3 * TiB + 1, 33, 2.5, 4 * TiB)])
    def test_reserved_percentage_boundary_exact_to_the_byte(self, total, pct, ratio, provisioned):
        pool = state(thin=True, total=total, free=total // 2, provisioned=provisioned, reserved=pct, mosr=ratio,
                     extent=None)
        reserved = total * pct // 100
        # (total - reserved) * ratio - provisioned, floored to a byte; ratio * 2 is a whole number here
        room = (total - reserved) * int(ratio * 2) // 2 - provisioned
        assert CapacityFilter.passes(pool, spec(room))[0]
        ok, reason = CapacityFilter.passes(pool, spec(room + 1))
        assert not ok
        assert "provisioned ratio" in reason

    def test_the_reserve_is_in_the_ratio(self):
        # 100 GiB, 10% reserved, ratio 2: (100 - 10) * 2 = 180 GiB may be provisioned, not 200
        pool = state(thin=True, total=100 * GiB, provisioned=0, reserved=10, mosr=2.0)
        assert CapacityFilter.passes(pool, spec(180 * GiB))[0]
        ok, reason = CapacityFilter.passes(pool, spec(180 * GiB + EXTENT))
        assert reason == ("CapacityFilter: provisioned ratio (provisioned 0 B + 180 GiB) / (total 100 GiB - "
                          "reserved 10%) = 2.00004 exceeds max_over_subscription_ratio 2.00")

    def test_everything_reserved(self):
        pool = state(thin=True, total=100 * GiB, reserved=100, mosr=2.0)
        ok, reason = CapacityFilter.passes(pool, spec(GiB))
        assert reason == "CapacityFilter: total 100 GiB - reserved 100% leaves nothing to provision"

    def test_provisioned_defaults_to_allocated(self):
        facts = pool_facts(thin=True, total=100 * GiB, free=50 * GiB, allocated=1990 * GiB, mosr=20.0)
        del facts["provisioned_bytes"]
        pool = PoolState(facts)
        assert pool.provisioned == 1990 * GiB
        assert not CapacityFilter.passes(pool, spec(11 * GiB))[0]

    def test_auto_ratio(self):
        # 1 + provisioned / (used + 1), in GiB as in Cinder: 1 + 50 / (9 + 1) = 6; 100 * 6 - 50 = 550 GiB
        pool = state(thin=True, total=100 * GiB, free=91 * GiB, provisioned=50 * GiB, mosr="auto", extent=None)
        assert pool.mosr == pytest.approx(6.0)
        assert CapacityFilter.passes(pool, spec(549 * GiB))[0]
        assert not CapacityFilter.passes(pool, spec(551 * GiB))[0]

    def test_auto_ratio_is_20_on_an_empty_pool(self):
        assert state(thin=True, provisioned=0, mosr="auto").mosr == 20.0

    def test_ratio_below_one_fails_a_thin_request(self):
        pool = state(thin=True, total=100 * GiB, free=100 * GiB, mosr=0.5)
        ok, reason = CapacityFilter.passes(pool, spec(GiB))
        assert not ok
        assert reason == "CapacityFilter: thin pool with max_over_subscription_ratio 0.50, below the minimum of 1"
        # a thick request takes the thick path there
        assert CapacityFilter.passes(pool, spec(GiB, extra_specs=THICK))[0]

    def test_provisioning_type_thick_forces_the_thick_path(self):
        pool = state(thin=True, total=100 * GiB, free=10 * GiB, provisioned=90 * GiB, mosr=20.0)
        assert CapacityFilter.passes(pool, spec(20 * GiB))[0]
        assert not CapacityFilter.passes(pool, spec(20 * GiB, extra_specs=THICK))[0]
        assert CapacityFilter.passes(pool, spec(10 * GiB, extra_specs=THICK))[0]  # min(10, 100 - 90)
        assert spec(1, extra_specs={"provisioning:type": "thin"}).thin

    def test_thin_capability_given_as_a_string(self):
        pool = state(thin="True", total=100 * GiB, free=10 * GiB, mosr=20.0)
        assert pool.thin_support
        assert CapacityFilter.passes(pool, spec(100 * GiB))[0]


class TestSpecialValues:
    @pytest.mark.parametrize("free", ["infinite", "unknown"])
    def test_infinite_or_unknown_free_passes(self, free):
        assert CapacityFilter.passes(state(free=free), spec(100 * TiB)) == (True, "")

    def test_free_not_reported_fails(self):
        facts = pool_facts()
        facts["free_bytes"] = None
        ok, reason = CapacityFilter.passes(PoolState(facts), spec(GiB))
        assert (ok, reason) == (False, "CapacityFilter: free capacity not reported")

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
