# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``plan`` filter end to end over realistic gathers, and the ledger arguments of a simulated run.

stor1's gather is ``backend_info.pool_facts`` over the LVM/tgt state captured on the lab after a converge
(``lvs_converged.json``: logs01 and scratch01 thick, archive01 and db01-data thin). stor2 (zone az2) is the same
capture with its volumes renamed to stor2's (web01 thick 256 MiB, db02-data thin 1 GiB), as the lab converges it.
The declared volumes and types are the lab's (``inventories/lab/group_vars/all.yml``); every node holds the
same placement ledger at generation 7.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ember.blockstore.plugins.filter import plan as plan_plugin
from ansible_collections.ember.blockstore.plugins.filter.plan import (
    FilterModule,
    blockstore_plan,
    check_saved_plan,
    ledger_final_args,
    ledger_intent_args,
    ledger_migration_args,
    metrics_textfile,
    report,
    report_summary,
    save_plan,
)
from ansible_collections.ember.blockstore.plugins.module_utils import _ledger
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import pool_facts
from ansible_collections.ember.blockstore.plugins.module_utils._converge import migration_items
from ansible_collections.ember.blockstore.plugins.module_utils._ledger import read_ledger, write_ledger
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_conf, parse_show
from ansible_collections.ember.blockstore.plugins.modules import ledger as ledger_module
from ansible_collections.ember.blockstore.plugins.plugin_utils.groups import freeze_failures, plan_lines
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan as schedule_plan

ROOT = Path(__file__).resolve().parents[4]
FIXTURES = ROOT / "tests" / "unit" / "fixtures"
LAB_VARS = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all.yml").read_text())
TYPES = LAB_VARS["blockstore_volume_types"]
GiB, MiB = 2**30, 2**20
HOSTS = ["stor1", "stor2"]
CONSUMERS = ["client1"]
# A new thin volume without a zone: both thin pools pass, and stor2's has less provisioned (1 GiB against
# stor1's 3 GiB: archive01 2 GiB + db01-data 1 GiB) over the same pool size, so the weigher spreads it to stor2.
DB03 = {"name": "db03-data", "size": "1GiB", "volume_type": "fast"}


def volumes(*extra):
    return copy.deepcopy(LAB_VARS["blockstore_volumes"]) + [dict(v) for v in extra]


def cfg(**backend):
    raw = {key: spec.get("default") for key, spec in backend_options().items()}
    raw.update(backend)
    out = backend_config(raw)
    out["volume_clear_size_bytes"] = 0
    return out


def backends(zone):  # inventories/lab/host_vars/stor*.yml
    return [cfg(name="lvm-thick", driver="lvm", vg="ember-thick", pvs=["/dev/vdb"], availability_zone=zone,
                reserved_percentage=5),
            cfg(name="lvm-thin", driver="lvm_thin", vg="ember-thin", pvs=["/dev/vdc"], thin_pool="thinpool",
                thin_pool_size="95%VG", availability_zone=zone, reserved_percentage=10,
                max_over_subscription_ratio=4.0)]


def _stor2_state():
    """stor2 as the lab converges it: web01 (thick) and db02-data (thin)."""
    lvs = json.loads((FIXTURES / "lvm/lvs_converged.json").read_text())
    vgs = json.loads((FIXTURES / "lvm/vgs_converged.json").read_text())
    rename = {"logs01": "web01", "db01-data": "db02-data"}
    rows = []
    for row in lvs["report"][0]["lv"]:
        name = row["lv_name"][len("volume-"):] if row["lv_name"].startswith("volume-") else None
        if name in ("scratch01", "archive01"):
            continue
        if name in rename:
            new = rename[name]
            row = dict(row, lv_name="volume-" + new, lv_path=row["lv_path"].replace(name, new),
                       lv_tags=row["lv_tags"].replace("ember.volume=" + name, "ember.volume=" + new))
        rows.append(row)
    lvs["report"][0]["lv"] = rows
    for row in vgs["report"][0]["vg"]:
        if row["vg_name"] == "ember-thick":  # only web01 (256 MiB) is allocated there
            row["vg_free"] = str(int(row["vg_size"]) - 256 * MiB)
    return LvmState(parse_vgs(json.dumps(vgs)), parse_lvs(json.dumps(lvs)))


