# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""QoS specs of volume types in the plan (refused before any change where io.max cannot enforce them) and the
consumer's connection items that carry them."""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._converge import connect_items
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from scheduler_helpers import pool_facts, schedule_error

LIMITED = {"limited": {"qos_specs": {"write_bytes_sec": "10485760", "read_iops_sec": 500}}}
IQN = "iqn.2026-11.io.ember.blockstore:volume-%s"


def test_qos_specs_io_max_cannot_enforce_are_refused_naming_the_type():
    types = {"gold": {"qos_specs": {"total_bytes_sec": 100}}, "silver": {"qos_specs": {"write_bytes_sec": 0}}}
    errors = [str(e) for e in schedule_error([{"name": "v", "size": 1}], [pool_facts()], types).errors]
    assert any(e.startswith("blockstore_volume_types.gold.qos_specs") and "total_bytes_sec" in e for e in errors)
    assert any(e.startswith("blockstore_volume_types.silver.qos_specs") and "write_bytes_sec" in e for e in errors)


def test_a_bad_qos_cgroup_is_refused():
    vol = {"name": "v", "size": 1, "volume_type": "limited", "attachments": [{"host": "c1", "qos_cgroup": "a b"}]}
    errors = [str(e) for e in schedule_error([vol], [pool_facts()], LIMITED, consumers=["c1"]).errors]
    assert any("blockstore_volumes[0].attachments[0].qos_cgroup" in e for e in errors), errors


def test_connection_items_carry_the_types_qos_and_recheck_live_sessions():
    vols = [{"name": "a", "size": 1, "volume_type": "limited", "attachments": [{"host": "c1"}]},
            {"name": "b", "size": 1, "volume_type": "limited",
             "attachments": [{"host": "c1", "qos_cgroup": "postgresql.service"}]},
            {"name": "c", "size": 1, "attachments": [{"host": "c1"}]}]
    result = plan(vols, [pool_facts()], LIMITED, consumers=["c1"])
    assert result["volumes"][0]["qos_specs"] == {"write_bytes_sec": "10485760", "read_iops_sec": 500}
    assert result["volumes"][2]["qos_specs"] == {}
    info = {"target_iqn": IQN % "a", "target_portal": "198.18.0.11:3260", "target_lun": 1, "auth_method": "CHAP",
            "auth_username": "u", "auth_password": "p" * 16, "volume": "a", "initiators": ["iqn.c1"]}
    exports = [{"attachments": [{"connection_info": info}]}]
    items = connect_items(exports, "iqn.c1", sessions=[IQN % "b", IQN % "c"], plan=result, consumer="c1",
                          portals={"stor1": "198.18.0.11"})
    # a: a new login with its QoS; b: already logged in, checked again (no credentials needed); c: no QoS.
    assert [(i["volume"], i["auth_method"], i.get("qos"), i.get("qos_cgroup")) for i in items] == [
        ("a", "CHAP", {"write_bytes_sec": "10485760", "read_iops_sec": 500}, "system.slice"),
        ("b", "None", {"write_bytes_sec": "10485760", "read_iops_sec": 500}, "postgresql.service")]
    assert items[1]["target_portal"] == "198.18.0.11:3260" and items[1]["target_iqn"] == IQN % "b"
    # Without the plan (older callers) nothing changes.
    assert [i["volume"] for i in connect_items(exports, "iqn.c1", sessions=[])] == ["a"]
