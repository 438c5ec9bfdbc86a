# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM driver: read the LVM state of a storage node and create, extend and delete managed volumes.

Reads use ``vgs``/``lvs --reportformat json --units b --nosuffix`` (one call each for the whole host).
Pool statistics follow Cinder's LVM driver (``cinder/volume/drivers/lvm.py``, ``_update_volume_stats``):
thick pools report the VG's size and free space; thin pools report the pool LV's size, its free data space and
the sum of the thin volumes' virtual sizes as ``provisioned``.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    BACKEND_TAG,
    MANAGED_TAG,
    TYPE_TAG,
    VOLUME_TAG,
    lv_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_size, round_up

__all__ = [
    "LVS_FIELDS", "VGS_FIELDS", "parse_lvs", "parse_vgs", "Lvm", "LvmState", "predict_vg_size", "thin_pool_size",
    "DEFAULT_EXTENT", "PE_START", "block_device_size",
]

LVS_FIELDS = "lv_name,vg_name,lv_size,lv_attr,lv_tags,pool_lv,origin,data_percent,metadata_percent,lv_path,segtype"
VGS_FIELDS = "vg_name,vg_size,vg_free,vg_extent_size,vg_tags,pv_count"
DEFAULT_EXTENT = 4 * 1024 * 1024
PE_START = 1024 * 1024


def _float(text):
    text = (text or "").strip()
    return float(text) if text else None


def _report(text, key):
    data = json.loads(text) if text and text.strip() else {"report": []}
    rows = []
    for section in data.get("report", []):
        rows.extend(section.get(key, []))
    return rows


def parse_lvs(text):
    """Parse ``lvs --reportformat json --units b --nosuffix -o LVS_FIELDS`` into a list of LV dicts.

    Each dict: ``name, vg, size_bytes, attr, tags (list), pool_lv, origin, data_percent (float|None),
    metadata_percent, path, segtype, managed (bool), volume (ember volume name or None), volume_type, backend``.
    """
    lvs = []
    for row in _report(text, "lv"):
        tags = [t for t in row.get("lv_tags", "").split(",") if t]
        lv = {
            "name": row["lv_name"],
            "vg": row["vg_name"],
            "size_bytes": int(row["lv_size"]),
            "attr": row.get("lv_attr", ""),
            "tags": tags,
            "pool_lv": row.get("pool_lv") or None,
            "origin": row.get("origin") or None,
            "data_percent": _float(row.get("data_percent")),
            "metadata_percent": _float(row.get("metadata_percent")),
            "path": row.get("lv_path") or None,
            "segtype": row.get("segtype", ""),
            "managed": MANAGED_TAG in tags,
            "volume": None,
            "volume_type": None,
            "backend": None,
        }
        for tag in tags:
            if tag.startswith(VOLUME_TAG):
                lv["volume"] = tag[len(VOLUME_TAG):]
            elif tag.startswith(TYPE_TAG):
                lv["volume_type"] = tag[len(TYPE_TAG):]
            elif tag.startswith(BACKEND_TAG):
                lv["backend"] = tag[len(BACKEND_TAG):]
        lvs.append(lv)
    return lvs


def parse_vgs(text):
    """Parse ``vgs --reportformat json --units b --nosuffix -o VGS_FIELDS`` into ``{vg_name: dict}``."""
    vgs = {}
    for row in _report(text, "vg"):
        vgs[row["vg_name"]] = {
            "name": row["vg_name"],
            "size_bytes": int(row["vg_size"]),
            "free_bytes": int(row["vg_free"]),
            "extent_size_bytes": int(row.get("vg_extent_size") or DEFAULT_EXTENT),
            "tags": [t for t in row.get("vg_tags", "").split(",") if t],
            "pv_count": int(row.get("pv_count") or 0),
        }
    return vgs