def _stor1_pools():
    state = LvmState(parse_vgs((FIXTURES / "lvm/vgs_converged.json").read_text()),
                     parse_lvs((FIXTURES / "lvm/lvs_converged.json").read_text()))
    conf = parse_conf((FIXTURES / "tgt/conf_db01.conf").read_text())
    live = parse_show((FIXTURES / "tgt/show_two_targets.txt").read_text())
    return [pool_facts("stor1", c, state, {conf["backing_store"]: conf}, live, False) for c in backends("az1")]


STOR1 = _stor1_pools()
STOR2 = [pool_facts("stor2", c, _stor2_state(), {}, {}, False) for c in backends("az2")]


def place(host, backend="lvm-thin", status="available"):
    return {"host": host, "pool_id": "%s@%s" % (host, backend), "status": status}


LAB_PLACES = {"db01-data": place("stor1"), "archive01": place("stor1"), "logs01": place("stor1", "lvm-thick"),
              "scratch01": place("stor1", "lvm-thick"), "db02-data": place("stor2"),
              "web01": place("stor2", "lvm-thick")}


def book(generation=7, volumes=None):
    return {"format": 1, "generation": generation, "volumes": dict(LAB_PLACES if volumes is None else volumes),
            "written_by": "ember.blockstore run 2026-01-01T00:00:00Z", "written_at": "2026-01-01T00:00:00Z"}


def gather(pools, ledger=None):
    return {"changed": False, "pools": copy.deepcopy(pools), "problems": [],
            "ledger": book() if ledger is None else ledger, "ledger_error": None,
            "tgt": {"running": True, "configured": True, "ready": True}}


UNREACHABLE = {"unreachable": True, "changed": False,
               "msg": "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 2223: "
                      "Connection refused"}


def gathers(stor1=None, stor2=None):
    return {"stor1": gather(STOR1) if stor1 is None else stor1,
            "stor2": gather(STOR2) if stor2 is None else stor2}


def run_plan(gathers_, vols=None, **kwargs):
    return blockstore_plan(gathers_, HOSTS, volumes(DB03) if vols is None else vols, volume_types=TYPES,
                           consumers=CONSUMERS, **kwargs)


def by_name(result):
    return {e["name"]: e for e in result["volumes"]}


# --- the fixtures are what the docstring says --------------------------------------------------------------------

def test_gathers_are_the_lab():
    assert [(p["id"], sorted(v["name"] for v in p["volumes"])) for p in STOR1 + STOR2] == [
        ("stor1@lvm-thick", ["logs01", "scratch01"]), ("stor1@lvm-thin", ["archive01", "db01-data"]),
        ("stor2@lvm-thick", ["web01"]), ("stor2@lvm-thin", ["db02-data"])]
    assert STOR2[0]["free_bytes"] == STOR2[0]["total_bytes"] - 256 * MiB


# --- all hosts report --------------------------------------------------------------------------------------------

def test_registered():
    assert FilterModule().filters() == {"plan": blockstore_plan, "ledger_intent_args": ledger_intent_args,
                                        "ledger_final_args": ledger_final_args,
                                        "ledger_migration_args": ledger_migration_args, "report": report,
                                        "report_summary": report_summary, "save_plan": save_plan,
                                        "check_saved_plan": check_saved_plan, "metrics_textfile": metrics_textfile,
                                        "freeze_failures": freeze_failures, "group_plan_lines": plan_lines}


def test_all_hosts_ok_is_the_plain_scheduler():
    result = run_plan(gathers())
    plain = schedule_plan(volumes(DB03), STOR1 + STOR2, TYPES, consumers=CONSUMERS)
    assert result["volumes"] == plain["volumes"]
    assert result["unmanaged"] == plain["unmanaged"] == []
    assert result["pools"] == plain["pools"]
    actions = {e["name"]: (e["action"], e["pool_id"]) for e in result["volumes"]}
    assert actions == {"db01-data": ("none", "stor1@lvm-thin"), "db02-data": ("none", "stor2@lvm-thin"),
                       "logs01": ("none", "stor1@lvm-thick"), "web01": ("none", "stor2@lvm-thick"),
                       "scratch01": ("none", "stor1@lvm-thick"), "archive01": ("none", "stor1@lvm-thin"),
                       "db03-data": ("create", "stor2@lvm-thin")}
    assert result["hosts"] == {"stor1": {"status": "ok", "reason": None}, "stor2": {"status": "ok", "reason": None}}
    assert result["hosts_ok"] == ["stor1", "stor2"]
    assert result["ledger"]["generation"] == 7
    assert result["ledger"]["conflicts"] == []
    assert result["ledger"]["nodes"] == {h: {"generation": 7, "volumes": LAB_PLACES} for h in HOSTS}
    assert result["ledger"]["intent"] == dict(LAB_PLACES, **{"db03-data": place("stor2", status="creating")})


