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

import calendar
import json
import os
import re
import time

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    BACKEND_TAG,
    MANAGED_TAG,
    TYPE_TAG,
    VOLUME_TAG,
    is_managed_lv,
    lv_name,
    managed_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_size, round_up

__all__ = [
    "LVS_FIELDS", "VGS_FIELDS", "parse_lvs", "parse_vgs", "Lvm", "LvmState", "predict_vg_size", "thin_pool_size",
    "DEFAULT_EXTENT", "PE_START", "block_device_size", "PVS_FIELDS", "parse_pvs", "backend_problems",
    "parse_vg_backup", "split_report", "LVS_TIME_FIELDS", "parse_lv_time", "SHELL_MAX_WORDS", "lv_usage",
]

LVS_FIELDS = "lv_name,vg_name,lv_size,lv_attr,lv_tags,pool_lv,origin,data_percent,metadata_percent,lv_path,segtype"
# The snapshot, backend_info and info modules also read each LV's creation time (to find a volume's latest
# snapshot, as Cinder's revert needs); the other modules' reads stay as they were.
LVS_TIME_FIELDS = LVS_FIELDS + ",lv_time"
VGS_FIELDS = "vg_name,vg_size,vg_free,vg_extent_size,vg_tags,pv_count,vg_missing_pv_count,vg_attr"
PVS_FIELDS = "pv_name,vg_name,pv_size,pv_missing"
# Thin pool usage above which new volumes are not placed there and the operator is told to extend it
# (dm-thin stops or errors writes when a pool runs out of data or metadata space).
THIN_DATA_LIMIT = 98.0
THIN_METADATA_LIMIT = 90.0
# What LVM prints (stderr) when a PV's metadata area cannot be read or does not match its checksum.
_DAMAGE_MARKERS = ("checksum error", "invalid metadata", "bad metadata", "failed to read metadata",
                   "repair vg metadata", "metadata on", "couldn't find device", "missing pv",
                   "inconsistent metadata", "failed to find", "cannot process volume group")
DEFAULT_EXTENT = 4 * 1024 * 1024
# One argument on a line of the ``lvm`` shell (lvm2 tools/lvmcmdline.c ``lvm_split``): no white space, quotes or
# backslashes, and no ``#`` at its start (a word that starts with ``#`` ends the line as a comment).
_SHELL_WORD = re.compile(r"^[^\s'\"\\#][^\s'\"\\]*$")
# lvm2 tools/tools.h MAX_ARGS: a line of the ``lvm`` shell with 64 words or more is refused ("Too many arguments").
SHELL_MAX_WORDS = 63
PE_START = 1024 * 1024


def _float(text):
    text = (text or "").strip()
    return float(text) if text else None


def split_report(text):
    """``(json_text, stray_lines)``: LVM prints some messages ("Retrying metadata scan.") on stdout, inside its
    JSON report, when a VG's metadata is damaged; those lines are taken out (measured on the lab)."""
    keep, stray = [], []
    for line in (text or "").splitlines():
        if line.strip()[:1] in ("{", "}", "[", "]", '"', ""):
            keep.append(line)
        else:
            stray.append(line.strip())
    return "\n".join(keep), stray


def parse_lv_time(text):
    """Seconds since the epoch of an ``lv_time`` value in LVM's default ``report/time_format``
    (``%Y-%m-%d %T %z``: ``2026-11-20 10:11:12 +0100``); None when it is empty or in another format (a host whose
    lvm.conf changes the format: the snapshot module then cannot tell which snapshot is the latest)."""
    match = re.fullmatch(r"\s*(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*", text or "")
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    offset = (int(match.group(8)) * 60 + int(match.group(9))) * 60 * (-1 if match.group(7) == "-" else 1)
    try:
        return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    except (ValueError, OverflowError):
        return None


def _report(text, key):
    text = split_report(text)[0]
    data = json.loads(text) if text and text.strip() else {"report": []}
    rows = []
    for section in data.get("report", []):
        rows.extend(section.get(key, []))
    return rows


