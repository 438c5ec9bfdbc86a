# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cinder's AvailabilityZoneFilter (cinder/scheduler/filters/availability_zone_filter.py ``backend_passes``
l. 25-39 at Cinder master ab09bc39)."""

from __future__ import annotations

__all__ = ["AvailabilityZoneFilter"]


class AvailabilityZoneFilter:
    """A pool passes when no zone is asked for, or when its zone is the one (or one of those) asked for:
    ``backend_passes`` checks ``request_spec['availability_zones']`` (a list, which the volume API fills from
    the volume type's ``RESKEY:availability_zones``) and else ``resource_properties['availability_zone']``;
    here both arrive as :attr:`RequestSpec.availability_zones` (see request_spec.resolve_zones)."""

    name = "AvailabilityZoneFilter"

    @staticmethod
    def explain(pool, spec):
        """Why ``pool`` fails (without the filter's name), or None when it passes."""
        zones = spec.availability_zones
        if not zones or pool.availability_zone in zones:
            return None
        asked = zones[0] if len(zones) == 1 else "one of " + ", ".join(zones)
        return f"pool is in {pool.availability_zone}, volume asks {asked}"

    @classmethod
    def passes(cls, pool, spec):
        why = cls.explain(pool, spec)
        return (True, "") if why is None else (False, f"{cls.name}: {why}")
