# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cinder's CapacityFilter (cinder/scheduler/filters/capacity_filter.py ``backend_passes``, lines 33-213 at
Cinder master ab09bc39: size 0 l. 64, free None l. 67, infinite/unknown l. 76-93, total <= 0 l. 96, thick type
l. 107-114, capacity factors l. 127-135, thin path l. 146-200, thick path l. 202-213), as in Cinder since 21.0.0
("Fix and unify capacity calculations"). See docs/scheduler.md."""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._size import format_size, round_up
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.sched_utils import INFINITE_UNKNOWN

__all__ = ["CapacityFilter"]


def _pct(value):
    return f"{value:g}%"


def _ratio_text(ratio, mosr):
    """The ratio with enough decimals to differ visibly from the maximum it exceeds."""
    digits = next((d for d in range(2, 10) if f"{ratio:.{d}f}" != f"{mosr:.{d}f}"), 10)
    return f"{ratio:.{digits}f}"


class CapacityFilter:
    """Whether a pool has room for the request, in Cinder's order:

    - a request of size 0 passes; free capacity not reported fails; free ``infinite``/``unknown`` passes;
      total ``infinite``/``unknown`` passes only with no reserved percentage; total <= 0 fails;
    - thin path (the request is not ``provisioning:type: thick`` and the pool reports
      ``thin_provisioning_support``): a ratio below 1 fails; else the request passes when
      ``provisioned + size <= (total - reserved) * max_over_subscription_ratio``, i.e. when the virtual free
      capacity ``(total - reserved) * ratio - provisioned`` of :func:`.sched_utils.calculate_virtual_free_capacity`
      is at least the size. ``free`` is not read;
    - thick path (everything else, including a thick request on a thin pool): the request passes when
      ``min(free, total - reserved - provisioned) >= size`` (the same function, ``thin=False``); a thick request
      on an over-provisioned thin pool therefore fails.

    ``reserved = floor(total * reserved_percentage / 100)``. The size is first rounded up to the pool's extent
    (what LVM will allocate). The pool values come from :class:`.host_manager.PoolState` (``room``).

    One difference in wording, none in outcome: Cinder also checks a "provisioned ratio"
    ``(provisioned + size) / total_available_capacity > max_over_subscription_ratio``, where its
    ``total_available_capacity`` already includes the ratio; that check is weaker than the virtual-free one
    for any ratio >= 1, so it never decides. The failure is reported here as the provisioned ratio over the
    capacity left after the reserve, ``(provisioned + size) / (total - reserved)``, compared with the ratio,
    which is exactly the virtual-free condition.
    """

    name = "CapacityFilter"

    @classmethod
    def passes(cls, pool, spec):
        thin = 1 if spec.thin else 0
        size = round_up(spec.size, pool.extent)
        if size == 0 or size <= pool.room[thin]:
            return True, ""
        return False, f"{cls.name}: {cls.explain(pool, size, thin)}"

    @staticmethod
    def explain(pool, size, thin):
        """Why ``pool`` refuses ``size`` bytes (already rounded to its extent), without the filter's name."""
        free, total = pool.free, pool.total
        if free is None:
            return "free capacity not reported"
        if total in INFINITE_UNKNOWN:
            return f"total capacity is {total}, so reserved {_pct(pool.reserved_percentage)} cannot be computed"
        if total <= 0:
            return f"total capacity is {format_size(total)}"
        reserve = f"reserved {_pct(pool.reserved_percentage)}"
        if thin and pool.thin_support:
            if pool.mosr < 1:
                return f"thin pool with max_over_subscription_ratio {pool.mosr:.2f}, below the minimum of 1"
            available = total - pool.reserved_bytes
            if available <= 0:
                return f"total {format_size(total)} - {reserve} leaves nothing to provision"
            ratio = (pool.provisioned + size) / available
            return (f"provisioned ratio (provisioned {format_size(pool.provisioned)} + {format_size(size)}) / "
                    f"(total {format_size(total)} - {reserve}) = {_ratio_text(ratio, pool.mosr)} exceeds "
                    f"max_over_subscription_ratio {pool.mosr:.2f}")
        room = pool.room[thin]
        kind = "thick request on a thin pool: " if pool.thin_support else ""
        return (f"{kind}needs {format_size(size)}, virtual free {format_size(room)} = min(free {format_size(free)}, "
                f"total {format_size(total)} - {reserve} - provisioned {format_size(pool.provisioned)})")
