# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tgt helper: ``tgtadm --op show`` and target-file parsing against output captured on the lab, file rendering
and the private atomic write."""

from __future__ import annotations

import os
import stat
import string
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    HEADER,
    generate_secret,
    parse_conf,
    parse_show,
    render_conf,
    write_private,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "tgt"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
CLIENT1 = "iqn.1993-08.org.debian:01:d53fc39a07f1"  # client1's initiator in the db01/db02/logs01 captures
CLIENT1_OLD = "iqn.1993-08.org.debian:01:9263f289471f"  # client1's initiator in show_connected.txt


def text(name):
    return (FIXTURES / name).read_text()


# --- parse_show --------------------------------------------------------------------------------------------------

def test_parse_show_connected_target():
    assert parse_show(text("show_connected.txt")) == {
        PREFIX + "volume-b": {
            "tid": 1,
            "state": "ready",
            "sessions": [CLIENT1_OLD],
            "luns": {
                0: {"type": "controller", "backing_store": None, "size": "0 MB"},
                1: {"type": "disk", "backing_store": "/dev/ember-thin/volume-b", "size": "1074 MB"},
            },
            "accounts": ["ember_b"],
            "acl": ["ALL", CLIENT1_OLD],
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
    assert db01["luns"][1] == {"type": "disk", "backing_store": "/dev/ember-thin/volume-db01-data",
                               "size": "1074 MB"}
    assert logs01["luns"][1] == {"type": "disk", "backing_store": "/dev/ember-thick/volume-logs01",
                                 "size": "268 MB"}
    assert logs01["luns"][0] == {"type": "controller", "backing_store": None, "size": "0 MB"}
    # Target 2's sections must not leak into target 1.
    assert db01["accounts"] == ["ember_db01_data"]
    assert logs01["accounts"] == ["ember_logs01"]
    assert db01["sessions"] == logs01["sessions"] == [CLIENT1]
    assert db01["acl"] == logs01["acl"] == ["ALL", CLIENT1]
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
        "accounts": [], "acl": ["ALL"]}}


# --- parse_conf / render_conf ------------------------------------------------------------------------------------

def test_parse_conf_db01():
    assert parse_conf(text("conf_db01.conf")) == {
        "iqn": PREFIX + "volume-db01-data",
        "backing_store": "/dev/ember-thin/volume-db01-data",
        "initiators": [CLIENT1],
        "chap_username": "ember_db01_data",
        "chap_password": "olg9DP2N9vXrCp3z",
    }


def test_render_conf_reproduces_the_file_on_the_lab_byte_for_byte():
    conf = parse_conf(text("conf_db01.conf"))
    rendered = render_conf(conf["iqn"], conf["backing_store"], conf["initiators"], conf["chap_username"],
                           conf["chap_password"], volume="db01-data")
    assert rendered == text("conf_db01.conf")


def test_render_conf_layout():
    out = render_conf(PREFIX + "volume-x", "/dev/vg/volume-x", [CLIENT1], "user_1", "Secret123456", volume="x")
    assert out.startswith(HEADER)
    assert out.endswith("</target>\n")
    assert out.splitlines() == [
        HEADER.rstrip("\n"),
        "# volume: x",
        "<target %svolume-x>" % PREFIX,
        "    backing-store /dev/vg/volume-x",
        "    initiator-name %s" % CLIENT1,
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
    names = [line.split()[1] for line in a.splitlines() if line.strip().startswith("initiator-name")]
    assert names == sorted([CLIENT1, CLIENT1_OLD])


@pytest.mark.parametrize("initiators", [
    [CLIENT1],
    [CLIENT1, CLIENT1_OLD],
    ["iqn.2004-10.com.example:host1", "iqn.2004-10.com.example:host2", "eui.02004567a425678d"],
])
def test_render_parse_round_trip(initiators):
    iqn, backing = PREFIX + "volume-db01-data", "/dev/ember-thin/volume-db01-data"
    out = render_conf(iqn, backing, initiators, "ember_db01_data", "olg9DP2N9vXrCp3z", volume="db01-data")
    assert parse_conf(out) == {"iqn": iqn, "backing_store": backing, "initiators": sorted(initiators),
                               "chap_username": "ember_db01_data", "chap_password": "olg9DP2N9vXrCp3z"}


def test_parse_conf_ignores_comments_blank_lines_and_malformed_incominguser():
    out = "\n".join(["# a comment", "", "<target %svolume-x>" % PREFIX, "  # indented comment",
                     "    backing-store /dev/vg/volume-x", "    incominguser onlyuser", "</target>", ""])
    assert parse_conf(out) == {"iqn": PREFIX + "volume-x", "backing_store": "/dev/vg/volume-x", "initiators": [],
                               "chap_username": None, "chap_password": None}


def test_parse_conf_empty():
    assert parse_conf("") == {"iqn": None, "backing_store": None, "initiators": [], "chap_username": None,
                              "chap_password": None}


# --- generate_secret ---------------------------------------------------------------------------------------------

def test_generate_secret_default_length_and_alphabet():
    alphabet = set(string.ascii_letters + string.digits)
    for _ in range(200):
        secret = generate_secret()
        assert len(secret) == 16
        assert set(secret) <= alphabet


@pytest.mark.parametrize("length", [12, 13, 16])
def test_generate_secret_length(length):
    assert len(generate_secret(length)) == length


def test_generate_secret_is_random():
    assert len({generate_secret() for _ in range(50)}) == 50


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
