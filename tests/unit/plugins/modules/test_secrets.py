# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 7, item 6: CHAP secrets stay off command lines where the tools allow it, and out of every message and
failure result. The modules' real ``main()`` runs over the lab's captured state (``modrun``); target files and the
open-iscsi node database live under ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import stat

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _attachment, _connection
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import iscsiadm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import lun_identity
from ansible_collections.ember.blockstore.plugins.modules import attachment, connection
from modrun import lab_answer, run_module

CLIENT1 = "iqn.1993-08.org.debian:01:ed703fed4dfd"
IQN = "iqn.2026-11.io.ember.blockstore:volume-db01-data"
SECRET = "Secret_for_db01data"

RECORD = """# BEGIN RECORD 2.1.8
node.name = {iqn}
node.tpgt = -1
node.startup = manual
iface.iscsi_ifacename = default
iface.transport_name = tcp
node.discovery_type = static
node.session.auth.authmethod = None
node.session.timeo.replacement_timeout = 120
node.conn[0].address = {address}
node.conn[0].port = {port}
# END RECORD
"""


def export_args(**item):
    base = {"volume": "archive01", "vg": "ember-thin", "initiators": [CLIENT1], "initiator_addresses": ["198.18.0.21"]}
    base.update(item)
    return {"attachments": [base], "portal": "198.18.0.11"}


@pytest.fixture()
def conf_dir(tmp_path, monkeypatch):
    directory = tmp_path / "conf.d"
    directory.mkdir()
    monkeypatch.setattr(_attachment, "tgt_conf_path", lambda name: str(directory / ("ember-volume-%s.conf" % name)))
    return directory


def failing_tgt_admin(conf_dir):
    """tgt-admin fails the way it does (it prints the tgtadm line it ran, password included, then exits)."""
    def answer(args):
        if args[0] == "tgt-admin":
            text = (conf_dir / "ember-volume-archive01.conf").read_text()
            user, secret = re.search(r"incominguser (\w+) (\w+)", text).groups()
            return 22, ("Command:\n\ttgtadm -C 0 --lld iscsi --mode account --op new --user=%s --password=%s\n"
                        "exited with code: 22.\n" % (user, secret)), "tgtadm: user already exists (%s)" % secret
        if args[0] == "tgtadm" and "account" in args:
            return 0, "", ""
        return lab_answer(args)
    return answer


def test_a_given_secret_is_masked_in_a_failure(monkeypatch, capsys, conf_dir):
    run = run_module(monkeypatch, capsys, attachment, export_args(chap_password=SECRET), failing_tgt_admin(conf_dir))
    assert run.failed
    assert "exited with code: 22" in run.result["stdout"]  # the context is there ...
    assert SECRET not in json.dumps(run.result)  # ... without the secret
    assert SECRET in (conf_dir / "ember-volume-archive01.conf").read_text()


def test_a_generated_secret_is_masked_in_a_failure(monkeypatch, capsys, conf_dir):
    run = run_module(monkeypatch, capsys, attachment, export_args(), failing_tgt_admin(conf_dir))
    assert run.failed
    secret = re.search(r"incominguser \w+ (\w+)", (conf_dir / "ember-volume-archive01.conf").read_text()).group(1)
    assert len(secret) == 32
    assert secret not in json.dumps(run.result)
    assert "********" in run.result["stdout"]


def test_no_secret_on_a_storage_node_command_line(monkeypatch, capsys, conf_dir):
    # The module never passes a secret itself: tgt-admin reads it from the root-only file.
    def answer(args):
        if args[0] == "tgtadm" and args[-2:] == ["--op", "show"] and "target" in args and any(
                c[0] == "tgt-admin" for c in calls):
            shown = lab_answer(args)[1].replace("/dev/ember-thick/volume-logs01", "/dev/ember-thin/volume-archive01")
            shown = shown.replace("volume-logs01", "volume-archive01").replace("ember_logs01_5591e8e0",
                                                                               "ember_archive01_user")
            # tgt-admin gave archive01's LUN the identity of its file.
            for old, new in zip(lun_identity("logs01"), lun_identity("archive01")):
                shown = shown.replace(old, new)
            return 0, shown, ""
        return lab_answer(args)
    calls = []

    def recording(args):
        calls.append(args)
        return answer(args)
    run = run_module(monkeypatch, capsys, attachment, export_args(chap_username="ember_archive01_user",
                                                                  chap_password=SECRET), recording)
    assert not run.failed, run.msg
    assert all(SECRET not in " ".join(c) for c in run.calls)
    assert ["tgt-admin", "--update", "iqn.2026-11.io.ember.blockstore:volume-archive01"] in run.calls
    path = conf_dir / "ember-volume-archive01.conf"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # The successful result hands the secret to the consumer (connection_info, registered with no_log) and
    # nowhere else: the invocation shows it masked.
    info = run.result["attachments"][0]["connection_info"]
    assert info["auth_password"] == SECRET
    assert run.result["invocation"]["module_args"]["attachments"][0]["chap_password"] != SECRET
    assert json.dumps(run.result).count(SECRET) == 1


