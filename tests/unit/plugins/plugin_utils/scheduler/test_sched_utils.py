# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity arithmetic (sched_utils.py), against Cinder's own cases (cinder/tests/unit/test_utils.py,
``TestCalculateVirtualFree``) converted from GiB to bytes."""

from __future__ import annotations

import math

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.sched_utils import (
    calculate_capacity_factors,
    calculate_max_over_subscription_ratio,
    calculate_virtual_free_capacity,
    reserved_capacity,
    total_available_capacity,
)
from scheduler_helpers import GiB


def test_reserved_capacity_is_floored_exactly():
    assert reserved_capacity(1001, 10) == 100  # floor(100.1)
    assert reserved_capacity(100 * GiB, 10) == 10 * GiB
    assert reserved_capacity(999, 0) == 0
    assert reserved_capacity(999, 100) == 999
    # A decimal percentage is taken as written: 2**60 * 0.07 exactly, not the float 0.07000000000000000666...
    assert reserved_capacity(2**60, 7) == 2**60 * 7 // 100
    assert reserved_capacity(1000, 2.5) == 25
    assert reserved_capacity(10**18 + 1, 33.3) == (10**18 + 1) * 333 // 1000


def test_total_available_capacity():
    assert total_available_capacity(100, 10, 20.0, False) == 90
    assert total_available_capacity(100, 10, 20.0, True) == 1800
    assert total_available_capacity(3, 0, 1.5, True) == 4  # floor(4.5): the byte boundary stays exact
    # the ratio's exact binary value: 1.1 is 2476979795053773 / 2**51
    assert total_available_capacity(2**60, 0, 1.1, True) == 2**60 * 2476979795053773 // 2**51


def test_virtual_free_thin_ignores_free():
    # (total - reserved) * ratio - provisioned, whatever free says
    assert calculate_virtual_free_capacity(100, 0, 50, True, 10.0, 10, True) == 90 * 10 - 50
    assert calculate_virtual_free_capacity(100, 99, 50, True, 10.0, 10, True) == 90 * 10 - 50


def test_virtual_free_thick_is_the_smaller_of_free_and_unprovisioned():
    assert calculate_virtual_free_capacity(100, 80, 20, False, 1.0, 10, False) == min(80, 100 - 10 - 20)
    assert calculate_virtual_free_capacity(100, 30, 20, False, 1.0, 10, False) == 30
    # a thin request on a pool without thin support, and a thick request on a thin pool, take the thick path
    assert calculate_virtual_free_capacity(100, 30, 20, False, 20.0, 10, True) == 30
    assert calculate_virtual_free_capacity(100, 30, 500, True, 20.0, 10, False) == 100 - 10 - 500


# Cinder's TestCalculateVirtualFree cases (GiB), with reserved_percentage 5 for the first test. Difference:
# Cinder floors the reserve to whole GiB (it computes in GiB: floor(30.01 * 0.05) = 1) and rounds results to
# 0.01 GiB; here the reserve is floored to a byte. The expected value is Cinder's, corrected by the reserve
# difference (times the ratio on the thin path), and compared to 0.005 GiB (Cinder's rounding).
CINDER_VIRTUAL_FREE = [
    # total, free, provisioned, max_ratio, thin_support, is_thin_lun, reserved %, Cinder's expected
    (30.01, 28.01, 2.0, 1.0, False, False, 5, 27.01),
    (20.01, 18.01, 2.0, 2.0, True, True, 5, 36.02),
    (20.01, 18.01, 2.0, 2.0, True, True, 5, 36.02),
    (30.01, 28.01, 2.0, 2.0, True, False, 5, 27.01),
    # test_utils_calculate_capacity_factors cases (virtual free)
    (30.01, 28.01, 2.0, 1.0, False, False, 5, 27.01),
    (20.01, 18.01, 2.0, 2.0, True, True, 10, 34.02),
    (20.01, 18.01, 2.0, 2.0, True, True, 20, 30.02),
    (30.01, 28.01, 2.0, 2.0, True, False, 10, 25.01),
]


def _bytes(gb):
    return round(gb * GiB)


@pytest.mark.parametrize(("total", "free", "provisioned", "ratio", "thin_support", "thin", "pct", "expected"),
                         CINDER_VIRTUAL_FREE)
def test_cinder_virtual_free_cases(total, free, provisioned, ratio, thin_support, thin, pct, expected):
    got = calculate_virtual_free_capacity(_bytes(total), _bytes(free), _bytes(provisioned), thin_support, ratio,
                                          pct, thin)
    cinder_reserve = math.floor(total * (float(pct) / 100)) * GiB
    our_reserve = reserved_capacity(_bytes(total), pct)
    factor = ratio if (thin and thin_support) else 1
    corrected = expected * GiB - (our_reserve - cinder_reserve) * factor
    assert abs(got - corrected) <= 0.005 * GiB + 1


# test_utils_calculate_capacity_factors: the other factors, same conversion.
@pytest.mark.parametrize(("total", "free", "provisioned", "ratio", "thin_support", "thin", "pct", "cinder"), [
    (30.01, 28.01, 2.0, 1.0, False, False, 5,
     {"reserved": 1, "available": 29.01, "type": "thick", "provisioned_ratio": 0.07}),
    (20.01, 18.01, 2.0, 2.0, True, True, 10,
     {"reserved": 2, "available": 36.02, "type": "thin", "provisioned_ratio": 0.06}),
    (20.01, 18.01, 2.0, 2.0, True, True, 20,
     {"reserved": 4, "available": 32.02, "type": "thin", "provisioned_ratio": 0.06}),
    (30.01, 28.01, 2.0, 2.0, True, False, 10,
     {"reserved": 3, "available": 27.01, "type": "thick", "provisioned_ratio": 0.07}),
])
def test_cinder_capacity_factors_cases(total, free, provisioned, ratio, thin_support, thin, pct, cinder):
    factors = calculate_capacity_factors(_bytes(total), _bytes(free), _bytes(provisioned), thin_support, ratio, pct,
                                         thin)
    assert factors["provisioned_type"] == cinder["type"]
    assert factors["total_capacity"] == _bytes(total) and factors["free_capacity"] == _bytes(free)
    # Cinder's reserve is whole GiB; ours is the exact floor in bytes (never more than 1 GiB apart).
    assert 0 <= factors["reserved_capacity"] - cinder["reserved"] * GiB < GiB
    factor = ratio if cinder["type"] == "thin" else 1
    corrected = cinder["available"] * GiB - (factors["reserved_capacity"] - cinder["reserved"] * GiB) * factor
    assert abs(factors["total_available_capacity"] - corrected) <= 0.005 * GiB + 1
    assert round(factors["provisioned_ratio"], 2) == cinder["provisioned_ratio"]


def test_capacity_factors_without_available_capacity():
    factors = calculate_capacity_factors(100, 100, 0, True, 2.0, 100, True)
    assert factors["total_available_capacity"] == 0
    assert factors["provisioned_ratio"] == 0 and factors["free_percent"] == 0


def test_max_over_subscription_ratio():
    calc = calculate_max_over_subscription_ratio
    assert calc(20.0, False, 100, 50, 10) == 1.0
    assert calc(5, True, 100, 50, 10) == 5.0
    assert calc("1.5", True, 100, 50, 10) == 1.5
    assert calc(None, True, 100, 50, 10) == 20.0
    assert calc(0, True, 100, 50, 10) == 20.0
    assert calc("auto", True, "unknown", 50, 10) == 1.0
    assert calc("auto", True, 100 * GiB, 100 * GiB, 0) == 20.0
    # 1 + provisioned / (used + 1), in GiB as Cinder computes it: 1 + 10 / (0 + 1)
    assert calc("auto", True, 100 * GiB, 100 * GiB, 10 * GiB) == 11.0
    with pytest.raises(ValueError):
        calc("lots", True, 100, 50, 10)
    with pytest.raises(ValueError):
        calc("nan", True, 100, 50, 10)
    with pytest.raises(TypeError):
        calc(True, True, 100, 50, 10)
