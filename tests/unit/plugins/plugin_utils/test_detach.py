# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative detach: the plan's ``detach`` lists (plugin_utils/attachments.py) and the items each phase makes of
them (module_utils/_converge.py), over plans from the real scheduler."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._converge import (
    attachment_items,
    cleared,
    disconnect_items,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.attachments import plan_detaches
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan as schedule

GiB = 2**30
PREFIX = "iqn.2026-11.io.ember.blockstore:"
C1, C2, OUTSIDE = ("iqn.1993-08.org.debian:01:c1", "iqn.1993-08.org.debian:01:c2",
                   "iqn.1993-08.org.debian:01:other")
INITIATORS = {"client1": C1, "client2": C2}
ADDRESSES = {"client1": "198.18.0.21", "client2": "198.18.0.22"}
PORTALS = {"stor1": "198.18.0.11"}
TYPES = {"shared": {"extra_specs": {"volume_backend_name": "lvm-thin", "multiattach": "<is> True"}},
         "fast": {"extra_specs": {"volume_backend_name": "lvm-thin"}}}


def pools(attached, sessions, addresses=None, name="db01", vtype="shared"):
    """stor1's thin pool holding ``name`` exported to ``attached`` (IQNs) with live ``sessions``."""
    vol = {"name": name, "size_bytes": GiB, "volume_type": vtype, "attached_to": list(attached),
           "sessions": list(sessions), "target_iqn": PREFIX + "volume-" + name, "export_ok": True,
           "initiator_addresses": list(addresses if addresses is not None else
                                       [ADDRESSES[h] for h, iqn in INITIATORS.items() if iqn in attached])}
    return [{"id": "stor1@lvm-thin", "host": "stor1", "backend": "lvm-thin", "driver": "lvm_thin",
             "vg": "ember-thin", "thin_pool": "thinpool", "availability_zone": "az1", "total_bytes": 100 * GiB,
             "free_bytes": 90 * GiB, "allocated_bytes": 10 * GiB, "provisioned_bytes": 10 * GiB,
             "capabilities": {"max_over_subscription_ratio": 20.0, "reserved_percentage": 0,
                              "volume_backend_name": "lvm-thin",
                              "thin_provisioning_support": True, "thick_provisioning_support": False},
             "volumes": [vol]}]


def planned(attachments, facts, force=False, vtype="shared", **extra):
    volumes = [dict({"name": "db01", "size": "1GiB", "volume_type": vtype, "attachments": attachments,
                     "force": force}, **extra)]
    result = schedule(volumes, facts, TYPES, consumers=["client1", "client2"])
    errors = plan_detaches(result["volumes"], facts, INITIATORS)
    return result, errors


def test_an_attachment_removed_from_the_list_is_detached_after_the_logout():
    facts = pools([C1, C2], [C1, C2])
    result, errors = planned([{"host": "client1"}], facts)
    assert errors == []
    (entry,) = result["volumes"]
    assert entry["detach"] == [{"host": "client2", "initiator": C2, "connected": True, "force": False,
                                "target_iqn": PREFIX + "volume-db01"}]
    assert entry["reason"].endswith("; detach client2 (logged in)")
    # Converge phase: client2 stays in the ACL while it logs out (the export is already that: no item).
    assert attachment_items(result, "stor1", INITIATORS, facts, addresses=ADDRESSES,
                            sessions={"client1": [PREFIX + "volume-db01"], "client2": [PREFIX + "volume-db01"]}) == []
    # client2 logs out and drops its node record; client1 gets nothing.
    assert disconnect_items(result, facts, C2, PORTALS) == [
        {"target_iqn": PREFIX + "volume-db01", "target_portal": "198.18.0.11:3260", "volume": "db01",
         "state": "absent", "force": False}]
    assert disconnect_items(result, facts, C1, PORTALS) == []
    # Remove phase: without client2's logout confirmed nothing changes; with it the ACL is narrowed.
    assert attachment_items(result, "stor1", INITIATORS, facts, phase="detach", addresses=ADDRESSES,
                            consumer_results={}) == []
    done = {"client2": {"changed": True, "connections": [
        {"volume": "db01", "target_iqn": PREFIX + "volume-db01", "action": "logout"}]}}
    assert attachment_items(result, "stor1", INITIATORS, facts, phase="detach", addresses=ADDRESSES,
                            consumer_results=done) == [
        {"volume": "db01", "vg": "ember-thin", "state": "present", "initiators": [C1],
         "initiator_addresses": ["198.18.0.21"]}]
    assert attachment_items(result, "stor1", INITIATORS, facts, phase="detach", addresses=ADDRESSES,
                            consumer_results=done, forced=True) == []


