# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tgt target helper: one persistent config file per exported volume, applied with ``tgt-admin``.

As Cinder's ``cinder/volume/targets/tgt.py`` does: the file ``/etc/tgt/conf.d/ember-volume-<name>.conf`` holds
``<target IQN>`` with ``backing-store`` (LUN 1; LUN 0 is the controller), the ACL and ``incominguser`` (CHAP), and
with mutual CHAP ``outgoinguser`` (the account the target proves itself with; tgt-admin binds it with
``tgtadm --mode account --op bind --outgoing``, one per target).
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

import hashlib
import os
import re
import secrets
import string
import time

from ansible_collections.ember.blockstore.plugins.module_utils._files import write_private
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError

__all__ = ["parse_show", "parse_conf", "render_conf", "generate_secret", "Tgt", "HEADER", "is_managed_conf",
           "ForeignTarget", "SECRET_LENGTH", "write_private", "read_file", "check_target", "PENDING_SECRET",
           "shown_size", "PENDING_TARGET_SECRET", "bound_users", "lun_identity",
           "identity_matches"]

# The project's marker: every target file it writes starts with this line (and names its target).
HEADER = "# Managed by ember.blockstore; changes are overwritten.\n"
_SECRET_ALPHABET = string.ascii_letters + string.digits
# 32 characters of 62 symbols = 32 * log2(62) = 190 bits, above the 128 bits asked for and far above the 96 bits
# below which RFC 7143 (section 12.1.3) wants IPsec. Both ends take up to 255 characters: tgt reads the secret into
# ``char pass[ISCSI_NAME_LEN]`` (256; usr/iscsi/chap.c, usr/iscsi/iscsid.h), open-iscsi keeps it in
# ``AUTH_STR_MAX_LEN`` (256) buffers and node-record values in ``VALUE_MAXVAL`` (256; usr/auth.h, usr/idbm.h).
SECRET_LENGTH = 32
# Every value written into a target file is one word of these characters (validated before; checked again here):
# no blank, no control character, nothing the shell that tgt-admin runs each tgtadm line through would interpret.
# Stands for a secret that apply() generates (check mode and the decision show it; it is never written to tgtd).
PENDING_SECRET = "(generated when applied)"
# The same for the target's own (outgoing, mutual CHAP) secret in a decided file: a different text, so that apply()
# can put a different secret in its place.
PENDING_TARGET_SECRET = "(target secret generated when applied)"
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/%\[\]+=@-]+$")


class ForeignTarget(RuntimeError):
    """A target or target file that does not carry the project's marker: it is never changed or removed."""


