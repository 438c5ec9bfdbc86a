# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_backend_info.pool_facts`` over LVM and tgt state captured on the lab's stor1, with stor1's backends from
``inventories/lab/host_vars/stor1.yml``.

Values asserted below are read from the fixtures: ember-thick vg_size 4290772992 / vg_free 3183476736 (stor1) and
3485466624 (converged); thinpool lv_size 4072669184 with data_percent 0.51 / metadata_percent 11.52 (stor1) and
0.00 / 11.33 (converged).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _backend_info
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import pool_facts
from ansible_collections.ember.blockstore.plugins.module_utils._size import parse_size
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_conf, parse_show

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
CLIENT1 = "iqn.1993-08.org.debian:01:d53fc39a07f1"
CLIENT1_ADDR = "198.18.0.21"
MiB, GiB = 2**20, 2**30
EXTENT = 4194304
VG_SIZE = 4290772992  # both lab VGs
POOL_SIZE = 4072669184  # thinpool lv_size


def text(name):
    return (FIXTURES / name).read_text()


# client1 in the address-only captures: its IQN is recorded as a comment in conf_db01_acl.conf.
CLIENT1_ACL = re.search(r"^    # initiator-name (\S+)$", text("tgt/conf_db01_acl.conf"), re.MULTILINE).group(1)


def lvm_state(which):
    return LvmState(parse_vgs(text("lvm/vgs_%s.json" % which)), parse_lvs(text("lvm/lvs_%s.json" % which)))


def cfg(**backend):
    """A backend as the module normalises it: argspec defaults, backend_config, volume_clear_size_bytes."""
    raw = {key: spec.get("default") for key, spec in backend_options().items()}
    raw.update(backend)
    out = backend_config(raw)
    out["volume_clear_size_bytes"] = parse_size(out["volume_clear_size"], "volume_clear_size")
    return out


def thick(**kwargs):  # stor1's first backend
    return cfg(**dict({"name": "lvm-thick", "driver": "lvm", "vg": "ember-thick", "pvs": ["/dev/vdb"],
                       "availability_zone": "az1", "reserved_percentage": 5}, **kwargs))


def thin(**kwargs):  # stor1's second backend
    return cfg(**dict({"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "pvs": ["/dev/vdc"],
                       "thin_pool": "thinpool", "thin_pool_size": "95%VG", "availability_zone": "az1",
                       "reserved_percentage": 10, "max_over_subscription_ratio": 4.0}, **kwargs))


@pytest.fixture(scope="module")
def stor1():
    return lvm_state("stor1")


@pytest.fixture(scope="module")
def converged():
    return lvm_state("converged")


@pytest.fixture(scope="module")
def db01_exports():
    conf = parse_conf(text("tgt/conf_db01.conf"))
    return {conf["backing_store"]: dict(conf, path="/etc/tgt/conf.d/ember-volume-db01-data.conf")}


@pytest.fixture(scope="module")
def live():
    return parse_show(text("tgt/show_two_targets.txt"))


# --- thick -------------------------------------------------------------------------------------------------------

def test_thick_pool_stats(stor1):
    pool = pool_facts("stor1", thick(), stor1, {}, {}, False)
    assert pool["id"] == "stor1@lvm-thick"
    assert (pool["host"], pool["backend"], pool["driver"], pool["vg"]) == ("stor1", "lvm-thick", "lvm",
                                                                           "ember-thick")
    assert pool["thin_pool"] is None
    assert pool["exists"] is True and pool["predicted"] is False
    assert pool["extent_size_bytes"] == EXTENT
    assert pool["total_bytes"] == VG_SIZE
    assert pool["free_bytes"] == 3183476736
    # Used = everything in the VG: volume-a (1002438656) and its COW snapshot snap-a (104857600).
    assert pool["allocated_bytes"] == VG_SIZE - 3183476736 == 1002438656 + 104857600
    assert pool["provisioned_bytes"] == pool["allocated_bytes"]
    assert pool["data_percent"] is None and pool["metadata_percent"] is None
    assert pool["volume_clear"] == "zero" and pool["volume_clear_size_bytes"] == 0


