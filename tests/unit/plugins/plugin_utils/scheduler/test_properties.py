# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property test (hypothesis): over random pools and requests, every placement of plan() passes the filters as
Cinder computes them at the moment it is made, every volume reported as fitting nowhere fits nowhere at that
moment (re-computed here, independently of the code under test, from
capacity_filter.py and sched_utils.calculate_capacity_factors in exact integer arithmetic), the chosen pool is
the CapacityWeigher's choice among those that pass, and no pool ends over its over-subscription ratio or into
its reserve."""

from __future__ import annotations

import math
from fractions import Fraction

from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scheduler_helpers import MiB

TYPES = {
    "thin": {"extra_specs": {"thin_provisioning_support": "<is> True"}},
    "thick": {"extra_specs": {"provisioning:type": "thick"}},
    "any": {"extra_specs": {}},
}
ZONES = ("az1", "az2")


@st.composite
def pools(draw):
    out = []
    for i in range(draw(st.integers(1, 8))):
        thin = draw(st.booleans())
        extent = draw(st.sampled_from([None, MiB, 4 * MiB]))
        total = draw(st.integers(0, 8000)) * MiB + draw(st.sampled_from([0, 1, 12345]))
        free = draw(st.integers(total // 2, max(total, 0)))
        used = total - free
        provisioned = draw(st.integers(0, 2 * max(total, 1))) if thin else used
        out.append({
            "id": f"stor{i}@{'thin' if thin else 'thick'}", "host": f"stor{i}", "backend": "thin" if thin else "thick",
            "extent_size_bytes": extent, "total_bytes": total, "free_bytes": free, "allocated_bytes": used,
            "provisioned_bytes": provisioned,
            "capabilities": {"thin_provisioning_support": thin, "availability_zone": draw(st.sampled_from(ZONES)),
                             "reserved_percentage": draw(st.sampled_from([0, 5, 10, 33, 100])),
                             "max_over_subscription_ratio": draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 20.0]))},
        })
    return out


@st.composite
def volumes(draw):
    count = draw(st.integers(1, 15))
    return [{"name": f"v{i:02d}", "size": f"{draw(st.integers(1, 600))}MiB",
             "volume_type": draw(st.sampled_from([None, "thin", "thick", "any"])),
             **({"availability_zone": draw(st.sampled_from(ZONES))} if draw(st.booleans()) else {})}
            for i in range(count)]


class Ref:
    """Cinder's capacity decision for one pool, recomputed from the facts (bytes, exact)."""

    def __init__(self, facts):
        caps = facts["capabilities"]
        self.id = facts["id"]
        self.total, self.free = facts["total_bytes"], facts["free_bytes"]
        self.provisioned = facts["provisioned_bytes"]
        self.thin_support = caps["thin_provisioning_support"]
        self.zone = caps["availability_zone"]
        self.pct = caps["reserved_percentage"]
        self.mosr = caps["max_over_subscription_ratio"] if self.thin_support else 1.0
        self.extent = facts["extent_size_bytes"]
        self.reserved = math.floor(Fraction(self.total) * self.pct / 100)

    def need(self, size):
        return size if not self.extent else -(-size // self.extent) * self.extent

    def virtual_free(self, thin):
        """sched_utils.calculate_virtual_free_capacity"""
        if thin and self.thin_support:
            return math.floor((self.total - self.reserved) * Fraction(self.mosr)) - self.provisioned
        return min(self.free, self.total - self.reserved - self.provisioned)

    def passes(self, size, thin):
        """capacity_filter.py backend_passes (finite capacities)."""
        need = self.need(size)
        if self.total <= 0:
            return False
        if thin and self.thin_support:
            if self.mosr < 1:
                return False
            return Fraction(self.provisioned + need, self.total - self.reserved or 1) <= Fraction(self.mosr) \
                and self.total > self.reserved and self.virtual_free(True) >= need
        return self.virtual_free(False) >= need


def _bytes(text):
    return int(text[:-3]) * MiB


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pools(), volumes(), st.sampled_from([1.0, -1.0]))
def test_every_placement_passes_cinders_filters_when_it_is_made(pool_list, vols, multiplier):
    failed = set()
    try:
        result = plan(vols, pool_list, TYPES, weight_multiplier=multiplier)
    except ScheduleError as exc:
        assert all(e.startswith("No valid backend for ") for e in exc.errors), exc.errors
        failed = {e[len("No valid backend for "):].split(":")[0] for e in exc.errors}
        # a volume that fits nowhere consumes nothing: the others are placed exactly as they would be without it
        result = plan([v for v in vols if v["name"] not in failed], pool_list, TYPES, weight_multiplier=multiplier)
    event("some fit nowhere" if failed else "all placed")
    refs = {facts["id"]: Ref(facts) for facts in pool_list}
    entries = {v["name"]: v for v in result["volumes"]}
    placed = set()
    # the planner's order: largest first, then by name (not the inventory's order)
    for vol in sorted(vols, key=lambda v: (-_bytes(v["size"]), v["name"])):
        size = _bytes(vol["size"])
        thin = vol.get("volume_type") != "thick"
        specs = TYPES[vol["volume_type"]]["extra_specs"] if vol.get("volume_type") else {}
        wants_thin_pool = "thin_provisioning_support" in specs

        def eligible(ref, vol=vol, size=size, thin=thin, wants_thin_pool=wants_thin_pool):
            zone_ok = "availability_zone" not in vol or ref.zone == vol["availability_zone"]
            caps_ok = not wants_thin_pool or ref.thin_support
            return zone_ok and caps_ok and ref.passes(size, thin)

        if vol["name"] in failed:
            assert not any(eligible(r) for r in refs.values()), vol  # it really fits nowhere at that moment
            continue
        entry = entries[vol["name"]]
        chosen = refs[entry["pool_id"]]
        assert eligible(chosen), (vol, entry)
        # the CapacityWeigher's choice among the pools that pass: most virtual free (spreading) or least
        # (stacking), ties to the lowest id
        passing = sorted((r for r in refs.values() if eligible(r)), key=lambda r: r.id)
        values = [r.virtual_free(thin) for r in passing]
        best = max(values) if multiplier > 0 else min(values)
        assert chosen.id == passing[values.index(best)].id
        # consume_from_volume
        need = chosen.need(size)
        assert entry["size_bytes"] == need
        chosen.provisioned += need
        chosen.free -= need
        placed.add((chosen.id, thin and chosen.thin_support))
    for pool_id, thin_path in placed:
        ref = refs[pool_id]
        if thin_path:
            assert ref.provisioned <= (ref.total - ref.reserved) * Fraction(ref.mosr)  # not over its ratio
        if not ref.thin_support:
            # thick LVM facts: provisioned = used = total - free, so this is "free stays >= the reserve"
            assert ref.provisioned <= ref.total - ref.reserved
            assert ref.free >= ref.reserved
    usage = {p["id"]: p for p in result["pools"]}
    for pool_id, ref in refs.items():
        assert usage[pool_id]["provisioned_bytes"] == ref.provisioned
        assert usage[pool_id]["free_bytes"] == ref.free