def test_the_last_attachment_removed_removes_the_export_and_a_failed_logout_keeps_it():
    facts = pools([C1], [C1], vtype="fast")
    result, errors = planned([], facts, vtype="fast")
    assert errors == [] and [d["host"] for d in result["volumes"][0]["detach"]] == ["client1"]
    # Nothing is exported in the converge phase (no attachment stays).
    assert attachment_items(result, "stor1", INITIATORS, facts, addresses=ADDRESSES, sessions={}) == []
    failed = {"client1": {"failed": True, "msg": "in use", "connections": [
        {"volume": "db01", "target_iqn": PREFIX + "volume-db01", "action": "logout", "failed": True}]}}
    assert attachment_items(result, "stor1", INITIATORS, facts, phase="detach", addresses=ADDRESSES,
                            consumer_results=failed) == []
    done = {"client1": {"connections": [{"volume": "db01", "target_iqn": PREFIX + "volume-db01", "action": "none"}]}}
    assert attachment_items(result, "stor1", INITIATORS, facts, phase="detach", addresses=ADDRESSES,
                            consumer_results=done) == [{"volume": "db01", "vg": "ember-thin", "state": "absent"}]


def test_state_absent_with_force_forces_that_logout_only():
    facts = pools([C1, C2], [C1, C2])
    result, errors = planned([{"host": "client1", "state": "absent", "force": True}, {"host": "client2"}], facts)
    assert errors == []
    assert [(d["host"], d["force"]) for d in result["volumes"][0]["detach"]] == [("client1", True)]
    assert result["volumes"][0]["attachments"] == ["client2"]
    assert disconnect_items(result, facts, C1, PORTALS)[0]["force"] is True


def test_an_initiator_outside_the_inventory_with_a_session_needs_force():
    facts = pools([C1, OUTSIDE], [C1, OUTSIDE], addresses=["198.18.0.21", "198.18.0.99"])
    _result, errors = planned([{"host": "client1"}], facts)
    assert len(errors) == 1 and OUTSIDE in errors[0] and "force: true" in errors[0]
    result, errors = planned([{"host": "client1"}], facts, force=True)
    assert errors == [] and result["volumes"][0]["detach"][0]["host"] is None
    # It is narrowed out (its session stays until it logs out itself: tgt checks the ACL at login).
    assert attachment_items(result, "stor1", INITIATORS, facts, phase="detach", addresses=ADDRESSES,
                            consumer_results={}) == [
        {"volume": "db01", "vg": "ember-thin", "state": "present", "initiators": [C1],
         "initiator_addresses": ["198.18.0.21"]}]
    # Without sessions it goes without force; when nothing stays the forced removal drops its session.
    result, errors = planned([], pools([OUTSIDE], [], vtype="fast"), vtype="fast")
    assert errors == [] and cleared(result["volumes"][0]["detach"][0], {})
    facts = pools([OUTSIDE], [OUTSIDE], vtype="fast")
    result, errors = planned([], facts, force=True, vtype="fast")
    assert attachment_items(result, "stor1", INITIATORS, facts, phase="detach",
                            addresses=ADDRESSES, forced=True) == [
        {"volume": "db01", "vg": "ember-thin", "state": "absent"}]


def test_a_declared_consumer_that_did_not_report_detaches_nothing():
    facts = pools([C1, C2], [C1, C2])
    volumes = [{"name": "db01", "size": "1GiB", "volume_type": "shared",
                "attachments": [{"host": "client1"}, {"host": "client2"}]}]
    result = schedule(volumes, facts, TYPES, consumers=["client1", "client2"])
    assert plan_detaches(result["volumes"], facts, {"client1": C1, "client2": ""}) == []
    assert result["volumes"][0]["detach"] == []


