# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Changed blocks between two thin devices of one dm-thin pool, from thin-provisioning-tools' ``thin_delta``.

Sequence (as Wyng and the kernel's Documentation/admin-guide/device-mapper/thin-provisioning.rst describe it):

1. ``dmsetup message <vg>-<pool>-tpool 0 reserve_metadata_snap``: a consistent snapshot of the pool's metadata
   that the live pool keeps unchanged (only one can exist: a stale one left by a crashed run is released first);
2. ``thin_delta --metadata-snap --thin1 <base dev id> --thin2 <new dev id> /dev/mapper/<vg>-<pool>_tmeta``;
3. ``dmsetup message <vg>-<pool>-tpool 0 release_metadata_snap``, always (a reserved metadata snapshot pins
   metadata blocks until it is released).

Device ids are LVM's ``thin_id`` (``lvs -o thin_id``). Device-mapper names are ``<vg>-<lv>`` with every ``-`` of
the VG and LV names doubled; LVM's layer suffixes (``-tpool``) and sub-LV names (``_tmeta``) keep theirs.

Output of thin_delta 0.9.0 (Debian bookworm; ``thin-provisioning/thin_delta.cc``), in data blocks of
``data_block_size`` 512-byte sectors::

    <superblock uuid="" time="2" transaction="5" data_block_size="128" nr_data_blocks="16384">
      <diff left="1" right="2">
        <same begin="0" length="16"/>
        <different begin="16" length="2"/>
        <left_only begin="18" length="1"/>
        <right_only begin="40" length="4"/>
      </diff>
    </superblock>

``--verbose`` nests ``<range begin=.. length=.. .../>`` elements in ``<different>`` (and the others) instead; both
forms are read. ``different``, ``left_only`` (mapped only in the base: discarded since, reads as zeros now) and
``right_only`` (written since) are changes; ``same`` is not. The byte ranges are clipped to the volume's size
(thin_delta may report blocks past the end of a volume that shrank: wyng-backup issue 56).
"""

from __future__ import annotations

import json
from xml.etree import ElementTree

from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import split_report

__all__ = ["ThinDelta", "ThinDeltaError", "parse_thin_delta", "dm_name", "tpool_name", "tmeta_device",
           "CHANGE_TAGS", "SECTOR"]

SECTOR = 512
CHANGE_TAGS = ("different", "left_only", "right_only")
_ALL_TAGS = CHANGE_TAGS + ("same",)


class ThinDeltaError(ValueError):
    """thin_delta's output cannot be read."""


def dm_name(vg, lv):
    """Device-mapper name of ``vg/lv``: ``<vg>-<lv>`` with each ``-`` doubled."""
    return "%s-%s" % (vg.replace("-", "--"), lv.replace("-", "--"))


def tpool_name(vg, pool):
    """The dm device of a thin pool that takes messages: ``<vg>-<pool>-tpool``."""
    return dm_name(vg, pool) + "-tpool"


def tmeta_device(vg, pool):
    """The pool's metadata device: ``/dev/mapper/<vg>-<pool>_tmeta``."""
    return "/dev/mapper/" + dm_name(vg, pool + "_tmeta")


def _int(element, key):
    value = element.get(key)
    if value is None or not value.isdigit():
        raise ThinDeltaError("thin_delta: <%s> has no whole-number %s (%r)" % (element.tag, key, value))
    return int(value)


def parse_thin_delta(text, size_bytes=None):
    """Parse thin_delta's XML into ``{"data_block_size": sectors, "block_bytes", "left", "right", "ranges":
    [(offset, length)] in bytes, sorted and merged, "blocks_changed"}``; ``size_bytes`` clips the ranges. Raises
    :class:`ThinDeltaError` for output that is not thin_delta's."""
    try:
        root = ElementTree.fromstring(text or "")
    except ElementTree.ParseError as exc:
        raise ThinDeltaError("thin_delta printed no valid XML: %s" % exc) from None
    if root.tag != "superblock":
        raise ThinDeltaError("thin_delta: expected <superblock>, got <%s>" % root.tag)
    sectors = _int(root, "data_block_size")
    if sectors <= 0:
        raise ThinDeltaError("thin_delta: data_block_size is 0")
    diff = root.find("diff")
    if diff is None:
        raise ThinDeltaError("thin_delta: no <diff> in the output")
    block = sectors * SECTOR
    blocks = []
    for element in diff:
        if element.tag not in _ALL_TAGS:
            raise ThinDeltaError("thin_delta: unknown element <%s> in <diff>" % element.tag)
        if element.tag == "same":
            continue
        spans = [element] if element.get("begin") is not None else list(element.iter("range"))
        for span in spans:
            blocks.append((_int(span, "begin"), _int(span, "length")))
    ranges = []
    for begin, length in sorted(blocks):
        if length <= 0:
            continue
        offset, end = begin * block, (begin + length) * block
        if size_bytes is not None:
            end = min(end, size_bytes)
            if offset >= end:
                continue
        if ranges and offset <= ranges[-1][0] + ranges[-1][1]:
            last = ranges[-1]
            ranges[-1] = (last[0], max(last[0] + last[1], end) - last[0])
        else:
            ranges.append((offset, end - offset))
    return {"data_block_size": sectors, "block_bytes": block, "left": diff.get("left"), "right": diff.get("right"),
            "ranges": ranges, "blocks_changed": sum(length for _begin, length in blocks)}


class ThinDelta:
    """thin_delta between two thin LVs of one pool, through a :class:`_runner.Runner`."""

    def __init__(self, runner):
        self.runner = runner

    def thin_ids(self, vg, names):
        """``{lv name: thin_id}`` from one ``lvs -o lv_name,thin_id`` over ``vg/<name>`` of each name."""
        args = ["lvs", "--reportformat", "json", "-o", "lv_name,thin_id"] + ["%s/%s" % (vg, n) for n in names]
        rc, out, err = self.runner.run(args)
        try:
            rows = [row for section in json.loads(split_report(out)[0]).get("report", [])
                    for row in section.get("lv", [])]
        except ValueError:
            raise CommandError(args, rc, out, err, msg="lvs printed no JSON report") from None
        ids = {}
        for row in rows:
            value = (row.get("thin_id") or "").strip()
            if value.isdigit():
                ids[row.get("lv_name")] = int(value)
        missing = [n for n in names if n not in ids]
        if missing:
            raise CommandError(args, rc, out, err, msg="lvs reports no thin_id for %s in %s"
                               % (", ".join(missing), vg))
        return ids

    def message(self, vg, pool, text, check=True):
        return self.runner.run(["dmsetup", "message", tpool_name(vg, pool), "0", text], check=check)

    def changed_ranges(self, vg, pool, base_lv, new_lv, size_bytes):
        """Byte ranges of ``new_lv`` that differ from ``base_lv`` (both thin LVs of ``vg/pool``): see the module
        docstring. The metadata snapshot is released whatever happens."""
        ids = self.thin_ids(vg, [base_lv, new_lv])
        rc, _out, _err = self.message(vg, pool, "reserve_metadata_snap", check=False)
        if rc != 0:  # one left reserved by a run that died: release it, then reserve again
            self.message(vg, pool, "release_metadata_snap", check=False)
            self.message(vg, pool, "reserve_metadata_snap")
        try:
            _rc, out, _err = self.runner.run(["thin_delta", "--metadata-snap", "--thin1", str(ids[base_lv]),
                                              "--thin2", str(ids[new_lv]), tmeta_device(vg, pool)])
        finally:
            self.message(vg, pool, "release_metadata_snap", check=False)
        result = parse_thin_delta(out, size_bytes)
        result["thin_ids"] = [ids[base_lv], ids[new_lv]]
        return result