def predict_vg_size(pv_sizes, extent=DEFAULT_EXTENT):
    """Size ``vgcreate`` gives a VG over PVs of ``pv_sizes`` bytes: 1 MiB data offset, whole extents per PV."""
    return sum(max(0, (size - PE_START) // extent) * extent for size in pv_sizes)


def thin_pool_size(spec, vg_size, extent=DEFAULT_EXTENT):
    """Data size of a thin pool for ``pool_size`` ``spec``: ``NN%VG`` (rounded down to extents, as
    ``lvcreate -l NN%VG`` does) or an absolute size (rounded up to extents)."""
    spec = str(spec).strip()
    if spec.upper().endswith("%VG"):
        try:
            pct = float(spec[:-3])
        except ValueError:
            pct = -1.0
        if not 0 < pct <= 100:
            raise SizeError("pool_size: %r is not a percentage of the VG such as 95%%VG, or a size" % spec)
        return int(vg_size // extent * pct / 100) * extent
    return round_up(parse_size(spec, "pool_size"), extent)


class LvmState:
    """One snapshot of a host's LVM state (``vgs`` + ``lvs``), with lookups used by facts and modules."""

    def __init__(self, vgs, lvs):
        self.vgs = vgs
        self.lvs = lvs

    def lv(self, vg, name):
        for lv in self.lvs:
            if lv["vg"] == vg and lv["name"] == name:
                return lv
        return None

    def volume(self, vg, volume):
        """The LV of ``volume`` in ``vg`` (managed or not), or None."""
        return self.lv(vg, lv_name(volume))

    def snapshots_of(self, vg, name):
        return [lv for lv in self.lvs if lv["vg"] == vg and lv["origin"] == name]

    def managed_in(self, vg, thin_pool=None):
        """Managed LVs that belong to a backend: thin ones in ``thin_pool``, or thick ones in ``vg``."""
        out = []
        for lv in self.lvs:
            if lv["vg"] != vg or not lv["managed"] or not lv["volume"]:
                continue
            if thin_pool is not None and lv["pool_lv"] == thin_pool:
                out.append(lv)
            elif thin_pool is None and not lv["pool_lv"] and not lv["attr"].startswith(("t", "V")):
                out.append(lv)
        return out


class Lvm:
    """Commands against LVM on one host. ``runner`` is a :class:`_runner.Runner`."""

    def __init__(self, runner):
        self.runner = runner

    def state(self):
        """Read all VGs and LVs with one ``vgs`` and one ``lvs`` call."""
        common = ["--reportformat", "json", "--units", "b", "--nosuffix"]
        _rc, vgs_out, _err = self.runner.run(["vgs"] + common + ["-o", VGS_FIELDS])
        _rc, lvs_out, _err = self.runner.run(["lvs"] + common + ["-o", LVS_FIELDS])
        return LvmState(parse_vgs(vgs_out), parse_lvs(lvs_out))

    @staticmethod
    def tags(volume, volume_type=None, backend=None):
        tags = [MANAGED_TAG, VOLUME_TAG + volume]
        if volume_type:
            tags.append(TYPE_TAG + volume_type)
        if backend:
            tags.append(BACKEND_TAG + backend)
        return tags

    def create(self, vg, volume, size_bytes, thin_pool=None, volume_type=None, backend=None):
        args = ["lvcreate", "--yes", "--wipesignatures", "y", "-n", lv_name(volume)]
        for tag in self.tags(volume, volume_type, backend):
            args += ["--addtag", tag]
        if thin_pool:
            args += ["--thin", "--virtualsize", "%db" % size_bytes, "%s/%s" % (vg, thin_pool)]
        else:
            args += ["--size", "%db" % size_bytes, vg]
        self.runner.run(args)
        self.settle()

    def extend(self, vg, volume, size_bytes):
        self.runner.run(["lvextend", "--size", "%db" % size_bytes, "%s/%s" % (vg, lv_name(volume))])

    def clear(self, device, size_bytes, clear_size_bytes=0):
        """Overwrite the first ``clear_size_bytes`` (0 = all) of ``device`` with zeros, as Cinder's
        ``volume_clear = zero`` does (``dd`` from /dev/zero with O_DIRECT, under ``ionice -c3`` when present).
        Returns the number of bytes written."""
        mib = 1024 * 1024
        count = (clear_size_bytes or size_bytes) // mib
        if count <= 0:
            return 0
        args = ["dd", "if=/dev/zero", "of=%s" % device, "bs=1M", "count=%d" % count, "oflag=direct",
                "conv=fdatasync"]
        ionice = self.runner.module.get_bin_path("ionice")
        if ionice:
            args = [ionice, "-c3"] + args
        self.runner.run(args)
        return count * mib

    def remove(self, vg, name):
        """``lvremove -f`` with retries: udev may still hold the device just after close (as Cinder retries)."""
        last = None
        for attempt in range(3):
            rc, out, err = self.runner.run(["lvremove", "--force", "%s/%s" % (vg, name)], check=False)
            if rc == 0:
                self.settle()
                return
            last = (rc, out, err)
            self.settle()
            time.sleep(1 + attempt)
        raise CommandError(["lvremove", "--force", "%s/%s" % (vg, name)], *last)

    def settle(self):
        self.runner.run(["udevadm", "settle", "--timeout=30"], check=False)


def block_device_size(path):
    """Size in bytes of a block device, read from sysfs (no command); None when it does not exist."""
    try:
        real = os.path.realpath(path)
        with open("/sys/class/block/%s/size" % os.path.basename(real)) as handle:
            return int(handle.read().strip()) * 512
    except (OSError, ValueError):
        return None
