# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manage and unmanage (Cinder's ``manage_existing`` / ``unmanage``) through the ``plan`` filter, the converge
items, the ledger and the report.

stor1's gather is ``backend_info``'s own code (``pool_facts`` and ``manageable_lvs``) over
``lvm/lvs_manage.json``: the lab's converged capture (logs01 and scratch01 thick, archive01 and db01-data thin,
db01-data exported to client1) plus LVs made by hand: legacy_db (thick, 192 MiB, closed), busy_lv (open),
snapped and its snapshot snapped_snap, taken (tagged as volume other01), old_thin (thin, in thinpool).
``lvm/lvs_managed.json`` is the same after legacy_db was managed as legacy-db without rename.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.plan import (
    blockstore_plan,
    ledger_final_args,
    ledger_intent_args,
    report,
)
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import manageable_lvs, pool_facts
from ansible_collections.ember.blockstore.plugins.module_utils._converge import manage_lvs, volume_items
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_conf, parse_show
from ansible_collections.ember.blockstore.plugins.plugin_utils.clashes import name_clashes

ROOT = Path(__file__).resolve().parents[4]
FIXTURES = ROOT / "tests" / "unit" / "fixtures"
TYPES = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all.yml").read_text())["blockstore_volume_types"]
MiB = 2**20
LEGACY = {"name": "legacy-db", "volume_type": "bulk",
          "manage": {"lv": "legacy_db", "host": "stor1", "backend": "lvm-thick"}}
SIZES = {"logs01": "256MiB", "scratch01": "512MiB", "archive01": "2GiB", "db01-data": "1GiB"}
KNOWN = [{"name": n, "size": SIZES[n]} for n in ("logs01", "scratch01", "archive01")] + [
    {"name": "db01-data", "size": "1GiB", "attachments": [{"host": "client1"}]}]


def cfg(**backend):
    raw = {key: spec.get("default") for key, spec in backend_options().items()}
    raw.update(backend)
    out = backend_config(raw)
    out["volume_clear_size_bytes"] = 0
    return out


BACKENDS = [cfg(name="lvm-thick", driver="lvm", vg="ember-thick", availability_zone="az1"),
            cfg(name="lvm-thin", driver="lvm_thin", vg="ember-thin", thin_pool="thinpool", availability_zone="az1")]


HAND_MADE = ("legacy_db", "busy_lv", "snapped", "snapped_snap", "taken", "old_thin")


def gather(lvs="lvm/lvs_manage.json", names=HAND_MADE, mounts=None):
    """stor1's backend_info result: its pools, each with the manageable LVs ``names`` (``mounts``: {path: [mount
    points]} as findmnt would say)."""
    state = LvmState(parse_vgs((FIXTURES / "lvm/vgs_converged_acl.json").read_text()),
                     parse_lvs((FIXTURES / lvs).read_text()))
    conf = parse_conf((FIXTURES / "tgt/conf_db01_acl.conf").read_text())
    live = parse_show((FIXTURES / "tgt/show_two_targets_acl.txt").read_text())
    pools = []
    for backend in BACKENDS:
        pool = pool_facts("stor1", backend, state, {conf["backing_store"]: conf}, live, False)
        pool["manageable"] = manageable_lvs(backend, state, names, lambda path: (mounts or {}).get(path, []))
        pools.append(pool)
    return {"stor1": {"changed": False, "pools": pools, "problems": [], "ledger_error": None,
                      "ledger": {"format": 1, "generation": 3, "volumes": {}}}}


def run(vols, gathers=None, **kwargs):
    return blockstore_plan(gathers or gather(), ["stor1"], copy.deepcopy(KNOWN) + copy.deepcopy(vols),
                           volume_types=TYPES, consumers=["client1"], **kwargs)


def entry(result, name):
    return next(e for e in result["volumes"] if e["name"] == name)


def refused(vols, gathers=None, **kwargs):
    with pytest.raises(AnsibleFilterError) as info:
        run(vols, gathers, **kwargs)
    return str(info.value)


# --- manage ----------------------------------------------------------------------------------------------------------

