# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""blockstore_volumes[].source.image in the plan: validated, placed like any new volume (not on a source's pool),
and turned into the volume module's source and the role's uploads."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._converge import image_uploads, volume_items
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from scheduler_helpers import GiB, existing, pool_facts, schedule_error

SHA = "sha256:" + "ab" * 32


def pools():
    return [pool_facts("stor1@lvm", total=10 * GiB, volumes=[existing("old", GiB)]),
            pool_facts("stor2@lvm", total=100 * GiB)]


def test_an_image_volume_is_placed_by_the_weigher_and_keeps_its_source():
    the_pools = pools()
    result = plan([{"name": "vm", "size": "2GiB", "source": {"image": "/srv/images/a.qcow2", "format": "qcow2",
                                                             "checksum": SHA}}], the_pools)
    (entry,) = result["volumes"]
    assert (entry["action"], entry["pool_id"], entry["size_bytes"]) == ("create", "stor2@lvm", 2 * GiB)
    (item,) = volume_items(result, "stor2", the_pools)
    assert item["source"] == {"image": "/srv/images/a.qcow2", "format": "qcow2", "checksum": SHA}
    assert image_uploads(result, "stor2") == []


def test_a_controller_image_is_staged_and_uploaded():
    the_pools = pools()
    result = plan([{"name": "vm", "size": "1GiB", "source": {"image": "/home/me/a.raw", "controller": True}}],
                  the_pools)
    host = result["volumes"][0]["host"]
    (item,) = volume_items(result, host, the_pools)
    assert item["source"] == {"image": "/var/lib/ember-blockstore/images/upload-vm"}
    assert image_uploads(result, host) == [{"src": "/home/me/a.raw", "volume": "vm",
                                            "dest": "/var/lib/ember-blockstore/images/upload-vm"}]


def test_an_existing_volume_ignores_its_image_source():
    the_pools = pools()
    result = plan([{"name": "old", "size": "1GiB", "source": {"image": "https://example.com/a.qcow2"}}], the_pools)
    assert result["volumes"][0]["action"] == "none"
    assert volume_items(result, "stor1", the_pools) == []


@pytest.mark.parametrize(("source", "size", "message"), [
    ({"image": "/srv/a.qcow2"}, None, "blockstore_volumes[0].size: missing; a volume from an image needs a size"),
    ({"image": "relative.qcow2"}, "1GiB", "blockstore_volumes[0].source.image: 'relative.qcow2' is not an image "
                                          "location"),
    ({"image": "/srv/a.qcow2", "format": "vmdk"}, "1GiB", "blockstore_volumes[0].source.format: 'vmdk' is not one "
                                                          "of raw, qcow2"),
    ({"image": "/srv/a.qcow2", "checksum": "md5:00"}, "1GiB", "blockstore_volumes[0].source.checksum: 'md5:00' is "
                                                              "not a checksum"),
    ({"image": "/srv/a.qcow2", "volume": "old"}, "1GiB", "blockstore_volumes[0].source.volume: 'old' is given with "
                                                         "image"),
    ({"image": "https://x.example/a.raw", "controller": True}, "1GiB", "blockstore_volumes[0].source.controller: "
                                                                       "true takes a path on the controller"),
    ({"image": "/srv/a.raw", "controller": "yes"}, "1GiB", "blockstore_volumes[0].source.controller: 'yes' is not "
                                                           "a boolean"),
    ({"volume": "old", "format": "raw"}, "1GiB", "blockstore_volumes[0].source.format: 'raw' applies to an image "
                                                 "source only"),
])
def test_bad_image_sources_name_the_field_and_value(source, size, message):
    item = {"name": "vm", "source": source}
    if size:
        item["size"] = size
    error = schedule_error([item], pools())
    assert any(message in problem for problem in error.errors), error.errors


def test_an_image_volume_is_not_placed_on_an_nfs_pool():
    nfs = pool_facts("stor1@nfs", total=100 * GiB)
    nfs["driver"] = "nfs"
    error = schedule_error([{"name": "vm", "size": "1GiB", "source": {"image": "/srv/a.raw"}}], [nfs])
    assert any("source.image: vm would go on stor1@nfs, an nfs pool" in e for e in error.errors), error.errors