def test_thick_volumes_with_cow_snapshot(stor1):
    pool = pool_facts("stor1", thick(), stor1, {}, {}, False)
    assert pool["volumes"] == [{
        "name": "a", "lv_name": "volume-a", "size_bytes": 1002438656, "volume_type": "bulk",
        "status": "available", "attached_to": [], "sessions": [], "target_iqn": None, "initiator_addresses": [],
        "export_ok": False, "mutual_chap": False, "snapshots": ["snap-a"], "managed_snapshots": [],
        "device": "/dev/ember-thick/volume-a", "description": None, "metadata": {}, "migrated_from": None,
    }]


def test_thick_capabilities():
    pool = pool_facts("stor1", thick(capabilities={"disk_type": "hdd"}), lvm_state("stor1"), {}, {}, False)
    assert pool["capabilities"] == {
        "disk_type": "hdd", "volume_backend_name": "lvm-thick", "storage_protocol": "iSCSI", "driver": "lvm",
        "thin_provisioning_support": False, "thick_provisioning_support": True, "availability_zone": "az1",
        "reserved_percentage": 5, "max_over_subscription_ratio": 20.0, "multiattach": True,
    }


def test_capabilities_cannot_override_reported_keys(stor1):
    pool = pool_facts("stor1", thick(capabilities={"storage_protocol": "FC", "driver": "x"}), stor1, {}, {}, False)
    assert pool["capabilities"]["storage_protocol"] == "iSCSI"
    assert pool["capabilities"]["driver"] == "lvm"


def test_volume_backend_name_and_wipe_settings(stor1):
    pool = pool_facts("stor1", thick(volume_backend_name="slow", volume_clear="none", volume_clear_size="1MiB"),
                      stor1, {}, {}, False)
    assert pool["capabilities"]["volume_backend_name"] == "slow"
    assert (pool["volume_clear"], pool["volume_clear_size_bytes"]) == ("none", MiB)


def test_thick_converged_volumes_sorted_by_name(converged):
    pool = pool_facts("stor1", thick(), converged, {}, {}, False)
    assert pool["total_bytes"] == VG_SIZE
    assert pool["free_bytes"] == 3485466624
    assert pool["allocated_bytes"] == 268435456 + 536870912
    assert [(v["name"], v["size_bytes"], v["volume_type"]) for v in pool["volumes"]] == [
        ("logs01", 268435456, "bulk"), ("scratch01", 536870912, "bulk")]


# --- thin --------------------------------------------------------------------------------------------------------

def test_thin_pool_stats(stor1):
    pool = pool_facts("stor1", thin(), stor1, {}, {}, False)
    assert pool["id"] == "stor1@lvm-thin"
    assert pool["thin_pool"] == "thinpool"
    assert pool["exists"] is True and pool["predicted"] is False
    assert pool["total_bytes"] == POOL_SIZE  # the pool LV, not the VG
    used = 20770613  # 0.51 % of 4072669184 = 20770612.84, rounded
    assert (POOL_SIZE * 51 + 5000) // 10000 == used
    assert pool["allocated_bytes"] == used
    assert pool["free_bytes"] == POOL_SIZE - used
    assert pool["data_percent"] == 0.51
    assert pool["metadata_percent"] == 11.52
    # Sum of the virtual sizes of every thin LV in the pool: volume-b and its thin snapshot snap-b (1 GiB each).
    assert pool["provisioned_bytes"] == 2 * GiB


def test_thin_volumes_with_thin_snapshot(stor1):
    pool = pool_facts("stor1", thin(), stor1, {}, {}, False)
    assert pool["volumes"] == [{
        "name": "b", "lv_name": "volume-b", "size_bytes": GiB, "volume_type": None, "status": "available",
        "attached_to": [], "sessions": [], "target_iqn": None, "initiator_addresses": [],
        "export_ok": False, "mutual_chap": False, "snapshots": ["snap-b"], "managed_snapshots": [],
        "device": "/dev/ember-thin/volume-b", "description": None, "metadata": {}, "migrated_from": None,
    }]


def test_thin_capabilities(stor1):
    caps = pool_facts("stor1", thin(), stor1, {}, {}, False)["capabilities"]
    assert caps["thin_provisioning_support"] is True
    assert caps["thick_provisioning_support"] is False
    assert caps["driver"] == "lvm_thin"
    assert caps["max_over_subscription_ratio"] == 4.0
    assert caps["reserved_percentage"] == 10


