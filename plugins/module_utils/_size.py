# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes: parsed once from user input into integer bytes, printed in IEC units.

Decimal (SI) and binary (IEC) prefixes stay distinct, as in linux-system-roles/storage's size helper:
``1G`` = ``1GB`` = 10**9 bytes, ``1GiB`` = 2**30 bytes. Prefix letters are case-insensitive for the SI forms
(``1g`` = ``1G``); ``b`` and ``B`` both mean bytes.

A bare number (an int, a float or a digit string without a unit) is read in the unit of the field, as Cinder
reads it: a volume ``size`` is GiB (:func:`parse_volume_size`, like Cinder's API and openstack.cloud's
``volume`` module), ``volume_clear_size`` is MiB (:func:`parse_clear_size`, Cinder's option), anything else is
bytes (:func:`parse_size`).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["SizeError", "parse_size", "parse_volume_size", "parse_clear_size", "format_size", "round_up",
           "MAX_SIZE", "MAX_SIZE_BYTES", "KIB", "MIB", "GIB"]

KIB, MIB, GIB = 2**10, 2**20, 2**30
# The largest size accepted: 8 EiB - 1, the largest offset the kernel (and LVM) can address.
MAX_SIZE = 2**63 - 1
MAX_SIZE_BYTES = MAX_SIZE
# A size is never longer than this many characters; longer input is refused before it is parsed, so a
# megabyte of digits fails as quickly (and with as short a message) as any other typo.
MAX_TEXT = 40

_UNITS = {
    "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12, "p": 10**15, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}
_UNIT_NAMES = {1: "bytes", MIB: "MiB", GIB: "GiB"}
_IEC_NAMES = ("B", "KiB", "MiB", "GiB", "TiB")
_IEC_STEP = (1, 2**10, 2**20, 2**30, 2**40)
_SIZE_RE = re.compile(r" *(?P<sign>[-+]?) *(?P<num>[0-9]+(?:\.[0-9]+)?) *(?P<unit>[A-Za-z]*) *")


class SizeError(ValueError):
    """Raised for a size that cannot be parsed; the message names the field and the value."""


def _show(value):
    """``repr`` of a user value, shortened so that an error message stays small whatever the input."""
    if isinstance(value, int) and value.bit_length() > 64:
        return "an integer of %d bits" % value.bit_length()  # repr() of a huge int may raise
    text = repr(value)
    if len(text) > MAX_TEXT + 2:
        return "%s... (%d characters)" % (text[:MAX_TEXT], len(str(value)))
    return text


def _hint(default_unit):
    return ("use a number with a unit such as 10GiB, 512MiB or 1G (10^9 bytes); a bare number is %s"
            % _UNIT_NAMES.get(default_unit, "%d bytes" % default_unit))


def parse_size(value, field="size", default_unit=1):
    """Return ``value`` as an integer number of bytes.

    ``value`` may be an ``int`` or ``float`` (a number of ``default_unit``, bytes unless told) or a string such
    as ``10GiB``, ``512 MiB``, ``1G`` (10**9), ``1.5TiB`` or a bare number (again in ``default_unit``).
    Fractional results are rounded up to the next byte. Raises :class:`SizeError` naming ``field`` for negative,
    empty, boolean, unknown-unit, overlong (more than 40 characters), too large (more than 8 EiB) or otherwise
    malformed input.
    """
    if isinstance(value, bool) or value is None:
        raise SizeError("%s: %r is not a size; %s" % (field, value, _hint(default_unit)))
    if isinstance(value, int):
        if value < 0:
            raise SizeError("%s: %s is negative; a size is 0 or more" % (field, _show(value)))
        result = value * default_unit
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise SizeError("%s: %r is not a valid size; %s" % (field, value, _hint(default_unit)))
        if value < 0:
            raise SizeError("%s: %r is negative; a size is 0 or more" % (field, value))
        result = math.ceil(Fraction(value) * default_unit)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise SizeError("%s: %s is too long to be a size; %s" % (field, _show(value), _hint(default_unit)))
        match = _SIZE_RE.fullmatch(value) if value.isascii() else None
        if not match:
            raise SizeError("%s: %r is not a size; %s" % (field, value, _hint(default_unit)))
        unit = match.group("unit").lower()
        if unit and unit not in _UNITS:
            raise SizeError(
                "%s: %r has an unknown unit %r; use B, KB/MB/GB/TB (10^3 steps) or KiB/MiB/GiB/TiB (2^10 steps)"
                % (field, value, match.group("unit")))
        scale = _UNITS[unit] if unit else default_unit
        num = match.group("num")
        amount = Fraction(num) if "." in num else int(num)
        if match.group("sign") == "-" and amount:
            raise SizeError("%s: %r is negative; a size is 0 or more" % (field, value))
        result = math.ceil(amount * scale) if "." in num else amount * scale
    else:
        raise SizeError("%s: %s is not a size; %s" % (field, _show(value), _hint(default_unit)))
    if result > MAX_SIZE:
        raise SizeError("%s: %s is more than 8 EiB, the largest size supported" % (field, _show(value)))
    return int(result)


def parse_volume_size(value, field="size"):
    """A volume's size in bytes: a bare number is GiB, as in Cinder's API (``size`` is an integer number of GiB)
    and openstack.cloud's ``volume`` module; ``10GiB``, ``512MiB``, ``1G`` (10**9 bytes) and ``1073741824B``
    keep their unit."""
    return parse_size(value, field, default_unit=GIB)


def parse_clear_size(value, field="volume_clear_size"):
    """Cinder's ``volume_clear_size`` in bytes: a bare number is MiB (Cinder's option is an integer number of
    MiB, 0 = the whole volume); a value with a unit (``512MiB``, ``1GiB``) is taken as it is."""
    return parse_size(value, field, default_unit=MIB)


def format_size(num_bytes):
    """Format bytes in IEC units with up to two decimals: ``format_size(1610612736) == '1.5 GiB'``."""
    if num_bytes is None:
        return "-"
    magnitude = abs(num_bytes)
    if magnitude < 1024:
        return "%d B" % num_bytes
    # The unit where the value is at least 1; one more when it would print as 1024 after rounding to two
    # decimals (1023.999 KiB is "1 MiB"); TiB at most.
    index = min((int(magnitude).bit_length() - 1) // 10, 4)
    value = num_bytes / _IEC_STEP[index]
    if index < 4 and round(abs(value), 2) >= 1024:
        index += 1
        value /= 1024
    text = ("%.2f" % value).rstrip("0").rstrip(".")
    return "%s %s" % (text, _IEC_NAMES[index])


def round_up(num_bytes, step):
    """Round ``num_bytes`` up to a multiple of ``step`` (for LVM extents); ``step`` <= 0 returns it unchanged."""
    if not step or step <= 0:
        return num_bytes
    return -(-num_bytes // step) * step
