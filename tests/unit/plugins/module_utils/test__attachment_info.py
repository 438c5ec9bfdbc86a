# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_attachment_info``: the parsers over outputs captured in the lab (tgt/, iscsiadm_*.txt) and the assembly of the
storage and consumer views. The sysfs readers run over a tree of real files under tmp_path.

The ``dmsetup status`` texts are not captures (the lab has no multipath): they are written in the format
drivers/md/dm-mpath.c ``multipath_status`` prints (STATUSTYPE_INFO), for round-robin (no per-path info arguments)
and service-time (two: in-flight size and relative throughput).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _attachment_info as info
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import parse_nodes, parse_sessions
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_show

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
CLIENT1 = "iqn.1993-08.org.debian:01:d53fc39a07f1"  # client1 in the name-only captures
CLIENT1_ACL = "iqn.1993-08.org.debian:01:ed703fed4dfd"  # client1 in the address-ACL captures
DB01_CONF = "/etc/tgt/conf.d/ember-volume-db01-data.conf"
DB01_IQN = PREFIX + "volume-db01-data"
LOGS01_IQN = PREFIX + "volume-logs01"
ROUND_ROBIN = "0 2097152 multipath 2 0 0 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0\n"
# One path failed twice, in the second (enabled) of two groups; service-time's two info arguments per path.
SERVICE_TIME = "mpatha: 0 2097152 multipath 2 1 0 0 2 1 A 0 1 2 8:16 A 0 0 1 E 0 1 2 8:32 F 2 0 1\n"


def text(name):
    return (FIXTURES / name).read_text()


def views(show, conf=None, path=DB01_CONF, portals=("198.18.0.11:3260",), names=None):
    files = {path: text(conf) if conf and "\n" not in conf else conf} if conf else {}
    show_text = text(show) if show else ""
    return info.storage_view(files, parse_show(show_text), info.parse_show_details(show_text), list(portals), PREFIX,
                             names)


# --- parsers -------------------------------------------------------------------------------------------------------

def test_show_details_sessions_and_accounts():
    details = info.parse_show_details(text("tgt/show_two_targets_acl.txt"))
    assert details == {
        DB01_IQN: {"nexuses": [{"nexus": 1, "initiator": CLIENT1_ACL, "alias": "client1",
                                "addresses": ["198.18.0.21"]}],
                   "incoming": ["ember_db01_data_c6f08c3f"], "outgoing": []},
        LOGS01_IQN: {"nexuses": [{"nexus": 2, "initiator": CLIENT1_ACL, "alias": "client1",
                                  "addresses": ["198.18.0.21"]}],
                     "incoming": ["ember_logs01_5591e8e0"], "outgoing": []},
    }


def test_show_details_outgoing_account_and_two_sessions():
    """show_connected.txt with a second session (no alias, two connections) and an outgoing account added, in the
    lines tgt prints (usr/target.c: ``<user> (outgoing)``; usr/iscsi: ``alias: none``)."""
    show = text("tgt/show_connected.txt").replace(
        "    LUN information:\n",
        "        I_T nexus: 4\n"
        "            Initiator: iqn.1993-08.org.debian:01:aaaa alias: none\n"
        "            Connection: 0\n"
        "                IP Address: 198.18.0.22\n"
        "            Connection: 1\n"
        "                IP Address: 198.18.1.22\n"
        "    LUN information:\n").replace("        ember_b\n", "        ember_b\n        ember_b_out (outgoing)\n")
    details = info.parse_show_details(show)[PREFIX + "volume-b"]
    assert details == {
        "nexuses": [{"nexus": 1, "initiator": "iqn.1993-08.org.debian:01:9263f289471f", "alias": "client1",
                     "addresses": ["198.18.0.21"]},
                    {"nexus": 4, "initiator": "iqn.1993-08.org.debian:01:aaaa", "alias": None,
                     "addresses": ["198.18.0.22", "198.18.1.22"]}],
        "incoming": ["ember_b"], "outgoing": ["ember_b_out"]}
    # the driver's parser keeps the outgoing user apart from the incoming accounts (mutual CHAP)
    parsed = parse_show(show)[PREFIX + "volume-b"]
    assert (parsed["accounts"], parsed["outgoing_account"]) == (["ember_b"], "ember_b_out")