def test_auto_over_subscription_ratio(stor1):
    caps = pool_facts("stor1", thin(max_over_subscription_ratio="auto"), stor1, {}, {}, False)["capabilities"]
    assert caps["max_over_subscription_ratio"] == "auto"


def test_thin_converged_with_export(converged, db01_exports, live):
    pool = pool_facts("stor1", thin(), converged, db01_exports, live, False)
    assert pool["total_bytes"] == pool["free_bytes"] == POOL_SIZE  # data_percent 0.00
    assert pool["allocated_bytes"] == 0
    assert pool["metadata_percent"] == 11.33
    assert pool["provisioned_bytes"] == 2147483648 + 1073741824  # archive01 + db01-data
    assert pool["volumes"] == [
        {"name": "archive01", "lv_name": "volume-archive01", "size_bytes": 2147483648, "volume_type": "fast",
         "status": "available", "attached_to": [], "sessions": [], "target_iqn": None,
         "initiator_addresses": [], "export_ok": False, "mutual_chap": False, "snapshots": [], "managed_snapshots": [],
         "device": "/dev/ember-thin/volume-archive01", "description": None, "metadata": {}, "migrated_from": None},
        {"name": "db01-data", "lv_name": "volume-db01-data", "size_bytes": 1073741824, "volume_type": "fast",
         "status": "in-use", "attached_to": [CLIENT1], "sessions": [CLIENT1],
         "target_iqn": PREFIX + "volume-db01-data", "initiator_addresses": [],
         # 0.1.0's name-only file: the live ACL binds the IQN, the file no address, so the export needs an update.
         "export_ok": False, "mutual_chap": False, "snapshots": [], "managed_snapshots": [],
         "device": "/dev/ember-thin/volume-db01-data", "description": None, "metadata": {}, "migrated_from": None},
    ]


def test_export_file_without_live_target_is_in_use_without_sessions(converged, db01_exports):
    (dummy, db01) = pool_facts("stor1", thin(), converged, db01_exports, {}, False)["volumes"]
    assert db01["status"] == "in-use"
    assert db01["attached_to"] == [CLIENT1]
    assert db01["sessions"] == []


def test_live_target_without_file_is_in_use(converged, live):
    """A target tgt serves without our file (e.g. the file was removed by hand) still makes the volume in-use,
    as the volume module sees it, so the plan asks for force before deleting it."""
    (dummy, db01) = pool_facts("stor1", thin(), converged, {}, live, False)["volumes"]
    assert db01["status"] == "in-use"
    assert db01["target_iqn"] == PREFIX + "volume-db01-data"
    assert db01["attached_to"] == [CLIENT1]  # from the live ACL, without tgt's address ACL "ALL"
    assert db01["sessions"] == [CLIENT1]


def test_thin_converged_with_address_acl_export():
    # The captures with the LUN's SCSI identity in the file and live (as this version writes and loads them).
    conf = parse_conf(text("tgt/conf_db01_acl_id.conf"))
    exports = {conf["backing_store"]: dict(conf, path="/etc/tgt/conf.d/ember-volume-db01-data.conf")}
    live = parse_show(text("tgt/show_two_targets_acl_id.txt"))
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), exports, live, False)["volumes"]
    assert db01["status"] == "in-use"
    assert db01["target_iqn"] == PREFIX + "volume-db01-data"
    assert db01["attached_to"] == [CLIENT1_ACL]  # the file's "# initiator-name" comment lines, not its address
    assert db01["sessions"] == [CLIENT1_ACL]
    # The live target is what the file says: LUN 1 on the LV, the file's CHAP user, the file's address ACL.
    assert db01["initiator_addresses"] == [CLIENT1_ADDR] == live[PREFIX + "volume-db01-data"]["acl"]
    assert live[PREFIX + "volume-db01-data"]["accounts"] == [conf["chap_username"]]
    assert db01["export_ok"] is True