def test_a_manage_request_takes_the_lvs_exact_size_on_the_named_pool():
    result = run([LEGACY])
    got = entry(result, "legacy-db")
    assert (got["action"], got["pool_id"], got["size_bytes"], got["current_size_bytes"]) == \
        ("manage", "stor1@lvm-thick", 192 * MiB, 192 * MiB)
    assert got["manage"] == {"lv": "legacy_db", "rename": False, "host": "stor1", "backend": "lvm-thick"}
    # recorded as a create before any change; the LV is not a volume "not in inventory"
    assert ledger_intent_args(result, "stor1")["volumes"]["legacy-db"] == {
        "host": "stor1", "pool_id": "stor1@lvm-thick", "status": "creating"}
    assert "legacy-db" not in [v["name"] for v in result["unmanaged"]]


def test_the_manage_item_goes_to_the_volume_module_in_the_present_phase():
    result = run([dict(LEGACY, manage=dict(LEGACY["manage"], rename=True), description="old db")])
    items = volume_items(result, "stor1", gather()["stor1"]["pools"])
    assert items == [{"name": "legacy-db", "size": "%dB" % (192 * MiB), "state": "present", "vg": "ember-thick",
                      "thin_pool": None, "volume_type": "bulk", "backend": "lvm-thick", "description": "old db",
                      "manage": {"lv": "legacy_db", "rename": True}}]
    assert volume_items(result, "stor1", gather()["stor1"]["pools"], phase="absent") == []


def test_a_bigger_size_is_an_extend_after_the_manage_and_a_smaller_one_is_refused():
    got = entry(run([dict(LEGACY, size="256MiB")]), "legacy-db")
    assert (got["size_bytes"], got["current_size_bytes"]) == (256 * MiB, 192 * MiB)
    assert "extend by 64 MiB" in got["reason"]
    message = refused([dict(LEGACY, size="128MiB")])
    assert "blockstore_volumes[4].size: volumes never shrink: LV legacy_db on stor1 is 192 MiB (201326592 bytes), " \
           "inventory asks 128 MiB (134217728 bytes)" in message


def test_a_thin_lv_is_managed_in_the_thin_pool():
    got = entry(run([{"name": "old-thin", "volume_type": "fast",
                      "manage": {"lv": "old_thin", "host": "stor1", "backend": "lvm-thin"}}]), "old-thin")
    assert (got["action"], got["pool_id"], got["thin_pool"], got["size_bytes"]) == \
        ("manage", "stor1@lvm-thin", "thinpool", 512 * MiB)


@pytest.mark.parametrize(("manage", "expected"), [
    ({"lv": "gone_lv"}, "blockstore_volumes[4].manage.lv: LV gone_lv not found on stor1 in VG ember-thick"),
    ({"lv": "taken"}, "blockstore_volumes[4].manage.lv: LV taken on stor1 in VG ember-thick is already managed by "
                      "ember.blockstore as volume other01 (tags: ember.blockstore, ember.volume=other01); unmanage "
                      "it first"),
    ({"lv": "busy_lv"}, "blockstore_volumes[4].manage.lv: LV busy_lv on stor1 in VG ember-thick is in use by the "
                        "host (open, mounted on /srv/old)"),
    ({"lv": "snapped"}, "LV snapped on stor1 in VG ember-thick has snapshots (snapped_snap); remove them first"),
    ({"lv": "snapped_snap"}, "LV snapped_snap on stor1 in VG ember-thick is a snapshot of snapped"),
    ({"lv": "old_thin", "backend": "lvm-thin", "host": "stor1"}, None),
    ({"lv": "legacy_db", "backend": "lvm-thin"}, "blockstore_volumes[4].manage.lv: LV legacy_db not found on "
                                                 "stor1 in VG ember-thin"),
    ({"lv": "legacy_db", "backend": "nvme"}, "blockstore_volumes[4].manage: no pool stor1@nvme reported (host "
                                             "stor1 did not report, or has no backend nvme; its pools: "
                                             "stor1@lvm-thick, stor1@lvm-thin)"),
    ({"lv": "legacy_db", "host": "stor9"}, "no pool stor9@lvm-thick reported"),
])
def test_every_refusal_names_the_field_the_host_and_the_vg_before_any_change(manage, expected):
    vol = dict(LEGACY, manage=dict(LEGACY["manage"], **manage))
    gathers = gather(mounts={"/dev/ember-thick/busy_lv": ["/srv/old"]})
    if expected is None:  # the thin LV on its thin pool is fine: the type must still match the pool
        assert "CapabilitiesFilter" in refused([vol], gathers)
        return
    assert expected in refused([vol], gathers)