def test_conf_acl_address_file_and_name_only_file():
    assert info.conf_acl(text("tgt/conf_db01_acl.conf")) == ["198.18.0.21"]  # the IQN is a comment: not bound
    assert info.conf_acl(text("tgt/conf_db01.conf")) == ["ALL", CLIENT1]  # tgt-admin binds ALL without addresses


def test_conf_outgoing_user_never_the_secret():
    assert info.conf_outgoing_user(text("tgt/conf_db01_acl.conf")) is None
    conf = text("tgt/conf_db01_acl.conf").replace("</target>", "    outgoinguser ember_out OutSecret12345\n</target>")
    assert info.conf_outgoing_user(conf) == "ember_out"


def test_multipath_status_round_robin():
    assert info.parse_multipath_status(ROUND_ROBIN) == {
        "8:16": {"dm_state": "active", "failures": 0, "group": 1, "group_state": "active"},
        "8:32": {"dm_state": "active", "failures": 0, "group": 1, "group_state": "active"}}


def test_multipath_status_two_groups_a_failed_path_and_a_name_prefix():
    assert info.parse_multipath_status(SERVICE_TIME) == {
        "8:16": {"dm_state": "active", "failures": 0, "group": 1, "group_state": "active"},
        "8:32": {"dm_state": "failed", "failures": 2, "group": 2, "group_state": "enabled"}}


@pytest.mark.parametrize(("status", "fragment"), [
    ("", "empty"),
    ("0 2097152 linear 8:16 0\n", "not a multipath map"),
    ("0 2097152 multipath 2 0 0 0 1 1 A 0 2 0 8:16 A 0\n", "truncated"),
    ("0 2097152 multipath 2 0 0 0 1 1 A 0 1 0 8:16 X 0\n", "unexpected path"),
    ("0 2097152 multipath two 0 0\n", "expected a number"),
])
def test_multipath_status_that_is_not_one_raises(status, fragment):
    with pytest.raises(ValueError, match=fragment):
        info.parse_multipath_status(status)


@pytest.mark.parametrize(("iqn", "volume"), [
    (DB01_IQN, "db01-data"),
    (PREFIX + "db01-data", None),  # not volume-<name>
    (PREFIX + "volume-Bad_Name", None),
    ("iqn.2003-01.org.example:volume-db01-data", None),  # another prefix
])
def test_volume_of_iqn(iqn, volume):
    assert info.volume_of_iqn(iqn, PREFIX) == volume


# --- storage view --------------------------------------------------------------------------------------------------

def test_storage_file_and_live_match_and_a_live_target_without_file():
    db01, logs01 = views("tgt/show_two_targets_acl.txt", "tgt/conf_db01_acl.conf")
    assert db01 == {
        "volume": "db01-data", "target_iqn": DB01_IQN, "managed": True, "conf_path": DB01_CONF, "live": True,
        "tid": 1, "state": "ready", "portals": ["198.18.0.11:3260"], "lun": 1,
        "backing_store": "/dev/ember-thin/volume-db01-data", "size_bytes": 1074 * 10**6, "backing_size_bytes": None,
        "acl": ["198.18.0.21"], "initiators": [CLIENT1_ACL], "chap_username": "ember_db01_data_c6f08c3f",
        "mutual_chap": False,
        "sessions": [{"nexus": 1, "initiator": CLIENT1_ACL, "alias": "client1", "addresses": ["198.18.0.21"]}],
        "file_matches_live": True, "problems": []}
    assert (logs01["volume"], logs01["managed"], logs01["conf_path"], logs01["tid"]) == ("logs01", False, None, 2)
    assert (logs01["backing_store"], logs01["size_bytes"]) == ("/dev/ember-thick/volume-logs01", 268 * 10**6)
    assert (logs01["chap_username"], logs01["initiators"]) == ("ember_logs01_5591e8e0", [])
    assert logs01["file_matches_live"] is None
    assert logs01["problems"] == ["no target file of the project for this target"]


def test_storage_name_only_file_matches_its_live_target():
    """The export of the version before the address ACL: tgt-admin bound ALL and the initiator's name."""
    (db01, _logs01) = views("tgt/show_two_targets.txt", "tgt/conf_db01.conf")
    assert (db01["acl"], db01["initiators"]) == (["ALL", CLIENT1], [CLIENT1])
    assert db01["chap_username"] == "ember_db01_data"
    assert (db01["file_matches_live"], db01["problems"]) == (True, [])