def test_result_does_not_depend_on_the_order_of_the_lists():
    one = run_plan(gathers())
    two = blockstore_plan(gathers(), list(reversed(HOSTS)), list(reversed(volumes(DB03))), volume_types=TYPES,
                          consumers=CONSUMERS)
    assert sorted(one["volumes"], key=lambda e: e["name"]) == sorted(two["volumes"], key=lambda e: e["name"])
    assert one["ledger"]["intent"] == two["ledger"]["intent"]


def test_first_run_without_any_ledger():
    empty = book(0, {})
    result = run_plan(gathers(gather(STOR1, empty), gather(STOR2, empty)))
    assert result["ledger"]["generation"] == 0
    assert result["ledger"]["intent"] == dict(LAB_PLACES, **{"db03-data": place("stor2", status="creating")})
    assert ledger_intent_args(result, "stor1") == {"volumes": result["ledger"]["intent"], "generation": 1,
                                                   "expected_generation": 0}


# --- a host that does not report ---------------------------------------------------------------------------------

def test_unreachable_host_refuses_naming_it_and_its_volumes():
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(stor2=UNREACHABLE))
    message = str(excinfo.value)
    assert "stor2" in message
    assert "db02-data" in message and "web01" in message
    assert "Connection refused" in message
    assert "nothing was changed" in message.lower()
    assert "blockstore_allow_partial" in message
    # The refusal comes from the ledger, not from a scheduler failure (the misleading message).
    assert "No valid backend" not in message and "AvailabilityZoneFilter" not in message


def test_prepare_error_refuses_naming_it():
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(), prepare_errors={"stor1": "", "stor2": "community.general.lvg: list index out of range"})
    message = str(excinfo.value)
    assert "stor2" in message and "list index out of range" in message
    assert "db02-data" in message and "web01" in message
    assert "logs01" not in message


def test_damaged_host_refuses_naming_backend_device_and_repair():
    problem = {"backend": "lvm-thick", "vg": "ember-thick", "device": "/dev/vdb",
               "message": "Checksum error at offset 4608 on /dev/vdb",
               "repair": "vgck --updatemetadata ember-thick (after a backup of the PV's first MiB)"}
    damaged = dict(gather([]), problems=[problem])
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(stor2=damaged))
    message = str(excinfo.value)
    for text in ("stor2", "lvm-thick", "/dev/vdb", "vgck --updatemetadata ember-thick", "web01", "db02-data"):
        assert text in message


def test_allow_partial_leaves_the_missing_hosts_volumes_unknown():
    result = run_plan(gathers(stor2=UNREACHABLE), allow_partial=True)
    entries = by_name(result)
    for name, backend in (("db02-data", "lvm-thin"), ("web01", "lvm-thick")):
        assert entries[name]["action"] == "unknown"
        assert entries[name]["host"] == "stor2"
        assert entries[name]["pool_id"] == "stor2@" + backend
        assert entries[name]["reason"].startswith("stor2") and "unreachable" in entries[name]["reason"]
    # Nothing is created for them on stor1; the new volume goes to the only thin pool that reported.
    creates = [(e["name"], e["pool_id"]) for e in result["volumes"] if e["action"] == "create"]
    assert creates == [("db03-data", "stor1@lvm-thin")]
    assert all(e["host"] == "stor1" for e in result["volumes"] if e["action"] != "unknown")
    assert [p["id"] for p in result["pools"]] == ["stor1@lvm-thick", "stor1@lvm-thin"]
    assert result["hosts"]["stor2"]["status"] == "unreachable"
    assert "Connection refused" in result["hosts"]["stor2"]["reason"]
    assert result["hosts"]["stor1"] == {"status": "ok", "reason": None}
    assert result["hosts_ok"] == ["stor1"]
    assert set(result["ledger"]) >= {"generation", "nodes", "conflicts", "intent"}
    assert list(result["ledger"]["nodes"]) == ["stor1"]
    intent = result["ledger"]["intent"]
    assert intent["db02-data"] == place("stor2") and intent["web01"] == place("stor2", "lvm-thick")
    assert intent["db03-data"] == place("stor1", status="creating")
    assert ledger_intent_args(result, "stor1") == {"volumes": intent, "generation": 8, "expected_generation": 7}


