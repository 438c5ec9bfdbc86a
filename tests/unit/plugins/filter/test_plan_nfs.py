# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge plan with an NFS backend (issue 14), from the gathers a run registers: a storage node whose share is a
real temporary directory read by the driver (``read_share``), LVM pools beside it, and consumers whose
``initiator_info`` reports the NFS volumes they have attached (``nfs_attachments``). What each phase's filter then
gives the modules: volume items with the share as vg, snapshot items with ``attached``, no export items, connection
items in Cinder's NFS ``connection_info`` shape (none when the loop device is in place), detaches and the report."""

from __future__ import annotations

import copy
import os

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.plan import blockstore_plan, report
from ansible_collections.ember.blockstore.plugins.module_utils import _converge
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import node_backends
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import nfs_pool_facts
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_connection import validate_nfs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs
from ansible_collections.ember.blockstore.plugins.plugin_utils.clashes import name_clashes

SHARE = "198.18.0.21:/srv/ember-nfs"
POOL = "stor1@nfs1#" + SHARE
MIB, GIB = 2**20, 2**30
IQN = "iqn.2026-11.io.ember.blockstore.initiator:client1"
TYPES = {"files": {"extra_specs": {"storage_protocol": "nfs"}},
         "fast": {"extra_specs": {"volume_backend_name": "lvm-thin"}},
         "limited": {"extra_specs": {"storage_protocol": "nfs"}, "qos_specs": {"read_iops_sec": 100,
                                                                               "write_iops_sec": 100}}}


def make_share(tmp_path, volumes=(), foreign=()):
    """A share directory with ``volumes`` (``[(name, size)]``, each a file and its sidecar) and ``foreign`` files."""
    path = tmp_path / "share"
    path.mkdir(exist_ok=True)
    for name, size in volumes:
        (path / nfs.info_file(name)).write_text(nfs.render_info(nfs.new_record(name, size, "files", "nfs1",
                                                                               status="available")))
        with open(path / nfs.volume_file(name), "wb") as handle:
            handle.truncate(size)
    for name in foreign:
        (path / nfs.volume_file(name)).write_bytes(b"")
    return nfs.read_share(SHARE, str(path))


def gathers(tmp_path, volumes=(), foreign=()):
    options = ["rw", "hard", "vers=4.1"]
    (cfg,) = node_backends([{"name": "nfs1", "driver": "nfs", "shares": [SHARE], "mount_options": options}])
    cfg["volume_clear_size_bytes"] = 0
    pool = nfs_pool_facts("stor1", cfg, SHARE, str(tmp_path / "share"), make_share(tmp_path, volumes, foreign),
                          {"total_bytes": 100 * GIB, "free_bytes": 90 * GIB})
    lvm = {"id": "stor2@lvm-thin", "host": "stor2", "backend": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin",
           "thin_pool": "thinpool", "exists": True, "extent_size_bytes": 4 * MIB, "total_bytes": 100 * GIB,
           "free_bytes": 100 * GIB, "allocated_bytes": 0, "provisioned_bytes": 0, "volumes": [], "clashes": [],
           "capabilities": {"volume_backend_name": "lvm-thin", "storage_protocol": "iSCSI", "driver": "lvm_thin",
                            "thin_provisioning_support": True, "availability_zone": "nova",
                            "max_over_subscription_ratio": 20.0}}
    ledger = {"generation": 0, "volumes": {}}
    return {host: {"changed": False, "pools": pools, "problems": [], "ledger": ledger, "ledger_error": None,
                   "tgt": {"running": True, "configured": True, "ready": True}}
            for host, pools in (("stor1", [pool]), ("stor2", [lvm]))}


def attached(name, size, share=SHARE):
    """client1's initiator_info with ``name`` attached (the link, the loop device, its backing file)."""
    path = nfs.mount_point(share, "/var/lib/ember-blockstore/mnt")
    return {"initiator_iqn": IQN, "sessions": [], "nfs_attachments": [
        {"volume": name, "device": "/dev/ember/" + name, "loop_device": "/dev/loop0",
         "backing_file": path + "/volume-" + name, "share_hash": os.path.basename(path), "size_bytes": size}]}


NOTHING = {"initiator_iqn": IQN, "sessions": [], "nfs_attachments": []}


def plan(tmp_path, volumes, have=(), facts=None, **kwargs):
    return blockstore_plan(gathers(tmp_path, have, kwargs.pop("foreign", ())), ["stor1", "stor2"], volumes,
                           volume_types=TYPES, consumers=["client1"], consumer_initiators={"client1": IQN},
                           consumer_addresses={"client1": "198.18.0.21"},
                           consumer_facts={"client1": facts or NOTHING}, **kwargs)


