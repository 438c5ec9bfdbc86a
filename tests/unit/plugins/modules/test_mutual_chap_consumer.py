# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mutual CHAP on the consumer (issue 12): ``node.session.auth.username_in`` / ``password_in`` in the node record
(the secret through the record file, never a command line), the decision for existing sessions, validation, and a
login the target fails. The connection module's real ``main()`` runs over an iscsiadm stand-in that keeps record
files under ``tmp_path`` and answers ``--login`` as iscsid does: with inbound credentials set it checks the
target's (here: the secret the target "has"), and fails with rc 19 when they differ (usr/login.c
``check_security_stage_status`` -> ISCSI_ERR_FATAL_LOGIN)."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _connection
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import iscsiadm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import PENDING_SECRET
from ansible_collections.ember.blockstore.plugins.modules import connection
from modrun import run_module

IQN = "iqn.2026-11.io.ember.blockstore:volume-db01-data"
PORTAL = "198.18.0.11:3260"
USER = "ember_db01_data_c6f08c3f"
SECRET = "Secret_for_db01data"
TARGET_USER = USER + "_target"
TARGET_SECRET = "Target_secret_db01"

RECORD = """# BEGIN RECORD 2.1.8
node.name = {iqn}
node.tpgt = -1
node.startup = manual
node.session.auth.authmethod = None
node.conn[0].address = 198.18.0.11
node.conn[0].port = 3260
# END RECORD
"""


def record_file(node_dir):
    return node_dir / IQN / "198.18.0.11,3260,-1" / "default"


def world(node_dir, target_secret=TARGET_SECRET, session=False):
    """iscsiadm over record files: ``-o new`` writes one, ``-o update`` edits it (an empty value clears a key),
    ``-o show`` masks set secrets, ``--login`` checks both directions."""
    path = record_file(node_dir)

    def answer(args):
        if args[0] != "iscsiadm":
            return 0, "", ""
        if args[1:] == ["-m", "session"]:
            return (0, "tcp: [1] %s,1 %s (non-flash)\n" % (PORTAL, IQN), "") if session else (21, "", "")
        if args[1:] == ["-m", "node"]:
            return 21, "", ""
        op = args[args.index("-o") + 1] if "-o" in args else None
        if op == "new":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(RECORD.format(iqn=IQN))
            os.chmod(path, 0o600)
        elif op == "update":
            values = dict(zip(args[args.index("-n") + 1::4], args[args.index("-v") + 1::4]))
            path.write_text(iscsiadm.record_with_values(path.read_text(), {k: v or None for k, v in values.items()}))
        elif op == "show":
            values = iscsiadm.parse_record(path.read_text())
            return 0, "".join("%s = %s\n" % (k, "********" if "password" in k else v) for k, v in values.items()), ""
        elif op == "delete":
            path.unlink(missing_ok=True)
        elif "--login" in args:
            values = iscsiadm.parse_record(path.read_text())
            if values.get(iscsiadm.SECRET_KEY) != SECRET:
                return 24, "", "iscsiadm: Login failed to authenticate with target"
            if values.get(iscsiadm.USERNAME_IN_KEY) and (
                    values[iscsiadm.USERNAME_IN_KEY] != TARGET_USER
                    or values.get(iscsiadm.SECRET_IN_KEY) != target_secret):
                return 19, ("Logging in to [iface: default, target: %s, portal: 198.18.0.11,3260]\n" % IQN), (
                    "iscsiadm: Could not login to [iface: default, target: %s, portal: 198.18.0.11,3260].\n"
                    "iscsiadm: initiator reported error (19 - encountered non-retryable iSCSI login failure)\n"
                    % IQN)
        return 0, "", ""
    return answer


def item(**kwargs):
    out = {"target_iqn": IQN, "target_portal": PORTAL, "auth_username": USER, "auth_password": SECRET,
           "target_auth_username": TARGET_USER, "target_auth_password": TARGET_SECRET, "volume": "db01-data"}
    out.update(kwargs)
    return out


# --- the node record --------------------------------------------------------------------------------------------

def test_record_with_values_writes_both_secrets_once():
    text = RECORD.format(iqn=IQN).replace("# END", "node.session.auth.password_in = Old_secret_123\n# END")
    out = iscsiadm.record_with_values(text, {iscsiadm.SECRET_KEY: SECRET, iscsiadm.SECRET_IN_KEY: TARGET_SECRET})
    values = iscsiadm.parse_record(out)
    assert (values[iscsiadm.SECRET_KEY], values[iscsiadm.SECRET_IN_KEY]) == (SECRET, TARGET_SECRET)
    assert out.count("password_in") == 1 and out.splitlines()[-1] == "# END RECORD"
    # None removes a key (iscsiadm reads it as empty).
    cleared = iscsiadm.parse_record(iscsiadm.record_with_values(out, {iscsiadm.SECRET_IN_KEY: None}))
    assert iscsiadm.SECRET_IN_KEY not in cleared and cleared[iscsiadm.SECRET_KEY] == SECRET
    # record_with_secret is the one-key form, for either key.
    assert iscsiadm.parse_record(iscsiadm.record_with_secret(text, TARGET_SECRET, key=iscsiadm.SECRET_IN_KEY))[
        iscsiadm.SECRET_IN_KEY] == TARGET_SECRET


