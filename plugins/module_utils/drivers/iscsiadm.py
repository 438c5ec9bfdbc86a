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

Mutual CHAP: the target's user goes into ``node.session.auth.username_in`` (with ``-o update``, it is no secret) and
its secret into ``node.session.auth.password_in``, written into the record file as the initiator's secret is.
With incoming credentials set, iscsid insists on authenticating the target (usr/initiator_common.c
``iscsi_setup_authentication``) and fails the login when the target's CHAP name is not ``username_in``, its reply
does not prove ``password_in``, or it answers with the initiator's own secret (usr/auth.c,
``AUTH_DBG_STATUS_PASSWD_IDENTICAL``). iscsiadm then exits with 19 (a non-retryable login failure; the reason is in
iscsid's log only); a target that refuses the initiator's credentials, or has no outgoing account to answer a
mutual CHAP login with (tgt: "no outgoing credentials configured"), gives 24.
"""

from __future__ import annotations

import glob
import os
import re
import time

from ansible_collections.ember.blockstore.plugins.module_utils._files import write_private
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError

__all__ = ["parse_sessions", "parse_nodes", "device_path", "normalize_portal", "Iscsiadm", "NO_RECORDS", "openers",
           "device_size", "mounted_devices", "device_in_use", "parse_record", "record_with_secret",
           "record_with_values", "NODE_DIRS", "SECRET_KEY", "SECRET_IN_KEY", "USERNAME_IN_KEY", "LOGIN_FATAL",
           "LOGIN_AUTH_FAILED", "is_set", "multipath_map", "MULTIPATH_OPENERS", "multipathd_running",
           "MULTIPATHD_PIDFILE", "SYS_BLOCK", "read_text"]

SYS_BLOCK = "/sys/class/block"
# multipath-tools writes its pid here (libmultipath/defaults.h DEFAULT_PIDFILE).
MULTIPATHD_PIDFILE = "/run/multipathd.pid"

NO_RECORDS = 21  # iscsiadm exit code: "no records found" / "no active sessions"
# open-iscsi's node database: /etc/iscsi on Debian and Ubuntu, /var/lib/iscsi on Fedora, RHEL and SUSE.
NODE_DIRS = ("/etc/iscsi/nodes", "/var/lib/iscsi/nodes")
SECRET_KEY = "node.session.auth.password"
# Mutual CHAP: the credentials the target proves itself with (usr/idbm_fields.h).
USERNAME_IN_KEY = "node.session.auth.username_in"
SECRET_IN_KEY = "node.session.auth.password_in"
LOGIN_FATAL = 19  # ISCSI_ERR_FATAL_LOGIN: also what a target that fails mutual CHAP (or an ACL refusal) gives
LOGIN_AUTH_FAILED = 24  # ISCSI_ERR_LOGIN_AUTH_FAILED: the target refused the initiator's CHAP login
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


def record_with_secret(text, secret, key=SECRET_KEY):
    """The record ``text`` with exactly one ``<key> = <secret>`` line (``node.session.auth.password`` by default),
    before ``# END RECORD``. ``secret`` must be one word (validated by the caller; checked again here)."""
    return record_with_values(text, {key: secret})


def record_with_values(text, values):
    """The record ``text`` with exactly one ``<key> = <value>`` line per item of ``values`` (in their order, before
    ``# END RECORD``), or none for a key whose value is None (iscsiadm then reads it as empty). Each value must be
    one word (validated by the caller; checked again here)."""
    for value in values.values():
        if value is not None and (not value or not re.fullmatch(r"[A-Za-z0-9_]+", value)):
            raise ValueError("a CHAP value written to a node record is letters, digits or '_'")
    lines = [line for line in text.splitlines() if _record_key(line) not in values]
    entries = ["%s = %s" % (key, value) for key, value in values.items() if value is not None]
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip().startswith(_END_RECORD):
            lines[index:index] = entries
            break
    else:
        lines.extend(entries)
    return "\n".join(lines) + "\n"


def is_set(value):
    """Whether a record value (from a record file or ``-o show``, where a set secret is ``********``) is set."""
    return value not in (None, "", "<empty>")


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

    def read_record(self, target_iqn, portal, node_dirs=None):
        """``{name: value}`` of the record file of ``target_iqn`` at ``portal``, or None when it is not found."""
        path = self.record_path(target_iqn, portal, node_dirs=node_dirs)
        if path is None:
            return None
        with open(path) as handle:
            return parse_record(handle.read())

    def set_secret(self, target_iqn, portal, password, node_dirs=None, password_in=None):
        """Put the CHAP secret (and with mutual CHAP the target's, ``password_in``) into the node record without a
        command line. Returns ``"record"``, or ``"argv"`` when the record file was not found and ``iscsiadm -o
        update -v`` had to carry it."""
        return self.set_secrets(target_iqn, portal, dict(
            [(SECRET_KEY, password)] + ([(SECRET_IN_KEY, password_in)] if password_in is not None else [])),
            node_dirs=node_dirs)

    def set_secrets(self, target_iqn, portal, values, node_dirs=None):
        """Write ``values`` (``{SECRET_KEY or SECRET_IN_KEY: secret}``) into the node record file, then check with
        ``-o show`` that iscsiadm reads each as set. See :meth:`set_secret`."""
        node = self._node(target_iqn, portal)
        path = self.record_path(target_iqn, portal, node_dirs=node_dirs)
        if path is not None:
            with open(path) as handle:
                text = handle.read()
            write_private(path, record_with_values(text, values))
            via = "record"
        else:
            args = node + ["-o", "update"]
            for key, value in values.items():
                args += ["-n", key, "-v", value]
            self.runner.run(args)
            via = "argv"
        _rc, out, _err = self.runner.run(node + ["-o", "show"])
        shown = parse_record(out)
        for key in values:
            if not is_set(shown.get(key)):
                raise CommandError(node + ["-o", "show"], 1, "", "the CHAP secret %sis not set in the node record "
                                   "of %s at %s after writing it" % ("of the target (mutual CHAP) "
                                                                     if key == SECRET_IN_KEY else "",
                                                                     target_iqn, portal),
                                   secrets=self.runner.secrets() if hasattr(self.runner, "secrets") else ())
        return via

    def set_target_auth(self, target_iqn, portal, username_in, password_in, node_dirs=None):
        """Set (or, with None, clear) the mutual CHAP credentials of an existing node record: ``username_in`` with
        ``-o update``, ``password_in`` into the record file (:meth:`set_secrets`); a clear sets both empty with
        ``-o update`` (no secret on the line). A session that is logged in keeps the credentials it logged in with:
        these apply from its next login. Returns how the secret reached the record (None for a clear)."""
        node = self._node(target_iqn, portal)
        if username_in is None:
            self.runner.run(node + ["-o", "update", "-n", USERNAME_IN_KEY, "-v", "", "-n", SECRET_IN_KEY, "-v", ""])
            return None
        self.runner.run(node + ["-o", "update", "-n", USERNAME_IN_KEY, "-v", username_in])
        return self.set_secrets(target_iqn, portal, {SECRET_IN_KEY: password_in}, node_dirs=node_dirs)

    def login(self, target_iqn, portal, username, password, auth_method="CHAP", node_dirs=None, username_in=None,
              password_in=None, settings_extra=()):
        """Create the node record, set it up and log in; returns how the secret reached the record (see
        :meth:`set_secret`), or None without CHAP. With ``username_in`` and ``password_in`` (mutual CHAP) the
        record also holds the target's credentials, and a login the target fails says so. ``settings_extra``:
        more ``(key, value)`` node settings (no secrets), e.g. the session's replacement timeout under
        dm-multipath."""
        node = self._node(target_iqn, portal)
        mutual = auth_method == "CHAP" and username_in is not None
        self.runner.run(node + ["-o", "new"])
        settings = [("node.startup", "automatic"), ("node.session.auth.authmethod", auth_method)]
        if auth_method == "CHAP":
            settings += [("node.session.auth.username", username)]
        if mutual:
            settings += [(USERNAME_IN_KEY, username_in)]
        settings += list(settings_extra)
        args = node + ["-o", "update"]
        for key, value in settings:
            args += ["-n", key, "-v", value]
        via = None
        try:
            self.runner.run(args)
            if auth_method == "CHAP":
                via = self.set_secret(target_iqn, portal, password, node_dirs=node_dirs,
                                      password_in=password_in if mutual else None)
        except (CommandError, OSError, ValueError):
            self.delete_node(target_iqn, portal)
            raise
        # A refused login (CHAP: rc 24, ACL: rc 19/8) must not leave a record that iscsid retries at boot.
        rc, out, err = self.runner.run(node + ["--login"], check=False)
        if rc != 0:
            self.delete_node(target_iqn, portal)
            raise CommandError(node + ["--login"], rc, out, err, msg=_mutual_failure(target_iqn, portal, rc, out, err)
                               if mutual else None,
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

    def flush_multipath(self, name, force=False):
        """Remove the dm-multipath map ``name`` before its paths are logged out (``multipath -f``; os-brick does
        the same), so no map is left queueing I/O for paths that are gone. ``force`` first turns queueing off
        (``multipathd disablequeueing map``): I/O still in the map fails instead of waiting for a path that will
        not come back. CommandError when the map stays (it is in use), unless ``force``: then the paths are logged
        out anyway and the map, left without paths, fails its I/O (queueing is off) until multipathd removes it."""
        if force:
            self.runner.run(["multipathd", "disablequeueing", "map", name], check=False)
        self.runner.run(["multipath", "-f", name], check=not force)

    def create_multipath(self, device):
        """Make (or reload) the dm-multipath map of ``device``'s WWID over all its paths (``multipath <device>``;
        os-brick asks multipathd the same way when a map does not appear by itself). Its exit code is not
        checked: the caller waits for the map and says what to check when it does not come."""
        self.runner.run(["multipath", device], check=False)

    def resize_multipath(self, name):
        """Grow the dm-multipath map ``name`` to its paths' new size (``multipathd resize map``) after they were
        rescanned (online extend)."""
        self.runner.run(["multipathd", "resize", "map", name])

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


def read_text(path):
    """The stripped text of a small file (a sysfs attribute), or None when it cannot be read."""
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def multipath_map(real_devices, sys_block=SYS_BLOCK):
    """The dm-multipath map that holds the devices ``real_devices`` (``/dev/sdX``; None entries are skipped), from
    sysfs: a holder ``dm-N`` of one of them whose ``dm/uuid`` starts with ``mpath-``. Returns ``{name, dm,
    device: /dev/mapper/<name>, real_device: /dev/dm-N, slaves: [sdX...], complete}`` (``complete``: every given
    device is one of its paths) or None when no map holds any of them."""
    names = [os.path.basename(d) for d in real_devices if d]
    for name in names:
        for holder in sorted(_listdir(os.path.join(sys_block, name, "holders"))):
            uuid = read_text(os.path.join(sys_block, holder, "dm", "uuid")) or ""
            map_name = read_text(os.path.join(sys_block, holder, "dm", "name"))
            if not uuid.startswith("mpath-") or not map_name:
                continue
            slaves = sorted(_listdir(os.path.join(sys_block, holder, "slaves")))
            return {"name": map_name, "dm": holder, "device": "/dev/mapper/%s" % map_name,
                    "real_device": "/dev/%s" % holder, "slaves": slaves,
                    "complete": all(n in slaves for n in names)}
    return None


def multipathd_running(pidfile=MULTIPATHD_PIDFILE, proc="/proc"):
    """Whether multipathd runs: its pid file names a live process."""
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return os.path.exists(os.path.join(proc, str(pid)))


def device_size(real_device, sys_block=SYS_BLOCK):
    """Size in bytes of a kernel block device (``/sys/class/block/<name>/size`` is in 512-byte sectors whatever
    the device's block size), or None when it cannot be read."""
    try:
        with open(os.path.join(sys_block, os.path.basename(real_device), "size")) as handle:
            return int(handle.read().strip()) * 512
    except (OSError, ValueError):
        return None


def _mutual_failure(target_iqn, portal, rc, out, err):
    """The message of a refused mutual CHAP login, or None (the command's own) for other failures."""
    said = (err or out or "").strip()
    if rc == LOGIN_FATAL:
        return ("mutual CHAP authentication of target %s at %s failed: iscsiadm --login exited %d, which is what "
                "open-iscsi gives when the target's CHAP reply does not prove target_auth_password for "
                "target_auth_username (or reuses the initiator's secret), and also when the target's ACL refuses "
                "this host; iscsid's log (journalctl -u iscsid: 'Login authentication failed with target') says "
                "which. The node record was deleted. %s" % (target_iqn, portal, rc, said)).strip()
    if rc == LOGIN_AUTH_FAILED:
        return ("mutual CHAP login to target %s at %s failed: the target refused it (iscsiadm rc %d): wrong "
                "auth_username/auth_password, or the target has no outgoing account to authenticate itself with "
                "(mutual_chap is off on its attachment). The node record was deleted. %s"
                % (target_iqn, portal, rc, said)).strip()
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


# multipathd keeps every path of its maps open (the path checker): not a user of a path.
MULTIPATH_OPENERS = ("multipathd",)


def device_in_use(real_device, ignore_holders=(), ignore_openers=()):
    """Mount points of ``real_device`` or its partitions, and any device-mapper/LVM holders of it (except the
    names in ``ignore_holders``: the dm-multipath map of a path, whose own users are checked instead) and the
    processes that have it open (except those whose command is in ``ignore_openers``: multipathd for a path of a
    map, :data:`MULTIPATH_OPENERS`)."""
    users = []
    name = os.path.basename(real_device)
    for dev, points in mounted_devices().items():
        base = os.path.basename(dev)
        if base == name or (base.startswith(name) and base[len(name):].isdigit()):
            users.extend(points)
    # Holders of the disk and of each partition (LVM or device-mapper on a partition holds the partition only).
    for dev in [name] + sorted(p for p in _listdir("/sys/class/block/%s" % name)
                               if p.startswith(name) and p[len(name):].isdigit()):
        users.extend("holder:%s" % h for h in sorted(_listdir("/sys/class/block/%s/holders" % dev))
                     if h not in ignore_holders)
    users.extend(openers(real_device, ignore=ignore_openers))
    return users


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def openers(real_device, proc="/proc", ignore=()):
    """``open by <command>[<pid>]`` for each process that holds ``real_device`` or one of its partitions open (its
    file descriptors in /proc, as fuser reads them), except processes whose command is in ``ignore``; processes
    that vanish meanwhile are skipped."""
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
            if comm not in ignore:
                found.append("open by %s[%s]" % (comm, pid))
    return found