def test_export_with_a_changed_live_acl_is_not_ok():
    conf = parse_conf(text("tgt/conf_db01_acl.conf"))
    exports = {conf["backing_store"]: dict(conf, path="/etc/tgt/conf.d/ember-volume-db01-data.conf")}
    live = parse_show(text("tgt/show_two_targets_acl.txt"))
    live[PREFIX + "volume-db01-data"]["acl"] = ["ALL"]  # someone bound ALL by hand
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), exports, live, False)["volumes"]
    assert db01["export_ok"] is False
    live[PREFIX + "volume-db01-data"]["acl"] = [CLIENT1_ADDR]
    live[PREFIX + "volume-db01-data"]["accounts"] = []  # CHAP account unbound
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), exports, live, False)["volumes"]
    assert db01["export_ok"] is False


def test_live_target_without_file_attached_to_has_no_addresses():
    # The live ACL holds only client1's address (no name is bound) and no file records an IQN: nothing to list.
    live = parse_show(text("tgt/show_two_targets_acl.txt"))
    assert live[PREFIX + "volume-db01-data"]["acl"] == [CLIENT1_ADDR]
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), {}, live, False)["volumes"]
    assert db01["status"] == "in-use"
    assert db01["target_iqn"] == PREFIX + "volume-db01-data"
    assert db01["attached_to"] == []
    assert db01["sessions"] == [CLIENT1_ACL]


def test_live_target_without_file_lists_bound_names_only():
    # A target bound by hand (or by an earlier version) with a name entry next to the address and ALL.
    live = parse_show(text("tgt/show_two_targets_acl.txt"))
    live[PREFIX + "volume-db01-data"]["acl"] = ["ALL", CLIENT1_ADDR, CLIENT1_ACL]
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), {}, live, False)["volumes"]
    assert db01["attached_to"] == [CLIENT1_ACL]


def test_other_pool_name_does_not_exist(stor1):
    pool = pool_facts("stor1", thin(thin_pool="otherpool"), stor1, {}, {}, False)
    assert pool["exists"] is False
    assert pool["total_bytes"] == pool["free_bytes"] == pool["provisioned_bytes"] == 0
    assert pool["volumes"] == []


def test_one_vg_two_backends_do_not_share_volumes(stor1):
    # A thick backend on the thin VG sees no thick managed LVs but reports the VG's space.
    pool = pool_facts("stor1", thick(vg="ember-thin"), stor1, {}, {}, False)
    assert pool["exists"] is True
    assert pool["volumes"] == []
    assert (pool["total_bytes"], pool["free_bytes"]) == (VG_SIZE, 209715200)


# --- missing VG / pool -------------------------------------------------------------------------------------------

EMPTY = {"exists": False, "predicted": False, "total_bytes": 0, "free_bytes": 0, "allocated_bytes": 0,
         "provisioned_bytes": 0, "data_percent": None, "metadata_percent": None, "volumes": []}


@pytest.mark.parametrize("make", [thick, thin])
def test_missing_vg_without_predict(stor1, make):
    pool = pool_facts("stor2", make(vg="ember-new"), stor1, {}, {}, False)
    assert {key: pool[key] for key in EMPTY} == EMPTY
    assert pool["extent_size_bytes"] == EXTENT  # LVM's default
    assert pool["id"] == "stor2@" + make()["name"]
    assert pool["capabilities"]["storage_protocol"] == "iSCSI"


def test_missing_thin_pool_without_predict(stor1):
    pool = pool_facts("stor1", thin(vg="ember-thick"), stor1, {}, {}, False)
    assert {key: pool[key] for key in EMPTY} == EMPTY


def _disk(sizes):
    def block_device_size(path):
        return sizes.get(path)
    return block_device_size


def test_missing_vg_predicted_thick(stor1, monkeypatch):
    # The lab's data disks are 4 GiB: the prediction is the VG vgcreate made on them.
    monkeypatch.setattr(_backend_info, "block_device_size", _disk({"/dev/vdb": 4 * GiB}))
    pool = pool_facts("stor2", thick(vg="ember-new"), stor1, {}, {}, True)
    assert pool["exists"] is False
    assert pool["predicted"] is True
    assert pool["total_bytes"] == pool["free_bytes"] == VG_SIZE
    assert pool["allocated_bytes"] == pool["provisioned_bytes"] == 0
    assert pool["volumes"] == []


def test_missing_vg_predicted_thin(stor1, monkeypatch):
    # 95%VG of that VG is exactly the thin pool lvcreate made on stor1.
    monkeypatch.setattr(_backend_info, "block_device_size", _disk({"/dev/vdc": 4 * GiB}))
    pool = pool_facts("stor2", thin(vg="ember-new"), stor1, {}, {}, True)
    assert pool["predicted"] is True
    assert pool["total_bytes"] == pool["free_bytes"] == POOL_SIZE