def test_holders_in_sysfs_make_the_lv_in_use():
    gathers = gather()
    fact = next(lv for lv in gathers["stor1"]["pools"][0]["manageable"] if lv["name"] == "legacy_db")
    fact["holders"] = ["dm-9"]
    assert "LV legacy_db on stor1 in VG ember-thick is in use by the host (holder dm-9)" in refused([LEGACY], gathers)


def test_quotas_count_the_managed_volume():
    message = refused([LEGACY], quotas={"gigabytes": 1})  # the lab's volumes take 3.75 GiB already
    assert "gigabytes" in message
    # logs01 and scratch01 are bulk (their LV tags): legacy-db is the third
    assert "volumes_bulk" in refused([LEGACY], quotas={"volumes_bulk": 2})
    assert entry(run([LEGACY], quotas={"volumes_bulk": 3}), "legacy-db")["action"] == "manage"


def test_after_the_manage_the_volume_is_ordinary_and_manage_is_a_no_op():
    gathers = gather(lvs="lvm/lvs_managed.json")
    result = run([dict(LEGACY, size="192MiB")], gathers)
    got = entry(result, "legacy-db")
    assert (got["action"], got["pool_id"], got["size_bytes"]) == ("none", "stor1@lvm-thick", 192 * MiB)
    assert volume_items(result, "stor1", gathers["stor1"]["pools"]) == []
    assert ledger_intent_args(result, "stor1")["volumes"]["legacy-db"]["status"] == "available"


def test_a_name_that_is_taken_while_the_lv_is_still_unmanaged_is_refused():
    vol = dict(LEGACY, name="logs01")
    with pytest.raises(AnsibleFilterError, match=r"blockstore_volumes\[0\].manage: a volume named logs01 already "
                                                 r"exists \(on stor1@lvm-thick\), and LV legacy_db on stor1 is not "
                                                 r"managed"):
        blockstore_plan(gather(), ["stor1"], [vol], volume_types=TYPES, consumers=["client1"])


def test_the_manage_lvs_filter_lists_the_lvs_per_host():
    vols = [LEGACY, {"name": "x", "manage": {"lv": "x_lv", "host": "stor1", "backend": "b", "rename": True}},
            {"name": "y", "manage": {"lv": "y_lv", "host": "stor2", "backend": "b"}}, {"name": "z"}, "junk"]
    assert manage_lvs(vols, "stor1") == ["legacy_db", "volume-x", "x_lv"]
    assert manage_lvs(vols, "stor2") == ["y_lv"]
    assert manage_lvs([{"name": "z"}], "stor1") == []


def test_an_untagged_lv_that_a_request_expects_is_no_clash():
    pools = [{"clashes": [{"kind": "lv", "host": "stor1", "volume": "a", "vg": "ember-thick", "lv_name": "volume-a",
                           "tags": []}]}]
    assert name_clashes([{"name": "a", "state": "unmanaged"}], pools) == []
    assert name_clashes([{"name": "a", "manage": {"lv": "volume-a", "host": "stor1", "backend": "t"}}], pools) == []
    assert name_clashes([{"name": "a", "manage": {"lv": "old", "host": "stor1", "backend": "t", "rename": True}}],
                        pools) == []
    assert len(name_clashes([{"name": "a"}], pools)) == 1
    assert len(name_clashes([{"name": "a", "manage": {"lv": "old", "host": "stor2", "backend": "t"}}], pools)) == 1


# --- unmanage --------------------------------------------------------------------------------------------------------

def test_unmanage_of_a_detached_volume_goes_with_the_deletes_and_drops_its_ledger_entry():
    vols = [{"name": "logs01", "state": "unmanaged"}]
    result = blockstore_plan(gather(), ["stor1"], vols + [{"name": "scratch01", "size": "512MiB"}], volume_types=TYPES,
                             consumers=["client1"])
    got = entry(result, "logs01")
    assert (got["action"], got["pool_id"], got["state"]) == ("unmanage", "stor1@lvm-thick", "unmanaged")
    pools = gather()["stor1"]["pools"]
    assert volume_items(result, "stor1", pools) == []
    assert volume_items(result, "stor1", pools, phase="absent") == [
        {"name": "logs01", "state": "unmanaged", "vg": "ember-thick", "thin_pool": None}]
    intent = ledger_intent_args(result, "stor1")
    assert intent["volumes"]["logs01"]["status"] == "available"
    written = {"stor1": {"written": True, "generation": intent["generation"], "volumes": intent["volumes"]}}
    done = {"stor1": {"volumes": [{"name": "logs01", "action": "unmanage", "changed": True}]}}
    final = ledger_final_args(result, "stor1", {}, done, written)
    assert "logs01" not in final["volumes"] and "scratch01" in final["volumes"]
    failed = {"stor1": {"volumes": [{"name": "logs01", "action": "unmanage", "failed": True}]}}
    assert ledger_final_args(result, "stor1", {}, failed, written) is None  # kept as it was