@pytest.mark.parametrize("value", ["a b", "x\nnode.startup = manual", ""])
def test_record_with_values_refuses_more_than_a_word(value):
    with pytest.raises(ValueError):
        iscsiadm.record_with_values(RECORD, {iscsiadm.SECRET_IN_KEY: value})


# --- login ------------------------------------------------------------------------------------------------------

def test_mutual_login_writes_the_target_credentials_without_a_command_line(monkeypatch, capsys, node_dir):
    run = run_module(monkeypatch, capsys, connection, {"connections": [item()]}, world(node_dir))
    assert not run.failed, run.msg
    assert run.result["connections"][0]["action"] == "login"
    assert all(SECRET not in " ".join(c) and TARGET_SECRET not in " ".join(c) for c in run.calls), run.calls
    update = [c for c in run.calls if "update" in c][0]
    assert update[-4:] == ["-n", iscsiadm.USERNAME_IN_KEY, "-v", TARGET_USER]
    values = iscsiadm.parse_record(record_file(node_dir).read_text())
    assert (values[iscsiadm.SECRET_KEY], values[iscsiadm.SECRET_IN_KEY]) == (SECRET, TARGET_SECRET)
    assert values[iscsiadm.USERNAME_IN_KEY] == TARGET_USER
    assert stat.S_IMODE(os.stat(record_file(node_dir)).st_mode) == 0o600
    assert TARGET_SECRET not in json.dumps(run.result) and not run.warnings


