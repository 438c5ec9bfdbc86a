# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduler, unchanged, over the pools backend_info reports for NFS shares (issue 14) mixed with LVM pools:
each share is a pool (``<host>@<backend>#<share>``) with Cinder's capacity rules (reserved percentage, thin
over-subscription when the backend is sparse, thick when it preallocates), and the plan's items for the volume
module carry the share as ``vg``, which is how the volume module finds an NFS item."""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._argspec import node_backends
from ansible_collections.ember.blockstore.plugins.module_utils._backend_info import nfs_pool_facts
from ansible_collections.ember.blockstore.plugins.module_utils._converge import snapshot_items, volume_items
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_volume import route
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import ShareState
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from scheduler_helpers import GiB, pool_facts

SHARE_A, SHARE_B = "198.18.0.5:/srv/a", "198.18.0.5:/srv/b"


class FakeState(ShareState):
    """A mounted share whose files add up to ``provisioned``/``allocated`` bytes."""

    def __init__(self, share, provisioned=0, allocated=0):
        super().__init__(share, "/mnt/x", {}, {}, {}, [], set())
        self._provisioned, self._allocated = provisioned, allocated

    def provisioned_bytes(self):
        return self._provisioned

    def allocated_bytes(self):
        return self._allocated


def nfs_pools(sparse=True, reserved=0, mosr=20.0, free=(50 * GiB, 80 * GiB), provisioned=(0, 0)):
    (cfg,) = node_backends([{"name": "nfs1", "driver": "nfs", "shares": [SHARE_A, SHARE_B], "sparse": sparse,
                             "reserved_percentage": reserved, "max_over_subscription_ratio": mosr,
                             "availability_zone": "az1"}])
    cfg["volume_clear_size_bytes"] = 0
    return [nfs_pool_facts("stor3", cfg, share, "/mnt/x", FakeState(share, prov, prov),
                           {"total_bytes": 100 * GiB, "free_bytes": room})
            for share, room, prov in zip((SHARE_A, SHARE_B), free, provisioned)]


def test_each_share_is_a_pool_named_as_cinder_names_pools():
    pools = nfs_pools()
    assert [p["id"] for p in pools] == ["stor3@nfs1#198.18.0.5:/srv/a", "stor3@nfs1#198.18.0.5:/srv/b"]
    assert [p["vg"] for p in pools] == [SHARE_A, SHARE_B]


def test_a_volume_goes_to_the_share_with_the_most_virtual_free_space():
    # sparse: virtual free = total * 20 - provisioned (free is not read on the thin path, as in Cinder 21)
    result = plan([{"name": "web01", "size": "10GiB"}], nfs_pools(provisioned=(30 * GiB, 10 * GiB)))
    (entry,) = result["volumes"]
    assert (entry["action"], entry["pool_id"], entry["vg"], entry["thin_pool"], entry["backend"]) == (
        "create", "stor3@nfs1#198.18.0.5:/srv/b", SHARE_B, None, "nfs1")
    assert entry["size_bytes"] == 10 * GiB  # whole MiB: the driver's rounding


def test_sparse_shares_are_over_subscribed_up_to_the_ratio_after_the_reserve():
    # thin: (total - floor(total * 10%)) * 2 - provisioned = 90 GiB * 2 - 170 GiB = 10 GiB virtual free
    pools = nfs_pools(reserved=10, mosr=2.0, free=(1 * GiB, 1 * GiB), provisioned=(170 * GiB, 200 * GiB))
    result = plan([{"name": "web01", "size": "10GiB"}], pools)
    assert result["volumes"][0]["pool_id"] == "stor3@nfs1#198.18.0.5:/srv/a"
    errors = plan_errors([{"name": "web01", "size": "11GiB"}], pools)
    assert "No valid backend for web01" in errors


def test_a_preallocating_backend_is_thick():
    # thick: min(free, total - reserved - provisioned) = min(30, 90 - 70) = 20 GiB
    pools = nfs_pools(sparse=False, reserved=10, free=(30 * GiB, 5 * GiB), provisioned=(70 * GiB, 95 * GiB))
    assert all(p["provisioned_bytes"] == 100 * GiB - p["free_bytes"] for p in pools)  # used space, as Cinder
    for pool, prov in zip(pools, (70 * GiB, 95 * GiB)):
        pool["provisioned_bytes"] = prov
    assert plan([{"name": "web01", "size": "20GiB"}], pools)["volumes"][0]["pool_id"].endswith("#" + SHARE_A)
    assert "No valid backend for web01" in plan_errors([{"name": "web01", "size": "21GiB"}], pools)


def plan_errors(volumes, pools, **kwargs):
    try:
        plan(volumes, pools, **kwargs)
    except ScheduleError as exc:
        return str(exc)
    return ""


def test_one_inventory_mixes_lvm_and_nfs_backends_and_the_items_reach_the_right_code():
    pools = [pool_facts("stor1@lvm-thin", thin=True, total=500 * GiB)] + nfs_pools(provisioned=(30 * GiB, 10 * GiB))
    types = {"fast": {"extra_specs": {"volume_backend_name": "lvm-thin"}},
             "files": {"extra_specs": {"volume_backend_name": "nfs1", "storage_protocol": "nfs"}}}
    volumes = [{"name": "db01", "size": "10GiB", "volume_type": "fast"},
               {"name": "web01", "size": "10GiB", "volume_type": "files", "snapshots": [{"name": "nightly"}]}]
    result = plan(volumes, pools, volume_types=types)
    by_name = {v["name"]: v for v in result["volumes"]}
    assert by_name["db01"]["pool_id"] == "stor1@lvm-thin"
    assert by_name["web01"]["pool_id"] == "stor3@nfs1#198.18.0.5:/srv/b"
    (item,) = volume_items(result, "stor3", pools)
    assert (item["name"], item["vg"], item["backend"], item["thin_pool"]) == ("web01", SHARE_B, "nfs1", None)
    (snap,) = snapshot_items(result, "stor3")
    assert (snap["volume"], snap["vg"]) == ("web01", SHARE_B)
    configs = node_backends([{"name": "nfs1", "driver": "nfs", "shares": [SHARE_A, SHARE_B]},
                             {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin"}])
    routed, errors = route([item], configs, "volumes", with_backend=True)
    assert errors == [] and routed[0][1] == SHARE_B
    routed, errors = route([snap], configs, "snapshots")
    assert errors == [] and routed[0][1] == SHARE_B