def entry(result, name):
    return next(e for e in result["volumes"] if e["name"] == name)


def test_lvm_and_nfs_typed_volumes_go_to_their_backends_and_nfs_gets_no_export(tmp_path):
    result = plan(tmp_path, [
        {"name": "n1", "size": "8MiB", "volume_type": "files", "attachments": [{"host": "client1"}]},
        {"name": "l1", "size": "8MiB", "volume_type": "fast", "attachments": [{"host": "client1"}]}])
    assert (entry(result, "n1")["pool_id"], entry(result, "n1")["vg"]) == (POOL, SHARE)
    assert entry(result, "l1")["pool_id"] == "stor2@lvm-thin"
    assert result["ledger"]["intent"]["n1"] == {"host": "stor1", "pool_id": POOL, "status": "creating"}
    # The pool id splits: host before the first @, backend up to #, the share (with : and /) after it.
    host, _sep, rest = POOL.partition("@")
    assert (host, rest.split("#", 1)) == ("stor1", ["nfs1", SHARE])
    pools = gathers(tmp_path)["stor1"]["pools"]
    (item,) = _converge.volume_items(result, "stor1", pools)
    assert (item["name"], item["vg"], item["backend"]) == ("n1", SHARE, "nfs1")
    assert _converge.attachment_items(result, "stor1", {"client1": IQN}, pools, addresses={"client1": "x"}) == []
    assert [i["volume"] for i in _converge.attachment_items(result, "stor2", {"client1": IQN},
                                                            gathers(tmp_path)["stor2"]["pools"])] == ["l1"]


def test_a_new_nfs_attachment_gets_cinders_nfs_connection_info(tmp_path):
    result = plan(tmp_path, [{"name": "n1", "size": "8MiB", "volume_type": "files",
                              "attachments": [{"host": "client1"}]}])
    pools = gathers(tmp_path)["stor1"]["pools"]
    (item,) = _converge.connect_items([], IQN, plan=result, consumer="client1", consumer_facts=NOTHING, pools=pools)
    assert item == {"driver_volume_type": "nfs", "volume": "n1", "state": "present", "size_bytes": 8 * MIB,
                    "data": {"export": SHARE, "name": "volume-n1", "format": "raw", "options": "rw,hard,vers=4.1"},
                    "mount_point_base": "/var/lib/ember-blockstore/mnt"}
    assert validate_nfs(dict(item, force=False, qos=None), "connections[0]") == []


def test_an_nfs_volume_in_place_gets_no_connection_item_and_a_grown_one_does(tmp_path):
    vols = [{"name": "n1", "size": "8MiB", "volume_type": "files", "attachments": [{"host": "client1"}]}]
    pools = gathers(tmp_path, [("n1", 8 * MIB)])["stor1"]["pools"]
    result = plan(tmp_path, vols, have=[("n1", 8 * MIB)], facts=attached("n1", 8 * MIB))
    assert entry(result, "n1")["action"] == "none"
    assert _converge.connect_items([], IQN, plan=result, consumer="client1", consumer_facts=attached("n1", 8 * MIB),
                                   pools=pools) == []
    # extended on the storage node: the consumer's loop device is smaller, so it gets an item (losetup -c)
    bigger = [dict(vols[0], size="12MiB")]
    result = plan(tmp_path, bigger, have=[("n1", 8 * MIB)], facts=attached("n1", 8 * MIB))
    (item,) = _converge.connect_items([], IQN, plan=result, consumer="client1",
                                      consumer_facts=attached("n1", 8 * MIB), pools=pools)
    assert (item["volume"], item["size_bytes"]) == ("n1", 12 * MIB)
    # the same name attached from another share is not this volume
    other = attached("n1", 8 * MIB, share="198.18.0.22:/srv/other")
    assert len(_converge.connect_items([], IQN, plan=plan(tmp_path, vols, have=[("n1", 8 * MIB)], facts=other),
                                       consumer="client1", consumer_facts=other, pools=pools)) == 1


