# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open-iscsi initiator helper (the consumer side), after os-brick's ``ISCSIConnector``.

Login creates the node record for exactly the exported target and portal (``iscsiadm -m node -o new``), sets
CHAP and ``node.startup=automatic`` on it, logs in and waits for the stable device path
``/dev/disk/by-path/ip-<portal>-iscsi-<iqn>-lun-<lun>``. SendTargets discovery is not needed because the
storage node returns the exact target in ``connection_info``; creating the record directly avoids adding every
discovered target of a portal to the node database with automatic startup.

The CHAP secret never goes on a command line (where ``ps`` shows it to every local user): iscsiadm has no way to
read a value from a file or stdin (usr/iscsiadm.c: ``-v`` only), but it keeps each node record as a text file,
``<node db>/nodes/<target>/<address>,<port>,<tpgt>/<iface>`` (usr/idbm.c ``idbm_rec_write_new``), read line by line
as ``name = value`` (``idbm_recinfo_config``, which also sets the password length). So the record is created with
``-o new``, the other settings go through ``-o update``, and the secret is written into the record file directly
(atomically, 0600); ``-o show`` then confirms iscsiadm reads it (it prints a set secret as ``********``). Only when
the record file cannot be found (another node-db layout) is the secret given with ``-v``, and the module warns.
"""

from __future__ import annotations

import glob
import os
import re
import time

from ansible_collections.ember.blockstore.plugins.module_utils._files import write_private
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError

__all__ = ["parse_sessions", "parse_nodes", "device_path", "normalize_portal", "Iscsiadm", "NO_RECORDS", "openers",
           "device_size",
           "mounted_devices", "device_in_use", "parse_record", "record_with_secret", "NODE_DIRS"]

NO_RECORDS = 21  # iscsiadm exit code: "no records found" / "no active sessions"
# open-iscsi's node database: /etc/iscsi on Debian and Ubuntu, /var/lib/iscsi on Fedora, RHEL and SUSE.
NODE_DIRS = ("/etc/iscsi/nodes", "/var/lib/iscsi/nodes")
SECRET_KEY = "node.session.auth.password"
_END_RECORD = "# END RECORD"


def _record_key(line):
    """The parameter name of a record line as ``idbm_recinfo_config`` reads it (up to a blank or '=')."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    return re.split(r"[\s=]", line, maxsplit=1)[0]


def parse_record(text):
    """``{name: value}`` of an open-iscsi record file (or ``iscsiadm -o show`` output), as iscsiadm reads it."""
    values = {}
    for line in text.splitlines():
        key = _record_key(line)
        if key is None:
            continue
        _name, sep, value = line.strip().partition("=")
        if sep:
            values[key] = value.strip()
    return values