def test_storage_file_that_differs_from_the_live_target():
    (db01, _logs01) = views("tgt/show_two_targets.txt", "tgt/conf_db01_acl.conf")
    assert db01["file_matches_live"] is False
    assert db01["problems"] == [
        "ACL is ['ALL', '%s'], not ['198.18.0.21']" % CLIENT1,
        "incoming CHAP accounts are ['ember_db01_data'], not ['ember_db01_data_c6f08c3f']"]
    assert db01["acl"] == ["ALL", CLIENT1]  # the live ACL


def test_storage_outgoing_account_is_reported_and_compared_without_its_secret():
    conf = text("tgt/conf_db01_acl.conf").replace("</target>", "    outgoinguser ember_out OutSecret12345\n</target>")
    (db01, _logs01) = views("tgt/show_two_targets_acl.txt", conf)
    assert db01["mutual_chap"] is True
    assert db01["problems"] == ["outgoing CHAP account is none, not ['ember_out']"]
    assert "OutSecret12345" not in repr(db01) and "2LSwW7408ePgQjaW" not in repr(db01)


def test_storage_tgtd_down_reports_the_file():
    (db01,) = views(None, "tgt/conf_db01_acl.conf", portals=())
    assert (db01["live"], db01["tid"], db01["state"], db01["size_bytes"], db01["sessions"]) == (
        False, None, None, None, [])
    assert (db01["backing_store"], db01["acl"], db01["portals"]) == (
        "/dev/ember-thin/volume-db01-data", ["198.18.0.21"], [])
    assert (db01["file_matches_live"], db01["problems"]) == (False, ["the target is not live"])


def test_storage_foreign_file_and_other_prefix_and_filter():
    foreign = text("tgt/conf_db01_acl.conf").split("\n", 1)[1]  # without the project's header
    (db01, logs01) = views("tgt/show_two_targets_acl.txt", foreign)
    assert (db01["managed"], db01["conf_path"], logs01["managed"]) == (False, None, False)
    assert views("tgt/show_two_targets_acl.txt", "tgt/conf_db01_acl.conf", names={"logs01"})[0]["volume"] == "logs01"
    assert info.storage_view({}, parse_show(text("tgt/show_two_targets_acl.txt")), {}, [], "iqn.2003-01.org.x:") == []


def test_storage_backing_size_is_read_when_given():
    show = text("tgt/show_two_targets_acl.txt")
    items = info.storage_view({}, parse_show(show), info.parse_show_details(show), [], PREFIX,
                              backing_size={"/dev/ember-thin/volume-db01-data": 1073741824}.get)
    assert [i["backing_size_bytes"] for i in items] == [1073741824, None]


# --- consumer view -------------------------------------------------------------------------------------------------

def test_consumer_records_merge_sessions_and_node_records():
    sessions = parse_sessions(text("iscsiadm_session.txt"))[:1]
    nodes = parse_nodes(text("iscsiadm_node.txt") + "198.18.0.11:3260,1 iqn.2003-01.org.example:other\n")
    records = info.consumer_records(sessions, nodes, PREFIX)
    assert [(r["volume"], r["portal"], r["logged_in"], r["node_record"]) for r in records] == [
        ("db01-data", "198.18.0.11:3260", True, True),
        ("db02-data", "198.18.0.12:3260", False, True),
        ("logs01", "198.18.0.11:3260", False, True)]
    assert records[0]["device"] == "/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-%s-lun-1" % DB01_IQN
    assert [r["volume"] for r in info.consumer_records(sessions, nodes, PREFIX, {"logs01"})] == ["logs01"]


def test_consumer_records_ipv6_portal():
    (record,) = info.consumer_records([], [{"portal": "fd00::11", "target_iqn": DB01_IQN}], PREFIX)
    assert record["portal"] == "[fd00::11]:3260"


def make_sysfs(root, devices):
    """A /sys/class/block tree: ``{name: {relative file: content}}``; ``holders``/``slaves`` as lists of names."""
    for name, files in devices.items():
        for rel, content in files.items():
            path = root / name / rel
            if isinstance(content, list):
                path.mkdir(parents=True, exist_ok=True)
                for entry in content:
                    (path / entry).mkdir()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content + "\n")
    return str(root)


