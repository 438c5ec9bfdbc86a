# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Freeze and thaw the consumer's use of volumes around a group snapshot (the ``freeze`` module).

Cinder leaves quiescing to the hypervisor (Nova's ``quiesce`` through the guest agent, which runs ``fsfreeze``);
the consumer here is the host itself, so this does what the guest agent does:

- **Which devices.** A volume's iSCSI session (``iscsiadm -m session -P 3``: the target ``<prefix>volume-<name>``
  and the ``Attached scsi disk`` of its LUN 1, one per portal) gives its disks; ``lsblk --json --paths`` gives what
  sits on them: a dm-multipath map (type ``mpath``) over the paths is the device the volume is used through, and
  every mount point in the tree below that device (partitions, LVM, dm-crypt) is frozen.
- **Freeze.** ``fsfreeze -f`` of each mount point (the file system flushes and blocks new writes: its on-disk state
  is consistent). A device with nothing mounted is suspended instead when it is a device-mapper map
  (``dmsetup suspend``: outstanding I/O is flushed and new I/O waits); a plain disk with nothing mounted is
  refused (nothing can stop its writers), so are devices that are not found.
- **Safety net.** Before the first freeze a detached watchdog (``setsid -f /bin/sh -c ...``) is started that
  sleeps ``timeout`` seconds and then, if the freeze's state file still exists, thaws and resumes everything and
  renames the file to ``*.expired``: a controller that dies between freeze and thaw leaves the consumer frozen for
  ``timeout`` seconds at most. systemd-run ``--on-active`` would do the same, but needs systemd's bus, which hosts
  without D-Bus (the lab's) lack. The normal thaw removes the state file, which cancels the watchdog.
- **State.** ``<STATE_DIR>/<name>.<token>.json``: what was frozen, when (epoch seconds) and by whom (``owner``);
  the same request again finds it and changes nothing, another owner's freeze of the same name is refused.
- **Thaw.** ``fsfreeze -u`` and ``dmsetup resume`` of what the state file lists (a file system that is not frozen
  any more is fine), then the file is removed; the result says how long the freeze lasted and whether the
  watchdog had to thaw (``expired``).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import time

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    target_iqn,
    validate_volume_name,
)

__all__ = ["STATE_DIR", "new_token", "parse_sessions_p3", "resolve", "FreezeError", "Freezer", "TIMEOUT_MAX"]

STATE_DIR = "/run/ember-blockstore/freeze"
TIMEOUT_MAX = 3600
_TARGET = re.compile(r"^\s*Target:\s*(\S+)")
_LUN = re.compile(r"\bLun:\s*(\d+)")
_DISK = re.compile(r"Attached scsi disk\s+(\S+)")
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")


class FreezeError(Exception):
    """A request that cannot be done; nothing was frozen by it (or what was, was thawed again)."""


def new_token():
    """A random token that names one freeze (its state file and watchdog)."""
    return os.urandom(6).hex()


def parse_sessions_p3(text):
    """``{target iqn: [disk names of LUN 1]}`` from ``iscsiadm -m session -P 3`` (one disk per portal)."""
    out, target, lun = {}, None, None
    for line in (text or "").splitlines():
        match = _TARGET.match(line)
        if match:
            target, lun = match.group(1), None
            continue
        match = _LUN.search(line)
        if match:
            lun = int(match.group(1))
        match = _DISK.search(line)
        if match and target is not None and lun == 1:
            out.setdefault(target, [])
            if match.group(1) not in out[target]:
                out[target].append(match.group(1))
    return out


def _mounts(node):
    found = [m for m in node.get("mountpoints") or [] if m and m.startswith("/")]
    for child in node.get("children") or []:
        found.extend(_mounts(child))
    return found


def resolve(disks_by_volume, lsblk):
    """``(plan, errors)``: per volume the device it is used through and what to freeze on it.

    ``disks_by_volume``: ``{volume or device path: [disk paths]}``; ``lsblk``: the parsed ``lsblk --json --paths
    --output NAME,TYPE,MOUNTPOINTS`` of those disks. ``plan``: ``[{volume, device, type, mount_points, suspend}]``
    (``suspend``: the dm name to suspend when nothing is mounted)."""
    nodes = {dev["name"]: dev for dev in lsblk.get("blockdevices") or []}
    plan, errors = [], []
    for volume, disks in disks_by_volume.items():
        tops = [nodes[d] for d in disks if d in nodes]
        if not tops:
            errors.append("%s: its device%s %s %s not found by lsblk" % (
                volume, "s" if len(disks) > 1 else "", ", ".join(disks), "were" if len(disks) > 1 else "was"))
            continue
        maps = [child for top in tops for child in top.get("children") or [] if child.get("type") == "mpath"]
        node = maps[0] if maps else tops[0]
        mounts = sorted(set(_mounts(node)))
        item = {"volume": volume, "device": node["name"], "type": node.get("type"), "mount_points": mounts,
                "suspend": None}
        if not mounts:
            if node.get("type") == "mpath" or node["name"].startswith("/dev/mapper/"):
                item["suspend"] = os.path.basename(node["name"])
            else:
                errors.append("%s: %s has no mounted file system and is not a device-mapper map, so nothing can "
                              "hold its writers; mount it, use dm-multipath, or set freeze: false on its group "
                              "(a crash-consistent snapshot)" % (volume, node["name"]))
                continue
        plan.append(item)
    return plan, errors