def test_missing_vg_predicted_over_several_pvs(stor1, monkeypatch):
    monkeypatch.setattr(_backend_info, "block_device_size", _disk({"/dev/vdb": 4 * GiB, "/dev/vdc": 4 * GiB}))
    pool = pool_facts("stor2", thick(vg="ember-new", pvs=["/dev/vdb", "/dev/vdc"]), stor1, {}, {}, True)
    assert pool["total_bytes"] == 2 * VG_SIZE


def test_missing_vg_predicted_with_absolute_thin_pool_size(stor1, monkeypatch):
    monkeypatch.setattr(_backend_info, "block_device_size", _disk({"/dev/vdc": 4 * GiB}))
    pool = pool_facts("stor2", thin(vg="ember-new", thin_pool_size="3GiB"), stor1, {}, {}, True)
    assert pool["total_bytes"] == 3 * GiB


def test_missing_pv_predicts_zero(stor1, monkeypatch):
    monkeypatch.setattr(_backend_info, "block_device_size", _disk({}))
    pool = pool_facts("stor2", thick(vg="ember-new"), stor1, {}, {}, True)
    assert pool["predicted"] is True
    assert pool["total_bytes"] == 0


def test_missing_thin_pool_in_existing_vg_predicted_from_the_vg(stor1, monkeypatch):
    # The VG exists: its real size is used, the PVs are not read.
    monkeypatch.setattr(_backend_info, "block_device_size", _disk({}))
    pool = pool_facts("stor1", thin(vg="ember-thick"), stor1, {}, {}, True)
    assert pool["predicted"] is True
    assert pool["total_bytes"] == POOL_SIZE  # 95% of ember-thick's 1023 extents


def test_existing_pool_is_not_predicted(stor1, monkeypatch):
    monkeypatch.setattr(_backend_info, "block_device_size", _disk({}))
    pool = pool_facts("stor1", thin(), stor1, {}, {}, True)
    assert pool["predicted"] is False
    assert pool["exists"] is True
    assert pool["total_bytes"] == POOL_SIZE


# --- issue 7: clashes and validation ------------------------------------------------------------------------------

def _lvs_with(rows):
    import json

    data = json.loads(text("lvm/lvs_converged_acl.json"))
    data["report"][0]["lv"].extend(rows)
    return LvmState(parse_vgs(text("lvm/vgs_converged_acl.json")), parse_lvs(json.dumps(data)))


def _row(name, vg, tags="", pool=""):
    return {"lv_name": name, "vg_name": vg, "lv_size": "4194304", "lv_attr": "-wi-a-----", "lv_tags": tags,
            "pool_lv": pool, "origin": "", "data_percent": "", "metadata_percent": "", "lv_path": "/dev/%s/%s" % (
                vg, name), "segtype": "linear"}


def test_unmanaged_lvs_in_the_namespace_are_clashes():
    state = _lvs_with([_row("volume-web01", "ember-thick"), _row("volume-half", "ember-thick", "ember.blockstore"),
                       _row("volume-other", "ember-thick", "ember.blockstore,ember.volume=x"),
                       _row("scratch", "ember-thick"), _row("volume-Bad_Name", "ember-thick"),
                       _row("volume-thin1", "ember-thin", pool="thinpool")])
    pool = pool_facts("stor1", thick(), state, {}, {}, False)
    assert [(c["kind"], c["volume"], c["vg"], c["lv_name"]) for c in pool["clashes"]] == [
        ("lv", "half", "ember-thick", "volume-half"), ("lv", "other", "ember-thick", "volume-other"),
        ("lv", "web01", "ember-thick", "volume-web01")]
    assert pool["clashes"][0] == {"kind": "lv", "host": "stor1", "volume": "half", "vg": "ember-thick",
                                  "lv_name": "volume-half", "tags": ["ember.blockstore"]}
    # Unmanaged LVs are no volumes of the pool.
    assert "web01" not in [v["name"] for v in pool["volumes"]]
    thin_pool = pool_facts("stor1", thin(), state, {}, {}, False)
    assert [c["volume"] for c in thin_pool["clashes"]] == ["thin1"]


