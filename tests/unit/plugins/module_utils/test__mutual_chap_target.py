# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mutual CHAP on the storage side (issue 12): tgt's ``outgoinguser`` in the target file, the outgoing account in
``tgtadm --op show``, ``check_target`` and the attachment decision and apply, over the lab's captured stor1 state
(as test__attachment.py) and ``FakeTgtd`` extended with outgoing accounts.

The ``tgtadm --mode target --op show`` text with an outgoing account is built from tgt 1.0.85's printf formats
(usr/target.c ``tgtadm_target_show``): ``_TAB1 "Account information:\\n"``, one ``_TAB2 "%s\\n"`` per incoming
account, then ``_TAB2 "%s (outgoing)\\n"`` (``_TAB1`` is 4 blanks, ``_TAB2`` 8)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._attachment import (
    ITEM_OPTIONS,
    apply,
    connection_info,
    decide,
    secrets_of,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import chap_username, target_chap_username
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    PENDING_SECRET,
    PENDING_TARGET_SECRET,
    Tgt,
    check_target,
    lun_identity,
    parse_conf,
    parse_show,
    render_conf,
)
from fake_tgtd import FakeTgtd, render_show

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
DB01_IQN = PREFIX + "volume-db01-data"
DB01_CONF = "/etc/tgt/conf.d/ember-volume-db01-data.conf"
DB01_BACKING = "/dev/ember-thin/volume-db01-data"
TARGET_USER = target_chap_username("db01-data")
TARGET_SECRET = "Target_secret_db01"
SHOW = ["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"]


def text(name):
    return (FIXTURES / name).read_text()


DB01_ACL_CONF = text("tgt/conf_db01_acl_id.conf")
CLIENT1 = re.search(r"(?m)^    # initiator-name (\S+)$", DB01_ACL_CONF).group(1)
CLIENT1_ADDR = re.search(r"(?m)^    initiator-address (\S+)$", DB01_ACL_CONF).group(1)
DB01_USER, DB01_SECRET = re.search(r"(?m)^    incominguser (\w+) (\w+)$", DB01_ACL_CONF).groups()
# db01-data's file with mutual CHAP: the capture plus the outgoinguser line the renderer writes.
DB01_MUTUAL_CONF = DB01_ACL_CONF.replace("</target>",
                                         "    outgoinguser %s %s\n</target>" % (TARGET_USER, TARGET_SECRET))


DB01_IDENTITY = dict(zip(("scsi_id", "scsi_sn"), lun_identity("db01-data")))


def with_outgoing(show_text, iqn, user):
    """``show_text`` with ``user`` bound as the outgoing account of ``iqn``, as tgtd prints it."""
    out, current = [], None
    for line in show_text.splitlines():
        match = re.match(r"^Target \d+: (\S+)$", line)
        if match:
            current = match.group(1)
        if current == iqn and line == "    ACL information:":
            out.append("        %s (outgoing)" % user)
        out.append(line)
    return "\n".join(out) + "\n"


def lvm_state():
    return LvmState(parse_vgs(text("lvm/vgs_converged_acl.json")), parse_lvs(text("lvm/lvs_converged_acl.json")))


def item(**kwargs):
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update({"volume": "db01-data", "vg": "ember-thin", "initiators": [CLIENT1],
                "initiator_addresses": [CLIENT1_ADDR]})
    out.update(kwargs)
    return out


def decide_one(it, live, files):
    return decide([it], lvm_state(), live, PREFIX, read=files.get)


class MutualTgtd(FakeTgtd):
    """FakeTgtd whose ``tgt-admin --update`` also creates (when missing) and binds the file's outgoing account, and
    whose ``show`` prints it as tgtd does."""

    def _tgtadm(self, args):
        if args[-2:] == ["--op", "show"] and "target" in args:
            return 0, self.show_text(), ""
        return super()._tgtadm(args)

    def _tgt_admin(self, args):
        out = super()._tgt_admin(args)
        iqn = args[2]
        if args[1] == "--update" and iqn in self.targets and not self.targets[iqn]["sessions"]:
            with open(self.files[iqn]) as handle:
                conf = parse_conf(handle.read())
            if conf.get("target_chap_username"):
                self.accounts.setdefault(conf["target_chap_username"], conf["target_chap_password"])
                self.targets[iqn]["outgoing"] = conf["target_chap_username"]
        return out

    def show_text(self):
        shown = render_show(self.targets)
        for iqn, t in self.targets.items():
            if t.get("outgoing") in self.accounts:
                shown = with_outgoing(shown, iqn, t["outgoing"])
        return shown

    def live(self):
        return parse_show(self.show_text())


# --- the target file ------------------------------------------------------------------------------------------

