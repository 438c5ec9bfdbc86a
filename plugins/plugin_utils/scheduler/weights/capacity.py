# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cinder's CapacityWeigher (cinder/scheduler/weights/capacity.py lines 45-127 at Cinder master ab09bc39:
``weigh_objects`` l. 62-91, ``_weigh_object`` l. 93-127 with ``sched_utils.calculate_virtual_free_capacity``
l. 118) with the normalisation of cinder/scheduler/base_weight.py ``normalize``."""

from __future__ import annotations

import math

__all__ = ["CapacityWeigher"]


class CapacityWeigher:
    """Weighs a pool by its virtual free capacity, the value of
    :func:`.sched_utils.calculate_virtual_free_capacity` that the CapacityFilter also reads (``_weigh_object``):
    thin ``(total - reserved) * ratio - provisioned``; thick ``min(free, total - reserved - provisioned)``.
    Pools with infinite or unknown capacity weigh ``-1`` when spreading and ``+inf`` (then max + offset,
    ``weigh_objects``) when stacking, so they come last either way. Weights are min-max normalised to 0..1 (all
    equal: 0) and multiplied by ``capacity_weight_multiplier``; the highest wins. Ties go to the lowest pool id
    (Cinder keeps the order its host manager listed the pools in)."""

    name = "CapacityWeigher"
    OFFSET_MIN = 10000
    OFFSET_MULT = 100

    @staticmethod
    def virtual_free(pool, thin):
        """Virtual free bytes of ``pool`` for a thin (1) or thick (0) request; ``None`` when its capacity is
        infinite or unknown."""
        return pool.virtual_free[1 if thin else 0]

    @classmethod
    def weigh(cls, values, multiplier=1.0):
        """Weights for a list of :meth:`virtual_free` values (``None`` = infinite/unknown), as Cinder's
        ``CapacityWeigher.weigh_objects`` followed by ``base_weight.normalize`` and the multiplier."""
        if not values:
            return []
        raw = values
        if None in raw:
            placeholder = -1.0 if multiplier > 0 else math.inf
            raw = [placeholder if v is None else v for v in raw]
        lo, hi = min(raw), max(raw)
        if math.isinf(hi):
            finite = [w for w in raw if not math.isinf(w)]
            if not finite:
                return [0.0] * len(raw)
            hi = max(finite)
            offset = (hi - lo) * cls.OFFSET_MULT
            hi += cls.OFFSET_MIN if offset == 0.0 else offset
            raw = [hi if math.isinf(w) else w for w in raw]
        if hi == lo:
            return [0.0] * len(raw)
        scale = multiplier / (hi - lo)
        return [(w - lo) * scale for w in raw]

    @classmethod
    def best(cls, values, multiplier=1.0):
        """``(index, weight)`` of the winner among :meth:`virtual_free` values: the highest weight of
        :meth:`weigh`, the first one on a tie. Found without building the weight list: the largest value when
        spreading, the smallest when stacking (infinite/unknown pools lose either way). Values are compared
        exactly, so two values that differ by less than float rounding of the normalised weight still differ."""
        if not values:
            raise ValueError("no values to weigh")
        if multiplier == 0:
            return 0, 0.0
        raw = values
        if None in raw:
            placeholder = -1.0 if multiplier > 0 else math.inf
            raw = [placeholder if v is None else v for v in raw]
        lo, hi = min(raw), max(raw)
        if lo == hi:
            return 0, 0.0
        if multiplier < 0:
            return raw.index(lo), 0.0
        return raw.index(hi), float(multiplier)
