# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_converge``: plan -> batch items of each phase, and the report.

Plans are written in the shape ``_schedule.plan`` returns (one entry per inventory volume), for the lab: stor1
(198.18.0.11) with pools ``stor1@lvm-thick`` / ``stor1@lvm-thin``, stor2 (198.18.0.12), consumer client1. The
last test runs the real planner over ``backend_info.pool_facts`` of the state captured after the converge run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import pool_facts
from ansible_collections.ember.blockstore.plugins.module_utils._converge import (
    attachment_items,
    connect_items,
    disconnect_items,
    format_table,
    volume_items,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_conf, parse_show
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan as schedule_plan

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
CLIENT1 = "iqn.1993-08.org.debian:01:d53fc39a07f1"
CLIENT2 = "iqn.1993-08.org.debian:01:9263f289471f"
ADDRESSES = {"client1": "198.18.0.21", "client2": "198.18.0.22"}  # blockstore_storage_ip of the consumers
MiB, GiB = 2**20, 2**30

POOLS = {  # backend -> (vg, thin_pool)
    "lvm-thick": ("ember-thick", None),
    "lvm-thin": ("ember-thin", "thinpool"),
}


def entry(name, action, host="stor1", backend="lvm-thin", state="present", size=None, attachments=(),
          force=False, volume_type=None):
    """A plan entry as ``_schedule._entry`` builds it (the keys _converge reads)."""
    placed = host is not None
    vg, thin_pool = POOLS[backend] if placed else (None, None)
    return {"name": name, "state": state, "action": action, "size_bytes": size, "volume_type": volume_type,
            "host": host if placed else None, "backend": backend if placed else None,
            "pool_id": "%s@%s" % (host, backend) if placed else None, "vg": vg, "thin_pool": thin_pool,
            "attachments": list(attachments), "force": force, "reason": "test"}


def pool(host, backend, volumes=(), volume_clear="zero", volume_clear_size_bytes=0):
    """The keys of a backend_info pool that _converge reads."""
    return {"id": "%s@%s" % (host, backend), "host": host, "backend": backend, "volume_clear": volume_clear,
            "volume_clear_size_bytes": volume_clear_size_bytes, "volumes": list(volumes)}


def vol(name, attached_to=(), target_iqn=None, size=GiB):
    return {"name": name, "size_bytes": size, "attached_to": list(attached_to), "target_iqn": target_iqn}


@pytest.fixture()
def plan():
    return {"volumes": [
        entry("db01-data", "none", size=GiB, attachments=["client1"], volume_type="fast"),
        entry("db02-data", "create", host="stor2", size=GiB, attachments=["client1"], volume_type="fast"),
        entry("logs01", "extend", backend="lvm-thick", size=512 * MiB, attachments=["client1", "client2"],
              volume_type="bulk"),
        entry("web01", "create", backend="lvm-thick", size=256 * MiB, volume_type="bulk"),
        entry("scratch01", "delete", backend="lvm-thick", state="absent", force=True, volume_type="bulk"),
        entry("archive01", "delete", state="absent", volume_type="fast"),
        entry("gone", "absent", host=None, state="absent"),
    ], "unmanaged": [
        {"name": "b", "pool_id": "stor1@lvm-thin", "host": "stor1", "backend": "lvm-thin", "size_bytes": GiB,
         "volume_type": None, "reason": "not in inventory"},
    ]}


@pytest.fixture()
def pools():
    return [
        pool("stor1", "lvm-thick", [vol("logs01", [CLIENT1], PREFIX + "volume-logs01", 256 * MiB),
                                    vol("scratch01", [CLIENT1], PREFIX + "volume-scratch01", 512 * MiB)],
             volume_clear="zero", volume_clear_size_bytes=MiB),
        pool("stor1", "lvm-thin", [vol("db01-data", [CLIENT1], PREFIX + "volume-db01-data"),
                                   vol("archive01", [], None, 2 * GiB)], volume_clear="none"),
        pool("stor2", "lvm-thin", []),
    ]


# --- volume_items ------------------------------------------------------------------------------------------------

def test_volume_items_present(plan, pools):
    # db01-data (action none) is confirmed by the facts: no item, so a host with nothing to change gets no run.
    assert volume_items(plan, "stor1", pools) == [
        {"name": "logs01", "size": "%dB" % (512 * MiB), "state": "present", "vg": "ember-thick", "thin_pool": None,
         "volume_type": "bulk", "backend": "lvm-thick"},
        {"name": "web01", "size": "%dB" % (256 * MiB), "state": "present", "vg": "ember-thick", "thin_pool": None,
         "volume_type": "bulk", "backend": "lvm-thick"},
    ]


def test_volume_items_other_host(plan, pools):
    assert [i["name"] for i in volume_items(plan, "stor2", pools)] == ["db02-data"]
    assert volume_items(plan, "client1", pools) == []


def test_volume_items_absent_carry_the_pool_wipe_settings(plan, pools):
    assert volume_items(plan, "stor1", pools, phase="absent") == [
        {"name": "scratch01", "state": "absent", "vg": "ember-thick", "thin_pool": None, "force": True,
         "cascade": False, "volume_clear": "zero", "volume_clear_size": "%dB" % MiB},
        {"name": "archive01", "state": "absent", "vg": "ember-thin", "thin_pool": "thinpool", "force": False,
         "cascade": False, "volume_clear": "none", "volume_clear_size": "0B"},
    ]
    assert volume_items(plan, "stor2", pools, phase="absent") == []


def test_volume_items_absent_without_pool_facts_defaults_to_zero(plan):
    items = volume_items(plan, "stor1", None, phase="absent")
    assert [(i["volume_clear"], i["volume_clear_size"]) for i in items] == [("zero", "0B"), ("zero", "0B")]


# --- attachment_items --------------------------------------------------------------------------------------------

def test_attachment_items_present(plan):
    initiators = {"client1": CLIENT1, "client2": CLIENT2}
    assert attachment_items(plan, "stor1", initiators) == [
        {"volume": "db01-data", "vg": "ember-thin", "state": "present", "initiators": [CLIENT1]},
        {"volume": "logs01", "vg": "ember-thick", "state": "present", "initiators": sorted([CLIENT1, CLIENT2])},
    ]
    assert attachment_items(plan, "stor2", initiators) == [
        {"volume": "db02-data", "vg": "ember-thin", "state": "present", "initiators": [CLIENT1]}]


def test_attachment_items_same_iqn_twice_is_one_acl_entry(plan):
    items = attachment_items(plan, "stor1", {"client1": CLIENT1, "client2": CLIENT1})
    assert items[1]["initiators"] == [CLIENT1]


@pytest.mark.parametrize("initiators", [{"client1": CLIENT1}, {"client1": CLIENT1, "client2": ""},
                                        {"client1": CLIENT1, "client2": None}])
def test_attachment_items_missing_initiator(plan, initiators):
    with pytest.raises(ValueError) as info:
        attachment_items(plan, "stor1", initiators)
    assert str(info.value) == ("volume logs01: attachment host(s) client2 have no initiator IQN (is the "
                               "iscsi_initiator role applied to them?)")


def test_attachment_items_missing_initiators_are_all_named(plan):
    plan["volumes"] = [e for e in plan["volumes"] if e["name"] == "logs01"]
    with pytest.raises(ValueError, match=r"^volume logs01: attachment host\(s\) client1, client2 have no"):
        attachment_items(plan, "stor1", {})


def test_attachment_items_absent_only_exported_deletes(plan, pools):
    # scratch01 is exported (target_iqn in the facts), archive01 is not.
    assert attachment_items(plan, "stor1", {}, pools, phase="absent") == [
        {"volume": "scratch01", "vg": "ember-thick", "state": "absent"}]
    assert attachment_items(plan, "stor1", {}, None, phase="absent") == []


def test_attachment_items_absent_need_no_addresses(plan, pools):
    assert attachment_items(plan, "stor1", {}, pools, phase="absent", addresses={}) == [
        {"volume": "scratch01", "vg": "ember-thick", "state": "absent"}]


def test_attachment_items_with_addresses(plan):
    initiators = {"client1": CLIENT1, "client2": CLIENT2}
    assert attachment_items(plan, "stor1", initiators, addresses=ADDRESSES) == [
        {"volume": "db01-data", "vg": "ember-thin", "state": "present", "initiators": [CLIENT1],
         "initiator_addresses": ["198.18.0.21"]},
        {"volume": "logs01", "vg": "ember-thick", "state": "present", "initiators": sorted([CLIENT1, CLIENT2]),
         "initiator_addresses": ["198.18.0.21", "198.18.0.22"]},
    ]
    assert attachment_items(plan, "stor2", initiators, addresses=ADDRESSES) == [
        {"volume": "db02-data", "vg": "ember-thin", "state": "present", "initiators": [CLIENT1],
         "initiator_addresses": ["198.18.0.21"]}]


def test_attachment_items_addresses_are_sorted_and_deduplicated(plan):
    items = attachment_items(plan, "stor1", {"client1": CLIENT1, "client2": CLIENT2},
                             addresses={"client1": "198.18.0.30", "client2": "198.18.0.30"})
    assert items[1]["initiator_addresses"] == ["198.18.0.30"]
    items = attachment_items(plan, "stor1", {"client1": CLIENT1, "client2": CLIENT2},
                             addresses={"client1": "198.18.0.30", "client2": "198.18.0.4"})
    assert items[1]["initiator_addresses"] == ["198.18.0.30", "198.18.0.4"]


def test_attachment_items_a_consumer_not_attached_here_needs_no_address(plan):
    # stor2 exports db02-data to client1 only: client2 having no address does not matter there.
    items = attachment_items(plan, "stor2", {"client1": CLIENT1, "client2": CLIENT2},
                             addresses={"client1": "198.18.0.21", "client2": ""})
    assert [i["initiator_addresses"] for i in items] == [["198.18.0.21"]]


@pytest.mark.parametrize("addresses", [{"client1": "198.18.0.21"}, {"client1": "198.18.0.21", "client2": ""},
                                       {"client1": "198.18.0.21", "client2": None}])
def test_attachment_items_missing_address(plan, addresses):
    with pytest.raises(ValueError) as info:
        attachment_items(plan, "stor1", {"client1": CLIENT1, "client2": CLIENT2}, addresses=addresses)
    assert str(info.value) == ("volume logs01: attachment host(s) client2 have no blockstore_storage_ip (their "
                               "address on the storage network, bound in the target's ACL)")


def test_attachment_items_missing_addresses_are_all_named(plan):
    plan["volumes"] = [e for e in plan["volumes"] if e["name"] == "logs01"]
    with pytest.raises(ValueError, match=r"^volume logs01: attachment host\(s\) client1, client2 have no "
                                         r"blockstore_storage_ip"):
        attachment_items(plan, "stor1", {"client1": CLIENT1, "client2": CLIENT2}, addresses={})


def test_attachment_items_missing_initiator_is_reported_before_a_missing_address(plan):
    with pytest.raises(ValueError, match=r"^volume logs01: attachment host\(s\) client2 have no initiator IQN"):
        attachment_items(plan, "stor1", {"client1": CLIENT1}, addresses={"client1": "198.18.0.21"})


# --- connect_items -----------------------------------------------------------------------------------------------

def _info(volume, initiators, portal="198.18.0.11:3260"):
    return {"driver_volume_type": "iscsi", "target_iqn": PREFIX + "volume-" + volume, "target_portal": portal,
            "target_lun": 1, "auth_method": "CHAP", "auth_username": "ember_" + volume.replace("-", "_"),
            "auth_password": "s3cretS3cret", "volume": volume, "initiators": initiators}


def test_connect_items():
    results = [
        {"attachments": [{"connection_info": _info("logs01", [CLIENT1, CLIENT2])},
                         {"connection_info": _info("db01-data", [CLIENT1])},
                         {"connection_info": None}]},  # an unexport
        {"attachments": [{"connection_info": _info("db02-data", [CLIENT2], "198.18.0.12:3260")}]},
        {},  # a storage node whose attachment task was skipped
        None,
    ]
    assert connect_items(results, CLIENT1) == [
        {"target_iqn": PREFIX + "volume-db01-data", "target_portal": "198.18.0.11:3260", "target_lun": 1,
         "auth_method": "CHAP", "auth_username": "ember_db01_data", "auth_password": "s3cretS3cret",
         "volume": "db01-data", "state": "present"},
        {"target_iqn": PREFIX + "volume-logs01", "target_portal": "198.18.0.11:3260", "target_lun": 1,
         "auth_method": "CHAP", "auth_username": "ember_logs01", "auth_password": "s3cretS3cret",
         "volume": "logs01", "state": "present"},
    ]
    assert [i["volume"] for i in connect_items(results, CLIENT2)] == ["db02-data", "logs01"]
    assert connect_items(results, "iqn.2004-10.com.example:other") == []


def test_connect_items_nothing():
    assert connect_items(None, CLIENT1) == []
    assert connect_items([{"attachments": None}], CLIENT1) == []


# --- disconnect_items --------------------------------------------------------------------------------------------

def test_disconnect_items(plan, pools):
    portals = {"stor1": "198.18.0.11", "stor2": "198.18.0.12"}
    assert disconnect_items(plan, pools, CLIENT1, portals) == [
        {"target_iqn": PREFIX + "volume-scratch01", "target_portal": "198.18.0.11:3260", "volume": "scratch01",
         "state": "absent", "force": True}]  # scratch01 is deleted with force: true (it is attached)
    assert disconnect_items(plan, pools, CLIENT2, portals) == []


def test_disconnect_items_derives_the_iqn_and_keeps_a_port(plan, pools):
    pools[0]["volumes"][1]["target_iqn"] = None
    out = disconnect_items(plan, pools, CLIENT1, {"stor1": "198.18.0.11:3261"}, prefix="iqn.2010-10.org.test:")
    assert out == [{"target_iqn": "iqn.2010-10.org.test:volume-scratch01", "target_portal": "198.18.0.11:3261",
                    "volume": "scratch01", "state": "absent", "force": True}]


def test_disconnect_items_volume_not_in_facts(plan):
    assert disconnect_items(plan, [], CLIENT1, {"stor1": "198.18.0.11"}) == []


# --- format_table ----------------------------------------------------------------------------------

def test_format_table_alignment():
    rows = [
        {"volume": "db01-data", "size": "1 GiB", "type": "fast", "pool": "stor1@lvm-thin", "action": "none",
         "status": "in-use", "attached_to": "client1", "device": "client1:/dev/sdb"},
        {"volume": "a", "size": "512 MiB", "type": "-", "pool": "-", "action": "create", "status": "creating",
         "attached_to": "-", "device": "-"},
    ]
    lines = format_table(rows)
    assert lines == [
        "volume     size     type  pool            zone  action  status    attached to  device",
        "---------  -------  ----  --------------  ----  ------  --------  -----------  ----------------",
        "db01-data  1 GiB    fast  stor1@lvm-thin  -     none    in-use    client1      client1:/dev/sdb",
        "a          512 MiB  -     -               -     create  creating  -            -",
    ]
    # Every column starts at the same offset on every line (the rule's gaps mark the columns).
    starts = [i + 2 for i, ch in enumerate(lines[1]) if lines[1][i:i + 2] == "  " and lines[1][i + 2:i + 3] == "-"]
    for line in lines:
        for start in starts:
            assert line[start - 2:start] == "  "
            assert line[start] != " "


def test_format_table_header_only_and_custom_columns():
    assert format_table([]) == [
        "volume  size  type  pool  zone  action  status  attached to  device",
        "------  ----  ----  ----  ----  ------  ------  -----------  ------",
    ]
    assert format_table([{"volume": "longer-name"}], columns=("volume", "size_bytes")) == [
        "volume       size bytes",
        "-----------  ----------",
        "longer-name  -",
    ]


# --- the plan from real facts ------------------------------------------------------------------------------------

def _lab_pools():
    state = LvmState(parse_vgs((FIXTURES / "lvm/vgs_converged.json").read_text()),
                     parse_lvs((FIXTURES / "lvm/lvs_converged.json").read_text()))
    conf = parse_conf((FIXTURES / "tgt/conf_db01.conf").read_text())
    exports = {conf["backing_store"]: conf}
    live = parse_show((FIXTURES / "tgt/show_two_targets.txt").read_text())
    out = []
    for backend in ({"name": "lvm-thick", "driver": "lvm", "vg": "ember-thick", "availability_zone": "az1"},
                    {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "availability_zone": "az1",
                     "max_over_subscription_ratio": 4.0}):
        raw = {key: spec.get("default") for key, spec in backend_options().items()}
        raw.update(backend)
        cfg = backend_config(raw)
        cfg["volume_clear_size_bytes"] = 0
        out.append(pool_facts("stor1", cfg, state, exports, live, False))
    return out


def test_items_from_a_real_plan():
    pools = _lab_pools()
    types = {"fast": {"extra_specs": {"volume_backend_name": "lvm-thin"}},
             "bulk": {"extra_specs": {"volume_backend_name": "lvm-thick"}}}
    volumes = [
        {"name": "db01-data", "size": "1GiB", "volume_type": "fast", "attachments": [{"host": "client1"}]},
        {"name": "logs01", "size": "512MiB", "volume_type": "bulk", "attachments": [{"host": "client1"}]},
        {"name": "scratch01", "state": "absent"},
        {"name": "archive01", "size": "2GiB", "volume_type": "fast"},
    ]
    result = schedule_plan(volumes, pools, types, consumers=["client1"])
    assert [(e["name"], e["action"]) for e in result["volumes"]] == [
        ("db01-data", "none"), ("logs01", "extend"), ("scratch01", "delete"), ("archive01", "none")]
    assert volume_items(result, "stor1", pools) == [
        {"name": "logs01", "size": "%dB" % (512 * MiB), "state": "present", "vg": "ember-thick", "thin_pool": None,
         "volume_type": "bulk", "backend": "lvm-thick"},
    ]
    assert volume_items(result, "stor1", pools, phase="absent") == [
        {"name": "scratch01", "state": "absent", "vg": "ember-thick", "thin_pool": None, "force": False,
         "cascade": False, "volume_clear": "zero", "volume_clear_size": "0B"}]
    assert attachment_items(result, "stor1", {"client1": CLIENT1}) == [
        {"volume": "db01-data", "vg": "ember-thin", "state": "present", "initiators": [CLIENT1]},
        {"volume": "logs01", "vg": "ember-thick", "state": "present", "initiators": [CLIENT1]}]
    assert attachment_items(result, "stor1", {"client1": CLIENT1}, addresses={"client1": "198.18.0.21"}) == [
        {"volume": "db01-data", "vg": "ember-thin", "state": "present", "initiators": [CLIENT1],
         "initiator_addresses": ["198.18.0.21"]},
        {"volume": "logs01", "vg": "ember-thick", "state": "present", "initiators": [CLIENT1],
         "initiator_addresses": ["198.18.0.21"]}]
    with pytest.raises(ValueError, match="client1 have no blockstore_storage_ip"):
        attachment_items(result, "stor1", {"client1": CLIENT1}, addresses={})
    # scratch01 has no target file in the capture: nothing to unexport or log out of.
    assert attachment_items(result, "stor1", {"client1": CLIENT1}, pools, phase="absent") == []
    assert disconnect_items(result, pools, CLIENT1, {"stor1": "198.18.0.11"}) == []


# --- the fast path: only what needs a change becomes an item --------------------------------------------------------

def _current(name, iqn, initiators, addresses, export_ok=True):
    return dict(vol(name, initiators, iqn), initiator_addresses=list(addresses), export_ok=export_ok)


def test_attachment_items_leave_out_exports_that_are_right_with_sessions():
    plan = {"volumes": [entry("db01-data", "none", size=GiB, attachments=["client1"]),
                        entry("db02-data", "create", size=GiB, attachments=["client1"]),
                        entry("logs01", "none", backend="lvm-thick", size=GiB, attachments=["client1"])]}
    db01, logs01 = PREFIX + "volume-db01-data", PREFIX + "volume-logs01"
    pools = [pool("stor1", "lvm-thin", [_current("db01-data", db01, [CLIENT1], ["198.18.0.21"])]),
             pool("stor1", "lvm-thick", [_current("logs01", logs01, [CLIENT1], ["198.18.0.21"])])]
    initiators = {"client1": CLIENT1}
    # client1 is logged in to db01 but not to logs01; db02 is new: db01 is left out, the others are items.
    items = attachment_items(plan, "stor1", initiators, pools, addresses=ADDRESSES,
                             sessions={"client1": [db01]})
    assert [i["volume"] for i in items] == ["db02-data", "logs01"]
    # Every session present: only the new volume.
    items = attachment_items(plan, "stor1", initiators, pools, addresses=ADDRESSES,
                             sessions={"client1": [db01, logs01]})
    assert [i["volume"] for i in items] == ["db02-data"]
    # A second consumer added to db01's ACL, or a live target that differs from its file: db01 is an item again.
    plan["volumes"][0]["attachments"] = ["client1", "client2"]
    items = attachment_items(plan, "stor1", {"client1": CLIENT1, "client2": CLIENT2}, pools, addresses=ADDRESSES,
                             sessions={"client1": [db01, logs01], "client2": [db01]})
    assert [i["volume"] for i in items] == ["db01-data", "db02-data"]
    plan["volumes"][0]["attachments"] = ["client1"]
    pools[0]["volumes"][0]["export_ok"] = False
    items = attachment_items(plan, "stor1", initiators, pools, addresses=ADDRESSES,
                             sessions={"client1": [db01, logs01]})
    assert [i["volume"] for i in items] == ["db01-data", "db02-data"]
    # Without sessions (as 0.1.0 called it) every attached volume is an item.
    assert len(attachment_items(plan, "stor1", initiators, pools, addresses=ADDRESSES)) == 3


def test_connect_items_leave_out_targets_with_a_session():
    info = {"target_iqn": PREFIX + "volume-a", "target_portal": "198.18.0.11:3260", "target_lun": 1,
            "auth_method": "CHAP", "auth_username": "u", "auth_password": "p", "volume": "a",
            "initiators": [CLIENT1]}
    results = [{"attachments": [{"connection_info": info},
                                {"connection_info": dict(info, target_iqn=PREFIX + "volume-b", volume="b")}]}]
    assert [i["volume"] for i in connect_items(results, CLIENT1)] == ["a", "b"]
    assert [i["volume"] for i in connect_items(results, CLIENT1, [PREFIX + "volume-a"])] == ["b"]


# --- several storage addresses per consumer (dm-multipath): every one in the ACL --------------------------------

def test_attachment_items_single_addresses_as_lists_give_the_same_items(plan):
    # The role passes each consumer's addresses as a list (ember.blockstore.storage_ips): one address gives
    # exactly the items a bare string gave.
    initiators = {"client1": CLIENT1, "client2": CLIENT2}
    as_lists = {host: [address] for host, address in ADDRESSES.items()}
    for host in ("stor1", "stor2"):
        assert attachment_items(plan, host, initiators, addresses=as_lists) == attachment_items(
            plan, host, initiators, addresses=ADDRESSES)


def test_attachment_items_bind_every_address_of_a_consumer(plan):
    initiators = {"client1": CLIENT1, "client2": CLIENT2}
    addresses = {"client1": ["198.18.0.21", "198.18.1.21"], "client2": "198.18.0.22"}
    items = attachment_items(plan, "stor1", initiators, addresses=addresses)
    assert items[0]["initiator_addresses"] == ["198.18.0.21", "198.18.1.21"]
    assert items[1]["initiator_addresses"] == ["198.18.0.21", "198.18.0.22", "198.18.1.21"]


@pytest.mark.parametrize("empty", [[], [""], [None]])
def test_attachment_items_an_empty_address_list_is_no_address(plan, empty):
    with pytest.raises(ValueError, match="client2 have no blockstore_storage_ip"):
        attachment_items(plan, "stor1", {"client1": CLIENT1, "client2": CLIENT2},
                         addresses={"client1": ["198.18.0.21"], "client2": empty})


# --- connect_items with several portals (dm-multipath) ----------------------------------------------------------

MP_PORTALS = ["198.18.0.11:3260", "198.18.1.11:3260"]


def _mp_results():
    info = dict(_info("db01-data", [CLIENT1]), target_portals=list(MP_PORTALS))
    return [{"attachments": [{"connection_info": info}]}]


def _facts(*sessions):
    return {"sessions": [{"target_iqn": PREFIX + "volume-db01-data", "portal": portal, "device": "/dev/x",
                          "size_bytes": 1, "multipath": mpath} for portal, mpath in sessions]}


def test_connect_items_carry_every_portal_in_one_item():
    (item,) = connect_items(_mp_results(), CLIENT1)
    assert item["target_portals"] == MP_PORTALS and item["target_portal"] == MP_PORTALS[0]


@pytest.mark.parametrize("sessions, wanted", [
    ([], True),
    ([("198.18.0.11:3260", "36ab")], True),  # one portal missing (its link was down at the last run)
    ([("198.18.0.11:3260", None), ("198.18.1.11:3260", None)], True),  # no map yet
    ([("198.18.0.11:3260", "36ab"), ("198.18.1.11:3260", "36cd")], True),  # two maps: not one disk
    ([("198.18.0.11:3260", "36ab"), ("198.18.1.11", "36ab")], False),  # both, one map (the port is implied)
])
def test_a_multipath_volume_is_connected_only_on_every_portal_in_one_map(sessions, wanted):
    # __blockstore_connected lists the IQN as soon as one session has a device; with several portals the facts
    # per portal decide.
    items = connect_items(_mp_results(), CLIENT1, sessions=[PREFIX + "volume-db01-data"],
                          consumer_facts=_facts(*sessions))
    assert bool(items) is wanted


def test_single_portal_items_are_unchanged_without_target_portals():
    results = [{"attachments": [{"connection_info": _info("db01-data", [CLIENT1])}]}]
    (item,) = connect_items(results, CLIENT1, storage_portals={"stor1": ["198.18.0.11:3260"]})
    assert "target_portals" not in item


def test_qos_and_resize_items_of_a_multipath_node_name_every_portal():
    plan = {"volumes": [{"name": "db01-data", "state": "present", "host": "stor1", "attachments": ["client1"],
                         "size_bytes": 2048, "qos_specs": {"read_iops_sec": 100}}]}
    facts = _facts(("198.18.0.11:3260", "36ab"), ("198.18.1.11:3260", "36ab"))
    items = connect_items([], CLIENT1, sessions=[PREFIX + "volume-db01-data"], plan=plan, consumer="client1",
                          portals={"stor1": "198.18.0.11:3260"}, consumer_facts=facts,
                          storage_portals={"stor1": MP_PORTALS})
    assert len(items) == 1  # one item per volume, though two sessions show the smaller size
    assert items[0]["target_portals"] == MP_PORTALS and items[0]["auth_method"] == "None"
    assert items[0]["qos"] == {"read_iops_sec": 100} and items[0]["size_bytes"] == 2048


@pytest.mark.parametrize("sessions, listed", [
    ([("198.18.0.11:3260", "36ab"), ("198.18.1.11:3260", "36ab")], False),  # both paths, one map: nothing to do
    ([("198.18.0.11:3260", None), ("198.18.1.11:3260", None)], True),  # the map was flushed (found on the lab)
    ([("198.18.0.11:3260", "36ab")], True),  # a path missing
])
def test_a_multipath_export_is_listed_until_the_consumer_has_every_path_in_one_map(sessions, listed):
    # The fast path leaves out an export whose consumers are logged in; with several portals only a consumer with
    # a session on every portal and one map over them counts, so a lost map or path is repaired by the next run.
    plan = {"volumes": [entry("db01-data", "none", size=GiB, attachments=["client1"])]}
    db01 = PREFIX + "volume-db01-data"
    pools = [pool("stor1", "lvm-thin", [_current("db01-data", db01, [CLIENT1], ["198.18.0.21"])])]
    items = attachment_items(plan, "stor1", {"client1": CLIENT1}, pools, addresses=ADDRESSES,
                             sessions={"client1": [db01]}, portals=list(MP_PORTALS),
                             consumer_facts={"client1": _facts(*sessions)})
    assert bool(items) is listed
    # One portal (no multipath): the session list decides, as before.
    assert attachment_items(plan, "stor1", {"client1": CLIENT1}, pools, addresses=ADDRESSES,
                            sessions={"client1": [db01]}, portals=["198.18.0.11:3260"],
                            consumer_facts={"client1": _facts(*sessions)}) == []