def test_render_and_parse_round_trip_with_outgoinguser():
    out = render_conf(DB01_IQN, DB01_BACKING, [CLIENT1], DB01_USER, DB01_SECRET, volume="db01-data",
                      addresses=[CLIENT1_ADDR], target_chap_username=TARGET_USER, target_chap_password=TARGET_SECRET,
                      **DB01_IDENTITY)
    assert out == DB01_MUTUAL_CONF
    conf = parse_conf(out)
    assert (conf["chap_username"], conf["chap_password"]) == (DB01_USER, DB01_SECRET)
    assert (conf["target_chap_username"], conf["target_chap_password"]) == (TARGET_USER, TARGET_SECRET)
    # The outgoing line comes after the incoming one, inside the target block.
    lines = out.splitlines()
    assert lines.index("    outgoinguser %s %s" % (TARGET_USER, TARGET_SECRET)) == lines.index("</target>") - 1


def test_render_without_mutual_chap_is_unchanged():
    out = render_conf(DB01_IQN, DB01_BACKING, [CLIENT1], DB01_USER, DB01_SECRET, volume="db01-data",
                      addresses=[CLIENT1_ADDR], **DB01_IDENTITY)
    assert out == DB01_ACL_CONF
    assert "target_chap_username" not in parse_conf(out)


@pytest.mark.parametrize("user, secret", [("bad user", TARGET_SECRET), (TARGET_USER, "a;b"), (TARGET_USER, None),
                                          (TARGET_USER, "")])
def test_render_refuses_an_unsafe_or_missing_outgoing_value(user, secret):
    with pytest.raises(ValueError):
        render_conf(DB01_IQN, DB01_BACKING, [CLIENT1], DB01_USER, DB01_SECRET, addresses=[CLIENT1_ADDR],
                    target_chap_username=user, target_chap_password=secret)


def test_render_keeps_the_pending_target_secret_apart():
    out = render_conf(DB01_IQN, DB01_BACKING, [CLIENT1], DB01_USER, PENDING_SECRET, addresses=[CLIENT1_ADDR],
                      target_chap_username=TARGET_USER, target_chap_password=PENDING_TARGET_SECRET)
    assert "incominguser %s %s\n" % (DB01_USER, PENDING_SECRET) in out
    assert "outgoinguser %s %s\n" % (TARGET_USER, PENDING_TARGET_SECRET) in out
    assert PENDING_SECRET not in PENDING_TARGET_SECRET  # apply() replaces each one on its own


# --- tgtadm --op show -------------------------------------------------------------------------------------------

def test_parse_show_reports_the_outgoing_account_apart():
    live = parse_show(with_outgoing(text("tgt/show_two_targets_acl_id.txt"), DB01_IQN, TARGET_USER))
    db01 = live[DB01_IQN]
    assert db01["accounts"] == [DB01_USER]
    assert db01["outgoing_account"] == TARGET_USER
    assert db01["acl"] == [CLIENT1_ADDR]
    assert "outgoing_account" not in live[PREFIX + "volume-logs01"]


def test_parse_show_outgoing_only():
    # A target with only an outgoing account (bound by hand): no incoming account.
    shown = ("Target 3: %svolume-x\n    System information:\n        Driver: iscsi\n        State: ready\n"
             "    I_T nexus information:\n    LUN information:\n    Account information:\n"
             "        out_user (outgoing)\n    ACL information:\n        198.18.0.21\n" % PREFIX)
    target = parse_show(shown)[PREFIX + "volume-x"]
    assert (target["accounts"], target["outgoing_account"], target["acl"]) == ([], "out_user", ["198.18.0.21"])


# --- check_target ---------------------------------------------------------------------------------------------

@pytest.fixture()
def mutual_live():
    return parse_show(with_outgoing(text("tgt/show_two_targets_acl_id.txt"), DB01_IQN, TARGET_USER))


def test_check_target_exactly_the_outgoing_account(mutual_live):
    target = mutual_live[DB01_IQN]
    assert check_target(target, DB01_USER, DB01_BACKING, [CLIENT1_ADDR], TARGET_USER) == []
    assert check_target(target, DB01_USER, DB01_BACKING, [CLIENT1_ADDR], "other_user") == [
        "the outgoing (mutual CHAP) account bound is %s, not other_user" % TARGET_USER]
    # Without mutual CHAP, an outgoing account bound is wrong too.
    assert check_target(target, DB01_USER, DB01_BACKING, [CLIENT1_ADDR]) == [
        "the outgoing (mutual CHAP) account bound is %s, not none" % TARGET_USER]