class Freezer:
    """Runs the commands (``runner``: :class:`_runner.Runner`; ``bins``: ``{tool: path}`` of fsfreeze, dmsetup,
    setsid, sh, iscsiadm, lsblk)."""

    def __init__(self, runner, bins, state_dir=None):
        self.runner = runner
        self.bins = bins
        self.state_dir = state_dir or STATE_DIR

    # --- reading ---------------------------------------------------------------------------------------------
    def state_files(self, name):
        active = sorted(glob.glob(os.path.join(self.state_dir, "%s.*.json" % name)))
        expired = sorted(glob.glob(os.path.join(self.state_dir, "%s.*.json.expired" % name)))
        return active, expired

    @staticmethod
    def read(path):
        with open(path) as handle:
            return json.load(handle)

    def disks(self, volumes, target_prefix):
        """``({volume: [disk paths]}, not attached volumes)`` from the iSCSI sessions."""
        rc, out, err = self.runner.run([self.bins["iscsiadm"], "-m", "session", "-P", "3"], check=True,
                                       ok_rcs=(0, 21))
        sessions = parse_sessions_p3(out if rc == 0 else "")
        found, missing = {}, []
        for volume in volumes:
            disks = sessions.get(target_iqn(volume, target_prefix))
            if disks:
                found[volume] = ["/dev/%s" % d for d in disks]
            else:
                missing.append(volume)
        return found, missing

    def lsblk(self, devices):
        rc, out, err = self.runner.run([self.bins["lsblk"], "--json", "--paths", "--output", "NAME,TYPE,MOUNTPOINTS"]
                                       + sorted(devices), check=True)
        try:
            return json.loads(out or "{}")
        except ValueError:
            raise FreezeError("lsblk printed no JSON: %s" % (out or err)[:200]) from None

    # --- changing --------------------------------------------------------------------------------------------
    def watchdog_script(self, path, record):
        lines = ["exec </dev/null >/dev/null 2>&1", "sleep %d" % record["timeout"],
                 "[ -e %s ] || exit 0" % shlex.quote(path)]
        lines += ["%s -u %s" % (shlex.quote(self.bins["fsfreeze"]), shlex.quote(m)) for m in record["mount_points"]]
        lines += ["%s resume %s" % (shlex.quote(self.bins["dmsetup"]), shlex.quote(d)) for d in record["maps"]]
        lines.append("mv -f %s %s" % (shlex.quote(path), shlex.quote(path + ".expired")))
        return "\n".join(lines)

    def freeze(self, name, owner, timeout, plan):
        """Write the state file, start the watchdog, freeze; on a failure thaw what was frozen and raise."""
        token = new_token()
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.state_dir, "%s.%s.json" % (name, token))
        record = {"name": name, "owner": owner, "token": token, "timeout": timeout,
                  "volumes": [p["volume"] for p in plan],
                  "mount_points": sorted({m for p in plan for m in p["mount_points"]}),
                  "maps": sorted({p["suspend"] for p in plan if p["suspend"]}), "frozen_at": time.time()}
        with open(path + ".tmp", "w") as handle:
            json.dump(record, handle)
        os.rename(path + ".tmp", path)
        try:
            self.runner.run([self.bins["setsid"], "-f", self.bins["sh"], "-c", self.watchdog_script(path, record),
                             "ember-blockstore-thaw-%s" % token], check=True)
        except Exception:
            os.unlink(path)
            raise
        done_mounts, done_maps = [], []
        try:
            for mount in record["mount_points"]:
                self.runner.run([self.bins["fsfreeze"], "-f", mount], check=True)
                done_mounts.append(mount)
            for dm in record["maps"]:
                self.runner.run([self.bins["dmsetup"], "suspend", dm], check=True)
                done_maps.append(dm)
        except Exception:
            self._thaw(done_mounts, done_maps)
            os.unlink(path)
            raise
        return record

    def _thaw(self, mounts, maps):
        """``(problems, not_frozen)``: thaw every mount point and resume every map, whatever fails."""
        problems, not_frozen = [], []
        for mount in mounts:
            rc, out, err = self.runner.run([self.bins["fsfreeze"], "-u", mount], check=False)
            if rc != 0:
                # EINVAL: the file system is not frozen (the watchdog or someone thawed it): nothing to do.
                if "Invalid argument" in (err or out or ""):
                    not_frozen.append(mount)
                else:
                    problems.append("fsfreeze -u %s failed (rc=%s): %s" % (mount, rc, (err or out or "").strip()))
        for dm in maps:
            rc, out, err = self.runner.run([self.bins["dmsetup"], "resume", dm], check=False)
            if rc != 0:
                problems.append("dmsetup resume %s failed (rc=%s): %s" % (dm, rc, (err or out or "").strip()))
        return problems, not_frozen

    def thaw(self, path):
        record = self.read(path)
        problems, not_frozen = self._thaw(record.get("mount_points") or [], record.get("maps") or [])
        if not problems:
            os.unlink(path)
        return record, problems, not_frozen


def validate_request(params):
    """The module's options, checked; raises :class:`FreezeError` naming the field and the value."""
    name = params.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise FreezeError("name: %r is not a valid freeze name; use 1-63 lowercase letters, digits, '.' or '-', "
                          "starting and ending with a letter or digit" % (name,))
    timeout = params.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= TIMEOUT_MAX:
        raise FreezeError("timeout: %r is not a whole number of seconds from 1 to %d" % (timeout, TIMEOUT_MAX))
    for index, volume in enumerate(params.get("volumes") or []):
        try:
            validate_volume_name(volume, "volumes[%d]" % index)
        except NameError_ as exc:
            raise FreezeError(str(exc)) from None
    for index, device in enumerate(params.get("devices") or []):
        if not isinstance(device, str) or not device.startswith("/dev/") or ".." in device or any(
                ch.isspace() for ch in device):
            raise FreezeError("devices[%d]: %r is not a block device path under /dev" % (index, device))
