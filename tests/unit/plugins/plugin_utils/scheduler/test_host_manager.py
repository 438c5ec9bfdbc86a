# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pool state (host_manager.py): validation of the facts, the values the filter and the weigher read, and
consumption as Cinder's consume_from_volume."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.host_manager import load_pools
from scheduler_helpers import GiB, pool_facts, state


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


class TestState:
    def test_room_is_the_weighers_value(self):
        # one number for the CapacityFilter and the CapacityWeigher (Cinder >= 21.0)
        for pool in (state(total=100 * GiB, free=40 * GiB, reserved=10),
                     state(thin=True, total=100 * GiB, free=10 * GiB, provisioned=300 * GiB, reserved=10, mosr=5.0)):
            assert pool.room == pool.virtual_free

    def test_consume_as_cinder(self):
        pool = state(thin=True, total=100 * GiB, free=100 * GiB, provisioned=0, mosr=2.0)
        pool.consume(30 * GiB)
        assert (pool.free, pool.provisioned, pool.allocated) == (70 * GiB, 30 * GiB, 30 * GiB)
        assert pool.room[1] == 200 * GiB - 30 * GiB
        assert pool.room[0] == min(70 * GiB, 100 * GiB - 30 * GiB)

    @pytest.mark.parametrize("free", ["infinite", "unknown"])
    def test_consume_keeps_infinite_free(self, free):
        pool = state(free=free)
        pool.consume(GiB)
        assert pool.free == free and pool.provisioned == GiB

    def test_ratio_is_not_recomputed_on_consume(self):
        # auto: 1 + 50 / (9 + 1) = 6, from the reported facts, as Cinder's host manager computes it
        pool = state(thin=True, total=100 * GiB, free=91 * GiB, provisioned=50 * GiB, mosr="auto")
        pool.consume(100 * GiB)
        assert pool.mosr == pytest.approx(6.0)