def test_multiattach_needs_the_type_flag_or_is_multiattach():
    facts = pools([], [], name="other01")
    two = [{"host": "client1"}, {"host": "client2"}]
    with pytest.raises(ScheduleError, match="volume type fast does not allow multiattach"):
        planned(two, facts, vtype="fast")
    result, errors = planned(two, facts, vtype="fast", is_multiattach=True)
    assert errors == [] and result["volumes"][0]["attachments"] == ["client1", "client2"]
    with pytest.raises(ScheduleError, match="is_multiattach: false"):
        planned(two, facts, is_multiattach=False)
    items = attachment_items(result, "stor1", INITIATORS, facts, addresses=ADDRESSES)
    assert items == [{"volume": "db01", "vg": "ember-thin", "state": "present", "initiators": [C1, C2],
                      "initiator_addresses": ["198.18.0.21", "198.18.0.22"]}]


def test_an_extended_volume_is_exported_again_in_the_run_that_extends_it():
    # The facts predate the lvextend: the export looks right, but its live LUN must be reopened at the new size.
    facts = pools([C1], [C1], vtype="fast")
    result, errors = planned([{"host": "client1"}], facts, vtype="fast", size="2GiB")
    assert errors == [] and result["volumes"][0]["action"] == "extend"
    items = attachment_items(result, "stor1", INITIATORS, facts, addresses=ADDRESSES,
                             sessions={"client1": [PREFIX + "volume-db01"]})
    assert [i["volume"] for i in items] == ["db01"]


def test_an_absent_attachment_counts_as_listed():
    from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import validate_requests
    with pytest.raises(ScheduleError, match=r"attachments\[1\].host: 'client1' is listed twice"):
        validate_requests([{"name": "db01", "size": 1,
                            "attachments": [{"host": "client1", "state": "absent"}, {"host": "client1"}]}])


def test_a_refused_detach_is_an_error_of_the_volume_in_the_report():
    from ansible_collections.ember.blockstore.plugins.plugin_utils.report import build_report
    facts = pools([C1], [C1], vtype="fast")
    result, _errors = planned([], facts, vtype="fast")
    refused = {"client1": {"failed": True, "connections": [
        {"volume": "db01", "target_iqn": PREFIX + "volume-db01", "action": "logout", "failed": True}],
        "msg": "connection to %svolume-db01: /dev/sdb is in use (/mnt/grow); unmount it first or set force: true"
               % PREFIX}}
    report = build_report(result, connection_results=refused, pools=facts)
    (row,) = report["rows"]
    assert row["state"] == "error" and "detach from client1 not done" in row["status"]
    assert any("/mnt/grow" in e and "force: true" in e for e in report["errors"]), report["errors"]
    # The same run where the logout went through: no error.
    done = {"client1": {"connections": [{"volume": "db01", "target_iqn": PREFIX + "volume-db01",
                                         "action": "logout"}]}}
    report = build_report(result, connection_results=done, pools=facts)
    assert report["rows"][0]["state"] == "available" and report["errors"] == []


def test_a_consumer_being_detached_is_never_logged_in_again():
    from ansible_collections.ember.blockstore.plugins.module_utils._converge import connect_items
    facts = pools([C1, C2], [C1])  # client2 is in the export but has no session (e.g. after a reboot)
    result, _errors = planned([{"host": "client1"}], facts)
    info = {"driver_volume_type": "iscsi", "target_iqn": PREFIX + "volume-db01", "target_portal": "198.18.0.11:3260",
            "target_lun": 1, "auth_method": "CHAP", "auth_username": "u", "auth_password": "p" * 16,
            "volume": "db01", "initiators": [C1, C2], "initiator_addresses": ["198.18.0.21", "198.18.0.22"]}
    exports = [{"attachments": [{"volume": "db01", "connection_info": info}]}]
    assert connect_items(exports, C2, [], plan=result, consumer="client2", portals=PORTALS) == []
    assert [i["state"] for i in disconnect_items(result, facts, C2, PORTALS)] == ["absent"]