def generate_secret(length=SECRET_LENGTH):
    """A CHAP secret of ``length`` random letters and digits (tgt's parser expects word characters): 32 characters
    are 190 bits of entropy from :mod:`secrets` (at least 128 are asked for; RFC 7143 12.1.3 wants 96 or more
    without IPsec), within the 255 characters tgt and open-iscsi accept."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for dummy in range(length))


def lun_identity(volume):
    """``(scsi_id, scsi_sn)`` of a volume's LUN 1: stable across target reloads, tgt restarts and reboots.

    tgt 1.0.85 gives each LUN ``scsi_id`` ``"IET     <tid:04x><lun:04x>"`` and ``scsi_sn`` ``"beaf<tid><lun>"``
    (usr/spc.c ``spc_lu_init``): the tid is the order in which targets were loaded, so a reload or a restart can
    give a LUN another identity, and dm-multipath (which groups paths by WWID) would see another disk. The file
    sets both instead (target-level ``scsi_id``/``scsi_sn`` lines, which tgt-admin applies to the target's
    backing-store LUN with ``tgtadm --op update --mode logicalunit --params scsi_id=...``).

    Both are the first 32 hex digits of SHA-256 over the volume name (names are unique across the storage nodes).
    VPD page 0x83 (``update_vpd_83``) carries the id as a T10 vendor designator and, read as hex digits, as an NAA
    IEEE Registered Extended designator (type 6: the first digit is replaced by 6), which udev's ``scsi_id`` ranks
    first: the WWID (``ID_SERIAL``) is ``36`` followed by the id's last 31 hex digits. 32 characters fit tgt's
    ``SCSI_ID_LEN`` and ``SCSI_SN_LEN`` (36). The serial (VPD 0x80) is the same digits."""
    digest = hashlib.sha256(("ember.blockstore volume %s" % volume).encode("utf-8")).hexdigest()[:32]
    return digest, digest


def read_file(path):
    """The text of ``path``, or None when it does not exist."""
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def is_managed_conf(text, iqn):
    """Whether ``text`` is a target file this project wrote for ``iqn``: it starts with :data:`HEADER` and its
    ``<target>`` is ``iqn``."""
    return bool(text) and text.startswith(HEADER) and parse_conf(text)["iqn"] == iqn


def parse_show(text):
    """Parse ``tgtadm --lld iscsi --mode target --op show`` into ``{iqn: target}``.

    target: ``{tid, state, sessions: [initiator iqn], luns: {lun: {type, backing_store, size[, scsi_id, scsi_sn]}},
    accounts: [],
    acl: [], connections: [{initiator, address}]}`` (``scsi_id``/``scsi_sn`` only when tgtadm prints them;
    ``connections``: one per iSCSI connection of a session, with
    the initiator's IP address as tgt shows it). ``accounts`` are the incoming (CHAP) users; a target with an
    outgoing (mutual CHAP) account also has ``outgoing_account``: tgtd prints it as ``<user> (outgoing)`` after the
    incoming ones (usr/target.c, ``tgtadm_target_show``: ``_TAB2 "%s (outgoing)\n"``), at most one per target.
    """
    targets = {}
    target = None
    section = None
    lun = None
    initiator = None
    for raw in text.splitlines():
        line = raw.strip()
        match = re.match(r"^Target (\d+): (\S+)$", raw)
        if match:
            target = {"tid": int(match.group(1)), "state": None, "sessions": [], "luns": {}, "accounts": [],
                      "acl": [], "connections": []}
            targets[match.group(2)] = target
            section = None
            initiator = None
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
            initiator = line.split(":", 1)[1].split()[0]
            target["sessions"].append(initiator)
        elif section == "I_T nexus information" and line.startswith("IP Address:") and initiator:
            target["connections"].append({"initiator": initiator, "address": line.split(":", 1)[1].strip()})
        elif section == "LUN information":
            if line.startswith("LUN:"):
                lun = int(line.split(":", 1)[1])
                target["luns"][lun] = {"type": None, "backing_store": None, "size": None}
            elif lun is not None and line.startswith("Type:"):
                target["luns"][lun]["type"] = line.split(":", 1)[1].strip()
            elif lun is not None and line.startswith("Backing store path:"):
                path = line.split(":", 1)[1].strip()
                target["luns"][lun]["backing_store"] = None if path == "None" else path
            elif lun is not None and line.startswith(("SCSI ID:", "SCSI SN:")):
                target["luns"][lun]["scsi_id" if line.startswith("SCSI ID:") else "scsi_sn"] = \
                    line.split(":", 1)[1].strip()
            elif lun is not None and line.startswith("Size:"):
                target["luns"][lun]["size"] = line.split(":", 1)[1].split(",")[0].strip()
        elif section == "Account information":
            outgoing = re.match(r"^(\S+) \(outgoing\)$", line)
            if outgoing:
                target["outgoing_account"] = outgoing.group(1)
            else:
                target["accounts"].append(line.split()[0])
        elif section == "ACL information":
            target["acl"].append(line)
    return targets


def parse_conf(text):
    """Parse one of our target files:
    ``{iqn, backing_store, initiators: [], addresses: [], chap_username, chap_password}``, with ``scsi_id`` and
    ``scsi_sn`` lines (:func:`lun_identity`; files written before 0.3.0 have none) also ``scsi_id`` and
    ``scsi_sn``, and with an ``outgoinguser`` line (mutual CHAP) also ``target_chap_username`` and
    ``target_chap_password``."""
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
        elif key in ("scsi_id", "scsi_sn"):
            conf[key] = value
        elif key == "incominguser":
            parts = value.split()
            if len(parts) == 2:
                conf["chap_username"], conf["chap_password"] = parts
        elif key == "outgoinguser":
            parts = value.split()
            if len(parts) == 2:
                conf["target_chap_username"], conf["target_chap_password"] = parts
    return conf


def _safe(value):
    value = str(value)
    if not _SAFE_VALUE.fullmatch(value):
        raise ValueError("refusing to write %r into a tgt target file: only letters, digits and _.:/%%[]+=@- "
                         "are written there" % value)
    return value


def render_conf(iqn, backing_store, initiators, chap_username, chap_password, volume=None, addresses=(),
                target_chap_username=None, target_chap_password=None, scsi_id=None, scsi_sn=None):
    """The file for one target; deterministic (sorted ACL entries) so an unchanged export rewrites nothing.
    Every value must be one word of safe characters (:data:`_SAFE_VALUE`), else ValueError: no value can add a
    line, a directive or a shell command (tgt-admin passes values to ``/bin/sh``).

    With ``target_chap_username`` (mutual CHAP) the file also has ``outgoinguser <user> <secret>``: tgt-admin
    creates that account when it does not exist and binds it with ``--outgoing`` (scripts/tgt-admin,
    ``process_options``). ``scsi_id`` and ``scsi_sn`` (:func:`lun_identity`) become target-level lines that
    tgt-admin applies to the backing-store LUN (``add_backing_direct``)."""
    outgoing = []
    if target_chap_username is not None:
        if not target_chap_password:
            raise ValueError("an outgoinguser line needs the target's secret")
        outgoing = [target_chap_username] + (
            [target_chap_password] if target_chap_password != PENDING_TARGET_SECRET else [])
    for value in [iqn, backing_store, chap_username] + list(initiators) + list(addresses) + (
            [volume] if volume else []) + ([chap_password] if chap_password != PENDING_SECRET else []) + outgoing \
            + [v for v in (scsi_id, scsi_sn) if v is not None]:
        _safe(value)
    lines = [HEADER.rstrip("\n")]
    if volume:
        lines.append("# volume: %s" % volume)
    lines.append("<target %s>" % iqn)
    lines.append("    backing-store %s" % backing_store)
    if scsi_id is not None:
        lines.append("    scsi_id %s" % scsi_id)
    if scsi_sn is not None:
        lines.append("    scsi_sn %s" % scsi_sn)
    for address in sorted(set(addresses)):
        lines.append("    initiator-address %s" % address)
    for initiator in sorted(set(initiators)):
        # Recorded, not bound: tgt would admit this (public) name from any address.
        lines.append("    # initiator-name %s" % initiator)
    lines.append("    incominguser %s %s" % (chap_username, chap_password))
    if target_chap_username is not None:
        lines.append("    outgoinguser %s %s" % (target_chap_username, target_chap_password))
    lines.append("</target>")
    return "\n".join(lines) + "\n"


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

    def portals(self):
        """The portals tgtd listens on (``tgtadm --lld iscsi --op show --mode portal``), e.g. ``0.0.0.0:3260``."""
        _rc, out, _err = self.runner.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "portal"])
        return [match.group(1) for match in re.finditer(r"^Portal:\s+(\S+),\d+\s*$", out, re.MULTILINE)]

    def show_if_running(self):
        """Live targets, or ``{}`` when tgtd is not running (nothing can be exported then)."""
        rc, out, _err = self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"],
                                        check=False)
        return parse_show(out) if rc == 0 else {}

    def remove_export(self, iqn, conf_path, live, force=False, read=read_file):
        """Delete the live target (when present), its CHAP account and then its file, so a restart cannot bring
        it back and a later volume of the same name does not meet a stale account.

        Only a target whose file carries the project's marker (:func:`is_managed_conf`) is removed: a file
        without it, or a live target without a file, raises :class:`ForeignTarget` before any command. The account
        is kept when another target still binds it (tgt accounts are global); so is the outgoing (mutual CHAP)
        account of the file."""
        text = read(conf_path)
        if text is not None and not is_managed_conf(text, iqn):
            raise ForeignTarget("%s is not an ember.blockstore target file for %s (no '%s' header); target and "
                                "file are left alone" % (conf_path, iqn, HEADER.strip()))
        if text is None and iqn in live:
            raise ForeignTarget("live target %s has no file %s: it is not managed by ember.blockstore and is left "
                                "alone" % (iqn, conf_path))
        conf = parse_conf(text) if text else {}
        remaining = {k: v for k, v in live.items() if k != iqn}
        if iqn in live:
            remaining = {k: v for k, v in self.delete(iqn, force=force).items() if k != iqn}
        for user in (conf.get("chap_username"), conf.get("target_chap_username")):
            if user and not any(user in bound_users(t) for t in remaining.values()):
                self.delete_account(user)
        if text is not None:
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
        entries (``-Q``); anything else is an address (``-I``). Entries are unbound before new ones are bound, so
        at no moment does the ACL admit more than before or after (an empty ACL admits nobody in tgtd)."""
        def flag(entry):
            return "-Q" if entry.startswith(("iqn.", "eui.", "naa.")) else "-I"
        base = ["tgtadm", "--lld", "iscsi", "--mode", "target", "--tid", str(tid)]
        for entry in sorted(set(current) - set(desired)):
            self.runner.run(base + ["--op", "unbind", flag(entry), entry])
        for entry in sorted(set(desired) - set(current)):
            self.runner.run(base + ["--op", "bind", flag(entry), entry])

    def add_lun(self, tid, lun, backing_store, identity=None):
        """Add a logical unit to a live target (``tgtadm --op new --mode logicalunit``): logged-in sessions
        stay; initiators see the LUN after a rescan. With ``identity`` (``(scsi_id, scsi_sn)``) the LUN gets it
        before anyone can see it (``--op update --params scsi_id=...,scsi_sn=...``), as tgt-admin does from the
        file's lines."""
        self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "logicalunit", "--op", "new", "--tid", str(tid),
                         "--lun", str(lun), "--backing-store", backing_store])
        if identity:
            self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid",
                             str(tid), "--lun", str(lun), "--params",
                             "scsi_id=%s,scsi_sn=%s" % (_safe(identity[0]), _safe(identity[1]))])

    def refresh_lun_size(self, tid, lun, backing_store):
        """Make a live LUN present its backing store's current size (after ``lvextend``) without dropping the
        target or its sessions: ``tgtadm --op update --mode logicalunit --params online=0,path=<same path>``.
        tgtd opens the backing store once and keeps its size (``Size:`` in ``--op show``); tgt 1.0.85 reopens it
        only through ``path=``, which it takes on an offline LUN only, and sets the LUN online again after it.
        Both parameters go in one request, which tgtd's single management loop handles between two SCSI commands,
        so no command sees the LUN offline; a command already running in a backing-store thread on the old file
        descriptor may fail (docs/design.md, online extend)."""
        self.runner.run(["tgtadm", "--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", str(tid),
                         "--lun", str(lun), "--params", "online=0,path=%s" % backing_store])

    def update(self, iqn, force=False):
        args = ["tgt-admin", "--update", iqn] + (["--force"] if force else [])
        self.runner.run(args)

    def delete(self, iqn, force=False, attempts=3):
        """``tgt-admin --delete``; ``--force --delete`` can fail silently, so check and retry (Cinder does too).
        Returns the live targets after the delete. Without ``force`` tgt-admin skips a target that has
        connections: that ends in CommandError after ``attempts`` tries."""
        args = ["tgt-admin", "--delete", iqn] + (["--force"] if force else [])
        for attempt in range(attempts):
            self.runner.run(args, check=False)
            after = self.show()
            if iqn not in after:
                return after
            if attempt + 1 < attempts:
                time.sleep(1 + attempt)
        raise CommandError(args, 1, "", "target %s is still present after tgt-admin --delete (tgt-admin skips a "
                                        "target with connected initiators unless --force)" % iqn,
                           secrets=_secrets_of(self.runner))


