# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_attachment.decide`` (the attachment module's pure decision) over state captured on the lab's stor1 after
the converge run: LVM (``lvs_converged_acl.json``), live targets (``show_two_targets_acl.txt``: db01-data and
logs01 exported to client1, ACL = client1's storage address only) and db01-data's target file
(``conf_db01_acl.conf``: the address as ``initiator-address``, client1's IQN as a ``# initiator-name`` comment).
Target files are injected through ``read``; the values they hold are read from the raw fixture text.

The captures of the previous, name-only version (``conf_db01.conf`` with a real ``initiator-name`` line and no
``initiator-address`` line, ``show_two_targets.txt`` whose live ACL has tgt-admin's ``ALL`` and the IQN) are the
upgrade case. ``apply`` is run against ``Tgt`` over a runner that records the commands, or over ``FakeTgtd``
(fake_tgtd.py), which also keeps tgtd's state so that what an order of commands leaves behind can be checked."""

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
)
from ansible_collections.ember.blockstore.plugins.module_utils._converge import attachment_items
from ansible_collections.ember.blockstore.plugins.module_utils._naming import chap_username
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    PENDING_SECRET,
    Tgt,
    lun_identity,
    parse_conf,
    parse_show,
    render_conf,
)
from fake_tgtd import FakeTgtd, with_identity

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"


def raw(name):
    return (FIXTURES / name).read_text()


def text(name):
    return with_identity(name, raw(name))


def captured(name, pattern):
    """The groups of the first line of fixture ``name`` that matches ``pattern`` (read without the parsers)."""
    match = re.search(pattern, text(name), re.MULTILINE)
    if match is None:
        raise LookupError("%s: no line matches %r" % (name, pattern))
    return match.groups()


# client1 in the address-only captures: its IQN recorded in conf_db01_acl.conf, its storage address the ACL.
(CLIENT1,) = captured("tgt/conf_db01_acl.conf", r"^    # initiator-name (\S+)$")
(CLIENT1_ADDR,) = captured("tgt/conf_db01_acl.conf", r"^    initiator-address (\S+)$")
DB01_USER, DB01_SECRET = captured("tgt/conf_db01_acl.conf", r"^    incominguser (\w+) (\w+)$")
CLIENT2 = "iqn.1993-08.org.debian:01:9263f289471f"
CLIENT2_ADDR = "198.18.0.22"
DB01_IQN = PREFIX + "volume-db01-data"
DB01_CONF = "/etc/tgt/conf.d/ember-volume-db01-data.conf"
DB01_BACKING = "/dev/ember-thin/volume-db01-data"
# The name-only version's captures (conf_db01.conf, show_two_targets.txt, lvs_converged.json).
(OLD_CLIENT1,) = captured("tgt/conf_db01.conf", r"^    initiator-name (\S+)$")
OLD_USER, OLD_SECRET = captured("tgt/conf_db01.conf", r"^    incominguser (\w+) (\w+)$")


def lvm_state(edit=None, which="converged_acl"):
    data = json.loads(text("lvm/lvs_%s.json" % which))
    if edit:
        edit(data["report"][0]["lv"])
    return LvmState(parse_vgs(text("lvm/vgs_%s.json" % which)), parse_lvs(json.dumps(data)))


def files(mapping):
    """A ``read`` function over ``{path: text}``; None (no such file) for any other path."""
    return mapping.get


def item(**kwargs):
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update(kwargs)
    return out


@pytest.fixture(scope="module")
def state():
    return lvm_state()


@pytest.fixture()
def live():
    return parse_show(text("tgt/show_two_targets_acl.txt"))


@pytest.fixture(scope="module")
def db01_conf():
    return text("tgt/conf_db01_acl.conf")


@pytest.fixture(scope="module")
def old_state():
    return lvm_state(which="converged")


@pytest.fixture()
def old_live():
    return parse_show(text("tgt/show_two_targets.txt"))


@pytest.fixture(scope="module")
def old_db01_conf():
    return text("tgt/conf_db01.conf")


def db01(**kwargs):
    return item(**dict({"volume": "db01-data", "vg": "ember-thin", "initiators": [CLIENT1],
                        "initiator_addresses": [CLIENT1_ADDR]}, **kwargs))


class RecordingRunner:
    """Stands in for ``_runner.Runner`` under ``Tgt``: records ``run(args, **kwargs)`` (the args in ``calls``,
    the keyword arguments in ``kwargs``); ``tgtadm --op show`` prints ``show``."""

    def __init__(self, show=""):
        self.calls = []
        self.kwargs = []
        self.show = show

    def run(self, args, **kwargs):
        self.calls.append(list(args))
        self.kwargs.append(kwargs)
        if args[-2:] == ["--op", "show"]:
            return 0, self.show, ""
        return 0, "", ""


def acl_command(tid, op, flag, entry):
    return ["tgtadm", "--lld", "iscsi", "--mode", "target", "--tid", str(tid), "--op", op, flag, entry]


def account_delete(user):
    return ["tgtadm", "--lld", "iscsi", "--mode", "account", "--op", "delete", "--user", user]


SHOW = ["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"]
LOGS01_IQN = PREFIX + "volume-logs01"
LOGS01_CONF = "/etc/tgt/conf.d/ember-volume-logs01.conf"
# logs01's file was not captured: the one the module would have written for the live target.
LOGS01_TEXT = render_conf(LOGS01_IQN, "/dev/ember-thick/volume-logs01", [CLIENT1], "ember_logs01_5591e8e0",
                          "Logs01SecretX9k2", volume="logs01", addresses=[CLIENT1_ADDR],
                          **dict(zip(("scsi_id", "scsi_sn"), lun_identity("logs01"))))


NO_FILES = files({})


def decide_one(it, state, live, read=NO_FILES, **kwargs):
    return decide([it], state, live, PREFIX, read=read, **kwargs)


# --- present -----------------------------------------------------------------------------------------------------

def test_unchanged_export_is_none(state, live, db01_conf):
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["action"] == "none"
    assert act["write_file"] is False
    assert act["desired"] == db01_conf
    assert act["target_iqn"] == DB01_IQN
    assert act["conf_path"] == DB01_CONF
    assert act["backing_store"] == DB01_BACKING
    assert act["chap_username"] == DB01_USER
    assert act["chap_password"] == DB01_SECRET
    assert act["generated"] is False
    assert act["initiators"] == [CLIENT1]
    assert act["initiator_addresses"] == [CLIENT1_ADDR]
    assert act["sessions"] == [CLIENT1]  # client1 is logged in (I_T nexus)
    assert act["tid"] == 1
    assert act["live_acl"] == [CLIENT1_ADDR]  # the address only: the IQN is not bound
    assert act["acl_only"] is True  # LUN 1, account and secret are right: an ACL change would be done live


def test_unchanged_export_applies_nothing(state, live, db01_conf):
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    runner = RecordingRunner()
    apply(act, Tgt(runner), live)
    assert runner.calls == []


def test_new_export(state):
    (act,), errors = decide_one(db01(), state, {})
    assert errors == []
    assert act["action"] == "export"
    assert act["write_file"] is True
    assert act["generated"] is True
    assert act["chap_password"] is None
    assert act["chap_username"] == chap_username("db01-data") == DB01_USER
    assert act["sessions"] == []
    assert (act["acl_only"], act["tid"], act["live_acl"]) == (False, None, [])
    conf = parse_conf(act["desired"])
    assert (conf["iqn"], conf["backing_store"], conf["initiators"], conf["addresses"]) == (
        DB01_IQN, DB01_BACKING, [CLIENT1], [CLIENT1_ADDR])
    # The secret is a placeholder until apply() generates it; the placeholder is never a valid credential.
    assert "    incominguser %s %s\n" % (chap_username("db01-data"), PENDING_SECRET) in act["desired"]
    assert (conf["chap_username"], conf["chap_password"]) == (None, None)


def test_new_export_deletes_a_stale_account_before_tgt_admin_update(tmp_path, state):
    # An account of an earlier volume of the same name may have outlived its target (measured: rc 24 at login):
    # it is deleted right before tgt-admin --update, so the new file's secret is the one in force.
    (act,), dummy = decide_one(db01(), state, {})
    act["conf_path"] = str(tmp_path / "conf.d" / "ember-volume-db01-data.conf")
    runner = RecordingRunner(show=text("tgt/show_two_targets_acl.txt"))
    apply(act, Tgt(runner), {})
    assert runner.calls == [account_delete(DB01_USER), ["tgt-admin", "--update", DB01_IQN], SHOW]
    assert runner.kwargs == [{"check": False}, {}, {}]
    written = parse_conf(Path(act["conf_path"]).read_text())
    assert (written["chap_username"], written["chap_password"]) == (DB01_USER, act["chap_password"])
    assert written["chap_password"] != PENDING_SECRET


def test_file_differs_is_update(state, live, db01_conf):
    # A hand-edited file (comment removed) while the live target is right: rewrite the file.
    edited = db01_conf.replace("# volume: db01-data\n", "")
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: edited}))
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert act["desired"] == db01_conf
    assert act["acl_only"] is True