def test_check_target_missing_outgoing_account():
    target = parse_show(text("tgt/show_two_targets_acl_id.txt"))[DB01_IQN]
    assert check_target(target, DB01_USER, DB01_BACKING, [CLIENT1_ADDR]) == []
    assert check_target(target, DB01_USER, DB01_BACKING, [CLIENT1_ADDR], TARGET_USER) == [
        "the outgoing (mutual CHAP) account bound is none, not %s" % TARGET_USER]


# --- decide ---------------------------------------------------------------------------------------------------

def test_new_export_with_mutual_chap_generates_the_target_secret_on_apply():
    (act,), errors = decide([item(volume="archive01", initiators=[CLIENT1])], lvm_state(), {}, PREFIX,
                            read=lambda path: None)
    assert errors == []
    assert "outgoinguser" not in act["desired"] and act["mutual_chap"] is False
    (act,), errors = decide([item(volume="archive01", mutual_chap=True)], lvm_state(), {}, PREFIX,
                            read=lambda path: None)
    assert errors == []
    assert act["action"] == "export"
    assert act["target_chap_username"] == target_chap_username("archive01") == chap_username("archive01") + "_target"
    assert act["target_chap_password"] is None and act["target_generated"] is True
    assert "    outgoinguser %s %s\n" % (act["target_chap_username"], PENDING_TARGET_SECRET) in act["desired"]
    info = connection_info(act, "198.18.0.11")
    assert info["target_auth_username"] == act["target_chap_username"]
    assert info["target_auth_password"] == PENDING_SECRET  # the placeholder the consumer's check mode accepts


def test_connection_info_without_mutual_chap_has_no_target_keys(mutual_live):
    (act,), errors = decide_one(item(), parse_show(text("tgt/show_two_targets_acl_id.txt")), {DB01_CONF: DB01_ACL_CONF})
    assert errors == [] and act["action"] == "none"
    assert not any(key.startswith("target_auth") for key in connection_info(act, "198.18.0.11"))


def test_the_target_secret_is_read_back_and_stable(mutual_live):
    (act,), errors = decide_one(item(mutual_chap=True), mutual_live, {DB01_CONF: DB01_MUTUAL_CONF})
    assert errors == []
    assert act["action"] == "none"
    assert (act["target_chap_username"], act["target_chap_password"]) == (TARGET_USER, TARGET_SECRET)
    info = connection_info(act, "198.18.0.11")
    assert (info["target_auth_username"], info["target_auth_password"]) == (TARGET_USER, TARGET_SECRET)
    assert info["auth_password"] == DB01_SECRET
    assert secrets_of([act]) == {DB01_SECRET, TARGET_SECRET}


def test_turning_mutual_chap_on_reloads_and_needs_force_with_sessions(tmp_path):
    live = parse_show(text("tgt/show_two_targets_acl_id.txt"))
    (act,), errors = decide_one(item(mutual_chap=True), live, {DB01_CONF: DB01_ACL_CONF})
    assert errors == []
    assert act["action"] == "update" and act["acl_only"] is False and act["lun_only"] is False
    assert "its mutual CHAP (outgoing) account or secret changes" in act["reason"]
    assert act["sessions"] == [CLIENT1]
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = MutualTgtd(live, files={DB01_IQN: act["conf_path"]})
    with pytest.raises(RuntimeError, match="must be reloaded .*mutual CHAP.* set force: true"):
        apply(act, Tgt(runner), live)
    assert not os.path.exists(act["conf_path"])  # refused before writing


def test_turning_mutual_chap_on_with_force(tmp_path):
    live = parse_show(text("tgt/show_two_targets_acl_id.txt"))
    (act,), errors = decide_one(item(mutual_chap=True), live, {DB01_CONF: DB01_ACL_CONF})
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = MutualTgtd(live, files={DB01_IQN: act["conf_path"]})
    apply(act, Tgt(runner), live, force=True)
    secret = act["target_chap_password"]
    assert len(secret) == 32 and secret != DB01_SECRET
    conf = parse_conf(Path(act["conf_path"]).read_text())
    assert (conf["target_chap_username"], conf["target_chap_password"]) == (TARGET_USER, secret)
    assert stat.S_IMODE(os.stat(act["conf_path"]).st_mode) == 0o600
    # The target goes first, then both accounts (tgt-admin keeps existing ones as they are), then the reload.
    assert runner.calls[0] == ["tgt-admin", "--delete", DB01_IQN, "--force"]
    deleted = [c[-1] for c in runner.calls if c[:6] == ["tgtadm", "--lld", "iscsi", "--mode", "account", "--op"]]
    assert deleted == sorted([DB01_USER, TARGET_USER])
    assert runner.accounts[TARGET_USER] == secret
    assert runner.live()[DB01_IQN]["outgoing_account"] == TARGET_USER
    assert secret in secrets_of([act])


