# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``plugin_utils.clashes.name_clashes``: the plan refuses inventory volumes whose names something that is not the
project's holds on a storage node (issue 7, item 8), naming host, VG and LV or the target IQN."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.schedule import schedule
from ansible_collections.ember.blockstore.plugins.plugin_utils.clashes import name_clashes

PREFIX = "iqn.2026-11.io.ember.blockstore:"
LV = {"kind": "lv", "host": "stor2", "volume": "web01", "vg": "ember-thick", "lv_name": "volume-web01",
      "tags": ["ember.volume=web01"]}
TARGET = {"kind": "target", "host": "stor1", "volume": "db01-data", "target_iqn": PREFIX + "volume-db01-data",
          "path": "/etc/tgt/conf.d/ember-volume-db01-data.conf",
          "reason": "live target (tid 3) without the project's file /etc/tgt/conf.d/ember-volume-db01-data.conf"}


def pool(host, backend, clashes=(), volumes=()):
    return {"id": "%s@%s" % (host, backend), "host": host, "backend": backend, "total_bytes": 4 * 2**30,
            "free_bytes": 4 * 2**30, "allocated_bytes": 0, "provisioned_bytes": 0, "extent_size_bytes": 4 * 2**20,
            "capabilities": {"volume_backend_name": backend, "availability_zone": "nova"},
            "volumes": list(volumes), "clashes": list(clashes)}


POOLS = [pool("stor1", "lvm-thick", [TARGET]), pool("stor1", "lvm-thin", [TARGET]),
         pool("stor2", "lvm-thick", [LV]), pool("stor2", "lvm-thin")]


def test_lv_and_target_clashes_name_host_vg_lv_and_iqn():
    volumes = [{"name": "db01-data", "size": "1GiB"}, {"name": "web01", "size": "256MiB"}, {"name": "ok", "size": 1}]
    assert name_clashes(volumes, POOLS) == [
        "volume db01-data (blockstore_volumes[0]) clashes on stor1: target %svolume-db01-data is not managed by "
        "ember.blockstore (live target (tid 3) without the project's file "
        "/etc/tgt/conf.d/ember-volume-db01-data.conf); it is never changed or removed: rename or remove it, or "
        "choose another volume name" % PREFIX,
        "volume web01 (blockstore_volumes[1]) clashes on stor2: VG ember-thick has LV volume-web01 that is not "
        "managed by ember.blockstore (tags: ember.volume=web01); ember.blockstore never touches it: rename the LV "
        "or choose another volume name",
    ]


def test_no_clash_no_message():
    assert name_clashes([{"name": "ok", "size": 1}], POOLS) == []
    assert name_clashes([], POOLS) == []
    assert name_clashes([{"name": "web01"}], [pool("stor1", "x")]) == []
    assert name_clashes([{"name": "web01"}], [{"id": "old@facts"}]) == []  # pools without the key: no clashes


def test_every_state_counts():
    assert len(name_clashes([{"name": "web01", "state": "absent"}], POOLS)) == 1


def test_a_host_wide_target_clash_is_reported_once():
    assert len(name_clashes([{"name": "db01-data"}], POOLS)) == 1


def test_the_order_of_the_pools_does_not_matter():
    volumes = [{"name": "db01-data"}, {"name": "web01"}]
    assert name_clashes(volumes, POOLS) == name_clashes(volumes, list(reversed(POOLS)))


@pytest.mark.parametrize("volumes", [[None], [{"size": 1}], [{"name": 5}], ["web01"], None])
def test_invalid_items_are_left_to_the_plan(volumes):
    assert name_clashes(volumes, POOLS) == []


def test_the_schedule_filter_refuses_a_clash_before_planning():
    with pytest.raises(AnsibleFilterError, match=r"volume web01 \(blockstore_volumes\[0\]\) clashes on stor2: VG "
                                                 r"ember-thick has LV volume-web01"):
        schedule(POOLS, [{"name": "web01", "size": "256MiB"}])
    plan = schedule(POOLS, [{"name": "fine", "size": "256MiB"}])
    assert [v["action"] for v in plan["volumes"]] == ["create"]


def test_the_plan_filter_refuses_a_clash_before_any_change():
    from ansible_collections.ember.blockstore.plugins.filter.plan import blockstore_plan

    def gather(pools):
        return {"changed": False, "pools": pools, "problems": [], "ledger": None, "ledger_error": None,
                "tgt": {"running": True, "configured": True, "ready": True}}
    gathers = {"stor1": gather(POOLS[:2]), "stor2": gather(POOLS[2:])}
    with pytest.raises(AnsibleFilterError) as excinfo:
        blockstore_plan(gathers, ["stor1", "stor2"], [{"name": "web01", "size": "256MiB"},
                                                      {"name": "db01-data", "size": "1GiB"}])
    text = str(excinfo.value)
    assert text.startswith("The plan is refused, nothing was changed:\n")
    assert "volume web01 (blockstore_volumes[0]) clashes on stor2: VG ember-thick has LV volume-web01" in text
    assert "volume db01-data (blockstore_volumes[1]) clashes on stor1: target %svolume-db01-data" % PREFIX in text
    plan = blockstore_plan(gathers, ["stor1", "stor2"], [{"name": "fine", "size": "256MiB"}])
    assert [v["action"] for v in plan["volumes"]] == ["create"]