def test_an_attached_nfs_volume_is_attached_for_the_plan(tmp_path):
    have = [("n1", 8 * MIB)]
    facts = attached("n1", 8 * MIB)
    # a snapshot item says the volume is attached (the storage node cannot see the loop device)
    result = plan(tmp_path, [{"name": "n1", "size": "8MiB", "volume_type": "files",
                              "attachments": [{"host": "client1"}], "snapshots": [{"name": "s1", "force": True}]}],
                  have=have, facts=facts)
    assert entry(result, "n1")["nfs_attached"] == ["client1"]
    (snap,) = _converge.snapshot_items(result, "stor1")
    assert (snap["attached"], snap["force"], snap["vg"]) == (True, True, SHARE)
    # delete refused while attached, unless force
    with pytest.raises(AnsibleFilterError, match=r"n1 on stor1@nfs1#198.18.0.21:/srv/ember-nfs is in-use "
                                                 r"\(attached to %s\); set force: true" % IQN):
        plan(tmp_path, [{"name": "n1", "state": "absent"}], have=have, facts=facts)
    result = plan(tmp_path, [{"name": "n1", "state": "absent", "force": True}], have=have, facts=facts)
    pools = gathers(tmp_path, have)["stor1"]["pools"]
    (item,) = _converge.disconnect_items(result, pools, IQN, {}, consumer_facts=facts)
    assert (item["driver_volume_type"], item["state"], item["force"], item["data"]["export"]) == (
        "nfs", "absent", True, SHARE)
    (delete,) = _converge.volume_items(result, "stor1", pools, phase="absent")
    assert (delete["name"], delete["vg"]) == ("n1", SHARE)
    # not attached: the snapshot is not either, and nothing is detached
    result = plan(tmp_path, [{"name": "n1", "size": "8MiB", "volume_type": "files",
                              "snapshots": [{"name": "s1"}]}], have=have)
    assert _converge.snapshot_items(result, "stor1")[0]["attached"] is False
    assert _converge.disconnect_items(result, pools, IQN, {}, consumer_facts=NOTHING) == []


def test_an_nfs_attachment_taken_out_of_the_inventory_is_detached_by_the_consumer(tmp_path):
    have, facts = [("n1", 8 * MIB)], attached("n1", 8 * MIB)
    result = plan(tmp_path, [{"name": "n1", "size": "8MiB", "volume_type": "files"}], have=have, facts=facts)
    (detach,) = entry(result, "n1")["detach"]
    assert (detach["host"], detach["initiator"], detach["connected"]) == ("client1", IQN, False)
    pools = gathers(tmp_path, have)["stor1"]["pools"]
    (item,) = _converge.disconnect_items(result, pools, IQN, {"stor1": "198.18.0.11:3260"}, consumer_facts=facts)
    assert (item["volume"], item["state"], item["force"]) == ("n1", "absent", False)
    # no storage-node item: there is no export to narrow
    assert _converge.attachment_items(result, "stor1", {"client1": IQN}, pools, phase="detach",
                                      consumer_results={"client1": {"connections": [item]}}) == []
    # the consumer being detached is not attached again in the same run
    assert _converge.connect_items([], IQN, plan=result, consumer="client1", consumer_facts=facts, pools=pools) == []


def test_what_nfs_volumes_cannot_have_is_refused_before_any_change(tmp_path):
    with pytest.raises(AnsibleFilterError, match=r"volume q1: its volume type limited has QoS specs, which are not "
                                                 r"applied to NFS volumes"):
        plan(tmp_path, [{"name": "q1", "size": "8MiB", "volume_type": "limited"}])
    # a file volume-<name> without sidecar is someone else's: the clash names the share and the file
    with pytest.raises(AnsibleFilterError, match=r"volume x1 \(blockstore_volumes\[0\]\) clashes on stor1: share "
                                                 r"198.18.0.21:/srv/ember-nfs has file volume-x1 that is not managed"):
        plan(tmp_path, [{"name": "x1", "size": "8MiB", "volume_type": "files"}], foreign=["x1"])
    pools = gathers(tmp_path, foreign=["x2"])["stor1"]["pools"]
    assert "file volume-x2" in name_clashes([{"name": "x2"}], pools)[0]


def test_the_report_shows_the_consumers_device(tmp_path):
    have, facts = [("n1", 8 * MIB)], attached("n1", 8 * MIB)
    vols = [{"name": "n1", "size": "8MiB", "volume_type": "files", "attachments": [{"host": "client1"}]}]
    result = plan(tmp_path, vols, have=have, facts=facts)
    pools = gathers(tmp_path, have)["stor1"]["pools"]
    done = report(result, volume_results={}, attachment_results={}, delete_results={}, unexport_results={},
                  connection_results={"client1": {"connections": []}}, consumer_facts={"client1": facts},
                  pools=pools, check_mode=False)
    (row,) = [r for r in done["rows"] if r["volume"] == "n1"]
    assert (row["state"], row["device"]) == ("in-use", "client1:/dev/ember/n1")
    broken = report(result, volume_results={}, attachment_results={}, delete_results={}, unexport_results={},
                    connection_results={"client1": {"failed": True, "msg": "share does not answer"}},
                    consumer_facts={"client1": NOTHING}, pools=copy.deepcopy(pools), check_mode=False)
    (row,) = [r for r in broken["rows"] if r["volume"] == "n1"]
    assert row["state"] == "error" and "share does not answer" in row["status"]
