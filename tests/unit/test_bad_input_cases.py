# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every case of tests/integration/bad_inputs.yml refused, with a message naming the field and the value.

``plan`` cases: the ``plan`` filter over gathers of the lab as the lab test finds it (after test_site.py): stor1 is
``backend_info.pool_facts`` over the LVM/tgt state captured on the lab after a converge (lvm/lvs_converged_acl.json,
tgt/show_two_targets_acl.txt, db01-data's target file) plus the snapshots test_site.py leaves (scratch01's thick
``s1`` with a 128 MiB COW store and archive01's thin ``s1``, both reverted to); stor2 is the same capture with its
volumes renamed to stor2's (web01 thick 256 MiB, db02-data thin 1 GiB), as tests/unit/plugins/filter/test_plan.py
builds it. ``module`` cases: the module's ``main()`` (``modrun.run_module``) over the same stor1 state (client1: no
session), which must fail having run nothing but reads.

The same file drives tests/integration/playbooks/bad_inputs.yml on the lab (tests/integration/test_bad_inputs.py).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.plan import blockstore_plan
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import pool_facts
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_conf, parse_show
from ansible_collections.ember.blockstore.plugins.modules import attachment, connection, snapshot, volume

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "plugins" / "modules"))
from modrun import run_module  # noqa: E402

FIXTURES = ROOT / "tests" / "unit" / "fixtures"
CASES_FILE = ROOT / "tests" / "integration" / "bad_inputs.yml"
PLAYBOOK = ROOT / "tests" / "integration" / "playbooks" / "bad_inputs.yml"
DOC = yaml.safe_load(CASES_FILE.read_text())
CASES = DOC["cases"]
PLAN_CASES = [c for c in CASES if c["kind"] == "plan"]
MODULE_CASES = [c for c in CASES if c["kind"] == "module"]
LAB_VARS = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all.yml").read_text())
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles" / "blockstore" / "defaults" / "main.yml").read_text())
MiB = 2**20
HOSTS = ["stor1", "stor2"]
CONSUMERS = ["client1"]
CLIENT1_IQN = "iqn.1993-08.org.debian:01:ed703fed4dfd"

# The plan options a case may set (what the playbook passes to the filter), with the keyword argument each is.
OPTIONS = {
    "blockstore_volumes": "volumes",
    "blockstore_volume_types": "volume_types",
    "blockstore_capacity_weight_multiplier": "weight_multiplier",
    "blockstore_default_volume_type": "default_volume_type",
    "blockstore_default_availability_zone": "default_availability_zone",
    "blockstore_allow_partial": "allow_partial",
    "blockstore_ledger_forget": "forget",
    "blockstore_ledger_forget_hosts": "forget_hosts",
    "blockstore_quotas": "quotas",
}
MODULES = {"ember.blockstore.volume": volume, "ember.blockstore.snapshot": snapshot,
           "ember.blockstore.attachment": attachment, "ember.blockstore.connection": connection}
# The top-level options the playbook passes to each module (a case using another one would be dropped there).
MODULE_OPTIONS = {
    "ember.blockstore.volume": {"volumes", "target_prefix"},
    "ember.blockstore.snapshot": {"snapshots", "target_prefix"},
    "ember.blockstore.attachment": {"attachments", "portal", "target_prefix", "allow_networks"},
    "ember.blockstore.connection": {"connections", "wait_timeout", "force"},
}
CATEGORIES = ("size", "shrink", "key", "type", "dup", "name", "az", "quota", "snap", "revert", "source", "cow",
              "delete", "other")

# --- the lab's state as the lab test finds it --------------------------------------------------------------------

LV_TIME = "2026-11-20 09:00:00 +0000"
SNAPSHOT_ROWS = [  # what test_inventory_snapshots_take_revert_and_keep_still (test_site.py) leaves on stor1
    {"lv_name": "snap-scratch01+s1", "vg_name": "ember-thick", "lv_size": str(128 * MiB), "lv_attr": "swi-a-s---",
     "lv_tags": "ember.blockstore,ember.description=before#20the#20upgrade,ember.reverted,ember.snapshot=s1,"
                "ember.volume=scratch01,ember.volume_size=536870912",
     "pool_lv": "", "origin": "volume-scratch01", "data_percent": "0.00", "metadata_percent": "",
     "lv_path": "/dev/ember-thick/snap-scratch01+s1", "segtype": "linear", "lv_time": "2026-11-20 10:00:00 +0000"},
    {"lv_name": "snap-archive01+s1", "vg_name": "ember-thin", "lv_size": "2147483648", "lv_attr": "Vwi---tz-k",
     "lv_tags": "ember.blockstore,ember.reverted,ember.snapshot=s1,ember.volume=archive01,"
                "ember.volume_size=2147483648",
     "pool_lv": "thinpool", "origin": "volume-archive01", "data_percent": "", "metadata_percent": "",
     "lv_path": "/dev/ember-thin/snap-archive01+s1", "segtype": "thin", "lv_time": "2026-11-20 10:00:00 +0000"},
]