def test_turning_mutual_chap_off_drops_the_outgoing_account(tmp_path, mutual_live):
    (act,), errors = decide_one(item(), mutual_live, {DB01_CONF: DB01_MUTUAL_CONF})
    assert errors == []
    assert act["action"] == "update" and act["mutual_chap"] is False
    assert act["old_target_chap_username"] == TARGET_USER
    assert "outgoinguser" not in act["desired"]
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = MutualTgtd(mutual_live, files={DB01_IQN: act["conf_path"]})
    runner.targets[DB01_IQN]["outgoing"] = TARGET_USER
    runner.accounts[TARGET_USER] = TARGET_SECRET
    apply(act, Tgt(runner), mutual_live, force=True)
    assert TARGET_USER not in runner.accounts
    assert "outgoing_account" not in runner.live()[DB01_IQN]


def test_a_changed_target_secret_is_not_acl_only(mutual_live):
    (act,), errors = decide_one(item(mutual_chap=True, target_chap_password="Another_target_1"), mutual_live,
                                {DB01_CONF: DB01_MUTUAL_CONF})
    assert errors == []
    assert act["action"] == "update" and act["acl_only"] is False
    assert "outgoinguser %s Another_target_1\n" % TARGET_USER in act["desired"]


@pytest.mark.parametrize("kwargs, message", [
    ({"target_chap_username": "tuser"}, r"attachments\[0\]\.target_chap_username: is set but mutual_chap is false"),
    ({"target_chap_password": "Target_secret_1"},
     r"attachments\[0\]\.target_chap_password: is set but mutual_chap is false"),
    ({"mutual_chap": True, "target_chap_username": DB01_USER},
     r"attachments\[0\]\.target_chap_username: %s is also the initiator's CHAP user" % DB01_USER),
    ({"mutual_chap": True, "target_chap_password": DB01_SECRET},
     r"attachments\[0\]\.target_chap_password: equals the initiator's CHAP secret"),
    ({"mutual_chap": True, "target_chap_username": "ember_logs01_5591e8e0"},
     r"attachments\[0\]\.target_chap_username: ember_logs01_5591e8e0 is also bound to target\(s\) %svolume-logs01"
     % re.escape(PREFIX)),
    ({"mutual_chap": True, "target_chap_password": "short"}, r"attachments\[0\]\.target_chap_password: is 5"),
    ({"mutual_chap": True, "target_chap_username": "a b"}, r"attachments\[0\]\.target_chap_username: must be"),
])
def test_refused_mutual_chap_items(kwargs, message):
    live = parse_show(text("tgt/show_two_targets_acl_id.txt"))
    actions, errors = decide_one(item(**kwargs), live, {DB01_CONF: DB01_ACL_CONF})
    assert actions == [] and len(errors) == 1
    assert re.search(message, errors[0]), errors[0]
    assert DB01_SECRET not in errors[0]


def test_a_target_user_bound_as_outgoing_elsewhere_is_refused(mutual_live):
    # tgt accounts are global: another target's outgoing account is taken as well, for either direction.
    mutual_live[PREFIX + "volume-logs01"]["outgoing_account"] = "ember_shared_out"
    dummy, errors = decide_one(item(mutual_chap=True, target_chap_username="ember_shared_out"), mutual_live,
                               {DB01_CONF: DB01_MUTUAL_CONF})
    assert errors and "ember_shared_out is also bound" in errors[0]
    dummy, errors = decide_one(item(chap_username="ember_shared_out"), mutual_live, {DB01_CONF: DB01_MUTUAL_CONF})
    assert errors and "attachments[0].chap_username: ember_shared_out is also bound" in errors[0]


def test_unexport_deletes_the_outgoing_account_too(tmp_path, mutual_live):
    path = tmp_path / "ember-volume-db01-data.conf"
    path.write_text(DB01_MUTUAL_CONF)
    runner = MutualTgtd(mutual_live, files={DB01_IQN: str(path)})
    Tgt(runner).remove_export(DB01_IQN, str(path), runner.live(), force=True)
    deleted = [c[-1] for c in runner.calls if "account" in c]
    assert deleted == [DB01_USER, TARGET_USER]
    assert not path.exists()


def test_secrets_of_masks_both_and_skips_placeholders():
    acts = [{"chap_password": "Initiator_secret_1", "target_chap_password": "Target_secret_12"},
            {"chap_password": PENDING_SECRET, "target_chap_password": PENDING_TARGET_SECRET},
            {"chap_password": None}]
    assert secrets_of(acts) == {"Initiator_secret_1", "Target_secret_12"}
    assert json.dumps(sorted(secrets_of(acts)))
