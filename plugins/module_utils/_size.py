# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes: parsed once from user input into integer bytes, printed in IEC units.

Decimal (SI) and binary (IEC) prefixes stay distinct, as in linux-system-roles/storage's size helper:
``1G`` = ``1GB`` = 10**9 bytes, ``1GiB`` = 2**30 bytes. A bare number (int or digit string) is bytes.
Prefix letters are case-insensitive for the SI forms (``1g`` = ``1G``); ``b`` and ``B`` both mean bytes.
"""

from __future__ import annotations

import math
import re

__all__ = ["SizeError", "parse_size", "format_size", "round_up", "MAX_SIZE_BYTES"]

# The largest size accepted anywhere: 8 EiB - 1, LVM's own limit for an LV (and a signed 64-bit byte count).
MAX_SIZE_BYTES = 2**63 - 1
# A size written out in full bytes has at most 19 digits; with a unit and a fraction, 40 characters is plenty.
_MAX_SIZE_TEXT = 40

_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12, "p": 10**15, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}
_SIZE_RE = re.compile(r"^ *(?P<num>[0-9]+(?:\.[0-9]+)?) *(?P<unit>[A-Za-z]*) *$")


class SizeError(ValueError):
    """Raised for a size that cannot be parsed; the message names the field and the value."""


def parse_size(value, field="size"):
    """Return ``value`` as an integer number of bytes.

    ``value`` may be an ``int`` (bytes) or a string such as ``10GiB``, ``512 MiB``, ``1G`` (10**9), ``1.5TiB``.
    Fractional results are rounded up to the next byte. Raises :class:`SizeError` naming ``field`` for
    negative, empty, boolean, unknown-unit, over-long (more than 40 characters) or otherwise malformed input and
    for sizes above :data:`MAX_SIZE_BYTES`.
    """
    if isinstance(value, bool) or value is None:
        raise SizeError("%s: %r is not a size; use bytes or a number with a unit such as 10GiB or 1G" % (field, value))
    if isinstance(value, int):
        if value < 0:
            raise SizeError("%s: %s is negative" % (field, _show(value)))
        return _bounded(value, field, value)
    if isinstance(value, float):
        if value < 0 or math.isnan(value) or math.isinf(value):
            raise SizeError("%s: %r is not a valid size" % (field, value))
        if value > MAX_SIZE_BYTES:
            raise SizeError("%s: %r is larger than %d bytes (8 EiB)" % (field, value, MAX_SIZE_BYTES))
        return int(math.ceil(value))
    if not isinstance(value, str) or len(value) > _MAX_SIZE_TEXT:
        raise SizeError("%s: %s is not a size; use bytes or a number with a unit such as 10GiB or 1G (at most %d "
                        "characters)" % (field, _show(value), _MAX_SIZE_TEXT))
    match = _SIZE_RE.fullmatch(value)
    if not match or not value.isascii():
        raise SizeError("%s: %r is not a size; use bytes or a number with a unit such as 10GiB or 1G" % (field, value))
    unit = match.group("unit").lower()
    if unit not in _UNITS:
        raise SizeError(
            "%s: %r has an unknown unit %r; use B, KB/MB/GB/TB (10^3 steps) or KiB/MiB/GiB/TiB (2^10 steps)"
            % (field, value, match.group("unit")))
    num = match.group("num")
    if "." in num:
        whole, frac = num.split(".")
        scaled = int(whole) * _UNITS[unit] + (int(frac) * _UNITS[unit] + 10 ** len(frac) - 1) // 10 ** len(frac)
        return _bounded(scaled, field, value)
    return _bounded(int(num) * _UNITS[unit], field, value)


def _show(value, limit=60):
    if isinstance(value, int) and value.bit_length() > 64:
        return "an integer of %d bits" % value.bit_length()  # repr() of a huge int may raise
    text = repr(value)
    if len(text) > limit:
        return "%s... (%d characters)" % (text[:limit], len(text))
    return text


def _bounded(num_bytes, field, value):
    if num_bytes > MAX_SIZE_BYTES:
        raise SizeError("%s: %s is larger than %d bytes (8 EiB)" % (field, _show(value), MAX_SIZE_BYTES))
    return num_bytes


def format_size(num_bytes):
    """Format bytes in IEC units with up to two decimals: ``format_size(1610612736) == '1.5 GiB'``."""
    if num_bytes is None:
        return "-"
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        # Move up a unit when the value would print as 1024 after rounding to two decimals.
        if round(abs(value), 2) < 1024 or unit == "TiB":
            break
        value /= 1024
    if unit == "B":
        return "%d B" % num_bytes
    text = ("%.2f" % value).rstrip("0").rstrip(".")
    return "%s %s" % (text, unit)


def round_up(num_bytes, step):
    """Round ``num_bytes`` up to a multiple of ``step`` (for LVM extents); ``step`` <= 0 returns it unchanged."""
    if not step or step <= 0:
        return num_bytes
    return -(-num_bytes // step) * step