def test_allow_partial_missing_hosts_volume_not_in_inventory_is_reported_unknown():
    vols = [v for v in volumes() if v["name"] != "web01"]
    result = run_plan(gathers(stor2=UNREACHABLE), vols=vols, allow_partial=True)
    assert "web01" not in by_name(result)
    rows = [u for u in result["unmanaged"] if u["name"] == "web01"]
    assert len(rows) == 1
    assert rows[0]["pool_id"] == "stor2@lvm-thick" and rows[0]["host"] == "stor2"
    assert rows[0]["reason"].startswith("unknown") and "stor2" in rows[0]["reason"]
    assert result["ledger"]["intent"]["web01"] == place("stor2", "lvm-thick")  # still recorded


def test_allow_partial_declared_absent_on_the_missing_host_is_left_alone():
    vols = [dict(v, state="absent") if v["name"] == "web01" else v for v in volumes()]
    result = run_plan(gathers(stor2=UNREACHABLE), vols=vols, allow_partial=True)
    assert by_name(result)["web01"]["action"] == "unknown"
    assert result["ledger"]["intent"]["web01"] == place("stor2", "lvm-thick")


def test_allow_partial_without_any_ledger_refuses():
    empty = book(0, {})
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(stor1=gather(STOR1, empty), stor2=UNREACHABLE), allow_partial=True)
    assert "stor2" in str(excinfo.value)


def test_allow_partial_new_volume_only_placeable_on_the_missing_host_names_it():
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(stor2=UNREACHABLE), vols=volumes({"name": "web02", "size": "256MiB",
                                                           "volume_type": "bulk", "availability_zone": "az2"}),
                 allow_partial=True)
    assert "stor2" in str(excinfo.value)


def test_forget_hosts_plans_without_the_removed_node():
    vols = [v for v in volumes(DB03) if v["name"] not in ("db02-data", "web01")]
    result = run_plan(gathers(stor2=UNREACHABLE), vols=vols, forget_hosts=["stor2"])
    assert "db02-data" not in result["ledger"]["intent"] and "web01" not in result["ledger"]["intent"]
    assert by_name(result)["db03-data"]["pool_id"] == "stor1@lvm-thin"
    assert result["unmanaged"] == []


# --- the placement ledger pins an unfinished create --------------------------------------------------------------

def test_pinned_create_lands_on_its_recorded_pool():
    ledger = book(8, dict(LAB_PLACES, **{"db03-data": place("stor1", status="creating")}))
    result = run_plan(gathers(gather(STOR1, ledger), gather(STOR2, ledger)))
    entry = by_name(result)["db03-data"]
    # Unpinned, the weigher chooses stor2@lvm-thin (test_all_hosts_ok_is_the_plain_scheduler).
    assert (entry["action"], entry["pool_id"], entry["host"]) == ("create", "stor1@lvm-thin", "stor1")
    assert "placement ledger" in entry["reason"]
    assert result["ledger"]["intent"]["db03-data"] == place("stor1", status="creating")


def test_pinned_create_that_no_longer_fits_its_pool_is_refused():
    ledger = book(8, dict(LAB_PLACES, **{"db03-data": place("stor1", status="creating")}))
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(gather(STOR1, ledger), gather(STOR2, ledger)),
                 vols=volumes(dict(DB03, availability_zone="az2")))
    message = str(excinfo.value)
    assert "db03-data" in message and "stor1@lvm-thin" in message


def test_recorded_volume_missing_from_its_host_is_not_recreated():
    stor1 = copy.deepcopy(STOR1)
    stor1[1]["volumes"] = [v for v in stor1[1]["volumes"] if v["name"] != "archive01"]
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(stor1=gather(stor1)))
    assert "archive01" in str(excinfo.value) and "stor1@lvm-thin" in str(excinfo.value)
    result = run_plan(gathers(stor1=gather(stor1)), forget=["archive01"])
    assert by_name(result)["archive01"]["action"] == "create"