# --- the consumer: the secret goes into the node record file, not onto iscsiadm's command line ----------------

def iscsi_world(node_dir, with_record=True):
    """iscsiadm as open-iscsi 2.1 behaves: ``-o new`` writes the record file, ``-o update`` edits it, ``-o show``
    prints it with the secret masked, ``--login`` succeeds when the record holds the secret."""
    state = {"logged_in": False}

    def record_file(args):
        iqn, portal = args[args.index("-T") + 1], args[args.index("-p") + 1]
        host, _sep, port = portal.rpartition(":")
        return node_dir / iqn / ("%s,%s,-1" % (host.strip("[]"), port)) / "default"

    def answer(args):
        if args[0] != "iscsiadm":
            return 0, "", ""
        if args[1:3] in (["-m", "session"], ["-m", "node"]) and len(args) == 3:
            return 21, "", ""
        path = record_file(args)
        op = args[args.index("-o") + 1] if "-o" in args else None
        if op == "new":
            if with_record:
                host, _sep, port = args[args.index("-p") + 1].rpartition(":")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(RECORD.format(iqn=args[args.index("-T") + 1], address=host.strip("[]"), port=port))
                os.chmod(path, 0o600)
            return 0, "", ""
        if op == "update":
            values = dict(zip(args[args.index("-n") + 1::4], args[args.index("-v") + 1::4]))
            if with_record:
                text = path.read_text()
                for key, value in values.items():
                    text = re.sub(r"(?m)^%s = .*\n" % re.escape(key), "", text)
                    text = text.replace("# END RECORD", "%s = %s\n# END RECORD" % (key, value))
                path.write_text(text)
            else:
                state.update(values)
            return 0, "", ""
        if op == "show":
            values = iscsiadm.parse_record(path.read_text()) if with_record else dict(state)
            secret = values.get(iscsiadm.SECRET_KEY)
            return 0, "%s = %s\n" % (iscsiadm.SECRET_KEY, "********" if secret else "<empty>"), ""
        if "--login" in args:
            values = iscsiadm.parse_record(path.read_text()) if with_record else state
            return (0, "", "") if values.get(iscsiadm.SECRET_KEY) == SECRET else (24, "", "auth failure")
        return 0, "", ""
    return answer


def login_args():
    return {"connections": [{"target_iqn": IQN, "target_portal": "198.18.0.11:3260",
                             "auth_username": "ember_db01_data_c6f08c3f", "auth_password": SECRET,
                             "volume": "db01-data"}]}


def test_login_puts_the_secret_in_the_node_record_not_on_a_command_line(monkeypatch, capsys, node_dir):
    run = run_module(monkeypatch, capsys, connection, login_args(), iscsi_world(node_dir))
    assert not run.failed, run.msg
    assert run.result["connections"][0]["action"] == "login"
    assert all(SECRET not in " ".join(c) for c in run.calls), run.calls
    record = node_dir / IQN / "198.18.0.11,3260,-1" / "default"
    values = iscsiadm.parse_record(record.read_text())
    assert values[iscsiadm.SECRET_KEY] == SECRET
    assert values["node.session.auth.username"] == "ember_db01_data_c6f08c3f"
    assert values["node.session.auth.authmethod"] == "CHAP"
    assert values["node.startup"] == "automatic"
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    assert SECRET not in json.dumps(run.result)
    assert not run.warnings