def shown_size(size_bytes):
    """The ``Size:`` text tgtadm shows for a LUN of ``size_bytes`` (``print_disksize`` in tgt's usr/target.c:
    about megabytes, by tgt's own rounding), to compare a live LUN with its backing store."""
    sectors = size_bytes // 512
    return "%d MB" % ((sectors - (sectors // 625 - 974)) // 1950)


def _secrets_of(runner):
    secrets_ = getattr(runner, "secrets", None)
    return secrets_() if callable(secrets_) else ()


def bound_users(target):
    """Every account user a live target (``parse_show`` entry) binds: the incoming ones and the outgoing one."""
    outgoing = target.get("outgoing_account")
    return set(target.get("accounts", [])) | ({outgoing} if outgoing else set())


def check_target(target, user, backing_store, addresses, target_user=None, identity=None):
    """What is wrong with a live target (a ``parse_show`` entry or None) against what its file says: a list of
    problems, empty when LUN 1, the CHAP account binding, the outgoing (mutual CHAP) account (exactly
    ``target_user``, or none when it is None) and the ACL are exactly right, and, with ``identity``
    (``(scsi_id, scsi_sn)``), LUN 1 shows that SCSI identity (when tgtadm prints one)."""
    if target is None:
        return ["the target is not live"]
    problems = []
    backing = (target["luns"].get(1) or {}).get("backing_store")
    if backing != backing_store:
        problems.append("LUN 1 is %s, not %s" % (backing or "missing", backing_store))
    if identity is not None and not identity_matches(target["luns"].get(1), identity):
        lun = target["luns"].get(1) or {}
        problems.append("LUN 1 has SCSI ID %s and serial %s, not %s and %s" % (
            lun.get("scsi_id"), lun.get("scsi_sn"), identity[0], identity[1]))
    if target["accounts"] != [user]:
        problems.append("CHAP accounts bound are %s, not exactly [%s]" % (target["accounts"] or "none", user))
    if target.get("outgoing_account") != target_user:
        problems.append("the outgoing (mutual CHAP) account bound is %s, not %s" % (
            target.get("outgoing_account") or "none", target_user or "none"))
    if sorted(target["acl"]) != sorted(addresses):
        problems.append("ACL is %s, not %s" % (sorted(target["acl"]) or "empty", sorted(addresses)))
    return problems


def identity_matches(lun, identity):
    """Whether a live LUN (a ``parse_show`` LUN entry or None) shows the SCSI identity ``(scsi_id, scsi_sn)``; a
    LUN that is missing, or whose show output has no ``SCSI ID:`` line, is not held against it."""
    if not lun or lun.get("scsi_id") is None:
        return True
    return (lun.get("scsi_id"), lun.get("scsi_sn")) == tuple(identity)
