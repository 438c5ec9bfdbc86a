# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for ``_runner.Runner`` under ``drivers.tgt.Tgt`` that keeps the state of a tgtd as tgt 1.0.85 does
(read from tgt's sources: usr/target.c, scripts/tgt-admin) so that orders of commands can be checked for what
they leave behind, not only for the commands themselves:

- accounts are global; ``--mode account --op delete`` also unbinds the account from every target;
- ``tgt-admin --delete``/``--update`` skip a target with connections unless ``--force``;
- ``tgt-admin --update`` of a target creates it from its file: LUN 1, the CHAP account (kept as it is when an
  account of that user already exists) bound before the ACL, ``ALL`` when the file has no ``initiator-address``.

``skip_update`` makes tgt-admin skip every target (as when it finds it in use) and ``lose_account`` makes
``--update`` create the target without binding its account (a failure that must be caught by the check after).
"""

from __future__ import annotations

import copy
import re

from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    lun_identity,
    parse_conf,
    parse_show,
    shown_size,
)

SHOW = ["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"]


def with_identity(name, content):
    """A capture as this version writes and loads it: target files carry ``scsi_id``/``scsi_sn`` after the
    backing store, and the live LUN 1 of each target shows them (the captures predate the lines: tgt's
    tid-derived defaults). The raw captures (:func:`raw`) are the upgrade case."""
    if name.startswith("tgt/conf_"):
        volume = re.search(r"^# volume: (\S+)$", content, re.MULTILINE).group(1)
        scsi_id, scsi_sn = lun_identity(volume)
        return re.sub(r"^(    backing-store \S+\n)", r"\g<1>    scsi_id %s\n    scsi_sn %s\n" % (scsi_id, scsi_sn),
                      content, flags=re.MULTILINE)
    if name.startswith("tgt/show_"):
        out, volume, lun = [], None, None
        for line in content.splitlines(keepends=True):
            match = re.match(r"^Target \d+: \S+:volume-(\S+)$", line)
            if match:
                volume = match.group(1)
            lun_match = re.match(r"^ +LUN: (\d+)$", line)
            if lun_match:
                lun = int(lun_match.group(1))
            if volume and lun == 1 and re.match(r"^ +SCSI (ID|SN):", line):
                identity = dict(zip(("ID", "SN"), lun_identity(volume)))
                line = re.sub(r"(SCSI (ID|SN)): .*", lambda m, ids=identity: "%s: %s" % (m.group(1), ids[m.group(2)]),
                              line)
            out.append(line)
        return "".join(out)
    return content


def render_show(targets):
    """``tgtadm --mode target --op show`` text for ``{iqn: target}`` (the parts ``parse_show`` reads)."""
    lines = []
    for iqn, t in sorted(targets.items(), key=lambda kv: kv[1]["tid"]):
        lines += ["Target %d: %s" % (t["tid"], iqn), "    System information:", "        Driver: iscsi",
                  "        State: %s" % (t.get("state") or "ready"), "    I_T nexus information:"]
        for n, initiator in enumerate(t["sessions"], 1):
            lines += ["        I_T nexus: %d" % n, "            Initiator: %s alias: x" % initiator,
                      "            Connection: 0"]
        lines.append("    LUN information:")
        for lun, info in sorted(t["luns"].items()):
            lines += ["        LUN: %d" % lun, "            Type: %s" % (info.get("type") or "disk")]
            shown = [("ID", "scsi_id"), ("SN", "scsi_sn")]
            lines += ["            SCSI %s: %s" % (label, info[key]) for label, key in shown if key in info]
            lines += ["            Size: %s, Block size: 512" % (info.get("size") or "0 MB"),
                      "            Backing store path: %s" % (info.get("backing_store") or "None")]
        lines.append("    Account information:")
        lines += ["        %s" % a for a in t["accounts"]]
        lines.append("    ACL information:")
        lines += ["        %s" % a for a in t["acl"]]
    return "\n".join(lines) + ("\n" if lines else "")


class FakeTgtd:
    """Records every command (``calls``, ``kwargs``) and answers as tgtd + tgt-admin would."""

    def __init__(self, live=None, accounts=None, files=None, skip_update=False, lose_account=False, sizes=None):
        self.targets = copy.deepcopy(live or {})
        # Global accounts: {user: secret}; the bound ones of the given targets exist with an unknown secret.
        self.accounts = dict(accounts or {})
        for t in self.targets.values():
            for user in t["accounts"]:
                self.accounts.setdefault(user, "?")
        self.files = files or {}  # {iqn: path of its target file}
        self.skip_update = skip_update
        self.lose_account = lose_account
        self.sizes = sizes or {}  # {backing store: bytes}: what a (re)opened LUN reads
        self.calls = []
        self.kwargs = []
        self.module = None
        self.history = []  # the live targets after every command: what tgtd would admit at each moment

    # -- the Runner interface --
    def run(self, args, check=True, ok_rcs=(0,), data=None):
        args = list(args)
        self.calls.append(args)
        self.kwargs.append({k: v for k, v in (("check", check),) if v is not True})
        if args[:1] == ["tgtadm"]:
            out = self._tgtadm(args)
        elif args[:1] == ["tgt-admin"]:
            out = self._tgt_admin(args)
        else:
            raise AssertionError("unexpected command %r" % args)
        self.history.append(copy.deepcopy(self.targets))
        return out

    def _opt(self, args, name):
        return args[args.index(name) + 1] if name in args else None

    def _by_tid(self, tid):
        for iqn, t in self.targets.items():
            if t["tid"] == int(tid):
                return iqn, t
        raise AssertionError("no target with tid %s" % tid)

    def _tgtadm(self, args):
        mode, op = self._opt(args, "--mode"), self._opt(args, "--op")
        if mode == "target" and op == "show":
            return 0, render_show(self.targets), ""
        if mode == "target" and op in ("bind", "unbind"):
            _iqn, t = self._by_tid(self._opt(args, "--tid"))
            entry = args[-1]
            if op == "bind" and entry not in t["acl"]:
                t["acl"].append(entry)
            elif op == "unbind":
                if entry not in t["acl"]:
                    return 22, "", "tgtadm: this access control rule does not exist"
                t["acl"].remove(entry)
            return 0, "", ""
        if mode == "logicalunit" and op == "new":
            _iqn, t = self._by_tid(self._opt(args, "--tid"))
            lun = int(self._opt(args, "--lun"))
            if lun in t["luns"]:
                return 22, "", "tgtadm: this logical unit number already exists"
            t["luns"][lun] = {"type": "disk", "backing_store": self._opt(args, "--backing-store")}
            return 0, "", ""
        if mode == "logicalunit" and op == "update":
            # tgt 1.0.85 lu_config(): parameters in order; path= reopens the backing store (its current size) and
            # is refused on an online LUN; online=0/1 switch the LUN.
            _iqn, t = self._by_tid(self._opt(args, "--tid"))
            lu = t["luns"][int(self._opt(args, "--lun"))]
            for param in self._opt(args, "--params").split(","):
                key, _sep, value = param.partition("=")
                if key == "online":
                    lu["online"] = value == "1"
                elif key == "path":
                    if lu.get("online", True):
                        return 22, "", "tgtadm: invalid request"
                    lu.update(backing_store=value, size=shown_size(self.sizes[value]), online=True)
                elif key in ("scsi_id", "scsi_sn"):
                    lu[key] = value
                else:
                    raise AssertionError("unexpected parameter %r" % param)
            return 0, "", ""
        if mode == "account" and op == "delete":
            user = self._opt(args, "--user")
            if user not in self.accounts:
                return 22, "", "tgtadm: can't find the account"
            del self.accounts[user]
            for t in self.targets.values():
                if user in t["accounts"]:
                    t["accounts"].remove(user)
            return 0, "", ""
        raise AssertionError("unexpected tgtadm command %r" % args)

    def _tgt_admin(self, args):
        verb, iqn = args[1], args[2]
        force = "--force" in args
        target = self.targets.get(iqn)
        in_use = bool(target and target["sessions"])
        if verb == "--delete":
            if target is None:
                return 0, "# Target with name %s does not exist!\n" % iqn, ""
            if (in_use and not force) or self.skip_update:
                return 0, "# Target with tid %d (%s) is in use, it won't be deleted.\n" % (target["tid"], iqn), ""
            del self.targets[iqn]
            return 0, "", ""
        if verb == "--update":
            if self.skip_update or (in_use and not force):
                return 0, "# Target %s is in use, it won't be updated.\n" % iqn, ""
            with open(self.files[iqn]) as handle:
                conf = parse_conf(handle.read())
            tid = target["tid"] if target else max([t["tid"] for t in self.targets.values()] + [0]) + 1
            user, secret = conf["chap_username"], conf["chap_password"]
            self.accounts.setdefault(user, secret)  # an existing account is kept as it is
            self.targets[iqn] = {
                "tid": tid, "state": "ready", "sessions": [],
                "luns": {0: {"type": "controller", "backing_store": None, "size": None},
                         1: dict({"type": "disk", "backing_store": conf["backing_store"], "size": "1074 MB"},
                                 **{k: conf[k] for k in ("scsi_id", "scsi_sn") if conf.get(k)})},
                "accounts": [] if self.lose_account else [user],
                "acl": list(conf["addresses"]) or ["ALL"],
            }
            return 0, "", ""
        raise AssertionError("unexpected tgt-admin command %r" % args)

    # -- helpers for the tests --
    def live(self):
        return parse_show(render_show(self.targets))
