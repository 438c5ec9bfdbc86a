# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open-iscsi initiator helper (the consumer side), after os-brick's ``ISCSIConnector``.

Login creates the node record for exactly the exported target and portal (``iscsiadm -m node -o new``), sets
CHAP and ``node.startup=automatic`` on it, logs in and waits for the stable device path
``/dev/disk/by-path/ip-<portal>-iscsi-<iqn>-lun-<lun>``. SendTargets discovery is not needed because the
storage node returns the exact target in ``connection_info``; creating the record directly avoids adding every
discovered target of a portal to the node database with automatic startup.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError

__all__ = ["parse_sessions", "parse_nodes", "device_path", "normalize_portal", "Iscsiadm", "NO_RECORDS",
           "mounted_devices", "device_in_use"]

NO_RECORDS = 21  # iscsiadm exit code: "no records found" / "no active sessions"


def normalize_portal(portal, default_port=3260):
    """``198.18.0.11`` -> ``198.18.0.11:3260``; an explicit port is kept; ``fd00::11`` -> ``[fd00::11]:3260``."""
    portal = str(portal).strip()
    if portal.startswith("["):
        return portal if "]:" in portal else "%s:%d" % (portal, default_port)
    if portal.count(":") > 1:  # a bare IPv6 address: iscsiadm shows it as [addr]:port
        return "[%s]:%d" % (portal, default_port)
    if ":" in portal:
        return portal
    return "%s:%d" % (portal, default_port)


def parse_sessions(text):
    """Parse ``iscsiadm -m session``: list of ``{sid, portal, tpgt, target_iqn}``."""
    sessions = []
    for line in text.splitlines():
        match = re.match(r"^\S+:\s+\[(\d+)\]\s+(\S+),(\d+)\s+(\S+)", line.strip())
        if match:
            sessions.append({"sid": int(match.group(1)), "portal": match.group(2), "tpgt": int(match.group(3)),
                             "target_iqn": match.group(4)})
    return sessions


def parse_nodes(text):
    """Parse ``iscsiadm -m node``: list of ``{portal, target_iqn}``."""
    nodes = []
    for line in text.splitlines():
        match = re.match(r"^(\S+),(-?\d+)\s+(\S+)$", line.strip())
        if match:
            nodes.append({"portal": match.group(1), "target_iqn": match.group(3)})
    return nodes


def device_path(portal, target_iqn, lun):
    """Stable udev path of a LUN reached through ``portal``."""
    return "/dev/disk/by-path/ip-%s-iscsi-%s-lun-%d" % (portal, target_iqn, int(lun))


class Iscsiadm:
    """Commands against open-iscsi on the consumer."""

    def __init__(self, runner):
        self.runner = runner

    def sessions(self):
        _rc, out, _err = self.runner.run(["iscsiadm", "-m", "session"], ok_rcs=(0, NO_RECORDS))
        return parse_sessions(out)

    def nodes(self):
        _rc, out, _err = self.runner.run(["iscsiadm", "-m", "node"], ok_rcs=(0, NO_RECORDS))
        return parse_nodes(out)

    def _node(self, target_iqn, portal):
        return ["iscsiadm", "-m", "node", "-T", target_iqn, "-p", portal]

    def login(self, target_iqn, portal, username, password, auth_method="CHAP"):
        node = self._node(target_iqn, portal)
        self.runner.run(node + ["-o", "new"])
        settings = [("node.startup", "automatic"), ("node.session.auth.authmethod", auth_method)]
        if auth_method == "CHAP":
            settings += [("node.session.auth.username", username), ("node.session.auth.password", password)]
        args = node + ["-o", "update"]
        for key, value in settings:
            args += ["-n", key, "-v", value]
        self.runner.run(args)
        # A refused login (CHAP: rc 24, ACL: rc 19/8) must not leave a record that iscsid retries at boot.
        rc, out, err = self.runner.run(node + ["--login"], check=False)
        if rc != 0:
            self.delete_node(target_iqn, portal)
            raise CommandError(node + ["--login"], rc, out, err)

    def logout(self, target_iqn, portal):
        node = self._node(target_iqn, portal)
        self.runner.run(node + ["--logout"], ok_rcs=(0, NO_RECORDS))

    def delete_node(self, target_iqn, portal):
        self.runner.run(self._node(target_iqn, portal) + ["-o", "delete"], ok_rcs=(0, NO_RECORDS))

    def wait_for_device(self, path, timeout):
        """Wait until ``path`` exists (udev creates it after login); returns the real device or None."""
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(path):
                return os.path.realpath(path)
            if time.monotonic() >= deadline:
                return None
            self.runner.run(["udevadm", "settle", "--timeout=5"], check=False)
            time.sleep(0.5)


def mounted_devices():
    """Real paths of block devices that are mounted (from /proc/mounts), with their mount points."""
    mounts = {}
    try:
        with open("/proc/mounts") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0].startswith("/dev/"):
                    mounts.setdefault(os.path.realpath(parts[0]), []).append(parts[1])
    except OSError:
        pass
    return mounts


def device_in_use(real_device):
    """Mount points of ``real_device`` or its partitions, and any device-mapper/LVM holders of it."""
    users = []
    name = os.path.basename(real_device)
    for dev, points in mounted_devices().items():
        base = os.path.basename(dev)
        if base == name or (base.startswith(name) and base[len(name):].isdigit()):
            users.extend(points)
    holders = "/sys/class/block/%s/holders" % name
    if os.path.isdir(holders):
        users.extend("holder:%s" % h for h in sorted(os.listdir(holders)))
    return users
