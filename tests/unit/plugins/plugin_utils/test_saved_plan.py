# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Saved plans (``blockstore_plan_out`` / ``blockstore_plan_in``): what is saved, and every reason to refuse one."""

from __future__ import annotations

import copy
import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.plan import check_saved_plan, save_plan
from ansible_collections.ember.blockstore.plugins.plugin_utils.saved_plan import (
    plan_state,
    saved_plan,
    saved_plan_differences,
)

GiB, MiB = 2**30, 2**20
IQN = "iqn.2026-11.io.ember.blockstore:volume-logs01"


def gathers():
    def pool(host, backend, volumes):
        return {"id": "%s@%s" % (host, backend), "exists": True, "total_bytes": 4 * GiB, "free_bytes": 3 * GiB,
                "data_percent": 1.5, "volumes": volumes}
    logs01 = {"name": "logs01", "size_bytes": 256 * MiB, "status": "in-use", "attached_to": ["client1"],
              "snapshots": [], "target_iqn": IQN}
    stor1 = [pool("stor1", "lvm-thick", [logs01]), pool("stor1", "lvm-thin", [])]
    return {"stor1": {"changed": False, "ledger": {"generation": 7}, "pools": stor1},
            "stor2": {"changed": False, "ledger": {"generation": 7}, "pools": [pool("stor2", "lvm-thick", [])]}}


def initiators():
    return {"client1": {"initiator_iqn": "iqn.1993-08.org.debian:01:c1", "sessions": [
        {"target_iqn": IQN, "portal": "198.18.0.11:3260", "device": "/dev/disk/by-path/x"}]}}


def entry(name, action, size=256 * MiB, host="stor1", backend="lvm-thick", attachments=()):
    return {"name": name, "state": "present", "action": action, "host": host, "pool_id": "%s@%s" % (host, backend),
            "size_bytes": size, "volume_type": "bulk", "availability_zone": "az1", "attachments": list(attachments),
            "reason": "CapacityWeigher: most free"}


def plan(*entries):
    return {"volumes": list(entries) or [entry("logs01", "none", attachments=["client1"]), entry("web02", "create")],
            "unmanaged": [], "hosts": {}}


@pytest.fixture()
def saved():
    # Through JSON, as the file is written and read back.
    return json.loads(json.dumps(save_plan(plan(), gathers(), initiators(), created_at="t", created_by="ci")))


def test_the_saved_plan_holds_the_decisions_and_the_state_and_no_reason_text(saved):
    assert saved["format"] == 1 and saved["created_by"] == "ci"
    assert [(v["name"], v["action"], v["size_bytes"], v["pool_id"]) for v in saved["volumes"]] == [
        ("logs01", "none", 256 * MiB, "stor1@lvm-thick"), ("web02", "create", 256 * MiB, "stor1@lvm-thick")]
    assert "reason" not in saved["volumes"][0]
    assert saved["state"]["storage"]["stor1"]["ledger_generation"] == 7
    assert saved["state"]["storage"]["stor1"]["pools"]["stor1@lvm-thick"]["volumes"]["logs01"] == {
        "size_bytes": 256 * MiB, "status": "in-use", "attached_to": ["client1"], "snapshots": []}
    assert saved["state"]["consumers"] == {"client1": [IQN]}


def test_the_same_hosts_and_inventory_apply_it(saved):
    assert saved_plan_differences(saved, plan(), plan_state(gathers(), initiators())) == []
    assert check_saved_plan(plan(), saved, gathers(), initiators()) == plan()


def test_free_space_that_moved_with_written_data_does_not_refuse_it(saved):
    now = gathers()
    now["stor1"]["pools"][1].update(free_bytes=GiB, data_percent=60.0)
    assert saved_plan_differences(saved, plan(), plan_state(now, initiators())) == []


def refused(saved, now_plan=None, now_gathers=None, now_initiators=None):
    with pytest.raises(AnsibleFilterError) as info:
        check_saved_plan(now_plan or plan(), saved, now_gathers or gathers(), now_initiators or initiators())
    text = str(info.value)
    assert text.startswith("The saved plan is refused, nothing was changed")
    return text.split("\n")[1:]


def test_another_run_that_wrote_the_ledger_refuses_it(saved):
    now = gathers()
    now["stor2"]["ledger"]["generation"] = 9
    assert refused(saved, now_gathers=now) == [
        "storage host stor2: ledger generation 7 when the plan was made, 9 now (another run changed it)"]


def test_a_volume_changed_by_hand_refuses_it(saved):
    now = gathers()
    now["stor1"]["pools"][0]["volumes"][0]["size_bytes"] = 512 * MiB
    now["stor1"]["pools"][1]["volumes"].append({"name": "web02", "size_bytes": 256 * MiB, "status": "available"})
    assert refused(saved, now_gathers=now) == [
        "pool stor1@lvm-thick: volume logs01: size_bytes 256 MiB -> 512 MiB",
        "pool stor1@lvm-thin: volume web02 was created since the plan was made"]


def test_a_host_that_does_not_report_now_refuses_it(saved):
    now = gathers()
    now["stor2"] = {"unreachable": True, "msg": "timed out"}
    assert refused(saved, now_gathers=now) == ["storage host stor2: did not report now"]


def test_a_consumer_session_that_dropped_refuses_it(saved):
    now = initiators()
    now["client1"]["sessions"] = []
    assert refused(saved, now_initiators=now) == ["consumer client1: sessions ['%s'] then, [] now" % IQN]


def test_an_inventory_that_plans_otherwise_refuses_it(saved):
    now = plan(entry("logs01", "extend", size=512 * MiB, attachments=["client1"]))
    assert refused(saved, now_plan=now) == [
        "volume logs01: action none -> extend, size_bytes 256 MiB -> 512 MiB",
        "volume web02: not in the inventory now"]


def test_a_file_that_is_not_a_saved_plan_is_refused():
    assert refused({"volumes": []}) == ["the saved plan is not a format 1 ember.blockstore plan (format: None)"]
    assert saved_plan_differences([], plan(), plan_state(gathers())) == [
        "the saved plan is not a format 1 ember.blockstore plan (format: None)"]


def test_differences_are_bounded(saved):
    now = gathers()
    now["stor1"]["pools"][1]["volumes"] = [{"name": "v%03d" % i, "size_bytes": MiB} for i in range(80)]
    lines = refused(saved, now_gathers=now)
    assert len(lines) == 51 and lines[-1] == "... and 30 more differences"


def test_saving_does_not_change_the_plan():
    before = plan()
    kept = copy.deepcopy(before)
    saved_plan(before, plan_state(gathers(), initiators()))
    assert before == kept
