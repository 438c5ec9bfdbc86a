# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AvailabilityZoneFilter (filters/availability_zone_filter.py): Cinder's own cases
(cinder/tests/unit/scheduler/test_host_filters.py, ``test_availability_zone_filter_*``), then this project's."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.availability_zone_filter import (
    AvailabilityZoneFilter,
)
from scheduler_helpers import GiB, spec, state


# (test name, pool zone, zones asked for (request_spec availability_zones, or the volume's zone), passes)
@pytest.mark.parametrize(("name", "zone", "asked", "passes"), [
    ("same", "nova", ("nova",), True),
    ("with_AZs-host1", "nova1", ("nova1", "nova2"), True),
    ("with_AZs-host2", "nova2", ("nova1", "nova2"), True),
    ("with_AZs-host3", "nova3", ("nova1", "nova2"), False),
    ("different", "nova", ("bad",), False),
    ("empty", "nova", None, True),
])
def test_cinder_availability_zone_filter_cases(name, zone, asked, passes):
    assert AvailabilityZoneFilter.passes(state(az=zone), spec(GiB, availability_zones=asked))[0] is passes


class TestProject:
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