def test_a_target_with_the_wrong_secret_is_refused(monkeypatch, capsys, node_dir):
    # The target answers with another secret than target_auth_password: iscsid refuses it, the module fails
    # saying so, names the target, and leaves no record that iscsid would retry at boot.
    run = run_module(monkeypatch, capsys, connection, {"connections": [item()]},
                     world(node_dir, target_secret="Other_target_secret"))
    assert run.failed
    failure = run.result["connections"][0]
    assert failure["failed"] is True
    assert "mutual CHAP authentication of target %s at %s failed" % (IQN, PORTAL) in run.msg
    assert ["iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "-o", "delete"] in run.calls
    assert not record_file(node_dir).exists()
    assert SECRET not in json.dumps(run.result) and TARGET_SECRET not in json.dumps(run.result)


def test_a_refused_one_way_login_keeps_its_message(monkeypatch, capsys, node_dir):
    # Without mutual CHAP the failure text is iscsiadm's own, as before.
    answer = world(node_dir)
    run = run_module(monkeypatch, capsys, connection, {"connections": [item(
        auth_password="Wrong_secret_123", target_auth_username=None, target_auth_password=None)]}, answer)
    assert run.failed and "mutual" not in run.msg and "rc=24" in run.msg


def test_login_failure_messages_by_exit_code():
    fatal = iscsiadm._mutual_failure(IQN, PORTAL, iscsiadm.LOGIN_FATAL, "", "iscsiadm: initiator reported error")
    assert fatal.startswith("mutual CHAP authentication of target %s at %s failed" % (IQN, PORTAL))
    assert "ACL" in fatal and "journalctl -u iscsid" in fatal
    refused = iscsiadm._mutual_failure(IQN, PORTAL, iscsiadm.LOGIN_AUTH_FAILED, "", "")
    assert IQN in refused and "no outgoing account" in refused
    assert iscsiadm._mutual_failure(IQN, PORTAL, 8, "", "timed out") is None


# --- existing sessions ------------------------------------------------------------------------------------------

def state_with(record):
    key = (IQN, PORTAL)
    path = iscsiadm.device_path(PORTAL, IQN, 1)
    return {"sessions": {key}, "nodes": {key}, "devices": {path: "/dev/sdb"}, "in_use": {}, "cgroups": {}, "qos": {},
            "records": {key: record}}


def decided(it, record):
    full = {key: spec.get("default") for key, spec in _connection.ITEM_OPTIONS.items()}
    full.update(it)
    (act,), errors = _connection.decide([full], state_with(record))
    assert errors == []
    return act


def test_a_session_whose_record_lacks_the_target_credentials_gets_them_without_a_login():
    act = decided(item(), (None, None))
    assert (act["action"], act["changed"], act["record_update"]) == ("update", True, True)
    assert decided(item(), (TARGET_USER, "Old_target_secret"))["action"] == "update"


def test_a_session_whose_record_is_right_is_a_no_op():
    act = decided(item(), (TARGET_USER, TARGET_SECRET))
    assert (act["action"], act["changed"], act["record_update"]) == ("none", False, False)


def test_an_unknown_record_is_left_alone():
    assert decided(item(), None)["action"] == "none"


def test_mutual_chap_turned_off_clears_the_record():
    act = decided(item(target_auth_username=None, target_auth_password=None), (TARGET_USER, TARGET_SECRET))
    assert (act["action"], act["record_update"]) == ("update", True)
    # ... and a one-way record stays a no-op (the behaviour before mutual CHAP).
    assert decided(item(target_auth_username=None, target_auth_password=None), (None, None))["action"] == "none"


def test_a_qos_only_item_never_touches_the_record():
    it = item(auth_method="None", auth_username=None, auth_password=None, target_auth_username=None,
              target_auth_password=None)
    assert decided(it, (TARGET_USER, TARGET_SECRET))["action"] == "none"


def test_updating_a_live_session_record(monkeypatch, capsys, node_dir):
    path = record_file(node_dir)
    path.parent.mkdir(parents=True)
    path.write_text(RECORD.format(iqn=IQN).replace("# END", "node.session.auth.password = %s\n# END" % SECRET))
    devices = {iscsiadm.device_path(PORTAL, IQN, 1): "/dev/sdb"}
    monkeypatch.setattr(_connection, "real_device", devices.get)
    run = run_module(monkeypatch, capsys, connection, {"connections": [item()]}, world(node_dir, session=True))
    assert not run.failed, run.msg
    assert run.result["connections"][0]["action"] == "update"
    assert not any("--login" in c for c in run.calls)
    assert all(TARGET_SECRET not in " ".join(c) for c in run.calls)
    values = iscsiadm.parse_record(path.read_text())
    assert (values[iscsiadm.USERNAME_IN_KEY], values[iscsiadm.SECRET_IN_KEY]) == (TARGET_USER, TARGET_SECRET)
    # The second run changes nothing.
    again = run_module(monkeypatch, capsys, connection, {"connections": [item()]}, world(node_dir, session=True))
    assert again.result["connections"][0]["action"] == "none" and not again.result["changed"]
    # Mutual CHAP turned off: the record's inbound credentials are cleared with -o update (no secret on it).
    off = run_module(monkeypatch, capsys, connection, {"connections": [item(
        target_auth_username=None, target_auth_password=None)]}, world(node_dir, session=True))
    assert off.result["connections"][0]["action"] == "update"
    assert ["iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "-o", "update", "-n", iscsiadm.USERNAME_IN_KEY, "-v",
            "", "-n", iscsiadm.SECRET_IN_KEY, "-v", ""] in off.calls
    values = iscsiadm.parse_record(path.read_text())
    assert iscsiadm.USERNAME_IN_KEY not in values and iscsiadm.SECRET_IN_KEY not in values
    assert values[iscsiadm.SECRET_KEY] == SECRET


def test_check_mode_predicts_the_record_update_and_runs_only_reads(monkeypatch, capsys, node_dir):
    path = record_file(node_dir)
    path.parent.mkdir(parents=True)
    path.write_text(RECORD.format(iqn=IQN))
    monkeypatch.setattr(_connection, "real_device", {iscsiadm.device_path(PORTAL, IQN, 1): "/dev/sdb"}.get)
    run = run_module(monkeypatch, capsys, connection, {"connections": [item()]}, world(node_dir, session=True),
                     check_mode=True)
    assert run.result["connections"][0]["action"] == "update" and run.result["changed"]
    assert run.calls == [["iscsiadm", "-m", "session"], ["iscsiadm", "-m", "node"]]


# --- validation -------------------------------------------------------------------------------------------------

def validate(it, check_mode=False):
    full = {key: spec.get("default") for key, spec in _connection.ITEM_OPTIONS.items()}
    full.update(it)
    return _connection.validate([full], check_mode=check_mode)


@pytest.mark.parametrize("kwargs, message", [
    ({"target_auth_password": None}, r"connections\[0\]: target_auth_username and target_auth_password go together"),
    ({"target_auth_username": None}, r"go together"),
    ({"target_auth_password": SECRET}, r"connections\[0\]\.target_auth_password: equals auth_password"),
    ({"auth_method": "None"}, r"connections\[0\]\.target_auth_username: mutual CHAP needs auth_method CHAP"),
    ({"target_auth_username": "a;b"}, r"connections\[0\]\.target_auth_username: must be"),
    ({"target_auth_password": "short_1"}, r"connections\[0\]\.target_auth_password: is 7 characters"),
])
def test_refused_target_credentials(kwargs, message):
    errors = validate(item(**kwargs))
    assert errors and re.search(message, errors[0]), errors
    assert SECRET not in " ".join(errors) and TARGET_SECRET not in " ".join(errors)


def test_check_mode_accepts_the_placeholders():
    it = item(auth_password=PENDING_SECRET, target_auth_password=PENDING_SECRET)
    assert validate(it, check_mode=True) == []
    assert validate(it) and validate(it)[0].startswith("connections[0].auth_password:")