def record_with_secret(text, secret):
    """The record ``text`` with exactly one ``node.session.auth.password = <secret>`` line, before ``# END
    RECORD``. ``secret`` must be one word (validated by the caller; checked again here)."""
    if not secret or not re.fullmatch(r"[A-Za-z0-9_]+", secret):
        raise ValueError("a CHAP secret written to a node record is letters, digits or '_'")
    lines = [line for line in text.splitlines() if _record_key(line) != SECRET_KEY]
    entry = "%s = %s" % (SECRET_KEY, secret)
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip().startswith(_END_RECORD):
            lines.insert(index, entry)
            break
    else:
        lines.append(entry)
    return "\n".join(lines) + "\n"


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

    def record_path(self, target_iqn, portal, iface="default", node_dirs=None):
        """The record file of ``target_iqn`` at ``portal`` (``ip:port`` or ``[ipv6]:port``), or None when there
        is not exactly one. ``node_dirs`` defaults to :data:`NODE_DIRS`."""
        host, _sep, port = normalize_portal(portal).rpartition(":")
        host = host[1:-1] if host.startswith("[") else host
        found = {}
        for root in node_dirs or NODE_DIRS:
            base = os.path.join(root, glob.escape(target_iqn))
            # Two layouts: <iqn>/<host>,<port>,<tpgt>/<iface> and, as open-iscsi 2.1.8 writes for `-o new`
            # (measured on the lab), the flat file <iqn>/<host>,<port>.
            paths = glob.glob(os.path.join(base, "%s,%s,*" % (glob.escape(host), port), iface))
            paths += glob.glob(os.path.join(base, "%s,%s" % (glob.escape(host), port)))
            for path in paths:
                if os.path.isfile(path):
                    # One file seen through two roots (one node directory a link to the other) is one record.
                    found.setdefault(os.path.realpath(path), path)
        return next(iter(found.values())) if len(found) == 1 else None

    def set_secret(self, target_iqn, portal, password, node_dirs=None):
        """Put the CHAP secret into the node record without a command line. Returns ``"record"``, or ``"argv"``
        when the record file was not found and ``iscsiadm -o update -v`` had to carry it."""
        node = self._node(target_iqn, portal)
        path = self.record_path(target_iqn, portal, node_dirs=node_dirs)
        if path is not None:
            with open(path) as handle:
                text = handle.read()
            write_private(path, record_with_secret(text, password))
            via = "record"
        else:
            self.runner.run(node + ["-o", "update", "-n", SECRET_KEY, "-v", password])
            via = "argv"
        _rc, out, _err = self.runner.run(node + ["-o", "show"])
        if parse_record(out).get(SECRET_KEY) in (None, "", "<empty>"):
            raise CommandError(node + ["-o", "show"], 1, "", "the CHAP secret is not set in the node record of %s "
                               "at %s after writing it" % (target_iqn, portal), secrets=self.runner.secrets()
                               if hasattr(self.runner, "secrets") else ())
        return via

    def login(self, target_iqn, portal, username, password, auth_method="CHAP", node_dirs=None):
        """Create the node record, set it up and log in; returns how the secret reached the record (see
        :meth:`set_secret`), or None without CHAP."""
        node = self._node(target_iqn, portal)
        self.runner.run(node + ["-o", "new"])
        settings = [("node.startup", "automatic"), ("node.session.auth.authmethod", auth_method)]
        if auth_method == "CHAP":
            settings += [("node.session.auth.username", username)]
        args = node + ["-o", "update"]
        for key, value in settings:
            args += ["-n", key, "-v", value]
        via = None
        try:
            self.runner.run(args)
            if auth_method == "CHAP":
                via = self.set_secret(target_iqn, portal, password, node_dirs=node_dirs)
        except (CommandError, OSError, ValueError):
            self.delete_node(target_iqn, portal)
            raise
        # A refused login (CHAP: rc 24, ACL: rc 19/8) must not leave a record that iscsid retries at boot.
        rc, out, err = self.runner.run(node + ["--login"], check=False)
        if rc != 0:
            self.delete_node(target_iqn, portal)
            raise CommandError(node + ["--login"], rc, out, err,
                               secrets=self.runner.secrets() if hasattr(self.runner, "secrets") else ())
        return via

    def logout(self, target_iqn, portal):
        node = self._node(target_iqn, portal)
        self.runner.run(node + ["--logout"], ok_rcs=(0, NO_RECORDS))

    def rescan(self, target_iqn, portal):
        """Rescan the session(s) of one node (``iscsiadm -m node -T IQN -p PORTAL --rescan``): LUNs a target got
        while logged in appear (the Linux SCSI layer does not map them by itself)."""
        self.runner.run(self._node(target_iqn, portal) + ["--rescan"])

    def wait_for_size(self, real_device, size_bytes, timeout):
        """Wait until ``real_device`` shows at least ``size_bytes`` (the kernel reads the new capacity on a rescan;
        udev may lag); returns the size it shows at the end (None when it cannot be read)."""
        deadline = time.monotonic() + timeout
        while True:
            size = device_size(real_device)
            if (size is not None and size >= size_bytes) or time.monotonic() >= deadline:
                return size
            self.runner.run(["udevadm", "settle", "--timeout=5"], check=False)
            time.sleep(0.5)

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


def device_size(real_device, sys_block="/sys/class/block"):
    """Size in bytes of a kernel block device (``/sys/class/block/<name>/size`` is in 512-byte sectors whatever
    the device's block size), or None when it cannot be read."""
    try:
        with open(os.path.join(sys_block, os.path.basename(real_device), "size")) as handle:
            return int(handle.read().strip()) * 512
    except (OSError, ValueError):
        return None


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
    users.extend(openers(real_device))
    return users


def openers(real_device, proc="/proc"):
    """``open by <command>[<pid>]`` for each process that holds ``real_device`` or one of its partitions open (its
    file descriptors in /proc, as fuser reads them); processes that vanish meanwhile are skipped."""
    name = os.path.basename(real_device)
    found = []
    try:
        pids = sorted((p for p in os.listdir(proc) if p.isdigit()), key=int)
    except OSError:
        return found
    for pid in pids:
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        links = []
        for fd in fds:
            try:
                links.append(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                continue
        if any(link.startswith("/dev/") and (os.path.basename(link) == name or (
                os.path.basename(link).startswith(name) and os.path.basename(link)[len(name):].isdigit()))
               for link in links):
            try:
                with open(os.path.join(proc, pid, "comm")) as handle:
                    comm = handle.read().strip()
            except OSError:
                comm = "?"
            found.append("open by %s[%s]" % (comm, pid))
    return found
