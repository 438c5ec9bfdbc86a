# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tgt helper: ``tgtadm --op show`` and target-file parsing against output captured on the lab, file rendering,
live ACL changes (``Tgt.set_acl``), CHAP account deletion and export removal (against runners that record
commands) and the private atomic write.

Two generations of captures: ``conf_db01.conf``/``show_two_targets.txt`` were written by the name-only ACL version
(a real ``initiator-name`` line and no ``initiator-address`` line, so ``tgt-admin`` bound ``ALL`` next to the
IQN); ``conf_db01_acl.conf``/``show_two_targets_acl.txt`` by the address-only version (live ACL = client1's
storage address, its IQN recorded as a ``# initiator-name`` comment; client1 has another IQN in those).

The values the captures hold are read from the raw fixture text with regular expressions, independently of the
parsers under test."""

from __future__ import annotations

import math
import os
import re
import stat
import string
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    HEADER,
    ForeignTarget,
    Tgt,
    check_target,
    generate_secret,
    identity_matches,
    lun_identity,
    parse_conf,
    parse_show,
    render_conf,
    write_private,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "tgt"
PREFIX = "iqn.2026-11.io.ember.blockstore:"


def text(name):
    return (FIXTURES / name).read_text()


def captured(name, pattern):
    """The groups of the first line of fixture ``name`` that matches ``pattern`` (read without the parsers)."""
    match = re.search(pattern, text(name), re.MULTILINE)
    if match is None:
        raise LookupError("%s: no line matches %r" % (name, pattern))
    return match.groups()


# client1's initiator in the name-only captures (conf_db01.conf's real initiator-name line, show_two_targets.txt).
(CLIENT1,) = captured("conf_db01.conf", r"^    initiator-name (\S+)$")
OLD_USER, OLD_SECRET = captured("conf_db01.conf", r"^    incominguser (\w+) (\w+)$")
CLIENT1_OLD = "iqn.1993-08.org.debian:01:9263f289471f"  # client1's initiator in show_connected.txt
# client1 in the address-only captures: its IQN is recorded as a comment, its storage address is the ACL.
(CLIENT1_ACL,) = captured("conf_db01_acl.conf", r"^    # initiator-name (\S+)$")
(CLIENT1_ADDR,) = captured("conf_db01_acl.conf", r"^    initiator-address (\S+)$")
ACL_USER, ACL_SECRET = captured("conf_db01_acl.conf", r"^    incominguser (\w+) (\w+)$")


# --- parse_show --------------------------------------------------------------------------------------------------

def test_parse_show_connected_target():
    assert parse_show(text("show_connected.txt")) == {
        PREFIX + "volume-b": {
            "tid": 1,
            "state": "ready",
            "sessions": [CLIENT1_OLD],
            "luns": {
                0: {"type": "controller", "backing_store": None, "size": "0 MB", "scsi_id": "IET     00010000",
                    "scsi_sn": "beaf10"},
                1: {"type": "disk", "backing_store": "/dev/ember-thin/volume-b", "size": "1074 MB",
                    "scsi_id": "IET     00010001", "scsi_sn": "beaf11"},
            },
            "accounts": ["ember_b"],
            "acl": ["ALL", CLIENT1_OLD],
            "connections": [{"initiator": CLIENT1_OLD, "address": "198.18.0.21"}],
        },
    }


def test_parse_show_one_target():
    targets = parse_show(text("show_one_target.txt"))
    assert list(targets) == [PREFIX + "volume-db02-data"]
    target = targets[PREFIX + "volume-db02-data"]
    assert target["tid"] == 1
    assert target["sessions"] == [CLIENT1]
    assert target["luns"][1]["backing_store"] == "/dev/ember-thin/volume-db02-data"
    assert target["accounts"] == ["ember_db02_data"]
    assert target["acl"] == ["ALL", CLIENT1]


def test_parse_show_two_targets_keeps_sections_apart():
    targets = parse_show(text("show_two_targets.txt"))
    assert list(targets) == [PREFIX + "volume-db01-data", PREFIX + "volume-logs01"]
    db01, logs01 = targets[PREFIX + "volume-db01-data"], targets[PREFIX + "volume-logs01"]
    assert (db01["tid"], logs01["tid"]) == (1, 2)
    # tgt's defaults, derived from the tid (usr/spc.c spc_lu_init): what lun_identity() replaces.
    assert db01["luns"][1] == {"type": "disk", "backing_store": "/dev/ember-thin/volume-db01-data",
                               "size": "1074 MB", "scsi_id": "IET     00010001", "scsi_sn": "beaf11"}
    assert logs01["luns"][1] == {"type": "disk", "backing_store": "/dev/ember-thick/volume-logs01",
                                 "size": "268 MB", "scsi_id": "IET     00020001", "scsi_sn": "beaf21"}
    assert logs01["luns"][0] == {"type": "controller", "backing_store": None, "size": "0 MB",
                                 "scsi_id": "IET     00020000", "scsi_sn": "beaf20"}
    # Target 2's sections must not leak into target 1.
    assert db01["accounts"] == ["ember_db01_data"]
    assert logs01["accounts"] == ["ember_logs01"]
    assert db01["sessions"] == logs01["sessions"] == [CLIENT1]
    assert db01["acl"] == logs01["acl"] == ["ALL", CLIENT1]
    assert db01["state"] == logs01["state"] == "ready"


def test_parse_show_two_targets_with_address_acl():
    targets = parse_show(text("show_two_targets_acl.txt"))
    assert list(targets) == [PREFIX + "volume-db01-data", PREFIX + "volume-logs01"]
    db01, logs01 = targets[PREFIX + "volume-db01-data"], targets[PREFIX + "volume-logs01"]
    assert (db01["tid"], logs01["tid"]) == (1, 2)
    assert db01["luns"][1]["backing_store"] == "/dev/ember-thin/volume-db01-data"
    assert logs01["luns"][1]["backing_store"] == "/dev/ember-thick/volume-logs01"
    assert db01["accounts"] == [ACL_USER]
    assert logs01["accounts"] == ["ember_logs01_5591e8e0"]
    assert db01["sessions"] == logs01["sessions"] == [CLIENT1_ACL]
    # The address binding replaced tgt-admin's "ALL" and no name is bound: the ACL is exactly the address.
    assert db01["acl"] == logs01["acl"] == [CLIENT1_ADDR]
    assert db01["state"] == logs01["state"] == "ready"


@pytest.mark.parametrize("empty", ["", "\n\n"])
def test_parse_show_no_targets(empty):
    assert parse_show(empty) == {}


def test_parse_show_target_without_sessions_or_accounts():
    # What tgtadm prints for a freshly defined target nobody logged in to (same layout as the captures).
    out = "\n".join([
        "Target 3: %svolume-new" % PREFIX,
        "    System information:",
        "        Driver: iscsi",
        "        State: ready",
        "    I_T nexus information:",
        "    LUN information:",
        "        LUN: 0",
        "            Type: controller",
        "            Backing store path: None",
        "    Account information:",
        "    ACL information:",
        "        ALL",
    ])
    assert parse_show(out) == {PREFIX + "volume-new": {
        "tid": 3, "state": "ready", "sessions": [], "luns": {0: {"type": "controller", "backing_store": None,
                                                                 "size": None}},
        "accounts": [], "acl": ["ALL"], "connections": []}}


# --- parse_conf / render_conf ------------------------------------------------------------------------------------

def test_captured_values_agree_across_the_fixtures():
    # The live captures were taken with the files above in force: same consumer, account and address.
    acl_show, old_show = text("show_two_targets_acl.txt"), text("show_two_targets.txt")
    assert set(re.findall(r"^ +Initiator: (\S+) ", acl_show, re.MULTILINE)) == {CLIENT1_ACL}
    assert set(re.findall(r"^ +IP Address: (\S+)$", acl_show, re.MULTILINE)) == {CLIENT1_ADDR}
    assert re.search(r"^    Account information:\n        %s$" % ACL_USER, acl_show, re.MULTILINE)
    assert set(re.findall(r"^ +Initiator: (\S+) ", old_show, re.MULTILINE)) == {CLIENT1}
    assert re.search(r"^    Account information:\n        %s$" % OLD_USER, old_show, re.MULTILINE)
    assert CLIENT1_ACL != CLIENT1 != CLIENT1_OLD
    assert ACL_SECRET != OLD_SECRET


def test_parse_conf_db01():
    # Written by the name-only version: a real initiator-name line and no initiator-address line.
    assert parse_conf(text("conf_db01.conf")) == {
        "iqn": PREFIX + "volume-db01-data",
        "backing_store": "/dev/ember-thin/volume-db01-data",
        "initiators": [CLIENT1],
        "addresses": [],
        "chap_username": OLD_USER,
        "chap_password": OLD_SECRET,
    }


def test_parse_conf_db01_acl():
    # Written by the address-only version: the IQN is read from its "# initiator-name" comment line.
    assert parse_conf(text("conf_db01_acl.conf")) == {
        "iqn": PREFIX + "volume-db01-data",
        "backing_store": "/dev/ember-thin/volume-db01-data",
        "initiators": [CLIENT1_ACL],
        "addresses": [CLIENT1_ADDR],
        "chap_username": ACL_USER,
        "chap_password": ACL_SECRET,
    }


def test_parse_conf_comment_form():
    out = "\n".join([
        HEADER.rstrip("\n"),
        "# volume: x",
        "<target %svolume-x>" % PREFIX,
        "    backing-store /dev/vg/volume-x",
        "    initiator-address %s" % CLIENT1_ADDR,
        "    initiator-address 198.18.0.22",
        "    # initiator-name %s" % CLIENT1_ACL,
        "    #initiator-name %s" % CLIENT1_OLD,  # no space after '#'
        "    # initiator-address 198.18.0.99",  # a commented-out address is not an address
        "    # a comment that names no initiator",
        "    incominguser user_1 Secret123456",
        "</target>",
        "",
    ])
    assert parse_conf(out) == {"iqn": PREFIX + "volume-x", "backing_store": "/dev/vg/volume-x",
                               "initiators": [CLIENT1_ACL, CLIENT1_OLD], "addresses": [CLIENT1_ADDR, "198.18.0.22"],
                               "chap_username": "user_1", "chap_password": "Secret123456"}


def test_parse_conf_old_form():
    # Files of the earlier versions bound the IQN with a real initiator-name line; it still counts.
    out = "\n".join(["<target %svolume-x>" % PREFIX, "    backing-store /dev/vg/volume-x",
                     "    initiator-address %s" % CLIENT1_ADDR, "    initiator-name %s" % CLIENT1,
                     "    incominguser user_1 Secret123456", "</target>", ""])
    conf = parse_conf(out)
    assert (conf["initiators"], conf["addresses"]) == ([CLIENT1], [CLIENT1_ADDR])


def test_parse_conf_old_and_comment_forms_together():
    out = "\n".join(["<target %svolume-x>" % PREFIX, "    initiator-name %s" % CLIENT1,
                     "    # initiator-name %s" % CLIENT1_ACL, "</target>", ""])
    assert parse_conf(out)["initiators"] == [CLIENT1, CLIENT1_ACL]


def test_render_conf_reproduces_the_file_on_the_lab_byte_for_byte():
    conf = parse_conf(text("conf_db01_acl.conf"))
    rendered = render_conf(conf["iqn"], conf["backing_store"], conf["initiators"], conf["chap_username"],
                           conf["chap_password"], volume="db01-data", addresses=conf["addresses"])
    assert rendered == text("conf_db01_acl.conf")
    assert parse_conf(rendered) == conf


def test_render_conf_of_an_old_file_records_the_name_as_a_comment():
    # Re-rendering what the name-only version wrote: the same file with its initiator-name line commented out.
    old = text("conf_db01.conf")
    assert "    initiator-name %s\n" % CLIENT1 in old
    conf = parse_conf(old)
    rendered = render_conf(conf["iqn"], conf["backing_store"], conf["initiators"], conf["chap_username"],
                           conf["chap_password"], volume="db01-data", addresses=conf["addresses"])
    assert rendered == old.replace("    initiator-name %s\n" % CLIENT1, "    # initiator-name %s\n" % CLIENT1)
    assert parse_conf(rendered) == conf


def test_render_conf_without_addresses_writes_no_address_line():
    # What the previous version wrote (tgt-admin then binds ALL); the attachment module no longer asks for it.
    out = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "u", "p")
    assert "initiator-address" not in out
    assert parse_conf(out)["addresses"] == []


def test_render_conf_layout():
    out = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "user_1", "Secret123456", volume="x")
    assert out.startswith(HEADER)
    assert out.endswith("</target>\n")
    assert out.splitlines() == [
        HEADER.rstrip("\n"),
        "# volume: x",
        "<target %svolume-x>" % PREFIX,
        "    backing-store /dev/vg/volume-x",
        "    # initiator-name %s" % CLIENT1,  # recorded, not bound
        "    incominguser user_1 Secret123456",
        "</target>",
    ]


def test_render_conf_layout_with_addresses():
    out = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "user_1", "Secret123456", volume="x",
                      addresses=[CLIENT1_ADDR, "198.18.1.0/24"])
    assert out.splitlines() == [
        HEADER.rstrip("\n"),
        "# volume: x",
        "<target %svolume-x>" % PREFIX,
        "    backing-store /dev/vg/volume-x",
        "    initiator-address %s" % CLIENT1_ADDR,  # addresses before names
        "    initiator-address 198.18.1.0/24",
        "    # initiator-name %s" % CLIENT1,  # names are recorded after the addresses
        "    incominguser user_1 Secret123456",
        "</target>",
    ]


def test_render_conf_without_volume_comment():
    out = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "u", "p")
    assert "# volume:" not in out
    assert out.splitlines()[1] == "<target %svolume-x>" % PREFIX


def test_render_conf_is_deterministic_sorted_and_deduplicated():
    a = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1_OLD, CLIENT1, CLIENT1_OLD], "u", "p")
    b = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1, CLIENT1_OLD], "u", "p")
    assert a == b
    names = [line.split()[2] for line in a.splitlines() if line.strip().startswith("# initiator-name ")]
    assert names == sorted([CLIENT1, CLIENT1_OLD])
    # No name is bound: tgt would admit it from any address.
    assert not [line for line in a.splitlines() if line.strip().startswith("initiator-name")]


def test_render_conf_addresses_are_sorted_and_deduplicated():
    a = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "u", "p",
                    addresses=["198.18.0.22", CLIENT1_ADDR, "198.18.0.22"])
    b = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "u", "p",
                    addresses=(CLIENT1_ADDR, "198.18.0.22"))
    assert a == b
    addresses = [line.split()[1] for line in a.splitlines() if line.strip().startswith("initiator-address")]
    assert addresses == [CLIENT1_ADDR, "198.18.0.22"]


@pytest.mark.parametrize(("initiators", "addresses"), [
    ([CLIENT1], []),
    ([CLIENT1], [CLIENT1_ADDR]),
    ([CLIENT1, CLIENT1_OLD], ["198.18.0.22", CLIENT1_ADDR]),
    (["iqn.2004-10.com.example:host1", "iqn.2004-10.com.example:host2", "eui.02004567a425678d"],
     ["198.18.0.0/24", "2001:db8::15", "2001:db8:1::/64"]),
])
def test_render_parse_round_trip(initiators, addresses):
    iqn, backing = PREFIX + "volume-db01-data", "/dev/ember-thin/volume-db01-data"
    out = render_conf(iqn, backing, initiators, "ember_db01_data", "olg9DP2N9vXrCp3z", volume="db01-data",
                      addresses=addresses)
    assert parse_conf(out) == {"iqn": iqn, "backing_store": backing, "initiators": sorted(initiators),
                               "addresses": sorted(addresses), "chap_username": "ember_db01_data",
                               "chap_password": "olg9DP2N9vXrCp3z"}


def test_parse_conf_ignores_comments_blank_lines_and_malformed_incominguser():
    out = "\n".join(["# a comment", "", "<target %svolume-x>" % PREFIX, "  # indented comment",
                     "    backing-store /dev/vg/volume-x", "    incominguser onlyuser", "</target>", ""])
    assert parse_conf(out) == {"iqn": PREFIX + "volume-x", "backing_store": "/dev/vg/volume-x", "initiators": [],
                               "addresses": [], "chap_username": None, "chap_password": None}


def test_parse_conf_empty():
    assert parse_conf("") == {"iqn": None, "backing_store": None, "initiators": [], "addresses": [],
                              "chap_username": None, "chap_password": None}


# --- Tgt.set_acl -------------------------------------------------------------------------------------------------

class RecordingRunner:
    """Stands in for ``_runner.Runner``: records every ``run(args, **kwargs)`` and succeeds."""

    def __init__(self):
        self.calls = []

    def run(self, args, **kwargs):
        self.calls.append((list(args), kwargs))
        return 0, "", ""


def acl_command(tid, op, flag, entry):
    return ["tgtadm", "--lld", "iscsi", "--mode", "target", "--tid", str(tid), "--op", op, flag, entry]


def set_acl(tid, current, desired):
    runner = RecordingRunner()
    Tgt(runner).set_acl(tid, current, desired)
    assert all(kwargs == {} for _args, kwargs in runner.calls)  # checked: a failed bind/unbind raises
    return [args for args, _kwargs in runner.calls]


def test_set_acl_upgrade_binds_the_address_and_unbinds_all_and_the_name():
    # The live ACL the name-only version left (show_two_targets.txt) -> the address only.
    live = parse_show(text("show_two_targets.txt"))[PREFIX + "volume-db01-data"]
    assert live["acl"] == ["ALL", CLIENT1]
    assert set_acl(live["tid"], live["acl"], [CLIENT1_ADDR]) == [
        acl_command(1, "unbind", "-I", "ALL"),
        acl_command(1, "unbind", "-Q", CLIENT1),
        acl_command(1, "bind", "-I", CLIENT1_ADDR),
    ]


def test_set_acl_from_the_old_capture_to_the_new_file():
    # Unbinds come before binds, each group sorted: at no moment does the ACL admit more than before or after (an
    # empty ACL admits nobody; established sessions are not affected). The new file's recorded IQN is not bound.
    live = parse_show(text("show_two_targets.txt"))[PREFIX + "volume-logs01"]
    conf = parse_conf(text("conf_db01_acl.conf"))
    assert set_acl(live["tid"], live["acl"], conf["addresses"]) == [
        acl_command(2, "unbind", "-I", "ALL"),
        acl_command(2, "unbind", "-Q", CLIENT1),
        acl_command(2, "bind", "-I", CLIENT1_ADDR),
    ]


def test_set_acl_unchanged_runs_nothing():
    live = parse_show(text("show_two_targets_acl.txt"))[PREFIX + "volume-db01-data"]
    conf = parse_conf(text("conf_db01_acl.conf"))
    assert set_acl(live["tid"], live["acl"], conf["addresses"] + conf["addresses"]) == []


def test_set_acl_only_the_difference():
    assert set_acl(1, [CLIENT1_ADDR, CLIENT1_ACL], [CLIENT1_ADDR, CLIENT1_ACL, "198.18.0.22", CLIENT1_OLD]) == [
        acl_command(1, "bind", "-I", "198.18.0.22"),
        acl_command(1, "bind", "-Q", CLIENT1_OLD),
    ]
    assert set_acl(1, [CLIENT1_ADDR, CLIENT1_ACL, "198.18.0.22", CLIENT1_OLD], [CLIENT1_ADDR, CLIENT1_ACL]) == [
        acl_command(1, "unbind", "-I", "198.18.0.22"),
        acl_command(1, "unbind", "-Q", CLIENT1_OLD),
    ]


def test_set_acl_duplicates_are_one_command():
    assert set_acl(3, [], [CLIENT1_ADDR, CLIENT1_ADDR, CLIENT1_ACL, CLIENT1_ACL]) == [
        acl_command(3, "bind", "-I", CLIENT1_ADDR),
        acl_command(3, "bind", "-Q", CLIENT1_ACL),
    ]


@pytest.mark.parametrize(("entry", "flag"), [
    (CLIENT1_ACL, "-Q"),
    ("iqn.2004-10.com.example:host1", "-Q"),
    ("eui.02004567a425678d", "-Q"),
    ("naa.52004567ba64678d", "-Q"),
    (CLIENT1_ADDR, "-I"),
    ("198.18.0.0/24", "-I"),
    ("2001:db8::15", "-I"),
    ("2001:db8::/64", "-I"),
    ("ALL", "-I"),
])
def test_set_acl_flag_per_entry(entry, flag):
    assert set_acl(7, [], [entry]) == [acl_command(7, "bind", flag, entry)]
    assert set_acl(7, [entry], []) == [acl_command(7, "unbind", flag, entry)]


def test_set_acl_failure_propagates():
    class Failing(RecordingRunner):
        def run(self, args, **kwargs):
            super().run(args, **kwargs)
            raise CommandError(args, 22, "", "tgtadm: invalid request")

    runner = Failing()
    with pytest.raises(CommandError):
        Tgt(runner).set_acl(1, ["ALL"], [CLIENT1_ADDR])
    # Nothing runs after the failing command: the live ACL is left as it was minus what was unbound before.
    assert [args for args, dummy in runner.calls] == [acl_command(1, "unbind", "-I", "ALL")]


# --- Tgt.delete_account / Tgt.remove_export ---------------------------------------------------------------------

SHOW = ["tgtadm", "--lld", "iscsi", "--mode", "target", "--op", "show"]


def account_delete(user):
    return ["tgtadm", "--lld", "iscsi", "--mode", "account", "--op", "delete", "--user", user]


class TgtdRunner:
    """Stands in for ``_runner.Runner`` under ``Tgt``: records ``(args, kwargs, whether watch exists)`` for every
    ``run``; ``tgtadm --op show`` prints ``show`` without the targets ``tgt-admin --delete`` removed, split from the
    capture at its ``Target N:`` lines."""

    def __init__(self, show, watch):
        self.calls = []
        self.watch = watch
        self.sections = re.split(r"(?m)^(?=Target \d+: )", show)
        self.deleted = set()

    def run(self, args, **kwargs):
        self.calls.append((list(args), kwargs, os.path.exists(self.watch)))
        if args == SHOW:
            out = "".join(section for section in self.sections
                          if re.sub(r"^Target \d+: (\S+)\n.*", r"\1", section, flags=re.DOTALL) not in self.deleted)
            return 0, out, ""
        if args[:2] == ["tgt-admin", "--delete"]:
            self.deleted.add(args[2])
        return 0, "", ""

    def commands(self):
        return [args for args, dummy, dummy_exists in self.calls]


def test_delete_account_command_is_not_checked():
    # A missing account is not an error: tgtadm's failure must not raise (check=False).
    runner = RecordingRunner()
    Tgt(runner).delete_account(ACL_USER)
    assert runner.calls == [(account_delete(ACL_USER), {"check": False})]


def test_delete_account_of_a_missing_account_does_not_raise():
    class Refusing(RecordingRunner):
        def run(self, args, **kwargs):
            super().run(args, **kwargs)
            if kwargs.get("check", True):
                raise CommandError(args, 22, "", "tgtadm: can't find the account")
            return 22, "", "tgtadm: can't find the account"

    runner = Refusing()
    Tgt(runner).delete_account("nobody")
    assert [args for args, dummy in runner.calls] == [account_delete("nobody")]


@pytest.mark.parametrize("force", [False, True])
def test_remove_export_deletes_target_then_account_then_file(tmp_path, force):
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    conf_path.write_text(text("conf_db01_acl.conf"))
    iqn = PREFIX + "volume-db01-data"
    show = text("show_two_targets_acl.txt")
    runner = TgtdRunner(show, conf_path)
    Tgt(runner).remove_export(iqn, str(conf_path), parse_show(show), force=force)
    delete = ["tgt-admin", "--delete", iqn] + (["--force"] if force else [])
    assert runner.commands() == [delete, SHOW, account_delete(ACL_USER)]
    # The file is still there while the target and the account go (a failure leaves it to retry from), and
    # only then unlinked.
    assert [exists for dummy, dummy_kwargs, exists in runner.calls] == [True, True, True]
    assert not conf_path.exists()
    assert runner.calls[0][1] == {"check": False}  # tgt-admin --delete is verified with show instead
    assert runner.calls[2][1] == {"check": False}
    assert iqn not in Tgt(runner).show()
    assert PREFIX + "volume-logs01" in Tgt(runner).show()


def test_remove_export_of_an_old_file_deletes_its_account(tmp_path):
    # A file of the name-only version: its account (without the hash suffix) is the one to delete.
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    conf_path.write_text(text("conf_db01.conf"))
    show = text("show_two_targets.txt")
    runner = TgtdRunner(show, conf_path)
    Tgt(runner).remove_export(PREFIX + "volume-db01-data", str(conf_path), parse_show(show))
    assert runner.commands() == [["tgt-admin", "--delete", PREFIX + "volume-db01-data"], SHOW,
                                 account_delete(OLD_USER)]
    assert not conf_path.exists()


def test_remove_export_of_a_file_only_deletes_the_account_and_the_file(tmp_path):
    # tgtd does not serve the target (e.g. restarted before the LV was active): no tgt-admin --delete.
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    conf_path.write_text(text("conf_db01_acl.conf"))
    runner = TgtdRunner("", conf_path)
    Tgt(runner).remove_export(PREFIX + "volume-db01-data", str(conf_path), {})
    assert runner.calls == [(account_delete(ACL_USER), {"check": False}, True)]
    assert not conf_path.exists()


def test_remove_export_of_a_live_only_target_is_refused(tmp_path):
    # No file: the target is not the project's (issue 7): nothing is run, nothing is deleted.
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    show = text("show_two_targets_acl.txt")
    runner = TgtdRunner(show, conf_path)
    with pytest.raises(ForeignTarget, match="is not managed by ember.blockstore and is left alone"):
        Tgt(runner).remove_export(PREFIX + "volume-db01-data", str(conf_path), parse_show(show))
    assert runner.commands() == []


def test_remove_export_of_a_foreign_file_is_refused(tmp_path):
    # A file at our path without our header (someone else's) is not ours either: target and file stay.
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    foreign = text("conf_db01_acl.conf").replace("# Managed by ember.blockstore; changes are overwritten.\n", "")
    conf_path.write_text(foreign)
    show = text("show_two_targets_acl.txt")
    runner = TgtdRunner(show, conf_path)
    with pytest.raises(ForeignTarget, match="is not an ember.blockstore target file"):
        Tgt(runner).remove_export(PREFIX + "volume-db01-data", str(conf_path), parse_show(show))
    assert runner.commands() == []
    assert conf_path.read_text() == foreign


def test_remove_export_keeps_an_account_another_target_binds(tmp_path):
    # tgt accounts are global: deleting one another target binds would drop CHAP from that target.
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    conf_path.write_text(text("conf_db01_acl.conf"))
    show = text("show_two_targets_acl.txt")
    live = parse_show(show)
    live[PREFIX + "volume-logs01"]["accounts"] = [ACL_USER]
    del live[PREFIX + "volume-db01-data"]  # the file only; logs01 binds the same user
    runner = RecordingRunner()
    Tgt(runner).remove_export(PREFIX + "volume-db01-data", str(conf_path), live)
    assert [args for args, dummy in runner.calls] == []
    assert not conf_path.exists()


def test_remove_export_keeps_the_file_when_the_target_stays(tmp_path, monkeypatch):
    # tgt-admin --delete that does not delete (sessions, no force): the error propagates, the file and the
    # account stay, so a restart still serves the target as before and a re-run can retry.
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    conf_path = tmp_path / "ember-volume-db01-data.conf"
    conf_path.write_text(text("conf_db01_acl.conf"))
    show = text("show_two_targets_acl.txt")

    class Stuck(TgtdRunner):
        def run(self, args, **kwargs):
            rc, out, err = super().run(args, **kwargs)
            self.deleted.clear()
            return rc, out, err

    runner = Stuck(show, conf_path)
    with pytest.raises(CommandError, match="still present after tgt-admin --delete"):
        Tgt(runner).remove_export(PREFIX + "volume-db01-data", str(conf_path), parse_show(show))
    assert account_delete(ACL_USER) not in runner.commands()
    assert conf_path.read_text() == text("conf_db01_acl.conf")


# --- generate_secret ---------------------------------------------------------------------------------------------

def test_generate_secret_default_length_and_alphabet():
    alphabet = set(string.ascii_letters + string.digits)
    for _attempt in range(200):
        secret = generate_secret()
        assert len(secret) == 32  # 32 * log2(62) = 190 bits >= 128
        assert set(secret) <= alphabet
    assert 32 * math.log2(len(alphabet)) >= 128


@pytest.mark.parametrize("length", [12, 13, 16])
def test_generate_secret_length(length):
    assert len(generate_secret(length)) == length


def test_generate_secret_is_random():
    assert len({generate_secret() for _attempt in range(50)}) == 50


def test_generated_secret_survives_a_file_round_trip():
    secret = generate_secret()
    out = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "ember_x", secret)
    assert parse_conf(out)["chap_password"] == secret


# --- write_private -----------------------------------------------------------------------------------------------

def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _leftovers(directory):
    return [p.name for p in Path(directory).iterdir() if p.name.startswith(".ember-")]


def test_write_private_creates_a_0600_file(tmp_path):
    path = tmp_path / "ember-volume-x.conf"
    old_umask = os.umask(0)
    try:
        write_private(str(path), "secret content\n")
    finally:
        os.umask(old_umask)
    assert path.read_text() == "secret content\n"
    assert _mode(path) == 0o600
    assert _leftovers(tmp_path) == []


def test_write_private_replaces_an_existing_file_atomically(tmp_path):
    path = tmp_path / "ember-volume-x.conf"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    inode = os.stat(path).st_ino
    write_private(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert _mode(path) == 0o600  # a world-readable old file does not keep its mode
    assert os.stat(path).st_ino != inode  # renamed over, not rewritten in place
    assert _leftovers(tmp_path) == []


def test_write_private_failure_leaves_no_temp_file(tmp_path):
    # Renaming a file over a non-empty directory fails: the temporary file must be cleaned up.
    target = tmp_path / "ember-volume-x.conf"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        write_private(str(target), "new\n")
    assert _leftovers(tmp_path) == []
    assert (target / "keep").read_text() == "x"


def test_write_private_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_private(str(tmp_path / "missing" / "f.conf"), "x")


# --- the LUN's SCSI identity (stable WWID for dm-multipath) ------------------------------------------------------

def test_lun_identity_is_stable_hex_and_per_volume():
    scsi_id, scsi_sn = lun_identity("db01-data")
    assert (scsi_id, scsi_sn) == lun_identity("db01-data")  # the same in every run, on every host
    assert re.fullmatch(r"[0-9a-f]{32}", scsi_id) and scsi_sn == scsi_id
    assert len(scsi_id) <= 36  # tgt's SCSI_ID_LEN and SCSI_SN_LEN (usr/tgtd.h)
    # Names that differ only in punctuation get different identities (a.b vs a-b, as for CHAP users).
    assert len({lun_identity(n)[0] for n in ("a.b", "a-b", "a_b", "ab", "db01-data")}) == 5


def test_render_conf_writes_the_identity_after_the_backing_store_and_parses_it_back():
    scsi_id, scsi_sn = lun_identity("x")
    out = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "user_1", "Secret123456", volume="x",
                      addresses=[CLIENT1_ADDR], scsi_id=scsi_id, scsi_sn=scsi_sn)
    lines = out.splitlines()
    assert lines[3:6] == ["    backing-store /dev/vg/volume-x", "    scsi_id %s" % scsi_id,
                          "    scsi_sn %s" % scsi_sn]
    conf = parse_conf(out)
    assert (conf["scsi_id"], conf["scsi_sn"]) == (scsi_id, scsi_sn)


def test_a_file_without_the_identity_parses_without_it():
    conf = parse_conf(text("conf_db01_acl.conf"))
    assert "scsi_id" not in conf and "scsi_sn" not in conf


def test_render_conf_refuses_an_unsafe_identity():
    with pytest.raises(ValueError):
        render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "u", "Secret123456", scsi_id="a b")


def test_parse_show_reads_the_scsi_identity_of_each_lun():
    # The captures show tgt's tid-derived defaults (usr/spc.c): what a reload or restart can change.
    luns = parse_show(text("show_two_targets_acl.txt"))[PREFIX + "volume-db01-data"]["luns"]
    assert (luns[1]["scsi_id"], luns[1]["scsi_sn"]) == ("IET     00010001", "beaf11")


@pytest.mark.parametrize("lun, expected", [
    (None, True),  # no LUN: nothing to compare (LUN 1 missing is its own problem)
    ({"type": "disk"}, True),  # tgtadm printed no SCSI ID line
    ({"scsi_id": "IET     00010001", "scsi_sn": "beaf11"}, False),
    ({"scsi_id": lun_identity("v")[0], "scsi_sn": "beaf11"}, False),
    ({"scsi_id": lun_identity("v")[0], "scsi_sn": lun_identity("v")[1]}, True),
])
def test_identity_matches(lun, expected):
    assert identity_matches(lun, lun_identity("v")) is expected


def test_check_target_names_a_wrong_identity():
    target = parse_show(text("show_two_targets_acl.txt"))[PREFIX + "volume-db01-data"]
    wanted = lun_identity("db01-data")
    problems = check_target(target, ACL_USER, "/dev/ember-thin/volume-db01-data", [CLIENT1_ADDR], identity=wanted)
    assert problems == ["LUN 1 has SCSI ID IET     00010001 and serial beaf11, not %s and %s" % wanted]
    assert check_target(target, ACL_USER, "/dev/ember-thin/volume-db01-data", [CLIENT1_ADDR]) == []


def test_add_lun_sets_the_identity_before_anyone_sees_it():
    calls = []

    class Runner:
        def run(self, args, check=True):
            calls.append(args)
            return 0, "", ""
    Tgt(Runner()).add_lun(3, 1, "/dev/vg/volume-x", identity=lun_identity("x"))
    assert calls[1] == ["tgtadm", "--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "3",
                        "--lun", "1", "--params", "scsi_id=%s,scsi_sn=%s" % lun_identity("x")]


def test_derived_fixtures_are_the_captures_with_the_identity():
    # conf_db01_acl_id.conf / show_two_targets_acl_id.txt: the captures as this version writes and loads them.
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fake_tgtd import with_identity
    for raw, derived in (("conf_db01_acl.conf", "conf_db01_acl_id.conf"),
                         ("show_two_targets_acl.txt", "show_two_targets_acl_id.txt")):
        assert text(derived) == with_identity("tgt/" + raw, text(raw))