def test_new_initiator_is_update_and_reuses_the_secret(state, live, db01_conf):
    (act,), errors = decide_one(db01(initiators=[CLIENT2, CLIENT1], initiator_addresses=[CLIENT2_ADDR, CLIENT1_ADDR]),
                                state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert act["initiators"] == sorted([CLIENT1, CLIENT2])
    assert act["initiator_addresses"] == [CLIENT1_ADDR, CLIENT2_ADDR]
    assert act["chap_password"] == DB01_SECRET  # read back from the root-only file
    assert act["chap_username"] == DB01_USER
    assert act["generated"] is False
    conf = parse_conf(act["desired"])
    assert conf["initiators"] == sorted([CLIENT1, CLIENT2])
    assert conf["addresses"] == [CLIENT1_ADDR, CLIENT2_ADDR]
    assert conf["chap_password"] == DB01_SECRET
    assert (act["acl_only"], act["tid"], act["live_acl"]) == (True, 1, [CLIENT1_ADDR])


def test_new_consumer_is_bound_live_keeping_the_sessions(tmp_path, state, live, db01_conf):
    # client1 is logged in; adding client2 binds its address (not its IQN) without tgt-admin --update (no force
    # needed); the IQN is recorded in the file.
    (act,), dummy = decide_one(db01(initiators=[CLIENT1, CLIENT2], initiator_addresses=[CLIENT1_ADDR, CLIENT2_ADDR]),
                               state, live, files({DB01_CONF: db01_conf}))
    assert act["sessions"] == [CLIENT1]
    act["conf_path"] = str(tmp_path / "conf.d" / "ember-volume-db01-data.conf")
    runner = FakeTgtd(live)
    apply(act, Tgt(runner), live, force=False)
    # Bound live, then read back and checked (LUN 1, the account, exactly the ACL).
    assert runner.calls == [acl_command(1, "bind", "-I", CLIENT2_ADDR), SHOW]
    assert act["desired_acl"] == [CLIENT1_ADDR, CLIENT2_ADDR]
    assert runner.live()[DB01_IQN]["acl"] == [CLIENT1_ADDR, CLIENT2_ADDR]
    assert runner.live()[DB01_IQN]["sessions"] == [CLIENT1]
    assert Path(act["conf_path"]).read_text() == act["desired"]
    assert "    # initiator-name %s\n" % CLIENT2 in act["desired"]
    assert parse_conf(act["desired"])["initiators"] == sorted([CLIENT1, CLIENT2])
    assert stat.S_IMODE(os.stat(act["conf_path"]).st_mode) == 0o600


def test_live_target_missing_after_tgt_restart_is_update(state, db01_conf):
    # The file is right but tgtd has no such target (e.g. it was restarted before the LV was active): reload it.
    (act,), errors = decide_one(db01(), state, {}, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is False
    assert act["chap_password"] == DB01_SECRET
    assert act["sessions"] == []
    assert (act["acl_only"], act["tid"], act["live_acl"]) == (False, None, [])


def test_live_target_missing_is_reloaded_with_tgt_admin(state, db01_conf):
    # The account (which outlives the target) is deleted first, so tgt-admin creates it with the file's secret.
    (act,), dummy = decide_one(db01(), state, {}, files({DB01_CONF: db01_conf}))
    runner = RecordingRunner(show=text("tgt/show_two_targets_acl.txt"))
    apply(act, Tgt(runner), {})
    assert runner.calls == [account_delete(DB01_USER), ["tgt-admin", "--update", DB01_IQN], SHOW]
    assert runner.kwargs[0] == {"check": False}  # a missing account is not an error
    assert runner.kwargs[1] == {}  # a failed tgt-admin --update raises


def test_live_target_without_file_is_a_clash(state, live):
    # A live target with the volume's IQN but no file of ours is not the project's: never changed (issue 7).
    actions, errors = decide_one(db01(), state, live)
    assert actions == []
    assert errors == ["attachments[0].volume: live target %s (tid 1) is not managed by ember.blockstore (no %s); "
                      "it clashes with volume db01-data and is never changed or removed" % (DB01_IQN, DB01_CONF)]


def test_live_account_differs_is_update(state, old_live):
    # A file written with the hashed CHAP user while tgtd still has the old account ember_db01_data.
    user = chap_username("db01-data")
    conf = render_conf(DB01_IQN, DB01_BACKING, [OLD_CLIENT1], user, OLD_SECRET, volume="db01-data",
                       addresses=[CLIENT1_ADDR], **dict(zip(("scsi_id", "scsi_sn"), lun_identity("db01-data"))))
    (act,), errors = decide_one(db01(initiators=[OLD_CLIENT1]), state, old_live, files({DB01_CONF: conf}))
    assert errors == []
    assert old_live[DB01_IQN]["accounts"] == [OLD_USER]
    assert act["chap_username"] == user
    assert act["action"] == "update"
    assert act["write_file"] is False
    assert act["acl_only"] is False


def test_live_acl_differs_is_update(state, live, db01_conf):
    live[DB01_IQN]["acl"] = live[DB01_IQN]["acl"] + [CLIENT2]  # someone bound another initiator with tgtadm
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"], act["acl_only"]) == ("update", False, True)
    runner = FakeTgtd(live)
    apply(act, Tgt(runner), live)
    assert runner.calls == [acl_command(1, "unbind", "-Q", CLIENT2), SHOW]


@pytest.mark.parametrize("acl", [
    ["ALL", CLIENT1_ADDR],  # tgt-admin's ALL is still bound next to the address
    ["ALL", CLIENT1_ADDR, CLIENT1],  # ... and the name, as the address-and-name version left it
    [CLIENT1_ADDR, CLIENT1],  # a name entry admits any host presenting the IQN
    ["ALL", CLIENT1],  # the name-only ACL
    [CLIENT1],  # no address at all
    ["198.18.0.0/24"],  # another address
    [],  # nothing bound
])
def test_live_acl_must_be_exactly_the_addresses(state, live, db01_conf, acl):
    live[DB01_IQN]["acl"] = acl
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"], act["acl_only"]) == ("update", False, True)
    assert act["live_acl"] == acl


def test_live_acl_with_all_and_the_name_is_unbound(state, live, db01_conf):
    live[DB01_IQN]["acl"] = ["ALL", CLIENT1_ADDR, CLIENT1]
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    runner = FakeTgtd(live)
    apply(act, Tgt(runner), live)
    assert runner.calls == [acl_command(1, "unbind", "-I", "ALL"), acl_command(1, "unbind", "-Q", CLIENT1), SHOW]
    assert act["desired_acl"] == [CLIENT1_ADDR]


def test_live_backing_store_differs_is_update(state, live, db01_conf):
    live[DB01_IQN]["luns"][1]["backing_store"] = "/dev/ember-thin/volume-other"
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"], act["acl_only"]) == ("update", False, False)


def test_live_backing_store_differs_needs_force_with_sessions(state, live, db01_conf):
    live[DB01_IQN]["luns"][1]["backing_store"] = "/dev/ember-thin/volume-other"
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    runner = RecordingRunner()
    with pytest.raises(RuntimeError, match=r"must be reloaded \(LUN 1 is backed by /dev/ember-thin/volume-other, "
                                           r"not /dev/ember-thin/volume-db01-data\) but has logged-in initiators"):
        apply(act, Tgt(runner), live)
    assert runner.calls == []


def test_live_target_without_lun1_is_update(state, live, db01_conf):
    del live[DB01_IQN]["luns"][1]
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert act["action"] == "update"
    assert act["acl_only"] is False


def test_live_target_without_lun1_gets_it_added_live_keeping_sessions(state, live, db01_conf):
    # tgtd loaded the target at boot before its LV was active: the target, account and ACL are right, LUN 1 is
    # missing and the consumer is logged in. The LUN is added live; nothing is reloaded, no session drops.
    del live[DB01_IQN]["luns"][1]
    assert live[DB01_IQN]["sessions"]
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert (act["lun_only"], act["write_file"]) == (True, False)
    runner = FakeTgtd(live)
    apply(act, Tgt(runner), live)
    tid = live[DB01_IQN]["tid"]
    scsi_id, scsi_sn = lun_identity("db01-data")
    assert runner.calls == [["tgtadm", "--lld", "iscsi", "--mode", "logicalunit", "--op", "new", "--tid", str(tid),
                             "--lun", "1", "--backing-store", "/dev/ember-thin/volume-db01-data"],
                            ["tgtadm", "--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", str(tid),
                             "--lun", "1", "--params", "scsi_id=%s,scsi_sn=%s" % (scsi_id, scsi_sn)], SHOW]
    assert (runner.targets[DB01_IQN]["luns"][1]["scsi_id"], runner.targets[DB01_IQN]["luns"][1]["scsi_sn"]) == (
        scsi_id, scsi_sn)
    assert runner.targets[DB01_IQN]["luns"][1]["backing_store"] == "/dev/ember-thin/volume-db01-data"
    assert runner.targets[DB01_IQN]["sessions"] == live[DB01_IQN]["sessions"]


def test_live_target_without_lun1_and_another_acl_is_reloaded(state, live, db01_conf):
    # Not only the LUN differs: the live-add path is not taken, and with sessions the reload needs force.
    del live[DB01_IQN]["luns"][1]
    live[DB01_IQN]["acl"] = ["ALL"]
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert act["lun_only"] is False
    with pytest.raises(RuntimeError, match=r"must be reloaded \(LUN 1 is missing, its ACL changes\)"):
        apply(act, Tgt(RecordingRunner()), live)


def db01_sized(size_bytes):
    """The captured LVM state with db01-data's LV at ``size_bytes`` (extended or shrunk behind tgtd's back)."""
    def resize(lvs):
        for lv in lvs:
            if lv["lv_name"] == "volume-db01-data":
                lv["lv_size"] = str(size_bytes)
    return lvm_state(resize)


def test_extended_volume_gets_its_lun_size_refreshed_live_keeping_sessions(live, db01_conf):
    # db01-data was extended to 2 GiB while exported: tgtd still shows the size it read at open (1074 MB). The LUN
    # is reopened live in one request (online=0,path=...), the session stays, and the size is checked after.
    state = db01_sized(2 * 2**30)
    assert live[DB01_IQN]["luns"][1]["size"] == "1074 MB" and live[DB01_IQN]["sessions"]
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert (act["action"], act["refresh_size"], act["acl_only"], act["lun_size"]) == ("update", True, True, "2147 MB")
    runner = FakeTgtd(live, sizes={DB01_BACKING: 2 * 2**30})
    apply(act, Tgt(runner), live)
    tid = str(live[DB01_IQN]["tid"])
    assert runner.calls[0] == ["tgtadm", "--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", tid,
                               "--lun", "1", "--params", "online=0,path=" + DB01_BACKING]
    assert runner.targets[DB01_IQN]["luns"][1]["size"] == "2147 MB"
    assert runner.targets[DB01_IQN]["sessions"] == live[DB01_IQN]["sessions"]
    assert not any(call[:1] == ["tgt-admin"] for call in runner.calls)
    # The same LV size as tgtd shows: nothing to do.
    (act,), errors = decide_one(db01(), lvm_state(), live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["refresh_size"]) == ("none", False)


def test_a_lun_bigger_than_its_lv_is_never_refreshed_smaller(live, db01_conf):
    (act,), _errors = decide_one(db01(), db01_sized(512 * 2**20), live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["refresh_size"]) == ("none", False)


def test_a_refresh_that_does_not_take_fails_and_says_to_detach(live, db01_conf):
    (act,), _errors = decide_one(db01(), db01_sized(2 * 2**30), live, files({DB01_CONF: db01_conf}))
    # tgtd reopened a device that still has the old size (the LV was not extended after all).
    runner = FakeTgtd(live, sizes={DB01_BACKING: 2**30})
    with pytest.raises(RuntimeError, match=r"LUN 1 shows 1074 MB after the live size refresh, not 2147 MB .*detach"):
        apply(act, Tgt(runner), live)


# --- upgrade from the name-only version ------------------------------------------------------------------------

def test_upgrade_from_name_only_acl_is_an_acl_only_update(old_state, old_live, old_db01_conf):
    # The old file has no initiator-address line and tgt-admin bound ALL; the account and secret stay.
    (act,), errors = decide_one(db01(initiators=[OLD_CLIENT1]), old_state, old_live,
                                files({DB01_CONF: old_db01_conf}))
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert act["acl_only"] is True
    assert (act["chap_username"], act["chap_password"], act["generated"]) == (OLD_USER, OLD_SECRET, False)
    assert (act["tid"], act["live_acl"]) == (1, ["ALL", OLD_CLIENT1])
    assert act["sessions"] == [OLD_CLIENT1]
    # The new file is the old one plus the address line, with the name line turned into a comment.
    assert act["desired"] == old_db01_conf.replace(
        "    initiator-name %s\n" % OLD_CLIENT1,
        "    initiator-address %s\n    # initiator-name %s\n" % (CLIENT1_ADDR, OLD_CLIENT1))
    conf = parse_conf(act["desired"])
    assert (conf["addresses"], conf["initiators"]) == ([CLIENT1_ADDR], [OLD_CLIENT1])


def test_upgrade_apply_binds_the_address_and_unbinds_all(tmp_path, old_state, old_live, old_db01_conf):
    (act,), dummy = decide_one(db01(initiators=[OLD_CLIENT1]), old_state, old_live, files({DB01_CONF: old_db01_conf}))
    act["conf_path"] = str(tmp_path / "conf.d" / "ember-volume-db01-data.conf")
    runner = FakeTgtd(old_live)
    apply(act, Tgt(runner), old_live, force=False)  # client1 is logged in: no force needed, no reload
    # tgt-admin's ALL and the name entry are unbound first (the ACL only narrows: empty admits nobody), then the
    # address is bound; no account change; the target is read back.
    assert runner.calls == [acl_command(1, "unbind", "-I", "ALL"), acl_command(1, "unbind", "-Q", OLD_CLIENT1),
                            acl_command(1, "bind", "-I", CLIENT1_ADDR), SHOW]
    assert act["desired_acl"] == [CLIENT1_ADDR]
    assert act["chap_password"] == OLD_SECRET
    written = Path(act["conf_path"]).read_text()
    assert written == act["desired"]
    assert parse_conf(written)["addresses"] == [CLIENT1_ADDR]
    assert parse_conf(written)["initiators"] == [OLD_CLIENT1]
    assert "    # initiator-name %s\n" % OLD_CLIENT1 in written
    assert "\n    initiator-name" not in written
    assert stat.S_IMODE(os.stat(act["conf_path"]).st_mode) == 0o600


def test_a_live_only_target_is_not_taken_over(old_state, old_live):
    # No file: the target is not the project's (every version wrote its file first), so it is a clash.
    actions, errors = decide_one(db01(initiators=[OLD_CLIENT1]), old_state, old_live)
    assert actions == []
    assert "is not managed by ember.blockstore" in errors[0]


def test_given_chap_password_wins_over_the_file(state, live, db01_conf):
    (act,), errors = decide_one(db01(chap_password="NewSecret_1234"), state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["chap_password"] == "NewSecret_1234"
    assert act["generated"] is False
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert "    incominguser %s NewSecret_1234\n" % DB01_USER in act["desired"]


def test_changed_chap_password_is_not_an_acl_only_update(state, live, db01_conf):
    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234"), state, live, files({DB01_CONF: db01_conf}))
    assert act["action"] == "update"
    assert act["acl_only"] is False


def test_changed_chap_password_reloads_the_target(tmp_path, state, live, db01_conf):
    # The live account still has the old secret and tgt-admin would keep it: it is deleted right before the
    # reload, which creates it again from the file.
    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234"), state, live, files({DB01_CONF: db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = FakeTgtd(live, files={DB01_IQN: act["conf_path"]})
    apply(act, Tgt(runner), live, force=True)
    # Never weaker than before: the target goes first (nobody logs in to a target that does not exist), then its
    # account, then tgt-admin creates both from the file; the result is read back.
    assert runner.calls == [["tgt-admin", "--delete", DB01_IQN, "--force"], SHOW, account_delete(DB01_USER),
                            ["tgt-admin", "--update", DB01_IQN, "--force"], SHOW]
    assert runner.kwargs[0] == {"check": False}
    assert runner.kwargs[2] == {"check": False}
    assert parse_conf(Path(act["conf_path"]).read_text())["chap_password"] == "NewSecret_1234"
    assert runner.accounts[DB01_USER] == "NewSecret_1234"
    after = runner.live()[DB01_IQN]
    assert (after["accounts"], after["acl"]) == ([DB01_USER], [CLIENT1_ADDR])


def test_changed_chap_password_and_new_consumer_is_not_acl_only(state, live, db01_conf):
    # The ACL change alone could be done live; the secret that differs from the file's must not be lost to it.
    assert parse_conf(db01_conf)["chap_password"] != "NewSecret_1234"
    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234", initiators=[CLIENT1, CLIENT2],
                                    initiator_addresses=[CLIENT1_ADDR, CLIENT2_ADDR]),
                               state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"], act["acl_only"]) == ("update", True, False)
    assert (act["chap_username"], act["chap_password"], act["generated"]) == (DB01_USER, "NewSecret_1234", False)


def test_given_chap_password_equal_to_the_file_with_new_consumer_is_acl_only(state, live, db01_conf):
    (act,), dummy = decide_one(db01(chap_password=DB01_SECRET, initiators=[CLIENT1, CLIENT2],
                                    initiator_addresses=[CLIENT1_ADDR, CLIENT2_ADDR]),
                               state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"], act["acl_only"]) == ("update", True, True)


def test_changed_chap_password_with_sessions_is_refused_before_any_command(tmp_path, state, live, db01_conf):
    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234"), state, live, files({DB01_CONF: db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = RecordingRunner(show=text("tgt/show_two_targets_acl.txt"))
    with pytest.raises(RuntimeError, match=r"must be reloaded \(its file changes, its CHAP account or secret "
                                           r"changes\) but has logged-in initiators"):
        apply(act, Tgt(runner), live)
    assert runner.calls == []  # the live account is not deleted when the reload is refused


def test_changed_chap_password_refused_then_forced_reloads(tmp_path, state, live, db01_conf):
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    conf_path.write_text(db01_conf)

    def read(path):
        return conf_path.read_text() if path == DB01_CONF else None

    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234"), state, live, read)
    act["conf_path"] = str(conf_path)
    with pytest.raises(RuntimeError, match="or set force: true"):
        apply(act, Tgt(RecordingRunner()), live)
    # As the message says: the same run with force: true reloads the target with the new secret.
    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234"), state, live, read)
    act["conf_path"] = str(conf_path)
    runner = FakeTgtd(live, files={DB01_IQN: str(conf_path)})
    apply(act, Tgt(runner), live, force=True)
    assert runner.calls == [["tgt-admin", "--delete", DB01_IQN, "--force"], SHOW, account_delete(DB01_USER),
                            ["tgt-admin", "--update", DB01_IQN, "--force"], SHOW]


def test_given_chap_username_wins_over_the_file(state, live, db01_conf):
    (act,), dummy = decide_one(db01(chap_username="db_user"), state, live, files({DB01_CONF: db01_conf}))
    assert act["chap_username"] == "db_user"
    assert act["chap_password"] == DB01_SECRET
    assert act["action"] == "update"
    assert act["acl_only"] is False  # tgtd has another account: the target is reloaded


def test_given_credentials_equal_to_the_file_are_none(state, live, db01_conf):
    (act,), dummy = decide_one(db01(chap_username=DB01_USER, chap_password=DB01_SECRET), state, live,
                               files({DB01_CONF: db01_conf}))
    assert act["action"] == "none"


def test_duplicate_initiators_are_collapsed(state, live, db01_conf):
    (act,), dummy = decide_one(db01(initiators=[CLIENT1, CLIENT1]), state, live, files({DB01_CONF: db01_conf}))
    assert act["initiators"] == [CLIENT1]
    assert act["action"] == "none"


def test_duplicate_addresses_are_collapsed(state, live, db01_conf):
    (act,), dummy = decide_one(db01(initiator_addresses=[CLIENT1_ADDR, CLIENT1_ADDR]), state, live,
                               files({DB01_CONF: db01_conf}))
    assert act["initiator_addresses"] == [CLIENT1_ADDR]
    assert act["action"] == "none"


def test_addresses_equal_after_normalising_are_one_entry(state):
    (act,), dummy = decide_one(db01(initiator_addresses=["2001:DB8::15", "2001:db8::15", "2001:db8:0::15"]), state, {})
    assert act["initiator_addresses"] == ["2001:db8::15"]
    assert act["desired"].count("initiator-address") == 1


@pytest.mark.parametrize(("given", "normalised", "networks"), [
    ("198.18.0.21", "198.18.0.21", False),
    ("198.18.0.21/32", "198.18.0.21", False),  # a /32 is the host
    ("2001:DB8::15", "2001:db8::15", False),
    ("2001:db8:0:0::15", "2001:db8::15", False),
    ("2001:db8::15/128", "2001:db8::15", False),
    ("fe80::15%eth1", "fe80::15%eth1", False),  # a link-local address with its interface
    ("198.18.0.0/24", "198.18.0.0/24", True),  # networks: only when asked for, at most /24 and /64
    ("198.18.0.128/25", "198.18.0.128/25", True),
    ("2001:db8::/64", "2001:db8::/64", True),
])
def test_address_or_cidr_is_accepted_and_normalised(state, given, normalised, networks):
    (act,), errors = decide_one(db01(initiator_addresses=[given]), state, {}, allow_networks=networks)
    assert errors == []
    assert act["initiator_addresses"] == [normalised]
    assert "    initiator-address %s\n" % normalised in act["desired"]
    assert parse_conf(act["desired"])["addresses"] == [normalised]


def test_addresses_are_sorted(state):
    (act,), dummy = decide_one(db01(initiator_addresses=[CLIENT2_ADDR, "198.18.0.0/24", CLIENT1_ADDR]), state, {},
                               allow_networks=True)
    assert act["initiator_addresses"] == sorted(["198.18.0.0/24", CLIENT1_ADDR, CLIENT2_ADDR])
    assert parse_conf(act["desired"])["addresses"] == sorted(["198.18.0.0/24", CLIENT1_ADDR, CLIENT2_ADDR])


def test_items_from_converge_are_unchanged_on_the_converged_lab(state, live, db01_conf):
    """The role's items (``_converge.attachment_items`` with client1's blockstore_storage_ip) against the state
    captured after the run that wrote them: nothing to do for db01-data; logs01's file was not captured."""
    plan = {"volumes": [
        {"name": "db01-data", "state": "present", "action": "none", "host": "stor1", "vg": "ember-thin",
         "attachments": ["client1"]},
        {"name": "logs01", "state": "present", "action": "none", "host": "stor1", "vg": "ember-thick",
         "attachments": ["client1"]},
    ]}
    items = [item(**i) for i in attachment_items(plan, "stor1", {"client1": CLIENT1},
                                                 addresses={"client1": CLIENT1_ADDR})]
    actions, errors = decide(items, state, live, PREFIX, read=files({DB01_CONF: db01_conf, LOGS01_CONF: LOGS01_TEXT}))
    assert errors == []
    assert [(a["volume"], a["action"], a["write_file"]) for a in actions] == [
        ("db01-data", "none", False), ("logs01", "none", False)]
    # Without logs01's file, its live target is not the project's: a clash, nothing is changed.
    actions, errors = decide(items, state, live, PREFIX, read=files({DB01_CONF: db01_conf}))
    assert [a["volume"] for a in actions] == ["db01-data"]
    assert errors == ["attachments[1].volume: live target %s (tid 2) is not managed by ember.blockstore (no %s); "
                      "it clashes with volume logs01 and is never changed or removed" % (LOGS01_IQN, LOGS01_CONF)]


def test_read_is_asked_for_the_volume_conf_path(state):
    asked = []
    decide_one(db01(), state, {}, read=asked.append)
    assert asked == [DB01_CONF]


def test_thick_volume_backing_store(state, live):
    (act,), errors = decide_one(item(volume="logs01", vg="ember-thick", initiators=[CLIENT1],
                                     initiator_addresses=[CLIENT1_ADDR]), state, live,
                                files({LOGS01_CONF: LOGS01_TEXT.replace("    # initiator-name", "    #initiator")}))
    assert errors == []
    assert act["backing_store"] == "/dev/ember-thick/volume-logs01"
    assert act["action"] == "update"  # live (show_two_targets_acl), the file differs
    assert (act["tid"], act["live_acl"]) == (2, [CLIENT1_ADDR])


# --- absent ------------------------------------------------------------------------------------------------------

def test_absent_unexports_a_live_target(state, live):
    (act,), errors = decide_one(item(volume="logs01", vg="ember-thick", state="absent"), state, live,
                                files({LOGS01_CONF: LOGS01_TEXT}))
    assert errors == []
    assert act["action"] == "unexport"
    assert act["target_iqn"] == PREFIX + "volume-logs01"
    assert act["sessions"] == [CLIENT1]
    assert act["initiators"] == []
    assert act["initiator_addresses"] == []


def test_absent_apply_deletes_target_account_and_file(tmp_path, state, live, db01_conf):
    (act,), dummy = decide_one(db01(state="absent"), state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["sessions"]) == ("unexport", [CLIENT1])
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    conf_path.write_text(db01_conf)
    act["conf_path"] = str(conf_path)
    show = text("tgt/show_two_targets_acl.txt")
    after = show[show.index("Target 2: "):]  # what tgtadm shows once db01-data (target 1) is deleted
    assert DB01_IQN not in parse_show(after)
    runner = RecordingRunner(show=after)
    with pytest.raises(RuntimeError, match="has logged-in initiators"):
        apply(act, Tgt(runner), live)
    assert runner.calls == []
    assert conf_path.exists()
    apply(act, Tgt(runner), live, force=True)
    assert runner.calls == [["tgt-admin", "--delete", DB01_IQN, "--force"], SHOW, account_delete(DB01_USER)]
    assert runner.kwargs[2] == {"check": False}
    assert not conf_path.exists()


def test_absent_unexports_a_file_only(state, db01_conf):
    (act,), dummy = decide_one(db01(state="absent"), state, {}, files({DB01_CONF: db01_conf}))
    assert act["action"] == "unexport"


def test_absent_nothing_to_do(state):
    (act,), errors = decide_one(item(volume="scratch01", vg="ember-thick", state="absent"), state, {})
    assert errors == []
    assert act["action"] == "none"
    assert act["sessions"] == []


def test_absent_needs_neither_initiators_nor_the_volume(state, live):
    (act,), errors = decide_one(item(volume="gone", vg="nope", state="absent"), state, live)
    assert errors == []
    assert act["action"] == "none"


def test_absent_still_validates_given_addresses(state, live):
    actions, errors = decide_one(item(volume="logs01", vg="ember-thick", state="absent",
                                      initiator_addresses=["nope"]), state, live)
    assert actions == []
    assert errors == ["attachments[0].initiator_addresses[0]: 'nope' is not an IP address"]


# --- errors ------------------------------------------------------------------------------------------------------

def test_missing_initiators(state):
    actions, errors = decide_one(db01(initiators=[]), state, {})
    assert actions == []
    assert errors == ["attachments[0].initiators: at least one initiator IQN is needed to export volume db01-data "
                      "(the ACL)"]


MISSING_ADDRESS = ("attachments[0].initiator_addresses: at least one consumer address is needed to export volume "
                   "db01-data; without one tgt admits every address")


@pytest.mark.parametrize("addresses", [[], None])
def test_missing_addresses(state, live, db01_conf, addresses):
    # Even for an export that is live: tgt-admin would bind ALL for a file without initiator-address.
    actions, errors = decide_one(db01(initiator_addresses=addresses), state, live, files({DB01_CONF: db01_conf}))
    assert actions == []
    assert errors == [MISSING_ADDRESS]


def test_missing_addresses_in_check_mode(state):
    actions, errors = decide_one(db01(initiator_addresses=[]), state, {}, predict_missing=True)
    assert actions == []
    assert errors == [MISSING_ADDRESS]


def test_missing_addresses_uses_the_field(state):
    dummy, errors = decide([db01(initiator_addresses=[])], state, {}, PREFIX, read=files({}), field="attachment")
    assert errors == [MISSING_ADDRESS.replace("attachments[0]", "attachment[0]")]


def test_missing_initiators_is_reported_before_missing_addresses(state):
    dummy, errors = decide_one(db01(initiators=[], initiator_addresses=[]), state, {})
    assert [e.split(":", maxsplit=1)[0] for e in errors] == ["attachments[0].initiators"]


@pytest.mark.parametrize(("addresses", "field", "bad", "why"), [
    (["198.18.0.256"], "attachments[0].initiator_addresses[0]", "198.18.0.256", ""),
    ([CLIENT1_ADDR, "not-an-ip"], "attachments[0].initiator_addresses[1]", "not-an-ip", ""),
    ([CLIENT1_ADDR, "198.18.0.0/33"], "attachments[0].initiator_addresses[1]", "198.18.0.0/33",
     ": not a valid prefix length"),
    (["ALL"], "attachments[0].initiator_addresses[0]", "ALL", ""),  # tgt's wildcard is what the option replaces
    ([""], "attachments[0].initiator_addresses[0]", "", ""),
    (["198.18.0.21 "], "attachments[0].initiator_addresses[0]", "198.18.0.21 ", ""),
    (["198.18.0.021"], "attachments[0].initiator_addresses[0]", "198.18.0.021", ""),
    (["stor1.example"], "attachments[0].initiator_addresses[0]", "stor1.example", ""),
    (["198.18.0.21:3260"], "attachments[0].initiator_addresses[0]", "198.18.0.21:3260", ""),
    (["[2001:db8::15]"], "attachments[0].initiator_addresses[0]", "[2001:db8::15]", ""),
    ([CLIENT1], "attachments[0].initiator_addresses[0]", CLIENT1, ""),
    # A CIDR typo does not open the ACL: host bits set is an error, not the network it would round to.
    (["198.18.0.21/0"], "attachments[0].initiator_addresses[0]", "198.18.0.21/0",
     ": host bits are set; a network is written with its first address"),
    (["198.18.0.21/24"], "attachments[0].initiator_addresses[0]", "198.18.0.21/24",
     ": host bits are set; a network is written with its first address"),
    # The root-shell injection of issue 7: a zone id is an interface name, nothing else.
    (["fe80::1%a;touch${IFS}x;#"], "attachments[0].initiator_addresses[0]", "fe80::1%a;touch${IFS}x;#",
     ": the zone id after '%' must be an interface name (1-15 letters, digits, '_', '.' or '-')"),
    (["198.18.0.21%eth0"], "attachments[0].initiator_addresses[0]", "198.18.0.21%eth0",
     ": only an IPv6 address has a zone id"),
])
def test_bad_address(state, addresses, field, bad, why):
    actions, errors = decide_one(db01(initiator_addresses=addresses), state, {})
    assert actions == []
    assert errors == ["%s: %r is not an IP address%s" % (field, bad, why)]


@pytest.mark.parametrize("network", ["198.18.0.0/24", "0.0.0.0/0", "::/0", "2001:db8::/64"])
def test_a_network_needs_the_opt_in(state, network):
    actions, errors = decide_one(db01(initiator_addresses=[network]), state, {})
    assert actions == []
    assert errors == ["attachments[0].initiator_addresses[0]: %r is a network; an ACL entry is a consumer's host "
                      "address (bind a network only with allow_networks: true)" % network]


@pytest.mark.parametrize(("network", "floor", "min_prefix"), [
    ("0.0.0.0/0", 24, (24, 64)), ("::/0", 64, (24, 64)), ("198.18.0.0/23", 24, (24, 64)),
    ("198.18.0.0/16", 20, (20, 64)), ("2001:db8::/48", 56, (24, 56)),
])
def test_a_network_is_never_wider_than_the_floor(state, network, floor, min_prefix):
    actions, errors = decide_one(db01(initiator_addresses=[network]), state, {}, allow_networks=True,
                                 min_prefix=min_prefix)
    assert actions == []
    assert errors == ["attachments[0].initiator_addresses[0]: %r is wider than /%d, the widest network an ACL may "
                      "bind (acl_min_prefix)" % (network, floor)]


@pytest.mark.parametrize(("initiators", "field", "bad"), [
    (["not-an-iqn"], "attachments[0].initiators[0]", "not-an-iqn"),
    ([CLIENT1, "iqn.1993-08.org.Debian:01:x"], "attachments[0].initiators[1]", "iqn.1993-08.org.Debian:01:x"),
    ([CLIENT1, "iqn.1993-08.org.debian:01:x\n"], "attachments[0].initiators[1]", "iqn.1993-08.org.debian:01:x\n"),
])
def test_bad_iqn(state, initiators, field, bad):
    actions, errors = decide_one(db01(initiators=initiators), state, {})
    assert actions == []
    assert errors == ["%s: %r is not an iSCSI name; expected e.g. iqn.2004-10.com.example:host1 (at most 223 "
                      "bytes)" % (field, bad)]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("chap_username", "ember-db01", "must be 1-255 letters, digits or '_' (tgt's config parser expects word "
                                    "characters)"),
    ("chap_username", "ember db01", "must be 1-255 letters, digits or '_' (tgt's config parser expects word "
                                    "characters)"),
    ("chap_password", "pass word12345", "must be letters, digits or '_' (tgt's config parser expects word "
                                        "characters), at most 255"),
    ("chap_password", "p@ssw0rd12345", "must be letters, digits or '_' (tgt's config parser expects word "
                                       "characters), at most 255"),
    ("chap_password", "Short_12345", "is 11 characters; a CHAP secret needs at least 12 (RFC 3720 8.2.1), better "
                                     "22 or more random ones (128 bits)"),
    ("chap_password", "x" * 256, "must be letters, digits or '_' (tgt's config parser expects word characters), "
                                 "at most 255"),
])
def test_non_word_chap(state, key, value, message):
    actions, errors = decide_one(db01(**{key: value}), state, {})
    assert actions == []
    assert errors == ["attachments[0].%s: %s" % (key, message)]
    assert all(value not in e for e in errors if key == "chap_password")  # a secret is never repeated


def test_volume_must_exist(state):
    actions, errors = decide_one(item(volume="db02-data", vg="ember-thin", initiators=[CLIENT1],
                                      initiator_addresses=[CLIENT1_ADDR]), state, {})
    assert actions == []
    assert errors == ["attachments[0].volume: volume db02-data does not exist in VG ember-thin"]
    # db01-data exists, but in ember-thin, not ember-thick.
    dummy, errors = decide_one(db01(vg="ember-thick"), state, {})
    assert errors == ["attachments[0].volume: volume db01-data does not exist in VG ember-thick"]


def test_missing_volume_is_predicted_in_check_mode(state):
    (act,), errors = decide_one(item(volume="db02-data", vg="ember-thin", initiators=[CLIENT1],
                                     initiator_addresses=[CLIENT1_ADDR]), state, {}, predict_missing=True)
    assert errors == []
    assert act["action"] == "export"
    assert act["backing_store"] == "/dev/ember-thin/volume-db02-data"


def test_unmanaged_lv_is_refused_even_in_check_mode():
    def edit(rows):
        for row in rows:
            if row["lv_name"] == "volume-db01-data":
                row["lv_tags"] = ""
    st = lvm_state(edit)
    for predict in (False, True):
        actions, errors = decide_one(db01(), st, {}, predict_missing=predict)
        assert actions == []
        assert errors == ["attachments[0].volume: volume db01-data does not exist in VG ember-thin as a managed LV"]


def test_bad_volume_name_uses_the_field(state):
    dummy, errors = decide([db01(volume="DB01")], state, {}, PREFIX, read=files({}), field="attachment")
    assert errors == ["attachment[0].volume: 'DB01' is not a valid volume name; use 1-63 lowercase letters, "
                      "digits, '.' or '-', starting and ending with a letter or digit"]


def test_duplicate_volumes(state, live, db01_conf):
    actions, errors = decide([db01(), db01(initiators=[CLIENT2])], state, live, PREFIX,
                             read=files({DB01_CONF: db01_conf}))
    assert errors == ["attachments[1].volume: 'db01-data' is listed twice"]
    assert len(actions) == 1


def test_all_errors_are_collected(state):
    dummy, errors = decide([db01(initiators=[]), db01(volume="x", initiators=["bad"]), db01(chap_password="a-b"),
                            db01(volume="y", initiator_addresses=[CLIENT1_ADDR, "bad"]),
                            db01(volume="z", initiator_addresses=[])],
                           state, {}, PREFIX, read=files({}))
    assert [e.split(":", maxsplit=1)[0] for e in errors] == [
        "attachments[0].initiators", "attachments[1].initiators[0]", "attachments[2].chap_password",
        "attachments[3].initiator_addresses[1]", "attachments[4].initiator_addresses"]


# --- connection_info ---------------------------------------------------------------------------------------------

def test_connection_info(state, live, db01_conf):
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert connection_info(act, "198.18.0.11") == {
        "driver_volume_type": "iscsi",
        "target_iqn": DB01_IQN,
        "target_portal": "198.18.0.11:3260",
        "target_lun": 1,
        "auth_method": "CHAP",
        "auth_username": DB01_USER,
        "auth_password": DB01_SECRET,
        "volume": "db01-data",
        "initiators": [CLIENT1],
        "initiator_addresses": [CLIENT1_ADDR],
    }


def test_connection_info_keeps_an_explicit_port(state, live, db01_conf):
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert connection_info(act, "198.18.0.11:3261")["target_portal"] == "198.18.0.11:3261"


def test_connection_info_before_the_secret_is_generated(state):
    (act,), dummy = decide_one(db01(), state, {})
    assert connection_info(act, "198.18.0.11")["auth_password"] == PENDING_SECRET


def test_connection_info_absent_is_none(state, live, db01_conf):
    (act,), dummy = decide_one(db01(state="absent"), state, live, files({DB01_CONF: db01_conf}))
    assert connection_info(act, "198.18.0.11") is None


# --- issue 7: changes are never weaker than before; the binding is verified after every update -------------------

def admitted(targets, iqn):
    """What a target admits at one moment: None when it does not exist, else (CHAP account bound?, ACL)."""
    t = targets.get(iqn)
    return None if t is None else (bool(t["accounts"]), sorted(t["acl"]))


def assert_never_weaker(runner, iqn, before_acl, after_acl):
    """At no moment does the target admit anyone without CHAP, or an address in neither the old nor the new ACL."""
    for moment in runner.history:
        state = admitted(moment, iqn)
        if state is None or not state[1]:
            continue  # no target, or an empty ACL: nobody logs in
        chap, acl = state
        assert chap, "the target admitted %s without a CHAP account" % acl
        assert set(acl) <= set(before_acl) or set(acl) <= set(after_acl), acl


def test_changed_secret_is_never_weaker_at_any_moment(tmp_path, state, live, db01_conf):
    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234"), state, live, files({DB01_CONF: db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = FakeTgtd(live, files={DB01_IQN: act["conf_path"]})
    apply(act, Tgt(runner), live, force=True)
    assert_never_weaker(runner, DB01_IQN, [CLIENT1_ADDR], [CLIENT1_ADDR])
    assert runner.accounts[DB01_USER] == "NewSecret_1234"


def test_the_old_order_dropped_chap_from_a_skipped_target(state, live, db01_conf):
    # What 0.1.0 did (account delete, then tgt-admin --update that skips an in-use target): the target kept its
    # ACL without CHAP. The fake reproduces it, so the tests below would catch a return to that order.
    runner = FakeTgtd(live, skip_update=True)
    tgt = Tgt(runner)
    tgt.delete_account(DB01_USER)
    tgt.update(DB01_IQN)
    assert admitted(runner.targets, DB01_IQN) == (False, [CLIENT1_ADDR])


def test_a_reload_that_tgt_admin_skips_keeps_chap_and_fails_clearly(tmp_path, state, live, db01_conf, monkeypatch):
    # An initiator logged in between the decision and the reload (or tgt-admin skipped the target for another
    # reason): nothing weaker is left behind and the run fails saying the account is still bound.
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    (act,), dummy = decide_one(db01(chap_password="NewSecret_1234"), state, live, files({DB01_CONF: db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = FakeTgtd(live, files={DB01_IQN: act["conf_path"]}, skip_update=True)
    with pytest.raises(RuntimeError, match="was not reloaded: .* it keeps its previous configuration, with CHAP "
                                           "account %s bound" % DB01_USER):
        apply(act, Tgt(runner), live, force=True)
    assert account_delete(DB01_USER) not in runner.calls  # the account is only deleted once the target is gone
    assert admitted(runner.targets, DB01_IQN) == (True, [CLIENT1_ADDR])
    assert_never_weaker(runner, DB01_IQN, [CLIENT1_ADDR], [CLIENT1_ADDR])


def test_a_skipped_reload_of_a_target_without_its_account_says_so(tmp_path, state, live, db01_conf, monkeypatch):
    # A live target that lost its account binding (by hand, or by 0.1.0's order) and is in use: the module must
    # reload it, tgt-admin skips it, and the failure names the missing binding.
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    live[DB01_IQN]["accounts"] = []
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert (act["action"], act["acl_only"]) == ("update", False)
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = FakeTgtd(live, files={DB01_IQN: act["conf_path"]}, skip_update=True)
    with pytest.raises(RuntimeError, match="with CHAP account %s NOT bound" % DB01_USER):
        apply(act, Tgt(runner), live, force=True)


def test_a_target_created_without_its_account_is_closed_and_fails(tmp_path, state, db01_conf):
    # tgt-admin --update created the target but did not bind the account (whatever the reason): the check after
    # the update finds it, empties the ACL (tgtd then admits nobody) and fails.
    (act,), dummy = decide_one(db01(), state, {}, files({DB01_CONF: db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    Path(act["conf_path"]).write_text(db01_conf)
    runner = FakeTgtd({}, files={DB01_IQN: act["conf_path"]}, lose_account=True)
    with pytest.raises(RuntimeError, match="CHAP accounts bound are none, not exactly .*its ACL was narrowed to "
                                           "nothing"):
        apply(act, Tgt(runner), {})
    assert admitted(runner.targets, DB01_IQN) == (False, [])
    assert runner.calls[-1] == acl_command(1, "unbind", "-I", CLIENT1_ADDR)


def test_a_wider_live_acl_after_an_update_is_narrowed_and_fails(tmp_path, state, db01_conf):
    # Something bound ALL right after tgt-admin: the check unbinds what the file does not list.
    (act,), dummy = decide_one(db01(), state, {}, files({DB01_CONF: db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    Path(act["conf_path"]).write_text(db01_conf)

    class Widening(FakeTgtd):
        def _tgt_admin(self, args):
            out = super()._tgt_admin(args)
            self.targets[DB01_IQN]["acl"].append("ALL")
            return out
    runner = Widening({}, files={DB01_IQN: act["conf_path"]})
    with pytest.raises(RuntimeError, match="ACL is .*ALL"):
        apply(act, Tgt(runner), {})
    assert admitted(runner.targets, DB01_IQN) == (True, [CLIENT1_ADDR])


def test_an_acl_change_is_verified(tmp_path, state, live, db01_conf):
    # The live bind "succeeds" but the account was unbound meanwhile: the check after the ACL change fails closed.
    (act,), dummy = decide_one(db01(initiators=[CLIENT1, CLIENT2], initiator_addresses=[CLIENT1_ADDR, CLIENT2_ADDR]),
                               state, live, files({DB01_CONF: db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")

    class LosingAccount(FakeTgtd):
        def _tgtadm(self, args):
            out = super()._tgtadm(args)
            if "bind" in args:
                self.targets[DB01_IQN]["accounts"] = []
            return out
    runner = LosingAccount(live)
    with pytest.raises(RuntimeError, match="after the live ACL change: CHAP accounts bound are none"):
        apply(act, Tgt(runner), live)
    assert admitted(runner.targets, DB01_IQN) == (False, [])


def test_acl_change_never_admits_more_than_before_or_after(tmp_path, old_state, old_live, old_db01_conf):
    (act,), dummy = decide_one(db01(initiators=[OLD_CLIENT1]), old_state, old_live, files({DB01_CONF: old_db01_conf}))
    act["conf_path"] = str(tmp_path / "ember-volume-db01-data.conf")
    runner = FakeTgtd(old_live)
    apply(act, Tgt(runner), old_live)
    # ALL + the name before, the address after: ALL is gone before the address is bound.
    acls = [sorted(m[DB01_IQN]["acl"]) for m in runner.history if DB01_IQN in m]
    assert acls[:3] == [sorted([OLD_CLIENT1]), [], [CLIENT1_ADDR]]


@pytest.mark.parametrize("text", [
    None,  # a live target without any file
    "<target %s>\n    backing-store /dev/ember-thin/volume-db01-data\n</target>\n" % DB01_IQN,  # no marker
    "# Managed by ember.blockstore; changes are overwritten.\n<target %s>\n</target>\n" % (PREFIX + "volume-other"),
])
@pytest.mark.parametrize("wanted", ["present", "absent"])
def test_an_unmanaged_target_is_never_changed_or_removed(state, live, text, wanted):
    read = files({} if text is None else {DB01_CONF: text})
    actions, errors = decide_one(db01(state=wanted), state, live, read)
    assert actions == []
    assert len(errors) == 1 and "clashes with volume db01-data" in errors[0]


def test_a_foreign_file_without_live_target_is_left_alone(state):
    text = "<target %s>\n</target>\n" % DB01_IQN
    actions, errors = decide_one(db01(state="absent"), state, {}, files({DB01_CONF: text}))
    assert actions == []
    assert "is not an ember.blockstore target file" in errors[0]


def test_a_chap_user_bound_to_another_target_is_refused(state, live, db01_conf):
    # tgt accounts are global: deleting and re-creating one another target binds would drop CHAP from it.
    actions, errors = decide_one(db01(chap_username="ember_logs01_5591e8e0"), state, live,
                                 files({DB01_CONF: db01_conf}))
    assert actions == []
    assert errors == ["attachments[0].chap_username: ember_logs01_5591e8e0 is also bound to target(s) %s; tgt "
                      "accounts are global, so each export needs its own CHAP user" % LOGS01_IQN]


def test_a_weak_secret_in_the_file_is_refused(state, live, db01_conf):
    weak = db01_conf.replace(DB01_SECRET, "short1")
    actions, errors = decide_one(db01(), state, live, files({DB01_CONF: weak}))
    assert actions == []
    assert errors[0].startswith("attachments[0]: the CHAP secret in %s: is 6 characters" % DB01_CONF)
    assert "short1" not in errors[0]


def test_a_bad_target_prefix_refuses_every_item(state):
    actions, errors = decide([db01()], state, {}, "iqn.2026-11.io.x:a;touch /tmp/x", read=NO_FILES)
    assert actions == []
    assert errors[0].startswith("target_prefix: 'iqn.2026-11.io.x:a;touch /tmp/x' is not an IQN prefix")


# --- the LUN's SCSI identity (scsi_id/scsi_sn in the file) -------------------------------------------------------

def test_a_new_export_gets_the_identity_in_its_file_and_live(tmp_path, state):
    (act,), errors = decide_one(db01(), state, {})
    assert errors == [] and act["action"] == "export"
    conf = parse_conf(act["desired"])
    assert (conf["scsi_id"], conf["scsi_sn"]) == lun_identity("db01-data")
    act["conf_path"] = str(tmp_path / "db01.conf")
    runner = FakeTgtd({}, files={DB01_IQN: act["conf_path"]})
    apply(act, Tgt(runner), {})
    lun = runner.targets[DB01_IQN]["luns"][1]
    assert (lun["scsi_id"], lun["scsi_sn"]) == lun_identity("db01-data")


def test_an_old_file_without_sessions_is_reloaded_for_the_identity(tmp_path, state):
    # The raw captures: the file predates the identity lines, the live LUN has tgt's tid-derived id. Nobody is
    # logged in, so the target is reloaded now (tgt-admin --update applies the file's scsi_id/scsi_sn).
    live = parse_show(raw("tgt/show_two_targets_acl.txt"))
    live[DB01_IQN]["sessions"] = []
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: raw("tgt/conf_db01_acl.conf")}))
    assert errors == []
    assert (act["action"], act["write_file"], act["acl_only"], act["identity_pending"]) == (
        "update", True, False, False)
    assert "SCSI identity" in act["reason"]
    act["conf_path"] = str(tmp_path / "db01.conf")
    runner = FakeTgtd(live, files={DB01_IQN: act["conf_path"]})
    apply(act, Tgt(runner), live)
    assert ["tgt-admin", "--update", DB01_IQN] in runner.calls
    lun = runner.targets[DB01_IQN]["luns"][1]
    assert (lun["scsi_id"], lun["scsi_sn"]) == lun_identity("db01-data")


def test_an_old_file_with_sessions_keeps_them_and_the_identity_waits_for_the_next_reload(tmp_path, state):
    # Logged in: a reload would drop the session. The file gets the identity (it applies at the next reload or
    # tgt restart, when the tid-derived one could change anyway); the live target is not touched.
    live = parse_show(raw("tgt/show_two_targets_acl.txt"))
    assert live[DB01_IQN]["sessions"]
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: raw("tgt/conf_db01_acl.conf")}))
    assert errors == []
    assert (act["action"], act["write_file"], act["acl_only"], act["identity_pending"]) == (
        "update", True, True, True)
    act["conf_path"] = str(tmp_path / "db01.conf")
    runner = FakeTgtd(live, files={DB01_IQN: act["conf_path"]})
    apply(act, Tgt(runner), live)  # no force needed, no reload
    assert not any(c[0] == "tgt-admin" for c in runner.calls)
    assert runner.targets[DB01_IQN]["sessions"] == live[DB01_IQN]["sessions"]
    assert parse_conf((tmp_path / "db01.conf").read_text())["scsi_id"] == lun_identity("db01-data")[0]
    # The next run: the file is right, the live LUN still has the old id and the session: nothing to do.
    (again,), errors = decide_one(db01(), state, live, files({DB01_CONF: (tmp_path / "db01.conf").read_text()}))
    assert (again["action"], again["identity_pending"]) == ("none", True)


def test_a_live_lun_with_another_identity_and_no_sessions_is_reloaded(state, live, db01_conf):
    live[DB01_IQN]["sessions"] = []
    live[DB01_IQN]["luns"][1]["scsi_id"] = "IET     00010001"
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"], act["acl_only"]) == ("update", False, False)
    assert act["reason"] == "LUN 1's SCSI identity (scsi_id/scsi_sn) changes"


def test_connection_info_lists_every_portal_of_a_node_with_several(state, live, db01_conf):
    (act,), dummy = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    info = connection_info(act, "198.18.0.11", ["198.18.1.11", "198.18.0.11:3260", "198.18.1.11:3260"])
    assert info["target_portal"] == "198.18.0.11:3260"
    assert info["target_portals"] == ["198.18.0.11:3260", "198.18.1.11:3260"]
    # One portal (or none given): the key is absent, as before.
    assert "target_portals" not in connection_info(act, "198.18.0.11", ["198.18.0.11"])
    assert "target_portals" not in connection_info(act, "198.18.0.11")