def test_unmanaged_targets_named_like_ours_are_clashes():
    live = parse_show(text("tgt/show_two_targets_acl.txt"))
    files = {"/etc/tgt/conf.d/ember-volume-db01-data.conf": text("tgt/conf_db01_acl.conf"),
             "/etc/tgt/conf.d/ember-volume-web01.conf": "<target %svolume-web01>\n</target>\n" % PREFIX}
    pool = pool_facts("stor1", thick(), lvm_state("converged"), {}, live, False, PREFIX, files)
    clashes = [c for c in pool["clashes"] if c["kind"] == "target"]
    # db01-data has our file; logs01 is live without one; web01's file has no marker.
    assert [(c["volume"], c["target_iqn"]) for c in clashes] == [
        ("logs01", PREFIX + "volume-logs01"), ("web01", PREFIX + "volume-web01")]
    assert clashes[0]["reason"].startswith("live target (tid 2) without the project's file")
    assert "has no '# Managed by ember.blockstore; changes are overwritten.' header" in clashes[1]["reason"]
    # Another prefix's targets are not in the namespace.
    other = pool_facts("stor1", thick(), lvm_state("converged"), {}, live, False, "iqn.2010-10.org.openstack:", {})
    assert [c for c in other["clashes"] if c["kind"] == "target"] == []


def test_only_marked_files_are_exports():
    from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import read_exports

    files = {"/etc/tgt/conf.d/ember-volume-db01-data.conf": text("tgt/conf_db01_acl.conf"),
             "/etc/tgt/conf.d/ember-volume-web01.conf":
                 "<target %svolume-web01>\n    backing-store /dev/x/y\n</target>\n" % PREFIX}
    assert sorted(read_exports(files=files)) == ["/dev/ember-thin/volume-db01-data"]


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("name", "lvm;thick", "backends[?].name: "),
    ("vg", "-ember", "backends[lvm-thick].vg: "),
    ("thin_pool", "thin\npool", "backends[lvm-thick].thin_pool: "),
    ("pvs", ["/dev/vdb", "/dev/../etc/shadow"], "backends[lvm-thick].pvs[1]: "),
    ("availability_zone", "az\n1", "backends[lvm-thick].availability_zone: "),
    ("volume_backend_name", "x" * 300, "backends[lvm-thick].volume_backend_name: "),
    ("capabilities", {"k\n": "v"}, "backends[lvm-thick].capabilities key: "),
    ("capabilities", {"k": "v\x00"}, "backends[lvm-thick].capabilities.k: "),
    ("capabilities", {"k": float("nan")}, "backends[lvm-thick].capabilities.k: "),
    ("thin_pool_size", "9" * 5000, "backends[lvm-thick].thin_pool_size: "),
    ("thin_pool_size", "101%VG", "backends[lvm-thick].thin_pool_size: "),
    ("max_over_subscription_ratio", "nan", "backends[lvm-thick].max_over_subscription_ratio: "),
    ("max_over_subscription_ratio", "inf", "backends[lvm-thick].max_over_subscription_ratio: "),
    ("max_over_subscription_ratio", 0, "backends[lvm-thick].max_over_subscription_ratio: "),
    ("max_over_subscription_ratio", True, "backends[lvm-thick].max_over_subscription_ratio: "),
    ("reserved_percentage", 101, "backends[lvm-thick].reserved_percentage: "),
])
def test_every_backend_field_is_validated(key, value, fragment):
    with pytest.raises(ValueError) as excinfo:
        thick(**{key: value})
    assert str(excinfo.value).startswith(fragment)