# --- ledger arguments across a simulated run ---------------------------------------------------------------------

def written(args):
    """The ledger module's result after writing ``args``."""
    return {"changed": True, "written": True, "generation": args["generation"], "volumes": args["volumes"],
            "previous_generation": args["expected_generation"]}


def volume_result(*items, **top):
    return dict({"changed": True, "volumes": [dict(name=n, action=a, **more) for n, a, more in items]}, **top)


def test_intent_then_final_across_a_run():
    plan = run_plan(gathers())
    intents = {host: ledger_intent_args(plan, host) for host in HOSTS}
    expected_intent = dict(LAB_PLACES, **{"db03-data": place("stor2", status="creating")})
    for host in HOSTS:
        assert intents[host] == {"volumes": expected_intent, "generation": 8, "expected_generation": 7}
    results = {host: written(intents[host]) for host in HOSTS}
    volume_results = {"stor2": volume_result(("db03-data", "create", {}), ("db02-data", "none", {}),
                                             ("web01", "none", {})),
                      "stor1": volume_result(("db01-data", "none", {}), ("logs01", "none", {}), changed=False)}
    final = {host: ledger_final_args(plan, host, volume_results, {}, results) for host in HOSTS}
    for host in HOSTS:
        assert final[host] == {"volumes": dict(LAB_PLACES, **{"db03-data": place("stor2")}), "generation": 9,
                               "expected_generation": 8}


def test_nothing_to_change_writes_nothing():
    plan = run_plan(gathers(), vols=volumes())
    assert ledger_intent_args(plan, "stor1") is None and ledger_intent_args(plan, "stor2") is None
    skipped = {h: {"changed": False, "skipped": True} for h in HOSTS}
    for host in HOSTS:
        assert ledger_final_args(plan, host, {}, {}, skipped) is None


def test_failed_create_is_dropped_from_the_final_ledger():
    plan = run_plan(gathers())
    results = {host: written(ledger_intent_args(plan, host)) for host in HOSTS}
    volume_results = {"stor2": volume_result(("db03-data", "create", {"failed": True}), failed=True,
                                             msg="volume db03-data: lvcreate failed (rc=5)")}
    args = ledger_final_args(plan, "stor1", volume_results, {}, results)
    assert args == {"volumes": LAB_PLACES, "generation": 9, "expected_generation": 8}


def test_host_lost_mid_run_keeps_its_create_recorded():
    plan = run_plan(gathers())
    results = {host: written(ledger_intent_args(plan, host)) for host in HOSTS}
    volume_results = {"stor2": UNREACHABLE}
    # The final ledger equals the intent stor1 already holds: nothing more to write; db03-data stays creating.
    assert ledger_final_args(plan, "stor1", volume_results, {}, results) is None


def test_delete_across_a_run():
    vols = [dict(v, state="absent") if v["name"] == "scratch01" else v for v in volumes()]
    plan = run_plan(gathers(), vols=vols)
    assert by_name(plan)["scratch01"]["action"] == "delete"
    intent = ledger_intent_args(plan, "stor1")
    assert intent["volumes"]["scratch01"] == place("stor1", "lvm-thick", status="deleting")
    results = {host: written(ledger_intent_args(plan, host)) for host in HOSTS}
    deletes = {"stor1": volume_result(("scratch01", "delete", {}))}
    final = ledger_final_args(plan, "stor2", {}, deletes, results)
    assert "scratch01" not in final["volumes"]
    assert (final["generation"], final["expected_generation"]) == (9, 8)


def test_intent_write_that_failed_keeps_the_nodes_generation():
    plan = run_plan(gathers())
    results = {"stor1": written(ledger_intent_args(plan, "stor1")),
               "stor2": {"failed": True, "msg": "stale plan: ...", "written": False, "generation": 9,
                         "volumes": {}}}
    volume_results = {"stor2": volume_result(("db03-data", "create", {}))}
    args = ledger_final_args(plan, "stor2", volume_results, {}, results)
    assert args["expected_generation"] == 7  # stor2's copy as the plan read it
    assert args["generation"] == 9


# --- the same run against the ledger module on two node copies ---------------------------------------------------