def stor1_lvs_json():
    """lvs output of stor1: the lab capture (with lv_time) plus the snapshots; scratch01 is their origin now."""
    lvs = json.loads((FIXTURES / "lvm/lvs_converged_acl.json").read_text())
    rows = []
    for row in lvs["report"][0]["lv"]:
        row = dict(row, lv_time=LV_TIME)
        if row["lv_name"] == "volume-scratch01":
            row["lv_attr"] = "owi-a-s---"
        rows.append(row)
    lvs["report"][0]["lv"] = rows + copy.deepcopy(SNAPSHOT_ROWS)
    return json.dumps(lvs)


STOR1_LVS = stor1_lvs_json()
STOR1_VGS = (FIXTURES / "lvm/vgs_converged_acl.json").read_text()
STOR1_TARGETS = (FIXTURES / "tgt/show_two_targets_acl.txt").read_text()


def stor1_answer(args):
    """Read-only answers of stor1 (LVM, tgt) and client1 (no session) as the lab test finds them."""
    if args[0] == "vgs":
        return 0, STOR1_VGS, ""
    if args[0] == "lvs":
        return 0, STOR1_LVS, ""
    if args[0] == "pvs":
        return 0, '{"report": [{"pv": []}]}', ""
    if args[0] == "tgtadm" and args[-2:] == ["--op", "show"] and "target" in args:
        return 0, STOR1_TARGETS, ""
    if args[0] == "tgtadm" and "sys" in args:
        return 0, "System:\n    State: ready\n", ""
    if args[0] == "iscsiadm" and args[1:3] in (["-m", "session"], ["-m", "node"]) and len(args) == 3:
        return 21, "", "iscsiadm: No active sessions.\n"
    return 0, "", ""


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


def stor2_state():
    """stor2 as the lab converges it: web01 (thick) and db02-data (thin), as test_plan.py builds it."""
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
        if row["vg_name"] == "ember-thick":
            row["vg_free"] = str(int(row["vg_size"]) - 256 * MiB)
    return LvmState(parse_vgs(json.dumps(vgs)), parse_lvs(json.dumps(lvs)))


def stor1_pools():
    state = LvmState(parse_vgs(STOR1_VGS), parse_lvs(STOR1_LVS))
    conf = parse_conf((FIXTURES / "tgt/conf_db01_acl.conf").read_text())
    live = parse_show(STOR1_TARGETS)
    return [pool_facts("stor1", c, state, {conf["backing_store"]: conf}, live, False) for c in backends("az1")]


def place(host, backend="lvm-thin"):
    return {"host": host, "pool_id": "%s@%s" % (host, backend), "status": "available"}


LEDGER = {"format": 1, "generation": 9,
          "volumes": {"db01-data": place("stor1"), "archive01": place("stor1"), "logs01": place("stor1", "lvm-thick"),
                      "scratch01": place("stor1", "lvm-thick"), "db02-data": place("stor2"),
                      "web01": place("stor2", "lvm-thick")},
          "written_by": "ember.blockstore run 2026-01-01T00:00:00Z", "written_at": "2026-01-01T00:00:00Z"}


def gather(pools):
    return {"changed": False, "pools": pools, "problems": [], "ledger": copy.deepcopy(LEDGER), "ledger_error": None,
            "tgt": {"running": True, "configured": True, "ready": True}}


STOR1 = stor1_pools()
STOR2 = [pool_facts("stor2", c, stor2_state(), {}, {}, False) for c in backends("az2")]


def gathers():
    return {"stor1": gather(copy.deepcopy(STOR1)), "stor2": gather(copy.deepcopy(STOR2))}


def lab_options():
    """The plan's options on the lab: the role's defaults, then the lab inventory's vars."""
    base = {key: ROLE_DEFAULTS.get(key) for key in OPTIONS}
    base.update({key: LAB_VARS[key] for key in OPTIONS if key in LAB_VARS})
    return base


def run_case_plan(case):
    options = dict(lab_options(), **copy.deepcopy(case["vars"]))
    kwargs = {OPTIONS[key]: value for key, value in options.items() if key != "blockstore_volumes"}
    return blockstore_plan(gathers(), HOSTS, options["blockstore_volumes"], consumers=CONSUMERS,
                           consumer_addresses={"client1": "198.18.0.21"}, prepare_errors={}, **kwargs)


# --- the case file -------------------------------------------------------------------------------------------------