def test_without_a_record_file_the_secret_goes_on_argv_with_a_warning(monkeypatch, capsys, node_dir):
    run = run_module(monkeypatch, capsys, connection, login_args(), iscsi_world(node_dir, with_record=False))
    assert not run.failed, run.msg
    assert any(SECRET in c for c in run.calls)
    assert "was passed on iscsiadm's command line" in " ".join(run.warnings)
    assert SECRET not in json.dumps(run.result) + " ".join(run.warnings)


def test_a_refused_login_is_masked_and_leaves_no_record(monkeypatch, capsys, node_dir):
    world = iscsi_world(node_dir)

    def answer(args):
        if "--login" in args:
            return 24, "", "iscsiadm: Login failed (secret %s refused)" % SECRET
        return world(args)
    run = run_module(monkeypatch, capsys, connection, login_args(), answer)
    assert run.failed
    assert SECRET not in json.dumps(run.result)
    assert ["iscsiadm", "-m", "node", "-T", IQN, "-p", "198.18.0.11:3260", "-o", "delete"] in run.calls


def test_check_mode_accepts_the_placeholder_of_a_secret_not_generated_yet():
    # A --check run on a fresh host: the attachment module has not generated the secret, and returns a
    # placeholder; the consumer's check must not fail on it, and a real run must refuse it.
    from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import PENDING_SECRET

    item = {"target_iqn": "iqn.2026-11.io.ember.blockstore:volume-a", "target_portal": "198.18.0.11:3260",
            "target_lun": 1, "auth_method": "CHAP", "auth_username": "ember_a_0123abcd",
            "auth_password": PENDING_SECRET, "volume": "a", "state": "present"}
    assert _connection.validate([item], check_mode=True) == []
    errors = _connection.validate([item])
    assert len(errors) == 1 and errors[0].startswith("connections[0].auth_password:")


# --- a session whose LUN device is missing ---------------------------------------------------------------------

def test_a_session_without_its_device_is_rescanned_not_logged_in_again(monkeypatch, capsys, node_dir):
    # The target got LUN 1 live after the consumer had logged in (tgtd loaded it before its LV was active): the
    # session stays, the module rescans it and waits for the device.
    world = iscsi_world(node_dir)

    def answer(args):
        if args[1:] == ["-m", "session"]:
            return 0, "tcp: [1] 198.18.0.11:3260,1 %s (non-flash)\n" % IQN, ""
        return world(args)
    run = run_module(monkeypatch, capsys, connection, login_args(), answer)
    assert not run.failed, run.msg
    assert run.result["connections"][0]["action"] == "rescan"
    assert run.result["connections"][0]["real_device"] == "/dev/sdx"
    assert ["iscsiadm", "-m", "node", "-T", IQN, "-p", "198.18.0.11:3260", "--rescan"] in run.calls
    assert not any("--login" in c for c in run.calls)


def test_a_node_directory_linked_to_the_other_is_one_record(tmp_path):
    # /etc/iscsi/nodes may be a link to /var/lib/iscsi/nodes: the same record file found twice is still one record,
    # so the secret goes into the file, not on iscsiadm's command line.
    real = tmp_path / "var-lib-nodes"
    record = real / IQN / "198.18.0.11,3260,1" / "default"
    record.parent.mkdir(parents=True)
    record.write_text(RECORD.format(iqn=IQN, address="198.18.0.11", port=3260))
    link = tmp_path / "etc-nodes"
    link.symlink_to(real)
    found = iscsiadm.Iscsiadm(None).record_path(IQN, "198.18.0.11:3260", node_dirs=(str(link), str(real)))
    assert found is not None and os.path.realpath(found) == str(record)


def test_the_flat_record_file_of_open_iscsi_2_1_8_is_found(tmp_path):
    # `iscsiadm -o new` on Debian 12 writes <nodes>/<iqn>/<host>,<port> as a file (seen on the lab).
    record = tmp_path / IQN / "198.18.0.12,3260"
    record.parent.mkdir(parents=True)
    record.write_text(RECORD.format(iqn=IQN, address="198.18.0.12", port=3260))
    found = iscsiadm.Iscsiadm(None).record_path(IQN, "198.18.0.12:3260", node_dirs=(str(tmp_path),))
    assert found == str(record)