@pytest.fixture()
def nodes(tmp_path, monkeypatch):
    """Two node copies of the lab ledger (generation 7) and a temp host lock for the module."""
    lock = str(tmp_path / "lock")
    monkeypatch.setattr(ledger_module, "host_lock",
                        lambda what, timeout=1800: _ledger.host_lock(what, timeout, path=lock, poll=0.05))
    paths = {}
    for host in HOSTS:
        paths[host] = str(tmp_path / host / "ledger.json")
        write_ledger(book(), paths[host])
    return paths


def module(capsys, path, args, check_mode=False):
    params = dict(args, path=path, written_by="test run")
    if check_mode:
        params["_ansible_check_mode"] = True
    with patch_module_args(params):
        with pytest.raises(SystemExit) as excinfo:
            ledger_module.main()
    result = json.loads(capsys.readouterr().out)
    assert (excinfo.value.code == 0) == (not result.get("failed")), result
    return result


def test_run_against_the_module(nodes, capsys):
    plan = run_plan(gathers())
    intents = {h: module(capsys, nodes[h], ledger_intent_args(plan, h)) for h in HOSTS}
    for host in HOSTS:
        assert not intents[host].get("failed") and intents[host]["written"] is True
        assert read_ledger(nodes[host])["generation"] == 8
        assert read_ledger(nodes[host])["volumes"]["db03-data"] == place("stor2", status="creating")
    volume_results = {"stor2": volume_result(("db03-data", "create", {}))}
    finals = {h: module(capsys, nodes[h], ledger_final_args(plan, h, volume_results, {}, intents)) for h in HOSTS}
    for host in HOSTS:
        assert not finals[host].get("failed")
        on_disk = read_ledger(nodes[host])
        assert on_disk["generation"] == 9
        assert on_disk["volumes"] == dict(LAB_PLACES, **{"db03-data": place("stor2")})


def test_a_second_run_that_planned_before_the_first_wrote_is_refused(nodes, capsys):
    first = run_plan(gathers())
    second = run_plan(gathers(), vols=volumes(DB03, {"name": "db04-data", "size": "1GiB", "volume_type": "fast"}))
    result = module(capsys, nodes["stor1"], ledger_intent_args(first, "stor1"))
    assert result["written"] is True
    before = Path(nodes["stor1"]).read_bytes()
    refused = module(capsys, nodes["stor1"], ledger_intent_args(second, "stor1"))
    assert refused["failed"] is True and "stale plan" in refused["msg"]
    assert Path(nodes["stor1"]).read_bytes() == before


def test_check_mode_run_against_the_module(nodes, capsys):
    plan = run_plan(gathers())
    intents = {h: module(capsys, nodes[h], ledger_intent_args(plan, h), check_mode=True) for h in HOSTS}
    assert all(not r.get("failed") for r in intents.values())
    volume_results = {"stor2": volume_result(("db03-data", "create", {}))}  # the volume module in check mode
    for host in HOSTS:
        args = ledger_final_args(plan, host, volume_results, {}, intents)
        if args is not None:
            result = module(capsys, nodes[host], args, check_mode=True)
            assert not result.get("failed"), result["msg"]
        assert read_ledger(nodes[host]) == book()


# --- report through the filter -----------------------------------------------------------------------------------

def test_report_of_a_partial_run():
    plan = run_plan(gathers(stor2=UNREACHABLE), allow_partial=True)
    stor1_items = [(e["name"], "create" if e["action"] == "create" else "none", {}) for e in plan["volumes"]
                   if e["host"] == "stor1"]
    got = report(plan, volume_results={"stor1": volume_result(*stor1_items)},
                 attachment_results={"stor1": {"changed": False, "attachments": [
                     {"volume": "db01-data"}, {"volume": "logs01"}]}},
                 connection_results={"client1": {"changed": False, "connections": [
                     {"volume": "db01-data", "device": "/dev/disk/by-path/db01"},
                     {"volume": "logs01", "device": "/dev/disk/by-path/logs01"}]}})
    states = {row["volume"]: row["state"] for row in got["rows"]}
    assert states == {"db01-data": "in-use", "db02-data": "unknown", "logs01": "in-use", "web01": "unknown",
                      "scratch01": "available", "archive01": "available", "db03-data": "available"}
    assert got["counts"] == {"in-use": 2, "unknown": 2, "available": 3}
    assert list(got["hosts_failed"]) == ["stor2"]
    lines = report_summary(got)
    assert "2 unknown" in lines[0] and "3 available" in lines[0] and "2 in-use" in lines[0]
    assert "stor2" in lines[1]