def parse_lvs(text):
    """Parse ``lvs --reportformat json --units b --nosuffix -o LVS_FIELDS`` into a list of LV dicts.

    Each dict: ``name, vg, size_bytes, attr, tags (list), pool_lv, origin, data_percent (float|None),
    metadata_percent, path, segtype, managed (bool), volume (ember volume name or None), volume_type, backend,
    time`` (``lv_time`` as seconds since the epoch, when read with :data:`LVS_TIME_FIELDS`, else None).
    ``managed`` means both tags, ``ember.blockstore`` and ``ember.volume=<name>``, on the LV ``volume-<name>``
    (:func:`_naming.is_managed_lv`).
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
            "managed": False,
            "volume": None,
            "volume_type": None,
            "backend": None,
            "time": parse_lv_time(row.get("lv_time")),
        }
        for tag in tags:
            if tag.startswith(VOLUME_TAG):
                lv["volume"] = tag[len(VOLUME_TAG):]
            elif tag.startswith(TYPE_TAG):
                lv["volume_type"] = tag[len(TYPE_TAG):]
            elif tag.startswith(BACKEND_TAG):
                lv["backend"] = tag[len(BACKEND_TAG):]
        lv["managed"] = is_managed_lv(lv)
        if lv["managed"]:  # the name the LV is called by, whatever other ember.volume= tags it carries
            lv["volume"] = managed_volume_name(lv) or lv["name"][len(lv_name("")):]
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
            "missing_pv_count": int(row.get("vg_missing_pv_count") or 0),
            "attr": row.get("vg_attr", ""),
        }
    return vgs


def parse_pvs(text):
    """Parse ``pvs --reportformat json --units b --nosuffix -o PVS_FIELDS`` into a list of
    ``{"name", "vg", "size_bytes", "missing"}`` (``vg`` is ``"[unknown]"`` when LVM cannot read its VG)."""
    rows = []
    for row in _report(text, "pv"):
        size = (row.get("pv_size") or "0").strip()
        rows.append({"name": row.get("pv_name", ""), "vg": row.get("vg_name") or "",
                     "size_bytes": int(size) if size.isdigit() else 0,
                     "missing": bool((row.get("pv_missing") or "").strip())})
    return rows


def _names(text, word):
    """Whether ``text`` names ``word`` as a whole (``/dev/loop1`` is not in ``/dev/loop10``, VG ``data`` is not
    in ``metadata``)."""
    return re.search(r"(?<![\w./-])%s(?![\w-])" % re.escape(word), text) is not None


def _same_device(one, other):
    if not one or not other:
        return False
    return one == other or os.path.realpath(one) == os.path.realpath(other)


def parse_vg_backup(text):
    """``[(pv uuid, device hint)]`` of the physical volumes in an LVM metadata backup (``/etc/lvm/backup/VG``)."""
    pvs, current = [], None
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("id = ") and current is None:
            continue
        if line.endswith("{") and line[:-1].strip().startswith("pv") and line[2:-1].strip().isdigit():
            current = {"id": None, "device": None}
        elif current is not None and line.startswith("id = "):
            current["id"] = line.split("=", 1)[1].strip().strip('"')
        elif current is not None and line.startswith("device = "):
            current["device"] = line.split("=", 1)[1].split("#")[0].strip().strip('"')
        elif current is not None and line == "}":
            pvs.append((current["id"], current["device"]))
            current = None
    return pvs


def backend_problems(cfg, state, pv_rows, messages, vg_backup=None):
    """Damaged LVM state of one backend (pure; unit tested with outputs captured on the lab).

    ``cfg``: the backend config; ``state``: :class:`LvmState`; ``pv_rows``: :func:`parse_pvs` output;
    ``messages``: LVM's warning and error lines (stderr of ``vgs``/``lvs``/``pvs``); ``vg_backup``: the text of
    ``/etc/lvm/backup/<vg>`` when it exists (a VG that LVM backed up but no longer finds lost its metadata: the
    repair restores it from that backup, never creates an empty one). Returns a list of
    ``{"backend", "vg", "device", "message", "repair"}``: a PV of the backend whose VG LVM cannot read
    (``[unknown]``), metadata checksum or parse errors naming the backend's PVs or VG, missing PVs, a PV that
    belongs to another VG, and a thin pool over its data or metadata limit.
    """
    vg_name = cfg["vg"]
    problems = []

    def add(device, message, repair):
        problems.append({"backend": cfg["name"], "vg": vg_name, "device": device, "message": message,
                         "repair": repair})

    pvs = list(cfg.get("pvs") or [])
    vg = state.vgs.get(vg_name)
    members = [row for row in pv_rows if row["vg"] == vg_name]
    watched = set(pvs) | {row["name"] for row in members}
    for pv in pvs:
        row = next((r for r in pv_rows if _same_device(r["name"], pv)), None)
        if row is None:
            continue
        if row["vg"] == "[unknown]":
            add(pv, "LVM cannot read the volume group on this PV ([unknown] VG)",
                "vgck --updatemetadata %s; if that fails, vgcfgrestore %s (from /etc/lvm/backup/%s, after a copy "
                "of the PV's first MiB)" % (vg_name, vg_name, vg_name))
        elif row["vg"] and row["vg"] != vg_name:
            add(pv, "the PV belongs to volume group %s, not %s" % (row["vg"], vg_name),
                "fix blockstore_backends (pvs of backend %s) or move the disk" % cfg["name"])
    by_device = {}
    for line in messages:
        text = line.strip()
        low = text.lower()
        if not text or not any(marker in low for marker in _DAMAGE_MARKERS):
            continue
        device = next((d for d in sorted(watched) if d and _names(text, d)), None)
        if device is None and not _names(text, vg_name):
            continue
        by_device.setdefault(device, []).append(text)
    for device, lines in sorted(by_device.items(), key=lambda item: str(item[0])):
        # One problem per device: LVM's most telling line (a checksum error, then a missing device).
        best = next((t for t in lines if "checksum error" in t.lower()), None) or \
            next((t for t in lines if "couldn't find device" in t.lower()), None) or lines[0]
        best = best.replace("WARNING: ", "")
        known = next((p for p in problems if p["device"] == device), None)
        if "couldn't find device" in best.lower() or "missing pv" in best.lower():
            repair = ("attach the missing disk again; only if it is lost for good: vgreduce --removemissing %s "
                      "(volumes on it are lost)" % vg_name)
        else:
            repair = ("vgck --updatemetadata %s; if that fails, vgcfgrestore %s (from /etc/lvm/backup/%s, after a "
                      "copy of the PV's first MiB)" % (vg_name, vg_name, vg_name))
        if known:
            known["message"] = "%s: %s" % (known["message"], best)
            known["repair"] = repair
        else:
            add(device, best, repair)
    if vg and vg.get("missing_pv_count"):
        if not any("missing" in p["message"].lower() or "couldn't find" in p["message"].lower() for p in problems):
            add(None, "volume group %s is missing %d PV(s)" % (vg_name, vg["missing_pv_count"]),
                "attach the missing disk again; only if it is lost for good: vgreduce --removemissing %s" % vg_name)
    if vg is None and vg_backup and not problems:
        steps = ["pvcreate --uuid %s --restorefile /etc/lvm/backup/%s %s" % (uuid, vg_name, device or "<device>")
                 for uuid, device in parse_vg_backup(vg_backup)]
        add(", ".join(pvs) or None,
            "volume group %s is gone from its PVs, but /etc/lvm/backup/%s records it (its LVM metadata was lost, "
            "the volumes' data may still be there); it is not re-created empty" % (vg_name, vg_name),
            "; ".join(steps + ["vgcfgrestore %s" % vg_name, "vgchange -ay %s" % vg_name]))
    thin_pool = cfg.get("thin_pool")
    pool_lv = state.lv(vg_name, thin_pool) if (vg and thin_pool) else None
    if pool_lv:
        data, meta = pool_lv.get("data_percent"), pool_lv.get("metadata_percent")
        if data is not None and data >= THIN_DATA_LIMIT:
            add(None, "thin pool %s/%s data is %.1f%% full (limit %.0f%%)"
                % (vg_name, thin_pool, data, THIN_DATA_LIMIT),
                "lvextend -L +SIZE %s/%s (after adding a PV with vgextend if the VG is full)" % (vg_name, thin_pool))
        if meta is not None and meta >= THIN_METADATA_LIMIT:
            add(None, "thin pool %s/%s metadata is %.1f%% full (limit %.0f%%)"
                % (vg_name, thin_pool, meta, THIN_METADATA_LIMIT),
                "lvextend --poolmetadatasize +SIZE %s/%s" % (vg_name, thin_pool))
    return problems


def lv_usage(lv, state=None):
    """What LVM says of how an LV is used (pure): ``open`` (``lv_attr``'s sixth character is ``o``, what
    ``lv_device_open`` reports: mounted, held by another device-mapper device or opened by a process),
    ``snapshot_of`` (the origin of a snapshot LV, thick or thin, else None), ``snapshots`` (LVs of ``state``, an
    :class:`LvmState`, whose origin it is; thick origins also show ``o`` as ``lv_attr``'s first character) and
    ``kind`` (``linear`` for a plain LV, ``thin`` for a thin volume, else its segment type), ``active``
    (``lv_attr``'s fifth character is ``a``) and ``skips_activation`` (its tenth is ``k``: LVM's activation-skip
    flag, which ``lvcreate --snapshot`` of a thin LV sets)."""
    attr = lv.get("attr") or ""
    snaps = sorted(other["name"] for other in (state.lvs if state is not None else [])
                   if other["vg"] == lv["vg"] and other.get("origin") == lv["name"])
    if not snaps and attr[:1] in ("o", "O"):
        snaps = ["(unnamed: lv_attr %s)" % attr]
    kind = lv.get("segtype") or ""
    if attr[:1] == "V":
        kind = "thin"
    elif attr[:1] in ("-", "o", "O") and kind in ("linear", "striped", ""):
        kind = "linear"
    return {"open": attr[5:6] == "o", "snapshot_of": lv.get("origin") or None,
            "snapshots": snaps, "kind": kind, "active": attr[4:5] == "a", "skips_activation": attr[9:10] == "k"}


def predict_vg_size(pv_sizes, extent=DEFAULT_EXTENT):
    """Size ``vgcreate`` gives a VG over PVs of ``pv_sizes`` bytes: 1 MiB data offset, whole extents per PV."""
    return sum(max(0, (size - PE_START) // extent) * extent for size in pv_sizes)


def thin_pool_size(spec, vg_size, extent=DEFAULT_EXTENT):
    """Data size of a thin pool for ``thin_pool_size`` ``spec``: ``NN%VG`` (rounded down to extents, as
    ``lvcreate -l NN%VG`` does) or an absolute size (rounded up to extents)."""
    spec = str(spec).strip()
    if spec.upper().endswith("%VG"):
        try:
            pct = float(spec[:-3])
        except ValueError:
            pct = -1.0
        if not 0 < pct <= 100:
            raise SizeError("thin_pool_size: %r is not a percentage of the VG such as 95%%VG, or a size" % spec)
        return int(vg_size // extent * pct / 100) * extent
    return round_up(parse_size(spec, "thin_pool_size"), extent)


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
        """The LV of ``volume`` in ``vg`` (managed or not), or None: ``volume-<volume>``, else the LV that was
        managed under its own name for it (:func:`_naming.managed_volume_name`)."""
        found = self.lv(vg, lv_name(volume))
        if found is not None:
            return found
        return next((lv for lv in self.lvs if lv["vg"] == vg and lv["managed"] and lv["volume"] == volume
                     and not lv["name"].startswith(lv_name(""))), None)

    def snapshots_of(self, vg, name):
        """LVs whose origin is ``vg/name``, except managed volumes: a thin clone (a thin snapshot of the volume
        that the volume module made a volume of its own) is not a snapshot, and does not hold its origin."""
        return [lv for lv in self.lvs if lv["vg"] == vg and lv["origin"] == name and not lv["managed"]]

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

    COMMON = ["--reportformat", "json", "--units", "b", "--nosuffix"]

    def state(self, tolerant=False, times=False):
        """Read all VGs and LVs with one ``vgs`` and one ``lvs`` call (``times``: with each LV's creation time,
        :data:`LVS_TIME_FIELDS`).

        ``tolerant=True`` (for facts): a damaged VG makes LVM exit non-zero while still reporting the rest, so
        exit codes are not errors; returns ``(state, messages)`` with LVM's stderr lines for
        :func:`backend_problems`. Output that is not JSON still raises :class:`CommandError`."""
        results = []
        for cmd, fields in (("vgs", VGS_FIELDS), ("lvs", LVS_TIME_FIELDS if times else LVS_FIELDS)):
            args = [cmd] + self.COMMON + ["-o", fields]
            rc, out, err = self.runner.run(args, check=not tolerant)
            body, stray = split_report(out)
            try:
                json.loads(body)  # LVM always prints a report, even an empty one: no JSON is a failure
            except ValueError:
                raise CommandError(args, rc, out, err) from None
            results.append((out, stray + (err or "").splitlines()))
        state = LvmState(parse_vgs(results[0][0]), parse_lvs(results[1][0]))
        if not tolerant:
            return state
        messages = [line for _out, lines in results for line in lines if line.strip()]
        return state, messages

    def pvs(self):
        """Every PV with its VG (``[unknown]`` when unreadable) and whether it is missing; LVM's stderr lines
        are not needed here (``state(tolerant=True)`` has them)."""
        args = ["pvs"] + self.COMMON + ["-o", PVS_FIELDS]
        rc, out, err = self.runner.run(args, check=False)
        try:
            json.loads(split_report(out)[0])
            return parse_pvs(out)
        except ValueError:
            raise CommandError(args, rc, out, err) from None

    @staticmethod
    def tags(volume, volume_type=None, backend=None):
        tags = [MANAGED_TAG, VOLUME_TAG + volume]
        if volume_type:
            tags.append(TYPE_TAG + volume_type)
        if backend:
            tags.append(BACKEND_TAG + backend)
        return tags

    def create_args(self, vg, volume, size_bytes, thin_pool=None, volume_type=None, backend=None, extra_tags=()):
        """The ``lvcreate`` command line of a managed volume (thin: a virtual size in ``vg/thin_pool``);
        ``extra_tags`` after the volume's own."""
        args = ["lvcreate", "--yes", "--wipesignatures", "y", "-n", lv_name(volume)]
        for tag in self.tags(volume, volume_type, backend) + list(extra_tags):
            args += ["--addtag", tag]
        if thin_pool:
            args += ["--thin", "--virtualsize", "%db" % size_bytes, "%s/%s" % (vg, thin_pool)]
        else:
            args += ["--size", "%db" % size_bytes, vg]
        return args

    @staticmethod
    def extend_args(vg, volume, size_bytes, lv=None):
        """``lvextend`` of ``volume``'s LV (``lv``: its name when it is not ``volume-<volume>``)."""
        return ["lvextend", "--size", "%db" % size_bytes, "%s/%s" % (vg, lv or lv_name(volume))]

    @staticmethod
    def rename_args(vg, old, new):
        """``lvrename`` of ``vg/old`` to ``new`` (Cinder's ``brick/local_dev/lvm.py`` ``rename_volume``)."""
        return ["lvrename", vg, old, new]

    def create(self, vg, volume, size_bytes, thin_pool=None, volume_type=None, backend=None, extra_tags=()):
        self.runner.run(self.create_args(vg, volume, size_bytes, thin_pool, volume_type, backend, extra_tags))
        self.settle()

    def extend(self, vg, volume, size_bytes, lv=None):
        self.runner.run(self.extend_args(vg, volume, size_bytes, lv))

    @staticmethod
    def fits_shell(args):
        """Whether ``args`` can be one line of the ``lvm`` shell (:meth:`run_script`): at most
        :data:`SHELL_MAX_WORDS` words, each one word for the shell's splitter."""
        return len(args) <= SHELL_MAX_WORDS and all(arg and _SHELL_WORD.match(arg) for arg in args)

    def run_script(self, commands):
        """Run LVM commands through one ``lvm`` shell process (commands on its stdin, one per line): one process
        start instead of one per command, which is most of the cost of a command on a slow host (measured in the
        lab: 25 ``lvcreate`` 16-30 s one process each, 10 s through one shell). The shell does not say which
        command failed, so callers read the state back and check each command's effect; ``(rc, out, err)`` is
        returned for their messages. The shell splits lines on white space: every argument must be one word
        without quotes or backslashes, not starting with ``#``, and a line at most :data:`SHELL_MAX_WORDS` words
        (:meth:`fits_shell`), else ValueError."""
        lines = []
        for args in commands:
            for arg in args:
                if not arg or not _SHELL_WORD.match(arg):
                    raise ValueError("%r cannot be passed through the lvm shell" % arg)
            if len(args) > SHELL_MAX_WORDS:
                raise ValueError("%s ... has %d words; a line of the lvm shell has at most %d"
                                 % (" ".join(args[:3]), len(args), SHELL_MAX_WORDS))
            lines.append(" ".join(args))
        if not lines:
            return 0, "", ""
        return self.runner.run(["lvm"], data="\n".join(lines) + "\n", check=False)

    def clear(self, device, size_bytes, clear_size_bytes=0):
        """Make the first ``clear_size_bytes`` (0 = all) of ``device`` read as zeros, as Cinder's
        ``volume_clear = zero`` (cinder/volume/volume_utils.py ``clear_volume``). ``clear_size_bytes`` is rounded
        up to whole MiB (Cinder's unit) and capped at the volume's whole MiB.

        ``blkdiscard --zeroout`` first (the BLKZEROOUT ioctl: the kernel guarantees zeros on read, with the device's
        WRITE ZEROES when it has one, else by writing zero pages itself; measured on the lab's virtio disks: 1 GiB
        in 0.45 s against 6.0 s for dd), then ``dd`` from /dev/zero with O_DIRECT as Cinder does when blkdiscard
        is missing or fails. Both run under ``ionice -c3`` when present. Returns ``(bytes, method)``: the bytes
        made zero (0: nothing ran) and ``"blkdiscard --zeroout"`` or ``"dd"`` (None when nothing ran)."""
        mib = 1024 * 1024
        whole = size_bytes // mib
        count = min(-(-clear_size_bytes // mib), whole) if clear_size_bytes else whole
        if count <= 0:
            return 0, None
        ionice = self.runner.module.get_bin_path("ionice")
        prefix = [ionice, "-c3"] if ionice else []
        if self.runner.module.get_bin_path("blkdiscard"):
            rc, _out, _err = self.runner.run(prefix + ["blkdiscard", "--zeroout", "--offset", "0", "--length",
                                                       str(count * mib), device], check=False)
            if rc == 0:
                return count * mib, "blkdiscard --zeroout"
        self.runner.run(prefix + ["dd", "if=/dev/zero", "of=%s" % device, "bs=1M", "count=%d" % count,
                                  "oflag=direct", "conv=fdatasync"])
        return count * mib, "dd"

    def copy(self, source, target, size_bytes):
        """Copy the first ``size_bytes`` (rounded up to whole MiB) of block device ``source`` onto ``target`` with
        ``dd`` (1 MiB blocks, O_DIRECT both ways, fsync at the end), as Cinder's ``volume_utils.copy_volume`` does
        for its LVM driver. Returns ``"dd"``."""
        mib = 1024 * 1024
        self.runner.run(["dd", "if=%s" % source, "of=%s" % target, "bs=1M", "count=%d" % -(-size_bytes // mib),
                         "iflag=direct", "oflag=direct", "conv=fsync"])
        return "dd"

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

    def activate(self, vg, name):
        self.runner.run(["lvchange", "--activate", "y", "%s/%s" % (vg, name)])

    def settle(self):
        self.runner.run(["udevadm", "settle", "--timeout=30"], check=False)

    # --- snapshots (the snapshot module); Cinder: brick/local_dev/lvm.py create_lv_snapshot, revert, activate_lv ---

    @staticmethod
    def snapshot_args(vg, origin, name, tags, cow_size_bytes=None):
        """``lvcreate --snapshot`` of ``vg/origin`` named ``name``: with ``--size`` (the COW store) for a thick
        origin, without for a thin one (LVM then makes a thin snapshot in the origin's pool, flagged to skip
        activation, as Cinder's ``create_lv_snapshot`` leaves it)."""
        args = ["lvcreate", "--snapshot", "--name", name]
        if cow_size_bytes is not None:
            args += ["--size", "%db" % cow_size_bytes]
        for tag in tags:
            args += ["--addtag", tag]
        return args + ["%s/%s" % (vg, origin)]

    def create_snapshot(self, vg, origin, name, tags, cow_size_bytes=None):
        self.runner.run(self.snapshot_args(vg, origin, name, tags, cow_size_bytes))

    def merge(self, vg, snapshot):
        """``lvconvert --merge``: merge a snapshot into its origin (the snapshot is consumed). Cinder's
        ``revert`` (privsep ``lvconvert``) runs exactly this."""
        self.runner.run(["lvconvert", "--merge", "%s/%s" % (vg, snapshot)])

    def deactivate(self, vg, name):
        self.runner.run(["lvchange", "--activate", "n", "%s/%s" % (vg, name)])

    def set_activation_skip(self, vg, name, skip):
        self.runner.run(["lvchange", "--setactivationskip", "y" if skip else "n", "%s/%s" % (vg, name)])

    @staticmethod
    def change_tags_args(vg, name, add=(), delete=()):
        """The ``lvchange`` with ``--deltag``/``--addtag`` for each tag, or None when both are empty."""
        args = ["lvchange"]
        for tag in delete:
            args += ["--deltag", tag]
        for tag in add:
            args += ["--addtag", tag]
        return args + ["%s/%s" % (vg, name)] if len(args) > 1 else None

    def change_tags(self, vg, name, add=(), delete=()):
        """One ``lvchange`` with ``--deltag``/``--addtag`` for each tag (nothing runs when both are empty)."""
        args = self.change_tags_args(vg, name, add, delete)
        if args:
            self.runner.run(args)


def block_device_size(path):
    """Size in bytes of a block device, read from sysfs (no command); None when it does not exist."""
    try:
        real = os.path.realpath(path)
        with open("/sys/class/block/%s/size" % os.path.basename(real)) as handle:
            return int(handle.read().strip()) * 512
    except (OSError, ValueError):
        return None