def test_cases_are_many_distinct_and_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 36
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    for case in CASES:
        assert case["id"].split("-", 1)[0] in CATEGORIES, case["id"]
        assert case["expect"] and all(isinstance(e, str) and e for e in case["expect"]), case["id"]
        if case["kind"] == "plan":
            assert set(case) <= {"id", "kind", "vars", "expect"}, case["id"]
            assert case["vars"] and set(case["vars"]) <= set(OPTIONS), case["id"]
        else:
            assert case["kind"] == "module", case["id"]
            assert set(case) <= {"id", "kind", "host", "module", "args", "check_mode", "expect"}, case["id"]
            assert case["host"] in ("stor1", "client1") and case["module"] in MODULES, case["id"]
            assert set(case["args"]) <= MODULE_OPTIONS[case["module"]], case["id"]
            assert (case["host"] == "client1") == (case["module"] == "ember.blockstore.connection"), case["id"]
    # No two cases give the same input.
    inputs = [json.dumps({k: v for k, v in c.items() if k not in ("id", "expect")}, sort_keys=True) for c in CASES]
    assert len(set(inputs)) == len(inputs)


def test_every_category_of_the_issue_is_covered():
    counts = {cat: sum(1 for c in CASES if c["id"].split("-", 1)[0] == cat) for cat in CATEGORIES}
    assert all(counts.values()), counts
    assert len(PLAN_CASES) >= 30 and len(MODULE_CASES) >= 10


def test_the_base_volumes_are_the_labs_declared_volumes_but_logs01():
    assert DOC["lab_volumes"] == [v for v in LAB_VARS["blockstore_volumes"] if v["name"] != "logs01"]
    assert DOC["lab_volume_types"] == LAB_VARS["blockstore_volume_types"]


def test_the_64_character_name_is_64_characters():
    case = next(c for c in CASES if c["id"] == "name-64-characters")
    assert len(case["vars"]["blockstore_volumes"][5]["name"]) == 64


def test_the_gathers_are_the_lab_after_test_site():
    assert [(p["id"], sorted(v["name"] for v in p["volumes"])) for p in STOR1 + STOR2] == [
        ("stor1@lvm-thick", ["logs01", "scratch01"]), ("stor1@lvm-thin", ["archive01", "db01-data"]),
        ("stor2@lvm-thick", ["web01"]), ("stor2@lvm-thin", ["db02-data"])]
    vols = {v["name"]: v for p in STOR1 for v in p["volumes"]}
    assert [s["name"] for s in vols["scratch01"]["managed_snapshots"]] == ["s1"]
    assert [s["name"] for s in vols["archive01"]["managed_snapshots"]] == ["s1"]
    assert vols["db01-data"]["attached_to"] == [CLIENT1_IQN]


def test_the_lab_declared_volumes_plan_cleanly():
    """Without the bad change the base inventory is accepted: each case fails for its own reason."""
    result = run_case_plan({"vars": {"blockstore_volumes": DOC["lab_volumes"]}})
    assert {e["name"]: e["action"] for e in result["volumes"]} == {
        "db01-data": "none", "db02-data": "none", "web01": "none", "scratch01": "none", "archive01": "none"}


# --- every case refused --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", PLAN_CASES, ids=[c["id"] for c in PLAN_CASES])
def test_plan_case_is_refused_naming_field_and_value(case):
    with pytest.raises(AnsibleFilterError) as info:
        run_case_plan(case)
    text = str(info.value)
    missing = [e for e in case["expect"] if e not in text]
    assert not missing, "%s: %r not in:\n%s" % (case["id"], missing, text)


@pytest.mark.parametrize("case", MODULE_CASES, ids=[c["id"] for c in MODULE_CASES])
def test_module_case_is_refused_before_any_change(monkeypatch, capsys, case):
    run = run_module(monkeypatch, capsys, MODULES[case["module"]], copy.deepcopy(case["args"]), answer=stor1_answer,
                     check_mode=bool(case.get("check_mode")))
    assert run.failed, (case["id"], run.result)
    missing = [e for e in case["expect"] if e not in run.msg]
    assert not missing, "%s: %r not in:\n%s" % (case["id"], missing, run.msg)
    assert run.changes() == [], (case["id"], run.changes())


def test_the_playbook_reads_this_file_and_the_plan_options():
    """The playbook passes every option of OPTIONS to the filter and every module option of MODULE_OPTIONS."""
    text = PLAYBOOK.read_text()
    assert "bad_inputs.yml" in text
    for key, kwarg in OPTIONS.items():
        if key != "blockstore_volumes":
            assert re.search(r"\b%s=__v\.%s\b" % (kwarg, key), text), (kwarg, key)
    for module, options in MODULE_OPTIONS.items():
        assert module + ":" in text
        for option in options:
            assert "%s: \"{{ item.args.%s | default(omit) }}\"" % (option, option) in text, (module, option)
