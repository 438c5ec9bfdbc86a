# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tgt target helper: one persistent config file per exported volume, applied with ``tgt-admin``.

As Cinder's ``cinder/volume/targets/tgt.py`` does: the file ``/etc/tgt/conf.d/ember-volume-<name>.conf`` holds
``<target IQN>`` with ``backing-store`` (LUN 1; LUN 0 is the controller), the ACL and ``incominguser`` (CHAP).
The ACL is one ``initiator-address`` line per consumer address; the consumers' IQNs are recorded in
``# initiator-name`` comment lines. Measured in the lab, tgt 1.0.85 (Debian 12) admits a login when the address
*or* the name matches, and ``tgt-admin`` binds address ``ALL`` to a target whose file has no
``initiator-address``: name lines would widen the ACL to anyone presenting the (public) IQN, and a file without
addresses would admit everyone. Binding the consumer's storage address is the strict form tgt offers; CHAP
authenticates on top. Files are root-only (0600) because they hold the CHAP secret.
Only what is in files survives a tgt restart, so the file is written first and then applied with
``tgt-admin --update IQN``; live state is read back from ``tgtadm --mode target --op show``.
"""

from __future__ import annotations

import os
import re
import secrets
import string
import tempfile
import time

from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError

__all__ = ["parse_show", "parse_conf", "render_conf", "generate_secret", "Tgt", "HEADER"]

HEADER = "# Managed by ember.blockstore; changes are overwritten.\n"
_SECRET_ALPHABET = string.ascii_letters + string.digits


def generate_secret(length=16):
    """A CHAP secret of word characters (tgt's parser expects ``\\w``), 12-16 characters for wide initiator
    compatibility (RFC 3720 recommends at least 12)."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for dummy in range(length))


def parse_show(text):
    """Parse ``tgtadm --lld iscsi --mode target --op show`` into ``{iqn: target}``.

    target: ``{tid, state, sessions: [initiator iqn], luns: {lun: {type, backing_store, size}}, accounts: [],
    acl: []}``.
    """
    targets = {}
    target = None
    section = None
    lun = None
    for raw in text.splitlines():
        line = raw.strip()
        match = re.match(r"^Target (\d+): (\S+)$", raw)
        if match:
            target = {"tid": int(match.group(1)), "state": None, "sessions": [], "luns": {}, "accounts": [],
                      "acl": []}
            targets[match.group(2)] = target
            section = None
            continue
        if target is None or not line:
            continue
        if line in ("System information:", "I_T nexus information:", "LUN information:",
                    "Account information:", "ACL information:"):
            section = line[:-1]
            continue
        if section == "System information" and line.startswith("State:"):
            target["state"] = line.split(":", 1)[1].strip()
        elif section == "I_T nexus information" and line.startswith("Initiator:"):
            target["sessions"].append(line.split(":", 1)[1].split()[0])
        elif section == "LUN information":
            if line.startswith("LUN:"):
                lun = int(line.split(":", 1)[1])
                target["luns"][lun] = {"type": None, "backing_store": None, "size": None}
            elif lun is not None and line.startswith("Type:"):
                target["luns"][lun]["type"] = line.split(":", 1)[1].strip()
            elif lun is not None and line.startswith("Backing store path:"):
                path = line.split(":", 1)[1].strip()
                target["luns"][lun]["backing_store"] = None if path == "None" else path
            elif lun is not None and line.startswith("Size:"):
                target["luns"][lun]["size"] = line.split(":", 1)[1].split(",")[0].strip()
        elif section == "Account information":
            target["accounts"].append(line.split()[0])
        elif section == "ACL information":
            target["acl"].append(line)
    return targets


def parse_conf(text):
    """Parse one of our target files:
    ``{iqn, backing_store, initiators: [], addresses: [], chap_username, chap_password}``."""
    conf = {"iqn": None, "backing_store": None, "initiators": [], "addresses": [], "chap_username": None,
            "chap_password": None}
    for raw in text.splitlines():
        line = raw.strip()
        recorded = re.match(r"^#\s*initiator-name\s+(\S+)$", line)
        if recorded:
            conf["initiators"].append(recorded.group(1))
            continue
        if line.startswith("#") or not line:
            continue
        match = re.match(r"^<target\s+(\S+)>$", line)
        if match:
            conf["iqn"] = match.group(1)
            continue
        key, _sep, value = line.partition(" ")
        value = value.strip()
        if key == "backing-store":
            conf["backing_store"] = value
        elif key == "initiator-name":
            conf["initiators"].append(value)
        elif key == "initiator-address":
            conf["addresses"].append(value)
        elif key == "incominguser":
            parts = value.split()
            if len(parts) == 2:
                conf["chap_username"], conf["chap_password"] = parts
    return conf


def render_conf(iqn, backing_store, initiators, chap_username, chap_password, volume=None, addresses=()):
    """The file for one target; deterministic (sorted ACL entries) so an unchanged export rewrites nothing."""
    lines = [HEADER.rstrip("\n")]
    if volume:
        lines.append("# volume: %s" % volume)
    lines.append("<target %s>" % iqn)
    lines.append("    backing-store %s" % backing_store)
    for address in sorted(set(addresses)):
        lines.append("    initiator-address %s" % address)
    for initiator in sorted(set(initiators)):
        # Recorded, not bound: tgt would admit this (public) name from any address.
        lines.append("    # initiator-name %s" % initiator)
    lines.append("    incominguser %s %s" % (chap_username, chap_password))
    lines.append("</target>")
    return "\n".join(lines) + "\n"


def write_private(path, content):
    """Write ``content`` to ``path`` atomically (temp file + fsync + rename), mode 0600."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ember-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Tgt:
    """Commands against the tgt daemon on one host."""

    def __init__(self, runner):
        self.runner = runner

    def show(self):
        _rc, out, _err = self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"])
        return parse_show(out)

    def running(self):
        """Whether tgtd answers (``tgtadm --op show --mode sys``)."""
        rc, _out, _err = self.runner.run(["tgtadm", "--op", "show", "--mode", "sys"], check=False)
        return rc == 0

    def show_if_running(self):
        """Live targets, or ``{}`` when tgtd is not running (nothing can be exported then)."""
        rc, out, _err = self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"],
                                        check=False)
        return parse_show(out) if rc == 0 else {}

    def remove_export(self, iqn, conf_path, live, force=False):
        """Delete the live target (when present), its CHAP account and then its file, so a restart cannot bring
        it back and a later volume of the same name does not meet a stale account."""
        user = None
        if os.path.exists(conf_path):
            with open(conf_path) as handle:
                user = parse_conf(handle.read())["chap_username"]
        if iqn in live:
            self.delete(iqn, force=force)
        if user:
            self.delete_account(user)
        if os.path.exists(conf_path):
            os.unlink(conf_path)

    def delete_account(self, user):
        """Delete a CHAP account from tgtd. Accounts are global and outlive their target: ``tgt-admin`` does not
        replace an existing account, so an old secret would stay in force (measured: login refused with rc 24
        after a volume was deleted and created again). A missing account is not an error."""
        self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "account", "--op", "delete", "--user", user],
                        check=False)

    def set_acl(self, tid, current, desired):
        """Bring a live target's ACL from ``current`` to ``desired`` with ``tgtadm`` bind/unbind, which leaves
        logged-in sessions alone (``tgt-admin --update`` would have to drop them). Names are IQN/EUI/NAA
        entries (``-Q``); anything else is an address (``-I``)."""
        def flag(entry):
            return "-Q" if entry.startswith(("iqn.", "eui.", "naa.")) else "-I"
        base = ["tgtadm", "--lld", "iscsi", "--mode", "target", "--tid", str(tid)]
        for entry in sorted(set(desired) - set(current)):
            self.runner.run(base + ["--op", "bind", flag(entry), entry])
        for entry in sorted(set(current) - set(desired)):
            self.runner.run(base + ["--op", "unbind", flag(entry), entry])

    def update(self, iqn, force=False):
        args = ["tgt-admin", "--update", iqn] + (["--force"] if force else [])
        self.runner.run(args)

    def delete(self, iqn, force=False):
        """``tgt-admin --delete``; ``--force --delete`` can fail silently, so check and retry (Cinder does too)."""
        args = ["tgt-admin", "--delete", iqn] + (["--force"] if force else [])
        for attempt in range(3):
            self.runner.run(args, check=False)
            if iqn not in self.show():
                return
            time.sleep(1 + attempt)
        raise CommandError(args, 1, "", "target %s is still present after tgt-admin --delete" % iqn)