def multipath_tree(root, sdc_state="running"):
    return make_sysfs(root, {
        "sdb": {"size": "2097152", "dev": "8:16", "device/state": "running", "holders": ["dm-0"]},
        "sdc": {"size": "2097152", "dev": "8:32", "device/state": sdc_state, "holders": ["dm-0"]},
        "dm-0": {"size": "2097152", "dev": "253:0", "dm/name": "mpatha", "dm/uuid": "mpath-360000000000000001",
                 "slaves": ["sdb", "sdc"], "holders": []},
    })


def two_paths():
    """db01-data through two portals (the second a node record with its session), each LUN on its own sd."""
    sessions = parse_sessions(text("iscsiadm_session.txt"))[:1]
    sessions.append(dict(sessions[0], sid=4, portal="198.18.1.11:3260"))
    return info.consumer_records(sessions, [], PREFIX)


def test_consumer_device_size_and_multipath_paths(tmp_path):
    sys_block = multipath_tree(tmp_path, sdc_state="transport-offline")
    records = two_paths()
    devices = {records[0]["device"]: "/dev/sdb", records[1]["device"]: "/dev/sdc"}
    asked = []

    def dm_status(name):
        asked.append(name)
        return SERVICE_TIME, None

    in_use = {"/dev/sdb": ["holder:dm-0"], "/dev/sdc": ["holder:dm-0"], "/dev/dm-0": ["/srv/db"]}
    items = info.consumer_view(records, devices.get, lambda real: in_use.get(real, []), dm_status, sys_block)
    assert asked == ["mpatha"]  # one status read for the map of both records
    first = items[0]
    assert (first["device"], first["real_device"], first["size_bytes"], first["in_use"]) == (
        records[0]["device"], "/dev/sdb", 2097152 * 512, ["holder:dm-0"])
    assert first["multipath"] == {
        "name": "mpatha", "device": "/dev/mapper/mpatha", "dm_device": "/dev/dm-0", "in_use": ["/srv/db"],
        "paths": [{"device": "/dev/sdb", "state": "running", "dm_state": "active", "failures": 0,
                   "group_state": "active"},
                  {"device": "/dev/sdc", "state": "transport-offline", "dm_state": "failed", "failures": 2,
                   "group_state": "enabled"}],
        "dm_status_error": None}
    assert items[1]["multipath"] == first["multipath"]


def test_consumer_without_dmsetup_says_so_in_the_map(tmp_path):
    sys_block = multipath_tree(tmp_path)
    records = two_paths()[:1]
    error = "dmsetup is not installed: the paths' states in the map are not read"
    (item,) = info.consumer_view(records, lambda path: "/dev/sdb", lambda real: [], lambda name: (None, error),
                                 sys_block)
    assert item["multipath"]["dm_status_error"] == error
    assert [(p["device"], p["state"], p["dm_state"], p["failures"]) for p in item["multipath"]["paths"]] == [
        ("/dev/sdb", "running", None, None), ("/dev/sdc", "running", None, None)]


def test_consumer_unreadable_map_status_is_an_error_field(tmp_path):
    sys_block = multipath_tree(tmp_path)
    (item,) = info.consumer_view(two_paths()[:1], lambda path: "/dev/sdb", lambda real: [],
                                 lambda name: ("0 2097152 linear 8:16 0\n", None), sys_block)
    assert item["multipath"]["dm_status_error"].startswith("dmsetup status of mpatha is not read: not a multipath")


def test_consumer_lvm_holder_is_in_use_but_not_multipath(tmp_path):
    sys_block = make_sysfs(tmp_path, {
        "sdb": {"size": "524288", "dev": "8:16", "holders": ["dm-1"]},
        "dm-1": {"dm/name": "appvg-data", "dm/uuid": "LVM-abc", "slaves": ["sdb"]},
    })
    (item,) = info.consumer_view(two_paths()[:1], lambda path: "/dev/sdb", lambda real: ["holder:dm-1"],
                                 lambda name: pytest.fail("no status of a map that is not multipath"), sys_block)
    assert (item["size_bytes"], item["in_use"], item["multipath"]) == (524288 * 512, ["holder:dm-1"], None)


def test_consumer_without_device(tmp_path):
    (item,) = info.consumer_view(two_paths()[:1], lambda path: None, lambda real: pytest.fail("no device"),
                                 lambda name: pytest.fail("no map"), str(tmp_path))
    assert (item["device"], item["real_device"], item["size_bytes"], item["in_use"], item["multipath"]) == (
        None, None, None, [], None)
    assert (item["logged_in"], item["node_record"]) == (True, False)