def test_documentation():
    doc = yaml.safe_load(plan_plugin.DOCUMENTATION)
    assert doc["name"] == "plan"
    assert {"allow_partial", "forget", "forget_hosts", "prepare_errors", "storage_hosts", "volumes"} <= set(
        doc["options"])
    yaml.safe_load(plan_plugin.EXAMPLES)
    assert "_value" in yaml.safe_load(plan_plugin.RETURN)


# --- consumer addresses, checked with netaddr before any change ------------------------------------------------------

@pytest.mark.parametrize("bad", ["198.18.0.21/24", "198.18.0.300", "fe80::1%a;touch x", "198.18.0.21\n", "host01",
                                 "１98.18.0.21"])
def test_a_bad_consumer_address_is_refused_naming_the_host(bad):
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(), consumer_addresses={"client1": bad})
    assert "client1: blockstore_storage_ip" in str(excinfo.value)
    assert "nothing was changed" in str(excinfo.value)


@pytest.mark.parametrize("good", ["198.18.0.21", "fd00::21", "fe80::21%eth1"])
def test_a_host_address_is_accepted(good):
    assert run_plan(gathers(), consumer_addresses={"client1": good})["volumes"]


def test_an_attached_consumer_without_an_address_is_refused_before_any_change():
    # The lab attaches db01-data, db02-data and logs01 to client1: each attachment is named.
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(), consumer_addresses={"client1": ""})
    text = str(excinfo.value)
    assert text.startswith("The plan is refused, nothing was changed:")
    assert "blockstore_volumes[0].attachments[0].host: consumer client1 has no blockstore_storage_ip" in text
    assert text.count("has no blockstore_storage_ip") == 3
    # A consumer with nothing attached needs no address.
    detached = [dict(v, attachments=[]) for v in volumes()]
    assert run_plan(gathers(), detached, consumer_addresses={"client1": ""})["volumes"]


def test_ledger_forget_lists_are_checked_before_anything():
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(), forget=["Archive_01"], forget_hosts=["stor9", "bad\nhost"])
    text = str(excinfo.value)
    assert "blockstore_ledger_forget[0]: 'Archive_01' is not a valid volume name" in text
    assert "blockstore_ledger_forget_hosts[1]: 'bad\\nhost' contains a control character" in text
    assert "stor9" not in text  # a node removed for good is usually gone from the inventory too
    with pytest.raises(AnsibleFilterError, match="blockstore_ledger_forget: 'archive01' is not a list"):
        run_plan(gathers(), forget="archive01")


@pytest.mark.parametrize("good", [["198.18.0.21"], ["198.18.0.21", "198.18.1.21"], ["fd00::21", "198.18.1.21"]])
def test_a_consumer_with_several_addresses_is_accepted(good):
    assert run_plan(gathers(), consumer_addresses={"client1": good})["volumes"]


def test_every_bad_address_of_a_consumer_is_named():
    with pytest.raises(AnsibleFilterError) as excinfo:
        run_plan(gathers(), consumer_addresses={"client1": ["198.18.0.21", "198.18.1.300", "10.0.0.0/8"]})
    text = str(excinfo.value)
    assert "client1: a storage address (blockstore_storage_ip or blockstore_storage_ips) '198.18.1.300'" in text
    assert "'10.0.0.0/8'" in text and "'198.18.0.21'" not in text


def test_an_empty_address_list_is_no_address():
    with pytest.raises(AnsibleFilterError, match="consumer client1 has no blockstore_storage_ip"):
        run_plan(gathers(), consumer_addresses={"client1": []})


# --- migrations through the plan filter, the role's items and ledger writes ------------------------------------------

def migrating_plan():
    """scratch01 (thick, stor1, az1) asked in az2 with migration_policy: on-demand."""
    vols = volumes()
    for vol in vols:
        if vol["name"] == "scratch01":
            vol.update(availability_zone="az2", migration_policy="on-demand")
    return run_plan(gathers(), vols)


