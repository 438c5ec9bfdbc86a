# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._size import (
    SizeError,
    format_size,
    parse_clear_size,
    parse_size,
    parse_volume_size,
    round_up,
)

KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0),
    (1, 1),
    (1073741824, GiB),
    ("0", 0),
    ("4096", 4096),
    ("512B", 512),
    ("512 b", 512),
    # SI prefixes: powers of 10, with or without B, any case.
    ("1k", 1000),
    ("1K", 1000),
    ("1KB", 1000),
    ("1M", 10**6),
    ("1MB", 10**6),
    ("1G", 10**9),
    ("1GB", 10**9),
    ("1g", 10**9),
    ("2T", 2 * 10**12),
    ("1PB", 10**15),
    # IEC prefixes: powers of 2.
    ("1KiB", KiB),
    ("1MiB", MiB),
    ("512 MiB", 512 * MiB),
    ("10GiB", 10 * GiB),
    ("10gib", 10 * GiB),
    ("10 GIB", 10 * GiB),
    ("1TiB", TiB),
    ("1PiB", 2**50),
    (" 3 GiB ", 3 * GiB),
    # Decimals are exact and round up to the next byte.
    ("1.5GiB", 3 * GiB // 2),
    ("0.5KiB", 512),
    ("1.5", 2),
    ("1.0001K", 1001),
    ("0.1G", 10**8),
    ("2.25TiB", 9 * TiB // 4),
    (1.5, 2),
    (2.0, 2),
])
def test_parse_size(value, expected):
    assert parse_size(value) == expected
    assert isinstance(parse_size(value), int)


def test_gib_and_gb_differ():
    assert parse_size("1GiB") - parse_size("1GB") == 2**30 - 10**9


@pytest.mark.parametrize(("value", "fragment"), [
    (True, "is not a size"),
    (False, "is not a size"),
    (None, "is not a size"),
    (-1, "is negative"),
    (-0.5, "is negative"),
    (float("nan"), "is not a valid size"),
    (float("inf"), "is not a valid size"),
    ("", "is not a size"),
    ("GiB", "is not a size"),
    ("-1G", "is negative"),
    ("-1GiB", "is negative"),
    (" - 3", "is negative"),
    ("1.G", "is not a size"),
    (".5G", "is not a size"),
    ("1e9", "is not a size"),
    ("1e", "unknown unit"),
    ("10 XB", "unknown unit"),
    ("10 gigs", "unknown unit"),
    ("1 0G", "is not a size"),
    ([10], "is not a size"),
])
def test_parse_size_errors_name_field_and_value(value, fragment):
    with pytest.raises(SizeError) as excinfo:
        parse_size(value, field="blockstore_volumes[2].size")
    message = str(excinfo.value)
    assert message.startswith("blockstore_volumes[2].size: ")
    assert repr(value) in message
    assert fragment in message


def test_size_error_is_a_value_error():
    assert issubclass(SizeError, ValueError)
    with pytest.raises(ValueError, match=r"^size: 'x'"):
        parse_size("x")


@pytest.mark.parametrize(("num", "text"), [
    (None, "-"),
    (0, "0 B"),
    (1, "1 B"),
    (1023, "1023 B"),
    (1024, "1 KiB"),
    (1536, "1.5 KiB"),
    (MiB, "1 MiB"),
    (MiB - 1, "1 MiB"),  # 1023.999 KiB rounds to 1024.00: printed in the next unit
    (GiB + GiB // 4, "1.25 GiB"),
    (1610612736, "1.5 GiB"),
    (10**9, "953.67 MiB"),
    (TiB, "1 TiB"),
    (2**50, "1024 TiB"),
    (-1536, "-1.5 KiB"),
])
def test_format_size(num, text):
    assert format_size(num) == text


@pytest.mark.parametrize(("num", "step", "expected"), [
    (0, 4 * MiB, 0),
    (1, 4 * MiB, 4 * MiB),
    (4 * MiB, 4 * MiB, 4 * MiB),
    (4 * MiB + 1, 4 * MiB, 8 * MiB),
    (10**9, 4 * MiB, 1002438656),
    (123, 0, 123),
    (123, None, 123),
    (123, -4, 123),
])
def test_round_up(num, step, expected):
    assert round_up(num, step) == expected


# --- issue 7: every size is bounded ---------------------------------------------------------------------------

from ansible_collections.ember.blockstore.plugins.module_utils._size import MAX_SIZE_BYTES  # noqa: E402


@pytest.mark.parametrize("make", [lambda: "9" * 5000, lambda: "1" * 4301 + "GiB", lambda: 10**5000,
                                  lambda: "1." + "9" * 5000 + "GiB", lambda: "1" * 20, lambda: 2**63,
                                  lambda: "8589934592GiB", lambda: float(2**64)],
                         ids=["5000-digits", "4301-digits-GiB", "int-5000-digits", "long-fraction", "20-digits",
                              "2**63", "8EiB-in-GiB", "float-2**64"])
def test_huge_sizes_fail_cleanly_naming_the_field(make):
    with pytest.raises(SizeError) as excinfo:
        parse_size(make(), "volumes[0].size")
    message = str(excinfo.value)
    assert message.startswith("volumes[0].size: ")
    assert len(message) < 300


@pytest.mark.parametrize("value", ["1GiB\n", "1GiB;reboot", "$(reboot)", "`reboot`", "-1GiB", "1\x00GiB", "１GiB",
                                   "1 G i B", ["1GiB"], {"a": 1}])
def test_hostile_sizes_fail_naming_the_field(value):
    with pytest.raises(SizeError, match=r"^volumes\[0\]\.size: "):
        parse_size(value, "volumes[0].size")


def test_the_largest_size_is_accepted():
    assert parse_size(MAX_SIZE_BYTES) == MAX_SIZE_BYTES
    assert parse_size(str(MAX_SIZE_BYTES)) == MAX_SIZE_BYTES
    assert parse_size("8388607TiB") == 8388607 * 2**40


@pytest.mark.parametrize(("value", "expected"), [
    (10, 10 * GiB), ("10", 10 * GiB), (0.5, GiB // 2), ("10GiB", 10 * GiB), ("1G", 10**9), ("512MiB", 512 * MiB),
    ("1073741824B", GiB), ("1073741824 b", GiB)])
def test_a_bare_volume_size_is_gib(value, expected):
    assert parse_volume_size(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0), ("0", 0), (100, 100 * MiB), ("100", 100 * MiB), ("512KiB", 512 * KiB), ("1GiB", GiB), ("100B", 100)])
def test_a_bare_volume_clear_size_is_mib(value, expected):
    assert parse_clear_size(value) == expected


@pytest.mark.parametrize(("value", "fragment"), [
    ("9" * 100000, "(100000 characters) is too long to be a size"),
    ("1" + "0" * 39, "is more than 8 EiB"),
    (2**63, "is more than 8 EiB"),
    ("-0.1GiB", "is negative"),
])
def test_huge_or_negative_sizes_fail_cleanly(value, fragment):
    with pytest.raises(SizeError) as excinfo:
        parse_volume_size(value, "blockstore_volumes[0].size")
    assert fragment in str(excinfo.value)
    assert len(str(excinfo.value)) < 250