def test_unmanage_of_an_attached_volume_names_its_consumers():
    vols = [{"name": "db01-data", "state": "unmanaged"}]
    with pytest.raises(AnsibleFilterError, match=r"blockstore_volumes\[0\].state: unmanaged: db01-data on "
                                                 r"stor1@lvm-thin is in-use \(attached to iqn\.1993-08"):
        blockstore_plan(gather(), ["stor1"], vols, volume_types=TYPES, consumers=["client1"])
    with pytest.raises(AnsibleFilterError, match=r"attachments\[0\]: an unmanaged volume has no attachments"):
        blockstore_plan(gather(), ["stor1"], [dict(vols[0], attachments=[{"host": "client1"}])], volume_types=TYPES,
                        consumers=["client1"])


def test_unmanage_with_snapshots_names_them():
    gathers = gather()
    pool = gathers["stor1"]["pools"][0]
    vol = next(v for v in pool["volumes"] if v["name"] == "logs01")
    vol["managed_snapshots"] = [{"name": "nightly", "lv_name": "snap-logs01+nightly"}]
    with pytest.raises(AnsibleFilterError, match=r"logs01 on stor1@lvm-thick has snapshot\(s\) nightly; delete them"):
        blockstore_plan(gathers, ["stor1"], [{"name": "logs01", "state": "unmanaged"}], volume_types=TYPES,
                        consumers=["client1"])


def test_an_unmanaged_volume_that_is_not_found_is_no_change():
    result = run([{"name": "legacy-db", "state": "unmanaged"}])
    got = entry(result, "legacy-db")
    assert (got["action"], got["pool_id"]) == ("none", None)
    assert volume_items(result, "stor1", gather()["stor1"]["pools"], phase="absent") == []


# --- report ----------------------------------------------------------------------------------------------------------

def test_report_rows_of_a_manage_and_an_unmanage():
    vols = [LEGACY, {"name": "scratch01", "state": "unmanaged"}, {"name": "gone", "state": "unmanaged"}]
    result = blockstore_plan(gather(), ["stor1"], copy.deepcopy(vols) + [{"name": "logs01", "size": "256MiB"}],
                             volume_types=TYPES, consumers=["client1"])
    pools = gather()["stor1"]["pools"]
    predicted = report(result, pools=pools, check_mode=True)
    rows = {r["volume"]: r for r in predicted["rows"]}
    assert (rows["legacy-db"]["action"], rows["legacy-db"]["state"]) == ("manage", "available")
    assert (rows["scratch01"]["action"], rows["scratch01"]["state"]) == ("unmanage", "unmanaged")
    assert rows["gone"]["state"] == "unmanaged"
    done = report(result, pools=pools,
                  volume_results={"stor1": {"volumes": [{"name": "legacy-db", "action": "manage",
                                                         "size_bytes": 192 * MiB}]}},
                  delete_results={"stor1": {"volumes": [{"name": "scratch01", "action": "unmanage"}]}})
    rows = {r["volume"]: r for r in done["rows"]}
    assert (rows["legacy-db"]["status"], rows["scratch01"]["status"]) == ("available", "unmanaged")
    assert done["counts"]["unmanaged"] == 2 and done["errors"] == []
    # the LV held its space already: the thick pool's use does not grow by its size
    thick = next(p for p in done["pool_usage"] if p["id"] == "stor1@lvm-thick")
    assert thick["used_bytes"] == pools[0]["allocated_bytes"]
    failed = report(result, pools=pools, volume_results={"stor1": {"failed": True, "msg": "LV was opened"}},
                    delete_results={"stor1": {"volumes": [{"name": "scratch01", "action": "unmanage",
                                                           "failed": True}], "failed": True, "msg": "busy"}})
    rows = {r["volume"]: r for r in failed["rows"]}
    assert rows["legacy-db"]["state"] == "error" and rows["scratch01"]["state"] == "error"
