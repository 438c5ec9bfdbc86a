# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open-iscsi helper: ``iscsiadm -m session`` / ``-m node`` parsing against output captured on the lab's
client1, portal normalisation and the by-path device name."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    device_path,
    normalize_portal,
    parse_nodes,
    parse_sessions,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"


def text(name):
    return (FIXTURES / name).read_text()


# --- parse_sessions / parse_nodes -------------------------------------------------------------------------------

def test_parse_sessions_lab():
    assert parse_sessions(text("iscsiadm_session.txt")) == [
        {"sid": 1, "portal": "198.18.0.11:3260", "tpgt": 1, "target_iqn": PREFIX + "volume-db01-data"},
        {"sid": 2, "portal": "198.18.0.12:3260", "tpgt": 1, "target_iqn": PREFIX + "volume-db02-data"},
        {"sid": 3, "portal": "198.18.0.11:3260", "tpgt": 1, "target_iqn": PREFIX + "volume-logs01"},
    ]


def test_parse_nodes_lab():
    # tpgt 4294967295 is -1 (no tpgt known) printed unsigned for records created with -o new.
    assert parse_nodes(text("iscsiadm_node.txt")) == [
        {"portal": "198.18.0.11:3260", "target_iqn": PREFIX + "volume-db01-data"},
        {"portal": "198.18.0.12:3260", "target_iqn": PREFIX + "volume-db02-data"},
        {"portal": "198.18.0.11:3260", "target_iqn": PREFIX + "volume-logs01"},
    ]


def test_sessions_and_nodes_give_the_same_keys():
    # The connection module matches (target_iqn, portal) from both listings against normalize_portal().
    sessions = {(s["target_iqn"], s["portal"]) for s in parse_sessions(text("iscsiadm_session.txt"))}
    nodes = {(n["target_iqn"], n["portal"]) for n in parse_nodes(text("iscsiadm_node.txt"))}
    assert sessions == nodes
    assert (PREFIX + "volume-db01-data", normalize_portal("198.18.0.11")) in sessions


@pytest.mark.parametrize("out", [
    "",
    "iscsiadm: No active sessions.\n",
    "iscsiadm: No records found\n",
])
def test_parse_nothing(out):
    assert parse_sessions(out) == []
    assert parse_nodes(out) == []


def test_parse_nodes_negative_tpgt():
    assert parse_nodes("198.18.0.11:3260,-1 %svolume-x\n" % PREFIX) == [
        {"portal": "198.18.0.11:3260", "target_iqn": PREFIX + "volume-x"}]


def test_parse_ipv6_portals():
    # open-iscsi prints IPv6 portals bracketed: [addr]:port,tpgt (not from the lab, which is IPv4 only).
    sessions = parse_sessions("tcp: [7] [fd00::11]:3260,1 %svolume-x (non-flash)\n" % PREFIX)
    assert sessions == [{"sid": 7, "portal": "[fd00::11]:3260", "tpgt": 1, "target_iqn": PREFIX + "volume-x"}]
    assert sessions[0]["portal"] == normalize_portal("[fd00::11]")
    assert parse_nodes("[fd00::11]:3260,1 %svolume-x\n" % PREFIX) == [
        {"portal": "[fd00::11]:3260", "target_iqn": PREFIX + "volume-x"}]


# --- normalize_portal --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("portal", "expected"), [
    ("198.18.0.11", "198.18.0.11:3260"),
    (" 198.18.0.11 ", "198.18.0.11:3260"),
    ("198.18.0.11:3260", "198.18.0.11:3260"),
    ("198.18.0.11:3261", "198.18.0.11:3261"),
    ("stor1.example", "stor1.example:3260"),
    ("[fd00::11]", "[fd00::11]:3260"),
    ("[fd00::11]:3260", "[fd00::11]:3260"),
    ("[fd00::11]:3261", "[fd00::11]:3261"),
    ("[::1]", "[::1]:3260"),
])
def test_normalize_portal(portal, expected):
    assert normalize_portal(portal) == expected


def test_normalize_portal_default_port():
    assert normalize_portal("198.18.0.11", default_port=3261) == "198.18.0.11:3261"
    assert normalize_portal("[fd00::11]", default_port=3261) == "[fd00::11]:3261"
    assert normalize_portal("198.18.0.11:3260", default_port=3261) == "198.18.0.11:3260"


def test_normalize_portal_is_idempotent():
    for portal in ("198.18.0.11", "[fd00::11]", "198.18.0.12:3261"):
        once = normalize_portal(portal)
        assert normalize_portal(once) == once


@pytest.mark.parametrize("portal", ["fd00::11", "::1"])
def test_normalize_portal_bare_ipv6(portal):
    assert normalize_portal(portal) == "[%s]:3260" % portal


# --- device_path -------------------------------------------------------------------------------------------------

def test_device_path_lab():
    session = parse_sessions(text("iscsiadm_session.txt"))[0]
    assert device_path(session["portal"], session["target_iqn"], 1) == (
        "/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-iqn.2026-11.io.ember.blockstore:volume-db01-data-lun-1")


def test_device_path_lun_is_an_integer():
    assert device_path("198.18.0.11:3260", PREFIX + "volume-x", "0") == (
        "/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-%svolume-x-lun-0" % PREFIX)
    assert device_path("198.18.0.11:3260", PREFIX + "volume-x", 12).endswith("-lun-12")


def _proc(root, pid, comm, links):
    fd = root / str(pid) / "fd"
    fd.mkdir(parents=True)
    (root / str(pid) / "comm").write_text(comm + "\n")
    for number, target in enumerate(links):
        (fd / str(number)).symlink_to(target)


def test_openers_name_each_process_and_skip_the_ignored(tmp_path):
    # A fake /proc: fd symlinks to device nodes (they need not exist); multipathd holds every path open.
    proc = tmp_path / "proc"
    _proc(proc, 224, "multipathd", ["/dev/sdb", "/dev/sdc"])
    _proc(proc, 900, "dd", ["/dev/sdb1"])
    _proc(proc, 901, "sh", ["/dev/sdbb", "/dev/null"])
    from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import MULTIPATH_OPENERS, openers
    assert openers("/dev/sdb", proc=str(proc)) == ["open by multipathd[224]", "open by dd[900]"]
    assert openers("/dev/sdb", proc=str(proc), ignore=MULTIPATH_OPENERS) == ["open by dd[900]"]
    assert openers("/dev/sdc", proc=str(proc), ignore=MULTIPATH_OPENERS) == []