def test_migration_items_follow_the_steps_and_their_results():
    result = migrating_plan()
    assert by_name(result)["scratch01"]["action"] == "migrate"
    (mig,) = result["migrations"]
    assert (mig["source"]["pool_id"], mig["destination"]["pool_id"]) == ("stor1@lvm-thick", "stor2@lvm-thick")
    secrets, prefix = {"scratch01": "S" * 32}, "iqn.2026-11.io.ember.blockstore:"
    assert migration_items(result, "stor1", "target") == []
    assert migration_items(result, "stor2", "target") == [
        {"name": "scratch01", "vg": "ember-thick", "thin_pool": None, "size_bytes": mig["destination_size_bytes"],
         "source_pool_id": "stor1@lvm-thick"}]
    (export,) = migration_items(result, "stor1", "export", addresses={"stor2": "198.18.0.12"}, secrets=secrets)
    assert export["initiator_address"] == "198.18.0.12" and export["chap_password"] == secrets["scratch01"]
    (copy_item,) = migration_items(result, "stor2", "copy", prefix=prefix, portals={"stor1": "198.18.0.11:3260"},
                                   secrets=secrets)
    assert (copy_item["portal"], copy_item["target_iqn"]) == ("198.18.0.11:3260", prefix + "migrate-scratch01")
    # Nothing is verified, switched or deleted before the step it depends on reported.
    assert migration_items(result, "stor1", "verify", results={"copy": {}}) == []
    assert migration_items(result, "stor2", "switch_destination", results={}) == []
    assert migration_items(result, "stor1", "switch_source", results={}) == []
    copied = {"stor2": {"migrations": [{"name": "scratch01", "done": "copied", "sha256": "ab" * 32}]}}
    (verify,) = migration_items(result, "stor1", "verify", results={"copy": copied})
    assert verify["sha256"] == "ab" * 32
    failed = {"stor1": {"failed": True, "migrations": [{"name": "scratch01", "done": "verified", "failed": True}]}}
    assert migration_items(result, "stor2", "switch_destination", results={"copy": copied, "verify": failed}) == []
    verified = {"stor1": {"migrations": [{"name": "scratch01", "done": "verified", "sha256": "ab" * 32}]}}
    (switch,) = migration_items(result, "stor2", "switch_destination", results={"copy": copied, "verify": verified})
    assert (switch["sha256"], switch["source_pool_id"], switch["volume_type"]) == ("ab" * 32, "stor1@lvm-thick", "bulk")
    switched = {"stor2": {"migrations": [{"name": "scratch01", "done": "switched"}]}}
    (source,) = migration_items(result, "stor1", "switch_source", results={"switch_destination": switched})
    assert source == {"name": "scratch01", "vg": "ember-thick", "destination_pool_id": "stor2@lvm-thick",
                      "force": False}
    (cleanup,) = migration_items(result, "stor1", "cleanup", results={"switch_destination": switched})
    assert cleanup["volume_clear"] == "zero"
    with pytest.raises(ValueError, match="not a migration step"):
        migration_items(result, "stor1", "teleport")


def test_the_switch_and_final_ledger_writes_record_the_destination():
    result = migrating_plan()
    before = result["ledger"]["intent"]["scratch01"]
    assert before["pool_id"] == "stor1@lvm-thick"  # until the switch the source is the volume
    args = ledger_migration_args(result, "stor1", {}, ["scratch01"])
    assert args["volumes"]["scratch01"] == {"host": "stor2", "pool_id": "stor2@lvm-thick", "status": "available"}
    assert (args["generation"], args["expected_generation"]) == (8, 7)
    assert ledger_migration_args(result, "stor1", {}, []) is None  # nothing verified: nothing to write
    written = {host: {"written": True, "generation": 8, "volumes": args["volumes"]} for host in HOSTS}
    final = ledger_final_args(result, "stor2", {}, {}, {}, migration_results=written)
    assert final is None  # the switch wrote what the run ends with
    # Without the switch's result the final write keeps the source (the copies record it there already).
    assert ledger_final_args(result, "stor2", {}, {}, {}) is None


def test_report_of_a_migration_depends_on_its_switch():
    result = migrating_plan()
    rows = {r["volume"]: r for r in report(result, migrated=["scratch01"])["rows"]}
    assert rows["scratch01"]["state"] == "available" and rows["scratch01"]["pool"] == "stor2@lvm-thick"
    rows = {r["volume"]: r for r in report(result)["rows"]}
    assert rows["scratch01"]["state"] == "error"
    assert "did not finish" in rows["scratch01"]["status"]
