# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity arithmetic shared by the CapacityFilter and the CapacityWeigher, as Cinder's
``cinder/scheduler/sched_utils.py`` (master ab09bc39: ``calculate_capacity_factors`` l. 23-124,
``calculate_virtual_free_capacity`` l. 127-159, ``calculate_max_over_subscription_ratio`` l. 162-219; in 21.0.0
the same functions are in ``cinder/utils.py`` l. 718-900). The shared calculation came with "Fix and unify
capacity calculations", commit 856d3e108, first released in Cinder 21.0.0.

Cinder computes in GiB floats and rounds the results to 0.01 GiB (``_limit``); here every capacity is an
integer number of bytes and the arithmetic is exact: the reserve is ``floor(total * pct / 100)`` of a decimal
percentage and the over-subscribed capacity ``floor((total - reserved) * ratio)`` of the ratio's exact binary
value, so a boundary is exact to the byte.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = [
    "DEFAULT_MOSR",
    "INFINITE_UNKNOWN",
    "INITIAL_AUTO_MOSR",
    "calculate_capacity_factors",
    "calculate_max_over_subscription_ratio",
    "calculate_virtual_free_capacity",
    "reserved_capacity",
    "total_available_capacity",
]

# sched_utils.py: INFINITE_UNKNOWN_VALUES = ('infinite', 'unknown'); INITIAL_AUTO_MOSR = 20
INFINITE_UNKNOWN = ("infinite", "unknown")
INITIAL_AUTO_MOSR = 20.0
# cinder/volume/driver.py: max_over_subscription_ratio defaults to 20.0
DEFAULT_MOSR = 20.0
GIB = 2**30


def reserved_capacity(total, reserved_percentage):
    """Bytes kept free: ``math.floor(total * reserved)`` with ``reserved = float(reserved_percentage) / 100``
    (calculate_capacity_factors), computed exactly on the decimal percentage."""
    return math.floor(total * Fraction(str(reserved_percentage)) / 100)


def total_available_capacity(total, reserved, mosr, thin):
    """Cinder's ``total_available_capacity``: ``total_reserved_available * max_over_subscription_ratio`` for a
    thin request on a thin pool, else ``total_reserved_available`` (= ``total - reserved``); floored to a byte."""
    available = total - reserved
    if thin:
        return math.floor(available * Fraction(mosr))
    return available


def calculate_capacity_factors(total, free, provisioned, thin_support, mosr, reserved_percentage, thin):
    """Cinder's ``calculate_capacity_factors`` (sched_utils.py) in bytes, for finite ``total`` and ``free``.

    Thin (``thin and thin_support``): ``virtual_free = (total - reserved) * mosr - provisioned``; ``free`` is
    not read. Thick: ``virtual_free = min(free, total - reserved - provisioned)``. ``provisioned_ratio`` is
    ``provisioned / total_available_capacity`` (0 when that is 0), as in Cinder.
    """
    reserved = reserved_capacity(total, reserved_percentage)
    is_thin = bool(thin and thin_support)
    available = total_available_capacity(total, reserved, mosr, is_thin)
    calculated_free = available - provisioned
    virtual_free = calculated_free if is_thin else min(free, calculated_free)
    return {
        "total_capacity": total,
        "free_capacity": free,
        "reserved_capacity": reserved,
        "total_reserved_available_capacity": total - reserved,
        "max_over_subscription_ratio": mosr if is_thin else None,
        "total_available_capacity": available,
        "provisioned_capacity": provisioned,
        "calculated_free_capacity": calculated_free,
        "virtual_free_capacity": virtual_free,
        "free_percent": virtual_free / available * 100 if available else 0,
        "provisioned_ratio": provisioned / available if available else 0,
        "provisioned_type": "thin" if is_thin else "thick",
    }


def calculate_virtual_free_capacity(total, free, provisioned, thin_support, mosr, reserved_percentage, thin):
    """Cinder's ``calculate_virtual_free_capacity``: the one number both the CapacityFilter (a request passes
    when it is at least the requested size) and the CapacityWeigher (the weight) use."""
    reserved = reserved_capacity(total, reserved_percentage)
    if thin and thin_support:
        return total_available_capacity(total, reserved, mosr, True) - provisioned
    return min(free, total - reserved - provisioned)


def calculate_max_over_subscription_ratio(reported, thin_support, total, free, provisioned):
    """The effective over-subscription ratio of a pool, as Cinder's ``calculate_max_over_subscription_ratio``
    (sched_utils.py): 1.0 without thin support or with infinite/unknown capacity; a missing or zero value
    means the default 20.0; ``auto`` is ``1 + provisioned / (used + 1)`` with ``used = total - free`` and both
    in GiB (so the ``+ 1`` is 1 GiB, as in Cinder), or 20.0 while nothing is provisioned. Computed once from
    the reported facts, as Cinder's host manager does (``consume_from_volume`` does not change it).
    Raises ``ValueError``/``TypeError`` for a value that is neither a number nor ``auto``."""
    if not thin_support:
        return 1.0
    if total in INFINITE_UNKNOWN or free in INFINITE_UNKNOWN:
        return 1.0
    if reported in (None, "", 0):
        return DEFAULT_MOSR
    if reported == "auto":
        if provisioned:
            used = total - (free or 0)
            return 1.0 + (provisioned / GIB) / (used / GIB + 1.0)
        return INITIAL_AUTO_MOSR
    if isinstance(reported, bool):
        raise TypeError(reported)
    value = float(reported)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(reported)
    return value