def test_validate_backends_for_the_roles():
    from ansible_collections.ember.blockstore.plugins.module_utils._argspec import validate_backends

    good = [{"name": "lvm-thick", "vg": "ember-thick", "pvs": ["/dev/vdb"]},
            {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "pvs": ["/dev/vdc"],
             "thin_pool": "thinpool"}]
    assert validate_backends(good) is good
    for bad, fragment in [
        ([{"name": "x", "vg": "-ff", "pvs": ["/dev/vdb"]}], "blockstore_backends[0].vg: "),
        ([{"name": "x", "vg": "vg", "pvs": ["/dev/vdb", "--force"]}], "blockstore_backends[0].pvs[1]: "),
        ([{"name": "x", "vg": "vg", "driver": "zfs"}], "blockstore_backends[0].driver: "),
        ([{"name": "x", "vg": "vg", "colour": "red"}], "blockstore_backends[0]: unknown keys colour"),
        ([{"vg": "vg"}], "blockstore_backends[0].name: required"),
        ([{"name": "x", "vg": "vg", "pool": "tp", "thin_pool": "tp"}],
         "blockstore_backends[0]: both thin_pool and pool are given; pool is the name of thin_pool before 0.2.0"),
        ([{"name": "x", "vg": "vg", "pool": "bad\npool"}], "blockstore_backends[0].thin_pool: "),
        ("lvm", "blockstore_backends: expected a list"),
    ]:
        with pytest.raises(ValueError) as excinfo:
            validate_backends(bad)
        assert str(excinfo.value).startswith(fragment), str(excinfo.value)


@pytest.mark.parametrize(("old", "new", "value"), [("pool", "thin_pool", "tp"),
                                                   ("pool_size", "thin_pool_size", "3GiB")])
def test_validate_backends_takes_the_old_key_names(old, new, value):
    """The keys renamed in 0.2.0 still work until 1.0.0: the list comes back with them under the new names (the
    other backends and keys as they were); both names at once are an error naming both."""
    from ansible_collections.ember.blockstore.plugins.module_utils._argspec import validate_backends

    thick = {"name": "lvm-thick", "vg": "ember-thick"}
    backends = [thick, {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", old: value}]
    checked = validate_backends(backends)
    assert checked == [thick, {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", new: value}]
    assert checked[0] is thick and old in backends[1]  # the input is not changed
    for both in ({old: value, new: value}, {old: value, new: "other"}):
        with pytest.raises(ValueError, match=r"^blockstore_backends\[1\]: both %s and %s are given" % (new, old)):
            validate_backends([thick, dict(backends[1], **both)])


def test_backend_config_takes_what_ansible_module_passes_for_an_old_key():
    """AnsibleModule copies a deprecated alias's value to the option and keeps both: that is no conflict; a
    backend dict with different values under both names is."""
    assert thin(pool="tp", thin_pool="tp")["thin_pool"] == "tp" and "pool" not in thin(pool="tp", thin_pool="tp")
    assert thin(pool_size="3GiB", thin_pool_size="3GiB")["thin_pool_size"] == "3GiB"
    with pytest.raises(ValueError, match=r"^backends\[lvm-thin\]: both thin_pool and pool are given"):
        thin(pool="tp")  # thin() sets thin_pool=thinpool


def test_the_shipped_inventories_pass_the_role_check():
    from pathlib import Path

    import yaml
    from ansible_collections.ember.blockstore.plugins.module_utils._argspec import validate_backends

    root = Path(__file__).resolve().parents[4]
    for path in sorted(root.glob("inventories/*/host_vars/*.yml")):
        validate_backends(yaml.safe_load(path.read_text()).get("blockstore_backends", []))


def test_an_export_without_the_stable_scsi_identity_is_not_ok():
    # The raw captures: the file predates scsi_id/scsi_sn, so the fast path lists the export and the attachment
    # module writes them (and reloads the target when nobody is logged in).
    conf = parse_conf(text("tgt/conf_db01_acl.conf"))
    exports = {conf["backing_store"]: dict(conf, path="/etc/tgt/conf.d/ember-volume-db01-data.conf")}
    live = parse_show(text("tgt/show_two_targets_acl.txt"))
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), exports, live, False)["volumes"]
    assert db01["export_ok"] is False
    # The file has it, the live LUN not yet: fine while someone is logged in (it applies at the next reload) ...
    conf = parse_conf(text("tgt/conf_db01_acl_id.conf"))
    exports = {conf["backing_store"]: dict(conf, path="/etc/tgt/conf.d/ember-volume-db01-data.conf")}
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), exports, live, False)["volumes"]
    assert db01["export_ok"] is True
    # ... not when nobody is: then the target is reloaded with it.
    live[PREFIX + "volume-db01-data"]["sessions"] = []
    (dummy, db01) = pool_facts("stor1", thin(), lvm_state("converged_acl"), exports, live, False)["volumes"]
    assert db01["export_ok"] is False
